/* fd_inotify.c — inotify: each watch (wd, mask) from fdinfo, its file
 * found by name at the dump (open_by_handle_at on the file handle fdinfo
 * gives, then the name the kernel knows for it). At restore:
 * inotify_init1, then the watches in wd order on those paths, each with
 * its old wd (wds are handed out in increasing order: the gaps of watches
 * removed before the dump are made again by adding and removing the same
 * path, and the IN_IGNORED events that leaves are read away). Events
 * queued but not read at the dump are not carried (as CRIU). A watched
 * file that has no name any more is refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ckpt/fd-int.h"
#include "lib/macro.h"

#define INOTIFY_MAX_WATCHES 65536
#define HANDLE_MAX 128

static bool inotify_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	return !strcmp(link, "anon_inode:inotify");
}

/* The mount point, in pid's view, of the file system with device dev (as
 * the kernel encodes it in fdinfo: major << 20 | minor). */
static int mount_of(pid_t pid, unsigned long sdev, char *out, size_t len)
{
	char p[64], line[4096];
	snprintf(p, sizeof(p), "/proc/%d/mountinfo", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -errno;
	unsigned maj = (unsigned)(sdev >> 20), min = (unsigned)(sdev & 0xfffff);
	int r = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		unsigned a, b;
		char root[1024], mp[1024];
		if (sscanf(line, "%*u %*u %u:%u %1023s %1023s", &a, &b, root, mp) == 4 && a == maj && b == min) {
			snprintf(out, len, "/proc/%d/root%s", pid, mp);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static int hexbytes(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EPROTO;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* The path of the watched file, checked to be that file (same inode). */
static int watch_path(pid_t pid, unsigned long sdev, unsigned long ino, unsigned nbytes, int type, const char *hex, char **path)
{
	char mp[1200], p[64], name[4096];
	union {
		struct file_handle h;
		unsigned char raw[sizeof(struct file_handle) + HANDLE_MAX];
	} fh;
	if (nbytes == 0 || nbytes > HANDLE_MAX || hexbytes(hex, fh.h.f_handle, nbytes) < 0)
		return -EPROTO;
	fh.h.handle_bytes = nbytes;
	fh.h.handle_type = type;
	int r = mount_of(pid, sdev, mp, sizeof(mp));
	if (r < 0)
		return r;
	/* Not O_PATH: open_by_handle_at takes only a real open file there. */
	_cleanup_close_ int m = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	_cleanup_close_ int fd = open_by_handle_at(m, &fh.h, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, name, sizeof(name) - 1);
	if (n <= 0)
		return -ENOENT;
	name[n] = 0;
	struct stat st;
	if (name[0] != '/' || strstr(name, " (deleted)") || stat(name, &st) < 0 || st.st_ino != ino)
		return -ENOENT;
	*path = strdup(name);
	return *path ? 0 : -ENOMEM;
}

static int add_watch(Krg__Ckpt__Fd *out, int wd, uint32_t mask, char *path)
{
	Krg__Ckpt__InotifyWatch **w = realloc(out->watches, (out->n_watches + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	out->watches = w;
	Krg__Ckpt__InotifyWatch *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	krg__ckpt__inotify_watch__init(e);
	e->wd = wd;
	e->mask = mask;
	e->path = path;
	w[out->n_watches++] = e;
	return 0;
}

static int cmp_wd(const void *a, const void *b)
{
	int x = (*(Krg__Ckpt__InotifyWatch *const *)a)->wd, y = (*(Krg__Ckpt__InotifyWatch *const *)b)->wd;
	return (x > y) - (x < y);
}

static int inotify_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	static char info[1 << 20];
	int r = ckpt_fd_fdinfo(pid, fd, info, sizeof(info), err);
	if (r < 0)
		return r;
	for (const char *p = strstr(info, "inotify wd:"); p; p = strstr(p + 11, "inotify wd:")) {
		int wd, type, off = 0;
		unsigned long ino, sdev;
		unsigned mask, ign, nbytes;
		if (sscanf(p, "inotify wd:%d ino:%lx sdev:%lx mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%n", &wd,
			   &ino, &sdev, &mask, &ign, &nbytes, &type, &off) != 7 || !off || wd <= 0)
			return ckpt_fail(err, EPROTO, "process %d fd %d: inotify fdinfo not understood", pid, fd);
		if (out->n_watches >= INOTIFY_MAX_WATCHES)
			return ckpt_fail(err, E2BIG, "process %d fd %d: over %d inotify watches", pid, fd, INOTIFY_MAX_WATCHES);
		char *path = NULL;
		r = watch_path(pid, sdev, ino, nbytes, type, p + off, &path);
		if (r < 0)
			return ckpt_fail(err, ENOTSUP, "process %d fd %d: inotify watch %d: its file (inode %lu) has no name to watch again (%s)",
					 pid, fd, wd, ino, strerror(-r));
		if (add_watch(out, wd, mask, path) < 0) {
			free(path);
			return ckpt_fail(err, ENOMEM, "process %d fd %d: out of memory", pid, fd);
		}
	}
	qsort(out->watches, out->n_watches, sizeof(*out->watches), cmp_wd);
	return 0;
}

/* Events our own add/remove pairs left (IN_IGNORED), read away through a
 * copy of the fd (the same open file: O_NONBLOCK is set back by place). */
static int drain(struct ckpt_fd_rctx *c, long tfd, int fdnum, struct ckpt_error *err)
{
	int l = ckpt_fd_rgetfd(c, tfd, fdnum, err);
	if (l < 0)
		return l;
	char buf[4096];
	fcntl(l, F_SETFL, O_NONBLOCK);
	while (read(l, buf, sizeof(buf)) > 0)
		;
	close(l);
	return 0;
}

static int inotify_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long in = INJ(c, fd->fd, "inotify_init1", SYS_inotify_init1, 0, 0, 0, 0, 0, 0);
	bool burnt = false;
	for (size_t i = 0; i < fd->n_watches; i++) {
		const Krg__Ckpt__InotifyWatch *w = fd->watches[i];
		long a = ckpt_fd_scratch(c, w->path, strlen(w->path) + 1, fd->fd, err);
		if (a < 0)
			return (int)a;
		for (;;) {
			long got = ckpt_syscall(c->t, err, SYS_inotify_add_watch, in, a, w->mask & ~IN_MASK_CREATE, 0, 0, 0);
			if (got < 0)
				return ckpt_fail(err, ckpt_fd_inj_errno(got), "fd %d: inotify watch %d on %s: %s", fd->fd, w->wd, w->path,
						 strerror(ckpt_fd_inj_errno(got)));
			if (got == w->wd)
				break;
			if (got > w->wd)
				return ckpt_fail(err, EEXIST, "fd %d: inotify watch %d on %s came back as watch %ld", fd->fd, w->wd, w->path, got);
			/* A gap (a watch removed before the dump): burn that wd. */
			ckpt_syscall(c->t, err, SYS_inotify_rm_watch, in, got, 0, 0, 0, 0);
			burnt = true;
		}
	}
	if (burnt) {
		int r = drain(c, in, fd->fd, err);
		if (r < 0)
			return r;
	}
	return ckpt_fd_place(c, in, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_inotify = { CKPT_FD_OPS_VERSION, "inotify", false, inotify_match, inotify_dump, inotify_restore };
