/* ipc_service.c — the calls of this node's callers: where each goes, what
 * comes back, and the cases where the caller is gone (cancel,
 * undeliverable, process exit). The home side is ipc_service_home.c.
 *
 * A call gets a cluster-wide token (this node << 48 | sequence) under
 * which it may wait at its object's home. The answer is either immediate
 * (the KDDM call's reply) or pushed later as a Completion to this node. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"
#include "lib/log.h"
#include "lib/metrics.h"

#define MAX_REISSUES 8
/* "ask node N" answers followed by one call (a queue that moves,
 * docs/ipc-service.md "Owners"); past REDIRECT_SLOW they go through the
 * home, which knows the latest move it heard of. */
#define MAX_REDIRECTS 64
#define REDIRECT_SLOW 8
#define IPC_PRIVATE_KEY 0

/* ---- pending calls ------------------------------------------------------ */

static size_t tb(uint64_t t)
{
	return (size_t)((t * 0x9e3779b97f4a7c15ULL) >> 54) % IPC_PEND_BUCKETS;
}

static struct ipc_pend *find_token(struct krg_ipc_service *svc, uint64_t token)
{
	for (struct ipc_pend *p = svc->by_token[tb(token)]; p; p = p->tnext)
		if (p->token == token && !p->cancelled)
			return p;
	return NULL;
}

static struct ipc_pend *find_gtoken(struct krg_ipc_service *svc, uint64_t g)
{
	for (struct ipc_pend *p = svc->by_gtoken[tb(g)]; p; p = p->gnext)
		if (p->gtoken == g)
			return p;
	return NULL;
}

static void pend_free(struct krg_ipc_service *svc, struct ipc_pend *p)
{
	for (struct ipc_pend **pp = &svc->by_token[tb(p->token)]; *pp; pp = &(*pp)->tnext)
		if (*pp == p) {
			*pp = p->tnext;
			break;
		}
	for (struct ipc_pend **pp = &svc->by_gtoken[tb(p->gtoken)]; *pp; pp = &(*pp)->gnext)
		if (*pp == p) {
			*pp = p->gnext;
			break;
		}
	free(p->call);
	free(p);
}

/* Give the caller its answer (reply taken) and forget the call. */
static void deliver(struct krg_ipc_service *svc, struct ipc_pend *p, struct krg_ipc_reply *reply)
{
	krg_ipc_service_done_fn done = p->done;
	void *cookie = p->cookie;
	pend_free(svc, p);
	done(cookie, reply);
}

static void answer_now(struct krg_ipc_service *svc, struct ipc_pend *p, int64_t ret)
{
	struct krg_ipc_reply r = { .ret = ret };
	deliver(svc, p, &r);
}

/* ---- undoing a call whose caller is gone -------------------------------- */

static void ignore_answer(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	if (status < 0)
		log_info("ipc: undoing a call at its home failed: %s", strerror(-status));
}


static void call_chasing(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, const Krg__Ipc__Call *c);

/* p completed with reply but its caller is gone: put back what it took. */
static void undo(struct krg_ipc_service *svc, struct ipc_pend *p, const Krg__Ipc__Reply *reply)
{
	Krg__Ipc__Call *orig = krg__ipc__call__unpack(NULL, p->call_len, p->call);
	if (!orig)
		return;
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__UNDELIVERABLE;
	c.cred = orig->cred;
	c.req = orig->req;
	c.reply = (Krg__Ipc__Reply *)reply;
	call_chasing(svc, p->kind, p->idx, &c);
	krg__ipc__call__free_unpacked(orig, NULL);
}

/* ---- sending ------------------------------------------------------------ */

static void send_syscall(struct krg_ipc_service *svc, struct ipc_pend *p);
static void send_keyget(struct krg_ipc_service *svc, struct ipc_pend *p, int32_t key);

struct callref {
	struct krg_ipc_service *svc;
	uint64_t gtoken;
	int32_t key; /* KEY_GET */
	uint32_t to; /* the node asked directly (a queue's owner), or KDDM_NO_NODE: the home */
};

