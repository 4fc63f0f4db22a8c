/* Unit tests for the IPC engine's semaphore sets (src/ipc/engine_sem.c,
 * engine_undo.c): Linux's semget/semop/semtimedop/semctl results and
 * errors, atomicity, wake-up order, timeouts, SEM_UNDO, cancel and
 * undeliverable. */
#include "ipc_test.h"

#define SB(n, o, f) ((struct krg_ipc_sembuf){ .num = (n), .op = (o), .flg = (f) })

static int32_t mkset(struct t *t, const struct krg_ipc_caller *c, int n, int mode)
{
	struct krg_ipc_req q = q_semget(IPC_PRIVATE, n, mode);
	int64_t id = t_ret(t, c, &q);
	assert_true(id >= 0);
	return (int32_t)id;
}

static int64_t op1(struct t *t, const struct krg_ipc_caller *c, int32_t id, struct krg_ipc_sembuf s)
{
	struct krg_ipc_req q = q_semop(id, &s, 1);
	return t_ret(t, c, &q);
}

/* Parks a semop; returns its token. */
static uint64_t park(struct t *t, const struct krg_ipc_caller *c, int32_t id, const struct krg_ipc_sembuf *s, uint32_t n)
{
	uint64_t tok;
	struct krg_ipc_req q = q_semop(id, s, n);
	assert_int_equal(t_call(t, c, &q, &tok, NULL), KRG_IPC_PENDING);
	return tok;
}

static void test_semget(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1001, 1001, 11);
	struct krg_ipc_req q = q_semget(0x99, 3, 0600);
	assert_int_equal(t_ret(t, &a, &q), -ENOENT);
	q.flags = IPC_CREAT | 0600;
	q.nsems = 0;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* creating 0 */
	q.nsems = -1;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q.nsems = 32001;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* > semmsl */
	q.nsems = 3;
	int64_t id = t_ret(t, &a, &q);
	assert_true(id >= 0);
	q.nsems = 0;
	assert_int_equal(t_ret(t, &a, &q), id);               /* 0 is fine for an existing set */
	q.nsems = 4;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);          /* more than it has */
	q.flags |= IPC_EXCL;
	assert_int_equal(t_ret(t, &a, &q), -EEXIST);          /* EEXIST before EINVAL */
	q.flags = 0600;
	q.nsems = 2;
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	/* semmns counts semaphores, semmni sets */
	t->lim.semmns = 5;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	struct krg_ipc_req p = q_semget(IPC_PRIVATE, 3, 0600);
	assert_int_equal(t_ret(t, &a, &p), -ENOSPC);
	p.nsems = 2;
	assert_true(t_ret(t, &a, &p) >= 0);
	t->lim.semmns = 100;
	t->lim.semmni = 2;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	assert_int_equal(t_ret(t, &a, &p), -ENOSPC);
	t_free(t);
}

static void test_semop_errors(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10), b = who(1001, 1001, 11);
	int32_t id = mkset(t, &a, 2, 0604);
	struct krg_ipc_sembuf many[501];
	for (int i = 0; i < 501; i++)
		many[i] = SB(0, 0, 0);
	struct krg_ipc_req q = q_semop(id, many, 501);
	assert_int_equal(t_ret(t, &a, &q), -E2BIG);
	q.sops = NULL;                                        /* E2BIG before the buffer is looked at */
	assert_int_equal(t_ret(t, &a, &q), -E2BIG);
	q.nsops = 0;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	assert_int_equal(op1(t, &a, id, SB(2, 1, 0)), -EFBIG);
	assert_int_equal(op1(t, &a, id + 1, SB(0, 1, 0)), -EINVAL);
	assert_int_equal(op1(t, &a, -5, SB(0, 1, 0)), -EINVAL);
	/* others may read (wait for zero) but not alter */
	assert_int_equal(op1(t, &b, id, SB(0, 0, 0)), 0);
	assert_int_equal(op1(t, &b, id, SB(0, 1, 0)), -EACCES);
	assert_int_equal(op1(t, &a, id, SB(0, -1, IPC_NOWAIT)), -EAGAIN);
	assert_int_equal(op1(t, &a, id, SB(0, 32767, 0)), 0);
	assert_int_equal(op1(t, &a, id, SB(0, 1, 0)), -ERANGE);
	assert_int_equal(t_semval(t, id, 0), 32767);
	/* timeouts are checked */
	struct krg_ipc_sembuf s = SB(1, -1, 0);
	q = q_semop(id, &s, 1);
	q.has_timeout = 1;
	q.timeout_nsec = 1000000000;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q.timeout_nsec = -1;
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q.timeout_nsec = 0;
	q.timeout_sec = 0;
	assert_int_equal(t_ret(t, &a, &q), -EAGAIN);          /* zero timeout: tried, then EAGAIN */
	t_free(t);
}

