/* intercept_svc.c — krgd's listener for intercepted IPC calls
 * (intercept_svc.h).
 *
 * Map:
 *   listeners   one uv_poll per seccomp listener fd (an application tree);
 *               readable -> one SECCOMP_IOCTL_NOTIF_RECV (never more: a
 *               RECV with nothing queued would block krgd);
 *   held calls  every notification received and not yet answered, in a
 *               list and a tid hash; a new call from a thread proves its
 *               previous one was dropped by the kernel;
 *   check timer ID_VALID of each held call every check_ms: calls whose
 *               caller took a signal or died are cancelled;
 *   processes   pidfds of processes that used SEM_UNDO: readable at
 *               their exit -> backend process_exit;
 *   channels    sockets on which krgd's children send listener fds. */
#include <errno.h>
#include <linux/audit.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "ipc/intercept-int.h"
#include "ipc/intercept.h"
#include "ipc/intercept_svc-int.h"
#include "lib/log.h"

/* Linux 6.6+ (not in Debian 12's headers): SEND wakes the caller on this
 * CPU, which saves a trip through the scheduler per call. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#define DEFAULT_MAX_PENDING 4096
#define DEFAULT_CHECK_MS 50

/* ---- bookkeeping ---- */

static struct ucount *user(struct krg_intercept *in, uint32_t uid, bool add)
{
	for (size_t i = 0; i < in->n_users; i++)
		if (in->users[i].uid == uid)
			return &in->users[i];
	if (!add)
		return NULL;
	struct ucount *u = realloc(in->users, (in->n_users + 1) * sizeof(*u));
	if (!u)
		return NULL;
	in->users = u;
	u[in->n_users] = (struct ucount){ uid, 0 };
	return &u[in->n_users++];
}

static struct held **bucket_of(struct krg_intercept *in, pid_t tid)
{
	return &in->bucket[(unsigned)tid % NBUCKET];
}

static struct held *held_by_tid(struct krg_intercept *in, pid_t tid)
{
	for (struct held *h = *bucket_of(in, tid); h; h = h->hnext)
		if (h->tid == tid)
			return h;
	return NULL;
}

static void held_unlink(struct krg_intercept *in, struct held *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		in->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	for (struct held **p = bucket_of(in, h->tid); *p; p = &(*p)->hnext)
		if (*p == h) {
			*p = h->hnext;
			break;
		}
	struct ucount *u = h->counted ? user(in, h->euid, false) : NULL;
	if (u && u->n)
		u->n--;
	in->st.held--;
	icall_free(&h->c);
	free(h);
}

bool isvc_id_valid(int fd, uint64_t id)
{
	return fd >= 0 && ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void handle_gone(struct krg_intercept *in);

static void handle_closed(uv_handle_t *h)
{
	handle_gone(h->data);
}

/* The last handle closed after stop frees the service. */
static void in_free(struct krg_intercept *in);

static void handle_gone(struct krg_intercept *in)
{
	if (--in->handles == 0 && in->stopping)
		in_free(in);
}

static void in_free(struct krg_intercept *in)
{
	if (in->dt_pending)
		return; /* the last SHMDT answer frees */
	ishm_free(&in->shm);
	ishm_att_free(&in->shm_att);
	while (in->shm_undo) {
		struct shm_undo *u = in->shm_undo;
		in->shm_undo = u->next;
		free(u->pend);
		free(u);
	}
	if (in->uffd_dev >= 0)
		close(in->uffd_dev);
	free(in->users);
	free(in);
}

/* /dev/userfaultfd, opened at the first attach that needs it (Linux 6.1+;
 * root-only by its mode): -1 when there is none. */
static int uffd_dev(struct krg_intercept *in)
{
	if (in->uffd_dev == -2) {
		in->uffd_dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (in->uffd_dev < 0)
			log_info("ipc intercept: /dev/userfaultfd: %s: processes without CAP_SYS_PTRACE attach System V "
				 "segments with user-mode-only userfaultfds (a read(2) into a page not here fails EFAULT; "
				 "docs/dsm.md)", strerror(errno));
	}
	return in->uffd_dev;
}

static void lsn_closed(uv_handle_t *h)
{
	struct lsn *l = h->data;
	struct krg_intercept *in = l->in;
	close(l->fd);
	free(l);
	handle_gone(in);
}

static void chan_closed(uv_handle_t *h)
{
	struct chan *c = h->data;
	struct krg_intercept *in = c->in;
	close(c->fd);
	free(c);
	handle_gone(in);
}

/* ---- answering ---- */

int isvc_send_resp(struct krg_intercept *in, int fd, uint64_t id, long ret)
{
	/* The kernel's struct may have grown: zeroed tail. */
	uint8_t buf[256] = { 0 };
	struct seccomp_notif_resp *r = (void *)buf;
	r->id = id;
	if (ret < 0)
		r->error = (int32_t)ret;
	else
		r->val = ret;
	if (in->resp_size > sizeof(buf))
		return -EINVAL;
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, r) < 0)
		return -errno;
	return 0;
}

static void retry_cb(uv_idle_t *t);
static void migrant_counted(struct krg_intercept *in, struct ishm_att *a, const struct krg_ipc_reply *reply);

/* The home's answer to a SHMDT: the segment's state after it, so that
 * the last detach of a segment marked for removal is seen (nattch 0 with
 * SHM_DEST): its pages are dropped on every node. */
static void shm_undo_done(void *cookie, struct krg_ipc_reply *reply)
{
	struct dt_wait *w = cookie;
	struct krg_intercept *in = w->in;
	if (w->pend)
		migrant_counted(in, w->pend, reply);
	else if (w->attach && reply->ret < 0)
		log_warn("ipc intercept: segment %d: a forked child's attach is not counted: %s", (int)w->id,
			 strerror((int)-reply->ret));
	if (!w->attach && reply->ret == 0 && reply->out == KRG_IPC_OUT_SHM_STAT && reply->shm.nattch == 0 &&
	    (reply->shm.perm.mode & SHM_DEST) && in->shm_ops && !in->stopping) {
		/* (a size no segment has: the entry of this id is dropped) */
		ishm_find(&in->shm, (int32_t)(w->seg >> 32), (int32_t)(uint32_t)w->seg, UINT64_MAX);
		in->shm_ops->destroyed(in->shm_ctx, w->seg);
	}
	krg_ipc_reply_release(reply);
	free(w);
	if (--in->dt_pending == 0 && in->stopping && in->handles == 0)
		in_free(in);
}

/* SHMDT (attach: SHMAT) at the segment's home for who, from the loop
 * (not from inside the backend's callback). */
