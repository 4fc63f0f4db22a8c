/* kddm-int.h — KDDM's own structures, shared by its files:
 *   kddm.c         instance, sets, the object map, homes, message dispatch
 *   kddm_req.c     the requesting side: operations, retries, local copies
 *   kddm_home.c    the home side: the object state machine, one op at a time
 *   kddm_member.c  membership: handover, READY, backups and promotion
 */
#pragma once
#include "kddm.h"
#include "kddm.pb-c.h"

/* What a node holds for one object. */
enum kddm_ent_state {
	ENT_NONE,    /* placeholder: ops waiting, no data */
	ENT_MASTER,  /* this node is the home; obj is the master copy (or NULL) */
	ENT_COPY,    /* a read copy fetched from copy_home */
	ENT_GRABBED, /* held exclusively here, grabbed from copy_home */
};

/* An operation at the home: from a peer (token) or from this node (local). */
struct kddm_hop {
	Krg__Kddm__Op op;
	uint64_t id;
	uint32_t from;
	uint64_t token;          /* peer's request to answer; 0 when local */
	struct kddm_req *local;  /* the local request; NULL when from a peer */
	uint8_t *data;           /* owned: argument bytes (create, put, call) */
	size_t len;
	void *obj;               /* local create: the object to insert (owned) */
	struct kddm_hop *next;
};

struct kddm_ent {
	uint64_t id;
	enum kddm_ent_state state;
	void *obj;                     /* owned (free_obj) */
	uint32_t locked_by;            /* master: node that grabbed it, or KDDM_NO_NODE */
	uint32_t copy_home;            /* copy/grabbed: the home it came from */
	struct krg_nodeset copyset;    /* master: nodes with read copies */
	struct krg_nodeset inv_wait;   /* master: invalidation acks still awaited */
	struct kddm_hop *cur;          /* master: op waiting for those acks */
	struct kddm_hop *q_head, *q_tail; /* master: ops waiting for the lock */
	unsigned busy;                 /* callers on the stack: do not free */
	bool handing;                  /* master: a HANDOVER is in flight */
	uint64_t epoch;                /* master: the membership epoch it became master here at */
	struct kddm_ent *hnext;        /* map chain */
};

/* A backup replica kept for another node's master copy. */
struct kddm_shadow {
	uint64_t id;
	uint32_t home;       /* who sent it */
	uint8_t *data;       /* owned: the exported state */
	size_t len;
	struct kddm_shadow *hnext;
};

/* Chained hash map of entries by id (sized for 10 000s: doubles at load 1). */
struct kddm_map {
	void **b;       /* buckets */
	size_t nb;      /* power of two */
	size_t n;
	size_t next_off; /* offset of the chain pointer in the element */
};

struct kddm_set {
	struct kddm *k;
	char *name;                    /* owned */
	uint32_t wire_id;              /* FNV-1a of name */
	const struct kddm_set_ops *ops; /* borrowed */
	void *data;                    /* the service's */
	struct kddm_map ents;          /* struct kddm_ent */
	struct kddm_map shadows;       /* struct kddm_shadow */
	struct kddm_set *next;
};

/* A request started on this node (sent, retried, or run locally). */
struct kddm_req {
	struct kddm *k;                /* NULL once the instance is gone */
	struct kddm_set *s;
	uint64_t id;
	Krg__Kddm__Op op;
	uint8_t *data;                 /* owned: argument kept for retries */
	size_t len;
	void *obj;                     /* create: object to insert (owned until handed) */
	kddm_obj_cb obj_cb;
	kddm_done_cb done_cb;
	kddm_call_cb call_cb;
	/* KDDM's own requests (invalidate, handover, backup): called with
	 * the outcome before r is freed. */
	void (*int_cb)(struct kddm_req *r, int status);
	void *cbdata;
	uint32_t to;                   /* where it was sent */
	const struct krg_nodeset *copyset; /* HANDOVER: borrowed from the entry, or NULL */
	unsigned attempts;
	bool in_flight;                /* a transport callback is due */
	struct kddm_req *prev, *next;  /* k->reqs */
};

struct kddm_call {
	struct kddm_set *s;
	uint64_t id;
	struct kddm_hop *hop;          /* owned: who to answer */
};

/* The one timer KDDM arms (handover passes, READY resends). Outlives the
 * instance if it fires after kddm_free. */
struct kddm_tick {
	struct kddm *k; /* NULL once the instance is gone */
};