static void test_atomic(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 1000, 10);
	int32_t id = mkset(t, &a, 3, 0600);
	t_setval(t, id, 0, 1);
	/* the second op cannot go: nothing of the first is applied */
	struct krg_ipc_sembuf s[3] = { SB(0, -1, 0), SB(1, -1, IPC_NOWAIT), SB(2, 1, 0) };
	struct krg_ipc_req q = q_semop(id, s, 3);
	assert_int_equal(t_ret(t, &a, &q), -EAGAIN);
	assert_int_equal(t_semval(t, id, 0), 1);
	assert_int_equal(t_semval(t, id, 2), 0);
	/* ERANGE on a later op takes back the earlier ones */
	t_setval(t, id, 2, 32767);
	s[1] = SB(1, 0, 0);
	q = q_semop(id, s, 3);
	assert_int_equal(t_ret(t, &a, &q), -ERANGE);
	assert_int_equal(t_semval(t, id, 0), 1);
	/* the same semaphore twice in one call: applied in order */
	struct krg_ipc_sembuf d[2] = { SB(0, 2, 0), SB(0, -3, 0) };
	q = q_semop(id, d, 2);
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_semval(t, id, 0), 0);
	/* a waiting multi-op holds nothing while it waits */
	t_setval(t, id, 2, 0);
	struct krg_ipc_sembuf w[2] = { SB(0, 1, 0), SB(1, -1, 0) };
	uint64_t tok = park(t, &a, id, w, 2);
	assert_int_equal(t_semval(t, id, 0), 0);
	t_setval(t, id, 1, 1);
	assert_int_equal(t_done(t, tok)->ret, 0);
	assert_int_equal(t_semval(t, id, 0), 1);
	assert_int_equal(t_semval(t, id, 1), 0);
	struct krg_ipc_caller r = root_c(1);
	struct krg_ipc_req gp = q_semctl(id, 1, GETPID);
	assert_int_equal(t_ret(t, &r, &gp), 10);
	t_free(t);
}

static void test_wake_order(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller c1 = who(0, 0, 21), c2 = who(0, 0, 22), c3 = who(0, 0, 23), z = who(0, 0, 24);
	int32_t id = mkset(t, &c1, 2, 0600);
	struct krg_ipc_sembuf dn = SB(0, -2, 0), zero = SB(0, 0, 0);
	t_setval(t, id, 0, 1);
	uint64_t tz = park(t, &z, id, &zero, 1);
	uint64_t t1 = park(t, &c1, id, (struct krg_ipc_sembuf[]){ SB(0, -2, 0) }, 1);
	uint64_t t2 = park(t, &c2, id, &dn, 1);
	uint64_t t3 = park(t, &c3, id, &dn, 1);
	struct krg_ipc_caller r = root_c(1);
	struct krg_ipc_req n = q_semctl(id, 0, GETNCNT);
	assert_int_equal(t_ret(t, &r, &n), 3);
	n.cmd = GETZCNT;
	assert_int_equal(t_ret(t, &r, &n), 1);
	/* +1 -> 2: t1 (first) goes; the value is 0 again: the zero-waiter
	 * goes, t2 and t3 keep waiting */
	assert_int_equal(op1(t, &r, id, SB(0, 1, 0)), 0);
	assert_int_equal(t->nd, 2);
	assert_int_equal(t->d[0].token, tz);                  /* Linux answers the zero-waiter first */
	assert_int_equal(t->d[1].token, t1);
	t_clear(t);
	assert_int_equal(op1(t, &r, id, SB(0, 4, 0)), 0);
	assert_int_equal(t->nd, 2);
	assert_int_equal(t->d[0].token, t2);
	assert_int_equal(t->d[1].token, t3);
	t_free(t);
}

