/* table_service.c — the process table and node load service.
 *
 * Map of this file:
 *   node load     a 1 s timer samples this node (lib/procfs_node.c) and sends a
 *                 NodeLoad "node.load" to 8 linked peers, in turn (8N,
 *                 not N², messages a second); with lazy_links on, to every
 *                 peer in clusters of up to 9 nodes; in larger ones to the
 *                 raft leader only, which
 *                 relays 8 loads in turn to each node ("node.loads"), so N
 *                 nodes send 2N messages a second on N links, not N²;
 *                 both fill the cache (Kerrighed's remote load
 *                 cache); krg_proc_table_node() gives it to the scheduler
 *                 (src/proc/sched), whose policies place krg run --auto.
 *   process list  "proc.list" from a peer: this node's krg processes as
 *                 the given uid may see them. API "proc.list": fan out to
 *                 every up node, merge with the local list, reply.
 *   kill          API "proc.kill": decode the node from the id, check
 *                 locally or forward "proc.kill"; the target node checks
 *                 that the pid is a krg process and the caller may signal it.
 *   node.stats    API: the load cache and totals.
 *
 * Peers are authenticated krgd's, but their messages are still checked
 * field by field; a malformed one is logged and dropped.
 */
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/nodelist.h"
#include "net/net.h"
#include "proc/procid.h"
#include "proc/table.h"
#include "lib/procfs.h"
#include "proc/table/table_msg.h"
#include "proto/node.pb-c.h"

#define LOAD_PERIOD_MS 1000
#define LIST_TIMEOUT_MS 2000   /* a peer's proc.list answer */
#define KILL_TIMEOUT_MS 3000
#define PICK_MAX_AGE_MS 5000   /* older loads do not count for placement */
#define LOAD_FANOUT 8          /* loads a node hears each period (cluster > 9 nodes) */
#define CMD_MAX 4096           /* bytes of argv shown */

struct node_load {
	bool have;
	uint64_t rx_ms;             /* uv_now() when received or sampled */
	Krg__Node__NodeLoad l;      /* scalars only: safe to copy */
};

struct krg_proc_table {
	struct krg_services *s;     /* borrowed */
	uint32_t self;
	pid_t krgd;                 /* our pid: krg processes descend from it */
	uv_timer_t timer;
	bool stopped;
	struct node_load loads[KRG_MAX_NODES];
	size_t load_next;           /* where the next period's turn starts */
	bool have_probes;           /* the scheduler gave io_kbps and cpu_used */
	double io_kbps, cpu_used;
	struct krg_proc_table *next_stopped;
	krg_proc_kind_fn kind_fn;   /* what a process is (the migration service's; NULL: all ordinary) */
	void *kind_data;
	krg_proc_orphan_fn orphan_fn; /* migrants adopted here (the migration service's) */
	void *orphan_data;
};

/* net and api have no unregister: a stopped table stays allocated (and
 * reachable from here) so late callbacks find it, marked stopped. */
static struct krg_proc_table *stopped_tables;

static uint64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- node load ---- */

static void sample_self(struct krg_proc_table *t)
{
	struct node_sample ns;
	_cleanup_free_ struct proc_info *v = NULL;
	size_t n = 0, krg = 0, runnable = 0;
	if (procfs_sample_node(&ns) < 0) {
		log_warn("cannot sample node load");
		return;
	}
	if (procfs_scan(t->krgd, &v, &n) == 0)
		for (size_t i = 0; i < n; i++) {
			krg += v[i].krg;
			runnable += v[i].state == 'R' && v[i].pid != t->krgd; /* not us, sampling */
		}
	struct node_load *nl = &t->loads[t->self];
	krg__node__node_load__init(&nl->l);
	nl->l.node = t->self;
	nl->l.cpus = ns.cpus;
	nl->l.load1 = ns.load1;
	nl->l.load5 = ns.load5;
	nl->l.load15 = ns.load15;
	nl->l.mem_total_kb = ns.mem_total_kb;
	nl->l.mem_free_kb = ns.mem_free_kb;
	nl->l.mem_available_kb = ns.mem_available_kb;
	nl->l.procs = (uint32_t)n;
	nl->l.krg_procs = (uint32_t)krg;
	nl->l.has_runnable = true;
	nl->l.runnable = (uint32_t)runnable;
	if (t->have_probes) {
		nl->l.has_io_kbps = nl->l.has_cpu_used = true;
		nl->l.io_kbps = t->io_kbps;
		nl->l.cpu_used = t->cpu_used;
	}
	nl->l.unix_ms = unix_ms();
	nl->have = true;
	nl->rx_ms = uv_now(t->s->loop);
}

