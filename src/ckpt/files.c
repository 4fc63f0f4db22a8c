/* files.c — file descriptors (files-<pid>.img). Each kind of fd is a
 * struct ckpt_fd_ops in fd_kinds[]; an fd no kind claims is refused with
 * a line naming the process, the fd and what it is, or dropped with
 * --ignore-unsupported (then it is simply absent, i.e. closed, after
 * restart). Kinds now: regular files, directories, /dev/null & co.,
 * pipes and FIFOs with their unread bytes, eventfd, deleted-but-open
 * files and memfd (content saved), unix socketpairs with data queued.
 *
 * Contents (pipe data, ...) are read from krg itself through a duplicate
 * of the target's fd (pidfd_getfd, 5.6+), without consuming anything
 * (tee into a pipe of our own). At restore the object is created in the
 * tracee by an injected syscall, filled from krg through pidfd_getfd of
 * the new fd, and moved to its number. */
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

static void free_locks(Krg__Ckpt__Fd *e)
{
	for (size_t i = 0; i < e->n_locks; i++)
		free(e->locks[i]);
	free(e->locks);
}


/* A duplicate of fd `fd` of process `pid` in krg (close-on-exec), or -errno. */
int ckpt_fd_getfd_pid(pid_t pid, int fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* A thread that is not its group's leader (the dump works through
	 * one when the leader has exited): PIDFD_THREAD (6.9). */
	if (pfd < 0 && errno == EINVAL)
		pfd = (int)syscall(SYS_pidfd_open, pid, O_EXCL);
	if (pfd < 0)
		return -errno;
	int l = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	int e = errno;
	close(pfd);
	return l < 0 ? -e : l;
}

int ckpt_fd_inj_errno(long ret)
{
	return ret < -4095 ? EIO : (int)-ret;
}


/* The tracee's fd `tfd`, duplicated into krg. */
int ckpt_fd_rgetfd(struct ckpt_fd_rctx *c, long tfd, int fdnum, struct ckpt_error *err)
{
	int l = (int)syscall(SYS_pidfd_getfd, c->pidfd, (int)tfd, 0);
	if (l < 0)
		return ckpt_fail(err, errno, "fd %d: pidfd_getfd: %s", fdnum, strerror(errno));
	return l;
}

static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Move a new object's fd `tmp` to fd->fd, with its close-on-exec and
 * status flags (O_NONBLOCK, O_APPEND). */
int ckpt_fd_place(struct ckpt_fd_rctx *c, long tmp, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	bool cl = fd->flags & O_CLOEXEC;
	if (tmp == fd->fd)
		INJ(c, fd->fd, "fcntl F_SETFD", SYS_fcntl, tmp, F_SETFD, cl ? FD_CLOEXEC : 0, 0, 0, 0);
	else {
		long r = ckpt_syscall(c->t, err, SYS_dup3, tmp, fd->fd, cl ? O_CLOEXEC : 0, 0, 0, 0);
		ckpt_syscall(c->t, err, SYS_close, tmp, 0, 0, 0, 0, 0);
		if (r != fd->fd)
			return ckpt_fail(err, r < 0 ? ckpt_fd_inj_errno(r) : EIO, "fd %d: dup3: %s", fd->fd, strerror(r < 0 ? ckpt_fd_inj_errno(r) : EIO));
	}
	INJ(c, fd->fd, "fcntl F_SETFL", SYS_fcntl, fd->fd, F_SETFL, fd->flags & (O_NONBLOCK | O_APPEND), 0, 0, 0);
	return 0;
}

int ckpt_fd_fdinfo(pid_t pid, int fd, char *buf, size_t len, struct ckpt_error *err)
{
	char p[96];
	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", pid, fd);
	ssize_t r = krg_read_small(p, buf, len);
	if (r < 0)
		return ckpt_fail(err, (int)-r, "process %d fd %d: reading fdinfo: %s", pid, fd, strerror((int)-r));
	return 0;
}

long ckpt_fd_scratch(struct ckpt_fd_rctx *c, const void *buf, size_t len, int fdnum, struct ckpt_error *err)
{
	int r = len > c->t->scratch_len ? -E2BIG : ckpt_poke(c->t->pid, c->t->scratch, buf, len);
	if (r < 0)
		return ckpt_fail(err, -r, "fd %d: writing %zu bytes of arguments into the process: %s", fdnum, len, strerror(-r));
	return (long)c->t->scratch;
}

/* Both ends of a new pair (a for fa, b for fb) to their numbers, without
 * one landing on the other's target first. */
static int place_pair(struct ckpt_fd_rctx *c, long a, const Krg__Ckpt__Fd *fa, long b, const Krg__Ckpt__Fd *fb, struct ckpt_error *err)
{
	if (a == fb->fd) {
		long n = INJ(c, fa->fd, "fcntl F_DUPFD", SYS_fcntl, a, F_DUPFD, 0, 0, 0, 0);
		ckpt_syscall(c->t, err, SYS_close, a, 0, 0, 0, 0, 0);
		a = n;
	}
	if (b == fa->fd) {
		long n = INJ(c, fb->fd, "fcntl F_DUPFD", SYS_fcntl, b, F_DUPFD, 0, 0, 0, 0);
		ckpt_syscall(c->t, err, SYS_close, b, 0, 0, 0, 0, 0);
		b = n;
	}
	int r = ckpt_fd_place(c, a, fa, err);
	return r < 0 ? r : ckpt_fd_place(c, b, fb, err);
}

/* Process `pid` of the application: its index in app, or -1. */
static ssize_t app_index(const struct ckpt_app_fds *app, int32_t pid)
{
	for (size_t k = 0; k < app->n; k++)
		if (app->files[k]->pid == pid)
			return (ssize_t)k;
	return -1;
}

/* Fd `fdnum` of the already restored process k, copied into the tracee
 * (pidfd_open + pidfd_getfd run by the tracee itself) and moved to
 * fd->fd: the same open file description, as after a fork. */
static int take_from(struct ckpt_fd_rctx *c, size_t k, int fdnum, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long pfd = ckpt_syscall(c->t, err, SYS_pidfd_open, c->app->inner[k], 0, 0, 0, 0, 0);
	if (pfd < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(pfd), "fd %d: pidfd_open of process %d: %s", fd->fd, c->app->files[k]->pid, strerror(ckpt_fd_inj_errno(pfd)));
	long tmp = ckpt_syscall(c->t, err, SYS_pidfd_getfd, pfd, fdnum, 0, 0, 0, 0);
	ckpt_syscall(c->t, err, SYS_close, pfd, 0, 0, 0, 0, 0);
	if (tmp < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(tmp), "fd %d: taking fd %d of process %d: %s", fd->fd, fdnum, c->app->files[k]->pid,
				 strerror(ckpt_fd_inj_errno(tmp)));
	return ckpt_fd_place(c, tmp, fd, err);
}

/* The other end of a new pipe/socketpair belongs to process peer_pid,
 * restored later: keep it here, above every fd of this image, until that
 * process takes it; closed when everything is restored. */
static int park(struct ckpt_fd_rctx *c, long tmp, int32_t for_pid, int32_t for_fd, struct ckpt_error *err)
{
	long n = ckpt_syscall(c->t, err, SYS_fcntl, tmp, F_DUPFD_CLOEXEC, c->park_base, 0, 0, 0);
	ckpt_syscall(c->t, err, SYS_close, tmp, 0, 0, 0, 0, 0);
	if (n < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(n), "keeping an end for process %d fd %d: %s", for_pid, for_fd, strerror(ckpt_fd_inj_errno(n)));
	struct ckpt_app_fds *a = c->app;
	struct ckpt_parked *np = realloc(a->parked, (a->n_parked + 1) * sizeof(*np));
	if (!np)
		abort();
	a->parked = np;
	a->parked[a->n_parked++] = (struct ckpt_parked){ .owner = c->idx, .for_pid = for_pid, .for_fd = for_fd, .fd = (int)n };
	return 0;
}

/* The end parked for this entry by the process that made the object. */
static int take_parked(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	int32_t self = c->f->pid;
	for (size_t i = 0; i < c->app->n_parked; i++) {
		const struct ckpt_parked *p = &c->app->parked[i];
		if (p->for_pid == self && p->for_fd == fd->fd)
			return take_from(c, p->owner, p->fd, fd, err);
	}
	return ckpt_fail(err, EBADMSG, "image: fd %d: its other end in process %d left nothing for it", fd->fd, fd->peer_pid);
}

/* The other end of fd when it lives in another process (NULL if none),
 * and whether that process is restored already (then it made the object). */
static const Krg__Ckpt__Fd *remote_peer(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, bool *made)
{
	*made = false;
	if (!fd->has_peer_pid || !c->app)
		return NULL;
	ssize_t k = app_index(c->app, fd->peer_pid);
	if (k < 0)
		return NULL;
	*made = (size_t)k < c->idx;
	const Krg__Ckpt__Files *pf = c->app->files[k];
	for (size_t i = 0; i < pf->n_fds; i++)
		if (pf->fds[i]->fd == fd->peer && !pf->fds[i]->has_dup_of)
			return pf->fds[i];
	return NULL;
}

/* The non-dup entry for fd number n, or NULL. */
static const Krg__Ckpt__Fd *entry_of(const Krg__Ckpt__Files *f, int n, size_t *idx)
{
	for (size_t i = 0; i < f->n_fds; i++)
		if (f->fds[i]->fd == n && !f->fds[i]->has_dup_of) {
			if (idx)
				*idx = i;
			return f->fds[i];
		}
	return NULL;
}

/* An fd that only the linking pass finds unsupported: a line, as for the
 * others, or (--ignore-unsupported) dropped. */
struct link_state {
	pid_t pid;
	bool ignore;
	int *refused;
	bool *drop;
	bool in_app;  /* other ends may be in other processes: ckpt_files_link_app decides */
};

