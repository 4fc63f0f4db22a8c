/* sched_service.c — the scheduler service of one node.
 *
 * Map of this file:
 *   policies   the table of known policies (built-in, then plugins),
 *              their enabled flag and parameter values, refreshed from the
 *              replicated registry "sched" every second and before every
 *              use, so a change made on any node applies on all.
 *   placement  krg_sched_place(): the enabled placement policy, fed with
 *              the process table's load cache.
 *   probes     a 1 s timer samples this node (sched_probe.c).
 *   distant fork  young children of a process with DISTANT_FORK are
 *              placed by least_loaded, through a migration.
 *   verdicts   every move a balancer started here is watched until it can
 *              be judged useful or useless; the policy is told
 *              (self-adaptation, docs/sched.md).
 *   API        "sched.status" (anyone), "sched.ctl" (root: enable,
 *              disable, set, load), "sched.capset" (krg capset).
 *
 * Registry "sched" keys: "policy.NAME.enabled" = "0"|"1",
 * "policy.NAME.PARAM" = a number, "plugins" = "SHA256 PATH", one a line
 * (the SHA-256 of the file the loading node checked: every node loads
 * only a file with the same contents), "refused.NODE" = the plugins that
 * NODE refused, "PATH<TAB>REASON" a line (absent when none).
 * Writes go through the Raft leader (krg_cluster_registry_set forwards
 * them), so every node applies them in the same order.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "proc/migrate.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "proc/sched/capset_msg.h"
#include "proc/sched/sched-int.h"
#include "proc/table.h"
#include "proc/table/table-int.h"

#define PERIOD_MS 1000
#define MAX_PLUGINS 16
#define MAX_WATCH 64

/* A move a balancer started here, watched until it can be judged: its
 * cost comes from the migration service, its gain from how long the
 * migrant then ran on the target at a better CPU share. */
struct watch {
	bool used;
	uint16_t gen;           /* tells a late callback from a reused slot */
	struct sched_policy *pol; /* borrowed: the policy that asked (the table never shrinks) */
	uint32_t id, node;
	pid_t pid;              /* its pid here if this is its home (the deputy stays), else 0 */
	uint64_t pid_start;
	uint64_t t_ms;          /* loop time the move started */
	double share_src;       /* its CPU share here and on the target, in the */
	double share_tgt;       /* loads the balancer was given, at the decision */
	bool done;              /* the migration service told the cost */
	int status;
	uint64_t total_ms, frozen_ms;
	int pidfd;              /* of pid, readable once it exits (-1: not watched) */
	uv_poll_t poll;         /* on pidfd while polling */
	bool polling, closing;
	uint64_t exit_ms;       /* loop time pid exited, 0 while it runs */
};

#define SETTLE_MS 3000          /* a migrant still running is judged after this long there */
#define GIVE_UP_MS 60000        /* ... and at the latest after this */
#define FORGET_MS 300000        /* a move the migration service never answered */

/* A plugin of the cluster state this node refused to load. It is tried
 * again when the file at its path changes (another inode, or a chmod or
 * chown: the ctime), so an admin who fixes it need not restart krgd. */
struct refusal {
	char line[SCHED_SHA256_HEX + SCHED_PATH_MAX]; /* its "SHA256 PATH" line of the registry */
	char why[300];
	dev_t dev;              /* of the file when refused (0: there was none) */
	ino_t ino;
	struct timespec ctime;
};

struct krg_sched {
	struct krg_services *s;     /* borrowed */
	uint32_t self;
	pid_t krgd;
	bool running;
	uv_timer_t timer;
	struct sched_policy pol[SCHED_MAX_POLICIES];
	size_t n_pol;
	struct sched_probes probes;
	struct refusal refused[MAX_PLUGINS]; /* plugins this node refused, until their file changes */
	size_t n_refused;
	bool publishing;            /* our "refused.NODE" on its way through the log */
	uint64_t migrations;        /* started by a balancer on this node */
	uint64_t distant_forks;     /* children placed on another node (DISTANT_FORK) */
	struct sched_exec *exec;    /* placement at execve (sched_exec.c) */
	uint64_t caps_gc_ms;        /* loop time of the last collection of the caps registry */
	uint64_t caps_collected;    /* entries of exited processes dropped by this node */
	struct {
		uint32_t id;
		uint32_t node;          /* where it went */
		uint64_t ms;
	} recent[64];               /* processes a balancer moved lately: left alone a while */
	size_t n_recent;
	struct watch watch[MAX_WATCH];
	/* Eviction (docs/reconfiguration.md): this node is leaving. */
	struct {
		uint32_t id;
		uint64_t ms;
	} evict_sent[256];          /* moves started, retried after EVICT_RETRY_MS */
	size_t n_evict_sent;
	uint64_t evict_log_ms, evict_left_ms;
	unsigned evict_moved;
};

#define EVICT_RETRY_MS 4000

#define RECENT_MS 10000         /* a process a balancer moved stays put this long */
#define ARRIVED_MS 3000         /* a migrant that arrived stays put this long */
#define LAG_MS 2500             /* a move shows in the target's broadcast figures after this */

/* net and api have no unregister: one instance, kept after stop. */
static struct krg_sched the_sched;

/* ---- policies ---- */

static struct sched_policy *policy_find(struct krg_sched *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_pol; i++)
		if (!strcmp(sc->pol[i].ops->name, name))
			return &sc->pol[i];
	return NULL;
}

static bool valid_name(const char *n)
{
	if (!n || !*n || strlen(n) > 64)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
			return false;
	return true;
}

static int policy_add(struct krg_sched *sc, const struct krg_sched_policy_ops *ops, const char *source, char *err,
		      size_t errlen)
{
	if (ops->version != KRG_SCHED_API_VERSION || ops->size < KRG_SCHED_OPS_MIN_SIZE) {
		snprintf(err, errlen, "plugin API version %u (size %u), krgd speaks version %u", ops->version, ops->size,
			 KRG_SCHED_API_VERSION);
		return -EPROTO;
	}
	if (!valid_name(ops->name) || (ops->kind == KRG_SCHED_PLACEMENT && !ops->place) ||
	    (ops->kind == KRG_SCHED_BALANCER && !ops->balance) ||
	    (ops->kind != KRG_SCHED_PLACEMENT && ops->kind != KRG_SCHED_BALANCER) ||
	    ops->n_params > KRG_SCHED_MAX_PARAMS || (ops->n_params && !ops->params)) {
		snprintf(err, errlen, "malformed policy (name, kind, place or params)");
		return -EINVAL;
	}
	for (size_t i = 0; i < ops->n_params; i++)
		if (!valid_name(ops->params[i].name) || !(ops->params[i].min <= ops->params[i].def) ||
		    !(ops->params[i].def <= ops->params[i].max)) {
			snprintf(err, errlen, "malformed parameter %zu of policy %s", i, ops->name);
			return -EINVAL;
		}
	if (policy_find(sc, ops->name)) {
		snprintf(err, errlen, "a policy named %s is already loaded", ops->name);
		return -EEXIST;
	}
	if (sc->n_pol >= SCHED_MAX_POLICIES) {
		snprintf(err, errlen, "too many policies (at most %d)", SCHED_MAX_POLICIES);
		return -ENOSPC;
	}
	struct sched_policy *p = &sc->pol[sc->n_pol];
	memset(p, 0, sizeof(*p)); /* also the verdict counts */
	p->ops = ops;
	if (ops->init) {
		int r = ops->init(&p->state);
		if (r < 0) {
			snprintf(err, errlen, "policy %s failed to initialise: %s", ops->name, strerror(-r));
			return r;
		}
	}
	for (size_t i = 0; i < ops->n_params; i++)
		p->params[i] = ops->params[i].def;
	/* Out of the box as Kerrighed and MOSIX: least-loaded placement and
	 * the mosix balancer, so busy processes spread without any command. */
	p->enabled = ops == &sched_least_loaded || ops == &sched_mosix;
	snprintf(p->source, sizeof(p->source), "%s", source);
	sc->n_pol++;
	return 0;
}

/* Load a plugin: check the file (plugin_file.c) and, on a node that
 * replays the cluster state, that its contents are those the loading node
 * checked (expect, in hex; NULL on the loading node); dlopen the checked
 * descriptor, find the entry point, add its policy. hex: the SHA-256. */
