/* engine_int.h — the IPC engine's private structures, shared by its files
 * (engine_core.c ids/keys/tokens/deadlines/dispatch, engine_msg.c,
 * engine_sem.c, engine_undo.c, engine_xport.c). Not for other modules. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ipc/ipc_engine.h"
#include "lib/klist.h"

/* ---- intrusive chained hash on a 64-bit key (several nodes may share a key) */

struct khnode {
	struct khnode *next;
	uint64_t key;
};
struct khash {
	struct khnode **b;
	size_t nb;                /* buckets, a power of two (0 before first insert) */
	size_t n;                 /* nodes */
};
int khash_insert(struct khash *h, struct khnode *n);      /* 0 or -ENOMEM */
struct khnode *khash_first(const struct khash *h, uint64_t key);
struct khnode *khash_next(const struct khnode *n);       /* next with the same key */
void khash_remove(struct khash *h, struct khnode *n);
void khash_free(struct khash *h);                        /* buckets only */

/* ---- objects ---------------------------------------------------------- */

struct ipc_obj {
	uint32_t kind;            /* KRG_IPC_MSG / KRG_IPC_SEM */
	int32_t id;
	struct krg_ipc_perm perm;
	int64_t ctime;            /* seconds */
	uint64_t creator;         /* cluster process id of the caller that made it (0: unknown) */
	struct khnode keynode;    /* in engine->keys when key != IPC_PRIVATE */
};

struct msg {
	struct klist node;        /* in msq->msgs */
	int64_t mtype;
	uint64_t serial;          /* engine-unique, for undeliverable msgsnd */
	uint64_t len;
	uint8_t text[];
};

struct msq {
	struct ipc_obj o;
	struct klist msgs;        /* queue order */
	struct klist receivers;   /* waiters (W_MSGRCV), FIFO */
	struct klist senders;     /* waiters (W_MSGSND), FIFO */
	uint64_t cbytes, qnum, qbytes;
	int32_t lspid, lrpid;
	int64_t stime, rtime;
};

struct sem {
	int32_t val;
	int32_t pid;
	struct klist pending_alter;   /* single-sop waiters (no complex waiting) */
	struct klist pending_const;   /* single-sop wait-for-zero */
};

/* A process's SEM_UNDO adjustments on one set. */
struct undo {
	struct klist setnode;     /* in semset->undos */
	struct klist procnode;    /* in uproc->undos */
	struct khnode hnode;      /* engine->undos, key undo_key(proc_id, id) */
	uint64_t proc_id;
	int32_t semid;
	uint32_t nsems;
	int16_t adj[];
};

/* All SEM_UNDO records of one process in this engine. */
struct uproc {
	struct khnode hnode;      /* engine->procs, key proc_id */
	struct klist undos;
};

struct semset {
	struct ipc_obj o;
	uint32_t nsems;
	int64_t otime;
	struct klist pending_alter;   /* complex waiters, and every alter waiter while any complex one waits */
	struct klist pending_const;   /* complex wait-for-zero */
	uint32_t complex_count;       /* waiters with nsops > 1 */
	struct klist undos;
	struct sem sems[];
};

/* A System V shm segment: identity, size, times, attachments. */
struct shmseg {
	struct ipc_obj o;
	uint64_t segsz;
	int64_t atime, dtime;
	int32_t cpid, lpid;
	uint64_t nattch;          /* attachments counted by every node */
	uint32_t flags;           /* SHM_DEST | SHM_LOCKED */
};

/* ---- waiters ---------------------------------------------------------- */

enum waiter_role { W_MSGSND = 1, W_MSGRCV = 2, W_SEMOP = 3 };

/* msgrcv search modes (Linux convert_mode). */
enum { SEARCH_ANY = 1, SEARCH_EQUAL, SEARCH_NOTEQUAL, SEARCH_LESSEQUAL, SEARCH_NUMBER };

struct waiter {
	struct khnode toknode;    /* engine->tokens, key token */
	struct khnode procnode;   /* engine->pwaiters, key proc_id */
	struct klist qnode;       /* in its object's queue */
	uint32_t role;
	uint32_t kind;
	int32_t id;
	struct krg_ipc_caller caller;  /* cred.groups owned (copied) */
	uint64_t deadline;        /* ns, UINT64_MAX = none */
	size_t heap_idx;          /* in engine->heap when deadline set */
	/* W_MSGSND */
	struct msg *msg;          /* owned until sent */
	/* W_MSGRCV */
	int64_t msgtyp;
	int mode;
	uint64_t bufsz;           /* caller's buffer */
	uint64_t maxsize;         /* bufsz, or UINT64_MAX with MSG_NOERROR */
	/* W_SEMOP */
	struct krg_ipc_sembuf *sops;  /* owned */
	uint32_t nsops;
	uint32_t blocking;        /* index of the sop that blocked (GETNCNT/GETZCNT) */
	bool alter;
};

/* ---- the engine --------------------------------------------------------- */

struct idspace {
	struct ipc_obj **slot;    /* KRG_IPC_MNI entries, by idx */
	uint32_t in_use;
	int32_t max_idx;          /* highest idx in use, -1 */
	int32_t last_idx;         /* Linux ids->last_idx */
	int32_t next_idx;         /* cyclic allocation cursor (idr_next) */
	int32_t seq;
};

struct change {
	uint32_t kind;
	int32_t id;
};

