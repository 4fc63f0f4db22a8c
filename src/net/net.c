/* net.c — the transport on a libuv loop (see net.h, docs/protocol.md).
 *
 * Map of this file:
 *   1. objects (their types in net-int.h): peers, connections, write
 *      requests, requests, handlers
 *   2. writing frames (handshake in clear, session frames sealed)
 *   3. handshake state machine (Hello -> Proof -> verdict)
 *   4. session frames: dispatch, replies, keepalive
 *   5. reading: alloc/read callbacks over the frame decoder
 *   6. links: attach with tie-break / duplicate detection, up/down, dialing
 *   7. the periodic tick (dial, keepalive, handshake timeout, dead links)
 *   8. public API
 *
 * Ownership: the krg_net owns every conn, request and handle; everything
 * is freed from uv close callbacks, and net->handles counts the open ones
 * so krg_net_close() can report when memory is gone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "../lib/log.h"
#include "../lib/macro.h"
#include "../lib/metrics.h"
#include "../lib/nodelist.h"
#include "proto/net.pb-c.h"
#include "frame.h"
#include "net.h"
#include "session.h"
#include "net-int.h"

#define TICK_MS 50
#define HS_TIMEOUT_MS 5000
#define HS_MAX_FRAME 1024
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
/* A node dials higher ids at once and lower ids only after this delay, so
 * at cluster start the lower id's connection usually wins without a race. */
#define DIAL_LOWER_DELAY_MS 300
#define RXBUF_BYTES (64 * 1024)
#define DIRECT_MIN (32 * 1024)
#define BULK_SOCKBUF 0
#define DEFAULT_HEARTBEAT_MS 500
#define DEFAULT_REQ_TIMEOUT_MS 5000
/* Connections accepted and not yet authenticated: anyone who reaches the
 * port can open them, so they are bounded (each holds a descriptor and a
 * receive buffer until HS_TIMEOUT_MS), in all and per remote address. */
#define MAX_UNAUTH_CONNS 256
#define MAX_UNAUTH_PER_ADDR 32

static const char *const ch_name[CH_N] = { "control", "bulk" };

static void conn_close(struct conn *c, enum krg_log_level lvl, const char *why);
static void peer_down(struct krg_net *net, struct peer *p);
static void flush_bulk(struct krg_net *net, struct peer *p);

/* A relaxed link's keepalive: liveness of nodes that are not raft voters
 * is the leader's business (it pings everyone at heartbeat_ms); between two
 * such nodes a link only needs to stay open. */
#define RELAXED_PING_MS 10000u

/* Room for every node plus joiners in flight; the array never moves,
 * since connections point into it. */
#define PEER_CAP (KRG_MAX_NODES + 32)

static struct peer *peer_find(const struct krg_net *net, uint32_t id);

static void peer_init(struct peer *p, const struct krg_net_peer_addr *a)
{
	memset(p, 0, sizeof(*p));
	p->addr = *a;
	p->addr.host[sizeof(p->addr.host) - 1] = 0;
	klist_init(&p->bulk_queue);
	for (int ch = 0; ch < CH_N; ch++)
		p->backoff_ms[ch] = BACKOFF_MIN_MS;
}

/* Whether a connection (in any state, closing ones included) points at
 * this peer: a joiner's handshake holds its slot before it is attached. */
static bool peer_referenced(const struct krg_net *net, const struct peer *p)
{
	for (const struct klist *l = net->conns.next; l != &net->conns; l = l->next)
		if (klist_entry(l, struct conn, link)->peer == p)
			return true;
	return false;
}

/* A joiner's slot: a fresh one, or that of a joiner gone. A slot whose
 * joiner is still shaking hands is not gone: reusing it gave a second
 * concurrent joiner the first one's connection, refused as a duplicate
 * node id. */
static struct peer *joiner_slot(struct krg_net *net, uint32_t id)
{
	struct krg_net_peer_addr a = { .id = id };
	struct peer *p = NULL;
	for (size_t i = 0; i < net->n_peers && !p; i++) {
		struct peer *q = &net->peers[i];
		if (q->joiner && !q->up && !q->link[CH_CONTROL] && !q->link[CH_BULK] && klist_empty(&q->bulk_queue) &&
		    !peer_referenced(net, q))
			p = q;
	}
	if (!p) {
		if (net->n_peers >= PEER_CAP)
			return NULL;
		p = &net->peers[net->n_peers++];
	}
	peer_init(p, &a);
	p->joiner = true;
	p->next_dial[CH_CONTROL] = p->next_dial[CH_BULK] = UINT64_MAX;
	return p;
}

static struct peer *peer_find(const struct krg_net *net, uint32_t id)
{
	for (size_t i = 0; i < net->n_peers; i++)
		if (net->peers[i].addr.id == id)
			return &net->peers[i];
	return NULL;
}

static void handle_closed(struct krg_net *net)
{
	if (--net->handles == 0 && net->closing) {
		void (*cb)(void *) = net->close_cb;
		void *data = net->close_data;
		for (size_t i = 0; i < net->n_peers; i++)
			while (!klist_empty(&net->peers[i].bulk_queue)) {
				struct bulk_item *b = klist_entry(net->peers[i].bulk_queue.next, struct bulk_item, link);
				klist_del(&b->link);
				free(b);
			}
		while (!klist_empty(&net->handlers)) {
			struct handler *h = klist_entry(net->handlers.next, struct handler, link);
			klist_del(&h->link);
			free(h->type);
			free(h);
		}
		while (!klist_empty(&net->watches)) {
			struct peer_watch *w = klist_entry(net->watches.next, struct peer_watch, link);
			klist_del(&w->link);
			free(w);
		}
		free(net->peers);
		free(net->cluster_name);
		free(net->listen_host);
		free(net->joiner_msg);
		sodium_memzero(net->opts.key, sizeof(net->opts.key));
		free(net);
		if (cb)
			cb(data);
	}
}

/* ---- 2. writing frames ------------------------------------------------- */

static void on_write(uv_write_t *w, int status)
{
	struct wreq *wr = container_of(w, struct wreq, w);
	struct conn *c = w->handle->data;
	krg_net_done_cb done = wr->done_cb;
	void *data = wr->data;

	free(wr);
	if (status < 0 && c->state != CS_CLOSING)
		conn_close(c, LOG_LVL_WARN, uv_strerror(status));
	else if (c->close_after_write && c->state != CS_CLOSING && c->tcp.write_queue_size == 0)
		conn_close(c, LOG_LVL_DEBUG, "rejected");
	if (done)
		done(status < 0 ? -ECONNRESET : 0, data);
}

static int conn_write(struct conn *c, struct wreq *wr)
{
	int r = uv_write(&wr->w, (uv_stream_t *)&c->tcp, wr->bufs, wr->nbufs, on_write);
	if (r < 0) {
		free(wr);
		return r;
	}
	c->last_tx = uv_now(c->net->loop);
	return 0;
}