/* A refused fd, for the callers that act on it (ckpt.h). */
static void note_refusal(struct ckpt_error *err, pid_t pid, int fd, enum ckpt_refusal_reason why)
{
	if (err->n_refused < CKPT_MAX_REFUSALS)
		err->refused[err->n_refused++] = (struct ckpt_refusal){ .pid = pid, .fd = fd, .reason = why };
	else
		err->refused_more++;
}

static void __attribute__((format(printf, 6, 7))) refuse(struct link_state *ls, size_t i, int fd, enum ckpt_refusal_reason why,
							  struct ckpt_error *err, const char *fmt, ...)
{
	if (ls->ignore) {
		ls->drop[i] = true;
		return;
	}
	if (!(*ls->refused)++) {
		err->msg[0] = 0;
		err->n_refused = err->refused_more = 0;
	}
	note_refusal(err, ls->pid, fd, why);
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ckpt_fail_append(err, "%s", line);
}

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
		r = write_all(l, fd->data.data, fd->data.len);
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

static const struct ckpt_fd_ops fd_reg = { CKPT_FD_OPS_VERSION, "reg", true, reg_match, path_dump, path_restore };
static const struct ckpt_fd_ops fd_dir = { CKPT_FD_OPS_VERSION, "dir", true, dir_match, path_dump, path_restore };
static const struct ckpt_fd_ops fd_chr_mem = { CKPT_FD_OPS_VERSION, "chr-mem", true, chr_mem_match, path_dump, path_restore };

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

static const struct ckpt_fd_ops fd_tty = { CKPT_FD_OPS_VERSION, "tty", true, tty_match, tty_dump, tty_restore };

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

static const struct ckpt_fd_ops fd_inherit = { CKPT_FD_OPS_VERSION, "inherit", false, inherit_match, inherit_dump, inherit_restore };

/* Turn an entry into an inherited standard stream. */
static void make_inherit(Krg__Ckpt__Fd *e)
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

/* ---- pipes and FIFOs ----
 * Dump: each end is an entry with the pipe's inode; the linking pass
 * (link_pipes) pairs the two ends of a pipe (peer) and saves the unread
 * bytes on the reading end. A pipe whose other end is held by another
 * process is refused for now (process trees); one whose other end is
 * closed comes back so (a reader gets the data, then EOF).
 * Restore: pipe2 in the tracee, data written from krg into the new write
 * end, both ends to their numbers; a FIFO is reopened by path (O_RDWR
 * first, so no open blocks), its data written through that. */

static bool pipe_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return S_ISFIFO(st->st_mode) && !strncmp(link, "pipe:[", 6);
}

static bool fifo_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return S_ISFIFO(st->st_mode) && link[0] == '/' && !strstr(link, " (deleted)");
}

static int pipe_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->has_ino = true;
	out->ino = st->st_ino;
	if (link[0] == '/')
		out->path = ckpt_strdup(link);
	return 0;
}

/* Unread bytes of the pipe `src` (a reading fd) into out, not consumed. */
static int pipe_peek(int src, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	int sz = fcntl(src, F_GETPIPE_SZ), queued = 0;
	if (sz < 0 || ioctl(src, FIONREAD, &queued) < 0)
		return ckpt_fail(err, errno, "fd %d: pipe size: %s", out->fd, strerror(errno));
	out->has_pipe_size = true;
	out->pipe_size = (uint32_t)sz;
	if (!queued)
		return 0;
	int tp[2];
	if (pipe2(tp, O_CLOEXEC | O_NONBLOCK) < 0)
		return ckpt_fail(err, errno, "pipe2: %s", strerror(errno));
	int r = 0;
	uint8_t *buf = malloc((size_t)queued);
	if (!buf)
		abort();
	if (fcntl(tp[1], F_SETPIPE_SZ, sz) < 0) {
		r = ckpt_fail(err, errno, "fd %d: sizing a pipe to %d bytes: %s", out->fd, sz, strerror(errno));
		goto out;
	}
	ssize_t n = tee(src, tp[1], (size_t)queued, SPLICE_F_NONBLOCK);
	if (n != queued) {
		r = ckpt_fail(err, n < 0 ? errno : EIO, "fd %d: copying %d unread bytes out of the pipe: %s", out->fd, queued,
			      n < 0 ? strerror(errno) : "short tee");
		goto out;
	}
	if (read(tp[0], buf, (size_t)queued) != queued) {
		r = ckpt_fail(err, EIO, "fd %d: reading back the pipe's bytes", out->fd);
		goto out;
	}
	out->has_data = true;
	out->data.data = buf;
	out->data.len = (size_t)queued;
	buf = NULL;
out:
	free(buf);
	close(tp[0]);
	close(tp[1]);
	return r;
}

/* A process other than those in skip[] holding pipe:[ino] (its pid), or 0. */
static pid_t pipe_holder(const pid_t *skip, size_t nskip, uint64_t ino)
{
	char want[64];
	snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)ino);
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		pid_t p = atoi(de->d_name);
		bool skipped = false;
		for (size_t k = 0; k < nskip && !skipped; k++)
			skipped = skip[k] == p;
		if (p <= 0 || skipped)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd", p);
		DIR *fd = opendir(path);
		if (!fd)
			continue;
		struct dirent *fe;
		while ((fe = readdir(fd))) {
			char lp[128], l[64];
			snprintf(lp, sizeof(lp), "/proc/%d/fd/%s", p, fe->d_name);
			ssize_t n = readlink(lp, l, sizeof(l) - 1);
			if (n > 0 && (l[n] = 0, !strcmp(l, want))) {
				found = p;
				break;
			}
		}
		closedir(fd);
	}
	closedir(d);
	return found;
}

static int pipe_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	bool made = false;
	const Krg__Ckpt__Fd *remote = remote_peer(c, fd, &made);
	if (made)
		return take_parked(c, fd, err);
	INJ(c, fd->fd, "pipe2", SYS_pipe2, (long)c->t->scratch, 0, 0, 0, 0, 0);
	int p[2];
	if (ckpt_peek(c->t->pid, c->t->scratch, p, sizeof(p)) < 0)
		return ckpt_fail(err, EIO, "fd %d: reading pipe2's answer", fd->fd);
	size_t pi = 0;
	const Krg__Ckpt__Fd *peer = remote ? remote : fd->has_peer ? entry_of(c->f, fd->peer, &pi) : NULL;
	bool reader = (fd->flags & O_ACCMODE) == O_RDONLY;
	const Krg__Ckpt__Fd *rd = reader ? fd : peer, *wr = reader ? peer : fd;
	/* The data goes in through the write end, from krg. */
	const Krg__Ckpt__Fd *holder = rd && (rd->has_data || rd->has_pipe_size) ? rd : fd;
	if (holder->has_pipe_size || holder->has_data) {
		int l = ckpt_fd_rgetfd(c, p[1], fd->fd, err);
		if (l < 0)
			return l;
		int r = 0;
		if (holder->has_pipe_size && fcntl(l, F_SETPIPE_SZ, holder->pipe_size) < 0)
			r = ckpt_fail(err, errno, "fd %d: F_SETPIPE_SZ %u: %s", fd->fd, holder->pipe_size, strerror(errno));
		else if (holder->has_data && (r = write_all(l, holder->data.data, holder->data.len)) < 0)
			r = ckpt_fail(err, -r, "fd %d: refilling %zu bytes: %s", fd->fd, holder->data.len, strerror(-r));
		close(l);
		if (r < 0)
			return r;
	}
	if (!peer) {
		ckpt_syscall(c->t, err, SYS_close, reader ? p[1] : p[0], 0, 0, 0, 0, 0);
		return ckpt_fd_place(c, reader ? p[0] : p[1], fd, err);
	}
	if (remote) {
		int r = park(c, reader ? p[1] : p[0], fd->peer_pid, fd->peer, err);
		return r < 0 ? r : ckpt_fd_place(c, reader ? p[0] : p[1], fd, err);
	}
	c->done[pi] = true;
	return place_pair(c, p[0], rd, p[1], wr, err);
}

/* The pipe behind `l` (a FIFO reopened by path) already holds exactly
 * these unread bytes: the FIFO outlived the process, its data with it (a
 * live migration between nodes of one kernel, where the frozen original
 * still holds it; a process outside the application holding it open).
 * Filling it again would double the data (or, full, fail with EAGAIN). */
static bool pipe_holds(int l, const uint8_t *data, size_t len)
{
	int queued = 0;
	if (ioctl(l, FIONREAD, &queued) < 0 || (size_t)queued != len)
		return false;
	int tp[2];
	if (pipe2(tp, O_CLOEXEC | O_NONBLOCK) < 0)
		return false;
	bool same = false;
	uint8_t *buf = malloc(len);
	int sz = fcntl(l, F_GETPIPE_SZ);
	if (buf && sz > 0 && fcntl(tp[1], F_SETPIPE_SZ, sz) >= 0 && tee(l, tp[1], len, SPLICE_F_NONBLOCK) == (ssize_t)len &&
	    read(tp[0], buf, len) == (ssize_t)len)
		same = !memcmp(buf, data, len);
	free(buf);
	close(tp[0]);
	close(tp[1]);
	return same;
}