struct krg_ipc_engine {
	struct krg_ipc_limits lim;
	krg_ipc_complete_cb cb;
	void *cb_data;
	krg_ipc_change_cb change_cb;
	void *change_data;
	struct idspace msq_ids, sem_ids;
	struct khash keys;        /* ipc_obj.keynode, key key_hkey(kind, key) */
	struct khash tokens;      /* waiter.toknode */
	struct khash pwaiters;    /* waiter.procnode */
	struct khash undos;       /* undo.hnode */
	struct khash procs;       /* uproc.hnode */
	struct waiter **heap;     /* min-heap on deadline */
	size_t nheap, heap_cap;
	uint64_t msg_count, msg_bytes, sem_total;
	uint64_t msg_serial;      /* last serial given to a message */
	struct change *changes;   /* pending change notifications */
	size_t nchanges, changes_cap;
	uint64_t now;             /* of the entry point running */
	struct idspace shm_ids;
	uint64_t shm_tot;         /* pages in all segments */
	/* the other nodes' objects, counted against the limits (set_others) */
	uint32_t others_msq, others_sem;
	uint64_t others_semtot;
};

static inline int64_t now_sec(const struct krg_ipc_engine *e) { return (int64_t)(e->now / 1000000000ull); }
static inline uint64_t key_hkey(uint32_t kind, int32_t key) { return ((uint64_t)kind << 32) | (uint32_t)key; }

/* engine_core.c */
struct idspace *ids_of(struct krg_ipc_engine *e, uint32_t kind);
struct ipc_obj *obj_by_idx(struct krg_ipc_engine *e, uint32_t kind, int32_t idx);
struct ipc_obj *obj_check(struct krg_ipc_engine *e, uint32_t kind, int32_t id);
struct ipc_obj *obj_by_key(struct krg_ipc_engine *e, uint32_t kind, int32_t key);
int obj_add(struct krg_ipc_engine *e, struct ipc_obj *o, int32_t want_id, uint32_t limit);
uint32_t limit_left(uint32_t limit, uint32_t others);
void obj_remove(struct krg_ipc_engine *e, struct ipc_obj *o);
void obj_init_perm(struct ipc_obj *o, uint32_t kind, const struct krg_ipc_cred *c, int32_t key, int flg, int64_t now);
bool ipcperms(const struct krg_ipc_cred *c, const struct krg_ipc_perm *p, int flag);
bool is_owner_or(const struct krg_ipc_cred *c, const struct krg_ipc_perm *p, uint32_t cap);
int perm_update(struct krg_ipc_perm *p, const struct krg_ipc_setbuf *s);
void perm_stat(const struct ipc_obj *o, struct krg_ipc_perm *out);
typedef void (*ipc_make_fn)(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r);
void ipc_get(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r, uint32_t kind, ipc_make_fn make,
		int (*more)(const struct ipc_obj *o, const struct krg_ipc_req *q));
struct ipc_obj *ctl_stat_obj(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		const struct krg_ipc_req *q, bool any, struct krg_ipc_reply *r);
struct ipc_obj *ctl_owned_obj(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		int32_t id, struct krg_ipc_reply *r);
struct ipc_obj *ctl_rmid_or_set(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r,
		void (*rmid)(struct krg_ipc_engine *e, struct ipc_obj *o));
void ctl_set_perm(struct krg_ipc_engine *e, struct ipc_obj *o, const struct krg_ipc_setbuf *set,
		struct krg_ipc_reply *r);
void note_change(struct krg_ipc_engine *e, uint32_t kind, int32_t id);
/* Report the noted changes to the change callback. */
void engine_flush_changes(struct krg_ipc_engine *e);
struct waiter *waiter_new(const struct krg_ipc_caller *c, uint32_t role, uint32_t kind, int32_t id);
int waiter_park(struct krg_ipc_engine *e, struct waiter *w, uint64_t token);
void waiter_complete(struct krg_ipc_engine *e, struct waiter *w, struct krg_ipc_reply *r);
void waiter_unpark(struct krg_ipc_engine *e, struct waiter *w);
void waiter_free(struct waiter *w);
int heap_push(struct krg_ipc_engine *e, struct waiter *w);

/* engine_msg.c */
void msg_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending);
void msq_destroy(struct krg_ipc_engine *e, struct msq *m, int err);
void msg_waiter_cancel(struct krg_ipc_engine *e, struct waiter *w);
int msg_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_req *q, const struct krg_ipc_reply *r);

/* engine_sem.c */
void sem_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending);
void semset_destroy(struct krg_ipc_engine *e, struct semset *s, int err);
void sem_waiter_cancel(struct krg_ipc_engine *e, struct waiter *w);
void sem_waiter_timeout(struct krg_ipc_engine *e, struct waiter *w);
int sem_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q);
void sem_update_all(struct krg_ipc_engine *e, struct semset *s, bool otime);

/* engine_undo.c */
struct undo *undo_find(struct krg_ipc_engine *e, uint64_t proc_id, int32_t semid);
struct undo *undo_get(struct krg_ipc_engine *e, uint64_t proc_id, struct semset *s);
void undo_free(struct krg_ipc_engine *e, struct undo *u);
void undo_process_exit(struct krg_ipc_engine *e, uint64_t proc_id, int32_t pid);

/* engine_shm.c */
void shm_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r);
void shmseg_destroy(struct krg_ipc_engine *e, struct shmseg *s);
int shm_export(const struct shmseg *s, struct krg_ipc_export *x);
int shm_import(struct krg_ipc_engine *e, const struct krg_ipc_export *x, struct ipc_obj **out);
void shm_imported(struct krg_ipc_engine *e, struct shmseg *s);
