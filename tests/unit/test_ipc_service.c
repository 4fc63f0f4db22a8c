/* test_ipc_service.c — the cluster IPC service on 3 KDDM instances over
 * the fake transport: one queue for one key raced from two nodes, a
 * receiver blocked on one node woken by a sender on another, a semaphore
 * counter incremented from 3 nodes ending exact, IPC_RMID seen
 * everywhere, a cancelled waiter, and the home's death with and without
 * backups. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <cmocka.h>
#include "ipc/ipc_service.h"
#include "kddm/kddm.h"
#include "kddm_fake.h"
#include "ipc.pb-c.h"

#define N 3

struct cl {
	struct kfake *f;
	struct krg_ipc_service *svc[N];
	uint64_t token;
};

static const struct krg_ipc_limits *cl_limits; /* NULL: Linux's defaults */

static void make_svc(struct kddm *k, void *data)
{
	struct cl *c = data;
	unsigned node = kddm_self(k);
	assert_int_equal(krg_ipc_service_new(k, cl_limits, NULL, &c->svc[node]), 0);
}

static struct cl *cl_new(bool backup)
{
	struct cl *c = calloc(1, sizeof(*c));
	c->f = kfake_new(N);
	for (unsigned i = 0; i < N; i++) {
		make_svc(kfake_kddm(c->f, i), c);
		kddm_set_backup(kfake_kddm(c->f, i), backup);
	}
	kfake_run(c->f, 0);
	return c;
}

static void cl_kill(struct cl *c, unsigned node)
{
	krg_ipc_service_free(c->svc[node]);
	c->svc[node] = NULL;
	kfake_kill(c->f, node);
	kfake_run(c->f, 0);
}

static void cl_free(struct cl *c)
{
	for (unsigned i = 0; i < N; i++)
		krg_ipc_service_free(c->svc[i]);
	kfake_free(c->f);
	free(c);
}

struct ans {
	int done;
	struct krg_ipc_reply r;
};

static void done_cb(void *cookie, struct krg_ipc_reply *reply)
{
	struct ans *a = cookie;
	a->done++;
	krg_ipc_reply_release(&a->r);
	a->r = *reply;
}

static struct krg_ipc_caller who(unsigned node)
{
	struct krg_ipc_caller w = { 0 };
	w.cred.uid = w.cred.euid = w.cred.gid = w.cred.egid = w.cred.fsgid = 1000;
	w.pid = 100 + (int32_t)node;
	w.proc_id = ((uint64_t)node << 22) | (uint64_t)w.pid;
	return w;
}

/* Submit on node and run the cluster until quiet. */
static void submit(struct cl *c, unsigned node, const struct krg_ipc_req *req, struct ans *a)
{
	struct krg_ipc_caller w = who(node);
	memset(a, 0, sizeof(*a));
	assert_int_equal(krg_ipc_service_submit(c->svc[node], &w, req, ++c->token, done_cb, a), 0);
}

static int64_t call(struct cl *c, unsigned node, const struct krg_ipc_req *req)
{
	struct ans a;
	submit(c, node, req, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 1);
	int64_t ret = a.r.ret;
	krg_ipc_reply_release(&a.r);
	return ret;
}

static int32_t c_msgget(struct cl *c, unsigned node, int32_t key, int flags)
{
	struct krg_ipc_req r = { .op = KRG_IPC_OP_MSGGET, .key = key, .flags = flags, .id = KRG_IPC_ID_ANY };
	return (int32_t)call(c, node, &r);
}

static int64_t c_msgsnd(struct cl *c, unsigned node, int32_t id, int64_t type, const char *text)
{
	struct krg_ipc_req r = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = type, .text = (const uint8_t *)text,
				 .text_len = strlen(text), .msgsz = strlen(text) };
	return call(c, node, &r);
}

static struct krg_ipc_req rcv_req(int32_t id, int flags)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_MSGRCV, .id = id, .msgsz = 100, .flags = flags };
}

static unsigned objects(struct cl *c, uint32_t kind)
{
	unsigned n = 0;
	for (unsigned i = 0; i < N; i++) {
		struct kddm *k = kfake_kddm(c->f, i);
		if (k)
			n += (unsigned)kddm_count(kddm_set_find(k, kind == KRG_IPC_MSG ? "ipc.msg"
					: kind == KRG_IPC_SEM ? "ipc.sem" : "ipc.shm"));
	}
	return n;
}

/* ---- checkpoint: an application's objects out, and back under their ids ---- */

struct created_res {
	int done, status;
	size_t n;
	int32_t id0;
	uint8_t *saved;                 /* a packed Saved of what was found */
	size_t saved_len;
};

static void created_cb(void *data, const struct krg_ipc_created *res)
{
	struct created_res *r = data;
	r->done++;
	r->status = res->status;
	r->n = res->n;
	r->id0 = res->n ? res->info[0].id : -1;
	Krg__Ipc__Saved sv = KRG__IPC__SAVED__INIT;
	ProtobufCBinaryData bd[8];
	for (size_t i = 0; i < res->n && i < 8; i++)
		bd[i].data = res->objs[i], bd[i].len = res->lens[i];
	sv.n_objects = res->n < 8 ? res->n : 8;
	sv.objects = bd;
	r->saved_len = krg__ipc__saved__get_packed_size(&sv);
	r->saved = malloc(r->saved_len + 1);
	krg__ipc__saved__pack(&sv, r->saved);
}

struct restored_res {
	int done, status;
	int32_t id;
};

static void restored_cb(void *data, int status, const struct krg_ipc_obj_info *failed)
{
	struct restored_res *r = data;
	r->done++;
	r->status = status;
	r->id = failed ? failed->id : -1;
}

