/* exec_front.c — caller side of remote execution: the "proc.run" API
 * command, the API stream to krg, relaying to the target node with
 * end-to-end credits, and watching the local krg process (SIGSTOP). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "lib/log.h"
#include "proc/exec/exec-int.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "proc/table.h"

#define WATCH_MS 50

struct exec_front {
	struct exec_front *next;
	struct krg_exec *e;
	uint64_t stream;
	uint32_t node;
	uint32_t pid, id;
	pid_t client;
	int client_pidfd;              /* the krg that connected; -1 if none */
	struct krg_api_call *call;     /* while the spawn is in flight */
	struct krg_api_stream *st;     /* while krg is connected */
	bool started;
	size_t stdin_out;              /* stdin sent, not yet credited */
	size_t stdin_window;
	bool stdin_paused;
	size_t out_credit;             /* output written to krg, not yet credited */
	bool client_stopped;
	char name[64];
	/* Bulk messages (proc.data, proc.exit) that overtook the spawn reply:
	 * they travel on the bulk channel, the reply on the control channel,
	 * so a short-lived process's output and exit can arrive first. Kept
	 * in order (owned) and replayed once the stream has started. */
	struct early_msg *early, **early_tail;
};

struct early_msg {
	struct early_msg *next;
	bool exit;                     /* Exit, else Data */
	size_t len;
	uint8_t body[];                /* the packed message */
};

static struct exec_front *front_find(struct krg_exec *e, uint32_t node, uint64_t stream)
{
	for (struct exec_front *f = e->fronts; f; f = f->next)
		if (f->node == node && f->stream == stream)
			return f;
	return NULL;
}

