/* krg.h — libkrg: krg from a C program (link with -lkrg; the local krgd
 * must run). docs/migration.md.
 *
 * Every function returns 0 or a negative errno; krg_last_error() then
 * gives one line saying why (the daemon's words when it answered). */
#pragma once
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Move a running process to node `node`, as `krg migrate` does. `pid` is a
 * cluster-wide id (as krg ps shows it: home node << 22 | pid) or a pid of
 * this node. A user may move only their own processes (root: any krg
 * process). Returns once the process runs on `node` (its pid and parent
 * stay at home: see docs/migration.md). -ESRCH: no such krg process,
 * -EPERM, -EHOSTDOWN: node not up, -EALREADY: it is there already. */
int krg_migrate(pid_t pid, int node);

/* Move the calling process to `node`. Returns 0 in the moved process,
 * running on `node` (nothing in its memory or threads changed), or a
 * negative errno with the process still here. The other threads of the
 * process move with it. */
int krg_migrate_self(int node);

/* One line about the last failure of this thread's libkrg call. */
const char *krg_last_error(void);

#ifdef __cplusplus
}
#endif
