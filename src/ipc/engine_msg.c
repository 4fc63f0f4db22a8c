/* engine_msg.c — System V message queues with Linux's semantics (kernel
 * ipc/msg.c is the reference): msgget, msgsnd, msgrcv, msgctl; senders and
 * receivers that wait are parked waiters, finished here when the queue
 * changes. Checks run in Linux's order, so the same bad call gets the same
 * errno.
 *
 * Map: helpers | sending and the sender queue | receiving | msgget |
 * msgctl | destroy, cancel, undeliverable | dispatch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include "ipc/engine_int.h"

#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define S_RUGO 0444
#define S_WUGO 0222

static struct msq *msq_check(struct krg_ipc_engine *e, int32_t id)
{
	return (struct msq *)obj_check(e, KRG_IPC_MSG, id);
}

static bool msg_fits(const struct msq *m, uint64_t len)
{
	return len + m->cbytes <= m->qbytes && 1 + m->qnum <= m->qbytes;
}

static struct msg *msg_new(int64_t mtype, const uint8_t *text, uint64_t len)
{
	struct msg *g = malloc(sizeof *g + len);
	if (!g)
		return NULL;
	klist_init(&g->node);
	g->mtype = mtype;
	g->serial = 0;
	g->len = len;
	if (len)
		memcpy(g->text, text, len);
	return g;
}

/* A msgrcv reply carrying the whole message; the caller gets ret bytes. */
static void reply_msg(struct krg_ipc_reply *r, const struct msg *g, uint64_t bufsz)
{
	r->text = malloc(g->len ? g->len : 1);
	if (!r->text) {
		r->ret = -ENOMEM;
		return;
	}
	memcpy(r->text, g->text, g->len);
	r->text_len = g->len;
	r->mtype = g->mtype;
	r->ret = (int64_t)(g->len < bufsz ? g->len : bufsz);
}

static void complete_err(struct krg_ipc_engine *e, struct waiter *w, int err)
{
	struct krg_ipc_reply r = { .ret = err };
	waiter_complete(e, w, &r);
}

/* Linux testmsg(). */
static bool testmsg(const struct msg *g, int64_t type, int mode)
{
	switch (mode) {
	case SEARCH_ANY:
	case SEARCH_NUMBER:
		return true;
	case SEARCH_LESSEQUAL:
		return g->mtype <= type;
	case SEARCH_EQUAL:
		return g->mtype == type;
	case SEARCH_NOTEQUAL:
		return g->mtype != type;
	}
	return false;
}

/* ---- sending ------------------------------------------------------------------ */

/* Linux pipelined_send(): the first waiting receiver that wants g gets it
 * without it touching the queue; receivers whose buffer is too small (and
 * no MSG_NOERROR) fail with E2BIG on the way. True if delivered. */
static bool pipelined_send(struct krg_ipc_engine *e, struct msq *m, struct msg *g)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->receivers) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		if (!testmsg(g, w->msgtyp, w->mode))
			continue;
		if (w->maxsize < g->len) {
			complete_err(e, w, -E2BIG);
			continue;
		}
		m->lrpid = w->caller.pid;
		m->rtime = now_sec(e);
		struct krg_ipc_reply r = { 0 };
		reply_msg(&r, g, w->bufsz);
		waiter_complete(e, w, &r);
		return true;
	}
	return false;
}

/* Puts g on m (ownership taken), or hands it to a waiting receiver.
 * Returns the serial of the queued message, 0 if it was handed over. */
static uint64_t do_send(struct krg_ipc_engine *e, struct msq *m, struct msg *g, int32_t pid)
{
	m->lspid = pid;
	m->stime = now_sec(e);
	note_change(e, KRG_IPC_MSG, m->o.id);
	if (pipelined_send(e, m, g)) {
		free(g);
		return 0;
	}
	g->serial = ++e->msg_serial;
	klist_add_tail(&m->msgs, &g->node);
	m->cbytes += g->len;
	m->qnum++;
	e->msg_count++;
	e->msg_bytes += g->len;
	return g->serial;
}

/* Linux ss_wakeup(): senders waiting for room, in order; one that does
 * not fit goes to the back (so a big message does not block small ones
 * for ever) and the walk stops when it comes round again. kill: every
 * sender fails with err. A sender that runs again re-checks its
 * permission, as the woken task does in Linux. */
static void ss_wakeup(struct krg_ipc_engine *e, struct msq *m, int kill)
{
	struct waiter *stop = NULL;
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->senders) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		if (kill) {
			complete_err(e, w, kill);
			continue;
		}
		if (w == stop)
			break;
		if (!msg_fits(m, w->msg->len)) {
			if (!stop)
				stop = w;
			klist_del(&w->qnode);
			klist_add_tail(&m->senders, &w->qnode);
			continue;
		}
		if (!ipcperms(&w->caller.cred, &m->o.perm, S_WUGO)) {
			complete_err(e, w, -EACCES);
			continue;
		}
		struct msg *g = w->msg;
		w->msg = NULL;
		struct krg_ipc_reply r = { 0 };
		r.serial = do_send(e, m, g, w->caller.pid);
		waiter_complete(e, w, &r);
	}
}

