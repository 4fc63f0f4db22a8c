/* cluster-int.h — private to src/cluster. */
#pragma once
#include <raft.h>
#include <raft/uv.h>
#include "cluster/cluster.h"
#include "proto/cluster.pb-c.h"

#define KRG_CLUSTER_SCHEMA 1

struct node_entry {
	enum krg_node_state state;
	uint64_t epoch;         /* epoch of the last change */
	uint64_t changed_ms;    /* wall clock of the last change */
	char reason[192];
	bool configured;
	char host[64];          /* joined at run time: its address (replicated) */
	uint16_t port;
	bool proposing;         /* leader: a proposal for this node is in flight */
};

struct registry_entry {
	struct registry_entry *next;
	char *registry, *key;
	uint8_t *value;
	size_t len;
};

struct node_cb {
	struct node_cb *next;
	krg_cluster_node_cb cb;
	void *data;
};

struct tunnel;
struct pending_connect;
struct lease_hold;
struct lead_wait;
struct lease_req;

/* A service state machine (sm.c). */
struct sm_service {
	struct sm_service *next;
	char *name;                        /* owned */
	struct krg_cluster_sm_ops ops;
	void *data;                        /* borrowed */
};

/* The result of the last service op applied: libraft hands it to the
 * proposer's apply callback right after apply, on the leader. */
struct sm_result {
	bool valid;                        /* the op's service is known here */
	uint8_t *data;                     /* owned */
	size_t len;
};

/* Someone waiting for the local replica to reach a raft index. */
struct sm_waiter {
	struct sm_waiter *next;
	uint64_t index;
	void (*cb)(int status, void *data);
	void *data;
};

struct krg_cluster {
	uv_loop_t *loop;
	const struct krg_config *cfg;
	struct krg_config *cfg_rw;   /* the same: nodes that join are added to it */
	bool joined;                 /* this node joined a running cluster: no bootstrap */
	struct raft_change change_req;
	bool change_busy;            /* leader: a raft configuration change in flight */
	struct raft_transfer transfer_req;
	bool transfer_busy;          /* leader: leaving the table, handing leadership over */
	struct krg_net *net;
	struct krg_api_server *api;
	void (*shutdown_cb)(struct krg_cluster *c, void *data);
	void *data;

	/* Replicated state (the FSM). */
	struct node_entry nodes[KRG_MAX_NODES];
	uint64_t epoch;
	struct registry_entry *registry;
	struct node_cb *node_cbs;
	struct sm_service *services;
	struct sm_result sm_last;
	struct sm_waiter *waiters;
	uv_timer_t wait_timer;       /* checks waiters after applies */
	/* Leader: followers learn a commit only from the next AppendEntries,
	 * a heartbeat (100-200 ms) away; a barrier entry sent right after an
	 * apply carries the new commit index at once (sm.c, "notify"). */
	uint64_t changed_index;      /* last entry applied to the FSM, 0: unknown */
	struct raft_barrier notify_req;
	bool notify_wanted, notify_busy;
	/* Follower: read barriers share the leader's answer (sm.c, "read
	 * barrier"): those that came while a question is out ask the next. */
	struct sm_question *bar_asked;  /* the questions out, newest first */
	struct sm_barrier *bar_next;    /* for the next question */

	/* Read leases (lease.c). Times are lease_now() ms. */
	struct {
		/* follower */
		uint64_t until;          /* its lease, 0: none */
		uint64_t index;          /* ... usable once applied up to here */
		uint32_t leader;         /* ... from this leader */
		bool asking;
		uint64_t acked_sent;     /* last applied index told the leader */
		/* leader */
		uint64_t term;           /* the term the fields below are of */
		uint64_t hold_until;     /* no result out before (a former leader's leases) */
		uint64_t lead_until;     /* a majority followed it within the lease */
		uint64_t round;          /* lead round: id, sent, answers, needed */
		uint64_t round_sent;
		bool round_open;
		unsigned round_ok, round_need;
		uint64_t holder_until[KRG_MAX_NODES];
		uint64_t acked[KRG_MAX_NODES]; /* each holder's applied index */
		struct lease_hold *holds;
		struct lead_wait *lead_waiters;
		struct lease_req *reqs;  /* requests out */
		uv_timer_t timer;        /* lead rounds / lease requests */
		uv_timer_t hold_timer;   /* the next lease to run out under a hold */
	} lease;

	/* Raft. */
	struct raft raft;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft_uv_transport transport;
	bool raft_started;
	char raft_dir[PATH_MAX];
	char address[96];

	/* Tunnel transport state. */
	raft_uv_accept_cb accept_cb;
	struct tunnel *tunnels;
	struct pending_connect *connects;
	uint64_t next_tunnel;
	raft_uv_transport_close_cb transport_close_cb;
	uv_timer_t transport_timer;  /* defers the transport close callback */
	int closing_handles;         /* tunnel/connect handles still closing */

