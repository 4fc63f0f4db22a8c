/* kddm_fake.c — see kddm_fake.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kddm_fake.h"

/* KDDM_FAKE_RECORD=DIR: every message delivered to node 0 is written to
 * DIR as one input of tests/fuzz/fuzz_kddm.c (its seed corpus): from,
 * request flag, 16-bit little-endian length, body. */
static void record(const struct kfake *f, unsigned from, unsigned to, bool request, const uint8_t *body, size_t len)
{
	static unsigned n;
	const char *dir = getenv("KDDM_FAKE_RECORD");
	if (!dir || to != 0 || len > 0xffff || n >= 2000)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/msg-%u-%04u", dir, (unsigned)getpid(), n++);
	FILE *o = fopen(path, "we");
	if (!o)
		return;
	uint8_t head[4] = { (uint8_t)from, request, (uint8_t)(len & 0xff), (uint8_t)(len >> 8) };
	fwrite(head, 1, 4, o);
	fwrite(body, 1, len, o);
	fclose(o);
	(void)f;
}

enum ev_kind { EV_REQ, EV_REPLY, EV_SEND, EV_TIMER };

struct ev {
	enum ev_kind kind;
	unsigned from, to;
	uint64_t token;      /* EV_REQ / EV_REPLY */
	int status;          /* EV_REPLY */
	uint8_t *body;
	size_t len;
	uint64_t due;        /* EV_TIMER */
	void (*fn)(void *);  /* EV_TIMER */
	void *arg;
	struct ev *next;
};

struct pending {
	uint64_t token;
	unsigned from, to;
	kddm_reply_fn fn;    /* NULL: an injected request */
	void *ctx;
	struct pending *next;
};

struct fnode {
	struct kfake *f;
	unsigned id;
	struct kddm *k;      /* NULL: dead or never started */
};

struct kfake {
	unsigned n;
	struct fnode nodes[KFAKE_MAX];
	struct ev *q_head, *q_tail;  /* messages, in order */
	struct ev *timers;           /* sorted by due */
	struct pending *pend[4096];  /* by token % 4096 */
	uint64_t now, next_token, delivered;
	unsigned drop[KFAKE_MAX];
	bool cut[KFAKE_MAX];         /* cut off from every other node (a partition) */
	int injected_status;
	uint64_t injected_token;
};

static void push(struct kfake *f, struct ev *e)
{
	e->next = NULL;
	if (f->q_tail)
		f->q_tail->next = e;
	else
		f->q_head = e;
	f->q_tail = e;
}

static struct ev *mk(enum ev_kind kind, unsigned from, unsigned to, const uint8_t *body, size_t len)
{
	struct ev *e = calloc(1, sizeof(*e));
	e->kind = kind;
	e->from = from;
	e->to = to;
	if (len) {
		e->body = malloc(len);
		memcpy(e->body, body, len);
	}
	e->len = len;
	return e;
}

static void fail_later(struct kfake *f, struct pending *p, int status)
{
	struct ev *e = mk(EV_REPLY, p->to, p->from, NULL, 0);
	e->token = p->token;
	e->status = status;
	push(f, e);
}

static int t_request(void *t, uint32_t to, const uint8_t *body, size_t len, kddm_reply_fn fn, void *ctx)
{
	struct fnode *nd = t;
	struct kfake *f = nd->f;
	if (to >= f->n)
		return -EHOSTUNREACH;
	struct pending *p = calloc(1, sizeof(*p));
	p->token = ++f->next_token;
	p->from = nd->id;
	p->to = to;
	p->fn = fn;
	p->ctx = ctx;
	p->next = f->pend[p->token % 4096];
	f->pend[p->token % 4096] = p;
	if (!f->nodes[to].k || f->cut[to] != f->cut[nd->id]) {
		fail_later(f, p, -EHOSTUNREACH);
		return 0;
	}
	struct ev *e = mk(EV_REQ, nd->id, to, body, len);
	e->token = p->token;
	push(f, e);
	return 0;
}

static int t_reply(void *t, uint32_t to, uint64_t token, int status, const uint8_t *body, size_t len)
{
	struct fnode *nd = t;
	bool lost = to < KFAKE_MAX && nd->f->cut[to] != nd->f->cut[nd->id];
	struct ev *e = mk(EV_REPLY, nd->id, to, lost ? NULL : body, lost ? 0 : len);
	e->token = token;
	e->status = lost ? -EHOSTUNREACH : status;
	push(nd->f, e);
	return 0;
}

static int t_send(void *t, uint32_t to, const uint8_t *body, size_t len)
{
	struct fnode *nd = t;
	if (to >= nd->f->n || !nd->f->nodes[to].k)
		return -EHOSTUNREACH;
	if (nd->f->cut[to] != nd->f->cut[nd->id])
		return 0; /* lost on the way */
	push(nd->f, mk(EV_SEND, nd->id, to, body, len));
	return 0;
}

static int t_later(void *t, unsigned ms, void (*fn)(void *arg), void *arg)
{
	struct fnode *nd = t;
	struct kfake *f = nd->f;
	struct ev *e = mk(EV_TIMER, nd->id, nd->id, NULL, 0);
	e->due = f->now + ms;
	e->fn = fn;
	e->arg = arg;
	struct ev **pp = &f->timers;
	while (*pp && (*pp)->due <= e->due)
		pp = &(*pp)->next;
	e->next = *pp;
	*pp = e;
	return 0;
}

static void start_node(struct kfake *f, unsigned id)
{
	struct kddm_transport t = {
		.version = KDDM_TRANSPORT_V1, .request = t_request, .reply = t_reply, .send = t_send,
		.later = t_later, .t = &f->nodes[id],
	};
	f->nodes[id].f = f;
	f->nodes[id].id = id;
	kddm_new(id, &t, &f->nodes[id].k);
}