static void test_save_restore(void **state)
{
	struct cl *c = cl_new(false);
	/* node 1's process makes a keyed queue with two messages; node 2's a
	 * private one (not the application's). */
	int32_t q = c_msgget(c, 1, 0x77, IPC_CREAT | 0600);
	assert_true(q >= 0);
	assert_int_equal(c_msgsnd(c, 1, q, 1, "one"), 0);
	assert_int_equal(c_msgsnd(c, 1, q, 2, "two"), 0);
	assert_true(c_msgget(c, 2, IPC_PRIVATE, 0600) >= 0);
	uint64_t procs[2] = { who(1).proc_id, 12345 };
	struct created_res cr = { 0 };
	assert_int_equal(krg_ipc_service_created_by(c->svc[0], procs, 2, 5000, created_cb, &cr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(cr.done, 1);
	assert_int_equal(cr.status, 0);
	assert_int_equal(cr.n, 1);
	assert_int_equal(cr.id0, q);
	/* Back while it still exists: refused, naming it, and nothing of
	 * the live one undone. */
	struct restored_res rr = { 0 };
	assert_int_equal(krg_ipc_service_restore(c->svc[2], cr.saved, cr.saved_len, 1000, 2, 0, restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.done, 1);
	assert_int_equal(rr.status, -EEXIST);
	assert_int_equal(rr.id, q);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), q);
	/* Another user's image may not bring it back. */
	struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = q, .cmd = IPC_RMID };
	assert_int_equal(call(c, 1, &rm), 0);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), -ENOENT);
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[2], cr.saved, cr.saved_len, 1001, 2, 0, restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.status, -EPERM);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), -ENOENT);
	/* Gone: back under the same id and key, messages in order. */
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[2], cr.saved, cr.saved_len, 1000, 2, 0, restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.done, 1);
	assert_int_equal(rr.status, 0);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), q);
	struct ans a;
	struct krg_ipc_req rcv = rcv_req(q, IPC_NOWAIT);
	submit(c, 0, &rcv, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.r.ret, 3);
	assert_int_equal(a.r.mtype, 1);
	assert_memory_equal(a.r.text, "one", 3);
	krg_ipc_reply_release(&a.r);
	/* A recovery finds it alive: it stays as it is (one message left,
	 * not the image's two). */
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[1], cr.saved, cr.saved_len, 1000, 1, KRG_IPC_RESTORE_KEEP,
						 restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.done, 1);
	assert_int_equal(rr.status, 0);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), q);
	submit(c, 0, &rcv, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.r.ret, 3);
	assert_memory_equal(a.r.text, "two", 3);
	krg_ipc_reply_release(&a.r);
	submit(c, 0, &rcv, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.r.ret, -ENOMSG);
	/* Gone: a recovery brings it back from the image. */
	assert_int_equal(call(c, 1, &rm), 0);
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[1], cr.saved, cr.saved_len, 1000, 1, KRG_IPC_RESTORE_KEEP,
						 restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.status, 0);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), q);
	submit(c, 0, &rcv, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.r.ret, 3);
	assert_memory_equal(a.r.text, "one", 3);
	krg_ipc_reply_release(&a.r);
	/* The key taken by another object: refused, the id made is dropped. */
	assert_int_equal(call(c, 1, &rm), 0);
	int32_t other = c_msgget(c, 0, 0x77, IPC_CREAT | 0600);
	assert_true(other >= 0 && other != q);
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[1], cr.saved, cr.saved_len, 1000, 1, 0, restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.status, -EADDRINUSE);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), other);
	/* A recovery keeps only the very object (id and key): refused too. */
	memset(&rr, 0, sizeof(rr));
	assert_int_equal(krg_ipc_service_restore(c->svc[1], cr.saved, cr.saved_len, 1000, 1, KRG_IPC_RESTORE_KEEP,
						 restored_cb, &rr), 0);
	kfake_run(c->f, 0);
	assert_int_equal(rr.status, -EADDRINUSE);
	assert_int_equal(c_msgget(c, 0, 0x77, 0), other);
	struct krg_ipc_req st = { .op = KRG_IPC_OP_MSGCTL, .id = q, .cmd = IPC_STAT };
	assert_int_equal(call(c, 0, &st), -EINVAL);
	free(cr.saved);
	cl_free(c);
}

static void test_key_race(void **state)
{
	for (int32_t key = 0x1234; key < 0x1234 + 8; key++) {
		struct cl *c = cl_new(false);
		struct krg_ipc_req r = { .op = KRG_IPC_OP_MSGGET, .key = key, .flags = IPC_CREAT | 0600,
					 .id = KRG_IPC_ID_ANY };
		struct ans a, b;
		submit(c, 1, &r, &a);
		submit(c, 2, &r, &b);
		kfake_run(c->f, 0);
		assert_int_equal(a.done, 1);
		assert_int_equal(b.done, 1);
		assert_true(a.r.ret >= 0);
		assert_int_equal(a.r.ret, b.r.ret);
		assert_int_equal(objects(c, KRG_IPC_MSG), 1);
		/* Everyone finds it; IPC_EXCL is refused everywhere. */
		assert_int_equal(c_msgget(c, 0, key, 0), a.r.ret);
		assert_int_equal(c_msgget(c, 0, key, IPC_CREAT | IPC_EXCL | 0600), -EEXIST);
		cl_free(c);
	}
}

