/* Copy-on-write sharing between a parent and its children (issue 14
 * items 1 and 2): the parent writes 64 MiB of private anonymous memory,
 * then forks three children that only read it, so all four map the same
 * physical pages. That must stay so across a checkpoint that leaves the
 * application running (the dump must not un-share a page), and come back
 * so after a restart (one copy for the tree, not four). On SIGUSR1 the
 * parent checks its own smaps for the region: nearly all of it is
 * Shared_Dirty and its Private_Dirty is small, then the children check
 * the contents and exit. run.sh runs it checkpointed without --kill (the
 * original checks) and restarted from that image. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "zdtm.h"

#define SZ (64UL << 20)
#define NKIDS 3

static unsigned char pat(size_t i) { return (unsigned char)(i * 31 + (i >> 12)); }

/* Private_Dirty and Shared_Dirty (kB) of the mapping starting at addr. */
static int region_kb(uintptr_t addr, long *priv, long *shared)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[512];
	bool in = false, found = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = s == addr;
			found |= in;
			continue;
		}
		if (in)
			sscanf(line, "Private_Dirty: %ld", priv), sscanf(line, "Shared_Dirty: %ld", shared);
	}
	fclose(f);
	return found ? 0 : -1;
}

static void check_shared(const char *when, unsigned char *m)
{
	long priv = -1, shared = -1;
	if (region_kb((uintptr_t)m, &priv, &shared) < 0)
		fail("%s: region %p not in smaps", when, (void *)m);
	/* Some pages may be the parent's own (libc, a stray write): at most 1/16. */
	if (priv > (long)(SZ >> 10) / 16 || shared < (long)(SZ >> 10) * 15 / 16)
		fail("%s: the parent's 64 MiB region is %ld kB Private_Dirty, %ld kB Shared_Dirty: copy-on-write sharing with its children lost",
		     when, priv, shared);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unsigned char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int go[2];
	if (m == MAP_FAILED || pipe(go) < 0)
		fail("setup: %s", strerror(errno));
	madvise(m, SZ, MADV_NOHUGEPAGE);  /* one THP copied would be 2 MiB */
	for (size_t i = 0; i < SZ; i++)
		m[i] = pat(i);
	pid_t kids[NKIDS];
	for (int k = 0; k < NKIDS; k++) {
		if ((kids[k] = fork()) == 0) {
			/* only reads: waits for the parent's word, checks, exits */
			close(go[1]);
			char c;
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
			for (size_t i = 0; i < SZ; i += 997)
				if (m[i] != pat(i))
					_exit(10 + k);
			_exit(0);
		}
	}
	close(go[0]);
	check_shared("before the checkpoint", m);
	test_ready(argv);
	test_wait();
	check_shared("after the checkpoint", m);
	for (size_t i = 0; i < SZ; i += 4096)
		if (m[i] != pat(i))
			fail("byte %zu of the region lost", i);
	if (write(go[1], "gogo", NKIDS) != NKIDS)
		fail("waking the children: %s", strerror(errno));
	for (int k = 0; k < NKIDS; k++) {
		int st;
		if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("child %d: status %#x", k, st);
	}
	pass();
}
