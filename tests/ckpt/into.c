/* into.c — the checkpoint engine restoring into an existing process
 * (ckpt_restore_opts.into, docs/migration.md "Back home": a migrant
 * coming home is restored into its deputy). A process P is dumped alone
 * and killed; a process T, child of a process M, waits with every signal
 * blocked and a pipe's write end at fd 9; P's image is restored into T
 * with T's fd 9 kept as P's fd 5. Then T is P: it reports T's pid and M
 * as its parent, writes through fd 5 into M's pipe, and M's waitpid gets
 * P's exit status (7). Once as root, once with P and T as uid 65534
 * (nothing raised: the deputy of a user's process). Root (ptrace).
 * Prints PASS, or FAIL and why. */
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

#include <grp.h>

static char dir[64];
static bool nobody;  /* P and T run as uid/gid 65534: the restore raises nothing */

static void become_nobody(void)
{
	if (nobody && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
		_exit(4);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static bool exists(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void put(const char *name, const char *text)
{
	char p[128], tmp[140];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
		rename(tmp, p);
	}
}

static void get(const char *name, char *buf, size_t len)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	buf[0] = 0;
	if (f) {
		size_t n = fread(buf, 1, len - 1, f);
		buf[n] = 0;
		fclose(f);
	}
}

/* P: its fd 5 is /dev/null until it comes back; after "go", one line to
 * fd 5 and to the file "out", then exit 7. */
static _Noreturn void p_main(void)
{
	close_range(3, ~0U, 0);  /* nothing of the test's caller */
	become_nobody();
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	dup2(null, 5);
	close(null);
	put("p-ready", "");
	while (!exists("go"))
		sleep_ms(10);
	char line[64];
	int n = snprintf(line, sizeof(line), "pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
	if (write(5, line, (size_t)n) != n)
		_exit(3);
	put("out", line);
	_exit(7);
}

/* M: forks T (a pipe's write end at fd 9, every signal blocked, waiting),
 * says T's pid, then reads what comes through the pipe and T's status. */
static _Noreturn void m_main(void)
{
	int p[2];
	if (pipe(p) < 0)
		_exit(1);
	pid_t t = fork();
	if (t == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		become_nobody();
		dup2(p[1], 9);
		int null = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 3; fd++)
			dup2(null, fd);
		close_range(3, 8, 0);
		close_range(10, ~0U, 0);
		for (;;)
			pause();
	}
	close(p[1]);
	char tp[32];
	snprintf(tp, sizeof(tp), "%d %d\n", (int)t, (int)getpid());
	put("t", tp);
	char buf[256] = "";
	ssize_t n, got = 0;
	while ((n = read(p[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = 0;
	put("mout", buf);
	int st = 0;
	waitpid(t, &st, 0);
	char s[32];
	snprintf(s, sizeof(s), "%d\n", st);
	put("mstatus", s);
	_exit(0);
}

static int fail(const char *what, const char *detail)
{
	printf("FAIL: %s%s%s%s\n", nobody ? "(uid 65534) " : "", what, detail ? ": " : "", detail ? detail : "");
	return 1;
}

static int run(void)
{
	snprintf(dir, sizeof(dir), "/tmp/krg-into.XXXXXX");
	if (!mkdtemp(dir))
		return fail("mkdtemp", strerror(errno));
	chmod(dir, 0777);  /* P writes there as uid 65534 too */
	fflush(NULL);
	pid_t p = fork();
	if (p == 0)
		p_main();
	for (int i = 0; i < 500 && !exists("p-ready"); i++)
		sleep_ms(10);
	char img[96];
	snprintf(img, sizeof(img), "%s/img", dir);
	struct ckpt_dump_opts d = { .kill = true, .process_only = true };
	struct ckpt_error err = { 0 };
	if (ckpt_dump(p, img, &d, &err) < 0)
		return fail("dump", err.msg);
	waitpid(p, NULL, 0);
	fflush(NULL);
	pid_t m = fork();
	if (m == 0)
		m_main();
	for (int i = 0; i < 500 && !exists("t"); i++)
		sleep_ms(10);
	char tline[64];
	get("t", tline, sizeof(tline));
	int t = 0, mm = 0;
	if (sscanf(tline, "%d %d", &t, &mm) != 2 || mm != m)
		return fail("no T from M", tline);
	sleep_ms(100); /* T waits in pause() */
	int keep_num[] = { 5 }, keep_fd[] = { 9 };
	struct ckpt_restore_opts ro = { .into = t, .keep_num = keep_num, .keep_fd = keep_fd, .n_keep = 1 };
	pid_t got = 0;
	if (ckpt_restore_opts(img, NULL, &ro, &got, &err) < 0)
		return fail("restore into T", err.msg);
	if (got != t)
		return fail("restored under another pid", NULL);
	put("go", "");
	for (int i = 0; i < 1000 && !exists("mstatus"); i++)
		sleep_ms(10);
	char out[128], mout[256], ms[32], want[64];
	get("out", out, sizeof(out));
	get("mout", mout, sizeof(mout));
	get("mstatus", ms, sizeof(ms));
	snprintf(want, sizeof(want), "pid=%d ppid=%d\n", t, (int)m);
	if (strcmp(out, want))
		return fail("P restored into T does not say T's pid and M as parent", out);
	if (strcmp(mout, want))
		return fail("what came through the kept fd", mout);
	int st = atoi(ms);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
		return fail("M's waitpid of T did not give exit 7", ms);
	waitpid(m, NULL, 0);
	char rm[128];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	if (system(rm) != 0)
		return fail("cleanup", dir);
	printf("ok   restored into process %d (child of %d, %s): %s", t, (int)m, nobody ? "uid 65534" : "root", want);
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("FAIL: cannot run: needs root (ptrace)\n");
		return 1;
	}
	if (run())
		return 1;
	nobody = true;  /* the deputy of a user's process */
	if (run())
		return 1;
	printf("PASS\n");
	return 0;
}
