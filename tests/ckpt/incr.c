/* incr.c — incremental checkpoints through the engine (ckpt_track_take,
 * ckpt_dump_opts.track/parent; docs/checkpoint.md "Incremental images").
 *     ckpt_incr APP
 * Runs APP (ckpt_incr_app, 64 MiB), checkpoints it in full with a write
 * tracker (v1), then after each of four rounds of writes (1% of its
 * pages, a zapped page, a zapped page read again, a new area, the heap)
 * incrementally (v2..v5, each naming the one before). Checks:
 *  - each increment's pages file is under a tenth of the full one's;
 *  - APP killed, v5 restored (its chain v4..v1 composed): the restored
 *    process rebuilds what its memory must hold and compares: exit 0;
 *  - a restart from v3 (the middle of the chain) also matches;
 *  - v3 removed: checking v5 fails in one line naming the missing parent;
 *    v1's pages damaged: one line; v3 replaced by another image: one line;
 *    each also by `krg image show` (one line, exit 1).
 * Root (ptrace). Prints PASS, or FAIL and why. */
#include <errno.h>
#include <stdbool.h>
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

static char base[64], status_path[128];
static pid_t app_pid;  /* the application, killed on failure: nothing left running */

static void fail(const char *fmt, const char *a, const char *b)
{
	if (app_pid > 0)
		kill(app_pid, SIGKILL);
	printf("FAIL: ");
	printf(fmt, a, b);
	printf("\n");
	exit(1);
}

static unsigned read_status(void)
{
	char buf[32] = "";
	FILE *f = fopen(status_path, "r");
	if (!f)
		return ~0u;
	unsigned k = fgets(buf, sizeof(buf), f) ? (unsigned)strtoul(buf, NULL, 10) : ~0u;
	fclose(f);
	return k;
}