static int fifo_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	size_t pl = strlen(fd->path) + 1;
	if (pl > c->t->scratch_len || ckpt_poke(c->t->pid, c->t->scratch, fd->path, pl) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "fd %d: cannot pass the path %s", fd->fd, fd->path);
	/* O_RDWR on a FIFO never waits for a partner; it holds the pipe while
	 * the real end opens without blocking. */
	long h = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, (long)c->t->scratch, O_RDWR | O_NONBLOCK, 0, 0, 0);
	if (h < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(h), "fd %d: reopening the FIFO %s: %s", fd->fd, fd->path, strerror(ckpt_fd_inj_errno(h)));
	int flags = ((int)fd->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)) | O_NONBLOCK;
	long n = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, (long)c->t->scratch, flags, 0, 0, 0);
	int r = 0;
	if (n < 0)
		r = ckpt_fail(err, ckpt_fd_inj_errno(n), "fd %d: reopening the FIFO %s: %s", fd->fd, fd->path, strerror(ckpt_fd_inj_errno(n)));
	else if (fd->has_data || fd->has_pipe_size) {
		int l = ckpt_fd_rgetfd(c, h, fd->fd, err);
		if ((r = l) >= 0) {
			r = 0;
			if (fd->has_data && fd->data.len && pipe_holds(l, fd->data.data, fd->data.len))
				;  /* the same pipe, still there: nothing to put back */
			else if (fd->has_pipe_size && fcntl(l, F_SETPIPE_SZ, fd->pipe_size) < 0)
				r = ckpt_fail(err, errno, "fd %d: F_SETPIPE_SZ %u: %s", fd->fd, fd->pipe_size, strerror(errno));
			else if (fd->has_data && (r = write_all(l, fd->data.data, fd->data.len)) < 0)
				r = ckpt_fail(err, -r, "fd %d: refilling %zu bytes: %s", fd->fd, fd->data.len, strerror(-r));
			close(l);
		}
	}
	ckpt_syscall(c->t, err, SYS_close, h, 0, 0, 0, 0, 0);
	return r < 0 ? r : ckpt_fd_place(c, n, fd, err);
}

static const struct ckpt_fd_ops fd_pipe = { CKPT_FD_OPS_VERSION, "pipe", false, pipe_match, pipe_dump, pipe_restore };
static const struct ckpt_fd_ops fd_fifo = { CKPT_FD_OPS_VERSION, "fifo", true, fifo_match, pipe_dump, fifo_restore };

/* ---- files without a name: deleted-but-open regular files and memfd.
 * Their content goes into the image (up to CKPT_FILE_MAX); restore makes
 * an unlinked file again (O_TMPFILE in the old directory; memfd_create
 * with the same name and seals), fills it from krg, reopens it through
 * /proc/self/fd if it was not open read-write, seeks. ---- */

#define CKPT_FILE_MAX (256UL << 20)
#define DELETED " (deleted)"

static bool memfd_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	size_t l = strlen(link);
	return S_ISREG(st->st_mode) && !strncmp(link, "/memfd:", 7) && l > 17 && !strcmp(link + l - 10, DELETED);
}

/* Deleted, and no other name left (else the content is shared with a file we would not restore). */
static bool deleted_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	size_t l = strlen(link);
	return S_ISREG(st->st_mode) && link[0] == '/' && l > 10 && !strcmp(link + l - 10, DELETED) && st->st_nlink == 0 &&
	       !memfd_match(pid, fd, st, link);
}

static int content_dump(pid_t pid, int fd, const struct stat *st, Krg__Ckpt__Fd *out, int *lfd, struct ckpt_error *err)
{
	if ((uint64_t)st->st_size > CKPT_FILE_MAX)
		return ckpt_fail(err, EFBIG, "process %d fd %d: %s holds %lld bytes, more than krg saves (%lu MiB)", pid, fd, out->path,
				 (long long)st->st_size, CKPT_FILE_MAX >> 20);
	int l = ckpt_fd_getfd_pid(pid, fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", pid, fd, strerror(-l));
	/* A write-only open cannot be read through (EBADF). The magic link
	 * /proc/PID/fd/N opens the same inode again, deleted or not, for
	 * reading (as root); the content and the seals are the inode's. */
	int acc = fcntl(l, F_GETFL);
	if (acc >= 0 && (acc & O_ACCMODE) == O_WRONLY) {
		close(l);
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/fd/%d", pid, fd);
		l = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (l < 0)
			return ckpt_fail(err, errno, "process %d fd %d: opening the write-only %s again to read it: %s", pid, fd, out->path,
					 strerror(errno));
	}
	out->has_data = true;
	out->data.len = (size_t)st->st_size;
	out->data.data = malloc(out->data.len + 1);
	if (!out->data.data)
		abort();
	for (size_t done = 0; done < out->data.len;) {
		ssize_t n = pread(l, out->data.data + done, out->data.len - done, (off_t)done);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(l);
			return ckpt_fail(err, e, "process %d fd %d: reading %s: %s", pid, fd, out->path, strerror(e));
		}
		done += (size_t)n;
	}
	out->has_mode = true;
	out->mode = st->st_mode & 07777;
	out->has_uid = out->has_gid = true;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	*lfd = l;
	return 0;
}

/* The content of a regular file the process has open, maybe write-only:
 * read through a new read-only open of /proc/PID/fd/N. */
static int snapshot_dump(pid_t pid, int fd, const struct stat *st, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	if ((uint64_t)st->st_size > CKPT_FILE_MAX)
		return ckpt_fail(err, EFBIG, "process %d fd %d: %s holds %lld bytes, more than krg saves (%lu MiB)", pid, fd, out->path,
				 (long long)st->st_size, CKPT_FILE_MAX >> 20);
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd/%d", pid, fd);
	_cleanup_close_ int l = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (l < 0)
		return ckpt_fail(err, errno, "process %d fd %d: opening %s to save it: %s", pid, fd, out->path, strerror(errno));
	out->has_data = true;
	out->data.len = (size_t)st->st_size;
	out->data.data = malloc(out->data.len + 1);
	if (!out->data.data)
		abort();
	for (size_t done = 0; done < out->data.len;) {
		ssize_t n = pread(l, out->data.data + done, out->data.len - done, (off_t)done);
		if (n <= 0)
			return ckpt_fail(err, n < 0 ? errno : EIO, "process %d fd %d: reading %s: %s", pid, fd, out->path, n < 0 ? strerror(errno) : "it shrank");
		done += (size_t)n;
	}
	out->has_mode = true;
	out->mode = st->st_mode & 07777;
	return 0;
}

static int deleted_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->has_ino = true;
	out->ino = st->st_ino;
	out->path = ckpt_strdup(link);
	out->path[strlen(link) - 10] = 0;
	int l, r = content_dump(pid, fd, st, out, &l, err);
	if (r == 0)
		close(l);
	return r;
}

static int memfd_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->has_ino = true;
	out->ino = st->st_ino;
	out->path = ckpt_strdup(link);
	out->path[strlen(link) - 10] = 0;
	int l, r = content_dump(pid, fd, st, out, &l, err);
	if (r < 0)
		return r;
	int seals = fcntl(l, F_GET_SEALS);
	close(l);
	if (seals < 0)
		return ckpt_fail(err, errno, "process %d fd %d: F_GET_SEALS: %s", pid, fd, strerror(errno));
	out->has_seals = true;
	out->seals = (uint32_t)seals;
	return 0;
}

/* Fill the tracee's new file `tfd` with the saved content; seals after. */
static int content_fill(struct ckpt_fd_rctx *c, long tfd, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	int l = ckpt_fd_rgetfd(c, tfd, fd->fd, err);
	if (l < 0)
		return l;
	int r = 0;
	if (ftruncate(l, (off_t)fd->data.len) < 0)
		r = ckpt_fail(err, errno, "fd %d: ftruncate: %s", fd->fd, strerror(errno));
	for (size_t done = 0; !r && done < fd->data.len;) {
		ssize_t n = pwrite(l, fd->data.data + done, fd->data.len - done, (off_t)done);
		if (n <= 0)
			r = ckpt_fail(err, n < 0 ? errno : EIO, "fd %d: writing the content back: %s", fd->fd, strerror(n < 0 ? errno : EIO));
		else
			done += (size_t)n;
	}
	if (!r && fd->has_seals && fd->seals && fcntl(l, F_ADD_SEALS, fd->seals) < 0)
		r = ckpt_fail(err, errno, "fd %d: F_ADD_SEALS %#x: %s", fd->fd, fd->seals, strerror(errno));
	close(l);
	return r;
}

/* The recreated file's owner and mode as saved. The tracee makes the
 * file with the restore's fsuid/fsgid and umask (a memfd is always 0777);
 * fchown first, as it clears set-id bits, then fchmod. The kernel decides
 * whether the owner may be given: without CAP_CHOWN (an image of a
 * non-root user is restored with that user's fsuid) a file of another
 * user cannot be made again, and the restore says so rather than hand
 * the process a file it would see as its restorer's. */
static int content_owner(struct ckpt_fd_rctx *c, long tfd, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (fd->has_uid && fd->has_gid) {
		long r = ckpt_syscall(c->t, err, SYS_fchown, tfd, fd->uid, fd->gid, 0, 0, 0);
		if (r < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(r), "fd %d: %s: giving it back its owner %u:%u (fchown): %s", fd->fd, fd->path, fd->uid,
					 fd->gid, strerror(ckpt_fd_inj_errno(r)));
	}
	if (fd->has_mode)
		INJ(c, fd->fd, "fchmod", SYS_fchmod, tfd, fd->mode, 0, 0, 0, 0);
	return 0;
}

/* Same file, opened as the image says (mode, O_APPEND), at its offset,
 * at its number; `keep`: tfd is another entry's and stays. */
static int content_finish(struct ckpt_fd_rctx *c, long tfd, const Krg__Ckpt__Fd *fd, bool keep, struct ckpt_error *err)
{
	if ((fd->flags & O_ACCMODE) != O_RDWR || keep) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%ld", tfd);
		if (ckpt_poke(c->t->pid, c->t->scratch, p, strlen(p) + 1) < 0)
			return ckpt_fail(err, EIO, "fd %d: writing to the helper page", fd->fd);
		int flags = (int)fd->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
		long n = INJ(c, fd->fd, "reopening through /proc/self/fd", SYS_openat, AT_FDCWD, (long)c->t->scratch, flags, 0, 0, 0);
		if (!keep)
			ckpt_syscall(c->t, err, SYS_close, tfd, 0, 0, 0, 0, 0);
		tfd = n;
	}
	if (fd->has_pos && fd->pos)
		INJ(c, fd->fd, "lseek", SYS_lseek, tfd, (long)fd->pos, SEEK_SET, 0, 0, 0);
	return ckpt_fd_place(c, tfd, fd, err);
}