static uint64_t load_max_age(const struct krg_proc_table *t);

/* The leader, each period: LOAD_FANOUT of the loads it holds (its own
 * among them), in turn, to every peer, so each hears every node's load
 * every ceil(N / LOAD_FANOUT) periods (load_max_age), through N links. */
static void relay_loads(struct krg_proc_table *t, const uint32_t *peers, size_t n)
{
	uint64_t now = uv_now(t->s->loop);
	Krg__Node__NodeLoad *lp[LOAD_FANOUT];
	uint64_t age[LOAD_FANOUT];
	size_t m = 0;
	for (size_t k = 0; k < KRG_MAX_NODES && m < LOAD_FANOUT; k++) {
		uint32_t id = (t->load_next + k) % KRG_MAX_NODES;
		struct node_load *nl = &t->loads[id];
		if (!nl->have || now - nl->rx_ms > load_max_age(t))
			continue;
		lp[m] = &nl->l;
		age[m++] = now - nl->rx_ms;
		t->load_next = (id + 1) % KRG_MAX_NODES;
	}
	if (!m)
		return;
	Krg__Node__NodeLoadRelay r = KRG__NODE__NODE_LOAD_RELAY__INIT;
	r.n_loads = r.n_age_ms = m;
	r.loads = lp;
	r.age_ms = age;
	uint8_t buf[LOAD_FANOUT * 256];
	size_t len = krg__node__node_load_relay__get_packed_size(&r);
	if (len > sizeof(buf))
		return;
	krg__node__node_load_relay__pack(&r, buf);
	for (size_t k = 0; k < n; k++)
		krg_net_send(t->s->net, peers[k], "node.loads", buf, len);
}

static void load_timer_cb(uv_timer_t *h)
{
	struct krg_proc_table *t = h->data;
	sample_self(t);
	if (!t->loads[t->self].have)
		return;
	uint8_t buf[256];
	size_t len = krg__node__node_load__get_packed_size(&t->loads[t->self].l);
	if (len > sizeof(buf))
		return;
	krg__node__node_load__pack(&t->loads[t->self].l, buf);
	const struct krg_config *cfg = t->s->cfg;
	uint32_t peers[KRG_MAX_NODES];
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_nodes && n < KRG_MAX_NODES; i++) {
		uint32_t id = cfg->nodes[i].id;
		if (id != t->self && krg_net_peer_up(t->s->net, id))
			peers[n++] = id;
	}
	if (!cfg->lazy_links) {
		/* Links kept (lazy_links off): LOAD_FANOUT of them in turn, so
		 * each hears from us every ceil(N / LOAD_FANOUT) periods. */
		size_t m = MIN(n, (size_t)LOAD_FANOUT);
		for (size_t k = 0; k < m; k++)
			krg_net_send(t->s->net, peers[(t->load_next + k) % n], "node.load", buf, len);
		t->load_next = n ? (t->load_next + m) % n : 0;
		return;
	}
	/* Every peer when they are few. Else to the leader only, which
	 * relays: sending to peers in turn would, over a few periods, keep a
	 * link open between every two nodes (lazy links close idle ones). */
	if (n <= LOAD_FANOUT) {
		for (size_t k = 0; k < n; k++)
			krg_net_send(t->s->net, peers[k], "node.load", buf, len);
		return;
	}
	struct krg_cluster_raft_figures rf = { 0 };
	if (t->s->cluster)
		krg_cluster_raft_figures(t->s->cluster, &rf);
	if (rf.leader == t->self)
		relay_loads(t, peers, n);
	else if (rf.leader)
		krg_net_send(t->s->net, rf.leader, "node.load", buf, len);
}

/* How old a peer's load may be and still count: three of its turns. */
static uint64_t load_max_age(const struct krg_proc_table *t)
{
	size_t peers = t->s->cfg->n_nodes > 1 ? t->s->cfg->n_nodes - 1 : 1;
	uint64_t turns = (peers + LOAD_FANOUT - 1) / LOAD_FANOUT;
	return MAX((uint64_t)PICK_MAX_AGE_MS, 3 * LOAD_PERIOD_MS * turns);
}

/* Loads relayed by the leader (clusters of more than 9 nodes): taken when
 * newer than ours; each checked as a node's own. */
