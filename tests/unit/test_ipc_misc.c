/* Unit tests for the IPC engine's scale (10 000s of objects), export and
 * import, drop, change notes, the limits reader and the x86_64 ABI
 * conversions (src/ipc/engine_core.c, engine_xport.c, engine_sysctl.c,
 * ipc_abi.c). */
#include <stdio.h>
#include <unistd.h>
#include "ipc_test.h"
#include "ipc/ipc_abi.h"

#define N 15000

static void test_many(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(0, 0, 1);
	t->lim.msgmni = 32768;
	t->lim.semmni = 32768;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	static int32_t mq[N], sq[N];
	for (int i = 0; i < N; i++) {
		struct krg_ipc_req q = q_msgget(0x10000 + i, IPC_CREAT | IPC_EXCL | 0600);
		mq[i] = (int32_t)t_ret(t, &a, &q);
		assert_true(mq[i] >= 0);
		struct krg_ipc_req s = q_semget(0x10000 + i, 2, IPC_CREAT | IPC_EXCL | 0600);
		sq[i] = (int32_t)t_ret(t, &a, &s);
		assert_true(sq[i] >= 0);
		struct krg_ipc_req m = q_msgsnd(mq[i], 1 + i % 7, "payload", IPC_NOWAIT);
		assert_int_equal(t_ret(t, &a, &m), 0);
	}
	for (int i = 0; i < N; i += 97) {
		assert_int_equal(krg_ipc_engine_find_key(t->e, KRG_IPC_MSG, 0x10000 + i), mq[i]);
		assert_int_equal(krg_ipc_engine_find_key(t->e, KRG_IPC_SEM, 0x10000 + i), sq[i]);
		struct krg_ipc_req q = q_msgget(0x10000 + i, 0);
		assert_int_equal(t_ret(t, &a, &q), mq[i]);
	}
	struct krg_ipc_usage u;
	krg_ipc_engine_usage(t->e, &u);
	assert_int_equal(u.msq_count, N);
	assert_int_equal(u.msg_count, N);
	assert_int_equal(u.msg_bytes, 7 * N);
	assert_int_equal(u.sem_count, N);
	assert_int_equal(u.sem_total, 2 * N);
	/* enumeration walks every object once, in idx order */
	int seen = 0;
	for (int32_t id = krg_ipc_engine_next(t->e, KRG_IPC_MSG, 0); id >= 0;
	     id = krg_ipc_engine_next(t->e, KRG_IPC_MSG, krg_ipc_id_idx(id) + 1))
		seen++;
	assert_int_equal(seen, N);
	/* many waiters, one per queue, answered by one send each */
	for (int i = 0; i < N; i++) {
		struct krg_ipc_req r = q_msgrcv(mq[i], 99, 100, 0);
		uint64_t tok;
		assert_int_equal(t_call(t, &a, &r, &tok, NULL), KRG_IPC_PENDING);
	}
	for (int i = 0; i < N; i++) {
		struct krg_ipc_req rm = q_msgctl(mq[i], IPC_RMID);
		assert_int_equal(t_ret(t, &a, &rm), 0);
		if (t->nd > 200)
			t_clear(t);
		struct krg_ipc_req rs = q_semctl(sq[i], 0, IPC_RMID);
		assert_int_equal(t_ret(t, &a, &rs), 0);
	}
	krg_ipc_engine_usage(t->e, &u);
	assert_int_equal(u.msq_count + u.sem_count, 0);
	assert_int_equal(u.msg_count + u.msg_bytes + u.sem_total, 0);
	assert_int_equal(krg_ipc_engine_next(t->e, KRG_IPC_MSG, 0), -ENOENT);
	t_free(t);
}

