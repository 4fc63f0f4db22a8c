/* ipc_service_home.c — the KDDM sets of the IPC service and what runs at
 * an object's home:
 *   "ipc.msg", "ipc.sem"        one KDDM object per index (id = idx), its
 *                               state in this node's engine; calls run there
 *   "ipc.msgkey", "ipc.semkey"  key -> id; a KEY_GET finds or creates
 *   "ipc.node"                  calls to one given node (usage, listing,
 *                               process exit)
 * New objects take an index whose hash home is this node, so the object is
 * created here, in the same step as its key (no other node allocates it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ipc_service-int.h"
#include "lib/log.h"
#include "lib/metrics.h"

uint64_t ipc_now(struct krg_ipc_service *svc)
{
	if (svc->now_fn)
		return svc->now_fn();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t ipc_kind_of(uint32_t op)
{
	return op <= KRG_IPC_OP_MSGCTL ? KRG_IPC_MSG : op <= KRG_IPC_OP_SEMCTL ? KRG_IPC_SEM : KRG_IPC_SHM;
}

int ipc_call_pack(const Krg__Ipc__Call *c, uint8_t **buf, size_t *len)
{
	size_t n = krg__ipc__call__get_packed_size(c);
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	krg__ipc__call__pack(c, *buf);
	*len = n;
	return 0;
}

static void no_answer(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
}

int ipc_call_send(struct kddm_set *set, uint64_t id, const Krg__Ipc__Call *c, kddm_call_cb cb, void *data)
{
	uint8_t *buf;
	size_t len;
	int r = ipc_call_pack(c, &buf, &len);
	if (r < 0)
		return r;
	r = kddm_call(set, id, buf, len, cb ? cb : no_answer, data);
	free(buf);
	return r;
}

void ipc_answer(struct kddm_call *c, int status, const Krg__Ipc__Answer *a)
{
	if (status < 0 || !a) {
		kddm_call_done(c, status, NULL, 0);
		return;
	}
	size_t n = krg__ipc__answer__get_packed_size(a);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		kddm_call_done(c, -ENOMEM, NULL, 0);
		return;
	}
	krg__ipc__answer__pack(a, buf);
	kddm_call_done(c, 0, buf, n);
	free(buf);
}

void ipc_answer_reply(struct kddm_call *c, const struct krg_ipc_reply *r)
{
	ipc_answer_reply_take(c, r, NULL, 0);
}

void ipc_answer_reply_take(struct kddm_call *c, const struct krg_ipc_reply *r, uint8_t *take, size_t take_len)
{
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	if (take) {
		a.has_take = true;
		a.take.data = take;
		a.take.len = take_len;
	}
	Krg__Ipc__Reply m;
	Krg__Ipc__Perm perm;
	int64_t f[16];
	uint32_t *vals;
	if (ipcw_reply_to(r, &m, &perm, f, &vals) < 0) {
		kddm_call_done(c, -ENOMEM, NULL, 0);
		return;
	}
	a.reply = &m;
	ipc_answer(c, 0, &a);
	free(vals);
}

/* ---- completions ------------------------------------------------------------ */

/* The engine finished a parked call: keep it until the entry point returns. */
static void engine_complete(void *data, uint64_t token, struct krg_ipc_reply *reply)
{
	struct krg_ipc_service *svc = data;
	struct ipc_done *d = calloc(1, sizeof(*d));
	if (!d) {
		krg_ipc_reply_release(reply);
		return;
	}
	d->gtoken = token;
	d->reply = *reply; /* takes its buffers */
	memset(reply, 0, sizeof(*reply));
	if (svc->done_tail)
		svc->done_tail->next = d;
	else
		svc->done_head = d;
	svc->done_tail = d;
}

/* Push every queued completion to its caller's node. */
void ipc_home_flush(struct krg_ipc_service *svc)
{
	struct ipc_done *d;
	while ((d = svc->done_head)) {
		svc->done_head = d->next;
		if (!svc->done_head)
			svc->done_tail = NULL;
		Krg__Ipc__Completion c = KRG__IPC__COMPLETION__INIT;
		Krg__Ipc__Reply m;
		Krg__Ipc__Perm perm;
		int64_t f[16];
		uint32_t *vals = NULL;
		c.token = d->gtoken;
		if (ipcw_reply_to(&d->reply, &m, &perm, f, &vals) == 0) {
			c.reply = &m;
			size_t n = krg__ipc__completion__get_packed_size(&c);
			uint8_t *buf = malloc(n ? n : 1);
			if (buf) {
				krg__ipc__completion__pack(&c, buf);
				uint32_t node = (uint32_t)(d->gtoken >> 48);
				krg_metrics_ipc(node == kddm_self(svc->k) ? KRG_MIPC_DONE_LOCAL : KRG_MIPC_DONE_REMOTE);
				int r = kddm_notify(svc->nodes, node, node, buf, n);
				if (r < 0)
					log_info("ipc: a completion for node %u is lost (%s): its caller is gone", node,
						 strerror(-r));
				free(buf);
			}
		}
		free(vals);
		krg_ipc_reply_release(&d->reply);
		free(d);
	}
	/* An object made or removed: the other nodes count it. */
	ipc_usage_sync(svc);
}

/* ---- object sets ------------------------------------------------------------ */