static void on_node_loads(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_proc_table *t = data;
	if (t->stopped)
		return;
	Krg__Node__NodeLoadRelay *r = krg__node__node_load_relay__unpack(NULL, msg->len, msg->body);
	if (!r || r->n_loads != r->n_age_ms || r->n_loads > LOAD_FANOUT) {
		log_warn("node %u: malformed node.loads (%zu bytes), dropped", from, msg->len);
		if (r)
			krg__node__node_load_relay__free_unpacked(r, NULL);
		return;
	}
	uint64_t now = uv_now(t->s->loop);
	for (size_t k = 0; k < r->n_loads; k++) {
		const Krg__Node__NodeLoad *l = r->loads[k];
		if (!table_load_valid(l, l->node) || r->age_ms[k] > now) {
			log_warn("node %u: inconsistent load of node %u in node.loads, dropped", from, l->node);
			continue;
		}
		struct node_load *nl = &t->loads[l->node];
		uint64_t rx = now - r->age_ms[k];
		if (l->node == t->self || (nl->have && nl->rx_ms >= rx))
			continue;
		nl->l = *l;
		nl->have = true;
		nl->rx_ms = rx;
	}
	krg__node__node_load_relay__free_unpacked(r, NULL);
}

static void on_node_load(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_proc_table *t = data;
	if (t->stopped)
		return;
	Krg__Node__NodeLoad *l = krg__node__node_load__unpack(NULL, msg->len, msg->body);
	if (!l) {
		log_warn("node %u: malformed node.load (%zu bytes), dropped", from, msg->len);
		return;
	}
	if (!table_load_valid(l, from)) {
		log_warn("node %u: inconsistent node.load (node %u, cpus %g), dropped", from, l->node, l->cpus);
		krg__node__node_load__free_unpacked(l, NULL);
		return;
	}
	struct node_load *nl = &t->loads[from];
	nl->l = *l;
	nl->have = true;
	nl->rx_ms = uv_now(t->s->loop);
	krg__node__node_load__free_unpacked(l, NULL);
}

int krg_proc_table_node(struct krg_proc_table *t, uint32_t id, struct krg_node_figures *out)
{
	if (!t || t->stopped || id >= KRG_MAX_NODES)
		return -EAGAIN;
	uint64_t now = uv_now(t->s->loop);
	const struct node_load *nl = &t->loads[id];
	if (!nl->have || now - nl->rx_ms > load_max_age(t) || nl->l.cpus <= 0)
		return -EAGAIN;
	if (id != t->self &&
	    (krg_cluster_node_state(t->s->cluster, id) != KRG_NODE_UP || !krg_net_peer_up(t->s->net, id)))
		return -EAGAIN;
	*out = (struct krg_node_figures){
		.cpus = nl->l.cpus,
		.load1 = nl->l.load1,
		.mem_total_kb = nl->l.mem_total_kb,
		.mem_available_kb = nl->l.mem_available_kb,
		.krg_procs = nl->l.krg_procs,
		.runnable = nl->l.has_runnable ? nl->l.runnable : 0,
		.io_kbps = nl->l.has_io_kbps ? nl->l.io_kbps : 0,
		.cpu_used = nl->l.has_cpu_used ? nl->l.cpu_used : 0,
		.age_ms = now - nl->rx_ms,
	};
	return 0;
}

void krg_proc_table_set_probes(struct krg_proc_table *t, double io_kbps, double cpu_used)
{
	if (!t || t->stopped || !isfinite(io_kbps) || !isfinite(cpu_used))
		return;
	t->have_probes = true;
	t->io_kbps = io_kbps < 0 ? 0 : io_kbps;
	t->cpu_used = cpu_used < 0 ? 0 : cpu_used;
}

