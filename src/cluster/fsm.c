/* fsm.c — the replicated state machine: node table, epoch, registries.
 * apply() runs on every node in log order; callbacks fire from here, so
 * every node sees the same sequence of membership events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster-int.h"
#include "lib/log.h"

static const char *const state_names[] = { "absent", "joining", "up", "leaving", "down" };
static const char *const event_names[] = { "add", "up", "down", "remove", "leaving" };

const char *krg_node_state_name(enum krg_node_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

const char *krg_node_event_name(enum krg_node_event e)
{
	return (unsigned)e < ARRAY_SIZE(event_names) ? event_names[e] : "?";
}

/* Log entries: a 4-byte big-endian length, the Command, zero padding to a
 * multiple of 8 bytes. libraft moves entry payloads in 8-byte words, so an
 * entry must not rely on its buffer length being the message length. */
int cluster_command_encode(const Krg__Cluster__Command *cmd, struct raft_buffer *out)
{
	size_t n = krg__cluster__command__get_packed_size(cmd);
	size_t total = (4 + n + 7) & ~(size_t)7;
	uint8_t *p = raft_malloc(total);
	if (!p)
		return -ENOMEM;
	memset(p, 0, total);
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	krg__cluster__command__pack(cmd, p + 4);
	out->base = p;
	out->len = total;
	return 0;
}

static Krg__Cluster__Command *command_decode(const struct raft_buffer *buf)
{
	const uint8_t *p = buf->base;
	if (buf->len < 4)
		return NULL;
	size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (n > buf->len - 4)
		return NULL;
	return krg__cluster__command__unpack(NULL, n, p + 4);
}

static void fire(struct krg_cluster *c, uint32_t node, enum krg_node_event ev)
{
	log_info("membership: node %u %s (epoch %llu)", node, krg_node_event_name(ev),
		 (unsigned long long)c->epoch);
	for (struct node_cb *cb = c->node_cbs; cb; cb = cb->next)
		cb->cb(c, node, ev, c->epoch, cb->data);
}

/* Which callback a transition means, or -1 for none. */
static int transition_event(enum krg_node_state from, enum krg_node_state to)
{
	if (to == KRG_NODE_ABSENT)
		return from == KRG_NODE_ABSENT ? -1 : KRG_NODE_EV_REMOVE;
	if (to == KRG_NODE_JOINING)
		return from == KRG_NODE_ABSENT ? KRG_NODE_EV_ADD : -1;
	if (to == KRG_NODE_UP)
		return KRG_NODE_EV_UP;
	if (to == KRG_NODE_DOWN)
		return KRG_NODE_EV_DOWN;
	if (to == KRG_NODE_LEAVING)
		return from == KRG_NODE_UP ? KRG_NODE_EV_LEAVING : -1;
	return -1;
}

void cluster_apply_set_state(struct krg_cluster *c, const Krg__Cluster__SetNodeState *s)
{
	if (s->node >= KRG_MAX_NODES || (unsigned)s->state > KRG_NODE_DOWN) {
		log_warn("membership: ignoring entry for node %u state %d", s->node, (int)s->state);
		return;
	}
	struct node_entry *n = &c->nodes[s->node];
	enum krg_node_state from = n->state, to = (enum krg_node_state)s->state;
	if (s->n_expect_any) { /* stale proposal: the log already moved on */
		bool ok = false;
		for (size_t i = 0; i < s->n_expect_any; i++)
			ok |= (enum krg_node_state)s->expect_any[i] == from;
		if (!ok)
			return;
	}
	if (from == to)
		return;
	c->epoch++;
	n->state = to;
	n->epoch = c->epoch;
	n->changed_ms = s->has_unix_ms ? s->unix_ms : 0;
	snprintf(n->reason, sizeof(n->reason), "%s", s->reason ? s->reason : "");
	log_info("membership: node %u %s -> %s%s%s", s->node, krg_node_state_name(from), krg_node_state_name(to),
		 n->reason[0] ? ": " : "", n->reason);
	/* joining -> absent, leaving -> down ... map each to one event;
	 * up -> leaving is the leaving event (services evacuate the node). */
	int ev = transition_event(from, to);
	if (ev >= 0)
		fire(c, s->node, (enum krg_node_event)ev);
}

static struct registry_entry **registry_find(struct krg_cluster *c, const char *reg, const char *key)
{
	struct registry_entry **p = &c->registry;
	while (*p && (strcmp((*p)->registry, reg) || strcmp((*p)->key, key)))
		p = &(*p)->next;
	return p;
}

