/* cluster.h — membership on Raft (libraft).
 *
 * Every configured node is a Raft voter. The replicated state machine holds
 * the node table (absent, joining, up, leaving, down per node), the cluster
 * epoch (bumped by every change of the table) and small named registries
 * that later services use (key -> bytes). Only the Raft leader, which by
 * construction sees a majority, decides that a node is down or up again, so
 * a minority partition makes no decision. Raft's own traffic runs through
 * the authenticated transport (src/net) in tunnels ("raft.tunnel").
 *
 * Services register callbacks for node add / up / down / remove / leaving
 * (krgd's service table has one, src/krgd/services.c); they fire
 * on every node, in log order, when the change is applied.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "lib/config.h"
#include "lib/nodelist.h"
#include "net/net.h"

struct krg_cluster;
struct krg_api_server;

enum krg_node_state {
	KRG_NODE_ABSENT = 0,
	KRG_NODE_JOINING = 1,
	KRG_NODE_UP = 2,
	KRG_NODE_LEAVING = 3,
	KRG_NODE_DOWN = 4,
};

enum krg_node_event {
	KRG_NODE_EV_ADD,    /* absent -> joining */
	KRG_NODE_EV_UP,     /* joining/down -> up */
	KRG_NODE_EV_DOWN,   /* up/leaving -> down */
	KRG_NODE_EV_REMOVE, /* -> absent */
	KRG_NODE_EV_LEAVING, /* up -> leaving (`nodes del`): move work off it before it goes */
};

const char *krg_node_state_name(enum krg_node_state s);
const char *krg_node_event_name(enum krg_node_event e);

typedef void (*krg_cluster_node_cb)(struct krg_cluster *c, uint32_t node, enum krg_node_event ev,
				    uint64_t epoch, void *data);
/* status 0 when the change is committed, else negative errno and msg. */
typedef void (*krg_cluster_done_cb)(int status, const char *msg, void *data);

struct krg_cluster_options {
	struct krg_config *config;       /* borrowed for the cluster's lifetime; nodes
					  * that join a running cluster are added to it */
	bool joined;                     /* this node joined a running cluster (no bootstrap) */
	struct krg_net *net;             /* borrowed */
	struct krg_api_server *api;      /* borrowed; status/nodes commands registered on it */
	/* Called when `cluster poweroff` asks this node to stop. */
	void (*shutdown_cb)(struct krg_cluster *c, void *data);
	void *data;
};

int krg_cluster_new(uv_loop_t *loop, const struct krg_cluster_options *o, struct krg_cluster **out,
		    char *err, size_t errlen);
int krg_cluster_start(struct krg_cluster *c, char *err, size_t errlen);
/* Stop raft and free everything; cb when done. */
void krg_cluster_close(struct krg_cluster *c, void (*cb)(void *data), void *data);

int krg_cluster_on_node(struct krg_cluster *c, krg_cluster_node_cb cb, void *data);

enum krg_node_state krg_cluster_node_state(const struct krg_cluster *c, uint32_t node);
uint64_t krg_cluster_epoch(const struct krg_cluster *c);
/* This node follows or is a leader that a majority accepts. */
bool krg_cluster_has_quorum(struct krg_cluster *c);
/* This node's view of Raft, for the metrics page (docs/monitoring.md). */
struct krg_cluster_raft_figures {
	const char *role;          /* leader, follower, candidate or unavailable */
	uint64_t term, commit_index, last_applied;
	uint32_t leader;           /* 0: none known */
};
void krg_cluster_raft_figures(struct krg_cluster *c, struct krg_cluster_raft_figures *out);

/* Change nodes' membership through the leader: add moves absent nodes to
 * joining (then up when heard), del moves members to leaving (then absent).
 * force (del): the reason says so, and the leaving node ends the processes
 * that can neither migrate nor be checkpointed instead of refusing. */
int krg_cluster_change_nodes(struct krg_cluster *c, const struct krg_nodeset *nodes, bool add, bool force,
			     krg_cluster_done_cb cb, void *data);
#define KRG_CLUSTER_DEL_FORCE_REASON "nodes del --force"
/* The reason of a node's last change (local replica, borrowed). */
const char *krg_cluster_node_reason(struct krg_cluster *c, uint32_t node);
/* The epoch of a node's last change (local replica; 0: never changed). */
uint64_t krg_cluster_node_epoch(const struct krg_cluster *c, uint32_t node);
/* Eviction refused by the leaving node (a process that cannot leave):
 * leaving -> up, with why as the reason `nodes del` prints. */
