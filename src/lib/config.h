/* config.h — krgd configuration (krgd.conf). One "key = value" per line,
 * '#' starts a comment. See docs/krgd.conf.example for every key.
 * Errors name the file and line: "krgd.conf:12: unknown key 'foo'". */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include "nodelist.h"

#define KRG_DEFAULT_CONFIG "/etc/krg/krgd.conf"
#define KRG_DEFAULT_SOCKET "/run/krg/krgd.sock"
#define KRG_DEFAULT_PORT 7480

struct krg_config_node {
	uint32_t id;      /* cluster-wide node id, 0..255 */
	char host[64];    /* IPv4 address */
	uint16_t port;    /* TCP port krgd listens on */
};

struct krg_config {
	char path[PATH_MAX];          /* file this was read from */
	uint32_t node_id;             /* this node */
	bool has_node_id;             /* false: a joining machine (address set), id from the cluster */
	char address_host[64];        /* `address`: where a joining machine listens */
	uint16_t address_port;
	char join[96];                /* `join`: a member's HOST[:PORT] to ask for an id */
	char cluster_name[64];
	struct krg_config_node nodes[KRG_MAX_NODES]; /* every node, this one included */
	size_t n_nodes;
	char state_dir[PATH_MAX];     /* raft log and node state; 0700 */
	char key_file[PATH_MAX];      /* 32-byte cluster key, hex; must be 0600 */
	char api_socket[PATH_MAX];    /* local API (unix socket) */
	bool encrypt;                 /* encrypt inter-node traffic (integrity is always on) */
	unsigned heartbeat_ms;        /* link keepalive period */
	unsigned failure_timeout_ms;  /* silence after which the majority marks a node down */
	unsigned election_timeout_ms; /* raft election timeout */
	unsigned request_timeout_ms;  /* default timeout of a request to a peer */
	unsigned link_idle_ms;        /* a relaxed link idle this long is closed; 0 = never */
	bool lazy_links;              /* links on demand (docs/protocol.md "Lazy links"); off: every node dials every node */
	int log_level;                /* enum krg_log_level */
	/* Bounds on the local API socket for each non-root user (server.h). */
	unsigned api_max_conns_per_user;
	unsigned api_max_mib_per_user;   /* request bytes buffered, MiB */
	unsigned api_idle_ms;
	unsigned migrate_max_workers;    /* outgoing migrations at once; the rest queue */
	bool ipc_intercept;              /* krg processes' System V msg/sem calls served by krg (docs/ipc.md) */
	bool migrant_outlives_home;      /* a migrant whose home is declared down runs on, adopted here (docs/reconfiguration.md) */
	bool ipc_backup;                 /* every change to a queue or set on a second node before the answer */
	bool ipc_moves;                  /* a queue moves to the node of the receiver it serves (docs/ipc-service.md) */
	/* kdfs (docs/kdfs.md): off while kdfs_mount is empty. */
	char kdfs_mount[PATH_MAX];       /* where this node mounts the cluster's tree */
	char kdfs_dir[PATH_MAX];         /* this node's share: chunks and the metadata store */
	unsigned kdfs_replicas;          /* copies of each new chunk */
	unsigned kdfs_stripe_count;      /* chunk groups of a new file (at most the nodes) */
	unsigned kdfs_stripe_size_kib;   /* its stripe unit, KiB: a power of two, 64..65536 */
	unsigned kdfs_repair_grace_ms;   /* after a node is marked down: wait this long, then re-replicate */
	unsigned kdfs_repair_mibps;      /* re-replication bandwidth per node, MiB/s */
	/* Prometheus metrics over HTTP (docs/monitoring.md): off while port is 0. */
	char metrics_host[64];           /* IPv4 address; 127.0.0.1 unless configured */
	uint16_t metrics_port;
	/* The file view (docs/fsview.md): node-local paths that a krg process
	 * running away from its home sees as home's. Space separated absolute
	 * paths; empty or fsview = off: every process sees its node's files. */
	bool fsview;
	char fsview_paths[1024];
	/* A view no process of this node has been in for fsview_reap_grace_ms
	 * (nor handed out within it) is ended; krgd looks every
	 * fsview_reap_tick_ms. Home ends its servers for a node whose link has
	 * been down that long too. */
	unsigned fsview_reap_tick_ms;
	unsigned fsview_reap_grace_ms;
};

void krg_config_defaults(struct krg_config *c);
/* Parse file at path into c (defaults applied first). Returns 0, -errno;
 * on error err holds one line with file:line. */
int krg_config_load(const char *path, struct krg_config *c, char *err, size_t errlen);
/* Same, from a string (tests); name is used in messages. */
int krg_config_parse(const char *name, const char *text, struct krg_config *c, char *err, size_t errlen);
/* The node entry of id, or NULL. */
const struct krg_config_node *krg_config_node(const struct krg_config *c, uint32_t id);
/* Add a node learned from the cluster's table: 1 added, 0 already there,
 * -errno. The array never moves, so borrowed entries stay valid. */
int krg_config_add_node(struct krg_config *c, uint32_t id, const char *host, uint16_t port);
/* "HOST[:PORT]" (IPv4, default port 7480); why gets one line. */
int krg_config_parse_address(const char *v, char *host, size_t hostlen, uint16_t *port, char *why, size_t whylen);
/* Config path from $KRG_CONFIG or the default. */
const char *krg_config_default_path(void);
