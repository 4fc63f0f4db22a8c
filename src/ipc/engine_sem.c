/* engine_sem.c — System V semaphore sets with Linux's semantics (kernel
 * ipc/sem.c is the reference): semget, semop/semtimedop, semctl. Sleeping
 * semops are parked waiters kept in Linux's queues (per semaphore while
 * only single-sop operations wait; one array-wide queue, merged in
 * Linux's order, while a multi-sop operation waits) and retried in
 * Linux's order whenever values change, so wake-up order and fairness are
 * the kernel's.
 *
 * Map: applying operations | the wake-up machinery | semget | semop |
 * semctl | destroy, cancel, timeout, undeliverable | dispatch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include "ipc/engine_int.h"

#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif

#define S_RUGO 0444
#define S_WUGO 0222

static struct semset *set_check(struct krg_ipc_engine *e, int32_t id)
{
	return (struct semset *)obj_check(e, KRG_IPC_SEM, id);
}

/* ---- applying operations ---------------------------------------------------------- */

/* One semop attempt (Linux perform_atomic_semop_slow, which gives the same
 * answers as the fast path for every input): all or nothing. 0 applied,
 * 1 must wait (*blocking = the sop that could not go), or -EAGAIN (that
 * sop had IPC_NOWAIT), -ERANGE (value or undo beyond its bounds). un is
 * the caller's undo record when any sop has SEM_UNDO. */
static int perform(struct krg_ipc_engine *e, struct semset *s, const struct krg_ipc_sembuf *sops,
		uint32_t nsops, struct undo *un, int32_t pid, uint32_t *blocking)
{
	int32_t vmx = (int32_t)e->lim.semvmx, aem = (int32_t)e->lim.semaem;
	uint32_t i;
	int result;
	for (i = 0; i < nsops; i++) {
		const struct krg_ipc_sembuf *sop = &sops[i];
		struct sem *curr = &s->sems[sop->num];
		int32_t v = curr->val;
		if (sop->op == 0 && v)
			goto would_block;
		v += sop->op;
		if (v < 0)
			goto would_block;
		if (v > vmx)
			goto out_of_range;
		if (sop->flg & SEM_UNDO) {
			int32_t undo = un->adj[sop->num] - sop->op;
			if (undo < -aem - 1 || undo > aem)
				goto out_of_range;
			un->adj[sop->num] = (int16_t)undo;
		}
		curr->val = v;
	}
	for (i = 0; i < nsops; i++)
		s->sems[sops[i].num].pid = pid;
	return 0;
out_of_range:
	result = -ERANGE;
	goto undo;
would_block:
	if (blocking)
		*blocking = i;
	result = (sops[i].flg & IPC_NOWAIT) ? -EAGAIN : 1;
undo:
	while (i-- > 0) {
		s->sems[sops[i].num].val -= sops[i].op;
		if (sops[i].flg & SEM_UNDO)
			un->adj[sops[i].num] = (int16_t)(un->adj[sops[i].num] + sops[i].op);
	}
	return result;
}

static bool sops_undo(const struct krg_ipc_sembuf *sops, uint32_t nsops)
{
	for (uint32_t i = 0; i < nsops; i++)
		if (sops[i].flg & SEM_UNDO)
			return true;
	return false;
}

/* A parked waiter tries again. */
static int waiter_perform(struct krg_ipc_engine *e, struct semset *s, struct waiter *w)
{
	struct undo *un = NULL;
	if (sops_undo(w->sops, w->nsops)) {
		un = undo_get(e, w->caller.proc_id, s);
		if (!un)
			return -ENOMEM;
	}
	return perform(e, s, w->sops, w->nsops, un, w->caller.pid, &w->blocking);
}

/* ---- the wake-up machinery (Linux update_queue and friends) -------------------------- */

static void unmerge_queues(struct semset *s);

static void unlink_queue(struct semset *s, struct waiter *w)
{
	klist_del(&w->qnode);
	if (w->nsops > 1)
		s->complex_count--;
}

static void finish(struct krg_ipc_engine *e, struct waiter *w, int err)
{
	struct krg_ipc_reply r = { .ret = err };
	waiter_complete(e, w, &r);
}

