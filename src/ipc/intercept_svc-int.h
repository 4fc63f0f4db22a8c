/* intercept_svc-int.h — the listener's state (intercept_svc.c), shared
 * with the files that serve one kind of call for it: futexes in shared
 * segments (intercept_futex.c), socket queries of a migrant with
 * forwarded sockets (intercept_sock.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "ipc/intercept-int.h"
#include "ipc/intercept.h"

#define NBUCKET 256

struct tproc;

struct lsn {                      /* one listener fd: an application tree */
	struct lsn *next, *prev;
	struct krg_intercept *in;
	int fd;
	uv_poll_t poll;
	bool closing;
	struct tproc *procs;          /* its processes followed for SEM_UNDO (tproc.lnext) */
	int8_t own_pidns;             /* -1 unknown; 1: its first caller is in krgd's pid namespace
				       * (the cheap credentials give the pid it sees) */
	bool sync_wake;               /* SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is on */
};

struct held {                     /* a notification not answered yet */
	struct held *next, *prev;     /* in->held */
	struct held *hnext;           /* tid bucket */
	struct lsn *l;                /* borrowed; NULL once its listener closed */
	uint64_t id;                  /* notification id */
	uint64_t token;               /* the backend's name for the call */
	pid_t tid;
	uint32_t euid;                /* counted against this user's limit */
	struct icall c;               /* the call, kept for undeliverable() */
	struct seccomp_data data;     /* as notified: to recognise its restart */
	struct irestart_probe probe;  /* taken when it parked (intercept_restart.c) */
	bool in_submit;               /* done may come from inside submit */
	bool done;                    /* answered */
	bool counted;                 /* waits: counted against its user's limit */
	bool full_creds;              /* who has groups and capabilities (not only the cheap ids) */
	bool retry;                   /* refused with the cheap ids: to ask again with full ones */
	uint64_t shm_size;            /* shmdt: the attach's size */
	uint64_t dropped_at;          /* != 0: its caller left (uv_now ms); kept a while to tell how it comes back */
};

#define DROPPED_KEEP_MS 10000     /* a handler slower than this makes a restarted call a new one */

struct tproc {                    /* a process followed to its exit (SEM_UNDO) */
	struct tproc *next;
	struct krg_intercept *in;
	struct lsn *l;                /* the listener of its tree; NULL once closed */
	struct tproc *lnext;          /* in l->procs */
	pid_t tgid;                   /* as krgd sees it */
	uint64_t proc_id;             /* cluster-wide */
	int32_t pid;                  /* as it saw itself (sempid) */
	bool undo;                    /* used SEM_UNDO (else followed for its shm attaches only) */
	int pidfd;
	uv_poll_t poll;
};

struct chan {                     /* a child's socket sending listener fds */
	struct chan *next, *prev;
	struct krg_intercept *in;
	int fd;
	uv_poll_t poll;
};

struct shm_undo {                 /* an attach to uncount at the home: not made, or ended
	                           * (or, attach: to count, a forked child's) */
	struct shm_undo *next;
	bool attach;
	int shmflg;                   /* attach: SHM_RDONLY or 0 */
	struct ishm_att *pend;        /* attach: a migrant's, recorded once counted (dsm_migrant_attach) */
	struct krg_ipc_caller who;    /* without groups: SHMDT checks none */
	int32_t id;
	uint64_t seg;                 /* ishm_name: told to shm_ops if this was the last */
};

struct dt_wait {                  /* a SHMDT (SHMAT) at the home, its answer awaited */
	struct krg_intercept *in;
	uint64_t seg;
	bool attach;
	int32_t id;
	struct ishm_att *pend;        /* shm_undo's */
};

struct ucount {
	uint32_t uid, n;
};

/* A FUTEX_WAIT on a segment shared across nodes, held here: answered 0
 * (a wake-up; the caller checks its word again, as futex callers must)
 * by a FUTEX_WAKE of that word from any node, or after FUTEX_HOLD_MS
 * (a wake that came before the wait was held is not lost for longer). */
struct fwait {
	struct fwait *next;
	struct lsn *l;
	uint64_t id;                  /* notification */
	pid_t tid;
	uint64_t seg, off;            /* the futex word: segment and offset */
	uint32_t bitset;
	uint64_t until;               /* uv_now ms */
};
#define FUTEX_HOLD_MS 3

struct krg_intercept {
	uv_loop_t *loop;
	const struct krg_intercept_backend *be;
	void *ctx;
	unsigned max_pending, check_ms;
	struct lsn *lsns;
	struct held *held;
	struct held *bucket[NBUCKET];
	struct tproc *procs[NBUCKET];
	struct chan *chans;
	struct ucount *users;
	size_t n_users;
	uv_timer_t check;
	size_t notif_size, resp_size;     /* the kernel's struct sizes (SECCOMP_GET_NOTIF_SIZES) */
	struct krg_ipc_limits limits;     /* the node's, checked before reading buffers */
	bool fast_creds;                  /* PIDFD_GET_INFO works here */
	bool (*exec_hook)(void *ctx, pid_t tid, uint64_t path); /* krg_intercept_set_exec_hook */
	void *exec_ctx;
	uint64_t pidns_ino;               /* krgd's pid namespace */
	uv_idle_t retry;                  /* calls to submit again with full credentials */
	struct ishm_seg *shm;             /* System V segments attached here (intercept_shm.c) */
	struct ishm_att *shm_att;         /* their attaches made by krgd */
	struct shm_undo *shm_undo;        /* refused attaches to uncount (from retry_cb) */
	krg_intercept_map_fn map_hook;    /* krg_intercept_set_map_hook */
	void *map_ctx;
	krg_intercept_sock_fn sock_hook;  /* krg_intercept_set_sock_hook */
	void *sock_ctx;
	const struct krg_intercept_shm_ops *shm_ops; /* krg_intercept_set_shm_ops; NULL: node-local only */
	void *shm_ctx;
	unsigned dt_pending;              /* SHMDTs whose answer has not come (they hold in) */
	int uffd_dev;                     /* /dev/userfaultfd (uffd_dev()): -2 not opened yet, -1 none */
	struct fwait *fwaits;             /* futex waits held (shared segments) */
	uv_timer_t ftimer;                /* their FUTEX_HOLD_MS */
	uv_timer_t ptimer;                /* probes attaches' address spaces (exec, a child's exit) */
	uint64_t next_token;
	struct krg_intercept_stats st;
	struct itcache tc;                /* per calling thread (intercept_tcache.c) */
	bool stopping;
	int handles;                      /* open uv handles */
};

/* The notification id is still the caller's: it waits (took no signal,
 * did not die). */
bool isvc_id_valid(int fd, uint64_t id);
/* Answer notification id on listener fd with ret (0 or -errno); 0 or
 * -errno (ENOENT: the caller went away). */
int isvc_send_resp(struct krg_intercept *in, int fd, uint64_t id, long ret);
/* Let the call run in the kernel as if there were no filter. */
void isvc_send_continue(struct krg_intercept *in, int fd, uint64_t id);

/* intercept_futex.c: a futex call without FUTEX_PRIVATE_FLAG. */
void isvc_futex_serve(struct lsn *l, const struct seccomp_notif *n);
/* intercept_sock.c: getsockname, getpeername, getsockopt. */
void isvc_sock_serve(struct lsn *l, const struct seccomp_notif *n);
