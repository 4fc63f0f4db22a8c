/* lease.c — read leases: service reads served from the local replica.
 *
 * A read barrier costs a round trip to the leader (sm.c). kdfs passes one
 * for every name a path walk meets, so a stat was three round trips. With
 * a lease, a node answers such reads from its own replica at once: while
 * it holds one, the leader hands no service op's result to anyone (the
 * proposer included) before this node has applied the op, or before the
 * lease ran out. So a change that returned anywhere is in every lease
 * holder's replica (docs/kdfs.md, "Read leases").
 *
 * Map:
 *   clock ......... lease_now: monotonic ms (never the wall clock)
 *   leader lease .. "cluster.lead" rounds: the leader knows a majority
 *                   followed it within LEASE_MS; else it serves no read
 *                   barrier (a stale leader could have missed commits)
 *   follower ...... "cluster.lease" every LEASE_MS/4; "cluster.applied"
 *                   after applies while it holds one
 *   holds ......... the leader releases a service op's result once every
 *                   holder applied it or its lease ran out, and, after an
 *                   election, not before the old leader's leases ran out
 *
 * Timing: a lease lasts at most LEASE_MS (election_timeout_ms) from the
 * moment its holder *sent* the request; the leader counts it from when it
 * received it (later), so it never thinks a lease over while the holder
 * still uses it. A holder also never outlives its leader's own lease. A
 * new leader waits LEASE_MS before releasing anything: every lease of a
 * former leader has run out by then (each is bounded by that leader's own
 * lease, itself bounded by a majority round before the new election). The
 * 10% margin covers clock rate drift between nodes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster-int.h"
#include "lib/log.h"
#include "lib/macro.h"

#define LEASE_MSG "cluster.lease"
#define APPLIED_MSG "cluster.applied"
#define LEAD_MSG "cluster.lead"

static uint64_t lease_ms(const struct krg_cluster *c)
{
	return c->cfg->election_timeout_ms;
}

/* What a holder may use of LEASE_MS (clock rate drift). */
static uint64_t usable_ms(const struct krg_cluster *c)
{
	return lease_ms(c) * 9 / 10;
}

static uint64_t lease_now(void)
{
	return uv_hrtime() / 1000000;
}

/* Someone waiting for the leader's lease (a barrier, a question). */
struct lead_wait {
	struct lead_wait *next;
	void (*cb)(struct krg_cluster *c, int status, void *data);
	void *data;
};

/* A result the leader holds until the lease holders applied its entry. */
struct lease_hold {
	struct lease_hold *next;
	uint64_t index;
	void (*cb)(void *data);
	void *data;
};

/* A request out (lead round or lease): outlives the cluster if it closes. */
struct lease_req {
	struct lease_req *next;
	struct krg_cluster *c; /* NULL: the cluster closed */
	uint64_t round;        /* lead round, or 0: a lease request */
	uint64_t sent;         /* lease_now at sending */
	uint32_t to;
};

static void req_unlink(struct lease_req *q)
{
	if (!q->c)
		return;
	for (struct lease_req **pp = &q->c->lease.reqs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			return;
		}
}

static struct lease_req *req_new(struct krg_cluster *c, uint64_t round, uint32_t to)
{
	struct lease_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->c = c;
	q->round = round;
	q->sent = lease_now();
	q->to = to;
	q->next = c->lease.reqs;
	c->lease.reqs = q;
	return q;
}

static bool is_leader(struct krg_cluster *c)
{
	return c->raft_started && raft_state(&c->raft) == RAFT_LEADER;
}

/* Leases are for clusters with service state machines (kdfs): the
 * others keep the plain barrier and send nothing more. */
static bool leases_on(const struct krg_cluster *c)
{
	return c->services != NULL;
}

/* A term this node leads that it has not seen yet: forget what the last
 * one knew, and hold results until a former leader's leases ran out. */
static void leader_check(struct krg_cluster *c)
{
	if (!is_leader(c) || c->lease.term == c->raft.current_term)
		return;
	c->lease.term = c->raft.current_term;
	c->lease.hold_until = lease_now() + lease_ms(c);
	c->lease.lead_until = 0;
	memset(c->lease.holder_until, 0, sizeof(c->lease.holder_until));
	memset(c->lease.acked, 0, sizeof(c->lease.acked));
}

/* ---- holds ---- */

static void holds_check(struct krg_cluster *c);

static void hold_timer_cb(uv_timer_t *t)
{
	holds_check(t->data);
}