static struct callref *ref(struct krg_ipc_service *svc, struct ipc_pend *p, int32_t key)
{
	struct callref *r = malloc(sizeof(*r));
	if (r) {
		r->svc = svc;
		r->gtoken = p->gtoken;
		r->key = key;
		r->to = KDDM_NO_NODE;
	}
	return r;
}

/* A call on object (kind, idx): to the node serving it if we know it
 * moved there, else to its home. */
static int routed_call(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, const uint8_t *buf, size_t len,
		       kddm_call_cb cb, void *data, uint32_t *to)
{
	uint32_t node = ipc_owner_route(svc, kind, idx);
	if (to)
		*to = node;
	if (node != KDDM_NO_NODE)
		return kddm_call(svc->nodes, node, buf, len, cb, data);
	return kddm_call(svc->objs[kind], idx, buf, len, cb, data);
}

/* A call nobody waits for that must reach the queue wherever it is
 * (undo, undeliverable): "ask node N" answers are followed. */
struct chase {
	struct krg_ipc_service *svc;
	uint32_t kind;
	uint64_t idx;
	uint8_t *buf;
	size_t len;
	unsigned hops;
};

static void chase_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct chase *ch = data;
	Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	bool again = false;
	if (a && a->has_owner && ch->hops++ < MAX_REDIRECTS) {
		ipc_owner_learn(ch->svc, ch->kind, ch->idx, ch->hops > REDIRECT_SLOW ? KDDM_NO_NODE : a->owner);
		again = true;
	} else if (status < 0) {
		log_info("ipc: undoing a call at its home failed: %s", strerror(-status));
	}
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (again && routed_call(ch->svc, ch->kind, ch->idx, ch->buf, ch->len, chase_cb, ch, NULL) == 0)
		return;
	free(ch->buf);
	free(ch);
}

static void call_chasing(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, const Krg__Ipc__Call *c)
{
	struct chase *ch = calloc(1, sizeof(*ch));
	if (!ch || ipc_call_pack(c, &ch->buf, &ch->len) < 0) {
		free(ch);
		return;
	}
	ch->svc = svc;
	ch->kind = kind;
	ch->idx = idx;
	if (routed_call(svc, kind, idx, ch->buf, ch->len, chase_cb, ch, NULL) < 0) {
		free(ch->buf);
		free(ch);
	}
}

/* CANCEL of p where it waits: the node that said "pending". */
static void send_cancel(struct krg_ipc_service *svc, struct ipc_pend *p, kddm_call_cb cb, void *data)
{
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__CANCEL;
	c.has_token = true;
	c.token = p->gtoken;
	uint8_t *buf;
	size_t len;
	int r = -ENOMEM;
	if (ipc_call_pack(&c, &buf, &len) == 0) {
		if (p->parked_at == KDDM_NO_NODE ||
		    (ipc_owner_route(svc, p->kind, p->idx) == KDDM_NO_NODE &&
		     p->parked_at == kddm_home(svc->objs[p->kind], p->idx)))
			/* At its home (or on its way there): through the
			 * object's KDDM home, behind the calls before it. */
			r = kddm_call(svc->objs[p->kind], p->idx, buf, len, cb ? cb : ignore_answer, data);
		else
			r = kddm_call(svc->nodes, p->parked_at, buf, len, cb ? cb : ignore_answer, data);
		free(buf);
	}
	if (r < 0 && cb)
		cb(svc->k, r, NULL, 0, data);
}

/* A home's answer: the result, "parked" (a Completion will come), or a
 * redirect from a key map. */
