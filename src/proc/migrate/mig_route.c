/* mig_route.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- moving: routing and the source side ---- */

int mig_move_local(struct krg_origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd, bool evicting,
		   char *err, size_t errlen)
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
	struct hold *h = mig_hold_by_id(id);
	pid_t pid;
	if (h) {
		if (h->mv || !h->restored)
			return -EBUSY;
		if (h->orphan) {
			/* Its next node would take its id's home for its home (not yet). */
			snprintf(err, errlen, "process %u lost its home node: it stays on node %u", id, m->self);
			return -EPERM;
		}
		pid = h->pid;
	} else {
		if (krg_procid_home(id) != m->self || mig_dep_by_id(id))
			return -ESRCH;
		pid = (pid_t)krg_procid_pid(id);
		if (pid <= 1 || pid == m->krgd || !procfs_is_descendant(pid, m->krgd) || mig_proc_kind(m, pid, &(uint32_t){ 0 }, &(uint32_t){ 0 }))
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
	if (procfs_uids(pid, &ruid, &suid) < 0)
		return -ESRCH;
	if (uid != 0 && uid != ruid && uid != suid)
		return -EPERM;
	struct krg_caps caps;
	krg_caps_get(m->s->cluster, m->self, id, h ? 0 : pid, &caps);
	if (!(caps.eff & KRG_CAP_CAN_MIGRATE) && !(evicting && (caps.eff & KRG_CAP_CHECKPOINTABLE))) {
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
	if (!dequeued && (m->queue || mig_workers_running() >= m->s->cfg->migrate_max_workers)) {
		struct queued_move *q = calloc(1, sizeof(*q));
		if (!q)
			return -ENOMEM;
		*q = (struct queued_move){ .o = o, .id = id, .to = to, .notify_fd = notify_fd, .uid = uid,
					   .since = uv_now(m->s->loop), .evicting = evicting };
		*m->queue_tail = q;
		m->queue_tail = &q->next;
		m->nqueued++;
		log_info("migrate: %u to node %u queued: %u migrations running (migrate_max_workers = %u), %u waiting",
			 id, to, mig_workers_running(), m->s->cfg->migrate_max_workers, m->nqueued);
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
	v->src.fd = -1;
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
	v->w = mig_conn_new(sv[0], CK_WORKER, v);
	uv_timer_init(m->s->loop, &v->early_timer);
	v->early_timer.data = v;
	uv_timer_start(&v->early_timer, mig_early_tick, 5, 5);
	if (h)
		h->mv = v;
	v->next = m->moves;
	m->moves = v;
	log_info("migrate: %u (pid %d) to node %u, worker %d", id, (int)pid, to, (int)wp);
	return 0;
}

static void fwd_failed(struct krg_origin o, int status, bool bad_answer, uint32_t id, uint32_t node)
{
	char e[128];
	if (bad_answer)
		mig_answer(o, -EBADMSG, "malformed answer", the_mig.self, 0, id);
	else
		mig_answer(o, status, mig_why(status, e, sizeof(e), id), the_mig.self, 0, id);
}

static const struct krg_fwd_ops fwd_ops = { &krg__mig__result__descriptor, fwd_failed };

static void forward(struct krg_origin o, uint32_t node, uint32_t id, uint32_t to, uid_t uid)
{
	struct krg_migsvc *m = &the_mig;
	char e[128];
	if (node >= KRG_MAX_NODES || !krg_config_node(m->s->cfg, node)) {
		snprintf(e, sizeof(e), "no krg process %u: no node %u in this cluster", id, node);
		mig_answer(o, -ESRCH, e, m->self, 0, id);
		return;
	}
	if (!krg_net_peer_up(m->s->net, node)) {
		snprintf(e, sizeof(e), "node %u (where process %u is) is unreachable", node, id);
		mig_answer(o, -EHOSTUNREACH, e, m->self, 0, id);
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
	int r = krg_forward(m->s->net, &fwd_ops, o, node, id, "mig.move", buf, len, MOVE_TIMEOUT_MS);
	if (r == -ENOMEM)
		mig_answer(o, -ENOMEM, "out of memory", m->self, 0, id);
	else if (r < 0)
		fwd_failed(o, r, false, id, node);
}

/* Where is id? Here (original or migrant), or forward to home / host. */
void mig_route(struct krg_origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd)
{
	struct krg_migsvc *m = &the_mig;
	char e[600];
	int r;
	uint32_t home = krg_procid_home(id);
	if (krg_procid_pid(id) == 0) {
		mig_answer(o, -EINVAL, "not a krg process id", m->self, 0, id);
		return;
	}
	if (mig_hold_by_id(id) || (home == m->self && !mig_dep_by_id(id))) {
		e[0] = 0;
		r = mig_move_local(o, id, to, uid, notify_fd, false, e, sizeof(e));
		if (r < 0)
			mig_answer(o, r, e[0] ? e : mig_why(r, e, sizeof(e), id), m->self, 0, id);
		return;
	}
	struct dep *d = home == m->self ? mig_dep_by_id(id) : NULL;
	if (d)
		forward(o, d->node, id, to, uid);
	else if (home != m->self && !o.call)
		mig_answer(o, -ESRCH, mig_why(-ESRCH, e, sizeof(e), id), m->self, 0, id);
	else
		forward(o, home, id, to, uid);
}

int mig_sched_move(void *svc, uint32_t id, uint32_t to, bool evicting, krg_sched_move_done_fn done, void *data,
		   char *err, size_t errlen)
{
	struct krg_migsvc *m = svc;
	if (!m->running) {
		snprintf(err, errlen, "migration service stopped");
		return -ESHUTDOWN;
	}
	err[0] = 0;
	int r = mig_move_local((struct krg_origin){ 0 }, id, to, 0, 0, evicting, err, errlen);
	if (r < 0 && !err[0])
		mig_why(r, err, errlen, id);
	/* mig_move_local put the new move first; nothing ran since. */
	if (r == 0 && m->moves && m->moves->id == id) {
		m->moves->done = done;
		m->moves->done_data = data;
	}
	return r;
}

void mig_on_net_move(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!krg_net_request_open(net, from, req_id, !the_mig.running))
		return;
	Krg__Mig__Move *q = krg__mig__move__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_move_peer_valid(q)) {
		if (q)
			krg__mig__move__free_unpacked(q, NULL);
		return krg_net_refuse_malformed(net, from, req_id, "mig.move");
	}
	struct krg_origin o = { .from = from, .req_id = req_id };
	log_info("mig.move %u to node %u for uid %u from node %u", q->id, q->node, q->uid, from);
	mig_route(o, q->id, q->node, (uid_t)q->uid, 0);
	krg__mig__move__free_unpacked(q, NULL);
}
