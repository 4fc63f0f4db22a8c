/* ckptsvc-int.h — the checkpoint service's own header (src/proc/ckpt/):
 * what ckpt_service.c (the dump/restart/transfer machinery) shares with
 * periodic.c (krg checkpoint --every and the restart of those
 * applications when their node dies). Not for other modules. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "ckpt/ckpt.h"
#include "lib/service.h"
#include "proc/xfer.h"
#include "proto/ckptsvc.pb-c.h"

#define RESULT_MAX 4096
/* Most processes of one application whose writes are tracked between its
 * periodic checkpoints (the others are saved in full each time). */
#define CKPT_PERIODIC_TRACK 16

struct krg_periodic;

/* Answers go to a krg_origin (proc/xfer.h): an API call, a peer's
 * request, or krgd itself (its cb gets status, text and the packed
 * Result: periodic.c). */

struct job {
	struct job *next;
	struct krg_origin o;
	uv_pipe_t pipe;
	bool restart;
	bool freeze;       /* a freeze or thaw, not counted as a checkpoint */
	uint64_t t_start;  /* uv_now at fork, for the metrics */
	char buf[RESULT_MAX];
	size_t len;
};

struct krg_ckptsvc {
	struct krg_services *s;
	uint32_t self;
	pid_t krgd;
	bool running;
	struct job *jobs;
	struct krg_periodic *periodic;  /* periodic.c's state */
	struct evicting *evicting;      /* evict.c: processes being checkpointed away, one request each */
};

/* Static: net and API handlers cannot be unregistered. */
extern struct krg_ckptsvc the_svc;

struct work {
	bool restart;
	int freeze;  /* 1: freeze, -1: thaw, instead of a dump */
	/* dump */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint32_t appid;
	struct ckpt_dump_opts opts;
	/* periodic checkpoints (periodic.c): write trackers of the
	 * application's processes (their fds are krgd's, inherited by the
	 * worker) and the version they are relative to (0: a full one) */
	struct ckpt_track track[CKPT_PERIODIC_TRACK];
	size_t n_track;
	uint32_t parent_version;
	bool parent_kdfs;  /* that version is in kdfs, not this node's store */
	/* restart */
	uint32_t version;
	uid_t caller;
	bool new_pidns;  /* the worker stays, as the parent of the namespace's init and of the root */
	pid_t krgd;      /* the worker's parent */
	int isock;       /* restart: -1, or where the IPC listener goes to krgd (ipc/intercept.h) */
	int fsns;        /* restart: -1, or the file view the application is restored in (fsview.h) */
	bool sysv_only;  /* restart: the image's System V objects only, no process */
	bool sysv_keep;  /* restart after eviction: the image's objects still alive are kept (KRG_IPC_RESTORE_KEEP) */
	bool recovery;   /* restart after its node died (periodic.c): a file view whose node is down is
			  * not a refusal (those files are gone), the node's own files are used */
	uint32_t ran_on; /* recovery: the dead node it ran on (its SEM_UNDO records move here) */
	/* restart from an image found off the loop (kdfs, ckptsvc_restart_here):
	 * path[0] set, the worker restores exactly it; the loop uses what was
	 * read of it, never the file itself */
	char path[512];
	uint32_t view_home;  /* its `view` file, 0: none */
	uid_t img_uid;
	gid_t img_gid;
};

/* A worker for w, answering o. 0, or -errno (o not answered). */
int ckptsvc_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w);
void ckptsvc_answer(struct krg_ckptsvc *c, struct krg_origin o, int status, const char *text, uint32_t id);
/* In a fork of krgd (a worker, ckpt_kdfs.c's store access): the signals
 * krgd handles back to their defaults, none blocked. */
void ckptsvc_child_signals(void);
/* kdfs is this cluster's image store (krgd.conf kdfs_mount set; whether
 * it is mounted only a worker may look: krgd serves that mount). */
bool ckptsvc_kdfs_on(const struct krg_ckptsvc *c);
/* Restart w (appid, version, caller; recovery, sysv_only, new_pidns) on
 * this node from the kdfs store, the image looked up in libuv's thread
 * fork (never on the loop: krgd serves the mount; ckpt_kdfs.c). Not there:
 * missing(c, o, w, q) decides (q: the request, NULL for krgd's own), or
 * the refusal goes to o. 0 (o answered now or later), or -errno. */
