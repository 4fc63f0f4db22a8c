/* mig_service.c — live migration through krgd (migrate.h, mig-int.h,
 * docs/migration.md). Roles of a krgd for one migrated process:
 *   home    holds the deputy (the original process exec'd into
 *           krg-deputy): relays its signals and proxied input to the node
 *           running the process, and that node's output and exit status
 *           back to it;
 *   host    runs the migrant under a holder (holder.c);
 *   source  moves it away: a worker (worker.c) freezes and dumps it, we
 *           stream the image to the target (net "mig.recv" + bulk
 *           "mig.file"), then commit (deputy / kill) or abort (thaw);
 *   target  receives the image and starts a holder that restores it.
 * "mig.move" goes caller -> home -> the node running the process. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>
#include "api/server.h"
#include "lib/fault.h"
#include "cluster/cluster.h"
#include "lib/fileio.h"
#include "lib/metrics.h"
#include "proc/pidrange.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "fsview/fsview.h"
#include "proc/migrate.h"
#include "proc/schedsvc.h"
#include "proc/migrate/filemsg.h"
#include "proc/migrate/mig_msg.h"
#include "proc/migrate/mig-int.h"
#include "ipc/intercept_svc.h"
#include "proc/migrate/worker.h"
#include "proc/procid.h"
#include "proc/table/table-int.h"
#include "proto/migrate.pb-c.h"

#define MOVE_TIMEOUT_MS (30u * 60 * 1000)
#define XFER_CHUNK (2u << 20)     /* under krgd's mmap threshold: heap buffers, no page faults per piece */
#define XFER_INFLIGHT (12u << 20) /* and under its trim threshold */
#define XFER_IDLE_MS (60u * 1000)
#define XFER_MAX (64ull << 30)
#define IMG_OUT "/run/krg/mig-out"
#define IMG_IN "/run/krg/mig-in"

struct origin {
	struct krg_api_call *call;
	uint32_t from;
	uint64_t req_id;
};

struct cq {
	struct cq *next;
	size_t len;
	uint8_t buf[];
};

enum conn_kind { CK_PENDING, CK_DEPUTY, CK_HOLDER, CK_WORKER };
/* A deputy sends its hello right after connecting. */
#define MIG_HELLO_MS 5000
/* Workers (freeze and dump) run this much nicer than krgd. */
#define MIG_WORKER_NICE 5

struct conn {
	int fd;
	uv_poll_t poll;
	enum conn_kind kind;
	void *owner;
	uv_timer_t *hello_deadline;  /* CK_PENDING: closes it if no hello comes */
	struct cq *qh, *qt;
	bool dead;
	int events;
};

struct backq {
	struct backq *next;
	uint32_t fd;
	size_t len;
	uint8_t data[];
};

struct dep {
	struct dep *next;
	uint32_t id, node;
	pid_t pid;
	int pidfd;
	uv_poll_t pp;
	bool pp_on;
	uint8_t token[16];
	struct conn *c;
	struct cq *ph, *pt;     /* frames for the deputy before it connected */
	struct backq *bh, *bt;  /* input returned by the node it leaves, for the next one */
	uint64_t sig_back;      /* signals the node it left bounced (bit s-1): for the next one, at mig.where */
	bool exit_sent;
	/* Its children here that ended (reaped by the deputy): their wait
	 * statuses, sent to every node it runs on (its ghosts there end so). */
	struct { pid_t pid; int status; } *ended;
	size_t nended;
};

/* A child a migrant left at home, and its ghost where the migrant runs. */
struct kid {
	pid_t home;      /* its pid at home */
	pid_t as;        /* the pid the migrant knows it by */
	pid_t ghost;     /* the ghost's pid here (a holder's); 0 if none */
	char comm[16];
	bool has_ids;    /* its ids at home are known: */
	uid_t uid, suid; /* real and saved uid */
	gid_t gid;       /* real gid */
	int stop_sig;    /* stopped by this signal, the stop not reaped by the migrant; 0: none */
};

struct move;
struct hold {
	struct hold *next;
	uint32_t id, home;
	pid_t pid, wpid;
	struct conn *c;
	bool restored, leaving, exited;
	bool drained;              /* its copy here is gone or going (it moved on): signals go back home */
	bool moved_on;             /* its migration from here committed: the copy's end is not the process's */
	bool has_req;
	struct origin o;
	uint32_t notify_fd;
	struct move *mv;
	size_t np;                 /* its proxied fds (FIFOs here), passed on when it moves again */
	int num[MIG_MAX_PROXIES];
	bool reads[MIG_MAX_PROXIES];
	bool tty[MIG_MAX_PROXIES];
	int stype[MIG_MAX_PROXIES];
	size_t nkids;              /* children left at home: ghosts here */
	struct kid kids[MIG_MAX_KIDS];
	pid_t ppid;                /* its parent's pid at home (its getppid() there): passed on when it moves again */
};

struct move {
	struct move *next;
	uint32_t id, to;
	pid_t pid, wpid;
	uid_t uid;
	gid_t gid;
	struct conn *w;
	struct origin o;
	bool answered, dumped, committed, verdict_sent;
	krg_migsvc_done_fn done;  /* the scheduler's, told the cost once answered; may be NULL */
	void *done_data;          /* borrowed, the caller's */
	char dir[256];
	char spec[2048];
	uint64_t xfer;
	struct hold *h;          /* a migrant here (else the original, at home); NULL once its holder is gone */
	bool here;               /* it was a migrant here when the move began */
	uint64_t carried;        /* signals pending on it before the dump (they went with the image) */
	uint32_t notify_fd;
	/* image transfer */
	char **names;
	size_t nnames, cur;
	int fd;
	uint64_t off, size;
	size_t inflight, pieces;
	bool all_sent, tx_failed, req_done;
	uint32_t new_pid;
	uint64_t t_start, t_dumped, t_running, bytes;
	bool counted;            /* in the metrics already (lib/metrics.h) */
	/* The pages file, sent while the worker writes it (early). */
	uv_timer_t early_timer;
	int early_fd;
	ino_t early_ino;
	char early_name[64];
	uint64_t early_off;     /* sent: [64, early_off) (the frame head comes last) */
	bool early_bad;
	size_t early_pieces;
	char *skip_name;        /* in the final pass: that range is not sent again */
	/* Pre-copy ranges to read from the process into pieces (MF_COPY:
	 * the worker leaves them as holes in its file). */
	struct mig_copy *cq;
	size_t cq_n, cq_cap, cq_head;
	bool direct;            /* the pages file's pre-copied part comes from cq, not the file */
	int pidfd;              /* the process: what copy_one reads is its memory, not a pid's reuser's */
	unsigned restore_ms;
	char stats[200];
	uint64_t where_signals;  /* from the holder's MF_DRAINED, for mig.where */
	bool where_held;         /* tests: mig.where waits (test_where_held) */
	/* Pre-copy: the worker waits until the pages file went out up to pre_want
	 * and the target has it (mig.got: got bytes of those sent), so that
	 * nothing pre-copied is still on the link when it freezes. */
	uint64_t pre_want;
	bool pre_waiting;
	uint64_t got;
	uint64_t t_sent;        /* when the pieces of this round were all written (0: not yet) */
	unsigned pre_rounds;
	uint64_t t_frozen;      /* MF_FROZEN: the process stopped (0: not yet) */
	bool freed;             /* move_free done, memory goes at the timer's close */
};

struct rx {
	struct rx *next;
	uint32_t from;
	uint64_t xfer;
	char dir[256];
	uint64_t total;
	bool ended, failed, has_req;
	uint64_t req_id;
	Krg__Mig__Recv *recv;
	uv_timer_t timer;
};

struct krg_migsvc {
	struct krg_services *s;
	uint32_t self;
	pid_t krgd;
	bool running;
	char deputy[512], ghost[512], sock_path[256];
	int lfd;
	uv_poll_t lpoll;
	bool lpoll_on;
	struct dep *deps;
	struct hold *holds;
	struct move *moves;
	struct rx *rxs;
	uint64_t counter;
	unsigned npending;      /* deputy connections before their hello */
	/* Moves waiting for a worker slot (at most max_workers run at once:
	 * each freezes and dumps a process, and a node that forked fifty of
	 * them starved its own krgd). Oldest first. */
	struct queued_move *queue, **queue_tail;
	unsigned nqueued;
};

struct queued_move {
	struct queued_move *next;
	struct origin o;
	uint32_t id, to, notify_fd;
	uid_t uid;
	uint64_t since;
};

static struct krg_migsvc the_mig;

/* ---- answers ---- */

static void answer(struct origin o, int status, const char *text, uint32_t node, uint32_t pid, uint32_t id)
{
	struct krg_migsvc *m = &the_mig;
	if (!o.call && !o.req_id)
		return; /* nobody waits (krg_migrate_self: its pipe is told) */
	Krg__Mig__Result res = KRG__MIG__RESULT__INIT;
	res.status = status;
	res.text = (char *)(text ? text : "");
	res.has_node = true;
	res.node = node;
	if (pid)
		res.has_pid = true, res.pid = pid;
	if (id)
		res.has_id = true, res.id = id;
	size_t len = krg__mig__result__get_packed_size(&res);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return;
	krg__mig__result__pack(&res, buf);
	if (o.call)
		krg_api_reply(o.call, status, status ? res.text : NULL, status ? NULL : buf, status ? 0 : len);
	else
		krg_net_reply(m->s->net, o.from, o.req_id, 0, buf, len);
	free(buf);
}

static const char *why(int r, char *buf, size_t len, uint32_t id)
{
	switch (r) {
	case -ESRCH: snprintf(buf, len, "no krg process %u", id); break;
	case -EPERM: snprintf(buf, len, "process %u: operation not permitted", id); break;
	case -EBUSY: snprintf(buf, len, "process %u is being migrated already", id); break;
	case -ETIMEDOUT: snprintf(buf, len, "node %u did not answer in time", krg_procid_home(id)); break;
	case -EHOSTUNREACH:
	case -ECONNRESET: snprintf(buf, len, "node %u is unreachable", krg_procid_home(id)); break;
	default: snprintf(buf, len, "%s", strerror(-r));
	}
	return buf;
}

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

static void on_conn_gone(struct conn *c);

static void free_handle_cb(uv_handle_t *h)
{
	free(h);
}

static void hello_deadline_stop(struct conn *c)
{
	if (!c->hello_deadline)
		return;
	uv_timer_stop(c->hello_deadline);
	uv_close((uv_handle_t *)c->hello_deadline, free_handle_cb);
	c->hello_deadline = NULL;
}

static void conn_close(struct conn *c)
{
	if (!c || c->dead)
		return;
	c->dead = true;
	hello_deadline_stop(c);
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

static void conn_flush(struct conn *c)
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

static struct cq *frame(uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
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

static void conn_send(struct conn *c, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	if (!c || c->dead)
		return;
	struct cq *q = frame(type, fd, arg, data, len);
	if (!q)
		return;
	if (c->qt)
		c->qt->next = q;
	else
		c->qh = q;
	c->qt = q;
	conn_flush(c);
}

static struct conn *conn_new(int fd, enum conn_kind kind, void *owner)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->kind = kind;
	c->owner = owner;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	uv_poll_init(the_mig.s->loop, &c->poll, fd);
	c->poll.data = c;
	conn_events(c);
	return c;
}

static void on_frame(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len);

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
		on_frame(c, &hd, buf + sizeof(hd), (size_t)n - sizeof(hd));
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
			on_conn_gone(c);
			conn_close(c);
		}
		return;
	}
	if (events & UV_WRITABLE)
		conn_flush(c);
	if (!(events & UV_READABLE))
		return;
	for (int i = 0; i < 64 && !c->dead; i++) {
		int r = conn_read_one(c, buf, sizeof(buf));
		if (r == 0)
			return;
		if (r < 0) {
			on_conn_gone(c);
			conn_close(c);
			return;
		}
	}
}

/* ---- lookups ---- */

