/* mig_status.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- mig.status: where a requested move stands (krg migrate's progress) ---- */

struct status_fwd {
	struct krg_origin o;
	uint32_t id;
};

static void status_reply(struct krg_origin o, int r, const char *text, const void *body, size_t len)
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
		st->running = mig_workers_running();
		st->to = q->to;
		return 0;
	}
	for (struct move *v = m->moves; v; v = v->next) {
		if (v->id != id || v->phase == MOVE_COMMITTED)
			continue;
		if (uid != 0 && uid != v->uid)
			return -EPERM;
		st->state = (char *)mig_move_phase_name(v->phase); /* protobuf-c fields are not const; only read */
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
		status_reply(f->o, status, mig_why(status, e, sizeof(e), f->id), NULL, 0);
	else if (!st || st->id != f->id)
		status_reply(f->o, -EBADMSG, "malformed mig.status answer", NULL, 0);
	else
		status_reply(f->o, 0, NULL, reply->body, reply->len);
	if (st)
		krg__mig__status__free_unpacked(st, NULL);
	free(f);
}

static void status_answer(struct krg_origin o, int r, const Krg__Mig__Status *st)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	char e[128];
	if (r == 0)
		r = status_pack(st, &buf, &len);
	status_reply(o, r, r ? mig_why(r, e, sizeof(e), st->id) : NULL, buf, len);
}

/* As mig_route(): answered here if it runs here (original or migrant); else
 * forwarded to where it runs: its host if this is its home (which knows
 * its deputy), else its home (from the API only: one more hop at most). */
static void status_route(struct krg_origin o, uint32_t id, uid_t uid)
{
	struct krg_migsvc *m = &the_mig;
	Krg__Mig__Status st = KRG__MIG__STATUS__INIT;
	uint32_t home = krg_procid_home(id);
	struct dep *d = home == m->self ? mig_dep_by_id(id) : NULL;
	uint32_t to = d ? d->node : home;
	if (mig_hold_by_id(id) || (home == m->self && !d) || (!o.call && !d)) {
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

void mig_on_net_status(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!req_id)
		return;
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_move_peer_valid(q)) {
		log_warn("migrate: malformed mig.status from node %u, refused", from);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
	} else {
		status_route((struct krg_origin){ .from = from, .req_id = req_id }, q->id, (uid_t)q->uid);
	}
	if (q)
		krg__mig__move__free_unpacked(q, NULL);
}

void mig_on_api_status(struct krg_api_call *call, void *data)
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
		id = mig_proc_kind(m, (pid_t)q->pid, &hid, &home) == KRG_PROC_MIGRANT ? hid : krg_procid_make(m->self, q->pid);
	}
	krg__mig__move__free_unpacked(q, NULL);
	status_route((struct krg_origin){ .call = call }, id, call->uid);
}

void mig_on_api_move(struct krg_api_call *call, void *data)
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
		if (mig_proc_kind(m, (pid_t)q->pid, &hid, &home) == KRG_PROC_MIGRANT)
			id = hid;
		else
			id = krg_procid_make(m->self, q->pid);
	}
	struct krg_origin o = { .call = call };
	if (q->has_notify_fd) {
		/* krg_migrate_self: the caller is the process; answer now, the
		 * result goes to its pipe. */
		uint32_t hid = 0, home;
		bool self = ((mig_proc_kind(m, call->pid, &hid, &home) == KRG_PROC_MIGRANT && hid == id) ||
			     (krg_procid_home(id) == m->self && krg_procid_pid(id) == (uint32_t)call->pid)) &&
			    krg_api_call_same_process(call);  /* the pid still names the caller */
		if (!self) {
			krg_api_reply(call, -EINVAL, "notify_fd is for a process migrating itself", NULL, 0);
		} else {
			char e[600] = "";
			int r = mig_move_local((struct krg_origin){ .call = NULL, .from = 0, .req_id = 0 }, id, q->node,
					   call->uid, q->notify_fd, false, e, sizeof(e));
			if (r < 0)
				krg_api_reply(call, r, e[0] ? e : mig_why(r, e, sizeof(e), id), NULL, 0);
			else
				krg_api_reply(call, 0, NULL, NULL, 0);
		}
		krg__mig__move__free_unpacked(q, NULL);
		return;
	}
	mig_route(o, id, q->node, call->uid, 0);
	krg__mig__move__free_unpacked(q, NULL);
}
