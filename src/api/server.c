/* server.c — see server.h. One uv_pipe per client; a client may send
 * several requests in sequence, each answered in order of completion. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include "api/server.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "proto/api.pb-c.h"

struct handler {
	struct handler *next;
	char *command;
	bool root_only;
	krg_api_handler_cb cb;
	void *data;
};

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  /* Linux 6.5 */
#endif

/* What one uid holds on the socket, for its limits. */
struct user_use {
	struct user_use *next;
	uid_t uid;
	unsigned conns;
	size_t bytes;  /* capacity of its clients' receive buffers */
};

struct client;

struct krg_api_stream {
	struct client *cl;
	krg_api_stream_msg_cb msg_cb;
	krg_api_stream_close_cb close_cb;
	void *data;
	bool paused;
	bool ended;     /* krg_api_stream_end() called: no more callbacks */
	bool gone;      /* close_cb called */
	uv_shutdown_t shutdown;
};

struct call_priv {
	struct krg_api_call pub;   /* first: handlers get &pub */
	struct client *client;     /* NULL once the client went away */
	Krg__Api__Request *req;    /* owned */
	struct call_priv *next;    /* in client's pending list */
};

struct client {
	uv_pipe_t pipe;
	struct krg_api_server *srv;
	struct client *next;
	struct user_use *use;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int pidfd;              /* -1 if the kernel gave none */
	gid_t *groups;
	size_t n_groups;
	uint64_t last_done;     /* uv_now of connect or of the last complete request */
	uint8_t *buf;          /* owned, received bytes not yet parsed */
	size_t len, cap;
	struct call_priv *pending;
	bool closing;
	bool streaming;         /* frames go to stream.msg_cb */
	bool processing;        /* inside process_buffer() */
	bool over_budget;       /* its user's byte budget refused more room */
	struct krg_api_stream stream;
};

struct krg_api_server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	char path[108];
	struct handler *handlers;
	struct client *clients;
	struct user_use *users;
	unsigned nclients;
	unsigned nofile;        /* RLIMIT_NOFILE at start */
	struct krg_api_limits lim;
	uv_timer_t sweep;       /* idle deadlines */
	bool sweep_on;          /* sweep initialised: closed with the listener */
};

static struct user_use *user_get(struct krg_api_server *srv, uid_t uid)
{
	for (struct user_use *u = srv->users; u; u = u->next)
		if (u->uid == uid)
			return u;
	struct user_use *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	u->next = srv->users;
	srv->users = u;
	return u;
}

static void user_put(struct krg_api_server *srv, struct user_use *u)
{
	if (!u || u->conns || u->bytes)
		return;
	for (struct user_use **p = &srv->users; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			free(u);
			return;
		}
}

/* Set cl's buffer capacity to cap bytes (0 frees it), kept in its user's
 * account. */
static int client_set_cap(struct client *cl, size_t cap)
{
	if (cap == cl->cap)
		return 0;
	uint8_t *nb = NULL;
	if (cap) {
		nb = realloc(cl->buf, cap);
		if (!nb)
			return -ENOMEM;
	} else {
		free(cl->buf);
	}
	cl->use->bytes = cl->use->bytes - cl->cap + cap;
	cl->buf = nb;
	cl->cap = cap;
	return 0;
}

struct write_req {
	uv_write_t w;
	struct client *cl;
	krg_api_stream_done_cb done_cb;  /* stream frames only */
	void *done_data;
	uint8_t data[];
};

static void client_close_cb(uv_handle_t *h)
{
	struct client *cl = h->data;
	free(cl->buf);
	free(cl->groups);
	if (cl->pidfd >= 0)
		close(cl->pidfd);
	free(cl);
}

