/* ipc_service-int.h — the cluster IPC service's own structures:
 *   ipc_service.c       calls from this node's callers: routing, answers,
 *                       completions, cancel, undeliverable, process exit
 *   ipc_service_home.c  the KDDM sets and what runs at an object's home
 *   ipc_service_wire.c  engine structs <-> src/proto/ipc.proto
 *   ipc_service_krgd.c  krgd glue: transport, membership, timers, API
 *   ipc_service_usage.c msgmni/semmni/semmns on the cluster's total
 *   ipc_service_ckpt.c  an application's objects, for checkpoint
 *   ipc_service_owner.c a queue's owner: it moves to the node it answers
 */
#pragma once
#include "ipc/ipc_service.h"
#include "ipc.pb-c.h"
#include "kddm/kddm.h"

/* A call submitted on this node whose caller has not had its answer. */
struct ipc_pend {
	uint64_t token;               /* the interception layer's */
	uint64_t gtoken;              /* cluster-wide: node << 48 | sequence */
	krg_ipc_service_done_fn done;
	void *cookie;
	uint32_t kind;                /* KRG_IPC_MSG / KRG_IPC_SEM / KRG_IPC_SHM */
	uint64_t idx;                 /* object (KDDM id) the call went to; UINT64_MAX: none yet */
	uint8_t *call;                /* owned: the packed SYSCALL Call, for re-issue and undo */
	size_t call_len;
	bool cancelled;               /* done must not run; undo what completes */
	unsigned redirects;           /* sent on to the queue's owner ("ask node N") */
	uint32_t parked_at;           /* node that said "pending", or KDDM_NO_NODE */
	int32_t rid;                  /* the id a key map redirected to, -1 */
	int32_t key;                  /* a get's key (IPC_PRIVATE: 0) */
	unsigned reissues;            /* object moved (-ESTALE) or stale key: sent again */
	struct ipc_pend *tnext, *gnext; /* hash chains by token and by gtoken */
};

#define IPC_PEND_BUCKETS 1024

/* A completion the engine produced, waiting for its entry point to return. */
struct ipc_done {
	uint64_t gtoken;
	struct krg_ipc_reply reply;   /* owned */
	struct ipc_done *next;
};

/* KDDM's object for a queue or a set: the state is in the engine. */
struct ipc_obj {
	uint32_t kind;
	int32_t id;
	uint64_t users;   /* bit n: node n (< 64) made calls on it */
	uint32_t owner;   /* a queue's state is at this node, KDDM_NO_NODE: here */
	uint64_t mseq;    /* its moves so far (ipc_service_owner.c) */
	bool gone;        /* its owner died with it: forget it at the next call */
};

/* A queue this node serves but does not home (it moved here). */
struct ipc_owned {
	int32_t id;
	uint64_t mseq;
};

/* KDDM's object for a key map entry. */
struct ipc_keyent {
	int32_t id;
};

struct krg_ipc_service {
	struct kddm *k;               /* borrowed */
	struct krg_ipc_engine *eng;   /* owned: the objects this node homes */
	struct krg_ipc_limits lim;
	uint64_t (*now_fn)(void);
	struct kddm_set *objs[4];     /* by kind: "ipc.msg", "ipc.sem", "ipc.shm" */
	struct kddm_set *keys[4];     /* "ipc.msgkey", "ipc.semkey", "ipc.shmkey" */
	struct kddm_set *nodes;       /* "ipc.node": calls to one node */
	struct ipc_pend *by_token[IPC_PEND_BUCKETS];
	struct ipc_pend *by_gtoken[IPC_PEND_BUCKETS];
	uint64_t seq;                 /* gtoken sequence */
	uint32_t next_idx[3];         /* where the next free index search starts */
	uint32_t next_seq;            /* seq part of new ids */
	/* Completions the engine produced during an entry point: sent once it
	 * returned (its callback must not re-enter it). */
	struct ipc_done *done_head, *done_tail;
	bool in_engine;
	void *krgd;                   /* owned: ipc_service_krgd.c's state, or NULL */
	/* ipc_service_usage.c: what each node said it holds, what we said */
	struct ipc_usage_count {
		uint32_t msq, sem;
		uint64_t semtot;
	} peer[KRG_MAX_NODES], usage_sent;
	bool usage_sent_ok;
	struct krg_nodeset usage_live;
	struct created_q *created;    /* ipc_service_ckpt.c: queries not answered yet */
	/* ipc_service_owner.c: queues that moved (KRG_IPC_MNI entries each) */
	struct ipc_owned **owned;     /* by index: served here, homed elsewhere */
	uint16_t *where;              /* by index: the node we last knew it at, IPC_WHERE_HOME */
	uint32_t owned_n, moved_out;  /* counts, for the usage the others hear */
	bool moves_off;               /* queues never move (krgd.conf ipc_moves = off) */
	struct ipc_bsync *bsync;      /* a node call's changes copied to their backups, or NULL */
};

