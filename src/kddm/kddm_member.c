/* kddm_member.c — what KDDM does when the live set changes.
 *
 * Homes are a function of the live set, so a change moves some homes:
 *   - up(n): objects whose hash now picks n move to n;
 *   - leaving(n): n hands everything it homes to the new homes;
 *   - down(n): n's master copies are gone; where a backup exists (the
 *     hash's second choice, kddm_sync) it becomes the master.
 * After a change every node runs a handover pass: each master copy whose
 * home is now another node goes there (HANDOVER, acked), then the node
 * sends READY to every live peer. A node serves nothing it homes until every
 * live peer has said READY since it learnt of that peer (kddm_ready), so a
 * new home never answers "no such object" for one still on its way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kddm-int.h"
#include "lib/log.h"

#define TICK_MS 20

static void member_pass(struct kddm *k);

static void tick_cb(void *arg)
{
	struct kddm_tick *t = arg;
	struct kddm *k = t->k;
	free(t);
	if (!k)
		return;
	k->tick = NULL;
	member_pass(k);
}

static void arm_tick(struct kddm *k)
{
	if (k->tick)
		return;
	struct kddm_tick *t = calloc(1, sizeof(*t));
	if (!t)
		return;
	t->k = k;
	if (k->t.later(k->t.t, TICK_MS, tick_cb, t) < 0) {
		free(t);
		return;
	}
	k->tick = t;
}

void kddm_member_free(struct kddm *k)
{
	if (k->tick)
		k->tick->k = NULL; /* the timer frees it when it fires */
	k->tick = NULL;
}

/* ---- READY -------------------------------------------------------------- */

static void ready_done(struct kddm_req *r, int status)
{
	struct kddm *k = r->k;
	if (status == 0 || !krg_nodeset_has(&k->live, r->to))
		krg_nodeset_del(&k->ready_owed, r->to);
	else
		arm_tick(k); /* link not there yet: say it again soon */
}

static void send_ready(struct kddm *k)
{
	for (unsigned n = 0; n < KRG_MAX_NODES; n++) {
		if (!krg_nodeset_has(&k->ready_owed, n))
			continue;
		if (!krg_nodeset_has(&k->live, n) || n == k->self) {
			krg_nodeset_del(&k->ready_owed, n);
			continue;
		}
		struct kddm_req *r = calloc(1, sizeof(*r));
		if (!r)
			return;
		r->k = k;
		r->op = KRG__KDDM__OP__READY;
		r->int_cb = ready_done;
		r->next = k->reqs;
		if (r->next)
			r->next->prev = r;
		k->reqs = r;
		kddm_req_send_to(r, n);
	}
}

/* Whether node said READY after applying the membership change being
 * applied here (its READY carries its epoch, kddm_set_epoch): a peer that
 * applies a change first hands over, says READY, and that may arrive
 * before this node applies the change and starts waiting for it. */
static bool ready_since(const struct kddm *k, uint32_t node)
{
	return k->epoch && k->ready_epoch[node] >= k->epoch;
}

static void await_ready(struct kddm *k, uint32_t node)
{
	krg_nodeset_add(&k->awaiting, node);
	k->await_epoch[node] = k->epoch;
}

void kddm_set_epoch(struct kddm *k, uint64_t epoch)
{
	if (epoch > k->epoch)
		k->epoch = epoch;
}

/* READY_ASK: a READY this node waits for may have come before it learnt
 * it should wait (a krgd that restarted replays old membership events:
 * a peer's leave and return clear what it had said), and the peer has no
 * reason to say it again. So it is asked, now and every ASK_TICKS ticks
 * while this node waits. */
#define ASK_TICKS 25

static void ask_done(struct kddm_req *r, int status)
{
}