static void test_blocked_receiver_other_node(void **state)
{
	struct cl *c = cl_new(false);
	int32_t id = c_msgget(c, 0, 0x42, IPC_CREAT | 0600);
	assert_true(id >= 0);
	struct krg_ipc_req rr = rcv_req(id, 0);
	struct ans a;
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 0); /* waiting at the home */
	assert_int_equal(c_msgsnd(c, 2, id, 7, "hello"), 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.ret, 5);
	assert_int_equal(a.r.mtype, 7);
	assert_memory_equal(a.r.text, "hello", 5);
	krg_ipc_reply_release(&a.r);
	/* IPC_NOWAIT on an empty queue from a third node. */
	rr = rcv_req(id, IPC_NOWAIT);
	assert_int_equal(call(c, 0, &rr), -ENOMSG);
	/* FIFO across nodes: messages keep the order they were sent in. */
	for (int i = 0; i < 6; i++) {
		char t[8];
		snprintf(t, sizeof(t), "m%d", i);
		assert_int_equal(c_msgsnd(c, (unsigned)i % N, id, 1, t), 0);
	}
	for (int i = 0; i < 6; i++) {
		rr = rcv_req(id, 0);
		submit(c, (unsigned)(i + 1) % N, &rr, &a);
		kfake_run(c->f, 0);
		assert_int_equal(a.done, 1);
		char t[8];
		snprintf(t, sizeof(t), "m%d", i);
		assert_int_equal(a.r.ret, (int64_t)strlen(t));
		assert_memory_equal(a.r.text, t, strlen(t));
		krg_ipc_reply_release(&a.r);
	}
	/* Removal wakes a waiter elsewhere with EIDRM and frees the key. */
	rr = rcv_req(id, 0);
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_RMID };
	assert_int_equal(call(c, 2, &rm), 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.ret, -EIDRM);
	assert_int_equal(c_msgget(c, 0, 0x42, 0), -ENOENT);
	assert_int_equal(objects(c, KRG_IPC_MSG), 0);
	int32_t id2 = c_msgget(c, 1, 0x42, IPC_CREAT | 0600);
	assert_true(id2 >= 0 && id2 != id);
	cl_free(c);
}


/* ---- owners: a queue moves to the node of the receiver it serves ---------- */

static unsigned msg_home(struct cl *c, int32_t id)
{
	return kddm_home(kddm_set_find(kfake_kddm(c->f, 0), "ipc.msg"), (uint64_t)krg_ipc_id_idx(id));
}

/* A queue homed on node 2 and used by a ping-pong between nodes 0 and 1:
 * after the first parked receive on node 1 is served, the queue is on
 * node 1 and node 1's msgsnd asks no other node; then it follows each
 * receiver. 200 round trips, every message once and in order; the queue
 * can be listed, removed, and its key reused, wherever it is. */
static void test_owner_pingpong(void **state)
{
	struct cl *c = cl_new(false);
	int32_t id = -1, key;
	for (key = 0x700; key < 0x800; key++) {
		id = c_msgget(c, 0, key, IPC_CREAT | 0600);
		if (msg_home(c, id) == 2)
			break;
		struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_RMID };
		assert_int_equal(call(c, 0, &rm), 0);
	}
	assert_int_equal(msg_home(c, id), 2);
	struct ans a, b;
	for (int i = 0; i < 200; i++) {
		char t[16];
		/* node 1 waits for type 1, node 0 sends it, then the reverse
		 * with type 2 */
		struct krg_ipc_req rr = rcv_req(id, 0);
		rr.msgtyp = 1;
		submit(c, 1, &rr, &a);
		kfake_run(c->f, 0);
		assert_int_equal(a.done, 0);
		snprintf(t, sizeof(t), "ping%d", i);
		struct krg_ipc_req s0 = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = 1, .text = (const uint8_t *)t,
					  .text_len = strlen(t), .msgsz = strlen(t) };
		struct ans s0a;
		submit(c, 0, &s0, &s0a);
		if (i > 0)
			assert_int_equal(s0a.done, 1); /* served on node 0 itself */
		kfake_run(c->f, 0);
		assert_int_equal(s0a.done, 1);
		assert_int_equal(s0a.r.ret, 0);
		assert_int_equal(a.done, 1);
		assert_int_equal(a.r.ret, (int64_t)strlen(t));
		assert_memory_equal(a.r.text, t, strlen(t));
		krg_ipc_reply_release(&a.r);
		rr.msgtyp = 2;
		submit(c, 0, &rr, &b);
		kfake_run(c->f, 0);
		assert_int_equal(b.done, 0);
		snprintf(t, sizeof(t), "pong%d", i);
		/* The queue came to node 1: its msgsnd is answered there,
		 * before the network runs. */
		struct krg_ipc_req s = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = 2, .text = (const uint8_t *)t,
					 .text_len = strlen(t), .msgsz = strlen(t) };
		struct ans sa;
		submit(c, 1, &s, &sa);
		assert_int_equal(sa.done, 1);
		assert_int_equal(sa.r.ret, 0);
		kfake_run(c->f, 0);
		assert_int_equal(b.done, 1);
		assert_int_equal(b.r.ret, (int64_t)strlen(t));
		assert_memory_equal(b.r.text, t, strlen(t));
		krg_ipc_reply_release(&b.r);
	}
	/* Node 2 (its home) and a stat or a get from anywhere still find
	 * it (a get's request names only the key: the owner is told the
	 * index). */
	struct krg_ipc_req st = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_STAT };
	for (unsigned n = 0; n < N; n++) {
		assert_int_equal(call(c, n, &st), 0);
		assert_int_equal(c_msgget(c, n, key, 0600), id);
	}
	assert_int_equal(c_msgsnd(c, 2, id, 9, "left"), 0);
	struct krg_ipc_req rr = rcv_req(id, IPC_NOWAIT);
	assert_int_equal(call(c, 2, &rr), 4);
	assert_int_equal(call(c, 1, &rr), -ENOMSG);
	/* IPC_RMID from its home while the queue is elsewhere. */
	rr = rcv_req(id, 0);
	submit(c, 0, &rr, &a);
	kfake_run(c->f, 0);
	struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_RMID };
	assert_int_equal(call(c, 2, &rm), 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.ret, -EIDRM);
	for (unsigned n = 0; n < N; n++)
		assert_int_equal(c_msgsnd(c, n, id, 1, "x"), -EINVAL);
	assert_int_equal(c_msgget(c, 1, key, 0), -ENOENT);
	assert_int_equal(objects(c, KRG_IPC_MSG), 0);
	assert_true(c_msgget(c, 0, key, IPC_CREAT | 0600) >= 0);
	cl_free(c);
}