/* Wait-for-zero waiters on one semaphore's queue (semnum) or the global
 * one (-1). True if one completed. */
static bool wake_const_ops(struct krg_ipc_engine *e, struct semset *s, int semnum)
{
	struct klist *list = semnum == -1 ? &s->pending_const : &s->sems[semnum].pending_const;
	bool done = false;
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, list) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		int err = waiter_perform(e, s, w);
		if (err > 0)
			continue;
		unlink_queue(s, w);
		finish(e, w, err);
		if (err == 0)
			done = true;
	}
	return done;
}

/* After values changed (sops known, or all of them when sops is NULL):
 * every semaphore now 0 lets its wait-for-zero waiters try. */
static bool do_smart_wakeup_zero(struct krg_ipc_engine *e, struct semset *s,
		const struct krg_ipc_sembuf *sops, uint32_t nsops)
{
	bool done = false, got_zero = false;
	if (sops) {
		for (uint32_t i = 0; i < nsops; i++) {
			int num = sops[i].num;
			if (s->sems[num].val == 0) {
				got_zero = true;
				done |= wake_const_ops(e, s, num);
			}
		}
	} else {
		for (uint32_t i = 0; i < s->nsems; i++) {
			if (s->sems[i].val == 0) {
				got_zero = true;
				done |= wake_const_ops(e, s, (int)i);
			}
		}
	}
	if (got_zero)
		done |= wake_const_ops(e, s, -1);
	return done;
}

/* Linux check_restart(): whether an operation that just went through may
 * let an earlier-queued one go, so the scan must start over. */
static bool check_restart(const struct semset *s, const struct waiter *w)
{
	return !klist_empty(&s->pending_alter) || w->nsops > 1;
}

/* Altering waiters of one semaphore (semnum) or of the global queue (-1),
 * in queue order. True if one completed. */
static bool update_queue(struct krg_ipc_engine *e, struct semset *s, int semnum)
{
	struct klist *list = semnum == -1 ? &s->pending_alter : &s->sems[semnum].pending_alter;
	bool done = false;
	struct klist *pos, *tmp;
again:
	klist_for_each_safe(pos, tmp, list) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		/* Only decrements wait on a per-semaphore queue: none can go at 0. */
		if (semnum != -1 && s->sems[semnum].val == 0)
			break;
		int err = waiter_perform(e, s, w);
		if (err > 0)
			continue;
		unlink_queue(s, w);
		bool restart = false;
		if (err == 0) {
			done = true;
			/* Take w off the queues first: the zero-waiters it may
			 * release are answered before it, as Linux queues them. */
			do_smart_wakeup_zero(e, s, w->sops, w->nsops);
			restart = check_restart(s, w);
		}
		finish(e, w, err);
		if (restart)
			goto again;
	}
	return done;
}

static void set_otime(struct krg_ipc_engine *e, struct semset *s)
{
	s->otime = now_sec(e);
}

/* Linux do_smart_update(): retry what the change (sops, or NULL for "any
 * semaphore") may have released; otime is set if asked or if a waiter
 * completed. */
static void do_smart_update(struct krg_ipc_engine *e, struct semset *s, const struct krg_ipc_sembuf *sops,
		uint32_t nsops, bool otime)
{
	otime |= do_smart_wakeup_zero(e, s, sops, nsops);
	if (!klist_empty(&s->pending_alter)) {
		otime |= update_queue(e, s, -1);
	} else if (!sops) {
		for (uint32_t i = 0; i < s->nsems; i++)
			otime |= update_queue(e, s, (int)i);
	} else {
		for (uint32_t i = 0; i < nsops; i++)
			if (sops[i].op > 0)
				otime |= update_queue(e, s, sops[i].num);
	}
	if (otime)
		set_otime(e, s);
}

void sem_update_all(struct krg_ipc_engine *e, struct semset *s, bool otime)
{
	do_smart_update(e, s, NULL, 0, otime);
	unmerge_queues(s);
}

/* Linux merge_queues(): each semaphore's altering waiters go to the head
 * of the global queue, semaphore by semaphore. */
static void merge_queues(struct semset *s)
{
	for (uint32_t i = 0; i < s->nsems; i++)
		klist_splice_head(&s->sems[i].pending_alter, &s->pending_alter);
}

