/* ipc_service_krgd.c — the IPC service inside krgd: KDDM over krg_net,
 * membership events into KDDM, a timer for semtimedop deadlines, and the
 * API command "ipc.status" (krgadm ipc status, krg ipcs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "ipc_service-int.h"
#include "kddm/kddm_net.h"
#include "lib/log.h"
#include "lib/service.h"

#define TICK_MS 10

struct ipc_krgd {
	struct krg_services *s;      /* borrowed */
	struct kddm_net *kn;         /* owned */
	struct krg_ipc_service *svc; /* owned */
	uv_timer_t timer;
	bool running;
};

static void tick_cb(uv_timer_t *t)
{
	struct ipc_krgd *d = t->data;
	if (d->running)
		krg_ipc_service_tick(d->svc);
}

static void on_node_up(void *state, uint32_t node, uint64_t epoch)
{
	struct ipc_krgd *d = ((struct krg_ipc_service *)state)->krgd;
	if (d && d->running) {
		kddm_set_epoch(kddm_net_kddm(d->kn), epoch);
		kddm_node_up(kddm_net_kddm(d->kn), node);
	}
}

/* Down or removed. */
static void on_node_gone(void *state, uint32_t node, uint64_t epoch)
{
	struct ipc_krgd *d = ((struct krg_ipc_service *)state)->krgd;
	if (d && d->running) {
		kddm_set_epoch(kddm_net_kddm(d->kn), epoch);
		kddm_node_down(kddm_net_kddm(d->kn), node);
	}
}

/* Taken out cleanly (krgadm nodes del): no node chooses it as a home any
 * more, and it hands every queue and set it homes to its new home (KDDM's
 * HANDOVER, the node itself sending, with messages, values and undo
 * records); callers parked there re-issue their calls at the new home. Its
 * later removal then finds nothing left there. */
static void on_node_leaving(void *state, uint32_t node, uint64_t epoch)
{
	struct ipc_krgd *d = ((struct krg_ipc_service *)state)->krgd;
	if (d && d->running) {
		kddm_set_epoch(kddm_net_kddm(d->kn), epoch);
		/* The queues that moved here go back to their homes first
		 * (before KDDM's READY: docs/ipc-service.md, "Owners"). */
		if (node == kddm_self(kddm_net_kddm(d->kn)))
			krg_ipc_service_leaving(state);
		kddm_node_leaving(kddm_net_kddm(d->kn), node);
	}
}

/* ---- ipc.status ------------------------------------------------------------ */

struct status_ctx {
	struct krg_api_call *call;
	struct krg_ipc_service *svc;
	unsigned waiting;
	size_t n, cap;
	Krg__Ipc__ObjInfo **objs;    /* owned copies */
};

/* May the caller read an object with this perm (Linux's ipcperms for
 * read, as ipcs needs)? Root sees everything. */
static bool may_read(const struct krg_api_call *call, const Krg__Ipc__Perm *p)
{
	if (call->uid == 0)
		return true;
	if (call->uid == p->uid || call->uid == p->cuid)
		return p->mode & 0400;
	bool in_group = call->gid == p->gid || call->gid == p->cgid;
	for (size_t i = 0; i < call->n_groups && !in_group; i++)
		in_group = call->groups[i] == p->gid || call->groups[i] == p->cgid;
	return in_group ? p->mode & 0040 : p->mode & 0004;
}

static void status_done(struct status_ctx *sc)
{
	Krg__Ipc__Status st = KRG__IPC__STATUS__INIT;
	st.n_objs = sc->n;
	st.objs = sc->objs;
	size_t len = krg__ipc__status__get_packed_size(&st);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf) {
		krg__ipc__status__pack(&st, buf);
		krg_api_reply(sc->call, 0, NULL, buf, len);
	} else {
		krg_api_reply(sc->call, -ENOMEM, "out of memory", NULL, 0);
	}
	free(buf);
	for (size_t i = 0; i < sc->n; i++)
		krg__ipc__obj_info__free_unpacked(sc->objs[i], NULL);
	free(sc->objs);
	free(sc);
}

