/* fsview_msg.c — checks of the file view's peer messages (fsview_msg.h). */
#include "fsview/fsview_msg.h"

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

bool fsv_forward_valid(const Krg__Fsview__Forward *f, uint64_t *id)
{
	uint64_t peeked;
	if (!f || !fsv_peek_id(f->request.data, f->request.len, &peeked))
		return false;
	Krg__Fsview__Request *q = krg__fsview__request__unpack(NULL, f->request.len, f->request.data);
	bool ok = q && q->id == peeked && q->op != KRG__FSVIEW__OP__OP_READY && (!q->path || q->path[0] == '/');
	if (q)
		krg__fsview__request__free_unpacked(q, NULL);
	if (ok)
		*id = peeked;
	return ok;
}