static void on_answer(struct krg_ipc_service *svc, struct ipc_pend *p, int status, const uint8_t *out, size_t len,
		      int32_t key, uint32_t to)
{
	if (status < 0 && to != KDDM_NO_NODE && !p->cancelled && p->redirects++ < MAX_REDIRECTS) {
		/* The node we thought held the queue is gone or refused:
		 * ask its home, which knows where it went or that it died. */
		ipc_owner_learn(svc, p->kind, p->idx, KDDM_NO_NODE);
		send_syscall(svc, p);
		return;
	}
	if (status < 0) {
		/* The home could not run it (unreachable for too long,
		 * refused): the caller sees the call fail as Linux would if
		 * the object were gone. */
		if (p->cancelled)
			pend_free(svc, p);
		else
			answer_now(svc, p, status == -EHOSTUNREACH || status == -ENOENT ? -EIDRM : status);
		return;
	}
	Krg__Ipc__Answer *a = krg__ipc__answer__unpack(NULL, len, out);
	if (!a) {
		log_warn("ipc: an undecodable answer from a home");
		if (!p->cancelled)
			answer_now(svc, p, -EIO);
		else
			pend_free(svc, p);
		return;
	}
	if (a->has_take) {
		/* The queue comes here with this answer (a msgrcv it served):
		 * in place before the caller hears, so its next call finds it. */
		ipc_take_in(svc, to != KDDM_NO_NODE ? to : kddm_home(svc->objs[p->kind], p->idx), a->take.data,
			    a->take.len);
	}
	if (a->has_redirect) {
		/* The key names an object homed elsewhere: ask there. */
		p->idx = (uint64_t)krg_ipc_id_idx(a->redirect);
		p->rid = a->redirect;
		if (a->redirect < 0) {
			answer_now(svc, p, -EIO);
		} else if (p->cancelled) {
			pend_free(svc, p);
		} else {
			send_syscall(svc, p);
		}
	} else if (a->has_owner) {
		/* The queue is served elsewhere (it moved): ask there. Nothing
		 * ran, so a cancelled call is simply forgotten. */
		if (p->cancelled) {
			pend_free(svc, p);
		} else if (p->redirects++ >= MAX_REDIRECTS) {
			answer_now(svc, p, -EIDRM);
		} else {
			ipc_owner_learn(svc, p->kind, p->idx, p->redirects > REDIRECT_SLOW ? KDDM_NO_NODE : a->owner);
			send_syscall(svc, p);
		}
	} else if (a->has_pending && a->pending) {
		p->parked_at = to != KDDM_NO_NODE ? to : kddm_home(svc->objs[p->kind], p->idx);
		if (p->cancelled) {
			/* Cancelled while the call was on its way: take it back.
			 * If it completed meanwhile, its Completion finds p
			 * cancelled and undoes it. */
			send_cancel(svc, p, NULL, NULL);
		}
	} else if (a->reply) {
		struct krg_ipc_reply r;
		/* A get sent on by the key map: the stale entry is its key's. */
		if (key == IPC_PRIVATE_KEY && p->rid >= 0)
			key = p->key;
		if (a->reply->ret == -ESTALE && p->reissues++ < MAX_REISSUES) {
			/* The object moved, or the key map was stale. */
			if (key != IPC_PRIVATE_KEY && p->rid >= 0) {
				/* The key map named an object that is gone: drop
				 * that entry (ordered before the new KEY_GET: same
				 * home, FIFO). */
				Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
				c.op = KRG__IPC__CALL_OP__KEY_DEL;
				c.has_id = true;
				c.id = p->rid;
				ipc_call_send(svc->keys[p->kind], (uint32_t)key, &c, ignore_answer, NULL);
				p->rid = -1;
			}
			if (p->cancelled)
				pend_free(svc, p);
			else if (key != IPC_PRIVATE_KEY)
				send_keyget(svc, p, key);
			else
				send_syscall(svc, p);
		} else if (p->cancelled) {
			undo(svc, p, a->reply);
			pend_free(svc, p);
		} else if (ipcw_reply_from(a->reply, &r) < 0) {
			answer_now(svc, p, -EIO);
		} else {
			deliver(svc, p, &r);
		}
	} else {
		if (!p->cancelled)
			answer_now(svc, p, -EIO);
		else
			pend_free(svc, p);
	}
	krg__ipc__answer__free_unpacked(a, NULL);
}

static void call_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct callref *r = data;
	struct krg_ipc_service *svc = r->svc;
	struct ipc_pend *p = find_gtoken(svc, r->gtoken);
	int32_t key = r->key;
	uint32_t to = r->to;
	free(r);
	if (p)
		on_answer(svc, p, status, out, len, key, to);
}

