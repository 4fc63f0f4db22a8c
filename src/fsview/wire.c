/* wire.c — blocking frames for the krg-fsview processes (wire.h). */
#include "fsview/wire.h"
#include "lib/fileio.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* A frame's length (its 4 big-endian bytes), at most FSV_MAX_FRAME. */
static int read_len(int fd, size_t *n)
{
	uint8_t h[4];
	int r = krg_read_all(fd, h, 4);
	if (r < 0)
		return r;
	*n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	return *n > FSV_MAX_FRAME ? -EPROTO : 0;
}

int fsv_read_frame(int fd, uint8_t **buf, size_t *len)
{
	size_t n;
	int r = read_len(fd, &n);
	if (r < 0)
		return r;
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

int fsv_write_splice(int fd, int pipe, size_t n)
{
	while (n) {
		ssize_t k = splice(pipe, NULL, fd, NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		n -= (size_t)k;
	}
	return 0;
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

/* One field of a message, as walk_fields hands it over. */
struct field {
	uint64_t num;   /* its number */
	unsigned type;  /* wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t v;     /* a varint's value, a length-delimited field's length */
	size_t start;   /* where its key starts */
	size_t off;     /* where its value starts (a length-delimited field's bytes) */
};

/* The fields of p[0..avail), the start of a total-byte message (avail <=
 * total: a length-delimited field may run past avail, never past total),
 * each given to at, which returns true to stop there. 1: at stopped; 0:
 * every field read, ending exactly at avail; -1: malformed, or the last
 * field runs past avail. */
static int walk_fields(const uint8_t *p, size_t avail, size_t total, bool (*at)(const struct field *f, void *arg),
		       void *arg)
{
	size_t i = 0;
	while (i < avail) {
		struct field f = { .start = i };
		uint64_t key;
		if (!get_varint(p, avail, &i, &key))
			return -1;
		f.num = key >> 3;
		f.type = (unsigned)(key & 7);
		switch (f.type) {
		case 0:
			if (!get_varint(p, avail, &i, &f.v))
				return -1;
			f.off = i;
			break;
		case 1:
			f.off = i;
			i += 8;
			break;
		case 5:
			f.off = i;
			i += 4;
			break;
		case 2:
			if (!get_varint(p, avail, &i, &f.v) || f.v > total - i)
				return -1;
			f.off = i;
			i += f.v;
			break;
		default:
			return -1; /* groups: none in our messages */
		}
		if (at(&f, arg))
			return 1;
	}
	return i == avail ? 0 : -1;
}

struct split_last {
	uint32_t field;
	size_t total;
	size_t hlen, doff;
};

static bool at_split_last(const struct field *f, void *arg)
{
	struct split_last *s = arg;
	if (f->type != 2 || f->num != s->field || f->off + f->v != s->total)
		return false;
	s->hlen = f->start;
	s->doff = f->off;
	return true;
}

bool fsv_split_last(const uint8_t *p, size_t avail, size_t total, uint32_t field, size_t *hlen, size_t *doff)
{
	struct split_last s = { .field = field, .total = total };
	if (avail > total || walk_fields(p, avail, total, at_split_last, &s) != 1)
		return false;
	*hlen = s.hlen;
	*doff = s.doff;
	return true;
}

struct varint_field {
	uint32_t field;
	bool found;
	uint64_t v;
};

static bool at_varint_field(const struct field *f, void *arg)
{
	struct varint_field *s = arg;
	if (f->type == 0 && f->num == s->field) {
		s->v = f->v; /* the last one counts, as an unpack would have it */
		s->found = true;
	}
	return false;
}

bool fsv_varint_field(const uint8_t *p, size_t n, uint32_t field, uint64_t *out)
{
	struct varint_field s = { .field = field };
	if (walk_fields(p, n, n, at_varint_field, &s) != 0 || !s.found)
		return false;
	*out = s.v;
	return true;
}

int fsv_read_frame_start(int fd, uint32_t field, uint8_t **buf, size_t *got, size_t *total, size_t *hlen, size_t *doff)
{
	size_t n;
	int r = read_len(fd, &n);
	if (r < 0)
		return r;
	/* The head first (a request's or reply's fields but the bulk are a
	 * few dozen bytes): if the frame ends with a large `field`, its bytes
	 * are left where they are for the caller. */
	size_t m = n < 512 ? n : 512, ho, dof;
	uint8_t *b = malloc(n <= 512 ? (n ? n : 1) : 512);
	if (!b)
		return -ENOMEM;
	if ((r = krg_read_all(fd, b, m)) < 0)
		goto fail;
	if (n > m && fsv_split_last(b, m, n, field, &ho, &dof) && n - dof > FSV_SPLIT_MIN) {
		*buf = b;
		*got = m;
		*total = n;
		*hlen = ho;
		*doff = dof;
		return 1;
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
	*buf = b;
	*got = *total = *hlen = n;
	*doff = 0;
	return 0;
fail:
	free(b);
	return r;
}

int fsv_read_frame_split(int fd, uint32_t field, uint8_t **head, size_t *hlen, uint8_t **data, size_t *dlen)
{
	uint8_t *b;
	size_t got, n, doff;
	int r = fsv_read_frame_start(fd, field, &b, &got, &n, hlen, &doff);
	if (r < 0)
		return r;
	*head = b;
	*data = NULL;
	*dlen = 0;
	if (r == 0)
		return 0;
	/* The bulk bytes straight into a buffer of their own. */
	uint8_t *d = malloc(n - doff);
	if (!d) {
		free(b);
		return -ENOMEM;
	}
	memcpy(d, b + doff, got - doff);
	if ((r = krg_read_all(fd, d + (got - doff), n - got)) < 0) {
		free(d);
		free(b);
		return r;
	}
	*data = d;
	*dlen = n - doff;
	return 0;
}
