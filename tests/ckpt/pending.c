/* Pending signals: blocked signals queued before the checkpoint are
 * still queued after the restart, with their siginfo: process-wide
 * (kill, sigqueue twice with values) and per thread (tgkill to main,
 * pthread_sigqueue to another thread). */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include "zdtm.h"

static volatile int go_word, ready;
static char why[160];
static int got7;

static void *thr(void *arg)
{
	ready = 1;
	while (!go_word)
		syscall(SYS_futex, &go_word, FUTEX_WAIT, 0, NULL, NULL, 0);
	sigset_t w;
	sigemptyset(&w);
	sigaddset(&w, SIGRTMIN + 2);
	siginfo_t si;
	struct timespec z = { 0, 0 };
	if (sigtimedwait(&w, &si, &z) != SIGRTMIN + 2)
		snprintf(why, sizeof(why), "thread: SIGRTMIN+2 no longer pending");
	else if (si.si_code != SI_QUEUE || si.si_value.sival_int != 7)
		snprintf(why, sizeof(why), "thread: SIGRTMIN+2 code %d value %d", si.si_code, si.si_value.sival_int);
	else
		got7 = 1;
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	sigset_t b;
	sigemptyset(&b);
	sigaddset(&b, SIGUSR2);
	sigaddset(&b, SIGRTMIN + 1);
	sigaddset(&b, SIGRTMIN + 2);
	sigaddset(&b, SIGRTMIN + 4);
	pthread_sigmask(SIG_BLOCK, &b, NULL);  /* the thread inherits it */
	pthread_t th;
	if (pthread_create(&th, NULL, thr, NULL))
		fail("pthread_create");
	while (!ready)
		usleep(1000);
	pid_t me = getpid();
	kill(me, SIGUSR2);
	sigqueue(me, SIGRTMIN + 1, (union sigval){ .sival_int = 42 });
	sigqueue(me, SIGRTMIN + 1, (union sigval){ .sival_int = 43 });
	syscall(SYS_tgkill, me, (pid_t)syscall(SYS_gettid), SIGRTMIN + 4);
	if (pthread_sigqueue(th, SIGRTMIN + 2, (union sigval){ .sival_int = 7 }))
		fail("pthread_sigqueue");
	usleep(20000);
	test_ready(argv);
	test_wait();
	sigset_t p;
	sigpending(&p);
	if (!sigismember(&p, SIGUSR2) || !sigismember(&p, SIGRTMIN + 1) || !sigismember(&p, SIGRTMIN + 4))
		fail("blocked signals no longer pending (USR2 %d RTMIN+1 %d RTMIN+4 %d)", sigismember(&p, SIGUSR2), sigismember(&p, SIGRTMIN + 1),
		     sigismember(&p, SIGRTMIN + 4));
	if (sigismember(&p, SIGRTMIN + 2))
		fail("the other thread's SIGRTMIN+2 is pending in main");
	siginfo_t si;
	struct timespec z = { 0, 0 };
	sigset_t w;
	sigemptyset(&w);
	sigaddset(&w, SIGRTMIN + 1);
	for (int v = 42; v <= 43; v++) {
		if (sigtimedwait(&w, &si, &z) != SIGRTMIN + 1)
			fail("SIGRTMIN+1 #%d lost", v - 41);
		if (si.si_code != SI_QUEUE || si.si_value.sival_int != v || si.si_pid != me)
			fail("SIGRTMIN+1: code %d value %d pid %d (want %d %d %d)", si.si_code, si.si_value.sival_int, si.si_pid, SI_QUEUE, v, me);
	}
	if (sigtimedwait(&w, &si, &z) >= 0)
		fail("SIGRTMIN+1 queued a third time");
	sigemptyset(&w);
	sigaddset(&w, SIGUSR2);
	if (sigtimedwait(&w, &si, &z) != SIGUSR2 || si.si_code != SI_USER)
		fail("SIGUSR2 lost or changed (code %d)", si.si_code);
	sigemptyset(&w);
	sigaddset(&w, SIGRTMIN + 4);
	memset(&si, 0, sizeof(si));
	int s4 = sigtimedwait(&w, &si, &z);
	if (s4 != SIGRTMIN + 4 || (si.si_code != SI_TKILL && si.si_code != SI_USER)) /* glibc reports SI_TKILL as SI_USER */
		fail("SIGRTMIN+4 (tgkill to main) lost or changed (got %d, code %d)", s4, si.si_code);
	go_word = 1;
	syscall(SYS_futex, &go_word, FUTEX_WAKE, 1, NULL, NULL, 0);
	pthread_join(th, NULL);
	if (!got7)
		fail("%s", why);
	pass();
}