static void on_api_stats(struct krg_api_call *call, void *data)
{
	struct krg_proc_table *t = data;
	if (t->stopped) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	const struct krg_config *cfg = t->s->cfg;
	uint64_t now = uv_now(t->s->loop);
	Krg__Node__NodeStat stats[KRG_MAX_NODES], *ptrs[KRG_MAX_NODES];
	Krg__Node__NodeLoad loads[KRG_MAX_NODES];
	Krg__Node__NodeTotals tot = KRG__NODE__NODE_TOTALS__INIT;
	Krg__Node__NodeStats res = KRG__NODE__NODE_STATS__INIT;
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_nodes; i++) {
		uint32_t id = cfg->nodes[i].id;
		const struct node_load *nl = &t->loads[id];
		if (!nl->have)
			continue;
		enum krg_node_state st = krg_cluster_node_state(t->s->cluster, id);
		krg__node__node_stat__init(&stats[n]);
		loads[n] = nl->l;
		stats[n].load = &loads[n];
		stats[n].age_ms = now > nl->rx_ms ? now - nl->rx_ms : 0;
		stats[n].state = (uint32_t)st;
		ptrs[n] = &stats[n];
		n++;
		if (st != KRG_NODE_UP)
			continue;
		tot.nodes++;
		tot.cpus += nl->l.cpus;
		tot.load1 += nl->l.load1;
		tot.load5 += nl->l.load5;
		tot.load15 += nl->l.load15;
		tot.mem_total_kb += nl->l.mem_total_kb;
		tot.mem_free_kb += nl->l.mem_free_kb;
		tot.mem_available_kb += nl->l.mem_available_kb;
		tot.procs += nl->l.procs;
		tot.krg_procs += nl->l.krg_procs;
	}
	res.n_nodes = n;
	res.nodes = ptrs;
	res.total = &tot;
	size_t len = krg__node__node_stats__get_packed_size(&res);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	krg__node__node_stats__pack(&res, buf);
	krg_api_reply(call, 0, NULL, buf, len);
}

/* ---- process lists ---- */

struct plist {
	Krg__Node__Proc **v;        /* owned, with their strings */
	size_t n, cap;
};

static void proc_free(Krg__Node__Proc *p)
{
	if (!p)
		return;
	free(p->user);
	free(p->state);
	free(p->command);
	free(p);
}

static void plist_free(struct plist *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		proc_free(pl->v[i]);
	free(pl->v);
	*pl = (struct plist){ 0 };
}

static void user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "%s", pw.pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

/* This node's krg processes as uid sees them: all users' when all, else
 * uid's own. Arguments only for root and the owner (real uid). */
static int list_local(struct krg_proc_table *t, uid_t uid, bool all, struct plist *out)
{
	_cleanup_free_ struct proc_info *v = NULL;
	size_t n = 0;
	int r = procfs_scan(t->krgd, &v, &n);
	if (r < 0)
		return r;
	uint64_t up_ms = 0, now = unix_ms();
	procfs_uptime_ms(&up_ms);
	long tck = procfs_clk_tck();
	_cleanup_free_ char *cmd = malloc(CMD_MAX);
	if (!cmd)
		return -ENOMEM;
	struct plist pl = { 0 };
	for (size_t i = 0; i < n; i++) {
		const struct proc_info *pi = &v[i];
		uid_t ruid, suid;
		if (!pi->krg || procfs_uids(pi->pid, &ruid, &suid) < 0)
			continue;
		/* Migration: a migrant here is listed under its own id and home;
		 * deputies (listed where their migrant runs), holders and
		 * workers are not. */
		uint32_t mig_id = 0, mig_home = 0;
		enum krg_proc_kind kind = krg_proc_table_kind(t, pi->pid, &mig_id, &mig_home);
		if (kind == KRG_PROC_HIDDEN)
			continue;
		if (!all && ruid != uid)
			continue;
		bool visible = uid == 0 || uid == ruid;
		char user[64], state[2] = { pi->state, 0 };
		user_name(ruid, user, sizeof(user));
		if (!visible || procfs_cmdline(pi->pid, cmd, CMD_MAX) <= 0)
			snprintf(cmd, CMD_MAX, "[%s]", pi->comm);
		if (pl.n == pl.cap) {
			size_t nc = pl.cap ? pl.cap * 2 : 32;
			Krg__Node__Proc **nv = realloc(pl.v, nc * sizeof(*nv));
			if (!nv)
				goto oom;
			pl.v = nv;
			pl.cap = nc;
		}
		Krg__Node__Proc *p = calloc(1, sizeof(*p));
		if (!p)
			goto oom;
		krg__node__proc__init(p);
		pl.v[pl.n++] = p;
		p->user = strdup(user);
		p->state = strdup(state);
		p->command = strdup(cmd);
		if (!p->user || !p->state || !p->command)
			goto oom;
		p->home = kind == KRG_PROC_MIGRANT ? mig_home : t->self;
		p->node = t->self;
		p->pid = (uint32_t)pi->pid;
		p->id = kind == KRG_PROC_MIGRANT ? mig_id : krg_procid_make(t->self, (uint32_t)pi->pid);
		p->ppid = (uint32_t)(pi->ppid > 0 ? pi->ppid : 0);
		p->uid = (uint32_t)ruid;
		p->cpu_ms = pi->cpu_ticks * 1000 / (uint64_t)tck;
		uint64_t start_ms = pi->start_ticks * 1000 / (uint64_t)tck;
		uint64_t elapsed = up_ms > start_ms ? up_ms - start_ms : 0;
		p->cpu_pct = elapsed ? (double)p->cpu_ms * 100.0 / (double)elapsed : 0;
		p->start_unix_ms = now > elapsed ? now - elapsed : 0;
		p->rss_kb = pi->rss_pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
		p->args_visible = visible;
		p->has_threads = true;
		p->threads = pi->threads;
	}
	*out = pl;
	return 0;
oom:
	plist_free(&pl);
	return -ENOMEM;
}

