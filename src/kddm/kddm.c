/* kddm.c — a KDDM instance: sets, the object map, homes by rendezvous
 * hash, and the dispatch of peers' messages (validated here, once). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kddm-int.h"
#include "lib/log.h"

/* ---- map ---------------------------------------------------------------- */

#define CHAIN(m, e) (*(void **)((char *)(e) + (m)->next_off))

static size_t bucket(const struct kddm_map *m, uint64_t id)
{
	/* ids are often sequential or structured (node << 16 | slot): mix. */
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 32) & (m->nb - 1);
}

static uint64_t elem_id(const void *e)
{
	/* Both element kinds start with their uint64_t id. */
	return *(const uint64_t *)e;
}

void *kddm_map_get(const struct kddm_map *m, uint64_t id)
{
	if (!m->nb)
		return NULL;
	for (void *e = m->b[bucket(m, id)]; e; e = CHAIN(m, e))
		if (elem_id(e) == id)
			return e;
	return NULL;
}

static int map_grow(struct kddm_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	void **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	struct kddm_map n = { .b = b, .nb = nb, .n = m->n, .next_off = m->next_off };
	for (size_t i = 0; i < m->nb; i++) {
		void *e = m->b[i];
		while (e) {
			void *next = CHAIN(m, e);
			size_t j = bucket(&n, elem_id(e));
			CHAIN(m, e) = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->b);
	*m = n;
	return 0;
}

int kddm_map_put(struct kddm_map *m, uint64_t id, void *elem)
{
	if (m->n >= m->nb) {
		int r = map_grow(m);
		if (r < 0)
			return r;
	}
	size_t i = bucket(m, id);
	CHAIN(m, elem) = m->b[i];
	m->b[i] = elem;
	m->n++;
	return 0;
}

void *kddm_map_del(struct kddm_map *m, uint64_t id)
{
	if (!m->nb)
		return NULL;
	void **pp = &m->b[bucket(m, id)];
	for (void *e = *pp; e; pp = &CHAIN(m, e), e = *pp) {
		if (elem_id(e) == id) {
			*pp = CHAIN(m, e);
			m->n--;
			return e;
		}
	}
	return NULL;
}

void kddm_map_each(struct kddm_map *m, void (*fn)(void *elem, void *data), void *data)
{
	for (size_t i = 0; i < m->nb; i++) {
		void *e = m->b[i];
		while (e) {
			void *next = CHAIN(m, e);
			fn(e, data);
			e = next;
		}
	}
}

/* ---- instance and sets -------------------------------------------------- */

int kddm_new(uint32_t self, const struct kddm_transport *t, struct kddm **out)
{
	if (self >= KRG_MAX_NODES || !t || t->version != KDDM_TRANSPORT_V1 || !t->request || !t->reply || !t->send ||
	    !t->later)
		return -EINVAL;
	struct kddm *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->self = self;
	k->t = *t;
	krg_nodeset_add(&k->live, self);
	*out = k;
	return 0;
}

uint32_t kddm_self(const struct kddm *k)
{
	return k->self;
}

static void free_ent(void *elem, void *data)
{
	struct kddm_set *s = data;
	struct kddm_ent *e = elem;
	struct kddm_hop *h;
	while ((h = e->q_head)) {
		e->q_head = h->next;
		kddm_hop_answer(s->k, s, h, -ECANCELED, NULL);
	}
	if (e->cur)
		kddm_hop_answer(s->k, s, e->cur, -ECANCELED, NULL);
	if (e->obj)
		s->ops->free_obj(s, e->id, e->obj);
	free(e);
}

static void free_shadow(void *elem, void *data)
{
	struct kddm_shadow *sh = elem;
	free(sh->data);
	free(sh);
}

void kddm_free(struct kddm *k)
{
	if (!k)
		return;
	kddm_member_free(k);
	/* Ops queued at homes here first (they may be this node's own
	 * requests), then what is still in flight. */
	for (struct kddm_set *s = k->sets; s; s = s->next) {
		kddm_map_each(&s->ents, free_ent, s);
		free(s->ents.b);
		s->ents = (struct kddm_map){ .next_off = s->ents.next_off };
	}
	kddm_req_fail_all(k, -ECANCELED);
	struct kddm_set *s;
	while ((s = k->sets)) {
		k->sets = s->next;
		kddm_map_each(&s->shadows, free_shadow, s);
		free(s->ents.b);
		free(s->shadows.b);
		free(s->name);
		free(s);
	}
	free(k);
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	/* 0 is READY's "no set". */
	return h ? h : 1;
}

int kddm_set_new(struct kddm *k, const char *name, const struct kddm_set_ops *ops, void *data,
		 struct kddm_set **out)
{
	if (!name || !*name || !ops || ops->version != KDDM_OPS_V1 || !ops->export_obj || !ops->import_obj ||
	    !ops->free_obj)
		return -EINVAL;
	uint32_t wid = fnv1a(name);
	if (kddm_set_by_wire(k, wid))
		return -EEXIST;
	struct kddm_set *s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(name))) {
		free(s);
		return -ENOMEM;
	}
	s->k = k;
	s->wire_id = wid;
	s->ops = ops;
	s->data = data;
	s->ents.next_off = offsetof(struct kddm_ent, hnext);
	s->shadows.next_off = offsetof(struct kddm_shadow, hnext);
	s->next = k->sets;
	k->sets = s;
	*out = s;
	return 0;
}

