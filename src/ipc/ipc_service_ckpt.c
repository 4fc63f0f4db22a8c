/* ipc_service_ckpt.c — what a checkpoint asks of the cluster IPC service:
 * the System V queues and semaphore sets an application created, whole.
 *
 * Each home records the creator (cluster process id) of every object it
 * makes and keeps it through rehoming and backups. A checkpoint sends the
 * application's process ids to every live node at once (the CREATED call
 * of "ipc.node"); each answers with the objects it homes that one of them
 * created. Nodes answer in parallel and the query has a deadline: a node
 * that does not answer in time fails it, named (docs/ipc.md, "Checkpoint,
 * restart, migration"). KDDM itself retries a request for up to ~40 s
 * while a node says it is not ready: the deadline keeps a checkpoint from
 * waiting that long. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"
#include "lib/log.h"
#include "proc/procid.h"

struct created_q {
	struct krg_ipc_service *svc;    /* NULL once the service closed */
	unsigned waiting;               /* node answers still to come (+1 while sending) */
	bool told;                      /* cb ran */
	uint64_t deadline;              /* ipc_now() ns */
	struct krg_nodeset asked, answered;
	struct krg_ipc_created res;
	size_t cap;
	krg_ipc_created_fn cb;
	void *data;
	struct created_q *next;         /* svc->created */
};

struct created_node {
	struct created_q *q;
	uint32_t node;
};

static void res_release(struct krg_ipc_created *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->objs[i]);
	free(r->objs);
	free(r->lens);
	free(r->info);
	memset(r, 0, sizeof(*r));
}

static void unlink_q(struct created_q *q)
{
	if (!q->svc)
		return;
	for (struct created_q **p = &q->svc->created; *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			break;
		}
	q->svc = NULL;
}

static void tell(struct created_q *q)
{
	if (q->told)
		return;
	q->told = true;
	unlink_q(q);
	q->cb(q->data, &q->res);
	res_release(&q->res);
}

static void maybe_free(struct created_q *q)
{
	if (q->waiting)
		return;
	tell(q);
	res_release(&q->res);
	free(q);
}

static void fail(struct created_q *q, int status, uint32_t node)
{
	if (q->res.status == 0) {
		q->res.status = status;
		q->res.node = node;
	}
}

/* One object of a node's answer, its packed bytes kept (owned). */
static int add_obj(struct created_q *q, uint32_t node, const ProtobufCBinaryData *b)
{
	Krg__Ipc__Object *m = krg__ipc__object__unpack(NULL, b->len, b->data);
	if (!m || (m->kind != KRG_IPC_MSG && m->kind != KRG_IPC_SEM) || m->id < 0) {
		if (m)
			krg__ipc__object__free_unpacked(m, NULL);
		return -EBADMSG;
	}
	struct krg_ipc_created *r = &q->res;
	if (r->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 8;
		struct krg_ipc_obj_info *ni = realloc(r->info, cap * sizeof(*ni));
		if (ni)
			r->info = ni;
		uint8_t **no = ni ? realloc(r->objs, cap * sizeof(*no)) : NULL;
		if (no)
			r->objs = no;
		size_t *nl = no ? realloc(r->lens, cap * sizeof(*nl)) : NULL;
		if (!nl) {
			krg__ipc__object__free_unpacked(m, NULL);
			return -ENOMEM;
		}
		r->lens = nl;
		q->cap = cap;
	}
	uint8_t *copy = malloc(b->len ? b->len : 1);
	if (!copy) {
		krg__ipc__object__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	memcpy(copy, b->data, b->len);
	struct krg_ipc_obj_info *o = &r->info[r->n];
	memset(o, 0, sizeof(*o));
	o->kind = m->kind;
	o->id = m->id;
	o->key = m->perm->key;
	o->home = node;
	ipcw_perm_from(m->perm, &o->perm);
	o->qnum = m->n_msgs;
	o->nsems = m->n_semval;
	o->ctime = m->ctime;
	r->objs[r->n] = copy;
	r->lens[r->n] = b->len;
	r->n++;
	krg__ipc__object__free_unpacked(m, NULL);
	return 0;
}

static void node_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct created_node *cn = data;
	struct created_q *q = cn->q;
	uint32_t node = cn->node;
	free(cn);
	if (!q->told) {
		Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
		if (status == 0 && !a)
			status = -EBADMSG;
		for (size_t i = 0; a && status == 0 && i < a->n_objects; i++)
			status = add_obj(q, node, &a->objects[i]);
		if (a)
			krg__ipc__answer__free_unpacked(a, NULL);
		if (status < 0)
			fail(q, status, node);
		krg_nodeset_add(&q->answered, node);
	}
	q->waiting--;
	if (q->res.status < 0)
		tell(q);
	maybe_free(q);
}