/* Linux unmerge_queues(), run whenever Linux drops the array-wide lock:
 * with no multi-sop waiter left, single-sop waiters return to their
 * semaphore's queue in global-queue order. */
static void unmerge_queues(struct semset *s)
{
	if (s->complex_count)
		return;
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &s->pending_alter) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		klist_del(&w->qnode);
		klist_add_tail(&s->sems[w->sops[0].num].pending_alter, &w->qnode);
	}
}

/* Linux count_semcnt(): waiters blocked on semnum, by the sop that blocked. */
static int count_semcnt(const struct semset *s, int semnum, bool count_zero)
{
	int n = 0;
	const struct klist *l = count_zero ? &s->sems[semnum].pending_const : &s->sems[semnum].pending_alter;
	for (const struct klist *p = l->next; p != l; p = p->next)
		n++;
	const struct klist *lists[2] = { &s->pending_alter, count_zero ? &s->pending_const : NULL };
	for (int k = 0; k < 2 && lists[k]; k++) {
		for (const struct klist *p = lists[k]->next; p != lists[k]; p = p->next) {
			const struct waiter *w = klist_entry(p, struct waiter, qnode);
			const struct krg_ipc_sembuf *sop = &w->sops[w->blocking];
			if (sop->num != semnum)
				continue;
			if ((count_zero && sop->op == 0) || (!count_zero && sop->op < 0))
				n++;
		}
	}
	return n;
}

/* ---- semget ---------------------------------------------------------------------------- */

static void newary(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	uint32_t nsems = (uint32_t)q->nsems;
	if (!nsems) {
		r->ret = -EINVAL;
		return;
	}
	if (e->sem_total + e->others_semtot + nsems > e->lim.semmns) {
		r->ret = -ENOSPC;
		return;
	}
	struct semset *s = calloc(1, sizeof *s + nsems * sizeof s->sems[0]);
	if (!s) {
		r->ret = -ENOMEM;
		return;
	}
	obj_init_perm(&s->o, KRG_IPC_SEM, &c->cred, q->key, q->flags, now_sec(e));
	s->o.creator = c->proc_id;
	s->nsems = nsems;
	klist_init(&s->pending_alter);
	klist_init(&s->pending_const);
	klist_init(&s->undos);
	for (uint32_t i = 0; i < nsems; i++) {
		klist_init(&s->sems[i].pending_alter);
		klist_init(&s->sems[i].pending_const);
	}
	int err = obj_add(e, &s->o, q->id, limit_left(e->lim.semmni, e->others_sem));
	if (err < 0) {
		free(s);
		r->ret = err;
		return;
	}
	e->sem_total += nsems;
	r->ret = s->o.id;
}

/* Linux sem_more_checks: an existing set has at least the semaphores asked. */
static int sem_more_checks(const struct ipc_obj *o, const struct krg_ipc_req *q)
{
	return (uint32_t)q->nsems > ((const struct semset *)o)->nsems ? -EINVAL : 0;
}

static void do_semget(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	if (q->nsems < 0 || (uint32_t)q->nsems > e->lim.semmsl) {
		r->ret = -EINVAL;
		return;
	}
	ipc_get(e, c, q, r, KRG_IPC_SEM, newary, sem_more_checks);
}

/* ---- semop ---------------------------------------------------------------------------- */

/* Parks a semop that must wait, in the queue Linux would put it in. */
static int semop_park(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct semset *s, bool alter, uint32_t blocking, uint64_t deadline, uint64_t token)
{
	struct waiter *w = waiter_new(c, W_SEMOP, KRG_IPC_SEM, s->o.id);
	if (!w)
		return -ENOMEM;
	w->sops = malloc(q->nsops * sizeof *w->sops);
	if (!w->sops) {
		waiter_free(w);
		return -ENOMEM;
	}
	memcpy(w->sops, q->sops, q->nsops * sizeof *w->sops);
	w->nsops = q->nsops;
	w->alter = alter;
	w->blocking = blocking;
	w->deadline = deadline;
	if (waiter_park(e, w, token) < 0) {
		waiter_free(w);
		return -ENOMEM;
	}
	if (q->nsops == 1) {
		struct sem *curr = &s->sems[q->sops[0].num];
		if (alter)
			klist_add_tail(s->complex_count ? &s->pending_alter : &curr->pending_alter, &w->qnode);
		else
			klist_add_tail(&curr->pending_const, &w->qnode);
	} else {
		if (!s->complex_count)
			merge_queues(s);
		klist_add_tail(alter ? &s->pending_alter : &s->pending_const, &w->qnode);
		s->complex_count++;
	}
	return 0;
}