static void front_free(struct exec_front *f)
{
	if (f->client_pidfd >= 0)
		close(f->client_pidfd);
	for (struct exec_front **p = &f->e->fronts; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	while (f->early) {
		struct early_msg *m = f->early;
		f->early = m->next;
		free(m);
	}
	free(f);
}

/* Keep a bulk message that came before the spawn reply. Bounded by the
 * output window the target may send before credit. */
static void early_keep(struct exec_front *f, bool exit, const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	struct early_msg *m = malloc(sizeof(*m) + n);
	if (!m)
		return;
	m->next = NULL;
	m->exit = exit;
	m->len = protobuf_c_message_pack(msg, m->body);
	if (!f->early_tail)
		f->early_tail = &f->early;
	*f->early_tail = m;
	f->early_tail = &m->next;
}

/* The stream started: deliver what came early, in order. f may be freed
 * (by the exit). */
static void early_replay(struct exec_front *f)
{
	struct krg_exec *e = f->e;
	uint32_t node = f->node;
	uint64_t stream = f->stream;
	struct early_msg *m = f->early;
	f->early = NULL;
	f->early_tail = NULL;
	while (m) {
		struct early_msg *next = m->next;
		if (m->exit) {
			Krg__Proc__Exit *x = krg__proc__exit__unpack(NULL, m->len, m->body);
			/* Only if the front still exists: found again by its key. */
			if (x && front_find(e, node, stream))
				front_on_exit(e, node, x);
			if (x)
				krg__proc__exit__free_unpacked(x, NULL);
		} else {
			Krg__Proc__Data *d = krg__proc__data__unpack(NULL, m->len, m->body);
			if (d && front_find(e, node, stream))
				front_on_data(e, node, d);
			if (d)
				krg__proc__data__free_unpacked(d, NULL);
		}
		free(m);
		m = next;
	}
}

static int io_send(struct exec_front *f, const Krg__Proc__Io *io, krg_api_stream_done_cb done, void *dd)
{
	if (!f->st)
		return -ENOTCONN;
	size_t n;
	uint8_t *b = x_pack(&io->base, &n);
	if (!b)
		return -ENOMEM;
	int r = krg_api_stream_send(f->st, b, n, done, dd);
	free(b);
	return r;
}

/* Tell krg it failed (one line), end its stream, forget the front. */
/* lost: the node that ran the process, when it was lost (NULL: another failure). */
static void front_fail_lost(struct exec_front *f, const char *line, const uint32_t *lost)
{
	if (f->st) {
		Krg__Proc__Io io = KRG__PROC__IO__INIT;
		io.error = (char *)line;
		io.has_lost_node = lost != NULL;
		io.lost_node = lost ? *lost : 0;
		io_send(f, &io, NULL, NULL);
		krg_api_stream_end(f->st);
		f->st = NULL;
	}
	front_free(f);
}

static void front_fail(struct exec_front *f, const char *line)
{
	front_fail_lost(f, line, NULL);
}

static int ctl(struct exec_front *f, Krg__Proc__Ctl *c)
{
	c->stream = f->stream;
	return x_send_ctl(f->e, f->node, c);
}

/* ---- krg -> target ---- */

static bool group_sig(int sig)
{
	return sig == SIGSTOP || sig == SIGCONT || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void stream_msg(struct krg_api_stream *s, const uint8_t *msg, size_t len, void *data)
{
	struct exec_front *f = data;
	Krg__Proc__Io *io = krg__proc__io__unpack(NULL, len, msg);
	if (!io || (io->has_data && io->data.len > EXEC_CHUNK)) {
		log_warn("exec: malformed stream frame from pid %d, dropped", (int)f->client);
		goto out;
	}
	if (io->has_data && io->data.len) {
		Krg__Proc__Data d = KRG__PROC__DATA__INIT;
		d.stream = f->stream;
		d.fd = 0;
		d.has_data = true;
		d.data = io->data;
		size_t n;
		uint8_t *b = x_pack(&d.base, &n);
		if (b && x_send_bulk(f->e, f->node, "proc.data", b, n) == 0) {
			f->stdin_out += io->data.len;
			/* krg keeps within the window it was given (RunStarted.window),
			 * so this socket is always read and signals never wait
			 * behind stdin. A client that overruns it (an older krg) is
			 * held back by not reading its socket. */
			if (f->stdin_out > f->stdin_window && !f->stdin_paused) {
				f->stdin_paused = true;
				krg_api_stream_pause(f->st, true);
			}
		}
	}
	if (io->has_eof && io->eof) {
		Krg__Proc__Data d = KRG__PROC__DATA__INIT;
		d.stream = f->stream;
		d.has_eof = d.eof = true;
		size_t n;
		uint8_t *b = x_pack(&d.base, &n);
		if (b)
			x_send_bulk(f->e, f->node, "proc.data", b, n);
	}
	if (io->has_signal && io->signal > 0 && io->signal < 65) {
		Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
		if (group_sig(io->signal)) {
			c.has_group_signal = true;
			c.group_signal = io->signal;
		} else {
			c.has_signal = true;
			c.signal = io->signal;
		}
		ctl(f, &c);
	}
	if (io->has_rows && io->has_cols && io->rows < 65536 && io->cols < 65536) {
		Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
		c.has_rows = c.has_cols = true;
		c.rows = io->rows;
		c.cols = io->cols;
		ctl(f, &c);
	}
out:
	if (io)
		krg__proc__io__free_unpacked(io, NULL);
}

/* krg went away: the process gets a hangup, as from its terminal. The
 * front stays until the exit comes back (or the node is lost). */
static void stream_close(struct krg_api_stream *s, void *data)
{
	struct exec_front *f = data;
	f->st = NULL;
	Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
	c.has_hangup = c.hangup = true;
	ctl(f, &c);
	log_debug("exec: krg pid %d gone, hangup to pid %u on node %u", (int)f->client, f->pid, f->node);
}

/* ---- target -> krg ---- */

static void out_done(struct krg_api_stream *s, int status, void *data, void *done_data)
{
	struct exec_front *f = data;
	f->out_credit += (uintptr_t)done_data;
	if (f->out_credit < EXEC_CREDIT_BATCH)
		return;
	Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
	c.has_credit = true;
	c.credit = (uint32_t)f->out_credit;
	f->out_credit = 0;
	ctl(f, &c);
}

void front_on_data(struct krg_exec *e, uint32_t from, const Krg__Proc__Data *d)
{
	struct exec_front *f = front_find(e, from, d->stream);
	if (f && !f->started && f->call) {
		early_keep(f, false, &d->base); /* overtook the spawn reply */
		return;
	}
	if (!f || !f->started) {
		/* Nobody reads this any more (we lost the link meanwhile). */
		Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
		c.stream = d->stream;
		c.has_kill = c.kill = true;
		x_send_ctl(e, from, &c);
		return;
	}
	if (!f->st || !d->has_data || !d->data.len)
		return; /* krg gone: the target discards after the hangup */
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_fd = true;
	io.fd = d->fd;
	io.has_data = true;
	io.data = d->data;
	if (io_send(f, &io, out_done, (void *)(uintptr_t)d->data.len) < 0) {
		Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
		c.has_credit = true;
		c.credit = (uint32_t)d->data.len;
		ctl(f, &c);
	}
}

void front_on_exit(struct krg_exec *e, uint32_t from, const Krg__Proc__Exit *x)
{
	struct exec_front *f = front_find(e, from, x->stream);
	if (f && !f->started && f->call) {
		early_keep(f, true, &x->base); /* overtook the spawn reply */
		return;
	}
	if (!f || !f->started)
		return;
	if (f->st) {
		Krg__Proc__Io io = KRG__PROC__IO__INIT;
		io.has_exited = io.exited = true;
		if (x->has_signal) {
			io.has_term_signal = true;
			io.term_signal = x->signal;
		} else {
			io.has_code = true;
			io.code = x->has_code ? x->code : 0;
		}
		io.has_utime_us = x->has_utime_us;
		io.utime_us = x->utime_us;
		io.has_stime_us = x->has_stime_us;
		io.stime_us = x->stime_us;
		io.has_maxrss_kb = x->has_maxrss_kb;
		io.maxrss_kb = x->maxrss_kb;
		io.has_wall_ms = x->has_wall_ms;
		io.wall_ms = x->wall_ms;
		io.has_core_dumped = x->has_core_dumped;
		io.core_dumped = x->core_dumped;
		io_send(f, &io, NULL, NULL);
		krg_api_stream_end(f->st);
		f->st = NULL;
	}
	front_free(f);
}

void front_on_ctl(struct krg_exec *e, uint32_t from, const Krg__Proc__Ctl *c)
{
	struct exec_front *f = front_find(e, from, c->stream);
	if (!f || !f->started)
		return;
	f->stdin_out = c->stdin_credit > f->stdin_out ? 0 : f->stdin_out - c->stdin_credit;
	if (f->st && c->stdin_credit) {
		/* End to end: krg may send that much more stdin. */
		Krg__Proc__Io io = KRG__PROC__IO__INIT;
		io.has_stdin_credit = true;
		io.stdin_credit = c->stdin_credit;
		io_send(f, &io, NULL, NULL);
	}
	if (f->stdin_paused && f->stdin_out <= f->stdin_window) {
		f->stdin_paused = false;
		if (f->st)
			krg_api_stream_pause(f->st, false);
	}
}

void front_node_lost(struct krg_exec *e, uint32_t node, const char *why)
{
	struct exec_front *f = e->fronts, *next;
	for (; f; f = next) {
		next = f->next;
		if (f->node != node || !f->started || node == e->self)
			continue;
		char line[160];
		snprintf(line, sizeof(line), "node %u died while running the process (%s node %u)", node, why, node);
		log_info("exec: %s, pid %d's krg run fails", line, (int)f->client);
		front_fail_lost(f, line, &node);
	}
}

void front_stop_all(struct krg_exec *e)
{
	struct exec_front *f = e->fronts, *next;
	for (; f; f = next) {
		next = f->next;
		if (!f->started)
			continue; /* the spawn callback still owns it */
		char line[128];
		snprintf(line, sizeof(line), "krgd on node %u is stopping", e->self);
		front_fail(f, line);
	}
	uv_timer_stop(&e->watch);
}

/* ---- SIGSTOP of the local krg: mirror its run state on the remote ---- */

static void watch_cb(uv_timer_t *t)
{
	struct krg_exec *e = t->data;
	bool any = false;
	for (struct exec_front *f = e->fronts; f; f = f->next) {
		if (!f->st)
			continue;
		any = true;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)f->client);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		/* Only while the pid still names the krg that connected. */
		if (n <= 0 || !krg_pidfd_alive(f->client_pidfd))
			continue;
		buf[n] = '\0';
		char st = exec_parse_stat_state(buf);
		bool stopped = st == 'T' || st == 't';
		if (stopped != f->client_stopped) {
			f->client_stopped = stopped;
			Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
			c.has_group_signal = true;
			c.group_signal = stopped ? SIGSTOP : SIGCONT;
			ctl(f, &c);
		}
	}
	if (!any)
		uv_timer_stop(t);
}

