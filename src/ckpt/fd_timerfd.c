/* fd_timerfd.c — timerfd: clock, flags, the time left, the interval and
 * the expirations not read yet, from fdinfo. At restore timerfd_create,
 * timerfd_settime (the time left counts from the restore, as if the
 * process had been frozen meanwhile; an absolute timer on CLOCK_REALTIME
 * or CLOCK_TAI keeps its deadline on that clock, the one all nodes share),
 * then TFD_IOC_SET_TICKS for the unread expirations (settime resets them). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <linux/ioctl.h>
#include <time.h>
#include "ckpt/fd-int.h"

#define NS 1000000000ull
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)  /* linux/timerfd.h, which clashes with sys/timerfd.h */
#endif

static bool timerfd_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return !strcmp(link, "anon_inode:[timerfd]");
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	if (clock_gettime(clk, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* The clocks whose time is the same on every node. */
static bool shared_clock(int clk)
{
	return clk == CLOCK_REALTIME || clk == CLOCK_TAI || clk == CLOCK_REALTIME_ALARM;
}

/* "(SEC, NSEC)" after `key` in fdinfo, in ns. */
static int parse_pair(const char *info, const char *key, uint64_t *out)
{
	const char *p = strstr(info, key);
	unsigned long long sec, nsec;
	if (!p || sscanf(p + strlen(key), " (%llu, %llu)", &sec, &nsec) != 2 || nsec >= NS || sec > UINT64_MAX / NS - 1)
		return -EPROTO;
	*out = sec * NS + nsec;
	return 0;
}

static int timerfd_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	char info[4096];
	int r = ckpt_fd_fdinfo(pid, fd, info, sizeof(info), err);
	if (r < 0)
		return r;
	const char *clk = strstr(info, "clockid:"), *ticks = strstr(info, "ticks:"), *fl = strstr(info, "settime flags:");
	if (!clk || !ticks || !fl || parse_pair(info, "it_value:", &out->value_ns) < 0 ||
	    parse_pair(info, "it_interval:", &out->interval_ns) < 0)
		return ckpt_fail(err, EPROTO, "process %d fd %d: timerfd fdinfo not understood", pid, fd);
	out->has_clockid = out->has_timer_flags = out->has_value_ns = out->has_interval_ns = out->has_ticks = true;
	out->clockid = atoi(clk + 8);
	out->ticks = strtoull(ticks + 6, NULL, 10);
	out->timer_flags = (uint32_t)strtoul(fl + 14, NULL, 8);
	if ((out->timer_flags & TFD_TIMER_ABSTIME) && out->value_ns && shared_clock(out->clockid)) {
		out->has_deadline_ns = true;
		out->deadline_ns = now_ns(out->clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : out->clockid) + out->value_ns;
	}
	return 0;
}

static int timerfd_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long t = INJ(c, fd->fd, "timerfd_create", SYS_timerfd_create, fd->clockid, 0, 0, 0, 0, 0);
	/* A periodic timer that expired and was not read since shows no time
	 * left (the kernel moves it on at the read): its next expiry is then
	 * within an interval; one interval from now. */
	uint64_t v = fd->value_ns ? fd->value_ns : fd->interval_ns;
	if (v) {
		struct itimerspec its = { .it_interval = { (time_t)(fd->interval_ns / NS), (long)(fd->interval_ns % NS) } };
		int flags = (int)(fd->timer_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET));
		if (flags & TFD_TIMER_ABSTIME) {
			/* Absolute: the saved deadline on a shared clock, else now
			 * on this node's clock plus the time that was left. */
			clockid_t clk = fd->clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME
				      : fd->clockid == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME : fd->clockid;
			v = fd->has_deadline_ns ? fd->deadline_ns : now_ns(clk) + v;
		}
		its.it_value.tv_sec = (time_t)(v / NS);
		its.it_value.tv_nsec = (long)(v % NS);
		long a = ckpt_fd_scratch(c, &its, sizeof(its), fd->fd, err);
		if (a < 0)
			return (int)a;
		INJ(c, fd->fd, "timerfd_settime", SYS_timerfd_settime, t, flags, a, 0, 0, 0);
	}
	if (fd->ticks) {
		uint64_t n = fd->ticks;
		long a = ckpt_fd_scratch(c, &n, sizeof(n), fd->fd, err);
		if (a < 0)
			return (int)a;
		INJ(c, fd->fd, "timerfd TFD_IOC_SET_TICKS", SYS_ioctl, t, TFD_IOC_SET_TICKS, a, 0, 0, 0);
	}
	return ckpt_fd_place(c, t, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_timerfd = { CKPT_FD_OPS_VERSION, "timerfd", false, timerfd_match, timerfd_dump, timerfd_restore };