static int plugin_load(struct krg_sched *sc, const char *path, const char *expect, char hex[SCHED_SHA256_HEX],
		       char *err, size_t errlen)
{
	for (size_t i = 0; i < sc->n_pol; i++)
		if (!strcmp(sc->pol[i].source, path)) {
			snprintf(err, errlen, "%s is already loaded (policy %s)", path, sc->pol[i].ops->name);
			return -EEXIST;
		}
	_cleanup_close_ int fd = -1;
	uint8_t sha[SCHED_SHA256_BYTES];
	int r = sched_plugin_open(path, &fd, sha, err, errlen);
	if (r < 0)
		return r;
	sched_sha256_hex(sha, hex);
	if (expect && strcmp(expect, hex)) {
		snprintf(err, errlen, "%s differs from the file loaded by the cluster (SHA-256 %.16s..., expected %.16s...)",
			 path, hex, expect);
		return -EBADMSG;
	}
	/* Through the descriptor checked: the path could name another file by now. */
	char via[64];
	snprintf(via, sizeof(via), "/proc/self/fd/%d", fd);
	void *h = dlopen(via, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return -ENOEXEC;
	}
	/* Kept open as long as krgd runs: the dynamic linker knows the object
	 * by the name /proc/self/fd/N, and a later dlopen of that name with N
	 * reused would return this object instead of opening the new file
	 * (also after a dlclose below, which need not unload it). */
	(void)TAKE_FD(fd);
	krg_sched_policy_entry_fn entry;
	*(void **)&entry = dlsym(h, KRG_SCHED_PLUGIN_SYMBOL);
	const struct krg_sched_policy_ops *ops = entry ? entry() : NULL;
	if (!ops) {
		snprintf(err, errlen, "%s: no %s() or it returned NULL", path, KRG_SCHED_PLUGIN_SYMBOL);
		dlclose(h);
		return -ENOEXEC;
	}
	char why[200];
	r = policy_add(sc, ops, path, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		dlclose(h);
		return r;
	}
	snprintf(sc->pol[sc->n_pol - 1].sha256, sizeof(sc->pol[0].sha256), "%s", hex);
	log_info("sched: loaded policy %s from %s (SHA-256 %s)", ops->name, path, hex);
	return 0; /* never dlclose'd: the policy lives as long as krgd */
}

static bool reg_get(struct krg_sched *sc, const char *key, char *buf, size_t len)
{
	const uint8_t *v;
	size_t n;
	if (!sc->s->cluster || krg_cluster_registry_get(sc->s->cluster, "sched", key, &v, &n) < 0 || n >= len)
		return false;
	memcpy(buf, v, n);
	buf[n] = 0;
	return true;
}

/* A registry line "SHA256 PATH": its parts, or false. */
static bool plugin_line(const char *line, char hex[SCHED_SHA256_HEX], const char **path)
{
	const char *sp = strchr(line, ' ');
	if (!sp || sp - line != SCHED_SHA256_HEX - 1 || sp[1] != '/')
		return false;
	memcpy(hex, line, SCHED_SHA256_HEX - 1);
	hex[SCHED_SHA256_HEX - 1] = 0;
	*path = sp + 1;
	return true;
}

static void file_id(const char *path, struct refusal *f)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		st = (struct stat){ 0 };
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->ctime = st.st_ctim;
}

/* A refusal still stands while the file is the one refused. */
static bool refusal_stands(struct refusal *f, const char *path)
{
	struct refusal now;
	file_id(path, &now);
	return now.dev == f->dev && now.ino == f->ino && now.ctime.tv_sec == f->ctime.tv_sec &&
	       now.ctime.tv_nsec == f->ctime.tv_nsec;
}

static void published_cb(int status, const char *msg, void *data)
{
	struct krg_sched *sc = data;
	(void)status;
	(void)msg;
	sc->publishing = false; /* applied or not, the next sync compares again */
}

/* This node's refusals, in the registry so that every node's `sched
 * status` shows them. */
static void publish_refusals(struct krg_sched *sc)
{
	char want[4096] = "", have[4096] = "", key[32];
	size_t off = 0;
	for (size_t i = 0; i < sc->n_refused && off < sizeof(want); i++) {
		const char *l = sc->refused[i].line, *sp = strchr(l, ' ');
		off += (size_t)snprintf(want + off, sizeof(want) - off, "%s\t%s\n", sp ? sp + 1 : l, sc->refused[i].why);
	}
	snprintf(key, sizeof(key), "refused.%u", sc->self);
	reg_get(sc, key, have, sizeof(have));
	if (sc->publishing || !sc->s->cluster || !strcmp(want, have))
		return;
	sc->publishing = krg_cluster_registry_set(sc->s->cluster, "sched", key, *want ? want : NULL, strlen(want),
						  published_cb, sc) == 0;
}

static void plugins_sync(struct krg_sched *sc)
{
	char buf[4096], hex[SCHED_SHA256_HEX], got[SCHED_SHA256_HEX];
	const char *path;
	/* A refusal whose file changed is forgotten: it is tried again. */
	for (size_t i = 0; i < sc->n_refused;) {
		struct refusal *f = &sc->refused[i];
		if (plugin_line(f->line, hex, &path) && !refusal_stands(f, path))
			*f = sc->refused[--sc->n_refused];
		else
			i++;
	}
	if (reg_get(sc, "plugins", buf, sizeof(buf))) {
		for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			bool known = false;
			bool ok = plugin_line(l, hex, &path);
			for (size_t i = 0; i < sc->n_pol && !known && ok; i++)
				known = !strcmp(sc->pol[i].source, path) && !strcmp(sc->pol[i].sha256, hex);
			for (size_t i = 0; i < sc->n_refused && !known; i++)
				known = !strcmp(sc->refused[i].line, l);
			if (known || sc->n_refused >= MAX_PLUGINS)
				continue;
			struct refusal *f = &sc->refused[sc->n_refused];
			*f = (struct refusal){ 0 };
			snprintf(f->line, sizeof(f->line), "%s", l);
			if (!ok) /* written by a krgd that recorded no SHA-256 */
				snprintf(f->why, sizeof(f->why), "%.200s: no SHA-256 recorded for it; load it again", l);
			else if (plugin_load(sc, path, hex, got, f->why, sizeof(f->why)) == 0)
				continue;
			else
				file_id(path, f);
			log_warn("sched: plugin refused: %s", f->why);
			sc->n_refused++;
		}
	}
	publish_refusals(sc);
}

/* Apply the cluster's state to this node. */
static void sync_state(struct krg_sched *sc)
{
	char buf[4096], key[160];
	plugins_sync(sc);
	for (size_t i = 0; i < sc->n_pol; i++) {
		struct sched_policy *p = &sc->pol[i];
		snprintf(key, sizeof(key), "policy.%s.enabled", p->ops->name);
		if (reg_get(sc, key, buf, sizeof(buf)))
			p->enabled = !strcmp(buf, "1");
		for (size_t k = 0; k < p->ops->n_params; k++) {
			snprintf(key, sizeof(key), "policy.%s.%s", p->ops->name, p->ops->params[k].name);
			if (reg_get(sc, key, buf, sizeof(buf))) {
				char *end;
				double d = strtod(buf, &end);
				if (end != buf && !*end && isfinite(d))
					p->params[k] = d;
			}
		}
	}
}

/* ---- placement ---- */

static size_t gather_nodes(struct krg_sched *sc, struct krg_sched_node *out)
{
	const struct krg_config *cfg = sc->s->cfg;
	size_t n = 0;
	for (uint32_t id = 0; id < KRG_MAX_NODES; id++) {
		struct krg_node_figures f;
		if (!krg_config_node(cfg, id) || krg_proc_table_node(sc->s->table, id, &f) < 0)
			continue;
		/* Nothing goes to a node that is leaving (this one included) or
		 * not yet (or no longer) a member. */
		if (sc->s->cluster && krg_cluster_node_state(sc->s->cluster, id) != KRG_NODE_UP)
			continue;
		out[n++] = (struct krg_sched_node){
			.id = id, .self = id == sc->self, .cpus = f.cpus, .load1 = f.load1,
			.load_norm = f.cpus > 0 ? f.load1 / f.cpus : 0, .mem_total_kb = f.mem_total_kb,
			.mem_available_kb = f.mem_available_kb, .krg_procs = f.krg_procs, .runnable = f.runnable,
			.run_norm = f.cpus > 0 ? f.runnable / f.cpus : 0, .age_ms = f.age_ms,
			/* Ours fresh from the probes, the peers' from their broadcast. */
			.io_kbps = id == sc->self ? sc->probes.node_io_kbps : f.io_kbps,
			.cpu_used = id == sc->self ? sc->probes.node_cpu_used : f.cpu_used,
		};
	}
	return n;
}

