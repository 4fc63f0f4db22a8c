/* fd_eventfd.c — eventfd: its count and EFD_SEMAPHORE from fdinfo;
 * eventfd2 + a write of the count (from krg) at restore. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ckpt/fd-int.h"

static bool eventfd_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return !strcmp(link, "anon_inode:[eventfd]");
}

static int eventfd_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	char info[4096];
	int r = ckpt_fd_fdinfo(pid, fd, info, sizeof(info), err);
	if (r < 0)
		return r;
	const char *cnt = strstr(info, "eventfd-count:"), *sem = strstr(info, "eventfd-semaphore:");
	if (!cnt)
		return ckpt_fail(err, EPROTO, "process %d fd %d: eventfd without eventfd-count in fdinfo", pid, fd);
	out->has_counter = true;
	out->counter = strtoull(cnt + 14, NULL, 16);
	/* fdinfo says since 6.5; before, a semaphore comes back as a counter. */
	out->has_semaphore = true;
	out->semaphore = sem && atoi(sem + 18) != 0;
	return 0;
}

static int eventfd_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long e = INJ(c, fd->fd, "eventfd2", SYS_eventfd2, 0, fd->semaphore ? EFD_SEMAPHORE : 0, 0, 0, 0, 0);
	if (fd->counter) {
		int l = ckpt_fd_rgetfd(c, e, fd->fd, err);
		if (l < 0)
			return l;
		uint64_t v = fd->counter;
		ssize_t n = write(l, &v, sizeof(v));
		int en = errno;
		close(l);
		if (n != sizeof(v))
			return ckpt_fail(err, n < 0 ? en : EIO, "fd %d: setting the eventfd count %llu: %s", fd->fd, (unsigned long long)v,
					 strerror(n < 0 ? en : EIO));
	}
	return ckpt_fd_place(c, e, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_eventfd = { CKPT_FD_OPS_VERSION, "eventfd", false, eventfd_match, eventfd_dump, eventfd_restore };
