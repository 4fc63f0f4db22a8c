/* Unit tests for the IPC engine's message queues (src/ipc/engine_msg.c):
 * Linux's msgget/msgsnd/msgrcv/msgctl results and errors, blocking,
 * cancel and undeliverable. */
#include "ipc_test.h"

#define KEY 0x1234

static void test_msgget(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1001, 1001, 11);
	struct krg_ipc_req q = q_msgget(IPC_PRIVATE, 0600);
	int64_t p1 = t_ret(t, &a, &q), p2 = t_ret(t, &a, &q);
	assert_true(p1 >= 0 && p2 >= 0 && p1 != p2);
	q = q_msgget(KEY, 0600);
	assert_int_equal(t_ret(t, &a, &q), -ENOENT);
	q.flags = IPC_CREAT | 0600;
	int64_t id = t_ret(t, &a, &q);
	assert_true(id >= 0);
	assert_int_equal(t_ret(t, &a, &q), id);
	q.flags = IPC_CREAT | IPC_EXCL | 0600;
	assert_int_equal(t_ret(t, &a, &q), -EEXIST);
	/* another user: mode bits asked for are checked */
	q.flags = 0;
	assert_int_equal(t_ret(t, &b, &q), id);
	q.flags = 0400;
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	/* IPC_EXCL wins over EACCES, as in Linux */
	q.flags = IPC_CREAT | IPC_EXCL | 0400;
	assert_int_equal(t_ret(t, &b, &q), -EEXIST);
	struct krg_ipc_caller own = b;
	own.cred.caps = KRG_IPC_CAP_IPC_OWNER;
	q.flags = 0600;
	assert_int_equal(t_ret(t, &own, &q), id);
	/* a supplementary group gives the group bits */
	struct krg_ipc_req g = q_msgget(KEY + 1, IPC_CREAT | 0640);
	int64_t gid_q = t_ret(t, &a, &g);
	g.flags = 0040;
	assert_int_equal(t_ret(t, &b, &g), -EACCES);
	uint32_t groups[] = { 5, 1000 };
	struct krg_ipc_caller bg = b;
	bg.cred.groups = groups;
	bg.cred.ngroups = 2;
	assert_int_equal(t_ret(t, &bg, &g), gid_q);
	g.flags = 0020;
	assert_int_equal(t_ret(t, &bg, &g), -EACCES);
	/* msgmni */
	t->lim.msgmni = 4;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	q = q_msgget(IPC_PRIVATE, 0600);
	assert_int_equal(t_ret(t, &a, &q), -ENOSPC);
	t_free(t);
}

static void test_ids(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(0, 0, 1);
	struct krg_ipc_req q = q_msgget(IPC_PRIVATE, 0600);
	/* Linux: idx 0, 1, 2... seq 0; a freed idx is not reused at once */
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &a, &q), 1);
	struct krg_ipc_req rm = q_msgctl(0, IPC_RMID);
	assert_int_equal(t_ret(t, &a, &rm), 0);
	assert_int_equal(t_ret(t, &a, &q), 2);
	rm.id = 2;
	assert_int_equal(t_ret(t, &a, &rm), 0);
	/* the cycle wraps at 64 (ipc_min_cycle): idx 0 again with seq 1 */
	for (int i = 2; i < 63; i++) {
		int64_t id = t_ret(t, &a, &q);
		assert_int_equal(id, i + 1);
		rm.id = (int32_t)id;
		assert_int_equal(t_ret(t, &a, &rm), 0);
	}
	assert_int_equal(t_ret(t, &a, &q), 0 + 1 * KRG_IPC_SEQ_MULT);
	/* an old id of a reused idx is EINVAL */
	struct krg_ipc_req st = q_msgctl(0, IPC_STAT);
	assert_int_equal(t_ret(t, &a, &st), -EINVAL);
	st.id = KRG_IPC_SEQ_MULT;
	assert_int_equal(t_ret(t, &a, &st), 0);
	/* chosen ids (cluster allocation) */
	q.id = 7 + 3 * KRG_IPC_SEQ_MULT;
	q.key = 0x77;
	q.flags = IPC_CREAT | 0600;
	assert_int_equal(t_ret(t, &a, &q), 7 + 3 * KRG_IPC_SEQ_MULT);
	assert_int_equal(krg_ipc_engine_find_key(t->e, KRG_IPC_MSG, 0x77), 7 + 3 * KRG_IPC_SEQ_MULT);
	q.key = 0x78;
	q.id = 7;
	assert_int_equal(t_ret(t, &a, &q), -EBUSY);
	t_free(t);
}