struct kfake *kfake_new(unsigned n)
{
	struct kfake *f = calloc(1, sizeof(*f));
	f->n = n;
	f->injected_status = 1;
	for (unsigned i = 0; i < n; i++)
		start_node(f, i);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			kddm_node_up(f->nodes[i].k, j);
	kfake_run(f, 0);
	return f;
}

struct kddm *kfake_kddm(struct kfake *f, unsigned node)
{
	return node < f->n ? f->nodes[node].k : NULL;
}

uint64_t kfake_now(const struct kfake *f) { return f->now; }
uint64_t kfake_messages(const struct kfake *f) { return f->delivered; }
int kfake_injected_status(const struct kfake *f) { return f->injected_status; }

static struct pending *take_pending(struct kfake *f, uint64_t token)
{
	for (struct pending **pp = &f->pend[token % 4096]; *pp; pp = &(*pp)->next) {
		if ((*pp)->token == token) {
			struct pending *p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static void deliver(struct kfake *f, struct ev *e)
{
	struct kddm *to = f->nodes[e->to].k;
	if (e->kind == EV_REPLY) {
		struct pending *p = take_pending(f, e->token);
		if (!p)
			return;
		if (p->fn)
			p->fn(p->ctx, e->status, e->body, e->len);
		else
			f->injected_status = e->status;
		free(p);
		return;
	}
	if (f->drop[e->to]) {
		/* Lost on the way: the sender's request times out. */
		f->drop[e->to]--;
		if (e->kind == EV_REQ)
			for (struct pending *p = f->pend[e->token % 4096]; p; p = p->next)
				if (p->token == e->token)
					fail_later(f, p, -ETIMEDOUT);
		return;
	}
	if (!to)
		return; /* its requests were failed when it died (node_gone) */
	f->delivered++;
	record(f, e->from, e->to, e->kind == EV_REQ, e->body, e->len);
	kddm_deliver(to, e->from, e->body, e->len, e->kind == EV_REQ ? e->token : 0);
}

size_t kfake_run(struct kfake *f, size_t max_steps)
{
	size_t steps = 0;
	if (!max_steps)
		max_steps = 1000000;
	while (steps < max_steps) {
		struct ev *e = f->q_head;
		if (e) {
			f->q_head = e->next;
			if (!f->q_head)
				f->q_tail = NULL;
			deliver(f, e);
		} else if ((e = f->timers)) {
			f->timers = e->next;
			if (e->due > f->now)
				f->now = e->due;
			e->fn(e->arg);
		} else {
			break;
		}
		free(e->body);
		free(e);
		steps++;
	}
	return steps;
}

static void node_gone(struct kfake *f, unsigned node)
{
	struct kddm *k = f->nodes[node].k;
	f->nodes[node].k = NULL;
	kddm_free(k);
	/* Requests waiting on it fail as a dropped link does. */
	for (size_t b = 0; b < 4096; b++)
		for (struct pending *p = f->pend[b]; p; p = p->next)
			if (p->to == node)
				fail_later(f, p, -ECONNRESET);
}

void kfake_kill(struct kfake *f, unsigned node)
{
	if (!f->nodes[node].k)
		return;
	node_gone(f, node);
	for (unsigned i = 0; i < f->n; i++)
		if (f->nodes[i].k)
			kddm_node_down(f->nodes[i].k, node);
}

void kfake_leave(struct kfake *f, unsigned node)
{
	for (unsigned i = 0; i < f->n; i++)
		if (f->nodes[i].k)
			kddm_node_leaving(f->nodes[i].k, node);
	kfake_run(f, 0);
	kfake_kill(f, node);
	kfake_run(f, 0);
}

void kfake_start(struct kfake *f, unsigned node, void (*make_sets)(struct kddm *k, void *data), void *data)
{
	if (node >= KFAKE_MAX || f->nodes[node].k)
		return;
	if (node >= f->n)
		f->n = node + 1;
	start_node(f, node);
	if (make_sets)
		make_sets(f->nodes[node].k, data);
	for (unsigned i = 0; i < f->n; i++) {
		if (!f->nodes[i].k)
			continue;
		kddm_node_up(f->nodes[node].k, i);
		kddm_node_up(f->nodes[i].k, node);
	}
}

void kfake_drop_to(struct kfake *f, unsigned to, unsigned n)
{
	f->drop[to] += n;
}

void kfake_inject(struct kfake *f, unsigned from, unsigned to, const uint8_t *body, size_t len, bool request)
{
	struct ev *e = mk(request ? EV_REQ : EV_SEND, from, to, body, len);
	if (request) {
		struct pending *p = calloc(1, sizeof(*p));
		p->token = ++f->next_token;
		p->from = from;
		p->to = to;
		p->next = f->pend[p->token % 4096];
		f->pend[p->token % 4096] = p;
		e->token = p->token;
		f->injected_status = 1;
	}
	push(f, e);
}

void kfake_free(struct kfake *f)
{
	for (unsigned i = 0; i < f->n; i++)
		if (f->nodes[i].k)
			node_gone(f, i);
	kfake_run(f, 0);
	for (size_t b = 0; b < 4096; b++) {
		struct pending *p;
		while ((p = f->pend[b])) {
			f->pend[b] = p->next;
			if (p->fn)
				p->fn(p->ctx, -ECONNRESET, NULL, 0);
			free(p);
		}
	}
	free(f);
}

void kfake_cut(struct kfake *f, unsigned node, bool cut)
{
	if (node < KFAKE_MAX)
		f->cut[node] = cut;
}