	/* This node's leave: services still moving work off it (by name),
	 * and what the ones done said they moved (krg_cluster_leave_hold). */
	struct {
		char who[16];
		bool held;
		char note[64];
	} leave_holds[4];

	/* Failure detector. */
	uv_timer_t tick;
	uint64_t started_ms;    /* uv_now at start: reference for nodes never heard */
	bool bootstrap_proposed;

	/* Shutdown. */
	bool closing;
	void (*close_cb)(void *data);
	void *close_data;
	int close_pending;
};

/* fsm.c */
void cluster_fsm_init(struct krg_cluster *c);
void cluster_fsm_free(struct krg_cluster *c);
/* Encode a command into a raft_malloc'd buffer. */
int cluster_command_encode(const Krg__Cluster__Command *cmd, struct raft_buffer *out);

void cluster_apply_set_state(struct krg_cluster *c, const Krg__Cluster__SetNodeState *s);

/* join.c */
void cluster_join_init(struct krg_cluster *c);
void cluster_learn_node(struct krg_cluster *c, uint32_t id, const char *host, uint16_t port);
void cluster_apply_add_node(struct krg_cluster *c, const Krg__Cluster__AddNode *a, struct sm_result *res);
/* Propose that the machine at host:port joins; cb gets the 4-byte id (0: none free). */
int cluster_join_propose(struct krg_cluster *c, const char *host, uint16_t port, const char *reason,
			 krg_cluster_sm_cb cb, void *data);
/* Whether the machine at addr (HOST[:PORT]) may join: a well-formed
 * address, not a configured node's, and a quorum; why says why not. */
int cluster_join_check(struct krg_cluster *c, const char *addr, char *host, size_t hostlen, uint16_t *port, char *why,
		       size_t whylen);
/* Run the tick now (then every heartbeat again): the next raft
 * configuration change right after one is done, not a heartbeat later. */
void cluster_kick(struct krg_cluster *c);
/* Every tick: relax the links where neither end is a raft voter. */
void cluster_relax_links(struct krg_cluster *c);
/* Leader, every tick: one step of raft configuration change if needed. */
void cluster_reconcile(struct krg_cluster *c);

/* sm.c */
void cluster_sm_init(struct krg_cluster *c);
/* Apply a ServiceOp; the result slot for apply_cb. */
struct sm_result *cluster_sm_apply(struct krg_cluster *c, const Krg__Cluster__ServiceOp *op);
int cluster_sm_snapshot(struct krg_cluster *c, Krg__Cluster__ServiceState ***out, size_t *n);
void cluster_sm_snapshot_free(Krg__Cluster__ServiceState **st, size_t n);
void cluster_sm_restore(struct krg_cluster *c, Krg__Cluster__ServiceState **st, size_t n);
/* cb(0) once raft's last applied index is >= index (at once if it is). */
int cluster_wait_applied(struct krg_cluster *c, uint64_t index, void (*cb)(int status, void *data), void *data);
/* Leader: the index a reader must reach to have everything committed. */
uint64_t cluster_read_index(struct krg_cluster *c);
/* After an apply: let waiters whose index is reached go (on the next tick). */
void cluster_sm_applied(struct krg_cluster *c);
/* Stop: fail waiters, free services (the timer is closed by the caller). */
void cluster_sm_free(struct krg_cluster *c);

/* lease.c */
void cluster_lease_init(struct krg_cluster *c);
void cluster_lease_start(struct krg_cluster *c);
/* Leader: cb once every lease holder applied index (at once if none). */
int cluster_lease_release(struct krg_cluster *c, uint64_t index, void (*cb)(void *data), void *data);
/* Leader: cb(0) once a majority confirmed it leads (at once if recently);
 * -EAGAIN if not the leader. */
int cluster_lead_confirm(struct krg_cluster *c, void (*cb)(struct krg_cluster *c, int status, void *data),
			 void *data);
/* Follower, after applies: tell the leader while holding a lease. */
void cluster_lease_applied(struct krg_cluster *c);
/* Closing: releases holds, fails waiters; returns the handles it closes. */
int cluster_lease_close(struct krg_cluster *c, uv_close_cb closed);
void cluster_lease_free(struct krg_cluster *c);

/* tunnel.c */
void cluster_tunnel_init(struct krg_cluster *c);
void cluster_tunnel_peer_down(struct krg_cluster *c, uint32_t peer);

/* membership.c */
int cluster_propose(struct krg_cluster *c, const Krg__Cluster__Command *cmd, krg_cluster_done_cb cb, void *data);
/* Propose a ServiceOp command; cb gets the result once the local replica has it. */
int cluster_propose_sm(struct krg_cluster *c, const Krg__Cluster__Command *cmd, krg_cluster_sm_cb cb, void *data);
uint64_t cluster_now_unix_ms(void);
/* Raft leader's node id, 0 if none known. */
uint32_t cluster_leader(struct krg_cluster *c);

/* cluster_api.c */
int cluster_api_register(struct krg_cluster *c);
