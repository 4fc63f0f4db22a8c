/* engine_undo.c — SEM_UNDO records: one per (process, set), owned by the
 * cluster-wide process id so the process may end on any node. Linux keeps
 * a process's records most-recently-used first and applies them in that
 * order at exit (exit_sem), clamping each value to [0, semvmx]. */
#include <stdlib.h>
#include <string.h>
#include "ipc/engine_int.h"

static uint64_t undo_key(uint64_t proc_id, int32_t semid)
{
	return (proc_id * 0x9e3779b97f4a7c15ull) ^ (uint32_t)semid;
}

static struct uproc *uproc_find(struct krg_ipc_engine *e, uint64_t proc_id)
{
	struct khnode *n = khash_first(&e->procs, proc_id);
	return n ? klist_entry(n, struct uproc, hnode) : NULL;
}

struct undo *undo_find(struct krg_ipc_engine *e, uint64_t proc_id, int32_t semid)
{
	for (struct khnode *n = khash_first(&e->undos, undo_key(proc_id, semid)); n; n = khash_next(n)) {
		struct undo *u = klist_entry(n, struct undo, hnode);
		if (u->proc_id == proc_id && u->semid == semid)
			return u;
	}
	return NULL;
}

/* The record of proc_id on s, created empty if need be; it becomes the
 * process's most recently used one (Linux lookup_undo). NULL: no memory. */
struct undo *undo_get(struct krg_ipc_engine *e, uint64_t proc_id, struct semset *s)
{
	struct undo *u = undo_find(e, proc_id, s->o.id);
	if (u) {
		klist_del(&u->procnode);
		klist_add_head(&uproc_find(e, proc_id)->undos, &u->procnode);
		return u;
	}
	struct uproc *p = uproc_find(e, proc_id);
	bool new_proc = !p;
	if (new_proc) {
		p = calloc(1, sizeof *p);
		if (!p)
			return NULL;
		p->hnode.key = proc_id;
		klist_init(&p->undos);
		if (khash_insert(&e->procs, &p->hnode) < 0) {
			free(p);
			return NULL;
		}
	}
	u = calloc(1, sizeof *u + s->nsems * sizeof u->adj[0]);
	if (!u || (u->hnode.key = undo_key(proc_id, s->o.id), khash_insert(&e->undos, &u->hnode) < 0)) {
		free(u);
		if (new_proc) {
			khash_remove(&e->procs, &p->hnode);
			free(p);
		}
		return NULL;
	}
	u->proc_id = proc_id;
	u->semid = s->o.id;
	u->nsems = s->nsems;
	klist_add_head(&s->undos, &u->setnode);
	klist_add_head(&p->undos, &u->procnode);
	return u;
}

void undo_free(struct krg_ipc_engine *e, struct undo *u)
{
	struct uproc *p = uproc_find(e, u->proc_id);
	khash_remove(&e->undos, &u->hnode);
	klist_del(&u->setnode);
	klist_del(&u->procnode);
	if (p && klist_empty(&p->undos)) {
		khash_remove(&e->procs, &p->hnode);
		free(p);
	}
	free(u);
}

/* Linux exit_sem(). */
void undo_process_exit(struct krg_ipc_engine *e, uint64_t proc_id, int32_t pid)
{
	struct uproc *p;
	while ((p = uproc_find(e, proc_id)) && !klist_empty(&p->undos)) {
		struct undo *u = klist_entry(p->undos.next, struct undo, procnode);
		struct semset *s = (struct semset *)obj_check(e, KRG_IPC_SEM, u->semid);
		if (s) {
			for (uint32_t i = 0; i < s->nsems && i < u->nsems; i++) {
				if (!u->adj[i])
					continue;
				int32_t v = s->sems[i].val + u->adj[i];
				if (v < 0)
					v = 0;
				if (v > (int32_t)e->lim.semvmx)
					v = (int32_t)e->lim.semvmx;
				s->sems[i].val = v;
				s->sems[i].pid = pid;
			}
		}
		undo_free(e, u);
		if (s) {
			note_change(e, KRG_IPC_SEM, s->o.id);
			sem_update_all(e, s, true);
		}
	}
}

size_t krg_ipc_engine_undo_rename(struct krg_ipc_engine *e, uint64_t from, uint64_t to)
{
	struct uproc *pf = uproc_find(e, from);
	if (!pf || from == to)
		return 0;
	struct uproc *pt = uproc_find(e, to);
	bool new_proc = !pt;
	if (new_proc) {
		pt = calloc(1, sizeof *pt);
		if (!pt)
			return 0;
		pt->hnode.key = to;
		klist_init(&pt->undos);
		if (khash_insert(&e->procs, &pt->hnode) < 0) {
			free(pt);
			return 0;
		}
	}
	size_t moved = 0;
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &pf->undos) {
		struct undo *u = klist_entry(pos, struct undo, procnode);
		if (undo_find(e, to, u->semid))
			continue;
		khash_remove(&e->undos, &u->hnode);
		u->proc_id = to;
		u->hnode.key = undo_key(to, u->semid);
		if (khash_insert(&e->undos, &u->hnode) < 0) {
			/* cannot fail for a node just removed; keep it findable */
			u->proc_id = from;
			u->hnode.key = undo_key(from, u->semid);
			khash_insert(&e->undos, &u->hnode);
			continue;
		}
		klist_del(&u->procnode);
		klist_add_tail(&pt->undos, &u->procnode); /* keeps most recently used first */
		note_change(e, KRG_IPC_SEM, u->semid);
		moved++;
	}
	if (klist_empty(&pf->undos)) {
		khash_remove(&e->procs, &pf->hnode);
		free(pf);
	}
	if (klist_empty(&pt->undos)) {
		khash_remove(&e->procs, &pt->hnode);
		free(pt);
	}
	engine_flush_changes(e);
	return moved;
}
