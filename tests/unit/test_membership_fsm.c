/* test_membership_fsm.c — the membership state machine's apply
 * (src/cluster/fsm.c), fed log entries as Raft would: node transitions
 * and the one event each fires, the epoch, stale proposals turned into
 * no-ops, bad entries skipped, the registry, and a snapshot that restores
 * the same state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cluster/cluster-int.h"

struct seen {
	int n;
	uint32_t node[32];
	enum krg_node_event ev[32];
};

static void on_node(struct krg_cluster *c, uint32_t node, enum krg_node_event ev, uint64_t epoch, void *data)
{
	struct seen *s = data;
	if (s->n < 32) {
		s->node[s->n] = node;
		s->ev[s->n++] = ev;
	}
}

static void apply(struct krg_cluster *c, const Krg__Cluster__Command *cmd)
{
	struct raft_buffer b;
	assert_int_equal(cluster_command_encode(cmd, &b), 0);
	void *result = NULL;
	assert_int_equal(c->fsm.apply(&c->fsm, &b, &result), 0);
	raft_free(b.base);
}

static void set_state(struct krg_cluster *c, uint32_t node, Krg__Cluster__NodeState st, Krg__Cluster__NodeState *expect, size_t nexp)
{
	Krg__Cluster__SetNodeState s = KRG__CLUSTER__SET_NODE_STATE__INIT;
	s.node = node;
	s.state = st;
	s.reason = "test";
	s.expect_any = expect;
	s.n_expect_any = nexp;
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	cmd.version = 1;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_SET_STATE;
	cmd.set_state = &s;
	apply(c, &cmd);
}

static void reg_set(struct krg_cluster *c, const char *reg, const char *key, const char *val)
{
	Krg__Cluster__RegistrySet r = KRG__CLUSTER__REGISTRY_SET__INIT;
	r.registry = (char *)reg;
	r.key = (char *)key;
	if (val) {
		r.has_value = true;
		r.value.data = (uint8_t *)val;
		r.value.len = strlen(val);
	}
	Krg__Cluster__Command cmd = KRG__CLUSTER__COMMAND__INIT;
	cmd.version = 1;
	cmd.op_case = KRG__CLUSTER__COMMAND__OP_REGISTRY_SET;
	cmd.registry_set = &r;
	apply(c, &cmd);
}

static struct krg_cluster *fresh(struct seen *s)
{
	struct krg_cluster *c = calloc(1, sizeof(*c));
	/* What apply touches of the running cluster: the applied-entries
	 * timer (the loop is never run: raft is not started here). */
	c->loop = uv_default_loop();
	uv_timer_init(c->loop, &c->wait_timer);
	cluster_fsm_init(c);
	if (s)
		krg_cluster_on_node(c, on_node, s);
	return c;
}

static void done(struct krg_cluster *c)
{
	uv_close((uv_handle_t *)&c->wait_timer, NULL);
	uv_run(c->loop, UV_RUN_NOWAIT);
	cluster_fsm_free(c);
	while (c->node_cbs) {
		struct node_cb *n = c->node_cbs->next;
		free(c->node_cbs);
		c->node_cbs = n;
	}
	free(c);
}

static void transitions(void **state)
{
	struct seen s = { 0 };
	struct krg_cluster *c = fresh(&s);
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_JOINING, NULL, 0);   /* add */
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_UP, NULL, 0);        /* up */
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_UP, NULL, 0);        /* no change: nothing */
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_LEAVING, NULL, 0);   /* leaving */
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_DOWN, NULL, 0);      /* down */
	set_state(c, 2, KRG__CLUSTER__NODE_STATE__NODE_ABSENT, NULL, 0);    /* remove */
	assert_int_equal(s.n, 5);
	assert_int_equal(s.ev[0], KRG_NODE_EV_ADD);
	assert_int_equal(s.ev[1], KRG_NODE_EV_UP);
	assert_int_equal(s.ev[2], KRG_NODE_EV_LEAVING);
	assert_int_equal(s.ev[3], KRG_NODE_EV_DOWN);
	assert_int_equal(s.ev[4], KRG_NODE_EV_REMOVE);
	assert_int_equal(krg_cluster_epoch(c), 5);  /* every change, not the repeated up */
	assert_int_equal(krg_cluster_node_state(c, 2), KRG_NODE_ABSENT);
	done(c);
}