/* x as a packed Object (handover, backup, checkpoint). */
static int pack_export(const struct krg_ipc_export *xp, uint8_t **buf, size_t *len)
{
	const struct krg_ipc_export x = *xp;
	int r;
	Krg__Ipc__Object m = KRG__IPC__OBJECT__INIT;
	Krg__Ipc__Perm perm;
	ipcw_perm_to(&x.perm, &perm);
	m.kind = x.kind;
	m.id = x.id;
	m.perm = &perm;
	m.has_stime = m.has_rtime = m.has_otime = m.has_ctime = true;
	m.stime = x.stime, m.rtime = x.rtime, m.otime = x.otime, m.ctime = x.ctime;
	m.has_creator = true;
	m.creator = x.creator;
	m.has_qbytes = m.has_lspid = m.has_lrpid = true;
	m.qbytes = x.qbytes, m.lspid = x.lspid, m.lrpid = x.lrpid;
	Krg__Ipc__Msg *msgs = calloc(x.nmsgs + 1, sizeof(*msgs));
	Krg__Ipc__Msg **mp = calloc(x.nmsgs + 1, sizeof(*mp));
	uint32_t *semval = calloc(x.nsems + 1, sizeof(*semval));
	Krg__Ipc__Undo *undos = calloc(x.nundos + 1, sizeof(*undos));
	Krg__Ipc__Undo **up = calloc(x.nundos + 1, sizeof(*up));
	int32_t *adj = calloc((size_t)x.nundos * x.nsems + 1, sizeof(*adj));
	r = -ENOMEM;
	if (!msgs || !mp || !semval || !undos || !up || !adj)
		goto out;
	for (uint32_t i = 0; i < x.nmsgs; i++) {
		krg__ipc__msg__init(&msgs[i]);
		msgs[i].mtype = x.msgs[i].mtype;
		msgs[i].text.data = x.msgs[i].text;
		msgs[i].text.len = x.msgs[i].len;
		mp[i] = &msgs[i];
	}
	m.n_msgs = x.nmsgs;
	m.msgs = mp;
	for (uint32_t i = 0; i < x.nsems; i++)
		semval[i] = x.semval[i];
	m.n_semval = m.n_sempid = x.nsems;
	m.semval = semval;
	m.sempid = x.sempid;
	for (uint32_t i = 0; i < x.nundos; i++) {
		krg__ipc__undo__init(&undos[i]);
		undos[i].proc_id = x.undos[i].proc_id;
		for (uint32_t j = 0; j < x.nsems; j++)
			adj[(size_t)i * x.nsems + j] = x.undos[i].semadj[j];
		undos[i].n_semadj = x.nsems;
		undos[i].semadj = &adj[(size_t)i * x.nsems];
		up[i] = &undos[i];
	}
	m.n_undos = x.nundos;
	m.undos = up;
	if (x.kind == KRG_IPC_SHM) {
		m.has_segsz = m.has_atime = m.has_dtime = m.has_cpid = m.has_lpid = true;
		m.has_nattch = m.has_shm_flags = true;
		m.segsz = x.segsz, m.atime = x.atime, m.dtime = x.dtime, m.cpid = x.cpid, m.lpid = x.lpid;
		m.nattch = x.nattch, m.shm_flags = x.shm_flags;
	}
	*len = krg__ipc__object__get_packed_size(&m);
	*buf = malloc(*len ? *len : 1);
	if (*buf) {
		krg__ipc__object__pack(&m, *buf);
		r = 0;
	}
out:
	free(msgs), free(mp), free(semval), free(undos), free(up), free(adj);
	return r;
}

static int obj_export(struct kddm_set *s, uint64_t idx, const void *obj, uint8_t **buf, size_t *len)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	const struct ipc_obj *o = obj;
	if (o->owner != KDDM_NO_NODE) {
		/* The queue is at its owner: its new home gets the record. */
		Krg__Ipc__Object m = KRG__IPC__OBJECT__INIT;
		Krg__Ipc__Perm perm = KRG__IPC__PERM__INIT;
		m.kind = o->kind;
		m.id = o->id;
		m.perm = &perm;
		m.has_owner = m.has_mseq = true;
		m.owner = o->owner;
		m.mseq = o->mseq;
		*len = krg__ipc__object__get_packed_size(&m);
		*buf = malloc(*len ? *len : 1);
		if (!*buf)
			return -ENOMEM;
		krg__ipc__object__pack(&m, *buf);
		return 0;
	}
	struct krg_ipc_export x;
	int r = krg_ipc_engine_export(svc->eng, o->kind, o->id, &x);
	if (r < 0)
		return r;
	r = pack_export(&x, buf, len);
	krg_ipc_export_release(&x);
	return r;
}

/* m's state into this engine (drop: replace a stale object of ours under
 * its id first). 0, -EBADMSG, -ENOMEM, or the engine's refusal. */
static int object_to_engine(struct krg_ipc_service *svc, const Krg__Ipc__Object *m, bool drop)
{
	int r = -EBADMSG;
	struct krg_ipc_export x = { 0 };
	struct krg_ipc_msg *msgs = NULL;
	uint16_t *semval = NULL;
	struct krg_ipc_undo *undos = NULL;
	int16_t *adj = NULL;
	if ((m->kind != KRG_IPC_MSG && m->kind != KRG_IPC_SEM && m->kind != KRG_IPC_SHM) || m->id < 0 ||
	    m->n_semval != m->n_sempid || m->n_semval > 65536 || m->n_undos > 1u << 20)
		goto out;
	x.kind = m->kind;
	x.id = m->id;
	ipcw_perm_from(m->perm, &x.perm);
	x.stime = m->stime, x.rtime = m->rtime, x.otime = m->otime, x.ctime = m->ctime;
	x.creator = m->creator;
	x.qbytes = m->qbytes, x.lspid = m->lspid, x.lrpid = m->lrpid;
	x.segsz = m->segsz, x.atime = m->atime, x.dtime = m->dtime, x.cpid = m->cpid, x.lpid = m->lpid;
	x.nattch = m->nattch, x.shm_flags = m->shm_flags;
	r = -ENOMEM;
	msgs = calloc(m->n_msgs + 1, sizeof(*msgs));
	semval = calloc(m->n_semval + 1, sizeof(*semval));
	undos = calloc(m->n_undos + 1, sizeof(*undos));
	adj = calloc(m->n_undos * m->n_semval + 1, sizeof(*adj));
	if (!msgs || !semval || !undos || !adj)
		goto out;
	for (size_t i = 0; i < m->n_msgs; i++) {
		msgs[i].mtype = m->msgs[i]->mtype;
		msgs[i].text = m->msgs[i]->text.data;
		msgs[i].len = m->msgs[i]->text.len;
	}
	x.nmsgs = (uint32_t)m->n_msgs;
	x.msgs = msgs;
	r = -EBADMSG;
	for (size_t i = 0; i < m->n_semval; i++) {
		if (m->semval[i] > UINT16_MAX)
			goto out;
		semval[i] = (uint16_t)m->semval[i];
	}
	x.nsems = (uint32_t)m->n_semval;
	x.semval = semval;
	x.sempid = m->sempid;
	for (size_t i = 0; i < m->n_undos; i++) {
		if (m->undos[i]->n_semadj != m->n_semval)
			goto out;
		for (size_t j = 0; j < m->n_semval; j++) {
			int32_t a = m->undos[i]->semadj[j];
			if (a < INT16_MIN || a > INT16_MAX)
				goto out;
			adj[i * m->n_semval + j] = (int16_t)a;
		}
		undos[i].proc_id = m->undos[i]->proc_id;
		undos[i].semadj = &adj[i * m->n_semval];
	}
	x.nundos = (uint32_t)m->n_undos;
	x.undos = undos;
	/* Importing over a stale object of ours (a backup promoted twice)
	 * replaces it. */
	if (drop)
		krg_ipc_engine_drop(svc->eng, x.kind, x.id, -ESTALE);
	r = krg_ipc_engine_import(svc->eng, &x);
	if (r < 0)
		r = r == -ENOMEM ? r : -EBADMSG;
out:
	free(msgs), free(semval), free(undos), free(adj);
	return r;
}

