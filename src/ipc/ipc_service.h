/* ipc_service.h — krgd's cluster-wide System V IPC service (docs/ipc.md,
 * "Across the cluster"; docs/kddm.md).
 *
 * One IPC space spans the cluster. Per kind (queues, semaphore sets) the
 * service keeps Kerrighed's shape on KDDM sets: a key map (key -> id,
 * homed by the hash of the key) and the objects (homed by the hash of the
 * id's index). A queue or a set is served at its home by the Linux-semantics
 * engine (ipc_engine.h); every call on it is shipped there (KDDM call),
 * callers on other nodes that block wait at the home, and their
 * completions are pushed back to the caller's node. New objects are
 * created at the key's home (or, for IPC_PRIVATE, at the caller's node)
 * under an index that hashes to that node, so two nodes racing for one
 * key meet at one node and get one object, and no node allocates for
 * another. Limits (msgmni, semmni, semmns) count the whole cluster.
 *
 * The interception layer (intercept_svc.h) calls the four entry points
 * below; the signatures follow its backend ops one for one. Everything
 * runs on krgd's loop thread.
 *
 * Stability: this header only grows.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ipc/ipc_engine.h"

struct krg_services;
struct kddm;
struct krg_ipc_service;

/* The answer to a submitted call. reply is owned by the callee (release it
 * with krg_ipc_reply_release). Called exactly once per successful submit
 * unless the call was cancelled first; it may be called from inside
 * submit (an object homed here that needs no wait). */
typedef void (*krg_ipc_service_done_fn)(void *cookie, struct krg_ipc_reply *reply);

/* Take a call of process `who` under token (unique on this node among the
 * calls not yet done). who and req are borrowed for the duration of the
 * call (the service copies what it keeps). 0: done will be called; or a
 * negative errno for the caller right away (done is not called). */
int krg_ipc_service_submit(struct krg_ipc_service *svc, const struct krg_ipc_caller *who,
			   const struct krg_ipc_req *req, uint64_t token, krg_ipc_service_done_fn done,
			   void *cookie);

/* The caller of token went away before its answer (a signal, its death,
 * a migration). done is not called for it any more.
 *   0          removed before anything happened (nothing to undo);
 *   -EALREADY  done was already called: use undeliverable() if its answer
 *              did not reach the caller;
 *   -ENOENT    no such token.
 * A call that completed at its home while the cancel was on its way is
 * undone by the service itself (the message goes back to the head of its
 * queue, the semops are reverted): nothing lost, nothing applied twice. */
int krg_ipc_service_cancel(struct krg_ipc_service *svc, uint64_t token);

/* done was called but the answer could not reach the caller: undo the call
 * at the object's home (ipc_engine.h krg_ipc_engine_undeliverable). req and
 * reply as the call had them (borrowed). */
void krg_ipc_service_undeliverable(struct krg_ipc_service *svc, const struct krg_ipc_caller *who,
				   const struct krg_ipc_req *req, const struct krg_ipc_reply *reply);

/* A krg process ended on this node (wherever it was created): its SEM_UNDO
 * adjustments are applied at the home of every set it has records in, and
 * calls it still had waiting are dropped. */
void krg_ipc_service_process_exit(struct krg_ipc_service *svc, uint64_t proc_id, int32_t pid);

/* This node is about to leave the cluster cleanly (before KDDM hears of
 * it): the message queues that moved here (their owner is this node, not
 * their home) go back to their homes with their messages; callers waiting
 * here re-issue their calls there. krgd calls it from its leaving hook. */
void krg_ipc_service_leaving(struct krg_ipc_service *svc);

/* ---- krgd ----------------------------------------------------------------- */

/* Start on krgd's services (net, cluster, api). Registers the KDDM
 * transport ("kddm" messages), the sets, membership callbacks and the API
 * commands "ipc.status" (krgadm ipc status, krg ipcs) and "ipc.rm" (krg
 * ipcrm). Limits: this node's /proc/sys/kernel, the same everywhere for
 * a cluster created by krgadm vcluster. err gets one line. */
int krg_ipc_service_start(struct krg_services *s, struct krg_ipc_service **out, char *err, size_t errlen);
void krg_ipc_service_stop(struct krg_ipc_service *svc);
/* krgd's table line (lib/service.h); sets s->ipc. */
extern const struct krg_service krg_service_ipc;

/* ---- without krgd (unit tests: several services in one process) ---------- */

/* A service on an existing KDDM instance (the caller owns k and drives
 * its membership; free the service before k). limits borrowed (copied). now_fn: CLOCK_REALTIME in
 * ns (NULL: the real clock). */
