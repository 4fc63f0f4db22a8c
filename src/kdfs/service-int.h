/* service-int.h — private to krgd's kdfs service (service*.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "kdfs/chunk.h"
#include "kdfs/kdfs.h"
#include "kdfs/meta.h"
#include "proto/kdfs.pb-c.h"

/* Bytes written on this node and not yet published in the metadata
 * (Extend at flush): stat and read here see them at once. */
struct pending {
	struct pending *next;
	uint64_t ino;
	uint64_t size;          /* end of the furthest write */
	bool dirty;             /* written since the last flush */
};

struct krg_api_server;

struct krg_kdfs {
	uv_loop_t *loop;
	const struct krg_config *cfg;
	struct krg_net *net;
	struct krg_cluster *cluster;
	uint32_t self;
	char dir[4096];                 /* kdfs_dir */
	struct kdfs_meta *meta;
	struct kdfs_chunks *chunks;
	struct pending *pending;
	struct kdfs_repair *repair;     /* repair.c */
	struct kdfs_fill *fills;        /* chunks this node is being filled with (repair.c) */

	/* The FUSE client. */
	char client_path[4096];
	pid_t client_pid;
	uv_pipe_t pipe;                 /* our end of the socketpair */
	bool pipe_open;
	uint8_t *rbuf;                  /* frames being assembled */
	size_t rlen, rcap;
	uv_timer_t respawn;
	bool stopping;
};

/* A request from the client, answered once with kdfs_reply. */
struct kreq {
	struct krg_kdfs *k;
	uint64_t id;
	Krg__Kdfs__Request *req;        /* owned */
	/* data path state (service_io.c) */
	uint64_t off;                   /* progress inside the request */
	uint8_t *buf;                   /* read buffer */
	size_t len;
	int waiting;                    /* replica answers outstanding */
	int status;
	uint64_t piece_off;             /* read, write: the current piece's offset in its chunk */
	size_t piece;                   /* and its length (layout.c maps it) */
	Krg__Kdfs__Chunk *chunk;        /* owned copy */
	size_t try;                     /* read: replica tried */
	uint32_t failed[16];            /* write: replicas that failed */
	size_t n_failed;
	void (*rep_done)(struct kreq *q, int status);  /* replicate: when every replica answered */
	void (*bump_then)(struct kreq *q, int status); /* after replicas were dropped: rep_done's */
	bool need_bump;                 /* a drop moved the chunk's version on */
	void (*after)(struct kreq *q, int status);     /* truncate: what the caller does next */
	void *ctx;                      /* admin ops: the API call to answer; repairs: the repair */
	uint64_t ino;                   /* changes with no request (repairs): the file */
	bool stale;                     /* a replica answered ESTALE: redo with a fresh map */
	bool draining;                  /* the drop is this leaving node's own (repair.c) */
	int stale_tries;
};

/* service.c */
void kdfs_reply(struct kreq *q, int status, const Krg__Kdfs__Reply *body);
void kreq_free(struct kreq *q);
struct pending *kdfs_pending(struct krg_kdfs *k, uint64_t ino, bool create);
/* Propose a metadata op; cb gets the decoded result (NULL on failure). */
typedef void (*kdfs_op_cb)(struct kreq *q, int status, Krg__Kdfs__OpResult *res);
int kdfs_propose(struct kreq *q, Krg__Kdfs__Op *op, kdfs_op_cb cb);
/* Up: a member that takes new copies. Alive: up or leaving (`nodes
 * del`): it still serves and takes changes to the replicas it holds. */
bool kdfs_node_up(struct krg_kdfs *k, uint32_t node);
bool kdfs_node_alive(struct krg_kdfs *k, uint32_t node);
/* Copies each chunk of a file should have: its layout's, else
 * kdfs_replicas, at most the member nodes (absent ones do not count). */
unsigned kdfs_copies_wanted(struct krg_kdfs *k, const Krg__Kdfs__Inode *in);
/* Copies a new chunk of ino gets: its layout's, else kdfs_replicas. */
unsigned kdfs_replicas_of(struct krg_kdfs *k, uint64_t ino);
/* The striping a new regular file gets when its directory sets none:
 * kdfs_stripe_count (at most the configured nodes), kdfs_stripe_size_kib. */
void kdfs_default_layout(struct krg_kdfs *k, uint32_t *count, uint32_t *size);

/* repair.c: re-replication of chunks with too few live copies. */
int kdfs_repair_start(struct krg_kdfs *k);
void kdfs_repair_stop(struct krg_kdfs *k);
/* A node went down: repairs wait kdfs_repair_grace_ms from now. */
void kdfs_repair_node_down(struct krg_kdfs *k);
/* On a node being filled: may this change (a write of len bytes at off,
 * or a truncate at off) go to its replica now? -EAGAIN when it cannot be
 * merged with blocks not copied yet. 0 for chunks not being filled. */
int kdfs_fill_admit(struct krg_kdfs *k, uint64_t ino, uint32_t index, uint64_t gen, uint64_t off, uint64_t len,
		    bool trunc);
/* This node is leaving: hold its leave until no chunk lists it (its
 * chunks get copies on the up nodes, then it drops its replicas). */
void kdfs_repair_drain_begin(struct krg_kdfs *k);
/* Progress of this node's repairs (status). */
void kdfs_repair_progress(struct krg_kdfs *k, uint32_t *running, uint64_t *done, uint64_t *total);

/* service_admin.c: kdfs.status, kdfs.show, kdfs.set on the local API;
 * kdfs.space between nodes. */
int kdfs_admin_register(struct krg_kdfs *k, struct krg_api_server *api);

/* service_io.c */
void kdfs_io_read(struct kreq *q);
void kdfs_io_write(struct kreq *q);
/* Drop q->failed from q->chunk, bump the others, then done. */
void kdfs_io_drop(struct kreq *q, void (*done)(struct kreq *q, int status));
/* An empty write at q->chunk's version to its replicas and filling nodes. */
void kdfs_io_bump(struct kreq *q, void (*done)(struct kreq *q, int status));
/* Before a truncate is proposed: cut the chunk that holds the new end. */
void kdfs_io_truncate(struct kreq *q, void (*then)(struct kreq *q, int status));
/* fsync: after the flush, every chunk's replicas on stable storage; replies. */
void kdfs_io_fsync(struct kreq *q);
int kdfs_io_register(struct krg_kdfs *k);
