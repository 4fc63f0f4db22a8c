/* mig_lazy DIR: what a lazily restored migrant (src/ckpt/lazy.c) does to
 * its memory while pages are still missing must come out as if it had
 * all been there. Fills six 8 MiB areas with a pattern, says DIR/ready,
 * waits for DIR/go (sent right after it moved, while its memory is still
 * coming in: the test slows the copy down), then at once:
 *   A: forks; the child checks A (its own copy of what was missing);
 *   B: MADV_DONTNEED, then reads zeros;
 *   C: mremap'ed elsewhere, the pattern follows;
 *   D: munmap'ed and mapped again: zeros;
 *   E: read() from a pipe into it (the kernel writes into missing pages);
 *   F: checked as is.
 * Prints "phase 1 PASS, N areas still arriving at go" (N: VMAs registered
 * for missing pages when it started) and writes DIR/phase1; waits for
 * DIR/go2 (after another move) and checks it all again: "phase 2 PASS".
 * Exit 0 if both passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA (8UL << 20)
enum { A, B, C, D, E, F, NAREAS };

static uint64_t *area[NAREAS];
static uint64_t *moved;  /* C after its mremap */
static const char *dir;
static unsigned char piped[3 * 4096 + 100];
static const size_t pipe_at = (1UL << 20) + 100;  /* bytes into E */

static uint64_t word(int a, size_t i)
{
	return ((uint64_t)(a + 1) << 56) ^ (i * 0x9e3779b97f4a7c15ULL);
}

static void touch(const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
}

static void wait_for(const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	while (access(p, F_OK) != 0)
		usleep(1000);
}

/* The area a's pattern at p, but for [skip, skip + skip_len) bytes. */
static int pattern_ok(const uint64_t *p, int a, size_t skip, size_t skip_len)
{
	for (size_t i = 0; i < AREA / 8; i++) {
		if (i * 8 + 8 > skip && i * 8 < skip + skip_len)
			continue;
		if (p[i] != word(a, i))
			return 0;
	}
	return 1;
}

static int zero_ok(const uint64_t *p)
{
	for (size_t i = 0; i < AREA / 8; i++)
		if (p[i])
			return 0;
	return 1;
}

static int registered_areas(void)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, "VmFlags:", 8) && strstr(line, " um") != NULL;
	if (f)
		fclose(f);
	return n;
}

/* Everything as it should be after the operations. */
static const char *check_all(void)
{
	if (!pattern_ok(area[A], A, 0, 0))
		return "A";
	if (!zero_ok(area[B]))
		return "B is not zero after MADV_DONTNEED";
	if (!pattern_ok(moved, C, 0, 0))
		return "C after mremap";
	if (!zero_ok(area[D]))
		return "D is not zero after munmap + mmap";
	if (memcmp((unsigned char *)area[E] + pipe_at, piped, sizeof(piped)) || !pattern_ok(area[E], E, pipe_at, sizeof(piped)))
		return "E after read() into it";
	if (!pattern_ok(area[F], F, 0, 0))
		return "F";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mig_lazy DIR\n");
		return 2;
	}
	dir = argv[1];
	/* Room for C to move to, away from the others. */
	void *target = mmap(NULL, AREA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int a = 0; a < NAREAS; a++) {
		area[a] = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (area[a] == MAP_FAILED || target == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t i = 0; i < AREA / 8; i++)
			area[a][i] = word(a, i);
	}
	for (size_t i = 0; i < sizeof(piped); i++)
		piped[i] = (unsigned char)(i * 13 + 7);
	touch("ready");
	wait_for("go");
	int arriving = registered_areas();
	pid_t kid = fork();
	if (kid == 0)
		_exit(pattern_ok(area[A], A, 0, 0) && pattern_ok(area[F], F, 0, 0) ? 0 : 1);
	madvise(area[B], AREA, MADV_DONTNEED);
	moved = mremap(area[C], AREA, AREA, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	munmap(area[D], AREA);
	void *d2 = mmap(area[D], AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	int pfd[2];
	if (moved == MAP_FAILED || d2 == MAP_FAILED || kid < 0 || pipe(pfd) < 0) {
		perror("phase 1 setup");
		return 1;
	}
	if (write(pfd[1], piped, sizeof(piped)) != (ssize_t)sizeof(piped))
		return 1;
	size_t got = 0;
	while (got < sizeof(piped)) {
		ssize_t k = read(pfd[0], (unsigned char *)area[E] + pipe_at + got, sizeof(piped) - got);
		if (k <= 0) {
			perror("phase 1 read into E");
			return 1;
		}
		got += (size_t)k;
	}
	const char *bad = check_all();
	int st = 0;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		bad = bad ? bad : "the child forked at go saw other contents";
	printf("phase 1 %s%s, %d areas still arriving at go\n", bad ? "FAIL: " : "PASS", bad ? bad : "", arriving);
	fflush(stdout);
	touch("phase1");
	if (bad)
		return 1;
	wait_for("go2");
	bad = check_all();
	printf("phase 2 %s%s\n", bad ? "FAIL: " : "PASS", bad ? bad : "");
	return bad ? 1 : 0;
}