static void shm_queue(struct krg_intercept *in, const struct krg_ipc_caller *who, int32_t id, uint64_t seg, bool attach)
{
	struct shm_undo *u = calloc(1, sizeof(*u));
	if (!u) {
		log_warn("ipc intercept: segment %d keeps one attachment too many (out of memory)", id);
		return;
	}
	u->who = *who;
	u->who.cred.ngroups = 0;
	u->who.cred.groups = NULL;
	u->id = id;
	u->seg = seg;
	u->attach = attach;
	u->next = in->shm_undo;
	in->shm_undo = u;
	uv_idle_start(&in->retry, retry_cb);
}

static void shm_queue_dt(struct krg_intercept *in, const struct krg_ipc_caller *who, int32_t id, uint64_t seg)
{
	shm_queue(in, who, id, seg, false);
}

/* The backend counted an attach that was not made: SHMDT it. */
static void shm_uncount(struct krg_intercept *in, const struct held *h, uint64_t seg)
{
	shm_queue_dt(in, &h->c.who, h->c.req.id, seg);
}

static void proc_follow(struct krg_intercept *in, struct lsn *l, pid_t tgid, uint64_t proc_id, int32_t pid, uint64_t id,
			bool undo);
static void probe_start(struct krg_intercept *in);

/* SHMAT counted by the backend: map the node's object of the segment
 * into the caller, which answers its call (docs/dsm.md, "shmat through
 * krgd"). With the DSM (shm_ops) the mapping is registered with a
 * userfaultfd of the caller's and its pages are kept coherent with every
 * other node's; without it, an attach while another node has the segment
 * attached is refused by name. */
