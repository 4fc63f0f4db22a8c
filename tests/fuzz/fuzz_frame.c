/* fuzz_frame.c — libFuzzer target for everything that parses bytes from an
 * unauthenticated or authenticated peer: the frame decoder (input cut into
 * pieces at positions taken from the input itself), the in-place Envelope
 * decoder, the handshake protobuf, and the hand decoder of "mig.file"
 * (src/proc/migrate/filemsg.c), checked against protobuf-c's decoding of
 * the same bytes. Build and run: scripts/fuzz.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/frame.h"
#include "proc/migrate/filemsg.h"
#include "proto/migrate.pb-c.h"
#include "proto/net.pb-c.h"

/* What the hand decoder accepts, protobuf-c accepts with the same
 * values; and protobuf-c's own encoding of the fields it read (no
 * unknown ones) is read back by the hand decoder with the same values,
 * unless its name is one the hand decoder refuses (a NUL in it: protobuf-c
 * ends it there; longer than MIG_FILE_NAME_MAX). */
static bool same(const struct mig_file_view *v, const Krg__Mig__File *pb)
{
	return v->xfer == pb->xfer && !strcmp(v->name, pb->name) && v->offset == pb->offset && v->len == pb->data.len &&
	       (!v->len || !memcmp(v->data, pb->data.data, v->len)) && v->last == (pb->has_last && pb->last) &&
	       v->end == (pb->has_end && pb->end) && v->abort == (pb->has_abort && pb->abort);
}

static void check_mig_file(const uint8_t *f, size_t len)
{
	struct mig_file_view v;
	int r = mig_file_decode(f, len, &v);
	if (r == 0) {
		if (v.data < f || v.data + v.len > f + len)
			abort();
		volatile uint8_t x = 0;
		for (size_t i = 0; i < v.len; i++)
			x ^= v.data[i];
		(void)x;
	}
	Krg__Mig__File *pb = krg__mig__file__unpack(NULL, len, f);
	if (r == 0 && (!pb || !same(&v, pb)))
		abort();
	if (pb && strlen(pb->name) <= MIG_FILE_NAME_MAX) {
		Krg__Mig__File c = KRG__MIG__FILE__INIT;
		c.xfer = pb->xfer, c.name = pb->name, c.offset = pb->offset, c.data = pb->data;
		c.has_last = pb->has_last, c.last = pb->last, c.has_end = pb->has_end, c.end = pb->end;
		c.has_abort = pb->has_abort, c.abort = pb->abort;
		size_t n = krg__mig__file__get_packed_size(&c);
		uint8_t *b = malloc(n ? n : 1);
		krg__mig__file__pack(&c, b);
		struct mig_file_view w;
		if (mig_file_decode(b, n, &w) != 0 || !same(&w, pb))
			abort();
		free(b);
	}
	if (pb)
		krg__mig__file__free_unpacked(pb, NULL);
}

static void check_env(const uint8_t *f, size_t len)
{
	check_mig_file(f, len);
	struct krg_env e;
	if (krg_env_decode(f, len, &e) == 0) {
		/* Touch every byte the decoder points at (ASan checks bounds). */
		volatile uint8_t x = 0;
		for (size_t i = 0; i < e.type_len; i++)
			x ^= (uint8_t)e.type[i];
		for (size_t i = 0; i < e.body_len; i++)
			x ^= e.body[i];
		(void)x;
		if (e.type_len <= KRG_TYPE_MAX) {
			uint8_t head[KRG_ENV_HEAD_MAX];
			int hl = krg_env_encode_head(&e, head);
			if (hl < 0 || hl > KRG_ENV_HEAD_MAX)
				abort();
		}
	}
	Krg__Net__Handshake *hs = krg__net__handshake__unpack(NULL, len, f);
	if (hs)
		krg__net__handshake__free_unpacked(hs, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* First byte: feed step (1..256); the rest is the stream. */
	size_t step = (size_t)data[0] + 1;
	data++;
	size--;
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 65536);
	for (size_t off = 0; off < size; off += step) {
		uint8_t *p = copy + off, *f;
		size_t l = step < size - off ? step : size - off, fl;
		int r;
		while ((r = krg_frame_dec_next(&d, &p, &l, &f, &fl)) == 1) {
			if (fl == 0 || fl > 65536)
				abort();
			check_env(f, fl);
		}
		if (r < 0)
			break;
	}
	krg_frame_dec_free(&d);
	/* The whole input as one payload too. */
	check_env(copy, size);
	free(copy);
	return 0;
}
