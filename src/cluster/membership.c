/* membership.c — raft setup, proposals (forwarded to the leader), the
 * failure detector that only the leader acts on, and node add/del.
 *
 * Map:
 *   setup ........ krg_cluster_new / start / close
 *   proposals .... cluster_propose, "cluster.propose" forwarding
 *   detector ..... tick_cb: up->down after failure_timeout_ms of silence,
 *                  down/joining->up when heard again, leaving->absent
 *   add/del ...... krg_cluster_change_nodes
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "cluster/cluster-int.h"
#include "lib/macro.h"
#include "lib/log.h"

#define PROPOSE_MSG "cluster.propose"
#define POWEROFF_MSG "cluster.poweroff"

uint64_t cluster_now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- proposals ---- */

struct proposal {
	struct raft_apply req;
	struct krg_cluster *c;
	krg_cluster_done_cb cb;
	void *data;
	uint32_t forwarded_from;   /* != 0: reply to this node's request */
	uint64_t forwarded_req;
	int node;                  /* >= 0: clear nodes[node].proposing when done */
	krg_cluster_sm_cb sm_cb;   /* a ServiceOp: wants its result */
	uint8_t *sm_res;           /* forwarded result, owned, until the replica has it */
	size_t sm_len;
};

static void proposal_done(struct proposal *p, int status, const char *msg)
{
	struct krg_cluster *c = p->c;
	if (p->node >= 0)
		c->nodes[p->node].proposing = false;
	if (p->forwarded_req)
		krg_net_reply(c->net, p->forwarded_from, p->forwarded_req, status, msg, msg ? strlen(msg) : 0);
	if (p->cb)
		p->cb(status, msg, p->data);
	free(p);
}

static void sm_done(struct proposal *p, int status, const uint8_t *res, size_t len)
{
	p->sm_cb(status, res, len, p->data);
	free(p->sm_res);
	free(p);
}

/* The reply held for the lease holders (lease.c): a forwarded result
 * packed, or a local one copied (the slot is the next apply's). */
static void forwarded_release(void *data)
{
	struct proposal *p = data;
	krg_net_reply(p->c->net, p->forwarded_from, p->forwarded_req, p->sm_len == SIZE_MAX ? -ENOMEM : 0,
		      p->sm_res, p->sm_len == SIZE_MAX ? 0 : p->sm_len);
	free(p->sm_res);
	free(p);
}

static void local_release(void *data)
{
	struct proposal *p = data;
	if (p->sm_len == SIZE_MAX)
		return sm_done(p, -ENOMEM, NULL, 0);
	sm_done(p, 0, p->sm_res, p->sm_len);
}

/* On the leader, right after the entry was applied: result is the slot
 * cluster_sm_apply filled (valid until the next apply). A service op's
 * result goes out only once every lease holder has applied it (lease.c). */
static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;
	const struct sm_result *res = result;
	if (status != 0) {
		if (p->sm_cb)
			return sm_done(p, -EAGAIN, NULL, 0);
		return proposal_done(p, -EAGAIN, raft_strerror(status));
	}
	if (p->forwarded_req && res) {
		Krg__Cluster__ProposeResult pr = KRG__CLUSTER__PROPOSE_RESULT__INIT;
		pr.applied = req->index;
		pr.has_result = res->valid;
		pr.result.data = res->data;
		pr.result.len = res->len;
		size_t n = krg__cluster__propose_result__get_packed_size(&pr);
		p->sm_res = malloc(n ? n : 1);
		p->sm_len = p->sm_res ? krg__cluster__propose_result__pack(&pr, p->sm_res) : SIZE_MAX;
		if (!res->valid || cluster_lease_release(p->c, req->index, forwarded_release, p) < 0)
			forwarded_release(p);
		return;
	}
	if (p->sm_cb) {
		if (!res || !res->valid)
			return sm_done(p, -ENOSYS, NULL, 0);
		p->sm_res = malloc(res->len ? res->len : 1);
		p->sm_len = p->sm_res ? res->len : SIZE_MAX;
		if (p->sm_res)
			memcpy(p->sm_res, res->data, res->len);
		if (cluster_lease_release(p->c, req->index, local_release, p) < 0)
			local_release(p);
		return;
	}
	proposal_done(p, 0, NULL);
}