static struct dep *dep_by_id(uint32_t id)
{
	for (struct dep *d = the_mig.deps; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

static struct hold *hold_by_id(uint32_t id)
{
	for (struct hold *h = the_mig.holds; h; h = h->next)
		if (h->id == id && !h->leaving)
			return h;
	return NULL;
}

int krg_mig_proc_kind(pid_t pid, uint32_t *id, uint32_t *home)
{
	struct krg_migsvc *m = &the_mig;
	if (!m->running)
		return 0;
	/* The file view's FUSE clients and home servers are krgd's too. */
	if (krg_fsview_is_helper(m->s->fsview, pid))
		return 2;
	for (struct hold *h = m->holds; h; h = h->next) {
		if (h->wpid == pid)
			return 2;
		if (h->pid == pid && h->restored && !h->leaving) {
			*id = h->id;
			*home = h->home;
			return 1;
		}
		for (size_t i = 0; i < h->nkids; i++)
			if (h->kids[i].ghost == pid)
				return 2;
	}
	for (struct dep *d = m->deps; d; d = d->next)
		if (d->pid == pid)
			return 2;
	for (struct move *v = m->moves; v; v = v->next)
		if (v->wpid == pid)
			return 2;
	return 0;
}

/* ---- sending mig.io & co to a node (ourselves included) ---- */

static void dispatch_io(uint32_t from, const char *type, const Krg__Mig__Io *io);

static void bulk_done(int status, void *data)
{
	free(data);
}

static void send_io(uint32_t to, const char *type, const Krg__Mig__Io *io, bool bulk)
{
	struct krg_migsvc *m = &the_mig;
	if (to == m->self) {
		dispatch_io(m->self, type, io);
		return;
	}
	size_t len = krg__mig__io__get_packed_size(io);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return;
	krg__mig__io__pack(io, buf);
	int r;
	if (bulk) {
		r = krg_net_send_bulk(m->s->net, to, type, buf, len, bulk_done, buf);
		if (r < 0)
			free(buf);
	} else {
		r = krg_net_send(m->s->net, to, type, buf, len);
		free(buf);
	}
	if (r < 0)
		log_debug("migrate: %s to node %u: %s", type, to, strerror(-r));
}

static void send_simple(uint32_t to, const char *type, uint32_t id, int sig, bool has_status, int status,
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
	send_io(to, type, &io, !strcmp(type, "mig.exit") || !strcmp(type, "mig.where"));
}

/* ---- deputies (home) ---- */

static void dep_to(struct dep *d, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	if (d->c) {
		conn_send(d->c, type, fd, arg, data, len);
		return;
	}
	struct cq *q = frame(type, fd, arg, data, len);
	if (!q)
		return;
	if (d->pt)
		d->pt->next = q;
	else
		d->ph = q;
	d->pt = q;
}

static void dep_release(struct dep *d)
{
	while (d->bh) {
		struct backq *b = d->bh;
		d->bh = b->next;
		free(b);
	}
	while (d->ph) {
		struct cq *q = d->ph;
		d->ph = q->next;
		free(q);
	}
	if (d->pidfd >= 0)
		close(d->pidfd);
	free(d->ended);
	free(d);
}

static void pp_closed(uv_handle_t *h)
{
	dep_release(h->data);
}

static void dep_free(struct dep *d)
{
	for (struct dep **p = &the_mig.deps; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	if (d->c) {
		d->c->owner = NULL;
		conn_close(d->c);
	}
	if (d->pp_on) {
		uv_poll_stop(&d->pp);
		uv_close((uv_handle_t *)&d->pp, pp_closed);
	} else {
		/* No poll handle was ever started: its data is not set. */
		dep_release(d);
	}
}

/* The deputy died: on purpose (it got the exit status), or killed. */
static void dep_died(uv_poll_t *h, int status, int events)
{
	struct dep *d = h->data;
	if (!d->exit_sent) {
		log_info("migrate: deputy of %u (pid %d) died: killing the migrant on node %u", d->id, (int)d->pid,
			 d->node);
		send_simple(d->node, "mig.sig", d->id, SIGKILL, false, 0, UINT32_MAX);
	}
	dep_free(d);
}

static void dep_exit(struct dep *d, int status)
{
	d->exit_sent = true;
	dep_to(d, MF_EXIT, 0, status, NULL, 0);
}

static void kid_status_to(uint32_t node, uint32_t id, pid_t pid, int status)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	io.has_child = true;
	io.child = (uint32_t)pid;
	io.has_status = true;
	io.status = status;
	send_io(node, "mig.sig", &io, false);
}

/* Every ended child's status to the node it runs on now (sent after
 * mig.go: a node it only passed through may have dropped them). The
 * holder there gives each to the ghost still waiting for it, if any. */
static void dep_send_ended(struct dep *d)
{
	for (size_t i = 0; i < d->nended; i++)
		kid_status_to(d->node, d->id, d->ended[i].pid, d->ended[i].status);
}

/* The deputy reaped child `pid`: recorded, and its ghost told. */
static void dep_kid_ended(struct dep *d, pid_t pid, int status)
{
	void *n = realloc(d->ended, (d->nended + 1) * sizeof(*d->ended));
	if (!n)
		return;
	d->ended = n;
	d->ended[d->nended].pid = pid;
	d->ended[d->nended++].status = status;
	kid_status_to(d->node, d->id, pid, status);
}

/* ---- holders (host) ---- */

/* Copies that left this node for another (their migration committed),
 * remembered a while after their holder is gone: the IPC service must not
 * take the end of such a copy for the process's exit (krg_mig_moved_on). */
#define DEPARTED_MAX 64
#define DEPARTED_MS 10000
static struct {
	pid_t pid;
	uint64_t at;
} departed[DEPARTED_MAX];
static unsigned departed_next;

bool krg_mig_moved_on(pid_t pid)
{
	struct krg_migsvc *m = &the_mig;
	if (!m->running || pid <= 0)
		return false;
	for (struct hold *h = m->holds; h; h = h->next)
		if (h->pid == pid && h->moved_on)
			return true;
	uint64_t now = uv_now(m->s->loop);
	for (unsigned i = 0; i < DEPARTED_MAX; i++)
		if (departed[i].pid == pid && now - departed[i].at < DEPARTED_MS) {
			departed[i].pid = 0; /* one end per departure: a reused pid is not caught */
			return true;
		}
	return false;
}

static void hold_free(struct hold *h)
{
	if (h->moved_on && h->pid > 0) {
		departed[departed_next].pid = h->pid;
		departed[departed_next].at = uv_now(the_mig.s->loop);
		departed_next = (departed_next + 1) % DEPARTED_MAX;
	}
	for (struct hold **p = &the_mig.holds; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	if (h->c) {
		h->c->owner = NULL;
		conn_close(h->c);
	}
	if (h->mv)
		h->mv->h = NULL; /* its move may outlive it (the migrant ended meanwhile) */
	free(h);
}

/* ---- moves (source) ---- */

static void move_answer(struct move *v, int status, const char *text)
{
	if (v->answered)
		return;
	v->answered = true;
	answer(v->o, status, text, status ? the_mig.self : v->to, v->new_pid, v->id);
	if (v->done) {
		uint64_t now = uv_now(the_mig.s->loop);
		v->done(status, now - v->t_start, status || !v->t_running ? 0 : v->t_running - v->t_start, v->done_data);
		v->done = NULL;
	}
}

static void notify_self(pid_t pid, uint32_t fd, int status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return;
	int nfd = (int)syscall(SYS_pidfd_getfd, pfd, (int)fd, 0);
	if (nfd >= 0) {
		char b[32];
		int n = snprintf(b, sizeof(b), "%d\n", status);
		ssize_t w = write(nfd, b, (size_t)n);
		(void)w;
		close(nfd);
	}
	close(pfd);
}

static void move_closed(uv_handle_t *h)
{
	free(h->data);
}

static void start_queued(void);

static void move_free(struct move *v)
{
	for (struct move **p = &the_mig.moves; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	if (v->w) {
		v->w->owner = NULL;
		conn_close(v->w);
	}
	if (v->h)
		v->h->mv = NULL;
	if (v->fd >= 0)
		close(v->fd);
	for (size_t i = 0; i < v->nnames; i++)
		free(v->names[i]);
	free(v->names);
	if (v->early_fd >= 0)
		close(v->early_fd);
	free(v->cq);
	if (v->pidfd >= 0)
		close(v->pidfd);
	mig_rm_rf(v->dir);
	uv_timer_stop(&v->early_timer);
	uv_close((uv_handle_t *)&v->early_timer, move_closed);
	start_queued();
}

static unsigned workers_running(void)
{
	unsigned n = 0;
	for (struct move *v = the_mig.moves; v; v = v->next)
		n += v->w != NULL;
	return n;
}

static int move_local(struct origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd, char *err,
		      size_t errlen);

/* Start queued moves while worker slots are free. Each is checked again
 * from scratch (the process may have ended, the node gone). */
static void start_queued(void)
{
	struct krg_migsvc *m = &the_mig;
	while (m->running && m->queue && workers_running() < m->s->cfg->migrate_max_workers) {
		struct queued_move *q = m->queue;
		m->queue = q->next;
		if (!m->queue)
			m->queue_tail = &m->queue;
		m->nqueued--;
		log_info("migrate: %u leaves the queue after %llu ms", q->id,
			 (unsigned long long)(uv_now(m->s->loop) - q->since));
		char e[600] = "";
		int r = move_local(q->o, q->id, q->to, q->uid, q->notify_fd | 0x80000000u, e, sizeof(e));
		if (r < 0) {
			log_warn("migrate: %u to node %u: %s", q->id, q->to, e[0] ? e : strerror(-r));
			if (q->notify_fd && !q->o.call && !q->o.req_id)
				notify_self(hold_by_id(q->id) ? hold_by_id(q->id)->pid : (pid_t)krg_procid_pid(q->id),
					    q->notify_fd & 0xffff, r);
			else
				answer(q->o, r, e[0] ? e : strerror(-r), m->self, 0, q->id);
		}
		free(q);
	}
}

static void move_maybe_free(struct move *v)
{
	/* freed: callers may look at it again before its memory goes (at the
	 * timer's close callback). */
	if (!v->freed && v->answered && !v->pieces && v->req_done && !v->w) {
		v->freed = true;
		move_free(v);
	}
}

static void send_abort(struct move *v)
{
	Krg__Mig__File f = KRG__MIG__FILE__INIT;
	f.xfer = v->xfer;
	f.name = (char *)"-";
	f.has_abort = f.abort = true;
	uint8_t *buf = malloc(64);
	if (!buf)
		return;
	size_t len = krg__mig__file__pack(&f, buf);
	if (krg_net_send_bulk(the_mig.s->net, v->to, "mig.file", buf, len, bulk_done, buf) < 0)
		free(buf);
}

static void move_fail(struct move *v, int status, const char *text)
{
	log_warn("migrate: %u to node %u: %s", v->id, v->to, text);
	if (!v->counted) {
		v->counted = true;
		krg_metrics_op(KRG_MOP_MIGRATION, false, v->bytes, uv_now(the_mig.s->loop) - v->t_start);
	}
	if (!v->dumped)
		v->req_done = true; /* no mig.recv was sent: none to wait for (the move can go) */
	uv_timer_stop(&v->early_timer);
	if (!v->dumped && v->early_pieces && !v->tx_failed)
		send_abort(v); /* the target has pieces but no mig.recv will come */
	if (v->notify_fd && !v->committed)
		notify_self(v->pid, v->notify_fd, status);
	move_answer(v, status, text);
	v->tx_failed = true;
	if (v->w && !v->committed && !v->verdict_sent) {
		v->verdict_sent = true;
		conn_send(v->w, MF_ABORT, 0, 0, NULL, 0);
	}
	move_maybe_free(v);
}

static void tx_pump(struct move *v);

static void tx_done(int status, void *data)
{
	struct cq *p = data; /* reused as a piece holder: len + buf */
	struct move *v = *(struct move **)p->buf;
	v->inflight -= p->len;
	v->pieces--;
	free(p);
	if (status < 0 && !v->tx_failed) {
		char e[128];
		snprintf(e, sizeof(e), "sending the image to node %u: %s", v->to, strerror(-status));
		move_fail(v, status, e);
	}
	tx_pump(v);
	move_maybe_free(v);
}

static int send_piece(struct move *v, const char *name, uint64_t off, int fd, size_t want, bool last, bool end);

static int tx_one(struct move *v)
{
	char e[600];
	if (v->fd < 0) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", v->dir, v->names[v->cur]);
		v->fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (v->fd < 0 || fstat(v->fd, &st) < 0) {
			snprintf(e, sizeof(e), "cannot read %s: %s", path, strerror(errno));
			move_fail(v, -EIO, e);
			return -1;
		}
		v->off = 0;
		v->size = (uint64_t)st.st_size;
	}
	bool skip = v->skip_name && !strcmp(v->skip_name, v->names[v->cur]);
	if (skip && v->off == 64)
		v->off = v->early_off; /* sent while it was dumped */
	uint64_t lim = skip && v->off < 64 ? 64 : v->size;
	size_t want = lim - v->off > XFER_CHUNK ? XFER_CHUNK : (size_t)(lim - v->off);
	bool last = v->off + want == v->size && !(skip && v->off < 64 && v->early_off < v->size);
	int r = send_piece(v, v->names[v->cur], v->off, v->fd, want, last, last && v->cur + 1 == v->nnames);
	if (r == -EIO) {
		move_fail(v, -EIO, "cannot read the image");
		return -1;
	}
	if (r < 0) {
		snprintf(e, sizeof(e), "sending the image to node %u: %s", v->to, strerror(-r));
		move_fail(v, r, e);
		return -1;
	}
	v->off += want;
	v->bytes += want;
	if (last) {
		close(v->fd);
		v->fd = -1;
		if (++v->cur == v->nnames)
			v->all_sent = true;
	}
	return 0;
}

static void early_pump(struct move *v);

static void pre_check(struct move *v);

static void tx_pump(struct move *v)
{
	if (!v->dumped) {
		early_pump(v);
		pre_check(v);
		return;
	}
	while (!v->tx_failed && !v->all_sent && v->inflight < XFER_INFLIGHT)
		if (tx_one(v) < 0)
			return;
}

/* A piece of a file on its way: `want` bytes at offset `off` of `name`,
 * encoded in place (filemsg.h); *data is where its bytes go. */
static struct cq *piece_new(struct move *v, const char *name, uint64_t off, size_t want, bool last, bool end, uint8_t **data)
{
	struct cq *p = malloc(sizeof(*p) + sizeof(v) + MIG_FILE_HEAD_MAX(strlen(name)) + want);
	if (!p)
		return NULL;
	memcpy(p->buf, &v, sizeof(v));
	size_t n = mig_file_head(p->buf + sizeof(v), v->xfer, name, off, want, last, end);
	p->len = n + want;
	*data = p->buf + sizeof(v) + n;
	return p;
}

static int piece_send(struct move *v, struct cq *p)
{
	size_t len = p->len;
	v->inflight += len;
	v->pieces++;
	int r = krg_net_send_bulk(the_mig.s->net, v->to, "mig.file", p->buf + sizeof(v), len, tx_done, p);
	if (r < 0) {
		v->inflight -= len;
		v->pieces--;
		free(p);
	}
	return r;
}

/* One piece of a file read from fd straight into the message. -errno;
 * -EIO: the read failed. */
static int send_piece(struct move *v, const char *name, uint64_t off, int fd, size_t want, bool last, bool end)
{
	uint8_t *m;
	struct cq *p = piece_new(v, name, off, want, last, end, &m);
	if (!p)
		return -ENOMEM;
	size_t got = 0;
	while (got < want) {
		ssize_t k = pread(fd, m + got, want - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(p);
			return -EIO;
		}
		got += (size_t)k;
	}
	return piece_send(v, p);
}

/* Pre-copy by krgd (MF_COPY): the next XFER_CHUNK of the range at the
 * head of the queue read from the process straight into a piece, its
 * page sums sent back to the worker (MF_COPIED) for the final dump. A
 * page that cannot be read (unmapped meanwhile) is sent as zeros and
 * reported not ok: the final dump reads it then, if it still exists. */
static int copy_one(struct move *v)
{
	struct mig_copy *c = &v->cq[v->cq_head];
	size_t want = c->len > XFER_CHUNK ? XFER_CHUNK : (size_t)c->len;
	size_t np = want / 4096;
	uint8_t *m;
	struct cq *p = piece_new(v, v->early_name, 64 + c->off, want, false, false, &m);
	uint8_t *rep = malloc(8 + np * 9);
	if (!p || !rep) {
		free(p);
		free(rep);
		return -ENOMEM;
	}
	uint8_t *ok = rep + 8 + np * 8;
	memset(ok, 1, np);
	struct iovec li = { m, want }, ri = { (void *)(uintptr_t)c->addr, want };
	ssize_t got = process_vm_readv(v->pid, &li, 1, &ri, 1, 0);
	if (got != (ssize_t)want) {
		/* Page by page from the first that failed. */
		size_t from = got > 0 ? (size_t)got / 4096 : 0;
		for (size_t k = from; k < np; k++) {
			struct iovec l1 = { m + k * 4096, 4096 }, r1 = { (void *)(uintptr_t)(c->addr + k * 4096), 4096 };
			if (process_vm_readv(v->pid, &l1, 1, &r1, 1, 0) != 4096) {
				memset(m + k * 4096, 0, 4096);
				ok[k] = 0;
			}
		}
	}
	/* Still alive after the read, so its pid was not someone else's
	 * during it: what we read is its memory. */
	if (syscall(SYS_pidfd_send_signal, v->pidfd, 0, NULL, 0) < 0) {
		free(p);
		free(rep);
		return -ESRCH;
	}
	memcpy(rep, &c->off, 8);
	for (size_t k = 0; k < np; k++) {
		uint64_t sum = XXH3_64bits(m + k * 4096, 4096);
		memcpy(rep + 8 + k * 8, &sum, 8);
	}
	conn_send(v->w, MF_COPIED, 0, (int64_t)c->addr, rep, 8 + np * 9);
	free(rep);
	int r = piece_send(v, p);
	if (r < 0)
		return r;
	c->addr += want;
	c->off += want;
	c->len -= want;
	if (64 + c->off > v->early_off)
		v->early_off = 64 + c->off;
	v->bytes += want;
	v->early_pieces++;
	if (!c->len)
		v->cq_head++;
	return 0;
}

static void copy_pump(struct move *v)
{
	struct stat st;
	if (v->early_fd >= 0 && (fstat(v->early_fd, &st) < 0 || st.st_nlink == 0)) {
		v->early_bad = true;  /* that pre-copy was abandoned: the dump sends it all */
		v->cq_head = v->cq_n;
		return;
	}
	while (v->cq_head < v->cq_n && v->inflight < XFER_INFLIGHT && !v->tx_failed)
		if (copy_one(v) < 0) {
			v->early_bad = true;
			v->cq_head = v->cq_n;
			return;
		}
}

/* A piece of the pages file read into its message is not needed here
 * again (the final dump refers to pre-copied pages by offset, never reads
 * them), so its whole pages are freed at once: the worker's next writes
 * reuse them, and the source holds a few MiB of copies instead of the
 * process's whole memory. Memory handed out fresh is what makes a large
 * transfer slow here, far more than the copying itself (on a VM each new
 * page of a guest may cost the host a fault). */
static void punch_sent(int fd, uint64_t off, uint64_t len)
{
	uint64_t s = (off + 4095) & ~4095ULL, e = (off + len) & ~4095ULL;
	if (e > s)
		(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s, (off_t)(e - s));
}

/* While the worker dumps: whole pieces of the pages file written so far. */
static void early_pump(struct move *v)
{
	if (v->dumped || v->tx_failed || v->early_bad)
		return;
	if (v->direct) {
		copy_pump(v);
		return;
	}
	if (v->early_fd < 0) {
		DIR *d = opendir(v->dir);
		if (!d)
			return;
		struct dirent *e;
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (!strncmp(e->d_name, ".pages-", 7) && l > 12 && l < sizeof(v->early_name) &&
			    !strcmp(e->d_name + l - 8, ".img.tmp")) {
				v->early_fd = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC); /* RDWR: punch_sent */
				snprintf(v->early_name, sizeof(v->early_name), "%.*s", (int)(l - 5), e->d_name + 1);
				break;
			}
		}
		closedir(d);
		struct stat st;
		if (v->early_fd < 0 || fstat(v->early_fd, &st) < 0)
			return;
		v->early_ino = st.st_ino;
		v->early_off = 64;
	}
	struct stat st;
	if (fstat(v->early_fd, &st) < 0 || st.st_nlink == 0) {
		v->early_bad = true; /* that dump was abandoned: the final pass sends it all */
		return;
	}
	while (v->inflight < XFER_INFLIGHT && (uint64_t)st.st_size >= v->early_off + XFER_CHUNK) {
		int r = send_piece(v, v->early_name, v->early_off, v->early_fd, XFER_CHUNK, false, false);
		if (r < 0) {
			v->early_bad = true;
			return;
		}
		v->early_pieces++;
		punch_sent(v->early_fd, v->early_off, XFER_CHUNK);
		v->early_off += XFER_CHUNK;
		v->bytes += XFER_CHUNK;
	}
}

/* Pre-copy: answer the worker once the pages file went out as far as
 * whole pieces go (the rest goes after the dump), or at once if it cannot
 * be streamed (it will be sent whole then). */
static void pre_check(struct move *v)
{
	if (!v->pre_waiting || v->tx_failed || !v->w)
		return;
	if (!v->early_bad && v->direct && (v->cq_head < v->cq_n || v->inflight))
		return;
	if (!v->early_bad && !v->direct && v->early_fd >= 0 && (v->early_off + XFER_CHUNK <= v->pre_want || v->inflight))
		return;
	if (!v->early_bad && v->early_fd < 0)
		return;  /* not found yet: the timer looks again */
	/* Written to the link; now received? (A target that does not say
	 * gets MIG_GOT_WAIT_MS.) */
	uint64_t now = uv_now(the_mig.s->loop);
	if (!v->t_sent)
		v->t_sent = now;
	if (!v->early_bad && v->got < v->bytes && now - v->t_sent < MIG_GOT_WAIT_MS)
		return;
	v->t_sent = 0;
	v->pre_waiting = false;
	log_debug("migrate: %u: pre-copy round %u sent at %" PRIu64 " ms", v->id, v->pre_rounds, now - v->t_start);
	conn_send(v->w, MF_SENT, 0, (int64_t)v->early_off, NULL, 0);
}

static void early_tick(uv_timer_t *t)
{
	struct move *v = t->data;
	early_pump(v);
	pre_check(v);
	if (v->dumped || v->tx_failed || v->early_bad)
		uv_timer_stop(t);
}

static void recv_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct move *v = data;
	v->req_done = true;
	char e[600];
	if (status) {
		snprintf(e, sizeof(e), "node %u: %s", v->to,
			 status == -ETIMEDOUT ? "no answer in time" : status == -ECONNRESET || status == -EHOSTUNREACH ? "unreachable" : strerror(-status));
		if (!v->tx_failed)
			move_fail(v, status, e);
		move_maybe_free(v);
		return;
	}
	Krg__Mig__Result *res = krg__mig__result__unpack(NULL, reply->len, reply->body);
	if (!res || res->status > 0 || res->status < -4095) {
		move_fail(v, -EBADMSG, "malformed answer from the target node");
	} else if (res->status) {
		move_fail(v, res->status, res->text);
	} else if (v->tx_failed) {
		/* We gave up meanwhile (the process died?): the copy must go. */
		send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
	} else if (v->here && !v->h) {
		/* Its holder went away meanwhile (the migrant ended or was
		 * killed here): the copy must go too. */
		send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
		move_fail(v, -ESRCH, "the process ended during its migration");
	} else {
		v->new_pid = res->has_pid ? res->pid : 0;
		if (!res->text || sscanf(res->text, "restore %u ms", &v->restore_ms) != 1)
			v->restore_ms = 0;
		v->committed = true;
		v->t_running = uv_now(the_mig.s->loop);
		log_info("migrate: %u runs on node %u as pid %u", v->id, v->to, v->new_pid);
		if (v->h) {
			/* A migrant here: its holder sends what it wrote, then we
			 * tell home where it went (mig.where after that data). */
			v->h->leaving = true;
			v->h->moved_on = true;
			conn_send(v->h->c, MF_LEAVE, 0, (int64_t)v->carried, NULL, 0);
		} else {
			/* The original at home: becomes the deputy. */
			struct dep *d = calloc(1, sizeof(*d));
			if (d) {
				d->id = v->id;
				d->pid = v->pid;
				d->node = v->to;
				/* Watched from now: a deputy that dies before it
				 * connects takes its migrant along too. */
				d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
				if (d->pidfd >= 0 && uv_poll_init(the_mig.s->loop, &d->pp, d->pidfd) == 0) {
					d->pp.data = d;
					d->pp_on = true;
					uv_poll_start(&d->pp, UV_READABLE, dep_died);
				}
				getrandom(d->token, sizeof(d->token), 0);
				d->next = the_mig.deps;
				the_mig.deps = d;
				char tok[33], ids[16], argv[2048];
				for (int i = 0; i < 16; i++)
					snprintf(tok + 2 * i, 3, "%02x", d->token[i]);
				snprintf(ids, sizeof(ids), "%u", v->id);
				char comm[64] = "krg-deputy", path[64];
				snprintf(path, sizeof(path), "/proc/%d/comm", (int)v->pid);
				FILE *f = fopen(path, "re");
				if (f) {
					if (fgets(comm, sizeof(comm), f))
						comm[strcspn(comm, "\n")] = 0;
					fclose(f);
				}
				size_t n = 0;
				const char *parts[] = { the_mig.deputy, the_mig.sock_path, ids, tok, comm };
				for (size_t i = 0; i < 5; i++) {
					size_t l = strlen(parts[i]) + 1;
					if (n + l <= sizeof(argv)) {
						memcpy(argv + n, parts[i], l);
						n += l;
					}
				}
				v->verdict_sent = true;
				conn_send(v->w, MF_COMMIT, 0, 1, argv, n);
			} else {
				v->verdict_sent = true;
				conn_send(v->w, MF_COMMIT, 0, 1, NULL, 0);
			}
		}
	}
	if (res)
		krg__mig__result__free_unpacked(res, NULL);
	move_maybe_free(v);
}

