/* files.c — file descriptors (files-<pid>.img). Each kind of fd is a
 * struct ckpt_fd_ops in fd_kinds[]; an fd no kind claims is refused with
 * a line naming the process, the fd and what it is, or dropped with
 * --ignore-unsupported (then it is simply absent, i.e. closed, after
 * restart). Kinds now: regular files, directories, /dev/null & co. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/kcmp.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/macro.h"

/* ---- regular files and directories: reopened by path ---- */

static bool reg_match(const struct stat *st, const char *link)
{
	size_t l = strlen(link);
	return S_ISREG(st->st_mode) && link[0] == '/' && !(l > 10 && !strcmp(link + l - 10, " (deleted)"));
}

static bool dir_match(const struct stat *st, const char *link)
{
	return S_ISDIR(st->st_mode) && link[0] == '/';
}

/* /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: char major 1. */
static bool chr_mem_match(const struct stat *st, const char *link)
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
static int path_restore(struct ckpt_tracee *t, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	size_t pl = strlen(fd->path) + 1;
	int r;
	if (pl > t->scratch_len || (r = ckpt_poke(t->pid, t->scratch, fd->path, pl)) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "fd %d: cannot pass the path %s", fd->fd, fd->path);
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

static const struct ckpt_fd_ops fd_reg = { CKPT_FD_OPS_VERSION, "reg", reg_match, path_dump, path_restore };
static const struct ckpt_fd_ops fd_dir = { CKPT_FD_OPS_VERSION, "dir", dir_match, path_dump, path_restore };
static const struct ckpt_fd_ops fd_chr_mem = { CKPT_FD_OPS_VERSION, "chr-mem", chr_mem_match, path_dump, path_restore };

static const struct ckpt_fd_ops *const fd_kinds[] = { &fd_reg, &fd_dir, &fd_chr_mem };

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
		return "socket";
	if (S_ISCHR(st->st_mode))
		return "character device (terminal or other)";
	if (S_ISBLK(st->st_mode))
		return "block device";
	if (!strncmp(link, "anon_inode:", 11))
		return "anonymous inode (eventfd, epoll, signalfd, timerfd, ...)";
	if (strstr(link, " (deleted)"))
		return "deleted file";
	if (!strncmp(link, "/memfd:", 7))
		return "memfd";
	return "unknown kind";
}

void ckpt_files_free(Krg__Ckpt__Files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_fds; i++) {
		free(f->fds[i]->kind);
		free(f->fds[i]->path);
		free(f->fds[i]);
	}
	free(f->fds);
	free(f);
}

int ckpt_files_dump(pid_t pid, bool ignore_unsupported, Krg__Ckpt__Files **out, struct ckpt_error *err)
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
			if (fd_kinds[k]->match(&st, link))
				ops = fd_kinds[k];
		if (!ops) {
			if (!ignore_unsupported) {
				if (!refused++)
					err->msg[0] = 0;
				ckpt_fail_append(err, "process %d fd %d: %s (%s) is not supported", pid, fd, describe(&st, link), link);
			}
			continue;
		}
		snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", pid, fd);
		if ((r = ckpt_read_file(p, info, sizeof(info))) < 0) {
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
	}
	closedir(d);
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

int ckpt_files_validate(const Krg__Ckpt__Files *f, struct ckpt_error *err)
{
	for (size_t i = 0; i < f->n_fds; i++) {
		const Krg__Ckpt__Fd *fd = f->fds[i];
		if (fd->fd < 0 || fd->fd > 1 << 20)
			return ckpt_fail(err, EBADMSG, "image: fd number %d is out of range", fd->fd);
		if (!kind_by_name(fd->kind))
			return ckpt_fail(err, EPROTO, "image: fd %d is of kind '%s', which this krg cannot restore", fd->fd, fd->kind);
		if (!fd->path || fd->path[0] != '/')
			return ckpt_fail(err, EBADMSG, "image: fd %d has no path", fd->fd);
		bool dup_found = false;
		for (size_t j = 0; j < i; j++) {
			if (f->fds[j]->fd == fd->fd)
				return ckpt_fail(err, EBADMSG, "image: fd %d appears twice", fd->fd);
			if (fd->has_dup_of && f->fds[j]->fd == fd->dup_of && !f->fds[j]->has_dup_of)
				dup_found = true;
		}
		if (fd->has_dup_of && !dup_found)
			return ckpt_fail(err, EBADMSG, "image: fd %d is a dup of fd %d, which comes nowhere before it", fd->fd, fd->dup_of);
	}
	return 0;
}

int ckpt_files_restore(struct ckpt_tracee *t, const Krg__Ckpt__Files *f, struct ckpt_error *err)
{
	/* Nothing of the restorer's survives: the process gets its own set. */
	long ret = ckpt_syscall(t, err, SYS_close_range, 0, ~0U, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "closing inherited fds: %s", strerror((int)-ret));
	for (size_t i = 0; i < f->n_fds; i++) {
		const Krg__Ckpt__Fd *fd = f->fds[i];
		if (fd->has_dup_of) {
			ret = ckpt_syscall(t, err, SYS_dup3, fd->dup_of, fd->fd, (fd->flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
			if (ret != fd->fd)
				return ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "fd %d: dup of fd %d: %s", fd->fd, fd->dup_of, strerror(ret < 0 ? (int)-ret : EIO));
			continue;
		}
		int r = kind_by_name(fd->kind)->restore(t, fd, err);
		if (r < 0)
			return r;
	}
	return 0;
}
