/* kddm_home.c — the home side: where an object's master copy lives, every
 * operation on it is run here, one at a time, in arrival order.
 *
 * An entry is free, locked (grabbed by a node until it puts it back), or
 * waiting for invalidation acks (e->cur: the op that needs every read copy
 * gone first: a grab, a call, a remove). Ops that find it locked or waiting
 * queue behind, FIFO. That is the whole state machine; run() is its one
 * transition function. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kddm-int.h"
#include "lib/log.h"

void kddm_hop_free(struct kddm_hop *h)
{
	if (!h->local)
		free(h->data); /* a local hop borrows its request's bytes */
	free(h);
}

void kddm_hop_answer(struct kddm *k, struct kddm_set *s, struct kddm_hop *hop, int status, void *obj)
{
	if (hop->obj) {
		s->ops->free_obj(s, hop->id, hop->obj);
		hop->obj = NULL;
	}
	if (hop->local) {
		kddm_req_local_done(hop->local, status, obj, NULL, 0);
	} else if (status == 0 && obj && (hop->op == KRG__KDDM__OP__FETCH || hop->op == KRG__KDDM__OP__GRAB)) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int st = s->ops->export_obj(s, hop->id, obj, &buf, &len);
		k->t.reply(k->t.t, hop->from, hop->token, st, buf, st < 0 ? 0 : len);
		free(buf);
	} else {
		k->t.reply(k->t.t, hop->from, hop->token, status, NULL, 0);
	}
	kddm_hop_free(hop);
}

static bool ensure_obj(struct kddm_set *s, struct kddm_ent *e)
{
	if (e->obj)
		return true;
	void *obj = NULL;
	if (s->ops->first_touch && s->ops->first_touch(s, e->id, &obj) == 0 && obj) {
		e->obj = obj;
		return true;
	}
	return false;
}

static void inv_done(struct kddm_req *r, int status)
{
	/* A copy holder that cannot answer is down or going: its copy is
	 * dropped with it (kddm_copies_of_home_drop on its side). */
	kddm_home_inv_ack(r->s, r->id, r->to);
}

/* Ask every copy holder but keep to drop its copy; true when acks are
 * awaited (hop parked in e->cur), false when nobody holds one. */
static bool invalidate_others(struct kddm_set *s, struct kddm_ent *e, struct kddm_hop *hop, uint32_t keep)
{
	struct kddm *k = s->k;
	struct krg_nodeset inv = e->copyset;
	krg_nodeset_del(&inv, k->self);
	if (keep != KDDM_NO_NODE)
		krg_nodeset_del(&inv, keep);
	if (!krg_nodeset_count(&inv))
		return false;
	e->cur = hop;
	for (unsigned n = 0; n < KRG_MAX_NODES; n++) {
		if (!krg_nodeset_has(&inv, n))
			continue;
		krg_nodeset_del(&e->copyset, n);
		krg_nodeset_add(&e->inv_wait, n);
	}
	for (unsigned n = 0; n < KRG_MAX_NODES; n++) {
		if (!krg_nodeset_has(&inv, n))
			continue;
		struct kddm_req *r;
		if (kddm_req_start(s, e->id, KRG__KDDM__OP__INVALIDATE, NULL, 0, NULL, &r) < 0) {
			krg_nodeset_del(&e->inv_wait, n);
			continue;
		}
		r->int_cb = inv_done;
		kddm_req_send_to(r, n);
	}
	return true;
}

static void run_call(struct kddm_set *s, struct kddm_ent *e, struct kddm_hop *hop)
{
	struct kddm_call *c = calloc(1, sizeof(*c));
	if (!c) {
		kddm_hop_answer(s->k, s, hop, -ENOMEM, NULL);
		return;
	}
	c->s = s;
	c->id = e->id;
	c->hop = hop;
	s->ops->call(s, e->id, &e->obj, hop->from, hop->data, hop->len, c);
}