static void send_ok(struct t *t, const struct krg_ipc_caller *c, int32_t id, int64_t type, const char *s)
{
	struct krg_ipc_req q = q_msgsnd(id, type, s, IPC_NOWAIT);
	assert_int_equal(t_ret(t, c, &q), 0);
}

static void test_types(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	send_ok(t, &a, id, 5, "five");
	send_ok(t, &a, id, 3, "three");
	send_ok(t, &a, id, 7, "seven");
	send_ok(t, &a, id, 3, "three-b");
	send_ok(t, &a, id, 1, "one");
	/* MSG_COPY: by index, not removed; needs IPC_NOWAIT, refuses MSG_EXCEPT */
	assert_int_equal(t_recv(t, &a, id, 2, MSG_COPY, "seven"), 7);
	assert_int_equal(t_recv(t, &a, id, 9, MSG_COPY, NULL), -ENOMSG);
	struct krg_ipc_req c = q_msgrcv(id, 0, 100, MSG_COPY);
	assert_int_equal(t_ret(t, &a, &c), -EINVAL);
	c.flags = MSG_COPY | IPC_NOWAIT | MSG_EXCEPT;
	assert_int_equal(t_ret(t, &a, &c), -EINVAL);
	/* MSG_COPY of a message longer than the buffer: E2BIG, and EINVAL
	 * with MSG_NOERROR (Linux copy_msg) */
	c = q_msgrcv(id, 0, 2, MSG_COPY | IPC_NOWAIT);
	assert_int_equal(t_ret(t, &a, &c), -E2BIG);
	c.flags |= MSG_NOERROR;
	assert_int_equal(t_ret(t, &a, &c), -EINVAL);
	/* type > 0: first of that type; MSG_EXCEPT: first of another */
	assert_int_equal(t_recv(t, &a, id, 3, 0, "three"), 3);
	assert_int_equal(t_recv(t, &a, id, 5, MSG_EXCEPT, "seven"), 7);
	/* type < 0: lowest type <= |type|, first of it */
	assert_int_equal(t_recv(t, &a, id, -4, 0, "one"), 1);
	assert_int_equal(t_recv(t, &a, id, -4, 0, "three-b"), 3);
	assert_int_equal(t_recv(t, &a, id, -4, 0, NULL), -ENOMSG);
	assert_int_equal(t_recv(t, &a, id, 4, 0, NULL), -ENOMSG);
	/* E2BIG leaves the message; MSG_NOERROR truncates (text kept whole) */
	struct krg_ipc_req r = q_msgrcv(id, 0, 2, IPC_NOWAIT);
	assert_int_equal(t_ret(t, &a, &r), -E2BIG);
	r.flags |= MSG_NOERROR;
	struct krg_ipc_reply rep;
	assert_int_equal(t_call(t, &a, &r, NULL, &rep), KRG_IPC_DONE);
	assert_int_equal(rep.ret, 2);
	assert_int_equal(rep.text_len, 4);
	assert_memory_equal(rep.text, "five", 4);
	krg_ipc_reply_release(&rep);
	assert_int_equal(t_recv(t, &a, id, 0, 0, NULL), -ENOMSG);
	/* LONG_MIN as a type means "any type up to LONG_MAX" */
	send_ok(t, &a, id, INT64_MAX, "max");
	assert_int_equal(t_recv(t, &a, id, INT64_MIN, 0, "max"), INT64_MAX);
	t_free(t);
}

