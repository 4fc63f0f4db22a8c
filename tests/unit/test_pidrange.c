/* test_pidrange.c — the per-node pid ranges (src/lib/pidrange.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "lib/pidrange.h"

/* Three nodes, pid_max 4194304: slot 0 for boot-time pids, then one per node. */
static void ranges_of_a_small_cluster(void **state)
{
	(void)state;
	struct krg_pidrange prev = { 0, 0 };
	for (uint32_t n = 0; n <= 3; n++) {
		struct krg_pidrange r = krg_pidrange_of(n, 3, 4194304);
		assert_int_equal(r.hi - r.lo, 4194304 / 5);
		assert_int_equal(r.lo, (pid_t)(4194304 / 5 * (n + 1)));
		assert_true(r.hi <= 4194304);
		if (n)
			assert_true(prev.hi <= r.lo); /* disjoint, in order */
		prev = r;
	}
}

/* The highest node id sets the slots, not the number of nodes. */
static void sparse_ids(void **state)
{
	(void)state;
	struct krg_pidrange a = krg_pidrange_of(1, 255, 4194304);
	struct krg_pidrange b = krg_pidrange_of(255, 255, 4194304);
	assert_int_equal(a.hi - a.lo, 4194304 / 257);
	assert_true(b.hi <= 4194304);
	assert_true(a.hi <= b.lo);
}

/* Too small to be worth it (a range overrun between two steers): none. */
static void too_small(void **state)
{
	(void)state;
	assert_int_equal(krg_pidrange_of(200, 255, 32768).lo, 0);
	assert_int_equal(krg_pidrange_of(4, 3, 4194304).lo, 0); /* not in the configuration */
	assert_int_equal(krg_pidrange_of(1, 3, 0).lo, 0);
	assert_true(krg_pidrange_of(3, 3, 32768).lo > 0); /* 6553 each */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ranges_of_a_small_cluster),
		cmocka_unit_test(sparse_ids),
		cmocka_unit_test(too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
