/* incr_app.c — the application of the incremental checkpoint test and
 * benchmark (tests/ckpt/incr.c, bench/ckpt-incr):
 *     ckpt_incr_app MIB STATUS [PERCENT]
 * maps MIB MiB of private anonymous memory and fills every page with a
 * pattern, then waits. Each SIGUSR1 is a round k = 1, 2, ...: PERCENT
 * (default 1) of the pages are rewritten with a pattern of (page, k), one
 * page is zapped (MADV_DONTNEED: zeros), one zapped and read again (the
 * zero page), a small heap buffer changes and a new 256 KiB area is
 * mapped and filled. After the start and after each round it writes the
 * round's number into STATUS (by rename: never half written). On SIGUSR2
 * it rebuilds, in fresh memory, what all of it must hold after the
 * rounds it counts and compares byte for byte: exit 0 if equal, 3 if not
 * (it names the first differing page on stderr), after writing
 * "check 0" or "check 3" into STATUS (for a caller that is not its
 * parent: a restart elsewhere). Its stdio is whatever it was given (the
 * tests give /dev/null). */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAX_ROUNDS 64
#define AREA (256UL << 10)

static volatile sig_atomic_t want_round, want_check;
static void on_usr1(int s) { (void)s; want_round++; }
static void on_usr2(int s) { (void)s; want_check = 1; }

static size_t npages;
static unsigned percent = 1;
static uint8_t *areas[MAX_ROUNDS + 1];
static char heapbuf_init[64];
static char *heapbuf;

static void fill(uint8_t *pg, uint64_t p, uint64_t k)
{
	memset(pg, (int)((p * 31 + k * 7 + 1) & 0xff), PAGE);
	memcpy(pg, &p, 8);
	memcpy(pg + 8, &k, 8);
}

static bool dirtied(uint64_t p, uint64_t k)
{
	return (p * 7919 + k * 104729) % 100 < percent;
}

/* Round k on memory m (the live one, or the rebuilt expectation). */
static void round_on(uint8_t *m, uint64_t k, bool live)
{
	for (uint64_t p = 0; p < npages; p++)
		if (dirtied(p, k))
			fill(m + p * PAGE, p, k);
	uint64_t z = (k * 131) % npages, zr = (k * 257 + 3) % npages;
	if (live) {
		madvise(m + z * PAGE, PAGE, MADV_DONTNEED);
		madvise(m + zr * PAGE, PAGE, MADV_DONTNEED);
		volatile uint8_t c = m[zr * PAGE + 5];
		(void)c;
	} else {
		memset(m + z * PAGE, 0, PAGE);
		memset(m + zr * PAGE, 0, PAGE);
	}
}

static void status_line(const char *path, const char *line)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fputs(line, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		exit(2);
}

static void status(const char *path, unsigned k)
{
	char line[32];
	snprintf(line, sizeof(line), "%u\n", k);
	status_line(path, line);
}

static const char *status_path;
static int checked(int rc)
{
	status_line(status_path, rc ? "check 3\n" : "check 0\n");
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: ckpt_incr_app MIB STATUS [PERCENT]\n");
		return 2;
	}
	size_t len = strtoul(argv[1], NULL, 10) << 20;
	if (argc > 3)
		percent = (unsigned)strtoul(argv[3], NULL, 10);
	npages = len / PAGE;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || !npages)
		return 2;
	for (uint64_t p = 0; p < npages; p++)
		fill(m + p * PAGE, p, 0);
	heapbuf = malloc(sizeof(heapbuf_init));
	if (!heapbuf)
		return 2;
	memset(heapbuf, 'a', sizeof(heapbuf_init));
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	unsigned k = 0;
	status_path = argv[2];
	status(argv[2], 0);
	for (;;) {
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		if (want_check)
			break;
		if (want_round && k < MAX_ROUNDS) {
			want_round--;
			k++;
			round_on(m, k, true);
			heapbuf[k % sizeof(heapbuf_init)] = (char)('A' + k % 26);
			areas[k] = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (areas[k] == MAP_FAILED)
				return 2;
			memset(areas[k], (int)k, AREA);
			status(argv[2], k);
		}
	}
	/* The check: everything as the k rounds left it. */
	uint8_t *e = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e == MAP_FAILED)
		return 2;
	for (uint64_t p = 0; p < npages; p++)
		fill(e + p * PAGE, p, 0);
	char hb[sizeof(heapbuf_init)];
	memset(hb, 'a', sizeof(hb));
	for (unsigned j = 1; j <= k; j++) {
		round_on(e, j, false);
		hb[j % sizeof(hb)] = (char)('A' + j % 26);
	}
	for (uint64_t p = 0; p < npages; p++)
		if (memcmp(m + p * PAGE, e + p * PAGE, PAGE)) {
			fprintf(stderr, "ckpt_incr_app: page %llu of %zu differs after %u rounds\n", (unsigned long long)p, npages, k);
			return checked(3);
		}
	if (memcmp(heapbuf, hb, sizeof(hb))) {
		fprintf(stderr, "ckpt_incr_app: the heap buffer differs\n");
		return checked(3);
	}
	for (unsigned j = 1; j <= k; j++)
		for (size_t i = 0; i < AREA; i++)
			if (areas[j][i] != (uint8_t)j) {
				fprintf(stderr, "ckpt_incr_app: area %u differs\n", j);
				return checked(3);
			}
	return checked(0);
}