static void do_msgsnd(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending)
{
	if (q->msgsz > e->lim.msgmax || (int64_t)q->msgsz < 0 || q->id < 0) {
		r->ret = -EINVAL;
		return;
	}
	if (q->msgtyp < 1) {
		r->ret = -EINVAL;
		return;
	}
	if (q->text_len < q->msgsz || (q->msgsz && !q->text)) {
		r->ret = -EFAULT;
		return;
	}
	struct msq *m = msq_check(e, q->id);
	if (!m) {
		r->ret = -EINVAL;
		return;
	}
	if (!ipcperms(&c->cred, &m->o.perm, S_WUGO)) {
		r->ret = -EACCES;
		return;
	}
	struct msg *g = msg_new(q->msgtyp, q->text, q->msgsz);
	if (!g) {
		r->ret = -ENOMEM;
		return;
	}
	if (msg_fits(m, q->msgsz)) {
		r->serial = do_send(e, m, g, c->pid);
		r->ret = 0;
		return;
	}
	if (q->flags & IPC_NOWAIT) {
		free(g);
		r->ret = -EAGAIN;
		return;
	}
	struct waiter *w = waiter_new(c, W_MSGSND, KRG_IPC_MSG, m->o.id);
	if (!w) {
		free(g);
		r->ret = -ENOMEM;
		return;
	}
	w->msg = g;
	if (waiter_park(e, w, token) < 0) {
		waiter_free(w);
		r->ret = -ENOMEM;
		return;
	}
	klist_add_tail(&m->senders, &w->qnode);
	*pending = 1;
}

/* ---- receiving ------------------------------------------------------------------ */

/* Linux convert_mode(): msgtyp < 0 asks for the lowest type <= |msgtyp|. */
static int convert_mode(int64_t *msgtyp, int flg)
{
	if (flg & MSG_COPY)
		return SEARCH_NUMBER;
	if (*msgtyp == 0)
		return SEARCH_ANY;
	if (*msgtyp < 0) {
		*msgtyp = *msgtyp == INT64_MIN ? INT64_MAX : -*msgtyp;
		return SEARCH_LESSEQUAL;
	}
	return flg & MSG_EXCEPT ? SEARCH_NOTEQUAL : SEARCH_EQUAL;
}

/* Linux find_msg(): LESSEQUAL keeps the first message of the lowest type;
 * NUMBER (MSG_COPY) is the msgtyp-th message. */
static struct msg *find_msg(struct msq *m, int64_t *msgtyp, int mode)
{
	struct msg *found = NULL;
	int64_t count = 0;
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->msgs) {
		struct msg *g = klist_entry(pos, struct msg, node);
		if (!testmsg(g, *msgtyp, mode))
			continue;
		if (mode == SEARCH_LESSEQUAL && g->mtype != 1) {
			*msgtyp = g->mtype - 1;
			found = g;
		} else if (mode == SEARCH_NUMBER) {
			if (*msgtyp == count)
				return g;
		} else {
			return g;
		}
		count++;
	}
	return found;
}

