/* service.h — one way to write a krgd service.
 *
 * A service is a `struct krg_service`: a name, the services it needs,
 * init/start/stop, membership hooks and the message types and API commands
 * it owns. krgd keeps one table of them (src/krgd/services.c), starts them
 * in dependency order and stops them in reverse; it is the only place that
 * knows which services exist. Adding one is a directory with its code and
 * one line in that table (docs/architecture.md, "How to add a service").
 *
 * This header is in src/lib so that every layer can describe itself with
 * it; it names the lower layers' handles by pointer only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct krg_config;
struct krg_net;
struct krg_api_server;
struct krg_cluster;
struct krg_proc_table;
struct krg_sched;
struct krg_intercept;
struct krg_fsview;
struct krg_ipc_service;
struct krg_dsm;

/* What krgd hands to every service: the layers below, borrowed, and the
 * handles of the services started so far (a service sets its own field
 * in start; one that needs it lists that service in `needs`). */
struct krg_services {
	struct uv_loop_s *loop;
	const struct krg_config *cfg;   /* borrowed */
	struct krg_net *net;            /* borrowed */
	struct krg_api_server *api;     /* borrowed */
	struct krg_cluster *cluster;    /* borrowed */
	struct krg_proc_table *table;   /* set once the process table service runs */
	struct krg_sched *sched;        /* set once the scheduler runs (placement, capabilities) */
	struct krg_fsview *fsview;      /* the file view (fsview/fsview.h); NULL: off */
	struct krg_ipc_service *ipc;    /* the cluster's IPC service (ipc/ipc_service.h) */
	struct krg_intercept *intercept; /* IPC interception (ipc/intercept_svc.h); NULL: krg processes use the node's own IPC */
	struct krg_dsm *dsm;            /* coherent pages of shared segments (dsm/dsm_svc.h); NULL: off */
	/* A service's own helper process (kdfs's FUSE client) is krgd's
	 * machinery, not a process of the system image: the process table
	 * hides it (eviction does not try to move it). NULL: none. */
	bool (*is_helper)(void *helper_data, int pid);
	void *helper_data;
	/* Set by the checkpoint service while it runs: eviction of a process
	 * of this node that may not migrate but may be checkpointed (the
	 * scheduler's leave hook): checkpoint cluster process id, end it and
	 * restart it on node `to`. 0: under way (the process ends once its
	 * image is taken), -EINPROGRESS if it is already being evicted
	 * (asked again before it ended), or -errno with a one-line reason in
	 * err: it cannot be checkpointed (also for the failure of the
	 * checkpoint an earlier call started, told once). NULL: no
	 * checkpoint service. */
	int (*evict_ckpt)(void *evict_data, uint32_t id, uint32_t to, char *err, size_t errlen);
	void *evict_data;
};

/* A membership hook: node changed as the event says, in log order, on
 * every node; epoch is the cluster epoch of the change. */
typedef void (*krg_service_node_fn)(void *state, uint32_t node, uint64_t epoch);

struct krg_service {
	const char *name;
	/* Names of the services that must run before this one, NULL-ended
	 * (NULL: none). A name that is not in the table is an error. */
	const char *const *needs;
	/* Optional: before membership starts, for a service whose state
	 * machine rides on the cluster log (raft replays it at start). */
	int (*init)(struct krg_services *s, void **state, char *err, size_t errlen);
	/* Start; *state is what every other callback gets (NULL: off in this
	 * configuration, then no callback is called). With init, *state holds
	 * init's state on entry. 0, or -errno and one line in err. */
	int (*start)(struct krg_services *s, void **state, char *err, size_t errlen);
	/* Stop serving: in reverse start order, before membership closes. */
	void (*stop)(void *state);
	/* Optional: free what must outlive membership (after it closed). */
	void (*release)(void *state);
	/* Membership hooks (each optional): absent -> joining, -> up,
	 * -> down, -> absent, and up -> leaving (the node is being taken out:
	 * a service moves its work off it before it goes). */
	krg_service_node_fn node_add, node_up, node_down, node_remove, node_leaving;
	/* What the service registers in start, NULL-ended: its net message
	 * types and its API commands. krgd checks after start that each one
	 * is registered, so these lists stay true. */
	const char *const *msg_types;
	const char *const *api_cmds;
};

/* The order to start table[0..n) in: every service after the ones it
 * needs, otherwise in table order. order[] gets n indexes into table.
 * -ENOENT (a need not in the table), -ELOOP (a cycle), -EEXIST (a name
 * twice), with one line in err. Pure logic (tests/unit/test_service.c). */
int krg_service_order(const struct krg_service *const *table, size_t n, size_t *order, char *err, size_t errlen);
