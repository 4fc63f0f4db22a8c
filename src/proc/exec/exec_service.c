/* exec_service.c — the remote execution service: start/stop, message
 * routing (net, which delivers to this node too), membership and link
 * events, SIGCHLD.
 * Roles: exec_front.c (caller side), exec_back.c (target side). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "lib/log.h"
#include "proc/exec/exec-int.h"
#include "proc/exec/exec_msg.h"

/* One instance per krgd, static: net handlers and membership callbacks
 * cannot be unregistered, so they must find a valid (stopped) object. */
static struct krg_exec the_exec;

uint8_t *x_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return NULL;
	protobuf_c_message_pack(m, b);
	*len = n;
	return b;
}

/* To any node, this one included: net delivers proc.* to the node itself
 * (krg_net_handle_self at start). */
int x_send(struct krg_exec *e, uint32_t to, const char *type, const void *body, size_t len)
{
	return krg_net_send(e->s->net, to, type, body, len);
}

static void bulk_done(int status, void *data)
{
	free(data);
}

int x_send_bulk(struct krg_exec *e, uint32_t to, const char *type, uint8_t *body, size_t len)
{
	int r = krg_net_send_bulk(e->s->net, to, type, body, len, bulk_done, body);
	if (r < 0)
		free(body);
	return r;
}

int x_request(struct krg_exec *e, uint32_t to, const char *type, const void *body, size_t len,
	      unsigned timeout_ms, krg_net_reply_cb cb, void *data)
{
	return krg_net_request(e->s->net, to, type, body, len, timeout_ms, cb, data);
}

int x_reply(struct krg_exec *e, uint32_t to, uint64_t req_id, const void *body, size_t len)
{
	return krg_net_reply(e->s->net, to, req_id, 0, body, len);
}

int x_send_ctl(struct krg_exec *e, uint32_t to, const Krg__Proc__Ctl *c)
{
	size_t n;
	uint8_t *b = x_pack(&c->base, &n);
	if (!b)
		return -ENOMEM;
	int r = x_send(e, to, "proc.ctl", b, n);
	free(b);
	return r;
}

/* Every proc.* message except proc.spawn. Peers are untrusted: each
 * message is unpacked and checked, a bad one is logged and dropped. */
static void net_dispatch(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id,
			 void *data)
{
	struct krg_exec *e = &the_exec;
	if (!e->running)
		return;
	if (!strcmp(msg->type, "proc.spawn")) {
		back_on_spawn(net, from, msg, req_id, e);
	} else if (!strcmp(msg->type, "proc.data")) {
		Krg__Proc__Data *d = krg__proc__data__unpack(NULL, msg->len, msg->body);
		if (!d || !exec_data_valid(d)) {
			log_warn("exec: malformed proc.data from node %u, dropped", from);
		} else if (d->fd == 0) {
			back_on_data(e, from, d);
		} else {
			front_on_data(e, from, d);
		}
		if (d)
			krg__proc__data__free_unpacked(d, NULL);
	} else if (!strcmp(msg->type, "proc.exit")) {
		Krg__Proc__Exit *x = krg__proc__exit__unpack(NULL, msg->len, msg->body);
		if (!x || !exec_exit_valid(x))
			log_warn("exec: malformed proc.exit from node %u, dropped", from);
		else
			front_on_exit(e, from, x);
		if (x)
			krg__proc__exit__free_unpacked(x, NULL);
	} else if (!strcmp(msg->type, "proc.ctl")) {
		Krg__Proc__Ctl *c = krg__proc__ctl__unpack(NULL, msg->len, msg->body);
		if (!c || !exec_ctl_valid(c)) {
			log_warn("exec: malformed proc.ctl from node %u, dropped", from);
		} else if (c->has_stdin_credit) {
			front_on_ctl(e, from, c); /* the only target -> caller control */
		} else {
			back_on_ctl(e, from, c);
		}
		if (c)
			krg__proc__ctl__free_unpacked(c, NULL);
	} else {
		log_warn("exec: unexpected message %.32s from node %u", msg->type, from);
	}
}

static void peer_cb(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct krg_exec *e = &the_exec;
	if (!e->running || up)
		return;
	front_node_lost(e, peer, "lost the link to");
	back_peer_lost(e, peer);
}

/* Down or removed: its streams end. */
static void node_gone(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_exec *e = state;
	if (!e->running || node == e->self)
		return;
	front_node_lost(e, node, "the cluster marked down");
	back_peer_lost(e, node);
}

/* Removed: as down, unless it was evicted cleanly (`nodes del`,
 * docs/reconfiguration.md) and still runs krgd: the streams of processes
 * started there go on. */
static void node_removed(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_exec *e = state;
	if (krg_net_peer_up(e->s->net, node))
		return;
	node_gone(state, node, epoch);
}

static void sigchld_cb(uv_signal_t *h, int sig)
{
	back_reap(h->data);
}

static void handle_closed(uv_handle_t *h)
{
	struct krg_exec *e = h->data;
	e->open_handles--;
}

/* Its start hook (lib/service.h): *out its state. */
static int exec_start(struct krg_services *s, void **out, char *err, size_t errlen)
{
	struct krg_exec *e = &the_exec;
	static bool registered;
	int r;

	if (e->running) {
		snprintf(err, errlen, "exec service already running");
		return -EBUSY;
	}
	memset(e, 0, sizeof(*e));
	e->s = s;
	e->self = s->cfg->node_id;
	uv_timer_init(s->loop, &e->watch);
	uv_signal_init(s->loop, &e->sigchld);
	e->watch.data = e->sigchld.data = e;
	e->open_handles = 2;
	r = uv_signal_start(&e->sigchld, sigchld_cb, SIGCHLD);
	if (r < 0) {
		snprintf(err, errlen, "exec: cannot watch SIGCHLD: %s", uv_strerror(r));
		return r;
	}
	if (!registered) {
		static const char *types[] = { "proc.spawn", "proc.data", "proc.exit", "proc.ctl" };
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			r = krg_net_handle(s->net, types[i], net_dispatch, e);
			if (r == 0)
				r = krg_net_handle_self(s->net, types[i]);
			if (r < 0) {
				snprintf(err, errlen, "exec: cannot register %s: %s", types[i], strerror(-r));
				return r;
			}
		}
		krg_net_on_peer(s->net, peer_cb, e);
		registered = true;
	}
	front_register(e);
	e->running = true;
	/* Children that died before we watched. */
	back_reap(e);
	*out = e;
	return 0;
}

static void exec_stop(void *state)
{
	struct krg_exec *e = state;
	if (!e || !e->running)
		return;
	e->stopping = true;
	front_stop_all(e);
	back_stop_all(e);
	back_reap(e);
	e->running = false;
	uv_close((uv_handle_t *)&e->watch, handle_closed);
	uv_close((uv_handle_t *)&e->sigchld, handle_closed);
}

const struct krg_service krg_service_exec = {
	.name = "exec",
	/* placement (--auto), the file view and IPC interception of what it starts */
	.needs = (const char *const[]){ "fsview", "sched", "ipc-intercept", NULL },
	.start = exec_start,
	.stop = exec_stop,
	.node_down = node_gone,
	.node_remove = node_removed,
	.msg_types = (const char *const[]){ "proc.spawn", "proc.data", "proc.exit", "proc.ctl", NULL },
	.api_cmds = (const char *const[]){ "proc.run", NULL },
};