int ipc_import_bytes(struct krg_ipc_service *svc, const uint8_t *buf, size_t len, uint32_t *kind, int32_t *id)
{
	Krg__Ipc__Object *m = krg__ipc__object__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	int r = m->has_owner ? -EBADMSG : object_to_engine(svc, m, false);
	*kind = m->kind;
	*id = m->id;
	krg__ipc__object__free_unpacked(m, NULL);
	return r;
}

int ipc_pack_object(struct krg_ipc_service *svc, uint32_t kind, int32_t id, uint8_t **buf, size_t *len)
{
	struct krg_ipc_export x;
	int r = krg_ipc_engine_export(svc->eng, kind, id, &x);
	if (r < 0)
		return r;
	r = pack_export(&x, buf, len);
	krg_ipc_export_release(&x);
	return r;
}

static int obj_import(struct kddm_set *s, uint64_t idx, const uint8_t *buf, size_t len, void **obj)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	Krg__Ipc__Object *m = krg__ipc__object__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	int r = -EBADMSG;
	if ((m->kind != KRG_IPC_MSG && m->kind != KRG_IPC_SEM && m->kind != KRG_IPC_SHM) || m->id < 0 ||
	    (uint64_t)krg_ipc_id_idx(m->id) != idx || (m->has_owner && m->kind != KRG_IPC_MSG))
		goto out;
	struct ipc_obj *o = calloc(1, sizeof(*o));
	r = -ENOMEM;
	if (!o)
		goto out;
	o->kind = m->kind;
	o->id = m->id;
	o->owner = KDDM_NO_NODE;
	o->mseq = m->mseq;
	if (m->has_owner) {
		/* A home's record of a queue that moved: its state stays at
		 * its owner (ipc_service_owner.c). */
		struct ipc_owned *w = ipc_owned_get(svc, m->kind, idx);
		if (m->owner == kddm_self(svc->k) && w && w->id == m->id) {
			/* ... which is this node: it is home and holder now. */
			ipc_owned_forget(svc, idx);
		} else {
			o->owner = m->owner;
			svc->moved_out++;
		}
		*obj = o;
		r = 0;
		goto out;
	}
	r = object_to_engine(svc, m, true);
	if (r < 0) {
		free(o);
		goto out;
	}
	*obj = o;
out:
	krg__ipc__object__free_unpacked(m, NULL);
	ipc_home_flush(svc);
	return r;
}

static void obj_free(struct kddm_set *s, uint64_t idx, void *obj)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	struct ipc_obj *o = obj;
	/* Leaving this node (handed over, or KDDM going away): callers parked
	 * here re-issue their call where it went (-ESTALE). After RMID the
	 * engine has nothing left and says so. */
	if (o->owner != KDDM_NO_NODE) {
		/* Only the record: the queue is at its owner. */
		svc->moved_out--;
	} else if (svc->eng && !svc->in_engine) {
		krg_ipc_engine_drop(svc->eng, o->kind, o->id, -ESTALE);
		ipc_home_flush(svc);
	}
	free(o);
}

/* Run one call in the engine, answer, then push the completions it caused
 * (after the backup has the new state, when backups are on). */
struct after_sync {
	struct krg_ipc_service *svc;
	struct kddm_call *c;
	struct krg_ipc_reply reply;
	Krg__Ipc__Answer a;
	bool pending;
	int status;
	uint8_t *take;   /* the queue goes with the answer (ipc_service_owner.c) */
	size_t take_len;
};

static void synced(struct kddm *k, int status, void *data)
{
	struct after_sync *as = data;
	/* A new or removed object is counted by the others before its
	 * creator hears of it, so its next creation elsewhere sees it. */
	ipc_usage_sync(as->svc);
	if (as->status < 0) {
		kddm_call_done(as->c, as->status, NULL, 0);
	} else if (as->pending) {
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		a.has_pending = a.pending = true;
		ipc_answer(as->c, 0, &a);
	} else {
		ipc_answer_reply_take(as->c, &as->reply, as->take, as->take_len);
	}
	free(as->take);
	krg_ipc_reply_release(&as->reply);
	ipc_home_flush(as->svc);
	free(as);
}