static void ask_ready(struct kddm *k, uint32_t n)
{
	struct kddm_req *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->k = k;
	r->op = KRG__KDDM__OP__READY_ASK;
	r->int_cb = ask_done;
	r->next = k->reqs;
	if (r->next)
		r->next->prev = r;
	k->reqs = r;
	kddm_req_send_to(r, n);
}

static void ask_awaited(struct kddm *k)
{
	k->ask_ticks = 0;
	for (unsigned n = 0; n < KRG_MAX_NODES; n++)
		if (krg_nodeset_has(&k->awaiting, n))
			ask_ready(k, n); /* up, or leaving: it still owes its READY */
}

/* ---- handover ----------------------------------------------------------- */

static void handover_done(struct kddm_req *r, int status)
{
	struct kddm_set *s = r->s;
	struct kddm_ent *e = kddm_ent_get(s, r->id, false);
	if (!e)
		return;
	e->handing = false;
	if (status == 0 || status == -EEXIST) {
		if (status == -EEXIST)
			log_warn("kddm: node %u already had object %llu of set %s: kept its copy", r->to,
				 (unsigned long long)r->id, s->name);
		s->k->st.handed_over++;
		kddm_drop_obj(s, e);
		e->state = ENT_NONE;
		e->copyset = (struct krg_nodeset){ 0 };
		/* Ops that arrived meanwhile go to the new home. */
		struct kddm_hop *h;
		while ((h = e->q_head)) {
			e->q_head = h->next;
			kddm_hop_answer(s->k, s, h, -EAGAIN, NULL);
		}
		e->q_tail = NULL;
		kddm_ent_release(s, e);
	} else {
		s->k->pass_dirty = true; /* try again on the next tick */
		kddm_home_drain(s, e);
	}
	arm_tick(s->k);
}

/* Send e's master copy to its new home; false when it cannot go now. */
static bool hand_over(struct kddm_set *s, struct kddm_ent *e, uint32_t to)
{
	if (e->busy || e->cur || e->q_head || e->handing || e->locked_by != KDDM_NO_NODE)
		return false;
	struct kddm_req *r;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (s->ops->export_obj(s, e->id, e->obj, &buf, &len) < 0)
		return false;
	int st = kddm_req_start(s, e->id, KRG__KDDM__OP__HANDOVER, buf, len, NULL, &r);
	free(buf);
	if (st < 0)
		return false;
	e->handing = true;
	r->int_cb = handover_done;
	r->copyset = &e->copyset;
	kddm_req_send_to(r, to);
	return true;
}

static void backup_one(struct kddm_set *s, struct kddm_ent *e, kddm_done_cb cb, void *data);

/* One pass over every master copy: hand over what moved, refresh
 * backups. True when nothing was left for later. */
static bool set_pass(struct kddm_set *s)
{
	struct kddm *k = s->k;
	bool done = true;
	size_t n = s->ents.n, i = 0;
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return false;
	for (size_t b = 0; b < s->ents.nb; b++)
		for (struct kddm_ent *e = s->ents.b[b]; e && i < n; e = e->hnext)
			if (e->state == ENT_MASTER && e->obj)
				ids[i++] = e->id;
	for (size_t j = 0; j < i; j++) {
		struct kddm_ent *e = kddm_ent_get(s, ids[j], false);
		if (!e || e->state != ENT_MASTER || !e->obj)
			continue;
		uint32_t home = kddm_home(s, e->id);
		if (home == KDDM_NO_NODE || home == k->self) {
			if (k->backup)
				backup_one(s, e, NULL, NULL);
			continue;
		}
		if (e->handing || !hand_over(s, e, home))
			done = false;
	}
	free(ids);
	return done;
}

