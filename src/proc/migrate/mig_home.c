/* mig_home.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- deputies (home) ---- */

void mig_dep_to(struct dep *d, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	if (d->c && !d->handing) {
		mig_conn_send(d->c, type, fd, arg, data, len);
		return;
	}
	struct cq *q = mig_frame(type, fd, arg, data, len);
	if (!q)
		return;
	if (d->pt)
		d->pt->next = q;
	else
		d->ph = q;
	d->pt = q;
}

void mig_dep_flush_pending(struct dep *d)
{
	struct conn *c = d->c;
	if (!c || d->handing)
		return;
	while (d->ph) {
		struct cq *q = d->ph;
		d->ph = q->next;
		q->next = NULL;
		if (c->qt)
			c->qt->next = q;
		else
			c->qh = q;
		c->qt = q;
	}
	d->pt = NULL;
	mig_conn_flush(c);
}

static void dep_release(struct dep *d)
{
	while (d->bh) {
		struct backq *b = d->bh;
		d->bh = b->next;
		free(b);
	}
	while (d->ph) {
		struct cq *q = d->ph;
		d->ph = q->next;
		free(q);
	}
	if (d->pidfd >= 0)
		close(d->pidfd);
	free(d->ended);
	free(d);
}

static void pp_closed(uv_handle_t *h)
{
	dep_release(h->data);
}

void mig_dep_free(struct dep *d)
{
	for (struct dep **p = &the_mig.deps; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	if (d->c) {
		d->c->owner = NULL;
		mig_conn_close(d->c);
	}
	if (d->pp_on) {
		uv_poll_stop(&d->pp);
		uv_close((uv_handle_t *)&d->pp, pp_closed);
	} else {
		/* No poll handle was ever started: its data is not set. */
		dep_release(d);
	}
}

/* The deputy died: on purpose (it got the exit status), or killed. */
void mig_dep_died(uv_poll_t *h, int status, int events)
{
	struct dep *d = h->data;
	if (!d->exit_sent) {
		log_info("migrate: deputy of %u (pid %d) died: killing the migrant on node %u", d->id, (int)d->pid,
			 d->node);
		mig_send_simple(d->node, "mig.sig", d->id, SIGKILL, false, 0, UINT32_MAX);
	}
	mig_dep_free(d);
}

void mig_dep_exit(struct dep *d, int status)
{
	d->exit_sent = true;
	mig_dep_to(d, MF_EXIT, 0, status, NULL, 0);
}

static void kid_status_to(uint32_t node, uint32_t id, pid_t pid, int status)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	io.has_child = true;
	io.child = (uint32_t)pid;
	io.has_status = true;
	io.status = status;
	mig_send_io(node, "mig.sig", &io, false);
}

/* Every ended child's status to the node it runs on now (sent after
 * mig.go: a node it only passed through may have dropped them). The
 * holder there gives each to the ghost still waiting for it, if any. */
void mig_dep_send_ended(struct dep *d)
{
	for (size_t i = 0; i < d->nended; i++)
		kid_status_to(d->node, d->id, d->ended[i].pid, d->ended[i].status);
}

/* The deputy reaped child `pid`: recorded, and its ghost told. */
void mig_dep_kid_ended(struct dep *d, pid_t pid, int status)
{
	void *n = realloc(d->ended, (d->nended + 1) * sizeof(*d->ended));
	if (!n)
		return;
	d->ended = n;
	d->ended[d->nended].pid = pid;
	d->ended[d->nended++].status = status;
	kid_status_to(d->node, d->id, pid, status);
}

/* ---- deputy socket ---- */

static void hello_late(uv_timer_t *t)
{
	struct conn *c = t->data;
	log_warn("migrate: a deputy connection sent no hello in %d ms, closed", MIG_HELLO_MS);
	mig_conn_close(c);
}

/* Anyone may connect (deputies run as their users), so a connection is
 * kept only if the kernel says it comes from a deputy we wait for (its
 * pid, SO_PEERCRED at connect time), and only until its hello is due; the
 * hello's token then proves it is that deputy. Idle connections of other
 * users can no longer take the slots a deputy needs. */
void mig_on_accept(uv_poll_t *h, int status, int events)
{
	struct krg_migsvc *m = &the_mig;
	for (;;) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cr = { 0 };
		socklen_t sl = sizeof(cr);
		struct dep *d = NULL;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) == 0)
			for (d = m->deps; d && (d->pid != cr.pid || d->c); d = d->next)
				;
		if (!d) {
			log_info("migrate: refused a connection to %s from pid %d uid %u: not a deputy krgd waits for",
				 m->sock_path, (int)cr.pid, (unsigned)cr.uid);
			close(fd);
			continue;
		}
		struct conn *c = NULL;
		uv_timer_t *t = m->npending < 256 ? malloc(sizeof(*t)) : NULL;
		if (!t || !(c = mig_conn_new(fd, CK_PENDING, NULL))) {
			free(t);
			close(fd);
			continue;
		}
		uv_timer_init(m->s->loop, t);
		t->data = c;
		c->hello_deadline = t;
		uv_timer_start(t, hello_late, MIG_HELLO_MS, 0);
		m->npending++;
	}
}