int krg_cluster_node_refuse_leave(struct krg_cluster *c, uint32_t node, const char *why);

/* Eviction: the leaving node tells the cluster it is empty (its services'
 * leave hooks are done); moves it leaving -> absent. moved: processes it
 * moved away, restarted: how many of them by checkpoint and restart, for
 * the reason shown. */
int krg_cluster_node_left(struct krg_cluster *c, uint32_t node, unsigned moved, unsigned restarted);
/* A service that moves its own work off this node while it leaves (kdfs
 * re-replicates its chunks) holds the leave: krg_cluster_node_left is
 * -EBUSY while any service holds it. note (may be NULL), given when the
 * hold is let go, is added to the reason the node left with ("kdfs: 12
 * chunk(s) moved"). Local to this node; -ENOSPC past 4 services. */
int krg_cluster_leave_hold(struct krg_cluster *c, const char *who, bool held, const char *note);
/* The first service holding this node's leave, NULL: none. */
const char *krg_cluster_leave_holder(const struct krg_cluster *c);

/* Registries: set (value NULL = delete) through the log; get reads the
 * local replica (borrowed pointer, valid until the next apply). */
int krg_cluster_registry_set(struct krg_cluster *c, const char *registry, const char *key, const void *value,
			     size_t len, krg_cluster_done_cb cb, void *data);
int krg_cluster_registry_get(const struct krg_cluster *c, const char *registry, const char *key,
			     const uint8_t **value, size_t *len);
/* Call cb on every entry of registry in the local replica (borrowed
 * pointers; cb must not wait for a set it makes to apply); cb returns
 * true to stop. The number of entries visited. */
typedef bool (*krg_cluster_registry_cb)(const char *key, const uint8_t *value, size_t len, void *data);
size_t krg_cluster_registry_each(const struct krg_cluster *c, const char *registry, krg_cluster_registry_cb cb,
				 void *data);

/* Service state machines on the cluster's log (kdfs's metadata). A
 * service registers before krg_cluster_start, since raft replays the log
 * into it at start. Every node must run the same services: a node that
 * does not know one skips its entries and leaves it out of its snapshots.
 * The callbacks run on the loop, on every node, in log order. */
struct krg_cluster_sm_ops {
	/* Apply one op; deterministic (same bytes in, same state and result
	 * out on every node). *res is malloc'd (or NULL), handed to the
	 * proposer. A bad op is the proposer's problem: encode the error in
	 * the result, never fail here. */
	void (*apply)(void *data, const uint8_t *op, size_t len, uint8_t **res, size_t *res_len);
	/* The whole state, malloc'd, for a raft snapshot. */
	int (*snapshot)(void *data, uint8_t **state, size_t *len);
	/* Replace the whole state (state NULL: back to empty). */
	int (*restore)(void *data, const uint8_t *state, size_t len);
};
int krg_cluster_sm_register(struct krg_cluster *c, const char *service, const struct krg_cluster_sm_ops *ops,
			    void *data);
/* status 0: res/len is the result the op gave when applied (borrowed
 * during the call), and this node's replica already includes the op. */
typedef void (*krg_cluster_sm_cb)(int status, const uint8_t *res, size_t len, void *data);
int krg_cluster_sm_propose(struct krg_cluster *c, const char *service, const uint8_t *op, size_t len,
			   krg_cluster_sm_cb cb, void *data);
/* Read barrier: cb(0) once this node's replica includes every entry the
 * leader had applied when asked (close-to-open reads on followers). */
typedef void (*krg_cluster_barrier_cb)(int status, void *data);
int krg_cluster_sm_barrier(struct krg_cluster *c, krg_cluster_barrier_cb cb, void *data);
/* The same for service state only: cb(0) once this node's replica has
 * every service op whose result was handed out anywhere before the call.
 * With a read lease (src/cluster/lease.c) that needs no round trip, and
 * cb may be called before this returns (0 then). */
int krg_cluster_sm_read_barrier(struct krg_cluster *c, krg_cluster_barrier_cb cb, void *data);