/* Where a call goes, for the metrics (docs/ipc.md, "Cost across nodes"). */
static void count_call(struct kddm_set *s, uint64_t id)
{
	uint32_t home = kddm_home(s, id);
	krg_metrics_ipc(home == kddm_self(kddm_set_kddm(s)) ? KRG_MIPC_CALL_LOCAL : KRG_MIPC_CALL_REMOTE);
}

static void send_syscall(struct krg_ipc_service *svc, struct ipc_pend *p)
{
	uint32_t node = ipc_owner_route(svc, p->kind, p->idx);
	if (node == KDDM_NO_NODE)
		count_call(svc->objs[p->kind], p->idx);
	else
		krg_metrics_ipc(node == kddm_self(svc->k) ? KRG_MIPC_CALL_LOCAL : KRG_MIPC_CALL_REMOTE);
	struct callref *r = ref(svc, p, IPC_PRIVATE_KEY);
	int st = -ENOMEM;
	if (r && node != KDDM_NO_NODE) {
		/* To a queue's owner on ipc.node: the call names its index (a
		 * get's req has only the key). */
		Krg__Ipc__Call *c = krg__ipc__call__unpack(NULL, p->call_len, p->call);
		uint8_t *buf = NULL;
		size_t len;
		if (c) {
			c->has_idx = true;
			c->idx = p->idx;
			st = ipc_call_pack(c, &buf, &len);
			krg__ipc__call__free_unpacked(c, NULL);
		}
		if (st == 0)
			st = routed_call(svc, p->kind, p->idx, buf, len, call_cb, r, &r->to);
		free(buf);
	} else if (r) {
		st = routed_call(svc, p->kind, p->idx, p->call, p->call_len, call_cb, r, &r->to);
	}
	if (st < 0) {
		free(r);
		answer_now(svc, p, st);
	}
}

static void send_keyget(struct krg_ipc_service *svc, struct ipc_pend *p, int32_t key)
{
	Krg__Ipc__Call *orig = krg__ipc__call__unpack(NULL, p->call_len, p->call);
	if (!orig) {
		answer_now(svc, p, -ENOMEM);
		return;
	}
	orig->op = KRG__IPC__CALL_OP__KEY_GET;
	uint8_t *buf;
	size_t len;
	int st = ipc_call_pack(orig, &buf, &len);
	krg__ipc__call__free_unpacked(orig, NULL);
	struct callref *r = st == 0 ? ref(svc, p, key) : NULL;
	p->idx = UINT64_MAX; /* before the call: its answer may come (and free p) inside it */
	count_call(svc->keys[p->kind], (uint32_t)key);
	st = r ? kddm_call(svc->keys[p->kind], (uint32_t)key, buf, len, call_cb, r) : -ENOMEM;
	if (st < 0) {
		free(r);
		answer_now(svc, p, st);
	}
	free(buf);
}

/* ---- IPC_INFO / MSG_INFO / SEM_INFO: the whole cluster's usage --------- */

struct info_ctx {
	struct krg_ipc_service *svc;
	uint64_t gtoken;
	struct krg_ipc_req req;
	struct krg_ipc_usage sum;
	unsigned waiting;
};