/* Several receivers on every node, with every kind of type selection,
 * and senders on every node, all submitted before the network runs, in
 * seeded random orders, with IPC_NOWAIT receives and moves in between:
 * every message is received exactly once, nothing is lost, duplicated or
 * left waiting. */
#define OW_MSGS 60
/* The number in a received "m<n>" (the text is not NUL-terminated). */
static int msg_no(const struct krg_ipc_reply *r)
{
	char t[16] = { 0 };
	assert_true(r->ret > 1 && r->ret < (int64_t)sizeof(t) && r->text);
	memcpy(t, r->text, (size_t)r->ret);
	assert_int_equal(t[0], 'm');
	int v = atoi(t + 1);
	assert_true(v >= 0 && v < OW_MSGS);
	return v;
}
static void test_owner_concurrent(void **state)
{
	for (unsigned seed = 1; seed <= 12; seed++) {
		struct cl *c = cl_new(false);
		srand(seed);
		int32_t id = c_msgget(c, seed % N, 0x900 + (int32_t)seed, IPC_CREAT | 0600);
		assert_true(id >= 0);
		int got[OW_MSGS] = { 0 };
		struct ans rcv[OW_MSGS * 2];
		struct ans snd[OW_MSGS];
		unsigned nr = 0, ns = 0, nowait_ok = 0;
		for (int round = 0; round < OW_MSGS / 6; round++) {
			/* 6 blocking receivers (types 0, 1, -2, MSG_EXCEPT 1) on random nodes */
			for (int k = 0; k < 6; k++) {
				struct krg_ipc_req rr = rcv_req(id, 0);
				int sel = rand() % 4;
				rr.msgtyp = sel == 0 ? 0 : sel == 1 ? 1 : sel == 2 ? -2 : 1;
				if (sel == 3)
					rr.flags = 020000; /* MSG_EXCEPT */
				submit(c, (unsigned)rand() % N, &rr, &rcv[nr++]);
				if (rand() % 3 == 0)
					kfake_run(c->f, (size_t)(rand() % 8) + 1);
			}
			/* 6 messages of types 1 and 2 from random nodes, the
			 * network run a few steps at random in between */
			for (int k = 0; k < 6; k++) {
				char t[16];
				int m = (int)ns;
				snprintf(t, sizeof(t), "m%d", m);
				struct krg_ipc_req s = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = 1 + (m % 2),
							 .msgsz = strlen(t) };
				s.text = (const uint8_t *)strdup(t);
				s.text_len = strlen(t);
				submit(c, (unsigned)rand() % N, &s, &snd[ns++]);
				free((void *)s.text);
				if (rand() % 2)
					kfake_run(c->f, (size_t)(rand() % 12) + 1);
				if (rand() % 4 == 0) {
					struct krg_ipc_req nw = rcv_req(id, IPC_NOWAIT);
					struct ans x;
					submit(c, (unsigned)rand() % N, &nw, &x);
					kfake_run(c->f, 0);
					assert_int_equal(x.done, 1);
					if (x.r.ret > 0) {
						got[msg_no(&x.r)]++;
						nowait_ok++;
					} else {
						assert_int_equal(x.r.ret, -ENOMSG);
					}
					krg_ipc_reply_release(&x.r);
				}
			}
		}
		kfake_run(c->f, 0);
		for (unsigned i = 0; i < ns; i++) {
			assert_int_equal(snd[i].done, 1);
			assert_int_equal(snd[i].r.ret, 0);
		}
		/* What no blocked receiver took is still in the queue. */
		for (;;) {
			struct krg_ipc_req nw = rcv_req(id, IPC_NOWAIT);
			struct ans x;
			submit(c, (unsigned)rand() % N, &nw, &x);
			kfake_run(c->f, 0);
			assert_int_equal(x.done, 1);
			if (x.r.ret < 0) {
				assert_int_equal(x.r.ret, -ENOMSG);
				break;
			}
			got[msg_no(&x.r)]++;
			krg_ipc_reply_release(&x.r);
		}
		unsigned waiting = 0;
		for (unsigned i = 0; i < nr; i++) {
			assert_true(rcv[i].done <= 1);
			if (!rcv[i].done) {
				waiting++;
				continue;
			}
			assert_true(rcv[i].r.ret > 0);
			got[msg_no(&rcv[i].r)]++;
			krg_ipc_reply_release(&rcv[i].r);
		}
		for (int m = 0; m < OW_MSGS; m++)
			assert_int_equal(got[m], 1);
		/* Receivers still waiting are woken by the removal, once. */
		struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_RMID };
		assert_int_equal(call(c, (unsigned)rand() % N, &rm), 0);
		unsigned woken = 0;
		for (unsigned i = 0; i < nr; i++)
			if (rcv[i].done == 1 && rcv[i].r.ret == -EIDRM)
				woken++;
		assert_int_equal(woken, waiting);
		(void)nowait_ok;
		cl_free(c);
	}
}

/* The queue moves to node 1 and node 1 leaves cleanly: the queue goes back
 * to its home with its messages, and a receiver of node 2 that waits
 * goes on. Then the queue moves to node 0, and node 0 dies with it:
 * callers elsewhere get EIDRM / EINVAL, none hangs, and the key is free. */
