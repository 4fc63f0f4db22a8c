/* kddm_req.c — the requesting side: every operation starts here, goes to
 * the object's home (this node's home side directly, or a peer through the
 * transport), is retried while the home moves or is not ready, and ends in
 * exactly one callback. Read copies fetched from a home are cached here
 * until the home invalidates them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kddm-int.h"
#include "lib/log.h"

/* About 40 s of retries (5 ms doubling to 500 ms): longer than the
 * membership's failure detection plus an election, so a home that died is
 * replaced before a request gives up. */
#define MAX_ATTEMPTS 90

static void req_send(struct kddm_req *r);

static void req_unlink(struct kddm_req *r)
{
	struct kddm *k = r->k;
	if (r->prev)
		r->prev->next = r->next;
	else if (k && k->reqs == r)
		k->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void req_free(struct kddm_req *r)
{
	if (r->obj && r->s && r->k)
		r->s->ops->free_obj(r->s, r->id, r->obj);
	free(r->data);
	free(r);
}

int kddm_req_start(struct kddm_set *s, uint64_t id, Krg__Kddm__Op op, const void *in, size_t len, void *obj,
		   struct kddm_req **out)
{
	struct kddm_req *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (in) {
		r->data = malloc(len ? len : 1);
		if (!r->data) {
			free(r);
			return -ENOMEM;
		}
		memcpy(r->data, in, len);
		r->len = len;
	}
	r->k = s->k;
	r->s = s;
	r->id = id;
	r->op = op;
	r->obj = obj;
	r->to = KDDM_NO_NODE;
	r->next = s->k->reqs;
	if (r->next)
		r->next->prev = r;
	s->k->reqs = r;
	*out = r;
	return 0;
}

/* Call the user's callback once and forget the request. */
static void req_complete(struct kddm_req *r, int status, void *obj, const uint8_t *out, size_t len)
{
	struct kddm *k = r->k;
	req_unlink(r);
	if (r->int_cb) {
		r->int_cb(r, status);
		req_free(r);
		return;
	}
	switch (r->op) {
	case KRG__KDDM__OP__FETCH:
	case KRG__KDDM__OP__GRAB:
		if (r->obj_cb)
			r->obj_cb(k, status, status < 0 ? NULL : obj, r->cbdata);
		break;
	case KRG__KDDM__OP__CALL:
		if (r->call_cb)
			r->call_cb(k, status, status < 0 ? NULL : out, status < 0 ? 0 : len, r->cbdata);
		break;
	default:
		if (r->done_cb)
			r->done_cb(k, status, r->cbdata);
		break;
	}
	req_free(r);
}

void kddm_req_local_done(struct kddm_req *r, int status, void *obj, const uint8_t *out, size_t len)
{
	req_complete(r, status, obj, out, len);
}

static void retry_cb(void *arg)
{
	struct kddm_req *r = arg;
	if (!r->k) {
		req_free(r);
		return;
	}
	r->in_flight = false;
	req_send(r);
}

static void req_retry(struct kddm_req *r, int status)
{
	struct kddm *k = r->k;
	if (++r->attempts >= MAX_ATTEMPTS) {
		req_complete(r, status == -EAGAIN ? -EHOSTUNREACH : status, NULL, NULL, 0);
		return;
	}
	k->st.retries++;
	unsigned ms = 5u << (r->attempts < 7 ? r->attempts : 7);
	if (ms > 500)
		ms = 500;
	r->in_flight = true; /* the timer holds it now */
	if (k->t.later(k->t.t, ms, retry_cb, r) < 0) {
		r->in_flight = false;
		req_complete(r, status, NULL, NULL, 0);
	}
}

/* The peer's reply to a FETCH or GRAB: keep the object here. */
static void take_object(struct kddm_req *r, const uint8_t *body, size_t len)
{
	struct kddm_set *s = r->s;
	void *obj = NULL;
	int st = s->ops->import_obj(s, r->id, body, len, &obj);
	if (st < 0) {
		r->k->st.rejected++;
		log_warn("kddm: node %u sent an object of set %s that does not import: %s", r->to, s->name,
			 strerror(-st));
		req_complete(r, st, NULL, NULL, 0);
		return;
	}
	struct kddm_ent *e = kddm_ent_get(s, r->id, true);
	if (!e || e->state == ENT_MASTER || e->state == ENT_GRABBED) {
		/* The object came home meanwhile, or is already held: never
		 * replace a master or a grabbed copy with a stale one. */
		s->ops->free_obj(s, r->id, obj);
		req_complete(r, e ? -EAGAIN : -ENOMEM, NULL, NULL, 0);
		return;
	}
	kddm_drop_obj(s, e);
	e->obj = obj;
	e->state = r->op == KRG__KDDM__OP__GRAB ? ENT_GRABBED : ENT_COPY;
	e->copy_home = r->to;
	e->busy++;
	req_complete(r, 0, obj, NULL, 0);
	e->busy--;
	kddm_ent_release(s, e);
}

static bool retryable(const struct kddm_req *r, int status)
{
	if (r->op != KRG__KDDM__OP__FETCH && r->op != KRG__KDDM__OP__GRAB && r->op != KRG__KDDM__OP__CREATE &&
	    r->op != KRG__KDDM__OP__REMOVE && r->op != KRG__KDDM__OP__CALL)
		return false; /* sent to one node on purpose (a put goes to the grantor) */
	/* -ENOPROTOOPT: the set is not started there yet. -EHOSTUNREACH:
	 * never sent. -ECONNRESET: the link fell; the home may have died and
	 * be replaced. -ETIMEDOUT is not retried: it may have been done. */
	return status == -EAGAIN || status == -ENOPROTOOPT || status == -EHOSTUNREACH || status == -ECONNRESET;
}

static void req_reply(void *ctx, int status, const uint8_t *body, size_t len)
{
	struct kddm_req *r = ctx;
	r->in_flight = false;
	if (!r->k) {
		req_free(r);
		return;
	}
	if (status < 0 && retryable(r, status)) {
		req_retry(r, status);
		return;
	}
	if (status == 0 && (r->op == KRG__KDDM__OP__FETCH || r->op == KRG__KDDM__OP__GRAB)) {
		take_object(r, body, len);
		return;
	}
	req_complete(r, status, NULL, body, len);
}

static int req_export_obj(struct kddm_req *r)
{
	if (r->data || !r->obj)
		return 0;
	return r->s->ops->export_obj(r->s, r->id, r->obj, &r->data, &r->len);
}

static void req_send(struct kddm_req *r)
{
	struct kddm *k = r->k;
	struct kddm_set *s = r->s;
	bool fixed = r->op == KRG__KDDM__OP__PUT || r->op == KRG__KDDM__OP__INVALIDATE ||
		     r->op == KRG__KDDM__OP__HANDOVER || r->op == KRG__KDDM__OP__BACKUP ||
		     r->op == KRG__KDDM__OP__READY || r->op == KRG__KDDM__OP__READY_ASK;
	uint32_t home = fixed ? r->to : kddm_home(s, r->id);
	if (home == KDDM_NO_NODE) {
		req_complete(r, -EHOSTUNREACH, NULL, NULL, 0);
		return;
	}
	if (home == k->self && !fixed) {
		if (!kddm_ready(k)) {
			req_retry(r, -EAGAIN);
			return;
		}
		struct kddm_hop *h = calloc(1, sizeof(*h));
		if (!h) {
			req_complete(r, -ENOMEM, NULL, NULL, 0);
			return;
		}
		h->op = r->op;
		h->from = k->self;
		h->local = r;
		h->obj = TAKE_PTR(r->obj);
		if (r->op != KRG__KDDM__OP__CREATE) {
			h->data = r->data; /* borrowed from r: it outlives the hop */
			h->len = r->len;
		}
		kddm_home_submit(s, r->id, h);
		return;
	}
	int st = r->op == KRG__KDDM__OP__CREATE ? req_export_obj(r) : 0;
	if (st < 0) {
		req_complete(r, st, NULL, NULL, 0);
		return;
	}
	r->to = home;
	r->in_flight = true;
	st = kddm_send_msg(k, home, r->op, s ? s->wire_id : 0, r->id, r->data, r->len, r->data != NULL,
			   r->copyset, req_reply, r);
	if (st < 0) {
		r->in_flight = false;
		if (retryable(r, st))
			req_retry(r, st);
		else
			req_complete(r, st, NULL, NULL, 0);
	}
}

void kddm_req_send_to(struct kddm_req *r, uint32_t to)
{
	r->to = to;
	req_send(r);
}

static void req_abandon(struct kddm *k, struct kddm_req *r, int status)
{
	bool pending = r->in_flight;
	req_unlink(r);
	r->k = NULL; /* a transport or timer callback still holds it */
	switch (r->int_cb ? 0 : r->op) {
	case 0:
		break;
	case KRG__KDDM__OP__FETCH:
	case KRG__KDDM__OP__GRAB:
		if (r->obj_cb)
			r->obj_cb(k, status, NULL, r->cbdata);
		break;
	case KRG__KDDM__OP__CALL:
		if (r->call_cb)
			r->call_cb(k, status, NULL, 0, r->cbdata);
		break;
	default:
		if (r->done_cb)
			r->done_cb(k, status, r->cbdata);
	}
	if (r->obj)
		r->s->ops->free_obj(r->s, r->id, r->obj);
	r->obj = NULL;
	if (!pending)
		req_free(r);
}

void kddm_req_fail_all(struct kddm *k, int status)
{
	while (k->reqs)
		req_abandon(k, k->reqs, status);
}

void kddm_req_fail_set(struct kddm *k, struct kddm_set *s, int status)
{
	for (struct kddm_req *r = k->reqs, *next; r; r = next) {
		next = r->next;
		if (r->s == s) {
			req_abandon(k, r, status);
			next = k->reqs; /* a callback may have changed the list */
		}
	}
}

/* ---- the operations ----------------------------------------------------- */

/* The callback a request ends with (one of the three) and its data. */
struct req_cbs {
	kddm_obj_cb obj;
	kddm_done_cb done;
	kddm_call_cb call;
	void *data;
};

static int start(struct kddm_set *s, uint64_t id, Krg__Kddm__Op op, const void *in, size_t len, void *obj,
		 struct req_cbs cbs, struct kddm_req **out)
{
	int r = kddm_req_start(s, id, op, in, len, obj, out);
	if (r < 0) {
		if (obj)
			s->ops->free_obj(s, id, obj);
		return r;
	}
	(*out)->obj_cb = cbs.obj;
	(*out)->done_cb = cbs.done;
	(*out)->call_cb = cbs.call;
	(*out)->cbdata = cbs.data;
	return r;
}

/* start, then send at once (every operation but put, which lets go of its
 * copy in between). */
static int start_send(struct kddm_set *s, uint64_t id, Krg__Kddm__Op op, const void *in, size_t len, void *obj,
		      struct req_cbs cbs)
{
	struct kddm_req *r;
	int st = start(s, id, op, in, len, obj, cbs, &r);
	if (st < 0)
		return st;
	req_send(r);
	return 0;
}

int kddm_fetch(struct kddm_set *s, uint64_t id, kddm_obj_cb cb, void *data)
{
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (e && (e->state == ENT_COPY || e->state == ENT_GRABBED) && e->obj) {
		/* A valid copy: the home would have invalidated it otherwise. */
		e->busy++;
		cb(s->k, 0, e->obj, data);
		e->busy--;
		kddm_ent_release(s, e);
		return 0;
	}
	return start_send(s, id, KRG__KDDM__OP__FETCH, NULL, 0, NULL, (struct req_cbs){ .obj = cb, .data = data });
}

int kddm_grab(struct kddm_set *s, uint64_t id, kddm_obj_cb cb, void *data)
{
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (e && e->state == ENT_GRABBED)
		return -EBUSY; /* this node holds it already: put it first */
	return start_send(s, id, KRG__KDDM__OP__GRAB, NULL, 0, NULL, (struct req_cbs){ .obj = cb, .data = data });
}

int kddm_put(struct kddm_set *s, uint64_t id, bool dirty, kddm_done_cb cb, void *data)
{
	struct kddm *k = s->k;
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (!e)
		return -ENOENT;
	if (e->state == ENT_MASTER) {
		if (e->locked_by != k->self)
			return -EPERM;
		e->locked_by = KDDM_NO_NODE;
		e->busy++;
		if (cb)
			cb(k, 0, data);
		e->busy--;
		kddm_home_drain(s, e);
		return 0;
	}
	if (e->state != ENT_GRABBED)
		return -EPERM;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (dirty) {
		int st = s->ops->export_obj(s, id, e->obj, &buf, &len);
		if (st < 0)
			return st;
	}
	struct kddm_req *r;
	int st = start(s, id, KRG__KDDM__OP__PUT, buf, len, NULL, (struct req_cbs){ .done = cb, .data = data }, &r);
	free(buf);
	if (st < 0)
		return st;
	r->to = e->copy_home;
	/* The copy stops being ours now: the home has the only truth. */
	kddm_drop_obj(s, e);
	e->state = ENT_NONE;
	kddm_ent_release(s, e);
	req_send(r);
	return 0;
}

int kddm_create(struct kddm_set *s, uint64_t id, void *obj, kddm_done_cb cb, void *data)
{
	if (!obj)
		return -EINVAL;
	return start_send(s, id, KRG__KDDM__OP__CREATE, NULL, 0, obj, (struct req_cbs){ .done = cb, .data = data });
}

int kddm_remove(struct kddm_set *s, uint64_t id, kddm_done_cb cb, void *data)
{
	return start_send(s, id, KRG__KDDM__OP__REMOVE, NULL, 0, NULL, (struct req_cbs){ .done = cb, .data = data });
}

int kddm_call(struct kddm_set *s, uint64_t id, const void *in, size_t len, kddm_call_cb cb, void *data)
{
	if (!s->ops->call)
		return -EOPNOTSUPP;
	return start_send(s, id, KRG__KDDM__OP__CALL, in ? in : "", in ? len : 0, NULL,
			  (struct req_cbs){ .call = cb, .data = data });
}

/* ---- copies ------------------------------------------------------------- */

void kddm_copy_invalidate(struct kddm_set *s, uint64_t id)
{
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	if (!e || e->state != ENT_COPY)
		return;
	if (s->ops->invalidate && e->obj)
		s->ops->invalidate(s, id, e->obj);
	kddm_drop_obj(s, e);
	e->state = ENT_NONE;
	kddm_ent_release(s, e);
}

struct drop_ctx {
	struct kddm_set *s;
	uint32_t home;
};

static void drop_copy_of(void *elem, void *data)
{
	struct drop_ctx *c = data;
	struct kddm_ent *e = elem;
	if (e->state == ENT_COPY && (c->home == KDDM_NO_NODE || e->copy_home == c->home))
		kddm_copy_invalidate(c->s, e->id);
}

void kddm_copies_of_home_drop(struct kddm *k, uint32_t home)
{
	for (struct kddm_set *s = k->sets; s; s = s->next) {
		struct drop_ctx c = { .s = s, .home = home };
		kddm_map_each(&s->ents, drop_copy_of, &c);
	}
}