static void test_export_import(void **state)
{
	struct t *t = t_new(), *t2 = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10);
	struct krg_ipc_req g = q_msgget(0x31, IPC_CREAT | 0640);
	int32_t mid = (int32_t)t_ret(t, &a, &g);
	for (int i = 1; i <= 3; i++) {
		char txt[16];
		snprintf(txt, sizeof txt, "m%d", i);
		struct krg_ipc_req s = q_msgsnd(mid, i, txt, 0);
		assert_int_equal(t_ret(t, &a, &s), 0);
	}
	struct krg_ipc_req sg = q_semget(0x32, 3, IPC_CREAT | 0600);
	int32_t sid = (int32_t)t_ret(t, &a, &sg);
	struct krg_ipc_sembuf up = { .num = 2, .op = 4, .flg = SEM_UNDO };
	struct krg_ipc_req so = q_semop(sid, &up, 1);
	assert_int_equal(t_ret(t, &a, &so), 0);

	struct krg_ipc_export xm, xs;
	assert_int_equal(krg_ipc_engine_export(t->e, KRG_IPC_MSG, mid, &xm), 0);
	struct krg_ipc_export none;
	assert_int_equal(krg_ipc_engine_export(t->e, KRG_IPC_SEM, sid + 1, &none), -EINVAL);
	assert_int_equal(krg_ipc_engine_export(t->e, KRG_IPC_SEM, sid, &xs), 0);
	assert_int_equal(xm.nmsgs, 3);
	assert_int_equal(xm.lspid, 10);
	assert_int_equal(xs.semval[2], 4);
	assert_int_equal(xs.sempid[2], 10);
	assert_int_equal(xs.nundos, 1);
	assert_int_equal(xs.undos[0].semadj[2], -4);
	/* into a new engine: same ids, keys, contents, undo records */
	assert_int_equal(krg_ipc_engine_import(t2->e, &xm), 0);
	assert_int_equal(krg_ipc_engine_import(t2->e, &xs), 0);
	assert_int_equal(krg_ipc_engine_import(t2->e, &xm), -EEXIST);
	struct krg_ipc_export other = xm;
	other.perm.key = 0x99;
	assert_int_equal(krg_ipc_engine_import(t2->e, &other), -EBUSY);
	assert_int_equal(krg_ipc_engine_find_key(t2->e, KRG_IPC_MSG, 0x31), mid);
	assert_int_equal(t_recv(t2, &a, mid, 2, 0, "m2"), 2);
	assert_int_equal(t_recv(t2, &a, mid, 0, 0, "m1"), 1);
	struct krg_ipc_req st = q_msgctl(mid, IPC_STAT);
	struct krg_ipc_reply r;
	assert_int_equal(t_call(t2, &a, &st, NULL, &r), KRG_IPC_DONE);
	assert_int_equal(r.msq.qnum, 1);
	assert_int_equal(r.msq.cbytes, 2);
	assert_int_equal(r.msq.perm.cuid, 1000);
	assert_int_equal(r.msq.perm.mode, 0640);
	assert_int_equal(t_semval(t2, sid, 2), 4);
	krg_ipc_engine_process_exit(t2->e, a.proc_id, 10, t2->now);
	assert_int_equal(t_semval(t2, sid, 2), 0);
	/* an import that could never have been exported is refused */
	struct krg_ipc_export bad = xs;
	bad.id = 500;
	bad.perm.key = 0x700;
	uint16_t big[3] = { 0, 0, 40000 };
	bad.semval = big;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	bad = xs;
	bad.id = 501;
	bad.perm.key = 0x701;
	bad.nsems = 0;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	bad = xm;
	bad.id = 502;
	bad.perm.key = 0x702;
	bad.msgs[0].mtype = 0;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	bad.msgs[0].mtype = 1;
	krg_ipc_export_release(&xm);
	krg_ipc_export_release(&xs);
	/* semmns applies to imports */
	t2->lim.semmns = 4;
	krg_ipc_engine_set_limits(t2->e, &t2->lim);
	assert_int_equal(krg_ipc_engine_export(t2->e, KRG_IPC_SEM, sid, &xs), 0);
	xs.id = 9;
	xs.perm.key = 0x703;
	assert_int_equal(krg_ipc_engine_import(t2->e, &xs), -ENOSPC);
	krg_ipc_export_release(&xs);
	t_free(t);
	t_free(t2);
}

