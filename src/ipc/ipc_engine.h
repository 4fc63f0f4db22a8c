/* ipc_engine.h — System V message queues and semaphore sets homed on one
 * node, with Linux's semantics (man 2 msgget msgsnd msgrcv msgctl semget
 * semop semtimedop semctl, man 7 sysvipc; the kernel's ipc/msg.c and
 * ipc/sem.c are the reference behaviour). docs/ipc.md.
 *
 * The engine is pure: no I/O, no threads, no clock of its own. Every call
 * that needs the time is given `now` (CLOCK_REALTIME, ns since the epoch;
 * timestamps are kept in seconds as Linux does, deadlines in ns). Same
 * inputs, same outputs, same completion order.
 *
 * Who calls it: the cluster IPC service at each object's home node (PART B)
 * and, on one node, anything that wants Linux IPC in user space. The
 * interception layer turns a trapped syscall into a struct krg_ipc_req and
 * a struct krg_ipc_reply back into the caller's memory (ipc_abi.h converts
 * the portable structs below to the x86_64 kernel ABI).
 *
 * Flags, commands and errors are Linux's numbers (IPC_CREAT, IPC_NOWAIT,
 * MSG_EXCEPT, MSG_NOERROR, MSG_COPY, SEM_UNDO, IPC_STAT, MSG_STAT_ANY, ...,
 * EIDRM, E2BIG, ...), so a request is the syscall's own arguments.
 *
 * Blocking: engine_call() either finishes (KRG_IPC_DONE, reply filled in)
 * or parks the call as a waiter under the caller's 64-bit token
 * (KRG_IPC_PENDING). The waiter is finished later, from inside another
 * engine entry point (a call, tick, cancel of someone else, process_exit,
 * drop), through the completion callback. The callback must not call back
 * into the engine; queue the work instead.
 *
 * Stability: this header only grows (new fields at the end of structs that
 * the caller zero-initialises, new functions). Field meanings never change.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* ---- identities -------------------------------------------------------- */

/* Kinds of object. */
enum krg_ipc_kind {
	KRG_IPC_MSG = 1,
	KRG_IPC_SEM = 2,
	KRG_IPC_SHM = 3,
};

/* Ids are Linux's: idx + seq * KRG_IPC_SEQ_MULT, idx < KRG_IPC_MNI. */
#define KRG_IPC_MNI       32768
#define KRG_IPC_SEQ_MULT  32768
#define KRG_IPC_SEQ_MAX   65535   /* seq wraps to 0 on reaching this (INT_MAX >> 15) */
static inline int32_t krg_ipc_id_idx(int32_t id) { return id % KRG_IPC_SEQ_MULT; }
static inline int32_t krg_ipc_id_seq(int32_t id) { return id / KRG_IPC_SEQ_MULT; }
static inline int32_t krg_ipc_id_make(int32_t idx, int32_t seq) { return idx + seq * KRG_IPC_SEQ_MULT; }

/* req.id of msgget/semget: let the engine pick the id (single node). */
#define KRG_IPC_ID_ANY (-1)

/* Capabilities of the caller that System V IPC looks at. */
#define KRG_IPC_CAP_IPC_OWNER    (1u << 0)  /* bypasses the mode bits */
#define KRG_IPC_CAP_SYS_ADMIN    (1u << 1)  /* IPC_SET/IPC_RMID on others' objects */
#define KRG_IPC_CAP_SYS_RESOURCE (1u << 2)  /* msg_qbytes above msgmnb */
#define KRG_IPC_CAP_IPC_LOCK     (1u << 3)  /* SHM_LOCK/SHM_UNLOCK on others' segments */

