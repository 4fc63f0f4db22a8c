/* Unit tests of src/proto/stdio_wire.c: the zero-copy heads and views of
 * proc.proto's Data and Io give exactly what protobuf-c packs and unpacks,
 * and malformed input is refused, not read past. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proto/stdio_wire.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n + 1);
	assert_non_null(b);
	protobuf_c_message_pack(m, b);
	return b;
}

/* head || data equals protobuf-c's packing, for lengths across varint sizes. */
static void test_data_head(void **state)
{
	static const size_t lens[] = { 1, 127, 128, 16383, 16384, 262144 };
	static const uint64_t streams[] = { 0, 1, 300, (uint64_t)1 << 40, UINT64_MAX };
	uint8_t *data = malloc(262144);
	assert_non_null(data);
	for (size_t i = 0; i < 262144; i++)
		data[i] = (uint8_t)(i * 7);
	for (size_t s = 0; s < sizeof(streams) / sizeof(streams[0]); s++)
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			for (uint32_t fd = 0; fd < 3; fd++) {
				Krg__Proc__Data d = KRG__PROC__DATA__INIT;
				d.stream = streams[s];
				d.fd = fd;
				d.has_data = true;
				d.data.data = data;
				d.data.len = lens[l];
				size_t n;
				uint8_t *want = pack(&d.base, &n);
				uint8_t head[KRG_WIRE_HEADROOM];
				size_t hl = krg_wire_data_head(head, streams[s], fd, lens[l]);
				assert_true(hl <= KRG_WIRE_HEADROOM);
				assert_int_equal(hl + lens[l], n);
				assert_memory_equal(want, head, hl);
				assert_memory_equal(want + hl, data, lens[l]);
				/* And the view reads it back in place. */
				Krg__Proc__Data v;
				assert_int_equal(krg_wire_data_view(want, n, &v), 0);
				assert_true(v.stream == streams[s]);
				assert_int_equal(v.fd, fd);
				assert_true(v.has_data);
				assert_int_equal(v.data.len, lens[l]);
				assert_ptr_equal(v.data.data, want + hl);
				assert_false(v.has_eof);
				free(want);
			}
	free(data);
}

static void test_io_head(void **state)
{
	uint8_t data[300];
	memset(data, 'x', sizeof(data));
	for (uint32_t fd = 1; fd < 3; fd++) {
		Krg__Proc__Io io = KRG__PROC__IO__INIT;
		io.has_fd = io.has_data = true;
		io.fd = fd;
		io.data.data = data;
		io.data.len = sizeof(data);
		size_t n;
		uint8_t *want = pack(&io.base, &n);
		uint8_t head[KRG_WIRE_HEADROOM];
		size_t hl = krg_wire_io_head(head, fd, sizeof(data));
		assert_int_equal(hl + sizeof(data), n);
		assert_memory_equal(want, head, hl);
		uint32_t vfd = 9;
		const uint8_t *p = NULL;
		size_t pl = 0;
		assert_int_equal(krg_wire_io_data_view(want, n, &vfd, &p, &pl), 1);
		assert_int_equal(vfd, fd);
		assert_ptr_equal(p, want + hl);
		assert_int_equal(pl, sizeof(data));
		free(want);
	}
}

/* An Io with any other field goes to the general decoder (0). */
static void test_io_other_fields(void **state)
{
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_data = true;
	io.data.data = (uint8_t *)"abc";
	io.data.len = 3;
	io.has_eof = io.eof = true;
	size_t n;
	uint8_t *b = pack(&io.base, &n);
	uint32_t fd;
	const uint8_t *p;
	size_t pl;
	assert_int_equal(krg_wire_io_data_view(b, n, &fd, &p, &pl), 0);
	free(b);
	Krg__Proc__Io ex = KRG__PROC__IO__INIT;
	ex.has_exited = ex.exited = true;
	ex.has_code = true;
	ex.code = 3;
	b = pack(&ex.base, &n);
	assert_int_equal(krg_wire_io_data_view(b, n, &fd, &p, &pl), 0);
	free(b);
	/* stdin data alone (no fd): fast, fd 0. */
	Krg__Proc__Io in = KRG__PROC__IO__INIT;
	in.has_data = true;
	in.data.data = (uint8_t *)"hello";
	in.data.len = 5;
	b = pack(&in.base, &n);
	assert_int_equal(krg_wire_io_data_view(b, n, &fd, &p, &pl), 1);
	assert_int_equal(fd, 0);
	assert_int_equal(pl, 5);
	assert_memory_equal(p, "hello", 5);
	free(b);
}

