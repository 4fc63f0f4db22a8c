/* service.c — krgd's file view service (fsview.h, docs/fsview.md).
 *
 *   client side ... a krg-fsview per (home, uid, gid): spawned on first
 *                   use, its READY awaited, its mount namespace kept; each
 *                   frame it sends goes home as "fsview.req" (Forward);
 *                   reaped once no process here is in its namespace for
 *                   REAP_GRACE_MS, home told ("fsview.end") to end its server
 *   home side ..... a krg-fsview --serve per (node, uid, gid), forked with
 *                   that user's credentials; each Forward's request goes to
 *                   it, its Reply back to the asking node by request id
 * A lost peer, a dead server or a timeout becomes EIO for the call. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "fsview/fsview.h"
#include "fsview/fsview_msg.h"
#include "fsview/wire.h"
#include "lib/log.h"
#include "lib/service.h"
#include "net/net.h"
#include "proto/fsview.pb-c.h"

#define MSG_REQ "fsview.req"
/* Longer than the transport's default: a call may wait at home (a FIFO's
 * open). A home that dies fails the call at once (the link drops). */
#define FWD_TIMEOUT_MS 30000
#define MAX_PATHS 16
/* A view no process on this node is in is ended after the grace
 * (krgd.conf fsview_reap_grace_ms, and not within it of being handed
 * out: the process given its namespace fd joins it a moment later, a
 * restore's holder after reading the image), looked for every
 * fsview_reap_tick_ms. */
#define MSG_END "fsview.end"

/* Writable bytes before every frame a chan hands on_frame: its own
 * length's 4 and the headroom below or frames already consumed. The
 * client side builds the Forward's header there, in place, instead of
 * copying a write's 1 MiB into a packed Forward (client_frame). */
#define CHAN_HEADROOM 32

struct chan;
typedef void (*frame_cb)(struct chan *c, uint8_t *p, size_t n);

struct chan {
	uv_pipe_t pipe;
	bool open;
	uint8_t *rbuf;
	size_t rlen, rcap;
	frame_cb on_frame;
	void (*on_close)(struct chan *c);
};

struct pend {
	struct pend *next;
	uint64_t id, req_id;
};

struct client {
	struct chan ch;            /* first: a chan * is a client * */
	struct client *next;
	struct krg_fsview *v;
	uint64_t cid;
	uint32_t home;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int nsfd;
	uint64_t used_ms;          /* last handed out (krg_fsview_ns) */
	uint64_t idle_ms;          /* since when no process is in it (0: one is) */
	bool reaped;
};

struct server {
	struct chan ch;            /* first */
	struct server *next;
	struct krg_fsview *v;
	uint32_t from;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	struct pend *pend;
	uint64_t instance;         /* of the node's krgd that asked (krg_net_peer_instance) */
	uint64_t down_ms;          /* since when the node's link is down (0: up) */
};

