/* ipc_glue.h — krgd's wiring of the IPC interception (ipc_glue.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct krg_intercept;
struct krg_intercept_local;
struct krg_ipc_service;
struct krg_proc_table;

struct krg_ipc_glue {
	uint32_t self;                      /* this node */
	struct krg_intercept *in;           /* the listener service; NULL: not started */
	struct krg_intercept_local *local;  /* the backend when it is one engine on this node */
	struct krg_ipc_service *svc;        /* borrowed: the cluster's IPC service, when it serves them */
	const struct krg_proc_table *table; /* borrowed: a migrant keeps its home's id (its kind hook) */
	struct krg_dsm *dsm;                /* borrowed: System V segments shared across nodes; NULL: node-local */
};

/* Start the listener service with its backend: the cluster's IPC service
 * svc (borrowed; must outlive krg_ipc_glue_stop), or, NULL, one engine
 * on this node. 0, or -errno and one line. */
int krg_ipc_glue_start(struct krg_ipc_glue *g, uv_loop_t *loop, uint32_t self, struct krg_ipc_service *svc, char *err,
		       size_t errlen);
void krg_ipc_glue_stop(struct krg_ipc_glue *g);
/* krgd's table line (lib/service.h); sets s->intercept when ipc_intercept is on. */
extern const struct krg_service krg_service_ipc_intercept;