static int apply_local(struct krg_cluster *c, struct raft_buffer *buf, struct proposal *p)
{
	p->req.data = p;
	int r = raft_apply(&c->raft, &p->req, buf, 1, apply_cb);
	if (r != 0) {
		raft_free(buf->base);
		return r == RAFT_NOTLEADER ? -EAGAIN : -EIO;
	}
	return 0;
}

static void sm_replica_reached(int status, void *data)
{
	struct proposal *p = data;
	sm_done(p, status, p->sm_res, p->sm_len);
}

static void forward_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct proposal *p = data;
	char msg[128] = "";
	if (p->sm_cb) {
		Krg__Cluster__ProposeResult *pr = NULL;
		if (status == 0 && !(pr = krg__cluster__propose_result__unpack(NULL, reply->len, reply->body)))
			status = -EBADMSG;
		if (status == 0 && !pr->has_result)
			status = -ENOSYS;
		if (status == 0 && pr->result.len && !(p->sm_res = malloc(pr->result.len)))
			status = -ENOMEM;
		if (status < 0) {
			if (pr)
				krg__cluster__propose_result__free_unpacked(pr, NULL);
			return sm_done(p, status, NULL, 0);
		}
		memcpy(p->sm_res, pr->result.data, pr->result.len);
		p->sm_len = pr->result.len;
		uint64_t applied = pr->applied;
		krg__cluster__propose_result__free_unpacked(pr, NULL);
		/* Answer once our own replica shows the change. */
		int r = cluster_wait_applied(p->c, applied, sm_replica_reached, p);
		if (r < 0)
			sm_done(p, r, NULL, 0);
		return;
	}
	if (status == 0)
		proposal_done(p, 0, NULL);
	else {
		snprintf(msg, sizeof(msg), "leader: %s", status == -ETIMEDOUT ? "no answer in time" : strerror(-status));
		proposal_done(p, status, msg);
	}
}

static bool has_leader(struct krg_cluster *c, raft_id *leader)
{
	const char *addr;
	raft_id id = 0;
	if (!c->raft_started)
		return false;
	raft_leader(&c->raft, &id, &addr);
	if (leader)
		*leader = id;
	return id != 0;
}

uint32_t cluster_leader(struct krg_cluster *c)
{
	raft_id id;
	return has_leader(c, &id) ? (uint32_t)id : 0;
}

static int propose_with(struct krg_cluster *c, const Krg__Cluster__Command *cmd, struct proposal *p)
{
	struct raft_buffer buf;
	raft_id leader;
	int r;

	if (!has_leader(c, &leader))
		return -EAGAIN;
	if (leader == c->cfg->node_id) {
		r = cluster_command_encode(cmd, &buf);
		return r < 0 ? r : apply_local(c, &buf, p);
	}
	/* Forward the bare Command; the leader frames it for its log. */
	size_t cn = krg__cluster__command__get_packed_size(cmd);
	uint8_t *packed = malloc(cn ? cn : 1);
	if (!packed)
		return -ENOMEM;
	Krg__Cluster__Propose fwd = KRG__CLUSTER__PROPOSE__INIT;
	fwd.command.data = packed;
	fwd.command.len = krg__cluster__command__pack(cmd, packed);
	size_t n = krg__cluster__propose__get_packed_size(&fwd);
	uint8_t *out = malloc(n ? n : 1);
	if (!out) {
		free(packed);
		return -ENOMEM;
	}
	krg__cluster__propose__pack(&fwd, out);
	free(packed);
	r = krg_net_request(c->net, (uint32_t)leader, PROPOSE_MSG, out, n, 0, forward_reply_cb, p);
	free(out);
	return r;
}

/* Propose cmd; when node >= 0, mark that node as having a proposal in
 * flight until it is decided (the failure detector skips it meanwhile). */
static int propose_tracked(struct krg_cluster *c, const Krg__Cluster__Command *cmd, int node,
			   krg_cluster_done_cb cb, void *data)
{
	struct proposal *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->cb = cb;
	p->data = data;
	p->node = node;
	if (node >= 0)
		c->nodes[node].proposing = true;
	int r = propose_with(c, cmd, p);
	if (r < 0) {
		if (node >= 0)
			c->nodes[node].proposing = false;
		free(p);
	}
	return r;
}