static void test_send_errors(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1001, 1001, 11);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0640);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	struct krg_ipc_req q = q_msgsnd(id, 0, "x", 0);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* mtype < 1 */
	q.msgtyp = 1;
	q.msgsz = 8193;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* > msgmax */
	q.msgsz = 1;
	q.id = -1;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q.id = id + 1;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* no such queue */
	q.id = id;
	assert_int_equal(t_ret(t, &b, &q), -EACCES);          /* others: no w */
	struct krg_ipc_req r = q_msgrcv(id, 0, 10, IPC_NOWAIT);
	assert_int_equal(t_ret(t, &b, &r), -EACCES);
	r.msgsz = (uint64_t)-1;
	assert_int_equal(t_ret(t, &a, &r), -EINVAL);
	/* a full queue: EAGAIN with IPC_NOWAIT (bytes, then message count) */
	static char big[8193];
	memset(big, 'x', 8192);
	q = q_msgsnd(id, 1, big, IPC_NOWAIT);
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &a, &q), -EAGAIN);
	/* Linux: an empty message still fits a queue full of bytes */
	q = q_msgsnd(id, 1, "", IPC_NOWAIT);
	assert_int_equal(t_ret(t, &a, &q), 0);
	t_free(t);
}

static void test_zero_length_count(void **state)
{
	/* Linux counts messages against qbytes too: qbytes empty messages fit. */
	struct t *t = t_new();
	struct krg_ipc_caller a = who(0, 0, 1);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	struct krg_ipc_req set = q_msgctl(id, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 0, .gid = 0, .mode = 0600, .qbytes = 3 };
	assert_int_equal(t_ret(t, &a, &set), 0);
	struct krg_ipc_req q = q_msgsnd(id, 1, "", IPC_NOWAIT);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &a, &q), -EAGAIN);
	t_free(t);
}

static void test_blocking(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1000, 1000, 11), c = who(1000, 1000, 12);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	/* two receivers wait: FIFO among those that match */
	uint64_t r1, r2, r3;
	struct krg_ipc_req r = q_msgrcv(id, 0, 100, 0);
	assert_int_equal(t_call(t, &b, &r, &r1, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req rt = q_msgrcv(id, 9, 100, 0);
	assert_int_equal(t_call(t, &c, &rt, &r3, NULL), KRG_IPC_PENDING);
	assert_int_equal(t_call(t, &c, &r, &r2, NULL), KRG_IPC_PENDING);
	send_ok(t, &a, id, 2, "hello");
	assert_int_equal(t->nd, 1);
	struct krg_ipc_reply *d = t_done(t, r1);
	assert_non_null(d);
	assert_int_equal(d->ret, 5);
	assert_int_equal(d->mtype, 2);
	/* handed over: never queued, lrpid is the receiver's */
	struct krg_ipc_req st = q_msgctl(id, IPC_STAT);
	struct krg_ipc_reply s;
	assert_int_equal(t_call(t, &a, &st, NULL, &s), KRG_IPC_DONE);
	assert_int_equal(s.msq.qnum, 0);
	assert_int_equal(s.msq.lrpid, 11);
	assert_int_equal(s.msq.lspid, 10);
	send_ok(t, &a, id, 9, "nine");
	assert_non_null(t_done(t, r3));   /* the typed receiver, queued before r2 */
	assert_null(t_done(t, r2));
	/* a receiver whose buffer is too small fails E2BIG, the message goes on */
	t_clear(t);
	uint64_t small;
	struct krg_ipc_req rs = q_msgrcv(id, 0, 1, 0);
	assert_int_equal(t_call(t, &b, &rs, &small, NULL), KRG_IPC_PENDING);
	send_ok(t, &a, id, 1, "long");
	assert_int_equal(t_done(t, r2)->ret, 4);
	/* r2 queued first, got it; small still waits */
	assert_null(t_done(t, small));
	send_ok(t, &a, id, 1, "long2");
	assert_int_equal(t_done(t, small)->ret, -E2BIG);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "long2"), 1);
	t_clear(t);

	/* a sender waits for room; a receive lets it in */
	struct krg_ipc_req set = q_msgctl(id, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 1000, .gid = 1000, .mode = 0600, .qbytes = 10 };
	assert_int_equal(t_ret(t, &a, &set), 0);
	send_ok(t, &a, id, 1, "12345678");
	uint64_t s1, s2;
	struct krg_ipc_req sq = q_msgsnd(id, 2, "abcdef", 0);
	assert_int_equal(t_call(t, &b, &sq, &s1, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req sq2 = q_msgsnd(id, 3, "xyz", 0);
	assert_int_equal(t_call(t, &c, &sq2, &s2, NULL), KRG_IPC_PENDING);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "12345678"), 1);
	/* the first fits; then xyz fits too (9 of 10) */
	assert_int_equal(t_done(t, s1)->ret, 0);
	assert_int_equal(t_done(t, s2)->ret, 0);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "abcdef"), 2);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "xyz"), 3);
	t_free(t);
}

