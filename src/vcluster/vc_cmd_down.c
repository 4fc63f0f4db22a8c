/* vc_cmd_down.c — `krgadm vcluster down`: idempotent teardown that also
 * works after a half-failed up or a crashed test. Everything is found by
 * name (pid files are a hint; the cgroup holds every node process). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "vc.h"

static bool cgroup_exists(const struct vc_cluster *c)
{
	static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" };
	struct stat st;

	for (size_t k = 0; k < ARRAY_SIZE(roots); k++) {
		char p[256];
		snprintf(p, sizeof(p), "%s/krg-%s", roots[k], c->prefix);
		if (stat(p, &st) == 0)
			return true;
	}
	return false;
}

static int kill_nodes(const struct vc_cluster *c)
{
	pid_t inits[VC_MAX_NODES + 1] = { 0 };
	long deadline = vc_now_ms() + 5000;

	/* SIGKILL to pid 1 of a pid ns kills the whole node. */
	for (int i = 1; i <= VC_MAX_NODES; i++)
		if (vc_node_init_pid(c, i, &inits[i]) == 0)
			kill(inits[i], SIGKILL);
	for (;;) {
		/* Also anything else in the node cgroups (exec'd commands
		 * whose node died, an init whose pid file is lost). */
		int left = vc_cgroup_kill_all(c);
		for (int i = 1; i <= VC_MAX_NODES; i++)
			if (inits[i] > 0 && vc_pid_alive(inits[i]))
				left++;
		if (!left)
			return 0;
		if (vc_now_ms() > deadline)
			return vc_fail(-EBUSY, "%d processes of vcluster '%s' survive SIGKILL", left, c->prefix);
		vc_msleep(20);
	}
}

int vc_teardown(const struct vc_cluster *c, bool *found)
{
	struct stat st;
	int r = 0, k;

	*found = stat(c->dir, &st) == 0 || vc_link_exists(c->bridge) || cgroup_exists(c);
	if ((k = kill_nodes(c)) < 0)
		r = k;
	k = vc_links_delete(c);
	if (k < 0)
		r = r ? r : k;
	else if (k > 0)
		*found = true;
	if ((k = vc_cgroup_remove(c)) < 0)
		r = r ? r : k;
	if ((k = vc_rm_rf(c->dir)) < 0)
		r = r ? r : k;
	return r;
}

int vc_cmd_down(const struct vc_args *a)
{
	struct vc_cluster c;
	bool found;
	int r;

	if (a->npos != 0)
		return vc_fail(-EINVAL, "usage: krgadm vcluster down [--prefix NAME]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0)
		return r;
	if ((r = vc_teardown(&c, &found)) < 0)
		return r;
	printf(found ? "vcluster '%s' is down\n" : "vcluster '%s' was not running\n", c.prefix);
	return 0;
}