int cluster_propose(struct krg_cluster *c, const Krg__Cluster__Command *cmd, krg_cluster_done_cb cb, void *data)
{
	return propose_tracked(c, cmd, -1, cb, data);
}

int cluster_propose_sm(struct krg_cluster *c, const Krg__Cluster__Command *cmd, krg_cluster_sm_cb cb, void *data)
{
	struct proposal *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->sm_cb = cb;
	p->data = data;
	p->node = -1;
	int r = propose_with(c, cmd, p);
	if (r < 0)
		free(p);
	return r;
}

int krg_cluster_sm_propose(struct krg_cluster *c, const char *service, const uint8_t *op, size_t len,
			   krg_cluster_sm_cb cb, void *data)
{
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	Krg__Cluster__ServiceOp so = KRG__CLUSTER__SERVICE_OP__INIT;
	cmd.version = KRG_CLUSTER_SCHEMA;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_SERVICE_OP;
	cmd.service_op = &so;
	so.service = (char *)service;
	so.op.data = (uint8_t *)op;
	so.op.len = len;
	return cluster_propose_sm(c, &cmd, cb, data);
}

/* A follower forwarded a command: append it if we lead. */
static void on_propose(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	raft_id leader;
	if (!req_id)
		return;
	if (!has_leader(c, &leader) || leader != c->cfg->node_id) {
		krg_net_reply(net, from, req_id, -EAGAIN, NULL, 0);
		return;
	}
	Krg__Cluster__Propose *fwd = krg__cluster__propose__unpack(NULL, msg->len, msg->body);
	Krg__Cluster__Command *cmd = fwd ? krg__cluster__command__unpack(NULL, fwd->command.len, fwd->command.data)
					 : NULL;
	if (!cmd) {
		log_warn("membership: malformed proposal from node %u refused", from);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
		goto out;
	}
	struct proposal *p = calloc(1, sizeof(*p));
	if (!p) {
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		goto out;
	}
	p->c = c;
	p->node = -1;
	p->forwarded_from = from;
	p->forwarded_req = req_id;
	int r = propose_with(c, cmd, p);
	if (r < 0) {
		krg_net_reply(net, from, req_id, r, NULL, 0);
		free(p);
	}
out:
	if (cmd)
		krg__cluster__command__free_unpacked(cmd, NULL);
	if (fwd)
		krg__cluster__propose__free_unpacked(fwd, NULL);
}

/* Move node to `to` if, when the entry is applied, it is in one of the
 * states `from`: racing or stale proposals then become no-ops. */
static int propose_state(struct krg_cluster *c, uint32_t node, enum krg_node_state to,
			 const Krg__Cluster__NodeState *from, size_t n_from, const char *reason,
			 krg_cluster_done_cb cb, void *data, bool track)
{
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	Krg__Cluster__SetNodeState s = KRG__CLUSTER__SET_NODE_STATE__INIT;
	s.node = node;
	s.state = (Krg__Cluster__NodeState)to;
	s.reason = (char *)reason;
	s.n_expect_any = n_from;
	s.expect_any = (Krg__Cluster__NodeState *)from;
	s.has_unix_ms = true;
	s.unix_ms = cluster_now_unix_ms();
	cmd.version = KRG_CLUSTER_SCHEMA;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_SET_STATE;
	cmd.set_state = &s;
	return propose_tracked(c, &cmd, track ? (int)node : -1, cb, data);
}

/* The failure detector's transitions: from exactly one state. */
static void propose_from(struct krg_cluster *c, uint32_t node, enum krg_node_state from, enum krg_node_state to,
			 const char *reason, bool track)
{
	Krg__Cluster__NodeState f = (Krg__Cluster__NodeState)from;
	propose_state(c, node, to, &f, 1, reason, NULL, NULL, track);
}