static void shmat_answer(struct krg_intercept *in, struct held *h, const struct krg_ipc_reply *reply)
{
	const struct krg_ipc_shm_stat *st = &reply->shm;
	const struct krg_ipc_req *q = &h->c.req;
	const struct krg_intercept_shm_ops *ops = in->shm_ops;
	uint64_t seg = ishm_name(q->id, st->cpid);
	struct ishm_seg *s = ishm_find(&in->shm, q->id, st->cpid, st->segsz);
	uint64_t here = s ? s->attached : 0;
	long ret = 0;
	int src = -1;
	if (!ops && st->nattch > here + 1) {
		in->st.shmat_refused++;
		log_warn("ipc intercept: pid %d: shmat of System V segment %d refused (ENOSYS): it is attached on "
			 "another node (%llu attachments in the cluster, %llu on this node) and this node has no DSM "
			 "(docs/dsm.md)",
			 (int)h->c.tgid, (int)q->id, (unsigned long long)st->nattch - 1, (unsigned long long)here);
		ret = -ENOSYS;
	} else if (!in->map_hook) {
		ret = -ENOSYS;
	} else if (ops && !ops->room(in->shm_ctx, seg)) {
		in->st.shmat_refused++;
		log_warn("ipc intercept: pid %d: shmat of System V segment %d refused (ENOMEM): too many processes "
			 "attached on this node (docs/dsm.md, \"Limits\")", (int)h->c.tgid, (int)q->id);
		ret = -ENOMEM;
	} else {
		if (ops && (ret = ops->segment(in->shm_ctx, seg, st->segsz, &src)) < 0)
			log_warn("ipc intercept: pid %d: shmat of System V segment %d: no DSM segment: %s",
				 (int)h->c.tgid, (int)q->id, strerror((int)-ret));
		if (ret == 0)
			ret = ishm_get(&in->shm, q->id, st->cpid, st->segsz, src, &s);
	}
	int cfd = -1, dfd = -1;
	if (ret == 0) {
		struct seccomp_notif_addfd add = { .id = h->id, .srcfd = (uint32_t)s->fd, .newfd_flags = O_CLOEXEC };
		cfd = ioctl(h->l->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
		if (cfd < 0)
			ret = errno == ENOENT ? -EINTR : -errno;
	}
	if (ret == 0 && ops && uffd_dev(in) >= 0) {
		/* For a caller without CAP_SYS_PTRACE (PostgreSQL's server):
		 * its userfaultfd, made through the device, then takes the
		 * kernel's faults too, so a read(2) into the segment waits for
		 * the page instead of failing EFAULT. Without it (the call
		 * gone meanwhile) the attach goes on user-mode-only. */
		struct seccomp_notif_addfd add = { .id = h->id, .srcfd = (uint32_t)in->uffd_dev, .newfd_flags = O_CLOEXEC };
		dfd = ioctl(h->l->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
	}
	if (ret < 0) {
		if (ret != -EINTR)
			isvc_send_resp(in, h->l->fd, h->id, ret);
		shm_uncount(in, h, seg);
		return;
	}
	/* Followed to its exit, which detaches (while its call still
	 * holds the pid to this process). */
	proc_follow(in, h->l, h->c.tgid, h->c.who.proc_id, h->c.who.pid, h->id, false);
	int prot = PROT_READ | (q->flags & SHM_RDONLY ? 0 : PROT_WRITE) | (q->flags & SHM_EXEC ? PROT_EXEC : 0);
	int flags = MAP_SHARED;
	if (h->c.out_addr)
		flags |= q->flags & SHM_REMAP ? MAP_FIXED : MAP_FIXED_NOREPLACE;
	uint64_t at = 0;
	int uffd = -1;
	int r = in->map_hook(in->map_ctx, h->c.tgid, h->tid, cfd, dfd, h->c.out_addr, st->segsz, prot, flags, &at,
			     ops ? &uffd : NULL);
	if (r < 0) {
		/* Not mapped: the call failed with mmap's error, or it restarts
		 * (a new notification), or its caller is gone. */
		log_debug("ipc intercept: pid %d: shmat of segment %d: %s", (int)h->c.tgid, (int)q->id, strerror(-r));
		shm_uncount(in, h, seg);
		return;
	}
	struct ishm_att a = { .tgid = h->c.tgid, .addr = at, .size = st->segsz, .id = q->id, .seg = seg, .view = -1,
			      .who = h->c.who };
	if (ops) {
		/* room() said yes on this same loop turn: this does not fail
		 * but for lack of memory, and then the mapping is not served
		 * (its accesses wait) rather than silently node-local. */
		a.view = ops->attach(in->shm_ctx, seg, uffd, at);
		if (a.view < 0)
			log_error("ipc intercept: pid %d: segment %d mapped but not served by the DSM: %s",
				  (int)h->c.tgid, (int)q->id, strerror(-a.view));
	}
	s->attached++;
	in->st.shmat_mapped++;
	if (ishm_att_add(&in->shm_att, &a) < 0)
		log_warn("ipc intercept: pid %d: its shmdt of segment %d will fail (out of memory)", (int)h->c.tgid,
			 (int)q->id);
	probe_start(in);
}

/* One attach ended (shmdt, the process's exit): the DSM stops serving its
 * mapping and the home uncounts it. */
static void att_end(struct krg_intercept *in, const struct ishm_att *a)
{
	struct ishm_seg *s = ishm_find(&in->shm, a->id, (int32_t)(uint32_t)a->seg, a->size);
	if (s && s->attached)
		s->attached--;
	if (in->shm_ops && a->view >= 0)
		in->shm_ops->detach(in->shm_ctx, a->seg, a->view);
	if (in->shm_ops) {
		/* Without the DSM the node's memfd holds the only pages: the
		 * home keeps counting the attach, so that no other node may
		 * attach later and see other bytes. */
		in->st.shmdt_counted++;
		shm_queue_dt(in, &a->who, a->id, a->seg);
	}
}

/* ---- attaches that end without a call: exec, a forked child's exit ----
 * The kernel detaches at exec and exit; krgd sees a process's exit by
 * its pidfd, but neither an exec (the pid stays) nor a forked child (the
 * DSM learns of its mapping by UFFD_EVENT_FORK, which carries no pid).
 * Both are seen by their mapping's address space going away: the view's
 * userfaultfd then fails with ESRCH. */
#define PROBE_MS 100

static void probe_cb(uv_timer_t *t)
{
	struct krg_intercept *in = t->data;
	bool any = false;
	for (struct ishm_att **p = &in->shm_att; *p;) {
		struct ishm_att *a = *p;
		if (a->view < 0 || !in->shm_ops || !in->shm_ops->probe) {
			p = &a->next;
			continue;
		}
		if (in->shm_ops->probe(in->shm_ctx, a->seg, a->view) != -ESRCH) {
			any = true;
			p = &a->next;
			continue;
		}
		*p = a->next;
		log_debug("ipc intercept: pid %d: its attach of segment %d ended with its address space (exit or exec)",
			  (int)a->tgid, (int)a->id);
		att_end(in, a);
		free(a);
	}
	if (!any)
		uv_timer_stop(t);
}

static void probe_start(struct krg_intercept *in)
{
	if (in->shm_ops && in->shm_ops->probe && !in->stopping && !uv_is_active((uv_handle_t *)&in->ptimer))
		uv_timer_start(&in->ptimer, probe_cb, PROBE_MS, PROBE_MS);
}

void krg_intercept_shm_forked(struct krg_intercept *in, uint64_t seg, int parent, int child)
{
	const struct ishm_att *p = NULL;
	for (const struct ishm_att *a = in->shm_att; a && !p; a = a->next)
		if (a->seg == seg && a->view == parent)
			p = a;
	if (!p || in->stopping) {
		/* Not an attach of ours (it ended meanwhile): not served. */
		if (in->shm_ops)
			in->shm_ops->detach(in->shm_ctx, seg, child);
		return;
	}
	/* The child's pid is not known (0) until its shmdt names it. */
	struct ishm_att c = *p;
	c.tgid = 0;
	c.view = child;
	struct ishm_seg *s = ishm_find(&in->shm, c.id, (int32_t)(uint32_t)seg, c.size);
	if (ishm_att_add(&in->shm_att, &c) < 0) {
		log_warn("ipc intercept: segment %d: a forked child's attach is not counted (out of memory)", (int)c.id);
		return;
	}
	if (s)
		s->attached++;
	in->st.shmat_forked++;
	shm_queue(in, &c.who, c.id, seg, true);
	probe_start(in);
}

/* ---- a migrant's attaches (docs/dsm.md, "Migration of an attached process") ----
 * A migration's holder restores an attached process here: it asks for
 * this node's object of each segment ('S'), maps it where the process had
 * it, and hands over the userfaultfd it registered there ('D'). The view
 * serves the mapping at once; the attach is counted at the segment's home
 * (SHMAT in the migrant's name) and recorded here once the home answered
 * (with the segment's exact size): from then on it is the process's
 * attach as if made here (shmdt, fork, exec, exit). Its old attach on the
 * source node ends with the process's address space there (the deputy's
 * exec, or a killed copy), through the probe. */
static void dsm_chan_segment(struct krg_intercept *in, int sock, const struct krg_intercept_dsm_msg *q)
{
	struct krg_intercept_dsm_msg a = *q;
	int memfd = -1;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (!in->shm_ops)
		a.ret = -ENOSYS;  /* no DSM on this node */
	else if (!q->npages || q->npages > UINT64_MAX / page)
		a.ret = -EINVAL;
	else if (!in->shm_ops->room(in->shm_ctx, q->seg))
		a.ret = -ENOMEM;
	else
		a.ret = in->shm_ops->segment(in->shm_ctx, q->seg, q->npages * page, &memfd);
	int r = krg_intercept_send_msg(sock, 'S', &a, sizeof(a), a.ret == 0 ? memfd : -1);
	if (r < 0 || a.ret < 0)
		log_warn("ipc intercept: a migrant's System V segment %d: %s", (int)(q->seg >> 32),
			 strerror(r < 0 ? -r : -a.ret));
}

static void dsm_migrant_attach(struct krg_intercept *in, const struct krg_intercept_dsm_msg *m, int uffd)
{
	int32_t id = (int32_t)(m->seg >> 32);
	if (!in->shm_ops || in->stopping) {
		close(uffd);
		log_error("ipc intercept: pid %d: its attach of System V segment %d is not served (no DSM here)", (int)m->pid,
			  (int)id);
		return;
	}
	int view = in->shm_ops->attach(in->shm_ctx, m->seg, uffd, m->addr);
	if (view < 0) {
		log_error("ipc intercept: pid %d: segment %d mapped but not served by the DSM: %s", (int)m->pid, (int)id,
			  strerror(-view));
		return;
	}
	struct icall c = { 0 };
	int r = icall_creds(m->pid, &c);
	struct ishm_att *a = calloc(1, sizeof(*a));
	struct shm_undo *u = a ? calloc(1, sizeof(*u)) : NULL;
	if (r < 0 || !u) {
		/* Served, but not counted: shm_nattch is one short. */
		log_warn("ipc intercept: pid %d: its attach of segment %d is not counted: %s", (int)m->pid, (int)id,
			 strerror(r < 0 ? -r : ENOMEM));
		icall_free(&c);
		free(a);
		return;
	}
	c.who.proc_id = in->be->proc_id(in->ctx, c.tgid);
	*a = (struct ishm_att){ .tgid = c.tgid, .addr = m->addr, .id = id, .seg = m->seg, .view = view, .who = c.who };
	a->who.cred.ngroups = 0;
	a->who.cred.groups = NULL;
	icall_free(&c);
	u->who = a->who;
	u->id = id;
	u->seg = m->seg;
	u->attach = true;
	u->shmflg = m->prot & PROT_WRITE ? 0 : SHM_RDONLY;
	u->pend = a;
	u->next = in->shm_undo;
	in->shm_undo = u;
	uv_idle_start(&in->retry, retry_cb);
}

/* The home counted a migrant's attach (or refused): recorded, a->size the
 * segment's size as the home has it. a is taken. */
static void migrant_counted(struct krg_intercept *in, struct ishm_att *a, const struct krg_ipc_reply *reply)
{
	int32_t cpid = (int32_t)(uint32_t)a->seg;
	if (in->stopping || !in->shm_ops) {
		free(a);
		return;
	}
	if (reply->ret < 0 || reply->shm.cpid != cpid) {
		/* Its mapping stays served (its pages are the segment's), but
		 * shm_nattch does not count it. */
		log_warn("ipc intercept: pid %d: its attach of System V segment %d after a migration is not counted: %s",
			 (int)a->tgid, (int)a->id, reply->ret < 0 ? strerror((int)-reply->ret) : "the id names another segment");
		if (reply->ret == 0)
			shm_queue_dt(in, &a->who, a->id, ishm_name(a->id, reply->shm.cpid));
		free(a);
		return;
	}
	a->size = reply->shm.segsz;
	int src = -1;
	struct ishm_seg *s = NULL;
	int r = in->shm_ops->segment(in->shm_ctx, a->seg, a->size, &src);
	if (r == 0)
		r = ishm_get(&in->shm, a->id, cpid, a->size, src, &s);
	if (r < 0 || ishm_att_add(&in->shm_att, a) < 0) {
		log_warn("ipc intercept: pid %d: its shmdt of segment %d will fail: %s", (int)a->tgid, (int)a->id,
			 strerror(r < 0 ? -r : ENOMEM));
		free(a);
		return;
	}
	s->attached++;
	in->st.shmat_migrated++;
	log_info("ipc intercept: pid %d: its attach of System V segment %d at %#llx followed its migration here", (int)a->tgid,
		 (int)a->id, (unsigned long long)a->addr);
	free(a);
	probe_start(in);
}

/* shmdt of an attach inherited at fork by tgid (recorded with pid 0 and
 * the mapping's address): which of those is tgid's is told by the
 * mapping that just left it (its range no longer registered). */
static struct ishm_att *take_forked(struct krg_intercept *in, uint64_t addr)
{
	struct ishm_att *a = ishm_att_take(&in->shm_att, 0, addr);
	if (!a || !in->shm_ops || !in->shm_ops->probe)
		return a;
	int r = in->shm_ops->probe(in->shm_ctx, a->seg, a->view);
	if (r != 0 && r != -ESRCH)
		return a;
	for (struct ishm_att *x = in->shm_att; x; x = x->next) {
		if (x->tgid || x->addr != addr || x->seg != a->seg)
			continue;
		r = in->shm_ops->probe(in->shm_ctx, x->seg, x->view);
		if (r != 0 && r != -ESRCH) {
			int v = x->view;
			x->view = a->view;
			a->view = v;
			break;
		}
	}
	return a;
}

/* shmdt of an attach krgd made: unmapped in the caller, which answers
 * its shmdt with 0 (the caller then ends the attach: att_end). */
static int shmdt_answer(struct krg_intercept *in, struct held *h)
{
	uint64_t at = 0;
	int r = in->map_hook ? in->map_hook(in->map_ctx, h->c.tgid, h->tid, -1, -1, h->c.out_addr, h->shm_size, 0, 0, &at,
					    NULL)
			     : -ENOSYS;
	if (r < 0)
		log_debug("ipc intercept: pid %d: shmdt of segment %d: %s", (int)h->c.tgid, (int)h->c.req.id,
			  strerror(-r));
	return r;
}

static void call_done(void *cookie, struct krg_ipc_reply *reply)
{
	struct held *h = cookie;
	struct krg_intercept *in = h->l ? h->l->in : NULL;
	if (h->done || !in) {
		krg_ipc_reply_release(reply);
		return;
	}
	if (!h->full_creds && (reply->ret == -EACCES || reply->ret == -EPERM)) {
		/* Refused with the cheap ids only (no groups, no capabilities):
		 * nothing happened; ask again with everything, from the loop
		 * (not from inside the backend's callback). */
		krg_ipc_reply_release(reply);
		h->retry = true;
		h->done = true;
		if (h->counted) {
			struct ucount *u = user(in, h->euid, false);
			if (u && u->n)
				u->n--;
			h->counted = false;
		}
		uv_idle_start(&in->retry, retry_cb);
		return;
	}
	h->done = true;
	if (h->c.req.op == KRG_IPC_OP_SHMAT && reply->ret >= 0) {
		shmat_answer(in, h, reply);
		krg_ipc_reply_release(reply);
		if (!h->in_submit)
			held_unlink(in, h);
		return;
	}
	if (h->c.req.op == KRG_IPC_OP_SHMCTL && h->c.req.cmd == 0 /* IPC_RMID */ && reply->out == KRG_IPC_OUT_SHM_STAT) {
		/* Removed with no attach anywhere: gone at once, and its
		 * pages on every node with it (with attaches, the last
		 * detach does it: shm_undo_done). */
		if (reply->ret == 0 && reply->shm.nattch == 0 && in->shm_ops && !in->stopping) {
			uint64_t seg = ishm_name(h->c.req.id, reply->shm.cpid);
			ishm_find(&in->shm, h->c.req.id, reply->shm.cpid, UINT64_MAX);
			in->shm_ops->destroyed(in->shm_ctx, seg);
		}
		reply->out = KRG_IPC_OUT_NONE;
	}
	long ret = icall_write_reply(h->tid, &h->c, reply);
	if (ret == -EFAULT && reply->ret >= 0)
		in->st.efault++;
	int s = isvc_send_resp(in, h->l->fd, h->id, ret);
	if (s < 0) {
		/* Interrupted just now (ENOENT): its syscall restarts or fails
		 * EINTR; what the call did must not stay done. */
		in->st.undelivered++;
		itcache_forget(&in->tc, h->tid);
		log_debug("ipc intercept: thread %d: answer not delivered (%s)", h->tid, strerror(-s));
		if (reply->ret >= 0)
			in->be->undeliverable(in->ctx, &h->c.who, &h->c.req, reply);
	}
	krg_ipc_reply_release(reply);
	if (!h->in_submit)
		held_unlink(in, h);
}

static void submit_held(struct krg_intercept *in, struct held *h);

/* Calls refused with the cheap credentials, asked again with all of them. */
static void retry_cb(uv_idle_t *t)
{
	struct krg_intercept *in = t->data;
	uv_idle_stop(t);
	while (in->shm_undo) {
		struct shm_undo *u = in->shm_undo;
		in->shm_undo = u->next;
		struct krg_ipc_req q = { .op = u->attach ? KRG_IPC_OP_SHMAT : KRG_IPC_OP_SHMDT, .id = u->id,
					 .flags = u->shmflg };
		struct dt_wait *w = malloc(sizeof(*w));
		int r = -ENOMEM;
		if (w) {
			*w = (struct dt_wait){ in, u->seg, u->attach, u->id, u->pend };
			u->pend = NULL;
			in->dt_pending++;
			r = in->be->submit(in->ctx, &u->who, &q, ++in->next_token, shm_undo_done, w);
			if (r < 0) {
				in->dt_pending--;
				u->pend = w->pend;
				free(w);
			}
		}
		if (r < 0)
			log_warn("ipc intercept: segment %d: cannot %s an attach: %s", u->id,
				 u->attach ? "count" : "uncount", strerror(-r));
		free(u->pend);
		free(u);
	}
	for (struct held *h = in->held, *next; h; h = next) {
		next = h->next;
		if (!h->retry || h->dropped_at)
			continue;
		h->retry = false;
		int r = h->l ? icall_creds(h->tid, &h->c) : -ESRCH;
		if (r == -ESRCH || !h->l || !isvc_id_valid(h->l->fd, h->id)) {
			held_unlink(in, h);
			continue;
		}
		if (r < 0) {
			isvc_send_resp(in, h->l->fd, h->id, r);
			held_unlink(in, h);
			continue;
		}
		h->full_creds = true;
		h->done = false;
		h->token = ++in->next_token;
		in->st.retried++;
		submit_held(in, h);
	}
}

/* The caller of h is gone from its syscall (signal, death). A parked
 * call is kept a while, cancelled, to recognise its restart (keep). */
static void held_drop(struct krg_intercept *in, struct held *h, bool keep)
{
	itcache_forget(&in->tc, h->tid);
	if (!h->dropped_at) {
		in->st.interrupted++;
		if (!h->done)
			in->be->cancel(in->ctx, h->token);
		h->done = true;
	}
	if (keep && h->probe.valid && !h->dropped_at) {
		h->dropped_at = uv_now(in->loop) | 1;
		return;
	}
	held_unlink(in, h);
}

/* Linux never restarts these after a signal handler (man 7 signal). */
static bool eintr_call(const struct icall *c)
{
	return c->req.op == KRG_IPC_OP_MSGRCV || c->req.op == KRG_IPC_OP_MSGSND || c->req.op == KRG_IPC_OP_SEMOP;
}

/* ---- processes followed for SEM_UNDO ---- */

static void proc_closed(uv_handle_t *h)
{
	struct tproc *t = h->data;
	struct krg_intercept *in = t->in;
	close(t->pidfd);
	free(t);
	handle_gone(in);
}

/* Process t ended: its SEM_UNDO is applied, it is forgotten. */
static void proc_exited(struct tproc *t)
{
	struct krg_intercept *in = t->in;
	for (struct tproc **q = &in->procs[(unsigned)t->tgid % NBUCKET]; *q; q = &(*q)->next)
		if (*q == t) {
			*q = t->next;
			break;
		}
	if (t->l)
		for (struct tproc **q = &t->l->procs; *q; q = &(*q)->lnext)
			if (*q == t) {
				*q = t->lnext;
				break;
			}
	/* A copy that migrated away has not exited: its SEM_UNDO waits for
	 * its real end, on whichever node that is. */
	if (t->undo && (!in->be->moved_on || !in->be->moved_on(in->ctx, t->tgid)))
		in->be->process_exit(in->ctx, t->proc_id, t->pid);
	/* Its exit detached its segments (whatever the kernel did with the
	 * mappings at an exec before). */
	for (struct ishm_att *a; (a = ishm_att_take_any(&in->shm_att, t->tgid));) {
		att_end(in, a);
		free(a);
	}
	uv_close((uv_handle_t *)&t->poll, proc_closed);
}

static void proc_exit_cb(uv_poll_t *p, int status, int events)
{
	struct tproc *t = p->data;
	/* libuv may report a readiness that is not (there): ask the pidfd. */
	struct pollfd pf = { .fd = t->pidfd, .events = POLLIN };
	if (status == 0 && (poll(&pf, 1, 0) != 1 || !(pf.revents & POLLIN)))
		return;
	proc_exited(t);
}

/* Before a call of tree l: the exits of its processes that the kernel
 * has made visible already (a parent's wait returned) go first, so that
 * the call sees their SEM_UNDO applied, as on Linux, whatever order
 * libuv hands us the events in. */
#define REAP_BATCH 64
static void reap_exited(struct lsn *l)
{
	while (l->procs) {
		struct pollfd pf[REAP_BATCH];
		struct tproc *tp[REAP_BATCH];
		size_t n = 0;
		for (struct tproc *t = l->procs; t && n < REAP_BATCH; t = t->lnext) {
			pf[n] = (struct pollfd){ .fd = t->pidfd, .events = POLLIN };
			tp[n++] = t;
		}
		if (poll(pf, n, 0) <= 0)
			return;
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			if (pf[i].revents & POLLIN) {
				proc_exited(tp[i]);
				done++;
			}
		/* A later batch only if this one was full and all gone. */
		if (n < REAP_BATCH || done < n)
			return;
	}
}

/* Follow process tgid (whose thread holds notification id on fd, so the
 * pid is still that process's when pidfd_open succeeds and the id is
 * still valid after it). */
static void proc_follow(struct krg_intercept *in, struct lsn *l, pid_t tgid, uint64_t proc_id, int32_t pid, uint64_t id,
			bool undo)
{
	struct tproc **b = &in->procs[(unsigned)tgid % NBUCKET];
	for (struct tproc *t = *b; t; t = t->next)
		if (t->tgid == tgid) {
			t->undo |= undo;
			return;
		}
	int pfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (pfd < 0) {
		log_warn("ipc intercept: process %d: pidfd_open: %s (its SEM_UNDO would not be applied)", tgid, strerror(errno));
		return;
	}
	if (!isvc_id_valid(l->fd, id)) {
		close(pfd);
		return;
	}
	struct tproc *t = calloc(1, sizeof(*t));
	if (!t || uv_poll_init(in->loop, &t->poll, pfd) < 0) {
		free(t);
		close(pfd);
		log_warn("ipc intercept: process %d: cannot follow it (its SEM_UNDO would not be applied)", tgid);
		return;
	}
	in->handles++;
	t->in = in;
	t->tgid = tgid;
	t->proc_id = proc_id;
	t->pid = pid;
	t->undo = undo;
	t->pidfd = pfd;
	t->poll.data = t;
	uv_poll_start(&t->poll, UV_READABLE, proc_exit_cb);
	t->next = *b;
	*b = t;
	t->l = l;
	t->lnext = l->procs;
	l->procs = t;
}

/* ---- receiving ---- */

static void lsn_close(struct lsn *l);
static void check_cb(uv_timer_t *t);

/* Let the call run in the kernel as if there were no filter. */
void isvc_send_continue(struct krg_intercept *in, int fd, uint64_t id)
{
	uint8_t buf[256] = { 0 };
	struct seccomp_notif_resp *r = (void *)buf;
	r->id = id;
	r->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	if (in->resp_size <= sizeof(buf) && ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, r) < 0 && errno != ENOENT)
		log_warn("ipc intercept: cannot let an exec go on: %s", strerror(errno));
}

/* An execve or execveat: not ours to serve. The hook notes it (before
 * the exec goes on, so it sees the process as it was), the kernel runs
 * it. */
static void serve_exec(struct lsn *l, const struct seccomp_notif *n)
{
	struct krg_intercept *in = l->in;
	pid_t tid = (pid_t)n->pid;
	in->st.execs++;
	bool stop = in->exec_hook && isvc_id_valid(l->fd, n->id) &&
		    in->exec_hook(in->exec_ctx, tid, n->data.nr == SYS_execve ? n->data.args[0] : 0);
	/* Answered first: the wait is over, so the stop cannot cut the
	 * exec short; it takes effect on its way back to user space,
	 * usually before the new program's first instruction (this
	 * thread can still lose the CPU in between). With the
	 * synchronous wake-up the caller would run at once on this CPU
	 * and krgd after it: on a busy node the whole exec, and the new
	 * program's start, could come before the kill (seen in
	 * test_intercept execs under load). That answer wakes the caller
	 * the usual way, and the kill follows within microseconds,
	 * during the exec. */
	uint64_t plain = 0, sync = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	bool unsync = stop && l->sync_wake && ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, plain) == 0;
	isvc_send_continue(in, l->fd, n->id);
	if (stop)
		kill(tid, SIGSTOP);
	if (unsync)
		(void)ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, sync);
}