static void usage_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct info_ctx *ic = data;
	Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	if (a && (a->n_usage == 7 || a->n_usage == 10)) {
		struct krg_ipc_usage *u = &ic->sum;
		u->msq_count += (uint32_t)a->usage[0];
		u->msg_count += (uint64_t)a->usage[1];
		u->msg_bytes += (uint64_t)a->usage[2];
		if (a->usage[3] > u->msq_max_idx)
			u->msq_max_idx = (int32_t)a->usage[3];
		u->sem_count += (uint32_t)a->usage[4];
		u->sem_total += (uint64_t)a->usage[5];
		if (a->usage[6] > u->sem_max_idx)
			u->sem_max_idx = (int32_t)a->usage[6];
		if (a->n_usage == 10) {
			u->shm_count += (uint32_t)a->usage[7];
			u->shm_tot += (uint64_t)a->usage[8];
			if (a->usage[9] > u->shm_max_idx)
				u->shm_max_idx = (int32_t)a->usage[9];
		}
	}
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (--ic->waiting)
		return;
	struct ipc_pend *p = find_gtoken(ic->svc, ic->gtoken);
	if (p && !p->cancelled) {
		struct krg_ipc_reply r = { 0 };
		if (ic->req.op == KRG_IPC_OP_MSGCTL) {
			r.out = KRG_IPC_OUT_MSGINFO;
			r.ret = krg_ipc_msginfo_fill(&ic->svc->lim, &ic->sum, ic->req.cmd, &r.msginfo);
		} else if (ic->req.op == KRG_IPC_OP_SHMCTL) {
			r.ret = krg_ipc_shminfo_fill(&ic->svc->lim, &ic->sum, ic->req.cmd, &r);
		} else {
			r.out = KRG_IPC_OUT_SEMINFO;
			r.ret = krg_ipc_seminfo_fill(&ic->svc->lim, &ic->sum, ic->req.cmd, &r.seminfo);
		}
		deliver(ic->svc, p, &r);
	} else if (p) {
		pend_free(ic->svc, p);
	}
	free(ic);
}

/* Pack c and call every live node's node object with it; a node the call
 * cannot be made to answers cb at once with -EHOSTUNREACH. *waiting (if
 * not NULL) is set first to one more than the nodes called. 0, or -errno
 * (no call made). */
static int call_every_node(struct krg_ipc_service *svc, const Krg__Ipc__Call *c, kddm_call_cb cb, void *ctx,
			   unsigned *waiting)
{
	uint8_t *buf;
	size_t len;
	int r = ipc_call_pack(c, &buf, &len);
	if (r < 0)
		return r;
	const struct krg_nodeset *live = kddm_live(svc->k);
	if (waiting)
		*waiting = krg_nodeset_count(live) + 1;
	for (unsigned node = 0; node < KRG_MAX_NODES; node++)
		if (krg_nodeset_has(live, node) && kddm_call(svc->nodes, node, buf, len, cb, ctx) < 0)
			cb(svc->k, -EHOSTUNREACH, NULL, 0, ctx);
	free(buf);
	return 0;
}

static int ask_every_node(struct krg_ipc_service *svc, Krg__Ipc__CallOp op, kddm_call_cb cb, void *ctx,
			  unsigned *waiting)
{
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = op;
	/* One more than the nodes, released below: no early finish. */
	int r = call_every_node(svc, &c, cb, ctx, waiting);
	if (r < 0)
		return r;
	cb(svc->k, -EAGAIN, NULL, 0, ctx); /* the extra one */
	return 0;
}

static bool is_info(const struct krg_ipc_req *r)
{
	if (r->op == KRG_IPC_OP_SHMCTL)
		return r->cmd == 3 || r->cmd == 14; /* IPC_INFO, SHM_INFO */
	if (r->op != KRG_IPC_OP_MSGCTL && r->op != KRG_IPC_OP_SEMCTL)
		return false;
	/* IPC_INFO 3, MSG_INFO 12, SEM_INFO 19 */
	return r->cmd == 3 || r->cmd == (r->op == KRG_IPC_OP_MSGCTL ? 12 : 19);
}

bool ipc_by_index(const struct krg_ipc_req *r)
{
	/* MSG_STAT 11, MSG_STAT_ANY 13, SEM_STAT 18, SEM_STAT_ANY 20: id is an index */
	if (r->op == KRG_IPC_OP_MSGCTL)
		return r->cmd == 11 || r->cmd == 13;
	if (r->op == KRG_IPC_OP_SHMCTL)
		return r->cmd == 13 || r->cmd == 15; /* SHM_STAT, SHM_STAT_ANY */
	return r->op == KRG_IPC_OP_SEMCTL && (r->cmd == 18 || r->cmd == 20);
}

/* ---- entry points ------------------------------------------------------- */