/* The caller's credentials, as the kernel would see them at the syscall. */
struct krg_ipc_cred {
	uint32_t uid, gid;        /* real ids (not used by the checks; kept for audit) */
	uint32_t euid, egid;      /* effective: owner checks, creator of new objects */
	uint32_t fsgid;           /* group checks use fsgid (Linux in_group_p); = egid normally */
	uint32_t caps;            /* KRG_IPC_CAP_* */
	uint32_t ngroups;         /* supplementary groups */
	const uint32_t *groups;   /* borrowed, ngroups entries; copied when a call waits */
};

/* Who is calling. */
struct krg_ipc_caller {
	struct krg_ipc_cred cred;
	int32_t pid;              /* tgid as the caller sees it: lspid, lrpid, sempid */
	uint64_t proc_id;         /* cluster-wide process id: owner of SEM_UNDO records */
};

/* ---- requests and replies ---------------------------------------------- */

enum krg_ipc_op {
	KRG_IPC_OP_MSGGET = 1,
	KRG_IPC_OP_MSGSND = 2,
	KRG_IPC_OP_MSGRCV = 3,
	KRG_IPC_OP_MSGCTL = 4,
	KRG_IPC_OP_SEMGET = 5,
	KRG_IPC_OP_SEMOP  = 6,   /* semop and semtimedop (has_timeout) */
	KRG_IPC_OP_SEMCTL = 7,
	KRG_IPC_OP_SHMGET = 8,   /* key, size, flags */
	KRG_IPC_OP_SHMCTL = 9,   /* id, cmd, set */
	/* A node attaches / detaches one mapping of segment id (the node's
	 * kernel does the mapping: docs/dsm.md). SHMAT checks the permission
	 * of flags (SHM_RDONLY, SHM_EXEC), counts the attachment and answers
	 * the segment's stat (its size); SHMDT uncounts one and destroys a
	 * segment marked by IPC_RMID at its last detach. */
	KRG_IPC_OP_SHMAT  = 10,
	KRG_IPC_OP_SHMDT  = 11,
};

/* One semop operation (struct sembuf's fields, portable). */
struct krg_ipc_sembuf {
	uint16_t num;
	int16_t op;
	int16_t flg;              /* IPC_NOWAIT | SEM_UNDO */
};

/* IPC_SET's input: the only fields Linux takes from the caller's buffer. */
struct krg_ipc_setbuf {
	uint32_t uid, gid;
	uint32_t mode;            /* low 9 bits used */
	uint64_t qbytes;          /* msgctl only */
};

/* A call, as plain data. Pointers are borrowed for the duration of
 * engine_call() (the engine copies what a waiter keeps). Unused fields 0.
 * The engine checks sizes before it looks at buffers, in Linux's order, so
 * a caller may leave text NULL when msgsz > msgmax and sops NULL when
 * nsops is 0 or > semopm (the reply is then EINVAL / E2BIG without them). */
struct krg_ipc_req {
	uint32_t op;              /* enum krg_ipc_op */
	int32_t id;               /* msqid/semid; *_STAT by index: the index;
	                           * msgget/semget: id to create under, or
	                           * KRG_IPC_ID_ANY. Ignored when the key exists;
	                           * its idx already used -> ret -EBUSY */
	int32_t key;              /* msgget/semget */
	int32_t flags;            /* msgflg / semflg (msgget, semget, msgsnd, msgrcv) */
	int32_t cmd;              /* msgctl/semctl command */
	int32_t semnum;           /* semctl */
	int32_t nsems;            /* semget */
	int32_t val;              /* semctl SETVAL */
	int64_t msgtyp;           /* msgsnd: mtype; msgrcv: msgtyp (MSG_COPY: index) */
	uint64_t msgsz;           /* msgsnd: text length as passed (text_len);
	                           * msgrcv: the caller's buffer size */
	const uint8_t *text;      /* msgsnd: message text, text_len bytes */
	uint64_t text_len;
	const struct krg_ipc_sembuf *sops;  /* semop: nsops entries */
	uint32_t nsops;
	int32_t has_timeout;      /* semtimedop with a timeout */
	int64_t timeout_sec;      /* as the caller gave it (validated: EINVAL) */
	int64_t timeout_nsec;
	const uint16_t *vals;     /* SETALL: values the caller's array held */
	uint32_t nvals;           /* fewer than the set's nsems -> EFAULT; extra ignored */
	struct krg_ipc_setbuf set;/* IPC_SET */
	uint64_t size;            /* shmget: the segment's size in bytes */
};

