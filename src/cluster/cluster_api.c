/* cluster_api.c — local API commands of the membership service:
 * cluster.status (anyone), nodes.add / nodes.del / cluster.poweroff (root). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/server.h"
#include "cluster/cluster-int.h"
#include "lib/log.h"
#include "proto/api.pb-c.h"

static const char *role_name(int state)
{
	switch (state) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "unavailable";
	}
}

void krg_cluster_raft_figures(struct krg_cluster *c, struct krg_cluster_raft_figures *out)
{
	raft_id leader = 0;
	const char *laddr;
	*out = (struct krg_cluster_raft_figures){ .role = role_name(RAFT_UNAVAILABLE) };
	if (!c->raft_started)
		return;
	raft_leader(&c->raft, &leader, &laddr);
	out->role = role_name(raft_state(&c->raft));
	out->term = c->raft.current_term;
	out->commit_index = c->raft.commit_index;
	out->last_applied = raft_last_applied(&c->raft);
	out->leader = (uint32_t)leader;
}

static void on_status(struct krg_api_call *call, void *data)
{
	struct krg_cluster *c = data;
	Krg__Api__ClusterStatus st = KRG__API__CLUSTER_STATUS__INIT;
	Krg__Cluster__NodeEntry entries[KRG_MAX_NODES], *eptrs[KRG_MAX_NODES];
	Krg__Api__NodeLink links[KRG_MAX_NODES], *lptrs[KRG_MAX_NODES];
	char addrs[KRG_MAX_NODES][80];
	raft_id leader = 0;
	const char *laddr;

	st.self = c->cfg->node_id;
	st.cluster_name = (char *)c->cfg->cluster_name;
	st.quorum = krg_cluster_has_quorum(c);
	if (c->raft_started)
		raft_leader(&c->raft, &leader, &laddr);
	if (leader) {
		st.has_leader = true;
		st.leader = (uint32_t)leader;
	}
	st.raft_role = (char *)role_name(c->raft_started ? raft_state(&c->raft) : RAFT_UNAVAILABLE);
	st.epoch = c->epoch;
	st.has_term = true;
	st.term = c->raft_started ? c->raft.current_term : 0;
	uint64_t now = uv_now(c->loop);
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		const struct krg_config_node *cn = &c->cfg->nodes[i];
		const struct node_entry *e = &c->nodes[cn->id];
		krg__cluster__node_entry__init(&entries[i]);
		entries[i].id = cn->id;
		entries[i].state = (Krg__Cluster__NodeState)e->state;
		entries[i].epoch = e->epoch;
		entries[i].reason = (char *)e->reason;
		entries[i].has_changed_unix_ms = true;
		entries[i].changed_unix_ms = e->changed_ms;
		eptrs[i] = &entries[i];
		krg__api__node_link__init(&links[i]);
		snprintf(addrs[i], sizeof(addrs[i]), "%s:%u", cn->host, cn->port);
		links[i].id = cn->id;
		links[i].address = addrs[i];
		bool self = cn->id == c->cfg->node_id;
		links[i].connected = self || krg_net_peer_up(c->net, cn->id);
		links[i].has_linked = true;
		links[i].linked = self || krg_net_peer_linked(c->net, cn->id);
		uint64_t heard = self ? now : krg_net_last_heard(c->net, cn->id);
		if (heard) {
			links[i].has_last_heard_ms_ago = true;
			links[i].last_heard_ms_ago = now > heard ? now - heard : 0;
		}
		lptrs[i] = &links[i];
	}
	st.n_nodes = c->cfg->n_nodes;
	st.nodes = eptrs;
	st.n_links = c->cfg->n_nodes;
	st.links = lptrs;
	size_t n = krg__api__cluster_status__get_packed_size(&st);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	krg__api__cluster_status__pack(&st, buf);
	krg_api_reply(call, 0, NULL, buf, n);
	free(buf);
}

#define NODES_MSG "cluster.nodes"

/* One `nodes add/del`, decided by the leader. Either a local API call
 * (call != NULL) or a request forwarded by a follower (from, req_id). */
struct nodes_call {
	struct krg_cluster *c;
	struct krg_api_call *call;
	uint32_t from;
	uint64_t req_id;
	struct krg_nodeset set;
	bool force;
};