static void client_close(struct client *cl)
{
	if (cl->closing)
		return;
	cl->closing = true;
	/* Calls still running in handlers reply into the void. */
	for (struct call_priv *c = cl->pending; c; c = c->next)
		c->client = NULL;
	if (cl->streaming && !cl->stream.ended && !cl->stream.gone) {
		cl->stream.gone = true;
		cl->stream.close_cb(&cl->stream, cl->stream.data);
	}
	for (struct client **p = &cl->srv->clients; *p; p = &(*p)->next)
		if (*p == cl) {
			*p = cl->next;
			break;
		}
	cl->srv->nclients--;
	/* The buffer itself goes in client_close_cb: a handler may still be
	 * reading a frame in it. */
	cl->use->bytes -= cl->cap;
	cl->use->conns--;
	user_put(cl->srv, cl->use);
	cl->use = NULL;
	uv_close((uv_handle_t *)&cl->pipe, client_close_cb);
}

static void write_cb(uv_write_t *w, int status)
{
	struct write_req *wr = (struct write_req *)w;
	struct client *cl = wr->cl;
	if (wr->done_cb && cl->streaming && !cl->stream.ended && !cl->stream.gone)
		wr->done_cb(&cl->stream, status, cl->stream.data, wr->done_data);
	free(w);
}

static void send_frame(struct client *cl, const Krg__Api__Response *resp)
{
	size_t n = krg__api__response__get_packed_size(resp);
	struct write_req *wr = malloc(sizeof(*wr) + 4 + n);
	if (!wr) {
		client_close(cl);
		return;
	}
	wr->cl = cl;
	wr->done_cb = NULL;
	wr->data[0] = (uint8_t)(n >> 24);
	wr->data[1] = (uint8_t)(n >> 16);
	wr->data[2] = (uint8_t)(n >> 8);
	wr->data[3] = (uint8_t)n;
	krg__api__response__pack(resp, wr->data + 4);
	uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)(4 + n));
	if (uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, write_cb) < 0) {
		free(wr);
		client_close(cl);
	}
}

void krg_api_reply(struct krg_api_call *call, int status, const char *error, const void *body, size_t len)
{
	struct call_priv *c = (struct call_priv *)call;
	struct client *cl = c->client;
	if (cl) {
		Krg__Api__Response resp = KRG__API__RESPONSE__INIT;
		resp.status = status;
		resp.error = (char *)error;
		if (body) {
			resp.has_body = true;
			resp.body.data = (uint8_t *)body;
			resp.body.len = len;
		}
		send_frame(cl, &resp);
		for (struct call_priv **p = &cl->pending; *p; p = &(*p)->next)
			if (*p == c) {
				*p = c->next;
				break;
			}
	}
	krg__api__request__free_unpacked(c->req, NULL);
	free(c);
}

static void reply_now(struct client *cl, int status, const char *error)
{
	Krg__Api__Response resp = KRG__API__RESPONSE__INIT;
	resp.status = status;
	resp.error = (char *)error;
	send_frame(cl, &resp);
}

static void dispatch(struct client *cl, const uint8_t *frame, size_t n)
{
	struct krg_api_server *srv = cl->srv;
	Krg__Api__Request *req = krg__api__request__unpack(NULL, n, frame);
	char msg[160];

	if (!req) {
		log_warn("api: malformed request from pid %d uid %u, closing", (int)cl->pid, (unsigned)cl->uid);
		reply_now(cl, -EBADMSG, "malformed request");
		client_close(cl);
		return;
	}
	if (req->version != KRG_API_VERSION) {
		snprintf(msg, sizeof(msg), "API version %u not supported (krgd speaks %u)", req->version,
			 KRG_API_VERSION);
		reply_now(cl, -EPROTONOSUPPORT, msg);
		krg__api__request__free_unpacked(req, NULL);
		return;
	}
	struct handler *h = srv->handlers;
	while (h && strcmp(h->command, req->command))
		h = h->next;
	if (!h) {
		snprintf(msg, sizeof(msg), "unknown command '%.64s'", req->command);
		reply_now(cl, -EOPNOTSUPP, msg);
		krg__api__request__free_unpacked(req, NULL);
		return;
	}
	if (h->root_only && cl->uid != 0) {
		log_info("api: refused %s for uid %u (pid %d): root only", req->command, (unsigned)cl->uid,
			 (int)cl->pid);
		snprintf(msg, sizeof(msg), "%.64s: permission denied (root only)", req->command);
		reply_now(cl, -EPERM, msg);
		krg__api__request__free_unpacked(req, NULL);
		return;
	}
	struct call_priv *c = calloc(1, sizeof(*c));
	if (!c) {
		krg__api__request__free_unpacked(req, NULL);
		reply_now(cl, -ENOMEM, "out of memory");
		return;
	}
	c->client = cl;
	c->req = req;
	c->pub.uid = cl->uid;
	c->pub.gid = cl->gid;
	c->pub.pid = cl->pid;
	c->pub.groups = cl->groups;
	c->pub.n_groups = cl->n_groups;
	c->pub.pidfd = cl->pidfd;
	c->pub.command = req->command;
	c->pub.body = req->has_body ? req->body.data : NULL;
	c->pub.len = req->has_body ? req->body.len : 0;
	c->next = cl->pending;
	cl->pending = c;
	log_debug("api: %s from uid %u pid %d", req->command, (unsigned)cl->uid, (int)cl->pid);
	h->cb(&c->pub, h->data);
}

