/* net-int.h — the transport's objects (peers, connections, write
 * requests, requests, handlers, the net itself), shared by net.c and
 * selfq.c (the delivery to the node itself, krg_net_handle_self); nothing
 * outside src/net includes it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "../lib/klist.h"
#include "frame.h"
#include "net.h"
#include "session.h"

struct self_msg;

/* Messages to this node itself, handed to their handlers from the loop. */
struct krg_selfq {
	struct krg_net *net;
	uv_loop_t *loop;
	struct self_msg *head, *tail;
	uv_idle_t idle;
	bool idle_on;  /* initialised: a handle of the net's */
};

/* ---- the transport's objects (net.c) ---- */

enum { CH_CONTROL = 0, CH_BULK = 1, CH_N = 2 };

enum conn_state {
	CS_CONNECTING, /* initiator: TCP connect in progress */
	CS_HELLO,      /* our Hello sent, waiting for theirs */
	CS_PROOF,      /* our Proof sent, waiting for theirs */
	CS_VERDICT,    /* initiator: proofs done, waiting for net.welcome */
	CS_UP,         /* authenticated, attached to its peer */
	CS_RETIRED,    /* lost a tie-break or was replaced by a connection of the
			* same peer process: still delivers what arrives (a request
			* may be in flight on it), sends nothing, closed at deadline */
	CS_CLOSING,
};

/* Not a list entry: a libuv request inside its own struct (net.c). */
#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

struct conn;

struct bulk_item { /* bulk message waiting for the bulk link */
	struct klist link;
	char type[KRG_TYPE_MAX + 1];
	const void *body; /* borrowed until done_cb */
	size_t len;
	krg_net_done_cb done_cb;
	void *data;
};

struct peer {
	struct krg_net_peer_addr addr;
	struct conn *link[CH_N];    /* the authenticated connection per channel, or NULL */
	struct conn *dialing[CH_N]; /* our outgoing attempt in progress, or NULL */
	uint64_t next_dial[CH_N];   /* uv_now() after which we may dial */
	unsigned backoff_ms[CH_N];
	bool up;                    /* link[CH_CONTROL] is set */
	bool joiner;                /* a joining machine: never dialed, one message type */
	bool relaxed;               /* ping every RELAXED_PING_MS (krg_net_set_relaxed) */
	uint64_t last_heard;        /* uv_now() of the last frame, 0 = never */
	struct klist bulk_queue;     /* bulk_item, until the bulk link is up */
	/* Lazy links (krg_net_options.lazy_links): a relaxed peer is dialed
	 * when something is sent to it and its idle links are closed; what is
	 * sent meanwhile waits here (ctl_item) for the control link. */
	struct klist ctl_queue;
	uint64_t queued_at;         /* uv_now() of the oldest ctl/bulk item queued */
	uint64_t instance;          /* the peer process last linked (restart check) */
	uint64_t failed_at;         /* uv_now() an on-demand dial gave up, 0 = not */
};

struct ctl_item { /* control frame waiting for a lazy peer's link */
	struct klist link;
	char type[KRG_TYPE_MAX + 1];
	bool has_type;
	uint64_t req_id;
	bool is_reply;
	int status;
	size_t len;
	uint8_t body[];
};

struct conn {
	struct krg_net *net;
	struct klist link;           /* in net->conns */
	uv_tcp_t tcp;
	uv_connect_t creq;
	enum conn_state state;
	bool initiator;             /* we dialed */
	bool close_after_write;     /* a rejection is being flushed */
	int channel;                /* -1 until the peer's Hello on the accepting side */
	struct peer *peer;          /* initiator: dialed peer; acceptor: after Hello */
	uint32_t peer_id;           /* claimed in Hello (0 before) */
	uint64_t peer_instance;
	char addr[80];              /* "host:port" of the remote end */
	uint64_t deadline;          /* handshake must finish by this uv_now() */
	uint64_t last_rx, last_tx;  /* uv_now() of the last frame in / out */
	uint64_t last_use;          /* uv_now() of the last frame in or out other than net.* */
	uint32_t rx_ping_ms;        /* the peer's announced ping interval, 0: heartbeat_ms */
	struct krg_frame_dec dec;
	uint8_t *direct;            /* read target handed out by on_alloc, if inside dec */
	uint8_t *rxbuf;             /* owned, RXBUF_BYTES */
	uint8_t eph_sk[32], eph_pk[32];
	uint8_t *my_hello;          /* owned: our Hello encoding (for the transcript) */
	size_t my_hello_len;
	uint8_t th[KRG_HS_HASH_BYTES];
	struct krg_seal tx, rx;
};

struct wreq {
	uv_write_t w;
	struct krg_net *net;
	krg_net_done_cb done_cb;
	void *data;
	uv_buf_t bufs[3];
	unsigned nbufs;
	uint8_t tag[KRG_TAG_BYTES];
	uint8_t buf[]; /* hdr + payload (+ tag) */
};

struct req {
	struct klist link; /* in net->reqs */
	struct krg_net *net;
	uint64_t id;
	uint32_t to;
	krg_net_reply_cb cb;
	void *data;
	uv_timer_t timer;
};

struct handler {
	struct klist link;
	char *type; /* owned */
	krg_net_handler_cb cb;
	void *data;
	bool self;  /* krg_net_handle_self: messages from this node too */
};

struct peer_watch {
	struct klist link;
	krg_net_peer_cb cb;
	void *data;
};

struct krg_net {
	uv_loop_t *loop;
	struct krg_net_options opts; /* peers pointer and cluster_name replaced by owned copies */
	char *cluster_name;          /* owned */
	char *listen_host;           /* owned */
	char *joiner_msg;            /* owned, or NULL */
	struct peer *peers;          /* owned array */
	size_t n_peers;
	uint64_t instance;           /* random, per process */
	uint32_t ciphers;            /* what this CPU can do */
	size_t max_frame;
	uv_tcp_t listener;
	bool listening;
	uv_timer_t tick;
	uint64_t last_tick;          /* uv_now() of the previous tick */
	bool started, closing, fatal;
	uint64_t start_time;
	unsigned handles;            /* open uv handles we own */
	struct klist conns, reqs, handlers, watches;
	struct krg_selfq selfq;      /* to this node itself (selfq.c) */
	uint64_t next_req_id;
	void (*close_cb)(void *data);
	void *close_data;
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
