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

/* For the process table: 0 an ordinary krg process; 1 a migrant running
 * here (*id its cluster-wide id, *home its home node); 2 not to be listed
 * (a deputy: the migrant is listed where it runs; a holder or worker;
 * a krg-fsview of the file view). */
int krg_mig_proc_kind(pid_t pid, uint32_t *id, uint32_t *home);

/* Told once a move started by krg_migsvc_move ended: status 0 or -errno,
 * total_ms from its start to the end, frozen_ms the time the process did
 * not run (start to running on the target; 0 if it failed). */
typedef void (*krg_migsvc_done_fn)(int status, uint64_t total_ms, uint64_t frozen_ms, void *data);

/* The scheduler's balancer: start moving process id, which runs on this
 * node, to node `to`, as root, nobody waiting for the result (logged);
 * done (may be NULL) is told its cost. 0 once started, else -errno and a
 * one-line reason in err (done is then not called). */
int krg_migsvc_move(uint32_t id, uint32_t to, krg_migsvc_done_fn done, void *data, char *err, size_t errlen);
