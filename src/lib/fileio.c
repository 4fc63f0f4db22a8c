/* fileio.c — see fileio.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/fileio.h"
#include "lib/macro.h"

/* EAGAIN on fd: wait until it is ready for `events`. */
static void wait_ready(int fd, short events)
{
	struct pollfd pf = { .fd = fd, .events = events };
	while (poll(&pf, 1, -1) < 0 && errno == EINTR)
		;
}

static int write_all(int fd, const void *buf, size_t len, bool wait)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && wait) {
			wait_ready(fd, POLLOUT);
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int krg_write_all(int fd, const void *buf, size_t len)
{
	return write_all(fd, buf, len, true);
}

int krg_write_all_nowait(int fd, const void *buf, size_t len)
{
	return write_all(fd, buf, len, false);
}

int krg_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			wait_ready(fd, POLLIN);
			continue;
		}
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

ssize_t krg_read_small(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off + 1 < len) {
		ssize_t r = read(fd, buf + off, len - 1 - off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	buf[off] = 0;
	return (ssize_t)off;
}

int krg_rm_tree(int dirfd, const char *name, uint64_t *bytes)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0)
			return -errno;
		if (bytes && S_ISREG(st.st_mode))
			*bytes += (uint64_t)st.st_size;
		return 0;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	int r = 0, k;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (k = krg_rm_tree(fd, e->d_name, bytes)) < 0 && !r)
			r = k;
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && !r)
		r = -errno;
	return r;
}

/* One level of krg_tree_bytes; fd is consumed. Depth-bounded: an image
 * is a few levels deep, a tree deeper than 64 is not counted further. */
static int tree_bytes_at(int fd, unsigned depth, uint64_t *bytes)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;  /* removed meanwhile */
		if (S_ISREG(st.st_mode))
			*bytes += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode) && depth < 64) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				r = tree_bytes_at(sub, depth + 1, bytes);
		}
	}
	closedir(d);
	return r;
}

int krg_tree_bytes(const char *path, uint64_t *bytes)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		*bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
		return 0;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return tree_bytes_at(fd, 0, bytes);
}