static void test_owner_leave_and_death(void **state)
{
	struct cl *c = cl_new(false);
	int32_t id = -1, key;
	for (key = 0xa00; key < 0xb00; key++) {
		id = c_msgget(c, 2, key, IPC_CREAT | 0600);
		if (msg_home(c, id) == 2)
			break;
		struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = IPC_RMID };
		assert_int_equal(call(c, 2, &rm), 0);
	}
	assert_int_equal(msg_home(c, id), 2);
	struct ans a;
	struct krg_ipc_req rr = rcv_req(id, 0);
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	assert_int_equal(c_msgsnd(c, 0, id, 1, "go"), 0);
	assert_int_equal(a.done, 1);
	krg_ipc_reply_release(&a.r);
	struct krg_ipc_req s = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = 1, .text = (const uint8_t *)"kept1",
				 .text_len = 5, .msgsz = 5 };
	struct ans sa;
	submit(c, 1, &s, &sa);
	assert_int_equal(sa.done, 1); /* on node 1 */
	assert_int_equal(c_msgsnd(c, 1, id, 1, "kept2"), 0);
	krg_ipc_service_leaving(c->svc[1]);
	krg_ipc_service_free(c->svc[1]);
	c->svc[1] = NULL;
	kfake_leave(c->f, 1);
	rr = rcv_req(id, IPC_NOWAIT);
	assert_int_equal(call(c, 0, &rr), 5);
	assert_int_equal(call(c, 2, &rr), 5);
	assert_int_equal(call(c, 0, &rr), -ENOMSG);
	/* Now to node 0, which dies holding it. */
	rr = rcv_req(id, 0);
	submit(c, 0, &rr, &a);
	kfake_run(c->f, 0);
	assert_int_equal(c_msgsnd(c, 2, id, 1, "to0"), 0);
	assert_int_equal(a.done, 1);
	krg_ipc_reply_release(&a.r);
	assert_int_equal(c_msgsnd(c, 0, id, 1, "lost"), 0);
	struct ans w;
	rr = rcv_req(id, 0);
	rr.msgtyp = 7;
	submit(c, 2, &rr, &w);
	kfake_run(c->f, 0);
	assert_int_equal(w.done, 0); /* parked on node 0 */
	cl_kill(c, 0);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.r.ret, -EIDRM);
	assert_int_equal(c_msgsnd(c, 2, id, 1, "x"), -EINVAL);
	assert_int_equal(c_msgget(c, 2, key, 0), -ENOENT);
	cl_free(c);
}


static void test_sem_counter(void **state)
{
	struct cl *c = cl_new(false);
	struct krg_ipc_req g = { .op = KRG_IPC_OP_SEMGET, .key = 0x77, .nsems = 1, .flags = IPC_CREAT | 0600,
				 .id = KRG_IPC_ID_ANY };
	int32_t id = (int32_t)call(c, 0, &g);
	assert_true(id >= 0);
	/* 3 nodes x 100 increments, all in flight together. */
	struct krg_ipc_sembuf up = { .num = 0, .op = 1, .flg = SEM_UNDO };
	static struct ans a[N][100];
	for (int i = 0; i < 100; i++)
		for (unsigned n = 0; n < N; n++) {
			struct krg_ipc_req r = { .op = KRG_IPC_OP_SEMOP, .id = id, .sops = &up, .nsops = 1 };
			submit(c, n, &r, &a[n][i]);
		}
	kfake_run(c->f, 0);
	for (int i = 0; i < 100; i++)
		for (unsigned n = 0; n < N; n++)
			assert_int_equal(a[n][i].r.ret, 0);
	struct krg_ipc_req gv = { .op = KRG_IPC_OP_SEMCTL, .id = id, .cmd = GETVAL };
	assert_int_equal(call(c, 1, &gv), 300);
	/* A waiter for 400 on node 2 is woken by node 0's +100... */
	struct krg_ipc_sembuf down = { .num = 0, .op = -400 };
	struct krg_ipc_req dr = { .op = KRG_IPC_OP_SEMOP, .id = id, .sops = &down, .nsops = 1 };
	struct ans w;
	submit(c, 2, &dr, &w);
	kfake_run(c->f, 0);
	assert_int_equal(w.done, 0);
	struct krg_ipc_sembuf hundred = { .num = 0, .op = 100 };
	struct krg_ipc_req hr = { .op = KRG_IPC_OP_SEMOP, .id = id, .sops = &hundred, .nsops = 1 };
	assert_int_equal(call(c, 0, &hr), 0);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.r.ret, 0);
	assert_int_equal(call(c, 1, &gv), 0);
	/* ...and node 1's process exit undoes its 100 SEM_UNDO increments:
	 * 0 - 100 clamps at 0 as Linux does. */
	krg_ipc_service_process_exit(c->svc[1], who(1).proc_id, who(1).pid);
	kfake_run(c->f, 0);
	assert_int_equal(call(c, 1, &gv), 0);
	/* SEM_INFO counts the cluster's sets. */
	struct krg_ipc_req info = { .op = KRG_IPC_OP_SEMCTL, .cmd = SEM_INFO };
	struct ans ia;
	submit(c, 2, &info, &ia);
	kfake_run(c->f, 0);
	assert_int_equal(ia.done, 1);
	assert_int_equal(ia.r.out, KRG_IPC_OUT_SEMINFO);
	assert_int_equal(ia.r.seminfo.semusz, 1);
	cl_free(c);
}

/* A migrated process's exit is reported by more than one node (its home's
 * deputy, the node it ended on): the undo is applied once, whatever the
 * order, and a report that comes again later changes nothing. */
