/* Unit tests of the exec service's pure helpers (exec_util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "proc/exec/exec-int.h"

static void test_stat(void **state)
{
	assert_int_equal(exec_parse_stat_state("12 (krg) S 1 2 3"), 'S');
	assert_int_equal(exec_parse_stat_state("12 (a) b) T 1 2 3"), 'T');
	assert_int_equal(exec_parse_stat_state("12 (krg)"), 0);
	assert_int_equal(exec_parse_stat_state("garbage"), 0);
}

static void test_path(void **state)
{
	char **v = exec_path_candidates("ls", "/bin::/usr/bin");
	assert_non_null(v);
	assert_string_equal(v[0], "/bin/ls");
	assert_string_equal(v[1], "ls");
	assert_string_equal(v[2], "/usr/bin/ls");
	assert_null(v[3]);
	exec_strv_free(v);
	v = exec_path_candidates("./x", "/bin");
	assert_string_equal(v[0], "./x");
	assert_null(v[1]);
	exec_strv_free(v);
	v = exec_path_candidates("sh", NULL);
	assert_string_equal(v[0], "/usr/local/bin/sh");
	exec_strv_free(v);
}

static void test_env_status(void **state)
{
	char *env[] = { "PATHX=1", "PATH=/a:/b", "HOME=/" };
	assert_string_equal(exec_env_get(env, 3, "PATH"), "/a:/b");
	assert_null(exec_env_get(env, 3, "PAT"));
	assert_int_equal(exec_shell_status(false, 3), 3);
	assert_int_equal(exec_shell_status(true, 11), 139);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_env_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
