/* ipc_service_owner.c — a message queue's owner: the node that holds its
 * state and serves its calls, which is its home until the queue moves.
 *
 * Why: a ping-pong across nodes through a queue homed on one of them
 * waits for the network twice per round trip (the remote side's msgsnd
 * needs its answer before its msgrcv can go). Kerrighed moved a queue to
 * the node of the receiver it served; so does this: when a call here
 * completes one parked msgrcv of another node's caller and nothing else
 * waits on the queue, the queue's whole state goes to that node in one
 * one-way message (a Take) that carries the completion too. That node's
 * next msgsnd is then served on its own node, and the message crosses
 * once, with the queue, to the peer waiting for it (docs/ipc-service.md,
 * "Owners").
 *
 * Only queues with at most one receiver waiting and no sender move (the
 * one receiver re-issues its call where the queue went; the waiters of
 * several nodes pin a queue where it is), small ones (<= IPC_MOVE_MAX bytes queued), with
 * backups off (a backed-up change costs its round trip anyway), between
 * live nodes. The home keeps a record naming the owner (ipc_obj.owner,
 * handed over with KDDM like any object); callers keep the last owner
 * they heard of (svc->where) and go there directly; a node that does not
 * hold the queue answers "ask node N" (Answer.owner), N the node it last
 * knew it at, so the asks converge on the holder as Li and Hudak's
 * probable owners do. Each move numbers the queue (mseq) and the home
 * takes only newer news. A leaving owner gives its queues back to their
 * homes first; a dead owner's queues die with it, as a dead home's do
 * with backups off, and so do the queues an owner holds for a home that
 * died (the cluster forgot them). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"
#include "lib/log.h"
#include "lib/metrics.h"

#define IPC_MOVE_MAX (64u * 1024)

int ipc_owner_init(struct krg_ipc_service *svc)
{
	svc->owned = calloc(KRG_IPC_MNI, sizeof(*svc->owned));
	svc->where = malloc(KRG_IPC_MNI * sizeof(*svc->where));
	if (!svc->owned || !svc->where)
		return -ENOMEM;
	memset(svc->where, 0xff, KRG_IPC_MNI * sizeof(*svc->where));
	return 0;
}

void ipc_owner_free(struct krg_ipc_service *svc)
{
	if (svc->owned)
		for (size_t i = 0; i < KRG_IPC_MNI; i++)
			free(svc->owned[i]);
	free(svc->owned);
	free(svc->where);
	svc->owned = NULL;
	svc->where = NULL;
	svc->owned_n = 0;
}

struct ipc_owned *ipc_owned_get(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx)
{
	if (kind != KRG_IPC_MSG || idx >= KRG_IPC_MNI || !svc->owned)
		return NULL;
	return svc->owned[idx];
}

void ipc_owned_forget(struct krg_ipc_service *svc, uint64_t idx)
{
	free(svc->owned[idx]);
	svc->owned[idx] = NULL;
	svc->owned_n--;
}

/* Queue id ends here: its waiters get EIDRM. */
static void drop_queue(struct krg_ipc_service *svc, int32_t id)
{
	svc->in_engine = true;
	krg_ipc_engine_drop(svc->eng, KRG_IPC_MSG, id, -EIDRM);
	svc->in_engine = false;
}

int ipc_undeliverable(struct krg_ipc_service *svc, const Krg__Ipc__Call *m)
{
	struct krg_ipc_caller who;
	struct krg_ipc_req req;
	struct krg_ipc_reply rep;
	void *scratch = NULL;
	int r = -EBADMSG;
	if (m->reply && ipcw_cred_from(m->cred, &who) == 0 && ipcw_req_from(m->req, &req, &scratch) == 0 &&
	    ipcw_reply_from(m->reply, &rep) == 0) {
		svc->in_engine = true;
		r = krg_ipc_engine_undeliverable(svc->eng, &who, &req, &rep, ipc_now(svc));
		svc->in_engine = false;
		krg_ipc_reply_release(&rep);
	}
	free(scratch);
	return r;
}

uint32_t ipc_owner_route(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx)
{
	if (kind != KRG_IPC_MSG || idx >= KRG_IPC_MNI || !svc->where)
		return KDDM_NO_NODE;
	if (svc->owned[idx])
		return kddm_self(svc->k);
	uint32_t w = svc->where[idx];
	if (w == IPC_WHERE_HOME || w == kddm_self(svc->k) || !krg_nodeset_has(kddm_live(svc->k), w))
		return KDDM_NO_NODE;
	return w;
}