/* A second open (not a dup) of a file restored at an earlier entry. */
static const Krg__Ckpt__Fd *same_file_before(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd)
{
	for (size_t i = 0; i < c->f->n_fds && c->f->fds[i] != fd; i++) {
		const Krg__Ckpt__Fd *g = c->f->fds[i];
		if (!g->has_dup_of && g->has_ino && fd->has_ino && g->ino == fd->ino && !strcmp(g->kind, fd->kind))
			return g;
	}
	return NULL;
}

static int deleted_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	const Krg__Ckpt__Fd *first = same_file_before(c, fd);
	if (first)
		return content_finish(c, first->fd, fd, true, err);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", fd->path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	size_t dl = strlen(dir) + 1;
	if (dl > c->t->scratch_len || ckpt_poke(c->t->pid, c->t->scratch, dir, dl) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "fd %d: cannot pass the path %s", fd->fd, dir);
	long t = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, (long)c->t->scratch, O_TMPFILE | O_RDWR, fd->has_mode ? fd->mode : 0600, 0, 0);
	if (t < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(t), "fd %d: recreating the deleted file %s (O_TMPFILE in %s): %s", fd->fd, fd->path, dir,
				 strerror(ckpt_fd_inj_errno(t)));
	int r = content_owner(c, t, fd, err);
	if (r == 0)
		r = content_fill(c, t, fd, err);
	return r < 0 ? r : content_finish(c, t, fd, false, err);
}

static int memfd_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	const char *name = fd->path + 7;  /* after "/memfd:" */
	size_t nl = strlen(name) + 1;
	if (strncmp(fd->path, "/memfd:", 7) || nl > 250 || ckpt_poke(c->t->pid, c->t->scratch, name, nl) < 0)
		return ckpt_fail(err, EINVAL, "fd %d: bad memfd name %s", fd->fd, fd->path);
	const Krg__Ckpt__Fd *first = same_file_before(c, fd);
	if (first)
		return content_finish(c, first->fd, fd, true, err);
	long m = INJ(c, fd->fd, "memfd_create", SYS_memfd_create, (long)c->t->scratch, MFD_ALLOW_SEALING, 0, 0, 0, 0);
	int r = content_owner(c, m, fd, err);
	if (r == 0)
		r = content_fill(c, m, fd, err);
	return r < 0 ? r : content_finish(c, m, fd, false, err);
}

static const struct ckpt_fd_ops fd_deleted = { CKPT_FD_OPS_VERSION, "deleted", true, deleted_match, deleted_dump, deleted_restore };
static const struct ckpt_fd_ops fd_memfd = { CKPT_FD_OPS_VERSION, "memfd", true, memfd_match, memfd_dump, memfd_restore };

/* ---- unix socketpairs (SOCK_STREAM, SOCK_DGRAM), both ends in the
 * process: unnamed, not listening. The peer comes from sock_diag
 * (UNIX_DIAG_PEER); what is queued at each end is peeked (MSG_PEEK from
 * peek offset 0, the socket's own peek offset put back) through
 * pidfd_getfd. Restore: socketpair in the tracee, each end's queue sent
 * again from the other end, from krg. ---- */

static bool unix_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	if (!S_ISSOCK(st->st_mode))
		return false;
	int l = ckpt_fd_getfd_pid(pid, fd);
	if (l < 0)
		return false;
	int dom = 0, type = 0, acc = 1;
	socklen_t sl = sizeof(int);
	bool ok = !getsockopt(l, SOL_SOCKET, SO_DOMAIN, &dom, &sl) && dom == AF_UNIX && (sl = sizeof(int), !getsockopt(l, SOL_SOCKET, SO_TYPE, &type, &sl)) &&
		  (type == SOCK_STREAM || type == SOCK_DGRAM || type == SOCK_SEQPACKET) &&
		  (sl = sizeof(int), !getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl)) && !acc;
	close(l);
	return ok;
}

static int unix_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	int l = ckpt_fd_getfd_pid(pid, fd), type = 0;
	socklen_t sl = sizeof(type);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", pid, fd, strerror(-l));
	getsockopt(l, SOL_SOCKET, SO_TYPE, &type, &sl);
	out->has_ino = true;
	out->ino = st->st_ino;
	out->has_sock_type = true;
	out->sock_type = (uint32_t)type;
	/* A name matters to a socket nobody is connected to (a datagram
	 * socket others send to); one with a peer comes back as a pair. */
	int r = ckpt_unix_name_dump(pid, fd, l, st->st_ino, out, err);
	close(l);
	return r;
}

/* The inode of unix socket `ino`'s peer (0: none), or -errno. */
static long long unix_peer_ino(uint64_t ino)
{
	struct ckpt_unix_diag d;
	int r = ckpt_unix_diag(ino, &d);
	return r < 0 ? r : (long long)d.peer_ino;
}

/* What is queued at socket `l`, not consumed: a stream's bytes, or datagrams. */
static int unix_peek(int l, Krg__Ckpt__Fd *e, struct ckpt_error *err)
{
	int old = -1, zero = 0, r = 0;
	socklen_t sl = sizeof(old);
	if (getsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &old, &sl) < 0 || setsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return ckpt_fail(err, errno, "fd %d: SO_PEEK_OFF: %s", e->fd, strerror(errno));
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		abort();
	for (unsigned i = 0; i < 100000; i++) {
		char cbuf[CMSG_SPACE(sizeof(int) * 64)];
		struct iovec iov = { buf, cap };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(l, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			r = ckpt_fail(err, errno, "fd %d: peeking at the queued data: %s", e->fd, strerror(errno));
			break;
		}
		bool fds = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				fds = true;
				for (int *p = (int *)CMSG_DATA(c); (uint8_t *)p < (uint8_t *)c + c->cmsg_len; p++)
					close(*p);
			}
		if (fds || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
			r = ckpt_fail(err, EOPNOTSUPP, "fd %d: unix socket with file descriptors (SCM_RIGHTS) or an oversized datagram in flight: not supported",
				      e->fd);
			break;
		}
		if (e->sock_type == SOCK_STREAM) {
			if (!n)
				break;
			e->data.data = realloc(e->data.data, e->data.len + (size_t)n);
			if (!e->data.data)
				abort();
			memcpy(e->data.data + e->data.len, buf, (size_t)n);
			e->data.len += (size_t)n;
			e->has_data = true;
		} else {
			e->packets = realloc(e->packets, (e->n_packets + 1) * sizeof(*e->packets));
			if (!e->packets)
				abort();
			ProtobufCBinaryData *d = &e->packets[e->n_packets++];
			d->len = (size_t)n;
			d->data = malloc((size_t)n + 1);
			if (!d->data)
				abort();
			memcpy(d->data, buf, (size_t)n);
		}
	}
	free(buf);
	setsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old));
	return r;
}