static int pack_list(Krg__Node__Proc **v, size_t n, const uint32_t *unreach, size_t nu, uint8_t **buf, size_t *len)
{
	Krg__Node__ProcList res = KRG__NODE__PROC_LIST__INIT;
	res.n_procs = n;
	res.procs = v;
	res.n_unreachable = nu;
	res.unreachable = (uint32_t *)unreach;
	*len = krg__node__proc_list__get_packed_size(&res);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	krg__node__proc_list__pack(&res, *buf);
	return 0;
}

static void on_net_list(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_proc_table *t = data;
	if (!krg_net_request_open(net, from, req_id, t->stopped))
		return;
	Krg__Node__ProcListRequest *rq = krg__node__proc_list_request__unpack(NULL, msg->len, msg->body);
	if (!rq)
		return krg_net_refuse_malformed(net, from, req_id, "proc.list request");
	struct plist pl = { 0 };
	int r = list_local(t, (uid_t)rq->uid, rq->all, &pl);
	krg__node__proc_list_request__free_unpacked(rq, NULL);
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	if (r == 0)
		r = pack_list(pl.v, pl.n, NULL, 0, &buf, &len);
	plist_free(&pl);
	krg_net_reply(net, from, req_id, r, r == 0 ? buf : NULL, r == 0 ? len : 0);
}

struct fanout;
struct fan_req {
	struct fanout *f;
	uint32_t node;
};

struct fanout {
	struct krg_api_call *call;          /* answered when pending reaches 0 */
	struct plist local;
	Krg__Node__ProcList *parts[KRG_MAX_NODES]; /* owned, peers' answers */
	size_t n_parts;
	uint32_t unreachable[KRG_MAX_NODES];
	size_t n_unreachable;
	struct fan_req reqs[KRG_MAX_NODES];
	size_t pending;
};

static int cmp_proc(const void *a, const void *b)
{
	const Krg__Node__Proc *x = *(Krg__Node__Proc *const *)a, *y = *(Krg__Node__Proc *const *)b;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void fanout_finish(struct fanout *f)
{
	size_t total = f->local.n;
	for (size_t i = 0; i < f->n_parts; i++)
		total += f->parts[i]->n_procs;
	Krg__Node__Proc **all = malloc((total ? total : 1) * sizeof(*all));
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, k = 0;
	int r = all ? 0 : -ENOMEM;
	if (all) {
		for (size_t i = 0; i < f->local.n; i++)
			all[k++] = f->local.v[i];
		for (size_t i = 0; i < f->n_parts; i++)
			for (size_t j = 0; j < f->parts[i]->n_procs; j++)
				all[k++] = f->parts[i]->procs[j];
		qsort(all, k, sizeof(*all), cmp_proc);
		r = pack_list(all, k, f->unreachable, f->n_unreachable, &buf, &len);
	}
	/* An empty list packs to 0 bytes: send no body rather than an empty one. */
	krg_api_reply(f->call, r, r ? "out of memory" : NULL, r || !len ? NULL : buf, r ? 0 : len);
	free(all);
	plist_free(&f->local);
	for (size_t i = 0; i < f->n_parts; i++)
		krg__node__proc_list__free_unpacked(f->parts[i], NULL);
	free(f);
}

/* A peer's list is accepted only if every entry is about that peer. */
static bool list_valid(const Krg__Node__ProcList *l, uint32_t from)
{
	for (size_t i = 0; i < l->n_procs; i++) {
		const Krg__Node__Proc *p = l->procs[i];
		/* A migrant runs under its home's id, with another pid there. */
		if (p->node != from || p->home >= KRG_MAX_NODES || !p->pid || p->pid > KRG_PID_MASK ||
		    krg_procid_home(p->id) != p->home || krg_procid_pid(p->id) == 0 ||
		    strlen(p->state) != 1 || !isfinite(p->cpu_pct))
			return false;
	}
	return true;
}

static void fan_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct fan_req *rq = data;
	struct fanout *f = rq->f;
	Krg__Node__ProcList *l = NULL;
	if (status == 0) {
		l = krg__node__proc_list__unpack(NULL, reply->len, reply->body);
		if (!l || !list_valid(l, rq->node)) {
			log_warn("node %u: malformed proc.list answer, dropped", rq->node);
			if (l)
				krg__node__proc_list__free_unpacked(l, NULL);
			l = NULL;
		}
	} else
		log_debug("node %u: proc.list failed: %s", rq->node, strerror(-status));
	if (l)
		f->parts[f->n_parts++] = l;
	else
		f->unreachable[f->n_unreachable++] = rq->node;
	if (--f->pending == 0)
		fanout_finish(f);
}

