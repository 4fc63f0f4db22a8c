/* intercept_svc.h — krgd's listener for the System V IPC calls of krg
 * processes (intercept.h installs the filter; docs/ipc.md,
 * "Interception"). One listener fd per application tree; each
 * notification is decoded (the caller's memory read with
 * process_vm_readv, its credentials from /proc/TID/status, the
 * notification re-checked after both), handed to a backend, and answered
 * when the backend is done (outputs written with process_vm_writev, then
 * SECCOMP_IOCTL_NOTIF_SEND).
 *
 * A caller blocked in a call can be interrupted by a signal: the kernel
 * then drops the notification and the syscall restarts (or fails with
 * EINTR). The service finds out (a new call from the same thread, or a
 * periodic SECCOMP_IOCTL_NOTIF_ID_VALID of every held call) and cancels
 * the call; one that completed meanwhile is finished as undelivered, so
 * the backend puts back what it took. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ipc/ipc_engine.h"

/* The most supplementary groups a caller may have for its calls to be
 * served (Linux allows 65536; beyond this many the call fails ENOMEM). */
#define KRG_INTERCEPT_MAX_GROUPS 4096
/* msgsnd/msgrcv sizes up to this are read/written (msgmax above it is
 * not supported: such calls fail EINVAL). */
#define KRG_INTERCEPT_MAX_MSG (4u << 20)
/* semop arrays up to this many operations are read (above: E2BIG). */
#define KRG_INTERCEPT_MAX_SOPS 65536u
/* SETALL/GETALL: values read/written up to this many per set. */
#define KRG_INTERCEPT_MAX_SEMS 65536u

/* The answer to a submitted call: reply owned by the callee (the listener
 * releases it). Exactly once per submit unless cancelled first; it may come
 * from inside submit. */
typedef void (*krg_intercept_done_fn)(void *cookie, struct krg_ipc_reply *reply);

/* What serves the calls: the cluster's IPC service (ipc_service.h), or an
 * engine on this node alone (intercept_local.c). Versioned: fields are
 * only ever added at the end. */
#define KRG_INTERCEPT_BACKEND_V1 1
struct krg_intercept_backend {
	unsigned version;          /* KRG_INTERCEPT_BACKEND_V1 */
	const char *name;          /* for logs */
	/* Take a call under token (unique on this node). 0: done will be
	 * called; or -errno for the caller right away (done is not called).
	 * who and req are borrowed for the duration of submit. */
	int (*submit)(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req, uint64_t token,
		      krg_intercept_done_fn done, void *cookie);
	/* The caller went away before done (a signal, its death): done is not
	 * called any more; if the call had completed meanwhile, the backend
	 * undoes it itself (nothing lost, nothing applied twice). */
	void (*cancel)(void *ctx, uint64_t token);
	/* After done: the answer could not reach the caller (a signal took it
	 * from its syscall just then). Undo the call: req, reply as given. */
	void (*undeliverable)(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req,
			      const struct krg_ipc_reply *reply);
	/* A process that used SEM_UNDO ended on this node. */
	void (*process_exit)(void *ctx, uint64_t proc_id, int32_t pid);
	/* The cluster-wide id of local process tgid (krgd's pid namespace). */
	uint64_t (*proc_id)(void *ctx, pid_t tgid);
	/* Optional (NULL: never). Followed process tgid is gone from this node
	 * because it migrated away and runs on elsewhere: its end here is not
	 * its exit, and process_exit is not called for it. */
	bool (*moved_on)(void *ctx, pid_t tgid);
};

struct krg_intercept;

struct krg_intercept_opts {
	unsigned max_pending_per_user; /* calls waiting at once per caller euid (0: 4096); more get ENOMEM */
	unsigned check_ms;             /* how often held calls are checked for a signal (0: 50 ms) */
};

/* The listener service of one krgd, served by `backend` (borrowed, with
 * its ctx, until krg_intercept_stop). */
int krg_intercept_start(uv_loop_t *loop, const struct krg_intercept_backend *backend, void *ctx,
			const struct krg_intercept_opts *opts, struct krg_intercept **out);
/* Serve the application behind listener fd `fd` (taken). 0 or -errno. */
int krg_intercept_adopt(struct krg_intercept *in, int fd);
/* A socketpair for a child of krgd that will send listeners
 * (krg_intercept_send_fd): krgd keeps and watches one end until the child
 * closes its own, *child_end (close-on-exec; the caller closes its copy
 * after fork). 0 or -errno. */