#define IPC_WHERE_HOME 0xffffu

/* "ipc.node" notify ids: a node's usage (| node); below it, completions. */
#define IPC_USAGE_NOTIFY (1ull << 40)
/* "ipc.node" notify id of a Take (a queue moving to that node). */
#define IPC_TAKE_NOTIFY (1ull << 41)

/* ipc_service_home.c */
int ipc_home_sets(struct krg_ipc_service *svc);
void ipc_home_flush(struct krg_ipc_service *svc);
uint64_t ipc_now(struct krg_ipc_service *svc);
uint32_t ipc_kind_of(uint32_t op);
/* Pack a Call into a malloc'ed buffer. */
int ipc_call_pack(const Krg__Ipc__Call *c, uint8_t **buf, size_t *len);
/* Pack c and call object id of set with it; cb (NULL: nobody waits for
 * the answer) as kddm_call's. 0, or -errno (no call made). */
int ipc_call_send(struct kddm_set *set, uint64_t id, const Krg__Ipc__Call *c, kddm_call_cb cb, void *data);
/* Answer a KDDM call with an Answer message. */
void ipc_answer(struct kddm_call *c, int status, const Krg__Ipc__Answer *a);
void ipc_answer_reply(struct kddm_call *c, const struct krg_ipc_reply *r);

/* An Object's bytes into this engine (a move or a handback). 0 or -errno;
 * *kind and *id say what it was. */
int ipc_import_bytes(struct krg_ipc_service *svc, const uint8_t *buf, size_t len, uint32_t *kind, int32_t *id);
int ipc_pack_object(struct krg_ipc_service *svc, uint32_t kind, int32_t id, uint8_t **buf, size_t *len);
int32_t ipc_key_of(struct krg_ipc_service *svc, uint32_t kind, int32_t id);
void ipc_forget_key(struct krg_ipc_service *svc, uint32_t kind, int32_t key, int32_t id);
bool ipc_is_rmid(const struct krg_ipc_req *r);
bool ipc_by_index(const struct krg_ipc_req *r);

int ipc_create_here(struct krg_ipc_service *svc, const struct krg_ipc_caller *who, const struct krg_ipc_req *req,
		    uint64_t token, struct krg_ipc_reply *reply);

/* ipc_service.c */
/* Free the sets and the engine; the struct stays (krgd keeps it). */
void ipc_service_close(struct krg_ipc_service *svc);
void ipc_completion_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len);
/* node died: calls parked there are sent again (backups on: the object
 * lives on at its backup) or end with EIDRM (it is gone). */
void ipc_node_down(struct krg_ipc_service *svc, uint32_t kind, uint32_t node);

