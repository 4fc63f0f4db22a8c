/* kddm.h — the distributed data manager (Kerrighed's KDDM, in user space).
 *
 * A KDDM instance runs on every node (inside krgd). Services register *sets*
 * of objects; every set has an ops table (Kerrighed's "io-linker") that
 * knows how to create, serialise, deserialise, drop and serve its objects.
 * An object is named by (set, id). Every object has
 *   - a home: the node that keeps its master copy and orders every access to
 *     it. By default the rendezvous hash (highest random weight) of the id
 *     over the live nodes, or what the set's default_home op says;
 *   - an owner: the home, or the node that grabbed it and has not put it back;
 *   - a copyset: nodes holding a read copy (invalidated, with acks, before
 *     anyone gets it exclusively or a call changes it).
 * Operations: fetch (a read copy), grab (exclusive, until put), put, create,
 * remove, and call — function shipping: the set's call op runs at the home,
 * on the master copy (message queues and semaphore arrays are served that
 * way). Notify sends a one-way message to a set's notify op on another node.
 *
 * Every operation is asynchronous: its callback fires exactly once, maybe
 * before the function returns (everything local). All of it runs on one
 * thread (krgd's loop); nothing here is thread-safe.
 *
 * Nothing is centrally allocated: homes come from hashes, so two nodes that
 * create the same key race at one node (the key's home), which decides.
 *
 * Membership: kddm_node_up/down/leaving. When the live set changes, objects
 * whose home moves are handed over (HANDOVER) by their old home; a node that
 * became home of something answers -EAGAIN (retried by the requester) until
 * every live peer said READY. A home that dies loses its objects unless the
 * set keeps a backup: with kddm_set_backup(k, true), every change that
 * kddm_sync() covers is on the backup node (the hash's second choice) before
 * the caller is answered, and the backup becomes the home when the home dies.
 * docs/kddm.md has the protocol and its reasons.
 *
 * The transport is an interface (struct kddm_transport): krgd plugs in
 * krg_net (kddm_net.h), the unit tests an in-process fake.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/nodelist.h"

struct kddm;
struct kddm_set;
struct kddm_call;

#define KDDM_NO_NODE UINT32_MAX

/* Completion of a transport request: status 0 with the reply body
 * (borrowed, for the callback only), or a negative errno: -ETIMEDOUT,
 * -ECONNRESET, -EHOSTUNREACH, or the status the peer replied with. */
typedef void (*kddm_reply_fn)(void *ctx, int status, const uint8_t *body, size_t len);

/* What the core needs from the network. Every body is a serialised
 * krg.kddm.Msg (src/proto/kddm.proto), or the reply's bytes. */
#define KDDM_TRANSPORT_V1 1
struct kddm_transport {
	unsigned version; /* KDDM_TRANSPORT_V1 */
	/* Send a request; fn(ctx, ...) exactly once, later (never from inside
	 * this call). 0 or negative errno (then fn is not called). */
	int (*request)(void *t, uint32_t to, const uint8_t *body, size_t len, kddm_reply_fn fn, void *ctx);
	/* Answer the request delivered with token (kddm_deliver). */
	int (*reply)(void *t, uint32_t to, uint64_t token, int status, const uint8_t *body, size_t len);
	/* One-way message. */
	int (*send)(void *t, uint32_t to, const uint8_t *body, size_t len);
	/* Run fn(arg) after ms milliseconds (retries and backoff). 0 or -errno. */
	int (*later)(void *t, unsigned ms, void (*fn)(void *arg), void *arg);
	void *t; /* the transport's own state, first argument of each op */
};

/* The io-linker: a set's operations. obj pointers are the set's own
 * structures; KDDM stores and passes them, never looks inside. */