int krg_ipc_service_created_by(struct krg_ipc_service *svc, const uint64_t *procs, size_t n,
			       unsigned deadline_ms, krg_ipc_created_fn cb, void *data)
{
	if (!svc || !svc->nodes || !cb || n > 65536)
		return -EINVAL;
	struct created_q *q = calloc(1, sizeof(*q));
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__CREATED;
	c.n_procs = n;
	c.procs = (uint64_t *)procs;
	uint8_t *buf = NULL;
	size_t len;
	if (!q || ipc_call_pack(&c, &buf, &len) < 0) {
		free(q);
		return -ENOMEM;
	}
	q->svc = svc;
	q->cb = cb;
	q->data = data;
	q->deadline = ipc_now(svc) + (uint64_t)deadline_ms * 1000000ull;
	q->next = svc->created;
	svc->created = q;
	q->waiting = 1; /* until every request is sent */
	const struct krg_nodeset *live = kddm_live(svc->k);
	for (unsigned node = 0; node < KRG_MAX_NODES; node++) {
		if (!krg_nodeset_has(live, node))
			continue;
		struct created_node *cn = malloc(sizeof(*cn));
		if (!cn) {
			fail(q, -ENOMEM, node);
			break;
		}
		cn->q = q;
		cn->node = node;
		krg_nodeset_add(&q->asked, node);
		q->waiting++;
		int r = kddm_call(svc->nodes, node, buf, len, node_cb, cn);
		if (r < 0) {
			q->waiting--;
			free(cn);
			fail(q, r, node);
			break;
		}
	}
	free(buf);
	q->waiting--;
	if (q->res.status < 0 || !q->waiting)
		tell(q);
	maybe_free(q);
	return 0;
}

void ipc_ckpt_tick(struct krg_ipc_service *svc)
{
	uint64_t now = ipc_now(svc);
	struct created_q *q = svc->created, *next;
	for (; q; q = next) {
		next = q->next;
		if (now < q->deadline)
			continue;
		/* The first node asked that has not answered is named. */
		uint32_t late = KDDM_NO_NODE;
		for (unsigned node = 0; node < KRG_MAX_NODES && late == KDDM_NO_NODE; node++)
			if (krg_nodeset_has(&q->asked, node) && !krg_nodeset_has(&q->answered, node))
				late = node;
		log_warn("ipc: node %u did not say in time which System V objects a checkpointed application made",
			 late);
		fail(q, -ETIMEDOUT, late);
		tell(q); /* unlinks q; freed when the last answer comes */
	}
}

void ipc_ckpt_close(struct krg_ipc_service *svc)
{
	struct created_q *q;
	while ((q = svc->created)) {
		fail(q, -ESHUTDOWN, kddm_self(svc->k));
		tell(q);
	}
}

/* ---- restart: the objects back under their ids ------------------------------ */

struct restore_q {
	struct krg_ipc_service *svc;
	unsigned waiting;               /* answers to come (+1 while sending) */
	bool told;
	int status;                     /* the first failure */
	struct krg_ipc_obj_info failed; /* its object */
	size_t n;
	struct restore_obj {
		uint32_t kind;
		int32_t id, key;
		bool made, keyed;           /* the object / its key is in the cluster now */
	} *objs;
	krg_ipc_restored_fn cb;
	void *data;
};

struct restore_call {
	struct restore_q *q;
	size_t i;
	bool key;                       /* the KEY_SET, not the object */
};

/* Undo what a failed restore made: objects dropped, keys forgotten. */
static void roll_back(struct restore_q *q)
{
	struct krg_ipc_service *svc = q->svc;
	for (size_t i = 0; svc && i < q->n; i++) {
		struct restore_obj *o = &q->objs[i];
		Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
		c.has_id = true;
		c.id = o->id;
		if (o->made) {
			c.op = KRG__IPC__CALL_OP__DROP;
			ipc_call_send(svc->objs[o->kind], (uint64_t)krg_ipc_id_idx(o->id), &c, NULL, NULL);
		}
		if (o->keyed) {
			c.op = KRG__IPC__CALL_OP__KEY_DEL;
			ipc_call_send(svc->keys[o->kind], (uint32_t)o->key, &c, NULL, NULL);
		}
	}
}

static void restore_done(struct restore_q *q)
{
	if (q->waiting || q->told)
		return;
	q->told = true;
	if (q->status < 0)
		roll_back(q);
	q->cb(q->data, q->status, q->status < 0 ? &q->failed : NULL);
	free(q->objs);
	free(q);
}

static void restore_fail(struct restore_q *q, int status, size_t i)
{
	/* The first failure, but an id taken says more than its key taken
	 * (by the same object, likely). */
	if (q->status < 0 && !(q->status == -EADDRINUSE && status == -EEXIST))
		return;
	q->status = status;
	q->failed.kind = q->objs[i].kind;
	q->failed.id = q->objs[i].id;
	q->failed.key = q->objs[i].key;
}