/* Whether index's result may go out now; else when to look again. */
static bool releasable(struct krg_cluster *c, uint64_t index, uint64_t now, uint64_t *again)
{
	bool ok = true;
	if (now < c->lease.hold_until) {
		*again = MIN(*again, c->lease.hold_until);
		ok = false;
	}
	for (size_t n = 0; n < KRG_MAX_NODES; n++) {
		if (n == c->cfg->node_id || c->lease.holder_until[n] <= now || c->lease.acked[n] >= index)
			continue;
		*again = MIN(*again, c->lease.holder_until[n]);
		ok = false;
	}
	return ok;
}

static void holds_check(struct krg_cluster *c)
{
	uint64_t now = lease_now(), again = UINT64_MAX;
	struct lease_hold *ready = NULL, **p = &c->lease.holds;
	while (*p) {
		struct lease_hold *h = *p;
		if (releasable(c, h->index, now, &again)) {
			*p = h->next;
			h->next = ready;
			ready = h;
		} else {
			p = &h->next;
		}
	}
	if (c->lease.holds && again != UINT64_MAX && !c->closing)
		uv_timer_start(&c->lease.hold_timer, hold_timer_cb, again > now ? again - now : 1, 0);
	else
		uv_timer_stop(&c->lease.hold_timer);
	/* Queued newest first, so ready (pushed in that walk) is oldest first. */
	while (ready) {
		struct lease_hold *h = ready;
		ready = h->next;
		h->cb(h->data);
		free(h);
	}
}

int cluster_lease_release(struct krg_cluster *c, uint64_t index, void (*cb)(void *data), void *data)
{
	leader_check(c);
	uint64_t again = UINT64_MAX;
	if (!leases_on(c) || releasable(c, index, lease_now(), &again)) {
		cb(data);
		return 0;
	}
	struct lease_hold *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->index = index;
	h->cb = cb;
	h->data = data;
	/* Newest first (no walk to the tail); holds_check releases oldest first. */
	h->next = c->lease.holds;
	c->lease.holds = h;
	holds_check(c);
	return 0;
}

/* ---- the leader's own lease ---- */

static unsigned voters(struct krg_cluster *c, bool *self_votes)
{
	unsigned n = 0;
	*self_votes = false;
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		const struct raft_server *s = &c->raft.configuration.servers[i];
		if (s->role != RAFT_VOTER)
			continue;
		n++;
		if (s->id == c->cfg->node_id)
			*self_votes = true;
	}
	return n;
}

static bool lead_valid(struct krg_cluster *c)
{
	leader_check(c);
	return is_leader(c) && lease_now() < c->lease.lead_until;
}

static void lead_waiters_run(struct krg_cluster *c, int status)
{
	struct lead_wait *w = c->lease.lead_waiters;
	c->lease.lead_waiters = NULL;
	while (w) {
		struct lead_wait *n = w->next;
		w->cb(c, status, w->data);
		free(w);
		w = n;
	}
}

static void lead_confirmed(struct krg_cluster *c, uint64_t sent)
{
	c->lease.round_open = false;
	c->lease.lead_until = MAX(c->lease.lead_until, sent + usable_ms(c));
	if (lead_valid(c))
		lead_waiters_run(c, 0);
}

static void lead_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct lease_req *q = data;
	struct krg_cluster *c = q->c;
	req_unlink(q);
	if (c && status == 0 && q->round == c->lease.round && is_leader(c) &&
	    ++c->lease.round_ok >= c->lease.round_need)
		lead_confirmed(c, q->sent);
	free(q);
}

/* Ask every voter whether it follows this node in its term. */
static void lead_round(struct krg_cluster *c)
{
	leader_check(c);
	if (!is_leader(c))
		return lead_waiters_run(c, -EAGAIN);
	/* A round still out and still of use is let finish: a busy node's
	 * answers may take longer than the period. */
	uint64_t now = lease_now();
	if (c->lease.round_open && now < c->lease.round_sent + usable_ms(c) / 2)
		return;
	bool self_votes;
	unsigned n = voters(c, &self_votes);
	c->lease.round++;
	c->lease.round_open = true;
	c->lease.round_sent = now;
	c->lease.round_need = n / 2 + 1;
	c->lease.round_ok = self_votes;
	uint64_t sent = now;
	if (c->lease.round_ok >= c->lease.round_need)
		return lead_confirmed(c, sent);
	Krg__Cluster__LeadCheck lc = KRG__CLUSTER__LEAD_CHECK__INIT;
	lc.term = c->raft.current_term;
	uint8_t buf[16];
	size_t len = krg__cluster__lead_check__pack(&lc, buf);
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		const struct raft_server *s = &c->raft.configuration.servers[i];
		if (s->role != RAFT_VOTER || s->id == c->cfg->node_id)
			continue;
		struct lease_req *q = req_new(c, c->lease.round, (uint32_t)s->id);
		if (!q)
			continue;
		q->sent = sent;
		/* A voter that cannot answer within the lease is no use to it. */
		if (krg_net_request(c->net, (uint32_t)s->id, LEAD_MSG, buf, len, (unsigned)usable_ms(c),
				    lead_reply_cb, q) < 0) {
			req_unlink(q);
			free(q);
		}
	}
}

