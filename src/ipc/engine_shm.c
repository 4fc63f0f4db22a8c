/* engine_shm.c — System V shared memory segments homed on one node, with
 * Linux's semantics (man 2 shmget shmctl shmat, the kernel's ipc/shm.c):
 * the segment's identity, permissions, size, times and attachment count.
 * Its pages are not here: each node backs them with a local object kept
 * coherent by the DSM (docs/dsm.md), and the node's kernel does the
 * mapping. SHMAT/SHMDT are how nodes count attachments here, so
 * shm_nattch is the cluster's and IPC_RMID destroys at the last detach
 * anywhere. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include "ipc/engine_int.h"

#define L_SHMMIN 1
#define SHM_PAGE 4096u
#define S_IRUGO (S_IRUSR | S_IRGRP | S_IROTH)
#define S_IWUGO (S_IWUSR | S_IWGRP | S_IWOTH)
#define S_IXUGO (S_IXUSR | S_IXGRP | S_IXOTH)

static struct shmseg *shm_check(struct krg_ipc_engine *e, int32_t id)
{
	return (struct shmseg *)obj_check(e, KRG_IPC_SHM, id);
}

static void newseg(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r)
{
	uint64_t size = q->size;
	if (size < L_SHMMIN || size > e->lim.shmmax) {
		r->ret = -EINVAL;
		return;
	}
	uint64_t pages = size / SHM_PAGE + (size % SHM_PAGE != 0);
	if (pages < size / SHM_PAGE || e->shm_tot + pages < e->shm_tot ||
			e->shm_tot + pages > e->lim.shmall) {
		r->ret = -ENOSPC;
		return;
	}
	struct shmseg *s = calloc(1, sizeof *s);
	if (!s) {
		r->ret = -ENOMEM;
		return;
	}
	obj_init_perm(&s->o, KRG_IPC_SHM, &c->cred, q->key, q->flags, now_sec(e));
	s->o.creator = c->proc_id;
	s->segsz = size;
	s->cpid = c->pid;
	int err = obj_add(e, &s->o, q->id, e->lim.shmmni);
	if (err < 0) {
		free(s);
		r->ret = err;
		return;
	}
	e->shm_tot += pages;
	r->ret = s->o.id;
}

/* Linux shm_more_checks: an existing segment is at least the size asked. */
static int shm_more_checks(const struct ipc_obj *o, const struct krg_ipc_req *q)
{
	return ((const struct shmseg *)o)->segsz < q->size ? -EINVAL : 0;
}

static void do_shmget(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r)
{
	/* Linux ipcget_public: EEXIST, then shm_more_checks, then the mode. */
	ipc_get(e, c, q, r, KRG_IPC_SHM, newseg, shm_more_checks);
}

void shmseg_destroy(struct krg_ipc_engine *e, struct shmseg *s)
{
	e->shm_tot -= s->segsz / SHM_PAGE + (s->segsz % SHM_PAGE != 0);
	obj_remove(e, &s->o);
	free(s);
}

static void fill_stat(const struct shmseg *s, struct krg_ipc_shm_stat *st)
{
	perm_stat(&s->o, &st->perm);
	st->perm.mode |= s->flags;
	st->segsz = s->segsz;
	st->atime = s->atime;
	st->dtime = s->dtime;
	st->ctime = s->o.ctime;
	st->cpid = s->cpid;
	st->lpid = s->lpid;
	st->nattch = s->nattch;
}

/* Linux do_shm_rmid: at once if nobody is attached, else marked SHM_DEST
 * and its key made private (a later shmget of the key makes a new one). */
static void shm_rmid(struct krg_ipc_engine *e, struct ipc_obj *o)
{
	struct shmseg *s = (struct shmseg *)o;
	if (!s->nattch) {
		shmseg_destroy(e, s);
		return;
	}
	s->flags |= SHM_DEST;
	if (s->o.perm.key != IPC_PRIVATE) {
		khash_remove(&e->keys, &s->o.keynode);
		s->o.perm.key = IPC_PRIVATE;
	}
	note_change(e, KRG_IPC_SHM, s->o.id);
}

static void shmctl_lock(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		struct shmseg *s, int cmd, struct krg_ipc_reply *r)
{
	/* Linux: CAP_IPC_LOCK, or the owner or creator (RLIMIT_MEMLOCK is the
	 * caller's node's business). */
	if (!(c->cred.caps & KRG_IPC_CAP_IPC_LOCK) && c->cred.euid != s->o.perm.uid &&
			c->cred.euid != s->o.perm.cuid) {
		r->ret = -EPERM;
		return;
	}
	if (cmd == SHM_LOCK)
		s->flags |= SHM_LOCKED;
	else
		s->flags &= ~(uint32_t)SHM_LOCKED;
	note_change(e, KRG_IPC_SHM, s->o.id);
	r->ret = 0;
}