/* Handshake frame: length + packed Handshake message, in clear. */
static int send_handshake(struct conn *c, const Krg__Net__Handshake *hs)
{
	size_t len = krg__net__handshake__get_packed_size(hs);
	struct wreq *wr = calloc(1, sizeof(*wr) + KRG_FRAME_HDR + len);
	if (!wr)
		return -ENOMEM;
	krg_frame_put_len(wr->buf, (uint32_t)len);
	krg__net__handshake__pack(hs, wr->buf + KRG_FRAME_HDR);
	wr->bufs[0] = uv_buf_init((char *)wr->buf, (unsigned)(KRG_FRAME_HDR + len));
	wr->nbufs = 1;
	return conn_write(c, wr);
}

/* Session frame. copy_body: the body is copied into the frame (control
 * messages, whose body the caller may reuse at once, and every encrypted
 * frame, which is sealed in place); otherwise the body is gathered from
 * the caller's memory by writev (bulk in integrity mode: zero copy). */
static int send_env(struct conn *c, const struct krg_env *env, bool copy_body, krg_net_done_cb done, void *data)
{
	uint8_t head[KRG_ENV_HEAD_MAX];
	int hl = krg_env_encode_head(env, head);
	if (hl < 0)
		return hl;
	size_t plen = (size_t)hl + env->body_len + KRG_TAG_BYTES;
	if (plen > c->net->max_frame)
		return -EMSGSIZE;
	if (c->tx.cipher != KRG_CIPHER_NONE)
		copy_body = true;
	size_t inl = KRG_FRAME_HDR + (size_t)hl + (copy_body ? env->body_len : 0);
	struct wreq *wr = malloc(sizeof(*wr) + inl);
	if (!wr)
		return -ENOMEM;
	wr->net = c->net;
	wr->done_cb = done;
	wr->data = data;
	uint8_t *p = wr->buf;
	krg_frame_put_len(p, (uint32_t)plen);
	memcpy(p + KRG_FRAME_HDR, head, hl);
	if (copy_body) {
		/* AES-GCM encrypts the body into the frame (no copy first). */
		if (!krg_seal_frame_out(&c->tx, p, p + KRG_FRAME_HDR, hl, env->body, env->body_len, p + KRG_FRAME_HDR + hl, wr->tag)) {
			if (env->body_len)
				memcpy(p + KRG_FRAME_HDR + hl, env->body, env->body_len);
			krg_seal_frame(&c->tx, p, p + KRG_FRAME_HDR, hl + env->body_len, NULL, 0, wr->tag);
		}
		wr->bufs[0] = uv_buf_init((char *)p, inl);
		wr->bufs[1] = uv_buf_init((char *)wr->tag, KRG_TAG_BYTES);
		wr->nbufs = 2;
	} else {
		krg_seal_frame(&c->tx, p, p + KRG_FRAME_HDR, hl, env->body, env->body_len, wr->tag);
		wr->bufs[0] = uv_buf_init((char *)p, inl);
		wr->bufs[1] = uv_buf_init((char *)env->body, env->body_len);
		wr->bufs[2] = uv_buf_init((char *)wr->tag, KRG_TAG_BYTES);
		wr->nbufs = 3;
	}
	int r = conn_write(c, wr);
	if (r == 0)
		krg_metrics_frame(c->peer_id, c->channel, true, KRG_FRAME_HDR + plen);
	return r;
}

static int send_simple(struct conn *c, const char *type, uint64_t req_id, bool is_reply, int status,
		       const void *body, size_t len)
{
	struct krg_env env = {
		.version = KRG_ENVELOPE_VERSION, .type = type, .type_len = type ? strlen(type) : 0,
		.req_id = req_id, .is_reply = is_reply, .status = status, .body = body, .body_len = len,
	};
	return send_env(c, &env, true, NULL, NULL);
}

static int send_ping(struct conn *c)
{
	Krg__Net__Ping pg = KRG__NET__PING__INIT;
	uint8_t buf[16];
	pg.has_interval_ms = true;
	pg.interval_ms = c->peer && c->peer->relaxed ? RELAXED_PING_MS : (uint32_t)c->net->opts.heartbeat_ms;
	size_t n = krg__net__ping__pack(&pg, buf);
	return send_simple(c, "net.ping", 0, false, 0, buf, n);
}

/* ---- 3. handshake ------------------------------------------------------ */

static int send_hello(struct conn *c)
{
	struct krg_net *net = c->net;
	uint8_t nonce[KRG_HS_NONCE_BYTES];
	Krg__Net__Hello h = KRG__NET__HELLO__INIT;
	Krg__Net__Handshake hs = KRG__NET__HANDSHAKE__INIT;

	randombytes_buf(nonce, sizeof(nonce));
	crypto_box_keypair(c->eph_pk, c->eph_sk);
	h.protocol_version = KRG_NET_PROTOCOL_VERSION;
	h.node_id = net->opts.self_id;
	h.cluster_name = net->cluster_name;
	h.channel = c->channel == CH_BULK ? KRG__NET__CHANNEL__BULK : KRG__NET__CHANNEL__CONTROL;
	h.nonce = (ProtobufCBinaryData){ sizeof(nonce), nonce };
	h.eph_pk = (ProtobufCBinaryData){ sizeof(c->eph_pk), c->eph_pk };
	h.encrypt = net->opts.encrypt;
	h.has_ciphers = true;
	h.ciphers = net->ciphers;
	h.has_target_id = c->initiator;
	h.target_id = c->initiator ? c->peer->addr.id : 0;
	h.has_instance = true;
	h.instance = net->instance;
	c->my_hello_len = krg__net__hello__get_packed_size(&h);
	c->my_hello = malloc(c->my_hello_len);
	if (!c->my_hello)
		return -ENOMEM;
	krg__net__hello__pack(&h, c->my_hello);
	hs.hello = &h;
	return send_handshake(c, &hs);
}

/* Bulk: big socket buffers when BULK_SOCKBUF is set; 0 leaves Linux's
 * autotuning alone (measured faster on loopback and veth). No Nagle
 * either: frames are written whole, and a flow-controlled stream (krg run)
 * waits for the tail of its last frame before it returns credit, so
 * Nagle + delayed ACK would stall it ~40 ms per window. */
static void bulk_sockopts(struct conn *c)
{
	uv_tcp_nodelay(&c->tcp, 1);
	if (BULK_SOCKBUF) {
		uv_send_buffer_size((uv_handle_t *)&c->tcp, &(int){ BULK_SOCKBUF });
		uv_recv_buffer_size((uv_handle_t *)&c->tcp, &(int){ BULK_SOCKBUF });
	}
}

static void send_reject_hs(struct conn *c, int status, const char *reason)
{
	Krg__Net__Reject rj = KRG__NET__REJECT__INIT;
	Krg__Net__Handshake hs = KRG__NET__HANDSHAKE__INIT;
	rj.status = status;
	rj.reason = (char *)reason;
	hs.reject = &rj;
	if (send_handshake(c, &hs) == 0)
		c->close_after_write = true;
	else
		conn_close(c, LOG_LVL_DEBUG, reason);
}

/* Reject their Hello: tell them why (unauthenticated, informational), log. */
static void hs_refuse(struct conn *c, int status, const char *fmt, ...) _printf_(3, 4);
static void hs_refuse(struct conn *c, int status, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("rejecting connection from %s (node %u): %s", c->addr, c->peer_id, why);
	send_reject_hs(c, status, why);
	c->deadline = uv_now(c->net->loop) + 1000; /* flush, then close */
}