void kddm_set_free(struct kddm_set *s)
{
	if (!s)
		return;
	struct kddm *k = s->k;
	for (struct kddm_set **pp = &k->sets; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	kddm_map_each(&s->ents, free_ent, s);
	kddm_req_fail_set(k, s, -ECANCELED);
	kddm_map_each(&s->shadows, free_shadow, s);
	free(s->ents.b);
	free(s->shadows.b);
	free(s->name);
	free(s);
}

struct kddm_set *kddm_set_by_wire(struct kddm *k, uint32_t wire_id)
{
	for (struct kddm_set *s = k->sets; s; s = s->next)
		if (s->wire_id == wire_id)
			return s;
	return NULL;
}

struct kddm_set *kddm_set_find(struct kddm *k, const char *name)
{
	for (struct kddm_set *s = k->sets; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

void *kddm_set_data(const struct kddm_set *s) { return s->data; }
struct kddm *kddm_set_kddm(const struct kddm_set *s) { return s->k; }
const char *kddm_set_name(const struct kddm_set *s) { return s->name; }
const struct krg_nodeset *kddm_live(const struct kddm *k) { return &k->live; }
void kddm_set_backup(struct kddm *k, bool on) { k->backup = on; }
bool kddm_backup(const struct kddm *k) { return k->backup; }

void kddm_stats(const struct kddm *k, struct kddm_stats *out)
{
	*out = k->st;
}

/* ---- entries ------------------------------------------------------------ */

struct kddm_ent *kddm_ent_get(struct kddm_set *s, uint64_t id, bool create)
{
	struct kddm_ent *e = kddm_map_get(&s->ents, id);
	if (e || !create)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->id = id;
	e->locked_by = KDDM_NO_NODE;
	e->copy_home = KDDM_NO_NODE;
	if (kddm_map_put(&s->ents, id, e) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

void kddm_ent_release(struct kddm_set *s, struct kddm_ent *e)
{
	if (e->busy || e->obj || e->cur || e->q_head || e->handing || e->locked_by != KDDM_NO_NODE)
		return;
	kddm_map_del(&s->ents, e->id);
	free(e);
}

void kddm_drop_obj(struct kddm_set *s, struct kddm_ent *e)
{
	if (e->obj)
		s->ops->free_obj(s, e->id, e->obj);
	e->obj = NULL;
}

void *kddm_peek(struct kddm_set *s, uint64_t id)
{
	struct kddm_ent *e = kddm_ent_get(s, id, false);
	return e && e->state == ENT_MASTER ? e->obj : NULL;
}

struct each_ctx {
	struct kddm_set *s;
	bool (*cb)(struct kddm_set *s, uint64_t id, void *obj, const struct krg_nodeset *copyset, void *data);
	void *data;
	size_t n;
	bool stop;
};

static void each_one(void *elem, void *data)
{
	struct each_ctx *c = data;
	struct kddm_ent *e = elem;
	if (c->stop || e->state != ENT_MASTER || !e->obj)
		return;
	c->n++;
	c->stop = c->cb(c->s, e->id, e->obj, &e->copyset, c->data);
}

size_t kddm_each(struct kddm_set *s,
		 bool (*cb)(struct kddm_set *s, uint64_t id, void *obj, const struct krg_nodeset *copyset, void *data),
		 void *data)
{
	struct each_ctx c = { .s = s, .cb = cb, .data = data };
	kddm_map_each(&s->ents, each_one, &c);
	return c.n;
}

static void count_one(void *elem, void *data)
{
	struct kddm_ent *e = elem;
	if (e->state == ENT_MASTER && e->obj)
		(*(size_t *)data)++;
}

size_t kddm_count(struct kddm_set *s)
{
	size_t n = 0;
	kddm_map_each(&s->ents, count_one, &n);
	return n;
}

/* ---- homes -------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: every input bit moves every output bit. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint32_t hrw_pick(uint64_t id, const struct krg_nodeset *live, uint32_t except)
{
	uint32_t best = KDDM_NO_NODE;
	uint64_t bw = 0;
	for (unsigned w = 0; w < KRG_MAX_NODES / 64; w++) {
		uint64_t bits = live->bits[w];
		while (bits) {
			unsigned n = w * 64 + (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (n == except)
				continue;
			uint64_t weight = mix64(id ^ mix64(n + 1));
			if (best == KDDM_NO_NODE || weight > bw) {
				best = n;
				bw = weight;
			}
		}
	}
	return best;
}

uint32_t kddm_hash_home(uint64_t id, const struct krg_nodeset *live)
{
	return hrw_pick(id, live, KDDM_NO_NODE);
}

uint32_t kddm_home(struct kddm_set *s, uint64_t id)
{
	if (s->ops->default_home)
		return s->ops->default_home(s, id, &s->k->live);
	return kddm_hash_home(id, &s->k->live);
}

uint32_t kddm_backup_node(struct kddm_set *s, uint64_t id, uint32_t home)
{
	/* The hash's choice among the others: when home dies, the live set
	 * loses it, and the hash home of what remains is this same node
	 * (kddm_hash_home over live minus home), so the backup is already
	 * where the master copy goes. */
	return hrw_pick(id, &s->k->live, home);
}

bool kddm_ready(const struct kddm *k)
{
	for (unsigned w = 0; w < KRG_MAX_NODES / 64; w++)
		if (k->awaiting.bits[w])
			return false;
	return true;
}

bool kddm_is_home(struct kddm_set *s, uint64_t id)
{
	return kddm_home(s, id) == s->k->self;
}

/* ---- wire --------------------------------------------------------------- */

int kddm_send_msg(struct kddm *k, uint32_t to, Krg__Kddm__Op op, uint32_t set, uint64_t id, const uint8_t *data,
		  size_t len, bool has_data, const struct krg_nodeset *copyset, kddm_reply_fn fn, void *ctx)
{
	Krg__Kddm__Msg m = KRG__KDDM__MSG__INIT;
	uint32_t nodes[KRG_MAX_NODES];
	if (copyset) {
		for (unsigned n = 0; n < KRG_MAX_NODES; n++)
			if (krg_nodeset_has(copyset, n))
				nodes[m.n_copyset++] = n;
		m.copyset = nodes;
	}
	m.op = op;
	m.set = set;
	m.id = id;
	if ((op == KRG__KDDM__OP__READY || op == KRG__KDDM__OP__HANDOVER) && k->epoch) {
		/* The receiver may apply the same change later (kddm_set_epoch);
		 * a HANDOVER's epoch tells a newer master from a stale one. */
		m.has_epoch = true;
		m.epoch = k->epoch;
	}
	if (has_data) {
		m.has_data = true;
		m.data.data = (uint8_t *)data;
		m.data.len = len;
	}
	size_t n = krg__kddm__msg__get_packed_size(&m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	krg__kddm__msg__pack(&m, buf);
	int r;
	if (fn) {
		r = k->t.request(k->t.t, to, buf, n, fn, ctx);
		if (r == 0)
			k->st.requests_sent++;
	} else {
		r = k->t.send(k->t.t, to, buf, n);
	}
	free(buf);
	return r;
}

static void reply(struct kddm *k, uint32_t to, uint64_t token, int status)
{
	if (token)
		k->t.reply(k->t.t, to, token, status, NULL, 0);
}

static void reject(struct kddm *k, uint32_t from, uint64_t token, const char *why)
{
	k->st.rejected++;
	log_warn("kddm: message from node %u refused: %s", from, why);
	reply(k, from, token, -EBADMSG);
}

static bool is_request_op(Krg__Kddm__Op op)
{
	return op == KRG__KDDM__OP__FETCH || op == KRG__KDDM__OP__GRAB || op == KRG__KDDM__OP__PUT ||
	       op == KRG__KDDM__OP__CREATE || op == KRG__KDDM__OP__REMOVE || op == KRG__KDDM__OP__CALL;
}

/* A request for the home: accept it if this node is the home and has
 * everything it should have (ready); a PUT goes to whoever granted the grab. */
static void deliver_home_op(struct kddm *k, struct kddm_set *s, uint32_t from, const Krg__Kddm__Msg *m,
			    uint64_t token)
{
	struct kddm_ent *e = kddm_ent_get(s, m->id, false);
	bool granted_here = e && e->state == ENT_MASTER && e->locked_by == from;
	if (m->op == KRG__KDDM__OP__PUT ? !granted_here : !(kddm_is_home(s, m->id) && kddm_ready(k))) {
		reply(k, from, token, m->op == KRG__KDDM__OP__PUT ? -EPERM : -EAGAIN);
		return;
	}
	struct kddm_hop *h = calloc(1, sizeof(*h));
	if (!h) {
		reply(k, from, token, -ENOMEM);
		return;
	}
	h->op = m->op;
	h->from = from;
	h->token = token;
	if (m->has_data) {
		h->data = malloc(m->data.len ? m->data.len : 1);
		if (!h->data) {
			free(h);
			reply(k, from, token, -ENOMEM);
			return;
		}
		if (m->data.len) /* empty bytes may come as NULL */
			memcpy(h->data, m->data.data, m->data.len);
		h->len = m->data.len;
	} else if (m->op == KRG__KDDM__OP__CREATE) {
		free(h);
		reject(k, from, token, "create without data");
		return;
	}
	k->st.requests_served++;
	kddm_home_submit(s, m->id, h);
}

void kddm_deliver(struct kddm *k, uint32_t from, const uint8_t *body, size_t len, uint64_t token)
{
	if (from >= KRG_MAX_NODES || from == k->self) {
		reject(k, from, token, "bad sender");
		return;
	}
	Krg__Kddm__Msg *m = krg__kddm__msg__unpack(NULL, len, body);
	if (!m) {
		reject(k, from, token, "undecodable");
		return;
	}
	struct kddm_set *s = m->set ? kddm_set_by_wire(k, m->set) : NULL;
	if (m->op == KRG__KDDM__OP__READY || m->op == KRG__KDDM__OP__READY_ASK) {
		kddm_member_deliver(k, NULL, from, m, token);
	} else if (!s) {
		/* Not malformed: that set may not be started here yet
		 * (the requester retries). */
		reply(k, from, token, -ENOPROTOOPT);
	} else if (is_request_op(m->op)) {
		if (!token)
			reject(k, from, token, "request without id");
		else
			deliver_home_op(k, s, from, m, token);
	} else if (m->op == KRG__KDDM__OP__INVALIDATE) {
		kddm_copy_invalidate(s, m->id);
		reply(k, from, token, 0);
	} else if (m->op == KRG__KDDM__OP__NOTIFY) {
		if (s->ops->notify)
			s->ops->notify(s, m->id, from, m->has_data ? m->data.data : NULL, m->has_data ? m->data.len : 0);
	} else if (m->op == KRG__KDDM__OP__HANDOVER || m->op == KRG__KDDM__OP__BACKUP) {
		kddm_member_deliver(k, s, from, m, token);
	} else {
		reject(k, from, token, "unknown operation");
	}
	krg__kddm__msg__free_unpacked(m, NULL);
}

int kddm_notify(struct kddm_set *s, uint32_t to, uint64_t id, const void *in, size_t len)
{
	struct kddm *k = s->k;
	if (to == k->self) {
		if (s->ops->notify)
			s->ops->notify(s, id, to, in, len);
		return 0;
	}
	return kddm_send_msg(k, to, KRG__KDDM__OP__NOTIFY, s->wire_id, id, in, len, true, NULL, NULL, NULL);
}
