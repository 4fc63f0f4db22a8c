/* vc_cmd_add.c — `krgadm vcluster add [N]`: new nodes join the running
 * cluster the way a new machine does (`krgd --join`): their krgd.conf has
 * no node id and no node list, the cluster gives each its id. Waits until
 * every new node has quorum (it is in the raft configuration and hears the
 * leader). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vc.h"

int vc_cmd_add(const struct vc_args *a)
{
	struct vc_cluster c;
	pid_t pids[VC_MAX_NODES + 1] = { 0 };
	char krgd[PATH_MAX], dir[PATH_MAX - 8], path[256], val[32];
	long n = 1;
	int r;

	if (a->npos > 1)
		return vc_fail(-EINVAL, "usage: krgadm vcluster add [N] [--prefix NAME]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0 || (r = vc_cluster_load(&c)) < 0)
		return r;
	if (a->npos == 1) {
		char *end;
		n = strtol(a->pos[0], &end, 10);
		if (*end || end == a->pos[0] || n < 1 || n > VC_MAX_NODES - c.n_nodes)
			return vc_fail(-EINVAL, "invalid node count '%s': want 1..%d (the cluster has %d of %d nodes)",
				       a->pos[0], VC_MAX_NODES - c.n_nodes, c.n_nodes, VC_MAX_NODES);
	}
	if ((r = vc_self_dir(dir, sizeof(dir))) < 0)
		return r;
	snprintf(krgd, sizeof(krgd), "%s/krgd", dir);
	if (access(krgd, X_OK) < 0)
		return vc_fail(-ENOENT, "krgd not found next to krgadm (%s)", krgd);
	/* Join through the first members whose krgd answers, in turn: 59
	 * machines asking one member at once starved it past the joiners'
	 * 10 s deadline on a 2-core host. */
	int via[5], n_via = 0;
	for (int i = 1; i <= c.n_nodes && n_via < 5; i++) {
		pid_t init;
		if (vc_node_init_pid(&c, i, &init) == 0 && vc_node_socket_ready(init))
			via[n_via++] = i;
	}
	if (!n_via)
		return vc_fail(-ESRCH, "no node of vcluster '%s' has a running krgd to join through", c.prefix);
	_cleanup_close_ int lock = vc_lock();
	if (lock < 0)
		return lock;
	int first = c.n_nodes + 1, last = c.n_nodes + (int)n;
	vc_neigh_room(last);
	for (int i = first; i <= last; i++) {
		/* Count the node before it starts, so `down` removes it if anything fails. */
		c.n_nodes = i;
		snprintf(path, sizeof(path), "%s/nodes", c.dir);
		snprintf(val, sizeof(val), "%d\n", i);
		if ((r = vc_write_file(path, val, 0644)) < 0)
			return r;
		c.join_via = via[(i - first) % n_via];
		if ((r = vc_up_node(&c, i, krgd, &pids[i])) < 0)
			return r;
	}
	close(TAKE_FD(lock));
	if ((r = vc_wait_sockets(&c, pids, last, VC_UP_TIMEOUT_MS)) < 0)
		return r;
	if ((r = vc_wait_quorum(pids, last, VC_QUORUM_TIMEOUT_MS)) < 0)
		return r;
	for (int i = first; i <= last; i++) {
		char addr[32];
		vc_node_addr(&c, i, addr, sizeof(addr));
		printf("node %d %s pid %d\n", i, addr, (int)pids[i]);
	}
	fflush(stdout);
	return 0;
}
