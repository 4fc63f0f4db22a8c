/* migrate.h — live process migration through krgd (src/proc/migrate/,
 * docs/migration.md): API "mig.move" from any node; the node running the
 * process freezes and dumps it, streams the image over the bulk channel to
 * the target, which restores it under a holder; at home the original
 * becomes a deputy that keeps its pid, parent and real fds. */
#pragma once
#include <stdint.h>
#include <sys/types.h>
#include "lib/service.h"

struct krg_migsvc;

/* krgd's table line (lib/service.h). */
extern const struct krg_service krg_service_migrate;

/* The services below reach it only through the hooks it registers at
 * start: the process table's kind hook (which processes are migrants or
 * its machinery, proc/table.h) and the scheduler's mover (proc/schedsvc.h). */