/* Linux merges per-semaphore queues into the array-wide one semaphore by
 * semaphore (each at the head) when a multi-op waits; the answers come in
 * that order. */
static void test_merge_order(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller ca = who(0, 0, 31), cb = who(0, 0, 32), cc = who(0, 0, 33);
	int32_t id = mkset(t, &ca, 2, 0600);
	uint64_t tb = park(t, &cb, id, (struct krg_ipc_sembuf[]){ SB(0, -1, 0) }, 1);
	uint64_t ta = park(t, &ca, id, (struct krg_ipc_sembuf[]){ SB(1, -1, 0) }, 1);
	uint64_t tc = park(t, &cc, id, (struct krg_ipc_sembuf[]){ SB(0, -1, 0), SB(1, -1, 0) }, 2);
	struct krg_ipc_caller r = root_c(1);
	struct krg_ipc_req n = q_semctl(id, 0, GETNCNT);
	assert_int_equal(t_ret(t, &r, &n), 2);                /* tb, and tc blocked on sem 0 */
	n.semnum = 1;
	assert_int_equal(t_ret(t, &r, &n), 1);                /* ta only: tc blocked on sem 0 */
	struct krg_ipc_req sa = q_semctl(id, 0, SETALL);
	uint16_t v[2] = { 1, 1 };
	sa.vals = v;
	sa.nvals = 2;
	assert_int_equal(t_ret(t, &r, &sa), 0);
	assert_int_equal(t->nd, 2);
	assert_int_equal(t->d[0].token, ta);
	assert_int_equal(t->d[1].token, tb);
	assert_null(t_done(t, tc));
	/* cancelling the multi-op returns single waiters to their queues */
	t_clear(t);
	uint64_t td = park(t, &ca, id, (struct krg_ipc_sembuf[]){ SB(0, -1, 0) }, 1);
	assert_int_equal(krg_ipc_engine_cancel(t->e, tc), 0);
	assert_int_equal(op1(t, &r, id, SB(0, 1, 0)), 0);
	assert_int_equal(t_done(t, td)->ret, 0);
	t_free(t);
}

static void test_timeout(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(0, 0, 10);
	int32_t id = mkset(t, &a, 1, 0600);
	assert_int_equal(krg_ipc_engine_next_deadline(t->e), UINT64_MAX);
	struct krg_ipc_sembuf s = SB(0, -1, 0);
	struct krg_ipc_req q = q_semop(id, &s, 1);
	q.has_timeout = 1;
	q.timeout_sec = 1;
	q.timeout_nsec = 500;
	uint64_t t1, t2;
	assert_int_equal(t_call(t, &a, &q, &t1, NULL), KRG_IPC_PENDING);
	q.timeout_sec = 0;
	q.timeout_nsec = 300;
	assert_int_equal(t_call(t, &a, &q, &t2, NULL), KRG_IPC_PENDING);
	assert_int_equal(krg_ipc_engine_next_deadline(t->e), t->now + 300);
	krg_ipc_engine_tick(t->e, t->now + 299);
	assert_int_equal(t->nd, 0);
	krg_ipc_engine_tick(t->e, t->now + 300);
	assert_int_equal(t_done(t, t2)->ret, -EAGAIN);
	assert_int_equal(krg_ipc_engine_next_deadline(t->e), t->now + T_SEC + 500);
	/* a value arriving in time wins over the timeout */
	t_setval(t, id, 0, 1);
	assert_int_equal(t_done(t, t1)->ret, 0);
	assert_int_equal(krg_ipc_engine_next_deadline(t->e), UINT64_MAX);
	/* many deadlines come out in order */
	t_clear(t);
	uint64_t toks[50];
	for (int i = 0; i < 50; i++) {
		q.timeout_sec = 0;
		q.timeout_nsec = (int64_t)((i * 37) % 50) + 1;
		assert_int_equal(t_call(t, &a, &q, &toks[i], NULL), KRG_IPC_PENDING);
	}
	krg_ipc_engine_tick(t->e, t->now + 1000);
	assert_int_equal(t->nd, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(t->d[i].r.ret, -EAGAIN);
		/* the k-th answer is the call whose timeout was k + 1 ns */
		int k = (int)((t->d[i].token - toks[0]) * 37 % 50);
		assert_int_equal(k, i);
	}
	t_free(t);
}

