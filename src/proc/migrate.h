/* migrate.h — live process migration through krgd (src/proc/migrate/,
 * docs/migration.md): API "mig.move" from any node; the node running the
 * process freezes and dumps it, streams the image over the bulk channel to
 * the target, which restores it under a holder; at home the original
 * becomes a deputy that keeps its pid, parent and real fds. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/service.h"

struct krg_migsvc;

/* krgd's table line (lib/service.h). */
extern const struct krg_service krg_service_migrate;

/* Did process pid (krgd's pid namespace) leave this node by a committed
 * migration (it runs on elsewhere), rather than end? True while its holder
 * is here and for 10 s after, once per departure. The IPC interception
 * (krgd's glue) asks before taking a followed process's end for its exit
 * (SEM_UNDO). */
bool krg_mig_moved_on(pid_t pid);

/* The services below reach it only through the hooks it registers at
 * start: the process table's kind hook (which processes are migrants or
 * its machinery, proc/table.h) and the scheduler's mover (proc/schedsvc.h). */