static void do_shmctl(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r)
{
	int cmd = q->cmd;
	if (q->id < 0 || cmd < 0) {
		r->ret = -EINVAL;
		return;
	}
	struct shmseg *s;
	switch (cmd) {
	case IPC_INFO:
	case SHM_INFO: {
		struct krg_ipc_usage u;
		krg_ipc_engine_usage(e, &u);
		r->ret = krg_ipc_shminfo_fill(&e->lim, &u, cmd, r);
		return;
	}
	case SHM_STAT:
	case SHM_STAT_ANY:
	case IPC_STAT:
		s = (struct shmseg *)ctl_stat_obj(e, c, KRG_IPC_SHM, q, cmd == SHM_STAT_ANY, r);
		if (s) {
			fill_stat(s, &r->shm);
			r->out = KRG_IPC_OUT_SHM_STAT;
		}
		return;
	case SHM_LOCK:
	case SHM_UNLOCK:
		if (!(s = shm_check(e, q->id))) {
			r->ret = -EINVAL;
			return;
		}
		shmctl_lock(e, c, s, cmd, r);
		return;
	case IPC_SET:
	case IPC_RMID:
		if (!(s = (struct shmseg *)ctl_owned_obj(e, c, KRG_IPC_SHM, q->id, r)))
			return;
		if (cmd == IPC_RMID) {
			/* The segment as IPC_RMID leaves it: with no attach
			 * anywhere it is gone now, and each node's pages of it
			 * can go too (the listener drops this before the
			 * caller's buffer: IPC_RMID writes nothing there). */
			fill_stat(s, &r->shm);
			r->out = KRG_IPC_OUT_SHM_STAT;
			shm_rmid(e, &s->o);
			r->ret = 0;
			return;
		}
		ctl_set_perm(e, &s->o, &q->set, r);
		return;
	default:
		r->ret = -EINVAL;
	}
}

/* Linux do_shmat's checks; the address and the mapping are the node's. */
static void do_shmat(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r)
{
	struct shmseg *s = q->id < 0 ? NULL : shm_check(e, q->id);
	if (!s) {
		r->ret = -EINVAL;
		return;
	}
	int acc = S_IRUGO;
	if (!(q->flags & SHM_RDONLY))
		acc |= S_IWUGO;
	if (q->flags & SHM_EXEC)
		acc |= S_IXUGO;
	if (!ipcperms(&c->cred, &s->o.perm, acc)) {
		r->ret = -EACCES;
		return;
	}
	s->nattch++;
	s->atime = now_sec(e);
	s->lpid = c->pid;
	note_change(e, KRG_IPC_SHM, s->o.id);
	fill_stat(s, &r->shm);
	r->out = KRG_IPC_OUT_SHM_STAT;
	r->ret = 0;
}

static void do_shmdt(struct krg_ipc_engine *e, const struct krg_ipc_caller *c,
		const struct krg_ipc_req *q, struct krg_ipc_reply *r)
{
	struct shmseg *s = q->id < 0 ? NULL : shm_check(e, q->id);
	if (!s || !s->nattch) {
		r->ret = -EINVAL;
		return;
	}
	s->nattch--;
	s->dtime = now_sec(e);
	s->lpid = c->pid;
	r->ret = 0;
	/* The state after it: the node that made the last detach of a
	 * segment marked for removal drops its pages everywhere (DSM). */
	fill_stat(s, &r->shm);
	r->out = KRG_IPC_OUT_SHM_STAT;
	if (!s->nattch && (s->flags & SHM_DEST))
		shmseg_destroy(e, s);
	else
		note_change(e, KRG_IPC_SHM, s->o.id);
}

void shm_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	switch (q->op) {
	case KRG_IPC_OP_SHMGET:
		do_shmget(e, c, q, r);
		break;
	case KRG_IPC_OP_SHMCTL:
		do_shmctl(e, c, q, r);
		break;
	case KRG_IPC_OP_SHMAT:
		do_shmat(e, c, q, r);
		break;
	case KRG_IPC_OP_SHMDT:
		do_shmdt(e, c, q, r);
		break;
	}
}

int shm_export(const struct shmseg *s, struct krg_ipc_export *x)
{
	x->segsz = s->segsz;
	x->atime = s->atime;
	x->dtime = s->dtime;
	x->cpid = s->cpid;
	x->lpid = s->lpid;
	x->nattch = s->nattch;
	x->shm_flags = s->flags;
	return 0;
}

int shm_import(struct krg_ipc_engine *e, const struct krg_ipc_export *x, struct ipc_obj **out)
{
	if (!x->segsz || (x->shm_flags & ~(uint32_t)(SHM_DEST | SHM_LOCKED)) ||
			((x->shm_flags & SHM_DEST) && (!x->nattch || x->perm.key != IPC_PRIVATE)))
		return -EINVAL;
	uint64_t pages = x->segsz / SHM_PAGE + (x->segsz % SHM_PAGE != 0);
	if (e->shm_tot + pages < e->shm_tot || e->shm_tot + pages > e->lim.shmall)
		return -ENOSPC;
	struct shmseg *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->segsz = x->segsz;
	s->atime = x->atime;
	s->dtime = x->dtime;
	s->cpid = x->cpid;
	s->lpid = x->lpid;
	s->nattch = x->nattch;
	s->flags = x->shm_flags;
	*out = &s->o;
	return 0;
}

void shm_imported(struct krg_ipc_engine *e, struct shmseg *s)
{
	e->shm_tot += s->segsz / SHM_PAGE + (s->segsz % SHM_PAGE != 0);
}