static void hs_on_hello(struct conn *c, Krg__Net__Hello *h, const uint8_t *raw, size_t raw_len)
{
	struct krg_net *net = c->net;
	c->peer_id = h->node_id;
	if (h->protocol_version != KRG_NET_PROTOCOL_VERSION)
		return hs_refuse(c, -EPROTONOSUPPORT, "protocol version %u, we speak %u", h->protocol_version,
				 KRG_NET_PROTOCOL_VERSION);
	if (strcmp(h->cluster_name, net->cluster_name) != 0)
		return hs_refuse(c, -EPERM, "cluster name '%.64s', ours is '%s'", h->cluster_name, net->cluster_name);
	if (h->nonce.len != KRG_HS_NONCE_BYTES || h->eph_pk.len != 32)
		return hs_refuse(c, -EPROTO, "malformed hello");
	if (h->node_id == net->opts.self_id)
		return hs_refuse(c, -EEXIST, "hello claims our own node id %u", h->node_id);
	struct peer *p = peer_find(net, h->node_id);
	/* A joiner dialed a member it knew by address only. */
	if (!p && c->initiator && c->peer->addr.id == KRG_NET_ANY_ID && h->node_id < KRG_NET_JOINER_MIN) {
		p = c->peer;
		p->addr.id = h->node_id;
	}
	if (!p && !c->initiator && net->joiner_msg && h->node_id >= KRG_NET_JOINER_MIN && h->node_id != KRG_NET_ANY_ID &&
	    !(p = joiner_slot(net, h->node_id)))
		return hs_refuse(c, -EBUSY, "too many joining machines at once");
	if (!p)
		return hs_refuse(c, -ENOENT, "unknown node %u (not in the peer list)", h->node_id);
	if (c->initiator && p != c->peer)
		return hs_refuse(c, -EPROTO, "dialed node %u but node %u answered", c->peer->addr.id, h->node_id);
	if (!c->initiator && h->has_target_id && h->target_id != net->opts.self_id && h->target_id != KRG_NET_ANY_ID)
		return hs_refuse(c, -EPROTO, "peer dialed node %u, this is node %u", h->target_id, net->opts.self_id);
	int ch = h->channel == KRG__NET__CHANNEL__BULK ? CH_BULK : CH_CONTROL;
	if (c->initiator && ch != c->channel)
		return hs_refuse(c, -EPROTO, "channel mismatch");
	if (h->encrypt != net->opts.encrypt)
		return hs_refuse(c, -EPROTO, "encryption mismatch: node %u has encrypt=%s, we have encrypt=%s",
				 h->node_id, h->encrypt ? "on" : "off", net->opts.encrypt ? "on" : "off");
	if (!c->initiator) {
		c->channel = ch;
		if (ch == CH_CONTROL)
			uv_tcp_nodelay(&c->tcp, 1);
		else
			bulk_sockopts(c);
	}
	c->peer = p;
	c->peer_instance = h->has_instance ? h->instance : 0;
	if (!c->initiator && send_hello(c) < 0)
		return conn_close(c, LOG_LVL_WARN, "write failed");

	if (c->initiator)
		krg_hs_transcript(c->my_hello, c->my_hello_len, raw, raw_len, c->th);
	else
		krg_hs_transcript(raw, raw_len, c->my_hello, c->my_hello_len, c->th);
	enum krg_cipher cipher = krg_session_pick(net->opts.encrypt, net->ciphers, h->has_ciphers ? h->ciphers : 1);
	if (krg_session_derive(net->opts.key, c->eph_sk, h->eph_pk.data, c->th, c->initiator, cipher, &c->tx,
			       &c->rx) < 0)
		return hs_refuse(c, -EPROTO, "bad ephemeral key");
	sodium_memzero(c->eph_sk, sizeof(c->eph_sk));

	uint8_t mac[crypto_auth_BYTES];
	Krg__Net__Proof pf = KRG__NET__PROOF__INIT;
	Krg__Net__Handshake hs = KRG__NET__HANDSHAKE__INIT;
	krg_hs_proof(net->opts.key, c->initiator, c->th, mac);
	pf.mac = (ProtobufCBinaryData){ sizeof(mac), mac };
	hs.proof = &pf;
	if (send_handshake(c, &hs) < 0)
		return conn_close(c, LOG_LVL_WARN, "write failed");
	c->state = CS_PROOF;
}

static int admit(struct conn *c, char *why, size_t n);
static bool attach(struct conn *c);

static void hs_on_proof(struct conn *c, const Krg__Net__Proof *pf)
{
	struct krg_net *net = c->net;
	if (!krg_hs_proof_ok(net->opts.key, !c->initiator, c->th, pf->mac.data, pf->mac.len)) {
		log_warn("node %u at %s failed authentication (wrong cluster key?)", c->peer_id, c->addr);
		if (net->opts.auth_fatal && net->opts.fatal_cb) {
			char msg[160];
			snprintf(msg, sizeof(msg), "%s failed authentication: it holds another cluster key", c->addr);
			net->opts.fatal_cb(net, -EACCES, msg, net->opts.data);
			return conn_close(c, LOG_LVL_DEBUG, "authentication failed");
		}
		return conn_close(c, LOG_LVL_DEBUG, "authentication failed");
	}
	krg_frame_dec_set_max(&c->dec, net->max_frame);
	if (c->initiator) {
		c->state = CS_VERDICT;
		return;
	}
	char why[160];
	int r = admit(c, why, sizeof(why));
	if (r < 0) {
		if (r == -EALREADY)
			log_debug("node %u at %s: %s", c->peer_id, c->addr, why);
		else
			log_warn("rejecting node %u at %s: %s", c->peer_id, c->addr, why);
		if (send_simple(c, "net.reject", 0, false, r, why, strlen(why)) < 0)
			return conn_close(c, LOG_LVL_DEBUG, "write failed");
		c->close_after_write = true;
		c->state = CS_VERDICT; /* ignore whatever else comes */
		c->deadline = uv_now(net->loop) + 1000;
		return;
	}
	if (send_simple(c, "net.welcome", 0, false, 0, NULL, 0) < 0)
		return conn_close(c, LOG_LVL_WARN, "write failed");
	attach(c);
}

