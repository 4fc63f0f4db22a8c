/* wire.c — blocking frames for the krg-fsview processes (wire.h). */
#include "fsview/wire.h"
#include "lib/fileio.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int fsv_read_frame(int fd, uint8_t **buf, size_t *len)
{
	uint8_t h[4];
	int r = krg_read_all(fd, h, 4);
	if (r < 0)
		return r;
	size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n > FSV_MAX_FRAME)
		return -EPROTO;
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return -ENOMEM;
	if ((r = krg_read_all(fd, b, n)) < 0) {
		free(b);
		return r;
	}
	*buf = b;
	*len = n;
	return 0;
}

/* Every byte of iov[0..n), in order; -errno. */
static int writev_all(int fd, struct iovec *iov, int n)
{
	int i = 0;
	while (i < n && !iov[i].iov_len)
		i++;
	while (i < n) {
		ssize_t w = writev(fd, iov + i, n - i);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		while (i < n && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < n) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* The length (len: hlen + the data's, which may follow later), head, data. */
static int write_frame(int fd, const uint8_t *head, size_t hlen, const uint8_t *data, size_t dlen, size_t len)
{
	uint8_t h[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
	struct iovec iov[3] = { { h, 4 }, { (void *)head, hlen }, { (void *)data, dlen } };
	return writev_all(fd, iov, 3);
}

int fsv_write_frame2(int fd, const uint8_t *head, size_t hlen, const uint8_t *data, size_t dlen)
{
	return write_frame(fd, head, hlen, data, dlen, hlen + dlen);
}

int fsv_write_head(int fd, const uint8_t *head, size_t hlen, size_t dlen)
{
	return write_frame(fd, head, hlen, NULL, 0, hlen + dlen);
}

int fsv_write_raw(int fd, const uint8_t *p, size_t n)
{
	struct iovec iov = { (void *)p, n };
	return writev_all(fd, &iov, 1) < 0 ? -EIO : 0;
}

int fsv_write_frame(int fd, const uint8_t *body, size_t len)
{
	return fsv_write_frame2(fd, body, len, NULL, 0);
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	do {
		out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

size_t fsv_varint_key(uint8_t *out, uint32_t field, uint64_t v)
{
	out[0] = (uint8_t)(field << 3);
	return 1 + put_varint(out + 1, v);
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

/* A varint at p[*i..n), *i moved past it. */
static bool get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	*v = 0;
	for (unsigned s = 0; *i < n && s < 64; s += 7) {
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

bool fsv_split_last(const uint8_t *p, size_t avail, size_t total, uint32_t field, size_t *hlen, size_t *doff)
{
	size_t i = 0;
	if (avail > total)
		return false;
	while (i < avail) {
		size_t start = i;
		uint64_t key, v;
		if (!get_varint(p, avail, &i, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!get_varint(p, avail, &i, &v))
				return false;
			break;
		case 1:
			i += 8;
			break;
		case 5:
			i += 4;
			break;
		case 2:
			if (!get_varint(p, avail, &i, &v) || v > total - i)
				return false;
			if (key >> 3 == field && i + v == total) {
				*hlen = start;
				*doff = i;
				return true;
			}
			i += v;
			break;
		default:
			return false; /* groups: none in our messages */
		}
	}
	return false;
}

bool fsv_varint_field(const uint8_t *p, size_t n, uint32_t field, uint64_t *out)
{
	size_t i = 0;
	bool found = false;
	while (i < n) {
		uint64_t key, v;
		if (!get_varint(p, n, &i, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!get_varint(p, n, &i, &v))
				return false;
			if (key >> 3 == field) {
				*out = v;
				found = true;
			}
			break;
		case 1:
			i += 8;
			break;
		case 5:
			i += 4;
			break;
		case 2:
			if (!get_varint(p, n, &i, &v) || v > n - i)
				return false;
			i += v;
			break;
		default:
			return false;
		}
	}
	return found && i == n;
}

int fsv_read_frame_split(int fd, uint32_t field, uint8_t **head, size_t *hlen, uint8_t **data, size_t *dlen)
{
	uint8_t h[4];
	int r = krg_read_all(fd, h, 4);
	if (r < 0)
		return r;
	size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n > FSV_MAX_FRAME)
		return -EPROTO;
	/* The head first (a request's or reply's fields but the bulk are a
	 * few dozen bytes): if the frame ends with a large `field`, its bytes
	 * are read straight into a buffer of their own. */
	size_t m = n < 512 ? n : 512, ho, doff;
	uint8_t *b = malloc(n <= 512 ? (n ? n : 1) : 512);
	if (!b)
		return -ENOMEM;
	if ((r = krg_read_all(fd, b, m)) < 0)
		goto fail;
	*data = NULL;
	*dlen = 0;
	if (n > m && fsv_split_last(b, m, n, field, &ho, &doff) && n - doff > FSV_SPLIT_MIN) {
		uint8_t *d = malloc(n - doff);
		if (!d) {
			r = -ENOMEM;
			goto fail;
		}
		memcpy(d, b + doff, m - doff);
		if ((r = krg_read_all(fd, d + (m - doff), n - m)) < 0) {
			free(d);
			goto fail;
		}
		*head = b;
		*hlen = ho;
		*data = d;
		*dlen = n - doff;
		return 0;
	}
	if (n > m) {
		uint8_t *nb = realloc(b, n);
		if (!nb) {
			r = -ENOMEM;
			goto fail;
		}
		b = nb;
		if ((r = krg_read_all(fd, b + m, n - m)) < 0)
			goto fail;
	}
	*head = b;
	*hlen = n;
	return 0;
fail:
	free(b);
	return r;
}
