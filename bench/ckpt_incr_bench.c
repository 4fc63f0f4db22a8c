/* ckpt_incr_bench.c — helper of bench/ckpt-incr (incremental checkpoints,
 * issue 19 item 3):
 *     krg-bench-ckpt-incr APP DIR MIB PERCENT ROUNDS
 * Runs APP (tests/ckpt's ckpt_incr_app) with MIB MiB of written private
 * memory, then in DIR, all in this run on the same process:
 *   full   a plain checkpoint (no tracker: what `krg checkpoint` does),
 *          the baseline;
 *   v1     the full checkpoint that starts the write tracking;
 *   v2..   after each round of writes to PERCENT % of its pages, an
 *          incremental checkpoint naming the one before.
 * Every checkpoint is made durable (fsync), as the engine always does.
 * Then the application is killed, the last increment restored (its whole
 * chain) and the restored process compares its memory with what the
 * rounds must have left (exit 0). Prints one line per step and
 *   RESULT full_s=.. incr_s=.. (median) ratio=.. full_bytes=.. incr_bytes=.. restore_ok=0|1
 * Root. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt.h"

static char status_path[4200];
static pid_t app_pid;  /* killed by die(): nothing left running */

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "krg-bench-ckpt-incr: %s: %s\n", what, why);
	if (app_pid > 0)
		kill(app_pid, SIGKILL);
	exit(1);
}

static void wait_round(pid_t pid, unsigned k)
{
	for (int i = 0; i < 120000; i++) {
		char buf[32] = "";
		FILE *f = fopen(status_path, "r");
		if (f) {
			if (fgets(buf, sizeof(buf), f) && (unsigned)strtoul(buf, NULL, 10) == k) {
				fclose(f);
				return;
			}
			fclose(f);
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			die("the application", "died");
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
	die("the application", "never reported its round");
}

static long long tree_bytes(const char *dir)
{
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "du -sb '%s'", dir);
	FILE *p = popen(cmd, "r");
	long long n = -1;
	if (p) {
		if (fscanf(p, "%lld", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: krg-bench-ckpt-incr APP DIR MIB PERCENT ROUNDS\n");
		return 2;
	}
	const char *app_path = argv[1], *dir = argv[2];
	int rounds = atoi(argv[5]);
	if (rounds < 1 || rounds > 32)
		die("ROUNDS", "1 to 32");
	snprintf(status_path, sizeof(status_path), "%s/status", dir);
	pid_t app = fork();
	if (app == 0) {
		int dn = open("/dev/null", O_RDWR);
		dup2(dn, 0), dup2(dn, 1), dup2(dn, 2);
		close_range(3, ~0u, 0);  /* nothing of ours: a pipe to us would refuse the checkpoint */
		execl(app_path, app_path, argv[3], status_path, argv[4], (char *)NULL);
		_exit(127);
	}
	app_pid = app;
	wait_round(app, 0);
	struct ckpt_error err = { 0 };
	char d[4300], parent[4300];
	/* The baseline: a plain full checkpoint. */
	snprintf(d, sizeof(d), "%s/full", dir);
	struct ckpt_dump_opts plain = { 0 };
	double t0 = now();
	if (ckpt_dump(app, d, &plain, &err) < 0)
		die("full checkpoint", err.msg);
	double full_s = now() - t0;
	long long full_bytes = tree_bytes(d);
	printf("full checkpoint (no tracking): %.3f s, %lld bytes\n", full_s, full_bytes);
	int uffd;
	if (ckpt_track_take(app, &uffd, &err) < 0)
		die("write tracker", err.msg);
	struct ckpt_track tr = { app, uffd };
	double incr[32];
	long long incr_bytes = 0;
	for (int v = 1; v <= rounds + 1; v++) {
		if (v > 1) {
			kill(app, SIGUSR1);
			wait_round(app, (unsigned)v - 1);
		}
		snprintf(d, sizeof(d), "%s/v%d", dir, v);
		snprintf(parent, sizeof(parent), "%s/v%d", dir, v - 1);
		struct ckpt_dump_opts o = { .track = &tr, .n_track = 1, .parent = v > 1 ? parent : NULL };
		t0 = now();
		if (ckpt_dump(app, d, &o, &err) < 0)
			die(d, err.msg);
		double s = now() - t0;
		long long b = tree_bytes(d);
		printf("v%d %s: %.3f s, %lld bytes\n", v, v == 1 ? "(full, starts the tracking)" : "(incremental)", s, b);
		if (v > 1) {
			incr[v - 2] = s;
			incr_bytes = b;
		}
	}
	kill(app, SIGKILL);
	waitpid(app, NULL, 0);
	app_pid = 0;
	close(uffd);
	pid_t pid;
	int ok = 0;
	t0 = now();
	if (ckpt_restore(d, &pid, &err) < 0) {
		fprintf(stderr, "restore of %s: %s\n", d, err.msg);
	} else {
		double rs = now() - t0;
		kill(pid, SIGUSR2);
		int st;
		waitpid(pid, &st, 0);
		ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		printf("restore of v%d (a chain of %d increments): %.3f s, memory %s\n", rounds + 1, rounds, rs, ok ? "exact" : "WRONG");
	}
	qsort(incr, (size_t)rounds, sizeof(incr[0]), cmp_d);
	double med = incr[rounds / 2];
	printf("RESULT full_s=%.3f incr_s=%.3f ratio=%.3f full_bytes=%lld incr_bytes=%lld restore_ok=%d\n", full_s, med, med / full_s,
	       full_bytes, incr_bytes, ok);
	return ok ? 0 : 1;
}