static void do_msgrcv(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending)
{
	int flg = q->flags;
	uint64_t bufsz = q->msgsz, copysz = 0;
	if (q->id < 0 || (int64_t)bufsz < 0) {
		r->ret = -EINVAL;
		return;
	}
	if (flg & MSG_COPY) {
		if ((flg & MSG_EXCEPT) || !(flg & IPC_NOWAIT)) {
			r->ret = -EINVAL;
			return;
		}
		copysz = bufsz < e->lim.msgmax ? bufsz : e->lim.msgmax;
	}
	int64_t msgtyp = q->msgtyp;
	int mode = convert_mode(&msgtyp, flg);
	struct msq *m = msq_check(e, q->id);
	if (!m) {
		r->ret = -EINVAL;
		return;
	}
	if (!ipcperms(&c->cred, &m->o.perm, S_RUGO)) {
		r->ret = -EACCES;
		return;
	}
	struct msg *g = find_msg(m, &msgtyp, mode);
	if (g) {
		if (bufsz < g->len && !(flg & MSG_NOERROR)) {
			r->ret = -E2BIG;
			return;
		}
		if (flg & MSG_COPY) {
			/* Linux copy_msg() into a buffer of min(bufsz, msgmax):
			 * a longer message is EINVAL even with MSG_NOERROR. */
			if (g->len > copysz)
				r->ret = -EINVAL;
			else
				reply_msg(r, g, bufsz);
			return;
		}
		klist_del(&g->node);
		m->qnum--;
		m->rtime = now_sec(e);
		m->lrpid = c->pid;
		m->cbytes -= g->len;
		e->msg_count--;
		e->msg_bytes -= g->len;
		note_change(e, KRG_IPC_MSG, m->o.id);
		reply_msg(r, g, bufsz);
		if (r->ret < 0) {
			/* No memory for the reply: the message stays. */
			klist_add_head(&m->msgs, &g->node);
			m->qnum++;
			m->cbytes += g->len;
			e->msg_count++;
			e->msg_bytes += g->len;
			return;
		}
		free(g);
		ss_wakeup(e, m, 0);
		return;
	}
	if (flg & IPC_NOWAIT) {
		r->ret = -ENOMSG;
		return;
	}
	struct waiter *w = waiter_new(c, W_MSGRCV, KRG_IPC_MSG, m->o.id);
	if (!w) {
		r->ret = -ENOMEM;
		return;
	}
	w->msgtyp = msgtyp;
	w->mode = mode;
	w->bufsz = bufsz;
	w->maxsize = (flg & MSG_NOERROR) ? UINT64_MAX : bufsz;
	if (waiter_park(e, w, token) < 0) {
		waiter_free(w);
		r->ret = -ENOMEM;
		return;
	}
	klist_add_tail(&m->receivers, &w->qnode);
	*pending = 1;
}

/* ---- msgget ------------------------------------------------------------------------ */

static void newque(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	struct msq *m = calloc(1, sizeof *m);
	if (!m) {
		r->ret = -ENOMEM;
		return;
	}
	obj_init_perm(&m->o, KRG_IPC_MSG, &c->cred, q->key, q->flags, now_sec(e));
	m->o.creator = c->proc_id;
	m->qbytes = e->lim.msgmnb;
	klist_init(&m->msgs);
	klist_init(&m->receivers);
	klist_init(&m->senders);
	int err = obj_add(e, &m->o, q->id, limit_left(e->lim.msgmni, e->others_msq));
	if (err < 0) {
		free(m);
		r->ret = err;
		return;
	}
	r->ret = m->o.id;
}

/* Linux ipcget(): IPC_PRIVATE always creates; a key creates only with
 * IPC_CREAT; an existing key is EEXIST with IPC_CREAT|IPC_EXCL, else the
 * flag's mode bits are checked. */
static void do_msgget(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	ipc_get(e, c, q, r, KRG_IPC_MSG, newque, NULL);
}

/* ---- msgctl ------------------------------------------------------------------------ */

static void msq_fill_stat(const struct msq *m, struct krg_ipc_msq_stat *s)
{
	memset(s, 0, sizeof *s);
	perm_stat(&m->o, &s->perm);
	s->stime = m->stime;
	s->rtime = m->rtime;
	s->ctime = m->o.ctime;
	s->cbytes = m->cbytes;
	s->qnum = m->qnum;
	s->qbytes = m->qbytes;
	s->lspid = m->lspid;
	s->lrpid = m->lrpid;
}

static void msgctl_set(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, struct msq *m,
		const struct krg_ipc_setbuf *set, struct krg_ipc_reply *r)
{
	if (set->qbytes > e->lim.msgmnb && !(c->cred.caps & KRG_IPC_CAP_SYS_RESOURCE)) {
		r->ret = -EPERM;
		return;
	}
	ctl_set_perm(e, &m->o, set, r);
	if (r->ret < 0)
		return;
	m->qbytes = set->qbytes;
	/* Linux wakes every receiver to re-check (stricter permissions may
	 * exclude it now); one still allowed finds the queue as it left it
	 * and waits again, so only the check has an effect. */
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->receivers) {
		struct waiter *w = klist_entry(pos, struct waiter, qnode);
		if (!ipcperms(&w->caller.cred, &m->o.perm, S_RUGO))
			complete_err(e, w, -EACCES);
	}
	/* A larger queue may let senders in. */
	ss_wakeup(e, m, 0);
	r->ret = 0;
}

static void msq_rmid(struct krg_ipc_engine *e, struct ipc_obj *o)
{
	msq_destroy(e, (struct msq *)o, -EIDRM);
}