/* The children of process pid (every thread's), at most max. */
static size_t children_of(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.')
			continue;
		char cp[96];
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		FILE *f = fopen(cp, "re");
		if (!f)
			continue;
		int c;
		while (n < max && fscanf(f, "%d", &c) == 1)
			out[n++] = c;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The signal that stopped process pid, if its parent has not reaped that
 * stop yet (waitpid WUNTRACED would report it); else 0. /proc/PID/stat's
 * exit_code (field 52) holds it until the wait takes it. */
static int unreaped_stop(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	const char *p = n > 0 ? strrchr(buf, ')') : NULL;
	if (!p || (p[2] != 'T'))
		return 0;
	const char *last = strrchr(buf, ' ');
	int code = last ? atoi(last + 1) : 0;
	return code >= 1 && code <= 64 ? code : 0;
}

/* Process pid's parent (/proc/PID/stat field 4), 0 if unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	const char *p = n > 0 ? strrchr(buf, ')') : NULL;
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* The children v's process leaves at home, for ghosts on the target: at
 * home every child of the original (still there or not waited for); a
 * migrant here takes its ghosts along (not the ones it reaped, nor
 * children it made here, which a one-process migration leaves behind). */
static size_t list_kids(const struct move *v, struct kid *out)
{
	pid_t c[MIG_MAX_KIDS];
	size_t n = children_of(v->pid, c, MIG_MAX_KIDS), k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!v->here) {
			out[k] = (struct kid){ .home = c[i], .as = c[i] };
			char path[64], line[256];
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)c[i]);
			FILE *f = fopen(path, "re");
			if (f) {
				if (fgets(out[k].comm, sizeof(out[k].comm), f))
					out[k].comm[strcspn(out[k].comm, "\n")] = 0;
				fclose(f);
			}
			snprintf(path, sizeof(path), "/proc/%d/status", (int)c[i]);
			f = fopen(path, "re");
			unsigned u[3], g;
			bool hu = false, hg = false;
			while (f && fgets(line, sizeof(line), f)) {
				hu |= sscanf(line, "Uid: %u %u %u", &u[0], &u[1], &u[2]) == 3;
				hg |= sscanf(line, "Gid: %u", &g) == 1;
			}
			if (f)
				fclose(f);
			if (hu && hg)
				out[k].has_ids = true, out[k].uid = u[0], out[k].suid = u[2], out[k].gid = g;
			out[k].stop_sig = unreaped_stop(c[i]);
			k++;
			continue;
		}
		for (size_t j = 0; v->h && j < v->h->nkids; j++)
			if (v->h->kids[j].ghost == c[i]) {
				out[k] = v->h->kids[j];
				out[k].stop_sig = unreaped_stop(c[i]);  /* its ghost's, here */
				out[k++].as = c[i];
			}
	}
	return k;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The worker dumped it: list the image, ask the target, stream. */
