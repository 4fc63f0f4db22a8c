/* net.h — authenticated, framed, request/response transport between krgd
 * nodes, on a libuv loop.
 *
 * Every pair of nodes keeps two TCP connections: a control channel for
 * small messages and a bulk channel for large transfers, so a bulk stream
 * never delays control traffic. Each connection starts with a mutual
 * handshake proven with the cluster key (fresh nonces and ephemeral keys on
 * both sides, so a recorded handshake cannot be replayed), then carries
 * frames that are integrity protected and, unless encrypt is off, encrypted.
 * Frame and handshake formats: docs/protocol.md.
 *
 * Messages are typed by a short string ("cluster.join", "raft.tunnel"):
 * services register handlers by name, there is no central enum.
 * Bodies are opaque bytes (each service encodes its own protobuf message).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "../lib/key.h"

struct krg_net;

/* Joining machines (docs/reconfiguration.md): before the cluster gives it
 * a node id, a machine holding the cluster key says hello with a random id
 * >= KRG_NET_JOINER_MIN, and dials a member whose id it does not know yet
 * as KRG_NET_ANY_ID (the peer takes the id that answers). A member that
 * accepts joiners lets such a peer send only opts.joiner_msg. */
#define KRG_NET_JOINER_MIN 0x10000u
#define KRG_NET_ANY_ID 0xffffffffu

struct krg_net_peer_addr {
	uint32_t id;      /* node id */
	char host[64];    /* IPv4 address */
	uint16_t port;
};

struct krg_net_options {
	uint32_t self_id;
	const char *cluster_name;           /* must match on both ends */
	const char *listen_host;            /* address to bind */
	uint16_t listen_port;
	const struct krg_net_peer_addr *peers; /* every other node (borrowed, copied) */
	size_t n_peers;
	uint8_t key[KRG_KEY_BYTES];         /* cluster key */
	bool encrypt;                       /* false: integrity only */
	unsigned heartbeat_ms;              /* keepalive ping period on idle links */
	unsigned dead_after_ms;             /* silence after which a link is closed;
					     * 0 = 4 heartbeats. krgd sets it past the
					     * membership's failure detection, so that a
					     * starved peer's streams survive and only a
					     * node declared down loses them */
	unsigned request_timeout_ms;        /* default when a request passes 0 */
	const char *joiner_msg;             /* non-NULL: accept joiners, this message type only */
	bool auth_fatal;                    /* a peer that fails authentication is fatal
					     * (a joiner: the cluster key is wrong) */
	size_t max_frame;                   /* larger frames drop the link; 0 = 16 MiB */
	/* Lazy links (krgd; docs/protocol.md "Lazy links"): nothing is dialed
	 * at start; a peer is dialed once krg_net_set_relaxed(.., false) says
	 * the link is needed (raft leader and voters), or when a message is
	 * sent to it; bulk links are dialed for their first message. A relaxed
	 * link with no traffic but keepalives for idle_close_ms (0: never) is
	 * closed by agreement (net.idle), which is no link loss: the peer stays
	 * up and the next message dials again. */
	bool lazy_links;
	unsigned idle_close_ms;
	/* Called when the transport learns something that must stop the
	 * daemon (another live krgd claims our node id). msg is one line. */
	void (*fatal_cb)(struct krg_net *net, int err, const char *msg, void *data);
	void *data;                         /* for fatal_cb */
};

/* A received message. body is borrowed: valid during the callback only. */
struct krg_msg {
	const char *type;
	const uint8_t *body;
	size_t len;
};

/* req_id != 0: the sender waits for krg_net_reply(net, from, req_id, ...). */
typedef void (*krg_net_handler_cb)(struct krg_net *net, uint32_t from, const struct krg_msg *msg,
				   uint64_t req_id, void *data);
/* status: 0 with reply, or -ETIMEDOUT, -ECONNRESET (link lost),
 * -EHOSTUNREACH (no link), -ENOENT (no handler at peer), or the negative
 * status the peer replied with. reply is NULL unless status is 0. */
typedef void (*krg_net_reply_cb)(struct krg_net *net, int status, const struct krg_msg *reply, void *data);
typedef void (*krg_net_peer_cb)(struct krg_net *net, uint32_t peer, bool up, void *data);
typedef void (*krg_net_done_cb)(int status, void *data);