#define KDDM_OPS_V1 1
struct kddm_set_ops {
	unsigned version; /* KDDM_OPS_V1 */
	/* At the home, an access finds no object: make one (*obj, 0) or say
	 * there is none (-ENOENT). NULL: -ENOENT. */
	int (*first_touch)(struct kddm_set *s, uint64_t id, void **obj);
	/* Serialise obj into a malloc'ed buffer (*buf, *len). Required. */
	int (*export_obj)(struct kddm_set *s, uint64_t id, const void *obj, uint8_t **buf, size_t *len);
	/* Build an object from bytes that came from another node: validate
	 * everything, -EBADMSG on nonsense. Required. */
	int (*import_obj)(struct kddm_set *s, uint64_t id, const uint8_t *buf, size_t len, void **obj);
	/* Free obj. Required. */
	void (*free_obj)(struct kddm_set *s, uint64_t id, void *obj);
	/* Hooks, may be NULL: this node's copy is about to be dropped because
	 * someone else writes it (invalidate) or because the object is removed
	 * everywhere (remove; at the home and where copies were). obj is
	 * freed with free_obj right after. */
	void (*invalidate)(struct kddm_set *s, uint64_t id, void *obj);
	void (*remove)(struct kddm_set *s, uint64_t id, void *obj);
	/* The home of id among live nodes; NULL: rendezvous hash
	 * (kddm_hash_home). Must be the same function on every node and
	 * return a live node. */
	uint32_t (*default_home)(struct kddm_set *s, uint64_t id, const struct krg_nodeset *live);
	/* Function shipping: runs at the home with the master copy (*obj,
	 * NULL if there is none). It may create (*obj = new) or destroy (free
	 * it with free_obj, *obj = NULL: KDDM then forgets the object). Copies
	 * elsewhere were invalidated before. Answer with kddm_call_done(c, ...),
	 * now or later. from: the calling node. NULL: calls get -EOPNOTSUPP. */
	void (*call)(struct kddm_set *s, uint64_t id, void **obj, uint32_t from, const uint8_t *in, size_t len,
		     struct kddm_call *c);
	/* A one-way kddm_notify() from node from arrived. May be NULL. */
	void (*notify)(struct kddm_set *s, uint64_t id, uint32_t from, const uint8_t *in, size_t len);
	/* A node left the live set (down: gone without handing over). Objects
	 * homed there that are not backed up are lost; the set may clean up
	 * what it kept for that node (its waiters, its processes). May be NULL. */
	void (*node_down)(struct kddm_set *s, uint32_t node);
};

/* Object callbacks. obj is borrowed: for fetch valid during the callback
 * only; for grab until kddm_put(). status < 0: obj is NULL. */
typedef void (*kddm_obj_cb)(struct kddm *k, int status, void *obj, void *data);
/* Completion of create/remove/put/sync. */
typedef void (*kddm_done_cb)(struct kddm *k, int status, void *data);
/* Completion of a call: status and the call op's reply bytes (borrowed). */
typedef void (*kddm_call_cb)(struct kddm *k, int status, const uint8_t *out, size_t len, void *data);

/* Instance. self: this node's id. The transport is copied. Starts with
 * only this node live and ready. */
int kddm_new(uint32_t self, const struct kddm_transport *t, struct kddm **out);
/* Free every set and object. Callbacks of operations still waiting are
 * called with -ECANCELED first. */
void kddm_free(struct kddm *k);
uint32_t kddm_self(const struct kddm *k);

/* A message for KDDM arrived (token != 0: a request to answer through the
 * transport's reply). Malformed messages are logged and refused (-EBADMSG
 * reply), never trusted. */
void kddm_deliver(struct kddm *k, uint32_t from, const uint8_t *body, size_t len, uint64_t token);

/* Sets. name identifies the set on every node (its wire id is a hash of
 * it: -EEXIST if another set here has the same hash). ops borrowed (static). */
int kddm_set_new(struct kddm *k, const char *name, const struct kddm_set_ops *ops, void *data,
		 struct kddm_set **out);
struct kddm_set *kddm_set_find(struct kddm *k, const char *name);
/* Forget a set here: its objects are freed (free_obj), operations on it
 * still waiting end with -ECANCELED. Peers' requests for it get
 * -ENOPROTOOPT from then on. */
void kddm_set_free(struct kddm_set *s);
void *kddm_set_data(const struct kddm_set *s);
struct kddm *kddm_set_kddm(const struct kddm_set *s);
const char *kddm_set_name(const struct kddm_set *s);

/* Membership. up: node joins the live set; down: node left it without
 * notice; leaving: node is about to go (on that node: hand everything over
 * now; elsewhere: stop choosing it as a home). Idempotent. */