void front_watch(struct krg_exec *e)
{
	if (!uv_is_active((uv_handle_t *)&e->watch))
		uv_timer_start(&e->watch, watch_cb, WATCH_MS, WATCH_MS);
}

/* ---- proc.run ---- */

static void spawn_done(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct exec_front *f = data;
	struct krg_exec *e = f->e;
	struct krg_api_call *call = f->call;
	char line[512];
	f->call = NULL;
	if (status < 0 || e->stopping) {
		if (status == -ETIMEDOUT)
			snprintf(line, sizeof(line), "node %u did not answer in time", f->node);
		else if (e->stopping)
			snprintf(line, sizeof(line), "krgd on node %u is stopping", e->self);
		else
			snprintf(line, sizeof(line), "cannot reach node %u: %s", f->node, strerror(-status));
		krg_api_reply(call, -EHOSTUNREACH, line, NULL, 0);
		front_free(f);
		return;
	}
	Krg__Proc__Spawned *s = krg__proc__spawned__unpack(NULL, reply->len, reply->body);
	if (!s || (!s->has_err && (!s->has_pid || !s->has_id || !s->has_window || !s->window)) ||
	    (s->has_err && s->err >= 0)) {
		log_warn("exec: malformed proc.spawn reply from node %u", f->node);
		snprintf(line, sizeof(line), "node %u sent a malformed answer", f->node);
		krg_api_reply(call, -EBADMSG, line, NULL, 0);
		front_free(f);
	} else if (s->has_err) {
		snprintf(line, sizeof(line), "%s", s->error ? s->error : strerror(-s->err));
		krg_api_reply(call, s->err, line, NULL, 0);
		front_free(f);
	} else {
		f->pid = s->pid;
		f->id = s->id;
		f->stdin_window = s->window < EXEC_WINDOW ? s->window : EXEC_WINDOW;
		f->started = true;
		Krg__Proc__RunStarted rs = KRG__PROC__RUN_STARTED__INIT;
		rs.node = f->node;
		rs.pid = f->pid;
		rs.id = f->id;
		rs.has_window = true;
		rs.window = (uint32_t)f->stdin_window;
		size_t n;
		uint8_t *b = x_pack(&rs.base, &n);
		f->st = b ? krg_api_stream_start(call, b, n, stream_msg, stream_close, f) : NULL;
		if (!b)
			krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		free(b);
		if (!f->st)
			stream_close(NULL, f);
		else
			front_watch(e);
		early_replay(f); /* may free f (an early exit) */
	}
	if (s)
		krg__proc__spawned__free_unpacked(s, NULL);
}

