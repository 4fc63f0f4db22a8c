/* mig_target.c — a part of krgd's migration service (migsvc-int.h). */
#include <netinet/in.h>
#include "proc/migrate/migsvc-int.h"

/* ---- holders (host) ---- */

/* Copies that left this node for another (their migration committed),
 * remembered a while after their holder is gone: the IPC service must not
 * take the end of such a copy for the process's exit (krg_mig_moved_on). */
#define DEPARTED_MAX 64
#define DEPARTED_MS 10000
static struct {
	pid_t pid;
	uint64_t at;
} departed[DEPARTED_MAX];
static unsigned departed_next;

bool krg_mig_moved_on(pid_t pid)
{
	struct krg_migsvc *m = &the_mig;
	if (!m->running || pid <= 0)
		return false;
	for (struct hold *h = m->holds; h; h = h->next)
		if (h->pid == pid && h->moved_on)
			return true;
	uint64_t now = uv_now(m->s->loop);
	for (unsigned i = 0; i < DEPARTED_MAX; i++)
		if (departed[i].pid == pid && now - departed[i].at < DEPARTED_MS) {
			departed[i].pid = 0; /* one end per departure: a reused pid is not caught */
			return true;
		}
	return false;
}

void mig_hold_free(struct hold *h)
{
	if (h->moved_on && h->pid > 0) {
		departed[departed_next].pid = h->pid;
		departed[departed_next].at = uv_now(the_mig.s->loop);
		departed_next = (departed_next + 1) % DEPARTED_MAX;
	}
	for (struct hold **p = &the_mig.holds; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	if (h->c) {
		h->c->owner = NULL;
		mig_conn_close(h->c);
	}
	if (h->mv)
		h->mv->h = NULL; /* its move may outlive it (the migrant ended meanwhile) */
	mig_orphan_close(h);
	free(h);
}

/* ---- target: receive the image, start the holder ---- */

void mig_rx_closed(struct krg_xfer_rx *b)
{
	struct rx *x = (struct rx *)b;
	if (x->recv)
		krg__mig__recv__free_unpacked(x->recv, NULL);
	free(x);
}

void mig_rx_free(struct rx *x, bool rm)
{
	if (rm)
		mig_rm_rf(x->dir);
	krg_xfer_rx_drop(&x->x);
}

static void rx_fail(struct rx *x, const char *text)
{
	x->x.failed = true;
	log_warn("migrate: receiving from node %u: %s", x->x.from, text);
	if (x->x.has_req) {
		struct krg_origin o = { .from = x->x.from, .req_id = x->x.req_id };
		mig_answer(o, -EIO, text, the_mig.self, 0, x->recv ? x->recv->id : 0);
		x->x.has_req = false;
		mig_rx_free(x, true);
	}
}

void mig_rx_idle(struct krg_xfer_rx *b)
{
	struct rx *x = (struct rx *)b;
	bool answered_here = x->x.has_req; /* rx_fail answers and frees it then */
	if (!x->x.failed)
		rx_fail(x, "the transfer stalled");
	else if (answered_here)
		rx_fail(x, "the transfer failed");
	if (!answered_here)
		mig_rx_free(x, true);
}

/* What the holder needs from the request: the proxied fds (tty size,
 * socket types, bytes read) and the children left at home (ghosts). */
static void hold_fill(struct mig_hold *hd, const Krg__Mig__Recv *q)
{
	for (size_t i = 0; i < q->n_proxies && hd->n < MIG_MAX_PROXIES; i++) {
		const Krg__Mig__Proxy *x = q->proxies[i];
		hd->num[hd->n] = (int)x->fd;
		hd->tty[hd->n] = x->has_tty && x->tty;
		if (hd->tty[hd->n] && x->has_rows && x->has_cols && x->rows < 65536 && x->cols < 65536)
			hd->rows = x->rows, hd->cols = x->cols;
		hd->stype[hd->n] = x->has_sock_type && (x->sock_type == SOCK_STREAM || x->sock_type == SOCK_DGRAM ||
							x->sock_type == SOCK_SEQPACKET) ? (int)x->sock_type : 0;
		struct mig_peer *pe = &hd->peer[hd->n];
		pe->known = x->has_peer_pid && x->has_peer_uid && x->has_peer_gid && x->peer_pid <= INT32_MAX;
		pe->pid = (pid_t)x->peer_pid, pe->uid = x->peer_uid, pe->gid = x->peer_gid;
		/* Groups not known (ENODATA: not a unix peer): none. */
		pe->ngroups = x->has_peer_groups_known && x->peer_groups_known ? x->n_peer_groups : 0;
		if (pe->ngroups > MIG_PEER_GROUPS)
			pe->ngroups = MIG_PEER_GROUPS;
		for (size_t g = 0; g < pe->ngroups; g++)
			pe->groups[g] = x->peer_groups[g];
		hd->reads[hd->n++] = x->reads;
	}
	for (size_t i = 0; i < q->n_kids && hd->nkids < MIG_MAX_KIDS; i++) {
		const Krg__Mig__Kid *k = q->kids[i];
		if (!k->pid || !k->as || k->pid > INT32_MAX || k->as > INT32_MAX)
			continue;
		size_t j = hd->nkids++;
		hd->kid_home[j] = (pid_t)k->pid;
		hd->kid_as[j] = (pid_t)k->as;
		if ((hd->kid_ids[j] = k->has_uid && k->has_suid && k->has_gid))
			hd->kid_uid[j] = k->uid, hd->kid_suid[j] = k->suid, hd->kid_gid[j] = k->gid;
		hd->kid_stop[j] = k->has_stop_signal && k->stop_signal >= 1 && k->stop_signal <= 64 ? (int)k->stop_signal : 0;
		snprintf(hd->kid_comm[j], sizeof(hd->kid_comm[0]), "%s", k->comm ? k->comm : "");
	}
}

/* The parent pid `want` is a sibling migrant's holder here: it makes the
 * shell this migrant is restored into, as its child (adopt.c), through
 * hd->adopt_fd. That holder, or NULL (then any pid will do). Not with
 * ghosts to make, nor back home. */
static struct hold *adopter_for(struct krg_migsvc *m, pid_t want, struct mig_hold *hd)
{
	struct hold *adopter = NULL;
	for (struct hold *o2 = m->holds; o2 && !adopter; o2 = o2->next)
		if (o2->wpid == want && o2->c && !o2->leaving && !o2->exited && !o2->inplace)
			adopter = o2;
	int av[2];
	if (!adopter || hd->nkids || hd->into || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, av) < 0)
		return NULL;
	mig_conn_flush(adopter->c);
	if (mig_send_fd(adopter->c->fd, MF_SHELL, av[0]) == 0) {
		hd->adopt_fd = av[1];
	} else {
		close(av[1]);
		adopter = NULL;
	}
	close(av[0]);
	return adopter;
}