typedef int (*ckptsvc_missing_fn)(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w,
				  const Krg__Ckptsvc__Restart *q);
int ckptsvc_restart_here(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w,
			 const Krg__Ckptsvc__Restart *q, ckptsvc_missing_fn missing);
/* ckpt_kdfs.c: app's periodic versions (description "periodic checkpoint
 * of app N") of image_id in the kdfs store up to version `upto` are
 * removed, but version `keep` and the chain it builds on (keep 0: none),
 * by a fork (never on the loop). */
void ckptsvc_kdfs_prune(struct krg_ckptsvc *c, uint32_t image_id, uint32_t appid, uint32_t keep, uint32_t upto);
#define KDFS_PRUNE_ALL UINT32_MAX
/* Send ckpt.restart {appid, version, node} to node (its answer to o). 0, or -errno (o not answered). */
int ckptsvc_restart_on(struct krg_ckptsvc *c, struct krg_origin o, uint32_t appid, uint32_t version, uint32_t node,
		       bool sysv_keep);
/* Copy STORE/<q->appid>/v<q->version> to node q->node (q->copy_only: only
 * store it there; else restore it there); uid: the caller, checked. With
 * periodic, the target counts the version as a periodic one (pruned when
 * a newer one is recorded). 0, or -errno (o not answered). */
int ckptsvc_copy(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Restart *q, uid_t uid, bool periodic);
/* ckpt.dump for a process of this node (checks the caller uid may). */
int ckptsvc_dump_local(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uid_t uid);
/* The same with write trackers (n_track of them, borrowed: krgd's fds,
 * open until the answer) relative to version parent_version of the
 * application's images (0: a full checkpoint that starts them), in kdfs
 * if parent_kdfs, else in this node's store. An increment goes into the
 * store its parent is in (it names its parent as the directory next to
 * it): if the worker's store is the other one, the image is full. */
int ckptsvc_dump_local_incr(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uid_t uid,
			    const struct ckpt_track *track, size_t n_track, uint32_t parent_version, bool parent_kdfs);

/* The new process id a restart's answer (status, packed Result) gives;
 * 0 if it failed or gave none. */
uint32_t ckptsvc_result_id(int status, const void *result, size_t len);

/* The line for failure r about process or app id (its home node asked). */
const char *ckptsvc_why(int r, char *buf, size_t len, uint32_t id);

/* ckpt_sysv.c: a dump of the process w->pid (its application's System V
 * objects asked for first, saved with the image), and a restart (the
 * image's objects recreated first). 0 (o answered, now or later), or
 * -errno (o not answered). */
int ckptsvc_sysv_check_then_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w, uint32_t id);
int ckptsvc_sysv_restore_then_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w);
/* The same with the image's sysvipc.img already read (saved: its n
 * objects, len bytes; freed here). */
int ckptsvc_sysv_restore_saved(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w, uint8_t *saved,
			       size_t len, size_t n);

/* ckpt_rx.c: the target of a restart on another node. Net handlers of
 * "ckpt.recv" and "ckpt.file" (data: the service); at stop, every
 * transfer being received fails and its partial directory goes. */
void ckptsvc_on_recv(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void ckptsvc_on_file(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void ckptsvc_rx_stop(void);

/* periodic.c */
int periodic_start(struct krg_ckptsvc *c);
void periodic_stop(struct krg_ckptsvc *c);
/* The log declared node down (service hook): the fence's knowledge that
 * this node was declared down while cut off. */
void periodic_node_down(struct krg_ckptsvc *c, uint32_t node);
/* krg checkpoint --every on the application's node, once the caller is
 * known to own root pid (the application's root, cluster id `id`). */
void periodic_set(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uint32_t id, uid_t uid);
/* A version of image `image_id` made or received for periodic
 * checkpoints: recorded so that it is removed once superseded. */
void periodic_index_add(uint32_t image_id, uint32_t version);

/* evict.c: the services' evict_ckpt hook (lib/service.h). */
int ckptsvc_evict(void *data, uint32_t id, uint32_t to, char *err, size_t errlen);
