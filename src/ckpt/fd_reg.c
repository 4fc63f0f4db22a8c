/* ckpt_fd_reg.c — regular files, directories and /dev/null & co., reopened by path (a part of files.c, fd-int.h). */
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
#include "lib/fileio.h"
#include "lib/macro.h"

/* ---- regular files and directories: reopened by path ---- */

static bool reg_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	size_t l = strlen(link);
	return S_ISREG(st->st_mode) && link[0] == '/' && !(l > 10 && !strcmp(link + l - 10, " (deleted)"));
}

static bool dir_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return S_ISDIR(st->st_mode) && link[0] == '/';
}

/* /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: char major 1. */
static bool chr_mem_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	if (!S_ISCHR(st->st_mode) || major(st->st_rdev) != 1)
		return false;
	unsigned mi = minor(st->st_rdev);
	return mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9;
}

static int path_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->path = ckpt_strdup(link);
	if (S_ISREG(st->st_mode)) {
		out->has_size = true;
		out->size = (uint64_t)st->st_size;
	}
	return 0;
}

/* Open by path in the tracee, seek, and move to the right number. */
static int path_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	struct ckpt_tracee *t = c->t;
	size_t pl = strlen(fd->path) + 1;
	int r;
	if (pl > t->scratch_len || (r = ckpt_poke(t->pid, t->scratch, fd->path, pl)) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "fd %d: cannot pass the path %s", fd->fd, fd->path);
	/* A snapshot (--snapshot-files): the file gets that content back,
	 * written through an fd the process opens (with the image owner's
	 * file system credentials, like every open here). */
	if (fd->has_data && !strcmp(fd->kind, "reg")) {
		long w = ckpt_syscall(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      fd->has_mode ? fd->mode : 0600, 0, 0);
		if (w < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(w), "fd %d: putting back the content of %s: %s", fd->fd, fd->path, strerror(ckpt_fd_inj_errno(w)));
		int l = ckpt_fd_rgetfd(c, w, fd->fd, err);
		ckpt_syscall(t, err, SYS_close, w, 0, 0, 0, 0, 0);
		if (l < 0)
			return l;
		r = krg_write_all_nowait(l, fd->data.data, fd->data.len);
		close(l);
		if (r < 0)
			return ckpt_fail(err, -r, "fd %d: writing %zu bytes back into %s: %s", fd->fd, fd->data.len, fd->path, strerror(-r));
	}
	/* Flags that acted at open time only are not repeated. */
	int flags = (int)fd->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	long nfd = ckpt_syscall(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, flags, 0, 0, 0);
	if (nfd < 0)
		return ckpt_fail(err, nfd < -4095 ? EIO : (int)-nfd, "fd %d: reopening %s: %s", fd->fd, fd->path, strerror((int)-nfd));
	if (fd->has_pos && fd->pos) {
		long off = ckpt_syscall(t, err, SYS_lseek, nfd, (long)fd->pos, SEEK_SET, 0, 0, 0);
		if (off != (long)fd->pos)
			return ckpt_fail(err, EIO, "fd %d: seeking %s to %llu failed", fd->fd, fd->path, (unsigned long long)fd->pos);
	}
	if (nfd != fd->fd) {
		long ret = ckpt_syscall(t, err, SYS_dup3, nfd, fd->fd, (fd->flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
		ckpt_syscall(t, err, SYS_close, nfd, 0, 0, 0, 0, 0);
		if (ret != fd->fd)
			return ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "fd %d: dup3: %s", fd->fd, strerror(ret < 0 ? (int)-ret : EIO));
	}
	return 0;
}

const struct ckpt_fd_ops ckpt_fd_reg = { CKPT_FD_OPS_VERSION, "reg", true, reg_match, path_dump, path_restore };
const struct ckpt_fd_ops ckpt_fd_dir = { CKPT_FD_OPS_VERSION, "dir", true, dir_match, path_dump, path_restore };
const struct ckpt_fd_ops ckpt_fd_chr_mem = { CKPT_FD_OPS_VERSION, "chr-mem", true, chr_mem_match, path_dump, path_restore };

