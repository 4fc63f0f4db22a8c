/* test_sched_policies.c — krgd's built-in scheduler policies
 * (src/proc/sched/policy_*.c) on made-up node and process figures:
 * least_loaded's choice and ties, round_robin's turn and wrap, mosix's
 * threshold (no ping-pong), I/O and age filters, minimum interval, and
 * its self-adaptation from verdicts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proc/sched/sched-int.h"

static void defaults(const struct krg_sched_policy_ops *ops, double *p)
{
	for (size_t i = 0; i < ops->n_params; i++)
		p[i] = ops->params[i].def;
}

static struct krg_sched_node node(uint32_t id, double cpus, double load1, uint32_t krg, uint32_t runnable, bool self)
{
	return (struct krg_sched_node){ .id = id, .self = self, .cpus = cpus, .load1 = load1, .load_norm = load1 / cpus,
					.krg_procs = krg, .runnable = runnable, .run_norm = runnable / cpus };
}

static void least_loaded(void **state)
{
	const struct krg_sched_policy_ops *o = &sched_least_loaded;
	uint32_t pick = 0;
	struct krg_sched_node n[3] = { node(1, 2, 1.0, 0, 0, true), node(2, 4, 1.0, 5, 0, false), node(3, 1, 0.9, 0, 0, false) };
	assert_int_equal(o->place(NULL, NULL, n, 3, &pick), 0);
	assert_int_equal(pick, 2);  /* 0.25 per CPU beats 0.5 and 0.9 */
	/* Same load per CPU: fewer krg processes, then the deciding node. */
	struct krg_sched_node t[3] = { node(1, 1, 0.5, 2, 0, false), node(2, 1, 0.5, 1, 0, false), node(3, 1, 0.5, 1, 0, true) };
	assert_int_equal(o->place(NULL, NULL, t, 3, &pick), 0);
	assert_int_equal(pick, 3);
	assert_int_equal(o->place(NULL, NULL, t, 0, &pick), -EAGAIN);
}

static void round_robin(void **state)
{
	const struct krg_sched_policy_ops *o = &sched_round_robin;
	void *st = NULL;
	assert_int_equal(o->init(&st), 0);
	struct krg_sched_node n[3] = { node(1, 1, 0, 0, 0, true), node(2, 1, 0, 0, 0, false), node(5, 1, 0, 0, 0, false) };
	uint32_t got[5];
	for (int i = 0; i < 5; i++)
		assert_int_equal(o->place(st, NULL, n, 3, &got[i]), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 2);
	assert_int_equal(got[2], 5);
	assert_int_equal(got[3], 1);
	assert_int_equal(got[4], 2);
	/* Node 5 left: after 2 comes 1 again. */
	assert_int_equal(o->place(st, NULL, n, 2, &got[0]), 0);
	assert_int_equal(got[0], 1);
	assert_int_equal(o->place(st, NULL, n, 0, &got[0]), -EAGAIN);
	o->fini(st);
}

static struct krg_sched_proc proc(uint32_t id, double cpu, double io, uint64_t age)
{
	return (struct krg_sched_proc){ .id = id, .runnable = true, .cpu_pct = cpu, .io_kbps = io, .age_ms = age };
}

static void mosix_moves(void **state)
{
	const struct krg_sched_policy_ops *o = &sched_mosix;
	double p[KRG_SCHED_MAX_PARAMS];
	defaults(o, p);
	void *st = NULL;
	assert_int_equal(o->init(&st), 0);
	/* 4 runnable on this 1-CPU node, node 2 (1 CPU) idle: two move (4-0
	 * then 3-1 exceed the threshold of 1.5; 2-2 does not). */
	struct krg_sched_node n[2] = { node(1, 1, 4, 4, 4, true), node(2, 1, 0, 0, 0, false) };
	struct krg_sched_proc ps[4] = { proc(11, 90, 0, 60000), proc(12, 99, 0, 60000), proc(13, 50, 0, 60000),
					proc(14, 95, 5000, 60000) };
	struct krg_sched_move mv[8];
	int k = o->balance(st, p, n, 2, ps, 4, mv, 8);
	assert_int_equal(k, 2);
	/* The busiest first, never the I/O-heavy one (14). */
	assert_int_equal(mv[0].id, 12);
	assert_int_equal(mv[1].id, 11);
	assert_int_equal(mv[0].node, 2);
	/* Within min_interval_ms of a decision that moved: nothing. */
	assert_int_equal(o->balance(st, p, n, 2, ps, 4, mv, 8), 0);
	o->fini(st);

	/* A small gap: nothing, whatever the interval. */
	assert_int_equal(o->init(&st), 0);
	struct krg_sched_node m[2] = { node(1, 1, 2, 2, 2, true), node(2, 1, 1, 1, 1, false) };
	assert_int_equal(o->balance(st, p, m, 2, ps, 2, mv, 8), 0);
	/* Young processes stay (min_age_ms). */
	p[3] = 120000;
	assert_int_equal(o->balance(st, p, n, 2, ps, 3, mv, 8), 0);
	o->fini(st);
}

static void mosix_adapts(void **state)
{
	const struct krg_sched_policy_ops *o = &sched_mosix;
	double p[KRG_SCHED_MAX_PARAMS], out[KRG_SCHED_MAX_PARAMS];
	defaults(o, p);
	void *st = NULL;
	assert_int_equal(o->init(&st), 0);
	struct krg_sched_verdict bad = { .id = 1, .node = 2, .useful = false, .cost_ms = 400 };
	o->observe(st, p, &bad);
	o->adapted(st, p, out);
	assert_true(out[0] > p[0] * 1.4);   /* threshold raised by half */
	assert_true(out[1] >= p[1] * 1.9);  /* interval doubled */
	assert_true(out[3] >= 400);         /* processes younger than a move's cost stay */
	for (int i = 0; i < 10; i++)
		o->observe(st, p, &bad);
	o->adapted(st, p, out);
	assert_true(out[0] <= p[0] * 4 + 1e-9);  /* bounded */
	assert_true(out[1] <= p[1] * 16 + 1e-9);
	struct krg_sched_verdict good = { .id = 2, .node = 2, .useful = true, .cost_ms = 400 };
	double before = out[0];
	o->observe(st, p, &good);
	o->adapted(st, p, out);
	assert_true(out[0] < before);
	/* adaptive = 0: the configured values. */
	p[4] = 0;
	o->adapted(st, p, out);
	assert_true(out[0] == p[0] && out[1] == p[1]);
	o->fini(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(least_loaded), cmocka_unit_test(round_robin),
					    cmocka_unit_test(mosix_moves), cmocka_unit_test(mosix_adapts) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