static void nodes_finish(struct nodes_call *nc, int status, const char *msg)
{
	uint32_t ids[KRG_MAX_NODES];
	size_t n = 0;
	for (unsigned i = 0; status == 0 && i < KRG_MAX_NODES; i++)
		if (krg_nodeset_has(&nc->set, i))
			ids[n++] = i;
	if (nc->call) {
		Krg__Api__NodesChangeResult res = KRG__API__NODES_CHANGE_RESULT__INIT;
		uint8_t buf[KRG_MAX_NODES * 3 + 16];
		res.n_changed = n;
		res.changed = ids;
		size_t len = krg__api__nodes_change_result__pack(&res, buf);
		krg_api_reply(nc->call, status, msg, status == 0 ? buf : NULL, status == 0 ? len : 0);
	} else {
		Krg__Cluster__NodesReply rep = KRG__CLUSTER__NODES_REPLY__INIT;
		uint8_t buf[KRG_MAX_NODES * 3 + 256];
		rep.status = status;
		rep.error = (char *)msg;
		rep.n_changed = n;
		rep.changed = ids;
		size_t len = krg__cluster__nodes_reply__get_packed_size(&rep);
		if (len <= sizeof(buf)) {
			krg__cluster__nodes_reply__pack(&rep, buf);
			krg_net_reply(nc->c->net, nc->from, nc->req_id, 0, buf, len);
		} else {
			krg_net_reply(nc->c->net, nc->from, nc->req_id, -EMSGSIZE, NULL, 0);
		}
	}
	free(nc);
}

static void nodes_done(int status, const char *msg, void *data)
{
	nodes_finish(data, status, msg);
}

/* nodes add --address: the AddNode entry gave the machine its id. */
static void address_done(int status, const uint8_t *res, size_t len, void *data)
{
	struct nodes_call *nc = data;
	uint32_t id = 0;
	if (status == 0 && len == 4)
		id = (uint32_t)res[0] << 24 | (uint32_t)res[1] << 16 | (uint32_t)res[2] << 8 | res[3];
	if (status == 0 && id && id < KRG_MAX_NODES)
		krg_nodeset_add(&nc->set, id);
	else if (status == 0)
		status = -EPROTO;
	nodes_finish(nc, status,
		     status == -ENOSPC ? "no free node id" :
		     status == -EAGAIN ? "the cluster is starting, try again" : status ? strerror(-status) : NULL);
}

/* Resolve -n/-c/-t/-a into a node set, Kerrighed's way: add takes present
 * (linked) nodes that are not members, del takes members. */
static int select_nodes(struct krg_cluster *c, const Krg__Api__NodesChange *req, bool add, uint32_t origin,
			struct krg_nodeset *out, char *err, size_t errlen)
{
	struct krg_nodeset candidates = { 0 };
	unsigned members = 0;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		uint32_t id = c->cfg->nodes[i].id;
		enum krg_node_state st = c->nodes[id].state;
		bool member = st != KRG_NODE_ABSENT && st != KRG_NODE_LEAVING;
		bool present = id == c->cfg->node_id || krg_net_peer_linked(c->net, id);
		members += member;
		if (add ? (!member && present) : (member && !(req->has_all && req->all && id == origin)))
			krg_nodeset_add(&candidates, id);
	}
	if (req->n_nodes) {
		for (size_t i = 0; i < req->n_nodes; i++) {
			uint32_t id = req->nodes[i];
			if (id >= KRG_MAX_NODES || !c->nodes[id].configured) {
				snprintf(err, errlen, "unknown node %u (not in %s)", id, c->cfg->path);
				return -ENOENT;
			}
			enum krg_node_state st = c->nodes[id].state;
			bool member = st != KRG_NODE_ABSENT && st != KRG_NODE_LEAVING;
			if (add && member) {
				snprintf(err, errlen, "node %u is already a member (%s)", id, krg_node_state_name(st));
				return -EEXIST;
			}
			if (add && !krg_nodeset_has(&candidates, id)) {
				snprintf(err, errlen, "node %u is not present (no link to its krgd)", id);
				return -EHOSTUNREACH;
			}
			if (!add && !member) {
				snprintf(err, errlen, "node %u is not a member", id);
				return -ENOENT;
			}
			krg_nodeset_add(out, id);
		}
		return 0;
	}
	unsigned want;
	if (req->has_all && req->all)
		want = KRG_MAX_NODES;
	else if (req->has_count)
		want = req->count;
	else if (req->has_total) {
		if (add)
			want = req->total > members ? req->total - members : 0;
		else
			want = members > req->total ? members - req->total : 0;
	} else {
		snprintf(err, errlen, "no node selection given");
		return -EINVAL;
	}
	if (want != KRG_MAX_NODES && want > krg_nodeset_count(&candidates)) {
		snprintf(err, errlen, "only %u node(s) can be %s", krg_nodeset_count(&candidates),
			 add ? "added" : "removed");
		return -ERANGE;
	}
	/* del takes the highest ids first, add the lowest. */
	for (unsigned k = 0; k < KRG_MAX_NODES && want; k++) {
		unsigned id = add ? k : KRG_MAX_NODES - 1 - k;
		if (krg_nodeset_has(&candidates, id)) {
			krg_nodeset_add(out, id);
			want--;
		}
	}
	return 0;
}