static void restore_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct restore_call *rc = data;
	struct restore_q *q = rc->q;
	/* A recovery's object found in place is kept: not made by this
	 * restore, never undone by it. */
	Krg__Ipc__Answer *a = status == 0 && len ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	bool kept = a && a->reply && a->reply->ret == 1;
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (status == 0 && kept) {
		/* nothing to undo */
	} else if (status == 0) {
		if (rc->key)
			q->objs[rc->i].keyed = true;
		else
			q->objs[rc->i].made = true;
	} else {
		/* A key taken reads as the key's failure, not the id's. */
		restore_fail(q, rc->key && status == -EEXIST ? -EADDRINUSE : status, rc->i);
	}
	free(rc);
	q->waiting--;
	restore_done(q);
}

/* Object m (decoded, may be changed) for a restore: owner checked, process
 * ids moved to node. Packed into *buf. */
static int restore_prep(Krg__Ipc__Object *m, uid_t owner, uint32_t node, uint8_t **buf, size_t *len)
{
	if ((m->kind != KRG_IPC_MSG && m->kind != KRG_IPC_SEM) || m->id < 0 || !m->perm)
		return -EBADMSG;
	/* An image is its user's to write: it brings back only objects
	 * that are that user's (root: any). */
	if (owner != 0 && (m->perm->uid != owner || m->perm->cuid != owner))
		return -EPERM;
	/* The restarted processes keep their pids and are this node's now
	 * (ckpt: restore with the image's pids): creator and SEM_UNDO
	 * records follow them. */
	if (m->has_creator && m->creator)
		m->creator = krg_procid_make(node, krg_procid_pid((uint32_t)m->creator));
	for (size_t i = 0; i < m->n_undos; i++)
		m->undos[i]->proc_id = krg_procid_make(node, krg_procid_pid((uint32_t)m->undos[i]->proc_id));
	*len = krg__ipc__object__get_packed_size(m);
	if (!(*buf = malloc(*len ? *len : 1)))
		return -ENOMEM;
	krg__ipc__object__pack(m, *buf);
	return 0;
}

int krg_ipc_service_restore(struct krg_ipc_service *svc, const uint8_t *saved, size_t len, uid_t owner, uint32_t node,
			    unsigned flags, krg_ipc_restored_fn cb, void *data)
{
	if (!svc || !svc->nodes || !cb)
		return -EINVAL;
	Krg__Ipc__Saved *sv = krg__ipc__saved__unpack(NULL, len, saved);
	if (!sv)
		return -EBADMSG;
	struct restore_q *q = calloc(1, sizeof(*q));
	if (q)
		q->objs = calloc(sv->n_objects + 1, sizeof(*q->objs));
	if (!q || !q->objs) {
		free(q);
		krg__ipc__saved__free_unpacked(sv, NULL);
		return -ENOMEM;
	}
	q->svc = svc;
	q->cb = cb;
	q->data = data;
	q->waiting = 1;
	q->n = sv->n_objects;
	for (size_t i = 0; i < sv->n_objects && q->status == 0; i++) {
		Krg__Ipc__Object *m = krg__ipc__object__unpack(NULL, sv->objects[i].len, sv->objects[i].data);
		if (!m) {
			q->status = -EBADMSG;
			break;
		}
		struct restore_obj *o = &q->objs[i];
		o->kind = m->kind;
		o->id = m->id;
		o->key = m->perm ? m->perm->key : 0;
		uint8_t *buf = NULL;
		size_t blen = 0;
		int r = restore_prep(m, owner, node, &buf, &blen);
		krg__ipc__object__free_unpacked(m, NULL);
		if (r < 0) {
			restore_fail(q, r, i);
			break;
		}
		Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
		c.op = KRG__IPC__CALL_OP__RESTORE;
		c.has_object = true;
		c.object.data = buf;
		c.object.len = blen;
		c.has_keep = c.keep = flags & KRG_IPC_RESTORE_KEEP;
		for (int k = 0; k < (o->key ? 2 : 1) && q->status == 0; k++) {
			struct restore_call *rc = calloc(1, sizeof(*rc));
			if (!rc) {
				restore_fail(q, -ENOMEM, i);
				break;
			}
			rc->q = q;
			rc->i = i;
			rc->key = k == 1;
			q->waiting++;
			if (rc->key) {
				Krg__Ipc__Call kc = KRG__IPC__CALL__INIT;
				kc.op = KRG__IPC__CALL_OP__KEY_SET;
				kc.has_id = true;
				kc.id = o->id;
				kc.has_keep = kc.keep = c.keep;
				r = ipc_call_send(svc->keys[o->kind], (uint32_t)o->key, &kc, restore_cb, rc);
			} else {
				r = ipc_call_send(svc->objs[o->kind], (uint64_t)krg_ipc_id_idx(o->id), &c, restore_cb, rc);
			}
			if (r < 0) {
				q->waiting--;
				free(rc);
				restore_fail(q, r, i);
			}
		}
		free(buf);
	}
	krg__ipc__saved__free_unpacked(sv, NULL);
	q->waiting--;
	restore_done(q);
	return 0;
}
