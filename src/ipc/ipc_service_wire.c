/* ipc_service_wire.c — the engine's plain-data structs to and from
 * src/proto/ipc.proto. Every decoder checks what a peer could get wrong
 * (sizes, ranges) and says -EBADMSG; nothing is trusted before that. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"

#define MAX_GROUPS 65536
#define MAX_SOPS 65536
#define MAX_VALS 65536

/* ---- caller ---------------------------------------------------------------- */

void ipcw_cred_to(const struct krg_ipc_caller *c, Krg__Ipc__Cred *m)
{
	krg__ipc__cred__init(m);
	m->uid = c->cred.uid;
	m->gid = c->cred.gid;
	m->euid = c->cred.euid;
	m->egid = c->cred.egid;
	m->fsgid = c->cred.fsgid;
	m->caps = c->cred.caps;
	m->n_groups = c->cred.ngroups;
	m->groups = (uint32_t *)c->cred.groups;
	m->pid = c->pid;
	m->proc_id = c->proc_id;
}

int ipcw_cred_from(const Krg__Ipc__Cred *m, struct krg_ipc_caller *c)
{
	if (!m || m->n_groups > MAX_GROUPS)
		return -EBADMSG;
	memset(c, 0, sizeof(*c));
	c->cred.uid = m->uid;
	c->cred.gid = m->gid;
	c->cred.euid = m->euid;
	c->cred.egid = m->egid;
	c->cred.fsgid = m->fsgid;
	c->cred.caps = m->caps;
	c->cred.ngroups = (uint32_t)m->n_groups;
	c->cred.groups = m->groups; /* borrowed from the message */
	c->pid = m->pid;
	c->proc_id = m->proc_id;
	return 0;
}

/* ---- request --------------------------------------------------------------- */

/* Fills m from r; sops/vals arrays are malloc'ed into *scratch (free it). */
int ipcw_req_to(const struct krg_ipc_req *r, Krg__Ipc__Req *m, void **scratch)
{
	krg__ipc__req__init(m);
	*scratch = NULL;
	m->op = r->op;
	m->id = r->id;
	m->key = r->key;
	m->flags = r->flags;
	m->cmd = r->cmd;
	m->semnum = r->semnum;
	m->nsems = r->nsems;
	m->val = r->val;
	m->msgtyp = r->msgtyp;
	m->msgsz = r->msgsz;
	if (r->text) {
		m->has_text = true;
		m->text.data = (uint8_t *)r->text;
		m->text.len = r->text_len;
	}
	size_t n = r->sops ? r->nsops : 0, nv = r->vals ? r->nvals : 0;
	size_t need = n * (sizeof(Krg__Ipc__Sembuf) + sizeof(Krg__Ipc__Sembuf *)) + nv * sizeof(uint32_t);
	if (need) {
		uint8_t *mem = malloc(need);
		if (!mem)
			return -ENOMEM;
		*scratch = mem;
		Krg__Ipc__Sembuf *sb = (Krg__Ipc__Sembuf *)mem;
		Krg__Ipc__Sembuf **sp = (Krg__Ipc__Sembuf **)(sb + n);
		uint32_t *vals = (uint32_t *)(sp + n);
		for (size_t i = 0; i < n; i++) {
			krg__ipc__sembuf__init(&sb[i]);
			sb[i].num = r->sops[i].num;
			sb[i].op = r->sops[i].op;
			sb[i].flg = r->sops[i].flg;
			sp[i] = &sb[i];
		}
		m->n_sops = n;
		m->sops = sp;
		for (size_t i = 0; i < nv; i++)
			vals[i] = r->vals[i];
		m->n_vals = nv;
		m->vals = vals;
	}
	if (r->has_timeout) {
		m->has_has_timeout = m->has_timeout = true;
		m->has_timeout_sec = m->has_timeout_nsec = true;
		m->timeout_sec = r->timeout_sec;
		m->timeout_nsec = r->timeout_nsec;
	}
	m->has_set_uid = m->has_set_gid = m->has_set_mode = m->has_set_qbytes = true;
	m->set_uid = r->set.uid;
	m->set_gid = r->set.gid;
	m->set_mode = r->set.mode;
	m->set_qbytes = r->set.qbytes;
	m->has_size = r->size != 0;
	m->size = r->size;
	return 0;
}