static void move_dumped(struct move *v, const char *spec)
{
	snprintf(v->spec, sizeof(v->spec), "%s", spec);
	DIR *d = opendir(v->dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_type != DT_REG)
				continue;
			char **nn = realloc(v->names, (v->nnames + 1) * sizeof(*nn));
			if (!nn)
				break;
			v->names = nn;
			if (!(nn[v->nnames] = strdup(e->d_name)))
				break;
			v->nnames++;
		}
		closedir(d);
	}
	if (!v->nnames) {
		move_fail(v, -EIO, "the dump left no image");
		return;
	}
	qsort(v->names, v->nnames, sizeof(*v->names), cmp_names);
	uv_timer_stop(&v->early_timer);
	if (v->direct && v->cq_head < v->cq_n) {
		/* Frozen before all was copied (the worker stopped waiting): the
		 * dump took none of those pages from us (no report reached it),
		 * so their ranges stay holes, sent by neither pass. */
		const struct mig_copy *last = &v->cq[v->cq_n - 1];
		if (64 + last->off + last->len > v->early_off)
			v->early_off = 64 + last->off + last->len;
		v->cq_head = v->cq_n;
	}
	if (v->early_fd >= 0 && !v->early_bad && v->early_off > 64) {
		char path[600];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", v->dir, v->early_name);
		for (size_t i = 0; i < v->nnames; i++)
			if (!strcmp(v->names[i], v->early_name) && stat(path, &st) == 0 && st.st_ino == v->early_ino &&
			    (uint64_t)st.st_size >= v->early_off)
				v->skip_name = v->names[i];
	}
	Krg__Mig__Recv q = KRG__MIG__RECV__INIT;
	q.xfer = v->xfer;
	q.id = v->id;
	q.uid = v->uid;
	q.gid = v->gid;
	if (v->notify_fd)
		q.has_notify_fd = true, q.notify_fd = v->notify_fd;
	/* It keeps seeing the files it saw here (docs/fsview.md). */
	if ((q.view_home = krg_fsview_home_of(the_mig.s->fsview, v->pid)))
		q.has_view_home = true;
	/* Its getppid() at home: its holder there takes that pid. */
	pid_t ppid = v->h ? v->h->ppid : parent_of(v->pid);
	if (ppid > 1)
		q.has_ppid = true, q.ppid = (uint32_t)ppid;
	Krg__Mig__Proxy px[MIG_MAX_PROXIES], *pp[MIG_MAX_PROXIES];
	size_t np = 0;
	/* Its children (it is frozen: the list holds): at home, all of them
	 * stay; here, those that are ghosts go on as ghosts. */
	static struct kid kids[MIG_MAX_KIDS];
	static Krg__Mig__Kid kx[MIG_MAX_KIDS], *kp[MIG_MAX_KIDS];
	size_t nk = list_kids(v, kids);
	for (size_t i = 0; i < nk; i++) {
		krg__mig__kid__init(&kx[i]);
		kx[i].pid = (uint32_t)kids[i].home;
		kx[i].as = (uint32_t)kids[i].as;
		kx[i].comm = kids[i].comm;
		if (kids[i].has_ids) {
			kx[i].has_uid = kx[i].has_suid = kx[i].has_gid = true;
			kx[i].uid = kids[i].uid, kx[i].suid = kids[i].suid, kx[i].gid = kids[i].gid;
		}
		if (kids[i].stop_sig) {
			kx[i].has_stop_signal = true;
			kx[i].stop_signal = (uint32_t)kids[i].stop_sig;
		}
		kp[i] = &kx[i];
	}
	q.n_kids = nk;
	q.kids = kp;
	/* A migrant here: its FIFOs stand for the deputy's fds already. */
	for (size_t i = 0; v->h && i < v->h->np; i++) {
		krg__mig__proxy__init(&px[np]);
		px[np].fd = (uint32_t)v->h->num[i];
		px[np].reads = v->h->reads[i];
		px[np].has_tty = px[np].tty = v->h->tty[i];
		if (v->h->stype[i])
			px[np].has_sock_type = true, px[np].sock_type = (uint32_t)v->h->stype[i];
		pp[np] = &px[np];
		np++;
	}
	for (const char *s = spec; *s && np < MIG_MAX_PROXIES;) {
		int num, keep, k = 0;
		unsigned rows = 0, cols = 0;
		char dir, kind[8];
		if (sscanf(s, "%d:%d:%c:%7[a-z0-9-]:%ux%u%n", &num, &keep, &dir, kind, &rows, &cols, &k) != 6)
			break;
		/* A terminal of a migrant here shows up again (a pty is refused
		 * by the dump): it replaces the entry its holder had. */
		size_t at = np;
		for (size_t i = 0; i < np; i++)
			if (px[i].fd == (uint32_t)num)
				at = i;
		/* A forwarded socket of a migrant here is refused by the dump as
		 * well: it stays the socket it stands for. */
		uint32_t st = at < np && px[at].has_sock_type ? px[at].sock_type : 0;
		if (kind[0] == 's')
			st = (uint32_t)atoi(kind + 1);
		krg__mig__proxy__init(&px[at]);
		px[at].fd = (uint32_t)num;
		if (st)
			px[at].has_sock_type = true, px[at].sock_type = st;
		px[at].reads = dir == 'r';
		px[at].has_tty = px[at].tty = !strcmp(kind, "tty");
		if (rows && cols)
			px[at].has_rows = px[at].has_cols = true, px[at].rows = rows, px[at].cols = cols;
		pp[at] = &px[at];
		if (at == np)
			np++;
		s += k;
		while (*s == ' ')
			s++;
	}
	q.n_proxies = np;
	q.proxies = pp;
	size_t len = krg__mig__recv__get_packed_size(&q);
	uint8_t *buf = malloc(len);
	if (!buf) {
		move_fail(v, -ENOMEM, "out of memory");
		return;
	}
	krg__mig__recv__pack(&q, buf);
	int r = krg_net_request(the_mig.s->net, v->to, "mig.recv", buf, len, MOVE_TIMEOUT_MS, recv_reply, v);
	free(buf);
	if (r < 0) {
		char e[128];
		snprintf(e, sizeof(e), "node %u is unreachable", v->to);
		v->req_done = true;
		move_fail(v, r, e);
		return;
	}
	v->dumped = true;
	v->t_dumped = uv_now(the_mig.s->loop);
	tx_pump(v);
}

/* Fault injection for the tests (migrate.sh 3e): while
 * <mig-hold dir>/<id>.where exists, the node a migrant leaves does not
 * tell home where it went: home's signals meanwhile reach the old node. */
static bool test_where_held(uint32_t id)
{
	char buf[256];
	const char *dir = krg_fault_value("mig-hold", buf, sizeof(buf));
	char path[512];
	if (!dir || !dir[0])
		return false;
	snprintf(path, sizeof(path), "%s/%u.where", dir, id);
	return access(path, F_OK) == 0;
}

/* The copy here left (its output drained): tell home the new node and
 * the signals that reached the frozen copy after its dump (home sends
 * them on), then let the worker commit. */
static void send_where(struct move *v)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = v->id;
	io.has_node = true;
	io.node = v->to;
	io.has_signals = true;
	io.signals = v->where_signals;
	send_io(krg_procid_home(v->id), "mig.where", &io, true);
	if (!v->verdict_sent && v->w) {
		v->verdict_sent = true;
		conn_send(v->w, MF_COMMIT, 0, 0, NULL, 0);
	}
}

static void where_tick(uv_timer_t *t)
{
	struct move *v = t->data;
	if (test_where_held(v->id))
		return;
	uv_timer_stop(t);
	send_where(v);
}

/* ---- frames from deputies, holders, workers ---- */

static void io_from_local(uint32_t to, uint32_t id, bool up, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	io.has_up = io.up = up;
	io.has_fd = true;
	io.fd = (uint32_t)h->fd;
	if (h->type == MF_DATA)
		io.has_data = true, io.data.data = (uint8_t *)data, io.data.len = len, io.has_ack = h->arg != 0,
		io.ack = (uint32_t)h->arg; /* 1: a socket's message goes on in the next one */
	else if (h->type == MF_EOF)
		io.has_eof = io.eof = true, io.has_ack = h->arg != 0, io.ack = (uint32_t)h->arg; /* 1: a socket shut, not closed */
	else
		io.has_ack = true, io.ack = (uint32_t)h->arg;
	send_io(to, "mig.io", &io, true);
}

static void hello(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct ucred cr;
	socklen_t sl = sizeof(cr);
	struct dep *d = dep_by_id((uint32_t)h->arg);
	if (h->type != MF_HELLO || len != 16 || !d || d->c || getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0 ||
	    cr.pid != d->pid || memcmp(d->token, data, 16)) {
		log_warn("migrate: refused a deputy connection (pid %d)", (int)cr.pid);
		conn_close(c);
		return;
	}
	c->kind = CK_DEPUTY;
	hello_deadline_stop(c);
	if (the_mig.npending)
		the_mig.npending--;
	c->owner = d;
	d->c = c;
	while (d->ph) {
		struct cq *q = d->ph;
		d->ph = q->next;
		q->next = NULL;
		if (c->qt)
			c->qt->next = q;
		else
			c->qh = q;
		c->qt = q;
	}
	d->pt = NULL;
	conn_flush(c);
}

