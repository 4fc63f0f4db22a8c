/* extra.c — the checkpoint engine's extra children (ckpt_restore_opts.extra,
 * docs/checkpoint.md; live migration's ghosts use them): a process dumped
 * alone comes back with a child that is not in its image, under the pid
 * asked for, exec'd into a program; the restored process waits for it and
 * gets its exit status. Then a restore that fails half-way
 * (fault point ckpt-restore-fail) leaves no extra child behind. Root (ptrace,
 * clone3 set_tid). Prints PASS, or FAIL and why (exit 1). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int fail(const char *fmt, const char *a, long b)
{
	printf("FAIL: ");
	printf(fmt, a, b);
	printf("\n");
	return 1;
}

/* The process dumped and restored: waits (polling, so that it is dumped
 * in a restartable sleep) for DIR/go, then for a child, and writes
 * "PID STATUS" to DIR/out. */
static int root(const char *dir)
{
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
	char p[512], tmp[520];
	snprintf(p, sizeof(p), "%s/ready", dir);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	snprintf(p, sizeof(p), "%s/go", dir);
	while (access(p, F_OK) < 0)
		sleep_ms(10);
	int st = 0;
	pid_t c = wait(&st);
	snprintf(p, sizeof(p), "%s/out", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return 1;
	fprintf(f, "%d %d\n", (int)c, st);
	fclose(f);
	rename(tmp, p);
	return 0;
}

/* A pid that was just in use and is free now (pids are handed out in
 * increasing order: it is not taken again soon). */
static pid_t free_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "root"))
		return root(argv[2]);
	if (geteuid() != 0) {
		printf("FAIL: cannot run: needs root\n");
		return 1;
	}
	const char *b = getenv("KRG_BUILD_DIR");
	char dir[512], img[600], p[700];
	snprintf(dir, sizeof(dir), "%s/ckpt-extra.XXXXXX", b ? b : ".");
	if (!mkdtemp(dir))
		return fail("mkdtemp %s: %ld", dir, errno);
	snprintf(img, sizeof(img), "%s/img", dir);
	pid_t r = fork();
	if (r == 0) {
		execl("/proc/self/exe", argv[0], "root", dir, (char *)NULL);
		_exit(127);
	}
	snprintf(p, sizeof(p), "%s/ready", dir);
	for (int i = 0; i < 3000 && access(p, F_OK) < 0; i++)
		sleep_ms(10);
	struct ckpt_error err = { 0 };
	struct ckpt_dump_opts d = { .process_only = true, .kill = true };
	if (ckpt_dump(r, img, &d, &err) < 0)
		return fail("dump: %s%ld", err.msg, 0);
	waitpid(r, NULL, 0);

	/* 1. Restored with an extra child under a chosen pid: its status
	 * reaches the restored process's wait(). */
	pid_t want = free_pid();
	char *xargv[] = { "/bin/sh", "-c", "exit 7", NULL };
	struct ckpt_extra_child x = { .pid = want, .argv = xargv };
	struct ckpt_restore_opts o = { .extra = &x, .n_extra = 1 };
	pid_t rp;
	if (ckpt_restore_opts(img, NULL, &o, &rp, &err) < 0)
		return fail("restore: %s%ld", err.msg, 0);
	if (x.got != want)
		return fail("extra child: pid %s%ld, not the one asked for", "", (long)x.got);
	snprintf(p, sizeof(p), "%s/go", dir);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	int st;
	if (waitpid(rp, &st, 0) != rp || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return fail("restored process: wait status %s%#lx", "", (long)st);
	char out[64] = "", exp[64];
	snprintf(p, sizeof(p), "%s/out", dir);
	FILE *f = fopen(p, "r");
	if (!f || !fgets(out, sizeof(out), f))
		return fail("no %s%ld", p, 0);
	fclose(f);
	snprintf(exp, sizeof(exp), "%d %d\n", (int)want, 7 << 8);
	if (strcmp(out, exp))
		return fail("the restored process's wait() got %s(pid status), not %ld 0x700", out, (long)want);
	printf("ok   extra child %d exec'd under the restored process, its exit 7 reaped by it\n", (int)want);

	/* 2. A restore failing after its processes exist: nothing left, the
	 * extra child neither. */
	unlink(p);
	snprintf(p, sizeof(p), "%s/go", dir);
	unlink(p);
	want = free_pid();
	char *sargv[] = { "/bin/sleep", "100", NULL };
	x = (struct ckpt_extra_child){ .pid = want, .argv = sargv };
	setenv("KRG_FAULT", "ckpt-restore-fail", 1);
	memset(&err, 0, sizeof(err));
	if (ckpt_restore_opts(img, NULL, &o, &rp, &err) == 0)
		return fail("restore with a fault injected: succeeded%s%ld", "", 0);
	unsetenv("KRG_FAULT");
	if (x.got != 0 || kill(want, 0) == 0 || errno != ESRCH)
		return fail("after a failed restore, the extra child %s%ld is still there", "", (long)want);
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		return fail("after a failed restore, a child is left%s%ld", "", 0);
	printf("ok   a failed restore leaves no extra child\n");
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return fail("cannot remove %s%ld", dir, 0);
	printf("PASS\n");
	return 0;
}