static void on_lead(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	if (!req_id)
		return;
	Krg__Cluster__LeadCheck *lc = krg__cluster__lead_check__unpack(NULL, msg->len, msg->body);
	if (!lc)
		return krg_net_refuse_malformed(net, from, req_id, "lead check");
	bool yes = c->raft_started && lc->term == c->raft.current_term && cluster_leader(c) == from;
	krg__cluster__lead_check__free_unpacked(lc, NULL);
	krg_net_reply(net, from, req_id, yes ? 0 : -EAGAIN, NULL, 0);
}

int cluster_lead_confirm(struct krg_cluster *c, void (*cb)(struct krg_cluster *c, int status, void *data),
			 void *data)
{
	if (!is_leader(c))
		return -EAGAIN;
	if (lead_valid(c)) {
		cb(c, 0, data);
		return 0;
	}
	struct lead_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->data = data;
	bool first = !c->lease.lead_waiters;
	w->next = c->lease.lead_waiters;
	c->lease.lead_waiters = w;
	if (first)
		lead_round(c);
	return 0;
}

/* ---- the follower's lease ---- */

static bool follower_valid(struct krg_cluster *c)
{
	return c->lease.until > lease_now() && c->lease.leader && cluster_leader(c) == c->lease.leader &&
	       !is_leader(c);
}

static void lease_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct lease_req *q = data;
	struct krg_cluster *c = q->c;
	req_unlink(q);
	if (c)
		c->lease.asking = false;
	Krg__Cluster__LeaseReply *rep = NULL;
	if (c && status == 0 && (rep = krg__cluster__lease_reply__unpack(NULL, reply->len, reply->body))) {
		c->lease.until = q->sent + MIN((uint64_t)rep->ms, usable_ms(c));
		c->lease.index = rep->index;
		if (c->lease.leader != q->to)
			c->lease.acked_sent = 0; /* a new leader knows nothing yet */
		c->lease.leader = q->to;
		krg__cluster__lease_reply__free_unpacked(rep, NULL);
	}
	free(q);
}

static void lease_ask(struct krg_cluster *c)
{
	uint32_t leader = cluster_leader(c);
	if (c->lease.asking || !leader || leader == c->cfg->node_id)
		return;
	Krg__Cluster__LeaseRequest lr = KRG__CLUSTER__LEASE_REQUEST__INIT;
	lr.applied = raft_last_applied(&c->raft);
	uint8_t buf[16];
	size_t len = krg__cluster__lease_request__pack(&lr, buf);
	struct lease_req *q = req_new(c, 0, leader);
	if (!q)
		return;
	if (krg_net_request(c->net, leader, LEASE_MSG, buf, len, (unsigned)usable_ms(c), lease_reply_cb, q) < 0) {
		req_unlink(q);
		free(q);
		return;
	}
	c->lease.asking = true;
}

static void on_lease(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	if (!req_id)
		return;
	Krg__Cluster__LeaseRequest *lr = krg__cluster__lease_request__unpack(NULL, msg->len, msg->body);
	if (!lr)
		return krg_net_refuse_malformed(net, from, req_id, "lease request");
	uint64_t applied = lr->applied;
	krg__cluster__lease_request__free_unpacked(lr, NULL);
	if (!lead_valid(c) || from >= KRG_MAX_NODES || from == c->cfg->node_id) {
		krg_net_reply(net, from, req_id, -EAGAIN, NULL, 0);
		return;
	}
	uint64_t now = lease_now();
	/* From now on its results wait for it; those released before are at
	 * most the commit index, which it applies before using the lease. */
	c->lease.holder_until[from] = MAX(c->lease.holder_until[from], now + lease_ms(c));
	c->lease.acked[from] = MAX(c->lease.acked[from], applied);
	Krg__Cluster__LeaseReply rep = KRG__CLUSTER__LEASE_REPLY__INIT;
	rep.index = cluster_read_index(c);
	rep.ms = (uint32_t)MIN(c->lease.lead_until - now, usable_ms(c));
	uint8_t buf[32];
	size_t len = krg__cluster__lease_reply__pack(&rep, buf);
	krg_net_reply(net, from, req_id, 0, buf, len);
}

