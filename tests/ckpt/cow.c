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

/* Private_Dirty and Pss (kB) of process pid's mapping starting at addr. */
static int region_kb(pid_t pid, uintptr_t addr, long *priv, long *pss)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "re");
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
			sscanf(line, "Private_Dirty: %ld", priv), sscanf(line, "Pss: %ld", pss);
	}
	fclose(f);
	return found ? 0 : -1;
}

static pid_t kids[NKIDS];

/* The tree holds the region about once: each process's own part of it
 * (Private_Dirty) small, and their proportional shares (Pss) adding up
 * to about 64 MiB, not 4 x 64. */
static void check_shared(const char *when, unsigned char *m)
{
	long total = 0;
	for (int k = -1; k < NKIDS; k++) {
		pid_t p = k < 0 ? getpid() : kids[k];
		long priv = -1, pss = -1;
		if (region_kb(p, (uintptr_t)m, &priv, &pss) < 0)
			fail("%s: region %p not in the smaps of process %d", when, (void *)m, (int)p);
		if (priv > (long)(SZ >> 10) / 16)
			fail("%s: process %d (%s) has %ld kB of the 64 MiB region Private_Dirty: copy-on-write sharing lost", when, (int)p,
			     k < 0 ? "the parent" : "a child", priv);
		total += pss;
	}
	if (total > (long)(SZ >> 10) * 17 / 16)
		fail("%s: the tree's Pss of the 64 MiB region is %ld kB: copy-on-write sharing lost", when, total);
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
