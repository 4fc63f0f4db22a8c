/* table.h — the process table and node load service (src/proc/table*.c):
 * every node broadcasts its load (cpus from its cgroup quota, load average,
 * memory, process count) every second and keeps the others' latest values;
 * it lists the krg processes it runs (every descendant of krgd) on request.
 * Serves `krg ps`, `krg kill`, `krg top` and the per-node figures of
 * `krgadm cluster status --json`. */
#pragma once
#include <stdint.h>
#include <sys/types.h>
#include "lib/service.h"

/* krgd's table line (lib/service.h); sets s->table. */
extern const struct krg_service krg_service_table;
/* A node's latest load figures, as the scheduler's probes and placement
 * policies use them (src/proc/sched). */
struct krg_node_figures {
	double cpus;               /* capacity from the cgroup quota, else online CPUs */
	double load1;
	uint64_t mem_total_kb, mem_available_kb;
	uint32_t krg_procs;
	uint32_t runnable;         /* processes in state R (0 from an older krgd) */
	double io_kbps;            /* the scheduler's node I/O probe (0 if not sent) */
	double cpu_used;           /* the scheduler's cpu.used probe (0 if not sent) */
	uint64_t age_ms;           /* age of the sample in this node's cache */
};
/* Node id's figures if usable for placement: sampled less than 5 s ago,
 * and the node is this one or up and linked. 0 or -EAGAIN. */
int krg_proc_table_node(struct krg_proc_table *t, uint32_t id, struct krg_node_figures *out);
/* The scheduler's latest node probes, sent with this node's next load
 * broadcasts (the table samples load and memory, the scheduler I/O and
 * CPU use: each figure is sampled once). */
void krg_proc_table_set_probes(struct krg_proc_table *t, double io_kbps, double cpu_used);
/* krg processes of this node (as `krg ps` lists them) by state letter of
 * /proc/PID/stat: counts['R'], counts['S'], counts['Z'], ... For the
 * metrics page (docs/monitoring.md). Loop thread. 0 or -errno. */
int krg_proc_table_states(const struct krg_proc_table *t, uint32_t counts[128]);

/* What a krg process of this node is to the table. A service above the
 * table (migration) says so through a hook it registers at its start:
 * the table calls no service by name. */
enum krg_proc_kind {
	KRG_PROC_ORDINARY = 0, /* listed as this node's */
	KRG_PROC_MIGRANT = 1,  /* a migrant running here: *id its cluster-wide id, *home its home node */
	KRG_PROC_HIDDEN = 2,   /* krgd's machinery (deputy, holder, worker, file view): not listed */
};
typedef enum krg_proc_kind (*krg_proc_kind_fn)(void *data, pid_t pid, uint32_t *id, uint32_t *home);
void krg_proc_table_set_kind(struct krg_proc_table *t, krg_proc_kind_fn fn, void *data);
/* The hook's answer; KRG_PROC_ORDINARY without one. */
enum krg_proc_kind krg_proc_table_kind(const struct krg_proc_table *t, pid_t pid, uint32_t *id, uint32_t *home);
/* The pid here of the migrant ID whose home was declared down and which
 * this node adopted (migrant_outlives_home, docs/reconfiguration.md), or
 * 0: `krg kill` finds it here, not at its id's home. */
typedef pid_t (*krg_proc_orphan_fn)(void *data, uint32_t id);
void krg_proc_table_set_orphan(struct krg_proc_table *t, krg_proc_orphan_fn fn, void *data);