static void on_applied(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	Krg__Cluster__LeaseRequest *lr = krg__cluster__lease_request__unpack(NULL, msg->len, msg->body);
	if (!lr || from >= KRG_MAX_NODES) {
		if (lr)
			krg__cluster__lease_request__free_unpacked(lr, NULL);
		return;
	}
	c->lease.acked[from] = MAX(c->lease.acked[from], lr->applied);
	krg__cluster__lease_request__free_unpacked(lr, NULL);
	if (c->lease.holds)
		holds_check(c);
}

void cluster_lease_applied(struct krg_cluster *c)
{
	/* A while past its end too: the leader counts a lease from when it
	 * got the request, so it may still wait on this node. */
	if (!leases_on(c) || !c->raft_started || is_leader(c) || c->lease.until + lease_ms(c) <= lease_now())
		return;
	uint64_t applied = raft_last_applied(&c->raft);
	if (applied <= c->lease.acked_sent || !c->lease.leader)
		return;
	Krg__Cluster__LeaseRequest lr = KRG__CLUSTER__LEASE_REQUEST__INIT;
	lr.applied = applied;
	uint8_t buf[16];
	size_t len = krg__cluster__lease_request__pack(&lr, buf);
	if (krg_net_send(c->net, c->lease.leader, APPLIED_MSG, buf, len) == 0)
		c->lease.acked_sent = applied;
}

/* ---- the read barrier ---- */

int krg_cluster_sm_read_barrier(struct krg_cluster *c, krg_cluster_barrier_cb cb, void *data)
{
	if (c->closing)
		return -ECANCELED;
	if (!leases_on(c))
		return krg_cluster_sm_barrier(c, cb, data);
	/* Reached already (the usual case): answered in line, a loop turn
	 * less per name a path walk meets. */
	uint64_t applied = c->raft_started ? raft_last_applied(&c->raft) : 0;
	if (follower_valid(c)) {
		if (applied >= c->lease.index) {
			cb(0, data);
			return 0;
		}
		return cluster_wait_applied(c, c->lease.index, cb, data);
	}
	if (lead_valid(c) && applied >= cluster_read_index(c)) {
		cb(0, data);
		return 0;
	}
	return krg_cluster_sm_barrier(c, cb, data);
}

/* ---- timer, setup ---- */

static void lease_tick(uv_timer_t *t)
{
	struct krg_cluster *c = t->data;
	if (!c->raft_started || c->closing)
		return;
	if (is_leader(c)) {
		if (leases_on(c) || c->lease.lead_waiters)
			lead_round(c);
		return;
	}
	if (c->lease.lead_waiters)
		lead_waiters_run(c, -EAGAIN);
	if (leases_on(c))
		lease_ask(c);
}

void cluster_lease_init(struct krg_cluster *c)
{
	uv_timer_init(c->loop, &c->lease.timer);
	c->lease.timer.data = c;
	uv_timer_init(c->loop, &c->lease.hold_timer);
	c->lease.hold_timer.data = c;
	krg_net_handle(c->net, LEASE_MSG, on_lease, c);
	krg_net_handle(c->net, APPLIED_MSG, on_applied, c);
	krg_net_handle(c->net, LEAD_MSG, on_lead, c);
}

void cluster_lease_start(struct krg_cluster *c)
{
	uint64_t every = MAX(lease_ms(c) / 4, (uint64_t)10);
	uv_timer_start(&c->lease.timer, lease_tick, every, every);
}

/* krgd stops: the results held go out now (its leases end with it), the
 * waiters fail; the two timers close with handle_closed each. */
int cluster_lease_close(struct krg_cluster *c, uv_close_cb closed)
{
	uv_timer_stop(&c->lease.timer);
	uv_timer_stop(&c->lease.hold_timer);
	while (c->lease.holds) {
		struct lease_hold *h = c->lease.holds;
		c->lease.holds = h->next;
		h->cb(h->data);
		free(h);
	}
	lead_waiters_run(c, -ECANCELED);
	uv_close((uv_handle_t *)&c->lease.timer, closed);
	uv_close((uv_handle_t *)&c->lease.hold_timer, closed);
	return 2;
}

void cluster_lease_free(struct krg_cluster *c)
{
	for (struct lease_req *q = c->lease.reqs; q; q = q->next)
		q->c = NULL;
	c->lease.reqs = NULL;
	lead_waiters_run(c, -ECANCELED);
}