int krg_cluster_node_left(struct krg_cluster *c, uint32_t node, unsigned moved, unsigned restarted)
{
	char why[192];
	if (node >= KRG_MAX_NODES || c->nodes[node].state != KRG_NODE_LEAVING || c->nodes[node].proposing)
		return node < KRG_MAX_NODES && c->nodes[node].proposing ? -EINPROGRESS : -EINVAL;
	if (node == c->cfg->node_id && krg_cluster_leave_holder(c))
		return -EBUSY;
	int w = snprintf(why, sizeof(why), "left: empty, %u process(es) moved away", moved);
	if (restarted && w >= 0 && (size_t)w < sizeof(why))
		w += snprintf(why + w, sizeof(why) - (size_t)w, " (%u checkpointed and restarted elsewhere)", restarted);
	for (size_t i = 0; i < ARRAY_SIZE(c->leave_holds) && node == c->cfg->node_id; i++)
		if (c->leave_holds[i].note[0] && w >= 0 && (size_t)w < sizeof(why))
			w += snprintf(why + w, sizeof(why) - (size_t)w, "; %s", c->leave_holds[i].note);
	Krg__Cluster__NodeState f = KRG__CLUSTER__NODE_STATE__NODE_LEAVING;
	return propose_state(c, node, KRG_NODE_ABSENT, &f, 1, why, NULL, NULL, true);
}

int krg_cluster_leave_hold(struct krg_cluster *c, const char *who, bool held, const char *note)
{
	size_t free_slot = ARRAY_SIZE(c->leave_holds);
	for (size_t i = 0; i < ARRAY_SIZE(c->leave_holds); i++) {
		if (!c->leave_holds[i].who[0]) {
			free_slot = MIN(free_slot, i);
			continue;
		}
		if (strcmp(c->leave_holds[i].who, who))
			continue;
		free_slot = i;
		break;
	}
	if (free_slot == ARRAY_SIZE(c->leave_holds))
		return -ENOSPC;
	typeof(c->leave_holds[0]) *h = &c->leave_holds[free_slot];
	snprintf(h->who, sizeof(h->who), "%s", who);
	h->held = held;
	snprintf(h->note, sizeof(h->note), "%s", note && !held ? note : "");
	return 0;
}

const char *krg_cluster_leave_holder(const struct krg_cluster *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(c->leave_holds); i++)
		if (c->leave_holds[i].held)
			return c->leave_holds[i].who;
	return NULL;
}

const char *krg_cluster_node_reason(struct krg_cluster *c, uint32_t node)
{
	return node < KRG_MAX_NODES ? c->nodes[node].reason : "";
}

uint64_t krg_cluster_node_epoch(const struct krg_cluster *c, uint32_t node)
{
	return node < KRG_MAX_NODES ? c->nodes[node].epoch : 0;
}

int krg_cluster_node_refuse_leave(struct krg_cluster *c, uint32_t node, const char *why)
{
	if (node >= KRG_MAX_NODES || c->nodes[node].state != KRG_NODE_LEAVING || c->nodes[node].proposing)
		return node < KRG_MAX_NODES && c->nodes[node].proposing ? -EINPROGRESS : -EINVAL;
	Krg__Cluster__NodeState f = KRG__CLUSTER__NODE_STATE__NODE_LEAVING;
	return propose_state(c, node, KRG_NODE_UP, &f, 1, why, NULL, NULL, true);
}

int krg_cluster_registry_set(struct krg_cluster *c, const char *registry, const char *key, const void *value,
			     size_t len, krg_cluster_done_cb cb, void *data)
{
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	Krg__Cluster__RegistrySet rs = KRG__CLUSTER__REGISTRY_SET__INIT;
	rs.registry = (char *)registry;
	rs.key = (char *)key;
	if (value) {
		rs.has_value = true;
		rs.value.data = (uint8_t *)value;
		rs.value.len = len;
	}
	cmd.version = KRG_CLUSTER_SCHEMA;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_REGISTRY_SET;
	cmd.registry_set = &rs;
	return cluster_propose(c, &cmd, cb, data);
}

/* ---- failure detector (leader only) ---- */

static uint64_t silence_ms(struct krg_cluster *c, uint32_t id)
{
	uint64_t now = uv_now(c->loop), heard;
	if (id == c->cfg->node_id)
		return 0;
	heard = krg_net_last_heard(c->net, id);
	if (heard == 0 || heard < c->started_ms)
		heard = c->started_ms;
	return now > heard ? now - heard : 0;
}

