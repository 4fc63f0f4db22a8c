/* test_service.c — the start order of krgd's service table
 * (krg_service_order, src/lib/service.c): needs first, table order
 * otherwise, and the refusal of a missing need, a cycle or a name twice. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "lib/service.h"

#define NEEDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const struct krg_service a = { .name = "a" };
static const struct krg_service b = { .name = "b", .needs = NEEDS("c") };
static const struct krg_service c = { .name = "c", .needs = NEEDS("a") };
static const struct krg_service d = { .name = "d", .needs = NEEDS("a", "b") };
static const struct krg_service x = { .name = "x", .needs = NEEDS("y") };
static const struct krg_service y = { .name = "y", .needs = NEEDS("x") };

static void table_order_kept(void **state)
{
	const struct krg_service *t[] = { &a, &c, &b, &d };
	size_t o[4];
	char err[128];
	assert_int_equal(krg_service_order(t, 4, o, err, sizeof(err)), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(o[i], i);
}

static void needs_first(void **state)
{
	/* d before its needs, b before c: each goes after what it needs,
	 * the rest keeps table order. */
	const struct krg_service *t[] = { &d, &b, &c, &a };
	size_t o[4];
	char err[128];
	assert_int_equal(krg_service_order(t, 4, o, err, sizeof(err)), 0);
	const char *want[] = { "a", "c", "b", "d" };
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(t[o[i]]->name, want[i]);
}

static void refusals(void **state)
{
	size_t o[4];
	char err[128];
	const struct krg_service *missing[] = { &a, &b };
	assert_int_equal(krg_service_order(missing, 2, o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "'b' needs 'c'"));

	const struct krg_service *cycle[] = { &a, &x, &y };
	assert_int_equal(krg_service_order(cycle, 3, o, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "'x'"));

	const struct krg_service *twice[] = { &a, &c, &a };
	assert_int_equal(krg_service_order(twice, 3, o, err, sizeof(err)), -EEXIST);

	assert_int_equal(krg_service_order(NULL, 0, o, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_order_kept),
		cmocka_unit_test(needs_first),
		cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
