/* selfq.c — the transport's delivery to the node itself (net-int.h): a
 * service that talks to "the node of X" need not ask whether that is
 * itself. For the types registered with krg_net_handle_self, a message,
 * request, reply or bulk message to this node goes through this queue and
 * reaches its handler from the loop (never from within the call that sent
 * it), in order, as from a peer with the node's own id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frame.h"
#include "net-int.h"

struct self_msg {
	struct self_msg *next;
	char type[KRG_TYPE_MAX + 1];
	uint8_t *body;     /* owned copy, or the bulk caller's (borrowed until done) */
	size_t len;
	uint64_t req_id;   /* a request's id; with is_reply, the request answered */
	bool is_reply;
	int status;        /* a reply's */
	krg_net_done_cb done;
	void *done_data;
};

void selfq_init(struct krg_selfq *q, struct krg_net *net, uv_loop_t *loop)
{
	*q = (struct krg_selfq){ .net = net, .loop = loop };
}

static void finish(struct self_msg *m, int status)
{
	if (m->done)
		m->done(status, m->done_data);
	else
		free(m->body);
	free(m);
}

static struct self_msg *pop(struct krg_selfq *q)
{
	struct self_msg *m = q->head;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	return m;
}

static void deliver(struct krg_selfq *q, struct self_msg *m)
{
	uint32_t self = krg_net_self(q->net);
	struct krg_msg msg = { .type = m->is_reply ? "" : m->type, .body = m->body, .len = m->len };
	krg_net_handler_cb cb;
	void *data;
	if (m->is_reply)
		net_self_complete(q->net, m->req_id, m->status, m->status == 0 ? &msg : NULL);
	else if (net_self_handler(q->net, m->type, &cb, &data))
		cb(q->net, self, &msg, m->req_id, data);
	else if (m->req_id)
		net_self_complete(q->net, m->req_id, -ENOENT, NULL); /* as a peer without the handler */
}

static void on_idle(uv_idle_t *h)
{
	struct krg_selfq *q = h->data;
	uv_idle_stop(h);
	/* Only what is queued now: handlers may queue more. */
	struct self_msg *last = q->tail;
	for (bool more = q->head != NULL; more && !net_closing(q->net);) {
		struct self_msg *m = pop(q); /* out before its handler runs: it may close the net */
		more = m != last;
		deliver(q, m);
		finish(m, 0);
	}
}

int selfq_push(struct krg_selfq *q, const char *type, const void *body, size_t len, uint64_t req_id, bool is_reply,
	       int status, krg_net_done_cb done, void *data)
{
	krg_net_handler_cb cb;
	void *hdata;
	if (!is_reply && !net_self_handler(q->net, type, &cb, &hdata))
		return -EHOSTUNREACH; /* as before: no link to itself */
	struct self_msg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = (struct self_msg){ .len = len, .req_id = req_id, .is_reply = is_reply, .status = status, .done = done,
				.done_data = data };
	snprintf(m->type, sizeof(m->type), "%s", type ? type : "");
	if (done) {
		m->body = (uint8_t *)body;
	} else if (!(m->body = malloc(len ? len : 1))) {
		free(m);
		return -ENOMEM;
	} else if (len) {
		memcpy(m->body, body, len);
	}
	if (!q->idle_on) {
		uv_idle_init(q->loop, &q->idle);
		q->idle.data = q;
		q->idle_on = true;
		net_handle_opened(q->net);
	}
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	uv_idle_start(&q->idle, on_idle);
	return 0;
}

void selfq_close(struct krg_selfq *q)
{
	while (q->head)
		finish(pop(q), -ECANCELED);
	if (q->idle_on) {
		q->idle.data = q->net;
		uv_close((uv_handle_t *)&q->idle, net_handle_closed);
	}
}
