/* fd_epoll.c — epoll: each registered file (an fd of the process, checked
 * with kcmp(KCMP_EPOLL_TFD) to be the very file the epoll holds), its
 * events and its data, from fdinfo. At restore, after every other fd of
 * the process is in place (files.c runs epolls last): epoll_create1 and
 * one epoll_ctl(ADD) per target. A disarmed EPOLLONESHOT entry comes back
 * disarmed; readiness is recomputed by the kernel. */
#include <errno.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ckpt/fd-int.h"

#define EPOLL_MAX_TARGETS 65536

static bool epoll_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return !strcmp(link, "anon_inode:[eventpoll]");
}

/* Is the file registered as (efd, tfd) the one open at fd tfd? */
static bool same_file(pid_t pid, int efd, int tfd)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)efd, .tfd = (uint32_t)tfd, .toff = 0 };
	return syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot) == 0;
}

static int add_target(Krg__Ckpt__Fd *out, int tfd, uint32_t events, uint64_t data)
{
	Krg__Ckpt__EpollTarget **t = realloc(out->targets, (out->n_targets + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	out->targets = t;
	Krg__Ckpt__EpollTarget *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	krg__ckpt__epoll_target__init(e);
	e->fd = tfd;
	e->events = events;
	e->data = data;
	t[out->n_targets++] = e;
	return 0;
}

static int epoll_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	static char info[1 << 20];  /* 65536 targets of ~100 bytes fit; single-threaded dump */
	int r = ckpt_fd_fdinfo(pid, fd, info, sizeof(info), err);
	if (r < 0)
		return r;
	for (const char *p = strstr(info, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		int tfd;
		unsigned events;
		unsigned long long data;
		if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3 || tfd < 0)
			return ckpt_fail(err, EPROTO, "process %d fd %d: epoll fdinfo not understood", pid, fd);
		for (size_t i = 0; i < out->n_targets; i++)
			if (out->targets[i]->fd == tfd)
				return ckpt_fail(err, ENOTSUP,
						 "process %d fd %d: epoll watches two files once open at fd %d (one closed since) is not supported",
						 pid, fd, tfd);
		if (!same_file(pid, fd, tfd))
			return ckpt_fail(err, ENOTSUP,
					 "process %d fd %d: epoll watches a file no longer open at fd %d (closed or replaced since) is not supported",
					 pid, fd, tfd);
		if (out->n_targets >= EPOLL_MAX_TARGETS)
			return ckpt_fail(err, E2BIG, "process %d fd %d: epoll watches over %d files", pid, fd, EPOLL_MAX_TARGETS);
		if (add_target(out, tfd, events, data) < 0)
			return ckpt_fail(err, ENOMEM, "process %d fd %d: out of memory", pid, fd);
	}
	return 0;
}

static int epoll_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long e = INJ(c, fd->fd, "epoll_create1", SYS_epoll_create1, 0, 0, 0, 0, 0, 0);
	for (size_t i = 0; i < fd->n_targets; i++) {
		const Krg__Ckpt__EpollTarget *t = fd->targets[i];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		long a = ckpt_fd_scratch(c, &ev, sizeof(ev), fd->fd, err);
		if (a < 0)
			return (int)a;
		long r = ckpt_syscall(c->t, err, SYS_epoll_ctl, e, EPOLL_CTL_ADD, t->fd, a, 0, 0);
		if (r < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(r), "fd %d: epoll_ctl ADD of fd %d (events %#x): %s", fd->fd, t->fd,
					 t->events, strerror(ckpt_fd_inj_errno(r)));
	}
	return ckpt_fd_place(c, e, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_epoll = { CKPT_FD_OPS_VERSION, "epoll", false, epoll_match, epoll_dump, epoll_restore };