/* A del that takes the node it was typed on, or every member, cuts the
 * admin off from the cluster they are managing (`del -t 0` is one typo
 * away from `-t 1`): done only when asked for with --force. */
static int del_guard(struct krg_cluster *c, const Krg__Api__NodesChange *req, uint32_t origin,
		     const struct krg_nodeset *set, char *err, size_t errlen)
{
	unsigned members = 0, taken = krg_nodeset_count(set);
	if (req->has_force && req->force)
		return 0;
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		enum krg_node_state st = c->nodes[c->cfg->nodes[i].id].state;
		members += st != KRG_NODE_ABSENT && st != KRG_NODE_LEAVING;
	}
	if (taken && taken >= members) {
		snprintf(err, errlen, "refusing to remove every member node (%u of %u)%s; add --force to do it", taken,
			 members, krg_nodeset_has(set, origin) ? ", this one included" : "");
		return -EPERM;
	}
	if (krg_nodeset_has(set, origin)) {
		snprintf(err, errlen, "refusing to remove node %u, the node this command runs on; add --force to do it",
			 origin);
		return -EPERM;
	}
	return 0;
}

/* On the leader: select with the authoritative table, then propose. */
static void nodes_decide(struct nodes_call *nc, const uint8_t *body, size_t len, bool add, uint32_t origin)
{
	char err[160] = "";
	Krg__Api__NodesChange *req = krg__api__nodes_change__unpack(NULL, len, body);
	if (!req) {
		nodes_finish(nc, -EBADMSG, "malformed nodes request");
		return;
	}
	if (add && req->address) {
		char host[64];
		uint16_t port;
		int r = cluster_join_check(nc->c, req->address, host, sizeof(host), &port, err, sizeof(err));
		if (r == 0)
			r = cluster_join_propose(nc->c, host, port, "nodes add --address", address_done, nc);
		krg__api__nodes_change__free_unpacked(req, NULL);
		if (r < 0)
			nodes_finish(nc, r, err[0] ? err : strerror(-r));
		return;
	}
	int r = select_nodes(nc->c, req, add, origin, &nc->set, err, sizeof(err));
	if (r == 0 && !add)
		r = del_guard(nc->c, req, origin, &nc->set, err, sizeof(err));
	nc->force = !add && req->has_force && req->force;
	krg__api__nodes_change__free_unpacked(req, NULL);
	if (r < 0) {
		nodes_finish(nc, r, err);
		return;
	}
	if (krg_nodeset_count(&nc->set) == 0) {
		nodes_finish(nc, 0, NULL);
		return;
	}
	r = krg_cluster_change_nodes(nc->c, &nc->set, add, nc->force, nodes_done, nc);
	if (r < 0)
		nodes_finish(nc, r, r == -EAGAIN ? "no quorum: this node cannot reach a majority, membership cannot change"
						   : strerror(-r));
}

static void nodes_forward_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct nodes_call *nc = data;
	char msg[200];
	if (status < 0) {
		snprintf(msg, sizeof(msg), "leader did not answer: %s", strerror(-status));
		nodes_finish(nc, status, msg);
		return;
	}
	Krg__Cluster__NodesReply *rep = krg__cluster__nodes_reply__unpack(NULL, reply->len, reply->body);
	if (!rep || rep->status > 0) {
		nodes_finish(nc, -EBADMSG, "leader sent a malformed answer");
	} else {
		memset(&nc->set, 0, sizeof(nc->set));
		for (size_t i = 0; i < rep->n_changed; i++)
			if (rep->changed[i] < KRG_MAX_NODES)
				krg_nodeset_add(&nc->set, rep->changed[i]);
		snprintf(msg, sizeof(msg), "%s", rep->error ? rep->error : "");
		nodes_finish(nc, rep->status, rep->status ? msg : NULL);
	}
	if (rep)
		krg__cluster__nodes_reply__free_unpacked(rep, NULL);
}

