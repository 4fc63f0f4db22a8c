/* procfs_node.c — this node's capacity and load as it sees them: CPU quota
 * of its own cgroup (the vcluster plays a node's CPUs that way, and so do
 * containers), /proc/loadavg, /proc/meminfo capped by a cgroup memory
 * limit.
 *
 * Finding a controller's directory: /proc/self/cgroup gives the path
 * ("N:cpu,cpuacct:/krg-x/node1" for v1, "0::/path" for v2), relative to
 * the root of the mount that /proc/self/mountinfo lists for it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/macro.h"
#include "lib/procfs.h"

static bool has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);
	for (const char *p = list; p && *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == tl && !strncmp(p, tok, tl))
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* Directory of controller ctrl (v1), or of the v2 hierarchy when ctrl is
 * NULL; mnt receives the mount point (the walk up stops there). */
static int cg_dir(const char *ctrl, char *dir, size_t len, char *mnt, size_t mlen)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	char line[1024], path[PATH_MAX] = "";
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = 0;
		bool match = ctrl ? has_token(c1 + 1, ctrl) : (!strcmp(line, "0") && !c1[1]);
		if (match) {
			snprintf(path, sizeof(path), "%s", c2 + 1);
			found = true;
			break;
		}
	}
	if (!found)
		return -ENOENT;
	_cleanup_fclose_ FILE *m = fopen("/proc/self/mountinfo", "re");
	if (!m)
		return -errno;
	char ml[2048];
	while (fgets(ml, sizeof(ml), m)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *sep = strstr(ml, " - ");
		if (!sep)
			continue;
		char root[PATH_MAX], mp[PATH_MAX], fstype[64], src[256], sopts[512] = "";
		if (sscanf(ml, "%*s %*s %*s %4095s %4095s", root, mp) != 2)
			continue;
		if (sscanf(sep + 3, "%63s %255s %511s", fstype, src, sopts) < 2)
			continue;
		bool ok = ctrl ? !strcmp(fstype, "cgroup") && has_token(sopts, ctrl) : !strcmp(fstype, "cgroup2");
		if (!ok)
			continue;
		const char *rel = path;
		size_t rl = strlen(root);
		if (strcmp(root, "/") && !strncmp(path, root, rl) && (path[rl] == '/' || !path[rl]))
			rel = path + rl;
		snprintf(mnt, mlen, "%s", mp);
		snprintf(dir, len, "%s%s", mp, !strcmp(rel, "/") ? "" : rel);
		return 0;
	}
	return -ENOENT;
}

static int read_line(const char *dir, const char *name, char *buf, size_t len)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	_cleanup_fclose_ FILE *f = fopen(p, "re");
	if (!f || !fgets(buf, (int)len, f))
		return -ENOENT;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Go one directory up; false at the mount point. */
static bool cg_up(char *dir, const char *mnt)
{
	if (strlen(dir) <= strlen(mnt))
		return false;
	char *s = strrchr(dir, '/');
	if (!s)
		return false;
	*s = 0;
	return true;
}

double procfs_cgroup_cpus(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	double best = online > 0 ? (double)online : 1.0;
	char dir[PATH_MAX], mnt[PATH_MAX], a[128], b[128];
	if (cg_dir("cpu", dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
		do {
			if (read_line(dir, "cpu.cfs_quota_us", a, sizeof(a)) == 0 &&
			    read_line(dir, "cpu.cfs_period_us", b, sizeof(b)) == 0) {
				double q = strtod(a, NULL), p = strtod(b, NULL);
				if (q > 0 && p > 0 && q / p < best)
					best = q / p;
			}
		} while (cg_up(dir, mnt));
	} else if (cg_dir(NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
		do {
			double q, p;
			if (read_line(dir, "cpu.max", a, sizeof(a)) == 0 && sscanf(a, "%lf %lf", &q, &p) == 2 && q > 0 &&
			    p > 0 && q / p < best)
				best = q / p; /* "max 100000" fails the scan: no limit */
		} while (cg_up(dir, mnt));
	}
	return best;
}

/* Memory limit and usage (bytes) of this cgroup; -ENOENT if none. */
static int cg_memory(uint64_t *limit, uint64_t *usage)
{
	char dir[PATH_MAX], mnt[PATH_MAX], a[128];
	const char *lim_name, *use_name;
	if (cg_dir("memory", dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
		lim_name = "memory.limit_in_bytes";
		use_name = "memory.usage_in_bytes";
	} else if (cg_dir(NULL, dir, sizeof(dir), mnt, sizeof(mnt)) == 0) {
		lim_name = "memory.max";
		use_name = "memory.current";
	} else
		return -ENOENT;
	if (read_line(dir, use_name, a, sizeof(a)) < 0)
		return -ENOENT;
	*usage = strtoull(a, NULL, 10);
	uint64_t best = UINT64_MAX;
	do {
		if (read_line(dir, lim_name, a, sizeof(a)) == 0 && a[0] >= '0' && a[0] <= '9') {
			uint64_t l = strtoull(a, NULL, 10);
			if (l < best)
				best = l;
		}
	} while (cg_up(dir, mnt));
	if (best == UINT64_MAX)
		return -ENOENT;
	*limit = best;
	return 0;
}

int procfs_sample_node(struct node_sample *s)
{
	memset(s, 0, sizeof(*s));
	s->cpus = procfs_cgroup_cpus();
	_cleanup_fclose_ FILE *f = fopen("/proc/loadavg", "re");
	if (!f || fscanf(f, "%lf %lf %lf", &s->load1, &s->load5, &s->load15) != 3)
		return -EIO;
	_cleanup_fclose_ FILE *m = fopen("/proc/meminfo", "re");
	if (!m)
		return -errno;
	char line[256];
	unsigned long long v;
	while (fgets(line, sizeof(line), m)) {
		if (sscanf(line, "MemTotal: %llu", &v) == 1)
			s->mem_total_kb = v;
		else if (sscanf(line, "MemFree: %llu", &v) == 1)
			s->mem_free_kb = v;
		else if (sscanf(line, "MemAvailable: %llu", &v) == 1)
			s->mem_available_kb = v;
	}
	uint64_t limit, usage;
	if (cg_memory(&limit, &usage) == 0 && limit / 1024 < s->mem_total_kb) {
		uint64_t total = limit / 1024, left = usage / 1024 < total ? total - usage / 1024 : 0;
		s->mem_total_kb = total;
		s->mem_free_kb = MIN(s->mem_free_kb, left);
		s->mem_available_kb = MIN(s->mem_available_kb, left);
	}
	return 0;
}
