/* lib/pidrange.h — pids that do not collide across nodes (issue 14 item 12,
 * docs/architecture.md "Pids"). Kerrighed gave each node a slice of one
 * global pid space; on stock kernels krgd gets the same effect by
 * steering its node's pid allocation: the kernel hands out pids in order
 * after /proc/sys/kernel/ns_last_pid, so krgd keeps that cursor inside
 * the node's own range. A process that migrates (or a restored image)
 * then finds its pid and its threads' tids free on any other node, and
 * the restore's clone3 set_tid gives them back unchanged.
 *
 * Ranges: slot k = [k * R, (k + 1) * R) with R = pid_max / (highest node
 * id of the configuration + 2); node N has slot N + 1, slot 0 stays for
 * what a machine starts before krgd (boot-time pids). Every node must see
 * the same configuration and pid_max for the ranges to be disjoint. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct krg_pidrange {
	pid_t lo, hi; /* [lo, hi): this node's pids; lo == 0: no range (too many nodes for pid_max) */
};

/* The range of node SELF in a cluster whose highest node id is MAX_ID on
 * machines whose pid_max is PID_MAX (pure: unit-tested). */
struct krg_pidrange krg_pidrange_of(uint32_t self, uint32_t max_id, long pid_max);

/* Puts the pid cursor of the caller's pid namespace back to the start of
 * R when it is outside R or near its end (the kernel skips pids in use).
 * 1 if it was moved, 0 if not, negative errno. */
int krg_pidrange_steer(const struct krg_pidrange *r);

/* fork() whose child gets pid WANT if it is free (clone3 set_tid, needs
 * CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), else a plain fork(); the
 * caller compares. Same return as fork(). The child must not count on
 * being fork()'s: atfork handlers ran in an intermediate process. */
pid_t krg_pidrange_fork_as(pid_t want);

struct krg_config;
/* The range of the node CFG describes, from its configuration and this
 * machine's pid_max (lo == 0: none). */
struct krg_pidrange krg_pidrange_of_config(const struct krg_config *cfg);