static int registry_put(struct krg_cluster *c, const char *reg, const char *key, const uint8_t *v, size_t len,
			bool del)
{
	struct registry_entry **p = registry_find(c, reg, key), *e = *p;
	if (del) {
		if (e) {
			*p = e->next;
			free(e->registry);
			free(e->key);
			free(e->value);
			free(e);
		}
		return 0;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, len);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->registry = strdup(reg)) || !(e->key = strdup(key))) {
			if (e)
				free(e->registry);
			free(e);
			free(copy);
			return -ENOMEM;
		}
		*p = e;
	}
	free(e->value);
	e->value = copy;
	e->len = len;
	return 0;
}

int krg_cluster_registry_get(const struct krg_cluster *c, const char *registry, const char *key,
			     const uint8_t **value, size_t *len)
{
	for (struct registry_entry *e = c->registry; e; e = e->next)
		if (!strcmp(e->registry, registry) && !strcmp(e->key, key)) {
			*value = e->value;
			*len = e->len;
			return 0;
		}
	return -ENOENT;
}

size_t krg_cluster_registry_each(const struct krg_cluster *c, const char *registry, krg_cluster_registry_cb cb,
				 void *data)
{
	size_t n = 0;
	for (struct registry_entry *e = c->registry; e; e = e->next)
		if (!strcmp(e->registry, registry)) {
			n++;
			if (cb(e->key, e->value, e->len, data))
				break;
		}
	return n;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct krg_cluster *c = fsm->data;
	Krg__Cluster__Command *cmd = command_decode(buf);
	*result = NULL;
	if (!cmd) {
		log_error("membership: undecodable log entry (%zu bytes) skipped", buf->len);
		return 0;
	}
	if (cmd->version > KRG_CLUSTER_SCHEMA)
		log_warn("membership: entry from newer schema %u, applying known fields", cmd->version);
	switch (cmd->op_case) {
	case KRG__CLUSTER__COMMAND__OP_SET_STATE:
		cluster_apply_set_state(c, cmd->set_state);
		break;
	case KRG__CLUSTER__COMMAND__OP_ADD_NODE:
		cluster_apply_add_node(c, cmd->add_node, &c->sm_last);
		*result = &c->sm_last;
		break;
	case KRG__CLUSTER__COMMAND__OP_REGISTRY_SET: {
		const Krg__Cluster__RegistrySet *r = cmd->registry_set;
		registry_put(c, r->registry, r->key, r->value.data, r->value.len, !r->has_value);
		break;
	}
	case KRG__CLUSTER__COMMAND__OP_SERVICE_OP:
		*result = cluster_sm_apply(c, cmd->service_op);
		break;
	default:
		log_warn("membership: unknown entry kind %d skipped", (int)cmd->op_case);
	}
	krg__cluster__command__free_unpacked(cmd, NULL);
	/* libraft sets last_applied to this entry's index once apply returns. */
	c->changed_index = raft_last_applied(&c->raft) + 1;
	c->notify_wanted = true;
	cluster_sm_applied(c);
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct krg_cluster *c = fsm->data;
	Krg__Cluster__Snapshot snap = KRG__CLUSTER__SNAPSHOT__INIT;
	Krg__Cluster__NodeEntry entries[KRG_MAX_NODES], *eptrs[KRG_MAX_NODES];
	size_t n = 0, nreg = 0;

	snap.version = KRG_CLUSTER_SCHEMA;
	snap.epoch = c->epoch;
	for (uint32_t i = 0; i < KRG_MAX_NODES; i++) {
		const struct node_entry *e = &c->nodes[i];
		if (e->state == KRG_NODE_ABSENT && e->epoch == 0 && !e->host[0])
			continue;
		krg__cluster__node_entry__init(&entries[n]);
		entries[n].id = i;
		entries[n].state = (Krg__Cluster__NodeState)e->state;
		entries[n].epoch = e->epoch;
		entries[n].reason = (char *)e->reason;
		entries[n].has_changed_unix_ms = true;
		entries[n].changed_unix_ms = e->changed_ms;
		if (e->host[0]) {
			entries[n].host = (char *)e->host;
			entries[n].has_port = true;
			entries[n].port = e->port;
		}
		eptrs[n] = &entries[n];
		n++;
	}
	snap.n_nodes = n;
	snap.nodes = eptrs;
	for (struct registry_entry *e = c->registry; e; e = e->next)
		nreg++;
	Krg__Cluster__RegistryEntry *regs = calloc(nreg ? nreg : 1, sizeof(*regs));
	Krg__Cluster__RegistryEntry **rptrs = calloc(nreg ? nreg : 1, sizeof(*rptrs));
	if (!regs || !rptrs) {
		free(regs);
		free(rptrs);
		return RAFT_NOMEM;
	}
	size_t i = 0;
	for (struct registry_entry *e = c->registry; e; e = e->next, i++) {
		krg__cluster__registry_entry__init(&regs[i]);
		regs[i].registry = e->registry;
		regs[i].key = e->key;
		regs[i].value.data = e->value;
		regs[i].value.len = e->len;
		rptrs[i] = &regs[i];
	}
	snap.n_registry = nreg;
	snap.registry = rptrs;
	Krg__Cluster__ServiceState **svc = NULL;
	size_t nsvc = 0;
	if (cluster_sm_snapshot(c, &svc, &nsvc) < 0) {
		free(regs);
		free(rptrs);
		return RAFT_NOMEM;
	}
	snap.n_services = nsvc;
	snap.services = svc;

	*bufs = raft_malloc(sizeof(**bufs));
	size_t len = krg__cluster__snapshot__get_packed_size(&snap);
	void *base = raft_malloc(len ? len : 1);
	if (!*bufs || !base) {
		raft_free(*bufs);
		raft_free(base);
		free(regs);
		free(rptrs);
		cluster_sm_snapshot_free(svc, nsvc);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = base;
	(*bufs)[0].len = krg__cluster__snapshot__pack(&snap, base);
	*n_bufs = 1;
	free(regs);
	free(rptrs);
	cluster_sm_snapshot_free(svc, nsvc);
	return 0;
}

/* raft hands us buf->base; we own it and must raft_free it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct krg_cluster *c = fsm->data;
	Krg__Cluster__Snapshot *snap = krg__cluster__snapshot__unpack(NULL, buf->len, buf->base);
	raft_free(buf->base);
	if (!snap) {
		log_error("membership: undecodable snapshot");
		return RAFT_MALFORMED;
	}
	cluster_fsm_free(c);
	for (uint32_t i = 0; i < KRG_MAX_NODES; i++) {
		c->nodes[i].state = KRG_NODE_ABSENT;
		c->nodes[i].epoch = 0;
		c->nodes[i].reason[0] = '\0';
		c->nodes[i].host[0] = '\0';
	}
	c->epoch = snap->epoch;
	for (size_t i = 0; i < snap->n_nodes; i++) {
		const Krg__Cluster__NodeEntry *e = snap->nodes[i];
		if (e->id >= KRG_MAX_NODES || (unsigned)e->state > KRG_NODE_DOWN)
			continue;
		c->nodes[e->id].state = (enum krg_node_state)e->state;
		c->nodes[e->id].epoch = e->epoch;
		c->nodes[e->id].changed_ms = e->changed_unix_ms;
		snprintf(c->nodes[e->id].reason, sizeof(c->nodes[e->id].reason), "%s", e->reason ? e->reason : "");
		if (e->host && e->has_port && e->port && e->port <= 65535 && strlen(e->host) < sizeof(c->nodes[0].host))
			cluster_learn_node(c, e->id, e->host, (uint16_t)e->port);
	}
	for (size_t i = 0; i < snap->n_registry; i++) {
		const Krg__Cluster__RegistryEntry *r = snap->registry[i];
		registry_put(c, r->registry, r->key, r->value.data, r->value.len, false);
	}
	cluster_sm_restore(c, snap->services, snap->n_services);
	log_info("membership: restored snapshot at epoch %llu", (unsigned long long)c->epoch);
	krg__cluster__snapshot__free_unpacked(snap, NULL);
	return 0;
}

void cluster_fsm_init(struct krg_cluster *c)
{
	c->fsm.version = 1;
	c->fsm.data = c;
	c->fsm.apply = fsm_apply;
	c->fsm.snapshot = fsm_snapshot;
	c->fsm.restore = fsm_restore;
}

void cluster_fsm_free(struct krg_cluster *c)
{
	while (c->registry)
		registry_put(c, c->registry->registry, c->registry->key, NULL, 0, true);
}

int krg_cluster_on_node(struct krg_cluster *c, krg_cluster_node_cb cb, void *data)
{
	struct node_cb *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cb = cb;
	n->data = data;
	/* Append: callbacks run in registration order. */
	struct node_cb **p = &c->node_cbs;
	while (*p)
		p = &(*p)->next;
	*p = n;
	return 0;
}

enum krg_node_state krg_cluster_node_state(const struct krg_cluster *c, uint32_t node)
{
	return node < KRG_MAX_NODES ? c->nodes[node].state : KRG_NODE_ABSENT;
}

uint64_t krg_cluster_epoch(const struct krg_cluster *c)
{
	return c->epoch;
}
