/* test_frame.c — the pure frame decoder and the in-place Envelope codec,
 * including compatibility with the protoc-c generated reference code. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "net/frame.h"
#include "net/session.h"
#include "proto/net.pb-c.h"

/* Frames "a", "bb...b"(300), "ccc" back to back. */
static size_t build_stream(uint8_t *out)
{
	size_t n = 0;
	const size_t lens[] = { 1, 300, 3 };
	const char fill[] = { 'a', 'b', 'c' };
	for (int i = 0; i < 3; i++) {
		krg_frame_put_len(out + n, (uint32_t)lens[i]);
		n += 4;
		memset(out + n, fill[i], lens[i]);
		n += lens[i];
	}
	return n;
}

/* Feed the stream in pieces of `step` bytes; check the three frames. */
static void feed_split(size_t step)
{
	uint8_t stream[512];
	size_t total = build_stream(stream);
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 1000);
	int got = 0;
	const size_t lens[] = { 1, 300, 3 };
	const char fill[] = { 'a', 'b', 'c' };
	for (size_t off = 0; off < total; off += step) {
		uint8_t piece[512];
		size_t len = step < total - off ? step : total - off;
		memcpy(piece, stream + off, len);
		uint8_t *p = piece, *f;
		size_t l = len, fl;
		int r;
		while ((r = krg_frame_dec_next(&d, &p, &l, &f, &fl)) == 1) {
			assert_true(got < 3);
			assert_int_equal(fl, lens[got]);
			for (size_t i = 0; i < fl; i++)
				assert_int_equal(f[i], fill[got]);
			got++;
		}
		assert_int_equal(r, 0);
		assert_int_equal(l, 0);
	}
	assert_int_equal(got, 3);
	krg_frame_dec_free(&d);
}

static void test_split_feeds(void **state)
{
	for (size_t step = 1; step <= 320; step++)
		feed_split(step);
}

static void test_zero_length(void **state)
{
	uint8_t in[] = { 0, 0, 0, 0, 1, 2 };
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 100);
	uint8_t *p = in, *f;
	size_t l = sizeof(in), fl;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), -EBADMSG);
	/* byte by byte too */
	krg_frame_dec_free(&d);
	krg_frame_dec_init(&d, 100);
	int r = 0;
	for (size_t i = 0; i < 4 && r == 0; i++) {
		p = in + i;
		l = 1;
		r = krg_frame_dec_next(&d, &p, &l, &f, &fl);
	}
	assert_int_equal(r, -EBADMSG);
	krg_frame_dec_free(&d);
}

static void test_oversize(void **state)
{
	uint8_t in[] = { 0, 0, 0, 101, 'x' };
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 100);
	uint8_t *p = in, *f;
	size_t l = sizeof(in), fl;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), -EMSGSIZE);
	assert_int_equal(krg_frame_dec_bad_len(&d), 101);
	krg_frame_dec_free(&d);
	uint8_t absurd[] = { 0xff, 0xff, 0xff, 0xff };
	krg_frame_dec_init(&d, 0); /* default 16 MiB */
	p = absurd;
	l = 2;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), 0);
	l = 2;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), -EMSGSIZE);
	assert_int_equal(krg_frame_dec_bad_len(&d), 0xffffffffu);
	krg_frame_dec_free(&d);
	/* exactly max is fine */
	uint8_t ok[4 + 100] = { 0, 0, 0, 100 };
	krg_frame_dec_init(&d, 100);
	p = ok;
	l = sizeof(ok);
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), 1);
	assert_int_equal(fl, 100);
	krg_frame_dec_free(&d);
}

static void test_truncated(void **state)
{
	uint8_t in[4 + 10] = { 0, 0, 0, 50 };
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 100);
	uint8_t *p = in, *f;
	size_t l = sizeof(in), fl;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), 0); /* waits for more, no frame */
	assert_int_equal(l, 0);
	/* header cut in the middle */
	krg_frame_dec_free(&d);
	krg_frame_dec_init(&d, 100);
	p = in;
	l = 3;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), 0);
	krg_frame_dec_free(&d);
}