/* Room to read into. The buffer grows only as bytes arrive (never to the
 * length a header announces) and within the user's byte budget; past it
 * the read fails with UV_ENOBUFS and read_cb closes the connection. */
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;
	enum { STEP = 65536 };
	if (cl->cap - cl->len < STEP) {
		size_t ncap = cl->cap ? cl->cap * 2 : STEP;
		/* One whole frame and its header is all a connection needs. */
		if (ncap > KRG_API_MAX_FRAME + 4 + STEP)
			ncap = KRG_API_MAX_FRAME + 4 + STEP;
		bool over = cl->uid != 0 && cl->use->bytes - cl->cap + ncap > cl->srv->lim.max_bytes_per_user;
		if (ncap <= cl->cap || over || client_set_cap(cl, ncap) < 0) {
			cl->over_budget = over;
			*buf = uv_buf_init(NULL, 0);
			return;
		}
	}
	*buf = uv_buf_init((char *)cl->buf + cl->len, (unsigned)(cl->cap - cl->len));
}

/* Parse and deliver every complete frame in cl->buf: requests, or stream
 * frames once the connection streams (held while the stream is paused). */
static void process_buffer(struct client *cl)
{
	if (cl->processing)
		return;
	cl->processing = true;
	size_t off = 0;
	while (!cl->closing && cl->len - off >= 4) {
		if (cl->streaming && (cl->stream.paused || cl->stream.ended))
			break;
		const uint8_t *p = cl->buf + off;
		uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (n == 0 || n > KRG_API_MAX_FRAME) {
			log_warn("api: bad frame length %u from pid %d, closing", n, (int)cl->pid);
			client_close(cl);
			break;
		}
		if (cl->len - off - 4 < n)
			break;
		off += 4 + n;
		cl->last_done = uv_now(cl->srv->loop);
		if (cl->streaming)
			cl->stream.msg_cb(&cl->stream, p + 4, n, cl->stream.data);
		else
			dispatch(cl, p + 4, n);
	}
	cl->processing = false;
	if (cl->closing)
		return;
	memmove(cl->buf, cl->buf + off, cl->len - off);
	cl->len -= off;
	/* A large request's room goes back to the user's budget once handled. */
	if (cl->len == 0 && cl->cap > 65536)
		client_set_cap(cl, 0);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	if (nread == UV_ENOBUFS && cl->over_budget) {
		log_warn("api: uid %u has %zu bytes of requests buffered (limit %zu): closing a connection of pid %d",
				(unsigned)cl->uid, cl->use->bytes, cl->srv->lim.max_bytes_per_user, (int)cl->pid);
		reply_now(cl, -ENOBUFS, "too many request bytes in flight for this user");
		client_close(cl);
		return;
	}
	if (nread < 0) {
		client_close(cl);
		return;
	}
	cl->len += (size_t)nread;
	process_buffer(cl);
}