static void member_pass(struct kddm *k)
{
	if (!kddm_ready(k)) {
		if (++k->ask_ticks >= ASK_TICKS)
			ask_awaited(k);
		arm_tick(k);
	}
	if (k->pass_dirty) {
		bool done = true;
		for (struct kddm_set *s = k->sets; s; s = s->next)
			done &= set_pass(s);
		if (!done) {
			arm_tick(k);
			return;
		}
		k->pass_dirty = false;
		/* Everything that moved has been acked: tell the peers that may
		 * wait for it (the nodes that changed, and everyone when this
		 * node did), not every live peer after every change: that was
		 * N messages per node per change, N³ while N nodes form. A peer
		 * that waits for a READY not sent asks (READY_ASK). */
		for (size_t w = 0; w < ARRAY_SIZE(k->live.bits); w++)
			k->ready_owed.bits[w] |= k->live.bits[w] & (k->ready_all ? ~0ull : k->ready_to.bits[w]);
		krg_nodeset_del(&k->ready_owed, k->self);
		k->ready_to = (struct krg_nodeset){ 0 };
		k->ready_all = false;
	}
	send_ready(k);
}

/* A backup whose home is gone becomes the master where the hash says. */
static void promote(struct kddm_set *s, uint32_t dead)
{
	struct kddm *k = s->k;
	size_t n = s->shadows.n, i = 0;
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return;
	for (size_t b = 0; b < s->shadows.nb; b++)
		for (struct kddm_shadow *sh = s->shadows.b[b]; sh && i < n; sh = sh->hnext)
			if (sh->home == dead)
				ids[i++] = sh->id;
	for (size_t j = 0; j < i; j++) {
		struct kddm_shadow *sh = kddm_map_del(&s->shadows, ids[j]);
		if (!sh)
			continue;
		uint32_t home = kddm_home(s, sh->id);
		struct kddm_ent *e = kddm_ent_get(s, sh->id, true);
		void *obj = NULL;
		if (home != KDDM_NO_NODE && e && !(e->state == ENT_MASTER && e->obj) &&
		    s->ops->import_obj(s, sh->id, sh->data, sh->len, &obj) == 0) {
			if (e->state == ENT_COPY)
				kddm_drop_obj(s, e);
			e->state = ENT_MASTER;
			e->epoch = k->epoch;
			e->obj = obj;
			e->copyset = (struct krg_nodeset){ 0 };
			k->st.promoted++;
			/* Not the hash's choice here (a set policy): the pass
			 * hands it on. */
		}
		if (e)
			kddm_home_drain(s, e);
		free(sh->data);
		free(sh);
	}
	free(ids);
}

void kddm_member_changed(struct kddm *k)
{
	k->pass_dirty = true;
	member_pass(k);
}

/* ---- events ------------------------------------------------------------- */

void kddm_node_up(struct kddm *k, uint32_t node)
{
	if (node >= KRG_MAX_NODES)
		return;
	if (node == k->self) {
		/* Added again after a clean leave, same process (krgadm nodes
		 * del, then nodes add): a home again. Without this the node
		 * stayed out of its own live set, never the home of anything,
		 * and answered -EAGAIN to every request the others sent it
		 * (they retried ~40 s, kddm_req.c, before giving up). */
		if (k->down_self) {
			/* Back after being declared down: the others may hand
			 * it what it homes again; serve nothing until they did. */
			k->down_self = false;
			krg_nodeset_add(&k->live, node);
			for (unsigned n = 0; n < KRG_MAX_NODES; n++)
				if (n != node && krg_nodeset_has(&k->live, n) && !ready_since(k, n)) {
					krg_nodeset_del(&k->got_ready, n);
					await_ready(k, n);
					ask_ready(k, n);
				}
			kddm_member_changed(k);
			return;
		}
		if (!k->leaving_self)
			return;
		k->leaving_self = false;
		krg_nodeset_add(&k->live, node);
		k->ready_all = true;
		kddm_member_changed(k);
		return;
	}
	if (krg_nodeset_has(&k->live, node))
		return;
	krg_nodeset_add(&k->live, node);
	krg_nodeset_add(&k->ready_to, node); /* it waits for every live peer */
	/* It may hold what this node now homes (this node is new, or was
	 * cut off): serve nothing until it says READY. */
	if (!krg_nodeset_has(&k->got_ready, node) && !ready_since(k, node)) {
		await_ready(k, node);
		ask_ready(k, node);
	}
	kddm_member_changed(k);
}