int krg_ipc_service_new(struct kddm *k, const struct krg_ipc_limits *limits, uint64_t (*now_fn)(void),
			struct krg_ipc_service **out);
void krg_ipc_service_free(struct krg_ipc_service *svc);
/* Run timeouts whose deadline passed (krgd runs it from a timer). */
void krg_ipc_service_tick(struct krg_ipc_service *svc);
/* The earliest semtimedop deadline parked here (ns, CLOCK_REALTIME), or
 * UINT64_MAX. */
uint64_t krg_ipc_service_next_deadline(struct krg_ipc_service *svc);

/* ---- listing ----------------------------------------------------------- */

/* One object as `krgadm ipc status` and `krg ipcs` show it. */
struct krg_ipc_obj_info {
	uint32_t kind;                 /* KRG_IPC_MSG or KRG_IPC_SEM */
	int32_t id;
	int32_t key;
	uint32_t home;                 /* node serving it */
	uint64_t users;                /* bit n: node n has callers using it (nodes < 64) */
	struct krg_ipc_perm perm;
	uint64_t qnum, cbytes, qbytes; /* queues */
	uint64_t nsems;                /* sets */
	int64_t ctime;
};

/* ---- checkpoint ------------------------------------------------------------ */

/* What krg_ipc_service_created_by found. */
struct krg_ipc_created {
	int status;                     /* 0; -ETIMEDOUT: node did not answer by the deadline;
	                                 * another -errno: node's answer was that error */
	uint32_t node;                  /* with status < 0: the first node that failed */
	size_t n;                       /* objects found */
	struct krg_ipc_obj_info *info;  /* n: kind, id, key, perm, home (to name them) */
	uint8_t **objs;                 /* n: each a packed krg.ipc.Object (ipc.proto), whole */
	size_t *lens;
};
/* Told once, when every live node answered or at the deadline. res and
 * everything in it borrowed for the call. */
typedef void (*krg_ipc_created_fn)(void *data, const struct krg_ipc_created *res);
/* The queues and semaphore sets that one of procs[0..n) (cluster process
 * ids, as the interception gives its callers; copied) created and that
 * still exist: each live node is asked once, all at once, for those it
 * homes (each home recorded the creator when it made the object), and
 * nodes that have not answered within deadline_ms fail the query. 0 and cb
 * later, from krgd's loop (maybe from inside this call), or -errno and no
 * cb. */
int krg_ipc_service_created_by(struct krg_ipc_service *svc, const uint64_t *procs, size_t n,
			       unsigned deadline_ms, krg_ipc_created_fn cb, void *data);

/* Told once: 0, every object is back; or the first failure and its
 * object (kind, id, key; borrowed): -EEXIST another object has its id,
 * -EADDRINUSE another object has its key, -EPERM not the owner's, -ENOSPC
 * a limit, -EBADMSG bad bytes, or the failure of the node asked. What was
 * recreated before a failure is removed again. */
typedef void (*krg_ipc_restored_fn)(void *data, int status, const struct krg_ipc_obj_info *failed);
/* A restart's objects (a packed krg.ipc.Saved from its image, borrowed)
 * recreated under their ids and keys, at their homes, all at once. owner:
 * the image's user; unless 0 (root) every object must be that user's.
 * Creator and SEM_UNDO process ids are moved to node (the restarted
 * processes keep their pids there). 0 and cb later (maybe from inside),
 * or -errno and no cb.
 * KRG_IPC_RESTORE_KEEP (a recovery after the application's node died):
 * an object still in the cluster under the image's id and key (its home
 * lived on, or its backup took over) is the application's own, newer
 * than the image: it is kept as it is; only the objects that died are
 * recreated. Without it such an object is refused (-EEXIST). */
#define KRG_IPC_RESTORE_KEEP 1u

/* A recovery restarted processes under new cluster ids (another node,
 * same pids): every live node moves the SEM_UNDO records it holds from
 * pairs[2i] to pairs[2i+1] (n pairs, at most 65536), so that the new
 * process's exit applies them. Sent before the processes run: their
 * calls and exits from this node reach each node after it (one link,
 * in order). 0 or -errno. */
int krg_ipc_service_undo_rename(struct krg_ipc_service *svc, const uint64_t *pairs, size_t n);
int krg_ipc_service_restore(struct krg_ipc_service *svc, const uint8_t *saved, size_t len, uid_t owner, uint32_t node,
			    unsigned flags, krg_ipc_restored_fn cb, void *data);