/* The caller's credentials into h (decoded as r says): from the thread
 * cache when the tree sees krgd's pids and PIDFD_GET_INFO works, else
 * from /proc/TID/status (h->full_creds). r, or the lookup's -errno. */
static int held_creds(struct lsn *l, struct held *h, pid_t tid, int r)
{
	struct krg_intercept *in = l->in;
	if (r == 0 && in->fast_creds && l->own_pidns < 0) {
		/* Does this tree see krgd's pids? (a restart --new-pidns does not) */
		char path[64];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)tid);
		l->own_pidns = stat(path, &st) == 0 && (uint64_t)st.st_ino == in->pidns_ino;
	}
	if (r == 0 && in->fast_creds && l->own_pidns > 0) {
		r = itcache_creds_fast(&in->tc, tid, &h->c);
		if (r == -EOPNOTSUPP) {
			in->fast_creds = false;
			log_info("ipc intercept: no PIDFD_GET_INFO here: credentials from /proc/TID/status");
		}
	}
	if (r == 0 && !(in->fast_creds && l->own_pidns > 0))
		h->full_creds = true;
	if ((r == 0 && h->full_creds) || r == -EOPNOTSUPP) {
		h->full_creds = true;
		r = icall_creds(tid, &h->c);
	}
	return r;
}