static void test_direct(void **state)
{
	/* A big frame: header via next(), payload via direct reads. */
	size_t n = 200000;
	uint8_t hdr[4];
	krg_frame_put_len(hdr, (uint32_t)n);
	struct krg_frame_dec d;
	krg_frame_dec_init(&d, 1 << 20);
	uint8_t *p = hdr, *f;
	size_t l = 4, fl, room;
	assert_int_equal(krg_frame_dec_next(&d, &p, &l, &f, &fl), 0);
	size_t done = 0;
	while (done < n) {
		uint8_t *dst = krg_frame_dec_direct(&d, 1, &room);
		assert_non_null(dst);
		assert_int_equal(room, n - done);
		size_t chunk = room < 70000 ? room : 70000;
		for (size_t i = 0; i < chunk; i++)
			dst[i] = (uint8_t)(done + i);
		krg_frame_dec_commit(&d, chunk);
		done += chunk;
		l = 0;
		int r = krg_frame_dec_next(&d, &p, &l, &f, &fl);
		assert_int_equal(r, done == n ? 1 : 0);
	}
	assert_int_equal(fl, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(f[i], (uint8_t)i);
	assert_null(krg_frame_dec_direct(&d, 1, &room));
	krg_frame_dec_free(&d);
}

static void test_envelope_compat(void **state)
{
	uint8_t body[1000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7);
	const int32_t statuses[] = { 0, -2, -110, 5, INT32_MIN };
	for (size_t k = 0; k < 5; k++) {
		/* ours -> protoc-c */
		struct krg_env e = { .version = 1, .type = "cluster.join", .type_len = 12, .req_id = 0x123456789ull * k,
				     .is_reply = k & 1, .status = statuses[k], .body = body, .body_len = k * 200 };
		uint8_t buf[KRG_ENV_HEAD_MAX + sizeof(body)];
		int hl = krg_env_encode_head(&e, buf);
		assert_true(hl > 0 && hl <= KRG_ENV_HEAD_MAX);
		memcpy(buf + hl, body, e.body_len);
		Krg__Net__Envelope *pe = krg__net__envelope__unpack(NULL, hl + e.body_len, buf);
		assert_non_null(pe);
		assert_int_equal(pe->version, 1);
		assert_string_equal(pe->type, "cluster.join");
		assert_int_equal(pe->req_id, e.req_id);
		assert_int_equal(pe->is_reply, e.is_reply);
		assert_int_equal(pe->status, e.status);
		assert_int_equal(pe->body.len, e.body_len);
		assert_memory_equal(pe->body.data ? pe->body.data : body, body, e.body_len);
		/* protoc-c -> ours */
		uint8_t out[2048];
		size_t ol = krg__net__envelope__pack(pe, out);
		struct krg_env d;
		assert_int_equal(krg_env_decode(out, ol, &d), 0);
		assert_int_equal(d.version, 1);
		assert_int_equal(d.type_len, 12);
		assert_memory_equal(d.type, "cluster.join", 12);
		assert_int_equal(d.req_id, e.req_id);
		assert_int_equal(d.is_reply, e.is_reply);
		assert_int_equal(d.status, e.status);
		assert_int_equal(d.body_len, e.body_len);
		assert_memory_equal(d.body, body, e.body_len);
		krg__net__envelope__free_unpacked(pe, NULL);
	}
}

static void test_envelope_malformed(void **state)
{
	struct krg_env e;
	const uint8_t bad_len[] = { 0x32, 0x10, 'x' };           /* body longer than input */
	const uint8_t bad_varint[] = { 0x08, 0xff, 0xff };       /* unterminated */
	const uint8_t long_varint[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	const uint8_t group[] = { 0x0b };                        /* wire type 3 */
	const uint8_t field0[] = { 0x00, 0x01 };
	const uint8_t unknown[] = { 0x78, 0x05, 0x0a, 0x01, 'x', 0x32, 0x01, 'b' }; /* field 15 varint skipped */
	assert_int_equal(krg_env_decode(bad_len, sizeof(bad_len), &e), -EBADMSG);
	assert_int_equal(krg_env_decode(bad_varint, sizeof(bad_varint), &e), -EBADMSG);
	assert_int_equal(krg_env_decode(long_varint, sizeof(long_varint), &e), -EBADMSG);
	assert_int_equal(krg_env_decode(group, sizeof(group), &e), -EBADMSG);
	assert_int_equal(krg_env_decode(field0, sizeof(field0), &e), -EBADMSG);
	assert_int_equal(krg_env_decode(unknown, sizeof(unknown), &e), 0);
	assert_int_equal(e.body_len, 1);
	assert_int_equal(e.body[0], 'b');
	assert_int_equal(krg_env_decode(NULL, 0, &e), 0);
	struct krg_env big = { .type = "x", .type_len = KRG_TYPE_MAX + 1 };
	uint8_t buf[KRG_ENV_HEAD_MAX + 64];
	assert_int_equal(krg_env_encode_head(&big, buf), -EINVAL);
}

/* Sealed frames: round trip in every mode; a replayed, reordered or
 * tampered frame fails. */
static void test_seal(void **state)
{
	assert_int_equal(sodium_init() >= 0, 1);
	uint8_t key[32] = { 1 }, th[32] = { 2 };
	uint8_t ska[32], pka[32], skb[32], pkb[32];
	crypto_box_keypair(pka, ska);
	crypto_box_keypair(pkb, skb);
	for (int cipher = 0; cipher <= 2; cipher++) {
		if (cipher == KRG_CIPHER_AESGCM && !crypto_aead_aes256gcm_is_available())
			continue;
		struct krg_seal atx, arx, btx, brx;
		assert_int_equal(krg_session_derive(key, ska, pkb, th, true, cipher, &atx, &arx), 0);
		assert_int_equal(krg_session_derive(key, skb, pka, th, false, cipher, &btx, &brx), 0);
		uint8_t f1[4 + 20 + 16], f2[4 + 20 + 16];
		for (int i = 0; i < 2; i++) {
			uint8_t *f = i ? f2 : f1;
			krg_frame_put_len(f, 36);
			memset(f + 4, 'A' + i, 20);
			krg_seal_frame(&atx, f, f + 4, 20, NULL, 0, f + 24);
		}
		uint8_t copy[40];
		memcpy(copy, f2, 40);
		assert_int_equal(krg_open_frame(&brx, copy + 4, 36), -EBADMSG); /* reordered */
		memcpy(copy, f1, 40);
		copy[10] ^= 1;
		assert_int_equal(krg_open_frame(&brx, copy + 4, 36), -EBADMSG); /* tampered */
		memcpy(copy, f1, 40);
		assert_int_equal(krg_open_frame(&arx, copy + 4, 36), -EBADMSG); /* reflected */
		assert_int_equal(krg_open_frame(&brx, f1 + 4, 36), 20);
		assert_int_equal(f1[4], 'A');
		memcpy(copy, f1, 40);
		assert_int_equal(krg_open_frame(&brx, f2 + 4, 36), 20);
		assert_int_equal(f2[4], 'B');
		if (cipher == KRG_CIPHER_AESGCM) {
			/* The wire format is standard AES-256-GCM (AD = length
			 * bytes): libsodium's implementation opens our frames. */
			uint8_t f3[4 + 20 + 16], nonce[12] = { 0 };
			krg_frame_put_len(f3, 36);
			memset(f3 + 4, 'C', 20);
			nonce[4] = 2; /* third frame of this direction */
			krg_seal_frame(&atx, f3, f3 + 4, 20, NULL, 0, f3 + 24);
			assert_int_equal(crypto_aead_aes256gcm_decrypt_detached(f3 + 4, NULL, f3 + 4, 20, f3 + 24, f3, 4,
										nonce, atx.key),
					 0);
			assert_int_equal(f3[4], 'C');
			/* A body sealed out of place (krg_seal_frame_out) opens as
			 * one payload: head 7 bytes in place, body 13 into the frame
			 * (the other direction: its counters are fresh). */
			uint8_t f4[4 + 20 + 16], body[13];
			krg_frame_put_len(f4, 36);
			memset(f4 + 4, 'D', 7);
			memset(body, 'E', sizeof(body));
			assert_true(krg_seal_frame_out(&btx, f4, f4 + 4, 7, body, sizeof(body), f4 + 11, f4 + 24));
			assert_int_equal(krg_open_frame(&arx, f4 + 4, 36), 20);
			assert_int_equal(f4[4], 'D');
			assert_int_equal(f4[10], 'D');
			assert_int_equal(f4[11], 'E');
			assert_int_equal(f4[23], 'E');
		} else {
			uint8_t f5[4 + 20 + 16], body[13] = { 0 };
			assert_false(krg_seal_frame_out(&atx, f5, f5 + 4, 7, body, sizeof(body), f5 + 11, f5 + 24));
		}
		krg_seal_clear(&atx);
		krg_seal_clear(&arx);
		krg_seal_clear(&btx);
		krg_seal_clear(&brx);
	}
	/* proofs are role tagged */
	uint8_t mac[crypto_auth_BYTES];
	krg_hs_proof(key, true, th, mac);
	assert_true(krg_hs_proof_ok(key, true, th, mac, sizeof(mac)));
	assert_false(krg_hs_proof_ok(key, false, th, mac, sizeof(mac)));
	key[0] ^= 1;
	assert_false(krg_hs_proof_ok(key, true, th, mac, sizeof(mac)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_feeds),	   cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_oversize),	   cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_direct),		   cmocka_unit_test(test_envelope_compat),
		cmocka_unit_test(test_envelope_malformed), cmocka_unit_test(test_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