/* This node was declared down while it ran on (cut off from the
 * majority; it learns it once it hears the cluster again and applies the
 * log). The others promoted the backups of what it homed, or lost them,
 * and forgot its copies and locks: what it held from before that epoch
 * is stale. Its master copies made before it go (a HANDOVER from a node
 * that applied later changes may have brought newer ones already, which
 * stay), and so do its read copies and the backups it kept for others
 * (their homes send fresh ones); it homes nothing new until it is up
 * again, then waits for every peer's READY as a node that joins does. */
static void drop_stale_master(struct kddm_set *s, struct kddm_ent *e)
{
	kddm_drop_obj(s, e);
	e->state = ENT_NONE;
	e->copyset = (struct krg_nodeset){ 0 };
	s->k->st.fenced++;
	struct kddm_hop *h;
	while ((h = e->q_head)) {
		e->q_head = h->next;
		kddm_hop_answer(s->k, s, h, -EAGAIN, NULL); /* asked again at the new home */
	}
	e->q_tail = NULL;
	kddm_ent_release(s, e);
}

static void fence_self(struct kddm *k)
{
	uint64_t dropped = k->st.fenced;
	for (struct kddm_set *s = k->sets; s; s = s->next) {
		size_t n = s->ents.n, i = 0;
		uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
		if (!ids)
			continue;
		for (size_t b = 0; b < s->ents.nb; b++)
			for (struct kddm_ent *e = s->ents.b[b]; e && i < n; e = e->hnext)
				if (e->state == ENT_MASTER && e->epoch < k->epoch)
					ids[i++] = e->id;
		for (size_t j = 0; j < i; j++) {
			struct kddm_ent *e = kddm_ent_get(s, ids[j], false);
			/* One with a caller on the stack or an op under way
			 * goes once that ends (a newer master replaces it). */
			if (e && !e->busy && !e->cur && !e->handing)
				drop_stale_master(s, e);
		}
		free(ids);
		n = s->shadows.n;
		i = 0;
		ids = malloc((n ? n : 1) * sizeof(*ids));
		if (!ids)
			continue;
		for (size_t b = 0; b < s->shadows.nb; b++)
			for (struct kddm_shadow *sh = s->shadows.b[b]; sh && i < n; sh = sh->hnext)
				ids[i++] = sh->id;
		for (size_t j = 0; j < i; j++) {
			struct kddm_shadow *sh = kddm_map_del(&s->shadows, ids[j]);
			if (sh) {
				free(sh->data);
				free(sh);
			}
		}
		free(ids);
	}
	kddm_copies_of_home_drop(k, KDDM_NO_NODE);
	k->down_self = true;
	krg_nodeset_del(&k->live, k->self);
	log_warn("kddm: this node was declared down while cut off (epoch %llu): %llu master cop%s made before then dropped "
		 "(the majority's stand)",
		 (unsigned long long)k->epoch, (unsigned long long)(k->st.fenced - dropped),
		 k->st.fenced - dropped == 1 ? "y" : "ies");
	/* No handover pass: what it holds now came from the majority after
	 * that epoch and is homed here again once it is up (a pass would
	 * send it to a node that does not pass it back). */
}

void kddm_node_down(struct kddm *k, uint32_t node)
{
	if (node == k->self) {
		/* Removed after a clean leave: it handed everything over. */
		if (!k->leaving_self)
			fence_self(k);
		return;
	}
	if (node >= KRG_MAX_NODES)
		return;
	bool was_live = krg_nodeset_has(&k->live, node);
	krg_nodeset_del(&k->live, node);
	krg_nodeset_del(&k->awaiting, node);
	krg_nodeset_del(&k->got_ready, node);
	krg_nodeset_del(&k->ready_owed, node);
	kddm_copies_of_home_drop(k, node);
	for (struct kddm_set *s = k->sets; s; s = s->next) {
		kddm_home_node_down(s, node);
		promote(s, node);
		if (s->ops->node_down)
			s->ops->node_down(s, node);
	}
	if (was_live)
		kddm_member_changed(k);
}