struct krg_fsview {
	uv_loop_t *loop;
	struct krg_net *net;
	uint32_t self;
	char exe[4096];
	char *paths[MAX_PATHS];
	int n_paths;
	struct client *clients;
	struct server *servers;
	uint64_t next_cid;
	bool stopping;
	uv_timer_t reap;
	unsigned reap_tick_ms, reap_grace_ms;
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* ---- framed pipes ---- */

static void chan_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct chan *c = h->data;
	if (!c->rlen)
		c->rlen = CHAN_HEADROOM; /* rbuf[0..HEADROOM) is never data */
	if (c->rcap < c->rlen + 65536) {
		size_t cap = c->rcap ? c->rcap * 2 : (size_t)256 << 10;
		uint8_t *n = realloc(c->rbuf, cap);
		if (!n) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = n;
		c->rcap = cap;
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void chan_closed(uv_handle_t *h)
{
	struct chan *c = h->data;
	free(c->rbuf);
	c->on_close(c);
}

static void chan_close(struct chan *c)
{
	if (c->open) {
		c->open = false;
		uv_close((uv_handle_t *)&c->pipe, chan_closed);
	}
}

static void chan_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct chan *c = s->data;
	if (n < 0)
		return chan_close(c);
	c->rlen += (size_t)n;
	size_t at = CHAN_HEADROOM;
	while (c->open && c->rlen - at >= 4) {
		uint8_t *p = c->rbuf + at;
		size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		if (len > FSV_MAX_FRAME) {
			log_error("fsview: a %zu-byte frame from krg-fsview; closing it", len);
			return chan_close(c);
		}
		if (c->rlen - at < 4 + len)
			break;
		at += 4 + len;
		c->on_frame(c, p + 4, len);
	}
	if (!c->open || at == CHAN_HEADROOM)
		return; /* nothing consumed: a frame still coming, left in place */
	memmove(c->rbuf + CHAN_HEADROOM, c->rbuf + at, c->rlen - at);
	c->rlen -= at - CHAN_HEADROOM;
}

static void chan_written(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

static int chan_send(struct chan *c, const uint8_t *body, size_t n)
{
	if (!c->open)
		return -EPIPE;
	/* Straight from body when the pipe takes it now (most of the time:
	 * its buffer is large, chan_bufsize), and only the rest copied to
	 * wait for a later write. libuv keeps the order: nothing is tried
	 * while writes are queued. */
	uint8_t h[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
	uv_buf_t now[2] = { uv_buf_init((char *)h, 4), uv_buf_init((char *)body, (unsigned)n) };
	int done = uv_try_write((uv_stream_t *)&c->pipe, now, 2);
	if (done < 0 && done != UV_EAGAIN)
		return done;
	size_t at = done > 0 ? (size_t)done : 0;
	if (at == 4 + n)
		return 0;
	size_t rest = 4 + n - at;
	uint8_t *b = malloc(rest);
	uv_write_t *w = malloc(sizeof(*w));
	if (!b || !w) {
		free(b);
		free(w);
		if (at)
			chan_close(c); /* a frame cut short: the stream is lost */
		return -ENOMEM;
	}
	if (at < 4) {
		memcpy(b, h + at, 4 - at);
		memcpy(b + 4 - at, body, n);
	} else {
		memcpy(b, body + (at - 4), rest);
	}
	w->data = b;
	uv_buf_t ub = uv_buf_init((char *)b, (unsigned)rest);
	int r = uv_write(w, (uv_stream_t *)&c->pipe, &ub, 1, chan_written);
	if (r < 0) {
		free(b);
		free(w);
	}
	return r;
}

/* A socketpair's buffers big enough for a few 1 MiB frames: a read's or
 * write's data crosses in one go, without krgd copying what the pipe
 * could not take yet. krgd is root: FORCE passes net.core.wmem_max. */
static void chan_bufsize(int fd)
{
	int sz = 4 * (int)FSV_MAX_IO;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

/* The socket pair krgd and a helper talk on (sv[1] becomes the helper's
 * fd 3): 0, or -1 with errno. */
static int chan_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	chan_bufsize(sv[0]);
	chan_bufsize(sv[1]);
	return 0;
}

/* In a helper just forked: no signal blocked (krgd's mask is inherited). */
static void child_unblock(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int chan_open(struct krg_fsview *v, struct chan *c, int fd, frame_cb fcb, void (*ccb)(struct chan *))
{
	uv_pipe_init(v->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->on_frame = fcb;
	c->on_close = ccb;
	int r = uv_pipe_open(&c->pipe, fd);
	c->open = true;
	if (r == 0)
		r = uv_read_start((uv_stream_t *)&c->pipe, chan_alloc, chan_read);
	if (r < 0)
		chan_close(c);
	return r;
}

static void send_error(struct chan *c, uint64_t id, int err)
{
	Krg__Fsview__Reply r = KRG__FSVIEW__REPLY__INIT;
	uint8_t buf[32];
	r.id = id;
	r.err = err;
	size_t n = krg__fsview__reply__pack(&r, buf);
	chan_send(c, buf, n);
}

/* ---- this node: the views of other homes ---- */

struct fwd {
	struct krg_fsview *v;
	uint64_t cid, id;
};

static struct client *client_by_cid(struct krg_fsview *v, uint64_t cid)
{
	for (struct client *c = v->clients; c; c = c->next)
		if (c->cid == cid)
			return c;
	return NULL;
}

static void fwd_done(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct fwd *f = data;
	struct client *c = client_by_cid(f->v, f->cid);
	uint64_t id;
	if (c && status == 0 && fsv_peek_id(reply->body, reply->len, &id) && id == f->id)
		chan_send(&c->ch, reply->body, reply->len);
	else if (c)
		send_error(&c->ch, f->id, -EIO);
	free(f);
}

static void client_frame(struct chan *ch, uint8_t *p, size_t n)
{
	struct client *c = (struct client *)ch;
	uint64_t id;
	if (!fsv_peek_id(p, n, &id))
		return; /* a second READY, or garbage: nothing waits for it */
	/* The Forward (uid, gid, then the request as its last field, as
	 * protobuf-c would pack it) is the frame with its header written in
	 * front of it, in the chan's headroom: the request is not copied. */
	uint8_t h[3 * 11];
	size_t hl = 0;
	hl += fsv_varint_key(h + hl, 1, c->uid);
	hl += fsv_varint_key(h + hl, 2, c->gid);
	hl += fsv_bytes_field(h + hl, 3, n);
	uint8_t *b = p - hl;
	memcpy(b, h, hl);
	struct fwd *x = malloc(sizeof(*x));
	int r = -ENOMEM;
	if (x) {
		*x = (struct fwd){ .v = c->v, .cid = c->cid, .id = id };
		r = krg_net_request(c->v->net, c->home, MSG_REQ, b, hl + n, FWD_TIMEOUT_MS, fwd_done, x);
		if (r == 0)
			x = NULL; /* fwd_done has it (called exactly once) */
	}
	free(x);
	if (r < 0)
		send_error(ch, id, -EIO);
}

static void client_closed(struct chan *ch)
{
	struct client *c = (struct client *)ch;
	if (c->nsfd >= 0)
		close(c->nsfd);
	free(c);
}

static void client_drop(struct client *c)
{
	struct krg_fsview *v = c->v;
	for (struct client **p = &v->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->pid > 0)
		kill(c->pid, SIGTERM);
	chan_close(&c->ch);
}

static void client_gone(struct chan *ch)
{
	struct client *c = (struct client *)ch;
	if (!c->v->stopping && !c->reaped)
		log_warn("fsview: the view of node %u for uid %u ended (krg-fsview %d)", c->home, (unsigned)c->uid,
			 (int)c->pid);
	struct krg_fsview *v = c->v;
	for (struct client **p = &v->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	client_closed(ch);
}

/* Wait (bounded) for the client's READY: its mounts are in place. A
 * signal to krgd (a SIGCHLD: a view reaped just before, a process that
 * ended) does not cut the wait short: the poll goes on until the deadline. */
static int await_ready(int fd, pid_t pid)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ms() + 10000;
	int r;
	for (;;) {
		uint64_t now = now_ms();
		r = poll(&p, 1, now < end ? (int)(end - now) : 0);
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	uint8_t *buf;
	size_t n;
	if ((r = fsv_read_frame(fd, &buf, &n)) < 0)
		return -EIO; /* it failed to mount; its stderr says why */
	Krg__Fsview__Request *q = krg__fsview__request__unpack(NULL, n, buf);
	free(buf);
	r = q && q->op == KRG__FSVIEW__OP__OP_READY ? 0 : -EPROTO;
	if (q)
		krg__fsview__request__free_unpacked(q, NULL);
	return r;
}

static int client_spawn(struct krg_fsview *v, uint32_t home, uid_t uid, gid_t gid, struct client **out)
{
	int sv[2];
	if (chan_pair(sv) < 0)
		return -errno;
	char owner[32];
	snprintf(owner, sizeof(owner), "%u:%u", (unsigned)uid, (unsigned)gid);
	char *argv[MAX_PATHS + 8] = { "krg-fsview", "--fd", "3", "--owner", owner, "--mount" };
	for (int i = 0; i < v->n_paths; i++)
		argv[6 + i] = v->paths[i];
	pid_t krgd = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_unblock();
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != krgd || dup2(sv[1], 3) < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		execv(v->exe, argv);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -errno;
	}
	struct client *c = calloc(1, sizeof(*c));
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)pid);
	int r = !c ? -ENOMEM : await_ready(sv[0], pid);
	int nsfd = r == 0 ? open(ns, O_RDONLY | O_CLOEXEC) : -1;
	if (r == 0 && nsfd < 0)
		r = -errno;
	if (r < 0) {
		kill(pid, SIGKILL);
		close(sv[0]);
		free(c);
		return r;
	}
	*c = (struct client){ .v = v, .cid = ++v->next_cid, .home = home, .uid = uid, .gid = gid, .pid = pid, .nsfd = nsfd,
			      .used_ms = now_ms() };
	if ((r = chan_open(v, &c->ch, sv[0], client_frame, client_gone)) < 0)
		return r; /* client_gone frees it */
	c->next = v->clients;
	v->clients = c;
	log_info("fsview: krg-fsview %d shows node %u's files to uid %u here", (int)pid, home, (unsigned)uid);
	*out = c;
	return 0;
}

int krg_fsview_ns(struct krg_fsview *v, uint32_t home, uid_t uid, gid_t gid)
{
	if (!v || home == v->self || !v->n_paths)
		return -ENOENT;
	if (v->stopping)
		return -ESHUTDOWN;
	struct client *c = v->clients;
	while (c && !(c->home == home && c->uid == uid && c->gid == gid))
		c = c->next;
	if (c && kill(c->pid, 0) < 0) {
		client_drop(c); /* died: its chan closes soon; make a new one */
		c = NULL;
	}
	int r;
	if (!c && (r = client_spawn(v, home, uid, gid, &c)) < 0) {
		log_warn("fsview: cannot make the view of node %u for uid %u: %s", home, (unsigned)uid, strerror(-r));
		return r;
	}
	c->used_ms = now_ms();
	int fd = fcntl(c->nsfd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

/* ---- reaping the views no process here uses ---- */

/* Whether a process of this node other than the views' own krg-fsview is
 * in mount namespace ino (a process run, placed, migrated or restored in
 * the view is: it joined it by setns). */
static bool ns_in_use(struct krg_fsview *v, DIR *proc, ino_t ino, dev_t dev)
{
	rewinddir(proc);
	struct dirent *d;
	while ((d = readdir(proc))) {
		char *end;
		long pid = strtol(d->d_name, &end, 10);
		if (*end || pid <= 0 || krg_fsview_is_helper(v, (pid_t)pid))
			continue;
		char ns[64];
		struct stat st;
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", pid);
		if (stat(ns, &st) == 0 && st.st_ino == ino && st.st_dev == dev)
			return true;
	}
	return false;
}

/* Home ends its server for this node and user: the files it had open for
 * the view are closed with the view. Sent on the control channel, as the
 * requests are: a new view's first request comes after it. */
static void tell_home_end(struct client *c)
{
	Krg__Fsview__Forward f = KRG__FSVIEW__FORWARD__INIT;
	f.uid = c->uid;
	f.gid = c->gid;
	uint8_t buf[32];
	size_t n = krg__fsview__forward__pack(&f, buf);
	int r = krg_net_send(c->v->net, c->home, MSG_END, buf, n);
	if (r < 0)
		log_warn("fsview: cannot tell node %u the view for uid %u ended: %s", c->home, (unsigned)c->uid,
			 strerror(-r));
}

static void servers_of_down_nodes(struct krg_fsview *v);

static void reap_tick(uv_timer_t *t)
{
	struct krg_fsview *v = t->data;
	if (v->stopping)
		return;
	servers_of_down_nodes(v);
	if (!v->clients)
		return;
	DIR *proc = opendir("/proc");
	if (!proc)
		return;
	uint64_t now = now_ms();
	for (struct client *c = v->clients, *next; c; c = next) {
		next = c->next;
		struct stat st;
		if (fstat(c->nsfd, &st) < 0 || ns_in_use(v, proc, st.st_ino, st.st_dev)) {
			c->idle_ms = 0;
			continue;
		}
		if (!c->idle_ms)
			c->idle_ms = now;
		if (now - c->idle_ms < v->reap_grace_ms || now - c->used_ms < v->reap_grace_ms)
			continue;
		log_info("fsview: reaping the view of node %u for uid %u (krg-fsview %d): no process here has been in it for "
			 "%llu ms (grace %u ms)",
			 c->home, (unsigned)c->uid, (int)c->pid, (unsigned long long)(now - c->idle_ms), v->reap_grace_ms);
		c->reaped = true;
		tell_home_end(c);
		client_drop(c);
	}
	closedir(proc);
}

uint32_t krg_fsview_home_of(struct krg_fsview *v, pid_t pid)
{
	if (!v)
		return 0;
	char ns[64];
	struct stat a, b;
	snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)pid);
	if (stat(ns, &a) < 0)
		return v->self;
	for (struct client *c = v->clients; c; c = c->next)
		if (fstat(c->nsfd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return c->home;
	return v->self;
}

bool krg_fsview_is_helper(const struct krg_fsview *v, pid_t pid)
{
	if (!v || pid <= 0)
		return false;
	for (const struct client *c = v->clients; c; c = c->next)
		if (c->pid == pid)
			return true;
	for (const struct server *s = v->servers; s; s = s->next)
		if (s->pid == pid)
			return true;
	return false;
}

int krg_fsview_enter(int nsfd)
{
	return setns(nsfd, CLONE_NEWNS) < 0 ? -errno : 0;
}

/* ---- home: serving other nodes ---- */

static void server_frame(struct chan *ch, uint8_t *p, size_t n)
{
	struct server *s = (struct server *)ch;
	uint64_t id;
	if (!fsv_peek_id(p, n, &id))
		return;
	for (struct pend **pp = &s->pend; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct pend *x = *pp;
			*pp = x->next;
			krg_net_reply(s->v->net, s->from, x->req_id, 0, p, n);
			free(x);
			return;
		}
}

static void server_gone(struct chan *ch)
{
	struct server *s = (struct server *)ch;
	struct krg_fsview *v = s->v;
	for (struct server **p = &v->servers; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	while (s->pend) {
		struct pend *x = s->pend;
		s->pend = x->next;
		if (!v->stopping)
			krg_net_reply(v->net, s->from, x->req_id, -EIO, NULL, 0);
		free(x);
	}
	free(s);
}

/* Out of the list at once (a later request gets a new server), the
 * process told to go; its pending calls fail as its chan closes. */
static void server_end(struct server *s)
{
	struct krg_fsview *v = s->v;
	for (struct server **p = &v->servers; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	kill(s->pid, SIGTERM);
	chan_close(&s->ch);
}

/* The servers of a node whose krgd died end: its views (the FUSE clients
 * die with their krgd) will never send to them again, and the files they
 * hold open at home would stay open. A krgd that came back as a new
 * process (another instance) ends them at once; a link down without a new
 * krgd, after the reaping grace (a link that comes back from the same
 * krgd within it keeps its views' open files). */
static void on_peer(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct krg_fsview *v = data;
	if (v->stopping)
		return;
	uint64_t inst = up ? krg_net_peer_instance(net, peer) : 0;
	for (struct server *s = v->servers, *next; s; s = next) {
		next = s->next;
		if (s->from != peer)
			continue;
		if (!up) {
			if (!s->down_ms)
				s->down_ms = now_ms();
		} else if (s->instance != inst) {
			log_info("fsview: node %u's krgd restarted: krg-fsview %d (serving its old view for uid %u) ends",
				 peer, (int)s->pid, (unsigned)s->uid);
			server_end(s);
		} else {
			s->down_ms = 0;
		}
	}
}

static void servers_of_down_nodes(struct krg_fsview *v)
{
	uint64_t now = now_ms();
	for (struct server *s = v->servers, *next; s; s = next) {
		next = s->next;
		if (!s->down_ms || now - s->down_ms < v->reap_grace_ms)
			continue;
		log_info("fsview: node %u has been down for %llu ms: krg-fsview %d (serving its view for uid %u) ends",
			 s->from, (unsigned long long)(now - s->down_ms), (int)s->pid, (unsigned)s->uid);
		server_end(s);
	}
}

/* Node from no longer has a view of this node's files for uid/gid: no
 * process there is in it, its FUSE client ended. Its server goes too (out
 * of the list at once: a later request of a new view gets a new one). */
static void on_end(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_fsview *v = data;
	Krg__Fsview__Forward *f = krg__fsview__forward__unpack(NULL, msg->len, msg->body);
	if (!f) {
		log_warn("fsview: malformed end of view from node %u", from);
		return;
	}
	for (struct server *s = v->servers; s; s = s->next) {
		if (s->from != from || s->uid != f->uid || s->gid != f->gid)
			continue;
		log_info("fsview: node %u ended its view for uid %u: krg-fsview %d (serving it) ends", from,
			 (unsigned)s->uid, (int)s->pid);
		server_end(s);
		break;
	}
	krg__fsview__forward__free_unpacked(f, NULL);
	(void)net;
	(void)req_id;
}

/* Forked with the user's credentials at home: the user's groups as login
 * would set them (getgrouplist), the primary group the node vouched for. */
static int server_spawn(struct krg_fsview *v, uint32_t from, uid_t uid, gid_t gid, struct server **out)
{
	gid_t groups[256];
	int ng = 256;
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || !pwp ||
	    getgrouplist(pw.pw_name, gid, groups, &ng) < 0) {
		groups[0] = gid;
		ng = 1;
	}
	int sv[2];
	if (chan_pair(sv) < 0)
		return -errno;
	pid_t krgd = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_unblock();
		if (setgroups((size_t)ng, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(126);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != krgd || dup2(sv[1], 3) < 0 || chdir("/") < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		execl(v->exe, "krg-fsview", "--fd", "3", "--serve", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	struct server *s = pid < 0 ? NULL : calloc(1, sizeof(*s));
	if (!s) {
		int e = pid < 0 ? -errno : -ENOMEM;
		if (pid > 0)
			kill(pid, SIGKILL);
		close(sv[0]);
		return e;
	}
	*s = (struct server){ .v = v, .from = from, .uid = uid, .gid = gid, .pid = pid,
			      .instance = krg_net_peer_instance(v->net, from) };
	int r = chan_open(v, &s->ch, sv[0], server_frame, server_gone);
	if (r < 0)
		return r;
	s->next = v->servers;
	v->servers = s;
	log_info("fsview: krg-fsview %d serves node %u's processes of uid %u", (int)pid, from, (unsigned)uid);
	*out = s;
	return 0;
}

static void on_req(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_fsview *v = data;
	if (!krg_net_request_open(net, from, req_id, v->stopping))
		return;
	/* Checked here once: the server trusts what krgd hands it. Read in
	 * place (a write's data is not copied by an unpack). */
	struct fsv_forward f;
	if (!fsv_forward_parse(msg->body, msg->len, &f)) {
		log_warn("fsview: malformed request from node %u", from);
		krg_net_reply(net, from, req_id, -EINVAL, NULL, 0);
		return;
	}
	struct server *s = v->servers;
	while (s && !(s->from == from && s->uid == f.uid && s->gid == f.gid))
		s = s->next;
	int r = 0;
	if (!s && (r = server_spawn(v, from, (uid_t)f.uid, (gid_t)f.gid, &s)) < 0) {
		log_warn("fsview: cannot serve node %u for uid %u: %s", from, f.uid, strerror(-r));
		krg_net_reply(net, from, req_id, -EIO, NULL, 0);
		return;
	}
	struct pend *x = malloc(sizeof(*x));
	if (!x || chan_send(&s->ch, f.req, f.req_len) < 0) {
		free(x);
		krg_net_reply(net, from, req_id, -EIO, NULL, 0);
		return;
	}
	*x = (struct pend){ .next = s->pend, .id = f.id, .req_id = req_id };
	s->pend = x;
}

/* ---- setup ---- */

int krg_fsview_new(uv_loop_t *loop, const struct krg_config *cfg, struct krg_net *net, struct krg_fsview **out,
		   char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->fsview)
		return 0;
	struct krg_fsview *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->loop = loop;
	v->net = net;
	v->self = cfg->node_id;
	v->reap_tick_ms = cfg->fsview_reap_tick_ms;
	v->reap_grace_ms = cfg->fsview_reap_grace_ms;
	char buf[sizeof(cfg->fsview_paths)];
	snprintf(buf, sizeof(buf), "%s", cfg->fsview_paths);
	for (char *save, *t = strtok_r(buf, " \t", &save); t && v->n_paths < MAX_PATHS; t = strtok_r(NULL, " \t", &save))
		v->paths[v->n_paths++] = strdup(t);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(v->exe, sizeof(v->exe), "%s/krg-fsview", exe);
	int r = access(v->exe, X_OK) < 0 ? -errno : krg_net_handle(net, MSG_REQ, on_req, v);
	if (r == 0)
		r = krg_net_handle(net, MSG_END, on_end, v);
	if (r < 0) {
		snprintf(err, errlen, "fsview: %s: %s", v->exe, strerror(-r));
		for (int i = 0; i < v->n_paths; i++)
			free(v->paths[i]);
		free(v);
		return r;
	}
	uv_timer_init(loop, &v->reap);
	v->reap.data = v;
	uv_timer_start(&v->reap, reap_tick, v->reap_tick_ms, v->reap_tick_ms);
	uv_unref((uv_handle_t *)&v->reap);
	krg_net_on_peer(net, on_peer, v);
	log_info("fsview: views unused for %u ms are ended (looked for every %u ms)", v->reap_grace_ms, v->reap_tick_ms);
	*out = v;
	return 0;
}

void krg_fsview_stop(struct krg_fsview *v)
{
	if (!v)
		return;
	v->stopping = true;
	uv_timer_stop(&v->reap);
	uv_close((uv_handle_t *)&v->reap, NULL);
	while (v->clients)
		client_drop(v->clients);
	for (struct server *s = v->servers; s; s = s->next) {
		kill(s->pid, SIGTERM);
		chan_close(&s->ch);
	}
}

void krg_fsview_free(struct krg_fsview *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->n_paths; i++)
		free(v->paths[i]);
	free(v);
}

static int svc_start(struct krg_services *s, void **state, char *err, size_t errlen)
{
	struct krg_fsview *v = NULL;
	int r = krg_fsview_new(s->loop, s->cfg, s->net, &v, err, errlen);
	*state = s->fsview = v;
	return r;
}

static void svc_stop(void *state)
{
	krg_fsview_stop(state);
}

/* Once the transport is closed: it calls the handler no more, and the
 * pipes closed at stop are closed by then (a loop turn later). */
static void svc_release(void *state)
{
	krg_fsview_free(state);
}

const struct krg_service krg_service_fsview = {
	.name = "fsview",
	.start = svc_start,
	.stop = svc_stop,
	.release = svc_release,
	.msg_types = (const char *const[]){ MSG_REQ, MSG_END, NULL },
};
