/* fuzz_frame.c — libFuzzer target for everything that parses bytes from an
 * unauthenticated or authenticated peer: the frame decoder (input cut into
 * pieces at positions taken from the input itself), the in-place Envelope
 * decoder, and the handshake protobuf. Build and run: scripts/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/frame.h"
#include "proto/net.pb-c.h"

static void check_env(const uint8_t *f, size_t len)
{
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
