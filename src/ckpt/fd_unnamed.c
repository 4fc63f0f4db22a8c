/* fd_unnamed.c — files without a name: deleted-but-open files and memfd (content saved) (a part of files.c, fd-int.h). */
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

/* The content of st's file through l, and its mode, into out. */
static int read_content(pid_t pid, int fd, int l, const struct stat *st, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	out->has_data = true;
	out->data.len = (size_t)st->st_size;
	out->data.data = malloc(out->data.len + 1);
	if (!out->data.data)
		abort();
	for (size_t done = 0; done < out->data.len;) {
		ssize_t n = pread(l, out->data.data + done, out->data.len - done, (off_t)done);
		if (n <= 0)
			return ckpt_fail(err, n < 0 ? errno : EIO, "process %d fd %d: reading %s: %s", pid, fd, out->path,
					 n < 0 ? strerror(errno) : "it shrank");
		done += (size_t)n;
	}
	out->has_mode = true;
	out->mode = st->st_mode & 07777;
	return 0;
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
	int r = read_content(pid, fd, l, st, out, err);
	if (r < 0) {
		close(l);
		return r;
	}
	out->has_uid = out->has_gid = true;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	*lfd = l;
	return 0;
}

/* The content of a regular file the process has open, maybe write-only:
 * read through a new read-only open of /proc/PID/fd/N. */
int ckpt_fd_snapshot_dump(pid_t pid, int fd, const struct stat *st, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	if ((uint64_t)st->st_size > CKPT_FILE_MAX)
		return ckpt_fail(err, EFBIG, "process %d fd %d: %s holds %lld bytes, more than krg saves (%lu MiB)", pid, fd, out->path,
				 (long long)st->st_size, CKPT_FILE_MAX >> 20);
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd/%d", pid, fd);
	_cleanup_close_ int l = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (l < 0)
		return ckpt_fail(err, errno, "process %d fd %d: opening %s to save it: %s", pid, fd, out->path, strerror(errno));
	return read_content(pid, fd, l, st, out, err);
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

const struct ckpt_fd_ops ckpt_fd_deleted = { CKPT_FD_OPS_VERSION, "deleted", true, deleted_match, deleted_dump, deleted_restore };
const struct ckpt_fd_ops ckpt_fd_memfd = { CKPT_FD_OPS_VERSION, "memfd", true, memfd_match, memfd_dump, memfd_restore };

