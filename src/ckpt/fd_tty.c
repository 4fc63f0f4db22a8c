/* ckpt_fd_tty.c — terminals: pseudo-terminal slaves, /dev/tty, virtual consoles (a part of files.c, fd-int.h). */
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

/* ---- terminals: pseudo-terminal slaves (/dev/pts/N), /dev/tty, virtual
 * consoles. Dump: the path, the settings and window size, whether it is
 * the process's controlling terminal and its foreground group. Restore:
 * the same path reopened, or with --replace-tty the restorer's own
 * terminal (a shell job restarted where the user is now); a session
 * leader gets it back as its controlling terminal. ---- */

static bool tty_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	if (!S_ISCHR(st->st_mode) || link[0] != '/')
		return false;
	unsigned ma = major(st->st_rdev), mi = minor(st->st_rdev);
	return (ma >= 136 && ma <= 143) || (ma == 5 && mi == 0) || (ma == 4 && mi < 64);
}

static int tty_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->path = ckpt_strdup(link);
	int l = ckpt_fd_getfd_pid(pid, fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", pid, fd, strerror(-l));
	struct termios tio;
	struct winsize ws = { 0 };
	if (tcgetattr(l, &tio) == 0) {
		Krg__Ckpt__Termios *t = calloc(1, sizeof(*t));
		if (!t)
			abort();
		krg__ckpt__termios__init(t);
		t->iflag = tio.c_iflag, t->oflag = tio.c_oflag, t->cflag = tio.c_cflag, t->lflag = tio.c_lflag;
		t->cc.len = NCCS;
		t->cc.data = malloc(NCCS);
		if (!t->cc.data)
			abort();
		memcpy(t->cc.data, tio.c_cc, NCCS);
		t->ispeed = (uint32_t)cfgetispeed(&tio), t->ospeed = (uint32_t)cfgetospeed(&tio);
		if (ioctl(l, TIOCGWINSZ, &ws) == 0) {
			t->has_rows = t->has_cols = true;
			t->rows = ws.ws_row, t->cols = ws.ws_col;
		}
		out->termios = t;
	}
	/* Its controlling terminal: field 7 of /proc/PID/stat is the device. */
	char sp[64], buf[1024];
	snprintf(sp, sizeof(sp), "/proc/%d/stat", pid);
	const char *p;
	unsigned long long ttynr = 0;
	if (krg_read_small(sp, buf, sizeof(buf)) > 0 && (p = strrchr(buf, ')')) && sscanf(p + 2, "%*c %*d %*d %*d %llu", &ttynr) == 1 &&
	    ttynr == (unsigned long long)st->st_rdev) {
		out->has_ctty = out->ctty = true;
		pid_t fg = tcgetpgrp(l);
		if (fg > 0) {
			out->has_fg_pgid = true;
			out->fg_pgid = fg;
		}
	}
	close(l);
	return 0;
}

static int tty_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	struct ckpt_tracee *t = c->t;
	const char *path = c->app && c->app->replace_tty ? c->app->replace_tty : fd->path;
	size_t pl = strlen(path) + 1;
	if (pl > t->scratch_len || ckpt_poke(t->pid, t->scratch, path, pl) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "fd %d: cannot pass the path %s", fd->fd, path);
	int flags = ((int)fd->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY;
	long n = ckpt_syscall(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, flags, 0, 0, 0);
	if (n < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(n), "fd %d: reopening the terminal %s: %s%s", fd->fd, path, strerror(ckpt_fd_inj_errno(n)),
				 c->app && c->app->replace_tty ? "" : " (restart with --replace-tty to use yours)");
	/* Its own terminal gets its settings back; a replacement keeps the user's. */
	if (fd->termios && !(c->app && c->app->replace_tty)) {
		int l = ckpt_fd_rgetfd(c, n, fd->fd, err);
		if (l < 0)
			return l;
		struct termios tio;
		int r = tcgetattr(l, &tio);
		if (r == 0) {
			tio.c_iflag = fd->termios->iflag, tio.c_oflag = fd->termios->oflag;
			tio.c_cflag = fd->termios->cflag, tio.c_lflag = fd->termios->lflag;
			memcpy(tio.c_cc, fd->termios->cc.data, fd->termios->cc.len < NCCS ? fd->termios->cc.len : NCCS);
			cfsetispeed(&tio, fd->termios->ispeed);
			cfsetospeed(&tio, fd->termios->ospeed);
			r = tcsetattr(l, TCSANOW, &tio);
		}
		if (r == 0 && fd->termios->has_rows) {
			struct winsize ws = { .ws_row = (unsigned short)fd->termios->rows, .ws_col = (unsigned short)fd->termios->cols };
			r = ioctl(l, TIOCSWINSZ, &ws);
		}
		int e = errno;
		close(l);
		if (r < 0)
			return ckpt_fail(err, e, "fd %d: restoring the settings of %s: %s", fd->fd, path, strerror(e));
	}
	return ckpt_fd_place(c, n, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_tty = { CKPT_FD_OPS_VERSION, "tty", true, tty_match, tty_dump, tty_restore };

