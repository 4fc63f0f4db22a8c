/* test_peer_checks.c — the services' checks of what peers send
 * (capset_msg.c, mig_msg.c, ckpt_msg.c, table_msg.c, fsview_msg.c): each accepts what
 * krgd itself sends and refuses each way of being wrong. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fsview/fsview_msg.h"
#include "fsview/wire.h"
#include "proc/ckpt/ckpt_msg.h"
#include "proc/migrate/mig_msg.h"
#include "proc/sched/capset_msg.h"
#include "proc/table/table_msg.h"

static int parse(const char *s, bool peer, struct capset_req *q)
{
	return capset_parse(s, strlen(s), peer, q);
}

static void capset_api(void **state)
{
	struct capset_req q;
	assert_int_equal(parse("self e CAN_MIGRATE", false, &q), 0);
	assert_true(q.self);
	assert_string_equal(q.op, "e");
	assert_string_equal(q.cap, "CAN_MIGRATE");
	assert_int_equal(parse("65539 show", false, &q), 0);
	assert_false(q.self);
	assert_string_equal(q.target, "65539");
	assert_string_equal(q.cap, "");
	assert_int_equal(parse("", false, &q), -EINVAL);
	assert_int_equal(parse("onlyone", false, &q), -EINVAL);
	assert_int_equal(capset_parse("self\0e X", 8, false, &q), -EINVAL);  /* NUL inside */
	char big[300];
	memset(big, 'a', sizeof(big));
	assert_int_equal(capset_parse(big, sizeof(big), false, &q), -EINVAL);
}

static void capset_peer(void **state)
{
	struct capset_req q;
	assert_int_equal(parse("1000 65539 d CHECKPOINTABLE", true, &q), 0);
	assert_int_equal(q.uid, 1000);
	assert_string_equal(q.target, "65539");
	/* "self" is the local caller: a peer cannot name it. */
	assert_int_equal(parse("1000 self e CAN_MIGRATE", true, &q), -EINVAL);
	assert_int_equal(parse("x1000 65539 show", true, &q), -EINVAL);
	assert_int_equal(parse("-1 65539 show", true, &q), -EINVAL);
	assert_int_equal(parse("4294967295 65539 show", true, &q), -EINVAL);  /* (uid_t)-1 */
	assert_int_equal(parse("99999999999 65539 show", true, &q), -EINVAL);
	assert_int_equal(parse("1000", true, &q), -EINVAL);
	assert_int_equal(parse("1000 65539", true, &q), -EINVAL);
}

static void mig_checks(void **state)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	assert_true(mig_io_valid(&io));
	static uint8_t buf[512 << 10];
	io.has_data = true;
	io.data.data = buf;
	io.data.len = 256 << 10; /* a frame's data (MIG_CHUNK) */
	assert_true(mig_io_valid(&io));
	io.data.len = (256 << 10) + 1;
	assert_false(mig_io_valid(&io));

	Krg__Mig__Move mv = KRG__MIG__MOVE__INIT;
	assert_false(mig_move_peer_valid(&mv));
	mv.has_id = true;
	assert_false(mig_move_peer_valid(&mv));
	mv.has_uid = true;
	assert_true(mig_move_peer_valid(&mv));

	Krg__Mig__Recv rv = KRG__MIG__RECV__INIT;
	Krg__Mig__Proxy px = KRG__MIG__PROXY__INIT, *pp[65];
	for (int i = 0; i < 65; i++)
		pp[i] = &px;
	rv.proxies = pp;
	rv.n_proxies = 64;
	px.fd = 3;
	assert_true(mig_recv_valid(&rv));
	rv.n_proxies = 65;
	assert_false(mig_recv_valid(&rv));
	rv.n_proxies = 1;
	px.fd = 0x80000000u;  /* would be a negative int */
	assert_false(mig_recv_valid(&rv));
}

