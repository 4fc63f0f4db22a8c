/* ckpt_fd_pipe.c — pipes and FIFOs with their unread bytes (a part of files.c, fd-int.h). */
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
int ckpt_fd_pipe_peek(int src, Krg__Ckpt__Fd *out, struct ckpt_error *err)
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
pid_t ckpt_fd_pipe_holder(const pid_t *skip, size_t nskip, uint64_t ino)
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

/* Put a pipe back as `saved` had it: its size, then its unread bytes,
 * written from krg through the tracee's fd `tfd` (a write end, or a
 * FIFO's O_RDWR holder). A pipe that already holds exactly those bytes
 * (a FIFO that outlived the process, pipe_holds) is left alone. */
static bool pipe_holds(int l, const uint8_t *data, size_t len);
static int pipe_refill(struct ckpt_fd_rctx *c, long tfd, const Krg__Ckpt__Fd *saved, int fdnum, struct ckpt_error *err)
{
	if (!saved->has_pipe_size && !saved->has_data)
		return 0;
	int l = ckpt_fd_rgetfd(c, tfd, fdnum, err);
	if (l < 0)
		return l;
	int r = 0;
	if (saved->has_data && saved->data.len && pipe_holds(l, saved->data.data, saved->data.len))
		;  /* the same pipe, still there: nothing to put back */
	else if (saved->has_pipe_size && fcntl(l, F_SETPIPE_SZ, saved->pipe_size) < 0)
		r = ckpt_fail(err, errno, "fd %d: F_SETPIPE_SZ %u: %s", fdnum, saved->pipe_size, strerror(errno));
	else if (saved->has_data && (r = krg_write_all_nowait(l, saved->data.data, saved->data.len)) < 0)
		r = ckpt_fail(err, -r, "fd %d: refilling %zu bytes: %s", fdnum, saved->data.len, strerror(-r));
	close(l);
	return r;
}

static int pipe_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	bool made = false;
	const Krg__Ckpt__Fd *remote = ckpt_fd_remote_peer(c, fd, &made);
	if (made)
		return ckpt_fd_take_parked(c, fd, err);
	INJ(c, fd->fd, "pipe2", SYS_pipe2, (long)c->t->scratch, 0, 0, 0, 0, 0);
	int p[2];
	if (ckpt_peek(c->t->pid, c->t->scratch, p, sizeof(p)) < 0)
		return ckpt_fail(err, EIO, "fd %d: reading pipe2's answer", fd->fd);
	size_t pi = 0;
	const Krg__Ckpt__Fd *peer = remote ? remote : fd->has_peer ? ckpt_fd_entry_of(c->f, fd->peer, &pi) : NULL;
	bool reader = (fd->flags & O_ACCMODE) == O_RDONLY;
	const Krg__Ckpt__Fd *rd = reader ? fd : peer, *wr = reader ? peer : fd;
	/* The data goes in through the write end, from krg. */
	const Krg__Ckpt__Fd *holder = rd && (rd->has_data || rd->has_pipe_size) ? rd : fd;
	int r = pipe_refill(c, p[1], holder, fd->fd, err);
	if (r < 0)
		return r;
	if (!peer) {
		ckpt_syscall(c->t, err, SYS_close, reader ? p[1] : p[0], 0, 0, 0, 0, 0);
		return ckpt_fd_place(c, reader ? p[0] : p[1], fd, err);
	}
	if (remote) {
		r = ckpt_fd_park(c, reader ? p[1] : p[0], fd->peer_pid, fd->peer, err);
		return r < 0 ? r : ckpt_fd_place(c, reader ? p[0] : p[1], fd, err);
	}
	c->done[pi] = true;
	return ckpt_fd_place_pair(c, p[0], rd, p[1], wr, err);
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
	else
		r = pipe_refill(c, h, fd, fd->fd, err);
	ckpt_syscall(c->t, err, SYS_close, h, 0, 0, 0, 0, 0);
	return r < 0 ? r : ckpt_fd_place(c, n, fd, err);
}

/* ---- a pipe end opened a second time ----
 * Opening /proc/PID/fd/N of a pipe gives a new open file description of
 * the same pipe (its own flags and offset-less state), as a FIFO open does.
 * The restore does the same in the tracee, once the first description is
 * at its number (an earlier entry: the link pass keeps the first one seen).
 * O_NONBLOCK for the open: a reader whose writers are all gone would wait
 * for one; the saved flags are put back by ckpt_fd_place. */
static bool never_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return false;
}

static int pipe_reopen_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (!fd->has_reopen_of)
		return ckpt_fail(err, EBADMSG, "image: fd %d: a reopened pipe end without the fd it reopens", fd->fd);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd->reopen_of);
	long a = ckpt_fd_scratch(c, path, strlen(path) + 1, fd->fd, err);
	if (a < 0)
		return (int)a;
	int flags = ((int)fd->flags & (O_ACCMODE | O_NONBLOCK | O_DIRECT)) | O_NONBLOCK | O_CLOEXEC;
	long n = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, a, flags, 0, 0, 0);
	if (n < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(n), "fd %d: opening the pipe of fd %d again: %s", fd->fd, fd->reopen_of,
				 strerror(ckpt_fd_inj_errno(n)));
	return ckpt_fd_place(c, n, fd, err);
}

/* ---- a FIFO whose name is gone (unlinked while open) ----
 * Dump: as a FIFO, its path without " (deleted)", its mode. Restore: the
 * first entry of that FIFO in the process makes a FIFO of that mode under
 * a name of krg's in the same directory (else in /tmp), opens every entry
 * of it in the process there, puts the unread bytes back, and unlinks the
 * name: nothing shows in the directory, as before. */