static void hs_frame(struct conn *c, const uint8_t *f, size_t len)
{
	Krg__Net__Handshake *hs = krg__net__handshake__unpack(NULL, len, f);
	if (!hs) {
		log_warn("dropping connection from %s: malformed handshake frame", c->addr);
		return conn_close(c, LOG_LVL_DEBUG, "malformed handshake");
	}
	if (hs->reject) {
		log_warn("node %u at %s rejected the connection: %s", c->peer_id, c->addr, hs->reject->reason);
		conn_close(c, LOG_LVL_DEBUG, "rejected");
	} else if (c->state == CS_HELLO && hs->hello) {
		/* The transcript covers the Hello bytes exactly as sent, so the
		 * frame must be just that submessage (field 1, tag 0x0a), and the
		 * values used are parsed from those very bytes. */
		size_t off = 0;
		uint64_t l = 0;
		if (len > 1 && f[0] == 0x0a)
			for (unsigned shift = 0, i = 1; i < len && shift < 35; shift += 7) {
				l |= (uint64_t)(f[i] & 0x7f) << shift;
				if (!(f[i++] & 0x80)) {
					off = i;
					break;
				}
			}
		Krg__Net__Hello *h = off && l == len - off ? krg__net__hello__unpack(NULL, l, f + off) : NULL;
		if (!h) {
			log_warn("dropping connection from %s: malformed hello", c->addr);
			conn_close(c, LOG_LVL_DEBUG, "malformed hello");
		} else {
			hs_on_hello(c, h, f + off, (size_t)l);
			krg__net__hello__free_unpacked(h, NULL);
		}
	} else if (c->state == CS_PROOF && hs->proof) {
		hs_on_proof(c, hs->proof);
	} else {
		log_warn("dropping connection from %s (node %u): unexpected handshake message", c->addr, c->peer_id);
		conn_close(c, LOG_LVL_DEBUG, "protocol error");
	}
	krg__net__handshake__free_unpacked(hs, NULL);
}

/* ---- 4. session frames ------------------------------------------------- */

/* Found handlers move to the front: every frame looks its type up here,
 * among every service's types, and a busy type (kddm's IPC calls) then
 * costs one comparison instead of dozens. */
static struct handler *handler_find(struct krg_net *net, const char *type)
{
	for (struct klist *l = net->handlers.next; l != &net->handlers; l = l->next) {
		struct handler *h = klist_entry(l, struct handler, link);
		if (strcmp(h->type, type) == 0) {
			if (l != net->handlers.next) {
				klist_del(l);
				klist_add_head(&net->handlers, l);
			}
			return h;
		}
	}
	return NULL;
}

static void req_free_cb(uv_handle_t *h)
{
	struct req *rq = h->data;
	struct krg_net *net = rq->net;
	free(rq);
	handle_closed(net);
}

/* Remove a request and call its callback (exactly once). */
static void req_complete(struct req *rq, int status, const struct krg_msg *reply)
{
	struct krg_net *net = rq->net;
	klist_del(&rq->link);
	uv_timer_stop(&rq->timer);
	uv_close((uv_handle_t *)&rq->timer, req_free_cb);
	rq->cb(net, status, reply, rq->data);
}

static void on_reply(struct conn *c, const struct krg_env *env)
{
	struct krg_net *net = c->net;
	for (struct klist *l = net->reqs.next; l != &net->reqs; l = l->next) {
		struct req *rq = klist_entry(l, struct req, link);
		if (rq->id == env->req_id && rq->to == c->peer_id) {
			struct krg_msg m = { .type = "", .body = env->body, .len = env->body_len };
			int st = env->status > 0 ? -EPROTO : env->status;
			req_complete(rq, st, st == 0 ? &m : NULL);
			return;
		}
	}
	log_debug("late reply %" PRIu64 " from node %u ignored", env->req_id, c->peer_id);
}

static void session_frame(struct conn *c, uint8_t *f, size_t len)
{
	struct krg_net *net = c->net;
	long pl = krg_open_frame(&c->rx, f, len);
	if (pl < 0) {
		log_warn("dropping connection to node %u at %s: frame failed authentication", c->peer_id, c->addr);
		return conn_close(c, LOG_LVL_DEBUG, "bad frame");
	}
	/* Counted once authenticated: what a peer really sent us. */
	krg_metrics_frame(c->peer_id, c->channel, false, KRG_FRAME_HDR + len);
	struct krg_env env;
	if (krg_env_decode(f, (size_t)pl, &env) < 0 || env.type_len > KRG_TYPE_MAX) {
		log_warn("dropping connection to node %u at %s: malformed envelope", c->peer_id, c->addr);
		return conn_close(c, LOG_LVL_DEBUG, "bad envelope");
	}
	uint64_t now = uv_now(net->loop);
	c->last_rx = now;
	c->peer->last_heard = now;
	char type[KRG_TYPE_MAX + 1];
	memcpy(type, env.type, env.type_len);
	type[env.type_len] = 0;

	if (c->state == CS_VERDICT) {
		if (!c->initiator)
			return; /* rejected, flushing */
		if (strcmp(type, "net.welcome") == 0) {
			attach(c);
		} else if (strcmp(type, "net.reject") == 0) {
			int n = (int)MIN(env.body_len, 200);
			if (env.status == -EEXIST) {
				char msg[256];
				snprintf(msg, sizeof(msg),
					 "another krgd with node id %u is already running (reported by node %u)",
					 net->opts.self_id, c->peer_id);
				/* fatal_cb's owner reports it; logging here too would
				 * print the refusal twice on a foreground krgd. */
				if (!net->opts.fatal_cb)
					log_error("%s", msg);
				conn_close(c, LOG_LVL_DEBUG, "duplicate node id");
				if (!net->fatal) {
					net->fatal = true;
					if (net->opts.fatal_cb)
						net->opts.fatal_cb(net, -EEXIST, msg, net->opts.data);
				}
			} else {
				log_debug("node %u at %s declined the connection: %.*s", c->peer_id, c->addr, n,
					  (const char *)env.body);
				conn_close(c, LOG_LVL_DEBUG, "declined");
			}
		} else {
			log_warn("dropping connection to node %u at %s: expected a verdict", c->peer_id, c->addr);
			conn_close(c, LOG_LVL_DEBUG, "protocol error");
		}
		return;
	}
	if (env.is_reply) {
		if (env.req_id)
			on_reply(c, &env);
		return;
	}
	if (strncmp(type, "net.", 4) == 0) {
		/* net.ping: last_heard, and how long its silence may last. */
		if (!strcmp(type, "net.ping")) {
			Krg__Net__Ping *pg = env.body_len ? krg__net__ping__unpack(NULL, env.body_len, env.body) : NULL;
			c->rx_ping_ms = pg && pg->has_interval_ms ? MIN(pg->interval_ms, 4 * RELAXED_PING_MS) : 0;
			if (pg)
				krg__net__ping__free_unpacked(pg, NULL);
		}
		return;
	}
	if (c->peer && c->peer->joiner && strcmp(type, net->joiner_msg) != 0) {
		log_warn("message '%s' from joining machine %s refused", type, c->addr);
		if (env.req_id)
			send_simple(c, NULL, env.req_id, true, -EPERM, NULL, 0);
		return;
	}
	struct handler *h = handler_find(net, type);
	if (!h) {
		if (env.req_id)
			send_simple(c, NULL, env.req_id, true, -ENOENT, NULL, 0);
		else
			log_warn("message '%s' from node %u has no handler, ignored", type, c->peer_id);
		return;
	}
	struct krg_msg m = { .type = type, .body = env.body, .len = env.body_len };
	h->cb(net, c->peer_id, &m, env.req_id, h->data);
}

static void conn_frame(struct conn *c, uint8_t *f, size_t len)
{
	if (c->state == CS_HELLO || c->state == CS_PROOF)
		hs_frame(c, f, len);
	else if (c->state == CS_VERDICT || c->state == CS_UP || c->state == CS_RETIRED)
		session_frame(c, f, len);
}