static void do_msgctl(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		struct krg_ipc_reply *r)
{
	int cmd = q->cmd;
	if (q->id < 0 || cmd < 0) {
		r->ret = -EINVAL;
		return;
	}
	struct msq *m;
	switch (cmd) {
	case IPC_INFO:
	case MSG_INFO: {
		struct krg_ipc_usage u;
		krg_ipc_engine_usage(e, &u);
		r->ret = krg_ipc_msginfo_fill(&e->lim, &u, cmd, &r->msginfo);
		r->out = KRG_IPC_OUT_MSGINFO;
		return;
	}
	case MSG_STAT:
	case MSG_STAT_ANY:
	case IPC_STAT:
		m = (struct msq *)ctl_stat_obj(e, c, KRG_IPC_MSG, q, cmd == MSG_STAT_ANY, r);
		if (m) {
			msq_fill_stat(m, &r->msq);
			r->out = KRG_IPC_OUT_MSQ_STAT;
		}
		return;
	case IPC_SET:
	case IPC_RMID:
		if ((m = (struct msq *)ctl_rmid_or_set(e, c, KRG_IPC_MSG, q, r, msq_rmid)))
			msgctl_set(e, c, m, &q->set, r);
		return;
	default:
		r->ret = -EINVAL;
	}
}

/* ---- destroy, cancel, undeliverable ---------------------------------------------------- */

/* Linux freeque(): waiters fail with err (EIDRM), messages go. */
void msq_destroy(struct krg_ipc_engine *e, struct msq *m, int err)
{
	struct klist *pos, *tmp;
	klist_for_each_safe(pos, tmp, &m->receivers)
		complete_err(e, klist_entry(pos, struct waiter, qnode), err);
	ss_wakeup(e, m, err);
	klist_for_each_safe(pos, tmp, &m->msgs) {
		struct msg *g = klist_entry(pos, struct msg, node);
		e->msg_count--;
		e->msg_bytes -= g->len;
		free(g);
	}
	obj_remove(e, &m->o);
	free(m);
}

void msg_waiter_cancel(struct krg_ipc_engine *e, struct waiter *w)
{
	waiter_unpark(e, w);
	waiter_free(w);
}

int msg_undeliverable(struct krg_ipc_engine *e, const struct krg_ipc_req *q, const struct krg_ipc_reply *r)
{
	struct msq *m = msq_check(e, q->id);
	if (!m)
		return -EINVAL;
	struct klist *pos, *tmp;
	if (q->op == KRG_IPC_OP_MSGSND) {
		if (!r->serial)
			return -EALREADY;
		klist_for_each_safe(pos, tmp, &m->msgs) {
			struct msg *g = klist_entry(pos, struct msg, node);
			if (g->serial != r->serial)
				continue;
			klist_del(&g->node);
			m->qnum--;
			m->cbytes -= g->len;
			e->msg_count--;
			e->msg_bytes -= g->len;
			free(g);
			note_change(e, KRG_IPC_MSG, m->o.id);
			ss_wakeup(e, m, 0);
			return 0;
		}
		return -EALREADY;
	}
	if (q->flags & MSG_COPY)
		return -EINVAL;   /* a copy took nothing */
	/* The reply may have crossed the network: only a real message goes back. */
	if (r->mtype < 1 || (r->text_len && !r->text) || r->text_len > UINT32_MAX)
		return -EINVAL;
	struct msg *g = msg_new(r->mtype, r->text, r->text_len);
	if (!g)
		return -ENOMEM;
	note_change(e, KRG_IPC_MSG, m->o.id);
	/* A receiver waiting now would have had it, had it stayed. */
	if (pipelined_send(e, m, g)) {
		free(g);
		return 0;
	}
	g->serial = ++e->msg_serial;
	klist_add_head(&m->msgs, &g->node);
	m->cbytes += g->len;
	m->qnum++;
	e->msg_count++;
	e->msg_bytes += g->len;
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

void msg_call(struct krg_ipc_engine *e, const struct krg_ipc_caller *c, const struct krg_ipc_req *q,
		uint64_t token, struct krg_ipc_reply *r, int *pending)
{
	switch (q->op) {
	case KRG_IPC_OP_MSGGET:
		do_msgget(e, c, q, r);
		break;
	case KRG_IPC_OP_MSGSND:
		do_msgsnd(e, c, q, token, r, pending);
		break;
	case KRG_IPC_OP_MSGRCV:
		do_msgrcv(e, c, q, token, r, pending);
		break;
	case KRG_IPC_OP_MSGCTL:
		do_msgctl(e, c, q, r);
		break;
	}
}

int krg_ipc_engine_msq_waiters(struct krg_ipc_engine *e, int32_t id, uint64_t *cbytes, unsigned *senders)
{
	struct msq *m = msq_check(e, id);
	if (!m)
		return -EINVAL;
	if (cbytes)
		*cbytes = m->cbytes;
	unsigned n = 0, s = 0;
	for (struct klist *p = m->receivers.next; p != &m->receivers && n < 1000000; p = p->next)
		n++;
	for (struct klist *p = m->senders.next; p != &m->senders && s < 1000000; p = p->next)
		s++;
	if (senders)
		*senders = s;
	return (int)n;
}
