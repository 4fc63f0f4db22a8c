/* stdio_wire.c — zero-copy encoding and decoding of proc.proto's Data and
 * Io bulk messages (stdio_wire.h), on the protobuf wire format: a key
 * varint (field << 3 | wire type) before each field; varints are 7 bits
 * per byte, low first; wire type 2 is a length varint then the bytes. */
#include <errno.h>
#include <stdbool.h>
#include "proto/stdio_wire.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t put_varint(uint8_t *o, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		o[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	o[n++] = (uint8_t)v;
	return n;
}

static size_t put_key(uint8_t *o, unsigned field, unsigned wt)
{
	return put_varint(o, (uint64_t)field << 3 | wt);
}

size_t krg_wire_data_head(uint8_t head[KRG_WIRE_HEADROOM], uint64_t stream, uint32_t fd, size_t len)
{
	/* Field order as protobuf-c packs it: stream (1), fd (2), data (3). */
	size_t n = put_key(head, 1, WT_VARINT);
	n += put_varint(head + n, stream);
	n += put_key(head + n, 2, WT_VARINT);
	n += put_varint(head + n, fd);
	n += put_key(head + n, 3, WT_LEN);
	n += put_varint(head + n, len);
	return n;
}

size_t krg_wire_io_head(uint8_t head[KRG_WIRE_HEADROOM], uint32_t fd, size_t len)
{
	size_t n = put_key(head, 1, WT_VARINT);
	n += put_varint(head + n, fd);
	n += put_key(head + n, 2, WT_LEN);
	n += put_varint(head + n, len);
	return n;
}

/* One field of a message. */
struct field {
	unsigned num, wt;
	uint64_t v;           /* WT_VARINT */
	const uint8_t *p;     /* WT_LEN */
	size_t len;
};

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (*p == end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EBADMSG; /* more than 10 bytes */
}

/* Next field at *p, or 0 at the end; -EBADMSG if malformed. */
static int next_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
	if (*p == end)
		return 0;
	uint64_t key;
	if (get_varint(p, end, &key) < 0 || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return -EBADMSG;
	f->num = (unsigned)(key >> 3);
	f->wt = (unsigned)(key & 7);
	switch (f->wt) {
	case WT_VARINT:
		return get_varint(p, end, &f->v) < 0 ? -EBADMSG : 1;
	case WT_I64:
	case WT_I32: {
		size_t n = f->wt == WT_I64 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -EBADMSG;
		*p += n;
		return 1;
	}
	case WT_LEN: {
		uint64_t n;
		if (get_varint(p, end, &n) < 0 || n > (uint64_t)(end - *p))
			return -EBADMSG;
		f->p = *p;
		f->len = (size_t)n;
		*p += n;
		return 1;
	}
	default:
		return -EBADMSG; /* groups: none in these messages */
	}
}

int krg_wire_data_view(const uint8_t *buf, size_t len, Krg__Proc__Data *d)
{
	*d = (Krg__Proc__Data)KRG__PROC__DATA__INIT;
	const uint8_t *p = buf, *end = buf + len;
	bool has_stream = false, has_fd = false;
	struct field f;
	int r;
	while ((r = next_field(&p, end, &f)) > 0) {
		unsigned want = f.num == 3 ? WT_LEN : WT_VARINT;
		if (f.num > 4)
			continue; /* unknown: skipped, as protobuf-c does */
		if (f.wt != want)
			return -EBADMSG;
		switch (f.num) {
		case 1:
			d->stream = f.v;
			has_stream = true;
			break;
		case 2:
			d->fd = (uint32_t)f.v;
			has_fd = true;
			break;
		case 3:
			d->has_data = true;
			d->data.data = (uint8_t *)f.p;
			d->data.len = f.len;
			break;
		case 4:
			d->has_eof = true;
			d->eof = f.v != 0;
			break;
		}
	}
	return r < 0 || !has_stream || !has_fd ? -EBADMSG : 0;
}

int krg_wire_io_data_view(const uint8_t *buf, size_t len, uint32_t *fd, const uint8_t **data, size_t *dlen)
{
	const uint8_t *p = buf, *end = buf + len;
	bool has_fd = false, has_data = false;
	struct field f;
	int r;
	while ((r = next_field(&p, end, &f)) > 0) {
		if (f.num == 1 && f.wt == WT_VARINT) {
			*fd = (uint32_t)f.v;
			has_fd = true;
		} else if (f.num == 2 && f.wt == WT_LEN) {
			*data = f.p;
			*dlen = f.len;
			has_data = true;
		} else {
			/* Anything else (or a known field of the wrong type, which
			 * protobuf-c will refuse): the general decoder decides. */
			return 0;
		}
	}
	if (r < 0)
		return -EBADMSG;
	if (!has_data) {
		*data = NULL;
		*dlen = 0;
	}
	if (!has_fd)
		*fd = 0;
	return 1;
}