/* Linux's checks, in its order: E2BIG, EINVAL (nsops, id, timeout), EFBIG,
 * EACCES; then the operation, which goes, fails, or waits. */
static void do_semop(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending)
{
	if (q->nsops > e->lim.semopm) {
		r->ret = -E2BIG;
		return;
	}
	if (q->nsops < 1) {
		r->ret = -EINVAL;
		return;
	}
	if (!q->sops) {
		r->ret = -EFAULT;
		return;
	}
	if (q->id < 0) {
		r->ret = -EINVAL;
		return;
	}
	uint64_t deadline = UINT64_MAX;
	if (q->has_timeout) {
		if (q->timeout_sec < 0 || q->timeout_nsec < 0 || q->timeout_nsec >= 1000000000) {
			r->ret = -EINVAL;
			return;
		}
		uint64_t ns = (uint64_t)q->timeout_nsec;
		if ((uint64_t)q->timeout_sec > (UINT64_MAX - ns - e->now) / 1000000000ull)
			deadline = UINT64_MAX - 1;   /* saturates, still a deadline */
		else
			deadline = e->now + (uint64_t)q->timeout_sec * 1000000000ull + ns;
	}
	uint32_t max = 0;
	bool alter = false, undos = false;
	for (uint32_t i = 0; i < q->nsops; i++) {
		if (q->sops[i].num > max)
			max = q->sops[i].num;
		if (q->sops[i].flg & SEM_UNDO)
			undos = true;
		if (q->sops[i].op != 0)
			alter = true;
	}
	struct semset *s = set_check(e, q->id);
	if (!s) {
		r->ret = -EINVAL;
		return;
	}
	if (max >= s->nsems) {
		r->ret = -EFBIG;
		return;
	}
	if (!ipcperms(&c->cred, &s->o.perm, alter ? S_WUGO : S_RUGO)) {
		r->ret = -EACCES;
		return;
	}
	struct undo *un = NULL;
	if (undos && !(un = undo_get(e, c->proc_id, s))) {
		r->ret = -ENOMEM;
		return;
	}
	uint32_t blocking = 0;
	int err = perform(e, s, q->sops, q->nsops, un, c->pid, &blocking);
	if (err == 0) {
		note_change(e, KRG_IPC_SEM, s->o.id);
		if (alter)
			do_smart_update(e, s, q->sops, q->nsops, true);
		else
			set_otime(e, s);
		unmerge_queues(s);
		r->ret = 0;
		return;
	}
	if (err < 0) {
		r->ret = err;
		return;
	}
	/* A zero timeout: Linux sleeps and times out at once. */
	if (deadline <= e->now) {
		r->ret = -EAGAIN;
		return;
	}
	err = semop_park(e, c, q, s, alter, blocking, deadline, token);
	if (err < 0) {
		r->ret = err;
		return;
	}
	*pending = 1;
}

/* ---- semctl ---------------------------------------------------------------------------- */

static void sem_fill_stat(const struct semset *s, struct krg_ipc_sem_stat *st)
{
	memset(st, 0, sizeof *st);
	perm_stat(&s->o, &st->perm);
	st->otime = s->otime;
	st->ctime = s->o.ctime;
	st->nsems = s->nsems;
}

/* SETVAL and SETALL forget every process's adjustment of the semaphores set. */
static void undo_reset(struct semset *s, int semnum)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &s->undos) {
		struct undo *u = klist_entry(pos, struct undo, setnode);
		if (semnum >= 0)
			u->adj[semnum] = 0;
		else
			memset(u->adj, 0, s->nsems * sizeof u->adj[0]);
	}
}