/* A SHMDT: answered here, from the attaches krgd made (h freed, 1), or
 * -EINVAL: no segment attached at that address (as Linux). */
static int serve_shmdt(struct krg_intercept *in, struct held *h, pid_t tid)
{
	pid_t tgid = h->c.tgid;
	struct ishm_att *a = ishm_att_take(&in->shm_att, tgid, h->c.out_addr);
	const struct ishm_att *f = NULL;  /* or one inherited at a fork (pid unknown) */
	for (const struct ishm_att *x = a ? NULL : in->shm_att; x && !f; x = x->next)
		if (!x->tgid && x->addr == h->c.out_addr)
			f = x;
	if (!a && !f)
		return -EINVAL; /* Linux: no segment attached there */
	if (f) {
		h->c.req.id = f->id;
		h->shm_size = f->size;
		h->tid = tid;
		/* Left in the list if the unmapping fails (it restarts). */
		if (shmdt_answer(in, h) == 0 && (a = take_forked(in, h->c.out_addr))) {
			att_end(in, a);
			free(a);
		}
		icall_free(&h->c);
		free(h);
		return 1;
	}
	h->c.req.id = a->id;
	h->shm_size = a->size;
	h->tid = tid;
	if (shmdt_answer(in, h) == 0)
		att_end(in, a);
	else
		ishm_att_add(&in->shm_att, a); /* still mapped: its shmdt restarts */
	free(a);
	icall_free(&h->c);
	free(h);
	return 1;
}

