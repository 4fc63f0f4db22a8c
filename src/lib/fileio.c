/* fileio.c — see fileio.h. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "lib/fileio.h"
#include "lib/macro.h"

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