static void semctl_setval(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	if (q->val > (int32_t)e->lim.semvmx || q->val < 0) {
		r->ret = -ERANGE;
		return;
	}
	struct semset *s = set_check(e, q->id);
	if (!s) {
		r->ret = -EINVAL;
		return;
	}
	if (q->semnum < 0 || (uint32_t)q->semnum >= s->nsems) {
		r->ret = -EINVAL;
		return;
	}
	if (!ipcperms(&c->cred, &s->o.perm, S_WUGO)) {
		r->ret = -EACCES;
		return;
	}
	undo_reset(s, q->semnum);
	s->sems[q->semnum].val = q->val;
	s->sems[q->semnum].pid = c->pid;
	s->o.ctime = now_sec(e);
	note_change(e, KRG_IPC_SEM, s->o.id);
	do_smart_update(e, s, NULL, 0, false);
	unmerge_queues(s);
	r->ret = 0;
}

/* GETALL, SETALL and the per-semaphore GETs (Linux semctl_main). */
static void semctl_main(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	int cmd = q->cmd;
	struct semset *s = set_check(e, q->id);
	if (!s) {
		r->ret = -EINVAL;
		return;
	}
	if (!ipcperms(&c->cred, &s->o.perm, cmd == SETALL ? S_WUGO : S_RUGO)) {
		r->ret = -EACCES;
		return;
	}
	if (cmd == GETALL) {
		r->vals = malloc(s->nsems * sizeof *r->vals);
		if (!r->vals) {
			r->ret = -ENOMEM;
			return;
		}
		for (uint32_t i = 0; i < s->nsems; i++)
			r->vals[i] = (uint16_t)s->sems[i].val;
		r->nvals = s->nsems;
		r->ret = 0;
		return;
	}
	if (cmd == SETALL) {
		if (!q->vals || q->nvals < s->nsems) {
			r->ret = -EFAULT;
			return;
		}
		for (uint32_t i = 0; i < s->nsems; i++) {
			if (q->vals[i] > e->lim.semvmx) {
				r->ret = -ERANGE;
				return;
			}
		}
		for (uint32_t i = 0; i < s->nsems; i++) {
			s->sems[i].val = q->vals[i];
			s->sems[i].pid = c->pid;
		}
		undo_reset(s, -1);
		s->o.ctime = now_sec(e);
		note_change(e, KRG_IPC_SEM, s->o.id);
		do_smart_update(e, s, NULL, 0, false);
		unmerge_queues(s);
		r->ret = 0;
		return;
	}
	if (q->semnum < 0 || (uint32_t)q->semnum >= s->nsems) {
		r->ret = -EINVAL;
		return;
	}
	const struct sem *curr = &s->sems[q->semnum];
	switch (cmd) {
	case GETVAL:
		r->ret = curr->val;
		break;
	case GETPID:
		r->ret = curr->pid;
		break;
	case GETNCNT:
		r->ret = count_semcnt(s, q->semnum, false);
		break;
	case GETZCNT:
		r->ret = count_semcnt(s, q->semnum, true);
		break;
	}
}

static void sem_rmid(struct krg_ipc_engine *e, struct ipc_obj *o)
{
	semset_destroy(e, (struct semset *)o, -EIDRM);
}

static void do_semctl(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	int cmd = q->cmd;
	struct semset *s;
	if (q->id < 0) {
		r->ret = -EINVAL;
		return;
	}
	switch (cmd) {
	case IPC_INFO:
	case SEM_INFO: {
		struct krg_ipc_usage u;
		krg_ipc_engine_usage(e, &u);
		r->ret = krg_ipc_seminfo_fill(&e->lim, &u, cmd, &r->seminfo);
		r->out = KRG_IPC_OUT_SEMINFO;
		return;
	}
	case IPC_STAT:
	case SEM_STAT:
	case SEM_STAT_ANY:
		s = (struct semset *)ctl_stat_obj(e, c, KRG_IPC_SEM, q, cmd == SEM_STAT_ANY, r);
		if (s) {
			sem_fill_stat(s, &r->sem);
			r->out = KRG_IPC_OUT_SEM_STAT;
		}
		return;
	case GETALL:
	case GETVAL:
	case GETPID:
	case GETNCNT:
	case GETZCNT:
	case SETALL:
		semctl_main(e, c, q, r);
		return;
	case SETVAL:
		semctl_setval(e, c, q, r);
		return;
	case IPC_SET:
	case IPC_RMID:
		if ((s = (struct semset *)ctl_rmid_or_set(e, c, KRG_IPC_SEM, q, r, sem_rmid)))
			ctl_set_perm(e, &s->o, &q->set, r);
		return;
	default:
		r->ret = -EINVAL;
	}
}

