/* tunnel.c — a raft_uv_transport whose connections are tunnels through the
 * authenticated krg transport, so raft traffic is authenticated (and
 * encrypted) like everything else between nodes.
 *
 * libraft wants a uv_stream_t per connection. We give it one end of a
 * socketpair and pump the other end through "raft.tunnel" messages on the
 * control channel. A tunnel dies with the link it runs on; raft reconnects. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "cluster/cluster-int.h"
#include "lib/log.h"

#define TUNNEL_MSG "raft.tunnel"

struct tunnel {
	struct tunnel *next;
	struct krg_cluster *c;
	uint64_t id;        /* chosen by opener */
	uint32_t opener;    /* node that sent OPEN */
	uint32_t peer;      /* the other end */
	uv_pipe_t pipe;     /* our end of the socketpair */
	bool closed;
};

struct pending_connect {
	struct pending_connect *next;
	struct krg_cluster *c;
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	uv_stream_t *stream; /* raft's end, NULL on failure */
	int status;
	uv_timer_t timer;    /* fires the callback from the loop, never inline */
};

struct tunnel_write {
	uv_write_t w;
	size_t len;
	uint8_t data[];
};

static void tunnel_send(struct krg_cluster *c, uint32_t to, uint64_t id, uint32_t opener,
			Krg__Cluster__RaftTunnel__Kind kind, const void *data, size_t len)
{
	Krg__Cluster__RaftTunnel m = KRG__CLUSTER__RAFT_TUNNEL__INIT;
	uint8_t small[256];
	m.tunnel = id;
	m.kind = kind;
	m.has_opener = true;
	m.opener = opener;
	if (data) {
		m.has_data = true;
		m.data.data = (uint8_t *)data;
		m.data.len = len;
	}
	if (kind == KRG__CLUSTER__RAFT_TUNNEL__KIND__OPEN)
		m.address = c->address;
	size_t n = krg__cluster__raft_tunnel__get_packed_size(&m);
	uint8_t *buf = n <= sizeof(small) ? small : malloc(n);
	if (!buf)
		return;
	krg__cluster__raft_tunnel__pack(&m, buf);
	int r = krg_net_send(c->net, to, TUNNEL_MSG, buf, n);
	if (r < 0)
		log_debug("raft tunnel %u:%llu to node %u: %s", opener, (unsigned long long)id, to, strerror(-r));
	if (buf != small)
		free(buf);
}

static void transport_closed_timer_cb(uv_timer_t *timer)
{
	struct krg_cluster *c = timer->data;
	raft_uv_transport_close_cb cb = c->transport_close_cb;
	c->transport_close_cb = NULL;
	if (cb)
		cb(&c->transport);
}

/* raft's transport close callback must run once every tunnel and pending
 * connect is gone, and never from inside tr_close itself. */
static void transport_maybe_closed(struct krg_cluster *c)
{
	if (c->transport_close_cb && !c->tunnels && !c->connects && !c->closing_handles)
		uv_timer_start(&c->transport_timer, transport_closed_timer_cb, 0, 0);
}

static void tunnel_free_cb(uv_handle_t *h)
{
	struct tunnel *t = h->data;
	struct krg_cluster *c = t->c;
	free(t);
	c->closing_handles--;
	transport_maybe_closed(c);
}

/* Close our end; notify the peer unless it told us first. */
static void tunnel_close(struct tunnel *t, bool notify)
{
	struct krg_cluster *c = t->c;
	if (t->closed)
		return;
	t->closed = true;
	for (struct tunnel **p = &c->tunnels; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	if (notify)
		tunnel_send(c, t->peer, t->id, t->opener, KRG__CLUSTER__RAFT_TUNNEL__KIND__CLOSE, NULL, 0);
	c->closing_handles++;
	uv_close((uv_handle_t *)&t->pipe, tunnel_free_cb);
}

static void tunnel_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	buf->base = malloc(65536);
	buf->len = buf->base ? 65536 : 0;
}

static void tunnel_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct tunnel *t = s->data;
	if (nread > 0)
		tunnel_send(t->c, t->peer, t->id, t->opener, KRG__CLUSTER__RAFT_TUNNEL__KIND__DATA, buf->base,
			    (size_t)nread);
	else if (nread < 0)
		tunnel_close(t, true);
	free(buf->base);
}

