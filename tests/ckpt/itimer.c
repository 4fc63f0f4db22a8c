/* Interval timers: ITIMER_REAL every 10 ms keeps firing after the
 * restart; ITIMER_VIRTUAL and ITIMER_PROF keep their interval and what is
 * left of their value. SIGALRM is blocked until after the restart, so the
 * process is caught as a frozen one may be: its ITIMER_REAL expired, the
 * SIGALRM pending, the timer re-armed only once that is taken (getitimer
 * reads 0 then; it used to come back disarmed). */
#include <sys/time.h>
#include <time.h>
#include "zdtm.h"

static volatile sig_atomic_t ticks;
static void alrm(int s) { ticks++; }

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = alrm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGVTALRM, SIG_IGN);
	signal(SIGPROF, SIG_IGN);
	struct itimerval r = { { 0, 10000 }, { 0, 10000 } }, v = { { 7, 0 }, { 100, 0 } }, p = { { 0, 0 }, { 200, 0 } };
	sigset_t alrm_set;
	sigemptyset(&alrm_set);
	sigaddset(&alrm_set, SIGALRM);
	sigprocmask(SIG_BLOCK, &alrm_set, NULL);
	if (setitimer(ITIMER_REAL, &r, NULL) || setitimer(ITIMER_VIRTUAL, &v, NULL) || setitimer(ITIMER_PROF, &p, NULL))
		fail("setitimer");
	struct timespec expire = { 0, 50000000 };
	nanosleep(&expire, NULL);
	test_ready(argv);
	test_wait();
	sigprocmask(SIG_UNBLOCK, &alrm_set, NULL);
	struct itimerval g;
	getitimer(ITIMER_REAL, &g);
	if (g.it_interval.tv_sec != 0 || g.it_interval.tv_usec != 10000)
		fail("ITIMER_REAL interval %ld.%06ld", (long)g.it_interval.tv_sec, (long)g.it_interval.tv_usec);
	getitimer(ITIMER_VIRTUAL, &g);
	if (g.it_interval.tv_sec != 7 || g.it_interval.tv_usec || !(g.it_value.tv_sec || g.it_value.tv_usec) || g.it_value.tv_sec > 100)
		fail("ITIMER_VIRTUAL %ld.%06ld / %ld.%06ld", (long)g.it_interval.tv_sec, (long)g.it_interval.tv_usec, (long)g.it_value.tv_sec,
		     (long)g.it_value.tv_usec);
	getitimer(ITIMER_PROF, &g);
	if (g.it_interval.tv_sec || g.it_interval.tv_usec || !(g.it_value.tv_sec || g.it_value.tv_usec) || g.it_value.tv_sec > 200)
		fail("ITIMER_PROF %ld.%06ld / %ld.%06ld", (long)g.it_interval.tv_sec, (long)g.it_interval.tv_usec, (long)g.it_value.tv_sec,
		     (long)g.it_value.tv_usec);
	int t0 = ticks;
	for (int i = 0; i < 300 && ticks < t0 + 5; i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	if (ticks < t0 + 5)
		fail("ITIMER_REAL stopped firing (%d ticks in 3 s)", ticks - t0);
	pass();
}
