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
	char reason[96];
	bool configured;
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

struct krg_cluster {
	uv_loop_t *loop;
	const struct krg_config *cfg;
	struct krg_net *net;
	struct krg_api_server *api;
	void (*shutdown_cb)(struct krg_cluster *c, void *data);
	void *data;

	/* Replicated state (the FSM). */
	struct node_entry nodes[KRG_MAX_NODES];
	uint64_t epoch;
	struct registry_entry *registry;
	struct node_cb *node_cbs;

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

/* tunnel.c */
void cluster_tunnel_init(struct krg_cluster *c);
void cluster_tunnel_peer_down(struct krg_cluster *c, uint32_t peer);

/* membership.c */
int cluster_propose(struct krg_cluster *c, const Krg__Cluster__Command *cmd, krg_cluster_done_cb cb, void *data);
uint64_t cluster_now_unix_ms(void);
/* Raft leader's node id, 0 if none known. */
uint32_t cluster_leader(struct krg_cluster *c);

/* cluster_api.c */
int cluster_api_register(struct krg_cluster *c);