static void test_exit_twice(void **state)
{
	struct cl *c = cl_new(false);
	struct krg_ipc_req g = { .op = KRG_IPC_OP_SEMGET, .key = 0x78, .nsems = 1, .flags = IPC_CREAT | 0600,
				 .id = KRG_IPC_ID_ANY };
	int32_t id = (int32_t)call(c, 0, &g);
	assert_true(id >= 0);
	struct krg_ipc_req sv = { .op = KRG_IPC_OP_SEMCTL, .id = id, .cmd = SETVAL, .val = 5 };
	assert_int_equal(call(c, 0, &sv), 0);
	struct krg_ipc_sembuf up = { .num = 0, .op = 1, .flg = SEM_UNDO };
	struct krg_ipc_req r = { .op = KRG_IPC_OP_SEMOP, .id = id, .sops = &up, .nsops = 1 };
	/* Node 1's process raises it twice: once "at home", once "after
	 * migrating" (the same cluster process id from node 2). */
	assert_int_equal(call(c, 1, &r), 0);
	struct krg_ipc_caller w = who(1);
	struct ans a;
	memset(&a, 0, sizeof(a));
	assert_int_equal(krg_ipc_service_submit(c->svc[2], &w, &r, ++c->token, done_cb, &a), 0);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.ret, 0);
	krg_ipc_reply_release(&a.r);
	struct krg_ipc_req gv = { .op = KRG_IPC_OP_SEMCTL, .id = id, .cmd = GETVAL };
	assert_int_equal(call(c, 0, &gv), 7);
	/* Both nodes report its exit, at the same time. */
	krg_ipc_service_process_exit(c->svc[2], w.proc_id, w.pid);
	krg_ipc_service_process_exit(c->svc[1], w.proc_id, w.pid);
	kfake_run(c->f, 0);
	assert_int_equal(call(c, 0, &gv), 5);
	/* A third, late report: nothing more. */
	krg_ipc_service_process_exit(c->svc[1], w.proc_id, w.pid);
	kfake_run(c->f, 0);
	assert_int_equal(call(c, 0, &gv), 5);
	cl_free(c);
}

static int32_t c_semget(struct cl *c, unsigned node, int32_t key, int32_t nsems)
{
	struct krg_ipc_req r = { .op = KRG_IPC_OP_SEMGET, .key = key, .nsems = nsems, .flags = IPC_CREAT | 0600,
				 .id = KRG_IPC_ID_ANY };
	return (int32_t)call(c, node, &r);
}

/* msgmni, semmni and semmns count the cluster's objects, wherever they
 * live: ENOSPC as on one Linux machine. */
/* Backups on: a process's exit (its SEM_UNDO applied at the set's home)
 * and a recovery's rename of undo records are on the backup before the
 * home answers, so the home's death loses neither: the exit's undo stays
 * done, and the renamed record is applied by the new process id's exit. */
static void test_undo_backup(void **state)
{
	struct cl *c = cl_new(true);
	int32_t ids[2];
	unsigned found = 0;
	for (int32_t key = 0x600; key < 0x700 && found < 2; key++) {
		int32_t id = c_semget(c, 0, key, 1);
		assert_true(id >= 0);
		if (kddm_home(kddm_set_find(kfake_kddm(c->f, 0), "ipc.sem"), (uint64_t)krg_ipc_id_idx(id)) == 2)
			ids[found++] = id;
	}
	assert_int_equal(found, 2);
	struct krg_ipc_sembuf up = { .num = 0, .op = 1, .flg = SEM_UNDO };
	struct krg_ipc_req r = { .op = KRG_IPC_OP_SEMOP, .id = ids[0], .sops = &up, .nsops = 1 };
	assert_int_equal(call(c, 1, &r), 0); /* node 1's process: set 0 +1, undo -1 */
	r.id = ids[1];
	assert_int_equal(call(c, 0, &r), 0); /* node 0's process: set 1 +1, undo -1 */
	struct krg_ipc_caller p1 = who(1), p0 = who(0);
	/* p1 ends (set 0 undone); p0's record moves to a new id (a
	 * recovery restarted it elsewhere); then the home dies. */
	krg_ipc_service_process_exit(c->svc[1], p1.proc_id, p1.pid);
	uint64_t pair[2] = { p0.proc_id, p0.proc_id + 12345 };
	assert_int_equal(krg_ipc_service_undo_rename(c->svc[0], pair, 1), 0);
	kfake_run(c->f, 0);
	struct krg_ipc_req gv = { .op = KRG_IPC_OP_SEMCTL, .id = ids[0], .cmd = GETVAL };
	assert_int_equal(call(c, 0, &gv), 0);
	cl_kill(c, 2);
	assert_int_equal(call(c, 0, &gv), 0); /* the exit's undo survived */
	gv.id = ids[1];
	assert_int_equal(call(c, 0, &gv), 1);
	krg_ipc_service_process_exit(c->svc[0], p0.proc_id, p0.pid);
	kfake_run(c->f, 0);
	assert_int_equal(call(c, 0, &gv), 1); /* the old id has nothing left */
	krg_ipc_service_process_exit(c->svc[0], pair[1], p0.pid);
	kfake_run(c->f, 0);
	assert_int_equal(call(c, 0, &gv), 0); /* the renamed record survived */
	cl_free(c);
}

static void test_cluster_limits(void **state)
{
	struct krg_ipc_limits lim;
	krg_ipc_limits_default(&lim);
	lim.msgmni = 4;
	lim.semmni = 3;
	lim.semmns = 10;
	cl_limits = &lim;
	struct cl *c = cl_new(false);
	cl_limits = NULL;
	/* Private queues live where they are made: 2 on node 0, 1 on 1 and 2. */
	int32_t q[4];
	for (unsigned i = 0; i < 4; i++) {
		q[i] = c_msgget(c, i % N, 0, IPC_CREAT | 0600);
		assert_true(q[i] >= 0);
	}
	assert_int_equal(c_msgget(c, 1, 0, IPC_CREAT | 0600), -ENOSPC);
	assert_int_equal(c_msgget(c, 2, 0x300, IPC_CREAT | 0600), -ENOSPC);
	/* An existing key is no creation. */
	int32_t k1 = c_msgget(c, 0, 0, IPC_CREAT | 0600);
	assert_int_equal(k1, -ENOSPC);
	struct krg_ipc_req rm = { .op = KRG_IPC_OP_MSGCTL, .id = q[1], .cmd = IPC_RMID };
	assert_int_equal(call(c, 2, &rm), 0);
	int32_t q5 = c_msgget(c, 2, 0x300, IPC_CREAT | 0600);
	assert_true(q5 >= 0);
	assert_int_equal(c_msgget(c, 0, 0x300, IPC_CREAT | 0600), q5);
	assert_int_equal(c_msgget(c, 1, 0, IPC_CREAT | 0600), -ENOSPC);
	/* semmns (10 semaphores) before semmni (3 sets), as Linux checks. */
	int32_t a = c_semget(c, 0, 0, 6);
	assert_true(a >= 0);
	assert_int_equal(c_semget(c, 1, 0, 5), -ENOSPC);
	assert_true(c_semget(c, 1, 0, 4) >= 0);
	assert_int_equal(c_semget(c, 2, 0, 1), -ENOSPC);
	assert_int_equal(c_semget(c, 2, 0, 0), -EINVAL);
	struct krg_ipc_req srm = { .op = KRG_IPC_OP_SEMCTL, .id = a, .cmd = IPC_RMID };
	assert_int_equal(call(c, 1, &srm), 0);
	assert_true(c_semget(c, 2, 0, 1) >= 0);
	assert_int_equal(c_semget(c, 0, 0x301, 1) >= 0, 1);
	assert_int_equal(c_semget(c, 1, 0, 1), -ENOSPC); /* 3 sets */
	cl_free(c);
}