static void list_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct status_ctx *sc = data;
	Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	for (size_t i = 0; a && i < a->n_objs; i++) {
		Krg__Ipc__ObjInfo *o = a->objs[i];
		if (!o->perm || !may_read(sc->call, o->perm))
			continue;
		if (sc->n == sc->cap) {
			size_t cap = sc->cap ? sc->cap * 2 : 32;
			Krg__Ipc__ObjInfo **nv = realloc(sc->objs, cap * sizeof(*nv));
			if (!nv)
				break;
			sc->objs = nv;
			sc->cap = cap;
		}
		/* Keep a copy: the answer is freed below. */
		size_t n = krg__ipc__obj_info__get_packed_size(o);
		uint8_t *b = malloc(n ? n : 1);
		if (!b)
			break;
		krg__ipc__obj_info__pack(o, b);
		Krg__Ipc__ObjInfo *copy = krg__ipc__obj_info__unpack(NULL, n, b);
		free(b);
		if (copy)
			sc->objs[sc->n++] = copy;
	}
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (--sc->waiting == 0)
		status_done(sc);
}

static void on_status(struct krg_api_call *call, void *data)
{
	struct ipc_krgd *d = data;
	struct status_ctx *sc = calloc(1, sizeof(*sc));
	if (!sc || !d->running) {
		free(sc);
		krg_api_reply(call, -ENOMEM, "ipc: cannot list now", NULL, 0);
		return;
	}
	sc->call = call;
	sc->svc = d->svc;
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__LIST;
	uint8_t *buf;
	size_t len;
	if (ipc_call_pack(&c, &buf, &len) < 0) {
		free(sc);
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	struct kddm *k = kddm_net_kddm(d->kn);
	const struct krg_nodeset *live = kddm_live(k);
	sc->waiting = 1 + krg_nodeset_count(live);
	for (unsigned n = 0; n < KRG_MAX_NODES; n++)
		if (krg_nodeset_has(live, n) && kddm_call(d->svc->nodes, n, buf, len, list_cb, sc) < 0)
			list_cb(k, -EHOSTUNREACH, NULL, 0, sc);
	free(buf);
	list_cb(k, -EAGAIN, NULL, 0, sc); /* the extra count: done once all answered */
}

/* ---- ipc.call: one System V call for krg ipcmk / ipcrm ------------------ */

/* API calls take tokens above the interception layer's. */
#define API_TOKEN_BASE (1ull << 62)

static void call_done(void *cookie, struct krg_ipc_reply *reply)
{
	struct krg_api_call *call = cookie;
	Krg__Ipc__Reply m;
	Krg__Ipc__Perm perm;
	int64_t f[16];
	uint32_t *vals = NULL;
	if (ipcw_reply_to(reply, &m, &perm, f, &vals) < 0) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
	} else {
		size_t len = krg__ipc__reply__get_packed_size(&m);
		uint8_t *buf = malloc(len ? len : 1);
		if (buf) {
			krg__ipc__reply__pack(&m, buf);
			krg_api_reply(call, 0, NULL, buf, len);
			free(buf);
		} else {
			krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		}
	}
	free(vals);
	krg_ipc_reply_release(reply);
}

static void on_call(struct krg_api_call *call, void *data)
{
	struct ipc_krgd *d = data;
	static uint64_t next_token = API_TOKEN_BASE;
	Krg__Ipc__Req *m = krg__ipc__req__unpack(NULL, call->len, call->body);
	struct krg_ipc_req req;
	void *scratch = NULL;
	if (!m || ipcw_req_from(m, &req, &scratch) < 0) {
		if (m)
			krg__ipc__req__free_unpacked(m, NULL);
		krg_api_reply(call, -EINVAL, "ipc.call: malformed request", NULL, 0);
		return;
	}
	/* A command line never waits at a home: blocking calls do not block. */
	if (req.op == KRG_IPC_OP_MSGSND || req.op == KRG_IPC_OP_MSGRCV || req.op == KRG_IPC_OP_SEMOP)
		req.flags |= 04000; /* IPC_NOWAIT */
	for (uint32_t i = 0; i < req.nsops; i++)
		((struct krg_ipc_sembuf *)req.sops)[i].flg |= 04000;
	/* The caller as the kernel saw it at connect time; root has the
	 * capabilities System V IPC looks at. */
	uint32_t groups[KRG_API_MAX_GROUPS];
	struct krg_ipc_caller who = { 0 };
	who.cred.uid = who.cred.euid = call->uid;
	who.cred.gid = who.cred.egid = who.cred.fsgid = call->gid;
	who.cred.caps = call->uid == 0 ? KRG_IPC_CAP_IPC_OWNER | KRG_IPC_CAP_SYS_ADMIN | KRG_IPC_CAP_SYS_RESOURCE : 0;
	for (size_t i = 0; i < call->n_groups && i < KRG_API_MAX_GROUPS; i++)
		groups[i] = call->groups[i];
	who.cred.ngroups = (uint32_t)(call->n_groups < KRG_API_MAX_GROUPS ? call->n_groups : KRG_API_MAX_GROUPS);
	who.cred.groups = groups;
	who.pid = call->pid;
	who.proc_id = (uint64_t)kddm_self(kddm_net_kddm(d->kn)) << 22 | (uint32_t)call->pid;
	int r = d->running ? krg_ipc_service_submit(d->svc, &who, &req, next_token++, call_done, call) : -ESHUTDOWN;
	free(scratch);
	krg__ipc__req__free_unpacked(m, NULL);
	if (r < 0)
		krg_api_reply(call, r, "ipc.call: refused", NULL, 0);
}

