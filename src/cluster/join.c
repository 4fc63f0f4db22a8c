/* join.c — machines joining a running cluster (docs/reconfiguration.md).
 *
 *   cluster.join ... a joiner (cluster key, no node id yet) asks a member;
 *                    the member proposes AddNode, answers with the id and
 *                    every node's address
 *   AddNode apply .. lowest id never used (same id for a known address),
 *                    table entry joining + address; every node learns it
 *                    (config node list, transport peer)
 *   reconcile ...... leader only: raft_add new nodes, keep them standbys,
 *                    promote a standby when voters are even (< 5) or one
 *                    is down. One configuration change at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster-int.h"
#include "lib/log.h"

#define JOIN_MSG "cluster.join"
#define MAX_VOTERS 5

void cluster_learn_node(struct krg_cluster *c, uint32_t id, const char *host, uint16_t port)
{
	struct node_entry *n = &c->nodes[id];
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->port = port;
	n->configured = true;
	if (krg_config_add_node(c->cfg_rw, id, host, port) > 0)
		log_info("membership: node %u is at %s:%u", id, host, (unsigned)port);
	struct krg_net_peer_addr a = { .id = id, .port = port };
	snprintf(a.host, sizeof(a.host), "%s", host);
	krg_net_add_peer(c->net, &a);
}

/* Deterministic: only the replicated table decides. */
void cluster_apply_add_node(struct krg_cluster *c, const Krg__Cluster__AddNode *a, struct sm_result *res)
{
	uint32_t id = 0;
	free(res->data);
	*res = (struct sm_result){ 0 };
	for (uint32_t i = 1; i < KRG_MAX_NODES && !id; i++)
		if (c->nodes[i].host[0] && !strcmp(c->nodes[i].host, a->host) && c->nodes[i].port == a->port)
			id = i;
	/* Never before the first leader's bootstrap entries took the
	 * configured ids. */
	for (uint32_t i = 1; i < KRG_MAX_NODES && !id && c->epoch; i++)
		if (c->nodes[i].epoch == 0 && !c->nodes[i].host[0] && c->nodes[i].state == KRG_NODE_ABSENT)
			id = i;
	if (!c->epoch)
		id = UINT32_MAX; /* too early: the joiner asks again */
	else if (id && strlen(a->host) < sizeof(c->nodes[id].host) && a->port && a->port <= 65535) {
		cluster_learn_node(c, id, a->host, (uint16_t)a->port);
		Krg__Cluster__SetNodeState s = KRG__CLUSTER__SET_NODE_STATE__INIT;
		Krg__Cluster__NodeState from[] = { KRG__CLUSTER__NODE_STATE__NODE_ABSENT };
		s.node = id;
		s.state = KRG__CLUSTER__NODE_STATE__NODE_JOINING;
		s.reason = a->reason ? a->reason : "joined the running cluster";
		s.has_unix_ms = a->has_unix_ms;
		s.unix_ms = a->unix_ms;
		s.n_expect_any = 1;
		s.expect_any = from;
		cluster_apply_set_state(c, &s);
	} else if (id != UINT32_MAX) {
		id = 0;
	}
	res->valid = true;
	res->data = malloc(4);
	if (res->data) {
		res->data[0] = (uint8_t)(id >> 24);
		res->data[1] = (uint8_t)(id >> 16);
		res->data[2] = (uint8_t)(id >> 8);
		res->data[3] = (uint8_t)id;
		res->len = 4;
	}
}

/* ---- cluster.join ---- */

struct join_call {
	struct krg_cluster *c;
	uint32_t from;
	uint64_t req_id;
	krg_cluster_sm_cb cb; /* local callers (krgadm nodes add --address) */
	void *data;
};

static void join_reply(struct join_call *j, uint32_t id)
{
	struct krg_cluster *c = j->c;
	Krg__Cluster__JoinReply rep = KRG__CLUSTER__JOIN_REPLY__INIT;
	Krg__Cluster__NodeAddr addrs[KRG_MAX_NODES], *ptrs[KRG_MAX_NODES];
	size_t n = 0;
	for (size_t i = 0; i < c->cfg->n_nodes && n < KRG_MAX_NODES; i++) {
		krg__cluster__node_addr__init(&addrs[n]);
		addrs[n].id = c->cfg->nodes[i].id;
		addrs[n].host = (char *)c->cfg->nodes[i].host;
		addrs[n].port = c->cfg->nodes[i].port;
		ptrs[n] = &addrs[n];
		n++;
	}
	rep.node_id = id;
	rep.n_nodes = n;
	rep.nodes = ptrs;
	size_t len = krg__cluster__join_reply__get_packed_size(&rep);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		krg_net_reply(c->net, j->from, j->req_id, -ENOMEM, NULL, 0);
		return;
	}
	krg__cluster__join_reply__pack(&rep, buf);
	krg_net_reply(c->net, j->from, j->req_id, 0, buf, len);
	free(buf);
}