uint32_t krg_sched_place(struct krg_sched *sc)
{
	if (!sc || !sc->running)
		return the_sched.self;
	sync_state(sc);
	struct sched_policy *p = NULL;
	for (size_t i = 0; i < sc->n_pol && !p; i++)
		if (sc->pol[i].enabled && sc->pol[i].ops->kind == KRG_SCHED_PLACEMENT)
			p = &sc->pol[i];
	if (!p)
		return sc->self;
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = gather_nodes(sc, nodes);
	uint32_t node;
	if (n == 0 || p->ops->place(p->state, p->params, nodes, n, &node) < 0)
		return sc->self;
	for (size_t i = 0; i < n; i++)
		if (nodes[i].id == node) {
			log_debug("sched: %s placed on node %u", p->ops->name, node);
			return node;
		}
	log_warn("sched: policy %s chose node %u, not an up node; placing here", p->ops->name, node);
	return sc->self;
}

/* ---- balancing ---- */

static bool recently_moved(struct krg_sched *sc, uint32_t id, uint64_t now)
{
	for (size_t i = 0; i < sc->n_recent; i++)
		if (sc->recent[i].id == id && now - sc->recent[i].ms < RECENT_MS)
			return true;
	return false;
}

static void remember_move(struct krg_sched *sc, uint32_t id, uint32_t node, uint64_t now)
{
	size_t slot = sc->n_recent < 64 ? sc->n_recent++ : 0;
	for (size_t i = 0; i < sc->n_recent; i++)
		if (now - sc->recent[i].ms >= RECENT_MS) {
			slot = i;
			break;
		}
	sc->recent[slot].id = id;
	sc->recent[slot].node = node;
	sc->recent[slot].ms = now;
}

/* ---- verdicts (self-adaptation) ---- */

static void watch_closed(uv_handle_t *h)
{
	struct watch *w = h->data;
	close(w->pidfd);
	w->pidfd = -1;
	w->polling = w->closing = false;
	w->used = false;
}

static void watch_free(struct watch *w)
{
	if (w->polling) {
		if (!w->closing) {
			w->closing = true;
			uv_close((uv_handle_t *)&w->poll, watch_closed);
		}
		return; /* the slot is free once closed */
	}
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	w->used = false;
}

/* The deputy (the process's pid at home) exits when the migrant does:
 * its pidfd tells when, to the loop iteration, which a 1 s sample would
 * not (a short job's gain is a fraction of a second). */
static void watch_exit_cb(uv_poll_t *h, int status, int events)
{
	struct watch *w = h->data;
	(void)status;
	(void)events;
	if (!w->exit_ms)
		w->exit_ms = uv_now(h->loop);
	uv_poll_stop(h);
}

static struct watch *watch_new(struct krg_sched *sc, struct sched_policy *p, uint32_t id, uint32_t node, uint64_t now,
			       double s_src, double s_tgt)
{
	struct watch *w = NULL;
	for (size_t i = 0; i < MAX_WATCH && !w; i++)
		if (!sc->watch[i].used)
			w = &sc->watch[i];
	if (!w)
		return NULL; /* more moves in flight than we judge: this one is not */
	uint16_t gen = (uint16_t)(w->gen + 1);
	*w = (struct watch){ .used = true, .gen = gen, .pol = p, .id = id, .node = node, .t_ms = now,
			     .share_src = s_src, .share_tgt = s_tgt, .pidfd = -1 };
	if (krg_procid_home(id) == sc->self) {
		w->pid = (pid_t)krg_procid_pid(id);
		if (sched_proc_stat(w->pid, NULL, &w->pid_start) < 0)
			w->pid = 0;
		else
			w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
	}
	if (w->pidfd >= 0 && uv_poll_init(sc->s->loop, &w->poll, w->pidfd) == 0) {
		w->poll.data = w;
		w->polling = true;
		uv_poll_start(&w->poll, UV_READABLE, watch_exit_cb);
	}
	return w;
}

static void *watch_key(struct krg_sched *sc, struct watch *w)
{
	return (void *)(uintptr_t)((size_t)(w - sc->watch) | (size_t)w->gen << 8);
}

static void watch_done_cb(int status, uint64_t total_ms, uint64_t frozen_ms, void *data)
{
	uintptr_t k = (uintptr_t)data;
	struct watch *w = &the_sched.watch[(k & 0xff) % MAX_WATCH];
	if (!w->used || w->closing || w->gen != (uint16_t)(k >> 8))
		return;
	w->done = true;
	w->status = status;
	w->total_ms = total_ms;
	w->frozen_ms = frozen_ms;
}

/* Useful when the CPU time the migrant gained on the target (the time it
 * ran there times how much bigger its share was there than here) exceeds
 * the migration's total time; useless when it ended before that, when it
 * ended while moving, or when the target ended up busier than this node
 * (the load difference reversed: it would have done better here). */
static void judge(struct krg_sched *sc, uint64_t now)
{
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = 0;
	bool have_nodes = false;
	for (size_t i = 0; i < MAX_WATCH; i++) {
		struct watch *w = &sc->watch[i];
		if (!w->used || w->closing)
			continue;
		if (!w->done) {
			if (now - w->t_ms > FORGET_MS)
				watch_free(w);
			continue;
		}
		struct krg_sched_verdict v = { .id = w->id, .node = w->node, .exited = w->exit_ms != 0,
					       .cost_ms = w->total_ms, .frozen_ms = w->frozen_ms };
		if (w->status < 0) {
			if (!v.exited) {
				watch_free(w); /* it stayed here: nothing to judge */
				continue;
			}
		} else {
			uint64_t arrived = w->t_ms + w->frozen_ms, end = v.exited ? w->exit_ms : now;
			v.ran_ms = end > arrived ? end - arrived : 0;
			double gain_rate = w->share_src > 0 ? fmax(0, w->share_tgt / w->share_src - 1) : 0;
			v.gain_ms = (double)v.ran_ms * gain_rate;
			if (v.exited) {
				v.useful = v.gain_ms > (double)v.cost_ms;
			} else if (v.gain_ms >= 2.0 * (double)v.cost_ms && v.ran_ms >= SETTLE_MS) {
				if (!have_nodes) {
					n = gather_nodes(sc, nodes);
					have_nodes = true;
				}
				const struct krg_sched_node *me = NULL, *t = NULL;
				for (size_t j = 0; j < n; j++) {
					if (nodes[j].self)
						me = &nodes[j];
					if (nodes[j].id == w->node)
						t = &nodes[j];
				}
				v.reversed = me && t && t->cpus > 0 && t->run_norm - me->run_norm > 1.0 / t->cpus;
				v.useful = !v.reversed;
			} else if (v.ran_ms >= GIVE_UP_MS) {
				v.useful = v.gain_ms > (double)v.cost_ms;
			} else {
				continue; /* not yet */
			}
		}
		struct sched_policy *p = w->pol;
		if (v.useful)
			p->useful++;
		else
			p->useless++;
		log_info("sched: %s move of %u to node %u was %s: ran %llu ms there%s, gain %.0f ms, cost %llu ms "
			 "(frozen %llu)%s",
			 p->ops->name, v.id, v.node, v.useful ? "useful" : "useless", (unsigned long long)v.ran_ms,
			 v.exited ? " then exited" : "", v.gain_ms, (unsigned long long)v.cost_ms,
			 (unsigned long long)v.frozen_ms, v.reversed ? ", the target is now busier" : "");
		if (KRG_SCHED_OPS_HAS(p->ops, observe))
			p->ops->observe(p->state, p->params, &v);
		watch_free(w);
	}
}