/* r's pointers borrow from m, or from *scratch (free it). */
int ipcw_req_from(const Krg__Ipc__Req *m, struct krg_ipc_req *r, void **scratch)
{
	*scratch = NULL;
	if (!m || m->n_sops > MAX_SOPS || m->n_vals > MAX_VALS || m->op < KRG_IPC_OP_MSGGET ||
	    m->op > KRG_IPC_OP_SHMDT)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->op = m->op;
	r->id = m->id;
	r->key = m->key;
	r->flags = m->flags;
	r->cmd = m->cmd;
	r->semnum = m->semnum;
	r->nsems = m->nsems;
	r->val = m->val;
	r->msgtyp = m->msgtyp;
	r->msgsz = m->msgsz;
	if (m->has_text) {
		r->text = m->text.data;
		r->text_len = m->text.len;
	}
	size_t need = m->n_sops * sizeof(struct krg_ipc_sembuf) + m->n_vals * sizeof(uint16_t);
	if (need) {
		uint8_t *mem = malloc(need);
		if (!mem)
			return -ENOMEM;
		*scratch = mem;
		struct krg_ipc_sembuf *sb = (struct krg_ipc_sembuf *)mem;
		uint16_t *vals = (uint16_t *)(sb + m->n_sops);
		for (size_t i = 0; i < m->n_sops; i++) {
			const Krg__Ipc__Sembuf *s = m->sops[i];
			if (s->num > UINT16_MAX || s->op < INT16_MIN || s->op > INT16_MAX || s->flg < INT16_MIN ||
			    s->flg > INT16_MAX) {
				free(mem);
				*scratch = NULL;
				return -EBADMSG;
			}
			sb[i] = (struct krg_ipc_sembuf){ (uint16_t)s->num, (int16_t)s->op, (int16_t)s->flg };
		}
		for (size_t i = 0; i < m->n_vals; i++) {
			if (m->vals[i] > UINT16_MAX) {
				free(mem);
				*scratch = NULL;
				return -EBADMSG;
			}
			vals[i] = (uint16_t)m->vals[i];
		}
		if (m->n_sops) {
			r->sops = sb;
			r->nsops = (uint32_t)m->n_sops;
		}
		if (m->n_vals) {
			r->vals = vals;
			r->nvals = (uint32_t)m->n_vals;
		}
	}
	r->has_timeout = m->has_has_timeout && m->has_timeout;
	r->timeout_sec = m->timeout_sec;
	r->timeout_nsec = m->timeout_nsec;
	r->set.uid = m->set_uid;
	r->set.gid = m->set_gid;
	r->set.mode = m->set_mode;
	r->set.qbytes = m->set_qbytes;
	r->size = m->size;
	return 0;
}

/* ---- perm and reply --------------------------------------------------------- */

void ipcw_perm_to(const struct krg_ipc_perm *p, Krg__Ipc__Perm *m)
{
	krg__ipc__perm__init(m);
	m->key = p->key;
	m->uid = p->uid;
	m->gid = p->gid;
	m->cuid = p->cuid;
	m->cgid = p->cgid;
	m->mode = p->mode;
	m->seq = p->seq;
}

void ipcw_perm_from(const Krg__Ipc__Perm *m, struct krg_ipc_perm *p)
{
	p->key = m->key;
	p->uid = m->uid;
	p->gid = m->gid;
	p->cuid = m->cuid;
	p->cgid = m->cgid;
	p->mode = m->mode & 0777;
	p->seq = m->seq;
}

