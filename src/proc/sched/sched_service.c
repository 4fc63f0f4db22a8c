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
#include "proc/sched/sched_service-int.h"

struct krg_sched the_sched;

/* ---- moving: through the mover the migration service registered ---- */

void krg_sched_set_mover(struct krg_sched *sc, krg_sched_mover_fn fn, void *svc)
{
	sc->mover = fn;
	sc->mover_svc = svc;
}

enum krg_proc_kind sched_proc_kind(struct krg_sched *sc, pid_t pid, uint32_t *id, uint32_t *home)
{
	return krg_proc_table_kind(sc->s->table, pid, id, home);
}

int sched_move(struct krg_sched *sc, uint32_t id, uint32_t to, krg_sched_move_done_fn done, void *data, char *err,
	       size_t errlen)
{
	if (!sc->mover) {
		snprintf(err, errlen, "no migration service");
		return -ENOSYS;
	}
	return sc->mover(sc->mover_svc, id, to, false, done, data, err, errlen);
}

/* ---- policies ---- */

struct sched_policy *sched_policy_find(struct krg_sched *sc, const char *name)
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
	if (sched_policy_find(sc, ops->name)) {
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
int sched_plugin_load(struct krg_sched *sc, const char *path, const char *expect, char hex[SCHED_SHA256_HEX],
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

bool sched_reg_get(struct krg_sched *sc, const char *key, char *buf, size_t len)
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
bool sched_plugin_line(const char *line, char hex[SCHED_SHA256_HEX], const char **path)
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
	sched_reg_get(sc, key, have, sizeof(have));
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
		if (sched_plugin_line(f->line, hex, &path) && !refusal_stands(f, path))
			*f = sc->refused[--sc->n_refused];
		else
			i++;
	}
	if (sched_reg_get(sc, "plugins", buf, sizeof(buf))) {
		for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			bool known = false;
			bool ok = sched_plugin_line(l, hex, &path);
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
			else if (sched_plugin_load(sc, path, hex, got, f->why, sizeof(f->why)) == 0)
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
void sched_sync_state(struct krg_sched *sc)
{
	char buf[4096], key[160];
	plugins_sync(sc);
	for (size_t i = 0; i < sc->n_pol; i++) {
		struct sched_policy *p = &sc->pol[i];
		snprintf(key, sizeof(key), "policy.%s.enabled", p->ops->name);
		if (sched_reg_get(sc, key, buf, sizeof(buf)))
			p->enabled = !strcmp(buf, "1");
		for (size_t k = 0; k < p->ops->n_params; k++) {
			snprintf(key, sizeof(key), "policy.%s.%s", p->ops->name, p->ops->params[k].name);
			if (sched_reg_get(sc, key, buf, sizeof(buf))) {
				char *end;
				double d = strtod(buf, &end);
				if (end != buf && !*end && isfinite(d))
					p->params[k] = d;
			}
		}
	}
}

/* ---- placement ---- */

size_t sched_gather_nodes(struct krg_sched *sc, struct krg_sched_node *out)
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
	sched_sync_state(sc);
	struct sched_policy *p = NULL;
	for (size_t i = 0; i < sc->n_pol && !p; i++)
		if (sc->pol[i].enabled && sc->pol[i].ops->kind == KRG_SCHED_PLACEMENT)
			p = &sc->pol[i];
	if (!p)
		return sc->self;
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = sched_gather_nodes(sc, nodes);
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
					n = sched_gather_nodes(sc, nodes);
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
	size_t n = sched_gather_nodes(sc, nodes), np = 0;
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
		int r = sched_move(sc, moves[i].id, moves[i].node, w ? watch_done_cb : NULL, w ? watch_key(sc, w) : NULL,
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
	struct sched_policy *ll = sched_policy_find(sc, "least_loaded");
	uint64_t now = uv_now(sc->s->loop);
	if (!ll || !sc->s->cluster || !sc->running || pp <= 1 || pp == sc->krgd || krg_procid_home(id) != sc->self ||
	    recently_moved(sc, id, now) || !procfs_is_descendant(pp, sc->krgd))
		return 0;
	struct krg_caps pc, cc;
	if (krg_caps_get(sc->s->cluster, sc->self, krg_procid_make(sc->self, (uint32_t)pp), pp, &pc) == 0 ||
	    !(pc.eff & KRG_CAP_DISTANT_FORK))
		return 0;
	krg_caps_get(sc->s->cluster, sc->self, id, pid, &cc);
	if (!(cc.eff & KRG_CAP_CAN_MIGRATE)) {
		/* Asked again at every exec and sampler tick of that child:
		 * said once at info, then at debug. */
		bool said = false;
		for (size_t i = 0; i < ARRAY_SIZE(sc->stays_logged); i++)
			said |= sc->stays_logged[i] == id;
		if (said) {
			log_debug("sched: distant fork: %u (child of pid %d) lacks CAN_MIGRATE, stays here", id, (int)pp);
		} else {
			log_info("sched: distant fork: %u (child of pid %d) lacks CAN_MIGRATE, stays here", id, (int)pp);
			sc->stays_logged[sc->stays_next++ % ARRAY_SIZE(sc->stays_logged)] = id;
		}
		return 0;
	}
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	size_t n = sched_gather_nodes(sc, nodes);
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
		int r = sched_move(sc, q->id, node, NULL, NULL, err, sizeof(err));
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

/* Whether eviction may move a process: it has CAN_MIGRATE, or it is
 * CHECKPOINTABLE. A migration is a checkpoint restored at once on the
 * target, so the eviction migrates such a process too (the mover's
 * evicting flag): it keeps its id, its pid at home and its streams, which
 * a checkpoint and restart would change. */
static bool evict_movable(const struct krg_caps *caps)
{
	return caps->eff & (KRG_CAP_CAN_MIGRATE | KRG_CAP_CHECKPOINTABLE);
}

/* The slot of id in evict_sent, or n_evict_sent. */
static size_t evict_slot(const struct krg_sched *sc, uint32_t id)
{
	for (size_t k = 0; k < sc->n_evict_sent; k++)
		if (sc->evict_sent[k].id == id)
			return k;
	return sc->n_evict_sent;
}

/* Whether eviction checkpoints id and restarts it elsewhere (under a new
 * id): only when it lacks CAN_MIGRATE, its migration failed (a move the
 * live migration refuses, which a checkpoint may still take) and the
 * checkpoint service runs. */
static bool evict_by_ckpt(struct krg_sched *sc, uint32_t id, const struct krg_caps *caps)
{
	size_t k = evict_slot(sc, id);
	return !(caps->eff & KRG_CAP_CAN_MIGRATE) && (caps->eff & KRG_CAP_CHECKPOINTABLE) && sc->s->evict_ckpt &&
	       k < sc->n_evict_sent && sc->evict_sent[k].mig_failed;
}

/* The end of an eviction's migration (krg_sched_move_done_fn, data the
 * id): a failure is not a process moved away, and it makes the next try
 * of a process without CAN_MIGRATE a checkpoint. */
static void evict_move_done(int status, uint64_t total_ms, uint64_t frozen_ms, void *data)
{
	(void)total_ms;
	(void)frozen_ms;
	struct krg_sched *sc = &the_sched;
	uint32_t id = (uint32_t)(uintptr_t)data;
	size_t k = evict_slot(sc, id);
	if (status < 0 && k < sc->n_evict_sent) {
		sc->evict_sent[k].mig_failed = true;
		if (sc->evict_moved)
			sc->evict_moved--;
		log_warn("evict: migration of %u failed: %s", id, strerror(-status));
	}
}

/* The parent pid of pid from /proc/PID/stat, or 0. */
static pid_t evict_ppid(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(buf, sizeof(buf), f))
		return 0;
	const char *p = strrchr(buf, ')');
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* Whether pid's parent is a krg process of this node that eviction
 * checkpoints: a checkpoint takes the process with its descendants, so
 * the child goes with its parent's image, not in one of its own. */
static bool evict_with_parent(struct krg_sched *sc, pid_t pid)
{
	pid_t pp = evict_ppid(pid);
	for (size_t i = 0; pp > 0 && i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		uint32_t id = q->id, home;
		if (q->pid != pp || sched_proc_kind(sc, q->pid, &id, &home) == KRG_PROC_HIDDEN || !id)
			continue;
		struct krg_caps caps;
		krg_caps_get(sc->s->cluster, sc->self, id, krg_procid_home(id) == sc->self ? q->pid : 0, &caps);
		return evict_by_ckpt(sc, id, &caps);
	}
	return false;
}

/* The node refuses to leave: leaving -> up, with why (which starts with
 * "refused to leave"), the line `nodes del` prints. */
static void evict_refuse_leave(struct krg_sched *sc, const char *why)
{
	log_warn("evict: node %u %s", sc->self, why);
	int r = krg_cluster_node_refuse_leave(sc->s->cluster, sc->self, why);
	if (r < 0 && r != -EINPROGRESS)
		log_warn("evict: cannot tell the cluster: %s", strerror(-r));
}

static bool evict_forced(struct krg_sched *sc)
{
	return !strcmp(krg_cluster_node_reason(sc->s->cluster, sc->self), KRG_CLUSTER_DEL_FORCE_REASON);
}

/* Before anything moves: a process that may neither migrate nor be
 * checkpointed cannot leave, so the node refuses to leave, naming it:
 * leaving -> up, the reason `nodes del` prints. With `nodes del --force`
 * it is ended instead. True: refused. */
static bool evict_refuse(struct krg_sched *sc)
{
	char names[64] = "";
	unsigned stuck = 0;
	bool force = evict_forced(sc);
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		uint32_t id = q->id, home;
		if (sched_proc_kind(sc, q->pid, &id, &home) == KRG_PROC_HIDDEN || !id)
			continue;
		struct krg_caps caps;
		krg_caps_get(sc->s->cluster, sc->self, id, krg_procid_home(id) == sc->self ? q->pid : 0, &caps);
		if (evict_movable(&caps))
			continue;
		if (force) {
			log_warn("evict: nodes del --force: ending %u (%s), which cannot migrate", id, q->comm);
			if (kill(q->pid, SIGKILL) < 0 && errno != ESRCH)
				log_warn("evict: cannot end %u (pid %d): %s", id, (int)q->pid, strerror(errno));
			continue;
		}
		if (!stuck++)
			snprintf(names, sizeof(names), "%u (%.16s)", id, q->comm);
	}
	if (!stuck)
		return false;
	char why[160];
	snprintf(why, sizeof(why), "refused to leave: %s%s cannot migrate nor be checkpointed; del --force ends it", names,
		 stuck > 1 ? " and others" : "");
	evict_refuse_leave(sc, why);
	return true;
}

/* A process without CAN_MIGRATE whose migration failed, and then its
 * checkpoint (err, the checkpoint's reason): it cannot leave this node.
 * The node refuses to leave, naming it and why, or (--force) ends it.
 * True: refused. */
static bool evict_cannot(struct krg_sched *sc, uint32_t id, const struct sched_proc_probe *q, const char *err)
{
	if (evict_forced(sc)) {
		log_warn("evict: nodes del --force: ending %u (%s), which could neither migrate nor be checkpointed: %s",
			 id, q->comm, err);
		if (kill(q->pid, SIGKILL) < 0 && errno != ESRCH)
			log_warn("evict: cannot end %u (pid %d): %s", id, (int)q->pid, strerror(errno));
		return false;
	}
	char why[190];
	snprintf(why, sizeof(why), "refused to leave: %u (%.16s) can neither migrate nor be checkpointed; del --force ends it: %s",
		 id, q->comm, err);
	evict_refuse_leave(sc, why);
	return true;
}

/* While this node is leaving: start moving every krg process running here
 * to the least loaded member (one per target in turn), each once per
 * EVICT_RETRY_MS; once none is left, tell the cluster the node is empty
 * (leaving -> absent). A process without CAN_MIGRATE but CHECKPOINTABLE
 * is checkpointed, ended and restarted on the target by the checkpoint
 * service (proc/ckpt/evict.c); one that allows neither makes the node
 * refuse to leave before anything moves (evict_refuse), or is ended with
 * --force. */
static void evict(struct krg_sched *sc, uint64_t now)
{
	/* A leave that ended and the next one can both fall between two
	 * ticks (a node added back and deleted again within a second): the
	 * node's epoch tells them apart. */
	bool leaving = sc->s->cluster && krg_cluster_node_state(sc->s->cluster, sc->self) == KRG_NODE_LEAVING;
	uint64_t epoch = leaving ? krg_cluster_node_epoch(sc->s->cluster, sc->self) : 0;
	if (!leaving || epoch != sc->evict_epoch) {
		sc->n_evict_sent = 0;
		sc->evict_moved = 0;
		sc->evict_ckpt = 0;
		sc->evict_epoch = epoch;
		if (!leaving)
			return;
	}
	if (!sc->evict_moved && !sc->n_evict_sent && evict_refuse(sc))
		return;
	static struct krg_sched_node nodes[KRG_MAX_NODES];
	unsigned planned[KRG_MAX_NODES] = { 0 };
	size_t n = sched_gather_nodes(sc, nodes);
	unsigned left = 0, stuck = 0, started = 0;
	char stuck_names[160] = "";
	bool log_now = now - sc->evict_log_ms >= 2000;
	for (size_t i = 0; i < sc->probes.n; i++) {
		const struct sched_proc_probe *q = &sc->probes.procs[i];
		uint32_t id = q->id, home;
		if (sched_proc_kind(sc, q->pid, &id, &home) == KRG_PROC_HIDDEN || !id)
			continue; /* a deputy, holder or worker: not a process of its own */
		left++;
		size_t slot = evict_slot(sc, id);
		if (slot < sc->n_evict_sent && now - sc->evict_sent[slot].ms < EVICT_RETRY_MS)
			continue; /* on its way */
		struct krg_caps caps;
		krg_caps_get(sc->s->cluster, sc->self, id, krg_procid_home(id) == sc->self ? q->pid : 0, &caps);
		bool ckpt = evict_by_ckpt(sc, id, &caps);
		if (ckpt && evict_with_parent(sc, q->pid))
			continue; /* in its parent's image */
		if (!evict_movable(&caps)) {
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
		int r = ckpt ? sc->s->evict_ckpt(sc->s->evict_data, id, nodes[best].id, err, sizeof(err))
		      : !sc->mover ? -ENOSYS
				   : sc->mover(sc->mover_svc, id, nodes[best].id, true, evict_move_done,
					       (void *)(uintptr_t)id, err, sizeof(err));
		if (r == -ENOSYS && !ckpt)
			snprintf(err, sizeof(err), "no migration service");
		if (r == -EINPROGRESS && ckpt) {
			/* Still being checkpointed away since the last request:
			 * on its way, not asked nor counted twice. */
			if (slot < sc->n_evict_sent)
				sc->evict_sent[slot].ms = now;
			continue;
		}
		if (r < 0 && ckpt && r != -ESHUTDOWN) {
			/* Its migration failed, and now its checkpoint: neither
			 * counts as moved away. */
			if (slot < sc->n_evict_sent && sc->evict_sent[slot].ckpt_started) {
				sc->evict_moved -= sc->evict_moved > 0;
				sc->evict_ckpt -= sc->evict_ckpt > 0;
				sc->evict_sent[slot].ckpt_started = false;
			}
			if (evict_cannot(sc, id, q, err))
				return;
			if (slot < sc->n_evict_sent)
				sc->evict_sent[slot].ms = now; /* ended: not asked again while it dies */
			continue;
		}
		if (r < 0 && ckpt)
			snprintf(err, sizeof(err), "checkpoint: %s", strerror(-r));
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
			sc->evict_sent[slot] = (typeof(sc->evict_sent[0])){ .id = id, .ms = now,
									    .mig_failed = sc->evict_sent[slot].mig_failed && ckpt,
									    .ckpt_started = ckpt };
		sc->evict_moved++;
		/* Counted when asked for; taken back when it fails
		 * (evict_move_done, a checkpoint's failure above). */
		if (ckpt)
			sc->evict_ckpt++;
		log_info("evict: %s %u (%s) to node %u%s", ckpt ? "checkpointing, to restart it," : "moving", id, q->comm,
			 nodes[best].id,
			 ckpt || (caps.eff & KRG_CAP_CAN_MIGRATE) ? "" : " (no CAN_MIGRATE, but CHECKPOINTABLE)");
	}
	if (log_now && (left || stuck)) {
		sc->evict_log_ms = now;
		log_info("evict: node %u leaving, %u krg process(es) left%s%s", sc->self, left,
			 stuck ? "; cannot migrate (no CAN_MIGRATE): " : "", stuck_names);
	}
	if (left == 0 && !started && now - sc->evict_left_ms >= 1000) {
		sc->evict_left_ms = now;
		int r = krg_cluster_node_left(sc->s->cluster, sc->self, sc->evict_moved, sc->evict_ckpt);
		const char *holder = r == -EBUSY ? krg_cluster_leave_holder(sc->s->cluster) : NULL;
		if (holder && log_now) {
			sc->evict_log_ms = now;
			log_info("evict: node %u has no krg process left; waiting for %s to move its data", sc->self,
				 holder);
		} else if (r < 0 && !holder) {
			log_debug("evict: cannot report node %u empty yet: %s", sc->self, strerror(-r));
		}
	}
}

/* ---- probes ---- */

static void timer_cb(uv_timer_t *t)
{
	struct krg_sched *sc = t->data;
	if (!sc->running)
		return;
	if (sched_probe_sample(&sc->probes, sc->s->table, sc->krgd, sc->self) < 0)
		log_debug("sched: cannot sample probes");
	else
		krg_proc_table_set_probes(sc->s->table, sc->probes.node_io_kbps, sc->probes.node_cpu_used);
	sched_sync_state(sc);
	judge(sc, uv_now(sc->s->loop));
	distant_fork(sc);
	evict(sc, uv_now(sc->s->loop));
	balance(sc);
	caps_gc(sc, uv_now(sc->s->loop));
}

/* ---- start / stop ---- */

/* Its start hook (lib/service.h): *out its state. */
static int sched_start(struct krg_services *s, void **out, char *err, size_t errlen)
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
	if ((r = krg_api_register(s->api, "sched.status", false, sched_on_api_status, sc)) < 0 ||
	    (r = krg_api_register(s->api, "sched.ctl", true, sched_on_api_ctl, sc)) < 0 ||
	    (r = krg_api_register(s->api, "sched.capset", false, sched_on_api_capset, sc)) < 0 ||
	    (r = krg_net_handle(s->net, "sched.capset", sched_on_net_capset, sc)) < 0) {
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
	s->sched = sc;
	*out = sc;
	return 0;
}

static void sched_stop(void *state)
{
	struct krg_sched *sc = state;
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

const struct krg_service krg_service_sched = {
	.name = "sched",
	.needs = (const char *const[]){ "table", NULL }, /* its policies read the nodes' load */
	.start = sched_start,
	.stop = sched_stop,
	.msg_types = (const char *const[]){ "sched.capset", NULL },
	.api_cmds = (const char *const[]){ "sched.status", "sched.ctl", "sched.capset", NULL },
};
