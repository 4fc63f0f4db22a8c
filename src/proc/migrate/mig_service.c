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
#include "proc/migrate/migsvc-int.h"

struct krg_migsvc the_mig;

/* ---- answers ---- */

void mig_answer(struct krg_origin o, int status, const char *text, uint32_t node, uint32_t pid, uint32_t id)
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
	krg_origin_answer(m->s->net, o, status, res.text, buf, len);
	free(buf);
}

const char *mig_why(int r, char *buf, size_t len, uint32_t id)
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

/* ---- lookups ---- */

struct dep *mig_dep_by_id(uint32_t id)
{
	for (struct dep *d = the_mig.deps; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

struct hold *mig_hold_by_id(uint32_t id)
{
	for (struct hold *h = the_mig.holds; h; h = h->next)
		if (h->id == id && !h->leaving)
			return h;
	return NULL;
}

/* The process table's kind hook (krg_proc_table_set_kind). */
enum krg_proc_kind mig_proc_kind(void *data, pid_t pid, uint32_t *id, uint32_t *home)
{
	struct krg_migsvc *m = data;
	if (!m->running)
		return KRG_PROC_ORDINARY;
	/* The file view's FUSE clients and home servers are krgd's too. */
	if (krg_fsview_is_helper(m->s->fsview, pid) || (m->s->is_helper && m->s->is_helper(m->s->helper_data, pid)))
		return KRG_PROC_HIDDEN;
	for (struct hold *h = m->holds; h; h = h->next) {
		if (h->wpid == pid)
			return KRG_PROC_HIDDEN;
		if (h->pid == pid && h->restored && !h->leaving) {
			*id = h->id;
			*home = h->home;
			return KRG_PROC_MIGRANT;
		}
		for (size_t i = 0; i < h->nkids; i++)
			if (h->kids[i].ghost == pid)
				return KRG_PROC_HIDDEN;
	}
	for (struct dep *d = m->deps; d; d = d->next)
		if (d->pid == pid)
			return KRG_PROC_HIDDEN;
	for (struct move *v = m->moves; v; v = v->next)
		if (v->wpid == pid)
			return KRG_PROC_HIDDEN;
	return KRG_PROC_ORDINARY;
}

/* ---- membership ---- */

/* Down or removed. */
static void node_gone(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_migsvc *m = state;
	if (!m->running || node == m->self)
		return;
	/* Migrants whose home is gone: their parent and identity are gone.
	 * With migrant_outlives_home they run on, adopted here (orphan.c);
	 * one moving on (h->mv) or not yet restored has no home to go on
	 * with, nor one that could not be adopted. */
	for (struct hold *h = m->holds; h; h = h->next)
		if (h->home == node && h->restored && !h->leaving && !h->orphan) {
			int r = -EPERM;
			if (m->s->cfg->migrant_outlives_home && !h->mv && h->c && (r = mig_orphan_adopt(h, node)) == 0)
				continue;
			if (m->s->cfg->migrant_outlives_home)
				log_warn("migrate: home node %u of %u is down and it cannot run on here (%s): killing it", node,
					 h->id, h->mv ? "it was moving" : strerror(-r));
			else
				log_warn("migrate: home node %u of %u is down: killing it", node, h->id);
			h->leaving = true;
			mig_conn_send(h->c, MF_SIG, 0, SIGKILL, NULL, 0);
		}
	/* Deputies whose migrant's node is gone: it died with its node. */
	for (struct dep *d = m->deps; d; d = d->next)
		if (d->node == node && !d->exit_sent) {
			log_warn("migrate: node %u running %u is down: its deputy ends as killed", node, d->id);
			mig_dep_exit(d, SIGKILL);
		}
}

/* This node was declared down while it ran on (cut off from the
 * majority; it learns it once it hears the cluster again): every home of
 * a migrant held here ended its deputy as killed, and every node running
 * a migrant homed here killed it. The copies left here go the same way:
 * a migrant whose deputy already reported its death must not run on
 * (docs/reconfiguration.md "Partitions"). */
static void self_declared_down(struct krg_migsvc *m)
{
	for (struct hold *h = m->holds; h; h = h->next)
		if (h->home != m->self && h->restored && !h->leaving) {
			log_warn("migrate: this node was declared down, so home node %u took %u for killed: killing it",
				 h->home, h->id);
			h->leaving = true;
			mig_conn_send(h->c, MF_SIG, 0, SIGKILL, NULL, 0);
		}
	for (struct dep *d = m->deps; d; d = d->next)
		if (d->node != m->self && !d->exit_sent) {
			log_warn("migrate: this node was declared down, so node %u killed %u: its deputy ends as killed",
				 d->node, d->id);
			mig_dep_exit(d, SIGKILL);
		}
}

static void node_down(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_migsvc *m = state;
	if (m->running && node == m->self)
		self_declared_down(m);
	else
		node_gone(state, node, epoch);
}

/* Removed: as down, unless it was evicted cleanly (`nodes del`): its krgd
 * still serves the deputies of the migrants homed there (no hand-over
 * yet, docs/reconfiguration.md). */
static void node_removed(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_migsvc *m = state;
	if (krg_net_peer_up(m->s->net, node))
		return;
	node_gone(state, node, epoch);
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

/* Its start hook (lib/service.h): *out its state. */
static int migsvc_start(struct krg_services *s, void **out, char *err, size_t errlen)
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
	m->rxs = (struct krg_xfer_rxset){ .loop = s->loop, .idle_ms = XFER_IDLE_MS, .idle = mig_rx_idle, .closed = mig_rx_closed };
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
	uv_poll_start(&m->lpoll, UV_READABLE, mig_on_accept);
	m->lpoll_on = true;
	if (!registered) {
		int r;
		static const char *io_types[] = { "mig.io", "mig.exit", "mig.where", "mig.go", "mig.sig" };
		for (size_t i = 0; i < sizeof(io_types) / sizeof(io_types[0]); i++)
			if ((r = krg_net_handle(s->net, io_types[i], mig_on_net_io, m)) < 0 ||
			    (r = krg_net_handle_self(s->net, io_types[i])) < 0)
				goto fail;
		if ((r = krg_net_handle(s->net, "mig.move", mig_on_net_move, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.recv", mig_on_recv, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.file", mig_on_file, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.got", mig_on_got, m)) < 0 ||
		    (r = krg_net_handle(s->net, "mig.status", mig_on_net_status, m)) < 0 ||
		    (r = krg_api_register(s->api, "mig.move", false, mig_on_api_move, m)) < 0 ||
		    (r = krg_api_register(s->api, "mig.status", false, mig_on_api_status, m)) < 0)
			goto fail;
		registered = true;
		if (0) {
		fail:
			snprintf(err, errlen, "migration service: cannot register handlers: %s", strerror(-r));
			return r;
		}
	}
	m->running = true;
	/* The services below ask through hooks: which processes are ours,
	 * and the balancer's moves. */
	krg_proc_table_set_kind(s->table, mig_proc_kind, m);
	krg_proc_table_set_orphan(s->table, mig_orphan_pid, m);
	krg_sched_set_mover(s->sched, mig_sched_move, m);
	if (s->intercept)
		krg_intercept_set_sock_hook(s->intercept, mig_sock_hook, m);
	log_info("migration service: deputies connect to %s", m->sock_path);
	*out = m;
	return 0;
}

static void lpoll_closed(uv_handle_t *h)
{
	close(the_mig.lfd);
	the_mig.lfd = -1;
}

static void migsvc_stop(void *state)
{
	struct krg_migsvc *m = state;
	if (!m || !m->running)
		return;
	m->running = false;
	if (m->s->intercept)
		krg_intercept_set_sock_hook(m->s->intercept, NULL, NULL);
	while (m->queue) {
		struct queued_move *q = m->queue;
		m->queue = q->next;
		mig_answer(q->o, -ESHUTDOWN, "krgd is stopping", m->self, 0, q->id);
		free(q);
	}
	m->queue_tail = &m->queue;
	m->nqueued = 0;
	while (m->moves) {
		struct move *v = m->moves;
		if (v->w && v->phase != MOVE_COMMITTED)
			mig_conn_send(v->w, MF_ABORT, 0, 0, NULL, 0);
		v->answered = true;
		if (v->o.call)
			krg_api_reply(v->o.call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		mig_move_free(v);
	}
	while (m->rxs.head)
		mig_rx_free((struct rx *)m->rxs.head, true);
	/* Holders and deputies: their sockets close with us; a holder then
	 * kills its migrant, a deputy exits with 255. */
	while (m->holds)
		mig_hold_free(m->holds);
	while (m->deps) {
		m->deps->exit_sent = true;
		mig_dep_free(m->deps);
	}
	if (m->lpoll_on) {
		uv_poll_stop(&m->lpoll);
		uv_close((uv_handle_t *)&m->lpoll, lpoll_closed);
		m->lpoll_on = false;
	}
	unlink(m->sock_path);
}

const struct krg_service krg_service_migrate = {
	.name = "migrate",
	/* registers its hooks in the table and the scheduler; the file
	 * view and IPC interception of a restored migrant; exec
	 * reaps the holders; after ckpt as before (the same engine's workers) */
	.needs = (const char *const[]){ "table", "sched", "fsview", "ipc-intercept", "exec", "ckpt", NULL },
	.start = migsvc_start,
	.stop = migsvc_stop,
	.node_down = node_down,
	.node_remove = node_removed,
	.msg_types = (const char *const[]){ "mig.io", "mig.exit", "mig.where", "mig.go", "mig.sig", "mig.move",
					    "mig.recv", "mig.file", "mig.got", "mig.status", NULL },
	.api_cmds = (const char *const[]){ "mig.move", "mig.status", NULL },
};