struct krg_api_stream *krg_api_stream_start(struct krg_api_call *call, const void *body, size_t len,
					    krg_api_stream_msg_cb msg_cb, krg_api_stream_close_cb close_cb,
					    void *data)
{
	struct call_priv *c = (struct call_priv *)call;
	struct client *cl = c->client;
	krg_api_reply(call, 0, NULL, body, len);
	if (!cl || cl->closing || cl->streaming)
		return NULL;
	cl->streaming = true;
	cl->stream = (struct krg_api_stream){ .cl = cl, .msg_cb = msg_cb, .close_cb = close_cb, .data = data };
	/* The client sends stream frames only after it read the response,
	 * so nothing of the stream is buffered yet. */
	return &cl->stream;
}

int krg_api_stream_send(struct krg_api_stream *st, const void *msg, size_t len, krg_api_stream_done_cb done_cb,
			void *done_data)
{
	struct client *cl = st->cl;
	if (cl->closing || st->ended || st->gone)
		return -ECONNRESET;
	if (len == 0 || len > KRG_API_MAX_FRAME)
		return -EMSGSIZE;
	struct write_req *wr = malloc(sizeof(*wr) + 4 + len);
	if (!wr)
		return -ENOMEM;
	wr->cl = cl;
	wr->done_cb = done_cb;
	wr->done_data = done_data;
	wr->data[0] = (uint8_t)(len >> 24);
	wr->data[1] = (uint8_t)(len >> 16);
	wr->data[2] = (uint8_t)(len >> 8);
	wr->data[3] = (uint8_t)len;
	memcpy(wr->data + 4, msg, len);
	uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)(4 + len));
	int r = uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, write_cb);
	if (r < 0) {
		free(wr);
		return r;
	}
	return 0;
}

size_t krg_api_stream_queued(const struct krg_api_stream *st)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&st->cl->pipe);
}

void krg_api_stream_pause(struct krg_api_stream *st, bool paused)
{
	struct client *cl = st->cl;
	if (cl->closing || st->ended || st->paused == paused)
		return;
	st->paused = paused;
	if (paused) {
		uv_read_stop((uv_stream_t *)&cl->pipe);
		return;
	}
	process_buffer(cl);
	if (!cl->closing && !st->paused && !st->ended)
		uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb);
}

static void stream_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct krg_api_stream *st = req->data;
	client_close(st->cl);
}

void krg_api_stream_end(struct krg_api_stream *st)
{
	struct client *cl = st->cl;
	if (st->ended || cl->closing)
		return;
	st->ended = true;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	st->shutdown.data = st;
	if (uv_shutdown(&st->shutdown, (uv_stream_t *)&cl->pipe, stream_shutdown_cb) < 0)
		client_close(cl);
}

/* The caller's supplementary groups as the kernel recorded them when it
 * connected. */
static int peer_groups(int fd, gid_t **out, size_t *n)
{
	socklen_t len = 64 * sizeof(gid_t);
	for (;;) {
		gid_t *g = malloc(len ? len : sizeof(gid_t));
		if (!g)
			return -ENOMEM;
		socklen_t l = len;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &l) == 0) {
			*out = g;
			*n = l / sizeof(gid_t);
			return 0;
		}
		int e = errno;
		free(g);
		if (e != ERANGE || l <= len || l > KRG_API_MAX_GROUPS * sizeof(gid_t))
			return e == ERANGE ? -E2BIG : -e;
		len = l;
	}
}

/* Refuse a connection with a one-line reason the client reads as the
 * answer to its first request. */
static void refuse_client(struct client *cl, int status, const char *why)
{
	reply_now(cl, status, why);
	client_close(cl);
}