/* ---- start / stop ------------------------------------------------------------ */

int krg_ipc_service_start(struct krg_services *s, struct krg_ipc_service **out, char *err, size_t errlen)
{
	struct ipc_krgd *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "ipc: out of memory");
		return -ENOMEM;
	}
	d->s = s;
	struct krg_ipc_limits lim;
	krg_ipc_limits_default(&lim);
	int r = krg_ipc_limits_read(&lim, "/proc/sys/kernel");
	if (r < 0)
		log_warn("ipc: cannot read this node's IPC limits (%s): Linux's defaults apply", strerror(-r));
	r = kddm_net_start(s->loop, s->net, &d->kn);
	/* krgd.conf ipc_backup: the same choice on every node (kddm.h). */
	if (r == 0)
		kddm_set_backup(kddm_net_kddm(d->kn), s->cfg && s->cfg->ipc_backup);
	if (r == 0)
		r = krg_ipc_service_new(kddm_net_kddm(d->kn), &lim, NULL, &d->svc);
	/* krgd.conf ipc_moves (off): queues follow their receivers. */
	if (r == 0)
		d->svc->moves_off = s->cfg && !s->cfg->ipc_moves;
	if (r == 0)
		r = krg_api_register(s->api, "ipc.status", false, on_status, d);
	if (r == 0)
		r = krg_api_register(s->api, "ipc.call", false, on_call, d);
	if (r < 0) {
		snprintf(err, errlen, "ipc: cannot start: %s", strerror(-r));
		/* krg_net and the cluster may keep pointers to d and kn: they
		 * stay, reachable from the service krgd keeps. */
		if (d->svc) {
			d->svc->krgd = d;
			ipc_service_close(d->svc);
		}
		kddm_net_stop(d->kn);
		*out = d->svc;
		return r;
	}
	d->svc->krgd = d;
	d->running = true;
	struct kddm *k = kddm_net_kddm(d->kn);
	kddm_set_epoch(k, krg_cluster_epoch(s->cluster));
	for (uint32_t n = 0; n < KRG_MAX_NODES; n++)
		if (krg_cluster_node_state(s->cluster, n) == KRG_NODE_UP)
			kddm_node_up(k, n);
	uv_timer_init(s->loop, &d->timer);
	d->timer.data = d;
	uv_timer_start(&d->timer, tick_cb, TICK_MS, TICK_MS);
	*out = d->svc;
	return 0;
}

void krg_ipc_service_stop(struct krg_ipc_service *svc)
{
	if (!svc || !svc->krgd)
		return;
	struct ipc_krgd *d = svc->krgd;
	if (!d->running)
		return;
	d->running = false;
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, NULL);
	/* The service before its KDDM instance (ipc_service.h). The structs
	 * stay: the membership callback and krg_net's handler keep pointing
	 * at them, and krgd keeps svc. */
	ipc_service_close(svc);
	kddm_net_stop(d->kn);
}

static int svc_start(struct krg_services *s, void **state, char *err, size_t errlen)
{
	struct krg_ipc_service *svc = NULL;
	int r = krg_ipc_service_start(s, &svc, err, errlen);
	*state = svc;
	s->ipc = svc;
	return r;
}

/* Stopped, not freed: its handlers keep pointing at it (krgd ends soon). */
static void svc_stop(void *state)
{
	krg_ipc_service_stop(state);
}

const struct krg_service krg_service_ipc = {
	.name = "ipc",
	.start = svc_start,
	.stop = svc_stop,
	.node_up = on_node_up,
	.node_down = on_node_gone,
	.node_remove = on_node_gone,
	.node_leaving = on_node_leaving,
	.msg_types = (const char *const[]){ "kddm", NULL },
	.api_cmds = (const char *const[]){ "ipc.status", "ipc.call", NULL },
};