/* ---- 5. reading -------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t room;
	c->direct = krg_frame_dec_direct(&c->dec, DIRECT_MIN, &room);
	if (c->direct)
		*buf = uv_buf_init((char *)c->direct, (unsigned)room);
	else
		*buf = uv_buf_init((char *)c->rxbuf, RXBUF_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (c->state == CS_CLOSING || (c->close_after_write && n > 0))
		return; /* a rejection is being flushed: ignore the rest */
	if (n < 0) {
		if (c->state == CS_UP)
			log_info("link to node %u at %s (%s) lost: %s", c->peer_id, c->addr, ch_name[c->channel],
				 n == UV_EOF ? "closed by peer" : uv_strerror((int)n));
		else if (c->state < CS_VERDICT)
			log_warn("dropping connection from %s: closed during handshake", c->addr);
		return conn_close(c, LOG_LVL_DEBUG, n == UV_EOF ? "closed by peer" : uv_strerror((int)n));
	}
	uint8_t *data = (uint8_t *)buf->base;
	size_t len = (size_t)n;
	if (c->direct && data == c->direct) {
		krg_frame_dec_commit(&c->dec, len);
		len = 0;
	}
	c->direct = NULL;
	for (;;) {
		uint8_t *f;
		size_t fl;
		int r = krg_frame_dec_next(&c->dec, &data, &len, &f, &fl);
		if (r == 0)
			return;
		if (r < 0) {
			if (r == -EMSGSIZE)
				log_warn("dropping connection from %s (node %u): frame length %u exceeds the limit %zu",
					 c->addr, c->peer_id, krg_frame_dec_bad_len(&c->dec), c->dec.max);
			else if (r == -EBADMSG)
				log_warn("dropping connection from %s (node %u): frame length 0", c->addr, c->peer_id);
			else
				log_warn("dropping connection from %s (node %u): %s", c->addr, c->peer_id,
					 strerror(-r));
			return conn_close(c, LOG_LVL_DEBUG, "framing error");
		}
		conn_frame(c, f, fl);
		if (c->state == CS_CLOSING || c->close_after_write)
			return;
	}
}

/* ---- 6. links ---------------------------------------------------------- */

static uint32_t initiator_id(const struct conn *c)
{
	return c->initiator ? c->net->opts.self_id : c->peer_id;
}

/* Acceptor's decision after a good proof: 0 to welcome, -EALREADY when an
 * existing connection of the same process wins the tie-break, -EEXIST when
 * a live link belongs to another process with this node id. */
static int admit(struct conn *c, char *why, size_t n)
{
	struct krg_net *net = c->net;
	struct peer *p = c->peer;
	struct conn *old = p->link[c->channel];
	if (!old)
		return 0;
	if (old->peer_instance == c->peer_instance) {
		if (initiator_id(old) < initiator_id(c)) {
			snprintf(why, n, "already connected (%s)", ch_name[c->channel]);
			return -EALREADY;
		}
		return 0;
	}
	uint64_t now = uv_now(net->loop);
	if (p->last_heard && now - p->last_heard < 3ull * net->opts.heartbeat_ms) {
		snprintf(why, n, "node id %u is already in use by a live krgd (heard %" PRIu64 " ms ago)",
			 c->peer_id, now - p->last_heard);
		return -EEXIST;
	}
	return 0;
}

static void emit_peer(struct krg_net *net, struct peer *p, bool up)
{
	if (p->joiner)
		return; /* services only know nodes */
	for (struct klist *l = net->watches.next; l != &net->watches;) {
		struct peer_watch *w = klist_entry(l, struct peer_watch, link);
		l = l->next;
		w->cb(net, p->addr.id, up, w->data);
		if (net->closing)
			return;
	}
}

static void fail_bulk_queue(struct peer *p, int status)
{
	while (!klist_empty(&p->bulk_queue)) {
		struct bulk_item *b = klist_entry(p->bulk_queue.next, struct bulk_item, link);
		klist_del(&b->link);
		krg_net_done_cb cb = b->done_cb;
		void *data = b->data;
		free(b);
		if (cb)
			cb(status, data);
	}
}

static void fail_requests(struct krg_net *net, struct peer *p, int status)
{
	for (;;) {
		struct req *found = NULL;
		for (struct klist *l = net->reqs.next; l != &net->reqs; l = l->next) {
			struct req *rq = klist_entry(l, struct req, link);
			if (!p || rq->to == p->addr.id) {
				found = rq;
				break;
			}
		}
		if (!found)
			return;
		req_complete(found, status, NULL);
	}
}

static void peer_down(struct krg_net *net, struct peer *p)
{
	if (!p->up)
		return;
	p->up = false;
	log_info("node %u is down", p->addr.id);
	if (net->closing)
		return;
	fail_requests(net, p, -ECONNRESET);
	fail_bulk_queue(p, -ECONNRESET);
	emit_peer(net, p, false);
}

/* Simultaneous open: both nodes keep the connection dialed by the lower
 * id; the other one may already carry frames, so it is drained, not cut. */
static void retire(struct conn *c)
{
	log_debug("node %u at %s: %s connection retired (duplicate)", c->peer_id, c->addr, ch_name[c->channel]);
	c->state = CS_RETIRED;
	c->deadline = uv_now(c->net->loop) + 4ull * c->net->opts.heartbeat_ms;
}

/* Make c the peer's link for its channel; false if it lost the tie-break
 * to an existing link of the same process (c is retired then). */
static bool attach(struct conn *c)
{
	struct krg_net *net = c->net;
	struct peer *p = c->peer;
	int ch = c->channel;
	struct conn *old = p->link[ch];
	bool restarted = false;

	if (p->dialing[ch] == c)
		p->dialing[ch] = NULL;
	if (old) {
		if (old->peer_instance == c->peer_instance && initiator_id(old) < initiator_id(c)) {
			retire(c);
			return false;
		}
		restarted = old->peer_instance != c->peer_instance;
		p->link[ch] = NULL; /* detach first: replacing is not a link loss */
		if (restarted)
			conn_close(old, LOG_LVL_DEBUG, "replaced by a new process");
		else
			retire(old);
	}
	p->link[ch] = c;
	c->state = CS_UP;
	c->last_rx = c->last_tx = p->last_heard = uv_now(net->loop);
	p->backoff_ms[ch] = BACKOFF_MIN_MS;
	log_debug("node %u at %s: %s link up (%s)", c->peer_id, c->addr, ch_name[ch],
		  c->tx.cipher == KRG_CIPHER_NONE ? "integrity only" : c->tx.cipher == KRG_CIPHER_AESGCM ? "aes256gcm" : "chacha20poly1305");
	if (ch == CH_CONTROL) {
		if (restarted && p->up)
			peer_down(net, p);
		if (!p->up) {
			p->up = true;
			log_info("node %u is up (%s)", p->addr.id, c->addr);
			emit_peer(net, p, true);
		}
	} else {
		flush_bulk(net, p);
	}
	return true;
}

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct krg_net *net = c->net;
	klist_del(&c->link);
	krg_frame_dec_free(&c->dec);
	free(c->rxbuf);
	free(c->my_hello);
	krg_seal_clear(&c->tx);
	krg_seal_clear(&c->rx);
	sodium_memzero(c, sizeof(*c));
	free(c);
	handle_closed(net);
}