/* Until the application reports round k (a condition, never a fixed sleep). */
static void wait_round(pid_t pid, unsigned k)
{
	for (int i = 0; i < 6000; i++) {
		if (read_status() == k)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail("the application died before round %s%s", "", "");
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	fail("the application never reported a round%s%s", "", "");
}

static long long pages_size(const char *dir, pid_t pid)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/pages-%d.img", dir, pid);
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static void vdir(char *out, size_t len, int v)
{
	snprintf(out, len, "%s/v%d", base, v);
}

/* Restore version v, have it check itself: its exit status. */
static int restore_and_check(int v)
{
	char d[128];
	vdir(d, sizeof(d), v);
	struct ckpt_error err = { 0 };
	pid_t pid;
	if (ckpt_restore(d, &pid, &err) < 0)
		fail("restoring %s: %s", d, err.msg);
	kill(pid, SIGUSR2);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		fail("waiting for the restored process of %s%s", d, "");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ckpt_image_check of v fails in one line containing want. */
static void expect_broken(int v, const char *want)
{
	char d[128];
	vdir(d, sizeof(d), v);
	struct ckpt_error err = { 0 };
	if (ckpt_image_check(d, &err) == 0)
		fail("%s passed its check with a broken chain (%s)", d, want);
	if (!strstr(err.msg, want) || strchr(err.msg, '\n'))
		fail("expected one line with \"%s\", got: %s", want, err.msg);
	printf("refused as expected: %s\n", err.msg);
	/* The same through the command line: one line, exit 1. */
	const char *b = getenv("KRG_BUILD_DIR");
	if (!b)
		fail("KRG_BUILD_DIR is not set (run through meson test)%s%s", "", "");
	char cmd[600], line[2048];
	snprintf(cmd, sizeof(cmd), "%s/krg image show %s 2>&1 >/dev/null", b, d);
	FILE *p = popen(cmd, "r");
	int lines = 0;
	bool found = false;
	while (p && fgets(line, sizeof(line), p)) {
		lines++;
		found = found || strstr(line, want);
	}
	int st = p ? pclose(p) : -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || lines != 1 || !found)
		fail("krg image show %s: not one line with the reason and exit 1 (%s)", d, line);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ckpt_incr APP\n");
		return 2;
	}
	if (geteuid() != 0)
		fail("needs root (ptrace)%s%s", "", "");
	snprintf(base, sizeof(base), "/tmp/krg-incr.XXXXXX");
	if (!mkdtemp(base))
		fail("mkdtemp: %s%s", strerror(errno), "");
	snprintf(status_path, sizeof(status_path), "%s/status", base);
	pid_t app = fork();
	if (app == 0) {
		int dn = open("/dev/null", O_RDWR);
		dup2(dn, 0), dup2(dn, 1), dup2(dn, 2);
		close_range(3, ~0u, 0);  /* nothing of ours: a pipe to us would refuse the checkpoint */
		execl(argv[1], argv[1], "64", status_path, "1", (char *)NULL);
		_exit(127);
	}
	app_pid = app;
	wait_round(app, 0);
	struct ckpt_error err = { 0 };
	int uffd;
	if (ckpt_track_take(app, &uffd, &err) < 0)
		fail("ckpt_track_take: %s%s", err.msg, "");
	struct ckpt_track tr = { app, uffd };
	char d[128], parent[128];
	long long full = 0;
	for (int v = 1; v <= 5; v++) {
		if (v > 1) {
			kill(app, SIGUSR1);
			wait_round(app, (unsigned)v - 1);
		}
		vdir(d, sizeof(d), v);
		vdir(parent, sizeof(parent), v - 1);
		struct ckpt_dump_opts o = { .track = &tr, .n_track = 1, .parent = v > 1 ? parent : NULL };
		if (ckpt_dump(app, d, &o, &err) < 0)
			fail("dump %s: %s", d, err.msg);
		long long sz = pages_size(d, app);
		char name[64];
		int pr = ckpt_image_parent(d, name, sizeof(name));
		printf("v%d: pages file %lld bytes, parent %s\n", v, sz, pr == 0 ? name : "none");
		if (v == 1) {
			full = sz;
			if (pr != -ENOENT)
				fail("the first checkpoint names a parent%s%s", "", "");
		} else {
			char want[8];
			snprintf(want, sizeof(want), "v%d", v - 1);
			if (pr != 0 || strcmp(name, want))
				fail("%s does not name %s as its parent", d, want);
			if (sz < 0 || sz * 10 > full)
				fail("%s: an increment over a tenth of the full image%s", d, "");
		}
	}
	kill(app, SIGKILL);
	waitpid(app, NULL, 0);
	app_pid = 0;
	close(uffd);
	int rc = restore_and_check(5);
	if (rc != 0) {
		char s[16];
		snprintf(s, sizeof(s), "%d", rc);
		fail("the process restored from v5 found its memory wrong (exit %s)%s", s, "");
	}
	printf("v5 (4 increments on v1) restored: memory exact\n");
	if ((rc = restore_and_check(3)) != 0)
		fail("the process restored from v3 found its memory wrong%s%s", "", "");
	printf("v3 restored: memory exact\n");

	/* A missing parent. */
	char v3[128], v3gone[160];
	vdir(v3, sizeof(v3), 3);
	snprintf(v3gone, sizeof(v3gone), "%s.gone", v3);
	if (rename(v3, v3gone) < 0)
		fail("rename: %s%s", strerror(errno), "");
	expect_broken(5, "parent v3 is missing");
	if (rename(v3gone, v3) < 0)
		fail("rename back: %s%s", strerror(errno), "");
	if (restore_and_check(5) != 0)
		fail("v5 no longer restores once v3 is back%s%s", "", "");

	/* v1's pages damaged (a page no increment rewrote). */
	char p1[256];
	snprintf(p1, sizeof(p1), "%s/v1/pages-%d.img", base, app);
	/* One byte in each of 16 pages in the middle of the 64 MiB: at most
	 * 4% of them were rewritten since, so some are still v1's. */
	int fd = open(p1, O_RDWR);
	off_t mid = 64 + full / 2 / 4096 * 4096 + 100;
	unsigned char c[16];
	for (int k = 0; k < 16; k++) {
		if (fd < 0 || pread(fd, &c[k], 1, mid + k * 4096) != 1)
			fail("reading %s%s", p1, "");
		unsigned char x = c[k] ^ 0x5a;
		if (pwrite(fd, &x, 1, mid + k * 4096) != 1)
			fail("writing %s%s", p1, "");
	}
	expect_broken(5, "fail their checksum");
	for (int k = 0; k < 16; k++)
		if (pwrite(fd, &c[k], 1, mid + k * 4096) != 1)
			fail("writing %s%s", p1, "");
	close(fd);

	/* v3 replaced by another image (v1's inventory in its place). */
	char i1[256], i3[256], i3b[256];
	snprintf(i1, sizeof(i1), "%s/v1/inventory.img", base);
	snprintf(i3, sizeof(i3), "%s/v3/inventory.img", base);
	snprintf(i3b, sizeof(i3b), "%s/v3/inventory.keep", base);
	char cmd[800];
	snprintf(cmd, sizeof(cmd), "mv %s %s && cp %s %s", i3, i3b, i1, i3);
	if (system(cmd) != 0)
		fail("%s%s", cmd, "");
	expect_broken(4, "parent v3 is not the image it was taken after");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	if (system(cmd) != 0)
		fail("%s%s", cmd, "");
	printf("PASS\n");
	return 0;
}
