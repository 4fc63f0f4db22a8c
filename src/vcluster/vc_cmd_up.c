/* vc_cmd_up.c — `krgadm vcluster up N`: state dir, key, bridge, then per
 * node a cgroup and a node init; waits for every krgd API socket, then
 * for every krgd to have quorum (a cluster that can act). Any
 * failure tears down everything made so far. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "lib/key.h"
#include "vc.h"

static int up_state(struct vc_cluster *c)
{
	char path[256], val[64], err[256];
	int r;

	if (mkdir(c->dir, 0700) < 0) {
		if (errno == EEXIST)
			return vc_fail(-EEXIST, "vcluster '%s' already exists; run: krgadm vcluster down --prefix %s", c->prefix,
				       c->prefix);
		return vc_fail(-errno, "cannot create %s: %s", c->dir, strerror(errno));
	}
	if ((r = vc_subnet_pick(c->prefix, &c->subnet)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/subnet", c->dir);
	snprintf(val, sizeof(val), "%d\n", c->subnet);
	if ((r = vc_write_file(path, val, 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/nodes", c->dir);
	snprintf(val, sizeof(val), "%d\n", c->n_nodes);
	if ((r = vc_write_file(path, val, 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/static", c->dir);
	if ((r = vc_write_file(path, val, 0644)) < 0)
		return r;
	if (c->extra[0]) {
		snprintf(path, sizeof(path), "%s/conf", c->dir);
		if ((r = vc_write_file(path, c->extra, 0644)) < 0)
			return r;
	}
	if (c->kdfs) {
		snprintf(path, sizeof(path), "%s/kdfs", c->dir);
		if ((r = vc_write_file(path, "1\n", 0644)) < 0)
			return r;
	}
	snprintf(path, sizeof(path), "%s/cpus", c->dir);
	snprintf(val, sizeof(val), "%g\n", c->cpus);
	if ((r = vc_write_file(path, val, 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/cluster.key", c->dir);
	if ((r = krg_key_generate(path, err, sizeof(err))) < 0)
		return vc_fail(r, "%s", err);
	return 0;
}

int vc_up_node(const struct vc_cluster *c, int i, const char *krgd, pid_t *pid)
{
	char dir[256], cg[256], path[300];
	int r;

	vc_node_dir(c, i, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return vc_fail(-errno, "cannot create %s: %s", dir, strerror(errno));
	if ((r = vc_cgroup_create(c, i, cg, sizeof(cg))) < 0)
		return r;
	/* Tests and krgd read the node's quota from here. */
	snprintf(path, sizeof(path), "%s/cgroup", dir);
	char line[300];
	snprintf(line, sizeof(line), "%s\n", cg);
	if ((r = vc_write_file(path, line, 0644)) < 0)
		return r;
	struct vc_node_spec spec = { .c = c, .id = i, .cgroup = cg, .krgd_path = krgd };
	return vc_node_start(&spec, pid);
}

static int up(struct vc_cluster *c, pid_t *pids)
{
	char krgd[PATH_MAX] = "";
	int r;

	if (c->krgd) {
		char dir[PATH_MAX - 8];
		if ((r = vc_self_dir(dir, sizeof(dir))) < 0)
			return r;
		snprintf(krgd, sizeof(krgd), "%s/krgd", dir);
		if (access(krgd, X_OK) < 0)
			return vc_fail(-ENOENT, "krgd not found next to krgadm (%s); build it or use --no-krgd", krgd);
	}
	/* Parallel ups must not pick the same subnet. */
	_cleanup_close_ int lock = vc_lock();
	if (lock < 0)
		return lock;
	if (vc_link_exists(c->bridge))
		return vc_fail(-EEXIST, "bridge %s already exists; run: krgadm vcluster down --prefix %s", c->bridge, c->prefix);
	if ((r = up_state(c)) < 0)
		return r;
	if ((r = vc_bridge_create(c)) < 0)
		return r;
	vc_neigh_room(c->n_nodes);
	close(TAKE_FD(lock));

	for (int i = 1; i <= c->n_nodes; i++)
		if ((r = vc_up_node(c, i, c->krgd ? krgd : NULL, &pids[i])) < 0)
			return r;
	if (c->krgd && (r = vc_wait_sockets(c, pids, c->n_nodes, VC_UP_TIMEOUT_MS)) < 0)
		return r;
	if (c->krgd && (r = vc_wait_quorum(pids, c->n_nodes, VC_QUORUM_TIMEOUT_MS)) < 0)
		return r;
	return 0;
}

int vc_cmd_up(const struct vc_args *a)
{
	struct vc_cluster c;
	pid_t pids[VC_MAX_NODES + 1] = { 0 };
	char *end;
	int r;

	if (a->npos != 1)
		return vc_fail(-EINVAL, "usage: krgadm vcluster up N [--prefix NAME] [--cpus X] [--no-krgd] [--kdfs]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0)
		return r;
	long n = strtol(a->pos[0], &end, 10);
	if (*end || end == a->pos[0] || n < 1 || n > VC_MAX_NODES)
		return vc_fail(-EINVAL, "invalid node count '%s': want 1..%d", a->pos[0], VC_MAX_NODES);
	c.n_nodes = (int)n;
	if (a->cpus) {
		double v = strtod(a->cpus, &end);
		if (*end || end == a->cpus || !(v >= 0.01 && v <= 1024))
			return vc_fail(-EINVAL, "invalid --cpus '%s': want a number in 0.01..1024", a->cpus);
		c.cpus = v;
	}
	c.krgd = !a->no_krgd;
	c.kdfs = a->kdfs;
	for (int k = 0; k < a->n_conf; k++) {
		const char *l = a->conf[k];
		if (!strchr(l, '=') || strchr(l, '\n') || l[0] == '=')
			return vc_fail(-EINVAL, "invalid --conf '%s': want 'KEY = VALUE' on one line", l);
		size_t used = strlen(c.extra);
		if ((size_t)snprintf(c.extra + used, sizeof(c.extra) - used, "%s\n", l) >= sizeof(c.extra) - used)
			return vc_fail(-EINVAL, "--conf lines too long (%zu bytes at most)", sizeof(c.extra) - 1);
	}

	r = up(&c, pids);
	if (r < 0) {
		/* Report the cause, then leave nothing behind; -EEXIST means
		 * the cluster belongs to someone else, so keep it. */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", vc_error() ? vc_error() : strerror(-r));
		if (r != -EEXIST) {
			bool found;
			vc_error_clear();
			vc_teardown(&c, &found);
		}
		vc_error_clear();
		return vc_fail(r, "%s", msg);
	}
	for (int i = 1; i <= c.n_nodes; i++) {
		char addr[32];
		vc_node_addr(&c, i, addr, sizeof(addr));
		printf("node %d %s pid %d\n", i, addr, (int)pids[i]);
	}
	fflush(stdout);
	return 0;
}
