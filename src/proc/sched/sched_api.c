/* sched_api.c — the scheduler's API commands: sched.status, sched.ctl,
 * sched.capset (a part of sched_service.c, sched_service-int.h). */
#include "proc/sched/sched_service-int.h"

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
			if ((sched_plugin_line(sc->refused[i].line, hex, &p) ? !strcmp(p, path)
								       : !strcmp(sc->refused[i].line, path))) {
				snprintf(why, len, "%s", sc->refused[i].why);
				return true;
			}
		return false;
	}
	snprintf(key, sizeof(key), "refused.%u", node);
	if (!sched_reg_get(sc, key, buf, sizeof(buf)))
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
	if (!sched_reg_get(sc, "plugins", buf, sizeof(buf)))
		buf[0] = 0;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!sched_plugin_line(l, hex, &path)) {
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
	size_t n = sched_gather_nodes(sc, nodes);
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
	size_t n = sched_gather_nodes(sc, nodes);
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

void sched_on_api_status(struct krg_api_call *call, void *data)
{
	struct krg_sched *sc = data;
	if (!sc->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	sched_sync_state(sc);
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
void sched_on_api_ctl(struct krg_api_call *call, void *data)
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
	sched_sync_state(sc);
	char *arg = strchr(body, ' ');
	if (!arg) {
		krg_api_reply(call, -EINVAL, "malformed sched.ctl request", NULL, 0);
		return;
	}
	*arg++ = 0;
	if (!strcmp(body, "enable") || !strcmp(body, "disable")) {
		bool on = body[0] == 'e';
		struct sched_policy *p = sched_policy_find(sc, arg);
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
		struct sched_policy *p = sched_policy_find(sc, arg);
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
		int r = sched_plugin_load(sc, arg, NULL, hex, err, sizeof(err));
		if (r < 0) {
			log_warn("sched: plugin refused: %s", err);
			krg_api_reply(call, r, err, NULL, 0);
			return;
		}
		/* Loaded here: now every node, by the registry, with the
		 * contents every node must find at that path. */
		char list[4096] = "";
		sched_reg_get(sc, "plugins", list, sizeof(list));
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
		if (pid <= 1 || pid == sc->krgd || !procfs_is_descendant(pid, sc->krgd)) {
			snprintf(line, sizeof(line), "process %u: no such krg process", id);
			answer(sc, o, -ESRCH, line, NULL, 0);
			return;
		}
	}
	uid_t ruid, suid;
	if (procfs_uids(pid, &ruid, &suid) < 0) {
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

void sched_on_api_capset(struct krg_api_call *call, void *data)
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
void sched_on_net_capset(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
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

