/* fsview_msg.c — checks of the file view's peer messages (fsview_msg.h). */
#include "fsview/fsview_msg.h"
#include "fsview/wire.h"

bool fsv_peek_id(const uint8_t *p, size_t n, uint64_t *id)
{
	if (n < 2 || p[0] != 0x08)
		return false;
	uint64_t v = 0;
	for (size_t i = 1, s = 0; i < n && s < 64; i++, s += 7) {
		v |= (uint64_t)(p[i] & 0x7f) << s;
		if (!(p[i] & 0x80)) {
			*id = v;
			return true;
		}
	}
	return false;
}

/* A packed Request: decodes (its bulk data, when last, is only stepped
 * over: unpacking it would copy it), carries the id fsv_peek_id finds. */
static bool request_valid(const uint8_t *p, size_t n, uint64_t *id)
{
	uint64_t peeked;
	size_t hlen = n, doff;
	if (!fsv_peek_id(p, n, &peeked))
		return false;
	bool split = fsv_split_last(p, n, n, 8 /* Request.data */, &hlen, &doff);
	Krg__Fsview__Request *q = krg__fsview__request__unpack(NULL, hlen, p);
	/* A second data field before the last would be one the server
	 * ignores (serve.c): refused. */
	bool ok = q && q->id == peeked && q->op != KRG__FSVIEW__OP__OP_READY && (!q->path || q->path[0] == '/') &&
		  !(split && q->has_data);
	if (q)
		krg__fsview__request__free_unpacked(q, NULL);
	if (ok)
		*id = peeked;
	return ok;
}

bool fsv_forward_valid(const Krg__Fsview__Forward *f, uint64_t *id)
{
	return f && request_valid(f->request.data, f->request.len, id);
}

bool fsv_forward_parse(const uint8_t *p, size_t n, struct fsv_forward *out)
{
	size_t hlen, doff;
	uint64_t uid, gid;
	if (!fsv_split_last(p, n, n, 3 /* Forward.request */, &hlen, &doff) || !fsv_varint_field(p, hlen, 1, &uid) ||
	    !fsv_varint_field(p, hlen, 2, &gid) || uid > UINT32_MAX || gid > UINT32_MAX)
		return false;
	out->uid = (uint32_t)uid;
	out->gid = (uint32_t)gid;
	out->req = p + doff;
	out->req_len = n - doff;
	return request_valid(out->req, out->req_len, &out->id);
}
