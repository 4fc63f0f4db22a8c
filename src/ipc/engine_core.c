/* engine_core.c — the engine's common parts: id spaces (Linux's idx + seq
 * ids and its cyclic allocator), key lookup, permission checks (ipcperms),
 * parked waiters by token with their deadline heap, change notes, and the
 * public entry points that dispatch to engine_msg.c and engine_sem.c.
 *
 * Map: engine life | ids and keys | permissions | waiters and deadlines |
 * entry points | lookup and accounting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include "ipc/engine_int.h"

/* ---- engine life ---------------------------------------------------------- */

struct krg_ipc_engine *krg_ipc_engine_new(const struct krg_ipc_limits *limits,
		krg_ipc_complete_cb cb, void *data)
{
	struct krg_ipc_engine *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->lim = *limits;
	e->cb = cb;
	e->cb_data = data;
	struct idspace *sp[] = { &e->msq_ids, &e->sem_ids, &e->shm_ids };
	for (size_t i = 0; i < 3; i++) {
		sp[i]->slot = calloc(KRG_IPC_MNI, sizeof *sp[i]->slot);
		if (!sp[i]->slot) {
			krg_ipc_engine_free(e);
			return NULL;
		}
		sp[i]->max_idx = -1;
		sp[i]->last_idx = -1;
	}
	return e;
}

void krg_ipc_engine_free(struct krg_ipc_engine *e)
{
	if (!e)
		return;
	/* Waiters go silently (the header says so): no callback. */
	e->cb = NULL;
	e->change_cb = NULL;
	for (int32_t i = 0; e->msq_ids.slot && i < KRG_IPC_MNI; i++)
		if (e->msq_ids.slot[i])
			msq_destroy(e, (struct msq *)e->msq_ids.slot[i], -EIDRM);
	for (int32_t i = 0; e->sem_ids.slot && i < KRG_IPC_MNI; i++)
		if (e->sem_ids.slot[i])
			semset_destroy(e, (struct semset *)e->sem_ids.slot[i], -EIDRM);
	for (int32_t i = 0; e->shm_ids.slot && i < KRG_IPC_MNI; i++)
		if (e->shm_ids.slot[i])
			shmseg_destroy(e, (struct shmseg *)e->shm_ids.slot[i]);
	free(e->msq_ids.slot);
	free(e->sem_ids.slot);
	free(e->shm_ids.slot);
	khash_free(&e->keys);
	khash_free(&e->tokens);
	khash_free(&e->pwaiters);
	khash_free(&e->undos);
	khash_free(&e->procs);
	free(e->heap);
	free(e->changes);
	free(e);
}

void krg_ipc_engine_set_limits(struct krg_ipc_engine *e, const struct krg_ipc_limits *limits)
{
	e->lim = *limits;
}

void krg_ipc_engine_get_limits(const struct krg_ipc_engine *e, struct krg_ipc_limits *limits)
{
	*limits = e->lim;
}

void krg_ipc_engine_set_change_cb(struct krg_ipc_engine *e, krg_ipc_change_cb cb, void *data)
{
	e->change_cb = cb;
	e->change_data = data;
}

/* ---- ids and keys ---------------------------------------------------------- */

struct idspace *ids_of(struct krg_ipc_engine *e, uint32_t kind)
{
	return kind == KRG_IPC_MSG ? &e->msq_ids : kind == KRG_IPC_SEM ? &e->sem_ids
		: kind == KRG_IPC_SHM ? &e->shm_ids : NULL;
}

struct ipc_obj *obj_by_idx(struct krg_ipc_engine *e, uint32_t kind, int32_t idx)
{
	struct idspace *sp = ids_of(e, kind);
	if (!sp || idx < 0)
		return NULL;
	return sp->slot[idx % KRG_IPC_MNI];
}

/* Linux ipc_obtain_object_check: the idx must hold an object whose seq
 * matches the id's, else EINVAL. */
struct ipc_obj *obj_check(struct krg_ipc_engine *e, uint32_t kind, int32_t id)
{
	if (id < 0)
		return NULL;
	struct ipc_obj *o = obj_by_idx(e, kind, krg_ipc_id_idx(id));
	return o && o->id == id ? o : NULL;
}

