/* service.h — what krgd hands to each service when it starts it. Services
 * register what they need (net message types, API commands, membership
 * callbacks) themselves; krgd only starts and stops them in order. */
#pragma once
#include <stddef.h>
#include <uv.h>
#include "lib/config.h"

struct krg_net;
struct krg_api_server;
struct krg_cluster;
struct krg_proc_table;
struct krg_sched;
struct krg_intercept;
struct krg_ipc_service;
struct krg_fsview;

struct krg_services {
	uv_loop_t *loop;
	const struct krg_config *cfg;   /* borrowed */
	struct krg_net *net;            /* borrowed */
	struct krg_api_server *api;     /* borrowed */
	struct krg_cluster *cluster;    /* borrowed */
	struct krg_proc_table *table;   /* set once the process table service runs */
	struct krg_sched *sched;        /* set once the scheduler runs (placement, capabilities) */
	struct krg_fsview *fsview;      /* the file view (fsview/fsview.h); NULL: off */
	struct krg_intercept *intercept; /* IPC interception (ipc/intercept_svc.h); NULL: krg processes use the node's own IPC */
	struct krg_ipc_service *ipc;    /* the cluster's System V IPC (ipc/ipc_service.h); NULL: not running */
};