#define DELETED_SUFFIX " (deleted)"

static bool fifo_deleted_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	size_t l = strlen(link), sl = strlen(DELETED_SUFFIX);
	return S_ISFIFO(st->st_mode) && link[0] == '/' && l > sl && !strcmp(link + l - sl, DELETED_SUFFIX);
}

static int fifo_deleted_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->has_ino = true;
	out->ino = st->st_ino;
	out->path = strndup(link, strlen(link) - strlen(DELETED_SUFFIX));
	if (!out->path)
		abort();
	out->has_mode = true;
	out->mode = st->st_mode & 07777;
	return 0;
}

/* mknod a FIFO named `name` in the tracee; the address of the name in
 * its scratch, or -errno. */
static long fifo_make(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, const char *name, struct ckpt_error *err)
{
	long a = ckpt_fd_scratch(c, name, strlen(name) + 1, fd->fd, err);
	if (a < 0)
		return a;
	long r = ckpt_syscall(c->t, err, SYS_mknodat, AT_FDCWD, a, S_IFIFO | 0600, 0, 0, 0);
	return r < 0 ? r : a;
}

static int fifo_deleted_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	/* A name of krg's next to the old one (same file system), else in /tmp. */
	char name[PATH_MAX];
	const char *slash = strrchr(fd->path, '/');
	int dl = (int)(slash - fd->path);
	snprintf(name, sizeof(name), "%.*s/.krg-fifo.%d.%llu", dl, fd->path, (int)c->t->pid, (unsigned long long)fd->ino);
	long a = fifo_make(c, fd, name, err);
	if (a < 0) {
		snprintf(name, sizeof(name), "/tmp/.krg-fifo.%d.%llu", (int)c->t->pid, (unsigned long long)fd->ino);
		a = fifo_make(c, fd, name, err);
	}
	if (a < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(a), "fd %d: making the unlinked FIFO %s again: %s", fd->fd, fd->path,
				 strerror(ckpt_fd_inj_errno(a)));
	/* O_RDWR holds the pipe while each end opens without blocking. */
	long h = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, a, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0, 0, 0);
	int r = 0;
	if (h < 0)
		r = ckpt_fail(err, ckpt_fd_inj_errno(h), "fd %d: opening the unlinked FIFO %s: %s", fd->fd, fd->path,
			      strerror(ckpt_fd_inj_errno(h)));
	else {
		/* Above every fd of the image: placing the ends must not land on it. */
		long hh = ckpt_syscall(c->t, err, SYS_fcntl, h, F_DUPFD_CLOEXEC, c->park_base, 0, 0, 0);
		ckpt_syscall(c->t, err, SYS_close, h, 0, 0, 0, 0, 0);
		h = hh;
		if (h < 0)
			r = ckpt_fail(err, ckpt_fd_inj_errno(h), "fd %d: moving the unlinked FIFO's holder: %s", fd->fd,
				      strerror(ckpt_fd_inj_errno(h)));
	}
	if (r == 0 && (r = (int)ckpt_syscall(c->t, err, SYS_fchmod, h, fd->has_mode ? fd->mode : 0600, 0, 0, 0, 0)) < 0)
		r = ckpt_fail(err, ckpt_fd_inj_errno(r), "fd %d: mode of the unlinked FIFO: %s", fd->fd, strerror(ckpt_fd_inj_errno(r)));
	/* Every entry of this FIFO in the process, this one first. */
	const Krg__Ckpt__Fd *data = NULL;
	for (size_t j = 0; j < c->f->n_fds && r == 0; j++) {
		const Krg__Ckpt__Fd *g = c->f->fds[j];
		if (g->has_dup_of || strcmp(g->kind, fd->kind) || g->ino != fd->ino || (g != fd && c->done[j]))
			continue;
		int flags = ((int)g->flags & (O_ACCMODE | O_NONBLOCK)) | O_NONBLOCK;
		long n = ckpt_syscall(c->t, err, SYS_openat, AT_FDCWD, a, flags, 0, 0, 0);
		if (n < 0) {
			r = ckpt_fail(err, ckpt_fd_inj_errno(n), "fd %d: opening the unlinked FIFO %s: %s", g->fd, fd->path,
				      strerror(ckpt_fd_inj_errno(n)));
			break;
		}
		if ((r = ckpt_fd_place(c, n, g, err)) < 0)
			break;
		if (g != fd)
			c->done[j] = true;
		if (g->has_data || g->has_pipe_size)
			data = g;
	}
	if (r == 0 && data)
		r = pipe_refill(c, h, data, fd->fd, err);
	if (h >= 0)
		ckpt_syscall(c->t, err, SYS_close, h, 0, 0, 0, 0, 0);
	ckpt_syscall(c->t, err, SYS_unlinkat, AT_FDCWD, a, 0, 0, 0, 0);
	return r;
}

const struct ckpt_fd_ops ckpt_fd_pipe_reopen = { CKPT_FD_OPS_VERSION, "pipe-reopen", false, never_match, pipe_dump, pipe_reopen_restore };
const struct ckpt_fd_ops ckpt_fd_fifo_deleted = { CKPT_FD_OPS_VERSION, "fifo-deleted", true, fifo_deleted_match, fifo_deleted_dump,
						   fifo_deleted_restore };
const struct ckpt_fd_ops ckpt_fd_pipe = { CKPT_FD_OPS_VERSION, "pipe", false, pipe_match, pipe_dump, pipe_restore };
const struct ckpt_fd_ops ckpt_fd_fifo = { CKPT_FD_OPS_VERSION, "fifo", true, fifo_match, pipe_dump, fifo_restore };