void ipc_owner_learn(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, uint32_t node)
{
	if (kind == KRG_IPC_MSG && idx < KRG_IPC_MNI && svc->where)
		svc->where[idx] = node < KRG_MAX_NODES ? (uint16_t)node : IPC_WHERE_HOME;
}

/* Tell the home that the queue is at node now (move number mseq). */
static void tell_home(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, uint32_t node,
		      uint64_t mseq)
{
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__OWNER;
	c.has_id = c.has_owner = c.has_mseq = true;
	c.id = id;
	c.owner = node;
	c.mseq = mseq;
	ipc_call_send(svc->objs[kind], idx, &c, NULL, NULL);
}

/* A Take of queue id (its object, move number mseq, completion packed
 * or NULL) into a malloc'ed *buf. 0 or -errno. */
static int pack_take(struct krg_ipc_service *svc, uint32_t kind, int32_t id, uint64_t mseq, const uint8_t *comp,
		     size_t comp_len, uint8_t **buf, size_t *len)
{
	Krg__Ipc__Take t = KRG__IPC__TAKE__INIT;
	uint8_t *obj;
	size_t obj_len;
	int r = ipc_pack_object(svc, kind, id, &obj, &obj_len);
	if (r < 0)
		return r;
	t.object.data = obj;
	t.object.len = obj_len;
	t.mseq = mseq;
	if (comp) {
		t.has_completion = true;
		t.completion.data = (uint8_t *)comp;
		t.completion.len = comp_len;
	}
	*len = krg__ipc__take__get_packed_size(&t);
	*buf = malloc(*len);
	if (*buf)
		krg__ipc__take__pack(&t, *buf);
	free(obj);
	return *buf ? 0 : -ENOMEM;
}

/* Queue id has gone to node to: out of this engine (its waiters re-issue
 * their calls where it went: -EXDEV), to is its owner now. */
static void let_go(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, uint32_t to)
{
	bool was = svc->in_engine;
	svc->in_engine = true;
	krg_ipc_engine_drop(svc->eng, kind, id, -EXDEV);
	svc->in_engine = was;
	ipc_owner_learn(svc, kind, idx, to);
}

/* Send queue id (kind, idx) to node to, with completion (packed, may be
 * NULL), as move mseq. The queue leaves this engine. 0 or -errno
 * (then nothing changed). */
static int send_take(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, uint32_t to,
		     uint64_t mseq, const uint8_t *comp, size_t comp_len)
{
	uint8_t *buf;
	size_t len;
	int r = pack_take(svc, kind, id, mseq, comp, comp_len, &buf, &len);
	if (r < 0)
		return r;
	r = kddm_notify(svc->nodes, to, IPC_TAKE_NOTIFY | to, buf, len);
	free(buf);
	if (r < 0)
		return r;
	let_go(svc, kind, idx, id, to);
	return 0;
}

/* May queue id move to node to now? */
static bool may_move(struct krg_ipc_service *svc, uint32_t kind, int32_t id, uint32_t to)
{
	uint32_t self = kddm_self(svc->k);
	const struct krg_nodeset *live = kddm_live(svc->k);
	uint64_t cbytes;
	unsigned senders;
	if (svc->moves_off || kind != KRG_IPC_MSG || kddm_backup(svc->k) || to == self || to >= KRG_MAX_NODES ||
	    !krg_nodeset_has(live, to) || !krg_nodeset_has(live, self))
		return false;
	/* At most one receiver waits (it is asked to wait where the queue
	 * goes: -ESTALE, re-issued by its node, after the queue on the same
	 * link when it is the receiver's), no sender. */
	int rcv = krg_ipc_engine_msq_waiters(svc->eng, id, &cbytes, &senders);
	return rcv >= 0 && rcv <= 1 && senders == 0 && cbytes <= IPC_MOVE_MAX;
}

/* The queue left for node to as move mseq: what the home and this node
 * remember. */
static void moved(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, struct ipc_obj *o,
		  uint32_t to, uint64_t mseq)
{
	if (o) {
		o->owner = to;
		o->mseq = mseq;
		svc->moved_out++;
		return;
	}
	uint32_t home = kddm_home(svc->objs[kind], idx);
	ipc_owned_forget(svc, idx);
	if (to != home)
		tell_home(svc, kind, idx, id, to, mseq);
}

