/* engine_xport.c — one object's whole state out of and back into an
 * engine (checkpoint, rehoming, backup replica). Waiters are not part of
 * it: the service re-issues parked calls where the object goes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include "ipc/engine_int.h"

void krg_ipc_export_release(struct krg_ipc_export *x)
{
	for (uint32_t i = 0; x->msgs && i < x->nmsgs; i++)
		free(x->msgs[i].text);
	free(x->msgs);
	for (uint32_t i = 0; x->undos && i < x->nundos; i++)
		free(x->undos[i].semadj);
	free(x->undos);
	free(x->semval);
	free(x->sempid);
	memset(x, 0, sizeof *x);
}

static int export_msq(const struct msq *m, struct krg_ipc_export *x)
{
	x->stime = m->stime;
	x->rtime = m->rtime;
	x->qbytes = m->qbytes;
	x->lspid = m->lspid;
	x->lrpid = m->lrpid;
	x->msgs = calloc(m->qnum ? m->qnum : 1, sizeof *x->msgs);
	if (!x->msgs)
		return -ENOMEM;
	for (const struct klist *p = m->msgs.next; p != &m->msgs; p = p->next) {
		const struct msg *g = klist_entry(p, struct msg, node);
		struct krg_ipc_msg *o = &x->msgs[x->nmsgs];
		o->text = malloc(g->len ? g->len : 1);
		if (!o->text)
			return -ENOMEM;
		memcpy(o->text, g->text, g->len);
		o->len = g->len;
		o->mtype = g->mtype;
		x->nmsgs++;
	}
	return 0;
}

static int export_sem(const struct semset *s, struct krg_ipc_export *x)
{
	x->otime = s->otime;
	x->nsems = s->nsems;
	x->semval = malloc(s->nsems * sizeof *x->semval);
	x->sempid = malloc(s->nsems * sizeof *x->sempid);
	if (!x->semval || !x->sempid)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nsems; i++) {
		x->semval[i] = (uint16_t)s->sems[i].val;
		x->sempid[i] = s->sems[i].pid;
	}
	uint32_t n = 0;
	for (const struct klist *p = s->undos.next; p != &s->undos; p = p->next)
		n++;
	x->undos = calloc(n ? n : 1, sizeof *x->undos);
	if (!x->undos)
		return -ENOMEM;
	for (const struct klist *p = s->undos.next; p != &s->undos; p = p->next) {
		const struct undo *u = klist_entry(p, struct undo, setnode);
		struct krg_ipc_undo *o = &x->undos[x->nundos];
		o->semadj = malloc(s->nsems * sizeof *o->semadj);
		if (!o->semadj)
			return -ENOMEM;
		memcpy(o->semadj, u->adj, s->nsems * sizeof *o->semadj);
		o->proc_id = u->proc_id;
		x->nundos++;
	}
	return 0;
}

int krg_ipc_engine_export(const struct krg_ipc_engine *e, uint32_t kind, int32_t id,
		struct krg_ipc_export *out)
{
	memset(out, 0, sizeof *out);
	struct ipc_obj *o = obj_check((struct krg_ipc_engine *)e, kind, id);
	if (!o)
		return -EINVAL;
	out->kind = kind;
	out->id = o->id;
	out->perm = o->perm;
	out->ctime = o->ctime;
	out->creator = o->creator;
	int r = kind == KRG_IPC_MSG ? export_msq((const struct msq *)o, out)
		: kind == KRG_IPC_SEM ? export_sem((const struct semset *)o, out)
		: shm_export((const struct shmseg *)o, out);
	if (r < 0)
		krg_ipc_export_release(out);
	return r;
}

/* Refuses what no engine could have produced, before anything changes. */
static int import_check(const struct krg_ipc_engine *e, const struct krg_ipc_export *x)
{
	if (x->id < 0 || (x->kind != KRG_IPC_MSG && x->kind != KRG_IPC_SEM &&
			x->kind != KRG_IPC_SHM))
		return -EINVAL;
	if (x->perm.mode & ~0777u)
		return -EINVAL;
	if (x->kind == KRG_IPC_SHM)
		return 0; /* shm_import checks its own fields */
	if (x->kind == KRG_IPC_MSG) {
		if (x->nmsgs && !x->msgs)
			return -EINVAL;
		for (uint32_t i = 0; i < x->nmsgs; i++)
			if (x->msgs[i].mtype < 1 || (x->msgs[i].len && !x->msgs[i].text))
				return -EINVAL;
		return 0;
	}
	if (!x->nsems || !x->semval || !x->sempid || (x->nundos && !x->undos))
		return -EINVAL;
	for (uint32_t i = 0; i < x->nsems; i++)
		if (x->semval[i] > e->lim.semvmx)
			return -EINVAL;
	for (uint32_t i = 0; i < x->nundos; i++) {
		if (!x->undos[i].semadj)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (x->undos[j].proc_id == x->undos[i].proc_id)
				return -EINVAL;
	}
	return 0;
}

