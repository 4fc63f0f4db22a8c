/* table.h — the process table and node load service (src/proc/table*.c):
 * every node broadcasts its load (cpus from its cgroup quota, load average,
 * memory, process count) every second and keeps the others' latest values;
 * it lists the krg processes it runs (every descendant of krgd) on request.
 * Serves `krg ps`, `krg kill`, `krg top` and the per-node figures of
 * `krgadm cluster status --json`. */
#pragma once
#include <stdint.h>
#include "proc/service.h"

int krg_proc_table_start(struct krg_services *s, struct krg_proc_table **out, char *err, size_t errlen);
void krg_proc_table_stop(struct krg_proc_table *t);
/* --auto placement: the up node with the lowest load per cpu (ties: fewer
 * processes, then this node). 0 or -EAGAIN when nothing is known yet. */
int krg_proc_table_pick(struct krg_proc_table *t, uint32_t *node);