int ipc_owner_take_for(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, struct ipc_obj *o,
		       uint32_t to, const struct krg_ipc_reply *reply, uint8_t **take, size_t *len)
{
	struct ipc_owned *w = o ? NULL : ipc_owned_get(svc, kind, idx);
	if ((!o && !w) || reply->ret < 0 || reply->mtype <= 0 || !may_move(svc, kind, id, to))
		return -EAGAIN;
	uint64_t mseq = (o ? o->mseq : w->mseq) + 1;
	int r = pack_take(svc, kind, id, mseq, NULL, 0, take, len);
	if (r < 0)
		return r;
	let_go(svc, kind, idx, id, to);
	moved(svc, kind, idx, id, o, to, mseq);
	return 0;
}

void ipc_owner_consider(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, struct ipc_obj *o)
{
	struct ipc_done *d = svc->done_head;
	struct ipc_owned *w = o ? NULL : ipc_owned_get(svc, kind, idx);
	if (!d || d->next || (!o && !w))
		return;
	/* One parked msgrcv of another node completed (a message was taken:
	 * mtype set), and at most one receiver still waits. */
	uint32_t to = (uint32_t)(d->gtoken >> 48);
	if (d->reply.ret < 0 || d->reply.mtype <= 0 || !may_move(svc, kind, id, to))
		return;
	Krg__Ipc__Completion cm = KRG__IPC__COMPLETION__INIT;
	Krg__Ipc__Reply rm;
	Krg__Ipc__Perm perm;
	int64_t f[16];
	uint32_t *vals = NULL;
	if (ipcw_reply_to(&d->reply, &rm, &perm, f, &vals) < 0)
		return;
	cm.token = d->gtoken;
	cm.reply = &rm;
	size_t clen = krg__ipc__completion__get_packed_size(&cm);
	uint8_t *cbuf = malloc(clen);
	if (!cbuf) {
		free(vals);
		return;
	}
	krg__ipc__completion__pack(&cm, cbuf);
	free(vals);
	uint64_t mseq = (o ? o->mseq : w->mseq) + 1;
	/* The completion goes with the queue: off the list before the queue
	 * leaves the engine (a waiter left there is answered -ESTALE). */
	svc->done_head = svc->done_tail = NULL;
	if (send_take(svc, kind, idx, id, to, mseq, cbuf, clen) < 0) {
		free(cbuf);
		/* stays here; the completion goes the usual way */
		if (svc->done_head) {
			d->next = svc->done_head;
			svc->done_head = d;
		} else {
			svc->done_head = svc->done_tail = d;
		}
		return;
	}
	free(cbuf);
	krg_metrics_ipc(KRG_MIPC_DONE_REMOTE);
	krg_ipc_reply_release(&d->reply);
	free(d);
	moved(svc, kind, idx, id, o, to, mseq);
}

void ipc_owner_set(struct krg_ipc_service *svc, struct ipc_obj *o, const Krg__Ipc__Call *m)
{
	if (!o || o->kind != KRG_IPC_MSG || o->id != m->id || m->mseq <= o->mseq || o->gone)
		return;
	if (o->owner == KDDM_NO_NODE) {
		/* The queue is here (it came back by a newer move): a late
		 * word about an older one. */
		return;
	}
	o->mseq = m->mseq;
	if (m->owner == kddm_self(svc->k))
		return; /* its Take says so when it lands */
	o->owner = m->owner;
	if (!krg_nodeset_has(kddm_live(svc->k), m->owner))
		o->gone = true; /* it went to a node that died since */
}