void kddm_node_leaving(struct kddm *k, uint32_t node)
{
	if (node >= KRG_MAX_NODES)
		return;
	if (node == k->self) {
		/* Out of the hash: every master copy here has a new home. */
		k->leaving_self = true;
		krg_nodeset_del(&k->live, node);
		k->ready_all = true; /* every peer waits for what this node hands over */
	} else {
		if (!krg_nodeset_has(&k->live, node))
			return;
		krg_nodeset_del(&k->live, node);
		krg_nodeset_del(&k->got_ready, node);
		krg_nodeset_add(&k->ready_to, node);
		/* Its objects come here by HANDOVER, then its READY, unless
		 * that READY (sent once it had applied this change) came
		 * first. */
		if (!ready_since(k, node))
			await_ready(k, node);
	}
	kddm_member_changed(k);
}

/* ---- backups ------------------------------------------------------------ */

struct sync_ctx {
	kddm_done_cb cb;
	void *data;
};

static void backup_done(struct kddm_req *r, int status)
{
	if (r->done_cb)
		r->done_cb(r->k, status, r->cbdata);
}

static void backup_one(struct kddm_set *s, struct kddm_ent *e, kddm_done_cb cb, void *data)
{
	struct kddm *k = s->k;
	uint32_t to = kddm_backup_node(s, e ? e->id : 0, k->self);
	uint8_t *buf = NULL;
	size_t len = 0;
	int st = e && e->obj ? s->ops->export_obj(s, e->id, e->obj, &buf, &len) : 0;
	struct kddm_req *r;
	if (st == 0)
		st = kddm_req_start(s, e->id, KRG__KDDM__OP__BACKUP, buf, len, NULL, &r);
	free(buf);
	if (st < 0) {
		if (cb)
			cb(k, st, data);
		return;
	}
	r->int_cb = backup_done;
	r->done_cb = cb;
	r->cbdata = data;
	if (!(e && e->obj)) {
		free(r->data); /* no data: "removed" */
		r->data = NULL;
		r->len = 0;
	}
	kddm_req_send_to(r, to);
}

int kddm_sync(struct kddm_set *s, uint64_t id, kddm_done_cb cb, void *data)
{
	struct kddm *k = s->k;
	if (!k->backup || kddm_backup_node(s, id, k->self) == KDDM_NO_NODE) {
		if (cb)
			cb(k, 0, data);
		return 0;
	}
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (e && e->state != ENT_MASTER)
		return -EPERM;
	struct kddm_ent gone = { .id = id };
	backup_one(s, e ? e : &gone, cb, data);
	return 0;
}

static void take_backup(struct kddm *k, struct kddm_set *s, uint32_t from, const Krg__Kddm__Msg *m)
{
	struct kddm_shadow *sh = kddm_map_del(&s->shadows, m->id);
	if (!m->has_data) {
		if (sh) {
			free(sh->data);
			free(sh);
		}
		return;
	}
	if (!sh && !(sh = calloc(1, sizeof(*sh))))
		return;
	free(sh->data);
	sh->data = malloc(m->data.len ? m->data.len : 1);
	if (!sh->data) {
		free(sh);
		return;
	}
	if (m->data.len) /* empty bytes may come as NULL */
		memcpy(sh->data, m->data.data, m->data.len);
	sh->len = m->data.len;
	sh->id = m->id;
	sh->home = from;
	if (kddm_map_put(&s->shadows, m->id, sh) < 0) {
		free(sh->data);
		free(sh);
	}
}