struct ipc_obj *obj_by_key(struct krg_ipc_engine *e, uint32_t kind, int32_t key)
{
	struct khnode *n = khash_first(&e->keys, key_hkey(kind, key));
	return n ? klist_entry(n, struct ipc_obj, keynode) : NULL;
}

/* The idx Linux's ipc_idr_alloc would pick: cyclic from the last one, in
 * [0, max(in_use * 3 / 2, 64)), so ids are not reused at once. */
static int32_t alloc_idx(struct idspace *sp)
{
	int64_t end = (int64_t)sp->in_use * 3 / 2;
	if (end < 64)
		end = 64;
	if (end > KRG_IPC_MNI)
		end = KRG_IPC_MNI;
	int32_t start = sp->next_idx < end ? sp->next_idx : 0;
	for (int32_t i = start; i < end; i++)
		if (!sp->slot[i])
			return i;
	for (int32_t i = 0; i < start; i++)
		if (!sp->slot[i])
			return i;
	return -ENOSPC;
}

int obj_add(struct krg_ipc_engine *e, struct ipc_obj *o, int32_t want_id, uint32_t limit)
{
	struct idspace *sp = ids_of(e, o->kind);
	if (limit > KRG_IPC_MNI)
		limit = KRG_IPC_MNI;
	if (sp->in_use >= limit)
		return -ENOSPC;
	int32_t idx, seq;
	if (want_id >= 0) {
		idx = krg_ipc_id_idx(want_id);
		seq = krg_ipc_id_seq(want_id);
		if (sp->slot[idx])
			return -EBUSY;
	} else {
		idx = alloc_idx(sp);
		if (idx < 0)
			return idx;
		if (idx <= sp->last_idx && ++sp->seq >= KRG_IPC_SEQ_MAX)
			sp->seq = 0;
		sp->last_idx = idx;
		sp->next_idx = idx + 1;
		seq = sp->seq;
	}
	if (o->perm.key != IPC_PRIVATE) {
		o->keynode.key = key_hkey(o->kind, o->perm.key);
		if (khash_insert(&e->keys, &o->keynode) < 0)
			return -ENOMEM;
	}
	sp->slot[idx] = o;
	sp->in_use++;
	if (idx > sp->max_idx)
		sp->max_idx = idx;
	o->id = krg_ipc_id_make(idx, seq);
	o->perm.seq = (uint32_t)seq;
	note_change(e, o->kind, o->id);
	return 0;
}

void obj_remove(struct krg_ipc_engine *e, struct ipc_obj *o)
{
	struct idspace *sp = ids_of(e, o->kind);
	int32_t idx = krg_ipc_id_idx(o->id);
	if (o->perm.key != IPC_PRIVATE)
		khash_remove(&e->keys, &o->keynode);
	sp->slot[idx] = NULL;
	sp->in_use--;
	if (idx == sp->max_idx)
		while (sp->max_idx >= 0 && !sp->slot[sp->max_idx])
			sp->max_idx--;
	note_change(e, o->kind, o->id);
}

void obj_init_perm(struct ipc_obj *o, uint32_t kind, const struct krg_ipc_cred *c, int32_t key, int flg, int64_t now)
{
	o->kind = kind;
	o->perm.key = key;
	o->perm.uid = o->perm.cuid = c->euid;
	o->perm.gid = o->perm.cgid = c->egid;
	o->perm.mode = (uint32_t)flg & (S_IRWXU | S_IRWXG | S_IRWXO);
	o->ctime = now;
}

void perm_stat(const struct ipc_obj *o, struct krg_ipc_perm *out)
{
	*out = o->perm;
}

/* ---- permissions ------------------------------------------------------------ */

