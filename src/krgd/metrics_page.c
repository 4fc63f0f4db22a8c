/* metrics_page.c — see metrics_page.h. Names follow Prometheus usage:
 * krg_ prefix, base units (seconds, bytes), _total for counters. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cluster/cluster.h"
#include "drmaa.h"
#include "drmaa/jobstore.h"
#include "krgd/metrics_page.h"
#include "lib/config.h"
#include "lib/fileio.h"
#include "lib/metrics.h"
#include "proc/table.h"

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_raft(FILE *f, const struct krg_metrics_src *s)
{
	static const char *const roles[] = { "leader", "follower", "candidate", "unavailable" };
	struct krg_cluster_raft_figures rf;
	krg_cluster_raft_figures(s->cluster, &rf);
	head(f, "krg_raft_role", "gauge", "1 for this node's Raft role");
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		fprintf(f, "krg_raft_role{role=\"%s\"} %d\n", roles[i], !strcmp(rf.role, roles[i]));
	head(f, "krg_raft_term", "gauge", "current Raft term");
	fprintf(f, "krg_raft_term %llu\n", (unsigned long long)rf.term);
	head(f, "krg_raft_commit_index", "gauge", "highest Raft log index known committed");
	fprintf(f, "krg_raft_commit_index %llu\n", (unsigned long long)rf.commit_index);
	head(f, "krg_raft_last_applied", "gauge", "highest Raft log index applied on this node");
	fprintf(f, "krg_raft_last_applied %llu\n", (unsigned long long)rf.last_applied);
	head(f, "krg_raft_leader", "gauge", "node id of the known leader, 0 if none");
	fprintf(f, "krg_raft_leader %u\n", rf.leader);
	head(f, "krg_cluster_quorum", "gauge", "1 if this node is in a majority that has a leader");
	fprintf(f, "krg_cluster_quorum %d\n", krg_cluster_has_quorum(s->cluster));
	head(f, "krg_cluster_epoch", "gauge", "membership epoch");
	fprintf(f, "krg_cluster_epoch %llu\n", (unsigned long long)krg_cluster_epoch(s->cluster));
}

static void write_nodes(FILE *f, const struct krg_metrics_src *s)
{
	static const enum krg_node_state states[] = { KRG_NODE_ABSENT, KRG_NODE_JOINING, KRG_NODE_UP,
						      KRG_NODE_LEAVING, KRG_NODE_DOWN };
	head(f, "krg_cluster_node_state", "gauge", "1 for each node's state in the membership");
	for (size_t i = 0; i < s->cfg->n_nodes; i++) {
		uint32_t id = s->cfg->nodes[i].id;
		enum krg_node_state st = krg_cluster_node_state(s->cluster, id);
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++)
			fprintf(f, "krg_cluster_node_state{node=\"%u\",state=\"%s\"} %d\n", id,
				krg_node_state_name(states[k]), st == states[k]);
	}
	/* The figures every node broadcasts each second (src/proc/table):
	 * one scrape of any node shows the whole cluster's load. */
	static const char *const names[] = { "krg_cluster_node_load1", "krg_cluster_node_cpus",
					     "krg_cluster_node_memory_total_bytes",
					     "krg_cluster_node_memory_available_bytes", "krg_cluster_node_processes" };
	static const char *const helps[] = { "1-minute load average of each node, as it last reported it",
					     "CPU capacity of each node (cgroup quota, else online CPUs)",
					     "memory of each node", "available memory of each node",
					     "krg processes running on each node" };
	for (int m = 0; m < 5; m++) {
		head(f, names[m], "gauge", helps[m]);
		for (size_t i = 0; i < s->cfg->n_nodes; i++) {
			struct krg_node_figures nf;
			uint32_t id = s->cfg->nodes[i].id;
			if (!s->table || krg_proc_table_node(s->table, id, &nf) < 0)
				continue;  /* stale or down: no sample rather than an old one */
			double v[] = { nf.load1, nf.cpus, (double)nf.mem_total_kb * 1024,
				       (double)nf.mem_available_kb * 1024, nf.krg_procs };
			fprintf(f, "%s{node=\"%u\"} %.15g\n", names[m], id, v[m]);
		}
	}
}

static void write_procs(FILE *f, const struct krg_metrics_src *s)
{
	static const struct {
		char c;
		const char *name;
	} st[] = { { 'R', "running" }, { 'S', "sleeping" }, { 'D', "disk_sleep" }, { 'T', "stopped" },
		   { 't', "traced" }, { 'Z', "zombie" } };
	uint32_t counts[128] = { 0 };
	if (!s->table || krg_proc_table_states(s->table, counts) < 0)
		return;
	uint32_t other = 0;
	for (int c = 0; c < 128; c++)
		other += counts[c];
	head(f, "krg_processes", "gauge", "krg processes on this node by state (as krg ps lists them)");
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		fprintf(f, "krg_processes{state=\"%s\"} %u\n", st[i].name, counts[(int)st[i].c]);
		other -= counts[(int)st[i].c];
	}
	fprintf(f, "krg_processes{state=\"other\"} %u\n", other);
}

void krg_metrics_page_loop(FILE *f, void *data)
{
	const struct krg_metrics_src *s = data;
	head(f, "krg_build_info", "gauge", "krgd's version and this node's id");
	fprintf(f, "krg_build_info{version=\"%s\",node=\"%u\",cluster=\"%s\"} 1\n", KRG_VERSION, s->cfg->node_id,
		s->cfg->cluster_name);
	if (s->cluster) {
		write_raft(f, s);
		write_nodes(f, s);
	}
	write_procs(f, s);
	krg_metrics_write(f);
}

