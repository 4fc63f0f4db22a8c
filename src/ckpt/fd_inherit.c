/* ckpt_fd_inherit.c — standard streams that lead out of the application (a part of files.c, fd-int.h). */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/fd-int.h"
#include "lib/macro.h"

/* ---- standard streams that lead out of the application (fds 0-2 on a
 * pipe, socket or anything else whose other side is not in it: the krg
 * run stream, a shell's pipe) are inherited: at restart they are the
 * restarting krg's own fds 0-2 (its terminal or pipes; with --foreground
 * the stream; a background restart through krgd gives /dev/null), as a
 * job gets the shell's. ---- */

static bool inherit_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return false;  /* chosen by the dump, never by matching */
}

static int inherit_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	free(out->path);
	out->path = ckpt_strdup(link);
	return 0;
}

static int inherit_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (fd->fd < 0 || fd->fd > 2)
		return ckpt_fail(err, EBADMSG, "image: fd %d is inherited, which only fds 0-2 may be", fd->fd);
	long from = c->stdio[fd->fd];
	if (from < 0) {
		/* the restarter has no such fd: /dev/null */
		static const char devnull[] = "/dev/null";
		if (ckpt_poke(c->t->pid, c->t->scratch, devnull, sizeof(devnull)) < 0)
			return ckpt_fail(err, EIO, "fd %d: cannot pass /dev/null", fd->fd);
		long n = INJ(c, fd->fd, "opening /dev/null", SYS_openat, AT_FDCWD, (long)c->t->scratch, O_RDWR, 0, 0, 0);
		return ckpt_fd_place(c, n, fd, err);
	}
	INJ(c, fd->fd, "dup3 of the restarter's fd", SYS_dup3, from, fd->fd, (fd->flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
	return 0;
}

const struct ckpt_fd_ops ckpt_fd_inherit = { CKPT_FD_OPS_VERSION, "inherit", false, inherit_match, inherit_dump, inherit_restore };

/* Turn an entry into an inherited standard stream. */
void ckpt_fd_make_inherit(Krg__Ckpt__Fd *e)
{
	if (!e->path && e->has_ino) {
		char what[64];
		snprintf(what, sizeof(what), "%s:[%llu]", strcmp(e->kind, "unix") ? e->kind : "socket", (unsigned long long)e->ino);
		e->path = ckpt_strdup(what);
	}
	free(e->kind);
	e->kind = ckpt_strdup("inherit");
	free(e->data.data);
	e->data.data = NULL;
	e->data.len = 0;
	e->has_data = e->has_peer = e->has_peer_pid = e->has_pipe_size = false;
	for (size_t k = 0; k < e->n_packets; k++)
		free(e->packets[k].data);
	free(e->packets);
	e->packets = NULL;
	e->n_packets = 0;
}

