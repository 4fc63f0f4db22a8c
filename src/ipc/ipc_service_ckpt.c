/* ipc_service_ckpt.c — what a checkpoint asks of the cluster IPC service:
 * does the application own System V objects (queues, semaphore sets) that
 * its image cannot hold? Every live node lists what it homes (the LIST
 * call of "ipc.node"), and the objects whose creator is one of the
 * application's processes are the application's (docs/ipc.md,
 * "Checkpoint, restart, migration"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"

struct created_ctx {
	uint64_t *procs;
	size_t n;
	unsigned waiting;
	bool found;
	struct krg_ipc_obj_info o;
	krg_ipc_created_fn cb;
	void *data;
};

static bool is_app(const struct created_ctx *cc, uint64_t creator)
{
	for (size_t i = 0; creator && i < cc->n; i++)
		if (cc->procs[i] == creator)
			return true;
	return false;
}

static void list_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct created_ctx *cc = data;
	Krg__Ipc__Answer *a = status == 0 ? krg__ipc__answer__unpack(NULL, len, out) : NULL;
	for (size_t i = 0; a && !cc->found && i < a->n_objs; i++) {
		const Krg__Ipc__ObjInfo *m = a->objs[i];
		/* shm segments are the DSM's business (docs/dsm.md). */
		if ((m->kind != KRG_IPC_MSG && m->kind != KRG_IPC_SEM) || !m->perm || !is_app(cc, m->creator))
			continue;
		cc->found = true;
		cc->o.kind = m->kind;
		cc->o.id = m->id;
		cc->o.key = m->perm->key;
		cc->o.home = m->home;
		ipcw_perm_from(m->perm, &cc->o.perm);
		cc->o.qnum = m->qnum;
		cc->o.nsems = m->nsems;
		cc->o.ctime = m->ctime;
	}
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
	if (--cc->waiting)
		return;
	cc->cb(cc->data, cc->found, cc->found ? &cc->o : NULL);
	free(cc->procs);
	free(cc);
}

int krg_ipc_service_created_by(struct krg_ipc_service *svc, const uint64_t *procs, size_t n, krg_ipc_created_fn cb,
			       void *data)
{
	if (!svc || !svc->nodes || !cb)
		return -EINVAL;
	struct created_ctx *cc = calloc(1, sizeof(*cc));
	uint64_t *copy = malloc((n ? n : 1) * sizeof(*copy));
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__LIST;
	uint8_t *buf = NULL;
	size_t len;
	if (!cc || !copy || ipc_call_pack(&c, &buf, &len) < 0) {
		free(cc);
		free(copy);
		return -ENOMEM;
	}
	if (n)
		memcpy(copy, procs, n * sizeof(*copy));
	cc->procs = copy;
	cc->n = n;
	cc->cb = cb;
	cc->data = data;
	const struct krg_nodeset *live = kddm_live(svc->k);
	cc->waiting = 1 + krg_nodeset_count(live);
	for (unsigned node = 0; node < KRG_MAX_NODES; node++)
		if (krg_nodeset_has(live, node) && kddm_call(svc->nodes, node, buf, len, list_cb, cc) < 0)
			list_cb(svc->k, -EHOSTUNREACH, NULL, 0, cc);
	free(buf);
	list_cb(svc->k, -EAGAIN, NULL, 0, cc); /* the extra count: done once all answered */
	return 0;
}
