/* test_filemsg.c — the hand codec of "mig.file" (src/proc/migrate/
 * filemsg.c) against protobuf-c's encoding of the same message: what one
 * packs the other reads, and bad input is refused, never read past. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "migrate.pb-c.h"
#include "proc/migrate/filemsg.h"

static void hand_to_protobuf(void **state)
{
	(void)state;
	static const uint64_t xfers[] = { 0, 1, 127, 128, 1ull << 35 | 7, UINT64_MAX };
	static const uint64_t offs[] = { 0, 64, 300, 1ull << 31, 1ull << 40 };
	static const size_t lens[] = { 0, 1, 4096, 70000 };
	uint8_t *buf = malloc(MIG_FILE_HEAD_MAX(20) + 70000);
	assert_non_null(buf);
	for (size_t a = 0; a < 6; a++)
		for (size_t b = 0; b < 5; b++)
			for (size_t c = 0; c < 4; c++)
				for (int flags = 0; flags < 4; flags++) {
					size_t n = mig_file_head(buf, xfers[a], "pages-42.img", offs[b], lens[c], flags & 1, flags & 2);
					for (size_t i = 0; i < lens[c]; i++)
						buf[n + i] = (uint8_t)(i * 7 + a);
					Krg__Mig__File *f = krg__mig__file__unpack(NULL, n + lens[c], buf);
					assert_non_null(f);
					assert_int_equal(f->xfer, xfers[a]);
					assert_string_equal(f->name, "pages-42.img");
					assert_int_equal(f->offset, offs[b]);
					assert_int_equal(f->data.len, lens[c]);
					assert_memory_equal(f->data.data, buf + n, lens[c]);
					assert_int_equal(f->has_last && f->last, (flags & 1) != 0);
					assert_int_equal(f->has_end && f->end, (flags & 2) != 0);
					krg__mig__file__free_unpacked(f, NULL);
				}
	free(buf);
}

static size_t pack(uint64_t xfer, const char *name, uint64_t off, const uint8_t *data, size_t len, int flags, uint8_t **out)
{
	Krg__Mig__File f = KRG__MIG__FILE__INIT;
	f.xfer = xfer;
	f.name = (char *)name;
	f.offset = off;
	f.data.data = (uint8_t *)data;
	f.data.len = len;
	f.has_last = f.last = flags & 1;
	f.has_end = f.end = (flags & 2) != 0;
	f.has_abort = f.abort = (flags & 4) != 0;
	*out = malloc(krg__mig__file__get_packed_size(&f));
	assert_non_null(*out);
	return krg__mig__file__pack(&f, *out);
}

static void protobuf_to_hand(void **state)
{
	(void)state;
	uint8_t data[5000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	for (int flags = 0; flags < 8; flags++) {
		uint8_t *m;
		size_t n = pack(0x100000002ull, "mm-7.img", 123456789, data, sizeof(data), flags, &m);
		struct mig_file_view v;
		assert_int_equal(mig_file_decode(m, n, &v), 0);
		assert_int_equal(v.xfer, 0x100000002ull);
		assert_string_equal(v.name, "mm-7.img");
		assert_int_equal(v.offset, 123456789);
		assert_int_equal(v.len, sizeof(data));
		assert_memory_equal(v.data, data, sizeof(data));
		assert_true(v.data >= m && v.data + v.len <= m + n); /* in place */
		assert_int_equal(v.last, (flags & 1) != 0);
		assert_int_equal(v.end, (flags & 2) != 0);
		assert_int_equal(v.abort, (flags & 4) != 0);
		/* Every truncation before the data's end is refused (the
		 * data's length runs past the end, or a field is cut, or a
		 * required one is missing); after it (the optional flags
		 * follow) a cut on a field boundary is a valid message. */
		size_t data_end = (size_t)(v.data - m) + v.len;
		for (size_t cut = 0; cut < n; cut++) {
			uint8_t *t = malloc(cut ? cut : 1);
			memcpy(t, m, cut);
			struct mig_file_view w;
			int rc = mig_file_decode(t, cut, &w);
			if (cut < data_end)
				assert_int_equal(rc, -EBADMSG);
			else if (rc == 0)
				assert_memory_equal(w.data, data, sizeof(data));
			free(t);
		}
		free(m);
	}
}

static void bad_input(void **state)
{
	(void)state;
	struct mig_file_view v;
	uint8_t m[600];
	size_t n = mig_file_head(m, 1, "x", 0, 0, false, false);
	assert_int_equal(mig_file_decode(m, n, &v), 0);
	/* An unknown field is skipped; a known one with another wire type
	 * is refused; wire types 3, 4, 6, 7 are refused. */
	uint8_t u[64];
	memcpy(u, m, n);
	u[n] = 9 << 3 | 0, u[n + 1] = 5;
	assert_int_equal(mig_file_decode(u, n + 2, &v), 0);
	u[n] = 3 << 3 | 2, u[n + 1] = 0;
	assert_int_equal(mig_file_decode(u, n + 2, &v), -EBADMSG);
	for (int wt = 3; wt <= 7; wt++) {
		if (wt == 5)
			continue;
		u[n] = (uint8_t)(9 << 3 | wt), u[n + 1] = 0;
		assert_int_equal(mig_file_decode(u, n + 2, &v), -EBADMSG);
	}
	/* Field number 0, and a varint of 11 bytes. */
	u[n] = 0 << 3 | 0, u[n + 1] = 0;
	assert_int_equal(mig_file_decode(u, n + 2, &v), -EBADMSG);
	u[n] = 9 << 3 | 0;
	memset(u + n + 1, 0xff, 10);
	u[n + 11] = 1;
	assert_int_equal(mig_file_decode(u, n + 12, &v), -EBADMSG);
	/* A name too long, or with a NUL in it. */
	char longname[MIG_FILE_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	n = mig_file_head(m, 1, longname, 0, 0, false, false);
	assert_int_equal(mig_file_decode(m, n, &v), -EBADMSG);
	longname[MIG_FILE_NAME_MAX] = 0;
	n = mig_file_head(m, 1, longname, 0, 0, false, false);
	assert_int_equal(mig_file_decode(m, n, &v), 0);
	n = mig_file_head(m, 1, "ab", 0, 0, false, false);
	m[4] = 0; /* 1 key, 1 xfer, 2 key, 3 len, 4 'a' */
	assert_int_equal(mig_file_decode(m, n, &v), -EBADMSG);
	/* Random bytes: refused or decoded, never read out of bounds (ASan). */
	srand(7);
	for (int i = 0; i < 200000; i++) {
		size_t l = (size_t)(rand() % 40);
		uint8_t *r = malloc(l ? l : 1);
		for (size_t k = 0; k < l; k++)
			r[k] = (uint8_t)rand();
		int rc = mig_file_decode(r, l, &v);
		assert_true(rc == 0 || rc == -EBADMSG);
		if (rc == 0)
			assert_true(v.data >= r && v.data + v.len <= r + l);
		free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hand_to_protobuf),
		cmocka_unit_test(protobuf_to_hand),
		cmocka_unit_test(bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