static void ckpt_checks(void **state)
{
	assert_true(ckpt_file_name_ok("pages.img"));
	assert_false(ckpt_file_name_ok(""));
	assert_false(ckpt_file_name_ok("."));
	assert_false(ckpt_file_name_ok(".."));
	assert_false(ckpt_file_name_ok("../etc/passwd"));
	assert_false(ckpt_file_name_ok("a/b"));
	Krg__Ckptsvc__File f = KRG__CKPTSVC__FILE__INIT;
	f.name = "core.img";
	assert_true(ckpt_file_valid(&f));
	f.offset = CKPT_XFER_MAX + 1;
	assert_false(ckpt_file_valid(&f));
	f.offset = 0;
	f.data.len = CKPT_XFER_CHUNK + 1;
	assert_false(ckpt_file_valid(&f));
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	assert_false(ckpt_dump_valid(&d));
	d.has_uid = true;
	assert_true(ckpt_dump_valid(&d));
	Krg__Ckptsvc__Restart r = KRG__CKPTSVC__RESTART__INIT;
	assert_false(ckpt_restart_valid(&r));
	r.has_uid = true;
	assert_true(ckpt_restart_valid(&r));
}

static void table_checks(void **state)
{
	Krg__Node__NodeLoad l = KRG__NODE__NODE_LOAD__INIT;
	l.node = 2;
	l.cpus = 2;
	l.load1 = l.load5 = l.load15 = 0.5;
	l.mem_total_kb = 1000;
	l.mem_free_kb = 100;
	l.mem_available_kb = 200;
	l.procs = 10;
	l.krg_procs = 3;
	assert_true(table_load_valid(&l, 2));
	assert_false(table_load_valid(&l, 3));  /* speaks for another node */
	l.load1 = NAN;
	assert_false(table_load_valid(&l, 2));
	l.load1 = 0.5;
	l.cpus = 0;
	assert_false(table_load_valid(&l, 2));
	l.cpus = 2;
	l.krg_procs = 11;
	assert_false(table_load_valid(&l, 2));
	l.krg_procs = 3;
	l.mem_free_kb = 1001;
	assert_false(table_load_valid(&l, 2));

	Krg__Node__ProcKill k = KRG__NODE__PROC_KILL__INIT;
	k.signal = 0;
	assert_true(table_kill_valid(&k));
	k.signal = 64;
	assert_true(table_kill_valid(&k));
	k.signal = 65;
	assert_false(table_kill_valid(&k));
	k.signal = -1;
	assert_false(table_kill_valid(&k));
}

/* A Forward as the node's krgd builds it in place (header, then the
 * request as the client framed it: its bulk data after the rest). */
static size_t fsv_forward_build(uint8_t *out, uint32_t uid, uint32_t gid, const Krg__Fsview__Request *q, size_t bulk)
{
	Krg__Fsview__Request h = *q;
	h.has_data = false;
	size_t hl = krg__fsview__request__get_packed_size(&h);
	uint8_t *rq = malloc(hl + 16 + bulk);
	krg__fsview__request__pack(&h, rq);
	if (bulk) {
		hl += fsv_bytes_field(rq + hl, 8, bulk);
		memset(rq + hl, 0x5a, bulk);
	}
	size_t n = fsv_varint_key(out, 1, uid);
	n += fsv_varint_key(out + n, 2, gid);
	n += fsv_bytes_field(out + n, 3, hl + bulk);
	memcpy(out + n, rq, hl + bulk);
	free(rq);
	return n + hl + bulk;
}