static void balance(struct krg_sched *sc)
{
	struct sched_policy *p = NULL;
	for (size_t i = 0; i < sc->n_pol && !p; i++)
		if (sc->pol[i].enabled && sc->pol[i].ops->kind == KRG_SCHED_BALANCER)
			p = &sc->pol[i];
	if (!p)
		return;
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	static struct krg_sched_proc procs[SCHED_MAX_PROCS];
	struct krg_sched_move moves[16];
	size_t n = gather_nodes(sc, nodes), np = 0;
	uint64_t now = uv_now(sc->s->loop);
	if (n < 2)
		return;
	/* Our own recent moves are not in the targets' figures yet. */
	for (size_t r = 0; r < sc->n_recent; r++)
		if (now - sc->recent[r].ms < LAG_MS)
			for (size_t i = 0; i < n; i++)
				if (nodes[i].id == sc->recent[r].node) {
					nodes[i].runnable++;
					nodes[i].run_norm = nodes[i].cpus > 0 ? nodes[i].runnable / nodes[i].cpus : 0;
				}
	for (size_t i = 0; i < sc->probes.n && np < SCHED_MAX_PROCS; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		struct krg_caps caps;
		/* Only processes whose rates are known (an I/O-heavy one must
		 * not go before its I/O is seen). Anti ping-pong: what we moved,
		 * or what just arrived, stays put a while (the peers' figures lag
		 * a broadcast behind). */
		if (!q->rated || recently_moved(sc, q->id, now) || (q->migrant && q->age_ms < ARRIVED_MS))
			continue;
		krg_caps_get(sc->s->cluster, sc->self, q->id, krg_procid_home(q->id) == sc->self ? q->pid : 0, &caps);
		if (!(caps.eff & KRG_CAP_CAN_MIGRATE))
			continue;
		procs[np++] = (struct krg_sched_proc){ .id = q->id, .runnable = q->state == 'R', .cpu_pct = q->cpu_pct,
						       .rss_kb = q->rss_kb, .io_kbps = q->io_r_kbps + q->io_w_kbps,
						       .age_ms = q->age_ms };
	}
	int k = p->ops->balance(p->state, p->params, nodes, n, procs, np, moves, sizeof(moves) / sizeof(moves[0]));
	/* The run queues once every move of this round is done: the gain of
	 * a move is measured against staying in that state (the others would
	 * have left anyway), so each migrant's CPU share here is with it back
	 * in this queue, and there with it in that one. */
	double run[KRG_MAX_NODES];
	size_t me = n, tgt[sizeof(moves) / sizeof(moves[0])];
	if (k > (int)(sizeof(moves) / sizeof(moves[0])))
		k = (int)(sizeof(moves) / sizeof(moves[0]));
	for (size_t i = 0; i < n; i++) {
		run[i] = nodes[i].runnable;
		if (nodes[i].self)
			me = i;
	}
	for (int i = 0; i < k; i++) {
		tgt[i] = n;
		for (size_t j = 0; j < n; j++)
			if (nodes[j].id == moves[i].node)
				tgt[i] = j;
		if (me < n && tgt[i] < n) {
			run[me] -= 1;
			run[tgt[i]] += 1;
		}
	}
	for (int i = 0; i < k; i++) {
		char err[256];
		size_t t = tgt[i];
		double s_src = 0, s_tgt = 0;
		if (me < n && t < n) {
			s_src = fmin(1, nodes[me].cpus / fmax(1, run[me] + 1));
			s_tgt = fmin(1, nodes[t].cpus / fmax(1, run[t]));
		}
		struct watch *w = watch_new(sc, p, moves[i].id, moves[i].node, now, s_src, s_tgt);
		int r = krg_migsvc_move(moves[i].id, moves[i].node, w ? watch_done_cb : NULL, w ? watch_key(sc, w) : NULL,
					err, sizeof(err));
		remember_move(sc, moves[i].id, moves[i].node, now);
		if (r < 0) {
			if (w)
				watch_free(w);
			log_info("sched: %s: cannot move %u to node %u: %s", p->ops->name, moves[i].id, moves[i].node, err);
			continue;
		}
		sc->migrations++;
		log_info("sched: %s moves %u to node %u", p->ops->name, moves[i].id, moves[i].node);
	}
}

/* ---- distant fork ---- */

#define YOUNG_MS 3000           /* a child older than this when first seen is not placed */

/* Where child pid (id here, whose parent is pp) of a DISTANT_FORK process
 * goes: 1 and *node another node chosen by least_loaded; 0 it stays (not
 * such a child, no better node); the checks both routes share
 * (sched_exec.c at its exec, the sampler below). Only sets someone set
 * (krg capset) count: with no setting anywhere every process nominally
 * has DISTANT_FORK, and moving every child of every shell would change
 * what krg did before capabilities. */
int sched_distant_target(struct krg_sched *sc, uint32_t id, pid_t pid, pid_t pp, uint32_t *node)
{
	struct sched_policy *ll = policy_find(sc, "least_loaded");
	uint64_t now = uv_now(sc->s->loop);
	if (!ll || !sc->s->cluster || !sc->running || pp <= 1 || pp == sc->krgd || krg_procid_home(id) != sc->self ||
	    recently_moved(sc, id, now) || !table_is_descendant(pp, sc->krgd))
		return 0;
	struct krg_caps pc, cc;
	if (krg_caps_get(sc->s->cluster, sc->self, krg_procid_make(sc->self, (uint32_t)pp), pp, &pc) == 0 ||
	    !(pc.eff & KRG_CAP_DISTANT_FORK))
		return 0;
	krg_caps_get(sc->s->cluster, sc->self, id, pid, &cc);
	if (!(cc.eff & KRG_CAP_CAN_MIGRATE)) {
		log_info("sched: distant fork: %u (child of pid %d) lacks CAN_MIGRATE, stays here", id, (int)pp);
		return 0;
	}
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = gather_nodes(sc, nodes);
	/* Our recent moves are not in the targets' figures yet. */
	for (size_t r = 0; r < sc->n_recent; r++)
		if (now - sc->recent[r].ms < LAG_MS)
			for (size_t j = 0; j < n; j++)
				if (nodes[j].id == sc->recent[r].node) {
					nodes[j].krg_procs++;
					nodes[j].load1 += 1;
					nodes[j].load_norm = nodes[j].cpus > 0 ? nodes[j].load1 / nodes[j].cpus : 0;
				}
	if (n < 2 || ll->ops->place(ll->state, ll->params, nodes, n, node) < 0 || *node == sc->self)
		return 0;
	for (size_t j = 0; j < n; j++)
		if (nodes[j].id == *node)
			return 1;
	return 0;
}

/* A move to node started (ok) or refused: either way the balancer leaves
 * it alone a while, and the next placement counts it on that node. */
void sched_distant_placed(struct krg_sched *sc, uint32_t id, uint32_t node, bool ok)
{
	remember_move(sc, id, node, uv_now(sc->s->loop));
	if (ok)
		sc->distant_forks++;
}

bool krg_sched_exec_hook(void *sched, pid_t tid, uint64_t path)
{
	struct krg_sched *sc = sched;
	return sc && sc->running && sched_exec_hook(sc->exec, tid, path);
}

/* Kerrighed's DISTANT_FORK let fork() create the child on another node.
 * krg places such a child at its next execve (sched_exec.c), caught by
 * the IPC filter. Without the interception (ipc_intercept = off) krgd
 * does the next best thing: a child it sees for the first time, young,
 * whose parent here has DISTANT_FORK effective, is moved at once, before
 * it has built much state. */
static void distant_fork(struct krg_sched *sc)
{
	if (sc->s->intercept)
		return; /* placed at exec */
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		pid_t pp;
		uint32_t node;
		if (q->rated || q->migrant || q->age_ms > YOUNG_MS || sched_proc_stat(q->pid, &pp, NULL) < 0 ||
		    sched_distant_target(sc, q->id, q->pid, pp, &node) <= 0)
			continue;
		char err[256];
		int r = krg_migsvc_move(q->id, node, NULL, NULL, err, sizeof(err));
		sched_distant_placed(sc, q->id, node, r == 0);
		if (r < 0)
			log_info("sched: distant fork: cannot place %u on node %u: %s", q->id, node, err);
		else
			log_info("sched: distant fork: %u (child of pid %d) placed on node %u", q->id, (int)pp, node);
	}
}

/* ---- capabilities: garbage collection ---- */

#define CAPS_GC_MS 10000
#define CAPS_GC_BATCH 64

struct caps_gc {
	struct krg_sched *sc;   /* borrowed */
	char keys[CAPS_GC_BATCH][16];
	size_t n;
};

/* An entry is this node's to drop when the id's home is here (only the
 * home sets entries, and only it can see the process) and no process has
 * its pid any more. A pid already reused is left alone: the start time
 * makes the entry inert, and dropping it could race with a capset for
 * the new process (a delete is not conditional on the value). */
static bool caps_gc_visit(const char *key, const uint8_t *value, size_t len, void *data)
{
	struct caps_gc *g = data;
	char *end, path[32];
	(void)value;
	(void)len;
	unsigned long id = strtoul(key, &end, 10);
	if (*end || end == key || id > UINT32_MAX || krg_procid_home((uint32_t)id) != g->sc->self)
		return false;
	snprintf(path, sizeof(path), "/proc/%u", krg_procid_pid((uint32_t)id));
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return false;
	snprintf(g->keys[g->n++], sizeof(g->keys[0]), "%s", key);
	return g->n == CAPS_GC_BATCH; /* the rest at the next round */
}

static void caps_gc(struct krg_sched *sc, uint64_t now)
{
	static struct caps_gc g;
	if (!sc->s->cluster || (sc->caps_gc_ms && now - sc->caps_gc_ms < CAPS_GC_MS))
		return;
	sc->caps_gc_ms = now;
	g.sc = sc;
	g.n = 0;
	krg_cluster_registry_each(sc->s->cluster, "caps", caps_gc_visit, &g);
	for (size_t i = 0; i < g.n; i++) {
		int r = krg_cluster_registry_set(sc->s->cluster, "caps", g.keys[i], NULL, 0, NULL, NULL);
		if (r < 0) {
			log_debug("sched: cannot drop the caps entry of %s: %s", g.keys[i], strerror(-r));
			break; /* no leader now: next round */
		}
		sc->caps_collected++;
		log_debug("sched: caps entry of %s dropped (the process exited)", g.keys[i]);
	}
}