/* A Take landed: the queue is served here from now on. */
void ipc_take_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len)
{
	Krg__Ipc__Take *t = krg__ipc__take__unpack(NULL, len, in);
	if (!t) {
		log_warn("ipc: node %u sent an undecodable queue", from);
		return;
	}
	uint32_t kind;
	int32_t id;
	int r = ipc_import_bytes(svc, t->object.data, t->object.len, &kind, &id);
	uint64_t idx = id >= 0 ? (uint64_t)krg_ipc_id_idx(id) : UINT64_MAX;
	if (r == 0 && kind != KRG_IPC_MSG) {
		/* Only queues move: a peer's nonsense is not kept. */
		krg_ipc_engine_drop(svc->eng, kind, id, -EIDRM);
		r = -EBADMSG;
	}
	if (r < 0) {
		log_warn("ipc: node %u sent queue %d, refused (%s): it is lost", from, id, strerror(-r));
	} else {
		struct ipc_obj *o = kddm_peek(svc->objs[kind], idx);
		if (o && o->id == id) {
			/* Back at its home. */
			if (o->owner != KDDM_NO_NODE)
				svc->moved_out--;
			o->owner = KDDM_NO_NODE;
			if (t->mseq > o->mseq)
				o->mseq = t->mseq;
		} else {
			struct ipc_owned *w = calloc(1, sizeof(*w));
			if (!w) {
				krg_ipc_engine_drop(svc->eng, kind, id, -EIDRM);
				r = -ENOMEM;
			} else {
				free(svc->owned[idx]);
				if (!svc->owned[idx])
					svc->owned_n++;
				w->id = id;
				w->mseq = t->mseq;
				svc->owned[idx] = w;
			}
		}
		svc->where[idx] = IPC_WHERE_HOME;
	}
	if (t->has_completion)
		ipc_completion_in(svc, from, t->completion.data, t->completion.len);
	krg__ipc__take__free_unpacked(t, NULL);
	if (r == 0 && svc->owned[idx] && !krg_nodeset_has(kddm_live(svc->k), kddm_self(svc->k))) {
		/* It came to a node that is leaving: give it back now. */
		ipc_owner_leaving(svc);
	}
	ipc_home_flush(svc);
}

/* Run a SYSCALL here as the queue's owner (its home is elsewhere). */
static void owner_syscall(struct krg_ipc_service *svc, uint32_t from, const Krg__Ipc__Call *m, uint64_t idx,
			  struct kddm_call *c)
{
	struct krg_ipc_caller who;
	struct krg_ipc_req req;
	void *scratch = NULL;
	if (!m->req || !m->has_token || ipcw_cred_from(m->cred, &who) < 0 ||
	    ipcw_req_from(m->req, &req, &scratch) < 0) {
		kddm_call_done(c, -EBADMSG, NULL, 0);
		return;
	}
	struct ipc_owned *w = svc->owned[idx];
	struct krg_ipc_reply reply = { 0 };
	int32_t key = ipc_is_rmid(&req) ? ipc_key_of(svc, KRG_IPC_MSG, w->id) : 0;
	svc->in_engine = true;
	int r = krg_ipc_engine_call(svc->eng, &who, &req, m->token, ipc_now(svc), &reply);
	svc->in_engine = false;
	free(scratch);
	if (r < 0) {
		kddm_call_done(c, r, NULL, 0);
		ipc_home_flush(svc);
		return;
	}
	int32_t id = w->id;
	uint8_t *take = NULL;
	size_t take_len = 0;
	if (krg_ipc_engine_msq_waiters(svc->eng, id, NULL, NULL) < 0) {
		/* Removed (IPC_RMID): its home's record and its key go too. */
		if (key)
			ipc_forget_key(svc, KRG_IPC_MSG, key, id);
		Krg__Ipc__Call d = KRG__IPC__CALL__INIT;
		d.op = KRG__IPC__CALL_OP__DROP;
		d.has_id = true;
		d.id = id;
		ipc_call_send(svc->objs[KRG_IPC_MSG], idx, &d, NULL, NULL);
		ipc_owned_forget(svc, idx);
	} else if (r == KRG_IPC_PENDING || from == kddm_self(svc->k) ||
		   ipc_owner_take_for(svc, KRG_IPC_MSG, idx, id, NULL, from, &reply, &take, &take_len) < 0) {
		ipc_owner_consider(svc, KRG_IPC_MSG, idx, id, NULL);
	}
	if (r == KRG_IPC_PENDING) {
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		a.has_pending = a.pending = true;
		ipc_answer(c, 0, &a);
	} else {
		ipc_answer_reply_take(c, &reply, take, take_len);
		krg_ipc_reply_release(&reply);
		free(take);
	}
	ipc_home_flush(svc);
}

static void answer_elsewhere(struct krg_ipc_service *svc, uint64_t idx, struct kddm_call *c)
{
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	a.has_owner = true;
	uint16_t w = idx < KRG_IPC_MNI ? svc->where[idx] : IPC_WHERE_HOME;
	/* Not here: where it went from here, or its home (KDDM_NO_NODE). */
	a.owner = w == IPC_WHERE_HOME || w == kddm_self(svc->k) ? KDDM_NO_NODE : w;
	ipc_answer(c, 0, &a);
}