static void stale_and_bad(void **state)
{
	struct seen s = { 0 };
	struct krg_cluster *c = fresh(&s);
	set_state(c, 3, KRG__CLUSTER__NODE_STATE__NODE_JOINING, NULL, 0);
	set_state(c, 3, KRG__CLUSTER__NODE_STATE__NODE_UP, NULL, 0);
	/* "down, if it is still joining": the log moved on, a no-op. */
	Krg__Cluster__NodeState joining = KRG__CLUSTER__NODE_STATE__NODE_JOINING;
	set_state(c, 3, KRG__CLUSTER__NODE_STATE__NODE_DOWN, &joining, 1);
	assert_int_equal(krg_cluster_node_state(c, 3), KRG_NODE_UP);
	Krg__Cluster__NodeState up = KRG__CLUSTER__NODE_STATE__NODE_UP;
	set_state(c, 3, KRG__CLUSTER__NODE_STATE__NODE_DOWN, &up, 1);
	assert_int_equal(krg_cluster_node_state(c, 3), KRG_NODE_DOWN);
	uint64_t e = krg_cluster_epoch(c);
	/* A node id out of range, an undecodable entry: skipped. */
	set_state(c, KRG_MAX_NODES, KRG__CLUSTER__NODE_STATE__NODE_UP, NULL, 0);
	uint8_t junk[16] = { 0, 0, 0, 9, 0xff, 0xff, 0xff };
	struct raft_buffer b = { .base = junk, .len = sizeof(junk) };
	void *result;
	assert_int_equal(c->fsm.apply(&c->fsm, &b, &result), 0);
	struct raft_buffer shortb = { .base = junk, .len = 2 };
	assert_int_equal(c->fsm.apply(&c->fsm, &shortb, &result), 0);
	assert_int_equal(krg_cluster_epoch(c), e);
	assert_int_equal(s.n, 3);  /* add, up, down */
	done(c);
}

static void registry_and_snapshot(void **state)
{
	struct krg_cluster *c = fresh(NULL);
	set_state(c, 1, KRG__CLUSTER__NODE_STATE__NODE_JOINING, NULL, 0);
	set_state(c, 1, KRG__CLUSTER__NODE_STATE__NODE_UP, NULL, 0);
	set_state(c, 4, KRG__CLUSTER__NODE_STATE__NODE_JOINING, NULL, 0);
	reg_set(c, "sched", "enabled", "mosix");
	reg_set(c, "caps", "4194305", "1 1 0 0 5");
	reg_set(c, "caps", "4194305", "3 3 0 0 5");
	reg_set(c, "sched", "gone", "x");
	reg_set(c, "sched", "gone", NULL);
	const uint8_t *v;
	size_t len;
	assert_int_equal(krg_cluster_registry_get(c, "caps", "4194305", &v, &len), 0);
	assert_int_equal(len, 9);
	assert_memory_equal(v, "3 3 0 0 5", 9);
	assert_true(krg_cluster_registry_get(c, "sched", "gone", &v, &len) < 0);

	struct raft_buffer *bufs;
	unsigned n;
	assert_int_equal(c->fsm.snapshot(&c->fsm, &bufs, &n), 0);
	assert_int_equal(n, 1);
	struct krg_cluster *d = fresh(NULL);
	assert_int_equal(d->fsm.restore(&d->fsm, &bufs[0]), 0);  /* takes bufs[0].base */
	raft_free(bufs);
	assert_int_equal(krg_cluster_epoch(d), krg_cluster_epoch(c));
	assert_int_equal(krg_cluster_node_state(d, 1), KRG_NODE_UP);
	assert_int_equal(krg_cluster_node_state(d, 4), KRG_NODE_JOINING);
	assert_int_equal(krg_cluster_node_state(d, 2), KRG_NODE_ABSENT);
	assert_int_equal(krg_cluster_registry_get(d, "sched", "enabled", &v, &len), 0);
	assert_memory_equal(v, "mosix", 5);
	/* A damaged snapshot is refused, not half applied. */
	uint8_t *bad = raft_malloc(8);
	memset(bad, 0xff, 8);
	struct raft_buffer bb = { .base = bad, .len = 8 };
	assert_int_not_equal(d->fsm.restore(&d->fsm, &bb), 0);
	done(c);
	done(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(transitions), cmocka_unit_test(stale_and_bad),
					    cmocka_unit_test(registry_and_snapshot) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
