/* proc/pidrange.h — krgd keeps its node's pids in the node's range
 * (lib/pidrange.h, docs/migration.md "Pids"). */
#pragma once
#include "lib/pidrange.h"

struct uv_loop_s;
struct krg_config;
/* Computes this node's range, steers now and every 200 ms on LOOP
 * (a node's processes forking faster than that could overrun it). The
 * range is also kept for krg_pidrange_node(). 0 or negative errno (no
 * ns_last_pid: not root, or a kernel without it; logged, krgd runs on). */
int krg_pidrange_start(struct uv_loop_s *loop, const struct krg_config *cfg);
/* Stop steering (krgd's stop): the timer closed, so the loop can end. */
void krg_pidrange_stop(void);
/* The range krg_pidrange_start computed (lo == 0 before or without). */
struct krg_pidrange krg_pidrange_node(void);
