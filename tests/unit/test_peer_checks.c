/* test_peer_checks.c — the services' checks of what peers send
 * (capset_msg.c, mig_msg.c, ckpt_msg.c, table_msg.c): each accepts what
 * krgd itself sends and refuses each way of being wrong. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(capset_api), cmocka_unit_test(capset_peer), cmocka_unit_test(mig_checks),
		cmocka_unit_test(ckpt_checks), cmocka_unit_test(table_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