static void test_drop_and_changes(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(0, 0, 1);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	int before = t->changes;
	struct krg_ipc_req st = q_msgctl(id, IPC_STAT);
	assert_int_equal(t_ret(t, &a, &st), 0);
	assert_int_equal(t->changes, before);                 /* reading changes nothing */
	struct krg_ipc_req r = q_msgrcv(id, 0, 10, 0);
	uint64_t tok;
	assert_int_equal(t_call(t, &a, &r, &tok, NULL), KRG_IPC_PENDING);
	assert_int_equal(t->changes, before);                 /* nor does parking */
	assert_int_equal(krg_ipc_engine_drop(t->e, KRG_IPC_MSG, id, -ERESTART), 0);
	assert_int_equal(t_done(t, tok)->ret, -ERESTART);
	assert_int_equal(t->changes, before + 1);
	assert_int_equal(krg_ipc_engine_drop(t->e, KRG_IPC_MSG, id, -EIDRM), -EINVAL);
	t_free(t);
}

static void test_limits_read(void **state)
{
	char dir[] = "/tmp/krg-ipc-lim-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[256];
	struct { const char *f, *v; } files[] = {
		{ "msgmax", "9000\n" }, { "msgmnb", "20000\n" }, { "msgmni", "100\n" },
		{ "sem", "250\t256000\t32\t128\n" },
	};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i].f);
		FILE *f = fopen(p, "w");
		fputs(files[i].v, f);
		fclose(f);
	}
	struct krg_ipc_limits l;
	krg_ipc_limits_default(&l);
	assert_int_equal(krg_ipc_limits_read(&l, dir), 0);
	assert_int_equal(l.msgmax, 9000);
	assert_int_equal(l.msgmnb, 20000);
	assert_int_equal(l.msgmni, 100);
	assert_int_equal(l.semmsl, 250);
	assert_int_equal(l.semmns, 256000);
	assert_int_equal(l.semopm, 32);
	assert_int_equal(l.semmni, 128);
	assert_int_equal(l.semvmx, 32767);
	snprintf(p, sizeof p, "%s/sem", dir);
	FILE *f = fopen(p, "w");
	fputs("250 x\n", f);
	fclose(f);
	assert_int_equal(krg_ipc_limits_read(&l, dir), -EINVAL);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i].f);
		unlink(p);
	}
	/* missing files keep the values */
	assert_int_equal(krg_ipc_limits_read(&l, dir), 0);
	assert_int_equal(l.semmni, 128);
	rmdir(dir);
	/* this machine's */
	assert_int_equal(krg_ipc_limits_read(&l, "/proc/sys/kernel"), 0);
	assert_true(l.msgmax > 0 && l.semopm > 0);
}