static int import_msq(struct krg_ipc_engine *e, const struct krg_ipc_export *x, struct msq *m)
{
	klist_init(&m->msgs);
	klist_init(&m->receivers);
	klist_init(&m->senders);
	m->stime = x->stime;
	m->rtime = x->rtime;
	m->qbytes = x->qbytes;
	m->lspid = x->lspid;
	m->lrpid = x->lrpid;
	for (uint32_t i = 0; i < x->nmsgs; i++) {
		struct msg *g = malloc(sizeof *g + x->msgs[i].len);
		if (!g)
			return -ENOMEM;
		g->mtype = x->msgs[i].mtype;
		g->len = x->msgs[i].len;
		g->serial = ++e->msg_serial;
		if (g->len)
			memcpy(g->text, x->msgs[i].text, g->len);
		klist_add_tail(&m->msgs, &g->node);
		m->cbytes += g->len;
		m->qnum++;
	}
	return 0;
}

static void free_msgs(struct msq *m)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->msgs)
		free(klist_entry(pos, struct msg, node));
}

static int import_undos(struct krg_ipc_engine *e, const struct krg_ipc_export *x, struct semset *s)
{
	for (uint32_t i = 0; i < x->nundos; i++) {
		struct undo *u = undo_get(e, x->undos[i].proc_id, s);
		if (!u)
			return -ENOMEM;
		memcpy(u->adj, x->undos[i].semadj, s->nsems * sizeof u->adj[0]);
	}
	return 0;
}

int krg_ipc_engine_import(struct krg_ipc_engine *e, const struct krg_ipc_export *x)
{
	int r = import_check(e, x);
	if (r < 0)
		return r;
	if (x->perm.key != IPC_PRIVATE && obj_by_key(e, x->kind, x->perm.key))
		return -EEXIST;
	if (ids_of(e, x->kind)->slot[krg_ipc_id_idx(x->id)])
		return -EBUSY;
	struct ipc_obj *o;
	if (x->kind == KRG_IPC_SHM) {
		if ((r = shm_import(e, x, &o)) < 0)
			return r;
	} else if (x->kind == KRG_IPC_MSG) {
		struct msq *m = calloc(1, sizeof *m);
		if (!m)
			return -ENOMEM;
		o = &m->o;
		if ((r = import_msq(e, x, m)) < 0) {
			free_msgs(m);
			free(m);
			return r;
		}
	} else {
		if (e->sem_total + x->nsems > e->lim.semmns)
			return -ENOSPC;
		struct semset *s = calloc(1, sizeof *s + x->nsems * sizeof s->sems[0]);
		if (!s)
			return -ENOMEM;
		o = &s->o;
		s->nsems = x->nsems;
		s->otime = x->otime;
		klist_init(&s->pending_alter);
		klist_init(&s->pending_const);
		klist_init(&s->undos);
		for (uint32_t i = 0; i < x->nsems; i++) {
			klist_init(&s->sems[i].pending_alter);
			klist_init(&s->sems[i].pending_const);
			s->sems[i].val = x->semval[i];
			s->sems[i].pid = x->sempid[i];
		}
	}
	o->kind = x->kind;
	o->perm = x->perm;
	o->ctime = x->ctime;
	o->creator = x->creator;
	uint32_t limit = x->kind == KRG_IPC_MSG ? e->lim.msgmni
		: x->kind == KRG_IPC_SEM ? e->lim.semmni : e->lim.shmmni;
	r = obj_add(e, o, x->id, limit);
	if (r == 0 && x->kind == KRG_IPC_SEM) {
		struct semset *s = (struct semset *)o;
		e->sem_total += s->nsems;
		if ((r = import_undos(e, x, s)) < 0) {
			semset_destroy(e, s, -EIDRM);
			return r;
		}
	}
	if (r < 0) {
		if (x->kind == KRG_IPC_MSG)
			free_msgs((struct msq *)o);
		free(o);
		return r;
	}
	if (x->kind == KRG_IPC_SHM)
		shm_imported(e, (struct shmseg *)o);
	if (x->kind == KRG_IPC_MSG) {
		struct msq *m = (struct msq *)o;
		e->msg_count += m->qnum;
		e->msg_bytes += m->cbytes;
	}
	return 0;
}