static void join_done(int status, const uint8_t *res, size_t len, void *data)
{
	struct join_call *j = data;
	uint32_t id = 0;
	if (status == 0 && len == 4)
		id = (uint32_t)res[0] << 24 | (uint32_t)res[1] << 16 | (uint32_t)res[2] << 8 | res[3];
	if (status == 0 && !id)
		status = -ENOSPC;
	if (status == 0 && id == UINT32_MAX)
		status = -EAGAIN;
	if (j->cb) {
		j->cb(status, res, len, j->data);
	} else if (status < 0) {
		const char *why = status == -ENOSPC ? "no free node id" :
				  status == -EAGAIN ? "the cluster is starting, try again" : strerror(-status);
		krg_net_reply(j->c->net, j->from, j->req_id, status, why, strlen(why));
	} else {
		log_info("membership: machine at node %u joined as node %u", j->from, id);
		join_reply(j, id);
	}
	free(j);
}

static int join_start(struct krg_cluster *c, const char *host, uint16_t port, const char *reason, uint32_t from,
		      uint64_t req_id, krg_cluster_sm_cb cb, void *data)
{
	struct join_call *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->c = c;
	j->from = from;
	j->req_id = req_id;
	j->cb = cb;
	j->data = data;
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	Krg__Cluster__AddNode an = KRG__CLUSTER__ADD_NODE__INIT;
	cmd.version = KRG_CLUSTER_SCHEMA;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_ADD_NODE;
	cmd.add_node = &an;
	an.host = (char *)host;
	an.port = port;
	an.reason = (char *)reason;
	an.has_unix_ms = true;
	an.unix_ms = cluster_now_unix_ms();
	int r = cluster_propose_sm(c, &cmd, join_done, j);
	if (r < 0)
		free(j);
	return r;
}

int cluster_join_propose(struct krg_cluster *c, const char *host, uint16_t port, const char *reason,
			 krg_cluster_sm_cb cb, void *data)
{
	return join_start(c, host, port, reason, 0, 0, cb, data);
}

int cluster_join_check(struct krg_cluster *c, const char *addr, char *host, size_t hostlen, uint16_t *port, char *why,
		       size_t whylen)
{
	int r = krg_config_parse_address(addr, host, hostlen, port, why, whylen);
	if (r == 0)
		for (size_t i = 0; i < c->cfg->n_nodes; i++)
			if (!strcmp(c->cfg->nodes[i].host, host) && c->cfg->nodes[i].port == *port &&
			    !c->nodes[c->cfg->nodes[i].id].host[0]) {
				snprintf(why, whylen, "%s is configured node %u's address", addr, c->cfg->nodes[i].id);
				r = -EEXIST;
			}
	if (r == 0 && !krg_cluster_has_quorum(c)) {
		snprintf(why, whylen, "the cluster has no quorum");
		r = -EAGAIN;
	}
	return r;
}

static void on_join(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	char host[64], why[160] = "";
	uint16_t port;
	if (!req_id)
		return;
	Krg__Cluster__JoinRequest *jr = krg__cluster__join_request__unpack(NULL, msg->len, msg->body);
	if (!jr || jr->port == 0 || jr->port > 65535) {
		if (jr)
			krg__cluster__join_request__free_unpacked(jr, NULL);
		krg_net_reply(net, from, req_id, -EBADMSG, "malformed join request", 22);
		return;
	}
	char addr[96];
	snprintf(addr, sizeof(addr), "%s:%u", jr->host, jr->port);
	krg__cluster__join_request__free_unpacked(jr, NULL);
	int r = cluster_join_check(c, addr, host, sizeof(host), &port, why, sizeof(why));
	if (r == 0)
		r = join_start(c, host, port, "joined the running cluster", from, req_id, NULL, NULL);
	if (r < 0) {
		if (!why[0] || r == -ENOMEM)
			snprintf(why, sizeof(why), "%s", strerror(-r));
		krg_net_reply(net, from, req_id, r, why, strlen(why));
	}
}