static void on_frame(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct krg_migsvc *m = &the_mig;
	switch (c->kind) {
	case CK_PENDING:
		hello(c, h, data, len);
		return;
	case CK_DEPUTY: {
		struct dep *d = c->owner;
		if (!d)
			return;
		struct mig_siginfo q;
		if (h->type == MF_SIG && h->arg > 0 && h->arg < 65 && mig_siginfo_get(data, len, &q)) {
			Krg__Mig__Io io = KRG__MIG__IO__INIT;
			io.id = d->id;
			io.has_signal = true, io.signal = (int32_t)h->arg;
			io.has_sq_code = true, io.sq_code = q.code;
			io.has_sq_value = true, io.sq_value = q.value;
			io.has_sq_pid = true, io.sq_pid = q.pid;
			io.has_sq_uid = true, io.sq_uid = q.uid;
			send_io(d->node, "mig.sig", &io, false);
		} else if (h->type == MF_SIG && h->arg > 0 && h->arg < 65) {
			send_simple(d->node, "mig.sig", d->id, (int)h->arg, false, 0, UINT32_MAX);
		} else if (h->type == MF_KID_EXIT && h->fd > 0) {
			dep_kid_ended(d, h->fd, (int)h->arg);
		} else if (h->type == MF_WINSZ) {
			/* On the bulk channel like the data, and before the SIGWINCH
			 * that follows it on the control channel? No ordering between
			 * channels: send it on control too. */
			Krg__Mig__Io io = KRG__MIG__IO__INIT;
			io.id = d->id;
			io.has_winsize = true;
			io.winsize = (uint32_t)h->arg;
			send_io(d->node, "mig.sig", &io, false);
		}
		else if (h->type == MF_DATA || h->type == MF_EOF || h->type == MF_ACK)
			io_from_local(d->node, d->id, false, h, data, len);
		return;
	}
	case CK_HOLDER: {
		struct hold *ho = c->owner;
		if (!ho)
			return;
		if (h->type == MF_RESTORED) {
			ho->pid = (pid_t)h->arg;
			ho->restored = true;
			if (ho->notify_fd)
				conn_send(c, MF_NOTIFY, 0, ho->notify_fd, NULL, 0);
			if (ho->has_req) {
				char t[64];
				snprintf(t, sizeof(t), "restore %d ms", (int)h->fd);
				ho->has_req = false;
				answer(ho->o, 0, t, m->self, (uint32_t)ho->pid, ho->id);
			}
		} else if (h->type == MF_ERR) {
			char t[1024];
			snprintf(t, sizeof(t), "%.*s", (int)len, (const char *)data);
			if (ho->has_req) {
				ho->has_req = false;
				answer(ho->o, -EIO, t, m->self, 0, ho->id);
			}
			hold_free(ho);
		} else if (h->type == MF_DATA || h->type == MF_EOF || h->type == MF_ACK) {
			io_from_local(ho->home, ho->id, true, h, data, len);
		} else if (h->type == MF_BACK) {
			Krg__Mig__Io io = KRG__MIG__IO__INIT;
			io.id = ho->id;
			io.has_fd = true;
			io.fd = (uint32_t)h->fd;
			io.has_data = true;
			io.data.data = (uint8_t *)data;
			io.data.len = len;
			io.has_up = io.up = true;
			io.has_back = io.back = true;
			send_io(ho->home, "mig.io", &io, true);
		} else if (h->type == MF_EXIT) {
			ho->exited = true;
			if (!ho->leaving)
				send_simple(ho->home, "mig.exit", ho->id, 0, true, (int)h->arg, UINT32_MAX);
			log_info("migrate: migrant %u (pid %d) ended, status 0x%x", ho->id, (int)ho->pid, (int)h->arg);
			hold_free(ho);
		} else if (h->type == MF_GHOST) {
			for (size_t i = 0; i < ho->nkids; i++)
				if (ho->kids[i].home == h->fd)
					ho->kids[i].ghost = (pid_t)h->arg;
		} else if (h->type == MF_KID_SIG && h->arg > 0 && h->arg < 65) {
			/* The migrant signalled a ghost: the real child gets it. */
			Krg__Mig__Io io = KRG__MIG__IO__INIT;
			io.id = ho->id;
			io.has_child = true;
			io.child = (uint32_t)h->fd;
			io.has_signal = true;
			io.signal = (int32_t)h->arg;
			send_io(ho->home, "mig.sig", &io, false);
		} else if (h->type == MF_DRAINED && ho->mv) {
			struct move *v = ho->mv;
			/* From now on a signal home sends here goes back home
			 * (dispatch_io), which sends it on once it knows where. */
			ho->drained = true;
			v->where_signals = (uint64_t)h->arg;
			if (test_where_held(v->id)) {
				v->where_held = true;
				uv_timer_start(&v->early_timer, where_tick, 20, 20);
				return;
			}
			send_where(v);
		}
		return;
	}
	case CK_WORKER: {
		struct move *v = c->owner;
		if (!v)
			return;
		if (h->type == MF_ERR) {
			char t[3000];
			snprintf(t, sizeof(t), "%.*s", (int)len, (const char *)data);
			if (v->committed) {
				/* Exec of the deputy failed: the original is gone, so is the copy. */
				send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
				struct dep *d = dep_by_id(v->id);
				if (d) {
					d->exit_sent = true;
					dep_free(d);
				}
			}
			v->w = NULL;
			conn_close(c);
			move_fail(v, -EIO, t);
		} else if (h->type == MF_PRECOPY && h->fd > 0) {
			v->pre_rounds = (unsigned)h->fd;
			v->pre_want = (uint64_t)h->arg;
			v->pre_waiting = true;
			uv_update_time(the_mig.s->loop);
			log_debug("migrate: %u: pre-copy round %u copied, file %" PRIu64 " bytes, %" PRIu64 " sent, at %" PRIu64 " ms",
				  v->id, v->pre_rounds, v->pre_want, v->early_off, uv_now(the_mig.s->loop) - v->t_start);
			early_pump(v);
			pre_check(v);
		} else if (h->type == MF_COPY && len == sizeof(struct mig_copy) && !v->dumped) {
			struct mig_copy cp;
			memcpy(&cp, data, sizeof(cp));
			if (cp.addr % 4096 || cp.len % 4096 || cp.off > XFER_MAX || cp.len > XFER_MAX)
				return;
			if (!v->direct) {
				/* The worker's file, to check at the end that the dump
				 * went on with it (same inode, holes where we copied). */
				char path[600];
				if (v->early_fd >= 0)
					close(v->early_fd);  /* found by early_pump: nothing was written to it */
				snprintf(v->early_name, sizeof(v->early_name), "pages-%d.img", (int)v->pid);
				snprintf(path, sizeof(path), "%s/.%s.tmp", v->dir, v->early_name);
				struct stat st;
				v->early_fd = open(path, O_RDONLY | O_CLOEXEC);
				if (v->early_fd < 0 || fstat(v->early_fd, &st) < 0) {
					v->early_bad = true;
					return;
				}
				v->early_ino = st.st_ino;
				v->early_off = 64;
				v->direct = true;
			}
			if (v->cq_n == v->cq_cap) {
				size_t nc = v->cq_cap ? 2 * v->cq_cap : 64;
				struct mig_copy *q = realloc(v->cq, nc * sizeof(*q));
				if (!q) {
					v->early_bad = true;
					return;
				}
				v->cq = q;
				v->cq_cap = nc;
			}
			v->cq[v->cq_n++] = cp;
			early_pump(v);
		} else if (h->type == MF_PRECOPY) {
			v->early_bad = v->early_bad || v->direct; /* a pre-copy given up: its file too */
			log_info("migrate: %u: no pre-copy (%.*s): stop and copy", v->id, (int)len, (const char *)data);
		} else if (h->type == MF_FROZEN) {
			uv_update_time(the_mig.s->loop);
			v->t_frozen = uv_now(the_mig.s->loop);
		} else if (h->type == MF_DUMPED) {
			v->carried = (uint64_t)h->arg;
			char spec[2048];
			snprintf(spec, sizeof(spec), "%.*s", (int)len, (const char *)data);
			move_dumped(v, spec);
		} else if (h->type == MF_DONE) {
			v->w = NULL;
			conn_close(c);
			if (v->committed) {
				if (!v->here) {
					send_simple(v->to, "mig.go", v->id, 0, false, 0, UINT32_MAX);
					struct dep *d = dep_by_id(v->id);
					if (d)
						dep_send_ended(d);
				}
				uint64_t now = uv_now(the_mig.s->loop);
				uint64_t fz = v->t_frozen ? v->t_frozen : v->t_start;
				snprintf(v->stats, sizeof(v->stats),
					 "%llu MiB: total %llu ms, frozen %llu ms (pre-copy %u rounds, dump %llu ms, transfer %llu ms, restore %u ms)",
					 (unsigned long long)(v->bytes >> 20), (unsigned long long)(now - v->t_start),
					 (unsigned long long)(v->t_running - fz), v->pre_rounds,
					 (unsigned long long)(v->t_dumped - fz),
					 (unsigned long long)(v->t_running - v->t_dumped - v->restore_ms), v->restore_ms);
				log_info("migrate: %u to node %u: %s", v->id, v->to, v->stats);
				if (!v->counted) {
					v->counted = true;
					krg_metrics_op(KRG_MOP_MIGRATION, true, v->bytes, now - v->t_start);
					krg_metrics_migration_frozen(v->t_running - fz);
				}
				move_answer(v, 0, v->stats);
			}
			move_maybe_free(v);
		}
		return;
	}
	}
}

static void on_conn_gone(struct conn *c)
{
	if (c->dead)
		return;
	if (c->kind == CK_DEPUTY && c->owner) {
		struct dep *d = c->owner;
		d->c = NULL;
	} else if (c->kind == CK_HOLDER && c->owner) {
		struct hold *h = c->owner;
		h->c = NULL;
		if (h->has_req) {
			h->has_req = false;
			answer(h->o, -EIO, "the restore worker died", the_mig.self, 0, h->id);
		}
		if (h->restored && !h->exited && !h->leaving)
			send_simple(h->home, "mig.exit", h->id, 0, true, SIGKILL, UINT32_MAX);
		if (h->mv && h->mv->committed && !h->mv->verdict_sent && !h->mv->where_held)
			send_where(h->mv);
		hold_free(h);
	} else if (c->kind == CK_WORKER && c->owner) {
		struct move *v = c->owner;
		v->w = NULL;
		if (!v->committed)
			kill(v->pid, SIGCONT); /* never leave it frozen */
		move_fail(v, -EIO, "the migration worker died");
	}
	bool worker = c->kind == CK_WORKER;
	c->owner = NULL;
	if (worker)
		start_queued();
}

/* ---- deputy socket ---- */

static void hello_late(uv_timer_t *t)
{
	struct conn *c = t->data;
	log_warn("migrate: a deputy connection sent no hello in %d ms, closed", MIG_HELLO_MS);
	conn_close(c);
}

/* Anyone may connect (deputies run as their users), so a connection is
 * kept only if the kernel says it comes from a deputy we wait for (its
 * pid, SO_PEERCRED at connect time), and only until its hello is due; the
 * hello's token then proves it is that deputy. Idle connections of other
 * users can no longer take the slots a deputy needs. */
static void on_accept(uv_poll_t *h, int status, int events)
{
	struct krg_migsvc *m = &the_mig;
	for (;;) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cr = { 0 };
		socklen_t sl = sizeof(cr);
		struct dep *d = NULL;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) == 0)
			for (d = m->deps; d && (d->pid != cr.pid || d->c); d = d->next)
				;
		if (!d) {
			log_info("migrate: refused a connection to %s from pid %d uid %u: not a deputy krgd waits for",
				 m->sock_path, (int)cr.pid, (unsigned)cr.uid);
			close(fd);
			continue;
		}
		struct conn *c = NULL;
		uv_timer_t *t = m->npending < 256 ? malloc(sizeof(*t)) : NULL;
		if (!t || !(c = conn_new(fd, CK_PENDING, NULL))) {
			free(t);
			close(fd);
			continue;
		}
		uv_timer_init(m->s->loop, t);
		t->data = c;
		c->hello_deadline = t;
		uv_timer_start(t, hello_late, MIG_HELLO_MS, 0);
		m->npending++;
	}
}

/* ---- mig.io, mig.exit, mig.where, mig.go, mig.sig ---- */

static void dispatch_io(uint32_t from, const char *type, const Krg__Mig__Io *io)
{
	if (!strcmp(type, "mig.io")) {
		uint8_t t = io->has_data ? MF_DATA : io->has_eof ? MF_EOF : MF_ACK;
		int64_t arg = io->has_ack ? io->ack : 0;
		size_t len = io->has_data ? io->data.len : 0;
		if (io->up && io->back) {
			/* Input the node it leaves did not deliver: for its next node
			 * (known at mig.where, which follows on the same channel);
			 * bounced later: to where it is now. */
			struct dep *d = dep_by_id(io->id);
			if (!d || !io->has_data || !len) {
			} else if (from != d->node) {
				Krg__Mig__Io o = KRG__MIG__IO__INIT;
				o.id = io->id;
				o.has_fd = true;
				o.fd = io->fd;
				o.has_data = true;
				o.data = io->data;
				send_io(d->node, "mig.io", &o, true);
			} else {
				struct backq *b = malloc(sizeof(*b) + len);
				if (b) {
					b->next = NULL;
					b->fd = io->fd;
					b->len = len;
					memcpy(b->data, io->data.data, len);
					if (d->bt)
						d->bt->next = b;
					else
						d->bh = b;
					d->bt = b;
				}
			}
		} else if (io->up) {
			/* From the migrant's side to the deputy. */
			struct dep *d = dep_by_id(io->id);
			if (d && from == d->node)
				dep_to(d, t, (int32_t)io->fd, arg, io->data.data, len);
		} else {
			struct hold *h = hold_by_id(io->id);
			if (h && h->c && from == h->home) {
				conn_send(h->c, t, (int32_t)io->fd, arg, io->data.data, len);
			} else if (!h && io->has_data && len && from == krg_procid_home(io->id)) {
				/* It left (or is leaving): the input goes back home. */
				Krg__Mig__Io o = KRG__MIG__IO__INIT;
				o.id = io->id;
				o.has_fd = true;
				o.fd = io->fd;
				o.has_data = true;
				o.data = io->data;
				o.has_up = o.up = true;
				o.has_back = o.back = true;
				send_io(from, "mig.io", &o, true);
			}
		}
	} else if (!strcmp(type, "mig.exit")) {
		struct dep *d = dep_by_id(io->id);
		if (d && io->has_status)
			dep_exit(d, io->status);
	} else if (!strcmp(type, "mig.where")) {
		struct dep *d = dep_by_id(io->id);
		if (d && io->has_node) {
			d->node = io->node;
			log_info("migrate: %u now runs on node %u", d->id, d->node);
			while (d->bh) {
				struct backq *b = d->bh;
				d->bh = b->next;
				Krg__Mig__Io o = KRG__MIG__IO__INIT;
				o.id = d->id;
				o.has_fd = true;
				o.fd = b->fd;
				o.has_data = true;
				o.data.data = b->data;
				o.data.len = b->len;
				send_io(d->node, "mig.io", &o, true);
				free(b);
			}
			d->bt = NULL;
			send_simple(d->node, "mig.go", d->id, 0, false, 0, UINT32_MAX);
			dep_send_ended(d);
			uint64_t sigs = (io->has_signals ? io->signals : 0) | d->sig_back;
			d->sig_back = 0;
			for (int sig = 1; sig <= 64; sig++)
				if (sigs & (1ULL << (sig - 1)))
					send_simple(d->node, "mig.sig", d->id, sig, false, 0, UINT32_MAX);
		}
	} else if (!strcmp(type, "mig.go")) {
		struct hold *h = hold_by_id(io->id);
		if (h)
			conn_send(h->c, MF_GO, 0, 0, NULL, 0);
	} else if (!strcmp(type, "mig.sig") && io->has_child) {
		/* About a child left at home: from the host, a signal for it
		 * (the deputy, its parent, sends it); from home, how it ended. */
		struct dep *d = dep_by_id(io->id);
		struct hold *h = hold_by_id(io->id);
		if (d && from == d->node && io->has_signal && io->signal > 0 && io->signal < 65 && io->child <= INT32_MAX)
			dep_to(d, MF_KID_SIG, (int32_t)io->child, io->signal, NULL, 0);
		else if (h && from == h->home && io->has_status && io->child <= INT32_MAX)
			conn_send(h->c, MF_KID_EXIT, (int32_t)io->child, io->status, NULL, 0);
	} else if (!strcmp(type, "mig.sig") && io->up && io->back) {
		/* Home: a signal it sent to a node the migrant had just left,
		 * bounced. Before mig.where from that node: kept for the next
		 * node; after: sent there now. */
		struct dep *d = dep_by_id(io->id);
		if (d && io->has_signal && io->signal > 0 && io->signal < 65) {
			if (from == d->node)
				d->sig_back |= 1ULL << (io->signal - 1);
			else
				send_simple(d->node, "mig.sig", d->id, io->signal, false, 0, UINT32_MAX);
		}
	} else if (!strcmp(type, "mig.sig")) {
		struct hold *h = hold_by_id(io->id);
		if (io->has_signal && io->signal > 0 && io->signal < 65 && (!h || h->drained) && from == krg_procid_home(io->id)) {
			/* It left (or is leaving) this node: back home with it. */
			Krg__Mig__Io o = KRG__MIG__IO__INIT;
			o.id = io->id;
			o.has_signal = true;
			o.signal = io->signal;
			o.has_up = o.up = true;
			o.has_back = o.back = true;
			send_io(from, "mig.sig", &o, false);
			return;
		}
		if (h && io->has_winsize)
			conn_send(h->c, MF_WINSZ, 0, io->winsize, NULL, 0);
		if (h && io->has_signal && io->signal > 0 && io->signal < 65 && io->has_sq_code && io->sq_code < 0) {
			uint8_t q[MIG_SIGINFO_LEN];
			mig_siginfo_put(q, &(struct mig_siginfo){ .code = io->sq_code, .pid = io->has_sq_pid ? io->sq_pid : 0,
								  .uid = io->has_sq_uid ? io->sq_uid : 0, .value = io->has_sq_value ? io->sq_value : 0 });
			conn_send(h->c, MF_SIG, 0, io->signal, q, sizeof(q));
		} else if (h && io->has_signal && io->signal > 0 && io->signal < 65) {
			conn_send(h->c, MF_SIG, 0, io->signal, NULL, 0);
		}
	}
}

