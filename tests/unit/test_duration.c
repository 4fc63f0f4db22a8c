/* Unit tests for durations people type (src/lib/duration.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include "lib/duration.h"

static void ok(const char *in, uint64_t want)
{
	uint64_t ms = 0;
	char err[128] = "";
	if (krg_duration_parse(in, &ms, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", in, err);
	assert_int_equal(ms, want);
}

static void test_good(void **state)
{
	ok("2", 2000);
	ok("2s", 2000);
	ok("500ms", 500);
	ok("1.5s", 1500);
	ok("2m", 120000);
	ok("1h30m", 5400000);
	ok("1d", 86400000);
	ok("0", 0);
}

static void test_bad(void **state)
{
	const char *bad[] = { "", "s", "1x", "-1s", "1 s", "1s2", "abc", "0.5ms", "1.s.", "2ss" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ms;
		char err[128] = "";
		if (krg_duration_parse(bad[i], &ms, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(err) > 0 && !strchr(err, '\n'));
	}
	uint64_t ms;
	char err[128];
	assert_int_equal(krg_duration_parse("50d", &ms, err, sizeof(err)), -ERANGE);
}

static void test_format(void **state)
{
	char b[32];
	krg_duration_format(500, b, sizeof(b));
	assert_string_equal(b, "500 ms");
	krg_duration_format(2000, b, sizeof(b));
	assert_string_equal(b, "2 s");
	krg_duration_format(600000, b, sizeof(b));
	assert_string_equal(b, "10 min");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