static void test_undo(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller p = who(0, 0, 40), q = who(0, 0, 41), r = root_c(1);
	int32_t id = mkset(t, &r, 2, 0600);
	/* adjustments add up and are applied at exit */
	assert_int_equal(op1(t, &p, id, SB(0, 3, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &p, id, SB(0, -1, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &p, id, SB(1, 4, 0)), 0);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 4000, t->now);
	assert_int_equal(t_semval(t, id, 0), 0);
	assert_int_equal(t_semval(t, id, 1), 4);
	struct krg_ipc_req gp = q_semctl(id, 0, GETPID);
	assert_int_equal(t_ret(t, &r, &gp), 4000);
	/* clamped at 0 */
	assert_int_equal(op1(t, &p, id, SB(0, 5, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &q, id, SB(0, -4, 0)), 0);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	assert_int_equal(t_semval(t, id, 0), 0);
	/* SETVAL forgets adjustments of that semaphore */
	assert_int_equal(op1(t, &p, id, SB(0, 2, SEM_UNDO)), 0);
	t_setval(t, id, 0, 7);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	assert_int_equal(t_semval(t, id, 0), 7);
	/* the adjustment's range is an error (ERANGE) */
	t_setval(t, id, 0, 32767);
	assert_int_equal(op1(t, &p, id, SB(0, -32767, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &q, id, SB(0, 1, 0)), 0);
	assert_int_equal(op1(t, &p, id, SB(0, -1, SEM_UNDO)), -ERANGE);
	assert_int_equal(t_semval(t, id, 0), 1);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	assert_int_equal(t_semval(t, id, 0), 32767);          /* 1 + 32767, clamped */
	/* a lock holder's exit lets the next one in */
	t_setval(t, id, 1, 1);
	assert_int_equal(op1(t, &p, id, SB(1, -1, SEM_UNDO)), 0);
	uint64_t w = park(t, &q, id, (struct krg_ipc_sembuf[]){ SB(1, -1, SEM_UNDO) }, 1);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	assert_int_equal(t_done(t, w)->ret, 0);
	assert_int_equal(t_semval(t, id, 1), 0);
	krg_ipc_engine_process_exit(t->e, q.proc_id, 41, t->now);
	assert_int_equal(t_semval(t, id, 1), 1);
	/* export keeps records; RMID drops them */
	assert_int_equal(op1(t, &p, id, SB(1, -1, SEM_UNDO)), 0);
	struct krg_ipc_export x;
	assert_int_equal(krg_ipc_engine_export(t->e, KRG_IPC_SEM, id, &x), 0);
	assert_int_equal(x.nundos, 1);
	assert_int_equal(x.undos[0].proc_id, p.proc_id);
	assert_int_equal(x.undos[0].semadj[1], 1);
	krg_ipc_export_release(&x);
	struct krg_ipc_req rm = q_semctl(id, 0, IPC_RMID);
	assert_int_equal(t_ret(t, &r, &rm), 0);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	t_free(t);
}

/* A recovery's rename: the records of the old id are applied at the new
 * id's exit, the old id's exit does nothing; a record the new id has on
 * the same set stays under the old one. */
static void test_undo_rename(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller p = who(0, 0, 40), n = who(0, 0, 41), r = root_c(1);
	int32_t a = mkset(t, &r, 1, 0600), b = mkset(t, &r, 1, 0600);
	assert_int_equal(op1(t, &p, a, SB(0, 3, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &p, b, SB(0, 2, SEM_UNDO)), 0);
	assert_int_equal(op1(t, &n, b, SB(0, 1, SEM_UNDO)), 0);
	assert_int_equal(krg_ipc_engine_undo_rename(t->e, p.proc_id, n.proc_id), 1);   /* a only */
	assert_int_equal(krg_ipc_engine_undo_rename(t->e, 12345, n.proc_id), 0);       /* nobody */
	krg_ipc_engine_process_exit(t->e, n.proc_id, 41, t->now);
	assert_int_equal(t_semval(t, a, 0), 0);
	assert_int_equal(t_semval(t, b, 0), 2);
	krg_ipc_engine_process_exit(t->e, p.proc_id, 40, t->now);
	assert_int_equal(t_semval(t, b, 0), 0);
	t_free(t);
}

static void test_semctl(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10), b = who(1001, 101, 11), r = root_c(1);
	struct krg_ipc_req g = q_semget(0x42, 3, IPC_CREAT | 0640);
	int32_t id = (int32_t)t_ret(t, &a, &g);
	struct krg_ipc_req sv = q_semctl(id, 0, SETVAL);
	sv.val = 32768;
	assert_int_equal(t_ret(t, &a, &sv), -ERANGE);
	sv.val = -1;
	assert_int_equal(t_ret(t, &a, &sv), -ERANGE);
	sv.val = 5;
	sv.semnum = 3;
	assert_int_equal(t_ret(t, &a, &sv), -EINVAL);
	sv.semnum = 1;
	assert_int_equal(t_ret(t, &b, &sv), -EACCES);
	assert_int_equal(t_ret(t, &a, &sv), 0);
	struct krg_ipc_req gv = q_semctl(id, 3, GETVAL);
	assert_int_equal(t_ret(t, &b, &gv), -EACCES);          /* EACCES before the semnum check */
	assert_int_equal(t_ret(t, &a, &gv), -EINVAL);
	struct krg_ipc_req ga = q_semctl(id, 0, GETALL);
	struct krg_ipc_reply rep;
	assert_int_equal(t_call(t, &a, &ga, NULL, &rep), KRG_IPC_DONE);
	assert_int_equal(rep.ret, 0);
	assert_int_equal(rep.nvals, 3);
	assert_int_equal(rep.vals[1], 5);
	krg_ipc_reply_release(&rep);
	struct krg_ipc_req sa = q_semctl(id, 0, SETALL);
	uint16_t v[3] = { 1, 2, 40000 };
	sa.vals = v;
	sa.nvals = 2;
	assert_int_equal(t_ret(t, &a, &sa), -EFAULT);
	sa.nvals = 3;
	assert_int_equal(t_ret(t, &a, &sa), -ERANGE);
	v[2] = 3;
	assert_int_equal(t_ret(t, &a, &sa), 0);
	gv.semnum = 2;
	assert_int_equal(t_ret(t, &a, &gv), 3);
	struct krg_ipc_req gp = q_semctl(id, 2, GETPID);
	assert_int_equal(t_ret(t, &a, &gp), 10);
	/* IPC_STAT, SEM_STAT(_ANY), SEM_INFO */
	t->now += 3 * T_SEC;
	assert_int_equal(op1(t, &a, id, SB(0, -1, 0)), 0);
	struct krg_ipc_req st = q_semctl(id, 0, IPC_STAT);
	assert_int_equal(t_call(t, &a, &st, NULL, &rep), KRG_IPC_DONE);
	assert_int_equal(rep.ret, 0);
	assert_int_equal(rep.out, KRG_IPC_OUT_SEM_STAT);
	assert_int_equal(rep.sem.nsems, 3);
	assert_int_equal(rep.sem.perm.key, 0x42);
	assert_int_equal(rep.sem.perm.mode, 0640);
	assert_int_equal(rep.sem.otime, T_NOW / T_SEC + 3);
	assert_int_equal(rep.sem.ctime, T_NOW / T_SEC);
	struct krg_ipc_req ss = q_semctl(krg_ipc_id_idx(id), 0, SEM_STAT);
	assert_int_equal(t_ret(t, &b, &ss), -EACCES);
	ss.cmd = SEM_STAT_ANY;
	assert_int_equal(t_ret(t, &b, &ss), id);
	struct krg_ipc_req in = q_semctl(0, 0, SEM_INFO);
	assert_int_equal(t_call(t, &b, &in, NULL, &rep), KRG_IPC_DONE);
	assert_int_equal(rep.ret, krg_ipc_id_idx(id));
	assert_int_equal(rep.seminfo.semusz, 1);
	assert_int_equal(rep.seminfo.semaem, 3);
	in.cmd = IPC_INFO;
	assert_int_equal(t_call(t, &b, &in, NULL, &rep), KRG_IPC_DONE);
	assert_int_equal(rep.seminfo.semusz, 20);
	assert_int_equal(rep.seminfo.semaem, 32767);
	assert_int_equal(rep.seminfo.semmsl, 32000);
	assert_int_equal(rep.seminfo.semopm, 500);
	assert_int_equal(rep.seminfo.semvmx, 32767);
	struct krg_ipc_req bad = q_semctl(id, 0, 77);
	assert_int_equal(t_ret(t, &a, &bad), -EINVAL);
	/* IPC_SET / IPC_RMID: owner, creator or CAP_SYS_ADMIN */
	struct krg_ipc_req set = q_semctl(id, 0, IPC_SET);
	set.set = (struct krg_ipc_setbuf){ .uid = 1001, .gid = 101, .mode = 0660 };
	assert_int_equal(t_ret(t, &b, &set), -EPERM);
	assert_int_equal(t_ret(t, &a, &set), 0);
	assert_int_equal(t_ret(t, &b, &set), 0);              /* b owns it now */
	uint64_t w1 = park(t, &b, id, (struct krg_ipc_sembuf[]){ SB(0, -5, 0) }, 1);
	uint64_t w2 = park(t, &b, id, (struct krg_ipc_sembuf[]){ SB(0, -5, 0), SB(1, 0, 0) }, 2);
	struct krg_ipc_req rm = q_semctl(id, 0, IPC_RMID);
	assert_int_equal(t_ret(t, &r, &rm), 0);
	assert_int_equal(t_done(t, w1)->ret, -EIDRM);
	assert_int_equal(t_done(t, w2)->ret, -EIDRM);
	assert_int_equal(t_ret(t, &r, &rm), -EINVAL);
	struct krg_ipc_usage u;
	krg_ipc_engine_usage(t->e, &u);
	assert_int_equal(u.sem_count, 0);
	assert_int_equal(u.sem_total, 0);
	assert_int_equal(u.sem_max_idx, -1);
	t_free(t);
}

static void test_undeliverable(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller p = who(0, 0, 50), q = who(0, 0, 51), r = root_c(1);
	int32_t id = mkset(t, &r, 2, 0600);
	struct krg_ipc_sembuf s[2] = { SB(0, -1, SEM_UNDO), SB(1, 1, SEM_UNDO) };
	struct krg_ipc_req rq = q_semop(id, s, 2);
	uint64_t tp;
	assert_int_equal(t_call(t, &p, &rq, &tp, NULL), KRG_IPC_PENDING);
	uint64_t tq = park(t, &q, id, (struct krg_ipc_sembuf[]){ SB(0, -1, 0) }, 1);
	assert_int_equal(op1(t, &r, id, SB(0, 1, 0)), 0);
	struct krg_ipc_reply *d = t_done(t, tp);
	assert_non_null(d);
	assert_int_equal(d->ret, 0);
	assert_null(t_done(t, tq));
	assert_int_equal(t_semval(t, id, 1), 1);
	/* p was interrupted: its semop is taken back; q now gets the unit */
	assert_int_equal(krg_ipc_engine_cancel(t->e, tp), -EALREADY);
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &p, &rq, d, t->now), 0);
	assert_int_equal(t_done(t, tq)->ret, 0);
	assert_int_equal(t_semval(t, id, 0), 0);
	assert_int_equal(t_semval(t, id, 1), 0);
	/* its undo record is back to nothing: exit changes nothing */
	krg_ipc_engine_process_exit(t->e, p.proc_id, 50, t->now);
	assert_int_equal(t_semval(t, id, 0), 0);
	assert_int_equal(t_semval(t, id, 1), 0);
	/* a failed call changed nothing */
	struct krg_ipc_reply fail = { .ret = -EAGAIN };
	assert_int_equal(krg_ipc_engine_undeliverable(t->e, &p, &rq, &fail, t->now), -EINVAL);
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semget),
		cmocka_unit_test(test_semop_errors),
		cmocka_unit_test(test_atomic),
		cmocka_unit_test(test_wake_order),
		cmocka_unit_test(test_merge_order),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_undo),
		cmocka_unit_test(test_undo_rename),
		cmocka_unit_test(test_semctl),
		cmocka_unit_test(test_undeliverable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