static void test_cancel(void **state)
{
	struct cl *c = cl_new(false);
	int32_t id = c_msgget(c, 0, 0x99, IPC_CREAT | 0600);
	struct krg_ipc_req rr = rcv_req(id, 0);
	struct ans a;
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	assert_int_equal(krg_ipc_service_cancel(c->svc[1], c->token), 0);
	kfake_run(c->f, 0);
	assert_int_equal(c_msgsnd(c, 2, id, 1, "keep"), 0);
	assert_int_equal(a.done, 0); /* never answered: its caller is gone */
	/* The message was not consumed by the cancelled receiver. */
	rr = rcv_req(id, IPC_NOWAIT);
	assert_int_equal(call(c, 0, &rr), 4);
	/* Cancel racing with the completion: the send arrives first, the
	 * cancel finds it done, the message goes back to the queue. */
	rr = rcv_req(id, 0);
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	uint64_t t = c->token;
	struct krg_ipc_req s = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = 1, .text = (const uint8_t *)"back",
				 .text_len = 4, .msgsz = 4 };
	struct ans sa;
	submit(c, 2, &s, &sa);
	assert_int_equal(krg_ipc_service_cancel(c->svc[1], t), 0);
	kfake_run(c->f, 0);
	assert_int_equal(sa.r.ret, 0);
	assert_int_equal(a.done, 0);
	rr = rcv_req(id, IPC_NOWAIT);
	assert_int_equal(call(c, 0, &rr), 4);
	assert_int_equal(krg_ipc_service_cancel(c->svc[1], 987654), -ENOENT);
	cl_free(c);
}

/* The queue's home dies while a receiver on another node waits. Without
 * backups the queue is gone: the waiter ends with EIDRM, the id is
 * invalid, the key is free again. With backups the queue lives on at the
 * backup node with its messages and the waiter keeps waiting there. */
static void home_down(bool backup)
{
	struct cl *c = cl_new(backup);
	int32_t id = -1;
	int32_t key;
	unsigned home = 0;
	for (key = 1; key < 100; key++) {
		id = c_msgget(c, 0, key, IPC_CREAT | 0600);
		home = kddm_home(kddm_set_find(kfake_kddm(c->f, 0), "ipc.msg"), (uint64_t)krg_ipc_id_idx(id));
		if (home == 2)
			break;
	}
	assert_int_equal(home, 2);
	assert_int_equal(c_msgsnd(c, 0, id, 1, "one"), 0);
	struct krg_ipc_req rr = rcv_req(id, 0);
	struct ans a;
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	rr = rcv_req(id, 0);
	/* the first receive took "one"; a second waits */
	assert_int_equal(a.done, 1);
	krg_ipc_reply_release(&a.r);
	submit(c, 1, &rr, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 0);
	assert_int_equal(c_msgsnd(c, 0, id, 1, "two"), 0);
	assert_int_equal(a.done, 1);
	krg_ipc_reply_release(&a.r);
	assert_int_equal(c_msgsnd(c, 0, id, 1, "three"), 0);
	struct krg_ipc_req r2 = rcv_req(id, 0);
	r2.msgtyp = 5; /* waits: no message of type 5 */
	submit(c, 1, &r2, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 0);
	cl_kill(c, 2);
	if (!backup) {
		assert_int_equal(a.done, 1);
		assert_int_equal(a.r.ret, -EIDRM);
		krg_ipc_reply_release(&a.r);
		assert_int_equal(c_msgsnd(c, 0, id, 1, "x"), -EINVAL);
		/* the key map's entry (if it lived elsewhere) names a dead id:
		 * a get without IPC_CREAT says ENOENT, with it makes a new queue */
		assert_int_equal(c_msgget(c, 1, key, 0), -ENOENT);
		assert_true(c_msgget(c, 1, key, IPC_CREAT | 0600) >= 0);
	} else {
		assert_int_equal(a.done, 0); /* still waiting, at the backup */
		assert_int_equal(c_msgsnd(c, 0, id, 5, "five"), 0);
		assert_int_equal(a.done, 1);
		assert_int_equal(a.r.ret, 4);
		krg_ipc_reply_release(&a.r);
		rr = rcv_req(id, IPC_NOWAIT);
		assert_int_equal(call(c, 1, &rr), 5); /* "three" survived */
		assert_int_equal(c_msgget(c, 0, key, 0), id);
	}
	cl_free(c);
}

static void test_home_down_no_backup(void **state)
{
	home_down(false);
}

static void test_home_down_backup(void **state)
{
	home_down(true);
}

/* ---- System V shm: one segment, attachments counted from every node ---- */

static struct krg_ipc_reply shm_stat(struct cl *c, unsigned node, int32_t id)
{
	struct krg_ipc_req r = { .op = KRG_IPC_OP_SHMCTL, .id = id, .cmd = IPC_STAT };
	struct ans a;
	submit(c, node, &r, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 1);
	return a.r;
}

