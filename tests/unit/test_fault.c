/* test_fault.c — KRG_FAULT's parsing (src/lib/fault.c): points on and
 * off, values, numbers, and the refusal of a name that is no point. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/fault.h"

static void off_by_default(void **state)
{
	unsetenv("KRG_FAULT");
	char b[64], err[128];
	assert_false(krg_fault_on("mig-hold"));
	assert_null(krg_fault_value("mig-hold", b, sizeof(b)));
	assert_int_equal(krg_fault_long("ckpt-pause-ms", 7), 7);
	assert_int_equal(krg_fault_check(err, sizeof(err)), 0);
}

static void values(void **state)
{
	setenv("KRG_FAULT", "mig-hold:/tmp/h,ckpt-restore-fail,ckpt-pause-ms:1500,lazy-slow:", 1);
	char b[64], err[128];
	assert_true(krg_fault_on("mig-hold"));
	assert_string_equal(krg_fault_value("mig-hold", b, sizeof(b)), "/tmp/h");
	assert_true(krg_fault_on("ckpt-restore-fail"));
	assert_null(krg_fault_value("ckpt-restore-fail", b, sizeof(b)));
	assert_int_equal(krg_fault_long("ckpt-pause-ms", 0), 1500);
	assert_string_equal(krg_fault_value("lazy-slow", b, sizeof(b)), "");
	/* A prefix of a named point is not that point. */
	assert_false(krg_fault_on("mig"));
	assert_false(krg_fault_on("mig-no-lazy"));
	assert_int_equal(krg_fault_check(err, sizeof(err)), 0);
	/* A value too long for the buffer is not cut. */
	assert_null(krg_fault_value("mig-hold", b, 4));
	setenv("KRG_FAULT", "ckpt-pause-ms:soon", 1);
	assert_int_equal(krg_fault_long("ckpt-pause-ms", 3), 3);
}

static void unknown_refused(void **state)
{
	char err[128];
	setenv("KRG_FAULT", "mig-hold:/x,mig-hodl:/y", 1);
	assert_int_equal(krg_fault_check(err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'mig-hodl'"));
	setenv("KRG_FAULT", "KRG_MIG_TEST_HOLD", 1);
	assert_int_equal(krg_fault_check(err, sizeof(err)), -EINVAL);
	/* Every registered point is accepted. */
	size_t n;
	const struct krg_fault_point *p = krg_fault_points(&n);
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		setenv("KRG_FAULT", p[i].name, 1);
		assert_int_equal(krg_fault_check(err, sizeof(err)), 0);
	}
	unsetenv("KRG_FAULT");
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(off_by_default), cmocka_unit_test(values),
					    cmocka_unit_test(unknown_refused) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