static int link_unix(struct link_state *ls, Krg__Ckpt__Files *f, size_t i, struct ckpt_error *err)
{
	Krg__Ckpt__Fd *e = f->fds[i];
	long long peer = unix_peer_ino(e->ino);
	if (peer < 0)
		return ckpt_fail(err, (int)-peer, "process %d fd %d: asking sock_diag for the peer of socket:[%llu]: %s", ls->pid, e->fd,
				 (unsigned long long)e->ino, strerror((int)-peer));
	if (peer && !e->has_peer) {
		Krg__Ckpt__Fd *p = NULL;
		for (size_t j = 0; j < f->n_fds && !p; j++)
			if (j != i && !f->fds[j]->has_dup_of && !strcmp(f->fds[j]->kind, "unix") && f->fds[j]->ino == (uint64_t)peer)
				p = f->fds[j];
		if (!p && !ls->in_app && e->fd <= 2) {
			make_inherit(e);
			return 0;
		}
		if (!p && !ls->in_app) {
			refuse(ls, i, e->fd, CKPT_REFUSED_PEER_OUTSIDE, err, "process %d fd %d: unix socket (socket:[%llu]) whose peer socket:[%lld] is outside the process is not supported yet",
			       ls->pid, e->fd, (unsigned long long)e->ino, peer);
			return 0;
		}
		if (p) {
			e->has_peer = p->has_peer = true;
			e->peer = p->fd;
			p->peer = e->fd;
		}
	}
	int l = ckpt_fd_getfd_pid(ls->pid, e->fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", ls->pid, e->fd, strerror(-l));
	int r = unix_peek(l, e, err);
	close(l);
	return r;
}

/* Send what `to` had queued, from the tracee's socket `from`. */
static int unix_refill(struct ckpt_fd_rctx *c, long from, const Krg__Ckpt__Fd *to, struct ckpt_error *err)
{
	if (!to->has_data && !to->n_packets)
		return 0;
	int l = ckpt_fd_rgetfd(c, from, to->fd, err);
	if (l < 0)
		return l;
	int r = 0;
	for (size_t done = 0; to->has_data && done < to->data.len && !r;) {
		ssize_t n = send(l, to->data.data + done, to->data.len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			r = ckpt_fail(err, n < 0 ? errno : EIO, "fd %d: sending its %zu queued bytes again: %s", to->fd, to->data.len, strerror(n < 0 ? errno : EIO));
		else
			done += (size_t)n;
	}
	for (size_t k = 0; k < to->n_packets && !r; k++)
		if (send(l, to->packets[k].data, to->packets[k].len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)to->packets[k].len)
			r = ckpt_fail(err, errno, "fd %d: sending queued datagram %zu again: %s", to->fd, k, strerror(errno));
	close(l);
	return r;
}

/* A bound socket without a peer (a datagram socket others send to): its
 * own socket and name, its queue sent again to that name from krg. */
static int unix_restore_bound(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long s = INJ(c, fd->fd, "socket", SYS_socket, AF_UNIX, fd->sock_type, 0, 0, 0, 0);
	int r = ckpt_unix_name_restore(c, s, fd, err);
	if (r < 0)
		return r;
	if (fd->n_packets) {
		/* By its absolute path: a relative name is the process's. */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		const void *name = fd->path ? (const void *)fd->path : fd->sock_addr.data;
		size_t nl = fd->path ? strlen(fd->path) : fd->sock_addr.len;
		if (nl > sizeof(a.sun_path))
			return ckpt_fail(err, ENAMETOOLONG, "fd %d: socket name too long", fd->fd);
		socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nl);
		memcpy(a.sun_path, name, nl);
		int l = socket(AF_UNIX, (int)fd->sock_type | SOCK_CLOEXEC, 0);
		for (size_t k = 0; k < fd->n_packets && !r; k++)
			if (l < 0 || sendto(l, fd->packets[k].data, fd->packets[k].len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, al) !=
					     (ssize_t)fd->packets[k].len)
				r = ckpt_fail(err, errno, "fd %d: sending queued datagram %zu again: %s", fd->fd, k, strerror(errno));
		if (l >= 0)
			close(l);
		if (r < 0)
			return r;
	}
	return ckpt_fd_place(c, s, fd, err);
}

static int unix_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (!fd->has_sock_type || (fd->sock_type != SOCK_STREAM && fd->sock_type != SOCK_DGRAM && fd->sock_type != SOCK_SEQPACKET) ||
	    (fd->has_sock_addr && (!fd->sock_addr.len || fd->sock_addr.len > sizeof(((struct sockaddr_un *)0)->sun_path))))
		return ckpt_fail(err, EBADMSG, "image: fd %d: unix socket of unknown type or with a bad name", fd->fd);
	bool made = false;
	const Krg__Ckpt__Fd *remote = remote_peer(c, fd, &made);
	if (made)
		return take_parked(c, fd, err);
	if (!remote && !fd->has_peer && fd->has_sock_addr && fd->sock_type != SOCK_STREAM)
		return unix_restore_bound(c, fd, err);
	INJ(c, fd->fd, "socketpair", SYS_socketpair, AF_UNIX, fd->sock_type, 0, (long)c->t->scratch, 0, 0);
	int sv[2];
	if (ckpt_peek(c->t->pid, c->t->scratch, sv, sizeof(sv)) < 0)
		return ckpt_fail(err, EIO, "fd %d: reading socketpair's answer", fd->fd);
	size_t pi = 0;
	const Krg__Ckpt__Fd *peer = remote ? remote : fd->has_peer ? entry_of(c->f, fd->peer, &pi) : NULL;
	int r = unix_refill(c, sv[1], fd, err);
	if (r == 0 && peer)
		r = unix_refill(c, sv[0], peer, err);
	if (r < 0)
		return r;
	if (!peer) {
		ckpt_syscall(c->t, err, SYS_close, sv[1], 0, 0, 0, 0, 0);
		return ckpt_fd_place(c, sv[0], fd, err);
	}
	if (remote) {
		r = park(c, sv[1], fd->peer_pid, fd->peer, err);
		return r < 0 ? r : ckpt_fd_place(c, sv[0], fd, err);
	}
	c->done[pi] = true;
	return place_pair(c, sv[0], fd, sv[1], peer, err);
}

static const struct ckpt_fd_ops fd_unix = { CKPT_FD_OPS_VERSION, "unix", false, unix_match, unix_dump, unix_restore };

static const struct ckpt_fd_ops *const fd_kinds[] = { &fd_reg, &fd_dir, &fd_chr_mem, &fd_tty, &fd_pipe, &fd_fifo, &ckpt_fd_eventfd, &ckpt_fd_timerfd, &ckpt_fd_signalfd, &ckpt_fd_inotify, &ckpt_fd_epoll, &fd_deleted, &fd_memfd, &fd_unix, &ckpt_fd_unix_listen, &fd_inherit };

static const struct ckpt_fd_ops *kind_by_name(const char *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (!strcmp(fd_kinds[i]->kind, k))
			return fd_kinds[i];
	return NULL;
}

/* What to call an fd we refuse, for the error line. */
static const char *describe(const struct stat *st, const char *link)
{
	if (S_ISFIFO(st->st_mode))
		return "pipe or FIFO";
	if (S_ISSOCK(st->st_mode))
		return "socket other than a unix socket (TCP, UDP, netlink, ...)";
	if (S_ISCHR(st->st_mode))
		return "character device (terminal or other)";
	if (S_ISBLK(st->st_mode))
		return "block device";
	if (!strncmp(link, "anon_inode:", 11))
		return "anonymous inode (io_uring, userfaultfd, fanotify, perf event, ...)";
	if (strstr(link, " (deleted)"))
		return "deleted file (still linked under another name, or not a regular file)";
	return "unknown kind";
}

static void free_termios(Krg__Ckpt__Termios *t)
{
	if (t) {
		free(t->cc.data);
		free(t);
	}
}

static void free_termios(Krg__Ckpt__Termios *t);

static void free_entry(Krg__Ckpt__Fd *e)
{
	free_locks(e);
	free_termios(e->termios);
	free(e->kind);
	free(e->path);
	free(e->data.data);
	for (size_t k = 0; k < e->n_packets; k++)
		free(e->packets[k].data);
	free(e->packets);
	for (size_t k = 0; k < e->n_targets; k++)
		free(e->targets[k]);
	free(e->targets);
	for (size_t k = 0; k < e->n_watches; k++) {
		free(e->watches[k]->path);
		free(e->watches[k]);
	}
	free(e->watches);
	free(e);
}

void ckpt_files_free(Krg__Ckpt__Files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_fds; i++)
		free_entry(f->fds[i]);
	free(f->fds);
	free(f);
}

/* Dropped entries go, with their dups; a peer that went is closed. */
static void prune(Krg__Ckpt__Files *f, bool *drop)
{
	size_t n = 0;
	for (size_t i = 0; i < f->n_fds; i++) {
		Krg__Ckpt__Fd *e = f->fds[i];
		bool gone = drop[i];
		for (size_t j = 0; j < i && e->has_dup_of && !gone; j++)
			if (drop[j] && f->fds[j]->fd == e->dup_of)
				gone = drop[i] = true;
		if (!gone)
			f->fds[n++] = e;
		else
			free_entry(e);
	}
	f->n_fds = n;
	for (size_t i = 0; i < n; i++)
		if (f->fds[i]->has_peer && !f->fds[i]->has_peer_pid && !entry_of(f, f->fds[i]->peer, NULL))
			f->fds[i]->has_peer = false;
}