int krg_intercept_channel(struct krg_intercept *in, int *child_end);

/* Every execve/execveat of a served process (but krg's own, intercept.h)
 * comes here first: fn(ctx, tid, path) is called with the caller still
 * blocked before its exec (its /proc entry shows the old program; path:
 * execve's first argument, an address in the caller, 0 for execveat),
 * then the kernel runs the exec. If fn returns true, the caller is sent
 * SIGSTOP once the exec is let go on: it stops before the first
 * instruction of its new program (or, if the exec fails, on its return).
 * fn must be quick (it delays the exec); NULL turns it off. The
 * scheduler places DISTANT_FORK children this way. */
void krg_intercept_set_exec_hook(struct krg_intercept *in, bool (*fn)(void *ctx, pid_t tid, uint64_t path), void *ctx);

struct krg_intercept_stats {
	uint64_t listeners;      /* application trees served now */
	uint64_t notifications;  /* calls received */
	uint64_t held;           /* calls held now */
	uint64_t interrupted;    /* held calls found dropped by a signal or a death */
	uint64_t eintr;          /* calls restarted after a handler, answered EINTR as Linux */
	uint64_t undelivered;    /* answers that found their caller gone (finish with delivered=false) */
	uint64_t efault;         /* answers that could not be written to the caller */
	uint64_t refused;        /* per-user limit hit */
	uint64_t retried;        /* refused with the cheap credentials, asked again with all */
	uint64_t execs;          /* execve/execveat let go on (after the exec hook) */
	uint64_t shmat_mapped;   /* shmat answered with the node's mapping of the segment */
	uint64_t shmat_forked;   /* attaches inherited by a forked child, counted at the home */
	uint64_t shmat_migrated; /* attaches that followed a migrated process here (counted at the home) */
	uint64_t shmat_refused;  /* shmat of a segment attached on another node (no DSM here) */
	uint64_t shmdt_counted;  /* detaches (shmdt, exit) told to the segment's home */
	uint64_t futex_held;     /* futex waits on shared segments held by krgd */
	uint64_t futex_woken;    /* FUTEX_WAKEs on shared segments served (sent to every node) */
	uint64_t futex_refused;  /* other futex operations on shared segments (ENOSYS) */
	uint64_t probes_taken;   /* restart probes read from a parked caller's stack */
	uint64_t probes_reused;  /* ... and reused: the same call parked again, nothing interrupted */
};
void krg_intercept_get_stats(const struct krg_intercept *in, struct krg_intercept_stats *st);

/* shmat of a served process: fn(ctx, pid, tid, fd, addr, size, prot,
 * flags, &mapped) maps fd (installed in the caller, which waits in
 * shmat) there with mmap(addr, size, prot, flags, fd, 0), closes it, and
 * makes the held shmat return the address: ckpt_map_answer (devfd: as
 * there, -1 or /dev/userfaultfd installed in the caller). 0, or -errno
 * (the call then failed with mmap's error, or restarts, or is gone).
 * Without it shmat fails with ENOSYS. Every attacher on this node maps
 * the node's one memfd of the segment: coherent on this node; an attach
 * while another node has the segment attached is refused with ENOSYS
 * until the DSM serves it (docs/dsm.md, "Node-local segments"). */
typedef int (*krg_intercept_map_fn)(void *ctx, pid_t pid, pid_t tid, int fd, int devfd, uint64_t addr, uint64_t size,
				    int prot, int flags, uint64_t *mapped, int *uffd);
void krg_intercept_set_map_hook(struct krg_intercept *in, krg_intercept_map_fn fn, void *ctx);

/* getsockname/getpeername, and getsockopt(SOL_SOCKET, SO_DOMAIN,
 * SO_PROTOCOL, SO_PEERCRED, SO_PEERSEC or SO_PEERGROUPS), of a migrant
 * with forwarded sockets (its filter sends them, intercept.h):
 * fn(ctx, tid, fd, what, out, cap, &len) writes home's answer for that
 * socket into out (an address; an int, a struct ucred, a label or gid_t[]
 * for the options), sets len (may be 0: no groups) and returns 1, or
 * returns -errno for the caller, or 0 if fd is not one of them (the
 * kernel answers). Quick (on krgd's loop). NULL: the kernel always. Any
 * other getsockopt: the kernel. */
