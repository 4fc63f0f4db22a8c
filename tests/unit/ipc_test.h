/* ipc_test.h — helpers for the IPC engine's unit tests: an engine whose
 * completions are recorded, callers, and one-line wrappers per syscall. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <cmocka.h>
#include "ipc/ipc_engine.h"

#define T_SEC 1000000000ull
#define T_NOW (1700000000ull * T_SEC)

struct done {
	uint64_t token;
	struct krg_ipc_reply r;
};

struct t {
	struct krg_ipc_engine *e;
	struct krg_ipc_limits lim;
	struct done d[256];
	int nd;
	uint64_t now;
	uint64_t next_token;
	int changes;
};

static inline void t_cb(void *data, uint64_t token, struct krg_ipc_reply *r)
{
	struct t *t = data;
	assert_true(t->nd < 256);
	t->d[t->nd].token = token;
	t->d[t->nd].r = *r;   /* takes ownership of the buffers */
	t->nd++;
}

static inline void t_change(void *data, uint32_t kind, int32_t id)
{
	struct t *t = data;
	t->changes++;
}

static inline struct t *t_new(void)
{
	struct t *t = calloc(1, sizeof *t);
	krg_ipc_limits_default(&t->lim);
	t->lim.msgmax = 8192;
	t->lim.msgmnb = 16384;
	t->e = krg_ipc_engine_new(&t->lim, t_cb, t);
	assert_non_null(t->e);
	krg_ipc_engine_set_change_cb(t->e, t_change, t);
	t->now = T_NOW;
	t->next_token = 1;
	return t;
}

static inline void t_clear(struct t *t)
{
	for (int i = 0; i < t->nd; i++)
		krg_ipc_reply_release(&t->d[i].r);
	t->nd = 0;
}

static inline void t_free(struct t *t)
{
	t_clear(t);
	krg_ipc_engine_free(t->e);
	free(t);
}

/* The completion of token, or NULL. */
static inline struct krg_ipc_reply *t_done(struct t *t, uint64_t token)
{
	for (int i = 0; i < t->nd; i++)
		if (t->d[i].token == token)
			return &t->d[i].r;
	return NULL;
}

/* A caller: uid/gid for real and effective ids, pid, proc_id = pid. */
static inline struct krg_ipc_caller who(uint32_t uid, uint32_t gid, int32_t pid)
{
	struct krg_ipc_caller c = { 0 };
	c.cred.uid = c.cred.euid = uid;
	c.cred.gid = c.cred.egid = c.cred.fsgid = gid;
	c.pid = pid;
	c.proc_id = (uint64_t)pid;
	return c;
}

static inline struct krg_ipc_caller root_c(int32_t pid)
{
	struct krg_ipc_caller c = who(0, 0, pid);
	c.cred.caps = KRG_IPC_CAP_IPC_OWNER | KRG_IPC_CAP_SYS_ADMIN | KRG_IPC_CAP_SYS_RESOURCE;
	return c;
}

/* Runs a call. Returns KRG_IPC_DONE/PENDING; *ret gets reply.ret when done.
 * The reply (if done) is kept in *out when out is not NULL, else released. */
static inline int t_call(struct t *t, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t *token, struct krg_ipc_reply *out)
{
	uint64_t tok = t->next_token++;
	if (token)
		*token = tok;
	struct krg_ipc_reply r;
	int rc = krg_ipc_engine_call(t->e, c, q, tok, t->now, &r);
	assert_true(rc == KRG_IPC_DONE || rc == KRG_IPC_PENDING);
	if (out)
		*out = r;
	else
		krg_ipc_reply_release(&r);
	return rc;
}

/* Done calls: the return value. Pending ones: fail the test. */
static inline int64_t t_ret(struct t *t, const struct krg_ipc_caller *c, const struct krg_ipc_req *q)
{
	struct krg_ipc_reply r;
	assert_int_equal(t_call(t, c, q, NULL, &r), KRG_IPC_DONE);
	int64_t ret = r.ret;
	krg_ipc_reply_release(&r);
	return ret;
}

static inline struct krg_ipc_req q_msgget(int32_t key, int flg)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_MSGGET, .id = KRG_IPC_ID_ANY, .key = key, .flags = flg };
}

static inline struct krg_ipc_req q_msgsnd(int32_t id, int64_t type, const char *text, int flg)
{
	size_t n = strlen(text);
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = type,
		.text = (const uint8_t *)text, .text_len = n, .msgsz = n, .flags = flg };
}

static inline struct krg_ipc_req q_msgrcv(int32_t id, int64_t type, uint64_t bufsz, int flg)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_MSGRCV, .id = id, .msgtyp = type, .msgsz = bufsz, .flags = flg };
}

static inline struct krg_ipc_req q_msgctl(int32_t id, int cmd)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = cmd };
}

static inline struct krg_ipc_req q_semget(int32_t key, int nsems, int flg)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_SEMGET, .id = KRG_IPC_ID_ANY, .key = key, .nsems = nsems, .flags = flg };
}

static inline struct krg_ipc_req q_semop(int32_t id, const struct krg_ipc_sembuf *sops, uint32_t n)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_SEMOP, .id = id, .sops = sops, .nsops = n };
}

static inline struct krg_ipc_req q_semctl(int32_t id, int semnum, int cmd)
{
	return (struct krg_ipc_req){ .op = KRG_IPC_OP_SEMCTL, .id = id, .semnum = semnum, .cmd = cmd };
}

/* Receives one message without waiting; returns its type, checks its text. */
static inline int64_t t_recv(struct t *t, const struct krg_ipc_caller *c, int32_t id, int64_t type, int flg,
		const char *want)
{
	struct krg_ipc_req q = q_msgrcv(id, type, 8192, flg | IPC_NOWAIT);
	struct krg_ipc_reply r;
	assert_int_equal(t_call(t, c, &q, NULL, &r), KRG_IPC_DONE);
	int64_t mtype = r.ret < 0 ? r.ret : r.mtype;
	if (r.ret >= 0 && want) {
		assert_int_equal(r.ret, strlen(want));
		assert_memory_equal(r.text, want, strlen(want));
	}
	krg_ipc_reply_release(&r);
	return mtype;
}

static inline int64_t t_semval(struct t *t, int32_t id, int semnum)
{
	struct krg_ipc_caller c = root_c(1);
	struct krg_ipc_req q = q_semctl(id, semnum, GETVAL);
	return t_ret(t, &c, &q);
}

static inline void t_setval(struct t *t, int32_t id, int semnum, int val)
{
	struct krg_ipc_caller c = root_c(1);
	struct krg_ipc_req q = q_semctl(id, semnum, SETVAL);
	q.val = val;
	assert_int_equal(t_ret(t, &c, &q), 0);
}
