/* sm.c — service state machines on the cluster's raft log.
 *
 * kdfs keeps its namespace in the same log as the node table rather than
 * in a second raft group: one leader, one failure detector, and one total
 * order between "node 3 is down" and "chunk 7 now lives on nodes 1 and 2"
 * (docs/kdfs.md, "Why one log"). A service registers apply / snapshot /
 * restore; its ops travel as ServiceOp commands and its state as
 * ServiceState blobs inside the cluster's snapshot.
 *
 * Map:
 *   registry ...... krg_cluster_sm_register
 *   fsm hooks ..... cluster_sm_apply / snapshot / restore (from fsm.c)
 *   waiting ....... cluster_wait_applied: the local replica reaches an index
 *   barrier ....... krg_cluster_sm_barrier, "cluster.index"; the leader
 *                   answers once a majority confirmed it leads (lease.c);
 *                   kdfs's reads take krg_cluster_sm_read_barrier, which
 *                   a read lease answers with no round trip (lease.c)
 *   notify ........ leader: a raft barrier entry right after applies, so
 *                   followers learn the commit index in one round trip
 *                   rather than at the next heartbeat
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster-int.h"
#include "lib/log.h"

#define INDEX_MSG "cluster.index"

static struct sm_service *find(struct krg_cluster *c, const char *name)
{
	for (struct sm_service *s = c->services; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

int krg_cluster_sm_register(struct krg_cluster *c, const char *service, const struct krg_cluster_sm_ops *ops,
			    void *data)
{
	if (find(c, service))
		return -EEXIST;
	struct sm_service *s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(service))) {
		free(s);
		return -ENOMEM;
	}
	s->ops = *ops;
	s->data = data;
	s->next = c->services;
	c->services = s;
	return 0;
}

struct sm_result *cluster_sm_apply(struct krg_cluster *c, const Krg__Cluster__ServiceOp *op)
{
	struct sm_result *r = &c->sm_last;
	free(r->data);
	*r = (struct sm_result){ 0 };
	struct sm_service *s = find(c, op->service);
	if (!s) {
		log_warn("membership: entry for unknown service '%.32s' skipped", op->service);
		return r;
	}
	s->ops.apply(s->data, op->op.data, op->op.len, &r->data, &r->len);
	r->valid = true;
	return r;
}

int cluster_sm_snapshot(struct krg_cluster *c, Krg__Cluster__ServiceState ***out, size_t *n)
{
	size_t k = 0;
	for (struct sm_service *s = c->services; s; s = s->next)
		k++;
	Krg__Cluster__ServiceState **v = calloc(k ? k : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t i = 0;
	for (struct sm_service *s = c->services; s; s = s->next, i++) {
		v[i] = calloc(1, sizeof(*v[i]));
		if (!v[i]) {
			cluster_sm_snapshot_free(v, i);
			return -ENOMEM;
		}
		krg__cluster__service_state__init(v[i]);
		v[i]->service = s->name;
		int r = s->ops.snapshot(s->data, &v[i]->state.data, &v[i]->state.len);
		if (r < 0) {
			cluster_sm_snapshot_free(v, i + 1);
			return r;
		}
	}
	*out = v;
	*n = k;
	return 0;
}

void cluster_sm_snapshot_free(Krg__Cluster__ServiceState **st, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (st[i]) {
			free(st[i]->state.data);
			free(st[i]);
		}
	free(st);
}

void cluster_sm_restore(struct krg_cluster *c, Krg__Cluster__ServiceState **st, size_t n)
{
	for (struct sm_service *s = c->services; s; s = s->next) {
		const Krg__Cluster__ServiceState *found = NULL;
		for (size_t i = 0; i < n; i++)
			if (st[i]->service && !strcmp(st[i]->service, s->name))
				found = st[i];
		int r = found ? s->ops.restore(s->data, found->state.data, found->state.len)
			      : s->ops.restore(s->data, NULL, 0);
		if (r < 0)
			log_error("membership: service '%s' cannot restore its snapshot: %s", s->name, strerror(-r));
	}
	/* The index of the last FSM entry is unknown until the next apply. */
	c->changed_index = 0;
	cluster_sm_applied(c);
}