/* The portable form of ipc_perm. */
struct krg_ipc_perm {
	int32_t key;
	uint32_t uid, gid;        /* owner */
	uint32_t cuid, cgid;      /* creator */
	uint32_t mode;            /* low 9 bits */
	uint32_t seq;             /* id / KRG_IPC_SEQ_MULT */
};

/* msqid_ds (IPC_STAT, MSG_STAT, MSG_STAT_ANY). Times in seconds. */
struct krg_ipc_msq_stat {
	struct krg_ipc_perm perm;
	int64_t stime, rtime, ctime;
	uint64_t cbytes;          /* bytes queued */
	uint64_t qnum;            /* messages queued */
	uint64_t qbytes;          /* queue capacity */
	int32_t lspid, lrpid;
};

/* semid_ds (IPC_STAT, SEM_STAT, SEM_STAT_ANY). */
struct krg_ipc_sem_stat {
	struct krg_ipc_perm perm;
	int64_t otime, ctime;
	uint64_t nsems;
};

/* struct msginfo (IPC_INFO, MSG_INFO). */
struct krg_ipc_msginfo {
	int32_t msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql;
	uint16_t msgseg;
};

/* struct seminfo (IPC_INFO, SEM_INFO). */
struct krg_ipc_seminfo {
	int32_t semmap, semmni, semmns, semmnu, semmsl, semopm, semume, semusz, semvmx, semaem;
};

/* shmid_ds (IPC_STAT, SHM_STAT, SHM_STAT_ANY; SHMAT's answer). perm.mode
 * carries SHM_DEST (01000) and SHM_LOCKED (02000) as Linux reports them. */
struct krg_ipc_shm_stat {
	struct krg_ipc_perm perm;
	uint64_t segsz;
	int64_t atime, dtime, ctime;
	int32_t cpid, lpid;
	uint64_t nattch;          /* attachments on every node */
};

/* struct shminfo (IPC_INFO). */
struct krg_ipc_shminfo {
	uint64_t shmmax, shmmin, shmmni, shmseg, shmall;
};

/* struct shm_info (SHM_INFO). shm_tot in pages. */
struct krg_ipc_shm_info {
	int32_t used_ids;
	uint64_t shm_tot, shm_rss, shm_swp, swap_attempts, swap_successes;
};

/* Which structured output a reply carries. */
enum krg_ipc_out {
	KRG_IPC_OUT_NONE = 0,
	KRG_IPC_OUT_MSQ_STAT = 1,
	KRG_IPC_OUT_SEM_STAT = 2,
	KRG_IPC_OUT_MSGINFO = 3,
	KRG_IPC_OUT_SEMINFO = 4,
	KRG_IPC_OUT_SHM_STAT = 5,
	KRG_IPC_OUT_SHMINFO = 6,
	KRG_IPC_OUT_SHM_INFO = 7,
};

/* A call's result. Buffers are owned by the reply: release it with
 * krg_ipc_reply_release() once (after taking what you need). */