static void on_api_list(struct krg_api_call *call, void *data)
{
	struct krg_proc_table *t = data;
	if (t->stopped) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	bool all = false;
	if (call->len) {
		Krg__Node__ProcListRequest *rq = krg__node__proc_list_request__unpack(NULL, call->len, call->body);
		if (!rq) {
			krg_api_reply(call, -EBADMSG, "malformed proc.list request", NULL, 0);
			return;
		}
		all = rq->all;
		krg__node__proc_list_request__free_unpacked(rq, NULL);
	}
	struct fanout *f = calloc(1, sizeof(*f));
	if (!f) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	f->call = call;
	int r = list_local(t, call->uid, all, &f->local);
	if (r < 0) {
		free(f);
		krg_api_reply(call, r, "cannot read /proc", NULL, 0);
		return;
	}
	Krg__Node__ProcListRequest q = KRG__NODE__PROC_LIST_REQUEST__INIT;
	q.uid = (uint32_t)call->uid; /* from SO_PEERCRED, never from the body */
	q.all = all;
	uint8_t qb[32];
	size_t ql = krg__node__proc_list_request__pack(&q, qb);
	const struct krg_config *cfg = t->s->cfg;
	f->pending = 1; /* held while sending, so no reply finishes early */
	for (size_t i = 0; i < cfg->n_nodes; i++) {
		uint32_t id = cfg->nodes[i].id;
		/* Ask every member we see up, and every node we have a link to:
		 * this node's copy of the table may trail the leader's by a
		 * heartbeat, and a linked node answers for its processes. Not
		 * every node merely reachable on demand (lazy links): a node
		 * removed whose krgd is gone would hold the answer 3 s. */
		if (id == t->self ||
		    (krg_cluster_node_state(t->s->cluster, id) != KRG_NODE_UP && !krg_net_peer_linked(t->s->net, id)))
			continue;
		struct fan_req *fr = &f->reqs[i];
		fr->f = f;
		fr->node = id;
		f->pending++;
		if (krg_net_request(t->s->net, id, "proc.list", qb, ql, LIST_TIMEOUT_MS, fan_reply_cb, fr) < 0) {
			f->pending--;
			f->unreachable[f->n_unreachable++] = id;
		}
	}
	if (--f->pending == 0)
		fanout_finish(f);
}

/* ---- kill ---- */

static const char *kill_error(int r)
{
	switch (r) {
	case -EPERM:
		return "operation not permitted";
	case -ESRCH:
		return "no such process";
	case -EINVAL:
		return "invalid signal or id";
	case -ETIMEDOUT:
		return "its node did not answer in time";
	case -EHOSTUNREACH:
	case -ECONNRESET:
		return "its node is unreachable";
	default:
		return strerror(-r);
	}
}

/* On the node where the process runs: a krg process, and uid may signal it. */
static int kill_local(struct krg_proc_table *t, uint32_t pid, int sig, uid_t uid)
{
	if (sig < 0 || sig > SIGRTMAX)
		return -EINVAL;
	if (pid == 0 || pid > KRG_PID_MASK || (pid_t)pid == t->krgd)
		return -ESRCH;
	/* Hold the process by a pidfd so a recycled pid cannot be hit
	 * between the checks and the signal. */
	int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pfd < 0 && errno != ENOSYS)
		return -ESRCH;
	_cleanup_close_ int fd = pfd;
	if (!procfs_is_descendant((pid_t)pid, t->krgd))
		return -ESRCH; /* other processes of the node are none of krg's business */
	uid_t ruid, suid;
	int r = procfs_uids((pid_t)pid, &ruid, &suid);
	if (r < 0)
		return -ESRCH;
	if (uid != 0 && uid != ruid && uid != suid)
		return -EPERM;
	if (fd >= 0)
		r = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
	else
		r = kill((pid_t)pid, sig);
	return r < 0 ? -errno : 0;
}

