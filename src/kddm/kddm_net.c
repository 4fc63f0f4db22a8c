/* kddm_net.c — KDDM's transport in krgd: krg_net requests and replies,
 * uv timers for retries. */
#include <errno.h>
#include <stdlib.h>
#include "kddm_net.h"
#include "lib/log.h"

struct net_timer {
	uv_timer_t timer;
	void (*fn)(void *arg);
	void *arg;
	struct kddm_net *kn;
	struct net_timer *prev, *next;
};

struct kddm_net {
	uv_loop_t *loop;
	struct krg_net *net;  /* borrowed */
	struct kddm *k;       /* owned; NULL once stopped */
	struct net_timer *timers; /* armed */
};

struct net_req {
	kddm_reply_fn fn;
	void *ctx;
};

static void reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct net_req *rq = data;
	rq->fn(rq->ctx, status, reply ? reply->body : NULL, reply ? reply->len : 0);
	free(rq);
}

static int t_request(void *t, uint32_t to, const uint8_t *body, size_t len, kddm_reply_fn fn, void *ctx)
{
	struct kddm_net *kn = t;
	struct net_req *rq = malloc(sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	rq->fn = fn;
	rq->ctx = ctx;
	int r = krg_net_request(kn->net, to, "kddm", body, len, 0, reply_cb, rq);
	if (r < 0)
		free(rq);
	return r;
}

static int t_reply(void *t, uint32_t to, uint64_t token, int status, const uint8_t *body, size_t len)
{
	struct kddm_net *kn = t;
	return krg_net_reply(kn->net, to, token, status, body, len);
}

static int t_send(void *t, uint32_t to, const uint8_t *body, size_t len)
{
	struct kddm_net *kn = t;
	return krg_net_send(kn->net, to, "kddm", body, len);
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void timer_unlink(struct net_timer *nt)
{
	if (nt->prev)
		nt->prev->next = nt->next;
	else
		nt->kn->timers = nt->next;
	if (nt->next)
		nt->next->prev = nt->prev;
}

static void timer_cb(uv_timer_t *h)
{
	struct net_timer *nt = h->data;
	timer_unlink(nt);
	nt->fn(nt->arg);
	uv_close((uv_handle_t *)h, timer_closed);
}

static int t_later(void *t, unsigned ms, void (*fn)(void *arg), void *arg)
{
	struct kddm_net *kn = t;
	struct net_timer *nt = calloc(1, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	nt->fn = fn;
	nt->arg = arg;
	nt->kn = kn;
	uv_timer_init(kn->loop, &nt->timer);
	nt->timer.data = nt;
	uv_timer_start(&nt->timer, timer_cb, ms, 0);
	nt->next = kn->timers;
	if (nt->next)
		nt->next->prev = nt;
	kn->timers = nt;
	return 0;
}

static void on_msg(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct kddm_net *kn = data;
	if (!kn->k) {
		if (req_id)
			krg_net_reply(net, from, req_id, -ENOPROTOOPT, NULL, 0);
		return;
	}
	kddm_deliver(kn->k, from, msg->body, msg->len, req_id);
}

int kddm_net_start(uv_loop_t *loop, struct krg_net *net, struct kddm_net **out)
{
	struct kddm_net *kn = calloc(1, sizeof(*kn));
	if (!kn)
		return -ENOMEM;
	kn->loop = loop;
	kn->net = net;
	struct kddm_transport t = {
		.version = KDDM_TRANSPORT_V1,
		.request = t_request,
		.reply = t_reply,
		.send = t_send,
		.later = t_later,
		.t = kn,
	};
	int r = kddm_new(krg_net_self(net), &t, &kn->k);
	if (r == 0)
		r = krg_net_handle(net, "kddm", on_msg, kn);
	if (r < 0) {
		kddm_free(kn->k);
		free(kn);
		return r;
	}
	*out = kn;
	return 0;
}

struct kddm *kddm_net_kddm(struct kddm_net *kn)
{
	return kn->k;
}

void kddm_net_stop(struct kddm_net *kn)
{
	if (!kn || !kn->k)
		return;
	kddm_free(TAKE_PTR(kn->k));
	/* What waited on a timer learns the instance is gone and frees itself. */
	struct net_timer *nt;
	while ((nt = kn->timers)) {
		timer_unlink(nt);
		uv_timer_stop(&nt->timer);
		nt->fn(nt->arg);
		uv_close((uv_handle_t *)&nt->timer, timer_closed);
	}
}