/* ---- eviction: the leave hook of scheduling ---- */

/* While this node is leaving: start moving every krg process running here
 * to the least loaded member (one per target in turn), each once per
 * EVICT_RETRY_MS; once none is left, tell the cluster the node is empty
 * (leaving -> absent). A process without CAN_MIGRATE is named in the log
 * and keeps the node leaving. */
static void evict(struct krg_sched *sc, uint64_t now)
{
	if (!sc->s->cluster || krg_cluster_node_state(sc->s->cluster, sc->self) != KRG_NODE_LEAVING) {
		sc->n_evict_sent = 0;
		sc->evict_moved = 0;
		return;
	}
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	unsigned planned[KRG_MAX_NODES] = { 0 };
	size_t n = gather_nodes(sc, nodes);
	unsigned left = 0, stuck = 0, started = 0;
	char stuck_names[160] = "";
	bool log_now = now - sc->evict_log_ms >= 2000;
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		uint32_t id = q->id, home;
		if (krg_mig_proc_kind(q->pid, &id, &home) == 2 || !id)
			continue; /* a deputy, holder or worker: not a process of its own */
		left++;
		size_t slot = sc->n_evict_sent;
		for (size_t k = 0; k < sc->n_evict_sent; k++)
			if (sc->evict_sent[k].id == id)
				slot = k;
		if (slot < sc->n_evict_sent && now - sc->evict_sent[slot].ms < EVICT_RETRY_MS)
			continue; /* on its way */
		struct krg_caps caps;
		krg_caps_get(sc->s->cluster, sc->self, id, krg_procid_home(id) == sc->self ? q->pid : 0, &caps);
		if (!(caps.eff & KRG_CAP_CAN_MIGRATE)) {
			stuck++;
			size_t l = strlen(stuck_names);
			snprintf(stuck_names + l, sizeof(stuck_names) - l, "%s%u (%s)", l ? ", " : "", id, q->comm);
			continue;
		}
		size_t best = n;
		for (size_t j = 0; j < n; j++)
			if (!nodes[j].self &&
			    (best == n || nodes[j].krg_procs + planned[j] < nodes[best].krg_procs + planned[best] ||
			     (nodes[j].krg_procs + planned[j] == nodes[best].krg_procs + planned[best] &&
			      nodes[j].load_norm < nodes[best].load_norm)))
				best = j;
		if (best == n) {
			if (log_now)
				log_warn("evict: no member node to move %u (%s) to", id, q->comm);
			continue;
		}
		char err[256];
		int r = krg_migsvc_move(id, nodes[best].id, NULL, NULL, err, sizeof(err));
		if (r < 0) {
			if (log_now)
				log_warn("evict: cannot move %u (%s) to node %u: %s", id, q->comm, nodes[best].id, err);
			continue;
		}
		planned[best]++;
		started++;
		if (slot == sc->n_evict_sent && sc->n_evict_sent < ARRAY_SIZE(sc->evict_sent))
			sc->n_evict_sent++;
		if (slot < ARRAY_SIZE(sc->evict_sent))
			sc->evict_sent[slot] = (typeof(sc->evict_sent[0])){ .id = id, .ms = now };
		sc->evict_moved++;
		log_info("evict: moving %u (%s) to node %u", id, q->comm, nodes[best].id);
	}
	if (log_now && (left || stuck)) {
		sc->evict_log_ms = now;
		log_info("evict: node %u leaving, %u krg process(es) left%s%s", sc->self, left,
			 stuck ? "; cannot migrate (no CAN_MIGRATE): " : "", stuck_names);
	}
	if (left == 0 && !started && now - sc->evict_left_ms >= 1000) {
		sc->evict_left_ms = now;
		int r = krg_cluster_node_left(sc->s->cluster, sc->self, sc->evict_moved);
		if (r < 0)
			log_debug("evict: cannot report node %u empty yet: %s", sc->self, strerror(-r));
	}
}

/* ---- probes ---- */

static void timer_cb(uv_timer_t *t)
{
	struct krg_sched *sc = t->data;
	if (!sc->running)
		return;
	if (sched_probe_sample(&sc->probes, sc->krgd, sc->self) < 0)
		log_debug("sched: cannot sample probes");
	else
		krg_proc_table_set_probes(sc->s->table, sc->probes.node_io_kbps, sc->probes.node_cpu_used);
	sync_state(sc);
	judge(sc, uv_now(sc->s->loop));
	distant_fork(sc);
	evict(sc, uv_now(sc->s->loop));
	balance(sc);
	caps_gc(sc, uv_now(sc->s->loop));
}

/* ---- API ---- */

/* Why node refused the plugin at path (copied into why), or false: it
 * did not (or has not said so yet). This node answers from its own table,
 * the others from what they published. */
static bool refusal_of(struct krg_sched *sc, uint32_t node, const char *path, char *why, size_t len)
{
	char buf[4096], key[32], hex[SCHED_SHA256_HEX];
	const char *p;
	if (node == sc->self) {
		for (size_t i = 0; i < sc->n_refused; i++)
			if ((plugin_line(sc->refused[i].line, hex, &p) ? !strcmp(p, path)
								       : !strcmp(sc->refused[i].line, path))) {
				snprintf(why, len, "%s", sc->refused[i].why);
				return true;
			}
		return false;
	}
	snprintf(key, sizeof(key), "refused.%u", node);
	if (!reg_get(sc, key, buf, sizeof(buf)))
		return false;
	size_t pl = strlen(path);
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!strncmp(l, path, pl) && l[pl] == '\t') {
			snprintf(why, len, "%s", l + pl + 1);
			return true;
		}
	return false;
}

/* The plugins of the cluster state, each with the nodes that refused it. */
static void status_plugins(struct krg_sched *sc, FILE *f, struct krg_json *j)
{
	char buf[4096], hex[SCHED_SHA256_HEX], why[300];
	const char *path;
	if (j)
		krg_json_begin_array(j, "plugins");
	else
		fprintf(f, "\nPlugins (of the cluster state; a node refuses a file not root's alone or not the same):\n");
	if (!reg_get(sc, "plugins", buf, sizeof(buf)))
		buf[0] = 0;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!plugin_line(l, hex, &path)) {
			hex[0] = 0;
			path = l;
		}
		if (j) {
			krg_json_begin_object(j, NULL);
			krg_json_string(j, "path", path);
			krg_json_string(j, "sha256", hex);
			krg_json_begin_array(j, "refused");
		} else {
			fprintf(f, "  %s  sha256 %.16s...\n", path, *hex ? hex : "(none)");
		}
		size_t n_ref = 0;
		for (uint32_t id = 0; id < KRG_MAX_NODES; id++) {
			if (!krg_config_node(sc->s->cfg, id) || !refusal_of(sc, id, path, why, sizeof(why)))
				continue;
			n_ref++;
			if (j) {
				krg_json_begin_object(j, NULL);
				krg_json_uint(j, "node", id);
				krg_json_string(j, "reason", why);
				krg_json_end_object(j);
			} else {
				fprintf(f, "    REFUSED on node %u: %s\n", id, why);
			}
		}
		if (j) {
			krg_json_end_array(j);
			krg_json_end_object(j);
		} else if (!n_ref) {
			fprintf(f, "    refused by no node\n");
		}
	}
	if (j)
		krg_json_end_array(j);
}