int krg_ipc_service_submit(struct krg_ipc_service *svc, const struct krg_ipc_caller *who,
			   const struct krg_ipc_req *req, uint64_t token, krg_ipc_service_done_fn done, void *cookie)
{
	if (!who || !req || !done || req->op < KRG_IPC_OP_MSGGET || req->op > KRG_IPC_OP_SHMDT)
		return -EINVAL;
	if (find_token(svc, token))
		return -EBUSY;
	struct ipc_pend *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->token = token;
	p->gtoken = (uint64_t)kddm_self(svc->k) << 48 | (++svc->seq & ((1ull << 48) - 1));
	p->done = done;
	p->cookie = cookie;
	p->kind = ipc_kind_of(req->op);
	p->idx = UINT64_MAX;
	p->rid = -1;
	p->parked_at = KDDM_NO_NODE;
	if (req->op == KRG_IPC_OP_MSGGET || req->op == KRG_IPC_OP_SEMGET || req->op == KRG_IPC_OP_SHMGET)
		p->key = req->key;

	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	Krg__Ipc__Cred cred;
	Krg__Ipc__Req mreq;
	void *scratch = NULL;
	ipcw_cred_to(who, &cred);
	int r = ipcw_req_to(req, &mreq, &scratch);
	c.op = KRG__IPC__CALL_OP__SYSCALL;
	c.cred = &cred;
	c.req = &mreq;
	c.has_token = true;
	c.token = p->gtoken;
	if (r == 0)
		r = ipc_call_pack(&c, &p->call, &p->call_len);
	free(scratch);
	if (r < 0) {
		free(p->call);
		free(p);
		return r;
	}
	size_t b = tb(token), g = tb(p->gtoken);
	p->tnext = svc->by_token[b];
	svc->by_token[b] = p;
	p->gnext = svc->by_gtoken[g];
	svc->by_gtoken[g] = p;

	bool get = req->op == KRG_IPC_OP_MSGGET || req->op == KRG_IPC_OP_SEMGET || req->op == KRG_IPC_OP_SHMGET;
	if (get && req->key == IPC_PRIVATE_KEY) {
		/* A private object lives where it is created: here. */
		struct krg_ipc_reply rep;
		r = ipc_create_here(svc, who, req, p->gtoken, &rep);
		ipc_home_flush(svc);
		if (r < 0) {
			pend_free(svc, p);
			return r;
		}
		deliver(svc, p, &rep);
	} else if (get) {
		send_keyget(svc, p, req->key);
	} else if (is_info(req)) {
		struct info_ctx *ic = calloc(1, sizeof(*ic));
		if (!ic) {
			pend_free(svc, p);
			return -ENOMEM;
		}
		ic->svc = svc;
		ic->gtoken = p->gtoken;
		ic->req = *req;
		ic->sum.msq_max_idx = ic->sum.sem_max_idx = ic->sum.shm_max_idx = -1;
		ask_every_node(svc, KRG__IPC__CALL_OP__USAGE, usage_cb, ic, &ic->waiting);
	} else if (req->id < 0) {
		answer_now(svc, p, -EINVAL);
	} else {
		p->idx = ipc_by_index(req) ? (uint64_t)req->id : (uint64_t)krg_ipc_id_idx(req->id);
		if (p->idx >= KRG_IPC_MNI)
			answer_now(svc, p, -EINVAL);
		else
			send_syscall(svc, p);
	}
	return 0;
}

/* The home's answer to a CANCEL: removed (nothing happened: forget the
 * call), or already completed (its Completion is on its way and will be
 * undone when it arrives). */
static void cancel_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct callref *r = data;
	struct krg_ipc_service *svc = r->svc;
	struct ipc_pend *p = find_gtoken(svc, r->gtoken);
	free(r);
	if (!p)
		return;
	Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	bool already = a && a->reply && a->reply->ret == -EALREADY;
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (!already)
		pend_free(svc, p);
}