/* The fixed outputs as integers, in struct order. */
static size_t out_fields(const struct krg_ipc_reply *r, int64_t f[16])
{
	switch (r->out) {
	case KRG_IPC_OUT_MSQ_STAT:
		f[0] = r->msq.stime, f[1] = r->msq.rtime, f[2] = r->msq.ctime;
		f[3] = (int64_t)r->msq.cbytes, f[4] = (int64_t)r->msq.qnum, f[5] = (int64_t)r->msq.qbytes;
		f[6] = r->msq.lspid, f[7] = r->msq.lrpid;
		return 8;
	case KRG_IPC_OUT_SEM_STAT:
		f[0] = r->sem.otime, f[1] = r->sem.ctime, f[2] = (int64_t)r->sem.nsems;
		return 3;
	case KRG_IPC_OUT_MSGINFO: {
		const struct krg_ipc_msginfo *i = &r->msginfo;
		f[0] = i->msgpool, f[1] = i->msgmap, f[2] = i->msgmax, f[3] = i->msgmnb;
		f[4] = i->msgmni, f[5] = i->msgssz, f[6] = i->msgtql, f[7] = i->msgseg;
		return 8;
	}
	case KRG_IPC_OUT_SEMINFO: {
		const struct krg_ipc_seminfo *i = &r->seminfo;
		f[0] = i->semmap, f[1] = i->semmni, f[2] = i->semmns, f[3] = i->semmnu, f[4] = i->semmsl;
		f[5] = i->semopm, f[6] = i->semume, f[7] = i->semusz, f[8] = i->semvmx, f[9] = i->semaem;
		return 10;
	}
	case KRG_IPC_OUT_SHM_STAT: {
		/* perm carries the 9 mode bits; SHM_DEST/SHM_LOCKED go in f[7] */
		const struct krg_ipc_shm_stat *s = &r->shm;
		f[0] = (int64_t)s->segsz, f[1] = s->atime, f[2] = s->dtime, f[3] = s->ctime;
		f[4] = s->cpid, f[5] = s->lpid, f[6] = (int64_t)s->nattch, f[7] = s->perm.mode & ~0777u;
		return 8;
	}
	case KRG_IPC_OUT_SHMINFO: {
		const struct krg_ipc_shminfo *i = &r->shminfo;
		f[0] = (int64_t)i->shmmax, f[1] = (int64_t)i->shmmin, f[2] = (int64_t)i->shmmni;
		f[3] = (int64_t)i->shmseg, f[4] = (int64_t)i->shmall;
		return 5;
	}
	case KRG_IPC_OUT_SHM_INFO: {
		const struct krg_ipc_shm_info *i = &r->shm_info;
		f[0] = i->used_ids, f[1] = (int64_t)i->shm_tot, f[2] = (int64_t)i->shm_rss;
		f[3] = (int64_t)i->shm_swp, f[4] = (int64_t)i->swap_attempts, f[5] = (int64_t)i->swap_successes;
		return 6;
	}
	}
	return 0;
}

int ipcw_reply_to(const struct krg_ipc_reply *r, Krg__Ipc__Reply *m, Krg__Ipc__Perm *perm, int64_t fields[16],
		  uint32_t **vals)
{
	krg__ipc__reply__init(m);
	*vals = NULL;
	m->ret = r->ret;
	m->has_mtype = true;
	m->mtype = r->mtype;
	if (r->text) {
		m->has_text = true;
		m->text.data = r->text;
		m->text.len = r->text_len;
	}
	if (r->nvals && r->vals) {
		*vals = malloc(r->nvals * sizeof(uint32_t));
		if (!*vals)
			return -ENOMEM;
		for (uint32_t i = 0; i < r->nvals; i++)
			(*vals)[i] = r->vals[i];
		m->n_vals = r->nvals;
		m->vals = *vals;
	}
	m->has_out = true;
	m->out = r->out;
	if (r->out == KRG_IPC_OUT_MSQ_STAT || r->out == KRG_IPC_OUT_SEM_STAT ||
	    r->out == KRG_IPC_OUT_SHM_STAT) {
		ipcw_perm_to(r->out == KRG_IPC_OUT_MSQ_STAT ? &r->msq.perm
			     : r->out == KRG_IPC_OUT_SEM_STAT ? &r->sem.perm : &r->shm.perm, perm);
		m->perm = perm;
	}
	m->n_fields = out_fields(r, fields);
	m->fields = fields;
	return 0;
}

static int32_t i32(int64_t v)
{
	return (int32_t)v;
}