static void finish_take(struct krg_ipc_service *svc, struct kddm_set *s, uint64_t idx, struct kddm_call *c,
			int status, bool pending, struct krg_ipc_reply *reply, uint8_t *take, size_t take_len)
{
	struct after_sync *as = calloc(1, sizeof(*as));
	if (!as) {
		free(take);
		krg_ipc_reply_release(reply);
		kddm_call_done(c, -ENOMEM, NULL, 0);
		ipc_home_flush(svc);
		return;
	}
	as->svc = svc;
	as->c = c;
	as->status = status;
	as->pending = pending;
	as->take = take;
	as->take_len = take_len;
	if (reply)
		as->reply = *reply;
	if (kddm_backup(svc->k) && kddm_backup_node(s, idx, kddm_self(svc->k)) != KDDM_NO_NODE)
		krg_metrics_ipc(KRG_MIPC_BACKUP);
	if (kddm_sync(s, idx, synced, as) < 0)
		synced(svc->k, 0, as);
}

static void finish(struct krg_ipc_service *svc, struct kddm_set *s, uint64_t idx, struct kddm_call *c, int status,
		   bool pending, struct krg_ipc_reply *reply)
{
	finish_take(svc, s, idx, c, status, pending, reply, NULL, 0);
}

/* The key of (kind, id) in this engine, 0 if none (IPC_PRIVATE or gone). */
int32_t ipc_key_of(struct krg_ipc_service *svc, uint32_t kind, int32_t id)
{
	struct krg_ipc_export x;
	if (krg_ipc_engine_export(svc->eng, kind, id, &x) < 0)
		return 0;
	int32_t key = x.perm.key;
	krg_ipc_export_release(&x);
	return key;
}

static void keydel_done(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
}

void ipc_forget_key(struct krg_ipc_service *svc, uint32_t kind, int32_t key, int32_t id)
{
	Krg__Ipc__Call c = KRG__IPC__CALL__INIT;
	c.op = KRG__IPC__CALL_OP__KEY_DEL;
	c.has_id = true;
	c.id = id;
	ipc_call_send(svc->keys[kind], (uint32_t)key, &c, keydel_done, NULL);
}

bool ipc_is_rmid(const struct krg_ipc_req *r)
{
	return (r->op == KRG_IPC_OP_MSGCTL || r->op == KRG_IPC_OP_SEMCTL || r->op == KRG_IPC_OP_SHMCTL) &&
	       r->cmd == 0 /* IPC_RMID */;
}

/* A segment marked by IPC_RMID lives on until its last detach. */
static bool engine_has(struct krg_ipc_service *svc, uint32_t kind, int32_t id)
{
	return krg_ipc_engine_next(svc->eng, kind, krg_ipc_id_idx(id)) == id;
}

/* SYSCALL at the object's home. */
static void home_syscall(struct krg_ipc_service *svc, struct kddm_set *s, uint64_t idx, void **objp,
			 uint32_t from, const Krg__Ipc__Call *m, struct kddm_call *c)
{
	struct krg_ipc_caller who;
	struct krg_ipc_req req;
	void *scratch = NULL;
	if (!m->req || !m->has_token || ipcw_cred_from(m->cred, &who) < 0 || ipcw_req_from(m->req, &req, &scratch) < 0) {
		kddm_call_done(c, -EBADMSG, NULL, 0);
		return;
	}
	struct ipc_obj *o = *objp;
	struct krg_ipc_reply reply = { 0 };
	bool by_index = ((req.op == KRG_IPC_OP_MSGCTL || req.op == KRG_IPC_OP_SEMCTL) &&
			 (req.cmd == 11 || req.cmd == 13 || req.cmd == 18 || req.cmd == 20)) ||
			(req.op == KRG_IPC_OP_SHMCTL && (req.cmd == 13 || req.cmd == 15));
	bool get = req.op == KRG_IPC_OP_MSGGET || req.op == KRG_IPC_OP_SEMGET || req.op == KRG_IPC_OP_SHMGET;
	if (!o && !by_index) {
		/* No object at this index here: a get sent by a stale key
		 * entry, or an id that does not (or no longer) exist. */
		reply.ret = get ? -ESTALE : -EINVAL;
		free(scratch);
		finish(svc, s, idx, c, 0, false, &reply);
		return;
	}
	if (o && o->gone) {
		/* Its owner died with its state (backups off). */
		if (o->owner != KDDM_NO_NODE)
			svc->moved_out--;
		free(o);
		*objp = o = NULL;
		reply.ret = get ? -ESTALE : -EINVAL;
		free(scratch);
		finish(svc, s, idx, c, 0, false, &reply);
		return;
	}
	if (o && o->owner != KDDM_NO_NODE) {
		/* The queue is at its owner: the caller asks there. */
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		a.has_owner = true;
		a.owner = o->owner;
		free(scratch);
		ipc_answer(c, 0, &a);
		return;
	}
	if (o && from < 64)
		o->users |= 1ull << from;
	int32_t key = o && ipc_is_rmid(&req) ? ipc_key_of(svc, o->kind, o->id) : 0;
	svc->in_engine = true;
	int r = krg_ipc_engine_call(svc->eng, &who, &req, m->token, ipc_now(svc), &reply);
	svc->in_engine = false;
	free(scratch);
	if (r < 0) {
		finish(svc, s, idx, c, r, false, NULL);
		return;
	}
	if (o && ipc_is_rmid(&req) && reply.ret == 0 && key)
		ipc_forget_key(svc, o->kind, key, o->id);
	if (o && reply.ret >= 0 && !engine_has(svc, o->kind, o->id)) {
		/* removed: IPC_RMID, or a marked segment's last SHMDT */
		free(o);
		*objp = o = NULL;
	}
	bool pending = r == KRG_IPC_PENDING;
	uint8_t *take = NULL;
	size_t take_len = 0;
	if (o && !pending && from != kddm_self(svc->k) &&
	    ipc_owner_take_for(svc, o->kind, idx, o->id, o, from, &reply, &take, &take_len) == 0) {
		/* moved with this answer */
	} else if (o) {
		ipc_owner_consider(svc, o->kind, idx, o->id, o);
	}
	finish_take(svc, s, idx, c, 0, pending, pending ? NULL : &reply, take, take_len);
}