static void conn_close(struct conn *c, enum krg_log_level lvl, const char *why)
{
	struct krg_net *net = c->net;
	struct peer *p = c->peer;
	if (c->state == CS_CLOSING)
		return;
	krg_log(lvl, "closing connection %s (node %u): %s", c->addr, c->peer_id, why);
	c->state = CS_CLOSING;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	if (!p)
		return;
	if (c->initiator && p->dialing[c->channel] == c)
		p->dialing[c->channel] = NULL;
	if (c->initiator && !net->closing) {
		int ch = c->channel;
		p->next_dial[ch] = uv_now(net->loop) + p->backoff_ms[ch];
		p->backoff_ms[ch] = MIN(p->backoff_ms[ch] * 2, BACKOFF_MAX_MS);
	}
	if (c->channel >= 0 && p->link[c->channel] == c) {
		p->link[c->channel] = NULL;
		if (c->channel == CH_CONTROL)
			peer_down(net, p);
		else
			p->next_dial[CH_BULK] = uv_now(net->loop) + BACKOFF_MIN_MS;
	}
}

static struct conn *conn_new(struct krg_net *net, bool initiator, struct peer *p, int channel)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rxbuf = malloc(RXBUF_BYTES);
	/* Dialing: create the socket now so options apply before connect();
	 * accepting: uv_accept() supplies it. */
	if (!c->rxbuf || (initiator ? uv_tcp_init_ex(net->loop, &c->tcp, AF_INET) : uv_tcp_init(net->loop, &c->tcp)) < 0) {
		free(c->rxbuf);
		free(c);
		return NULL;
	}
	net->handles++;
	c->net = net;
	c->tcp.data = c;
	c->initiator = initiator;
	c->peer = p;
	c->channel = channel;
	c->peer_id = p ? p->addr.id : 0;
	c->state = CS_CONNECTING;
	c->deadline = uv_now(net->loop) + HS_TIMEOUT_MS;
	krg_frame_dec_init(&c->dec, HS_MAX_FRAME);
	klist_add_tail(&net->conns, &c->link);
	return c;
}

static void conn_begin(struct conn *c)
{
	int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (r == 0 && c->initiator)
		r = send_hello(c); /* the acceptor answers once it knows the channel */
	if (r < 0)
		return conn_close(c, LOG_LVL_WARN, uv_strerror(r));
	c->state = CS_HELLO;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->handle->data;
	if (c->state == CS_CLOSING)
		return;
	if (status < 0)
		return conn_close(c, LOG_LVL_DEBUG, uv_strerror(status));
	conn_begin(c);
}

static void dial(struct krg_net *net, struct peer *p, int ch)
{
	struct sockaddr_in sa;
	if (uv_ip4_addr(p->addr.host, p->addr.port, &sa) < 0) {
		p->next_dial[ch] = UINT64_MAX;
		log_error("node %u: bad address %s", p->addr.id, p->addr.host);
		return;
	}
	struct conn *c = conn_new(net, true, p, ch);
	if (!c)
		return;
	snprintf(c->addr, sizeof(c->addr), "%s:%u", p->addr.host, p->addr.port);
	if (ch == CH_CONTROL) {
		uv_tcp_nodelay(&c->tcp, 1);
	} else {
		bulk_sockopts(c);
	}
	p->dialing[ch] = c;
	int r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa, on_connect);
	if (r < 0)
		conn_close(c, LOG_LVL_DEBUG, uv_strerror(r));
}

static void on_connection(uv_stream_t *server, int status)
{
	struct krg_net *net = server->data;
	if (status < 0 || net->closing)
		return;
	struct conn *c = conn_new(net, false, NULL, -1);
	if (!c)
		return;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0)
		return conn_close(c, LOG_LVL_WARN, "accept failed");
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		uv_ip4_name(sin, ip, sizeof(ip));
		snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, ntohs(sin->sin_port));
	} else {
		snprintf(c->addr, sizeof(c->addr), "?");
	}
	unsigned all = 0, same = 0;
	size_t iplen = strlen(ip);
	for (struct klist *l = net->conns.next; l != &net->conns; l = l->next) {
		struct conn *o = klist_entry(l, struct conn, link);
		if (o == c || o->initiator || o->state == CS_UP || o->state == CS_CLOSING || o->state == CS_RETIRED)
			continue;
		all++;
		same += !strncmp(o->addr, ip, iplen) && o->addr[iplen] == ':';
	}
	if (all >= MAX_UNAUTH_CONNS || same >= MAX_UNAUTH_PER_ADDR) {
		log_warn("refusing a connection from %s: %u connections not yet authenticated (%u from this address; limits %d, %d)",
			 c->addr, all, same, MAX_UNAUTH_CONNS, MAX_UNAUTH_PER_ADDR);
		return conn_close(c, LOG_LVL_DEBUG, "too many unauthenticated connections");
	}
	conn_begin(c);
}

static void flush_bulk(struct krg_net *net, struct peer *p)
{
	struct conn *c = p->link[CH_BULK];
	while (c && c->state == CS_UP && !klist_empty(&p->bulk_queue)) {
		struct bulk_item *b = klist_entry(p->bulk_queue.next, struct bulk_item, link);
		klist_del(&b->link);
		struct krg_env env = { .version = KRG_ENVELOPE_VERSION, .type = b->type, .type_len = strlen(b->type),
				       .body = b->body, .body_len = b->len };
		int r = send_env(c, &env, false, b->done_cb, b->data);
		krg_net_done_cb cb = b->done_cb;
		void *data = b->data;
		free(b);
		if (r < 0 && cb)
			cb(r, data);
	}
}

/* ---- 7. tick ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
	struct krg_net *net = t->data;
	uint64_t now = uv_now(net->loop);
	uint64_t hb = net->opts.heartbeat_ms;
	uint64_t dead = net->opts.dead_after_ms ? net->opts.dead_after_ms : 4 * hb;
	/* A tick this late means our own process was not running (a starved
	 * node, a stopped krgd): what peers sent meanwhile waits unread in the
	 * sockets, so their silence is ours. Timers run before I/O in a loop
	 * iteration: give every link a fresh window instead of closing it. */
	bool stalled = net->last_tick && now - net->last_tick > hb;
	if (stalled)
		log_info("net: krgd did not run for %" PRIu64 " ms (starved?): link silence counted from now",
			 now - net->last_tick);
	net->last_tick = now;

	for (struct klist *l = net->conns.next; l != &net->conns;) {
		struct conn *c = klist_entry(l, struct conn, link);
		l = l->next;
		if (c->state == CS_CLOSING)
			continue;
		if (c->state != CS_UP) {
			if (now > c->deadline) {
				if (!c->close_after_write && c->state != CS_RETIRED)
					log_warn("dropping connection %s (node %u): handshake timeout", c->addr, c->peer_id);
				conn_close(c, LOG_LVL_DEBUG, "handshake timeout");
			}
			continue;
		}
		if (stalled)
			c->last_rx = now;
		uint64_t conn_dead = MAX(dead, 4ull * c->rx_ping_ms);
		if (now - c->last_rx > conn_dead) {
			log_warn("link to node %u at %s (%s) silent for %" PRIu64 " ms, closing", c->peer_id, c->addr,
				 ch_name[c->channel], now - c->last_rx);
			conn_close(c, LOG_LVL_DEBUG, "silent");
			continue;
		}
		if (now - c->last_tx >= (c->peer && c->peer->relaxed ? RELAXED_PING_MS : hb) &&
		    c->tcp.write_queue_size == 0)
			send_ping(c);
		if (net->closing)
			return;
	}
	if (net->fatal)
		return;
	for (size_t i = 0; i < net->n_peers; i++) {
		struct peer *p = &net->peers[i];
		for (int ch = 0; ch < CH_N && !p->joiner; ch++) {
			if (p->link[ch] || p->dialing[ch] || now < p->next_dial[ch])
				continue;
			if (ch == CH_BULK && !p->up)
				continue; /* bulk follows control */
			dial(net, p, ch);
		}
	}
}