/* r owns its buffers afterwards (krg_ipc_reply_release). */
int ipcw_reply_from(const Krg__Ipc__Reply *m, struct krg_ipc_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (!m || m->n_vals > MAX_VALS)
		return -EBADMSG;
	r->ret = m->ret;
	r->mtype = m->mtype;
	r->out = m->has_out ? m->out : 0;
	static const size_t want[] = { 0, 8, 3, 8, 10, 8, 5, 6 };
	bool has_perm = r->out == KRG_IPC_OUT_MSQ_STAT || r->out == KRG_IPC_OUT_SEM_STAT ||
			r->out == KRG_IPC_OUT_SHM_STAT;
	if (r->out > KRG_IPC_OUT_SHM_INFO || m->n_fields != want[r->out] || (has_perm && !m->perm))
		return -EBADMSG;
	const int64_t *f = m->fields;
	switch (r->out) {
	case KRG_IPC_OUT_MSQ_STAT:
		ipcw_perm_from(m->perm, &r->msq.perm);
		r->msq.stime = f[0], r->msq.rtime = f[1], r->msq.ctime = f[2];
		r->msq.cbytes = (uint64_t)f[3], r->msq.qnum = (uint64_t)f[4], r->msq.qbytes = (uint64_t)f[5];
		r->msq.lspid = i32(f[6]), r->msq.lrpid = i32(f[7]);
		break;
	case KRG_IPC_OUT_SEM_STAT:
		ipcw_perm_from(m->perm, &r->sem.perm);
		r->sem.otime = f[0], r->sem.ctime = f[1], r->sem.nsems = (uint64_t)f[2];
		break;
	case KRG_IPC_OUT_MSGINFO: {
		struct krg_ipc_msginfo *i = &r->msginfo;
		i->msgpool = i32(f[0]), i->msgmap = i32(f[1]), i->msgmax = i32(f[2]), i->msgmnb = i32(f[3]);
		i->msgmni = i32(f[4]), i->msgssz = i32(f[5]), i->msgtql = i32(f[6]), i->msgseg = (uint16_t)f[7];
		break;
	}
	case KRG_IPC_OUT_SEMINFO: {
		struct krg_ipc_seminfo *i = &r->seminfo;
		i->semmap = i32(f[0]), i->semmni = i32(f[1]), i->semmns = i32(f[2]), i->semmnu = i32(f[3]);
		i->semmsl = i32(f[4]), i->semopm = i32(f[5]), i->semume = i32(f[6]), i->semusz = i32(f[7]);
		i->semvmx = i32(f[8]), i->semaem = i32(f[9]);
		break;
	}
	case KRG_IPC_OUT_SHM_STAT: {
		struct krg_ipc_shm_stat *s = &r->shm;
		if (f[7] & ~(int64_t)03000) /* only SHM_DEST | SHM_LOCKED */
			return -EBADMSG;
		ipcw_perm_from(m->perm, &s->perm);
		s->perm.mode |= (uint32_t)f[7];
		s->segsz = (uint64_t)f[0], s->atime = f[1], s->dtime = f[2], s->ctime = f[3];
		s->cpid = i32(f[4]), s->lpid = i32(f[5]), s->nattch = (uint64_t)f[6];
		break;
	}
	case KRG_IPC_OUT_SHMINFO: {
		struct krg_ipc_shminfo *i = &r->shminfo;
		i->shmmax = (uint64_t)f[0], i->shmmin = (uint64_t)f[1], i->shmmni = (uint64_t)f[2];
		i->shmseg = (uint64_t)f[3], i->shmall = (uint64_t)f[4];
		break;
	}
	case KRG_IPC_OUT_SHM_INFO: {
		struct krg_ipc_shm_info *i = &r->shm_info;
		i->used_ids = i32(f[0]), i->shm_tot = (uint64_t)f[1], i->shm_rss = (uint64_t)f[2];
		i->shm_swp = (uint64_t)f[3], i->swap_attempts = (uint64_t)f[4];
		i->swap_successes = (uint64_t)f[5];
		break;
	}
	}
	if (m->has_text) {
		r->text = malloc(m->text.len ? m->text.len : 1);
		if (!r->text)
			return -ENOMEM;
		memcpy(r->text, m->text.data, m->text.len);
		r->text_len = m->text.len;
	}
	if (m->n_vals) {
		r->vals = malloc(m->n_vals * sizeof(uint16_t));
		if (!r->vals) {
			krg_ipc_reply_release(r);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->n_vals; i++)
			r->vals[i] = (uint16_t)m->vals[i];
		r->nvals = (uint32_t)m->n_vals;
	}
	return 0;
}