static void test_rmid_wakes(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), other = who(1001, 1001, 11);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0666);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	struct krg_ipc_req set = q_msgctl(id, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 1000, .gid = 1000, .mode = 0666, .qbytes = 1 };
	assert_int_equal(t_ret(t, &a, &set), 0);
	send_ok(t, &a, id, 1, "a");
	uint64_t rcv, snd;
	struct krg_ipc_req r = q_msgrcv(id, 5, 10, 0);
	assert_int_equal(t_call(t, &a, &r, &rcv, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req s = q_msgsnd(id, 1, "b", 0);
	assert_int_equal(t_call(t, &a, &s, &snd, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req rm = q_msgctl(id, IPC_RMID);
	assert_int_equal(t_ret(t, &other, &rm), -EPERM);
	assert_int_equal(t_ret(t, &a, &rm), 0);
	assert_int_equal(t_done(t, rcv)->ret, -EIDRM);
	assert_int_equal(t_done(t, snd)->ret, -EIDRM);
	assert_int_equal(t_ret(t, &a, &rm), -EINVAL);
	struct krg_ipc_usage u;
	krg_ipc_engine_usage(t->e, &u);
	assert_int_equal(u.msq_count, 0);
	assert_int_equal(u.msg_count, 0);
	assert_int_equal(u.msg_bytes, 0);
	t_free(t);
}

static void test_cancel_undeliverable(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1000, 1000, 11);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0600);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	uint64_t r1, r2;
	struct krg_ipc_req r = q_msgrcv(id, 0, 100, 0);
	assert_int_equal(t_call(t, &b, &r, &r1, NULL), KRG_IPC_PENDING);
	/* cancelled before anything happened: gone, no answer */
	assert_int_equal(krg_ipc_engine_cancel(t->e, r1), 0);
	assert_int_equal(krg_ipc_engine_cancel(t->e, r1), -EALREADY);
	send_ok(t, &a, id, 1, "first");
	send_ok(t, &a, id, 1, "second");
	assert_int_equal(t->nd, 0);
	/* a received message whose answer was lost goes back to the head */
	struct krg_ipc_req rn = q_msgrcv(id, 0, 3, MSG_NOERROR);
	struct krg_ipc_reply got;
	assert_int_equal(t_call(t, &b, &rn, NULL, &got), KRG_IPC_DONE);
	assert_int_equal(got.ret, 3);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &b, &rn, &got, t->now), 0);
	krg_ipc_reply_release(&got);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "first"), 1);   /* whole, not truncated */
	/* a completed parked receive: cancel says EALREADY, undeliverable
	 * hands the message to the next waiting receiver */
	assert_int_equal(t_recv(t, &a, id, 0, 0, "second"), 1);
	assert_int_equal(t_call(t, &b, &r, &r1, NULL), KRG_IPC_PENDING);
	assert_int_equal(t_call(t, &a, &r, &r2, NULL), KRG_IPC_PENDING);
	send_ok(t, &a, id, 4, "third");
	assert_int_equal(krg_ipc_engine_cancel(t->e, r1), -EALREADY);
	struct krg_ipc_reply *d1 = t_done(t, r1);
	assert_non_null(d1);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &b, &r, d1, t->now), 0);
	struct krg_ipc_reply *d2 = t_done(t, r2);
	assert_non_null(d2);
	assert_int_equal(d2->mtype, 4);
	assert_memory_equal(d2->text, "third", 5);
	/* a send whose answer was lost is taken back if still queued */
	struct krg_ipc_req s = q_msgsnd(id, 6, "six", 0);
	struct krg_ipc_reply sr;
	assert_int_equal(t_call(t, &a, &s, NULL, &sr), KRG_IPC_DONE);
	assert_true(sr.serial != 0);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &s, &sr, t->now), 0);
	assert_int_equal(t_recv(t, &a, id, 0, 0, NULL), -ENOMSG);
	assert_int_equal(t_call(t, &a, &s, NULL, &sr), KRG_IPC_DONE);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "six"), 6);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &s, &sr, t->now), -EALREADY);
	/* a copy took nothing */
	send_ok(t, &a, id, 1, "c");
	struct krg_ipc_req cp = q_msgrcv(id, 0, 10, MSG_COPY | IPC_NOWAIT);
	struct krg_ipc_reply cr;
	assert_int_equal(t_call(t, &a, &cp, NULL, &cr), KRG_IPC_DONE);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &a, &cp, &cr, t->now), -EINVAL);
	krg_ipc_reply_release(&cr);
	assert_int_equal(t_recv(t, &a, id, 0, 0, "c"), 1);
	assert_int_equal(t_recv(t, &a, id, 0, 0, NULL), -ENOMSG);
	/* token already parked */
	uint64_t tk;
	assert_int_equal(t_call(t, &a, &r, &tk, NULL), KRG_IPC_PENDING);
	struct krg_ipc_reply x;
	assert_int_equal(krg_ipc_engine_call(t->e, &a, &r, tk, t->now, &x), -EBUSY);
	/* process_exit drops its parked calls silently */
	krg_ipc_engine_process_exit(t->e, a.proc_id, a.pid, t->now);
	assert_int_equal(krg_ipc_engine_cancel(t->e, tk), -EALREADY);
	t_free(t);
}