/* Read barriers of one node share the leader's answers: a question
 * asked after a barrier started answers it (the leader's commit index
 * then includes everything committed before it started), so while one
 * question is out the barriers that come wait for the next, and one
 * answer serves them all (many FUSE calls at once: one round trip). */
struct sm_barrier {
	struct sm_barrier *next;
	struct krg_cluster *c;
	krg_cluster_barrier_cb cb;
	void *data;
};

/* Out to the leader; outlives the cluster if krgd stops meanwhile. */
struct sm_question {
	struct sm_question *next;
	struct krg_cluster *c;      /* NULL: the cluster closed */
	struct sm_barrier *list;    /* the barriers it answers */
	uint32_t leader;            /* asked */
};

/* ---- commit notification ----
 * A follower that proposed an op (or passes a read barrier) waits for its
 * own replica to apply it, and a follower learns that an entry is
 * committed only from the leader's next AppendEntries. libraft sends one
 * at once for a new entry but otherwise only every heartbeat (100-200 ms):
 * every cross-node metadata op would cost a heartbeat. So the leader
 * appends a barrier entry after applies (one in flight at a time, the
 * next one covers all applies made meanwhile): its AppendEntries carries
 * the new commit index. Barrier entries change no state, and the read
 * barrier's index skips them (on_index), so no one waits for them. */

static void notify_start(struct krg_cluster *c);

static void notify_done(struct raft_barrier *req, int status)
{
	struct krg_cluster *c = req->data;
	c->notify_busy = false;
	if (status == 0 && c->notify_wanted && !c->closing)
		notify_start(c);
}

static void notify_start(struct krg_cluster *c)
{
	if (c->notify_busy || !c->notify_wanted || !c->raft_started || c->closing)
		return;
	c->notify_wanted = false;
	if (raft_state(&c->raft) != RAFT_LEADER)
		return;
	c->notify_req.data = c;
	if (raft_barrier(&c->raft, &c->notify_req, notify_done) == 0)
		c->notify_busy = true;
}

/* ---- waiting for the local replica ---- */

static void wait_check(uv_timer_t *t)
{
	struct krg_cluster *c = t->data;
	notify_start(c);
	cluster_lease_applied(c);
	uint64_t applied = c->raft_started ? raft_last_applied(&c->raft) : 0;
	struct sm_waiter *ready = NULL, **p = &c->waiters;
	while (*p) {
		struct sm_waiter *w = *p;
		if (w->index <= applied) {
			*p = w->next;
			w->next = ready;
			ready = w;
		} else {
			p = &w->next;
		}
	}
	while (ready) {
		struct sm_waiter *w = ready;
		ready = w->next;
		w->cb(0, w->data);
		free(w);
	}
	/* Entries that change no state (raft barriers, configuration) move
	 * the applied index without an apply here: look again soon. */
	if (c->waiters && !c->closing && !uv_is_active((uv_handle_t *)&c->wait_timer))
		uv_timer_start(&c->wait_timer, wait_check, 10, 0);
}

void cluster_sm_applied(struct krg_cluster *c)
{
	if ((c->waiters || c->notify_wanted || c->lease.until) && !c->closing)
		uv_timer_start(&c->wait_timer, wait_check, 0, 0);
}

int cluster_wait_applied(struct krg_cluster *c, uint64_t index, void (*cb)(int status, void *data), void *data)
{
	if (c->closing)
		return -ECANCELED;
	struct sm_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->index = index;
	w->cb = cb;
	w->data = data;
	w->next = c->waiters;
	c->waiters = w;
	/* Even when already reached: answer from the loop, not from inside
	 * the caller's stack. */
	uv_timer_start(&c->wait_timer, wait_check, 0, 0);
	return 0;
}

