/* mig_conn.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- local frame connections ---- */

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	close(c->fd);
	while (c->qh) {
		struct cq *q = c->qh;
		c->qh = q->next;
		free(q);
	}
	free(c);
}


static void free_handle_cb(uv_handle_t *h)
{
	free(h);
}

void mig_hello_deadline_stop(struct conn *c)
{
	if (!c->hello_deadline)
		return;
	uv_timer_stop(c->hello_deadline);
	uv_close((uv_handle_t *)c->hello_deadline, free_handle_cb);
	c->hello_deadline = NULL;
}

void mig_conn_close(struct conn *c)
{
	if (!c || c->dead)
		return;
	c->dead = true;
	mig_hello_deadline_stop(c);
	if (c->kind == CK_PENDING && the_mig.npending)
		the_mig.npending--;
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, conn_closed_cb);
}

static void conn_io(uv_poll_t *h, int status, int events);

static void conn_events(struct conn *c)
{
	int ev = UV_READABLE | (c->qh ? UV_WRITABLE : 0);
	if (ev != c->events && !c->dead) {
		c->events = ev;
		uv_poll_start(&c->poll, ev, conn_io);
	}
}

void mig_conn_flush(struct conn *c)
{
	while (c->qh && !c->dead) {
		ssize_t n = send(c->fd, c->qh->buf, c->qh->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		struct cq *q = c->qh;
		c->qh = q->next;
		if (!c->qh)
			c->qt = NULL;
		free(q);
		if (n < 0)
			break; /* the reader will see the end */
	}
	conn_events(c);
}

struct cq *mig_frame(uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	struct cq *q = malloc(sizeof(*q) + sizeof(struct mig_hdr) + len);
	if (!q)
		return NULL;
	struct mig_hdr h = { .type = type, .fd = fd, .arg = arg };
	q->next = NULL;
	q->len = sizeof(h) + len;
	memcpy(q->buf, &h, sizeof(h));
	if (len)
		memcpy(q->buf + sizeof(h), data, len);
	return q;
}

void mig_conn_send(struct conn *c, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	if (!c || c->dead)
		return;
	if (!c->qh) {
		/* Nothing queued: straight from the caller's buffer (a frame of
		 * forwarded data is not copied once more); queued only if the
		 * socket is full. */
		struct mig_hdr h = { .type = type, .fd = fd, .arg = arg };
		struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
		ssize_t n;
		do
			n = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n >= 0 || errno != EAGAIN)
			return; /* sent, or the peer is gone (its reader sees the end) */
	}
	struct cq *q = mig_frame(type, fd, arg, data, len);
	if (!q)
		return;
	if (c->qt)
		c->qt->next = q;
	else
		c->qh = q;
	c->qt = q;
	mig_conn_flush(c);
}

struct conn *mig_conn_new(int fd, enum conn_kind kind, void *owner)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->kind = kind;
	c->owner = owner;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* Frames of up to MIG_CHUNK data both ways, several in flight. */
	mig_sock_bufs(fd);
	uv_poll_init(the_mig.s->loop, &c->poll, fd);
	c->poll.data = c;
	conn_events(c);
	return c;
}


/* One queued frame read and handled: 1; 0: none queued; -1: the peer
 * is gone (end of stream, an error, less than a header). ECONNRESET
 * means the peer closed with frames of ours unread: what it sent before
 * is still there, so it is read past, as EINTR. */
static int conn_read_one(struct conn *c, uint8_t *buf, size_t cap)
{
	for (int tries = 0; tries < 64; tries++) {
		ssize_t n = recv(c->fd, buf, cap, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == ECONNRESET))
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < (ssize_t)sizeof(struct mig_hdr))
			return -1;
		struct mig_hdr hd;
		memcpy(&hd, buf, sizeof(hd));
		mig_on_frame(c, &hd, buf + sizeof(hd), (size_t)n - sizeof(hd));
		return 1;
	}
	return -1;
}

static void conn_io(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;
	static uint8_t buf[sizeof(struct mig_hdr) + MIG_CHUNK + 8192];
	if (status < 0) {
		/* libuv reports POLLERR without reading: a peer that exits with
		 * frames of ours unread leaves ECONNRESET here, yet what it sent
		 * before it went (a holder's MF_EXIT with the migrant's status)
		 * is still queued and must count. Read it all, then it is gone. */
		for (int i = 0; i < 4096 && !c->dead && conn_read_one(c, buf, sizeof(buf)) == 1; i++)
			;
		if (!c->dead) {
			mig_on_conn_gone(c);
			mig_conn_close(c);
		}
		return;
	}
	if (events & UV_WRITABLE)
		mig_conn_flush(c);
	if (!(events & UV_READABLE))
		return;
	for (int i = 0; i < 64 && !c->dead; i++) {
		int r = conn_read_one(c, buf, sizeof(buf));
		if (r == 0)
			return;
		if (r < 0) {
			mig_on_conn_gone(c);
			mig_conn_close(c);
			return;
		}
	}
}

/* ---- sending mig.io & co to a node (ourselves included) ---- */


void mig_bulk_done(int status, void *data)
{
	free(data);
}

/* Proxied input for fd of migrant id, as "mig.io" on the bulk channel;
 * back: it goes home, the node it was for did not take it. */
void mig_send_data(uint32_t to, uint32_t id, uint32_t fd, ProtobufCBinaryData data, bool back)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	io.has_fd = true;
	io.fd = fd;
	io.has_data = true;
	io.data = data;
	if (back)
		io.has_up = io.up = io.has_back = io.back = true;
	mig_send_io(to, "mig.io", &io, true);
}

void mig_send_io(uint32_t to, const char *type, const Krg__Mig__Io *io, bool bulk)
{
	struct krg_migsvc *m = &the_mig;
	/* To this node too: net delivers mig.io & co to itself (handled from
	 * the loop, in order). */
	size_t len = krg__mig__io__get_packed_size(io);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return;
	krg__mig__io__pack(io, buf);
	int r;
	if (bulk) {
		r = krg_net_send_bulk(m->s->net, to, type, buf, len, mig_bulk_done, buf);
		if (r < 0)
			free(buf);
	} else {
		r = krg_net_send(m->s->net, to, type, buf, len);
		free(buf);
	}
	if (r < 0)
		log_debug("migrate: %s to node %u: %s", type, to, strerror(-r));
}

void mig_send_simple(uint32_t to, const char *type, uint32_t id, int sig, bool has_status, int status,
			uint32_t node)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	if (sig)
		io.has_signal = true, io.signal = sig;
	if (has_status)
		io.has_status = true, io.status = status;
	if (node != UINT32_MAX)
		io.has_node = true, io.node = node;
	mig_send_io(to, type, &io, !strcmp(type, "mig.exit") || !strcmp(type, "mig.where"));
}