int krg_ipc_service_cancel(struct krg_ipc_service *svc, uint64_t token)
{
	struct ipc_pend *p = find_token(svc, token);
	if (!p)
		return -ENOENT;
	p->cancelled = true;
	if (p->idx == UINT64_MAX)
		return 0; /* a get or an info on its way: nothing parked */
	if (p->parked_at == KDDM_NO_NODE && ipc_owner_route(svc, p->kind, p->idx) != KDDM_NO_NODE)
		return 0; /* on its way to a queue's owner: its answer finds it
			   * cancelled (and takes back or undoes what it did) */
	/* Parked, or on its way to the home (the CANCEL follows it there):
	 * take it back; what completed meanwhile comes back as a Completion
	 * and is undone then. */
	struct callref *r = ref(svc, p, IPC_PRIVATE_KEY);
	if (r)
		send_cancel(svc, p, cancel_cb, r);
	return 0;
}

void ipc_completion_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len)
{
	Krg__Ipc__Completion *m = krg__ipc__completion__unpack(NULL, len, in);
	if (!m) {
		log_warn("ipc: node %u sent an undecodable completion", from);
		return;
	}
	struct ipc_pend *p = find_gtoken(svc, m->token);
	if (!p || (uint32_t)(m->token >> 48) != kddm_self(svc->k)) {
		/* Nobody waits for it here (its caller is gone and its cancel
		 * finished): log, the home keeps nothing for it. */
		log_debug("ipc: completion %llx from node %u for no call", (unsigned long long)m->token, from);
	} else if (m->reply->ret == -EXDEV && !p->cancelled) {
		/* Its queue moved on while it waited (ipc_service_owner.c):
		 * wait where it went. Not counted: each move is progress. */
		p->parked_at = KDDM_NO_NODE;
		send_syscall(svc, p);
	} else if (m->reply->ret == -ESTALE && !p->cancelled && p->reissues++ < MAX_REISSUES) {
		/* Its object left that node while it waited: wait where it is.
		 * On its way it is parked nowhere: the old home's removal (a
		 * clean leave) must not answer it EIDRM. */
		p->parked_at = KDDM_NO_NODE;
		send_syscall(svc, p);
	} else if (p->cancelled) {
		undo(svc, p, m->reply);
		pend_free(svc, p);
	} else {
		struct krg_ipc_reply r;
		if (ipcw_reply_from(m->reply, &r) < 0) {
			log_warn("ipc: node %u sent a malformed completion", from);
			answer_now(svc, p, -EIO);
		} else {
			deliver(svc, p, &r);
		}
	}
	krg__ipc__completion__free_unpacked(m, NULL);
}

void ipc_node_down(struct krg_ipc_service *svc, uint32_t kind, uint32_t node)
{
	ipc_owner_node_down(svc, kind, node);
	for (size_t b = 0; b < IPC_PEND_BUCKETS; b++) {
		for (struct ipc_pend *p = svc->by_gtoken[b], *next; p; p = next) {
			next = p->gnext;
			if (p->kind != kind || p->parked_at != node)
				continue;
			p->parked_at = KDDM_NO_NODE;
			if (p->cancelled) {
				pend_free(svc, p);
			} else if (kddm_backup(svc->k) && p->reissues++ < MAX_REISSUES) {
				/* The backup node holds the object now, without
				 * its waiters: wait there. */
				send_syscall(svc, p);
			} else {
				/* Its object died with its home. */
				answer_now(svc, p, -EIDRM);
			}
			next = svc->by_gtoken[b]; /* the chain may have changed */
		}
	}
}

void krg_ipc_service_undeliverable(struct krg_ipc_service *svc, const struct krg_ipc_caller *who,
				   const struct krg_ipc_req *req, const struct krg_ipc_reply *reply)
{
	uint32_t kind = ipc_kind_of(req->op);
	uint64_t idx = ipc_by_index(req) ? (uint64_t)req->id : (uint64_t)krg_ipc_id_idx(req->id);
	if (req->id < 0 || idx >= KRG_IPC_MNI)
		return;
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	Krg__Ipc__Cred cred;
	Krg__Ipc__Req mreq;
	Krg__Ipc__Reply mrep;
	Krg__Ipc__Perm perm;
	int64_t f[16];
	uint32_t *vals = NULL;
	void *scratch = NULL;
	ipcw_cred_to(who, &cred);
	if (ipcw_req_to(req, &mreq, &scratch) < 0 || ipcw_reply_to(reply, &mrep, &perm, f, &vals) < 0)
		goto out;
	c.op = KRG__IPC__CALL_OP__UNDELIVERABLE;
	c.cred = &cred;
	c.req = &mreq;
	c.reply = &mrep;
	call_chasing(svc, kind, idx, &c);
out:
	free(scratch);
	free(vals);
}

