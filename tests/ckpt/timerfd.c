/* timerfd: a one-hour monotonic timer (non-blocking, close-on-exec), a
 * periodic one that expired once unread, a CLOCK_REALTIME absolute timer
 * two hours ahead, a disarmed one: remaining times, intervals, the
 * unread expiration and the flags come back. */
#include <errno.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <time.h>
#include "zdtm.h"

static double left(int fd, double *interval)
{
	struct itimerspec its;
	if (timerfd_gettime(fd, &its) < 0)
		fail("timerfd_gettime: %s", strerror(errno));
	if (interval)
		*interval = (double)its.it_interval.tv_sec + its.it_interval.tv_nsec / 1e9;
	return (double)its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int hour = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int wall = timerfd_create(CLOCK_REALTIME, 0);
	int off = timerfd_create(CLOCK_BOOTTIME, 0);
	if (hour < 0 || tick < 0 || wall < 0 || off < 0)
		fail("timerfd_create: %s", strerror(errno));
	struct itimerspec h = { .it_value = { 3600, 0 } };
	struct itimerspec t = { .it_interval = { 7200, 0 }, .it_value = { 0, 1000 } };  /* fires at once, then in 2 h */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec w = { .it_value = { now.tv_sec + 7200, 0 } };
	if (timerfd_settime(hour, 0, &h, NULL) < 0 || timerfd_settime(tick, 0, &t, NULL) < 0 ||
	    timerfd_settime(wall, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &w, NULL) < 0)
		fail("timerfd_settime: %s", strerror(errno));
	usleep(20000);  /* tick has expired once, unread */
	test_ready(argv);
	test_wait();
	double iv;
	if (!(fcntl(hour, F_GETFL) & O_NONBLOCK) || !(fcntl(hour, F_GETFD) & FD_CLOEXEC) || (fcntl(wall, F_GETFL) & O_NONBLOCK))
		fail("flags lost");
	double l = left(hour, &iv);
	if (l < 3000 || l > 3600 || iv != 0)
		fail("monotonic timer: %.1f s left, interval %.1f (want ~3600, 0)", l, iv);
	uint64_t n = 0;
	if (read(tick, &n, 8) != 8 || n != 1)
		fail("periodic timer: read gave %llu expirations (%s), want the 1 unread at checkpoint", (unsigned long long)n,
		     strerror(errno));
	l = left(tick, &iv);
	if (iv != 7200 || l < 6000 || l > 7200)
		fail("periodic timer: %.1f s left, interval %.1f (want ~7200, 7200)", l, iv);
	clock_gettime(CLOCK_REALTIME, &now);
	l = left(wall, NULL);
	double want = (double)(w.it_value.tv_sec - now.tv_sec) - now.tv_nsec / 1e9;
	if (l < want - 2 || l > want + 2)
		fail("realtime absolute timer: %.1f s left, want %.1f (same deadline)", l, want);
	if (left(off, &iv) != 0 || iv != 0)
		fail("disarmed timer armed");
	if (read(hour, &n, 8) != -1 || errno != EAGAIN)
		fail("one-hour timer expired already");
	pass();
}