static void serve(struct lsn *l, const struct seccomp_notif *n)
{
	struct krg_intercept *in = l->in;
	in->st.notifications++;
	pid_t tid = (pid_t)n->pid;
	/* A thread is in one syscall at a time: an older call of this thread
	 * was dropped by the kernel (a signal; the syscall restarted). */
	struct held *old = held_by_tid(in, tid);
	bool eintr = old && old->probe.valid && old->data.nr == n->data.nr &&
		     old->data.instruction_pointer == n->data.instruction_pointer &&
		     !memcmp(old->data.args, n->data.args, sizeof(n->data.args)) &&
		     irestart_after_handler(tid, &n->data, &old->probe);
	if (old)
		held_drop(in, old, false);
	if (eintr) {
		/* A handler ran and the kernel restarted the call (SA_RESTART):
		 * Linux would have returned EINTR. */
		in->st.eintr++;
		itcache_forget(&in->tc, tid);
		isvc_send_resp(in, l->fd, n->id, -EINTR);
		return;
	}
	if (n->data.arch != AUDIT_ARCH_X86_64) {
		isvc_send_resp(in, l->fd, n->id, -ENOSYS);
		return;
	}
	for (struct fwait **p = &in->fwaits; *p;) {
		struct fwait *w = *p;
		if (w->tid == tid) {  /* its wait was dropped (a signal) */
			*p = w->next;
			free(w);
		} else {
			p = &w->next;
		}
	}
	if (n->data.nr == SYS_futex) {
		isvc_futex_serve(l, n);
		return;
	}
	if (n->data.nr == SYS_getsockname || n->data.nr == SYS_getpeername || n->data.nr == SYS_getsockopt) {
		isvc_sock_serve(l, n);
		return;
	}
	if (n->data.nr == SYS_execve || n->data.nr == SYS_execveat) {
		serve_exec(l, n);
		return;
	}
	if (l->procs)
		reap_exited(l);
	struct held *h = calloc(1, sizeof(*h));
	if (!h) {
		isvc_send_resp(in, l->fd, n->id, -ENOMEM);
		return;
	}
	int r = icall_decode(n, &in->limits, &h->c);
	r = held_creds(l, h, tid, r);
	/* What we read belongs to the caller only if it still waits: the
	 * thread could have died and its pid been reused meanwhile. */
	if (!isvc_id_valid(l->fd, n->id) || r == -ESRCH) {
		icall_free(&h->c);
		free(h);
		return;
	}
	pid_t tgid = h->c.tgid;
	if (r == 0 && h->c.req.op == KRG_IPC_OP_SHMDT && (r = serve_shmdt(in, h, tid)) == 1)
		return;
	if (r < 0) {
		if (r != -ESRCH)
			isvc_send_resp(in, l->fd, n->id, r);
		icall_free(&h->c);
		free(h);
		return;
	}
	h->c.who.proc_id = in->be->proc_id(in->ctx, tgid);
	h->l = l;
	h->id = n->id;
	h->tid = tid;
	h->token = ++in->next_token;
	h->euid = h->c.who.cred.euid;
	in->st.held++;
	h->next = in->held;
	if (in->held)
		in->held->prev = h;
	in->held = h;
	struct held **bk = bucket_of(in, tid);
	h->hnext = *bk;
	*bk = h;
	/* SEM_UNDO now, or records it may hold from before (a restart
	 * brings a set back with its undo records, docs/ipc.md): every
	 * process that uses semaphores is followed to its exit. */
	if (h->c.sem_undo || h->c.req.op == KRG_IPC_OP_SEMOP || h->c.req.op == KRG_IPC_OP_SEMCTL)
		proc_follow(in, l, tgid, h->c.who.proc_id, h->c.who.pid, n->id, true);
	h->data = n->data;
	submit_held(in, h);
}

