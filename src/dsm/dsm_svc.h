/* dsm_svc.h — the DSM inside krgd (docs/dsm.md, "In krgd"): one dsm_node
 * per shared segment used on or homed at this node, its page messages on
 * krg's authenticated transport (message type "dsm.page"), its
 * userfaultfds and residency timer on krgd's libuv loop.
 *
 * The nodes sharing a segment are every node of the configuration, in
 * the order of their ids: the DSM's dense index i is the i-th smallest
 * id, the same on every krgd. A node that receives a message for a
 * segment it does not hold yet makes it (the message carries the size):
 * it homes its share of the pages whether or not a process attached there.
 * Everything runs on the loop's thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "dsm/dsm.h"

struct krg_net;
struct krg_dsm;

#define KRG_DSM_MSG "dsm.page"

/* nodes[0..n): every node id of the cluster (this one included), any
 * order. min_residency_ns as dsm_config's. 0 or -errno (-EINVAL: self not
 * among them, more than DSM_MAX_NODES). */
int krg_dsm_new(uv_loop_t *loop, struct krg_net *net, uint32_t self, const uint32_t *nodes, size_t n,
		uint64_t min_residency_ns, struct krg_dsm **out);
/* Drops every segment (their mappings in processes stop being served:
 * a fault there waits until the process is killed) and closes the
 * handles; freed once they are closed. NULL is fine. */
void krg_dsm_free(struct krg_dsm *d);

/* The segment seg (a cluster-wide name) of npages pages on this node,
 * made on first use: *memfd is its local object (borrowed: valid until
 * krg_dsm_drop). 0 or -errno (-EINVAL: npages differs from the
 * segment's). */
int krg_dsm_segment(struct krg_dsm *d, uint64_t seg, uint64_t npages, int *memfd);
/* A process attached segment seg at base with userfaultfd uffd (taken):
 * the view id, or -errno (uffd closed). */
int krg_dsm_attach(struct krg_dsm *d, uint64_t seg, int uffd, uint64_t base);
void krg_dsm_detach(struct krg_dsm *d, uint64_t seg, int view);
/* Whether view's mapping of seg is still there (dsm_node_view_probe):
 * 0, -ESRCH (its process exited or exec'd), or another -errno. */
int krg_dsm_view_probe(struct krg_dsm *d, uint64_t seg, int view);
/* A process attached to seg on this node forked: its child maps it as
 * view child (served already; the callback counts the attach). */
typedef void (*krg_dsm_fork_fn)(void *ctx, uint64_t seg, int parent, int child);
void krg_dsm_on_fork(struct krg_dsm *d, krg_dsm_fork_fn fn, void *ctx);
/* Whether one more process can attach seg here (a view is free). */
bool krg_dsm_room(struct krg_dsm *d, uint64_t seg);
/* The segment is destroyed cluster-wide (its last detach was here):
 * forgotten here and, by a DESTROY message, on every node. */
void krg_dsm_destroy(struct krg_dsm *d, uint64_t seg);

/* FUTEX_WAKE of the word at off in seg, served on this node: every
 * other node's callback (krg_dsm_on_futex_wake) gets it. */
void krg_dsm_futex_wake(struct krg_dsm *d, uint64_t seg, uint64_t off, uint32_t bits);
typedef void (*krg_dsm_futex_fn)(void *ctx, uint64_t seg, uint64_t off, uint32_t bits);
void krg_dsm_on_futex_wake(struct krg_dsm *d, krg_dsm_futex_fn fn, void *ctx);

/* Node `node` is down (membership): dsm_node_down in every segment held
 * here, and in every segment made later (docs/dsm.md, "Failures"). A node
 * that comes back does not serve the segments that were held meanwhile. */
void krg_dsm_node_down(struct krg_dsm *d, uint32_t node);

struct krg_dsm_stats {
	uint64_t segments;        /* held on this node now */
	uint64_t messages_in, messages_out, refused;
	struct dsm_stats pages;   /* summed over the segments held now */
};
void krg_dsm_get_stats(const struct krg_dsm *d, struct krg_dsm_stats *out);

/* krgd's table line (lib/service.h): sets krg_services.dsm. */
extern const struct krg_service krg_service_dsm;