/* ---- 8. public API ----------------------------------------------------- */

void krg_net_set_relaxed(struct krg_net *net, uint32_t id, bool relaxed)
{
	struct peer *p = peer_find(net, id);
	if (!p || p->joiner || p->relaxed == relaxed)
		return;
	p->relaxed = relaxed;
	/* Say so at once: the peer's silence timeout follows our interval. */
	for (struct klist *l = net->conns.next; l != &net->conns; l = l->next) {
		struct conn *c = klist_entry(l, struct conn, link);
		if (c->peer == p && c->state == CS_UP)
			send_ping(c);
	}
}

int krg_net_add_peer(struct krg_net *net, const struct krg_net_peer_addr *addr)
{
	if (addr->id == net->opts.self_id || addr->id >= KRG_NET_JOINER_MIN)
		return 0;
	struct peer *p = peer_find(net, addr->id);
	if (p && !p->joiner) {
		if (!p->up && !p->link[CH_CONTROL] && !p->dialing[CH_CONTROL]) {
			snprintf(p->addr.host, sizeof(p->addr.host), "%s", addr->host);
			p->addr.port = addr->port;
		}
		return 0;
	}
	if (net->n_peers >= PEER_CAP)
		return -ENOSPC;
	p = &net->peers[net->n_peers++];
	peer_init(p, addr);
	uint64_t now = uv_now(net->loop);
	p->next_dial[CH_CONTROL] = p->next_dial[CH_BULK] = now;
	log_info("transport: node %u at %s:%u added", addr->id, p->addr.host, (unsigned)p->addr.port);
	return 1;
}

int krg_net_new(uv_loop_t *loop, const struct krg_net_options *opts, struct krg_net **out)
{
	if (!loop || !opts || !out || !opts->cluster_name || (opts->n_peers && !opts->peers))
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	struct krg_net *net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->loop = loop;
	net->opts = *opts;
	net->cluster_name = strdup(opts->cluster_name);
	net->listen_host = strdup(opts->listen_host ? opts->listen_host : "0.0.0.0");
	net->peers = opts->n_peers <= KRG_MAX_NODES ? calloc(PEER_CAP, sizeof(*net->peers)) : NULL;
	net->joiner_msg = opts->joiner_msg ? strdup(opts->joiner_msg) : NULL;
	if (!net->cluster_name || !net->listen_host || !net->peers || (opts->joiner_msg && !net->joiner_msg)) {
		free(net->joiner_msg);
		free(net->cluster_name);
		free(net->listen_host);
		free(net->peers);
		free(net);
		return -ENOMEM;
	}
	net->opts.cluster_name = net->cluster_name;
	net->opts.listen_host = net->listen_host;
	net->opts.peers = NULL;
	if (!net->opts.heartbeat_ms)
		net->opts.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	if (!net->opts.request_timeout_ms)
		net->opts.request_timeout_ms = DEFAULT_REQ_TIMEOUT_MS;
	net->max_frame = opts->max_frame ? opts->max_frame : KRG_FRAME_DEFAULT_MAX;
	for (size_t i = 0; i < opts->n_peers; i++) {
		if (opts->peers[i].id == opts->self_id)
			continue; /* tolerate a list of every node */
		peer_init(&net->peers[net->n_peers++], &opts->peers[i]);
	}
	randombytes_buf(&net->instance, sizeof(net->instance));
	net->ciphers = krg_session_ciphers();
	klist_init(&net->conns);
	klist_init(&net->reqs);
	klist_init(&net->handlers);
	klist_init(&net->watches);
	selfq_init(&net->selfq, net, loop);
	*out = net;
	return 0;
}

int krg_net_start(struct krg_net *net, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	int r;
	if (net->started || net->closing)
		return -EALREADY;
	r = uv_ip4_addr(net->listen_host, net->opts.listen_port, &sa);
	if (r < 0) {
		snprintf(err, errlen, "bad listen address %s", net->listen_host);
		return r;
	}
	uv_tcp_init(net->loop, &net->listener);
	net->listener.data = net;
	net->handles++;
	net->listening = true;
	r = uv_tcp_bind(&net->listener, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&net->listener, 128, on_connection);
	if (r < 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", net->listen_host, net->opts.listen_port,
			 uv_strerror(r));
		return r;
	}
	uv_timer_init(net->loop, &net->tick);
	net->tick.data = net;
	net->handles++;
	net->started = true;
	uint64_t now = uv_now(net->loop);
	for (size_t i = 0; i < net->n_peers; i++)
		for (int ch = 0; ch < CH_N; ch++)
			net->peers[i].next_dial[ch] =
				net->peers[i].addr.id > net->opts.self_id ? now : now + DIAL_LOWER_DELAY_MS;
	uv_timer_start(&net->tick, on_tick, 0, TICK_MS);
	return 0;
}

static void on_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

/* ---- to this node itself (selfq.c) ---- */

bool net_self_handler(struct krg_net *net, const char *type, krg_net_handler_cb *cb, void **data)
{
	struct handler *h = handler_find(net, type);
	if (!h || !h->self)
		return false;
	*cb = h->cb;
	*data = h->data;
	return true;
}

bool net_self_complete(struct krg_net *net, uint64_t req_id, int status, const struct krg_msg *reply)
{
	for (struct klist *l = net->reqs.next; l != &net->reqs; l = l->next) {
		struct req *rq = klist_entry(l, struct req, link);
		if (rq->id == req_id && rq->to == net->opts.self_id) {
			req_complete(rq, status, reply);
			return true;
		}
	}
	return false;
}

bool net_closing(const struct krg_net *net) { return net->closing; }
void net_handle_opened(struct krg_net *net) { net->handles++; }
void net_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

static bool to_self(const struct krg_net *net, uint32_t to)
{
	return to == net->opts.self_id;
}