/* Make a socketpair: raft's end becomes a raft_malloc'd uv_pipe_t (raft
 * frees it with raft_free after closing it), ours a tunnel. */
static int tunnel_new(struct krg_cluster *c, uint32_t peer, uint32_t opener, uint64_t id, uv_stream_t **raft_end,
		      struct tunnel **out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	uv_pipe_t *rp = raft_malloc(sizeof(*rp));
	struct tunnel *t = calloc(1, sizeof(*t));
	if (!rp || !t) {
		raft_free(rp);
		free(t);
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	uv_pipe_init(c->loop, rp, 0);
	uv_pipe_open(rp, sv[0]);
	t->c = c;
	t->id = id;
	t->opener = opener;
	t->peer = peer;
	uv_pipe_init(c->loop, &t->pipe, 0);
	uv_pipe_open(&t->pipe, sv[1]);
	t->pipe.data = t;
	uv_read_start((uv_stream_t *)&t->pipe, tunnel_alloc, tunnel_read);
	t->next = c->tunnels;
	c->tunnels = t;
	*raft_end = (uv_stream_t *)rp;
	*out = t;
	return 0;
}

static struct tunnel *tunnel_find(struct krg_cluster *c, uint32_t opener, uint64_t id)
{
	for (struct tunnel *t = c->tunnels; t; t = t->next)
		if (t->opener == opener && t->id == id)
			return t;
	return NULL;
}

static void tunnel_write_cb(uv_write_t *w, int status)
{
	free(w);
}

static void on_tunnel_msg(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id,
			  void *data)
{
	struct krg_cluster *c = data;
	Krg__Cluster__RaftTunnel *m = krg__cluster__raft_tunnel__unpack(NULL, msg->len, msg->body);
	if (!m) {
		log_warn("raft tunnel: malformed message from node %u dropped", from);
		return;
	}
	/* The opener is either us or the sender; anything else is forged. */
	uint32_t opener = m->has_opener ? m->opener : from;
	if (opener != from && opener != c->cfg->node_id) {
		log_warn("raft tunnel: node %u claims tunnel of node %u, dropped", from, opener);
		goto out;
	}
	struct tunnel *t = tunnel_find(c, opener, m->tunnel);
	switch (m->kind) {
	case KRG__CLUSTER__RAFT_TUNNEL__KIND__OPEN: {
		uv_stream_t *raft_end;
		if (t || opener != from || !c->accept_cb || c->closing) {
			tunnel_send(c, from, m->tunnel, opener, KRG__CLUSTER__RAFT_TUNNEL__KIND__CLOSE, NULL, 0);
			break;
		}
		if (tunnel_new(c, from, opener, m->tunnel, &raft_end, &t) < 0) {
			tunnel_send(c, from, m->tunnel, opener, KRG__CLUSTER__RAFT_TUNNEL__KIND__CLOSE, NULL, 0);
			break;
		}
		char addr[96];
		snprintf(addr, sizeof(addr), "%s", m->address ? m->address : "");
		c->accept_cb(&c->transport, from, addr, raft_end);
		break;
	}
	case KRG__CLUSTER__RAFT_TUNNEL__KIND__DATA: {
		if (!t) {
			tunnel_send(c, from, m->tunnel, opener, KRG__CLUSTER__RAFT_TUNNEL__KIND__CLOSE, NULL, 0);
			break;
		}
		if (!m->has_data || m->data.len == 0)
			break;
		struct tunnel_write *w = malloc(sizeof(*w) + m->data.len);
		if (!w) {
			tunnel_close(t, true);
			break;
		}
		memcpy(w->data, m->data.data, m->data.len);
		uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)m->data.len);
		if (uv_write(&w->w, (uv_stream_t *)&t->pipe, &b, 1, tunnel_write_cb) < 0) {
			free(w);
			tunnel_close(t, true);
		}
		break;
	}
	case KRG__CLUSTER__RAFT_TUNNEL__KIND__CLOSE:
		if (t)
			tunnel_close(t, false);
		break;
	default:
		break;
	}