static void test_abi(void **state)
{
	struct krg_ipc_msq_stat m = {
		.perm = { .key = 0x1234, .uid = 1, .gid = 2, .cuid = 3, .cgid = 4, .mode = 0640, .seq = 7 },
		.stime = 100, .rtime = 200, .ctime = 300, .cbytes = 11, .qnum = 2, .qbytes = 16384,
		.lspid = 55, .lrpid = 66,
	};
	struct msqid_ds d;
	assert_int_equal(sizeof d, KRG_IPC_ABI_MSQID_DS_SIZE);
	krg_ipc_abi_msqid_ds(&m, &d);
	assert_int_equal(d.msg_perm.__key, 0x1234);
	assert_int_equal(d.msg_perm.uid, 1);
	assert_int_equal(d.msg_perm.gid, 2);
	assert_int_equal(d.msg_perm.cuid, 3);
	assert_int_equal(d.msg_perm.cgid, 4);
	assert_int_equal(d.msg_perm.mode, 0640);
	assert_int_equal(d.msg_perm.__seq, 7);
	assert_int_equal(d.msg_stime, 100);
	assert_int_equal(d.msg_rtime, 200);
	assert_int_equal(d.msg_ctime, 300);
	assert_int_equal(d.__msg_cbytes, 11);
	assert_int_equal(d.msg_qnum, 2);
	assert_int_equal(d.msg_qbytes, 16384);
	assert_int_equal(d.msg_lspid, 55);
	assert_int_equal(d.msg_lrpid, 66);
	struct krg_ipc_setbuf sb;
	d.msg_qbytes = 999;
	krg_ipc_abi_msq_setbuf(&d, &sb);
	assert_int_equal(sb.qbytes, 999);
	assert_int_equal(sb.mode, 0640);
	assert_int_equal(sb.uid, 1);

	struct krg_ipc_sem_stat s = { .perm = { .key = 9, .uid = 5, .mode = 0600 }, .otime = 1, .ctime = 2, .nsems = 3 };
	struct semid_ds sd;
	assert_int_equal(sizeof sd, KRG_IPC_ABI_SEMID_DS_SIZE);
	krg_ipc_abi_semid_ds(&s, &sd);
	assert_int_equal(sd.sem_perm.__key, 9);
	assert_int_equal(sd.sem_perm.uid, 5);
	assert_int_equal(sd.sem_otime, 1);
	assert_int_equal(sd.sem_ctime, 2);
	assert_int_equal(sd.sem_nsems, 3);

	struct sembuf in[2] = { { 1, -2, SEM_UNDO }, { 4, 0, IPC_NOWAIT } };
	struct krg_ipc_sembuf out[2];
	krg_ipc_abi_sembufs(in, 2, out);
	assert_int_equal(out[0].num, 1);
	assert_int_equal(out[0].op, -2);
	assert_int_equal(out[0].flg, SEM_UNDO);
	assert_int_equal(out[1].num, 4);
	assert_int_equal(out[1].flg, IPC_NOWAIT);

	struct krg_ipc_reply r = { .out = KRG_IPC_OUT_MSGINFO, .msginfo = { .msgmax = 8192, .msgseg = 0xffff } };
	struct msginfo mi;
	assert_int_equal(krg_ipc_abi_reply_out(&r, &mi, sizeof mi), sizeof mi);
	assert_int_equal(mi.msgmax, 8192);
	assert_int_equal(mi.msgseg, 0xffff);
	assert_int_equal(krg_ipc_abi_reply_out(&r, &mi, 4), 0);
	r.out = KRG_IPC_OUT_NONE;
	assert_int_equal(krg_ipc_abi_reply_out(&r, &mi, sizeof mi), 0);

	char buf[16];
	krg_ipc_abi_mtype_put(-77, buf);
	assert_int_equal(krg_ipc_abi_mtype_get(buf), -77);
}

/* Requests that crossed the network may be malformed: refused, no crash. */
static void test_hostile(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10);
	a.cred.ngroups = 5;          /* and no array */
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	assert_true(id >= 0);
	struct krg_ipc_req r = q_msgrcv(id, 0, 10, 0);
	uint64_t tok;
	assert_int_equal(t_call(t, &a, &r, &tok, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req s = q_msgsnd(id, 1, "abc", 0);
	s.text = NULL;
	assert_int_equal(t_ret(t, &a, &s), -EFAULT);
	s = q_msgsnd(id, 1, "abc", 0);
	s.text_len = 1;
	assert_int_equal(t_ret(t, &a, &s), -EFAULT);
	struct krg_ipc_reply bad = { .ret = 3, .mtype = 1, .text = NULL, .text_len = 3 };
	struct krg_ipc_req rr = q_msgrcv(id, 0, 10, 0);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &rr, &bad, t->now), -EINVAL);
	bad.text = (uint8_t *)"abc";
	bad.mtype = 0;
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &rr, &bad, t->now), -EINVAL);
	struct krg_ipc_req op = { .op = 99 };
	assert_int_equal(t_ret(t, &a, &op), -ENOSYS);
	struct krg_ipc_req sg = q_semget(IPC_PRIVATE, 2, 0600);
	int32_t sid = (int32_t)t_ret(t, &a, &sg);
	struct krg_ipc_req so = q_semop(sid, NULL, 2);
	assert_int_equal(t_ret(t, &a, &so), -EFAULT);
	struct krg_ipc_sembuf far = { .num = 7, .op = 1 };
	struct krg_ipc_req su = q_semop(sid, &far, 1);
	struct krg_ipc_reply ok = { .ret = 0 };
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &su, &ok, t->now), -EINVAL);
	struct krg_ipc_req sa = q_semctl(sid, 0, SETALL);
	assert_int_equal(t_ret(t, &a, &sa), -EFAULT);
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_export_import),
		cmocka_unit_test(test_drop_and_changes),
		cmocka_unit_test(test_limits_read),
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
