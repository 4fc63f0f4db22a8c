/* Job-control stops in a tree (issue 14 item 5): the root's children
 *   S1  stopped by SIGSTOP (two threads), the stop not collected;
 *   S2  stopped by SIGSTOP, the stop collected by waitpid(WUNTRACED);
 *   T   stopped by SIGTSTP in its own process group, not collected.
 * After restart each is still stopped; the root's waitpid(WUNTRACED)
 * reports S1 (SIGSTOP) and T (SIGTSTP) once and S2 not again, and no new
 * SIGCHLD reached the root. Continued and sent SIGUSR1, each exits 0. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/wait.h>
#include "zdtm.h"

static volatile sig_atomic_t chld;

static void on_chld(int sig) { chld++; }

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

static void *idle(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static pid_t child(bool thread, bool own_group, pid_t root)
{
	pid_t c = fork();
	if (c < 0)
		fail("fork: %s", strerror(errno));
	if (c)
		return c;
	pthread_t th;
	if (own_group)
		setpgid(0, 0);
	/* SIGUSR1 is for the main thread, which waits for it */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	if (thread && pthread_create(&th, NULL, idle, NULL))
		_exit(10);
	sigprocmask(SIG_UNBLOCK, &usr1, NULL);
	test_wait();
	_exit(getppid() == root ? 0 : 11);
}

/* Stop c with sig and wait for the stop and its SIGCHLD. */
static void stop(pid_t c, int sig)
{
	int before = chld;
	kill(c, sig);
	for (int i = 0; i < 500 && (state_of(c) != 'T' || chld == before); i++)
		usleep(10000);
	if (state_of(c) != 'T' || chld == before)
		fail("child %d did not stop with signal %d before the checkpoint", c, sig);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = on_chld, .sa_flags = SA_RESTART };
	sigaction(SIGCHLD, &sa, NULL);
	pid_t root = getpid();
	pid_t s1 = child(true, false, root), s2 = child(false, false, root), t = child(false, true, root);
	for (int i = 0; i < 500 && getpgid(t) != t; i++)
		usleep(10000);
	stop(s1, SIGSTOP);
	stop(s2, SIGSTOP);
	stop(t, SIGTSTP);
	int st;
	if (waitpid(s2, &st, WUNTRACED) != s2 || !WIFSTOPPED(st))
		fail("collecting S2's stop before the checkpoint");
	int seen = chld;
	test_ready(argv);
	test_wait();

	usleep(200000);  /* a stray SIGCHLD would be here by now */
	if (chld != seen)
		fail("%d SIGCHLD after the restart, none expected", chld - seen);
	pid_t all[3] = { s1, s2, t };
	for (int i = 0; i < 3; i++)
		if (state_of(all[i]) != 'T')
			fail("child %d is in state %c, not stopped (T)", all[i], state_of(all[i]));
	pid_t w = waitpid(s1, &st, WUNTRACED | WNOHANG);
	if (w != s1 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		fail("S1: waitpid(WUNTRACED) gave %d status %#x, not its SIGSTOP stop", w, st);
	if ((w = waitpid(s1, &st, WUNTRACED | WNOHANG)) != 0)
		fail("S1: its stop reported twice (%d, status %#x)", w, st);
	if ((w = waitpid(s2, &st, WUNTRACED | WNOHANG)) != 0)
		fail("S2: waitpid(WUNTRACED) gave %d status %#x, its stop had been collected", w, st);
	w = waitpid(t, &st, WUNTRACED | WNOHANG);
	if (w != t || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTSTP)
		fail("T: waitpid(WUNTRACED) gave %d status %#x, not its SIGTSTP stop", w, st);
	sigaction(SIGCHLD, &(struct sigaction){ .sa_handler = SIG_DFL }, NULL);
	for (int i = 0; i < 3; i++) {
		/* Back in its pause() before SIGUSR1: a restored thread stopped
		 * inside a syscall re-enters it after its stop, so a handler run
		 * at the wake-up would come before the pause (docs/checkpoint.md). */
		kill(all[i], SIGCONT);
		for (int k = 0; k < 500 && state_of(all[i]) == 'T'; k++)
			usleep(1000);
		usleep(50000);
		kill(all[i], SIGUSR1);
		if (waitpid(all[i], &st, 0) != all[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			fail("child %d ended with status %#x", all[i], st);
	}
	pass();
}