static void tick_cb(uv_timer_t *t)
{
	struct krg_cluster *c = t->data;
	raft_id leader;
	char why[96];

	if (!c->closing)
		cluster_relax_links(c);
	if (c->closing || !has_leader(c, &leader) || leader != c->cfg->node_id ||
	    raft_state(&c->raft) != RAFT_LEADER)
		return;
	/* First leader of a new cluster: every configured node joins. */
	if (c->epoch == 0 && !c->bootstrap_proposed) {
		c->bootstrap_proposed = true;
		for (size_t i = 0; i < c->cfg->n_nodes; i++)
			propose_from(c, c->cfg->nodes[i].id, KRG_NODE_ABSENT, KRG_NODE_JOINING, "cluster created", false);
		return;
	}
	cluster_reconcile(c);
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		uint32_t id = c->cfg->nodes[i].id;
		struct node_entry *n = &c->nodes[id];
		uint64_t quiet = silence_ms(c, id);
		bool alive = id == c->cfg->node_id ||
			     (krg_net_peer_up(c->net, id) && quiet < 2 * (uint64_t)c->cfg->heartbeat_ms + 100);
		if (n->proposing)
			continue;
		switch (n->state) {
		case KRG_NODE_UP:
			if (quiet > c->cfg->failure_timeout_ms) {
				snprintf(why, sizeof(why), "no message for %llu ms", (unsigned long long)quiet);
				propose_from(c, id, KRG_NODE_UP, KRG_NODE_DOWN, why, true);
			}
			break;
		case KRG_NODE_DOWN:
			if (alive)
				propose_from(c, id, KRG_NODE_DOWN, KRG_NODE_UP, "heard again", true);
			break;
		case KRG_NODE_JOINING:
			if (alive)
				propose_from(c, id, KRG_NODE_JOINING, KRG_NODE_UP, "joined", true);
			break;
		case KRG_NODE_LEAVING:
			/* A live node empties itself (its leave hooks: the scheduler
			 * moves its processes away) and says so; a silent one has
			 * nothing left to hand over. */
			if (!alive && quiet > c->cfg->failure_timeout_ms)
				propose_from(c, id, KRG_NODE_LEAVING, KRG_NODE_ABSENT, "left (silent)", true);
			break;
		default:
			break;
		}
	}
}

void cluster_kick(struct krg_cluster *c)
{
	if (!c->closing)
		uv_timer_start(&c->tick, tick_cb, 0, c->cfg->heartbeat_ms);
}

static void peer_cb(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct krg_cluster *c = data;
	log_debug("link to node %u %s", peer, up ? "up" : "down");
	if (!up)
		cluster_tunnel_peer_down(c, peer);
}

static void on_poweroff(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	log_info("cluster poweroff requested by node %u", from);
	if (req_id)
		krg_net_reply(net, from, req_id, 0, NULL, 0);
	if (c->shutdown_cb)
		c->shutdown_cb(c, c->data);
}

/* ---- quorum ---- */

bool krg_cluster_has_quorum(struct krg_cluster *c)
{
	raft_id leader;
	if (!has_leader(c, &leader))
		return false;
	/* Joined, not caught up yet: this replica does not even list us. */
	if (c->joined && c->nodes[c->cfg->node_id].state == KRG_NODE_ABSENT)
		return false;
	if (leader == c->cfg->node_id)
		return raft_state(&c->raft) == RAFT_LEADER;
	/* A follower that lost the leader's link is cut off, even before
	 * raft's election timer notices. */
	return krg_net_peer_up(c->net, (uint32_t)leader) &&
	       silence_ms(c, (uint32_t)leader) < c->cfg->election_timeout_ms;
}

/* ---- node add / del ---- */

struct change {
	krg_cluster_done_cb cb;
	void *data;
	int pending;
	int status;
	char msg[160];
};

static void change_one_done(int status, const char *msg, void *data)
{
	struct change *ch = data;
	if (status < 0 && ch->status == 0) {
		ch->status = status;
		snprintf(ch->msg, sizeof(ch->msg), "%s", msg ? msg : strerror(-status));
	}
	if (--ch->pending == 0) {
		ch->cb(ch->status, ch->status ? ch->msg : NULL, ch->data);
		free(ch);
	}
}