/* eof, unknown fields skipped, as protobuf-c. */
static void test_data_eof_unknown(void **state)
{
	Krg__Proc__Data d = KRG__PROC__DATA__INIT;
	d.stream = 77;
	d.fd = 0;
	d.has_eof = d.eof = true;
	size_t n;
	uint8_t *b = pack(&d.base, &n);
	uint8_t *x = malloc(n + 16);
	memcpy(x, b, n);
	/* field 9 varint, field 10 fixed64, field 11 bytes, field 12 fixed32 */
	static const uint8_t extra[] = { 0x48, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 0x01, 0xff, 0x65, 1, 2, 3, 4 };
	memcpy(x + n, extra, sizeof(extra));
	Krg__Proc__Data v;
	assert_int_equal(krg_wire_data_view(x, n + sizeof(extra), &v), 0);
	assert_true(v.stream == 77);
	assert_true(v.has_eof && v.eof);
	assert_false(v.has_data);
	Krg__Proc__Data *u = krg__proc__data__unpack(NULL, n + sizeof(extra), x);
	assert_non_null(u);
	assert_true(u->stream == 77 && u->eof);
	krg__proc__data__free_unpacked(u, NULL);
	free(x);
	free(b);
}

/* Truncations, overlong lengths and varints, missing required fields,
 * wrong wire types and groups are refused. */
static void test_malformed(void **state)
{
	uint8_t data[40];
	memset(data, 1, sizeof(data));
	uint8_t head[KRG_WIRE_HEADROOM];
	size_t hl = krg_wire_data_head(head, 5, 1, sizeof(data));
	uint8_t buf[KRG_WIRE_HEADROOM + sizeof(data)];
	memcpy(buf, head, hl);
	memcpy(buf + hl, data, sizeof(data));
	Krg__Proc__Data v;
	/* Every cut is malformed but the one right after fd (no data field). */
	for (size_t cut = 1; cut < hl + sizeof(data); cut++)
		assert_int_equal(krg_wire_data_view(buf, cut, &v), cut == 4 ? 0 : -EBADMSG);
	assert_int_equal(krg_wire_data_view(buf, hl + sizeof(data), &v), 0);
	static const uint8_t no_fd[] = { 0x08, 0x05 };
	assert_int_equal(krg_wire_data_view(no_fd, sizeof(no_fd), &v), -EBADMSG);
	static const uint8_t no_stream[] = { 0x10, 0x01 };
	assert_int_equal(krg_wire_data_view(no_stream, sizeof(no_stream), &v), -EBADMSG);
	static const uint8_t wrong_type[] = { 0x08, 0x05, 0x10, 0x01, 0x1d, 1, 2, 3, 4 }; /* data as fixed32 */
	assert_int_equal(krg_wire_data_view(wrong_type, sizeof(wrong_type), &v), -EBADMSG);
	static const uint8_t group[] = { 0x08, 0x05, 0x10, 0x01, 0x2b, 0x2c };
	assert_int_equal(krg_wire_data_view(group, sizeof(group), &v), -EBADMSG);
	static const uint8_t long_varint[] = { 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	assert_int_equal(krg_wire_data_view(long_varint, sizeof(long_varint), &v), -EBADMSG);
	static const uint8_t big_len[] = { 0x08, 0x05, 0x10, 0x01, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 };
	assert_int_equal(krg_wire_data_view(big_len, sizeof(big_len), &v), -EBADMSG);
	static const uint8_t field0[] = { 0x00, 0x01 };
	assert_int_equal(krg_wire_data_view(field0, sizeof(field0), &v), -EBADMSG);
	uint32_t fd;
	const uint8_t *p;
	size_t pl;
	assert_int_equal(krg_wire_io_data_view(big_len + 4, sizeof(big_len) - 4, &fd, &p, &pl), -EBADMSG);
	static const uint8_t io_trunc[] = { 0x12, 0x05, 'a' };
	assert_int_equal(krg_wire_io_data_view(io_trunc, sizeof(io_trunc), &fd, &p, &pl), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_head),
		cmocka_unit_test(test_io_head),
		cmocka_unit_test(test_io_other_fields),
		cmocka_unit_test(test_data_eof_unknown),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