struct krg_ipc_reply {
	int64_t ret;              /* the syscall's return value, or -errno */
	int64_t mtype;            /* msgrcv: the message's type */
	uint8_t *text;            /* msgrcv: the WHOLE message (text_len bytes); the
	                           * caller gets the first ret bytes (MSG_NOERROR
	                           * truncates). Kept whole so undeliverable() can
	                           * put it back intact. */
	uint64_t text_len;
	uint16_t *vals;           /* GETALL: nvals values */
	uint32_t nvals;
	uint32_t out;             /* enum krg_ipc_out: which of the four below is set */
	struct krg_ipc_msq_stat msq;
	struct krg_ipc_sem_stat sem;
	struct krg_ipc_msginfo msginfo;
	struct krg_ipc_seminfo seminfo;
	uint64_t serial;          /* msgsnd: the message's serial in this engine,
	                           * for undeliverable() (0 if it went straight to
	                           * a waiting receiver) */
	struct krg_ipc_shm_stat shm;
	struct krg_ipc_shminfo shminfo;
	struct krg_ipc_shm_info shm_info;
};

void krg_ipc_reply_release(struct krg_ipc_reply *r);

/* ---- limits -------------------------------------------------------------- */

/* The sysctls of man 7 sysvipc (msgmax msgmnb msgmni; sem = semmsl semmns
 * semopm semmni) plus semvmx/semaem, which Linux fixes at 32767. */
struct krg_ipc_limits {
	uint32_t msgmax, msgmnb, msgmni;
	uint32_t semmsl, semmns, semopm, semmni;
	uint32_t semvmx, semaem;
	uint64_t shmmax, shmall;  /* bytes per segment; pages in all segments */
	uint32_t shmmni;
};

/* Linux's compile-time defaults (MSGMAX 8192, MSGMNB 16384, MSGMNI 32000,
 * SEMMSL 32000, SEMMNS 1024000000, SEMOPM 500, SEMMNI 32000, 32767). */
void krg_ipc_limits_default(struct krg_ipc_limits *l);

/* This machine's values: dir is normally "/proc/sys/kernel" (files msgmax,
 * msgmnb, msgmni, sem). Fields whose file is missing keep their value.
 * 0 or -errno on an unreadable/garbled file. Does I/O: not part of the
 * pure core (engine_sysctl.c). */
int krg_ipc_limits_read(struct krg_ipc_limits *l, const char *dir);

/* ---- the engine ---------------------------------------------------------- */

struct krg_ipc_engine;

/* A waiter finished. reply is owned by the callee (release it). Runs
 * inside an engine entry point; must not re-enter the engine. */
typedef void (*krg_ipc_complete_cb)(void *data, uint64_t token, struct krg_ipc_reply *reply);

/* NULL on allocation failure. limits copied; data passed back to cb. */
struct krg_ipc_engine *krg_ipc_engine_new(const struct krg_ipc_limits *limits,
		krg_ipc_complete_cb cb, void *data);
/* Frees every object; waiters still parked are dropped without a callback. */
void krg_ipc_engine_free(struct krg_ipc_engine *e);
/* New limits apply to the following calls (objects keep their qbytes). */
void krg_ipc_engine_set_limits(struct krg_ipc_engine *e, const struct krg_ipc_limits *limits);
void krg_ipc_engine_get_limits(const struct krg_ipc_engine *e, struct krg_ipc_limits *limits);

#define KRG_IPC_DONE    0
#define KRG_IPC_PENDING 1

/* Run one call. KRG_IPC_DONE: *reply filled (reply->ret may be -errno).
 * KRG_IPC_PENDING: parked under token, *reply zeroed; the callback will
 * deliver the result. Negative only for misuse by the service itself:
 * -EBUSY token already parked, -ENOMEM. Other waiters may be completed
 * (callback) before this returns. */
int krg_ipc_engine_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *caller,
		const struct krg_ipc_req *req, uint64_t token, uint64_t now,
		struct krg_ipc_reply *reply);

/* The caller of a parked call went away (signal, exit, migration).
 * 0: removed, nothing happened. -EALREADY: not parked here (it completed:
 * its reply is or was in the callback; if it cannot be delivered, see
 * undeliverable()). */
int krg_ipc_engine_cancel(struct krg_ipc_engine *e, uint64_t token);