static void shm_cluster(bool backup)
{
	struct cl *c = cl_new(backup);
	struct krg_ipc_req g = { .op = KRG_IPC_OP_SHMGET, .key = 0x5151, .flags = IPC_CREAT | 0600,
				 .id = KRG_IPC_ID_ANY, .size = 3 * 4096 };
	int32_t id = (int32_t)call(c, 0, &g);
	assert_true(id >= 0);
	g.flags = 0;
	g.size = 0;
	for (unsigned n = 0; n < N; n++)
		assert_int_equal(call(c, n, &g), id);          /* one segment for the cluster */
	g.size = 4 * 4096;
	assert_int_equal(call(c, 2, &g), -EINVAL);          /* larger than it */
	/* nodes 1 and 2 attach (node 2 twice: two processes) */
	struct krg_ipc_req at = { .op = KRG_IPC_OP_SHMAT, .id = id };
	struct ans a;
	submit(c, 1, &at, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.ret, 0);
	assert_int_equal(a.r.out, KRG_IPC_OUT_SHM_STAT);
	assert_int_equal(a.r.shm.segsz, 3 * 4096);          /* the attaching node learns the size */
	krg_ipc_reply_release(&a.r);
	assert_int_equal(call(c, 2, &at), 0);
	assert_int_equal(call(c, 2, &at), 0);
	for (unsigned n = 0; n < N; n++) {
		struct krg_ipc_reply r = shm_stat(c, n, id);
		assert_int_equal(r.ret, 0);
		assert_int_equal(r.shm.nattch, 3);
		assert_int_equal(r.shm.lpid, 102);
		assert_int_equal(r.shm.cpid, 100);
	}
	/* IPC_RMID on node 1: marked, key free at once, the id still works */
	struct krg_ipc_req rm = { .op = KRG_IPC_OP_SHMCTL, .id = id, .cmd = IPC_RMID };
	assert_int_equal(call(c, 1, &rm), 0);
	struct krg_ipc_reply r = shm_stat(c, 0, id);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.shm.perm.mode, 0600 | SHM_DEST);
	assert_int_equal(r.shm.perm.key, 0);
	g.size = 0;
	assert_int_equal(call(c, 0, &g), -ENOENT);
	/* SHM_INFO sums every node */
	struct krg_ipc_req info = { .op = KRG_IPC_OP_SHMCTL, .id = 0, .cmd = SHM_INFO };
	submit(c, 2, &info, &a);
	kfake_run(c->f, 0);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.r.out, KRG_IPC_OUT_SHM_INFO);
	assert_int_equal(a.r.shm_info.used_ids, 1);
	assert_int_equal(a.r.shm_info.shm_tot, 3);
	krg_ipc_reply_release(&a.r);
	/* the last detach anywhere destroys it, and its KDDM object */
	struct krg_ipc_req dt = { .op = KRG_IPC_OP_SHMDT, .id = id };
	assert_int_equal(call(c, 2, &dt), 0);
	assert_int_equal(call(c, 1, &dt), 0);
	assert_int_equal(shm_stat(c, 1, id).shm.nattch, 1);
	assert_int_equal(objects(c, KRG_IPC_SHM), 1);
	assert_int_equal(call(c, 2, &dt), 0);
	for (unsigned n = 0; n < N; n++)
		assert_int_equal(shm_stat(c, n, id).ret, -EINVAL);
	assert_int_equal(objects(c, KRG_IPC_SHM), 0);
	assert_int_equal(call(c, 0, &dt), -EINVAL);
	/* a new segment under the old key */
	g.flags = IPC_CREAT | 0600;
	g.size = 100;
	int32_t id2 = (int32_t)call(c, 1, &g);
	assert_true(id2 >= 0 && id2 != id);
	cl_free(c);
}

static void test_shm(void **state)
{
	shm_cluster(false);
	shm_cluster(true);
}

/* With backups, a segment outlives its home: size and attachments kept. */
static void test_shm_home_down(void **state)
{
	struct cl *c = cl_new(true);
	struct krg_ipc_req g = { .op = KRG_IPC_OP_SHMGET, .flags = IPC_CREAT | 0600,
				 .id = KRG_IPC_ID_ANY, .size = 10000 };
	int32_t id = -1;
	unsigned home = 0;
	for (g.key = 1; g.key < 100; g.key++) {
		id = (int32_t)call(c, 0, &g);
		home = kddm_home(kddm_set_find(kfake_kddm(c->f, 0), "ipc.shm"), (uint64_t)krg_ipc_id_idx(id));
		if (home == 2)
			break;
	}
	assert_int_equal(home, 2);
	struct krg_ipc_req at = { .op = KRG_IPC_OP_SHMAT, .id = id };
	assert_int_equal(call(c, 0, &at), 0);
	assert_int_equal(call(c, 1, &at), 0);
	cl_kill(c, 2);
	struct krg_ipc_reply r = shm_stat(c, 1, id);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.shm.segsz, 10000);
	assert_int_equal(r.shm.nattch, 2);
	struct krg_ipc_req dt = { .op = KRG_IPC_OP_SHMDT, .id = id };
	assert_int_equal(call(c, 0, &dt), 0);
	assert_int_equal(shm_stat(c, 0, id).shm.nattch, 1);
	cl_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_key_race),
		cmocka_unit_test(test_blocked_receiver_other_node),
		cmocka_unit_test(test_owner_pingpong),
		cmocka_unit_test(test_owner_concurrent),
		cmocka_unit_test(test_owner_leave_and_death),
		cmocka_unit_test(test_sem_counter),
		cmocka_unit_test(test_exit_twice),
		cmocka_unit_test(test_undo_backup),
		cmocka_unit_test(test_cluster_limits),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_home_down_no_backup),
		cmocka_unit_test(test_home_down_backup),
		cmocka_unit_test(test_shm),
		cmocka_unit_test(test_shm_home_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