static void on_net_io(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!the_mig.running)
		return;
	Krg__Mig__Io *io = krg__mig__io__unpack(NULL, msg->len, msg->body);
	if (!io || !mig_io_valid(io)) {
		log_warn("migrate: malformed %.16s from node %u, dropped", msg->type, from);
	} else {
		/* Only the nodes concerned may speak about a process. */
		struct dep *d = dep_by_id(io->id);
		struct hold *h = hold_by_id(io->id);
		bool ok = (d && from == d->node) || (h && from == h->home) ||
			  (d && io->up && io->back) ||                                            /* returned input */
			  (!h && !io->up && (!strcmp(msg->type, "mig.io") || !strcmp(msg->type, "mig.sig")) &&
			   from == krg_procid_home(io->id)); /* to bounce */
		if (ok)
			dispatch_io(from, msg->type, io);
		else
			log_debug("migrate: %s about %u from node %u ignored", msg->type, io->id, from);
	}
	if (io)
		krg__mig__io__free_unpacked(io, NULL);
}

/* ---- target: receive the image, start the holder ---- */

static void rx_closed(uv_handle_t *h)
{
	struct rx *x = h->data;
	if (x->recv)
		krg__mig__recv__free_unpacked(x->recv, NULL);
	free(x);
}

static void rx_free(struct rx *x, bool rm)
{
	for (struct rx **p = &the_mig.rxs; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	if (rm)
		mig_rm_rf(x->dir);
	uv_timer_stop(&x->timer);
	uv_close((uv_handle_t *)&x->timer, rx_closed);
}

static void rx_fail(struct rx *x, const char *text)
{
	x->failed = true;
	log_warn("migrate: receiving from node %u: %s", x->from, text);
	if (x->has_req) {
		struct origin o = { .from = x->from, .req_id = x->req_id };
		answer(o, -EIO, text, the_mig.self, 0, x->recv ? x->recv->id : 0);
		x->has_req = false;
		rx_free(x, true);
	}
}

static void rx_idle(uv_timer_t *t)
{
	struct rx *x = t->data;
	bool answered_here = x->has_req; /* rx_fail answers and frees it then */
	if (!x->failed)
		rx_fail(x, "the transfer stalled");
	else if (answered_here)
		rx_fail(x, "the transfer failed");
	if (!answered_here)
		rx_free(x, true);
}

static void rx_try_start(struct rx *x)
{
	struct krg_migsvc *m = &the_mig;
	if (x->failed || !x->ended || !x->has_req)
		return;
	const Krg__Mig__Recv *q = x->recv;
	struct origin o = { .from = x->from, .req_id = x->req_id };
	x->has_req = false;
	if (hold_by_id(q->id)) {
		answer(o, -EEXIST, "the process runs here already", m->self, 0, q->id);
		rx_free(x, true);
		return;
	}
	struct mig_hold hd = { .id = q->id, .uid = q->uid, .gid = q->gid };
	snprintf(hd.dir, sizeof(hd.dir), "%s", x->dir);
	for (size_t i = 0; i < q->n_proxies && hd.n < MIG_MAX_PROXIES; i++) {
		const Krg__Mig__Proxy *x = q->proxies[i];
		hd.num[hd.n] = (int)x->fd;
		hd.tty[hd.n] = x->has_tty && x->tty;
		if (hd.tty[hd.n] && x->has_rows && x->has_cols && x->rows < 65536 && x->cols < 65536)
			hd.rows = x->rows, hd.cols = x->cols;
		hd.stype[hd.n] = x->has_sock_type && (x->sock_type == SOCK_STREAM || x->sock_type == SOCK_DGRAM ||
						      x->sock_type == SOCK_SEQPACKET) ? (int)x->sock_type : 0;
		hd.reads[hd.n++] = x->reads;
	}
	snprintf(hd.ghost, sizeof(hd.ghost), "%s", m->ghost);
	for (size_t i = 0; i < q->n_kids && hd.nkids < MIG_MAX_KIDS; i++) {
		const Krg__Mig__Kid *k = q->kids[i];
		if (!k->pid || !k->as || k->pid > INT32_MAX || k->as > INT32_MAX)
			continue;
		hd.kid_home[hd.nkids] = (pid_t)k->pid;
		hd.kid_as[hd.nkids] = (pid_t)k->as;
		if ((hd.kid_ids[hd.nkids] = k->has_uid && k->has_suid && k->has_gid))
			hd.kid_uid[hd.nkids] = k->uid, hd.kid_suid[hd.nkids] = k->suid, hd.kid_gid[hd.nkids] = k->gid;
		hd.kid_stop[hd.nkids] = k->has_stop_signal && k->stop_signal >= 1 && k->stop_signal <= 64 ? (int)k->stop_signal : 0;
		snprintf(hd.kid_comm[hd.nkids++], sizeof(hd.kid_comm[0]), "%s", k->comm ? k->comm : "");
	}
	int sv[2];
	struct hold *h = calloc(1, sizeof(*h));
	if (!h || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(h);
		answer(o, -ENOMEM, "cannot start the holder", m->self, 0, q->id);
		rx_free(x, true);
		return;
	}
	/* A migrant with krg's IPC filter gets it back here, its listener
	 * ours (docs/ipc.md). */
	/* Restored in the file view of the node whose files it saw. */
	hd.fsns = krg_fsview_ns(m->s->fsview, q->has_view_home ? q->view_home : krg_procid_home(q->id), q->uid, q->gid);
	if (hd.fsns < 0 && hd.fsns != -ENOENT) {
		char why[160];
		snprintf(why, sizeof(why), "cannot show node %u's files on node %u: %s",
			 q->has_view_home ? q->view_home : krg_procid_home(q->id), m->self, strerror(-hd.fsns));
		close(sv[0]);
		close(sv[1]);
		free(h);
		answer(o, -EIO, why, m->self, 0, q->id);
		rx_free(x, true);
		return;
	}
	hd.isock = -1;
	if (m->s->intercept && krg_intercept_channel(m->s->intercept, &hd.isock) < 0)
		hd.isock = -1;
	pid_t krgd = getpid();
	/* The holder is the migrant's parent: with its parent's pid at home,
	 * the migrant's getppid() is unchanged. Free unless that parent runs
	 * here (back home) or another holder has it (a sibling migrant): then
	 * any pid. */
	pid_t want = q->has_ppid && q->ppid > 1 && q->ppid <= INT32_MAX ? (pid_t)q->ppid : 0;
	char ppath[32];
	snprintf(ppath, sizeof(ppath), "/proc/%d", (int)want);
	if (want && access(ppath, F_OK) == 0)
		want = 0;
	pid_t pid = want ? krg_pidrange_fork_as(want) : fork();
	if (pid == 0) {
		close(sv[0]);
		/* Dies with krgd, and its migrant with it (holder.c): a socket's
		 * end-of-file would come only once every process that inherited
		 * our end closed it. Checked after: krgd may be gone already. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != krgd)
			_exit(1);
		if (hd.fsns >= 0 && krg_fsview_enter(hd.fsns) < 0)
			_exit(1);
		mig_holder_main(sv[1], &hd);
	}
	close(sv[1]);
	if (hd.fsns >= 0)
		close(hd.fsns);
	if (hd.isock >= 0)
		close(hd.isock);
	if (pid < 0) {
		close(sv[0]);
		free(h);
		answer(o, -EAGAIN, "cannot fork the holder", m->self, 0, q->id);
		rx_free(x, true);
		return;
	}
	h->id = q->id;
	h->home = krg_procid_home(q->id);
	h->wpid = pid;
	h->ppid = q->has_ppid && q->ppid <= INT32_MAX ? (pid_t)q->ppid : 0;
	if (want && pid != want)
		log_info("migrate: pid %d is taken here: %u's getppid() will be %d", (int)want, q->id, (int)pid);
	h->o = o;
	h->has_req = true;
	h->notify_fd = q->has_notify_fd ? q->notify_fd : 0;
	h->np = hd.n;
	memcpy(h->num, hd.num, sizeof(h->num));
	memcpy(h->reads, hd.reads, sizeof(h->reads));
	memcpy(h->tty, hd.tty, sizeof(h->tty));
	memcpy(h->stype, hd.stype, sizeof(h->stype));
	h->nkids = hd.nkids;
	for (size_t i = 0; i < hd.nkids; i++) {
		h->kids[i] = (struct kid){ .home = hd.kid_home[i], .as = hd.kid_as[i], .has_ids = hd.kid_ids[i],
					   .uid = hd.kid_uid[i], .suid = hd.kid_suid[i], .gid = hd.kid_gid[i] };
		snprintf(h->kids[i].comm, sizeof(h->kids[i].comm), "%s", hd.kid_comm[i]);
	}
	h->c = conn_new(sv[0], CK_HOLDER, h);
	h->next = m->holds;
	m->holds = h;
	log_info("migrate: received %u (%llu bytes) from node %u, restoring", q->id, (unsigned long long)x->total,
		 x->from);
	rx_free(x, false); /* the holder removes the image once restored */
}

static bool name_ok(const char *n)
{
	return n[0] && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/');
}

static struct rx *rx_get(uint32_t from, uint64_t xfer)
{
	struct krg_migsvc *m = &the_mig;
	for (struct rx *x = m->rxs; x; x = x->next)
		if (x->from == from && x->xfer == xfer)
			return x;
	struct rx *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->from = from;
	x->xfer = xfer;
	uv_timer_init(m->s->loop, &x->timer);
	x->timer.data = x;
	x->next = m->rxs;
	m->rxs = x;
	mkdir("/run/krg", 0755);
	mkdir(IMG_IN, 0700);
	snprintf(x->dir, sizeof(x->dir), "%s/%u-%llu", IMG_IN, from, (unsigned long long)xfer);
	if (xfer >> 32 != from || (mkdir(x->dir, 0700) < 0 && errno != EEXIST))
		x->failed = true;
	uv_timer_start(&x->timer, rx_idle, XFER_IDLE_MS, 0);
	return x;
}

static void on_file(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!the_mig.running)
		return;
	struct mig_file_view fv, *f = &fv;
	if (mig_file_decode(msg->body, msg->len, f) < 0) {
		log_warn("migrate: malformed mig.file from node %u, dropped", from);
		return;
	}
	struct rx *x = rx_get(from, f->xfer);
	if (x && f->abort) {
		log_info("migrate: transfer %llx from node %u dropped by the source", (unsigned long long)f->xfer, from);
		if (x->has_req)
			rx_fail(x, "aborted by the source");
		else
			rx_free(x, true);
		return;
	}
	if (!x || x->failed || x->ended)
		return;
	uv_timer_start(&x->timer, rx_idle, XFER_IDLE_MS, 0);
	x->total += f->len;
	if (!name_ok(f->name) || x->total > XFER_MAX || f->offset > XFER_MAX) {
		rx_fail(x, "refused image piece");
		return;
	}
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", x->dir, f->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok = fd >= 0;
	size_t done = 0;
	while (ok && done < f->len) {
		ssize_t w = pwrite(fd, f->data + done, f->len - done, (off_t)(f->offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ok = false;
		else
			done += (size_t)w;
	}
	if (ok && f->last && ftruncate(fd, (off_t)(f->offset + f->len)) < 0)
		ok = false;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (!ok) {
		rx_fail(x, "cannot write the image (out of memory in /run?)");
		return;
	}
	if (!x->has_req) {  /* pre-copied pages: say they are in */
		Krg__Mig__Got g = KRG__MIG__GOT__INIT;
		g.xfer = f->xfer;
		g.bytes = x->total;
		uint8_t gb[32];
		size_t gl = krg__mig__got__pack(&g, gb);
		krg_net_send(net, from, "mig.got", gb, gl);
	}
	if (f->end) {
		x->ended = true;
		rx_try_start(x);
	}
}

static void on_got(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	Krg__Mig__Got *g = krg__mig__got__unpack(NULL, msg->len, msg->body);
	if (!g) {
		log_warn("migrate: malformed mig.got from node %u, dropped", from);
		return;
	}
	for (struct move *v = the_mig.moves; v; v = v->next)
		if (v->xfer == g->xfer && v->to == from && g->bytes > v->got) {
			v->got = g->bytes;
			pre_check(v);
		}
	krg__mig__got__free_unpacked(g, NULL);
}

static void on_recv(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!req_id)
		return;
	if (!the_mig.running) {
		krg_net_reply(net, from, req_id, -ESHUTDOWN, NULL, 0);
		return;
	}
	Krg__Mig__Recv *q = krg__mig__recv__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_recv_valid(q)) {
		log_warn("migrate: malformed mig.recv from node %u, refused", from);
		if (q)
			krg__mig__recv__free_unpacked(q, NULL);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
		return;
	}
	struct rx *x = rx_get(from, q->xfer);
	if (!x) {
		krg__mig__recv__free_unpacked(q, NULL);
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		return;
	}
	if (x->recv)
		krg__mig__recv__free_unpacked(x->recv, NULL);
	x->recv = q;
	x->has_req = true;
	x->req_id = req_id;
	if (x->failed)
		rx_fail(x, "cannot receive the image");
	else
		rx_try_start(x);
}

/* ---- moving: routing and the source side ---- */

static int move_local(struct origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd, char *err,
		      size_t errlen)
{
	struct krg_migsvc *m = &the_mig;
	if (to == m->self) {
		snprintf(err, errlen, "process %u is on node %u already", id, to);
		return -EALREADY;
	}
	if (to >= KRG_MAX_NODES || !krg_config_node(m->s->cfg, to)) {
		snprintf(err, errlen, "no node %u in this cluster", to);
		return -EHOSTUNREACH;
	}
	if (!krg_net_peer_up(m->s->net, to) ||
	    (m->s->cluster && krg_cluster_node_state(m->s->cluster, to) != KRG_NODE_UP)) {
		snprintf(err, errlen, "node %u is not up", to);
		return -EHOSTDOWN;
	}
	struct hold *h = hold_by_id(id);
	pid_t pid;
	if (h) {
		if (h->mv || !h->restored)
			return -EBUSY;
		pid = h->pid;
	} else {
		if (krg_procid_home(id) != m->self || dep_by_id(id))
			return -ESRCH;
		pid = (pid_t)krg_procid_pid(id);
		if (pid <= 1 || pid == m->krgd || !table_is_descendant(pid, m->krgd) || krg_mig_proc_kind(pid, &(uint32_t){ 0 }, &(uint32_t){ 0 }))
			return -ESRCH;
	}
	for (struct move *v = m->moves; v; v = v->next)
		if (v->id == id)
			return -EBUSY;
	for (struct queued_move *q = m->queue; q; q = q->next)
		if (q->id == id)
			return -EBUSY;
	/* Taken before the checks below read /proc/<pid>, and checked after
	 * them: what they read was this process's, not a successor's. */
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -ESRCH;
	uid_t ruid, suid;
	if (table_proc_uids(pid, &ruid, &suid) < 0)
		return -ESRCH;
	if (uid != 0 && uid != ruid && uid != suid)
		return -EPERM;
	struct krg_caps caps;
	krg_caps_get(m->s->cluster, m->self, id, h ? 0 : pid, &caps);
	if (!(caps.eff & KRG_CAP_CAN_MIGRATE)) {
		snprintf(err, errlen, "process %u lacks the CAN_MIGRATE capability (krg capset -e CAN_MIGRATE -p %u)",
			 id, id);
		return -EPERM;
	}
	char pp[64];
	struct stat st;
	snprintf(pp, sizeof(pp), "/proc/%d", (int)pid);
	if (stat(pp, &st) < 0 || poll(&(struct pollfd){ .fd = pidfd, .events = POLLIN }, 1, 0) != 0)
		return -ESRCH;
	/* From the queue (bit 31 of notify_fd): its turn has come. */
	bool dequeued = notify_fd & 0x80000000u;
	notify_fd &= 0x7fffffffu;
	if (!dequeued && (m->queue || workers_running() >= m->s->cfg->migrate_max_workers)) {
		struct queued_move *q = calloc(1, sizeof(*q));
		if (!q)
			return -ENOMEM;
		*q = (struct queued_move){ .o = o, .id = id, .to = to, .notify_fd = notify_fd, .uid = uid,
					   .since = uv_now(m->s->loop) };
		*m->queue_tail = q;
		m->queue_tail = &q->next;
		m->nqueued++;
		log_info("migrate: %u to node %u queued: %u migrations running (migrate_max_workers = %u), %u waiting",
			 id, to, workers_running(), m->s->cfg->migrate_max_workers, m->nqueued);
		return 0;
	}
	struct move *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->id = id;
	v->to = to;
	v->pid = pid;
	v->uid = st.st_uid;
	v->gid = st.st_gid;
	v->o = o;
	v->fd = -1;
	v->early_fd = -1;
	v->pidfd = TAKE_FD(pidfd);
	v->h = h;
	v->here = h != NULL;
	v->notify_fd = notify_fd & 0xffff;
	v->xfer = ((uint64_t)m->self << 32) | (uint32_t)++m->counter;
	uv_update_time(m->s->loop);
	v->t_start = uv_now(m->s->loop);
	mkdir("/run/krg", 0755);
	mkdir(IMG_OUT, 0700);
	snprintf(v->dir, sizeof(v->dir), "%s/%llu", IMG_OUT, (unsigned long long)(v->xfer & 0xffffffffu));
	mig_rm_rf(v->dir);
	struct mig_work w = { .pid = pid, .id = id, .uid = v->uid, .gid = v->gid, .migrant_here = h != NULL, .node = m->self, .pidfd = v->pidfd,
			       .wait_read_fd = notify_fd ? (int)(notify_fd >> 16) : -1 };
	snprintf(w.dir, sizeof(w.dir), "%s", v->dir);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		int r = -errno;
		close(v->pidfd);
		free(v);
		return r;
	}
	pid_t wp = fork();
	if (wp == 0) {
		close(sv[0]);
		/* Below krgd: a node busy dumping must still answer heartbeats. */
		setpriority(PRIO_PROCESS, 0, MIG_WORKER_NICE);
		mig_worker_main(sv[1], &w);
	}
	close(sv[1]);
	if (wp < 0) {
		close(sv[0]);
		close(v->pidfd);
		free(v);
		return -EAGAIN;
	}
	v->wpid = wp;
	v->w = conn_new(sv[0], CK_WORKER, v);
	uv_timer_init(m->s->loop, &v->early_timer);
	v->early_timer.data = v;
	uv_timer_start(&v->early_timer, early_tick, 5, 5);
	if (h)
		h->mv = v;
	v->next = m->moves;
	m->moves = v;
	log_info("migrate: %u (pid %d) to node %u, worker %d", id, (int)pid, to, (int)wp);
	return 0;
}