struct kddm {
	uint32_t self;
	struct kddm_transport t;
	struct krg_nodeset live;       /* up and not leaving: candidates for homes */
	struct krg_nodeset awaiting;   /* peers whose READY we wait for before serving */
	struct krg_nodeset got_ready;  /* READY received (before or after their up) */
	bool leaving_self;
	bool down_self;                /* the log declared this node down: out of the homes until up again */
	bool backup;
	struct krg_nodeset ready_owed; /* peers we must (re)send READY to, until acked */
	/* Peers that may wait for our READY after the pass under way: those
	 * that came up or are leaving (they wait for every peer, or every
	 * peer waits for them), or, with ready_all, every live peer (this node
	 * itself came back or leaves). */
	struct krg_nodeset ready_to;
	bool ready_all;
	uint64_t epoch;                /* membership epoch applied here (kddm_set_epoch), 0: unknown */
	uint64_t ready_epoch[KRG_MAX_NODES];  /* the latest epoch each peer said READY at */
	uint64_t await_epoch[KRG_MAX_NODES];  /* awaiting: a READY at this epoch or later ends it */
	bool pass_dirty;               /* the live set changed: a handover pass is due */
	struct kddm_tick *tick;        /* the pending timer, if any (owned jointly) */
	unsigned ask_ticks;            /* ticks since the last READY_ASK to the awaited peers */
	struct kddm_set *sets;
	struct kddm_req *reqs;         /* started, not completed */
	struct kddm_stats st;
};

/* kddm.c */
void *kddm_map_get(const struct kddm_map *m, uint64_t id);
int kddm_map_put(struct kddm_map *m, uint64_t id, void *elem);
void *kddm_map_del(struct kddm_map *m, uint64_t id);
/* Call fn on every element (it may delete the one it is given). */
void kddm_map_each(struct kddm_map *m, void (*fn)(void *elem, void *data), void *data);
struct kddm_set *kddm_set_by_wire(struct kddm *k, uint32_t wire_id);
struct kddm_ent *kddm_ent_get(struct kddm_set *s, uint64_t id, bool create);
/* Forget e if it holds nothing and nobody is using it. */
void kddm_ent_release(struct kddm_set *s, struct kddm_ent *e);
void kddm_drop_obj(struct kddm_set *s, struct kddm_ent *e);
int kddm_send_msg(struct kddm *k, uint32_t to, Krg__Kddm__Op op, uint32_t set, uint64_t id, const uint8_t *data,
		  size_t len, bool has_data, const struct krg_nodeset *copyset, kddm_reply_fn fn, void *ctx);

/* kddm_req.c */
int kddm_req_start(struct kddm_set *s, uint64_t id, Krg__Kddm__Op op, const void *in, size_t len, void *obj,
		   struct kddm_req **out);
/* Send r to node to (PUT, INVALIDATE, HANDOVER, BACKUP: never retried
 * elsewhere); r->int_cb or r->done_cb gets the outcome. */
void kddm_req_send_to(struct kddm_req *r, uint32_t to);
/* Local answer from the home side. */
void kddm_req_local_done(struct kddm_req *r, int status, void *obj, const uint8_t *out, size_t len);
void kddm_req_fail_all(struct kddm *k, int status);
/* The same for the requests on one set (kddm_set_free). */
void kddm_req_fail_set(struct kddm *k, struct kddm_set *s, int status);
void kddm_copy_invalidate(struct kddm_set *s, uint64_t id);
void kddm_copies_of_home_drop(struct kddm *k, uint32_t home);

/* kddm_home.c */
void kddm_home_submit(struct kddm_set *s, uint64_t id, struct kddm_hop *hop);
void kddm_hop_answer(struct kddm *k, struct kddm_set *s, struct kddm_hop *hop, int status, void *obj);
void kddm_hop_free(struct kddm_hop *h);
void kddm_home_inv_ack(struct kddm_set *s, uint64_t id, uint32_t from);
void kddm_home_node_down(struct kddm_set *s, uint32_t node);
void kddm_home_drain(struct kddm_set *s, struct kddm_ent *e);

/* kddm_member.c */
void kddm_member_deliver(struct kddm *k, struct kddm_set *s, uint32_t from, const Krg__Kddm__Msg *m,
			 uint64_t token);
void kddm_member_changed(struct kddm *k);
void kddm_member_free(struct kddm *k);