/* Hand h to the backend; answered at once, waiting, or refused. */
static void submit_held(struct krg_intercept *in, struct held *h)
{
	struct lsn *l = h->l;
	h->in_submit = true;
	int r = in->be->submit(in->ctx, &h->c.who, &h->c.req, h->token, call_done, h);
	h->in_submit = false;
	if (r < 0) {
		isvc_send_resp(in, l->fd, h->id, r);
		held_unlink(in, h);
	} else if (h->retry) {
		/* refused with the cheap ids: retry_cb asks again */
	} else if (h->done) {
		held_unlink(in, h);
	} else {
		/* It waits: one more call this user holds in krgd. */
		struct ucount *u = user(in, h->euid, true);
		if (!u || u->n >= in->max_pending) {
			in->st.refused++;
			log_warn("ipc intercept: uid %u has %u calls waiting (limit %u): ENOMEM", h->euid, u ? u->n : 0,
				 in->max_pending);
			in->be->cancel(in->ctx, h->token);
			isvc_send_resp(in, l->fd, h->id, -ENOMEM);
			held_unlink(in, h);
			return;
		}
		u->n++;
		h->counted = true;
		/* The check timer runs only while calls wait. */
		if (!uv_is_active((uv_handle_t *)&in->check))
			uv_timer_start(&in->check, check_cb, in->check_ms, in->check_ms);
		if (eintr_call(&h->c) && !h->probe.valid)
			itcache_probe(&in->tc, h->tid, &h->data, &h->probe);
	}
}

static void lsn_cb(uv_poll_t *p, int status, int events)
{
	struct lsn *l = p->data;
	struct krg_intercept *in = l->in;
	/* libuv reports a hang-up as readable: ask the fd itself. A RECV with
	 * no notification queued would block the whole daemon. */
	struct pollfd pf = { .fd = l->fd, .events = POLLIN };
	if (status < 0 || poll(&pf, 1, 0) < 0 || (pf.revents & (POLLERR | POLLNVAL))) {
		lsn_close(l);
		return;
	}
	if (!(pf.revents & POLLIN)) {
		if (pf.revents & POLLHUP)
			lsn_close(l);  /* every process of the tree has ended */
		return;
	}
	uint8_t buf[512] __attribute__((aligned(8)));
	if (in->notif_size > sizeof(buf)) {
		lsn_close(l);
		return;
	}
	memset(buf, 0, in->notif_size);
	struct seccomp_notif *n = (void *)buf;
	if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_RECV, n) < 0) {
		/* ENOENT: the caller was interrupted before we got to it. */
		if (errno != ENOENT && errno != EINTR) {
			log_warn("ipc intercept: listener %d: %s", l->fd, strerror(errno));
			lsn_close(l);
		}
		return;
	}
	serve(l, n);
}

static void lsn_close(struct lsn *l)
{
	if (l->closing)
		return;
	struct krg_intercept *in = l->in;
	l->closing = true;
	/* Its callers are gone (or see ENOSYS from now on). */
	for (struct held *h = in->held, *next; h; h = next) {
		next = h->next;
		if (h->l == l && !h->in_submit)
			held_drop(in, h, false);
		else if (h->l == l)
			h->l = NULL;
	}
	for (struct fwait *w = in->fwaits; w; w = w->next)
		if (w->l == l)
			w->l = NULL;  /* dropped at the next tick */
	/* Its processes are followed on to their exits (pidfds). */
	for (struct tproc *t = l->procs; t; t = t->lnext)
		t->l = NULL;
	l->procs = NULL;
	if (l->prev)
		l->prev->next = l->next;
	else
		in->lsns = l->next;
	if (l->next)
		l->next->prev = l->prev;
	in->st.listeners--;
	/* The fd is closed once libuv has let go of it (lsn_closed): closed
	 * earlier, its number could be reused while libuv still has events
	 * for it. */
	uv_close((uv_handle_t *)&l->poll, lsn_closed);
}

int krg_intercept_adopt(struct krg_intercept *in, int fd)
{
	if (in->stopping) {
		close(fd);
		return -ESHUTDOWN;
	}
	struct lsn *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	int r = uv_poll_init(in->loop, &l->poll, fd);
	if (r < 0) {
		close(fd);
		free(l);
		return r;
	}
	in->handles++;
	l->in = in;
	l->fd = fd;
	l->own_pidns = -1;
	/* Best effort: older kernels answer EINVAL and wake it the usual way. */
	uint64_t sync = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, sync) < 0)
		log_debug("ipc intercept: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s", strerror(errno));
	else
		l->sync_wake = true;
	l->poll.data = l;
	l->next = in->lsns;
	if (in->lsns)
		in->lsns->prev = l;
	in->lsns = l;
	in->st.listeners++;
	uv_poll_start(&l->poll, UV_READABLE, lsn_cb);
	return 0;
}

/* ---- channels from krgd's children ---- */

static void chan_close(struct chan *c)
{
	struct krg_intercept *in = c->in;
	if (c->prev)
		c->prev->next = c->next;
	else
		in->chans = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->poll, chan_closed);
}