static void run_put(struct kddm_set *s, struct kddm_ent *e, struct kddm_hop *hop)
{
	int st = 0;
	if (e->locked_by != hop->from) {
		st = -EPERM;
	} else {
		if (hop->data) {
			void *obj = NULL;
			st = s->ops->import_obj(s, e->id, hop->data, hop->len, &obj);
			if (st == 0) {
				kddm_drop_obj(s, e);
				e->obj = obj;
			} else {
				s->k->st.rejected++;
				log_warn("kddm: node %u put back an object of set %s that does not import", hop->from,
					 s->name);
			}
		}
		/* Unlocked whatever came back: the grab is over. */
		e->locked_by = KDDM_NO_NODE;
	}
	kddm_hop_answer(s->k, s, hop, st, NULL);
}

static void run_create(struct kddm_set *s, struct kddm_ent *e, struct kddm_hop *hop)
{
	if (e->obj) {
		kddm_hop_answer(s->k, s, hop, -EEXIST, NULL);
		return;
	}
	void *obj = TAKE_PTR(hop->obj);
	int st = 0;
	if (!obj) {
		st = s->ops->import_obj(s, e->id, hop->data, hop->len, &obj);
		if (st < 0) {
			s->k->st.rejected++;
			log_warn("kddm: node %u created an object of set %s that does not import", hop->from, s->name);
		}
	}
	if (st == 0)
		e->obj = obj;
	kddm_hop_answer(s->k, s, hop, st, NULL);
}

/* The transition function: run hop on e, which is free (not locked, no
 * op waiting for acks). */
static void run(struct kddm_set *s, struct kddm_ent *e, struct kddm_hop *hop)
{
	struct kddm *k = s->k;
	switch (hop->op) {
	case KRG__KDDM__OP__FETCH:
		if (!ensure_obj(s, e)) {
			kddm_hop_answer(k, s, hop, -ENOENT, NULL);
			break;
		}
		if (hop->from != k->self)
			krg_nodeset_add(&e->copyset, hop->from);
		kddm_hop_answer(k, s, hop, 0, e->obj);
		break;
	case KRG__KDDM__OP__GRAB:
		if (!ensure_obj(s, e)) {
			kddm_hop_answer(k, s, hop, -ENOENT, NULL);
			break;
		}
		if (invalidate_others(s, e, hop, hop->from))
			break;
		e->locked_by = hop->from;
		krg_nodeset_del(&e->copyset, hop->from);
		kddm_hop_answer(k, s, hop, 0, e->obj);
		break;
	case KRG__KDDM__OP__CALL:
		if (!s->ops->call) {
			kddm_hop_answer(k, s, hop, -EOPNOTSUPP, NULL);
			break;
		}
		if (invalidate_others(s, e, hop, KDDM_NO_NODE))
			break;
		run_call(s, e, hop);
		break;
	case KRG__KDDM__OP__CREATE:
		run_create(s, e, hop);
		break;
	case KRG__KDDM__OP__REMOVE:
		if (!e->obj) {
			kddm_hop_answer(k, s, hop, -ENOENT, NULL);
			break;
		}
		if (invalidate_others(s, e, hop, KDDM_NO_NODE))
			break;
		if (s->ops->remove)
			s->ops->remove(s, e->id, e->obj);
		kddm_drop_obj(s, e);
		kddm_hop_answer(k, s, hop, 0, NULL);
		break;
	case KRG__KDDM__OP__PUT:
		run_put(s, e, hop);
		break;
	default:
		kddm_hop_answer(k, s, hop, -EINVAL, NULL);
	}
}

static bool can_run(const struct kddm_ent *e)
{
	return e->locked_by == KDDM_NO_NODE && !e->cur;
}

