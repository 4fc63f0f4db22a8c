/* sched_probe.c — the probes of one node: per-process CPU use (sampled
 * between two periods), size (RSS) and I/O rate (rchar/wchar of
 * /proc/PID/io), and the node's CPU use and I/O load (the sums over every
 * process of its pid namespace). The process list comes from the process
 * table's scan (procfs_scan); node capacity, load and memory from its load
 * cache (krg_proc_table_node), not sampled twice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/macro.h"
#include "proc/table.h"
#include "proc/procid.h"
#include "proc/sched/sched-int.h"
#include "lib/procfs.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int read_io(pid_t pid, uint64_t *r, uint64_t *w)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int got = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (sscanf(line, "rchar: %llu", &v) == 1) {
			*r = v;
			got++;
		} else if (sscanf(line, "wchar: %llu", &v) == 1) {
			*w = v;
			got++;
		}
	}
	fclose(f);
	return got == 2 ? 0 : -EIO;
}

static const struct sched_proc_probe *find_prev(const struct sched_probes *p, pid_t pid, uint64_t start)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->procs[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n && p->procs[lo].pid == pid && p->procs[lo].start_ticks == start)
		return &p->procs[lo];
	return NULL;
}

static int cmp_pid(const void *a, const void *b)
{
	const struct sched_proc_probe *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

int sched_probe_sample(struct sched_probes *p, const struct krg_proc_table *t, pid_t krgd, uint32_t self)
{
	_cleanup_free_ struct proc_info *v = NULL;
	size_t n = 0;
	int r = procfs_scan(krgd, &v, &n);
	if (r < 0)
		return r;
	uint64_t now = mono_ms();
	double dt = p->t_ms && now > p->t_ms ? (double)(now - p->t_ms) / 1000.0 : 0;
	long tck = procfs_clk_tck();
	uint64_t up_ms = 0;
	procfs_uptime_ms(&up_ms);
	long page_kb = sysconf(_SC_PAGESIZE) / 1024;
	struct sched_proc_probe *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	size_t k = 0;
	uint64_t io_all = 0, cpu_all = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t rb = 0, wb = 0;
		bool io_ok = read_io(v[i].pid, &rb, &wb) == 0;
		if (io_ok)
			io_all += rb + wb;
		cpu_all += v[i].cpu_ticks;
		if (!v[i].krg || k >= SCHED_MAX_PROCS)
			continue;
		/* A migrant here keeps its id; deputies, holders and workers
		 * are krgd's machinery, not processes to schedule. */
		uint32_t id = krg_procid_make(self, (uint32_t)v[i].pid), hid, home;
		enum krg_proc_kind kind = krg_proc_table_kind(t, v[i].pid, &hid, &home);
		if (kind == KRG_PROC_HIDDEN)
			continue;
		if (kind == KRG_PROC_MIGRANT)
			id = hid;
		struct sched_proc_probe *q = &out[k++];
		q->pid = v[i].pid;
		q->id = id;
		q->state = v[i].state;
		q->migrant = kind == 1;
		uint64_t born = v[i].start_ticks * 1000 / (uint64_t)(tck > 0 ? tck : 100);
		q->age_ms = up_ms > born ? up_ms - born : 0;
		q->start_ticks = v[i].start_ticks;
		q->cpu_ticks = v[i].cpu_ticks;
		q->io_bytes_r = rb;
		q->io_bytes_w = wb;
		q->rss_kb = v[i].rss_pages * (uint64_t)page_kb;
		snprintf(q->comm, sizeof(q->comm), "%s", v[i].comm);
		const struct sched_proc_probe *prev = find_prev(p, q->pid, q->start_ticks);
		q->rated = prev && dt > 0;
		if (q->rated) {
			q->cpu_pct = q->cpu_ticks >= prev->cpu_ticks
					     ? (double)(q->cpu_ticks - prev->cpu_ticks) / (double)tck / dt * 100.0
					     : 0;
			q->io_r_kbps = rb >= prev->io_bytes_r ? (double)(rb - prev->io_bytes_r) / 1024.0 / dt : 0;
			q->io_w_kbps = wb >= prev->io_bytes_w ? (double)(wb - prev->io_bytes_w) / 1024.0 / dt : 0;
		}
	}
	qsort(out, k, sizeof(*out), cmp_pid);
	/* Node totals: processes that exited between samples make the sums
	 * drop; a drop counts as no activity rather than a negative rate. */
	if (dt > 0 && p->t_ms) {
		p->node_io_kbps = io_all >= p->node_io_bytes ? (double)(io_all - p->node_io_bytes) / 1024.0 / dt : 0;
		p->node_cpu_used = cpu_all >= p->node_cpu_ticks
					   ? (double)(cpu_all - p->node_cpu_ticks) / (double)tck / dt
					   : 0;
	}
	p->node_io_bytes = io_all;
	p->node_cpu_ticks = cpu_all;
	free(p->procs);
	p->procs = out;
	p->n = k;
	p->t_ms = now;
	return 0;
}

void sched_probes_free(struct sched_probes *p)
{
	free(p->procs);
	p->procs = NULL;
	p->n = 0;
}