/* HANDOVER: a master copy that this node homes now. */
static int take_handover(struct kddm *k, struct kddm_set *s, uint32_t from, const Krg__Kddm__Msg *m)
{
	if (!m->has_data)
		return -EBADMSG;
	for (size_t i = 0; i < m->n_copyset; i++)
		if (m->copyset[i] >= KRG_MAX_NODES)
			return -EBADMSG;
	struct kddm_ent *e = kddm_ent_get(s, m->id, true);
	if (!e)
		return -ENOMEM;
	uint64_t epoch = m->has_epoch ? m->epoch : k->epoch;
	/* Two masters only after a partition: the one made under the newer
	 * membership is the majority's (this one was declared down, and the
	 * sender promoted a backup); an equal or older one is refused. */
	bool stale = e->state == ENT_MASTER && e->obj && m->has_epoch && e->epoch < m->epoch && !e->busy &&
		     !e->cur && !e->q_head && !e->handing && e->locked_by == KDDM_NO_NODE;
	if (e->state == ENT_MASTER && e->obj && !stale)
		return -EEXIST;
	void *obj = NULL;
	int st = s->ops->import_obj(s, m->id, m->data.data, m->data.len, &obj);
	if (st < 0) {
		kddm_ent_release(s, e);
		return st;
	}
	if (stale) {
		log_warn("kddm: object %llu of set %s: node %u's master copy (epoch %llu) replaces this node's (epoch "
			 "%llu), made before this node was cut off",
			 (unsigned long long)m->id, s->name, from, (unsigned long long)m->epoch,
			 (unsigned long long)e->epoch);
		k->st.fenced++;
	}
	if (e->state == ENT_COPY || stale)
		kddm_drop_obj(s, e);
	e->state = ENT_MASTER;
	e->epoch = epoch;
	e->obj = obj;
	e->copyset = (struct krg_nodeset){ 0 };
	for (size_t i = 0; i < m->n_copyset; i++)
		if (m->copyset[i] != k->self)
			krg_nodeset_add(&e->copyset, m->copyset[i]);
	/* What the backup node kept for the old home is stale now: the next
	 * pass here refreshes the backup. */
	if (k->backup)
		backup_one(s, e, NULL, NULL);
	return 0;
}

void kddm_member_deliver(struct kddm *k, struct kddm_set *s, uint32_t from, const Krg__Kddm__Msg *m,
			 uint64_t token)
{
	int st = 0;
	switch (m->op) {
	case KRG__KDDM__OP__READY:
		if (m->has_epoch && m->epoch > k->ready_epoch[from])
			k->ready_epoch[from] = m->epoch;
		/* Sent before it applied the change this node waits on: its
		 * state may not be handed over yet. */
		if (m->has_epoch && krg_nodeset_has(&k->awaiting, from) && m->epoch < k->await_epoch[from])
			break;
		krg_nodeset_add(&k->got_ready, from);
		krg_nodeset_del(&k->awaiting, from);
		break;
	case KRG__KDDM__OP__READY_ASK:
		/* Truthful now unless a pass is handing objects over: that
		 * pass ends with a READY to every live peer anyway. */
		if (krg_nodeset_has(&k->live, from) && !k->pass_dirty) {
			krg_nodeset_add(&k->ready_owed, from);
			send_ready(k);
		}
		break;
	case KRG__KDDM__OP__BACKUP:
		take_backup(k, s, from, m);
		break;
	case KRG__KDDM__OP__HANDOVER:
		st = take_handover(k, s, from, m);
		if (st == -EBADMSG) {
			k->st.rejected++;
			log_warn("kddm: node %u handed over object %llu of set %s that does not import", from,
				 (unsigned long long)m->id, s->name);
		}
		break;
	default:
		st = -EINVAL;
	}
	if (token)
		k->t.reply(k->t.t, from, token, st, NULL, 0);
}
