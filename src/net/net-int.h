/* net-int.h — between net.c and selfq.c, the transport's delivery to the
 * node itself (krg_net_handle_self); nothing outside src/net includes it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "net.h"

struct self_msg;

/* Messages to this node itself, handed to their handlers from the loop. */
struct krg_selfq {
	struct krg_net *net;
	uv_loop_t *loop;
	struct self_msg *head, *tail;
	uv_idle_t idle;
	bool idle_on;  /* initialised: a handle of the net's */
};

void selfq_init(struct krg_selfq *q, struct krg_net *net, uv_loop_t *loop);
/* Queued: a message (req_id 0), a request (its id) or, with is_reply, the
 * answer to request req_id. body is copied, or with done borrowed until
 * done (bulk). 0, -EHOSTUNREACH (type not taken from this node itself),
 * -ENOMEM. */
int selfq_push(struct krg_selfq *q, const char *type, const void *body, size_t len, uint64_t req_id, bool is_reply,
	       int status, krg_net_done_cb done, void *data);
/* The net closes: what is queued dropped (done: -ECANCELED), the handle
 * closed. */
void selfq_close(struct krg_selfq *q);

/* net.c's side. The handler of type if it takes messages from this node. */
bool net_self_handler(struct krg_net *net, const char *type, krg_net_handler_cb *cb, void **data);
/* Request req_id to this node answered; false if it is gone (timed out). */
bool net_self_complete(struct krg_net *net, uint64_t req_id, int status, const struct krg_msg *reply);
bool net_closing(const struct krg_net *net);
/* Handles the net owns, counted for its close. */
void net_handle_opened(struct krg_net *net);
void net_handle_closed(uv_handle_t *h);
