/* ipc_intercept_bench.c — what krg's IPC filter costs a process that does
 * no System V IPC: a loop of cheap syscalls (getppid) natively, then in a
 * child that carries the filter (ipc/intercept.h), same run; prints both
 * and the ratio; also 8-byte reads of /dev/zero.
 * Needs root (the filter is installed without no_new_privs, as krgd's
 * exec child does). Usage: krg-bench-ipc-intercept [ITERATIONS] */
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ipc/intercept.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct res {
	double getppid_ns, read_ns;
};

/* One round in a fresh child, with or without the filter. */
static int round_in_child(long n, bool filter, struct res *out)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t c = fork();
	if (c == 0) {
		close(p[0]);
		if (filter) {
			int lfd = krg_intercept_install();
			if (lfd < 0) {
				fprintf(stderr, "krg-bench-ipc-intercept: installing the filter: %s (needs root)\n", strerror(-lfd));
				_exit(1);
			}
		}
		int fd = open("/dev/zero", O_RDONLY);
		char b[8];
		for (long i = 0; i < n / 10; i++)  /* warm up */
			syscall(SYS_getppid);
		double t0 = now();
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		double t1 = now();
		for (long i = 0; i < n / 4; i++)
			if (read(fd, b, sizeof(b)) < 0)
				_exit(1);
		double t2 = now();
		struct res r = { (t1 - t0) / (double)n * 1e9, (t2 - t1) / (double)(n / 4) * 1e9 };
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	int st;
	ssize_t got = read(p[0], out, sizeof(*out));
	close(p[0]);
	if (c < 0 || waitpid(c, &st, 0) < 0 || got != (ssize_t)sizeof(*out) || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return 0;
}

#define ROUNDS 5

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	if (n < 1000) {
		fprintf(stderr, "krg-bench-ipc-intercept: ITERATIONS must be at least 1000\n");
		return 2;
	}
	/* Alternating rounds, best of each: the machine is shared. */
	struct res base = { 1e18, 1e18 }, filt = { 1e18, 1e18 };
	for (int i = 0; i < ROUNDS; i++)
		for (int f = 0; f < 2; f++) {
			struct res r, *best = f ? &filt : &base;
			if (round_in_child(n, f, &r) < 0)
				return 1;
			if (r.getppid_ns < best->getppid_ns)
				best->getppid_ns = r.getppid_ns;
			if (r.read_ns < best->read_ns)
				best->read_ns = r.read_ns;
		}
	printf("syscall                 native      with krg's IPC filter   ratio\n");
	printf("getppid              %8.1f ns   %8.1f ns             %5.2fx\n", base.getppid_ns, filt.getppid_ns,
	       filt.getppid_ns / base.getppid_ns);
	printf("read /dev/zero 8 B   %8.1f ns   %8.1f ns             %5.2fx\n", base.read_ns, filt.read_ns,
	       filt.read_ns / base.read_ns);
	printf("(best of %d alternating rounds of %ld calls, each in a fresh process)\n", ROUNDS, n);
	return 0;
}
