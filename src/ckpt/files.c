/* files.c — file descriptors (files-<pid>.img). Each kind of fd is a
 * struct ckpt_fd_ops in fd_kinds[]; an fd no kind claims is refused with
 * a line naming the process, the fd and what it is, or dropped with
 * --ignore-unsupported (then it is simply absent, i.e. closed, after
 * restart). One file per kind, CRIU-style (fd_*.c: regular files and
 * directories, terminals, inherited standard streams, pipes and FIFOs,
 * unnamed files, unix socketpairs, eventfd, timerfd, signalfd, epoll,
 * inotify, listening unix sockets), file locks in locks.c; here the
 * kinds' table, the dump of a process's fds, the pass that pairs the
 * ends of pipes and socketpairs, and what spans the processes of an
 * application.
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
int ckpt_fd_place_pair(struct ckpt_fd_rctx *c, long a, const Krg__Ckpt__Fd *fa, long b, const Krg__Ckpt__Fd *fb, struct ckpt_error *err)
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
int ckpt_fd_park(struct ckpt_fd_rctx *c, long tmp, int32_t for_pid, int32_t for_fd, struct ckpt_error *err)
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
int ckpt_fd_take_parked(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
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
const Krg__Ckpt__Fd *ckpt_fd_remote_peer(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, bool *made)
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
const Krg__Ckpt__Fd *ckpt_fd_entry_of(const Krg__Ckpt__Files *f, int n, size_t *idx)
{
	for (size_t i = 0; i < f->n_fds; i++)
		if (f->fds[i]->fd == n && !f->fds[i]->has_dup_of) {
			if (idx)
				*idx = i;
			return f->fds[i];
		}
	return NULL;
}

/* A refused fd, for the callers that act on it (ckpt.h). */
void ckpt_fd_note_refusal(struct ckpt_error *err, pid_t pid, int fd, enum ckpt_refusal_reason why)
{
	if (err->n_refused < CKPT_MAX_REFUSALS)
		err->refused[err->n_refused++] = (struct ckpt_refusal){ .pid = pid, .fd = fd, .reason = why };
	else
		err->refused_more++;
}

/* One more fd refused: its line appended to err (the first refusal
 * replaces what err said), its structured entry noted; *count counts
 * them. */
static void __attribute__((format(printf, 6, 0))) refuse_v(struct ckpt_error *err, int *count, pid_t pid, int fd,
							    enum ckpt_refusal_reason why, const char *fmt, va_list ap)
{
	if (!(*count)++) {
		err->msg[0] = 0;
		err->n_refused = err->refused_more = 0;
	}
	ckpt_fd_note_refusal(err, pid, fd, why);
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	ckpt_fail_append(err, "%s", line);
}