static void status_json(struct krg_sched *sc, FILE *f)
{
	struct krg_json j;
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = gather_nodes(sc, nodes);
	const struct krg_sched_node *me = NULL;
	for (size_t i = 0; i < n; i++)
		if (nodes[i].self)
			me = &nodes[i];
	krg_json_init(&j, f);
	krg_json_begin_object(&j, NULL);
	krg_json_uint(&j, "node", sc->self);
	krg_json_begin_object(&j, "probes");
	if (me) {
		krg_json_double(&j, "cpus", me->cpus);
		krg_json_double(&j, "load1", me->load1);
		krg_json_double(&j, "cpu_load_norm", me->load_norm);
		krg_json_uint(&j, "mem_total_kb", me->mem_total_kb);
		krg_json_uint(&j, "mem_available_kb", me->mem_available_kb);
	} else {
		krg_json_null(&j, "cpus");
		krg_json_null(&j, "cpu_load_norm");
	}
	krg_json_double(&j, "cpu_used", sc->probes.node_cpu_used);
	krg_json_double(&j, "cpu_used_norm", me && me->cpus > 0 ? sc->probes.node_cpu_used / me->cpus : 0);
	krg_json_double(&j, "io_kbps", sc->probes.node_io_kbps);
	krg_json_uint(&j, "runnable", me ? me->runnable : 0);
	krg_json_uint(&j, "migrations", sc->migrations);
	krg_json_uint(&j, "distant_forks", sc->distant_forks);
	krg_json_uint(&j, "caps_collected", sc->caps_collected);
	krg_json_end_object(&j);
	krg_json_begin_array(&j, "processes");
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "id", q->id);
		krg_json_uint(&j, "pid", (uint64_t)q->pid);
		krg_json_string(&j, "comm", q->comm);
		krg_json_double(&j, "cpu_pct", q->cpu_pct);
		krg_json_uint(&j, "rss_kb", q->rss_kb);
		krg_json_string(&j, "state", (char[2]){ q->state, 0 });
		krg_json_double(&j, "io_read_kbps", q->io_r_kbps);
		krg_json_double(&j, "io_write_kbps", q->io_w_kbps);
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_begin_array(&j, "nodes");
	for (size_t i = 0; i < n; i++) {
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "id", nodes[i].id);
		krg_json_double(&j, "cpus", nodes[i].cpus);
		krg_json_double(&j, "load1", nodes[i].load1);
		krg_json_double(&j, "cpu_load_norm", nodes[i].load_norm);
		krg_json_uint(&j, "mem_available_kb", nodes[i].mem_available_kb);
		krg_json_uint(&j, "krg_procs", nodes[i].krg_procs);
		krg_json_uint(&j, "runnable", nodes[i].runnable);
		krg_json_double(&j, "run_norm", nodes[i].run_norm);
		krg_json_double(&j, "io_kbps", nodes[i].io_kbps);
		krg_json_double(&j, "cpu_used", nodes[i].cpu_used);
		krg_json_uint(&j, "age_ms", nodes[i].age_ms);
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_begin_array(&j, "policies");
	for (size_t i = 0; i < sc->n_pol; i++) {
		const struct sched_policy *p = &sc->pol[i];
		krg_json_begin_object(&j, NULL);
		krg_json_string(&j, "name", p->ops->name);
		krg_json_string(&j, "kind", p->ops->kind == KRG_SCHED_BALANCER ? "balancer" : "placement");
		krg_json_bool(&j, "enabled", p->enabled);
		krg_json_string(&j, "source", p->source);
		krg_json_string(&j, "description", p->ops->description ? p->ops->description : "");
		krg_json_begin_object(&j, "params");
		for (size_t k = 0; k < p->ops->n_params; k++)
			krg_json_double(&j, p->ops->params[k].name, p->params[k]);
		krg_json_end_object(&j);
		if (KRG_SCHED_OPS_HAS(p->ops, adapted)) {
			double a[KRG_SCHED_MAX_PARAMS];
			p->ops->adapted(p->state, p->params, a);
			krg_json_begin_object(&j, "adapted");
			for (size_t k = 0; k < p->ops->n_params; k++)
				krg_json_double(&j, p->ops->params[k].name, a[k]);
			krg_json_end_object(&j);
		}
		if (p->ops->kind == KRG_SCHED_BALANCER) {
			krg_json_begin_object(&j, "verdicts");
			krg_json_uint(&j, "useful", p->useful);
			krg_json_uint(&j, "useless", p->useless);
			krg_json_end_object(&j);
		}
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	status_plugins(sc, f, &j);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void status_text(struct krg_sched *sc, FILE *f)
{
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = gather_nodes(sc, nodes);
	fprintf(f, "Probes of node %u:\n", sc->self);
	for (size_t i = 0; i < n; i++)
		if (nodes[i].self) {
			fprintf(f, "  cpu.load_norm     %8.2f   load1 %.2f / cpus %.2f (cgroup quota)\n", nodes[i].load_norm,
				nodes[i].load1, nodes[i].cpus);
			fprintf(f, "  cpu.used          %8.2f   CPUs busy with this node's processes (%.0f%% of capacity)\n",
				the_sched.probes.node_cpu_used,
				nodes[i].cpus > 0 ? 100.0 * sc->probes.node_cpu_used / nodes[i].cpus : 0);
			fprintf(f, "  mem.available_mib %8llu   of %llu\n",
				(unsigned long long)(nodes[i].mem_available_kb / 1024),
				(unsigned long long)(nodes[i].mem_total_kb / 1024));
		}
	fprintf(f, "  io.node_kbps      %8.1f   rchar + wchar of every process\n", sc->probes.node_io_kbps);
	fprintf(f, "  migrations        %8llu   started by a balancer on this node\n",
		(unsigned long long)sc->migrations);
	fprintf(f, "  distant_forks     %8llu   children placed on another node (DISTANT_FORK)\n",
		(unsigned long long)sc->distant_forks);
	fprintf(f, "\nProcesses (krg processes of node %u):\n", sc->self);
	fprintf(f, "  %-10s %-7s %6s %9s %10s %10s  %s\n", "ID", "PID", "%CPU", "RSS_KB", "IO_R_KB/s", "IO_W_KB/s",
		"COMMAND");
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		fprintf(f, "  %-10u %-7d %6.1f %9llu %10.1f %10.1f  %s\n", q->id, (int)q->pid, q->cpu_pct,
			(unsigned long long)q->rss_kb, q->io_r_kbps, q->io_w_kbps, q->comm);
	}
	fprintf(f, "\nNodes (remote load cache):\n  %-5s %6s %6s %9s %5s %8s %8s %9s %10s %5s\n", "NODE", "CPUS",
		"LOAD1", "LOAD/CPU", "RUN", "RUN/CPU", "CPU_USED", "IO_KB/s", "AVAIL_MiB", "KRG");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-5u %6.2f %6.2f %9.2f %5u %8.2f %8.2f %9.1f %10llu %5u\n", nodes[i].id, nodes[i].cpus,
			nodes[i].load1, nodes[i].load_norm, nodes[i].runnable, nodes[i].run_norm, nodes[i].cpu_used,
			nodes[i].io_kbps, (unsigned long long)(nodes[i].mem_available_kb / 1024), nodes[i].krg_procs);
	fprintf(f, "\nPolicies:\n  %-14s %-10s %-8s %-52s %s\n", "NAME", "KIND", "STATE", "PARAMS", "SOURCE");
	for (size_t i = 0; i < sc->n_pol; i++) {
		const struct sched_policy *p = &sc->pol[i];
		char params[256] = "-";
		size_t off = 0;
		for (size_t k = 0; k < p->ops->n_params && off < sizeof(params); k++)
			off += (size_t)snprintf(params + off, sizeof(params) - off, "%s%s=%g", k ? "," : "",
						p->ops->params[k].name, p->params[k]);
		fprintf(f, "  %-14s %-10s %-8s %-52s %s\n", p->ops->name,
			p->ops->kind == KRG_SCHED_BALANCER ? "balancer" : "placement", p->enabled ? "enabled" : "disabled",
			params, p->source);
	}
	/* What the balancers made of their own settings: the values they use
	 * now beside the configured ones, and the verdicts that moved them. */
	for (size_t i = 0; i < sc->n_pol; i++) {
		const struct sched_policy *p = &sc->pol[i];
		if (p->ops->kind != KRG_SCHED_BALANCER)
			continue;
		fprintf(f, "\nSelf-adaptation of %s (moves started here: %llu useful, %llu useless):\n", p->ops->name,
			(unsigned long long)p->useful, (unsigned long long)p->useless);
		if (!KRG_SCHED_OPS_HAS(p->ops, adapted)) {
			fprintf(f, "  (this policy does not adapt)\n");
			continue;
		}
		double a[KRG_SCHED_MAX_PARAMS];
		p->ops->adapted(p->state, p->params, a);
		fprintf(f, "  %-18s %12s %12s\n", "PARAM", "CONFIGURED", "ADAPTED");
		for (size_t k = 0; k < p->ops->n_params; k++)
			fprintf(f, "  %-18s %12g %12g%s\n", p->ops->params[k].name, p->params[k], a[k],
				a[k] != p->params[k] ? "   (adapted)" : "");
	}
	status_plugins(sc, f, NULL);
}

