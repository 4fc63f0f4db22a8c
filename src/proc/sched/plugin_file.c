/* plugin_file.c — open a policy plugin so that what is checked is what
 * krgd loads.
 *
 * A plugin runs as root inside every node's krgd, and the cluster state
 * replays its path at every krgd start, so a file someone other than root
 * could write or replace (itself, or by renaming a directory above it)
 * would give that someone root on every node. The path is therefore walked
 * one component at a time from "/" with O_NOFOLLOW, each directory checked
 * on the descriptor that was opened (no symbolic links, owned by root, not
 * writable by group or others: a sticky /tmp lets its users create names,
 * so it is not enough), and the file too; the caller hashes and dlopens
 * that same descriptor through /proc/self/fd, so nothing can be swapped
 * between the check and the load.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/macro.h"
#include "proc/sched/sched-int.h"

#define PLUGIN_MAX_BYTES (64u << 20) /* hashed on krgd's loop: bounded */

/* Root's, and only root can change it. */
static int check_owner(const struct stat *st, const char *what, const char *path, char *err, size_t errlen)
{
	if (st->st_uid != 0) {
		snprintf(err, errlen, "%s %s is owned by uid %u, not root", what, path, (unsigned)st->st_uid);
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s %s is writable by group or others (mode %04o)", what, path,
			 (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int hash_fd(int fd, uint8_t sha256[SCHED_SHA256_BYTES], const char *path, char *err, size_t errlen)
{
	crypto_hash_sha256_state h;
	uint8_t buf[65536];
	off_t off = 0;
	crypto_hash_sha256_init(&h);
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			return -errno;
		}
		if (n == 0)
			break;
		off += n;
		if ((uint64_t)off > PLUGIN_MAX_BYTES) {
			snprintf(err, errlen, "%s is larger than %u MiB", path, PLUGIN_MAX_BYTES >> 20);
			return -EFBIG;
		}
		crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
	}
	crypto_hash_sha256_final(&h, sha256);
	return 0;
}

int sched_plugin_open(const char *path, int *fd_out, uint8_t sha256[SCHED_SHA256_BYTES], char *err, size_t errlen)
{
	char walked[SCHED_PATH_MAX] = "", comp[SCHED_PATH_MAX];
	struct stat st;
	if (path[0] != '/') {
		snprintf(err, errlen, "%s: not an absolute path", path);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(walked) || strchr(path, '\n')) {
		snprintf(err, errlen, "%.64s...: path too long or with a newline", path);
		return -ENAMETOOLONG;
	}
	_cleanup_close_ int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || fstat(dir, &st) < 0) {
		snprintf(err, errlen, "cannot open /: %s", strerror(errno));
		return -errno;
	}
	int r = check_owner(&st, "directory", "/", err, errlen);
	if (r < 0)
		return r;
	const char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) {
			snprintf(err, errlen, "%s: names a directory, not a file", path);
			return -EISDIR;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			snprintf(err, errlen, "%s: '.' or '..' in the path (give the real path)", path);
			return -EINVAL;
		}
		size_t wl = strlen(walked);
		snprintf(walked + wl, sizeof(walked) - wl, "/%s", comp);
		if (!slash)
			break;
		int next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", walked,
				 r == -ENOTDIR || r == -ELOOP ? "a symbolic link or not a directory (give the real path)"
							      : strerror(-r));
			return r;
		}
		close(dir);
		dir = next;
		if (fstat(dir, &st) < 0) {
			snprintf(err, errlen, "cannot stat %s: %s", walked, strerror(errno));
			return -errno;
		}
		if ((r = check_owner(&st, "directory", walked, err, errlen)) < 0)
			return r;
		p = slash;
	}
	/* O_NONBLOCK: a FIFO planted here must not block krgd's loop before
	 * fstat says it is not a regular file. */
	_cleanup_close_ int fd = openat(dir, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, r == -ELOOP ? "a symbolic link (give the real path)" : strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if ((r = check_owner(&st, "file", path, err, errlen)) < 0 || (r = hash_fd(fd, sha256, path, err, errlen)) < 0)
		return r;
	*fd_out = TAKE_FD(fd);
	return 0;
}

void sched_sha256_hex(const uint8_t sha256[SCHED_SHA256_BYTES], char hex[SCHED_SHA256_HEX])
{
	sodium_bin2hex(hex, SCHED_SHA256_HEX, sha256, SCHED_SHA256_BYTES);
}
