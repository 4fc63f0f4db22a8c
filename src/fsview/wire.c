/* wire.c — blocking frames for the krg-fsview processes (wire.h). */
#include "fsview/wire.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int fsv_read_frame(int fd, uint8_t **buf, size_t *len)
{
	uint8_t h[4];
	int r = read_all(fd, h, 4);
	if (r < 0)
		return r;
	size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n > FSV_MAX_FRAME)
		return -EPROTO;
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return -ENOMEM;
	if ((r = read_all(fd, b, n)) < 0) {
		free(b);
		return r;
	}
	*buf = b;
	*len = n;
	return 0;
}

int fsv_write_frame2(int fd, const uint8_t *head, size_t hlen, const uint8_t *data, size_t dlen)
{
	size_t len = hlen + dlen;
	uint8_t h[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
	struct iovec iov[3] = { { h, 4 }, { (void *)head, hlen }, { (void *)data, dlen } };
	int i = 0;
	while (i < 3) {
		ssize_t w = writev(fd, iov + i, 3 - i);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		while (i < 3 && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < 3) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

int fsv_write_frame(int fd, const uint8_t *body, size_t len)
{
	return fsv_write_frame2(fd, body, len, NULL, 0);
}

size_t fsv_bytes_field(uint8_t *out, uint32_t field, size_t len)
{
	size_t n = 0;
	out[n++] = (uint8_t)(field << 3 | 2);
	do {
		out[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
		len >>= 7;
	} while (len);
	return n;
}