int krg_cluster_change_nodes(struct krg_cluster *c, const struct krg_nodeset *nodes, bool add, bool force,
			     krg_cluster_done_cb cb, void *data)
{
	/* add: from absent, or leaving (the user changed their mind); del:
	 * from any member state. A proposal that finds the node elsewhere
	 * when applied is a no-op. */
	static const Krg__Cluster__NodeState from_add[] = { KRG__CLUSTER__NODE_STATE__NODE_ABSENT,
							     KRG__CLUSTER__NODE_STATE__NODE_LEAVING };
	static const Krg__Cluster__NodeState from_del[] = { KRG__CLUSTER__NODE_STATE__NODE_JOINING,
							     KRG__CLUSTER__NODE_STATE__NODE_UP,
							     KRG__CLUSTER__NODE_STATE__NODE_DOWN };
	if (!krg_cluster_has_quorum(c))
		return -EAGAIN;
	struct change *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->cb = cb;
	ch->data = data;
	ch->pending = 1; /* held until every proposal is issued */
	for (unsigned id = 0; id < KRG_MAX_NODES; id++) {
		if (!krg_nodeset_has(nodes, id))
			continue;
		ch->pending++;
		int r = add ? propose_state(c, id, KRG_NODE_JOINING, from_add, ARRAY_SIZE(from_add), "nodes add",
					    change_one_done, ch, false)
			    : propose_state(c, id, KRG_NODE_LEAVING, from_del, ARRAY_SIZE(from_del),
					    force ? KRG_CLUSTER_DEL_FORCE_REASON : "nodes del",
					    change_one_done, ch, false);
		if (r < 0)
			change_one_done(r, "cannot reach the leader", ch);
	}
	change_one_done(0, NULL, ch);
	return 0;
}

/* ---- setup ---- */