struct fwd {
	struct origin o;
	uint32_t id;
};

static void fwd_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct fwd *f = data;
	char e[128];
	if (status) {
		answer(f->o, status, why(status, e, sizeof(e), f->id), the_mig.self, 0, f->id);
	} else {
		Krg__Mig__Result *res = krg__mig__result__unpack(NULL, reply->len, reply->body);
		if (!res || res->status > 0 || res->status < -4095)
			answer(f->o, -EBADMSG, "malformed answer", the_mig.self, 0, f->id);
		else
			answer(f->o, res->status, res->text, res->has_node ? res->node : 0, res->has_pid ? res->pid : 0,
			       f->id);
		if (res)
			krg__mig__result__free_unpacked(res, NULL);
	}
	free(f);
}

static void forward(struct origin o, uint32_t node, uint32_t id, uint32_t to, uid_t uid)
{
	struct krg_migsvc *m = &the_mig;
	char e[128];
	if (node >= KRG_MAX_NODES || !krg_config_node(m->s->cfg, node)) {
		snprintf(e, sizeof(e), "no krg process %u: no node %u in this cluster", id, node);
		answer(o, -ESRCH, e, m->self, 0, id);
		return;
	}
	if (!krg_net_peer_up(m->s->net, node)) {
		snprintf(e, sizeof(e), "node %u (where process %u is) is unreachable", node, id);
		answer(o, -EHOSTUNREACH, e, m->self, 0, id);
		return;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.has_id = true;
	q.id = id;
	q.node = to;
	q.has_uid = true;
	q.uid = (uint32_t)uid;
	uint8_t buf[64];
	size_t len = krg__mig__move__pack(&q, buf);
	struct fwd *f = malloc(sizeof(*f));
	if (!f) {
		answer(o, -ENOMEM, "out of memory", m->self, 0, id);
		return;
	}
	f->o = o;
	f->id = id;
	int r = krg_net_request(m->s->net, node, "mig.move", buf, len, MOVE_TIMEOUT_MS, fwd_reply, f);
	if (r < 0) {
		free(f);
		answer(o, r, why(r, e, sizeof(e), id), m->self, 0, id);
	}
}

/* Where is id? Here (original or migrant), or forward to home / host. */
static void route(struct origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd)
{
	struct krg_migsvc *m = &the_mig;
	char e[600];
	int r;
	uint32_t home = krg_procid_home(id);
	if (krg_procid_pid(id) == 0) {
		answer(o, -EINVAL, "not a krg process id", m->self, 0, id);
		return;
	}
	if (hold_by_id(id) || (home == m->self && !dep_by_id(id))) {
		e[0] = 0;
		r = move_local(o, id, to, uid, notify_fd, e, sizeof(e));
		if (r < 0)
			answer(o, r, e[0] ? e : why(r, e, sizeof(e), id), m->self, 0, id);
		return;
	}
	struct dep *d = home == m->self ? dep_by_id(id) : NULL;
	if (d)
		forward(o, d->node, id, to, uid);
	else if (home != m->self && !o.call)
		answer(o, -ESRCH, why(-ESRCH, e, sizeof(e), id), m->self, 0, id);
	else
		forward(o, home, id, to, uid);
}

int krg_migsvc_move(uint32_t id, uint32_t to, krg_migsvc_done_fn done, void *data, char *err, size_t errlen)
{
	if (!the_mig.running) {
		snprintf(err, errlen, "migration service stopped");
		return -ESHUTDOWN;
	}
	err[0] = 0;
	int r = move_local((struct origin){ 0 }, id, to, 0, 0, err, errlen);
	if (r < 0 && !err[0])
		why(r, err, errlen, id);
	/* move_local put the new move first; nothing ran since. */
	if (r == 0 && the_mig.moves && the_mig.moves->id == id) {
		the_mig.moves->done = done;
		the_mig.moves->done_data = data;
	}
	return r;
}

static void on_net_move(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!req_id)
		return;
	if (!the_mig.running) {
		krg_net_reply(net, from, req_id, -ESHUTDOWN, NULL, 0);
		return;
	}
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_move_peer_valid(q)) {
		log_warn("migrate: malformed mig.move from node %u, refused", from);
		if (q)
			krg__mig__move__free_unpacked(q, NULL);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
		return;
	}
	struct origin o = { .from = from, .req_id = req_id };
	log_info("mig.move %u to node %u for uid %u from node %u", q->id, q->node, q->uid, from);
	route(o, q->id, q->node, (uid_t)q->uid, 0);
	krg__mig__move__free_unpacked(q, NULL);
}

/* ---- mig.status: where a requested move stands (krg migrate's progress) ---- */

struct status_fwd {
	struct origin o;
	uint32_t id;
};

static void status_reply(struct origin o, int r, const char *text, const void *body, size_t len)
{
	if (o.call)
		krg_api_reply(o.call, r, r ? text : NULL, body, len);
	else
		krg_net_reply(the_mig.s->net, o.from, o.req_id, r, body, len);
}

