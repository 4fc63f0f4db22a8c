/* metrics_page.h — what krgd's /metrics page says (docs/monitoring.md
 * lists every metric). */
#pragma once
#include <stdio.h>

struct krg_config;
struct krg_cluster;
struct krg_proc_table;

struct krg_metrics_src {
	const struct krg_config *cfg;
	struct krg_cluster *cluster;
	struct krg_proc_table *table;
};

/* Raft, membership, every node's load as the table has it, krg processes
 * by state, and the services' counters (lib/metrics.h). Loop thread;
 * data is a struct krg_metrics_src. */
void krg_metrics_page_loop(FILE *f, void *data);
/* This node's load, CPU time and memory from /proc, and DRMAA jobs by
 * state from the users' job stores. Any thread. */
void krg_metrics_page_thread(FILE *f);