void cluster_sm_free(struct krg_cluster *c)
{
	struct sm_barrier *all = c->bar_next;
	c->bar_next = NULL;
	while (c->bar_asked) { /* their answers find no cluster (freed then) */
		struct sm_question *qn = c->bar_asked;
		c->bar_asked = qn->next;
		for (struct sm_barrier *b = qn->list, *n; b; b = n) {
			n = b->next;
			b->next = all;
			all = b;
		}
		*qn = (struct sm_question){ 0 };
	}
	while (all) {
		struct sm_barrier *b = all;
		all = b->next;
		b->cb(-ECANCELED, b->data);
		free(b);
	}
	while (c->waiters) {
		struct sm_waiter *w = c->waiters;
		c->waiters = w->next;
		w->cb(-ECANCELED, w->data);
		free(w);
	}
	while (c->services) {
		struct sm_service *s = c->services;
		c->services = s->next;
		free(s->name);
		free(s);
	}
	free(c->sm_last.data);
	c->sm_last = (struct sm_result){ 0 };
}

/* ---- read barrier ---- */

/* Everything committed so far: the leader may not have applied it all
 * yet. When it has, the last entry that changed the state is enough:
 * what follows it is barriers (notify) and configuration entries, which a
 * follower applies without a state change (no wait_check then) and
 * learns only a heartbeat later. */
uint64_t cluster_read_index(struct krg_cluster *c)
{
	uint64_t index = c->raft.commit_index;
	if (c->changed_index && raft_last_applied(&c->raft) >= index && c->changed_index < index)
		index = c->changed_index;
	return index;
}

/* A question waits for the leader's lease (lease.c): a leader cut off
 * from the others must not answer with a commit index others passed. */
struct index_question {
	uint32_t from;
	uint64_t req_id;
};

static void index_answer(struct krg_cluster *c, int status, void *data)
{
	struct index_question *iq = data;
	if (status < 0 || cluster_leader(c) != c->cfg->node_id) {
		krg_net_reply(c->net, iq->from, iq->req_id, -EAGAIN, NULL, 0);
		free(iq);
		return;
	}
	Krg__Cluster__IndexReply rep = KRG__CLUSTER__INDEX_REPLY__INIT;
	rep.index = cluster_read_index(c);
	uint8_t buf[16];
	size_t n = krg__cluster__index_reply__pack(&rep, buf);
	krg_net_reply(c->net, iq->from, iq->req_id, 0, buf, n);
	free(iq);
}

static void on_index(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	if (!req_id)
		return;
	if (!c->raft_started || cluster_leader(c) != c->cfg->node_id) {
		krg_net_reply(net, from, req_id, -EAGAIN, NULL, 0);
		return;
	}
	struct index_question *iq = calloc(1, sizeof(*iq));
	if (!iq) {
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		return;
	}
	iq->from = from;
	iq->req_id = req_id;
	if (cluster_lead_confirm(c, index_answer, iq) < 0) {
		krg_net_reply(net, from, req_id, -EAGAIN, NULL, 0);
		free(iq);
	}
}

static void barrier_reached(int status, void *data)
{
	struct sm_barrier *b = data;
	b->cb(status, b->data);
	free(b);
}

static int barrier_ask(struct krg_cluster *c);

/* The leader's own barrier: its commit index, once a majority confirmed
 * it still leads (lease.c). */
static void leader_confirmed(struct krg_cluster *c, int status, void *data)
{
	struct sm_barrier *b = data;
	int r = status < 0 ? -EAGAIN : cluster_wait_applied(c, cluster_read_index(c), barrier_reached, b);
	if (r < 0)
		barrier_reached(r, b);
}

/* A question is out to the current leader: the barriers that come wait
 * for its answer, then ask together. One out to a leader that is no
 * longer (an election) does not hold them: its answer may be a timeout. */