/* A completed call's result could not be given to its caller (it was
 * interrupted by a signal after the home finished the call). Undo it so
 * that nothing is lost or applied twice: a received message goes back to
 * the head of its queue (or straight to a waiting receiver), applied
 * semops are reverted (values and SEM_UNDO adjustments), a sent message
 * is taken back off its queue if no one received it yet (-EALREADY if
 * someone did: the send stands). req and reply are
 * the call and its reply; caller the same as in the call. Other calls that
 * can now go on complete through the callback. 0, or -EINVAL if the object
 * is gone (its contents went with it) or the call changed nothing. */
int krg_ipc_engine_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_caller *caller,
		const struct krg_ipc_req *req, const struct krg_ipc_reply *reply, uint64_t now);

/* Earliest deadline of a parked semtimedop, or UINT64_MAX. */
uint64_t krg_ipc_engine_next_deadline(const struct krg_ipc_engine *e);
/* Completes (EAGAIN) every waiter whose deadline is <= now. */
void krg_ipc_engine_tick(struct krg_ipc_engine *e, uint64_t now);

/* A process ended (on any node): apply and free its SEM_UNDO records here
 * (Linux exit_sem: value += semadj clamped to [0, semvmx], sempid = pid,
 * waiters woken). pid is how it appears in sempid. Also cancels any call it
 * still has parked here (no callback). */
void krg_ipc_engine_process_exit(struct krg_ipc_engine *e, uint64_t proc_id, int32_t pid,
		uint64_t now);

/* A process now goes by another cluster id (a recovery restarted it on
 * another node, with its pid): its SEM_UNDO records here move from
 * `from` to `to`, in their order, so that `to`'s exit applies them. A
 * record `to` already has on the same set stays under `from`. Returns
 * how many moved. */
size_t krg_ipc_engine_undo_rename(struct krg_ipc_engine *e, uint64_t from, uint64_t to);

/* Called after any change to an object's state (created, written, removed,
 * imported, dropped; not for waiters parked or cancelled), possibly more
 * than once per entry point, always before that entry point returns — so a
 * service can copy the object to a backup before it answers. Same rule as the
 * completion callback: no re-entry. NULL to switch off. */
typedef void (*krg_ipc_change_cb)(void *data, uint32_t kind, int32_t id);
void krg_ipc_engine_set_change_cb(struct krg_ipc_engine *e, krg_ipc_change_cb cb, void *data);

/* ---- lookup, enumeration, accounting ---------------------------------------- */

/* Id of the object of this kind with key (not IPC_PRIVATE), or -ENOENT. */
int32_t krg_ipc_engine_find_key(const struct krg_ipc_engine *e, uint32_t kind, int32_t key);
/* Id of the object with the smallest idx >= from_idx, or -ENOENT. Walk with
 * from_idx = krg_ipc_id_idx(id) + 1. */
int32_t krg_ipc_engine_next(const struct krg_ipc_engine *e, uint32_t kind, int32_t from_idx);

/* What this engine holds (the cluster sums these for MSG_INFO/SEM_INFO). */
struct krg_ipc_usage {
	uint32_t msq_count;       /* queues */
	uint64_t msg_count;       /* messages queued, all queues */
	uint64_t msg_bytes;       /* bytes queued, all queues */
	int32_t msq_max_idx;      /* highest queue idx, -1 if none */
	uint32_t sem_count;       /* semaphore sets */
	uint64_t sem_total;       /* semaphores in all sets */
	int32_t sem_max_idx;      /* highest set idx, -1 if none */
	uint32_t shm_count;       /* segments */
	uint64_t shm_tot;         /* pages in all segments */
	int32_t shm_max_idx;      /* highest segment idx, -1 if none */
};
void krg_ipc_engine_usage(const struct krg_ipc_engine *e, struct krg_ipc_usage *u);