void __attribute__((format(printf, 6, 7))) ckpt_fd_refuse(struct link_state *ls, size_t i, int fd, enum ckpt_refusal_reason why,
							  struct ckpt_error *err, const char *fmt, ...)
{
	if (ls->ignore) {
		ls->drop[i] = true;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	refuse_v(err, ls->refused, ls->pid, fd, why, fmt, ap);
	va_end(ap);
}


static const struct ckpt_fd_ops *const fd_kinds[] = { &ckpt_fd_reg, &ckpt_fd_dir, &ckpt_fd_chr_mem, &ckpt_fd_tty, &ckpt_fd_pipe, &ckpt_fd_fifo, &ckpt_fd_fifo_deleted, &ckpt_fd_pipe_reopen, &ckpt_fd_eventfd, &ckpt_fd_timerfd, &ckpt_fd_signalfd, &ckpt_fd_inotify, &ckpt_fd_epoll, &ckpt_fd_deleted, &ckpt_fd_memfd, &ckpt_fd_unix, &ckpt_fd_unix_listen, &ckpt_fd_inherit };

static const struct ckpt_fd_ops *kind_by_name(const char *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (!strcmp(fd_kinds[i]->kind, k))
			return fd_kinds[i];
	return NULL;
}

/* What to call an fd we refuse, for the error line. */
const char *ckpt_fd_describe(const struct stat *st, const char *link)
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
		/* A pipe end opened again goes with the end it reopens (refused:
		 * the pipe's other end is outside). */
		for (size_t j = 0; j < i && e->has_reopen_of && !gone; j++)
			if (drop[j] && f->fds[j]->fd == e->reopen_of)
				gone = drop[i] = true;
		if (!gone)
			f->fds[n++] = e;
		else
			free_entry(e);
	}
	f->n_fds = n;
	for (size_t i = 0; i < n; i++)
		if (f->fds[i]->has_peer && !f->fds[i]->has_peer_pid && !ckpt_fd_entry_of(f, f->fds[i]->peer, NULL))
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
				/* A second open file description of this end
				 * (opened again through /proc/PID/fd/N): it is
				 * made the same way at restore. */
				free(g->kind);
				g->kind = ckpt_strdup(ckpt_fd_pipe_reopen.kind);
				g->has_reopen_of = true;
				g->reopen_of = (*slot)->fd;
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
			pid_t h = ckpt_fd_pipe_holder(&ls->pid, 1, e->ino);
			if (h && e->fd <= 2 && !(rd && wr)) {
				ckpt_fd_make_inherit(e);
				return 0;
			}
			if (h) {
				ckpt_fd_refuse(ls, i, e->fd, CKPT_REFUSED_PEER_OUTSIDE, err, "process %d fd %d: pipe (pipe:[%llu]) whose other end is in process %d is not supported yet", ls->pid,
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
	int r = ckpt_fd_pipe_peek(l, rd, err);
	close(l);
	return r;
}

/* Pair the ends of pipes and socketpairs, save what is queued in them. */
int ckpt_fd_link_pass(struct link_state *ls, Krg__Ckpt__Files *f, struct ckpt_error *err)
{
	int r = 0;
	for (size_t i = 0; i < f->n_fds && !r; i++) {
		Krg__Ckpt__Fd *e = f->fds[i];
		if (e->has_dup_of || ls->drop[i])
			continue;
		if (!strcmp(e->kind, "pipe") || !strcmp(e->kind, "fifo") || !strcmp(e->kind, "fifo-deleted"))
			r = link_pipe(ls, f, i, err);
		if (!strcmp(e->kind, "unix"))
			r = ckpt_fd_link_unix(ls, f, i, err);
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
			ops = &ckpt_fd_inherit;
		if (!ops) {
			if (!ignore_unsupported) {
				if (!refused++) {
					err->msg[0] = 0;
					err->n_refused = err->refused_more = 0;
				}
				ckpt_fd_note_refusal(err, pid, fd, CKPT_REFUSED_KIND);
				ckpt_fail_append(err, "process %d fd %d: %s (%s) is not supported", pid, fd, ckpt_fd_describe(&st, link), link);
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
		if (!e->has_dup_of && (r = ckpt_locks_dump(f, e, &st, info, err)) < 0)
			break;
		/* --snapshot-files: the content of a file open for writing, once
		 * per file, put back before it is reopened at restart. */
		if (snapshot && ops == &ckpt_fd_reg && !e->has_dup_of && (e->flags & O_ACCMODE) != O_RDONLY) {
			bool seen = false;
			for (size_t k = 0; k + 1 < f->n_fds && !seen; k++)
				seen = f->fds[k]->has_ino && f->fds[k]->ino == (uint64_t)st.st_ino && !strcmp(f->fds[k]->kind, "reg");
			e->has_ino = true;
			e->ino = st.st_ino;
			if (!seen && (r = ckpt_fd_snapshot_dump(pid, fd, &st, e, err)) < 0)
				break;
		}
	}
	closedir(d);
	if (!r) {
		struct link_state ls = { pid, ignore_unsupported, &refused, calloc(f->n_fds + 1, sizeof(bool)), in_app };
		if (!ls.drop)
			abort();
		r = ckpt_fd_link_pass(&ls, f, err);
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
	va_list ap;
	va_start(ap, fmt);
	refuse_v(err, &ar->refused, pid, fd, CKPT_REFUSED_PEER_OUTSIDE, fmt, ap);
	va_end(ap);
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
			Krg__Ckpt__Fd *p = (Krg__Ckpt__Fd *)ckpt_fd_entry_of(f[i], e->peer, NULL);
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
				long long peer = ckpt_fd_unix_peer_ino(e->ino);
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
			pid_t h = is_pipe ? ckpt_fd_pipe_holder(pids, n, e->ino) : 0;
			if (((is_pipe && h) || is_unix) && e->fd <= 2) {
				ckpt_fd_make_inherit(e);
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
						ckpt_fd_make_inherit(e);
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
						g = ckpt_fd_entry_of(f[j], e->share_fd, NULL);
				if (e->has_dup_of || !e->has_share_fd || !g || strcmp(g->kind, e->kind) || g->has_share_pid)
					return ckpt_fail(err, EBADMSG, "image: process %d fd %d shares fd %d of process %d, which is not restored before it",
							 f[i]->pid, e->fd, e->share_fd, e->share_pid);
			}
			if (e->has_peer_pid) {
				const Krg__Ckpt__Fd *g = NULL;
				for (size_t j = 0; j < n && !g; j++)
					if (j != i && f[j]->pid == e->peer_pid)
						g = ckpt_fd_entry_of(f[j], e->peer, NULL);
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
		const Krg__Ckpt__Fd *t = ckpt_fd_entry_of(f, fd->targets[k]->fd, NULL);
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
			const Krg__Ckpt__Fd *p = ckpt_fd_entry_of(f, fd->peer, NULL);
			if (fd->has_dup_of || !p || p == fd || strcmp(p->kind, fd->kind) || !p->has_peer || p->peer != fd->fd)
				return ckpt_fail(err, EBADMSG, "image: fd %d names fd %d as its other end, which does not name it back", fd->fd, fd->peer);
		}
		if (!strcmp(fd->kind, ckpt_fd_pipe_reopen.kind)) {
			/* It opens an earlier pipe entry again: restored before it. */
			size_t k = 0;
			const Krg__Ckpt__Fd *p = fd->has_reopen_of ? ckpt_fd_entry_of(f, fd->reopen_of, &k) : NULL;
			if (!p || k >= i || p->has_dup_of || strcmp(p->kind, ckpt_fd_pipe.kind))
				return ckpt_fail(err, EBADMSG, "image: fd %d reopens fd %d, which is no earlier pipe of the process", fd->fd,
						 fd->has_reopen_of ? fd->reopen_of : -1);
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
	const Krg__Ckpt__Fd *o = fd->has_dup_of ? ckpt_fd_entry_of(f, fd->dup_of, NULL) : fd;
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

/* Close every fd of the tracee but keep[0..n). */
static long close_all_but(struct ckpt_tracee *t, const int *keep, size_t n, struct ckpt_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
	DIR *d = opendir(path);
	if (!d)
		return ckpt_fail(err, errno, "listing the fds of process %d: %s", t->pid, strerror(errno));
	int fds[1024];
	size_t nf = 0;
	struct dirent *e;
	while ((e = readdir(d)) && nf < sizeof(fds) / sizeof(fds[0])) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		bool k = false;
		for (size_t i = 0; i < n; i++)
			k |= keep[i] == fd;
		if (!k)
			fds[nf++] = fd;
	}
	bool more = e != NULL;
	closedir(d);
	if (more)
		return ckpt_fail(err, EMFILE, "process %d has more than %zu fds to close", t->pid, nf);
	for (size_t i = 0; i < nf; i++) {
		long r = ckpt_syscall(t, err, SYS_close, fds[i], 0, 0, 0, 0, 0);
		if (r < 0 && r != -EBADF)
			return ckpt_fail(err, ckpt_fd_inj_errno(r), "closing fd %d of process %d: %s", fds[i], t->pid, strerror(ckpt_fd_inj_errno(r)));
	}
	return 0;
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
	/* An existing process restored in place keeps the fds it is told to
	 * (its real ends of what was forwarded), out of the image's way; the
	 * rest of its fds go. */
	long kept[CKPT_MAX_KEEP];
	size_t nkept = idx == 0 ? app->n_keep : 0;
	if (nkept > CKPT_MAX_KEEP) {
		free(c.done);
		return ckpt_fail(err, E2BIG, "%zu fds to keep, more than %d", nkept, CKPT_MAX_KEEP);
	}
	long ret = 0;
	if (nkept) {
		if ((ret = close_all_but(t, app->keep_fd, nkept, err)) < 0) {
			free(c.done);
			return (int)ret;
		}
		for (size_t k = 0; k < nkept; k++)
			kept[k] = -1;
		for (size_t k = 0; k < nkept; k++) {
			kept[k] = ckpt_syscall(t, err, SYS_fcntl, app->keep_fd[k], F_DUPFD_CLOEXEC, c.park_base, 0, 0, 0);
			if (kept[k] < 0) {
				free(c.done);
				return ckpt_fail(err, ckpt_fd_inj_errno(kept[k]), "fd %d: moving the kept fd %d aside: %s", app->keep_num[k],
						 app->keep_fd[k], strerror(ckpt_fd_inj_errno(kept[k])));
			}
		}
		for (size_t k = 0; k < nkept; k++) {
			bool moved_onto = false;  /* another kept fd landed on its number */
			for (size_t j = 0; j < nkept; j++)
				moved_onto |= kept[j] == app->keep_fd[k];
			if (!moved_onto)
				ckpt_syscall(t, err, SYS_close, app->keep_fd[k], 0, 0, 0, 0, 0);
		}
	} else {
		/* Nothing of the restorer's survives but, for inherited standard
		 * streams, its fds 0-2 (this shell is a copy of it), kept aside. */
		ret = ckpt_syscall(t, err, SYS_close_range, inherits ? 3 : 0, ~0U, 0, 0, 0, 0);
	}
	if (ret < 0) {
		free(c.done);
		return ckpt_fail(err, (int)-ret, "closing inherited fds: %s", strerror((int)-ret));
	}
	/* The kept fds first, at their numbers: the image's entries there (a
	 * FIFO standing in for them) are not restored; later dups of them
	 * follow them. */
	for (size_t i = 0; i < f->n_fds; i++)
		for (size_t k = 0; k < nkept; k++) {
			const Krg__Ckpt__Fd *fd = f->fds[i];
			if (fd->fd != app->keep_num[k])
				continue;  /* (a dup of a lower fd in the image: the kept one all the same) */
			ret = ckpt_syscall(t, err, SYS_dup3, kept[k], fd->fd, (fd->flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
			if (ret != fd->fd) {
				free(c.done);
				return ckpt_fail(err, ret < 0 ? ckpt_fd_inj_errno(ret) : EIO, "fd %d: putting the kept fd back: %s", fd->fd,
						 strerror(ret < 0 ? ckpt_fd_inj_errno(ret) : EIO));
			}
			c.done[i] = true;
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
	for (size_t k = 0; k < nkept; k++)
		ckpt_syscall(t, err, SYS_close, kept[k], 0, 0, 0, 0, 0);
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