static void run_cb(struct krg_api_call *call, void *data)
{
	struct krg_exec *e = data;
	char line[256];
	uint32_t *groups = NULL;
	if (!e->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	Krg__Proc__RunRequest *r = krg__proc__run_request__unpack(NULL, call->len, call->body);
	if (!r) {
		krg_api_reply(call, -EBADMSG, "malformed run request", NULL, 0);
		goto out;
	}
	if (r->n_argv == 0 || !r->argv[0][0]) {
		krg_api_reply(call, -EINVAL, "empty command: nothing to run", NULL, 0);
		goto out;
	}
	if (r->n_argv > EXEC_MAX_ARGS) {
		snprintf(line, sizeof(line), "too many arguments (%zu; at most %d)", r->n_argv, EXEC_MAX_ARGS);
		krg_api_reply(call, -E2BIG, line, NULL, 0);
		goto out;
	}
	uint32_t node = e->self;
	if (r->has_node) {
		node = r->node;
	} else if (r->has_auto_ && r->auto_) {
		node = e->s->sched ? krg_sched_place(e->s->sched) : e->self;
	}
	if (!krg_config_node(e->s->cfg, node)) {
		snprintf(line, sizeof(line), "no node %u in this cluster", node);
		krg_api_reply(call, -ENXIO, line, NULL, 0);
		goto out;
	}
	if (node != e->self) {
		enum krg_node_state st = e->s->cluster ? krg_cluster_node_state(e->s->cluster, node) : KRG_NODE_UP;
		if (st != KRG_NODE_UP) {
			snprintf(line, sizeof(line), "node %u is not up (%s)", node, krg_node_state_name(st));
			krg_api_reply(call, -EHOSTDOWN, line, NULL, 0);
			goto out;
		}
		if (!krg_net_peer_up(e->s->net, node)) {
			snprintf(line, sizeof(line), "node %u is unreachable from node %u", node, e->self);
			krg_api_reply(call, -EHOSTUNREACH, line, NULL, 0);
			goto out;
		}
	}
	/* The groups the kernel recorded when the caller connected
	 * (SO_PEERGROUPS), never read from /proc later: by then the pid may
	 * be another process's. */
	groups = calloc(call->n_groups ? call->n_groups : 1, sizeof(*groups));
	struct exec_front *f = groups ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		goto out;
	}
	for (size_t i = 0; i < call->n_groups; i++)
		groups[i] = (uint32_t)call->groups[i];
	size_t ng = call->n_groups;
	f->client_pidfd = krg_api_call_dup_pidfd(call);
	if (f->client_pidfd < 0)
		f->client_pidfd = -1;
	f->e = e;
	f->stream = ++e->next_stream;
	f->node = node;
	f->client = call->pid;
	f->call = call;
	snprintf(f->name, sizeof(f->name), "%s", r->argv[0]);

	Krg__Proc__Spawn s = KRG__PROC__SPAWN__INIT;
	s.stream = f->stream;
	s.run = r;
	r->has_node = false;
	s.uid = call->uid;
	s.gid = call->gid;
	s.n_groups = (size_t)ng;
	s.groups = groups;
	s.window = EXEC_WINDOW;
	/* The caller's capabilities travel with it when someone set them
	 * (its own or an ancestor's): the new process is its child. */
	struct krg_caps ck, child;
	Krg__Proc__Caps pc = KRG__PROC__CAPS__INIT;
	if (e->s->cluster &&
	    krg_caps_get(e->s->cluster, e->self, krg_procid_make(e->self, (uint32_t)call->pid), call->pid, &ck) == 1 &&
	    krg_api_call_same_process(call)) {
		krg_caps_child(&ck, &child);
		pc.eff = child.eff;
		pc.perm = child.perm;
		pc.inh_eff = child.inh_eff;
		pc.inh_perm = child.inh_perm;
		s.caps = &pc;
	}
	size_t n;
	uint8_t *b = x_pack(&s.base, &n);
	int ret = b ? x_request(e, node, "proc.spawn", b, n, 30000, spawn_done, f) : -ENOMEM;
	free(b);
	if (ret < 0) {
		snprintf(line, sizeof(line), "cannot reach node %u: %s", node, strerror(-ret));
		krg_api_reply(call, -EHOSTUNREACH, line, NULL, 0);
		if (f->client_pidfd >= 0)
			close(f->client_pidfd);
		free(f);
		goto out;
	}
	f->next = e->fronts;
	e->fronts = f;
out:
	free(groups);
	if (r)
		krg__proc__run_request__free_unpacked(r, NULL);
}

void front_register(struct krg_exec *e)
{
	static bool registered;
	/* Stream ids must not repeat across restarts of krgd: a target may
	 * still hold the previous instance's streams for a while. */
	e->next_stream = uv_hrtime() << 8;
	if (registered)
		return;
	if (krg_api_register(e->s->api, "proc.run", false, run_cb, e) == 0)
		registered = true;
}