out:
	krg__cluster__raft_tunnel__free_unpacked(m, NULL);
}

void cluster_tunnel_peer_down(struct krg_cluster *c, uint32_t peer)
{
	struct tunnel *t = c->tunnels;
	while (t) {
		struct tunnel *next = t->next;
		if (t->peer == peer)
			tunnel_close(t, false);
		t = next;
	}
}

/* ---- raft_uv_transport methods ---- */

/* raft_uv_init() takes transport->data for itself: find our state from the
 * embedded struct instead. */
static struct krg_cluster *cluster_of(struct raft_uv_transport *tr)
{
	return (struct krg_cluster *)((char *)tr - offsetof(struct krg_cluster, transport));
}

static int tr_init(struct raft_uv_transport *tr, raft_id id, const char *address)
{
	return 0;
}

static int tr_listen(struct raft_uv_transport *tr, raft_uv_accept_cb cb)
{
	struct krg_cluster *c = cluster_of(tr);
	c->accept_cb = cb;
	return 0;
}

static void connect_timer_close_cb(uv_handle_t *h)
{
	struct pending_connect *pc = h->data;
	struct krg_cluster *c = pc->c;
	free(pc);
	c->closing_handles--;
	transport_maybe_closed(c);
}

static void raft_stream_free_cb(uv_handle_t *h)
{
	raft_free(h);
}

static void connect_finish(struct pending_connect *pc, bool canceled)
{
	struct krg_cluster *c = pc->c;
	for (struct pending_connect **p = &c->connects; *p; p = &(*p)->next)
		if (*p == pc) {
			*p = pc->next;
			break;
		}
	uv_timer_stop(&pc->timer);
	if (canceled && pc->stream) {
		/* raft never saw this stream: close and free it ourselves. */
		uv_close((uv_handle_t *)pc->stream, raft_stream_free_cb);
		pc->stream = NULL;
	}
	pc->cb(pc->req, pc->stream, canceled ? RAFT_CANCELED : pc->status);
	c->closing_handles++;
	uv_close((uv_handle_t *)&pc->timer, connect_timer_close_cb);
}

static void connect_timer_cb(uv_timer_t *timer)
{
	connect_finish(timer->data, false);
}

static int tr_connect(struct raft_uv_transport *tr, struct raft_uv_connect *req, raft_id id, const char *address,
		      raft_uv_connect_cb cb)
{
	struct krg_cluster *c = cluster_of(tr);
	struct pending_connect *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return RAFT_NOMEM;
	pc->c = c;
	pc->req = req;
	pc->cb = cb;
	pc->status = RAFT_NOCONNECTION;
	if (id < KRG_MAX_NODES && krg_net_peer_up(c->net, (uint32_t)id)) {
		struct tunnel *t;
		uint64_t tid = ++c->next_tunnel;
		if (tunnel_new(c, (uint32_t)id, c->cfg->node_id, tid, &pc->stream, &t) == 0) {
			tunnel_send(c, (uint32_t)id, tid, c->cfg->node_id, KRG__CLUSTER__RAFT_TUNNEL__KIND__OPEN,
				    NULL, 0);
			pc->status = 0;
		}
	}
	uv_timer_init(c->loop, &pc->timer);
	pc->timer.data = pc;
	pc->next = c->connects;
	c->connects = pc;
	uv_timer_start(&pc->timer, connect_timer_cb, 0, 0);
	return 0;
}

static void tr_close(struct raft_uv_transport *tr, raft_uv_transport_close_cb cb)
{
	struct krg_cluster *c = cluster_of(tr);
	c->accept_cb = NULL;
	c->transport_close_cb = cb;
	while (c->connects)
		connect_finish(c->connects, true);
	while (c->tunnels)
		tunnel_close(c->tunnels, true);
	transport_maybe_closed(c);
}

void cluster_tunnel_init(struct krg_cluster *c)
{
	memset(&c->transport, 0, sizeof(c->transport));
	c->transport.init = tr_init;
	c->transport.listen = tr_listen;
	c->transport.connect = tr_connect;
	c->transport.close = tr_close;
	krg_net_handle(c->net, TUNNEL_MSG, on_tunnel_msg, c);
}