static void exit_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
}

void krg_ipc_service_process_exit(struct krg_ipc_service *svc, uint64_t proc_id, int32_t pid)
{
	/* Its SEM_UNDO records are at the homes of the sets it used: every
	 * node applies its own. */
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	Krg__Ipc__Cred cred = KRG__IPC__CRED__INIT;
	cred.pid = pid;
	c.op = KRG__IPC__CALL_OP__EXIT;
	c.has_token = true;
	c.token = proc_id;
	c.cred = &cred;
	call_every_node(svc, &c, exit_cb, NULL, NULL);
}

int krg_ipc_service_undo_rename(struct krg_ipc_service *svc, const uint64_t *pairs, size_t n)
{
	if (!svc || !svc->nodes || (n && !pairs) || n > 65536)
		return -EINVAL;
	if (!n)
		return 0;
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__UNDO_RENAME;
	c.n_procs = 2 * n;
	c.procs = (uint64_t *)pairs;
	return call_every_node(svc, &c, exit_cb, NULL, NULL);
}

void krg_ipc_service_leaving(struct krg_ipc_service *svc)
{
	if (svc && svc->eng)
		ipc_owner_leaving(svc);
}

void krg_ipc_service_tick(struct krg_ipc_service *svc)
{
	uint64_t now = ipc_now(svc);
	ipc_usage_sync(svc);
	ipc_ckpt_tick(svc);
	if (krg_ipc_engine_next_deadline(svc->eng) > now)
		return;
	svc->in_engine = true;
	krg_ipc_engine_tick(svc->eng, now);
	svc->in_engine = false;
	ipc_home_flush(svc);
}

uint64_t krg_ipc_service_next_deadline(struct krg_ipc_service *svc)
{
	return krg_ipc_engine_next_deadline(svc->eng);
}

int krg_ipc_service_new(struct kddm *k, const struct krg_ipc_limits *limits, uint64_t (*now_fn)(void),
			struct krg_ipc_service **out)
{
	struct krg_ipc_service *svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	svc->k = k;
	svc->now_fn = now_fn;
	if (limits)
		svc->lim = *limits;
	else
		krg_ipc_limits_default(&svc->lim);
	int r = ipc_home_sets(svc);
	if (r < 0) {
		krg_ipc_service_free(svc);
		return r;
	}
	*out = svc;
	return 0;
}

void ipc_service_close(struct krg_ipc_service *svc)
{
	if (!svc->eng)
		return;
	ipc_ckpt_close(svc);
	/* The sets' objects go without touching the engine, then the engine
	 * with everything in it. */
	svc->in_engine = true;
	for (int kind = KRG_IPC_MSG; kind <= KRG_IPC_SHM; kind++) {
		kddm_set_free(svc->objs[kind]);
		kddm_set_free(svc->keys[kind]);
	}
	kddm_set_free(svc->nodes);
	krg_ipc_engine_free(svc->eng);
	svc->eng = NULL;
	ipc_owner_free(svc);
	for (size_t i = 0; i < 4; i++)
		svc->objs[i] = svc->keys[i] = NULL;
	svc->nodes = NULL;
	for (size_t b = 0; b < IPC_PEND_BUCKETS; b++)
		while (svc->by_token[b])
			pend_free(svc, svc->by_token[b]);
	struct ipc_done *d;
	while ((d = svc->done_head)) {
		svc->done_head = d->next;
		krg_ipc_reply_release(&d->reply);
		free(d);
	}
}

void krg_ipc_service_free(struct krg_ipc_service *svc)
{
	if (!svc)
		return;
	ipc_service_close(svc);
	free(svc->krgd);
	free(svc);
}