static void rx_try_start(struct rx *x)
{
	struct krg_migsvc *m = &the_mig;
	if (x->x.failed || !x->x.ended || !x->x.has_req)
		return;
	const Krg__Mig__Recv *q = x->recv;
	struct krg_origin o = { .from = x->x.from, .req_id = x->x.req_id };
	x->x.has_req = false;
	if (mig_hold_by_id(q->id)) {
		mig_answer(o, -EEXIST, "the process runs here already", m->self, 0, q->id);
		mig_rx_free(x, true);
		return;
	}
	struct mig_hold hd = { .id = q->id, .uid = q->uid, .gid = q->gid };
	snprintf(hd.dir, sizeof(hd.dir), "%s", x->dir);
	hold_fill(&hd, q);
	snprintf(hd.ghost, sizeof(hd.ghost), "%s", m->ghost);
	int sv[2];
	struct hold *h = calloc(1, sizeof(*h));
	if (!h || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(h);
		mig_answer(o, -ENOMEM, "cannot start the holder", m->self, 0, q->id);
		mig_rx_free(x, true);
		return;
	}
	/* A migrant with krg's IPC filter gets it back here, its listener
	 * ours (docs/ipc.md). */
	/* Restored in the file view of the node whose files it saw. */
	hd.fsns = krg_fsview_ns(m->s->fsview, q->has_view_home ? q->view_home : krg_procid_home(q->id), q->uid, q->gid);
	if (hd.fsns < 0 && hd.fsns != -ENOENT) {
		char why[160];
		snprintf(why, sizeof(why), "cannot show node %u's files on node %u: %s",
			 q->has_view_home ? q->view_home : krg_procid_home(q->id), m->self, strerror(-hd.fsns));
		close(sv[0]);
		close(sv[1]);
		free(h);
		mig_answer(o, -EIO, why, m->self, 0, q->id);
		mig_rx_free(x, true);
		return;
	}
	hd.isock = -1;
	if (m->s->intercept && krg_intercept_channel(m->s->intercept, &hd.isock) < 0)
		hd.isock = -1;
	/* Back home: restored into its deputy, which is the original process
	 * (inplace.c); the deputy stops reading its real fds from now on, so
	 * that their input stays there for the process. KRG_FAULT=mig-beside
	 * in krgd's environment: beside it, as on any node (for comparison). */
	struct dep *dp = mig_dep_by_id(q->id);
	if (dp && dp->c && !dp->handing && krg_procid_home(q->id) == m->self && dp->node != m->self && !krg_fault_on("mig-beside")) {
		hd.into = dp->pid;
		mig_dep_to(dp, MF_PAUSE, 0, 0, NULL, 0);
	}
	pid_t krgd = getpid();
	/* The holder is the migrant's parent: with its parent's pid at home,
	 * the migrant's getppid() is unchanged. Free unless that parent runs
	 * here (back home) or another holder has it (a sibling migrant): then
	 * any pid. */
	pid_t want = q->has_ppid && q->ppid > 1 && q->ppid <= INT32_MAX ? (pid_t)q->ppid : 0;
	char ppath[32];
	snprintf(ppath, sizeof(ppath), "/proc/%d", (int)want);
	/* A sibling's holder has that pid: it makes the shell the migrant is
	 * restored into, its child (adopt.c). Not with ghosts to make (they
	 * are the restored root's children, made by its own restore). */
	hd.adopt_fd = -1;
	struct hold *adopter = NULL;
	if (want && access(ppath, F_OK) == 0) {
		adopter = adopter_for(m, want, &hd);
		want = 0;
	}
	pid_t pid = want ? krg_pidrange_fork_as(want) : fork();
	if (pid == 0) {
		close(sv[0]);
		/* Dies with krgd, and its migrant with it (holder.c): a socket's
		 * end-of-file would come only once every process that inherited
		 * our end closed it. Checked after: krgd may be gone already. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != krgd)
			_exit(1);
		if (hd.fsns >= 0 && krg_fsview_enter(hd.fsns) < 0)
			_exit(1);
		mig_holder_main(sv[1], &hd);
	}
	close(sv[1]);
	if (hd.adopt_fd >= 0)
		close(hd.adopt_fd);
	if (hd.fsns >= 0)
		close(hd.fsns);
	if (hd.isock >= 0)
		close(hd.isock);
	if (pid < 0) {
		if (hd.into)
			mig_dep_to(dp, MF_RESUME, 0, 0, NULL, 0);
		close(sv[0]);
		free(h);
		mig_answer(o, -EAGAIN, "cannot fork the holder", m->self, 0, q->id);
		mig_rx_free(x, true);
		return;
	}
	h->id = q->id;
	h->home = krg_procid_home(q->id);
	h->wpid = pid;
	h->ppid = q->has_ppid && q->ppid <= INT32_MAX ? (pid_t)q->ppid : 0;
	if (want && pid != want)
		log_info("migrate: pid %d is taken here: %u's getppid() will be %d", (int)want, q->id, (int)pid);
	if (adopter)
		log_info("migrate: %u's parent pid %d is a sibling's holder here: restored as its child", q->id, (int)h->ppid);
	h->o = o;
	h->has_req = true;
	h->inplace = hd.into != 0;
	h->notify_fd = q->has_notify_fd ? q->notify_fd : 0;
	h->np = hd.n;
	memcpy(h->num, hd.num, sizeof(h->num));
	memcpy(h->reads, hd.reads, sizeof(h->reads));
	memcpy(h->tty, hd.tty, sizeof(h->tty));
	memcpy(h->stype, hd.stype, sizeof(h->stype));
	/* Its sockets' answers at home (by the same index as hd's). */
	for (size_t i = 0, j = 0; i < q->n_proxies && j < hd.n; i++)
		if ((int)q->proxies[i]->fd == hd.num[j])
			mig_sa_from_proxy(&h->sa[j++], q->proxies[i]);
	h->nkids = hd.nkids;
	for (size_t i = 0; i < hd.nkids; i++) {
		h->kids[i] = (struct kid){ .home = hd.kid_home[i], .as = hd.kid_as[i], .has_ids = hd.kid_ids[i],
					   .uid = hd.kid_uid[i], .suid = hd.kid_suid[i], .gid = hd.kid_gid[i] };
		snprintf(h->kids[i].comm, sizeof(h->kids[i].comm), "%s", hd.kid_comm[i]);
	}
	h->c = mig_conn_new(sv[0], CK_HOLDER, h);
	h->next = m->holds;
	m->holds = h;
	log_info("migrate: received %u (%llu bytes) from node %u, restoring", q->id, (unsigned long long)x->x.total,
		 x->x.from);
	mig_rx_free(x, false); /* the holder removes the image once restored */
}

static struct rx *rx_get(uint32_t from, uint64_t xfer)
{
	struct krg_migsvc *m = &the_mig;
	struct krg_xfer_rx *b = krg_xfer_rx_find(&m->rxs, from, xfer);
	if (b)
		return (struct rx *)b;
	struct rx *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	krg_xfer_rx_add(&m->rxs, &x->x, from, xfer);
	mkdir("/run/krg", 0755);
	mkdir(IMG_IN, 0700);
	snprintf(x->dir, sizeof(x->dir), "%s/%u-%llu", IMG_IN, from, (unsigned long long)xfer);
	if (xfer >> 32 != from || (mkdir(x->dir, 0700) < 0 && errno != EEXIST))
		x->x.failed = true;
	return x;
}

void mig_on_file(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!the_mig.running)
		return;
	struct mig_file_view fv, *f = &fv;
	if (mig_file_decode(msg->body, msg->len, f) < 0) {
		log_warn("migrate: malformed mig.file from node %u, dropped", from);
		return;
	}
	struct rx *x = rx_get(from, f->xfer);
	if (x && f->abort) {
		log_info("migrate: transfer %llx from node %u dropped by the source", (unsigned long long)f->xfer, from);
		if (x->x.has_req)
			rx_fail(x, "aborted by the source");
		else
			mig_rx_free(x, true);
		return;
	}
	if (!x || x->x.failed || x->x.ended)
		return;
	krg_xfer_rx_touch(&x->x);
	int r = krg_xfer_rx_write(&x->x, x->dir, f->name, f->offset, f->data, f->len, f->last, (uid_t)-1, (gid_t)-1,
				  XFER_MAX);
	if (r == -EINVAL || r == -EFBIG) {
		rx_fail(x, "refused image piece");
		return;
	}
	if (r < 0) {
		rx_fail(x, "cannot write the image (out of memory in /run?)");
		return;
	}
	if (!x->x.has_req) {  /* pre-copied pages: say they are in */
		Krg__Mig__Got g = KRG__MIG__GOT__INIT;
		g.xfer = f->xfer;
		g.bytes = x->x.total;
		uint8_t gb[32];
		size_t gl = krg__mig__got__pack(&g, gb);
		krg_net_send(net, from, "mig.got", gb, gl);
	}
	if (f->end) {
		x->x.ended = true;
		rx_try_start(x);
	}
}