void krg_net_close(struct krg_net *net, void (*cb)(void *data), void *data)
{
	if (net->closing)
		return;
	net->close_cb = cb;
	net->close_data = data;
	/* Pending requests and queued bulk get their callbacks once, now. */
	net->closing = true; /* from here on the API returns -ESHUTDOWN */
	fail_requests(net, NULL, -ECANCELED);
	for (size_t i = 0; i < net->n_peers; i++)
		fail_bulk_queue(&net->peers[i], -ECANCELED);
	for (struct klist *l = net->conns.next; l != &net->conns; l = l->next) {
		struct conn *c = klist_entry(l, struct conn, link);
		conn_close(c, LOG_LVL_DEBUG, "shutting down");
	}
	if (net->listening) {
		net->listener.data = net;
		uv_close((uv_handle_t *)&net->listener, on_handle_closed);
	}
	if (net->started) {
		uv_timer_stop(&net->tick);
		uv_close((uv_handle_t *)&net->tick, on_handle_closed);
	}
	selfq_close(&net->selfq);
	if (net->handles == 0) {
		net->handles = 1;
		handle_closed(net);
	}
}

int krg_net_handle(struct krg_net *net, const char *type, krg_net_handler_cb cb, void *data)
{
	if (!type || !cb || strlen(type) > KRG_TYPE_MAX || !*type)
		return -EINVAL;
	if (handler_find(net, type))
		return -EEXIST;
	struct handler *h = calloc(1, sizeof(*h));
	if (!h || !(h->type = strdup(type))) {
		free(h);
		return -ENOMEM;
	}
	h->cb = cb;
	h->data = data;
	klist_add_tail(&net->handlers, &h->link);
	return 0;
}

int krg_net_handle_self(struct krg_net *net, const char *type)
{
	struct handler *h = handler_find(net, type);
	if (!h)
		return -ENOENT;
	h->self = true;
	return 0;
}

bool krg_net_handled(struct krg_net *net, const char *type)
{
	return handler_find(net, type) != NULL;
}

void krg_net_on_peer(struct krg_net *net, krg_net_peer_cb cb, void *data)
{
	struct peer_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->cb = cb;
	w->data = data;
	klist_add_tail(&net->watches, &w->link);
}

static struct conn *control_link(const struct krg_net *net, uint32_t to)
{
	struct peer *p = peer_find(net, to);
	return p && p->up ? p->link[CH_CONTROL] : NULL;
}

int krg_net_send(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len)
{
	if (net->closing)
		return -ESHUTDOWN;
	if (!type || strlen(type) > KRG_TYPE_MAX)
		return -EINVAL;
	if (to_self(net, to))
		return selfq_push(&net->selfq, type, body, len, 0, false, 0, NULL, NULL);
	struct conn *c = control_link(net, to);
	if (!c)
		return -EHOSTUNREACH;
	return send_simple(c, type, 0, false, 0, body, len);
}

static void on_req_timeout(uv_timer_t *t)
{
	struct req *rq = t->data;
	req_complete(rq, -ETIMEDOUT, NULL);
}

int krg_net_request(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len,
		    unsigned timeout_ms, krg_net_reply_cb cb, void *data)
{
	if (net->closing)
		return -ESHUTDOWN;
	if (!type || !cb || strlen(type) > KRG_TYPE_MAX)
		return -EINVAL;
	struct conn *c = to_self(net, to) ? NULL : control_link(net, to);
	if (!c && !to_self(net, to))
		return -EHOSTUNREACH;
	struct req *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	rq->net = net;
	rq->id = ++net->next_req_id;
	rq->to = to;
	rq->cb = cb;
	rq->data = data;
	int r = c ? send_simple(c, type, rq->id, false, 0, body, len)
		  : selfq_push(&net->selfq, type, body, len, rq->id, false, 0, NULL, NULL);
	if (r < 0) {
		free(rq);
		return r;
	}
	uv_timer_init(net->loop, &rq->timer);
	rq->timer.data = rq;
	net->handles++;
	uv_timer_start(&rq->timer, on_req_timeout, timeout_ms ? timeout_ms : net->opts.request_timeout_ms, 0);
	klist_add_tail(&net->reqs, &rq->link);
	return 0;
}

bool krg_net_request_open(struct krg_net *net, uint32_t from, uint64_t req_id, bool stopping)
{
	if (!req_id)
		return false;
	if (stopping) {
		krg_net_reply(net, from, req_id, -ESHUTDOWN, NULL, 0);
		return false;
	}
	return true;
}

void krg_net_refuse_malformed(struct krg_net *net, uint32_t from, uint64_t req_id, const char *what)
{
	log_warn("node %u: malformed %s, refused", from, what);
	krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
}

int krg_net_reply(struct krg_net *net, uint32_t to, uint64_t req_id, int status, const void *body, size_t len)
{
	if (net->closing)
		return -ESHUTDOWN;
	if (!req_id || status > 0)
		return -EINVAL;
	if (to_self(net, to))
		return selfq_push(&net->selfq, NULL, body, len, req_id, true, status, NULL, NULL);
	struct conn *c = control_link(net, to);
	if (!c)
		return -EHOSTUNREACH;
	return send_simple(c, NULL, req_id, true, status, body, len);
}

int krg_net_send_bulk(struct krg_net *net, uint32_t to, const char *type, const void *body, size_t len,
		      krg_net_done_cb done_cb, void *data)
{
	if (net->closing)
		return -ESHUTDOWN;
	if (!type || strlen(type) > KRG_TYPE_MAX)
		return -EINVAL;
	if (len + KRG_ENV_HEAD_MAX + KRG_TAG_BYTES > net->max_frame)
		return -EMSGSIZE;
	if (to_self(net, to))
		return selfq_push(&net->selfq, type, body, len, 0, false, 0, done_cb, data);
	struct peer *p = peer_find(net, to);
	if (!p || !p->up)
		return -EHOSTUNREACH;
	struct conn *c = p->link[CH_BULK];
	if (c && klist_empty(&p->bulk_queue)) {
		struct krg_env env = { .version = KRG_ENVELOPE_VERSION, .type = type, .type_len = strlen(type),
				       .body = body, .body_len = len };
		return send_env(c, &env, false, done_cb, data);
	}
	struct bulk_item *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->type, sizeof(b->type), "%s", type);
	b->body = body;
	b->len = len;
	b->done_cb = done_cb;
	b->data = data;
	klist_add_tail(&p->bulk_queue, &b->link);
	return 0;
}

bool krg_net_peer_up(const struct krg_net *net, uint32_t peer)
{
	struct peer *p = peer_find(net, peer);
	return p && p->up;
}

uint64_t krg_net_peer_instance(const struct krg_net *net, uint32_t peer)
{
	struct peer *p = peer_find(net, peer);
	return p && p->up ? p->link[CH_CONTROL]->peer_instance : 0;
}

uint64_t krg_net_last_heard(const struct krg_net *net, uint32_t peer)
{
	struct peer *p = peer_find(net, peer);
	return p ? p->last_heard : 0;
}

uint32_t krg_net_self(const struct krg_net *net) { return net->opts.self_id; }

int krg_net_port(const struct krg_net *net)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	if (!net->listening || uv_tcp_getsockname(&net->listener, (struct sockaddr *)&ss, &sl) < 0)
		return -ENOTCONN;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
