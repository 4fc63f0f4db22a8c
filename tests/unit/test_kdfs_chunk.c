/* test_kdfs_chunk.c — a chunk replica's version rules (src/kdfs/chunk.c,
 * docs/kdfs.md "Reads", "fsync"): a write moves the replica up to its
 * version and one made with an older map is refused (-ESTALE); a read or
 * an fsync with an older map is refused too, while one with a newer map
 * (a drop or a fill moved the chunk on, and its bump has not reached this
 * copy) is served — refusing it made every copy of a chunk fail an fsync
 * racing a node's drain (EIO). A flipped byte on disk fails the read. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "kdfs/chunk.h"

struct fixture {
	char dir[64];
	struct kdfs_chunks *cs;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_kdfs_chunk.XXXXXX");
	if (!mkdtemp(f->dir) || kdfs_chunks_open(f->dir, &f->cs) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kdfs_chunks_close(f->cs);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static void test_versions(void **state)
{
	struct fixture *f = *state;
	char buf[100], out[100];
	memset(buf, 'a', sizeof(buf));
	/* Written at version 3: the replica is at 3. */
	assert_int_equal(kdfs_chunk_write(f->cs, 7, 0, 1, 3, 10, buf, sizeof(buf)), 0);
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 3, 10, out, sizeof(out)), 0);
	assert_memory_equal(out, buf, sizeof(buf));
	assert_int_equal(kdfs_chunk_sync(f->cs, 7, 0, 1, 3), 0);
	/* A map older than the replica: refused, the caller reads the map again. */
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 2, 10, out, sizeof(out)), -ESTALE);
	assert_int_equal(kdfs_chunk_sync(f->cs, 7, 0, 1, 2), -ESTALE);
	assert_int_equal(kdfs_chunk_write(f->cs, 7, 0, 1, 2, 10, buf, sizeof(buf)), -ESTALE);
	/* A newer map (the bump is on the way): the copy serves and syncs. */
	memset(out, 0, sizeof(out));
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 4, 10, out, sizeof(out)), 0);
	assert_memory_equal(out, buf, sizeof(buf));
	assert_int_equal(kdfs_chunk_sync(f->cs, 7, 0, 1, 4), 0);
	/* Neither moved it: a write at 3 is still taken. The bump (an empty
	 * write at 4) moves it, and then 3 is refused. */
	assert_int_equal(kdfs_chunk_write(f->cs, 7, 0, 1, 3, 10, buf, sizeof(buf)), 0);
	assert_int_equal(kdfs_chunk_write(f->cs, 7, 0, 1, 4, 0, NULL, 0), 0);
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 3, 10, out, sizeof(out)), -ESTALE);
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 4, 10, out, sizeof(out)), 0);
	assert_memory_equal(out, buf, sizeof(buf));
	/* Bytes never written read as zeros. */
	assert_int_equal(kdfs_chunk_read(f->cs, 7, 0, 1, 4, 0, out, 10), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(out[i], 0);
	/* No replica at all. */
	assert_int_equal(kdfs_chunk_read(f->cs, 8, 0, 1, 1, 0, out, 10), -ENOENT);
}

static void test_bad_block(void **state)
{
	struct fixture *f = *state;
	char buf[4096], out[4096], path[128];
	memset(buf, 'b', sizeof(buf));
	assert_int_equal(kdfs_chunk_write(f->cs, 9, 2, 5, 1, 0, buf, sizeof(buf)), 0);
	snprintf(path, sizeof(path), "%s/chunks/%016llx/%u-%llu", f->dir, 9ull, 2u, 5ull);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "c", 1, 100), 1);
	close(fd);
	assert_int_equal(kdfs_chunk_read(f->cs, 9, 2, 5, 1, 0, out, sizeof(out)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_block, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