void mig_on_got(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	Krg__Mig__Got *g = krg__mig__got__unpack(NULL, msg->len, msg->body);
	if (!g) {
		log_warn("migrate: malformed mig.got from node %u, dropped", from);
		return;
	}
	for (struct move *v = the_mig.moves; v; v = v->next)
		if (v->xfer == g->xfer && v->to == from && g->bytes > v->got) {
			v->got = g->bytes;
			mig_pre_check(v);
		}
	krg__mig__got__free_unpacked(g, NULL);
}

void mig_on_recv(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!krg_net_request_open(net, from, req_id, !the_mig.running))
		return;
	Krg__Mig__Recv *q = krg__mig__recv__unpack(NULL, msg->len, msg->body);
	if (!q || !mig_recv_valid(q)) {
		if (q)
			krg__mig__recv__free_unpacked(q, NULL);
		return krg_net_refuse_malformed(net, from, req_id, "mig.recv");
	}
	struct rx *x = rx_get(from, q->xfer);
	if (!x) {
		krg__mig__recv__free_unpacked(q, NULL);
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		return;
	}
	if (x->recv)
		krg__mig__recv__free_unpacked(x->recv, NULL);
	x->recv = q;
	x->x.has_req = true;
	x->x.req_id = req_id;
	if (x->x.failed)
		rx_fail(x, "cannot receive the image");
	else
		rx_try_start(x);
}