static void fsview_checks(void **state)
{
	static uint8_t buf[1 << 17];
	Krg__Fsview__Request q = KRG__FSVIEW__REQUEST__INIT;
	q.id = 300; /* a two-byte varint */
	q.op = KRG__FSVIEW__OP__OP_WRITE;
	q.has_fh = q.has_offset = q.has_data = true;
	q.fh = 7;
	q.offset = 4096;
	struct fsv_forward f;
	/* A write of 64 KiB: read in place, the same as protobuf-c reads it. */
	size_t n = fsv_forward_build(buf, 1000, 4294967295u, &q, 65536);
	assert_true(fsv_forward_parse(buf, n, &f));
	assert_int_equal(f.uid, 1000);
	assert_int_equal(f.gid, 4294967295u);
	assert_int_equal(f.id, 300);
	assert_true(f.req > buf && f.req + f.req_len == buf + n);
	Krg__Fsview__Forward *u = krg__fsview__forward__unpack(NULL, n, buf);
	assert_non_null(u);
	assert_int_equal(u->request.len, f.req_len);
	assert_memory_equal(u->request.data, f.req, f.req_len);
	uint64_t id;
	assert_true(fsv_forward_valid(u, &id));
	assert_int_equal(id, 300);
	krg__fsview__forward__free_unpacked(u, NULL);
	/* Every cut of it is refused, never read past. */
	for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 4093)
		assert_false(fsv_forward_parse(buf, cut, &f));
	/* A path op; a relative path and READY refused. */
	krg__fsview__request__init(&q);
	q.id = 1;
	q.op = KRG__FSVIEW__OP__OP_GETATTR;
	q.path = "/tmp/x";
	n = fsv_forward_build(buf, 0, 0, &q, 0);
	assert_true(fsv_forward_parse(buf, n, &f));
	q.path = "tmp/x";
	n = fsv_forward_build(buf, 0, 0, &q, 0);
	assert_false(fsv_forward_parse(buf, n, &f));
	q.path = NULL;
	q.op = KRG__FSVIEW__OP__OP_READY;
	n = fsv_forward_build(buf, 0, 0, &q, 0);
	assert_false(fsv_forward_parse(buf, n, &f));
	/* No request, or a uid past 32 bits. */
	n = fsv_varint_key(buf, 1, 5);
	n += fsv_varint_key(buf + n, 2, 5);
	assert_false(fsv_forward_parse(buf, n, &f));
	q.op = KRG__FSVIEW__OP__OP_GETATTR;
	q.path = "/tmp";
	n = fsv_forward_build(buf, 0, 0, &q, 0);
	buf[1] = 0x80, buf[2] = 0x80, buf[3] = 0x80, buf[4] = 0x80, buf[5] = 0x10; /* uid 2^32, over the rest */
	assert_false(fsv_forward_parse(buf, n, &f));
}

/* A frame whose message ends with its bulk field comes apart into the
 * rest (unpacked as usual) and the data; a small one whole. */
static void fsview_frames(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int sz = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	static uint8_t data[200000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	Krg__Fsview__Reply r = KRG__FSVIEW__REPLY__INIT;
	r.id = 9;
	r.err = 0;
	uint8_t head[64];
	size_t hl = krg__fsview__reply__pack(&r, head);
	hl += fsv_bytes_field(head + hl, 4, sizeof(data));
	assert_int_equal(fsv_write_frame2(sv[0], head, hl, data, sizeof(data)), 0);
	r.has_data = true;
	r.data.data = data;
	r.data.len = 100;
	uint8_t small[256];
	size_t sl = krg__fsview__reply__pack(&r, small);
	assert_int_equal(fsv_write_frame(sv[0], small, sl), 0);
	uint8_t *h, *d;
	size_t len, dlen;
	assert_int_equal(fsv_read_frame_split(sv[1], 4, &h, &len, &d, &dlen), 0);
	assert_non_null(d);
	assert_int_equal(dlen, sizeof(data));
	assert_memory_equal(d, data, sizeof(data));
	Krg__Fsview__Reply *u = krg__fsview__reply__unpack(NULL, len, h);
	assert_non_null(u);
	assert_int_equal(u->id, 9);
	assert_false(u->has_data);
	krg__fsview__reply__free_unpacked(u, NULL);
	free(h);
	free(d);
	assert_int_equal(fsv_read_frame_split(sv[1], 4, &h, &len, &d, &dlen), 0);
	assert_null(d);
	u = krg__fsview__reply__unpack(NULL, len, h);
	assert_non_null(u);
	assert_int_equal(u->data.len, 100);
	krg__fsview__reply__free_unpacked(u, NULL);
	free(h);
	close(sv[0]);
	assert_int_equal(fsv_read_frame_split(sv[1], 4, &h, &len, &d, &dlen), -EPIPE);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(capset_api), cmocka_unit_test(capset_peer), cmocka_unit_test(mig_checks),
		cmocka_unit_test(ckpt_checks), cmocka_unit_test(table_checks), cmocka_unit_test(fsview_checks),
		cmocka_unit_test(fsview_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
