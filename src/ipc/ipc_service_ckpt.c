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