static int link_pipe(struct link_state *ls, Krg__Ckpt__Files *f, size_t i, struct ckpt_error *err)
{
	Krg__Ckpt__Fd *e = f->fds[i], *rd = NULL, *wr = NULL;
	bool is_pipe = !strcmp(e->kind, "pipe");
	for (size_t j = 0; j < i; j++)
		if (!f->fds[j]->has_dup_of && !strcmp(f->fds[j]->kind, e->kind) && f->fds[j]->ino == e->ino)
			return 0;  /* done with its first end */
	for (size_t j = i; j < f->n_fds; j++) {
		Krg__Ckpt__Fd *g = f->fds[j];
		if (g->has_dup_of || strcmp(g->kind, e->kind) || g->ino != e->ino)
			continue;
		int acc = (int)g->flags & O_ACCMODE;
		if (is_pipe) {
			Krg__Ckpt__Fd **slot = acc == O_RDONLY ? &rd : &wr;
			if (*slot) {
				refuse(ls, j, g->fd, CKPT_REFUSED_SHARED, err, "process %d fd %d: pipe (pipe:[%llu]) opened a second time at one end is not supported", ls->pid, g->fd,
				       (unsigned long long)g->ino);
				continue;
			}
			*slot = g;
		} else if (acc != O_WRONLY && !rd)
			rd = g;
	}
	if (is_pipe) {
		if (rd && wr) {
			rd->has_peer = wr->has_peer = true;
			rd->peer = wr->fd;
			wr->peer = rd->fd;
		} else if (!ls->in_app) {
			pid_t h = pipe_holder(&ls->pid, 1, e->ino);
			if (h && e->fd <= 2 && !(rd && wr)) {
				make_inherit(e);
				return 0;
			}
			if (h) {
				refuse(ls, i, e->fd, CKPT_REFUSED_PEER_OUTSIDE, err, "process %d fd %d: pipe (pipe:[%llu]) whose other end is in process %d is not supported yet", ls->pid,
				       e->fd, (unsigned long long)e->ino, h);
				return 0;
			}
		}
	}
	if (!rd)
		return 0;
	int l = ckpt_fd_getfd_pid(ls->pid, rd->fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", ls->pid, rd->fd, strerror(-l));
	int r = pipe_peek(l, rd, err);
	close(l);
	return r;
}

/* Pair the ends of pipes and socketpairs, save what is queued in them. */
static int link_pass(struct link_state *ls, Krg__Ckpt__Files *f, struct ckpt_error *err)
{
	int r = 0;
	for (size_t i = 0; i < f->n_fds && !r; i++) {
		Krg__Ckpt__Fd *e = f->fds[i];
		if (e->has_dup_of || ls->drop[i])
			continue;
		if (!strcmp(e->kind, "pipe") || !strcmp(e->kind, "fifo"))
			r = link_pipe(ls, f, i, err);
		if (!strcmp(e->kind, "unix"))
			r = link_unix(ls, f, i, err);
		/* A second open of a nameless file: its content is the first's. */
		if ((!strcmp(e->kind, "deleted") || !strcmp(e->kind, "memfd")) && e->has_data)
			for (size_t j = 0; j < i; j++)
				if (!f->fds[j]->has_dup_of && !strcmp(f->fds[j]->kind, e->kind) && f->fds[j]->ino == e->ino) {
					free(e->data.data);
					e->data.data = NULL;
					e->data.len = 0;
					e->has_data = false;
					break;
				}
	}
	if (r < 0)
		return r;
	prune(f, ls->drop);
	return 0;
}

/* ---- file locks ----
 * fdinfo lists, for an fd, the POSIX locks its process holds on the file
 * and the flock/OFD locks of its open file description. POSIX ones are
 * kept once per process and file, the others once per description (not
 * on dups; ckpt_files_link_app drops them from shared entries). At
 * restart they are taken again, without waiting: one held meanwhile by
 * someone else (the original, still running) fails the restart by name. */

static int locks_dump(Krg__Ckpt__Files *f, Krg__Ckpt__Fd *e, const struct stat *st, const char *info, struct ckpt_error *err)
{
	bool posix_seen = false;
	for (size_t k = 0; k + 1 < f->n_fds && !posix_seen; k++) {
		const Krg__Ckpt__Fd *g = f->fds[k];
		for (size_t i = 0; i < g->n_locks && !posix_seen; i++)
			posix_seen = g->locks[i]->kind == KRG__CKPT__LOCK__KIND__POSIX && g->has_ino && g->ino == (uint64_t)st->st_ino;
	}
	for (const char *l = strstr(info, "lock:"); l; l = strstr(l + 5, "lock:")) {
		char kind[16], adv[16], rw[16], end[32];
		unsigned long long start = 0;
		int id, owner;
		if (sscanf(l + 5, " %d: %15s %15s %15s %d %*s %llu %31s", &id, kind, adv, rw, &owner, &start, end) != 7)
			continue;
		Krg__Ckpt__Lock__Kind k;
		if (!strcmp(kind, "POSIX"))
			k = KRG__CKPT__LOCK__KIND__POSIX;
		else if (!strcmp(kind, "FLOCK"))
			k = KRG__CKPT__LOCK__KIND__FLOCK;
		else if (!strcmp(kind, "OFDLCK"))
			k = KRG__CKPT__LOCK__KIND__OFD;
		else
			return ckpt_fail(err, EOPNOTSUPP, "process %d fd %d: a %s lock on %s is not supported", f->pid, e->fd, kind, e->path ? e->path : "?");
		if (strcmp(adv, "ADVISORY"))
			return ckpt_fail(err, EOPNOTSUPP, "process %d fd %d: a %s lock on %s is not supported", f->pid, e->fd, adv, e->path ? e->path : "?");
		if (k == KRG__CKPT__LOCK__KIND__POSIX && posix_seen)
			continue;
		Krg__Ckpt__Lock *lk = calloc(1, sizeof(*lk));
		Krg__Ckpt__Lock **nl = realloc(e->locks, (e->n_locks + 1) * sizeof(*nl));
		if (!lk || !nl)
			abort();
		krg__ckpt__lock__init(lk);
		e->locks = nl;
		e->locks[e->n_locks++] = lk;
		lk->kind = k;
		lk->write = !strcmp(rw, "WRITE");
		lk->start = start;
		lk->len = strcmp(end, "EOF") ? strtoull(end, NULL, 10) - start + 1 : 0;
	}
	if (e->n_locks) {
		e->has_ino = true;
		e->ino = (uint64_t)st->st_ino;
	}
	return 0;
}

int ckpt_locks_apply(struct ckpt_tracee *t, const Krg__Ckpt__Fd *fd, bool take, struct ckpt_error *err)
{
	for (size_t i = 0; i < fd->n_locks; i++) {
		const Krg__Ckpt__Lock *lk = fd->locks[i];
		long ret;
		const char *what = lk->kind == KRG__CKPT__LOCK__KIND__FLOCK ? "flock" : lk->kind == KRG__CKPT__LOCK__KIND__OFD ? "OFD lock" : "POSIX lock";
		if (lk->kind == KRG__CKPT__LOCK__KIND__FLOCK) {
			ret = ckpt_syscall(t, err, SYS_flock, fd->fd, take ? (lk->write ? LOCK_EX : LOCK_SH) | LOCK_NB : LOCK_UN, 0, 0, 0, 0);
		} else {
			struct flock fl = { .l_type = !take ? F_UNLCK : lk->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = (off_t)lk->start,
					    .l_len = (off_t)lk->len };
			if (ckpt_poke(t->pid, t->scratch, &fl, sizeof(fl)) < 0)
				return ckpt_fail(err, EIO, "fd %d: passing a lock", fd->fd);
			ret = ckpt_syscall(t, err, SYS_fcntl, fd->fd, lk->kind == KRG__CKPT__LOCK__KIND__OFD ? F_OFD_SETLK : F_SETLK, (long)t->scratch, 0, 0, 0);
		}
		if (ret < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(ret), "fd %d: %s its %s %s on %s%s: %s", fd->fd, take ? "taking" : "releasing", lk->write ? "write" : "read", what,
					 fd->path ? fd->path : "?", ckpt_fd_inj_errno(ret) == EAGAIN || ckpt_fd_inj_errno(ret) == EWOULDBLOCK ? " (someone else holds it)" : "",
					 strerror(ckpt_fd_inj_errno(ret)));
	}
	return 0;
}

int ckpt_files_dump(pid_t pid, bool ignore_unsupported, bool snapshot, bool in_app, Krg__Ckpt__Files **out, struct ckpt_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return ckpt_fail(err, errno, "process %d: %s: %s", pid, path, strerror(errno));
	Krg__Ckpt__Files *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	krg__ckpt__files__init(f);
	f->pid = pid;
	int refused = 0, r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int fd = atoi(de->d_name);
		char p[96], link[4096], info[4096];
		snprintf(p, sizeof(p), "/proc/%d/fd/%d", pid, fd);
		ssize_t l = readlink(p, link, sizeof(link) - 1);
		struct stat st;
		if (l < 0 || stat(p, &st) < 0)
			continue;  /* closed meanwhile (it cannot be: frozen) or unreadable */
		link[l] = 0;
		const struct ckpt_fd_ops *ops = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(fd_kinds) && !ops; k++)
			if (fd_kinds[k]->match(pid, fd, &st, link))
				ops = fd_kinds[k];
		if (!ops && fd <= 2)
			ops = &fd_inherit;
		if (!ops) {
			if (!ignore_unsupported) {
				if (!refused++) {
					err->msg[0] = 0;
					err->n_refused = err->refused_more = 0;
				}
				note_refusal(err, pid, fd, CKPT_REFUSED_KIND);
				ckpt_fail_append(err, "process %d fd %d: %s (%s) is not supported", pid, fd, describe(&st, link), link);
			}
			continue;
		}
		snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", pid, fd);
		if ((r = krg_read_small(p, info, sizeof(info))) < 0) {
			r = ckpt_fail(err, r, "process %d fd %d: reading fdinfo: %s", pid, fd, strerror(-r));
			break;
		}
		r = 0;
		Krg__Ckpt__Fd *e = calloc(1, sizeof(*e));
		Krg__Ckpt__Fd **nf = realloc(f->fds, (f->n_fds + 1) * sizeof(*nf));
		if (!e || !nf)
			abort();
		f->fds = nf;
		krg__ckpt__fd__init(e);
		f->fds[f->n_fds++] = e;
		e->fd = fd;
		e->kind = ckpt_strdup(ops->kind);
		/* A dup shares offset and flags with its original: restore it as a
		 * dup, not as a second open. */
		for (size_t k = 0; k + 1 < f->n_fds; k++)
			if (syscall(SYS_kcmp, pid, pid, KCMP_FILE, f->fds[k]->fd, fd) == 0) {
				e->has_dup_of = true;
				e->dup_of = f->fds[k]->fd;
				break;
			}
		const char *pos = strstr(info, "pos:"), *fl = strstr(info, "flags:");
		if (pos) {
			e->has_pos = true;
			e->pos = strtoull(pos + 4, NULL, 10);
		}
		e->flags = fl ? (uint32_t)strtoul(fl + 6, NULL, 8) : O_RDONLY;
		if ((r = ops->dump(pid, fd, &st, link, e, err)) < 0)
			break;
		if (!e->has_dup_of && (r = locks_dump(f, e, &st, info, err)) < 0)
			break;
		/* --snapshot-files: the content of a file open for writing, once
		 * per file, put back before it is reopened at restart. */
		if (snapshot && ops == &fd_reg && !e->has_dup_of && (e->flags & O_ACCMODE) != O_RDONLY) {
			bool seen = false;
			for (size_t k = 0; k + 1 < f->n_fds && !seen; k++)
				seen = f->fds[k]->has_ino && f->fds[k]->ino == (uint64_t)st.st_ino && !strcmp(f->fds[k]->kind, "reg");
			e->has_ino = true;
			e->ino = st.st_ino;
			if (!seen && (r = snapshot_dump(pid, fd, &st, e, err)) < 0)
				break;
		}
	}
	closedir(d);
	if (!r) {
		struct link_state ls = { pid, ignore_unsupported, &refused, calloc(f->n_fds + 1, sizeof(bool)), in_app };
		if (!ls.drop)
			abort();
		r = link_pass(&ls, f, err);
		free(ls.drop);
	}
	if (!r && refused) {
		ckpt_fail_append(err, "checkpoint refused: %d unsupported file descriptor%s (--ignore-unsupported closes them at restart)", refused,
				 refused > 1 ? "s" : "");
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		ckpt_files_free(f);
		return r;
	}
	*out = f;
	return 0;
}