void ipc_owner_call(struct krg_ipc_service *svc, uint32_t from, const Krg__Ipc__Call *m, struct kddm_call *c)
{
	if (m->op == KRG__IPC__CALL_OP__CANCEL) {
		/* A call parked here (at its home or its owner: one engine). */
		if (!m->has_token) {
			kddm_call_done(c, -EBADMSG, NULL, 0);
			return;
		}
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		Krg__Ipc__Reply rep = KRG__IPC__REPLY__INIT;
		rep.ret = krg_ipc_engine_cancel(svc->eng, m->token);
		a.reply = &rep;
		ipc_answer(c, 0, &a);
		return;
	}
	if (!m->req) {
		kddm_call_done(c, -EBADMSG, NULL, 0);
		return;
	}
	uint32_t kind = ipc_kind_of(m->req->op);
	struct krg_ipc_req probe = { .op = m->req->op, .cmd = m->req->cmd };
	int32_t rid = m->req->id;
	uint64_t idx = m->has_idx ? m->idx
		       : rid < 0 ? UINT64_MAX
		       : ipc_by_index(&probe) ? (uint64_t)rid : (uint64_t)krg_ipc_id_idx(rid);
	if (!ipc_owned_get(svc, kind, idx)) {
		answer_elsewhere(svc, idx, c);
		return;
	}
	if (m->op == KRG__IPC__CALL_OP__SYSCALL) {
		owner_syscall(svc, from, m, idx, c);
		return;
	}
	/* UNDELIVERABLE: put back what the call took, here. */
	int r = ipc_undeliverable(svc, m);
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	Krg__Ipc__Reply rr = KRG__IPC__REPLY__INIT;
	rr.ret = r;
	a.reply = &rr;
	ipc_answer(c, 0, &a);
	ipc_home_flush(svc);
}

void ipc_owner_leaving(struct krg_ipc_service *svc)
{
	if (!svc->owned)
		return;
	for (uint64_t idx = 0; idx < KRG_IPC_MNI && svc->owned_n; idx++) {
		struct ipc_owned *w = svc->owned[idx];
		if (!w)
			continue;
		uint32_t home = kddm_home(svc->objs[KRG_IPC_MSG], idx);
		int r = home == KDDM_NO_NODE || home == kddm_self(svc->k)
				? -EHOSTUNREACH
				: send_take(svc, KRG_IPC_MSG, idx, w->id, home, w->mseq + 1, NULL, 0);
		if (r < 0)
			log_warn("ipc: queue %d could not go back to its home (%s): it is lost", w->id, strerror(-r));
		if (r < 0)
			drop_queue(svc, w->id);
		ipc_owned_forget(svc, idx);
	}
	ipc_home_flush(svc);
}

static bool ent_owned_by(struct kddm_set *s, uint64_t idx, void *obj, const struct krg_nodeset *copyset, void *data)
{
	struct ipc_obj *o = obj;
	if (o && o->owner == *(uint32_t *)data)
		o->gone = true;
	return false;
}

void ipc_owner_node_down(struct krg_ipc_service *svc, uint32_t kind, uint32_t node)
{
	if (kind != KRG_IPC_MSG || !svc->owned)
		return;
	/* Records of queues that were at node: they died there. */
	kddm_each(svc->objs[kind], ent_owned_by, &node);
	struct krg_nodeset was = *kddm_live(svc->k);
	if (node < KRG_MAX_NODES)
		krg_nodeset_add(&was, node);
	for (uint64_t idx = 0; idx < KRG_IPC_MNI; idx++) {
		if (svc->where[idx] == node)
			svc->where[idx] = IPC_WHERE_HOME;
		struct ipc_owned *w = svc->owned[idx];
		if (!w || kddm_hash_home(idx, &was) != node)
			continue;
		/* Its home died and the cluster forgot it (backups off): the
		 * waiters here get EIDRM, as at a dead home. */
		log_info("ipc: queue %d's home node %u died: the queue goes with it", w->id, node);
		drop_queue(svc, w->id);
		ipc_owned_forget(svc, idx);
	}
	ipc_home_flush(svc);
}