/* An adopted migrant's pid here (krg_proc_orphan_fn), or 0. */
static uint32_t orphan_pid(const struct krg_proc_table *t, uint32_t id)
{
	pid_t pid = t->orphan_fn ? t->orphan_fn(t->orphan_data, id) : 0;
	return pid > 0 ? (uint32_t)pid : 0;
}

static void on_net_kill(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_proc_table *t = data;
	if (!krg_net_request_open(net, from, req_id, t->stopped))
		return;
	Krg__Node__ProcKill *k = krg__node__proc_kill__unpack(NULL, msg->len, msg->body);
	if (!k || !table_kill_valid(k)) {
		if (k)
			krg__node__proc_kill__free_unpacked(k, NULL);
		return krg_net_refuse_malformed(net, from, req_id, "proc.kill");
	}
	uint32_t pid = krg_procid_home(k->id) == t->self ? krg_procid_pid(k->id) : orphan_pid(t, k->id);
	int r = !pid ? -ESRCH : kill_local(t, pid, k->signal, k->uid);
	log_info("kill %u signal %d for uid %u from node %u: %s", k->id, k->signal, k->uid, from,
		 r ? strerror(-r) : "sent");
	krg__node__proc_kill__free_unpacked(k, NULL);
	krg_net_reply(net, from, req_id, r, NULL, 0);
}

static void kill_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct krg_api_call *call = data;
	krg_api_reply(call, status, status ? kill_error(status) : NULL, NULL, 0);
}

/* A kill for an id whose home is down: the node that adopted it (if
 * any did) is asked with every other up node; one of them has it. */
struct kill_fan {
	struct krg_api_call *call;
	unsigned pending;
	int best;               /* 0 once one node sent it; else the most telling error */
};

static void kill_fan_done(struct kill_fan *f)
{
	if (--f->pending)
		return;
	krg_api_reply(f->call, f->best, f->best ? kill_error(f->best) : NULL, NULL, 0);
	free(f);
}

static void kill_fan_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct kill_fan *f = data;
	if (status == 0)
		f->best = 0;
	else if (status == -EPERM && f->best == -ESRCH)
		f->best = -EPERM; /* found, and not the caller's */
	kill_fan_done(f);
}

static void kill_fanout(struct krg_proc_table *t, struct krg_api_call *call, const uint8_t *buf, size_t len)
{
	struct kill_fan *f = calloc(1, sizeof(*f));
	if (!f) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	f->call = call;
	f->best = -ESRCH;
	f->pending = 1; /* held while sending */
	const struct krg_config *cfg = t->s->cfg;
	for (size_t i = 0; i < cfg->n_nodes; i++) {
		uint32_t n = cfg->nodes[i].id;
		if (n == t->self || krg_cluster_node_state(t->s->cluster, n) != KRG_NODE_UP)
			continue;
		f->pending++;
		if (krg_net_request(t->s->net, n, "proc.kill", buf, len, KILL_TIMEOUT_MS, kill_fan_cb, f) < 0)
			f->pending--;
	}
	kill_fan_done(f);
}