static void on_api_status(struct krg_api_call *call, void *data)
{
	struct krg_sched *sc = data;
	if (!sc->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	sync_state(sc);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	if (call->len == 4 && !memcmp(call->body, "json", 4))
		status_json(sc, f);
	else
		status_text(sc, f);
	fclose(f);
	krg_api_reply(call, 0, NULL, buf, len);
	free(buf);
}

/* A change is answered once this node applied it (a follower applies the
 * leader's commit a moment later), so the caller's next command here sees
 * it. */
/* Who waits for an answer: a local API call, or a peer's request (a
 * capset forwarded to the process's home node). */
struct origin {
	struct krg_api_call *call;
	uint32_t from;
	uint64_t req_id;
};

/* A peer's answer travels as status 0 with "STATUS TEXT" in the body, so
 * the reason reaches the user unchanged. */
static void answer(struct krg_sched *sc, struct origin o, int status, const char *text, const void *body, size_t len)
{
	if (o.call) {
		krg_api_reply(o.call, status, text, body, len);
		return;
	}
	char buf[1024];
	int n = status ? snprintf(buf, sizeof(buf), "%d %s", status, text ? text : "")
		       : snprintf(buf, sizeof(buf), "0 %.*s", (int)(len < 1000 ? len : 1000), body ? (const char *)body : "");
	krg_net_reply(sc->s->net, o.from, o.req_id, 0, buf, (size_t)n);
}

struct pending_set {
	struct origin o;
	struct krg_sched *sc;
	uv_timer_t timer;
	int tries;
	char reg[16], key[160], value[4096];
};

static bool applied_here(struct pending_set *p)
{
	const uint8_t *v;
	size_t n;
	if (krg_cluster_registry_get(p->sc->s->cluster, p->reg, p->key, &v, &n) < 0)
		return false;
	return n == strlen(p->value) && !memcmp(v, p->value, n);
}

static void pending_free(uv_handle_t *h)
{
	free(h->data);
}

static void pending_tick(uv_timer_t *t)
{
	struct pending_set *p = t->data;
	if (!applied_here(p) && ++p->tries < 100 && p->sc->running)
		return;
	answer(p->sc, p->o, 0, NULL, NULL, 0);
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, pending_free);
}

static void committed_cb(int status, const char *msg, void *data)
{
	struct pending_set *p = data;
	if (status || applied_here(p) || !p->sc->running) {
		answer(p->sc, p->o, status, status ? (msg ? msg : strerror(-status)) : NULL, NULL, 0);
		free(p);
		return;
	}
	uv_timer_init(p->sc->s->loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, pending_tick, 20, 20);
}