static bool asking_leader(struct krg_cluster *c)
{
	uint32_t leader = cluster_leader(c);
	for (const struct sm_question *qn = c->bar_asked; qn; qn = qn->next)
		if (qn->leader == leader)
			return true;
	return false;
}

static void index_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct sm_question *qn = data;
	struct krg_cluster *c = qn->c;
	struct sm_barrier *list = qn->list;
	if (c)
		for (struct sm_question **pp = &c->bar_asked; *pp; pp = &(*pp)->next)
			if (*pp == qn) {
				*pp = qn->next;
				break;
			}
	free(qn);
	if (!c)
		return; /* its barriers were failed as the cluster closed */
	Krg__Cluster__IndexReply *rep = NULL;
	if (status == 0 && !(rep = krg__cluster__index_reply__unpack(NULL, reply->len, reply->body)))
		status = -EBADMSG;
	else if (status < 0 && status != -ENOMEM)
		status = -EAGAIN; /* the leader went away (unreachable, link cut): ask the next one */
	uint64_t index = rep ? rep->index : 0;
	if (rep)
		krg__cluster__index_reply__free_unpacked(rep, NULL);
	while (list) {
		struct sm_barrier *b = list;
		list = b->next;
		int r = status < 0 ? status : cluster_wait_applied(c, index, barrier_reached, b);
		if (r < 0)
			barrier_reached(r, b);
	}
	if (!c->bar_next || asking_leader(c) || c->closing) /* a callback may have asked already */
		return;
	int r = barrier_ask(c);
	while (r < 0 && c->bar_next) {
		struct sm_barrier *b = c->bar_next;
		c->bar_next = b->next;
		barrier_reached(r, b);
	}
}

/* Ask the leader for the barriers waiting (bar_next). */
static int barrier_ask(struct krg_cluster *c)
{
	uint32_t leader = cluster_leader(c);
	if (leader == c->cfg->node_id) { /* became the leader meanwhile */
		while (c->bar_next) {
			struct sm_barrier *b = c->bar_next;
			c->bar_next = b->next;
			if (cluster_lead_confirm(c, leader_confirmed, b) < 0)
				barrier_reached(-EAGAIN, b);
		}
		return 0;
	}
	if (!leader)
		return -EAGAIN;
	struct sm_question *qn = calloc(1, sizeof(*qn));
	if (!qn)
		return -ENOMEM;
	qn->c = c;
	int r = krg_net_request(c->net, leader, INDEX_MSG, NULL, 0, 0, index_reply_cb, qn);
	if (r < 0) {
		free(qn);
		return r == -ENOMEM ? r : -EAGAIN; /* no link to the leader now: an election may be under way */
	}
	qn->list = c->bar_next;
	qn->leader = leader;
	qn->next = c->bar_asked;
	c->bar_next = NULL;
	c->bar_asked = qn;
	return 0;
}

int krg_cluster_sm_barrier(struct krg_cluster *c, krg_cluster_barrier_cb cb, void *data)
{
	uint32_t leader = cluster_leader(c);
	if (!leader)
		return -EAGAIN;
	if (c->closing)
		return -ECANCELED;
	struct sm_barrier *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->c = c;
	b->cb = cb;
	b->data = data;
	if (leader == c->cfg->node_id) {
		int r = cluster_lead_confirm(c, leader_confirmed, b);
		if (r < 0)
			free(b);
		return r;
	}
	/* With the next question, asked once the one out to this leader is
	 * answered (or now: none is out to it). */
	b->next = c->bar_next;
	c->bar_next = b;
	if (asking_leader(c))
		return 0;
	int r = barrier_ask(c);
	if (r < 0) { /* b is not asked for: out of the list (at its head) */
		c->bar_next = b->next;
		free(b);
	}
	return r;
}

void cluster_sm_init(struct krg_cluster *c)
{
	uv_timer_init(c->loop, &c->wait_timer);
	c->wait_timer.data = c;
	krg_net_handle(c->net, INDEX_MSG, on_index, c);
}