/* ---- any thread ---- */

static void write_node(FILE *f)
{
	char buf[4096];
	double l1, l5, l15;
	if (krg_read_small("/proc/loadavg", buf, sizeof(buf)) > 0 && sscanf(buf, "%lf %lf %lf", &l1, &l5, &l15) == 3) {
		head(f, "krg_node_load", "gauge", "this node's load average");
		fprintf(f, "krg_node_load{period=\"1m\"} %g\nkrg_node_load{period=\"5m\"} %g\nkrg_node_load{period=\"15m\"} %g\n",
			l1, l5, l15);
	}
	unsigned long long t[8];
	long tck = sysconf(_SC_CLK_TCK);
	if (krg_read_small("/proc/stat", buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6],
		   &t[7]) == 8 && tck > 0) {
		static const char *const modes[] = { "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal" };
		head(f, "krg_node_cpu_seconds_total", "counter", "CPU time of this machine by mode, all CPUs");
		for (int i = 0; i < 8; i++)
			fprintf(f, "krg_node_cpu_seconds_total{mode=\"%s\"} %.2f\n", modes[i], (double)t[i] / (double)tck);
	}
	head(f, "krg_node_online_cpus", "gauge", "CPUs online on this machine");
	fprintf(f, "krg_node_online_cpus %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	FILE *m = fopen("/proc/meminfo", "re");
	if (m) {
		unsigned long long total = 0, avail = 0, v;
		char key[64];
		while (fscanf(m, "%63s %llu kB\n", key, &v) == 2) {
			if (!strcmp(key, "MemTotal:"))
				total = v;
			else if (!strcmp(key, "MemAvailable:"))
				avail = v;
		}
		fclose(m);
		head(f, "krg_node_memory_total_bytes", "gauge", "memory of this machine");
		fprintf(f, "krg_node_memory_total_bytes %llu\n", total * 1024);
		head(f, "krg_node_memory_available_bytes", "gauge", "memory available for new work on this machine");
		fprintf(f, "krg_node_memory_available_bytes %llu\n", avail * 1024);
	}
}

/* DRMAA jobs: the default job stores of every user (docs/drmaa.md,
 * "State"): /run/user/UID/krg-drmaa and /tmp/krg-drmaa-UID. A store must
 * be a real directory of its user with mode 0700, as the library makes
 * it; a store named by $KRG_DRMAA_DIR elsewhere is not seen. */
#define JOBS_MAX 100000

static void count_store(const char *base, uid_t uid, uint32_t *ps, size_t *seen)
{
	struct stat st;
	if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077))
		return;
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && *seen < JOBS_MAX) {
		if (!krg_jobs_session_valid(e->d_name))
			continue;
		char sdir[4096];
		snprintf(sdir, sizeof(sdir), "%s/%s", base, e->d_name);
		if (lstat(sdir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid)
			continue;
		unsigned *seqs = NULL;
		size_t n = 0;
		if (krg_jobs_list(sdir, &seqs, &n) < 0)
			continue;
		for (size_t i = 0; i < n && *seen < JOBS_MAX; i++) {
			struct krg_job j;
			if (krg_job_load_state(sdir, e->d_name, seqs[i], &j) < 0)
				continue;
			(*seen)++;
			int p = krg_job_ps(&j);
			if (p >= 0 && p <= DRMAA_PS_FAILED)
				ps[p]++;
		}
		free(seqs);
	}
	closedir(d);
}

static void scan_bases(const char *dir, const char *prefix, const char *suffix, uint32_t *ps, size_t *seen)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	size_t pl = strlen(prefix);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, pl))
			continue;
		char *end;
		errno = 0;
		unsigned long uid = strtoul(e->d_name + pl, &end, 10);
		if (errno || end == e->d_name + pl || *end || uid > UINT32_MAX)
			continue;
		char base[4096];
		snprintf(base, sizeof(base), "%s/%s%s", dir, e->d_name, suffix);
		count_store(base, (uid_t)uid, ps, seen);
	}
	closedir(d);
}

static void write_drmaa(FILE *f)
{
	static const int states[] = { DRMAA_PS_UNDETERMINED, DRMAA_PS_QUEUED_ACTIVE, DRMAA_PS_SYSTEM_ON_HOLD,
				      DRMAA_PS_USER_ON_HOLD, DRMAA_PS_USER_SYSTEM_ON_HOLD, DRMAA_PS_RUNNING,
				      DRMAA_PS_SYSTEM_SUSPENDED, DRMAA_PS_USER_SUSPENDED,
				      DRMAA_PS_USER_SYSTEM_SUSPENDED, DRMAA_PS_DONE, DRMAA_PS_FAILED };
	uint32_t ps[DRMAA_PS_FAILED + 1] = { 0 };
	size_t seen = 0;
	scan_bases("/run/user", "", "/krg-drmaa", ps, &seen);
	scan_bases("/tmp", "krg-drmaa-", "", ps, &seen);
	head(f, "krg_drmaa_jobs", "gauge", "DRMAA jobs submitted on this node, by DRMAA state");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		fprintf(f, "krg_drmaa_jobs{state=\"%s\"} %u\n", krg_job_ps_name(states[i]), ps[states[i]]);
}

void krg_metrics_page_thread(FILE *f)
{
	write_node(f);
	write_drmaa(f);
}