/* What the other nodes of a cluster hold: counted with this engine's own
 * objects against msgmni, semmni and semmns when it creates one, so that
 * the limits are the cluster's (ENOSPC, Linux's order of checks kept).
 * Zero until set. Imports (rehoming, backups) are not refused by it. */
void krg_ipc_engine_set_others(struct krg_ipc_engine *e, uint32_t msq_count, uint32_t sem_count,
			       uint64_t sem_total);

/* IPC_INFO/MSG_INFO and IPC_INFO/SEM_INFO from limits and a usage (a
 * single engine's or a cluster's sum); the syscall's return value (highest
 * idx in use, or 0). cmd is IPC_INFO, MSG_INFO or SEM_INFO. */
int32_t krg_ipc_msginfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_msginfo *out);
int32_t krg_ipc_seminfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_seminfo *out);
/* IPC_INFO (shminfo) or SHM_INFO (shm_info) likewise; out == the reply. */
int32_t krg_ipc_shminfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_reply *out);

/* ---- export / import (checkpoint, rehoming, backup replica) ---------------- */

struct krg_ipc_msg {
	int64_t mtype;
	uint8_t *text;            /* owned by the export */
	uint64_t len;
};

/* One process's SEM_UNDO record for one set. */
struct krg_ipc_undo {
	uint64_t proc_id;
	int16_t *semadj;          /* nsems entries, owned by the export */
};

/* The whole state of one object except its parked waiters (the service
 * re-issues those where the object goes). Plain data, owned buffers. */
struct krg_ipc_export {
	uint32_t kind;            /* KRG_IPC_MSG, KRG_IPC_SEM or KRG_IPC_SHM */
	int32_t id;
	struct krg_ipc_perm perm;
	int64_t stime, rtime;     /* msg: last send/receive */
	int64_t otime;            /* sem: last semop */
	int64_t ctime;
	uint64_t creator;         /* cluster process id of its creator (0: unknown);
	                           * checkpoint finds an application's objects by it */
	/* msg */
	uint64_t qbytes;
	int32_t lspid, lrpid;
	uint32_t nmsgs;
	struct krg_ipc_msg *msgs; /* in queue order */
	/* sem */
	uint32_t nsems;
	uint16_t *semval;         /* nsems */
	int32_t *sempid;          /* nsems */
	uint32_t nundos;
	struct krg_ipc_undo *undos;
	/* shm (the pages are the DSM's, not the engine's) */
	uint64_t segsz;
	int64_t atime, dtime;
	int32_t cpid, lpid;
	uint64_t nattch;
	uint32_t shm_flags;       /* SHM_DEST | SHM_LOCKED */
};

/* Copy object (kind, id) out. 0, -EINVAL (no such object), -ENOMEM. */
int krg_ipc_engine_export(const struct krg_ipc_engine *e, uint32_t kind, int32_t id,
		struct krg_ipc_export *out);
void krg_ipc_export_release(struct krg_ipc_export *x);
/* Recreate an exported object under its id. 0, -EBUSY (idx taken), -EEXIST
 * (key taken), -ENOSPC (msgmni/semmni/semmns), -EINVAL (inconsistent). */
int krg_ipc_engine_import(struct krg_ipc_engine *e, const struct krg_ipc_export *x);
/* Remove object (kind, id) without IPC_RMID's checks: its waiters complete
 * with err (-EIDRM as RMID does, or a value the service uses to re-issue
 * them elsewhere). 0 or -EINVAL. */
int krg_ipc_engine_drop(struct krg_ipc_engine *e, uint32_t kind, int32_t id, int err);
/* The receivers waiting on queue id (-EINVAL: no such queue); *cbytes
 * and *senders (if not NULL) get the bytes it holds and the senders
 * waiting for room. The cluster service moves only queues with few
 * waiters (docs/ipc-service.md, "Owners"). */
int krg_ipc_engine_msq_waiters(struct krg_ipc_engine *e, int32_t id, uint64_t *cbytes, unsigned *senders);