/* ---- across the processes of an application ----
 * After every process's fds are dumped (in_app): an fd that is the same
 * open file description as one of an earlier process (kcmp) is taken from
 * it at restore (share_pid/share_fd), as a fork had passed it on; the two
 * ends of a pipe or socketpair held by two processes name each other
 * (peer_pid/peer): the first restored makes the object and keeps the other
 * end for the second. An end whose partner is held outside the
 * application is refused like any unsupported fd. */

struct app_refusal {
	bool ignore;
	int refused;
};

static void __attribute__((format(printf, 5, 6))) app_refuse(struct app_refusal *ar, pid_t pid, int fd, struct ckpt_error *err,
							      const char *fmt, ...)
{
	if (ar->ignore)
		return;
	if (!ar->refused++) {
		err->msg[0] = 0;
		err->n_refused = err->refused_more = 0;
	}
	note_refusal(err, pid, fd, CKPT_REFUSED_PEER_OUTSIDE);
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ckpt_fail_append(err, "%s", line);
}

static bool same_description(const Krg__Ckpt__Files *fa, const Krg__Ckpt__Fd *a, const Krg__Ckpt__Files *fb, const Krg__Ckpt__Fd *b)
{
	if (strcmp(a->kind, b->kind) || (a->has_ino && b->has_ino && a->ino != b->ino))
		return false;
	return syscall(SYS_kcmp, fa->pid, fb->pid, KCMP_FILE, a->fd, b->fd) == 0;
}

static void link_shared(Krg__Ckpt__Files **f, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			Krg__Ckpt__Fd *e = f[i]->fds[a];
			if (e->has_dup_of)
				continue;
			for (size_t j = 0; j < i && !e->has_share_pid; j++)
				for (size_t b = 0; b < f[j]->n_fds; b++) {
					const Krg__Ckpt__Fd *g = f[j]->fds[b];
					if (g->has_dup_of || g->has_share_pid || !same_description(f[j], g, f[i], e))
						continue;
					e->has_share_pid = e->has_share_fd = true;
					e->share_pid = f[j]->pid;
					e->share_fd = g->fd;
					/* Its contents, queues and description locks are the first holder's. */
					size_t kept = 0;
					for (size_t q = 0; q < e->n_locks; q++) {
						if (e->locks[q]->kind == KRG__CKPT__LOCK__KIND__POSIX)
							e->locks[kept++] = e->locks[q];
						else
							free(e->locks[q]);
					}
					e->n_locks = kept;
					free(e->data.data);
					e->data.data = NULL;
					e->data.len = 0;
					e->has_data = false;
					break;
				}
		}
	/* A shared end is no longer paired inside its process. */
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			Krg__Ckpt__Fd *e = f[i]->fds[a];
			if (!e->has_share_pid || !e->has_peer)
				continue;
			Krg__Ckpt__Fd *p = (Krg__Ckpt__Fd *)entry_of(f[i], e->peer, NULL);
			if (p)
				p->has_peer = false;
			e->has_peer = false;
		}
}

/* The end of e's pipe or socketpair held by another process, if any. */
static int find_remote_end(Krg__Ckpt__Files **f, size_t n, size_t i, const Krg__Ckpt__Fd *e, uint64_t want_ino, size_t *pj, Krg__Ckpt__Fd **pg)
{
	int found = 0;
	bool is_pipe = !strcmp(e->kind, "pipe");
	for (size_t j = 0; j < n; j++) {
		if (j == i)
			continue;
		for (size_t b = 0; b < f[j]->n_fds; b++) {
			Krg__Ckpt__Fd *g = f[j]->fds[b];
			if (g->has_dup_of || g->has_share_pid || g->has_peer || strcmp(g->kind, e->kind) || !g->has_ino || g->ino != want_ino)
				continue;
			if (is_pipe && ((g->flags & O_ACCMODE) == O_RDONLY) == ((e->flags & O_ACCMODE) == O_RDONLY))
				continue;
			if (!found++) {
				*pj = j;
				*pg = g;
			}
		}
	}
	return found;
}

int ckpt_files_link_app(Krg__Ckpt__Files **f, size_t n, bool ignore_unsupported, struct ckpt_error *err)
{
	struct app_refusal ar = { .ignore = ignore_unsupported };
	pid_t *pids = calloc(n + 1, sizeof(*pids));
	bool **drop = calloc(n + 1, sizeof(*drop));
	if (!pids || !drop)
		abort();
	for (size_t i = 0; i < n; i++) {
		pids[i] = f[i]->pid;
		if (!(drop[i] = calloc(f[i]->n_fds + 1, sizeof(bool))))
			abort();
	}
	link_shared(f, n);
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			Krg__Ckpt__Fd *e = f[i]->fds[a];
			bool is_pipe = !strcmp(e->kind, "pipe"), is_unix = !strcmp(e->kind, "unix");
			if (e->has_dup_of || e->has_share_pid || e->has_peer || (!is_pipe && !is_unix) || !e->has_ino)
				continue;
			uint64_t want = e->ino;
			if (is_unix) {
				long long peer = unix_peer_ino(e->ino);
				if (peer <= 0)
					continue;  /* the peer is closed (or sock_diag cannot say: as at dump) */
				want = (uint64_t)peer;
			}
			size_t j = 0;
			Krg__Ckpt__Fd *g = NULL;
			int found = find_remote_end(f, n, i, e, want, &j, &g);
			if (found == 1) {
				e->has_peer = g->has_peer = e->has_peer_pid = g->has_peer_pid = true;
				e->peer = g->fd;
				e->peer_pid = f[j]->pid;
				g->peer = e->fd;
				g->peer_pid = f[i]->pid;
				continue;
			}
			if (found > 1) {
				drop[i][a] = true;
				app_refuse(&ar, f[i]->pid, e->fd, err, "process %d fd %d: %s (%s:[%llu]) whose other end is open in several processes as separate files is not supported",
					   f[i]->pid, e->fd, is_pipe ? "pipe" : "unix socket", is_pipe ? "pipe" : "socket", (unsigned long long)e->ino);
				continue;
			}
			pid_t h = is_pipe ? pipe_holder(pids, n, e->ino) : 0;
			if (((is_pipe && h) || is_unix) && e->fd <= 2) {
				make_inherit(e);
				continue;
			}
			if (is_pipe && h) {
				drop[i][a] = true;
				app_refuse(&ar, f[i]->pid, e->fd, err, "process %d fd %d: pipe (pipe:[%llu]) whose other end is in process %d, outside the application, is not supported",
					   f[i]->pid, e->fd, (unsigned long long)e->ino, h);
			} else if (is_unix) {
				drop[i][a] = true;
				app_refuse(&ar, f[i]->pid, e->fd, err, "process %d fd %d: unix socket (socket:[%llu]) whose peer socket:[%llu] is outside the application is not supported",
					   f[i]->pid, e->fd, (unsigned long long)e->ino, (unsigned long long)want);
			}
		}
	/* Who shares an inherited stream inherits it too (from its owner). */
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			Krg__Ckpt__Fd *e = f[i]->fds[a];
			for (size_t j = 0; j < i && e->has_share_pid; j++)
				for (size_t b = 0; b < f[j]->n_fds; b++)
					if (f[j]->pid == e->share_pid && f[j]->fds[b]->fd == e->share_fd && !strcmp(f[j]->fds[b]->kind, "inherit") &&
					    strcmp(e->kind, "inherit"))
						make_inherit(e);
		}
	/* What was dropped goes from every process that shares it. */
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			const Krg__Ckpt__Fd *e = f[i]->fds[a];
			for (size_t j = 0; j < i && e->has_share_pid && !drop[i][a]; j++)
				for (size_t b = 0; b < f[j]->n_fds; b++)
					if (f[j]->pid == e->share_pid && f[j]->fds[b]->fd == e->share_fd && drop[j][b])
						drop[i][a] = true;
		}
	for (size_t i = 0; i < n; i++) {
		prune(f[i], drop[i]);
		free(drop[i]);
	}
	free(drop);
	free(pids);
	if (ar.refused) {
		ckpt_fail_append(err, "checkpoint refused: %d unsupported file descriptor%s (--ignore-unsupported closes them at restart)", ar.refused,
				 ar.refused > 1 ? "s" : "");
		return -EOPNOTSUPP;
	}
	return 0;
}

int ckpt_files_validate_app(Krg__Ckpt__Files *const *f, size_t n, struct ckpt_error *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < f[i]->n_fds; a++) {
			const Krg__Ckpt__Fd *e = f[i]->fds[a];
			if (e->has_share_pid) {
				const Krg__Ckpt__Fd *g = NULL;
				for (size_t j = 0; j < i && !g; j++)
					if (f[j]->pid == e->share_pid)
						g = entry_of(f[j], e->share_fd, NULL);
				if (e->has_dup_of || !e->has_share_fd || !g || strcmp(g->kind, e->kind) || g->has_share_pid)
					return ckpt_fail(err, EBADMSG, "image: process %d fd %d shares fd %d of process %d, which is not restored before it",
							 f[i]->pid, e->fd, e->share_fd, e->share_pid);
			}
			if (e->has_peer_pid) {
				const Krg__Ckpt__Fd *g = NULL;
				for (size_t j = 0; j < n && !g; j++)
					if (j != i && f[j]->pid == e->peer_pid)
						g = entry_of(f[j], e->peer, NULL);
				if (!e->has_peer || e->has_share_pid || !g || strcmp(g->kind, e->kind) || !g->has_peer_pid || g->peer_pid != f[i]->pid ||
				    g->peer != e->fd)
					return ckpt_fail(err, EBADMSG, "image: process %d fd %d names fd %d of process %d as its other end, which does not name it back",
							 f[i]->pid, e->fd, e->peer, e->peer_pid);
			}
		}
	return 0;
}

/* The state of the kinds in fd_*.c that names other things: epoll
 * targets are other fds of the image, inotify wds ascend and paths are
 * absolute, a timerfd has its clock. */
