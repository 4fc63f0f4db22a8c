/* Unit tests for Kerrighed node lists (src/lib/nodelist.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include "lib/nodelist.h"

static void roundtrip(const char *in, const char *out, unsigned count)
{
	struct krg_nodeset s;
	char err[128], buf[256];
	assert_int_equal(krg_nodelist_parse(in, &s, err, sizeof(err)), 0);
	assert_int_equal(krg_nodeset_count(&s), count);
	krg_nodelist_format(&s, buf, sizeof(buf));
	assert_string_equal(buf, out);
}

static void test_parse(void **state)
{
	roundtrip("1", "1", 1);
	roundtrip("1-3,5", "1-3,5", 4);
	roundtrip("5,1,2,3", "1-3,5", 4);
	roundtrip("0-255", "0-255", 256);
	roundtrip("7-7", "7", 1);
}

static void test_bad(void **state)
{
	const char *bad[] = { "", "a", "1-", "-1", "1,,2", "3-1", "256", "1 2", "1,", "1-2-3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct krg_nodeset s;
		char err[128] = "";
		if (krg_nodelist_parse(bad[i], &s, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