static void connection_cb(uv_stream_t *listener, int status)
{
	struct krg_api_server *srv = listener->data;
	if (status < 0)
		return;
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return;
	cl->srv = srv;
	cl->pidfd = -1;
	uv_pipe_init(srv->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	if (uv_accept(listener, (uv_stream_t *)&cl->pipe) < 0) {
		uv_close((uv_handle_t *)&cl->pipe, client_close_cb);
		return;
	}
	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t cl_len = sizeof(cred);
	int r = uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0 ? -EBADF : 0;
	if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) < 0)
		r = -errno;
	if (r == 0)
		r = peer_groups(fd, &cl->groups, &cl->n_groups);
	if (r < 0 || !(cl->use = user_get(srv, cred.uid))) {
		log_warn("api: cannot identify a caller (SO_PEERCRED/SO_PEERGROUPS): %s; closing",
			 strerror(r < 0 ? -r : ENOMEM));
		uv_close((uv_handle_t *)&cl->pipe, client_close_cb);
		return;
	}
	cl->uid = cred.uid;
	cl->gid = cred.gid;
	cl->pid = cred.pid;
	/* The pidfd the kernel took at connect time: a pid read later may
	 * name another process. pidfd_open now is the fallback on kernels
	 * before 6.5 (right unless the caller already exited). */
	socklen_t pl = sizeof(cl->pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &cl->pidfd, &pl) < 0) {
		cl->pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
		if (cl->pidfd >= 0)
			fcntl(cl->pidfd, F_SETFD, FD_CLOEXEC);
	}
	cl->last_done = uv_now(srv->loop);
	cl->use->conns++;
	srv->nclients++;
	cl->next = srv->clients;
	srv->clients = cl;
	if (cl->uid != 0) {
		char why[160];
		if (srv->nofile && srv->nclients + srv->lim.reserve_fds >= srv->nofile) {
			log_warn("api: refused a connection of uid %u (pid %d): %u connections open, the last %u descriptors are kept for root",
				 (unsigned)cl->uid, (int)cl->pid, srv->nclients - 1, srv->lim.reserve_fds);
			refuse_client(cl, -EMFILE, "krgd has too many connections open; try again later");
			return;
		}
		if (cl->use->conns > srv->lim.max_conns_per_user) {
			log_warn("api: refused a connection of uid %u (pid %d): it has %u open (limit %u)",
				 (unsigned)cl->uid, (int)cl->pid, cl->use->conns - 1, srv->lim.max_conns_per_user);
			snprintf(why, sizeof(why), "too many connections to krgd for uid %u (limit %u)",
				 (unsigned)cl->uid, srv->lim.max_conns_per_user);
			refuse_client(cl, -EUSERS, why);
			return;
		}
	}
	uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, read_cb);
}

/* Idle deadline: a connection that waits for no answer, streams nothing
 * and completed no request for idle_ms holds a descriptor for nothing. */
static void sweep_cb(uv_timer_t *t)
{
	struct krg_api_server *srv = t->data;
	uint64_t now = uv_now(srv->loop);
	struct client *next;
	krg_log_flush_suppressed();
	for (struct client *cl = srv->clients; cl; cl = next) {
		next = cl->next;
		if (cl->streaming || cl->pending || cl->closing || now - cl->last_done < srv->lim.idle_ms)
			continue;
		log_info("api: closing an idle connection of uid %u (pid %d): no request for %u ms%s",
			 (unsigned)cl->uid, (int)cl->pid, srv->lim.idle_ms, cl->len ? " (one left half-sent)" : "");
		client_close(cl);
	}
}

void krg_api_server_set_limits(struct krg_api_server *srv, const struct krg_api_limits *lim)
{
	srv->lim = *lim;
	unsigned period = lim->idle_ms / 4;
	period = period < 100 ? 100 : period > 1000 ? 1000 : period;
	uv_timer_start(&srv->sweep, sweep_cb, period, period);
}

bool krg_pidfd_alive(int pidfd)
{
	if (pidfd < 0)
		return false;
	/* A pidfd polls readable once its process exited. */
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, 0) == 0;
}

bool krg_api_call_same_process(const struct krg_api_call *call)
{
	return krg_pidfd_alive(call->pidfd);
}