static void reg_set_answer(struct krg_sched *sc, struct origin o, const char *reg, const char *key,
			   const char *value)
{
	if (!sc->s->cluster) {
		answer(sc, o, -ENOTCONN, "no cluster state on this node", NULL, 0);
		return;
	}
	struct pending_set *p = calloc(1, sizeof(*p));
	if (!p) {
		answer(sc, o, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	p->o = o;
	p->sc = sc;
	snprintf(p->reg, sizeof(p->reg), "%s", reg);
	snprintf(p->key, sizeof(p->key), "%s", key);
	snprintf(p->value, sizeof(p->value), "%s", value);
	int r = krg_cluster_registry_set(sc->s->cluster, reg, key, value, strlen(value), committed_cb, p);
	if (r < 0) {
		free(p);
		answer(sc, o, r, r == -EAGAIN ? "no leader (no quorum?); try again" : strerror(-r), NULL, 0);
	}
}

static void reg_set_reply(struct krg_sched *sc, struct krg_api_call *call, const char *reg, const char *key,
			  const char *value)
{
	reg_set_answer(sc, (struct origin){ .call = call }, reg, key, value);
}

/* Body: "enable NAME" | "disable NAME" | "set NAME.PARAM VALUE" | "load PATH". */
static void on_api_ctl(struct krg_api_call *call, void *data)
{
	struct krg_sched *sc = data;
	char body[1024], line[600], key[160];
	if (!sc->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	if (call->len == 0 || call->len >= sizeof(body)) {
		krg_api_reply(call, -EINVAL, "malformed sched.ctl request", NULL, 0);
		return;
	}
	memcpy(body, call->body, call->len);
	body[call->len] = 0;
	sync_state(sc);
	char *arg = strchr(body, ' ');
	if (!arg) {
		krg_api_reply(call, -EINVAL, "malformed sched.ctl request", NULL, 0);
		return;
	}
	*arg++ = 0;
	if (!strcmp(body, "enable") || !strcmp(body, "disable")) {
		bool on = body[0] == 'e';
		struct sched_policy *p = policy_find(sc, arg);
		if (!p) {
			snprintf(line, sizeof(line), "no policy '%.64s' (krgadm sched status lists them)", arg);
			krg_api_reply(call, -ENOENT, line, NULL, 0);
			return;
		}
		/* One placement policy at a time: enabling one disables the
		 * others (their own log entries, applied in order after it). */
		snprintf(key, sizeof(key), "policy.%s.enabled", p->ops->name);
		reg_set_reply(sc, call, "sched", key, on ? "1" : "0");
		if (on && sc->s->cluster)
			for (size_t i = 0; i < sc->n_pol; i++)
				if (&sc->pol[i] != p && sc->pol[i].enabled && sc->pol[i].ops->kind == p->ops->kind) {
					snprintf(key, sizeof(key), "policy.%s.enabled", sc->pol[i].ops->name);
					krg_cluster_registry_set(sc->s->cluster, "sched", key, "0", 1, NULL, NULL);
				}
		return;
	}
	if (!strcmp(body, "set")) {
		char *val = strchr(arg, ' '), *dot = strchr(arg, '.');
		if (!val || !dot || dot > val) {
			krg_api_reply(call, -EINVAL, "usage: set POLICY.PARAM VALUE", NULL, 0);
			return;
		}
		*val++ = 0;
		*dot++ = 0;
		struct sched_policy *p = policy_find(sc, arg);
		if (!p) {
			snprintf(line, sizeof(line), "no policy '%.64s' (krgadm sched status lists them)", arg);
			krg_api_reply(call, -ENOENT, line, NULL, 0);
			return;
		}
		const struct krg_sched_param_def *d = NULL;
		for (size_t k = 0; k < p->ops->n_params; k++)
			if (!strcmp(p->ops->params[k].name, dot))
				d = &p->ops->params[k];
		if (!d) {
			snprintf(line, sizeof(line), "policy %s has no parameter '%.64s'", p->ops->name, dot);
			krg_api_reply(call, -ENOENT, line, NULL, 0);
			return;
		}
		char *end;
		double v = strtod(val, &end);
		if (end == val || *end || !isfinite(v) || v < d->min || v > d->max) {
			snprintf(line, sizeof(line), "%s.%s: '%.64s' is not a number in [%g, %g]", p->ops->name, d->name,
				 val, d->min, d->max);
			krg_api_reply(call, -ERANGE, line, NULL, 0);
			return;
		}
		char num[64];
		snprintf(key, sizeof(key), "policy.%s.%s", p->ops->name, d->name);
		snprintf(num, sizeof(num), "%.17g", v);
		reg_set_reply(sc, call, "sched", key, num);
		return;
	}
	if (!strcmp(body, "load")) {
		char err[512], hex[SCHED_SHA256_HEX];
		int r = plugin_load(sc, arg, NULL, hex, err, sizeof(err));
		if (r < 0) {
			log_warn("sched: plugin refused: %s", err);
			krg_api_reply(call, r, err, NULL, 0);
			return;
		}
		/* Loaded here: now every node, by the registry, with the
		 * contents every node must find at that path. */
		char list[4096] = "";
		reg_get(sc, "plugins", list, sizeof(list));
		size_t l = strlen(list);
		if (l + strlen(hex) + strlen(arg) + 3 >= sizeof(list)) {
			krg_api_reply(call, -ENOSPC, "too many plugins", NULL, 0);
			return;
		}
		snprintf(list + l, sizeof(list) - l, "%s%s %s", l ? "\n" : "", hex, arg);
		reg_set_reply(sc, call, "sched", "plugins", list);
		return;
	}
	snprintf(line, sizeof(line), "unknown sched.ctl operation '%.32s'", body);
	krg_api_reply(call, -EINVAL, line, NULL, 0);
}

static void caps_names(uint32_t mask, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = 0;
	for (uint32_t c = 1; c <= KRG_CAP_CHECKPOINTABLE && off < len; c <<= 1)
		if (mask & c)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", krg_cap_name(c));
	if (!off)
		snprintf(buf, len, "-");
}

/* Body: "TARGET OP [CAP]": TARGET "self" (the caller, which then execs
 * the command) or a cluster id; OP "e" (enable), "d" (drop), "show". */
static void capset_fwd_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct krg_api_call *call = data;
	char buf[1024], line[160];
	if (status) {
		snprintf(line, sizeof(line), "the process's home node did not answer: %s", strerror(-status));
		krg_api_reply(call, status, line, NULL, 0);
		return;
	}
	size_t n = reply->len < sizeof(buf) - 1 ? reply->len : sizeof(buf) - 1;
	memcpy(buf, reply->body, n);
	buf[n] = 0;
	char *sp = strchr(buf, ' ');
	long st = strtol(buf, NULL, 10);
	if (!sp || st > 0 || st < -4095) {
		krg_api_reply(call, -EBADMSG, "malformed answer from the home node", NULL, 0);
		return;
	}
	sp++;
	if (st)
		krg_api_reply(call, (int)st, sp, NULL, 0);
	else
		krg_api_reply(call, 0, NULL, sp, strlen(sp));
}

static void capset_do(struct krg_sched *sc, struct origin o, uid_t uid, pid_t caller, const struct capset_req *q)
{
	char line[400];
	const char *target = q->target, *op = q->op, *capn = q->cap;
	uint32_t id;
	pid_t pid;
	if (q->self) {
		pid = caller;
		id = krg_procid_make(sc->self, (uint32_t)pid);
	} else {
		if (krg_procid_parse(target, &id) < 0 || krg_procid_pid(id) == 0) {
			snprintf(line, sizeof(line), "'%s': not a krg process id (see krg ps)", target);
			answer(sc, o, -EINVAL, line, NULL, 0);
			return;
		}
		uint32_t home = krg_procid_home(id);
		if (home != sc->self) {
			/* Its entry is checked against the process at home. */
			char fwd[320];
			if (!o.call || !krg_config_node(sc->s->cfg, home) || !krg_net_peer_up(sc->s->net, home)) {
				snprintf(line, sizeof(line), "process %u: its home node %u is not reachable", id, home);
				answer(sc, o, -EHOSTUNREACH, line, NULL, 0);
				return;
			}
			int n = snprintf(fwd, sizeof(fwd), "%u %s %s%s%s", (unsigned)uid, target, op, *capn ? " " : "", capn);
			int r = krg_net_request(sc->s->net, home, "sched.capset", fwd, (size_t)n, 5000, capset_fwd_cb, o.call);
			if (r < 0) {
				snprintf(line, sizeof(line), "process %u: cannot reach node %u: %s", id, home, strerror(-r));
				answer(sc, o, r, line, NULL, 0);
			}
			return;
		}
		pid = (pid_t)krg_procid_pid(id);
		if (pid <= 1 || pid == sc->krgd || !table_is_descendant(pid, sc->krgd)) {
			snprintf(line, sizeof(line), "process %u: no such krg process", id);
			answer(sc, o, -ESRCH, line, NULL, 0);
			return;
		}
	}
	uid_t ruid, suid;
	if (table_proc_uids(pid, &ruid, &suid) < 0) {
		snprintf(line, sizeof(line), "process %u: no such process", id);
		answer(sc, o, -ESRCH, line, NULL, 0);
		return;
	}
	if (uid != 0 && uid != ruid && uid != suid) {
		snprintf(line, sizeof(line), "process %u: operation not permitted (not yours)", id);
		answer(sc, o, -EPERM, line, NULL, 0);
		return;
	}
	struct krg_caps k;
	krg_caps_get(sc->s->cluster, sc->self, id, pid, &k);
	if (!strcmp(op, "show")) {
		char e[64], p[64], ie[64], ip[64];
		caps_names(k.eff, e, sizeof(e));
		caps_names(k.perm, p, sizeof(p));
		caps_names(k.inh_eff, ie, sizeof(ie));
		caps_names(k.inh_perm, ip, sizeof(ip));
		int n = snprintf(line, sizeof(line),
				 "id %u\neffective %s\npermitted %s\ninheritable_effective %s\ninheritable_permitted %s\n",
				 id, e, p, ie, ip);
		answer(sc, o, 0, NULL, line, (size_t)n);
		return;
	}
	uint32_t cap = krg_cap_parse(capn);
	if (!cap || (strcmp(op, "e") && strcmp(op, "d"))) {
		snprintf(line, sizeof(line), "unknown capability '%s' (CAN_MIGRATE, DISTANT_FORK, CHECKPOINTABLE)", capn);
		answer(sc, o, -EINVAL, line, NULL, 0);
		return;
	}
	if (op[0] == 'e') {
		if (uid != 0 && !(k.perm & cap)) {
			snprintf(line, sizeof(line), "cannot grant %s to process %u: not in its permitted set (only root can)",
				 capn, id);
			answer(sc, o, -EPERM, line, NULL, 0);
			return;
		}
		k.eff |= cap;
		k.inh_eff |= cap;
		if (uid == 0) {
			k.perm |= cap;
			k.inh_perm |= cap;
		}
	} else {
		k.eff &= ~cap;
		k.perm &= ~cap;
		k.inh_eff &= ~cap;
		k.inh_perm &= ~cap;
	}
	uint64_t start = 0;
	if (sched_proc_stat(pid, NULL, &start) < 0) {
		snprintf(line, sizeof(line), "process %u: no such process", id);
		answer(sc, o, -ESRCH, line, NULL, 0);
		return;
	}
	char key[16], val[96];
	snprintf(key, sizeof(key), "%u", id);
	snprintf(val, sizeof(val), "%u %u %u %u %llu", k.eff, k.perm, k.inh_eff, k.inh_perm, (unsigned long long)start);
	log_info("sched: capabilities of %u set to %s by uid %u", id, val, (unsigned)uid);
	reg_set_answer(sc, o, "caps", key, val);
}

static void on_api_capset(struct krg_api_call *call, void *data)
{
	struct krg_sched *sc = data;
	struct capset_req q;
	if (!sc->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	if (capset_parse(call->body, call->len, false, &q) < 0) {
		krg_api_reply(call, -EINVAL, "malformed sched.capset request", NULL, 0);
		return;
	}
	capset_do(sc, (struct origin){ .call = call }, call->uid, call->pid, &q);
}

/* A peer forwarded "UID TARGET OP [CAP]" for a process whose home is here;
 * the uid is what the peer's krgd got from SO_PEERCRED. */
static void on_net_capset(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_sched *sc = data;
	struct capset_req q;
	if (!req_id)
		return;
	struct origin o = { .from = from, .req_id = req_id };
	if (!sc->running) {
		answer(sc, o, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	if (capset_parse(msg->body, msg->len, true, &q) < 0) {
		log_warn("node %u: malformed sched.capset (%zu bytes), refused", from, msg->len);
		answer(sc, o, -EINVAL, "malformed sched.capset request", NULL, 0);
		return;
	}
	capset_do(sc, o, (uid_t)q.uid, 0, &q);
}

/* ---- start / stop ---- */

int krg_sched_start(struct krg_services *s, struct krg_sched **out, char *err, size_t errlen)
{
	struct krg_sched *sc = &the_sched;
	if (sc->s) {
		snprintf(err, errlen, "sched: started twice");
		return -EALREADY;
	}
	sc->s = s;
	sc->self = s->cfg->node_id;
	sc->krgd = getpid();
	int r;
	if ((r = policy_add(sc, &sched_least_loaded, "builtin", err, errlen)) < 0 ||
	    (r = policy_add(sc, &sched_round_robin, "builtin", err, errlen)) < 0 ||
	    (r = policy_add(sc, &sched_mosix, "builtin", err, errlen)) < 0)
		return r;
	if ((r = krg_api_register(s->api, "sched.status", false, on_api_status, sc)) < 0 ||
	    (r = krg_api_register(s->api, "sched.ctl", true, on_api_ctl, sc)) < 0 ||
	    (r = krg_api_register(s->api, "sched.capset", false, on_api_capset, sc)) < 0 ||
	    (r = krg_net_handle(s->net, "sched.capset", on_net_capset, sc)) < 0) {
		snprintf(err, errlen, "sched: cannot register API commands: %s", strerror(-r));
		return r;
	}
	if ((r = sched_exec_new(sc, s->loop, sc->self, &sc->exec)) < 0) {
		snprintf(err, errlen, "sched: %s", strerror(-r));
		return r;
	}
	uv_timer_init(s->loop, &sc->timer);
	sc->timer.data = sc;
	uv_timer_start(&sc->timer, timer_cb, 0, PERIOD_MS);
	sc->running = true;
	*out = sc;
	return 0;
}

void krg_sched_stop(struct krg_sched *sc)
{
	if (!sc || !sc->running)
		return;
	sc->running = false;
	uv_timer_stop(&sc->timer);
	uv_close((uv_handle_t *)&sc->timer, NULL);
	sched_exec_free(sc->exec);
	sc->exec = NULL;
	for (size_t i = 0; i < MAX_WATCH; i++)
		if (sc->watch[i].used)
			watch_free(&sc->watch[i]);
	for (size_t i = 0; i < sc->n_pol; i++)
		if (sc->pol[i].ops->fini)
			sc->pol[i].ops->fini(sc->pol[i].state);
	sched_probes_free(&sc->probes);
}