int krg_net_new(uv_loop_t *loop, const struct krg_net_options *opts, struct krg_net **out);
/* Bind and listen, start connecting to peers (with retry). -EADDRINUSE
 * etc.; err gets one line. */
int krg_net_start(struct krg_net *net, char *err, size_t errlen);
/* Close every connection and handle; cb when memory can be freed (the
 * transport frees itself). */
void krg_net_close(struct krg_net *net, void (*cb)(void *data), void *data);

/* Register the handler for a message type (type string is copied). One
 * handler per type; -EEXIST otherwise. */
int krg_net_handle(struct krg_net *net, const char *type, krg_net_handler_cb cb, void *data);
/* Messages of type (its handler registered) may go to this node itself:
 * krg_net_send, _request, _send_bulk to this node's id are queued and
 * reach the handler from the loop (never from within the call), with
 * `from` this node; replies to them come back the same way. Other types
 * to itself: -EHOSTUNREACH. 0 or -ENOENT (no handler). */
int krg_net_handle_self(struct krg_net *net, const char *type);
/* Whether a handler for type is registered (krgd's check of its service table). */
bool krg_net_handled(struct krg_net *net, const char *type);
/* Link up/down notifications (an authenticated control channel). */
void krg_net_on_peer(struct krg_net *net, krg_net_peer_cb cb, void *data);

/* One-way message on the control channel. Body copied. -EHOSTUNREACH if no link. */
int krg_net_send(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len);
/* Request with id and timeout (0 = default). cb is called exactly once. */
int krg_net_request(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len,
		    unsigned timeout_ms, krg_net_reply_cb cb, void *data);
/* Answer a request; status 0 or negative errno. */
int krg_net_reply(struct krg_net *net, uint32_t to, uint64_t req_id, int status, const void *body, size_t len);
/* The common start of a request handler: false when the handler has
 * nothing more to do, because msg is no request (req_id 0: dropped) or
 * the service is stopping (answered -ESHUTDOWN). */
bool krg_net_request_open(struct krg_net *net, uint32_t from, uint64_t req_id, bool stopping);
/* Answers a request whose body did not parse or check: one log line with
 * what it was and from whom, then -EBADMSG. */
void krg_net_refuse_malformed(struct krg_net *net, uint32_t from, uint64_t req_id, const char *what);
/* Message on the bulk channel (ordered with other bulk messages to the same
 * peer). body is borrowed until done_cb, which fires once it is written
 * to the socket or failed: callers use it for back-pressure. */
int krg_net_send_bulk(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len,
		      krg_net_done_cb done_cb, void *data);

/* A node learned at run time (a machine joined): dial it from now on.
 * 1 added, 0 known already (address updated while it has no link). */
int krg_net_add_peer(struct krg_net *net, const struct krg_net_peer_addr *addr);

/* Whether messages to peer can go: linked, or (lazy links) reachable on
 * demand, i.e. not given up on by a dial in the last few seconds. */
bool krg_net_peer_up(const struct krg_net *net, uint32_t peer);
/* Whether peer has an authenticated control link now (the failure
 * detector's view: a lazy peer without a link is not heard). */
bool krg_net_peer_linked(const struct krg_net *net, uint32_t peer);
/* The random id of the krgd process at the other end of the peer's
 * control link (a new one after that krgd restarted), 0 while it is down.
 * With lazy links, of the process last linked while its idle link is
 * closed (a restart meanwhile is seen, as a link loss, at the next link). */
uint64_t krg_net_peer_instance(const struct krg_net *net, uint32_t peer);
/* uv_now() of the last frame received from peer on any channel, 0 = never. */
uint64_t krg_net_last_heard(const struct krg_net *net, uint32_t peer);
/* A relaxed link pings every 10 s instead of every heartbeat_ms (the peer
 * learns it from the ping and waits 4 such intervals before calling the
 * link silent). For links the failure detector and elections do not need:
 * keeps idle traffic from growing as N². Links start not relaxed, or with
 * lazy_links relaxed (not dialed until needed); with lazy_links, a link
 * made not relaxed is dialed at once and kept. */
void krg_net_set_relaxed(struct krg_net *net, uint32_t peer, bool relaxed);
uint32_t krg_net_self(const struct krg_net *net);

/* Port the listener is bound to (useful with listen_port 0), or -ENOTCONN. */
int krg_net_port(const struct krg_net *net);