int krg_cluster_new(uv_loop_t *loop, const struct krg_cluster_options *o, struct krg_cluster **out, char *err,
		    size_t errlen)
{
	struct krg_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->cfg = o->config;
	c->cfg_rw = o->config;
	c->joined = o->joined;
	c->net = o->net;
	c->api = o->api;
	c->shutdown_cb = o->shutdown_cb;
	c->data = o->data;
	for (size_t i = 0; i < c->cfg->n_nodes; i++)
		c->nodes[c->cfg->nodes[i].id].configured = true;
	const struct krg_config_node *self = krg_config_node(c->cfg, c->cfg->node_id);
	snprintf(c->address, sizeof(c->address), "%s:%u", self->host, self->port);
	if (snprintf(c->raft_dir, sizeof(c->raft_dir), "%s/raft", c->cfg->state_dir) >= (int)sizeof(c->raft_dir)) {
		snprintf(err, errlen, "state_dir is too long");
		free(c);
		return -ENAMETOOLONG;
	}
	uv_timer_init(loop, &c->tick);
	c->tick.data = c;
	uv_timer_init(loop, &c->transport_timer);
	c->transport_timer.data = c;
	cluster_fsm_init(c);
	cluster_tunnel_init(c);
	cluster_sm_init(c);
	cluster_lease_init(c);
	krg_net_handle(c->net, PROPOSE_MSG, on_propose, c);
	krg_net_handle(c->net, POWEROFF_MSG, on_poweroff, c);
	cluster_join_init(c);
	krg_net_on_peer(c->net, peer_cb, c);
	int r = c->api ? cluster_api_register(c) : 0;
	if (r < 0) {
		snprintf(err, errlen, "cannot register cluster commands: %s", strerror(-r));
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

int krg_cluster_start(struct krg_cluster *c, char *err, size_t errlen)
{
	struct raft_configuration conf;
	int r;

	if (mkdir(c->raft_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", c->raft_dir, strerror(errno));
		return r;
	}
	r = raft_uv_init(&c->io, c->loop, c->raft_dir, &c->transport);
	if (r != 0) {
		snprintf(err, errlen, "raft storage in %s: %s", c->raft_dir, c->io.errmsg);
		return -EIO;
	}
	raft_uv_set_connect_retry_delay(&c->io, 200);
	r = raft_init(&c->raft, &c->io, &c->fsm, c->cfg->node_id, c->address);
	if (r != 0) {
		snprintf(err, errlen, "raft init: %s", raft_errmsg(&c->raft));
		raft_uv_close(&c->io);
		return -EIO;
	}
	/* A node that joined a running cluster starts empty: the leader's
	 * raft_add sends it the configuration and the log. */
	raft_configuration_init(&conf);
	/* The 5 lowest ids vote, the others are standbys: every node derives
	 * the same configuration from the same node list, and an election or
	 * a commit never waits for more than 5 nodes. */
	uint32_t fifth = UINT32_MAX;
	if (c->cfg->n_nodes > 5) {
		bool taken[KRG_MAX_NODES] = { false };
		for (size_t i = 0; i < c->cfg->n_nodes; i++)
			if (c->cfg->nodes[i].id < KRG_MAX_NODES)
				taken[c->cfg->nodes[i].id] = true;
		for (uint32_t id = 0, k = 0; id < KRG_MAX_NODES && k < 5; id++)
			if (taken[id] && ++k == 5)
				fifth = id;
	}
	for (size_t i = 0; i < c->cfg->n_nodes && !c->joined; i++) {
		char addr[96];
		snprintf(addr, sizeof(addr), "%s:%u", c->cfg->nodes[i].host, c->cfg->nodes[i].port);
		raft_configuration_add(&conf, c->cfg->nodes[i].id, addr,
				       c->cfg->nodes[i].id <= fifth ? RAFT_VOTER : RAFT_STANDBY);
	}
	r = c->joined ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&c->raft, &conf);
	raft_configuration_close(&conf);
	if (r != 0 && r != RAFT_CANTBOOTSTRAP) {
		snprintf(err, errlen, "raft bootstrap: %s", raft_errmsg(&c->raft));
		return -EIO;
	}
	if (r == RAFT_CANTBOOTSTRAP && !c->joined)
		log_info("membership: resuming from raft state in %s", c->raft_dir);
	raft_set_election_timeout(&c->raft, c->cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&c->raft, c->cfg->election_timeout_ms / 10 ? c->cfg->election_timeout_ms / 10 : 10);
	raft_set_pre_vote(&c->raft, true);
	raft_set_snapshot_threshold(&c->raft, 1024);
	raft_set_snapshot_trailing(&c->raft, 128);
	r = raft_start(&c->raft);
	if (r != 0) {
		snprintf(err, errlen, "raft start: %s", raft_errmsg(&c->raft));
		return -EIO;
	}
	c->raft_started = true;
	c->started_ms = uv_now(c->loop);
	uv_timer_start(&c->tick, tick_cb, c->cfg->heartbeat_ms, c->cfg->heartbeat_ms);
	cluster_lease_start(c);
	log_info("membership: raft started as node %u of %zu (%s)", c->cfg->node_id, c->cfg->n_nodes, c->address);
	return 0;
}

static void close_step(struct krg_cluster *c)
{
	if (--c->close_pending > 0)
		return;
	cluster_fsm_free(c);
	cluster_sm_free(c);
	cluster_lease_free(c);
	while (c->node_cbs) {
		struct node_cb *n = c->node_cbs->next;
		free(c->node_cbs);
		c->node_cbs = n;
	}
	void (*cb)(void *) = c->close_cb;
	void *data = c->close_data;
	free(c);
	if (cb)
		cb(data);
}

static void handle_closed(uv_handle_t *h)
{
	close_step(h->data);
}

static void raft_closed(struct raft *r)
{
	struct krg_cluster *c = r->data;
	raft_uv_close(&c->io);
	uv_close((uv_handle_t *)&c->transport_timer, handle_closed);
}

void krg_cluster_close(struct krg_cluster *c, void (*cb)(void *data), void *data)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_data = data;
	c->close_pending = 3;
	uv_timer_stop(&c->tick);
	uv_close((uv_handle_t *)&c->tick, handle_closed);
	uv_close((uv_handle_t *)&c->wait_timer, handle_closed);
	c->close_pending += cluster_lease_close(c, handle_closed);
	if (c->raft_started) {
		c->raft.data = c;
		raft_close(&c->raft, raft_closed);
	} else {
		uv_close((uv_handle_t *)&c->transport_timer, handle_closed);
	}
}