static void chan_cb(uv_poll_t *p, int status, int events)
{
	struct chan *c = p->data;
	(void)events;
	for (;;) {
		int fd;
		char tag;
		struct krg_intercept_dsm_msg m;
		size_t len;
		int r = status < 0 ? status : krg_intercept_recv_msg(c->fd, false, &tag, &m, sizeof(m), &len, &fd);
		if (r == -EAGAIN)
			return;
		if (r < 0 || !tag) {
			if (r < 0)
				log_warn("ipc intercept: listener channel: %s", strerror(-r));
			chan_close(c);
			return;
		}
		if (tag == 'L' && fd >= 0 && !len) {
			if ((r = krg_intercept_adopt(c->in, fd)) < 0)
				log_warn("ipc intercept: cannot serve a new application: %s", strerror(-r));
		} else if (tag == 'S' && fd < 0 && len == sizeof(m)) {
			dsm_chan_segment(c->in, c->fd, &m);
		} else if (tag == 'D' && fd >= 0 && len == sizeof(m)) {
			dsm_migrant_attach(c->in, &m, fd);
		} else {
			if (fd >= 0)
				close(fd);
			log_warn("ipc intercept: listener channel: a malformed message (tag %#x, %zu bytes)", (unsigned)(uint8_t)tag,
				 len);
			chan_close(c);
			return;
		}
	}
}

int krg_intercept_channel(struct krg_intercept *in, int *child_end)
{
	int sv[2];
	if (in->stopping)
		return -ESHUTDOWN;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	struct chan *c = calloc(1, sizeof(*c));
	int r = c ? uv_poll_init(in->loop, &c->poll, sv[0]) : -ENOMEM;
	if (r < 0) {
		free(c);
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	in->handles++;
	c->in = in;
	c->fd = sv[0];
	c->poll.data = c;
	c->next = in->chans;
	if (in->chans)
		in->chans->prev = c;
	in->chans = c;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, chan_cb);
	*child_end = sv[1];
	return 0;
}

/* ---- the check timer ---- */

static void check_cb(uv_timer_t *t)
{
	struct krg_intercept *in = t->data;
	uint64_t now = uv_now(in->loop);
	for (struct held *h = in->held, *next; h; h = next) {
		next = h->next;
		if (h->dropped_at) {
			if (now - h->dropped_at > DROPPED_KEEP_MS || !h->l)
				held_unlink(in, h);
		} else if (!h->done && !h->in_submit && (!h->l || !isvc_id_valid(h->l->fd, h->id))) {
			held_drop(in, h, true);
		}
	}
	if (!in->held)
		uv_timer_stop(&in->check);
}

int krg_intercept_start(uv_loop_t *loop, const struct krg_intercept_backend *backend, void *ctx,
			const struct krg_intercept_opts *opts, struct krg_intercept **out)
{
	if (!backend || backend->version < KRG_INTERCEPT_BACKEND_V1 || !backend->submit || !backend->cancel ||
	    !backend->undeliverable || !backend->process_exit || !backend->proc_id)
		return -EINVAL;
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return -errno;
	struct krg_intercept *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	itcache_init(&in->tc);
	in->uffd_dev = -2;
	in->loop = loop;
	in->be = backend;
	in->ctx = ctx;
	in->max_pending = opts && opts->max_pending_per_user ? opts->max_pending_per_user : DEFAULT_MAX_PENDING;
	in->check_ms = opts && opts->check_ms ? opts->check_ms : DEFAULT_CHECK_MS;
	in->notif_size = sz.seccomp_notif > sizeof(struct seccomp_notif) ? sz.seccomp_notif : sizeof(struct seccomp_notif);
	in->resp_size = sz.seccomp_notif_resp;
	struct stat ns;
	in->fast_creds = stat("/proc/self/ns/pid", &ns) == 0;
	in->pidns_ino = in->fast_creds ? (uint64_t)ns.st_ino : 0;
	uv_idle_init(loop, &in->retry);
	in->retry.data = in;
	in->handles++;
	krg_ipc_limits_default(&in->limits);
	int lr = krg_ipc_limits_read(&in->limits, "/proc/sys/kernel");
	if (lr < 0)
		log_warn("ipc intercept: /proc/sys/kernel IPC limits: %s (Linux's defaults used)", strerror(-lr));
	uv_timer_init(loop, &in->check);
	uv_timer_init(loop, &in->ftimer);
	uv_timer_init(loop, &in->ptimer);
	in->check.data = in;
	in->ftimer.data = in;
	in->ptimer.data = in;
	in->handles += 3;
	*out = in;
	return 0;
}

void krg_intercept_set_limits(struct krg_intercept *in, const struct krg_ipc_limits *l)
{
	in->limits = *l;
}

void krg_intercept_set_exec_hook(struct krg_intercept *in, bool (*fn)(void *ctx, pid_t tid, uint64_t path), void *ctx)
{
	in->exec_hook = fn;
	in->exec_ctx = ctx;
}

void krg_intercept_set_shm_ops(struct krg_intercept *in, const struct krg_intercept_shm_ops *ops, void *ctx)
{
	in->shm_ops = ops;
	in->shm_ctx = ctx;
}

void krg_intercept_set_map_hook(struct krg_intercept *in, krg_intercept_map_fn fn, void *ctx)
{
	in->map_hook = fn;
	in->map_ctx = ctx;
}

void krg_intercept_set_sock_hook(struct krg_intercept *in, krg_intercept_sock_fn fn, void *ctx)
{
	in->sock_hook = fn;
	in->sock_ctx = ctx;
}

void krg_intercept_get_stats(const struct krg_intercept *in, struct krg_intercept_stats *st)
{
	*st = in->st;
	st->probes_taken = in->tc.misses;
	st->probes_reused = in->tc.hits;
}

void krg_intercept_stop(struct krg_intercept *in)
{
	if (!in || in->stopping)
		return;
	while (in->lsns)
		lsn_close(in->lsns);
	while (in->chans)
		chan_close(in->chans);
	for (size_t i = 0; i < NBUCKET; i++)
		while (in->procs[i]) {
			struct tproc *t = in->procs[i];
			in->procs[i] = t->next;
			uv_close((uv_handle_t *)&t->poll, proc_closed);
		}
	in->stopping = true;
	itcache_clear(&in->tc);
	uv_close((uv_handle_t *)&in->retry, handle_closed);
	uv_close((uv_handle_t *)&in->check, handle_closed);
	uv_close((uv_handle_t *)&in->ftimer, handle_closed);
	uv_close((uv_handle_t *)&in->ptimer, handle_closed);
	while (in->fwaits) {
		struct fwait *w = in->fwaits;
		in->fwaits = w->next;
		free(w);
	}
}
