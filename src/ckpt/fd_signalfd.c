/* fd_signalfd.c — signalfd: the signals it takes, from fdinfo's sigmask;
 * signalfd4 with that mask at restore. The signals themselves are pending
 * on the process or its threads, which the image carries already. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "ckpt/fd-int.h"

static bool signalfd_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return !strcmp(link, "anon_inode:[signalfd]");
}

static int signalfd_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	char info[4096];
	int r = ckpt_fd_fdinfo(pid, fd, info, sizeof(info), err);
	if (r < 0)
		return r;
	const char *m = strstr(info, "sigmask:");
	char *end;
	if (!m)
		return ckpt_fail(err, EPROTO, "process %d fd %d: signalfd without sigmask in fdinfo", pid, fd);
	out->sigmask = strtoull(m + 8, &end, 16);
	if (end == m + 8)
		return ckpt_fail(err, EPROTO, "process %d fd %d: signalfd sigmask not understood", pid, fd);
	out->has_sigmask = true;
	return 0;
}

static int signalfd_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	uint64_t mask = fd->sigmask;
	long a = ckpt_fd_scratch(c, &mask, sizeof(mask), fd->fd, err);
	if (a < 0)
		return (int)a;
	long s = INJ(c, fd->fd, "signalfd4", SYS_signalfd4, -1, a, sizeof(mask), 0, 0, 0);
	return ckpt_fd_place(c, s, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_signalfd = { CKPT_FD_OPS_VERSION, "signalfd", false, signalfd_match, signalfd_dump, signalfd_restore };