static void on_nodes_change(struct krg_api_call *call, bool add, struct krg_cluster *c)
{
	uint32_t leader = cluster_leader(c);
	if (!krg_cluster_has_quorum(c) || !leader) {
		krg_api_reply(call, -EAGAIN, "no quorum: this node cannot reach a majority, membership cannot change",
			      NULL, 0);
		return;
	}
	struct nodes_call *nc = calloc(1, sizeof(*nc));
	if (!nc) {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	nc->c = c;
	nc->call = call;
	if (leader == c->cfg->node_id) {
		nodes_decide(nc, call->body, call->len, add, c->cfg->node_id);
		return;
	}
	Krg__Cluster__NodesRequest fwd = KRG__CLUSTER__NODES_REQUEST__INIT;
	fwd.add = add;
	fwd.has_origin = true;
	fwd.origin = c->cfg->node_id;
	fwd.change.data = (uint8_t *)call->body;
	fwd.change.len = call->len;
	size_t n = krg__cluster__nodes_request__get_packed_size(&fwd);
	uint8_t *buf = malloc(n ? n : 1);
	int r = buf ? 0 : -ENOMEM;
	if (buf) {
		krg__cluster__nodes_request__pack(&fwd, buf);
		r = krg_net_request(c->net, leader, NODES_MSG, buf, n, 0, nodes_forward_cb, nc);
		free(buf);
	}
	if (r < 0)
		nodes_finish(nc, r, "cannot reach the leader");
}

/* A follower's `nodes add/del`, for us to decide as the leader. */
static void on_nodes_msg(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_cluster *c = data;
	if (!req_id)
		return;
	struct nodes_call *nc = calloc(1, sizeof(*nc));
	if (!nc) {
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		return;
	}
	nc->c = c;
	nc->from = from;
	nc->req_id = req_id;
	Krg__Cluster__NodesRequest *req = krg__cluster__nodes_request__unpack(NULL, msg->len, msg->body);
	if (!req) {
		log_warn("membership: malformed nodes request from node %u", from);
		nodes_finish(nc, -EBADMSG, "malformed nodes request");
		return;
	}
	if (cluster_leader(c) != c->cfg->node_id)
		nodes_finish(nc, -EAGAIN, "the leader changed; try again");
	else
		nodes_decide(nc, req->change.data, req->change.len, req->add, req->has_origin ? req->origin : from);
	krg__cluster__nodes_request__free_unpacked(req, NULL);
}

static void on_nodes_add(struct krg_api_call *call, void *data)
{
	on_nodes_change(call, true, data);
}

static void on_nodes_del(struct krg_api_call *call, void *data)
{
	on_nodes_change(call, false, data);
}

static void on_poweroff(struct krg_api_call *call, void *data)
{
	struct krg_cluster *c = data;
	unsigned sent = 0;
	for (size_t i = 0; i < c->cfg->n_nodes; i++) {
		uint32_t id = c->cfg->nodes[i].id;
		if (id != c->cfg->node_id && krg_net_send(c->net, id, "cluster.poweroff", NULL, 0) == 0)
			sent++;
	}
	log_info("cluster poweroff requested locally by uid %u; told %u node(s)", (unsigned)call->uid, sent);
	krg_api_reply(call, 0, NULL, NULL, 0);
	if (c->shutdown_cb)
		c->shutdown_cb(c, c->data);
}

int cluster_api_register(struct krg_cluster *c)
{
	int r = krg_net_handle(c->net, NODES_MSG, on_nodes_msg, c);
	if (r == 0)
		r = krg_api_register(c->api, "cluster.status", false, on_status, c);
	if (r == 0)
		r = krg_api_register(c->api, "nodes.add", true, on_nodes_add, c);
	if (r == 0)
		r = krg_api_register(c->api, "nodes.del", true, on_nodes_del, c);
	if (r == 0)
		r = krg_api_register(c->api, "cluster.poweroff", true, on_poweroff, c);
	return r;
}
