/* ckpt_bench.c — helper of bench/ckpt (checkpoint/restart throughput):
 *   hold MIB READY [GAP]
 *                      touch MIB MiB of private anonymous memory (a byte
 *                      pattern, not zeros), create READY, then loop on
 *                      100 us sleeps, noting the longest gap between two
 *                      wake-ups, until SIGUSR1; then check the pattern is
 *                      intact (exit 3 if not), write the longest gap in
 *                      seconds into GAP (if given) and exit 0. The gap is
 *                      the time the process was frozen by a checkpoint it
 *                      survived (plus the sleep, ~0.1-0.2 ms, and any
 *                      scheduling delay): measured by the application,
 *                      not taken from krg.
 *   memcpy MIB         seconds to memcpy MIB MiB between two touched
 *                      buffers (best of 3)
 *   file MIB PATH      seconds to write MIB MiB to PATH through a fresh fd
 *                      and fsync it, then (fresh fd) to read it back into
 *                      the (touched) buffer it was written from, then
 *                      (fresh fd) into freshly mapped, untouched memory as
 *                      a restore must; prints "WRITE_S READ_S READNEW_S".
 *                      With DROP=1 in the environment the page cache is
 *                      dropped before each read; with SETTLE=S it sleeps
 *                      S seconds before the write and before the read
 *                      into fresh memory (see bench/ckpt --settle).
 * Times are printed in seconds, one line. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1UL << 20)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint8_t *touched(size_t len, uint8_t seed)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (size_t i = 0; i < len; i += 64)
		p[i] = (uint8_t)(i / 64 * 31 + seed);
	return p;
}

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static void drop_caches(void)
{
	if (!getenv("DROP") || strcmp(getenv("DROP"), "1"))
		return;
	sync();
	int d = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (d < 0 || write(d, "3\n", 2) != 2) {
		perror("drop_caches");
		exit(1);
	}
	close(d);
}

static void settle(void)
{
	const char *s = getenv("SETTLE");
	double d = s ? strtod(s, NULL) : 0;
	if (d > 0) {
		struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

/* Seconds to read PATH (fresh fd) into buf, len bytes. */
static double read_file(const char *path, uint8_t *buf, size_t len)
{
	drop_caches();
	double t0 = now();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	for (size_t off = 0; off < len; off += CHUNK)
		if (read(fd, buf + off, CHUNK) != (ssize_t)CHUNK) {
			perror("read");
			exit(1);
		}
	close(fd);
	return now() - t0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s hold MIB READY [GAP] | memcpy MIB | file MIB PATH\n", argv[0]);
		return 2;
	}
	size_t len = strtoull(argv[2], NULL, 10) << 20;
	if (!strcmp(argv[1], "hold") && (argc == 4 || argc == 5)) {
		/* Only the standard fds: an inherited pipe would be refused. */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		uint8_t *p = touched(len, 7);
		signal(SIGUSR1, on_sig);
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return 1;
		close(fd);
		double last = now(), gap = 0;
		while (!stop) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);  /* EINTR (a freeze, the signal): fine */
			double t = now();
			gap = t - last > gap ? t - last : gap;
			last = t;
		}
		for (size_t i = 0; i < len; i += 64)
			if (p[i] != (uint8_t)(i / 64 * 31 + 7))
				return 3;
		if (argc == 5) {
			FILE *g = fopen(argv[4], "w");
			if (!g || fprintf(g, "%.6f\n", gap) < 0 || fclose(g))
				return 1;
		}
		return 0;
	}
	if (!strcmp(argv[1], "memcpy")) {
		uint8_t *a = touched(len, 1), *b = touched(len, 2);
		double best = 1e9;
		for (int i = 0; i < 3; i++) {
			double t0 = now();
			memcpy(b, a, len);
			double t = now() - t0;
			best = t < best ? t : best;
		}
		printf("%.6f\n", best);
		return b[len / 2] == a[len / 2] ? 0 : 1;
	}
	if (!strcmp(argv[1], "file") && argc == 4) {
		uint8_t *a = touched(len, 3);
		unlink(argv[3]);
		settle();
		double t0 = now();
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror(argv[3]);
			return 1;
		}
		for (size_t off = 0; off < len; off += CHUNK)
			if (write(fd, a + off, CHUNK) != (ssize_t)CHUNK) {
				perror("write");
				return 1;
			}
		if (fsync(fd) < 0 || close(fd) < 0) {
			perror("fsync");
			return 1;
		}
		double tw = now() - t0;
		double tr = read_file(argv[3], a, len);
		uint8_t *fresh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (fresh == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		settle();
		double tn = read_file(argv[3], fresh, len);
		unlink(argv[3]);
		printf("%.6f %.6f %.6f\n", tw, tr, tn);
		return 0;
	}
	fprintf(stderr, "%s: bad arguments\n", argv[0]);
	return 2;
}