void kddm_node_up(struct kddm *k, uint32_t node);
void kddm_node_down(struct kddm *k, uint32_t node);
void kddm_node_leaving(struct kddm *k, uint32_t node);
/* The cluster's membership epoch of the change about to be applied (call
 * before kddm_node_*). READY messages carry it: a peer's READY sent after
 * it applied a change may arrive before this node applies the same change,
 * and must then still count; one from before the change must not. 0 (never
 * set): every READY counts when it arrives, as without epochs. */
void kddm_set_epoch(struct kddm *k, uint64_t epoch);
const struct krg_nodeset *kddm_live(const struct kddm *k);
/* Serving: no peer's READY is awaited (after a membership change,
 * this node answers -EAGAIN until the peers that may hold what it now
 * homes have handed it over). */
bool kddm_ready(const struct kddm *k);

/* Backup replicas for every set (the same choice on every node: krgd
 * takes it from the cluster's configuration). Off by default. */
void kddm_set_backup(struct kddm *k, bool on);
bool kddm_backup(const struct kddm *k);

/* Homes. */
uint32_t kddm_home(struct kddm_set *s, uint64_t id);
/* The rendezvous hash: the live node with the highest weight for (id,
 * node); KDDM_NO_NODE when none is live. */
uint32_t kddm_hash_home(uint64_t id, const struct krg_nodeset *live);
/* The node that keeps the backup of an object homed at home: the hash's
 * choice among live nodes but home; KDDM_NO_NODE if alone. */
uint32_t kddm_backup_node(struct kddm_set *s, uint64_t id, uint32_t home);
/* Whether this node holds the master copy of (s, id) now. */
bool kddm_is_home(struct kddm_set *s, uint64_t id);

/* Operations (see the top of this file). 0 when started (cb will fire),
 * or a negative errno right away (cb will not). */
int kddm_fetch(struct kddm_set *s, uint64_t id, kddm_obj_cb cb, void *data);
int kddm_grab(struct kddm_set *s, uint64_t id, kddm_obj_cb cb, void *data);
/* Release a grab; dirty: the object changed (sent back to the home when
 * grabbed from elsewhere). cb may be NULL. */
int kddm_put(struct kddm_set *s, uint64_t id, bool dirty, kddm_done_cb cb, void *data);
/* Insert obj (owned by KDDM from now on, also on failure) as a new object. */
int kddm_create(struct kddm_set *s, uint64_t id, void *obj, kddm_done_cb cb, void *data);
int kddm_remove(struct kddm_set *s, uint64_t id, kddm_done_cb cb, void *data);
int kddm_call(struct kddm_set *s, uint64_t id, const void *in, size_t len, kddm_call_cb cb, void *data);
/* Answer a call (copies out). The handle is gone afterwards. */
void kddm_call_done(struct kddm_call *c, int status, const void *out, size_t len);
/* One-way message to the set's notify op on node to (itself included). */
int kddm_notify(struct kddm_set *s, uint32_t to, uint64_t id, const void *in, size_t len);
/* Make the backup node hold the master copy's current state (or its
 * absence) before cb; immediate when backups are off or nobody else is
 * live. Call at the home after a change and before answering anyone. */
int kddm_sync(struct kddm_set *s, uint64_t id, kddm_done_cb cb, void *data);

/* Local views. */
/* The master copy if this node is its home (else NULL). Borrowed. */
void *kddm_peek(struct kddm_set *s, uint64_t id);
/* Visit the objects this node is home of; cb returns true to stop.
 * cb must not create or remove objects. Returns the number visited. */
size_t kddm_each(struct kddm_set *s, bool (*cb)(struct kddm_set *s, uint64_t id, void *obj,
						const struct krg_nodeset *copyset, void *data),
		 void *data);
size_t kddm_count(struct kddm_set *s);

/* Figures for status and tests. */
struct kddm_stats {
	uint64_t requests_sent;  /* to other nodes */
	uint64_t requests_served;
	uint64_t retries;        /* -EAGAIN or lost home, sent again */
	uint64_t rejected;       /* malformed messages from peers */
	uint64_t handed_over;    /* objects sent to a new home */
	uint64_t promoted;       /* backups that became masters */
	uint64_t fenced;         /* master copies dropped or replaced because this node had been declared down */
};
void kddm_stats(const struct kddm *k, struct kddm_stats *out);
