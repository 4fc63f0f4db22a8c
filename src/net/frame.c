/* frame.c — see frame.h. Every length read from the wire is checked
 * against what is left before it is used. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "frame.h"

#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

void krg_frame_dec_init(struct krg_frame_dec *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max ? max : KRG_FRAME_DEFAULT_MAX;
}

void krg_frame_dec_free(struct krg_frame_dec *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = 0;
}

void krg_frame_dec_set_max(struct krg_frame_dec *d, size_t max) { d->max = max; }

uint32_t krg_frame_dec_bad_len(const struct krg_frame_dec *d) { return krg_frame_get_len(d->hdr); }

int krg_frame_dec_next(struct krg_frame_dec *d, uint8_t **data, size_t *len, uint8_t **frame, size_t *frame_len)
{
	for (;;) {
		if (d->need == 0) {
			/* Fast path: a whole frame sits in the input. */
			if (d->hdr_have == 0 && *len >= KRG_FRAME_HDR) {
				uint32_t l = krg_frame_get_len(*data);
				memcpy(d->hdr, *data, KRG_FRAME_HDR);
				if (l == 0)
					return -EBADMSG;
				if (l > d->max)
					return -EMSGSIZE;
				if (*len - KRG_FRAME_HDR >= l) {
					*frame = *data + KRG_FRAME_HDR;
					*frame_len = l;
					*data += KRG_FRAME_HDR + l;
					*len -= KRG_FRAME_HDR + l;
					return 1;
				}
				*data += KRG_FRAME_HDR;
				*len -= KRG_FRAME_HDR;
				d->hdr_have = KRG_FRAME_HDR;
			} else {
				while (d->hdr_have < KRG_FRAME_HDR && *len > 0) {
					d->hdr[d->hdr_have++] = **data;
					(*data)++;
					(*len)--;
				}
				if (d->hdr_have < KRG_FRAME_HDR)
					return 0;
			}
			uint32_t l = krg_frame_get_len(d->hdr);
			if (l == 0)
				return -EBADMSG;
			if (l > d->max)
				return -EMSGSIZE;
			if (d->cap < l) {
				/* No realloc: nothing to keep, and it avoids a copy. */
				free(d->buf);
				d->buf = malloc(l);
				d->cap = d->buf ? l : 0;
				if (!d->buf)
					return -ENOMEM;
			}
			d->need = l;
			d->have = 0;
		}
		size_t n = MIN_SZ(d->need - d->have, *len);
		if (n) {
			memcpy(d->buf + d->have, *data, n);
			d->have += n;
			*data += n;
			*len -= n;
		}
		if (d->have < d->need)
			return 0;
		*frame = d->buf;
		*frame_len = d->need;
		d->need = 0;
		d->have = 0;
		d->hdr_have = 0;
		return 1;
	}
}

uint8_t *krg_frame_dec_direct(struct krg_frame_dec *d, size_t min, size_t *room)
{
	if (d->need == 0 || d->need - d->have < min)
		return NULL;
	*room = d->need - d->have;
	return d->buf + d->have;
}

void krg_frame_dec_commit(struct krg_frame_dec *d, size_t n) { d->have += n; }

/* ---- Envelope ---------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EBADMSG;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

int krg_env_decode(const uint8_t *buf, size_t len, struct krg_env *env)
{
	const uint8_t *p = buf, *end = buf + len;
	struct krg_env e = { .type = "", .body = (const uint8_t *)"" };

	while (p < end) {
		uint64_t key, v;
		if (get_varint(&p, end, &key) < 0)
			return -EBADMSG;
		uint64_t field = key >> 3;
		unsigned wt = key & 7;
		if (field == 0)
			return -EBADMSG;
		switch (wt) {
		case WT_VARINT:
			if (get_varint(&p, end, &v) < 0)
				return -EBADMSG;
			if (field == 1)
				e.version = (uint32_t)v;
			else if (field == 3)
				e.req_id = v;
			else if (field == 4)
				e.is_reply = v != 0;
			else if (field == 5)
				e.status = (int32_t)((uint32_t)(v >> 1) ^ -(uint32_t)(v & 1));
			break;
		case WT_LEN:
			if (get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			if (field == 2) {
				e.type = (const char *)p;
				e.type_len = v;
			} else if (field == 6) {
				e.body = p;
				e.body_len = v;
			}
			p += v;
			break;
		case WT_I64:
			if (end - p < 8)
				return -EBADMSG;
			p += 8;
			break;
		case WT_I32:
			if (end - p < 4)
				return -EBADMSG;
			p += 4;
			break;
		default: /* groups and reserved wire types: not in this schema */
			return -EBADMSG;
		}
	}
	*env = e;
	return 0;
}

int krg_env_encode_head(const struct krg_env *env, uint8_t *out)
{
	uint8_t *p = out;
	if (env->type_len > KRG_TYPE_MAX || env->body_len > UINT32_MAX)
		return -EINVAL;
	*p++ = 1 << 3 | WT_VARINT;
	p = put_varint(p, env->version);
	if (env->type_len) {
		*p++ = 2 << 3 | WT_LEN;
		p = put_varint(p, env->type_len);
		memcpy(p, env->type, env->type_len);
		p += env->type_len;
	}
	if (env->req_id) {
		*p++ = 3 << 3 | WT_VARINT;
		p = put_varint(p, env->req_id);
	}
	if (env->is_reply) {
		*p++ = 4 << 3 | WT_VARINT;
		*p++ = 1;
	}
	if (env->status) {
		*p++ = 5 << 3 | WT_VARINT;
		p = put_varint(p, ((uint32_t)env->status << 1) ^ (uint32_t)(env->status >> 31));
	}
	*p++ = 6 << 3 | WT_LEN;
	p = put_varint(p, env->body_len);
	return (int)(p - out);
}