/* ---- raft configuration (leader) ---- */

static void change_cb(struct raft_change *req, int status)
{
	struct krg_cluster *c = req->data;
	c->change_busy = false;
	if (status != 0)
		log_info("membership: raft configuration change not done: %s", raft_strerror(status));
	else
		cluster_kick(c); /* 59 joiners are 118 changes: not one a heartbeat */
}

static bool node_up(struct krg_cluster *c, raft_id id)
{
	return id == c->cfg->node_id || (id < KRG_MAX_NODES && c->nodes[id].state == KRG_NODE_UP);
}

/* Left the table for good (nodes del, or a node that left empty): its
 * place in raft's configuration goes too. A configured node the table
 * never changed (epoch 0) is a voter by its krgd.conf and stays. */
static bool node_gone(struct krg_cluster *c, raft_id id)
{
	return id < KRG_MAX_NODES && c->nodes[id].state == KRG_NODE_ABSENT && c->nodes[id].epoch;
}

static void transfer_cb(struct raft_transfer *req)
{
	struct krg_cluster *c = req->data;
	c->transfer_busy = false;
}

/* One step towards: every member in raft's configuration; voters odd,
 * at most 5, up; the others standbys (they replicate the log, so each
 * node's table stays current and a standby is ready to be promoted).
 * A static cluster of up to 5 nodes (no standbys) is left as its
 * krgd.conf made it; a larger one keeps 5 voters. */
void cluster_reconcile(struct krg_cluster *c)
{
	const struct raft_configuration *conf = &c->raft.configuration;
	if (c->change_busy || c->closing)
		return;
	int r = 0;
	const char *what = NULL;
	raft_id target = 0;
	for (size_t i = 0; i < c->cfg->n_nodes && !what; i++) {
		uint32_t id = c->cfg->nodes[i].id;
		enum krg_node_state st = c->nodes[id].state;
		if (id == 0 || (st != KRG_NODE_JOINING && st != KRG_NODE_UP))
			continue;
		bool known = false;
		for (unsigned k = 0; k < conf->n; k++)
			known |= conf->servers[k].id == id;
		if (!known) {
			char addr[96];
			snprintf(addr, sizeof(addr), "%s:%u", c->cfg->nodes[i].host, c->cfg->nodes[i].port);
			c->change_req.data = c;
			r = raft_add(&c->raft, &c->change_req, id, addr, change_cb);
			what = "add";
			target = id;
		}
	}
	unsigned voters = 0, up_voters = 0;
	raft_id spare_up = 0, standby_up = 0, voter_down = 0, voter_gone = 0, other_gone = 0, heir = 0, surplus = 0;
	for (unsigned k = 0; k < conf->n && !what; k++) {
		const struct raft_server *s = &conf->servers[k];
		bool up = node_up(c, s->id);
		if (s->role == RAFT_VOTER) {
			voters++;
			up_voters += up;
			if (!up && !voter_down)
				voter_down = s->id;
			if (node_gone(c, s->id) && !voter_gone)
				voter_gone = s->id;
			if (s->id != c->cfg->node_id && up && !node_gone(c, s->id) && !heir)
				heir = s->id;
			/* Beyond 5: a silent one first, else the highest id. */
			if (s->id != c->cfg->node_id && (!surplus || (!up && node_up(c, surplus)) ||
							 (up == node_up(c, surplus) && s->id > surplus)))
				surplus = s->id;
		} else if (node_gone(c, s->id)) {
			if (!other_gone)
				other_gone = s->id;
		} else if (s->role == RAFT_SPARE && up && !spare_up) {
			spare_up = s->id;
		} else if (s->role == RAFT_STANDBY && up && !standby_up) {
			standby_up = s->id;
		}
	}
	if (!what && voter_gone == c->cfg->node_id) {
		/* This leader left the table: another voter leads, and removes
		 * this node from the configuration. */
		if (heir && !c->transfer_busy) {
			c->transfer_req.data = c;
			if (raft_transfer(&c->raft, &c->transfer_req, heir, transfer_cb) == 0) {
				c->transfer_busy = true;
				log_info("membership: raft leadership handed to node %llu (this node left)",
					 (unsigned long long)heir);
			}
		}
		return;
	}
	if (!what && voter_gone) {
		/* A voter left: first a standby (so it learns it no longer
		 * votes, and never campaigns), then out; the rules below
		 * promote a standby that is up to keep voters odd. */
		c->change_req.data = c;
		r = raft_assign(&c->raft, &c->change_req, voter_gone, RAFT_STANDBY, change_cb);
		what = "demote (left)";
		target = voter_gone;
	} else if (!what && other_gone) {
		c->change_req.data = c;
		r = raft_remove(&c->raft, &c->change_req, other_gone, change_cb);
		what = "remove (left)";
		target = other_gone;
	} else if (!what && voters > MAX_VOTERS && surplus) {
		/* A krgd.conf listing more than 5 nodes made them all voters:
		 * every commit would wait for a majority of them, and each
		 * would ping every node every heartbeat. */
		c->change_req.data = c;
		r = raft_assign(&c->raft, &c->change_req, surplus, RAFT_STANDBY, change_cb);
		what = "demote (more than 5 voters)";
		target = surplus;
	} else if (!what && spare_up) {
		c->change_req.data = c;
		r = raft_assign(&c->raft, &c->change_req, spare_up, RAFT_STANDBY, change_cb);
		what = "standby";
		target = spare_up;
	} else if (!what && standby_up && voter_down) {
		/* A voter is lost: its seat goes to a standby that is up. */
		c->change_req.data = c;
		r = raft_assign(&c->raft, &c->change_req, voter_down, RAFT_STANDBY, change_cb);
		what = "demote (down)";
		target = voter_down;
	} else if (!what && standby_up && voters < MAX_VOTERS && (voters % 2 == 0 || up_voters + 2 <= MAX_VOTERS)) {
		/* Even: promote one. Odd below 5 with two standbys up: grow by two. */
		unsigned standbys_up = 0;
		for (unsigned k = 0; k < conf->n; k++)
			standbys_up += conf->servers[k].role == RAFT_STANDBY && node_up(c, conf->servers[k].id);
		if (voters % 2 == 0 || standbys_up >= 2) {
			c->change_req.data = c;
			r = raft_assign(&c->raft, &c->change_req, standby_up, RAFT_VOTER, change_cb);
			what = "promote";
			target = standby_up;
		}
	}
	if (!what)
		return;
	if (r == 0) {
		c->change_busy = true;
		log_info("membership: raft configuration: %s node %llu", what, (unsigned long long)target);
	} else if (r != RAFT_CANTCHANGE && r != RAFT_NOTLEADER) {
		log_warn("membership: raft configuration %s node %llu: %s", what, (unsigned long long)target,
			 raft_errmsg(&c->raft));
	}
}