/* What this node knows of a move of id: 0 and *st filled (state "none"
 * if it is not moving), -EPERM if it is not the caller's. */
static int status_local(uint32_t id, uid_t uid, Krg__Mig__Status *st)
{
	struct krg_migsvc *m = &the_mig;
	st->id = id;
	st->state = "none";
	st->has_node = true;
	st->node = m->self;
	uint32_t ahead = 0;
	for (struct queued_move *q = m->queue; q; q = q->next, ahead++) {
		if (q->id != id)
			continue;
		if (uid != 0 && uid != q->uid)
			return -EPERM;
		st->state = "queued";
		st->has_ahead = st->has_running = st->has_to = true;
		st->ahead = ahead;
		st->running = workers_running();
		st->to = q->to;
		return 0;
	}
	for (struct move *v = m->moves; v; v = v->next) {
		if (v->id != id || v->committed)
			continue;
		if (uid != 0 && uid != v->uid)
			return -EPERM;
		st->state = !v->dumped ? "copying" : !v->all_sent ? "sending" : "restoring";
		st->has_bytes = st->has_to = true;
		st->bytes = v->bytes;
		st->to = v->to;
		return 0;
	}
	return 0;
}

static int status_pack(const Krg__Mig__Status *st, uint8_t **buf, size_t *len)
{
	*len = krg__mig__status__get_packed_size(st);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	krg__mig__status__pack(st, *buf);
	return 0;
}

static void status_fwd_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct status_fwd *f = data;
	char e[128];
	Krg__Mig__Status *st = status ? NULL : krg__mig__status__unpack(NULL, reply->len, reply->body);
	if (status)
		status_reply(f->o, status, why(status, e, sizeof(e), f->id), NULL, 0);
	else if (!st || st->id != f->id)
		status_reply(f->o, -EBADMSG, "malformed mig.status answer", NULL, 0);
	else
		status_reply(f->o, 0, NULL, reply->body, reply->len);
	if (st)
		krg__mig__status__free_unpacked(st, NULL);
	free(f);
}

static void status_answer(struct origin o, int r, const Krg__Mig__Status *st)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	char e[128];
	if (r == 0)
		r = status_pack(st, &buf, &len);
	status_reply(o, r, r ? why(r, e, sizeof(e), st->id) : NULL, buf, len);
}

/* As route(): answered here if it runs here (original or migrant); else
 * forwarded to where it runs: its host if this is its home (which knows
 * its deputy), else its home (from the API only: one more hop at most). */
static void status_route(struct origin o, uint32_t id, uid_t uid)
{
	struct krg_migsvc *m = &the_mig;
	Krg__Mig__Status st = KRG__MIG__STATUS__INIT;
	uint32_t home = krg_procid_home(id);
	struct dep *d = home == m->self ? dep_by_id(id) : NULL;
	uint32_t to = d ? d->node : home;
	if (hold_by_id(id) || (home == m->self && !d) || (!o.call && !d)) {
		status_answer(o, status_local(id, uid, &st), &st);
		return;
	}
	if (to >= KRG_MAX_NODES || !krg_config_node(m->s->cfg, to) || !krg_net_peer_up(m->s->net, to)) {
		st.id = id;
		status_answer(o, -EHOSTUNREACH, &st);
		return;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.has_id = q.has_uid = true;
	q.id = id;
	q.uid = (uint32_t)uid;
	uint8_t buf[64];
	size_t len = krg__mig__move__pack(&q, buf);
	struct status_fwd *f = malloc(sizeof(*f));
	if (f)
		*f = (struct status_fwd){ .o = o, .id = id };
	int r = f ? krg_net_request(m->s->net, to, "mig.status", buf, len, 5000, status_fwd_reply, f) : -ENOMEM;
	if (r < 0) {
		free(f);
		st.id = id;
		status_answer(o, r, &st);
	}
}

static void on_net_status(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!req_id)
		return;
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_move_peer_valid(q)) {
		log_warn("migrate: malformed mig.status from node %u, refused", from);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
	} else {
		status_route((struct origin){ .from = from, .req_id = req_id }, q->id, (uid_t)q->uid);
	}
	if (q)
		krg__mig__move__free_unpacked(q, NULL);
}

static void on_api_status(struct krg_api_call *call, void *data)
{
	struct krg_migsvc *m = &the_mig;
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, call->len, call->body);
	if (!q || (!q->has_id && !q->has_pid)) {
		if (q)
			krg__mig__move__free_unpacked(q, NULL);
		krg_api_reply(call, -EBADMSG, "malformed mig.status request", NULL, 0);
		return;
	}
	uint32_t id = q->has_id ? q->id : 0;
	if (!q->has_id) {
		uint32_t hid, home;
		id = krg_mig_proc_kind((pid_t)q->pid, &hid, &home) == 1 ? hid : krg_procid_make(m->self, q->pid);
	}
	krg__mig__move__free_unpacked(q, NULL);
	status_route((struct origin){ .call = call }, id, call->uid);
}

static void on_api_move(struct krg_api_call *call, void *data)
{
	struct krg_migsvc *m = &the_mig;
	if (!m->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, call->len, call->body);
	if (!q || (!q->has_id && !q->has_pid)) {
		if (q)
			krg__mig__move__free_unpacked(q, NULL);
		krg_api_reply(call, -EBADMSG, "malformed mig.move request", NULL, 0);
		return;
	}
	uint32_t id = q->has_id ? q->id : 0;
	if (!q->has_id) {
		/* A pid of this node: a migrant here, or a process of ours. */
		uint32_t hid, home;
		if (krg_mig_proc_kind((pid_t)q->pid, &hid, &home) == 1)
			id = hid;
		else
			id = krg_procid_make(m->self, q->pid);
	}
	struct origin o = { .call = call };
	if (q->has_notify_fd) {
		/* krg_migrate_self: the caller is the process; answer now, the
		 * result goes to its pipe. */
		uint32_t hid = 0, home;
		bool self = ((krg_mig_proc_kind(call->pid, &hid, &home) == 1 && hid == id) ||
			     (krg_procid_home(id) == m->self && krg_procid_pid(id) == (uint32_t)call->pid)) &&
			    krg_api_call_same_process(call);  /* the pid still names the caller */
		if (!self) {
			krg_api_reply(call, -EINVAL, "notify_fd is for a process migrating itself", NULL, 0);
		} else {
			char e[600] = "";
			int r = move_local((struct origin){ .call = NULL, .from = 0, .req_id = 0 }, id, q->node,
					   call->uid, q->notify_fd, e, sizeof(e));
			if (r < 0)
				krg_api_reply(call, r, e[0] ? e : why(r, e, sizeof(e), id), NULL, 0);
			else
				krg_api_reply(call, 0, NULL, NULL, 0);
		}
		krg__mig__move__free_unpacked(q, NULL);
		return;
	}
	route(o, id, q->node, call->uid, 0);
	krg__mig__move__free_unpacked(q, NULL);
}

/* ---- membership ---- */

static void node_cb(struct krg_cluster *c, uint32_t node, enum krg_node_event ev, uint64_t epoch, void *data)
{
	struct krg_migsvc *m = &the_mig;
	if (!m->running || node == m->self || (ev != KRG_NODE_EV_DOWN && ev != KRG_NODE_EV_REMOVE))
		return;
	/* Evicted cleanly (`nodes del`): its krgd still serves the deputies of
	 * the migrants homed there (no hand-over yet, docs/reconfiguration.md). */
	if (ev == KRG_NODE_EV_REMOVE && krg_net_peer_up(m->s->net, node))
		return;
	/* Migrants whose home is gone: their parent and identity are gone. */
	for (struct hold *h = m->holds; h; h = h->next)
		if (h->home == node && h->restored && !h->leaving) {
			log_warn("migrate: home node %u of %u is down: killing it", node, h->id);
			h->leaving = true;
			conn_send(h->c, MF_SIG, 0, SIGKILL, NULL, 0);
		}
	/* Deputies whose migrant's node is gone: it died with its node. */
	for (struct dep *d = m->deps; d; d = d->next)
		if (d->node == node && !d->exit_sent) {
			log_warn("migrate: node %u running %u is down: its deputy ends as killed", node, d->id);
			dep_exit(d, SIGKILL);
		}
}

/* ---- service ---- */

/* What a krgd killed half-way left: images going out or coming in, and
 * the FIFOs of proxied fds. Every worker and holder of ours dies with
 * krgd or ends on its own when it loses krgd's socket, so none is in use
 * by the time a new krgd starts; each is logged with its size. */
static void clean_leftovers(void)
{
	static const char *const dirs[] = { IMG_OUT, IMG_IN, MIG_FIFO_DIR };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			uint64_t bytes = 0;
			int r = krg_rm_tree(dirfd(d), e->d_name, &bytes);
			if (r < 0)
				log_warn("migration service: cannot remove %s/%s, left by a previous krgd: %s", dirs[i], e->d_name, strerror(-r));
			else
				log_info("migration service: removed %s/%s (%" PRIu64 " bytes), left by a previous krgd", dirs[i], e->d_name, bytes);
		}
		if (d)
			closedir(d);
	}
}

int krg_migsvc_start(struct krg_services *s, struct krg_migsvc **out, char *err, size_t errlen)
{
	struct krg_migsvc *m = &the_mig;
	static bool registered;
	if (m->running) {
		snprintf(err, errlen, "migration service already running");
		return -EBUSY;
	}
	memset(m, 0, sizeof(*m));
	m->queue_tail = &m->queue;
	m->s = s;
	m->self = s->cfg->node_id;
	m->krgd = getpid();
	m->lfd = -1;
	clean_leftovers();
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *dir = dirname(exe);
		snprintf(m->deputy, sizeof(m->deputy), "%s/krg-deputy", dir);
		snprintf(m->ghost, sizeof(m->ghost), "%s/krg-ghost", dir);
	}
	if (access(m->deputy, X_OK) < 0)
		log_warn("migration: %s not found: processes cannot leave their home node", m->deputy);
	char sp[sizeof(s->cfg->api_socket)];
	snprintf(sp, sizeof(sp), "%s", s->cfg->api_socket);
	snprintf(m->sock_path, sizeof(m->sock_path), "%s/migrate.sock", dirname(sp));
	unlink(m->sock_path);
	m->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m->sock_path);
	if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(m->sock_path, 0666) < 0 ||
	    listen(m->lfd, 64) < 0) {
		snprintf(err, errlen, "migration service: cannot listen on %s: %s", m->sock_path, strerror(errno));
		if (m->lfd >= 0)
			close(m->lfd);
		return -errno;
	}
	uv_poll_init(s->loop, &m->lpoll, m->lfd);
	uv_poll_start(&m->lpoll, UV_READABLE, on_accept);
	m->lpoll_on = true;
	if (!registered) {
		int r;
		static const char *io_types[] = { "mig.io", "mig.exit", "mig.where", "mig.go", "mig.sig" };
		for (size_t i = 0; i < sizeof(io_types) / sizeof(io_types[0]); i++)
			if ((r = krg_net_handle(s->net, io_types[i], on_net_io, m)) < 0)
				goto fail;
		if ((r = krg_net_handle(s->net, "mig.move", on_net_move, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.recv", on_recv, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.file", on_file, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.got", on_got, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.status", on_net_status, m)) < 0 ||
		    (r = krg_api_register(s->api, "mig.move", false, on_api_move, m)) < 0 ||
		    (r = krg_api_register(s->api, "mig.status", false, on_api_status, m)) < 0)
			goto fail;
		if (s->cluster)
			krg_cluster_on_node(s->cluster, node_cb, m);
		registered = true;
		if (0) {
		fail:
			snprintf(err, errlen, "migration service: cannot register handlers: %s", strerror(-r));
			return r;
		}
	}
	m->running = true;
	log_info("migration service: deputies connect to %s", m->sock_path);
	*out = m;
	return 0;
}

static void lpoll_closed(uv_handle_t *h)
{
	close(the_mig.lfd);
	the_mig.lfd = -1;
}

void krg_migsvc_stop(struct krg_migsvc *m)
{
	if (!m || !m->running)
		return;
	m->running = false;
	while (m->queue) {
		struct queued_move *q = m->queue;
		m->queue = q->next;
		answer(q->o, -ESHUTDOWN, "krgd is stopping", m->self, 0, q->id);
		free(q);
	}
	m->queue_tail = &m->queue;
	m->nqueued = 0;
	while (m->moves) {
		struct move *v = m->moves;
		if (v->w && !v->committed)
			conn_send(v->w, MF_ABORT, 0, 0, NULL, 0);
		v->answered = true;
		if (v->o.call)
			krg_api_reply(v->o.call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		move_free(v);
	}
	while (m->rxs)
		rx_free(m->rxs, true);
	/* Holders and deputies: their sockets close with us; a holder then
	 * kills its migrant, a deputy exits with 255. */
	while (m->holds)
		hold_free(m->holds);
	while (m->deps) {
		m->deps->exit_sent = true;
		dep_free(m->deps);
	}
	if (m->lpoll_on) {
		uv_poll_stop(&m->lpoll);
		uv_close((uv_handle_t *)&m->lpoll, lpoll_closed);
		m->lpoll_on = false;
	}
	unlink(m->sock_path);
}