static void on_api_kill(struct krg_api_call *call, void *data)
{
	struct krg_proc_table *t = data;
	char err[128];
	if (t->stopped) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	Krg__Node__ProcKill *k = krg__node__proc_kill__unpack(NULL, call->len, call->body);
	if (!k) {
		krg_api_reply(call, -EBADMSG, "malformed proc.kill request", NULL, 0);
		return;
	}
	uint32_t id = k->id, node = krg_procid_home(id);
	int sig = k->signal;
	krg__node__proc_kill__free_unpacked(k, NULL);
	if (sig < 0 || sig > SIGRTMAX) {
		krg_api_reply(call, -EINVAL, "invalid signal", NULL, 0);
		return;
	}
	if (krg_procid_pid(id) == 0 || node >= KRG_MAX_NODES) {
		krg_api_reply(call, -EINVAL, "not a krg process id", NULL, 0);
		return;
	}
	if (node == t->self) {
		int r = kill_local(t, krg_procid_pid(id), sig, call->uid);
		krg_api_reply(call, r, r ? kill_error(r) : NULL, NULL, 0);
		return;
	}
	if (!krg_config_node(t->s->cfg, node)) {
		snprintf(err, sizeof(err), "no node %u in this cluster", node);
		krg_api_reply(call, -EHOSTUNREACH, err, NULL, 0);
		return;
	}
	uint32_t opid = orphan_pid(t, id);
	if (opid) {
		int r = kill_local(t, opid, sig, call->uid);
		krg_api_reply(call, r, r ? kill_error(r) : NULL, NULL, 0);
		return;
	}
	enum krg_node_state st = krg_cluster_node_state(t->s->cluster, node);
	Krg__Node__ProcKill q = KRG__NODE__PROC_KILL__INIT;
	q.id = id;
	q.signal = sig;
	q.uid = (uint32_t)call->uid;
	uint8_t buf[32];
	size_t len = krg__node__proc_kill__pack(&q, buf);
	if (st == KRG_NODE_DOWN && t->s->cfg->migrant_outlives_home) {
		kill_fanout(t, call, buf, len);
		return;
	}
	if (st != KRG_NODE_UP) {
		snprintf(err, sizeof(err), "node %u is %s", node, krg_node_state_name(st));
		krg_api_reply(call, -EHOSTDOWN, err, NULL, 0);
		return;
	}
	int r = krg_net_request(t->s->net, node, "proc.kill", buf, len, KILL_TIMEOUT_MS, kill_reply_cb, call);
	if (r < 0)
		krg_api_reply(call, r, kill_error(r), NULL, 0);
}

/* ---- the kind hook ---- */

void krg_proc_table_set_kind(struct krg_proc_table *t, krg_proc_kind_fn fn, void *data)
{
	t->kind_fn = fn;
	t->kind_data = data;
}

void krg_proc_table_set_orphan(struct krg_proc_table *t, krg_proc_orphan_fn fn, void *data)
{
	t->orphan_fn = fn;
	t->orphan_data = data;
}

enum krg_proc_kind krg_proc_table_kind(const struct krg_proc_table *t, pid_t pid, uint32_t *id, uint32_t *home)
{
	return t && t->kind_fn ? t->kind_fn(t->kind_data, pid, id, home) : KRG_PROC_ORDINARY;
}

/* ---- service ---- */

/* Its start hook (lib/service.h): *out its state. */
static int table_start(struct krg_services *s, void **out, char *err, size_t errlen)
{
	struct krg_proc_table *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "process table: out of memory");
		return -ENOMEM;
	}
	t->s = s;
	t->self = s->cfg->node_id;
	t->krgd = getpid();
	int r;
	if ((r = krg_net_handle(s->net, "node.load", on_node_load, t)) < 0 ||
	    (r = krg_net_handle(s->net, "node.loads", on_node_loads, t)) < 0 ||
	    (r = krg_net_handle(s->net, "proc.list", on_net_list, t)) < 0 ||
	    (r = krg_net_handle(s->net, "proc.kill", on_net_kill, t)) < 0 ||
	    (r = krg_api_register(s->api, "proc.list", false, on_api_list, t)) < 0 ||
	    (r = krg_api_register(s->api, "proc.kill", false, on_api_kill, t)) < 0 ||
	    (r = krg_api_register(s->api, "node.stats", false, on_api_stats, t)) < 0) {
		snprintf(err, errlen, "process table: cannot register handlers: %s", strerror(-r));
		/* Handlers may be registered with t: keep it, stopped. */
		t->stopped = true;
		t->next_stopped = stopped_tables;
		stopped_tables = t;
		return r;
	}
	uv_timer_init(s->loop, &t->timer);
	t->timer.data = t;
	uv_timer_start(&t->timer, load_timer_cb, 0, LOAD_PERIOD_MS);
	s->table = t;
	log_info("process table: node load every %u ms, capacity %.2f cpus", LOAD_PERIOD_MS, procfs_cgroup_cpus());
	*out = t;
	return 0;
}

static void table_stop(void *state)
{
	struct krg_proc_table *t = state;
	if (!t || t->stopped)
		return;
	t->stopped = true;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, NULL);
	t->next_stopped = stopped_tables;
	stopped_tables = t;
}

const struct krg_service krg_service_table = {
	.name = "table",
	.start = table_start,
	.stop = table_stop,
	.msg_types = (const char *const[]){ "node.load", "node.loads", "proc.list", "proc.kill", NULL },
	.api_cmds = (const char *const[]){ "proc.list", "proc.kill", "node.stats", NULL },
};