/* Does this node's engine hold an object of s's kind at index idx? */
static bool engine_has_idx(struct krg_ipc_service *svc, struct kddm_set *s, uint64_t idx)
{
	for (uint32_t kind = KRG_IPC_MSG; kind <= KRG_IPC_SHM; kind++)
		if (svc->objs[kind] == s) {
			int32_t id = krg_ipc_engine_next(svc->eng, kind, (int32_t)idx);
			return id >= 0 && (uint64_t)krg_ipc_id_idx(id) == idx;
		}
	return false;
}

/* The Call a KDDM call carries; NULL once the call is answered EBADMSG. */
static Krg__Ipc__Call *call_unpack(const uint8_t *in, size_t len, struct kddm_call *c)
{
	Krg__Ipc__Call *m = krg__ipc__call__unpack(NULL, len, in);
	if (!m)
		kddm_call_done(c, -EBADMSG, NULL, 0);
	return m;
}

static void obj_call(struct kddm_set *s, uint64_t idx, void **objp, uint32_t from, const uint8_t *in, size_t len,
		     struct kddm_call *c)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	Krg__Ipc__Call *m = call_unpack(in, len, c);
	if (!m)
		return;
	if (m->op == KRG__IPC__CALL_OP__SYSCALL) {
		home_syscall(svc, s, idx, objp, from, m, c);
	} else if (m->op == KRG__IPC__CALL_OP__RESTORE && m->has_object) {
		/* A restart brings an object back under its id: only into a
		 * free index (-EEXIST: another object has it). The bytes are
		 * checked as a handover's (obj_import). */
		void *obj = NULL;
		Krg__Ipc__Object *peek = krg__ipc__object__unpack(NULL, m->object.len, m->object.data);
		int r = !peek || (peek->kind != KRG_IPC_MSG && peek->kind != KRG_IPC_SEM) || svc->objs[peek->kind] != s
				? -EBADMSG
			: *objp || engine_has_idx(svc, s, idx) ? -EEXIST
							       : 0;
		struct ipc_obj *here = *objp;
		if (r == -EEXIST && m->has_keep && m->keep && here && here->kind == peek->kind && here->id == peek->id &&
		    ipc_key_of(svc, here->kind, here->id) == (peek->perm ? peek->perm->key : 0)) {
			/* A recovery finds the application's object alive (its
			 * home lived on, or its backup took over): newer than
			 * the image, it stays as it is. */
			krg__ipc__object__free_unpacked(peek, NULL);
			finish(svc, s, idx, c, 0, false, &(struct krg_ipc_reply){ .ret = 1 });
			krg__ipc__call__free_unpacked(m, NULL);
			return;
		}
		/* This engine's own key index would refuse it too (a key
		 * another object of this home has). */
		if (r == 0 && peek->perm && peek->perm->key &&
		    krg_ipc_engine_find_key(svc->eng, peek->kind, peek->perm->key) >= 0)
			r = -EADDRINUSE;
		if (peek)
			krg__ipc__object__free_unpacked(peek, NULL);
		if (r == 0)
			r = obj_import(s, idx, m->object.data, m->object.len, &obj);
		if (r == 0)
			*objp = obj;
		finish(svc, s, idx, c, r, false, NULL);
	} else if (m->op == KRG__IPC__CALL_OP__DROP && m->has_id) {
		struct ipc_obj *o = *objp;
		if (o && o->id == m->id) {
			svc->in_engine = true;
			krg_ipc_engine_drop(svc->eng, o->kind, o->id, -EIDRM);
			svc->in_engine = false;
			free(o);
			*objp = NULL;
		}
		finish(svc, s, idx, c, 0, false, NULL);
	} else if (m->op == KRG__IPC__CALL_OP__CANCEL && m->has_token) {
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		Krg__Ipc__Reply rep = KRG__IPC__REPLY__INIT;
		rep.ret = krg_ipc_engine_cancel(svc->eng, m->token);
		a.reply = &rep;
		ipc_answer(c, 0, &a);
	} else if (m->op == KRG__IPC__CALL_OP__OWNER && m->has_id && m->has_owner && m->has_mseq) {
		ipc_owner_set(svc, *objp, m);
		kddm_call_done(c, 0, NULL, 0);
	} else if (m->op == KRG__IPC__CALL_OP__UNDELIVERABLE && *objp &&
		   ((struct ipc_obj *)*objp)->owner != KDDM_NO_NODE) {
		Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
		a.has_owner = true;
		a.owner = ((struct ipc_obj *)*objp)->owner;
		ipc_answer(c, 0, &a);
	} else if (m->op == KRG__IPC__CALL_OP__UNDELIVERABLE && m->req && m->reply) {
		int r = ipc_undeliverable(svc, m);
		finish(svc, s, idx, c, r == -EBADMSG ? r : 0, false, &(struct krg_ipc_reply){ .ret = r });
	} else {
		kddm_call_done(c, -EBADMSG, NULL, 0);
	}
	krg__ipc__call__free_unpacked(m, NULL);
}

static void obj_node_down(struct kddm_set *s, uint32_t node)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	ipc_node_down(svc, s == svc->objs[KRG_IPC_MSG] ? KRG_IPC_MSG
			   : s == svc->objs[KRG_IPC_SEM] ? KRG_IPC_SEM : KRG_IPC_SHM, node);
}

static const struct kddm_set_ops obj_ops = {
	.version = KDDM_OPS_V1,
	.export_obj = obj_export,
	.import_obj = obj_import,
	.free_obj = obj_free,
	.call = obj_call,
	.node_down = obj_node_down,
};

/* ---- key maps ---------------------------------------------------------------- */

static int key_export(struct kddm_set *s, uint64_t key, const void *obj, uint8_t **buf, size_t *len)
{
	Krg__Ipc__KeyEntry m = KRG__IPC__KEY_ENTRY__INIT;
	m.id = ((const struct ipc_keyent *)obj)->id;
	*len = krg__ipc__key_entry__get_packed_size(&m);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	krg__ipc__key_entry__pack(&m, *buf);
	return 0;
}

static int key_import(struct kddm_set *s, uint64_t key, const uint8_t *buf, size_t len, void **obj)
{
	Krg__Ipc__KeyEntry *m = krg__ipc__key_entry__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	int32_t id = m->id;
	krg__ipc__key_entry__free_unpacked(m, NULL);
	if (id < 0)
		return -EBADMSG;
	struct ipc_keyent *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->id = id;
	*obj = e;
	return 0;
}