static void test_msgctl(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10), b = who(1001, 101, 11), r0 = root_c(1);
	struct krg_ipc_req g = q_msgget(0x55, IPC_CREAT | 0640);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	send_ok(t, &a, id, 1, "abc");
	t->now += 5 * T_SEC;
	struct krg_ipc_reply s;
	struct krg_ipc_req st = q_msgctl(id, IPC_STAT);
	assert_int_equal(t_call(t, &a, &st, NULL, &s), KRG_IPC_DONE);
	assert_int_equal(s.ret, 0);
	assert_int_equal(s.out, KRG_IPC_OUT_MSQ_STAT);
	assert_int_equal(s.msq.perm.key, 0x55);
	assert_int_equal(s.msq.perm.uid, 1000);
	assert_int_equal(s.msq.perm.cuid, 1000);
	assert_int_equal(s.msq.perm.gid, 100);
	assert_int_equal(s.msq.perm.mode, 0640);
	assert_int_equal(s.msq.qbytes, 16384);
	assert_int_equal(s.msq.qnum, 1);
	assert_int_equal(s.msq.cbytes, 3);
	assert_int_equal(s.msq.ctime, T_NOW / T_SEC);
	assert_int_equal(s.msq.stime, T_NOW / T_SEC);
	assert_int_equal(s.msq.rtime, 0);
	assert_int_equal(t_ret(t, &b, &st), -EACCES);
	/* *_STAT by index returns the id; _ANY skips the read check */
	struct krg_ipc_req ms = q_msgctl(krg_ipc_id_idx(id), MSG_STAT);
	assert_int_equal(t_ret(t, &b, &ms), -EACCES);
	ms.cmd = MSG_STAT_ANY;
	assert_int_equal(t_ret(t, &b, &ms), id);
	ms.id = krg_ipc_id_idx(id) + 1;
	assert_int_equal(t_ret(t, &b, &ms), -EINVAL);
	/* IPC_SET: owner or CAP_SYS_ADMIN; qbytes above msgmnb needs CAP_SYS_RESOURCE */
	struct krg_ipc_req set = q_msgctl(id, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 1001, .gid = 101, .mode = 0604 | 01000, .qbytes = 100 };
	assert_int_equal(t_ret(t, &b, &set), -EPERM);
	set.set.qbytes = 20000;
	assert_int_equal(t_ret(t, &a, &set), -EPERM);
	assert_int_equal(t_ret(t, &r0, &set), 0);
	set.set.uid = UINT32_MAX;
	assert_int_equal(t_ret(t, &r0, &set), -EINVAL);
	assert_int_equal(t_call(t, &b, &st, NULL, &s), KRG_IPC_DONE);
	assert_int_equal(s.msq.perm.uid, 1001);
	assert_int_equal(s.msq.perm.cuid, 1000);
	assert_int_equal(s.msq.perm.mode, 0604);
	assert_int_equal(s.msq.qbytes, 20000);
	assert_int_equal(s.msq.ctime, T_NOW / T_SEC + 5);
	/* the creator keeps IPC_SET rights */
	set.set.uid = 1001;
	set.set.qbytes = 100;
	assert_int_equal(t_ret(t, &a, &set), 0);
	/* IPC_INFO / MSG_INFO */
	struct krg_ipc_req in = q_msgctl(0, IPC_INFO);
	struct krg_ipc_reply ir;
	assert_int_equal(t_call(t, &b, &in, NULL, &ir), KRG_IPC_DONE);
	assert_int_equal(ir.ret, krg_ipc_id_idx(id));
	assert_int_equal(ir.out, KRG_IPC_OUT_MSGINFO);
	assert_int_equal(ir.msginfo.msgmax, 8192);
	assert_int_equal(ir.msginfo.msgmnb, 16384);
	assert_int_equal(ir.msginfo.msgpool, 512000);
	assert_int_equal(ir.msginfo.msgssz, 16);
	assert_int_equal(ir.msginfo.msgseg, 0xffff);
	in.cmd = MSG_INFO;
	assert_int_equal(t_call(t, &b, &in, NULL, &ir), KRG_IPC_DONE);
	assert_int_equal(ir.msginfo.msgpool, 1);
	assert_int_equal(ir.msginfo.msgmap, 1);
	assert_int_equal(ir.msginfo.msgtql, 3);
	in.cmd = 99;
	assert_int_equal(t_ret(t, &b, &in), -EINVAL);
	in.cmd = -1;
	assert_int_equal(t_ret(t, &b, &in), -EINVAL);
	in.cmd = IPC_INFO;
	in.id = -1;
	assert_int_equal(t_ret(t, &b, &in), -EINVAL);
	/* receive time and pid */
	t->now += T_SEC;
	assert_int_equal(t_recv(t, &b, id, 0, 0, "abc"), 1);
	assert_int_equal(t_call(t, &b, &st, NULL, &s), KRG_IPC_DONE);
	assert_int_equal(s.msq.rtime, T_NOW / T_SEC + 6);
	assert_int_equal(s.msq.lrpid, 11);
	assert_true(t->changes > 0);
	t_free(t);
}

static void test_set_rechecks_waiters(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1001, 1001, 11);
	struct krg_ipc_req g = q_msgget(IPC_PRIVATE, 0666);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	uint64_t ra, rb;
	struct krg_ipc_req r = q_msgrcv(id, 0, 100, 0);
	assert_int_equal(t_call(t, &a, &r, &ra, NULL), KRG_IPC_PENDING);
	assert_int_equal(t_call(t, &b, &r, &rb, NULL), KRG_IPC_PENDING);
	struct krg_ipc_req set = q_msgctl(id, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 1000, .gid = 1000, .mode = 0600, .qbytes = 16384 };
	assert_int_equal(t_ret(t, &a, &set), 0);
	assert_int_equal(t_done(t, rb)->ret, -EACCES);
	assert_null(t_done(t, ra));
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgget),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_send_errors),
		cmocka_unit_test(test_zero_length_count),
		cmocka_unit_test(test_blocking),
		cmocka_unit_test(test_rmid_wakes),
		cmocka_unit_test(test_cancel_undeliverable),
		cmocka_unit_test(test_msgctl),
		cmocka_unit_test(test_set_rechecks_waiters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