static bool in_group(const struct krg_ipc_cred *c, uint32_t gid)
{
	if (gid == c->fsgid)
		return true;
	for (uint32_t i = 0; c->groups && i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

/* Linux ipcperms(): flag's rwx bits in any of the three classes are asked
 * for; owner or creator is judged by the owner bits, then the group class
 * (owner or creator group, fsgid or supplementary), then others. */
bool ipcperms(const struct krg_ipc_cred *c, const struct krg_ipc_perm *p, int flag)
{
	int requested = (flag >> 6) | (flag >> 3) | flag;
	int granted = (int)p->mode;
	if (c->euid == p->cuid || c->euid == p->uid)
		granted >>= 6;
	else if (in_group(c, p->cgid) || in_group(c, p->gid))
		granted >>= 3;
	if ((requested & ~granted & 0007) && !(c->caps & KRG_IPC_CAP_IPC_OWNER))
		return false;
	return true;
}

/* IPC_SET/IPC_RMID (Linux ipcctl_obtain_check): owner, creator or cap. */
bool is_owner_or(const struct krg_ipc_cred *c, const struct krg_ipc_perm *p, uint32_t cap)
{
	return c->euid == p->cuid || c->euid == p->uid || (c->caps & cap);
}

/* Linux ipc_update_perm: uid/gid must be valid ids ((uid_t)-1 is not). */
int perm_update(struct krg_ipc_perm *p, const struct krg_ipc_setbuf *s)
{
	if (s->uid == UINT32_MAX || s->gid == UINT32_MAX)
		return -EINVAL;
	p->uid = s->uid;
	p->gid = s->gid;
	p->mode = (p->mode & ~0777u) | (s->mode & 0777u);
	return 0;
}

/* Linux ipcget, for msgget, semget and shmget: IPC_PRIVATE, or a key not
 * in use under IPC_CREAT, makes a new object (make); an existing one is
 * EEXIST under IPC_CREAT|IPC_EXCL, then the kind's own checks (more: 0 or
 * -errno; NULL: none), then the mode the flags ask; its id. */
void ipc_get(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r, uint32_t kind, ipc_make_fn make,
		int (*more)(const struct ipc_obj *o, const struct krg_ipc_req *q))
{
	if (q->key == IPC_PRIVATE) {
		make(e, c, q, r);
		return;
	}
	struct ipc_obj *o = obj_by_key(e, kind, q->key);
	int err;
	if (!o) {
		if (!(q->flags & IPC_CREAT))
			r->ret = -ENOENT;
		else
			make(e, c, q, r);
	} else if ((q->flags & IPC_CREAT) && (q->flags & IPC_EXCL)) {
		r->ret = -EEXIST;
	} else if (more && (err = more(o, q)) < 0) {
		r->ret = err;
	} else if (!ipcperms(&c->cred, &o->perm, q->flags)) {
		r->ret = -EACCES;
	} else {
		r->ret = o->id;
	}
}

/* The object of a *ctl STAT command (Linux's msgctl_stat, semctl_stat,
 * shmctl_stat): IPC_STAT names it by id, the other STATs by index (as ipcs
 * walks); read permission unless any (the *_STAT_ANY commands). NULL with
 * r->ret set when refused; else r->ret is what the call returns. */
struct ipc_obj *ctl_stat_obj(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		const struct krg_ipc_req *q, bool any, struct krg_ipc_reply *r)
{
	struct ipc_obj *o = q->cmd == IPC_STAT ? obj_check(e, kind, q->id) : obj_by_idx(e, kind, krg_ipc_id_idx(q->id));
	if (!o) {
		r->ret = -EINVAL;
		return NULL;
	}
	if (!any && !ipcperms(&c->cred, &o->perm, S_IRUSR | S_IRGRP | S_IROTH)) {
		r->ret = -EACCES;
		return NULL;
	}
	r->ret = q->cmd == IPC_STAT ? 0 : o->id;
	return o;
}

/* The object of IPC_SET or IPC_RMID (Linux ipcctl_obtain_check): its
 * owner, its creator or CAP_SYS_ADMIN. NULL with r->ret set when refused. */
struct ipc_obj *ctl_owned_obj(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		int32_t id, struct krg_ipc_reply *r)
{
	struct ipc_obj *o = obj_check(e, kind, id);
	if (!o) {
		r->ret = -EINVAL;
		return NULL;
	}
	if (!is_owner_or(&c->cred, &o->perm, KRG_IPC_CAP_SYS_ADMIN)) {
		r->ret = -EPERM;
		return NULL;
	}
	return o;
}

/* IPC_RMID or IPC_SET, once ctl_owned_obj allows it: IPC_RMID destroys
 * the object (rmid) and answers 0; IPC_SET returns it for the kind to set
 * what it sets. NULL when the call is answered. */
struct ipc_obj *ctl_rmid_or_set(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, uint32_t kind,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r,
		void (*rmid)(struct krg_ipc_engine *e, struct ipc_obj *o))
{
	struct ipc_obj *o = ctl_owned_obj(e, c, kind, q->id, r);
	if (o && q->cmd == IPC_RMID) {
		rmid(e, o);
		r->ret = 0;
		return NULL;
	}
	return o;
}

/* IPC_SET's common part: the new owner and mode, ctime, a change note. */
void ctl_set_perm(struct krg_ipc_engine *e, struct ipc_obj *o, const struct krg_ipc_setbuf *set,
		struct krg_ipc_reply *r)
{
	r->ret = perm_update(&o->perm, set);
	if (r->ret == 0) {
		o->ctime = now_sec(e);
		note_change(e, o->kind, o->id);
	}
}

/* ---- change notes ------------------------------------------------------------ */

void note_change(struct krg_ipc_engine *e, uint32_t kind, int32_t id)
{
	if (!e->change_cb)
		return;
	if (e->nchanges && e->changes[e->nchanges - 1].kind == kind && e->changes[e->nchanges - 1].id == id)
		return;
	if (e->nchanges == e->changes_cap) {
		size_t cap = e->changes_cap ? e->changes_cap * 2 : 16;
		struct change *c = realloc(e->changes, cap * sizeof *c);
		if (!c) {
			/* Tell at once rather than lose the note. */
			e->change_cb(e->change_data, kind, id);
			return;
		}
		e->changes = c;
		e->changes_cap = cap;
	}
	e->changes[e->nchanges++] = (struct change){ kind, id };
}

void engine_flush_changes(struct krg_ipc_engine *e)
{
	for (size_t i = 0; i < e->nchanges; i++)
		if (e->change_cb)
			e->change_cb(e->change_data, e->changes[i].kind, e->changes[i].id);
	e->nchanges = 0;
}

/* ---- waiters and deadlines ------------------------------------------------------ */

struct waiter *waiter_new(const struct krg_ipc_caller *c, uint32_t role, uint32_t kind, int32_t id)
{
	struct waiter *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->role = role;
	w->kind = kind;
	w->id = id;
	w->caller = *c;
	w->caller.cred.groups = NULL;
	if (!c->cred.groups)
		w->caller.cred.ngroups = 0;
	else if (c->cred.ngroups) {
		uint32_t *g = malloc(c->cred.ngroups * sizeof *g);
		if (!g) {
			free(w);
			return NULL;
		}
		memcpy(g, c->cred.groups, c->cred.ngroups * sizeof *g);
		w->caller.cred.groups = g;
	}
	w->deadline = UINT64_MAX;
	klist_init(&w->qnode);
	return w;
}

void waiter_free(struct waiter *w)
{
	if (!w)
		return;
	free((void *)w->caller.cred.groups);
	free(w->msg);
	free(w->sops);
	free(w);
}

static void heap_swap(struct krg_ipc_engine *e, size_t a, size_t b)
{
	struct waiter *t = e->heap[a];
	e->heap[a] = e->heap[b];
	e->heap[b] = t;
	e->heap[a]->heap_idx = a;
	e->heap[b]->heap_idx = b;
}

/* Ties broken by token so the order of timeouts is deterministic. */
static bool heap_less(const struct waiter *a, const struct waiter *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->toknode.key < b->toknode.key);
}

static void heap_up(struct krg_ipc_engine *e, size_t i)
{
	while (i > 0 && heap_less(e->heap[i], e->heap[(i - 1) / 2])) {
		heap_swap(e, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct krg_ipc_engine *e, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < e->nheap && heap_less(e->heap[l], e->heap[m]))
			m = l;
		if (r < e->nheap && heap_less(e->heap[r], e->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(e, i, m);
		i = m;
	}
}

int heap_push(struct krg_ipc_engine *e, struct waiter *w)
{
	if (e->nheap == e->heap_cap) {
		size_t cap = e->heap_cap ? e->heap_cap * 2 : 16;
		struct waiter **h = realloc(e->heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		e->heap = h;
		e->heap_cap = cap;
	}
	w->heap_idx = e->nheap;
	e->heap[e->nheap++] = w;
	heap_up(e, w->heap_idx);
	return 0;
}

static void heap_remove(struct krg_ipc_engine *e, struct waiter *w)
{
	size_t i = w->heap_idx;
	e->nheap--;
	if (i != e->nheap) {
		e->heap[i] = e->heap[e->nheap];
		e->heap[i]->heap_idx = i;
		heap_up(e, i);
		heap_down(e, e->heap[i]->heap_idx);
	}
}

/* Registers w under token (the caller then links w->qnode into its queue). */
int waiter_park(struct krg_ipc_engine *e, struct waiter *w, uint64_t token)
{
	w->toknode.key = token;
	w->procnode.key = w->caller.proc_id;
	if (w->deadline != UINT64_MAX && heap_push(e, w) < 0)
		return -ENOMEM;
	if (khash_insert(&e->tokens, &w->toknode) < 0) {
		if (w->deadline != UINT64_MAX)
			heap_remove(e, w);
		return -ENOMEM;
	}
	if (khash_insert(&e->pwaiters, &w->procnode) < 0) {
		khash_remove(&e->tokens, &w->toknode);
		if (w->deadline != UINT64_MAX)
			heap_remove(e, w);
		return -ENOMEM;
	}
	return 0;
}

void waiter_unpark(struct krg_ipc_engine *e, struct waiter *w)
{
	khash_remove(&e->tokens, &w->toknode);
	khash_remove(&e->pwaiters, &w->procnode);
	if (w->deadline != UINT64_MAX)
		heap_remove(e, w);
	klist_del(&w->qnode);
}

/* Finishes a parked call: its reply (ownership passes) goes to the callback. */
void waiter_complete(struct krg_ipc_engine *e, struct waiter *w, struct krg_ipc_reply *r)
{
	waiter_unpark(e, w);
	if (e->cb)
		e->cb(e->cb_data, w->toknode.key, r);
	else
		krg_ipc_reply_release(r);
	waiter_free(w);
}

static struct waiter *waiter_by_token(const struct krg_ipc_engine *e, uint64_t token)
{
	struct khnode *n = khash_first(&e->tokens, token);
	return n ? klist_entry(n, struct waiter, toknode) : NULL;
}

/* Removes a parked call without an answer. */
static void waiter_cancel(struct krg_ipc_engine *e, struct waiter *w)
{
	if (w->kind == KRG_IPC_MSG)
		msg_waiter_cancel(e, w);
	else
		sem_waiter_cancel(e, w);
}

/* ---- entry points ------------------------------------------------------------------ */

int krg_ipc_engine_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *caller,
		const struct krg_ipc_req *req, uint64_t token, uint64_t now,
		struct krg_ipc_reply *reply)
{
	memset(reply, 0, sizeof *reply);
	if (waiter_by_token(e, token))
		return -EBUSY;
	e->now = now;
	int pending = 0;
	switch (req->op) {
	case KRG_IPC_OP_MSGGET:
	case KRG_IPC_OP_MSGSND:
	case KRG_IPC_OP_MSGRCV:
	case KRG_IPC_OP_MSGCTL:
		msg_call(e, caller, req, token, reply, &pending);
		break;
	case KRG_IPC_OP_SEMGET:
	case KRG_IPC_OP_SEMOP:
	case KRG_IPC_OP_SEMCTL:
		sem_call(e, caller, req, token, reply, &pending);
		break;
	case KRG_IPC_OP_SHMGET:
	case KRG_IPC_OP_SHMCTL:
	case KRG_IPC_OP_SHMAT:
	case KRG_IPC_OP_SHMDT:
		shm_call(e, caller, req, reply); /* nothing in shm waits */
		break;
	default:
		reply->ret = -ENOSYS;
		break;
	}
	engine_flush_changes(e);
	return pending ? KRG_IPC_PENDING : KRG_IPC_DONE;
}

int krg_ipc_engine_cancel(struct krg_ipc_engine *e, uint64_t token)
{
	struct waiter *w = waiter_by_token(e, token);
	if (!w)
		return -EALREADY;
	waiter_cancel(e, w);
	engine_flush_changes(e);
	return 0;
}

int krg_ipc_engine_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_caller *caller,
		const struct krg_ipc_req *req, const struct krg_ipc_reply *reply, uint64_t now)
{
	e->now = now;
	int r = -EINVAL;
	if (reply->ret < 0)
		r = -EINVAL;   /* a failed call changed nothing */
	else if (req->op == KRG_IPC_OP_MSGRCV || req->op == KRG_IPC_OP_MSGSND)
		r = msg_undeliverable(e, req, reply);
	else if (req->op == KRG_IPC_OP_SEMOP)
		r = sem_undeliverable(e, caller, req);
	engine_flush_changes(e);
	return r;
}

uint64_t krg_ipc_engine_next_deadline(const struct krg_ipc_engine *e)
{
	return e->nheap ? e->heap[0]->deadline : UINT64_MAX;
}

void krg_ipc_engine_tick(struct krg_ipc_engine *e, uint64_t now)
{
	e->now = now;
	while (e->nheap && e->heap[0]->deadline <= now)
		sem_waiter_timeout(e, e->heap[0]);
	engine_flush_changes(e);
}

void krg_ipc_engine_process_exit(struct krg_ipc_engine *e, uint64_t proc_id, int32_t pid, uint64_t now)
{
	e->now = now;
	struct khnode *n;
	while ((n = khash_first(&e->pwaiters, proc_id)))
		waiter_cancel(e, klist_entry(n, struct waiter, procnode));
	undo_process_exit(e, proc_id, pid);
	engine_flush_changes(e);
}

int krg_ipc_engine_drop(struct krg_ipc_engine *e, uint32_t kind, int32_t id, int err)
{
	struct ipc_obj *o = obj_check(e, kind, id);
	if (!o)
		return -EINVAL;
	if (kind == KRG_IPC_MSG)
		msq_destroy(e, (struct msq *)o, err);
	else if (kind == KRG_IPC_SEM)
		semset_destroy(e, (struct semset *)o, err);
	else
		shmseg_destroy(e, (struct shmseg *)o);
	engine_flush_changes(e);
	return 0;
}

/* ---- lookup and accounting ------------------------------------------------------------ */

int32_t krg_ipc_engine_find_key(const struct krg_ipc_engine *e, uint32_t kind, int32_t key)
{
	if (key == IPC_PRIVATE)
		return -ENOENT;
	struct ipc_obj *o = obj_by_key((struct krg_ipc_engine *)e, kind, key);
	return o ? o->id : -ENOENT;
}

int32_t krg_ipc_engine_next(const struct krg_ipc_engine *e, uint32_t kind, int32_t from_idx)
{
	const struct idspace *sp = ids_of((struct krg_ipc_engine *)e, kind);
	if (!sp)
		return -ENOENT;
	for (int32_t i = from_idx < 0 ? 0 : from_idx; i <= sp->max_idx; i++)
		if (sp->slot[i])
			return sp->slot[i]->id;
	return -ENOENT;
}

void krg_ipc_engine_set_others(struct krg_ipc_engine *e, uint32_t msq_count, uint32_t sem_count,
			       uint64_t sem_total)
{
	e->others_msq = msq_count;
	e->others_sem = sem_count;
	e->others_semtot = sem_total;
}

/* A limit on this engine's own count once the other nodes' are taken. */
uint32_t limit_left(uint32_t limit, uint32_t others)
{
	return others >= limit ? 0 : limit - others;
}

void krg_ipc_engine_usage(const struct krg_ipc_engine *e, struct krg_ipc_usage *u)
{
	memset(u, 0, sizeof *u);
	u->msq_count = e->msq_ids.in_use;
	u->msg_count = e->msg_count;
	u->msg_bytes = e->msg_bytes;
	u->msq_max_idx = e->msq_ids.in_use == KRG_IPC_MNI ? KRG_IPC_MNI - 1 : e->msq_ids.max_idx;
	u->sem_count = e->sem_ids.in_use;
	u->sem_total = e->sem_total;
	u->sem_max_idx = e->sem_ids.in_use == KRG_IPC_MNI ? KRG_IPC_MNI - 1 : e->sem_ids.max_idx;
	u->shm_count = e->shm_ids.in_use;
	u->shm_tot = e->shm_tot;
	u->shm_max_idx = e->shm_ids.in_use == KRG_IPC_MNI ? KRG_IPC_MNI - 1 : e->shm_ids.max_idx;
}
