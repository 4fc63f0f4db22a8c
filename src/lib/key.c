/* key.c — see key.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include "key.h"
#include "macro.h"

int krg_key_load(const char *path, uint8_t key[KRG_KEY_BYTES], char *err, size_t errlen)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char hex[2 * KRG_KEY_BYTES + 2];

	if (fd < 0) {
		int r = -errno;
		snprintf(err, errlen, "cannot open cluster key %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cluster key %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "cluster key %s is accessible by group or others (mode %04o); run: chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	ssize_t n = read(fd, hex, sizeof(hex));
	if (n < 0)
		return -errno;
	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
		n--;
	size_t bin_len = 0;
	if (n != 2 * KRG_KEY_BYTES ||
	    sodium_hex2bin(key, KRG_KEY_BYTES, hex, (size_t)n, NULL, &bin_len, NULL) != 0 || bin_len != KRG_KEY_BYTES) {
		snprintf(err, errlen, "cluster key %s must hold exactly %d hex digits", path, 2 * KRG_KEY_BYTES);
		return -EINVAL;
	}
	return 0;
}

int krg_key_generate(const char *path, char *err, size_t errlen)
{
	uint8_t key[KRG_KEY_BYTES];
	char hex[2 * KRG_KEY_BYTES + 1];

	if (sodium_init() < 0)
		return -EIO;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int r = -errno;
		snprintf(err, errlen, "cannot create cluster key %s: %s", path, strerror(errno));
		return r;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	hex[2 * KRG_KEY_BYTES] = '\n';
	if (write(fd, hex, sizeof(hex)) != (ssize_t)sizeof(hex)) {
		int r = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write cluster key %s", path);
		return r;
	}
	return fsync(fd) < 0 ? -errno : 0;
}
