/* vc_cgroup.c — one cgroup per node, krg-<prefix>/node<i>, whose CPU quota
 * plays the node's CPU capacity. cgroup v2 (cpu.max) when the unified
 * hierarchy has the cpu controller, else the v1 cpu hierarchy
 * (cpu.cfs_quota_us / cpu.cfs_period_us). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "vc.h"

#define CG_V2_ROOT "/sys/fs/cgroup"
#define CG_PERIOD 100000L

/* Roots where a cluster's cgroups may live; down looks at all of them so
 * a cluster made under another layout is still found. */
static const char *const cg_roots[] = { CG_V2_ROOT, "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" };

static bool v2_has_cpu(void)
{
	_cleanup_free_ char *s = NULL;

	if (vc_read_file(CG_V2_ROOT "/cgroup.controllers", &s) < 0)
		return false;
	for (char *tok = strtok(s, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strcmp(tok, "cpu") == 0)
			return true;
	return false;
}

/* 2 or 1, with the root of the hierarchy to use; -ENOTSUP if neither. */
static int cg_detect(const char **root)
{
	if (v2_has_cpu()) {
		*root = CG_V2_ROOT;
		return 2;
	}
	for (size_t i = 1; i < ARRAY_SIZE(cg_roots); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/cpu.cfs_quota_us", cg_roots[i]);
		if (access(p, F_OK) == 0) {
			*root = cg_roots[i];
			return 1;
		}
	}
	return vc_fail(-ENOTSUP, "no cgroup cpu controller: neither " CG_V2_ROOT "/cgroup.controllers lists cpu nor is a v1 cpu hierarchy mounted");
}

/* Enable the cpu controller for dir's children. Skip the write when it
 * is on already: in a container, the cgroup namespace root may hold
 * processes, and then the write fails (EBUSY) although nothing is needed. */
static int enable_cpu(const char *dir)
{
	char p[512];
	_cleanup_free_ char *s = NULL;

	snprintf(p, sizeof(p), "%s/cgroup.subtree_control", dir);
	if (vc_read_file(p, &s) >= 0)
		for (char *tok = strtok(s, " \n"); tok; tok = strtok(NULL, " \n"))
			if (strcmp(tok, "cpu") == 0)
				return 0;
	int r = vc_write_knob(p, "+cpu");
	if (r < 0)
		return vc_fail(r, "cannot enable the cpu controller in %s: %s", p, strerror(-r));
	return 0;
}

static int knob(const char *dir, const char *name, const char *val)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int r = vc_write_knob(p, val);
	if (r < 0)
		return vc_fail(r, "cannot write '%s' to %s: %s", val, p, strerror(-r));
	return 0;
}

int vc_cgroup_create(const struct vc_cluster *c, int i, char *path, size_t len)
{
	const char *root = NULL;
	char parent[256], val[64];
	int v = cg_detect(&root), r;
	long quota = (long)(c->cpus * CG_PERIOD + 0.5);

	if (v < 0)
		return v;
	if (quota < 1000) /* kernel minimum is 1 ms */
		quota = 1000;
	snprintf(parent, sizeof(parent), "%s/krg-%s", root, c->prefix);
	if (snprintf(path, len, "%s/node%d", parent, i) >= (int)len)
		return -ENAMETOOLONG;
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return vc_fail(-errno, "cannot create cgroup %s: %s", parent, strerror(errno));
	if (v == 2) {
		/* Controllers must be enabled top-down for node<i> to get
		 * cpu.max; writing an already enabled one is harmless. */
		if ((r = enable_cpu(root)) < 0 || (r = enable_cpu(parent)) < 0)
			return r;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return vc_fail(-errno, "cannot create cgroup %s: %s", path, strerror(errno));
	if (v == 2) {
		snprintf(val, sizeof(val), "%ld %ld", quota, CG_PERIOD);
		return knob(path, "cpu.max", val);
	}
	snprintf(val, sizeof(val), "%ld", CG_PERIOD);
	if ((r = knob(path, "cpu.cfs_period_us", val)) < 0)
		return r;
	snprintf(val, sizeof(val), "%ld", quota);
	return knob(path, "cpu.cfs_quota_us", val);
}

int vc_cgroup_join(const char *path, pid_t pid)
{
	char val[32];

	snprintf(val, sizeof(val), "%d", (int)(pid ? pid : getpid()));
	return knob(path, "cgroup.procs", val);
}

/* Call fn(dir) on each node cgroup and then on krg-<prefix> itself, in
 * every hierarchy where it exists. */
static int cg_foreach(const struct vc_cluster *c, int (*fn)(const char *dir, void *u), void *u)
{
	int total = 0;

	for (size_t k = 0; k < ARRAY_SIZE(cg_roots); k++) {
		char parent[256];
		struct stat st;
		/* cpu and cpu,cpuacct are usually the same mount. */
		if (k == 2 && stat(cg_roots[1], &st) == 0)
			continue;
		snprintf(parent, sizeof(parent), "%s/krg-%s", cg_roots[k], c->prefix);
		DIR *d = opendir(parent);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			char sub[512];
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", parent, de->d_name);
			int r = fn(sub, u);
			if (r > 0)
				total += r;
		}
		closedir(d);
		int r = fn(parent, u);
		if (r > 0)
			total += r;
	}
	return total;
}

static int procs_visit(const char *dir, void *u)
{
	bool do_kill = *(bool *)u;
	char p[512];
	_cleanup_free_ char *s = NULL;
	int n = 0;

	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	if (vc_read_file(p, &s) < 0)
		return 0;
	for (char *tok = strtok(s, "\n"); tok; tok = strtok(NULL, "\n")) {
		pid_t pid = (pid_t)atoi(tok);
		if (pid <= 0 || !vc_pid_alive(pid))
			continue;
		if (do_kill)
			kill(pid, SIGKILL);
		n++;
	}
	return n;
}

int vc_cgroup_kill_all(const struct vc_cluster *c)
{
	bool k = true;
	return cg_foreach(c, procs_visit, &k);
}

int vc_cgroup_count(const struct vc_cluster *c)
{
	bool k = false;
	return cg_foreach(c, procs_visit, &k);
}

static int rmdir_visit(const char *dir, void *u)
{
	/* A dying task can keep the cgroup busy a moment after SIGKILL. */
	for (int t = 0; t < 50; t++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		vc_msleep(40);
	}
	*(int *)u = -errno;
	vc_fail(-errno, "cannot remove cgroup %s: %s", dir, strerror(errno));
	return 0;
}

int vc_cgroup_remove(const struct vc_cluster *c)
{
	int r = 0;

	cg_foreach(c, rmdir_visit, &r);
	return r;
}