#define KRG_INTERCEPT_SOCKADDR_MAX 256
enum krg_intercept_sock_what {
	KRG_SOCK_NAME,
	KRG_SOCK_PEER,
	KRG_SOCK_DOMAIN,
	KRG_SOCK_PROTOCOL,
	KRG_SOCK_PEERCRED,
	KRG_SOCK_PEERSEC,
	KRG_SOCK_PEERGROUPS,
};
typedef int (*krg_intercept_sock_fn)(void *ctx, pid_t tid, int fd, enum krg_intercept_sock_what what, uint8_t *out,
				     size_t cap, size_t *len);
void krg_intercept_set_sock_hook(struct krg_intercept *in, krg_intercept_sock_fn fn, void *ctx);

/* Cross-node System V segments (docs/dsm.md, "shmat through krgd"): with
 * these, a segment's pages on this node are the DSM's (dsm/dsm_svc.h),
 * shmat maps the DSM's memfd of the segment and registers the caller's
 * mapping with a userfaultfd made in the caller (the map hook's uffd),
 * handed to attach; attaches are counted at the segment's home from
 * every node and uncounted at shmdt and at the process's exit. Without
 * them, an attach while another node has the segment attached is
 * refused by name (ENOSYS). seg: the segment's cluster-wide name. */
struct krg_intercept_shm_ops {
	/* The node's object of segment seg of size bytes (made on first
	 * use): *memfd borrowed. 0 or -errno. */
	int (*segment)(void *ctx, uint64_t seg, uint64_t size, int *memfd);
	/* Whether one more process can attach seg on this node (views left). */
	bool (*room)(void *ctx, uint64_t seg);
	/* The caller's mapping at base, through uffd (taken): a view id or -errno. */
	int (*attach)(void *ctx, uint64_t seg, int uffd, uint64_t base);
	void (*detach)(void *ctx, uint64_t seg, int view);
	/* The segment was destroyed (the last detach after IPC_RMID, seen
	 * here): forget it on every node. */
	void (*destroyed)(void *ctx, uint64_t seg);
	/* A FUTEX_WAKE of the word at off in seg, served here: the other
	 * nodes call krg_intercept_futex_wake with it. */
	void (*futex_wake)(void *ctx, uint64_t seg, uint64_t off, uint32_t bits);
	/* Whether the mapping of view is still there: 0, -ESRCH when its
	 * address space is gone (exit, exec: the attach ends), another
	 * -errno when the range is not registered there (unmapped). */
	int (*probe)(void *ctx, uint64_t seg, int view);
};
/* A process attached to seg through view `parent` forked, its child's
 * mapping is view `child` (the DSM serves it already): the child's
 * attach is counted at the home, ended by its shmdt, exit or exec. */
void krg_intercept_shm_forked(struct krg_intercept *in, uint64_t seg, int parent, int child);
/* A FUTEX_WAKE on another node: the futex waits held here for that
 * word (whose bitset meets bits) are answered. */
void krg_intercept_futex_wake(struct krg_intercept *in, uint64_t seg, uint64_t off, uint32_t bits);
void krg_intercept_set_shm_ops(struct krg_intercept *in, const struct krg_intercept_shm_ops *ops, void *ctx);

/* The node's IPC limits the listener checks before it reads a caller's
 * buffers (Linux's order of errors: EINVAL and E2BIG for sizes come
 * before EFAULT). Default: /proc/sys/kernel at start. */
void krg_intercept_set_limits(struct krg_intercept *in, const struct krg_ipc_limits *l);

/* Close every listener (their processes' IPC calls fail with ENOSYS from
 * then on), cancel held calls, free once the handles are closed. NULL is
 * fine. */
void krg_intercept_stop(struct krg_intercept *in);

/* ---- a backend of one engine on this node (intercept_local.c) ----
 * Serves every call with a krg_ipc_engine of this node alone: what runs
 * until the cluster's IPC service takes over, and in tests. proc_id maps
 * a local tgid to the cluster-wide id (borrowed fn and data). */
struct krg_intercept_local;
int krg_intercept_local_new(uv_loop_t *loop, uint64_t (*proc_id)(void *data, pid_t tgid), void *data,
			    struct krg_intercept_local **out);
const struct krg_intercept_backend *krg_intercept_local_backend(void);
/* Frees the engine and its objects; waiters are dropped without answer
 * (stop the listener service first). NULL is fine. */
void krg_intercept_local_free(struct krg_intercept_local *lb);