int krg_api_call_dup_pidfd(const struct krg_api_call *call)
{
	if (call->pidfd < 0)
		return -ESRCH;
	int fd = fcntl(call->pidfd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

static void listener_close_cb(uv_handle_t *h);

/* Is somebody listening on path? Then it is not ours to remove. */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

static int mkdir_parent(const char *path)
{
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int krg_api_server_new(uv_loop_t *loop, const char *path, struct krg_api_server **out, char *err,
		       size_t errlen)
{
	struct krg_api_server *srv;
	int r;

	if (strlen(path) >= sizeof(srv->path)) {
		snprintf(err, errlen, "api socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	r = mkdir_parent(path);
	if (r < 0) {
		snprintf(err, errlen, "cannot create directory for %s: %s", path, strerror(-r));
		return r;
	}
	/* A krgd that was just killed may hold its socket a moment longer
	 * (its other threads still exiting): a live one answers throughout. */
	for (int i = 0; i < 10 && socket_alive(path); i++)
		usleep(100 * 1000);
	if (socket_alive(path)) {
		snprintf(err, errlen, "another krgd is already running on this node (socket %s is live)", path);
		return -EADDRINUSE;
	}
	unlink(path);
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->lim = (struct krg_api_limits)KRG_API_LIMITS_DEFAULT;
	/* Every connection is a descriptor: take all the kernel allows, and
	 * keep the reserve of it for root (connection_cb). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		getrlimit(RLIMIT_NOFILE, &rl);
		srv->nofile = rl.rlim_cur > UINT32_MAX ? UINT32_MAX : (unsigned)rl.rlim_cur;
	}
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	r = uv_pipe_bind(&srv->listener, path);
	/* Room for bursts of local clients (a DRMAA bulk submission starts a
	 * shepherd per job at once); capped by net.core.somaxconn. */
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv->listener, 1024, connection_cb);
	if (r < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(r));
		/* Freed when the caller's loop runs the close callback. */
		uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
		return r;
	}
	/* Everyone may connect; each command checks the caller. */
	chmod(path, 0666);
	uv_timer_init(loop, &srv->sweep);
	srv->sweep.data = srv;
	srv->sweep_on = true;
	krg_api_server_set_limits(srv, &srv->lim);
	*out = srv;
	return 0;
}

int krg_api_register(struct krg_api_server *srv, const char *command, bool root_only, krg_api_handler_cb cb,
		     void *data)
{
	for (struct handler *h = srv->handlers; h; h = h->next)
		if (!strcmp(h->command, command))
			return -EEXIST;
	struct handler *h = calloc(1, sizeof(*h));
	if (!h || !(h->command = strdup(command))) {
		free(h);
		return -ENOMEM;
	}
	h->root_only = root_only;
	h->cb = cb;
	h->data = data;
	h->next = srv->handlers;
	srv->handlers = h;
	return 0;
}

bool krg_api_registered(const struct krg_api_server *srv, const char *command)
{
	for (const struct handler *h = srv->handlers; h; h = h->next)
		if (!strcmp(h->command, command))
			return true;
	return false;
}

/* The last of the server's handles closed: its memory goes. */
static void server_free(uv_handle_t *h)
{
	struct krg_api_server *srv = h->data;
	while (srv->handlers) {
		struct handler *n = srv->handlers->next;
		free(srv->handlers->command);
		free(srv->handlers);
		srv->handlers = n;
	}
	while (srv->users) {
		struct user_use *n = srv->users->next;
		free(srv->users);
		srv->users = n;
	}
	free(srv);
}

/* The sweep timer, once initialised, is closed after the listener. */
static void listener_close_cb(uv_handle_t *h)
{
	struct krg_api_server *srv = h->data;
	if (srv->sweep_on)
		uv_close((uv_handle_t *)&srv->sweep, server_free);
	else
		server_free(h);
}

void krg_api_server_close(struct krg_api_server *srv)
{
	if (!srv)
		return;
	while (srv->clients)
		client_close(srv->clients);
	unlink(srv->path);
	uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
}
