/* Unit tests for the cluster key file rules (src/lib/key.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/key.h"

static char dir[] = "/tmp/krg-test-key-XXXXXX";

static void test_generate_load(void **state)
{
	char path[256], err[256] = "";
	uint8_t k1[KRG_KEY_BYTES], k2[KRG_KEY_BYTES];
	struct stat st;
	snprintf(path, sizeof(path), "%s/a.key", dir);
	assert_int_equal(krg_key_generate(path, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(krg_key_load(path, k1, err, sizeof(err)), 0);
	assert_int_equal(krg_key_load(path, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, sizeof(k1));
	/* never overwrite an existing key */
	assert_int_equal(krg_key_generate(path, err, sizeof(err)), -EEXIST);
	/* group-readable is refused with the fix in the message */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(krg_key_load(path, k1, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(krg_key_load(path, k1, err, sizeof(err)), -EPERM);
	unlink(path);
}

static void test_bad_content(void **state)
{
	char path[256], err[256] = "";
	uint8_t k[KRG_KEY_BYTES];
	snprintf(path, sizeof(path), "%s/b.key", dir);
	FILE *f = fopen(path, "w");
	fputs("abcd\n", f);
	fclose(f);
	chmod(path, 0600);
	assert_int_equal(krg_key_load(path, k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "hex digits"));
	unlink(path);
	assert_int_equal(krg_key_load(path, k, err, sizeof(err)), -ENOENT);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_load),
		cmocka_unit_test(test_bad_content),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
