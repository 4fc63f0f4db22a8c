/* vc_cmd_node.c — per-node controls: `krgd I start|kill` and
 * `link I down|up` (fault injection for tests). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "vc.h"

/* Gone for good: reaped by the node init. A killed krgd's leader shows
 * as a zombie while its other threads still exit, holding its sockets, so
 * "not running" is not enough before a new krgd binds the same paths. */
static bool pid_reaped(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) < 0;
}

static int krgd_kill(const struct vc_cluster *c, int id)
{
	pid_t pids[16];
	int n = vc_node_find(c, id, "krgd", pids, (int)ARRAY_SIZE(pids));

	if (n <= 0)
		return vc_fail(-ESRCH, "no krgd running in node %d", id);
	for (int k = 0; k < n; k++)
		kill(pids[k], SIGKILL);
	long deadline = vc_now_ms() + 5000;
	for (int k = 0; k < n; k++)
		while (!pid_reaped(pids[k])) {
			if (vc_now_ms() > deadline)
				return vc_fail(-EBUSY, "krgd (pid %d) in node %d survives SIGKILL", (int)pids[k], id);
			vc_msleep(10);
		}
	for (int k = 0; k < n; k++)
		printf("node %d: krgd (pid %d) killed\n", id, (int)pids[k]);
	return 0;
}

static int krgd_start(const struct vc_cluster *c, int id)
{
	char self[PATH_MAX - 8], bin[PATH_MAX], logp[256];
	pid_t pids[1], init;
	int r, status;

	if (vc_node_find(c, id, "krgd", pids, 1) > 0)
		return vc_fail(-EEXIST, "krgd already runs in node %d (pid %d)", id, (int)pids[0]);
	if ((r = vc_node_init_pid(c, id, &init)) < 0)
		return vc_fail(r, "node %d of vcluster '%s' is not running", id, c->prefix);
	if ((r = vc_self_dir(self, sizeof(self))) < 0)
		return r;
	snprintf(bin, sizeof(bin), "%s/krgd", self);
	_cleanup_close_ int bin_fd = open(bin, O_PATH | O_CLOEXEC);
	if (bin_fd < 0)
		return vc_fail(-errno, "cannot open krgd binary %s: %s", bin, strerror(errno));
	vc_node_file(c, id, "krgd.log", logp, sizeof(logp));
	_cleanup_close_ int log_fd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log_fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", logp, strerror(errno));

	/* Enter the node in a child: this process keeps the host's /proc to
	 * watch the socket come up. */
	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return vc_fail(-errno, "fork: %s", strerror(errno));
	if (p == 0) {
		r = vc_node_enter(c, id);
		if (r == 0)
			r = vc_krgd_spawn_entered(bin, bin_fd, log_fd);
		if (r < 0)
			fprintf(stderr, "krgadm vcluster krgd: %s\n", vc_error() ? vc_error() : strerror(-r));
		_exit(r < 0 ? 1 : 0);
	}
	while (waitpid(p, &status, 0) < 0)
		if (errno != EINTR)
			return vc_fail(-errno, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO; /* the child said why */
	long deadline = vc_now_ms() + VC_UP_TIMEOUT_MS, missing_since = 0;
	while (!vc_node_socket_ready(init)) {
		/* The spawner's grandchild may not have exec'd krgd yet (a busy
		 * machine): only a krgd missing for a whole second has exited. */
		if (vc_node_find(c, id, "krgd", pids, 1) == 0) {
			if (!missing_since)
				missing_since = vc_now_ms();
			else if (vc_now_ms() - missing_since > 1000)
				return vc_fail(-ESRCH, "node %d: krgd exited; see %s/node%d/krgd.log", id, c->dir, id);
		} else {
			missing_since = 0;
		}
		if (vc_now_ms() > deadline)
			return vc_fail(-ETIMEDOUT, "node %d: krgd API socket not ready after %d s; see %s", id,
				       VC_UP_TIMEOUT_MS / 1000, logp);
		vc_msleep(50);
	}
	vc_node_find(c, id, "krgd", pids, 1);
	printf("node %d: krgd started (pid %d)\n", id, (int)pids[0]);
	return 0;
}

int vc_cmd_krgd(const struct vc_args *a)
{
	struct vc_cluster c;
	int id, r;

	if (a->npos != 2 || (strcmp(a->pos[1], "start") != 0 && strcmp(a->pos[1], "kill") != 0))
		return vc_fail(-EINVAL, "usage: krgadm vcluster krgd I start|kill [--prefix NAME]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0 || (r = vc_cluster_load(&c)) < 0)
		return r;
	if ((r = vc_parse_node(a->pos[0], c.n_nodes, &id)) < 0)
		return r;
	return strcmp(a->pos[1], "kill") == 0 ? krgd_kill(&c, id) : krgd_start(&c, id);
}

int vc_cmd_link(const struct vc_args *a)
{
	struct vc_cluster c;
	char veth[16];
	int id, r;

	if (a->npos != 2 || (strcmp(a->pos[1], "down") != 0 && strcmp(a->pos[1], "up") != 0))
		return vc_fail(-EINVAL, "usage: krgadm vcluster link I down|up [--prefix NAME]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0 || (r = vc_cluster_load(&c)) < 0)
		return r;
	if ((r = vc_parse_node(a->pos[0], c.n_nodes, &id)) < 0)
		return r;
	vc_veth_name(&c, id, veth, sizeof(veth));
	if (!vc_link_exists(veth))
		return vc_fail(-ENODEV, "node %d has no link %s (is it running?)", id, veth);
	/* The host end going down cuts the node off the bridge both ways. */
	return vc_link_set(veth, strcmp(a->pos[1], "up") == 0);
}
