/* filemsg.c — "mig.file" without copying its data (filemsg.h). */
#include <errno.h>
#include <string.h>
#include "proc/migrate/filemsg.h"

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		p[n++] = (uint8_t)(v | 0x80);
	p[n++] = (uint8_t)v;
	return n;
}

size_t mig_file_head(uint8_t *m, uint64_t xfer, const char *name, uint64_t offset, size_t data_len, bool last, bool end)
{
	size_t nl = strlen(name), n = 0;
	m[n++] = 1 << 3 | 0;  /* xfer: varint */
	n += put_varint(m + n, xfer);
	m[n++] = 2 << 3 | 2;  /* name: length-delimited */
	n += put_varint(m + n, nl);
	memcpy(m + n, name, nl);
	n += nl;
	m[n++] = 3 << 3 | 0;  /* offset */
	n += put_varint(m + n, offset);
	if (last)
		m[n++] = 5 << 3 | 0, m[n++] = 1;
	if (end)
		m[n++] = 6 << 3 | 0, m[n++] = 1;
	m[n++] = 4 << 3 | 2;  /* data, its bytes next */
	n += put_varint(m + n, data_len);
	return n;
}

/* max_bytes: 10 for a value, 5 for a key or a length (as protobuf-c,
 * which takes those as 32 bits). */
static int get_varint(const uint8_t **p, const uint8_t *end, unsigned max_bytes, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned i = 0; i < max_bytes; i++) {
		if (*p >= end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = r;
			return r >> 32 && max_bytes == 5 ? -EBADMSG : 0;
		}
	}
	return -EBADMSG;
}

int mig_file_decode(const uint8_t *buf, size_t len, struct mig_file_view *out)
{
	const uint8_t *p = buf, *end = buf + len;
	unsigned seen = 0;
	memset(out, 0, sizeof(*out));
	while (p < end) {
		uint64_t key, v = 0;
		if (get_varint(&p, end, 5, &key) < 0 || key >> 3 == 0)
			return -EBADMSG;
		unsigned field = (unsigned)(key >> 3), wt = key & 7;
		const uint8_t *val = NULL;
		switch (wt) {
		case 0:
			if (get_varint(&p, end, 10, &v) < 0)
				return -EBADMSG;
			break;
		case 1:
		case 5: {
			size_t w = wt == 1 ? 8 : 4;
			if ((size_t)(end - p) < w)
				return -EBADMSG;
			p += w;
			break;
		}
		case 2:
			if (get_varint(&p, end, 5, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			val = p;
			p += v;
			break;
		default:
			return -EBADMSG;
		}
		/* A known field with another wire type is malformed, as for
		 * protobuf-c; unknown fields are skipped. */
		bool want_len = field == 2 || field == 4;
		if (field >= 1 && field <= 7 && (want_len ? wt != 2 : wt != 0))
			return -EBADMSG;
		switch (field) {
		case 1: out->xfer = v; break;
		case 2:
			if (v > MIG_FILE_NAME_MAX || memchr(val, 0, v))
				return -EBADMSG;
			memcpy(out->name, val, v);
			out->name[v] = 0;
			break;
		case 3: out->offset = v; break;
		case 4: out->data = val, out->len = (size_t)v; break;
		case 5: out->last = v != 0; break;
		case 6: out->end = v != 0; break;
		case 7: out->abort = v != 0; break;
		default: continue;
		}
		seen |= 1u << field;
	}
	unsigned required = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4;
	return (seen & required) == required ? 0 : -EBADMSG;
}