/* ---- destroy, cancel, timeout, undeliverable ---------------------------------------------- */

static void fail_all(struct krg_ipc_engine *e, struct semset *s, struct klist *list, int err)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, list) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		unlink_queue(s, w);
		finish(e, w, err);
	}
}

/* Linux freeary(): undo records go, waiters fail with err (EIDRM) in
 * Linux's order. */
void semset_destroy(struct krg_ipc_engine *e, struct semset *s, int err)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &s->undos)
		undo_free(e, klist_entry(pos, struct undo, setnode));
	fail_all(e, s, &s->pending_const, err);
	fail_all(e, s, &s->pending_alter, err);
	for (uint32_t i = 0; i < s->nsems; i++) {
		fail_all(e, s, &s->sems[i].pending_const, err);
		fail_all(e, s, &s->sems[i].pending_alter, err);
	}
	obj_remove(e, &s->o);
	e->sem_total -= s->nsems;
	free(s);
}

void sem_waiter_cancel(struct krg_ipc_engine *e, struct waiter *w)
{
	struct semset *s = set_check(e, w->id);
	if (w->nsops > 1 && s)
		s->complex_count--;
	waiter_unpark(e, w);
	waiter_free(w);
	if (s)
		unmerge_queues(s);
}

void sem_waiter_timeout(struct krg_ipc_engine *e, struct waiter *w)
{
	struct semset *s = set_check(e, w->id);
	if (w->nsops > 1 && s)
		s->complex_count--;
	struct krg_ipc_reply r = { .ret = -EAGAIN };
	waiter_complete(e, w, &r);
	if (s)
		unmerge_queues(s);
}

/* Takes back the semops of a call whose success could not be told:
 * values and SEM_UNDO adjustments return (values kept within [0, semvmx]
 * in case others moved them meanwhile), then waiters that this frees go. */
int sem_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q)
{
	struct semset *s = set_check(e, q->id);
	if (!s || !q->sops || q->nsops < 1)
		return -EINVAL;
	for (uint32_t i = 0; i < q->nsops; i++)
		if (q->sops[i].num >= s->nsems)
			return -EINVAL;
	bool alter = false;
	struct undo *un = NULL;
	if (sops_undo(q->sops, q->nsops))
		un = undo_find(e, c->proc_id, s->o.id);
	for (uint32_t i = q->nsops; i-- > 0;) {
		const struct krg_ipc_sembuf *sop = &q->sops[i];
		if (!sop->op)
			continue;
		alter = true;
		int32_t v = s->sems[sop->num].val - sop->op;
		if (v < 0)
			v = 0;
		if (v > (int32_t)e->lim.semvmx)
			v = (int32_t)e->lim.semvmx;
		s->sems[sop->num].val = v;
		if ((sop->flg & SEM_UNDO) && un) {
			int32_t a = un->adj[sop->num] + sop->op;
			int32_t aem = (int32_t)e->lim.semaem;
			un->adj[sop->num] = (int16_t)(a < -aem - 1 ? -aem - 1 : a > aem ? aem : a);
		}
	}
	if (!alter)
		return -EINVAL;
	note_change(e, KRG_IPC_SEM, s->o.id);
	do_smart_update(e, s, NULL, 0, false);
	unmerge_queues(s);
	return 0;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

void sem_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending)
{
	switch (q->op) {
	case KRG_IPC_OP_SEMGET:
		do_semget(e, c, q, r);
		break;
	case KRG_IPC_OP_SEMOP:
		do_semop(e, c, q, token, r, pending);
		break;
	case KRG_IPC_OP_SEMCTL:
		do_semctl(e, c, q, r);
		break;
	}
}