void kddm_home_drain(struct kddm_set *s, struct kddm_ent *e)
{
	e->busy++;
	while (e->state == ENT_MASTER && can_run(e) && e->q_head) {
		struct kddm_hop *h = e->q_head;
		e->q_head = h->next;
		if (!e->q_head)
			e->q_tail = NULL;
		h->next = NULL;
		run(s, e, h);
	}
	e->busy--;
	kddm_ent_release(s, e);
}

void kddm_home_submit(struct kddm_set *s, uint64_t id, struct kddm_hop *hop)
{
	struct kddm *k = s->k;
	hop->id = id;
	struct kddm_ent *e = kddm_ent_get(s, id, true);
	if (!e) {
		kddm_hop_answer(k, s, hop, -ENOMEM, NULL);
		return;
	}
	if (e->state == ENT_GRABBED || e->handing) {
		/* Held from a previous home, or on its way to a new one:
		 * the requester tries again once that settles. */
		kddm_hop_answer(k, s, hop, -EAGAIN, NULL);
		kddm_ent_release(s, e);
		return;
	}
	if (e->state == ENT_COPY)
		kddm_copy_invalidate(s, id); /* a copy from the old home: the master comes by HANDOVER */
	e = kddm_ent_get(s, id, true);
	if (!e) {
		kddm_hop_answer(k, s, hop, -ENOMEM, NULL);
		return;
	}
	e->state = ENT_MASTER;
	e->epoch = k->epoch;
	if (hop->op == KRG__KDDM__OP__PUT) {
		/* The lock holder itself: never queued behind its own lock. */
		e->busy++;
		run_put(s, e, hop);
		e->busy--;
		kddm_home_drain(s, e);
		return;
	}
	if (e->q_tail)
		e->q_tail->next = hop;
	else
		e->q_head = hop;
	e->q_tail = hop;
	kddm_home_drain(s, e);
}

void kddm_home_inv_ack(struct kddm_set *s, uint64_t id, uint32_t from)
{
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (!e || !krg_nodeset_has(&e->inv_wait, from))
		return;
	krg_nodeset_del(&e->inv_wait, from);
	if (krg_nodeset_count(&e->inv_wait) || !e->cur)
		return;
	struct kddm_hop *h = TAKE_PTR(e->cur);
	e->busy++;
	run(s, e, h);
	e->busy--;
	kddm_home_drain(s, e);
}

void kddm_call_done(struct kddm_call *c, int status, const void *out, size_t len)
{
	struct kddm_set *s = c->s;
	struct kddm *k = s->k;
	struct kddm_hop *hop = c->hop;
	if (hop->local)
		kddm_req_local_done(hop->local, status, NULL, out, len);
	else
		k->t.reply(k->t.t, hop->from, hop->token, status, out, status < 0 ? 0 : len);
	kddm_hop_free(hop);
	struct kddm_ent *e = kddm_ent_get(s, c->id, false);
	free(c);
	if (e)
		kddm_ent_release(s, e);
}

/* A node left the live set: it holds no copy and no lock any more. */
void kddm_home_node_down(struct kddm_set *s, uint32_t node)
{
	size_t n = s->ents.n, i = 0;
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return;
	for (size_t b = 0; b < s->ents.nb; b++)
		for (struct kddm_ent *e = s->ents.b[b]; e && i < n; e = e->hnext)
			if (e->state == ENT_MASTER)
				ids[i++] = e->id;
	for (size_t j = 0; j < i; j++) {
		struct kddm_ent *e = kddm_ent_get(s, ids[j], false);
		if (!e)
			continue;
		krg_nodeset_del(&e->copyset, node);
		if (e->locked_by == node) {
			log_info("kddm: node %u went down holding object %llu of set %s: its changes are lost", node,
				 (unsigned long long)e->id, s->name);
			e->locked_by = KDDM_NO_NODE;
		}
		e->busy++;
		kddm_home_inv_ack(s, e->id, node);
		e->busy--;
		kddm_home_drain(s, e);
	}
	free(ids);
}