static int validate_kind_state(const Krg__Ckpt__Files *f, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	for (size_t k = 0; k < fd->n_targets; k++) {
		const Krg__Ckpt__Fd *t = entry_of(f, fd->targets[k]->fd, NULL);
		if (!t || t == fd || strcmp(fd->kind, "epoll"))
			return ckpt_fail(err, EBADMSG, "image: epoll fd %d watches fd %d, which is not in the image", fd->fd, fd->targets[k]->fd);
	}
	for (size_t k = 0; k < fd->n_watches; k++) {
		const Krg__Ckpt__InotifyWatch *w = fd->watches[k];
		if (strcmp(fd->kind, "inotify") || w->wd <= 0 || (k && w->wd <= fd->watches[k - 1]->wd) || w->path[0] != '/')
			return ckpt_fail(err, EBADMSG, "image: inotify fd %d: watch %d is out of order or has no absolute path", fd->fd, w->wd);
	}
	if (!strcmp(fd->kind, "timerfd") && (!fd->has_clockid || !fd->has_value_ns || !fd->has_interval_ns))
		return ckpt_fail(err, EBADMSG, "image: timerfd %d lacks its clock or times", fd->fd);
	if (!strcmp(fd->kind, "signalfd") && !fd->has_sigmask)
		return ckpt_fail(err, EBADMSG, "image: signalfd %d lacks its signal mask", fd->fd);
	return 0;
}

int ckpt_files_validate(const Krg__Ckpt__Files *f, struct ckpt_error *err)
{
	for (size_t i = 0; i < f->n_fds; i++) {
		const Krg__Ckpt__Fd *fd = f->fds[i];
		if (fd->fd < 0 || fd->fd > 1 << 20)
			return ckpt_fail(err, EBADMSG, "image: fd number %d is out of range", fd->fd);
		if (!kind_by_name(fd->kind))
			return ckpt_fail(err, EPROTO, "image: fd %d is of kind '%s', which this krg cannot restore", fd->fd, fd->kind);
		if (kind_by_name(fd->kind)->needs_path && (!fd->path || fd->path[0] != '/'))
			return ckpt_fail(err, EBADMSG, "image: fd %d has no path", fd->fd);
		if (fd->has_peer && !fd->has_peer_pid) {
			const Krg__Ckpt__Fd *p = entry_of(f, fd->peer, NULL);
			if (fd->has_dup_of || !p || p == fd || strcmp(p->kind, fd->kind) || !p->has_peer || p->peer != fd->fd)
				return ckpt_fail(err, EBADMSG, "image: fd %d names fd %d as its other end, which does not name it back", fd->fd, fd->peer);
		}
		bool dup_found = false;
		for (size_t j = 0; j < i; j++) {
			if (f->fds[j]->fd == fd->fd)
				return ckpt_fail(err, EBADMSG, "image: fd %d appears twice", fd->fd);
			if (fd->has_dup_of && f->fds[j]->fd == fd->dup_of && !f->fds[j]->has_dup_of)
				dup_found = true;
		}
		if (fd->has_dup_of && !dup_found)
			return ckpt_fail(err, EBADMSG, "image: fd %d is a dup of fd %d, which comes nowhere before it", fd->fd, fd->dup_of);
		int r = validate_kind_state(f, fd, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One entry of the image into the tracee (dup, shared with an earlier
 * process, or made by its kind); marks it done. */
static int restore_entry(struct ckpt_fd_rctx *c, size_t i, struct ckpt_error *err)
{
	const Krg__Ckpt__Fd *fd = c->f->fds[i];
	long ret;
	c->done[i] = true;
	if (fd->has_dup_of) {
		ret = ckpt_syscall(c->t, err, SYS_dup3, fd->dup_of, fd->fd, (fd->flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
		if (ret != fd->fd)
			return ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "fd %d: dup of fd %d: %s", fd->fd, fd->dup_of,
					 strerror(ret < 0 ? (int)-ret : EIO));
		return 0;
	}
	if (fd->has_share_pid) {
		ssize_t k = app_index(c->app, fd->share_pid);
		return k >= 0 && (size_t)k < c->idx ? take_from(c, (size_t)k, fd->share_fd, fd, err)
						    : ckpt_fail(err, EBADMSG, "image: fd %d shares a file of process %d, not restored yet", fd->fd,
								fd->share_pid);
	}
	return kind_by_name(fd->kind)->restore(c, fd, err);
}

/* An epoll, or a dup of one (restored after the other fds). */
static bool is_epoll(const Krg__Ckpt__Files *f, const Krg__Ckpt__Fd *fd)
{
	const Krg__Ckpt__Fd *o = fd->has_dup_of ? entry_of(f, fd->dup_of, NULL) : fd;
	return !strcmp(fd->kind, "epoll") || (o && !strcmp(o->kind, "epoll"));
}

/* Is every fd this epoll (or dup of one) watches in place already? */
static bool epoll_targets_ready(const struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd)
{
	const Krg__Ckpt__Files *f = c->f;
	if (fd->has_dup_of || fd->has_share_pid)
		for (size_t j = 0; j < f->n_fds; j++)
			if (fd->has_dup_of && f->fds[j]->fd == fd->dup_of)
				return c->done[j];
	for (size_t k = 0; k < fd->n_targets; k++)
		for (size_t j = 0; j < f->n_fds; j++)
			if (f->fds[j]->fd == fd->targets[k]->fd && !c->done[j])
				return false;
	return true;
}

int ckpt_files_restore(struct ckpt_tracee *t, struct ckpt_app_fds *app, size_t idx, struct ckpt_error *err)
{
	const Krg__Ckpt__Files *f = app->files[idx];
	struct ckpt_fd_rctx c = { .t = t, .f = f, .done = calloc(f->n_fds + 1, sizeof(bool)), .app = app, .idx = idx, .stdio = { -1, -1, -1 } };
	if (!c.done)
		abort();
	bool inherits = false;
	for (size_t i = 0; i < f->n_fds; i++) {
		if (f->fds[i]->fd >= c.park_base)
			c.park_base = f->fds[i]->fd + 1;
		inherits |= !strcmp(f->fds[i]->kind, "inherit");
	}
	if (c.park_base < 3)
		c.park_base = 3;
	/* Nothing of the restorer's survives but, for inherited standard
	 * streams, its fds 0-2 (this shell is a copy of it), kept aside. */
	long ret = ckpt_syscall(t, err, SYS_close_range, inherits ? 3 : 0, ~0U, 0, 0, 0, 0);
	if (ret < 0) {
		free(c.done);
		return ckpt_fail(err, (int)-ret, "closing inherited fds: %s", strerror((int)-ret));
	}
	if (inherits)
		for (int k = 0; k < 3; k++) {
			c.stdio[k] = ckpt_syscall(t, err, SYS_fcntl, k, F_DUPFD_CLOEXEC, c.park_base, 0, 0, 0);
			ckpt_syscall(t, err, SYS_close, k, 0, 0, 0, 0, 0);
		}
	c.pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (c.pidfd < 0) {
		free(c.done);
		return ckpt_fail(err, errno, "pidfd_open of the restored process: %s", strerror(errno));
	}
	int r = 0;
	/* Epolls last, once what they watch is open; an epoll watching an
	 * epoll after that one. */
	for (size_t i = 0; i < f->n_fds && !r; i++)
		if (!c.done[i] && !is_epoll(f, f->fds[i]))
			r = restore_entry(&c, i, err);
	for (bool progress = true; progress && !r;) {
		progress = false;
		for (size_t i = 0; i < f->n_fds && !r; i++)
			if (!c.done[i] && epoll_targets_ready(&c, f->fds[i]))
				r = restore_entry(&c, i, err), progress = true;
	}
	for (size_t i = 0; i < f->n_fds && !r; i++)
		if (!c.done[i])
			r = ckpt_fail(err, EBADMSG, "image: epoll fd %d watches epolls in a cycle", f->fds[i]->fd);
	for (int k = 0; k < 3; k++)
		if (c.stdio[k] >= 0)
			ckpt_syscall(t, err, SYS_close, c.stdio[k], 0, 0, 0, 0, 0);
	/* Locks last: every fd of the process is in place. */
	for (size_t i = 0; i < f->n_fds && !r; i++)
		if (f->fds[i]->n_locks && !f->fds[i]->has_dup_of)
			r = ckpt_locks_apply(t, f->fds[i], true, err);
	/* A session leader's controlling terminal. */
	for (size_t i = 0; i < f->n_fds && !r && app->session_leader; i++) {
		const Krg__Ckpt__Fd *fd = f->fds[i];
		if (!fd->has_dup_of && fd->ctty && !strcmp(fd->kind, "tty")) {
			ret = ckpt_syscall(t, err, SYS_ioctl, fd->fd, TIOCSCTTY, 0, 0, 0, 0);
			/* A replacement terminal may already be another session's
			 * (the user's shell): then it is only an open terminal. */
			if (ret < 0 && !app->replace_tty)
				r = ckpt_fail(err, ckpt_fd_inj_errno(ret), "fd %d: making %s the controlling terminal: %s", fd->fd,
					      app->replace_tty ? app->replace_tty : fd->path, strerror(ckpt_fd_inj_errno(ret)));
			break;
		}
	}
	close(c.pidfd);
	free(c.done);
	return r;
}

int ckpt_files_close_parked(struct ckpt_app_fds *app, struct ckpt_tracee *const *tracees, struct ckpt_error *err)
{
	for (size_t i = 0; i < app->n_parked; i++) {
		long r = ckpt_syscall(tracees[app->parked[i].owner], err, SYS_close, app->parked[i].fd, 0, 0, 0, 0, 0);
		if (r < 0)
			return ckpt_fail(err, ckpt_fd_inj_errno(r), "closing a kept end in process %d: %s", app->files[app->parked[i].owner]->pid,
					 strerror(ckpt_fd_inj_errno(r)));
	}
	return 0;
}
