/* metrics.h — krgd's counters for the Prometheus page (docs/monitoring.md).
 *
 * The services count what happened (a migration done, a frame sent) with
 * the calls below, on krgd's loop thread; the metrics HTTP thread reads the
 * counts and writes them in the Prometheus text format. Counts are
 * relaxed atomics, with no lock: krgd forks workers at any time, and a
 * child must never inherit a lock that the HTTP thread held. Figures that
 * are read at scrape time (node, processes, Raft) are not kept here. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

enum krg_metric_op { KRG_MOP_MIGRATION, KRG_MOP_CHECKPOINT, KRG_MOP_RESTART, KRG_MOP__N };

/* One operation ended on this node (as its source: the node that dumped,
 * moved or restored). bytes: what it wrote or sent (0 if not known);
 * ms: how long it took, from request to answer. */
void krg_metrics_op(enum krg_metric_op op, bool ok, uint64_t bytes, uint64_t ms);
/* A migration's frozen time (process stopped), beside its duration. */
void krg_metrics_migration_frozen(uint64_t ms);
/* Image bytes received from another node for a restart here. */
void krg_metrics_restart_rx(uint64_t bytes);
/* A transport frame to or from peer (0..255) on channel 0 (control) or
 * 1 (bulk), with its length on the wire. */
void krg_metrics_frame(uint32_t peer, int channel, bool tx, size_t bytes);

/* The cluster IPC service's traffic (docs/ipc.md, "Cost across nodes"):
 * what a System V call costs in messages between nodes. */
enum krg_metric_ipc {
	KRG_MIPC_CALL_LOCAL,   /* a call run by this node's engine (its home is here) */
	KRG_MIPC_CALL_REMOTE,  /* a call sent to its home on another node: a request and an answer */
	KRG_MIPC_DONE_LOCAL,   /* a parked call completed for a caller of this node */
	KRG_MIPC_DONE_REMOTE,  /* ... for a caller on another node: one message */
	KRG_MIPC_BACKUP,       /* a change copied to its backup node before the answer: a round trip */
	KRG_MIPC__N
};
void krg_metrics_ipc(enum krg_metric_ipc what);

/* Write every count above in the Prometheus text format (version 0.0.4). */
void krg_metrics_write(FILE *f);
