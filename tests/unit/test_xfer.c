/* Unit tests for src/proc/xfer.c: the source's listing and file cursor,
 * and the target's piece writes, on real files in a temporary directory
 * (the net and loop parts are covered by the ckpt and migrate suites). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/fileio.h"
#include "proc/xfer.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/migrate.pb-c.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/krg-xfer-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	krg_rm_tree(AT_FDCWD, dir, NULL);
	return 0;
}

static void put(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool no_b(const char *name)
{
	return strcmp(name, "b");
}

/* Regular files only, sorted, filtered, at most max; then each file in
 * pieces of at most chunk bytes, the cursor moving file by file. */
static void test_src(void **state)
{
	put("c", "0123456789");
	put("a", "xyz");
	put("b", "skipped");
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	struct krg_xfer_src s = { .fd = -1 };
	assert_int_equal(krg_xfer_src_open(&s, dir, no_b, 16), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "a");
	assert_string_equal(s.names[1], "c");
	char err[256];
	uint8_t buf[8];
	/* a: one piece of 3 bytes, its last */
	assert_int_equal(krg_xfer_src_file(&s, err, sizeof(err)), 0);
	assert_int_equal(s.size, 3);
	size_t want = krg_xfer_src_want(&s, 4);
	assert_int_equal(want, 3);
	assert_int_equal(krg_xfer_read(s.fd, s.off, buf, want), 0);
	assert_memory_equal(buf, "xyz", 3);
	assert_false(krg_xfer_src_sent(&s, want, true));
	assert_int_equal(s.fd, -1);
	/* c: 4 + 4 + 2 */
	assert_int_equal(krg_xfer_src_file(&s, err, sizeof(err)), 0);
	size_t total = 0;
	bool done = false;
	while (!done) {
		want = krg_xfer_src_want(&s, 4);
		assert_true(want <= 4);
		assert_int_equal(krg_xfer_read(s.fd, s.off, buf, want), 0);
		assert_memory_equal(buf, "0123456789" + s.off, want);
		total += want;
		done = krg_xfer_src_sent(&s, want, s.off + want == s.size);
	}
	assert_int_equal(total, 10);
	/* Reading past the end: the file shrank. */
	put("e", "ab");
	char path[128];
	snprintf(path, sizeof(path), "%s/e", dir);
	int fd = open(path, O_RDONLY);
	assert_int_equal(krg_xfer_read(fd, 0, buf, 4), -EIO);
	close(fd);
	krg_xfer_src_free(&s);
	/* Nothing to send: -ENOENT; no directory: -errno. */
	assert_int_equal(krg_xfer_src_open(&s, sub, NULL, 16), -ENOENT);
	krg_xfer_src_free(&s);
	assert_int_equal(krg_xfer_src_open(&s, "/nonexistent/krg", NULL, 16), -ENOENT);
	krg_xfer_src_free(&s);
}

/* Pieces in any order make the file; the last one cuts it; bad names and
 * too much are refused. */
static void test_rx_write(void **state)
{
	struct krg_xfer_rx x = { 0 };
	assert_int_equal(krg_xfer_rx_write(&x, dir, "f", 4, "4567", 4, false, (uid_t)-1, (gid_t)-1, 100), 0);
	assert_int_equal(krg_xfer_rx_write(&x, dir, "f", 0, "0123", 4, false, (uid_t)-1, (gid_t)-1, 100), 0);
	assert_int_equal(x.total, 8);
	char path[128], got[16] = "";
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(krg_read_small(path, got, sizeof(got)), 8);
	assert_string_equal(got, "01234567");
	/* A file longer from an earlier transfer: cut at the last piece. */
	assert_int_equal(krg_xfer_rx_write(&x, dir, "f", 2, "ab", 2, true, (uid_t)-1, (gid_t)-1, 100), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(krg_read_small(path, got, sizeof(got)), 4);
	assert_string_equal(got, "01ab");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(krg_xfer_rx_write(&x, dir, "../f", 0, "x", 1, false, (uid_t)-1, (gid_t)-1, 100), -EINVAL);
	assert_int_equal(krg_xfer_rx_write(&x, dir, "..", 0, "x", 1, false, (uid_t)-1, (gid_t)-1, 100), -EINVAL);
	assert_int_equal(krg_xfer_rx_write(&x, dir, "", 0, "x", 1, false, (uid_t)-1, (gid_t)-1, 100), -EINVAL);
	assert_int_equal(krg_xfer_rx_write(&x, dir, "g", 200, "x", 1, false, (uid_t)-1, (gid_t)-1, 100), -EFBIG);
	x.total = 99;
	assert_int_equal(krg_xfer_rx_write(&x, dir, "g", 0, "xy", 2, false, (uid_t)-1, (gid_t)-1, 100), -EFBIG);
	/* A symlink in its place is not followed. */
	char link[128];
	snprintf(link, sizeof(link), "%s/l", dir);
	assert_int_equal(symlink("/etc/passwd", link), 0);
	x.total = 0;
	assert_int_equal(krg_xfer_rx_write(&x, dir, "l", 0, "x", 1, false, (uid_t)-1, (gid_t)-1, 100), -ELOOP);
}

/* A forwarded answer's status and text, read from either service's
 * Result; anything else, or a status that is no errno, is refused. */
static void test_result_read(void **state)
{
	uint8_t buf[256];
	char text[64];
	Krg__Ckptsvc__Result c = KRG__CKPTSVC__RESULT__INIT;
	c.status = -EPERM;
	c.text = "not yours";
	size_t n = krg__ckptsvc__result__pack(&c, buf);
	assert_int_equal(krg_result_read(&krg__ckptsvc__result__descriptor, buf, n, text, sizeof(text)), -EPERM);
	assert_string_equal(text, "not yours");
	Krg__Mig__Result m = KRG__MIG__RESULT__INIT;
	m.status = 0;
	m.has_node = true;
	m.node = 3;
	n = krg__mig__result__pack(&m, buf);
	strcpy(text, "x");
	assert_int_equal(krg_result_read(&krg__mig__result__descriptor, buf, n, text, sizeof(text)), 0);
	assert_string_equal(text, "");
	m.status = 5; /* no errno */
	n = krg__mig__result__pack(&m, buf);
	assert_int_equal(krg_result_read(&krg__mig__result__descriptor, buf, n, text, sizeof(text)), -EBADMSG);
	m.status = -100000;
	n = krg__mig__result__pack(&m, buf);
	assert_int_equal(krg_result_read(&krg__mig__result__descriptor, buf, n, text, sizeof(text)), -EBADMSG);
	const uint8_t junk[] = { 0xff, 0xff, 0xff };
	assert_int_equal(krg_result_read(&krg__mig__result__descriptor, junk, sizeof(junk), text, sizeof(text)), -EBADMSG);
	/* A message without status and text is no Result. */
	assert_int_equal(krg_result_read(&krg__mig__got__descriptor, buf, 0, text, sizeof(text)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_src, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_write, setup, teardown),
		cmocka_unit_test(test_result_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