/* Every node, every tick: which links the membership needs close (pinged
 * every heartbeat_ms and, with lazy links, dialed and kept): those to and
 * from the raft leader, which hears every node and alone decides who is
 * down, and those between two voters (elections). Every other link is
 * relaxed: a 10 s keepalive, dialed on demand and closed when idle
 * (docs/reconfiguration.md, "Scale"), so idle traffic and links grow as
 * N, not N². Without a known leader, links to and from voters stay close
 * (an election is on); until raft's configuration is known, links keep
 * the transport's default. */
void cluster_relax_links(struct krg_cluster *c)
{
	const struct raft_configuration *conf = &c->raft.configuration;
	bool voter[KRG_MAX_NODES] = { false };
	if (!c->raft_started || !conf->n)
		return;
	for (unsigned k = 0; k < conf->n; k++)
		if (conf->servers[k].role == RAFT_VOTER && conf->servers[k].id < KRG_MAX_NODES)
			voter[conf->servers[k].id] = true;
	raft_id leader = cluster_leader(c);
	uint32_t self = c->cfg->node_id;
	bool self_votes = voter[self];
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		uint32_t id = c->cfg->nodes[i].id;
		if (id == self)
			continue;
		/* lazy_links off (the default): as before them, a link is
		 * relaxed only where neither end votes. */
		bool close = !c->cfg->lazy_links ? self_votes || voter[id]
			     : leader	      ? leader == self || leader == id || (self_votes && voter[id])
					      : self_votes || voter[id];
		krg_net_set_relaxed(c->net, id, !close);
	}
}

void cluster_join_init(struct krg_cluster *c)
{
	krg_net_handle(c->net, JOIN_MSG, on_join, c);
}