/* ipc_service_owner.c (docs/ipc-service.md, "Owners") */
int ipc_owner_init(struct krg_ipc_service *svc);
void ipc_owner_free(struct krg_ipc_service *svc);
/* Served here as an owner (not its home). */
struct ipc_owned *ipc_owned_get(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx);
/* No longer served here as an owner: its entry goes. */
void ipc_owned_forget(struct krg_ipc_service *svc, uint64_t idx);
/* An UNDELIVERABLE call's reply put back into the engine here (what the
 * call took goes back where it was): the engine's answer, or -EBADMSG. */
int ipc_undeliverable(struct krg_ipc_service *svc, const Krg__Ipc__Call *m);
/* Where a call on (kind, idx) goes: a node (this one when it serves the
 * queue as its owner), or KDDM_NO_NODE: its home, through KDDM. */
uint32_t ipc_owner_route(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx);
/* A node said "the queue is at node": remember it for the next calls. */
void ipc_owner_learn(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, uint32_t node);
/* After a call ran here on queue id: move it to the node of the one
 * receiver the call completed, when at most one receiver waits. o: the
 * home's record when this node is its home, else NULL. Call before
 * ipc_home_flush (the completion goes with the queue). */
void ipc_owner_consider(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, struct ipc_obj *o);
/* After a msgrcv of a caller of node `to` was answered at once here:
 * the queue goes with the answer (*take, *len: a packed Take to put in
 * it) when at most one receiver waits. 0 (moved) or -errno (stays). */
int ipc_owner_take_for(struct krg_ipc_service *svc, uint32_t kind, uint64_t idx, int32_t id, struct ipc_obj *o,
		       uint32_t to, const struct krg_ipc_reply *reply, uint8_t **take, size_t *len);
/* Answer a call with reply and maybe a Take. */
void ipc_answer_reply_take(struct kddm_call *c, const struct krg_ipc_reply *r, uint8_t *take, size_t take_len);
/* ipc.node SYSCALL / UNDELIVERABLE / CANCEL at an owner. */
void ipc_owner_call(struct krg_ipc_service *svc, uint32_t from, const Krg__Ipc__Call *m, struct kddm_call *c);
/* OWNER at the home. */
void ipc_owner_set(struct krg_ipc_service *svc, struct ipc_obj *o, const Krg__Ipc__Call *m);
void ipc_take_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len);
/* This node is leaving: every queue it owns goes back to its home. */
void ipc_owner_leaving(struct krg_ipc_service *svc);
/* node died (backups off: queues move only then): queues owned there are
 * gone, and so are those this node owns whose home it was. */
void ipc_owner_node_down(struct krg_ipc_service *svc, uint32_t kind, uint32_t node);

/* ipc_service_usage.c */
/* Tell the others what this node holds if that changed, and follow
 * membership (after every engine entry point and on every tick). */
void ipc_usage_sync(struct krg_ipc_service *svc);
void ipc_usage_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len);

/* ipc_service_ckpt.c */
/* Fail the queries whose deadline passed (every tick). */
void ipc_ckpt_tick(struct krg_ipc_service *svc);
/* Fail every query still waiting (the service closes). */
void ipc_ckpt_close(struct krg_ipc_service *svc);

/* ipc_service_wire.c */
void ipcw_cred_to(const struct krg_ipc_caller *c, Krg__Ipc__Cred *m);
int ipcw_cred_from(const Krg__Ipc__Cred *m, struct krg_ipc_caller *c);
int ipcw_req_to(const struct krg_ipc_req *r, Krg__Ipc__Req *m, void **scratch);
int ipcw_req_from(const Krg__Ipc__Req *m, struct krg_ipc_req *r, void **scratch);
void ipcw_perm_to(const struct krg_ipc_perm *p, Krg__Ipc__Perm *m);
void ipcw_perm_from(const Krg__Ipc__Perm *m, struct krg_ipc_perm *p);
int ipcw_reply_to(const struct krg_ipc_reply *r, Krg__Ipc__Reply *m, Krg__Ipc__Perm *perm, int64_t fields[16],
		  uint32_t **vals);
int ipcw_reply_from(const Krg__Ipc__Reply *m, struct krg_ipc_reply *r);
