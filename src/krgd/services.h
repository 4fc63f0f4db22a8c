/* services.h — krgd's service table and how it runs it (services.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "lib/service.h"

#define KRGD_MAX_SERVICES 32

struct krgd_services {
	struct krg_services s;                 /* what every service gets */
	size_t n;                              /* services in the table */
	size_t order[KRGD_MAX_SERVICES];       /* start order (indexes into the table) */
	void *state[KRGD_MAX_SERVICES];        /* by table index */
	bool live[KRGD_MAX_SERVICES];          /* inited or started, not stopped: gets node events */
	size_t started;                        /* how many of order[] were started */
};

/* Order the table, run the init hooks and watch the membership for the
 * node hooks; after krg_cluster_new, before krg_cluster_start (a service
 * with init may have registered a state machine raft replays into).
 * rs->s holds loop, cfg, net, api and cluster. 0 or -errno, one line in err. */
int krgd_services_init(struct krgd_services *rs, char *err, size_t errlen);
/* Start them all in order; after each, check that it registered the
 * message types and commands it declares. 0 or -errno (err). */
int krgd_services_start(struct krgd_services *rs, char *err, size_t errlen);
/* Stop the started ones in reverse order (before membership closes). */
void krgd_services_stop(struct krgd_services *rs);
/* Release hooks in reverse order, once membership and the transport are closed. */
void krgd_services_release(struct krgd_services *rs);
