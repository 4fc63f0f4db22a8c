/* POSIX timers (zdtm shape): a periodic CLOCK_MONOTONIC timer signalling
 * SIGRTMIN with a value, a one-shot CLOCK_REALTIME timer a minute away,
 * a SIGEV_NONE timer, and one aimed at a second thread (SIGEV_THREAD_ID).
 * After restart: the same timer ids answer timer_gettime, the periodic
 * one keeps firing with its value, the one-shot and SIGEV_NONE ones have
 * their time left, the thread's one reaches that thread. */
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include "zdtm.h"

static volatile sig_atomic_t ticks, bad_value, thread_hits;
static volatile pid_t thread_tid, hit_tid;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	if (si->si_value.sival_int != 123)
		bad_value = 1;
	ticks++;
}

static void on_thread(int sig, siginfo_t *si, void *uc)
{
	hit_tid = (pid_t)syscall(SYS_gettid);
	thread_hits++;
}

static void *thread(void *arg)
{
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static timer_t make(clockid_t clk, int notify, int sig, int val, pid_t tid)
{
	struct sigevent sev = { .sigev_notify = notify, .sigev_signo = sig };
	sev.sigev_value.sival_int = val;
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = tid;
	timer_t t;
	if (timer_create(clk, &sev, &t) < 0)
		fail("timer_create: %s", strerror(errno));
	return t;
}

static void arm(timer_t t, long first_ms, long every_ms)
{
	struct itimerspec its = { { every_ms / 1000, (every_ms % 1000) * 1000000 }, { first_ms / 1000, (first_ms % 1000) * 1000000 } };
	if (timer_settime(t, 0, &its, NULL) < 0)
		fail("timer_settime: %s", strerror(errno));
}

static double left(timer_t t)
{
	struct itimerspec its;
	if (timer_gettime(t, &its) < 0)
		fail("timer_gettime: %s (the timer id is gone)", strerror(errno));
	return (double)its.it_value.tv_sec + (double)its.it_value.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_sigaction = on_thread;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, thread, NULL))
		fail("pthread_create");
	while (!thread_tid)
		usleep(1000);
	timer_t periodic = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 123, 0);
	timer_t oneshot = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN, 123, 0);
	timer_t quiet = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	timer_t aimed = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 1, 0, thread_tid);
	arm(periodic, 20, 20);
	arm(oneshot, 60000, 0);
	arm(quiet, 30000, 0);
	test_ready(argv);
	test_wait();
	int before = ticks;
	arm(aimed, 10, 0);
	for (int i = 0; i < 100 && (ticks < before + 5 || !thread_hits); i++)
		usleep(10000);
	if (ticks < before + 5)
		fail("the periodic timer stopped (%d ticks in a second)", ticks - before);
	if (bad_value)
		fail("a tick came without its value");
	double l1 = left(oneshot), l2 = left(quiet);
	if (l1 <= 0 || l1 > 60)
		fail("one-shot timer: %.3f s left, not (0, 60]", l1);
	if (l2 <= 0 || l2 > 30)
		fail("SIGEV_NONE timer: %.3f s left, not (0, 30]", l2);
	if (!thread_hits || hit_tid != thread_tid)
		fail("the timer aimed at thread %d reached %d (%d hits)", thread_tid, hit_tid, thread_hits);
	pass();
}