static void key_free(struct kddm_set *s, uint64_t key, void *obj)
{
	free(obj);
}

/* An index whose hash home is this node and that the engine does not
 * use; -ENOSPC when none is left. */
static int32_t free_index(struct krg_ipc_service *svc, uint32_t kind)
{
	const struct krg_nodeset *live = kddm_live(svc->k);
	uint32_t self = kddm_self(svc->k);
	for (uint32_t n = 0; n < KRG_IPC_MNI; n++) {
		uint32_t idx = (svc->next_idx[kind] + n) % KRG_IPC_MNI;
		if (kddm_hash_home(idx, live) != self)
			continue;
		int32_t used = krg_ipc_engine_next(svc->eng, kind, (int32_t)idx);
		if (used >= 0 && (uint32_t)krg_ipc_id_idx(used) == idx)
			continue;
		if (kddm_peek(svc->objs[kind], idx))
			continue; /* a queue that moved to its owner */
		svc->next_idx[kind] = idx + 1;
		return (int32_t)idx;
	}
	return -ENOSPC;
}

static void created(struct kddm *k, int status, void *data)
{
	if (status < 0)
		log_warn("ipc: a new object is not known to KDDM: %s", strerror(-status));
}

/* Create the object of a msgget/semget here (IPC_PRIVATE from a caller of
 * this node, or a new key at its home). reply filled; 0 or -errno. */
int ipc_create_here(struct krg_ipc_service *svc, const struct krg_ipc_caller *who, const struct krg_ipc_req *req,
		    uint64_t token, struct krg_ipc_reply *reply)
{
	uint32_t kind = ipc_kind_of(req->op);
	int32_t idx = free_index(svc, kind);
	memset(reply, 0, sizeof(*reply));
	if (idx < 0) {
		reply->ret = idx;
		return 0;
	}
	struct krg_ipc_req r = *req;
	r.id = krg_ipc_id_make(idx, (int32_t)(svc->next_seq++ % KRG_IPC_SEQ_MAX));
	svc->in_engine = true;
	int st = krg_ipc_engine_call(svc->eng, who, &r, token, ipc_now(svc), reply);
	svc->in_engine = false;
	if (st < 0)
		return st;
	if (reply->ret >= 0) {
		struct ipc_obj *o = malloc(sizeof(*o));
		if (!o)
			return -ENOMEM;
		o->kind = kind;
		o->id = (int32_t)reply->ret;
		o->users = kddm_self(svc->k) < 64 ? 1ull << kddm_self(svc->k) : 0;
		o->owner = KDDM_NO_NODE;
		o->mseq = 0;
		o->gone = false;
		kddm_create(svc->objs[kind], (uint64_t)idx, o, created, NULL);
		kddm_sync(svc->objs[kind], (uint64_t)idx, NULL, NULL);
	}
	return 0;
}

static void key_call(struct kddm_set *s, uint64_t key, void **objp, uint32_t from, const uint8_t *in, size_t len,
		     struct kddm_call *c)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	Krg__Ipc__Call *m = call_unpack(in, len, c);
	if (!m)
		return;
	struct ipc_keyent *e = *objp;
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	if (m->op == KRG__IPC__CALL_OP__KEY_DEL) {
		if (e && m->has_id && e->id == m->id) {
			free(e);
			*objp = NULL;
		}
		ipc_answer(c, 0, &a);
	} else if (m->op == KRG__IPC__CALL_OP__KEY_SET && m->has_id && m->id >= 0) {
		/* A restart's object, under its key, unless the key names
		 * an object already. */
		int r = 0;
		if (e && m->has_keep && m->keep && e->id == m->id) {
			/* A recovery: the key names the very object already. */
			Krg__Ipc__Reply rep = KRG__IPC__REPLY__INIT;
			rep.ret = 1;
			a.reply = &rep;
			ipc_answer(c, 0, &a);
			krg__ipc__call__free_unpacked(m, NULL);
			return;
		}
		if (e)
			r = -EEXIST; /* not this restore's: never undone by it */
		else if (!(e = malloc(sizeof(*e))))
			r = -ENOMEM;
		if (r == 0) {
			e->id = m->id;
			*objp = e;
			if (kddm_sync(s, key, NULL, NULL) < 0) {
				/* no backup: nothing to wait for */
			}
		}
		kddm_call_done(c, r, NULL, 0);
	} else if (m->op == KRG__IPC__CALL_OP__KEY_GET && e) {
		a.has_redirect = true;
		a.redirect = e->id;
		ipc_answer(c, 0, &a);
	} else if (m->op == KRG__IPC__CALL_OP__KEY_GET && m->req && m->has_token) {
		struct krg_ipc_caller who;
		struct krg_ipc_req req;
		void *scratch = NULL;
		struct krg_ipc_reply reply = { 0 };
		int r = -EBADMSG;
		if (ipcw_cred_from(m->cred, &who) == 0 && ipcw_req_from(m->req, &req, &scratch) == 0) {
			if (!(req.flags & 01000 /* IPC_CREAT */)) {
				reply.ret = -ENOENT;
				r = 0;
			} else {
				r = ipc_create_here(svc, &who, &req, m->token, &reply);
			}
		}
		free(scratch);
		if (r == 0 && reply.ret >= 0) {
			struct ipc_obj *h = kddm_peek(svc->objs[ipc_kind_of(req.op)],
						      (uint64_t)krg_ipc_id_idx((int32_t)reply.ret));
			if (h && from < 64)
				h->users |= 1ull << from;
			e = malloc(sizeof(*e));
			if (e) {
				e->id = (int32_t)reply.ret;
				*objp = e;
			}
		}
		if (r < 0)
			kddm_call_done(c, r, NULL, 0);
		else
			finish(svc, s, key, c, 0, false, &reply);
	} else {
		kddm_call_done(c, -EBADMSG, NULL, 0);
	}
	krg__ipc__call__free_unpacked(m, NULL);
}

