/* ckpt_bench.c — helper of bench/ckpt (checkpoint/restart throughput):
 *   hold MIB READY     touch MIB MiB of private anonymous memory (a byte
 *                      pattern, not zeros), create READY, then pause()
 *                      until a signal; exits 0
 *   memcpy MIB         seconds to memcpy MIB MiB between two touched
 *                      buffers (best of 3)
 *   file MIB PATH      seconds to write MIB MiB to PATH through a fresh fd
 *                      and fsync it, then (fresh fd) to read it back;
 *                      prints "WRITE_S READ_S". With DROP=1 in the
 *                      environment the page cache is dropped before the read.
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

static void on_sig(int s) { (void)s; }

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s hold MIB READY | memcpy MIB | file MIB PATH\n", argv[0]);
		return 2;
	}
	size_t len = strtoull(argv[2], NULL, 10) << 20;
	if (!strcmp(argv[1], "hold") && argc == 4) {
		/* Only the standard fds: an inherited pipe would be refused. */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		volatile uint8_t *p = touched(len, 7);
		(void)p;
		signal(SIGUSR1, on_sig);
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return 1;
		close(fd);
		pause();
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
		if (getenv("DROP") && !strcmp(getenv("DROP"), "1")) {
			sync();
			int d = open("/proc/sys/vm/drop_caches", O_WRONLY);
			if (d < 0 || write(d, "3\n", 2) != 2) {
				perror("drop_caches");
				return 1;
			}
			close(d);
		}
		t0 = now();
		fd = open(argv[3], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[3]);
			return 1;
		}
		for (size_t off = 0; off < len; off += CHUNK)
			if (read(fd, a + off, CHUNK) != (ssize_t)CHUNK) {
				perror("read");
				return 1;
			}
		close(fd);
		double tr = now() - t0;
		unlink(argv[3]);
		printf("%.6f %.6f\n", tw, tr);
		return 0;
	}
	fprintf(stderr, "%s: bad arguments\n", argv[0]);
	return 2;
}