static const struct kddm_set_ops key_ops = {
	.version = KDDM_OPS_V1,
	.export_obj = key_export,
	.import_obj = key_import,
	.free_obj = key_free,
	.call = key_call,
};

/* ---- per-node calls ------------------------------------------------------------ */

static uint32_t node_home(struct kddm_set *s, uint64_t id, const struct krg_nodeset *live)
{
	return id < KRG_MAX_NODES && krg_nodeset_has(live, (unsigned)id) ? (uint32_t)id : KDDM_NO_NODE;
}

/* ipc.node keeps no objects: nothing is ever exported or imported. */
static int node_export(struct kddm_set *s, uint64_t id, const void *obj, uint8_t **buf, size_t *len)
{
	return -EOPNOTSUPP;
}

static int node_import(struct kddm_set *s, uint64_t id, const uint8_t *buf, size_t len, void **obj)
{
	return -EOPNOTSUPP;
}

static void list_objs(struct krg_ipc_service *svc, Krg__Ipc__Answer *a);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* CREATED: every queue and set homed here whose creator is in procs
 * (sorted here), packed whole. shm segments are the DSM's (docs/dsm.md).
 * 0 or -ENOMEM; a->objects owned by the caller (free each, then the array). */
static int created_objs(struct krg_ipc_service *svc, uint64_t *procs, size_t n, Krg__Ipc__Answer *a)
{
	qsort(procs, n, sizeof(*procs), cmp_u64);
	size_t cap = 0;
	for (uint32_t kind = KRG_IPC_MSG; kind <= KRG_IPC_SEM; kind++) {
		for (int32_t id = krg_ipc_engine_next(svc->eng, kind, 0); id >= 0;
		     id = krg_ipc_engine_next(svc->eng, kind, krg_ipc_id_idx(id) + 1)) {
			struct krg_ipc_export x;
			if (krg_ipc_engine_export(svc->eng, kind, id, &x) < 0)
				continue;
			int r = 0;
			if (x.creator && bsearch(&x.creator, procs, n, sizeof(*procs), cmp_u64)) {
				if (a->n_objects == cap) {
					cap = cap ? cap * 2 : 8;
					ProtobufCBinaryData *no = realloc(a->objects, cap * sizeof(*no));
					if (!no)
						r = -ENOMEM;
					else
						a->objects = no;
				}
				ProtobufCBinaryData *b = r == 0 ? &a->objects[a->n_objects] : NULL;
				if (b && (r = pack_export(&x, &b->data, &b->len)) == 0)
					a->n_objects++;
			}
			krg_ipc_export_release(&x);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* A per-node call (EXIT: SEM_UNDO applied; UNDO_RENAME) changed sets this
 * node homes: each is on its backup before the answer and before the
 * completions it caused go out, as for any call at a home. */
struct ipc_bsync {
	struct krg_ipc_service *svc;
	struct kddm_call *c;
	unsigned waiting;   /* syncs not acked yet, + 1 while they are started */
};

static void bsync_one(struct kddm *k, int status, void *data)
{
	struct ipc_bsync *b = data;
	if (--b->waiting)
		return;
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	ipc_answer(b->c, 0, &a);
	ipc_home_flush(b->svc);
	free(b);
}

static void engine_changed(void *data, uint32_t kind, int32_t id)
{
	struct krg_ipc_service *svc = data;
	struct ipc_bsync *b = svc->bsync;
	if (!b || kind > KRG_IPC_SHM || !svc->objs[kind])
		return;
	uint64_t idx = (uint64_t)krg_ipc_id_idx(id);
	if (!kddm_is_home(svc->objs[kind], idx))
		return;
	krg_metrics_ipc(KRG_MIPC_BACKUP);
	b->waiting++;
	if (kddm_sync(svc->objs[kind], idx, bsync_one, b) < 0)
		b->waiting--;
}

/* Run EXIT or UNDO_RENAME's engine work with its changes synced. */
static void node_call_synced(struct krg_ipc_service *svc, const Krg__Ipc__Call *m, struct kddm_call *c)
{
	struct ipc_bsync *b = kddm_backup(svc->k) ? calloc(1, sizeof(*b)) : NULL;
	if (b) {
		b->svc = svc;
		b->c = c;
		b->waiting = 1;
	}
	svc->bsync = b;
	svc->in_engine = true;
	if (m->op == KRG__IPC__CALL_OP__EXIT) {
		krg_ipc_engine_process_exit(svc->eng, m->token, m->cred->pid, ipc_now(svc));
	} else {
		size_t moved = 0;
		for (size_t i = 0; i < m->n_procs; i += 2)
			moved += krg_ipc_engine_undo_rename(svc->eng, m->procs[i], m->procs[i + 1]);
		if (moved)
			log_info("ipc: %zu SEM_UNDO record%s of restarted processes now under their new ids", moved,
				 moved == 1 ? "" : "s");
	}
	svc->in_engine = false;
	svc->bsync = NULL;
	if (b) {
		bsync_one(svc->k, 0, b); /* the extra one: answers once every sync is acked */
		return;
	}
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	ipc_answer(c, 0, &a);
	ipc_home_flush(svc);
}

static void node_call(struct kddm_set *s, uint64_t id, void **objp, uint32_t from, const uint8_t *in, size_t len,
		      struct kddm_call *c)
{
	struct krg_ipc_service *svc = kddm_set_data(s);
	Krg__Ipc__Call *m = call_unpack(in, len, c);
	if (!m)
		return;
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	if (m->op == KRG__IPC__CALL_OP__SYSCALL || m->op == KRG__IPC__CALL_OP__UNDELIVERABLE ||
	    m->op == KRG__IPC__CALL_OP__CANCEL) {
		ipc_owner_call(svc, from, m, c);
	} else if ((m->op == KRG__IPC__CALL_OP__EXIT && m->has_token && m->cred) ||
		   (m->op == KRG__IPC__CALL_OP__UNDO_RENAME && m->n_procs % 2 == 0 && m->n_procs <= 2 * 65536)) {
		node_call_synced(svc, m, c);
	} else if (m->op == KRG__IPC__CALL_OP__USAGE) {
		struct krg_ipc_usage u;
		krg_ipc_engine_usage(svc->eng, &u);
		int64_t f[10] = { u.msq_count, (int64_t)u.msg_count, (int64_t)u.msg_bytes, u.msq_max_idx,
				  u.sem_count, (int64_t)u.sem_total, u.sem_max_idx,
				  u.shm_count, (int64_t)u.shm_tot, u.shm_max_idx };
		a.n_usage = 10;
		a.usage = f;
		ipc_answer(c, 0, &a);
	} else if (m->op == KRG__IPC__CALL_OP__LIST) {
		list_objs(svc, &a);
		ipc_answer(c, 0, &a);
		for (size_t i = 0; i < a.n_objs; i++)
			free(a.objs[i]->perm);
		if (a.n_objs)
			free(a.objs[0]);
		free(a.objs);
	} else if (m->op == KRG__IPC__CALL_OP__CREATED && m->n_procs <= 65536) {
		int r = created_objs(svc, m->procs, m->n_procs, &a);
		if (r < 0)
			kddm_call_done(c, r, NULL, 0);
		else
			ipc_answer(c, 0, &a);
		for (size_t i = 0; i < a.n_objects; i++)
			free(a.objects[i].data);
		free(a.objects);
	} else {
		kddm_call_done(c, -EBADMSG, NULL, 0);
	}
	krg__ipc__call__free_unpacked(m, NULL);
}

static void node_notify(struct kddm_set *s, uint64_t id, uint32_t from, const uint8_t *in, size_t len)
{
	if (id & IPC_TAKE_NOTIFY)
		ipc_take_in(kddm_set_data(s), from, in, len);
	else if (id & IPC_USAGE_NOTIFY)
		ipc_usage_in(kddm_set_data(s), from, in, len);
	else
		ipc_completion_in(kddm_set_data(s), from, in, len);
}

static const struct kddm_set_ops node_ops = {
	.version = KDDM_OPS_V1,
	.export_obj = node_export,
	.import_obj = node_import,
	.free_obj = key_free,
	.default_home = node_home,
	.call = node_call,
	.notify = node_notify,
};

/* Every object this node homes, as ObjInfo (allocated in one block). */
static void list_objs(struct krg_ipc_service *svc, Krg__Ipc__Answer *a)
{
	size_t n = 0, cap = 0;
	struct krg_ipc_export *xs = NULL;
	for (uint32_t kind = KRG_IPC_MSG; kind <= KRG_IPC_SHM; kind++) {
		for (int32_t id = krg_ipc_engine_next(svc->eng, kind, 0); id >= 0;
		     id = krg_ipc_engine_next(svc->eng, kind, krg_ipc_id_idx(id) + 1)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct krg_ipc_export *nx = realloc(xs, cap * sizeof(*xs));
				if (!nx)
					break;
				xs = nx;
			}
			if (krg_ipc_engine_export(svc->eng, kind, id, &xs[n]) == 0)
				n++;
		}
	}
	Krg__Ipc__ObjInfo *infos = calloc(n + 1, sizeof(*infos));
	Krg__Ipc__ObjInfo **ip = calloc(n + 1, sizeof(*ip));
	if (!infos || !ip) {
		free(infos);
		free(ip);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		Krg__Ipc__ObjInfo *o = &infos[i];
		krg__ipc__obj_info__init(o);
		o->kind = xs[i].kind;
		o->id = xs[i].id;
		o->home = kddm_self(svc->k);
		o->perm = malloc(sizeof(*o->perm));
		if (o->perm)
			ipcw_perm_to(&xs[i].perm, o->perm);
		o->has_ctime = true;
		o->ctime = xs[i].ctime;
		o->has_creator = true;
		o->creator = xs[i].creator;
		struct ipc_obj *h = kddm_peek(svc->objs[xs[i].kind], (uint64_t)krg_ipc_id_idx(xs[i].id));
		o->has_users = true;
		o->users = h ? h->users : 0;
		if (xs[i].kind == KRG_IPC_MSG) {
			o->has_qnum = o->has_cbytes = o->has_qbytes = true;
			o->qnum = xs[i].nmsgs;
			for (uint32_t j = 0; j < xs[i].nmsgs; j++)
				o->cbytes += xs[i].msgs[j].len;
			o->qbytes = xs[i].qbytes;
		} else if (xs[i].kind == KRG_IPC_SEM) {
			o->has_nsems = true;
			o->nsems = xs[i].nsems;
		}
		ip[i] = o;
	}
	for (size_t i = 0; i < n; i++)
		krg_ipc_export_release(&xs[i]);
	free(xs);
	a->n_objs = n;
	a->objs = n ? ip : NULL;
	if (!n) {
		free(ip);
		free(infos);
	}
}

int ipc_home_sets(struct krg_ipc_service *svc)
{
	int r = ipc_owner_init(svc);
	if (r < 0)
		return r;
	svc->eng = krg_ipc_engine_new(&svc->lim, engine_complete, svc);
	if (!svc->eng)
		return -ENOMEM;
	krg_ipc_engine_set_change_cb(svc->eng, engine_changed, svc);
	if ((r = kddm_set_new(svc->k, "ipc.msg", &obj_ops, svc, &svc->objs[KRG_IPC_MSG])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.sem", &obj_ops, svc, &svc->objs[KRG_IPC_SEM])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.msgkey", &key_ops, svc, &svc->keys[KRG_IPC_MSG])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.semkey", &key_ops, svc, &svc->keys[KRG_IPC_SEM])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.shm", &obj_ops, svc, &svc->objs[KRG_IPC_SHM])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.shmkey", &key_ops, svc, &svc->keys[KRG_IPC_SHM])) < 0 ||
	    (r = kddm_set_new(svc->k, "ipc.node", &node_ops, svc, &svc->nodes)) < 0)
		return r;
	return 0;
}
