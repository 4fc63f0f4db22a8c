/* test_kdfs_meta.c — kdfs's metadata store alone (src/kdfs/meta*.c): ops
 * applied as the cluster log would apply them, results checked. Covers
 * readdir positions that survive changes, extended attributes, and the
 * lock table's conflict rules (meta_lock.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>
#include "kdfs_meta_fixture.h"

static uint64_t create(uint64_t parent, const char *name, uint32_t mode)
{
	return kmf_create(parent, name, mode, 0, 0);
}

static int unlink_name(uint64_t parent, const char *name)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Unlink u = KRG__KDFS__UNLINK__INIT;
	op.op_case = KRG__KDFS__OP__OP_UNLINK;
	op.unlink = &u;
	u.parent = parent;
	u.name = (char *)name;
	return kmf_status(&op);
}

struct seen {
	char names[64][32];
	uint64_t next[64];
	size_t n, stop_after;
};

static int collect(const char *name, uint64_t ino, uint32_t mode, uint64_t next, void *data)
{
	struct seen *s = data;
	if (s->n >= s->stop_after)
		return 1;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->next[s->n++] = next;
	return 0;
}

/* Entries removed between two readdir calls shift nothing. */
static void test_readdir_positions(void **state)
{
	uint64_t d = create(KDFS_ROOT_INO, "rd", S_IFDIR | 0755);
	char name[16];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		create(d, name, S_IFREG | 0644);
	}
	struct seen a = { .stop_after = 3 };
	assert_int_equal(kdfs_meta_readdir(kmf_meta, d, 0, collect, &a), 0);
	assert_int_equal(a.n, 3);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(unlink_name(d, a.names[i]), 0);
	struct seen b = { .stop_after = 64 };
	assert_int_equal(kdfs_meta_readdir(kmf_meta, d, a.next[2], collect, &b), 0);
	assert_int_equal(b.n, 7);
	for (size_t i = 0; i < b.n; i++)
		for (size_t j = 0; j < a.n; j++)
			assert_string_not_equal(b.names[i], a.names[j]);
	/* A rename over an existing name leaves one entry for it. */
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Rename rn = KRG__KDFS__RENAME__INIT;
	op.op_case = KRG__KDFS__OP__OP_RENAME;
	op.rename = &rn;
	rn.parent = rn.newparent = d;
	rn.name = b.names[0];
	rn.newname = b.names[1];
	assert_int_equal(kmf_status(&op), 0);
	struct seen c = { .stop_after = 64 };
	assert_int_equal(kdfs_meta_readdir(kmf_meta, d, 0, collect, &c), 0);
	assert_int_equal(c.n, 6);
}

static int setxattr_op(uint64_t ino, const char *name, const char *value, uint32_t flags)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetXattr sx = KRG__KDFS__SET_XATTR__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETXATTR;
	op.setxattr = &sx;
	sx.ino = ino;
	sx.name = (char *)name;
	sx.value.data = (uint8_t *)value;
	sx.value.len = strlen(value);
	sx.has_flags = true;
	sx.flags = flags;
	return kmf_status(&op);
}

static void test_xattrs(void **state)
{
	uint64_t f = create(KDFS_ROOT_INO, "xf", S_IFREG | 0644);
	assert_int_equal(setxattr_op(f, "user.b", "2", 0), 0);
	assert_int_equal(setxattr_op(f, "user.a", "1", XATTR_CREATE), 0);
	assert_int_equal(setxattr_op(f, "user.a", "x", XATTR_CREATE), -EEXIST);
	assert_int_equal(setxattr_op(f, "user.c", "3", XATTR_REPLACE), -ENODATA);
	assert_int_equal(setxattr_op(f, "user.b", "22", XATTR_REPLACE), 0);
	Krg__Kdfs__Inode *in;
	assert_int_equal(kdfs_meta_get(kmf_meta, f, &in), 0);
	assert_int_equal(in->n_xattrs, 2);
	assert_string_equal(in->xattrs[0]->name, "user.a");
	assert_string_equal(in->xattrs[1]->name, "user.b");
	assert_memory_equal(in->xattrs[1]->value.data, "22", 2);
	krg__kdfs__inode__free_unpacked(in, NULL);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__RemoveXattr rx = KRG__KDFS__REMOVE_XATTR__INIT;
	op.op_case = KRG__KDFS__OP__OP_REMOVEXATTR;
	op.removexattr = &rx;
	rx.ino = f;
	rx.name = "user.a";
	assert_int_equal(kmf_status(&op), 0);
	assert_int_equal(kmf_status(&op), -ENODATA);
	static char big[300 << 10];
	memset(big, 'v', sizeof(big) - 1);
	assert_int_equal(setxattr_op(f, "user.big", big, 0), -ENOSPC);
}

static int setlock(uint64_t ino, uint32_t node, uint64_t owner, uint32_t type, uint64_t start, uint64_t end,
		   bool flock, Krg__Kdfs__LockRange *conflict)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetLock sl = KRG__KDFS__SET_LOCK__INIT;
	Krg__Kdfs__LockRange l = KRG__KDFS__LOCK_RANGE__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETLOCK;
	op.setlock = &sl;
	sl.ino = ino;
	sl.lock = &l;
	l.node = node;
	l.owner = owner;
	l.type = type;
	l.start = start;
	l.end = end;
	l.has_flock = true;
	l.flock = flock;
	Krg__Kdfs__OpResult *r = kmf_apply(&op);
	int s = r->status;
	if (conflict && r->conflict)
		*conflict = *r->conflict;
	krg__kdfs__op_result__free_unpacked(r, NULL);
	return s;
}

static void test_locks(void **state)
{
	uint64_t f = create(KDFS_ROOT_INO, "lf", S_IFREG | 0644);
	Krg__Kdfs__LockRange c = { 0 };
	assert_int_equal(setlock(f, 1, 7, F_WRLCK, 0, 99, false, NULL), 0);
	assert_int_equal(setlock(f, 2, 7, F_WRLCK, 50, 60, false, &c), -EBUSY);
	assert_int_equal(c.node, 1);
	assert_int_equal(c.end, 99);
	assert_int_equal(setlock(f, 2, 7, F_RDLCK, 100, 200, false, NULL), 0);
	assert_int_equal(setlock(f, 2, 7, F_WRLCK, 0, UINT64_MAX, true, NULL), 0); /* flock: apart */
	/* The owner splits its own lock: [0,99] minus [40,59]. */
	assert_int_equal(setlock(f, 1, 7, F_UNLCK, 40, 59, false, NULL), 0);
	assert_int_equal(setlock(f, 2, 7, F_WRLCK, 40, 59, false, NULL), 0);
	assert_int_equal(setlock(f, 2, 8, F_WRLCK, 60, 60, false, NULL), -EBUSY); /* node 1 still has 60..99 */
	/* Same owner: a read lock downgrades in place. */
	assert_int_equal(setlock(f, 1, 7, F_RDLCK, 0, 99, false, NULL), -EBUSY); /* node 2 holds 40..59 */
	Krg__Kdfs__LockRange want = KRG__KDFS__LOCK_RANGE__INIT, out;
	want.node = 3;
	want.owner = 1;
	want.type = F_RDLCK;
	want.end = UINT64_MAX;
	assert_int_equal(kdfs_meta_getlk(kmf_meta, f, &want, &out), 0);
	assert_int_equal(out.type, F_WRLCK);
	/* Node 1 goes: its locks with it. */
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__DropLocks d = KRG__KDFS__DROP_LOCKS__INIT;
	op.op_case = KRG__KDFS__OP__OP_DROPLOCKS;
	op.droplocks = &d;
	d.node = 1;
	assert_int_equal(kmf_status(&op), 0);
	assert_int_equal(setlock(f, 2, 8, F_WRLCK, 60, 99, false, NULL), 0);
	/* Owner 7 on node 2 closes: only its fcntl locks go. */
	d.node = 2;
	d.has_ino = d.has_owner = d.has_flock = true;
	d.ino = f;
	d.owner = 7;
	d.flock = false;
	assert_int_equal(kmf_status(&op), 0);
	assert_int_equal(setlock(f, 3, 1, F_WRLCK, 40, 59, false, NULL), 0);
	assert_int_equal(setlock(f, 3, 1, F_WRLCK, 0, 0, true, NULL), -EBUSY); /* node 2's flock stays */
	assert_int_equal(setlock(f, 3, 1, F_RDLCK, 5, 1, false, NULL), -EINVAL);
}

static Krg__Kdfs__OpResult *fill(uint64_t ino, uint32_t node, uint64_t version, bool done)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkFill cf = KRG__KDFS__CHUNK_FILL__INIT;
	op.op_case = KRG__KDFS__OP__OP_CHUNK_FILL;
	op.chunk_fill = &cf;
	cf.ino = ino;
	cf.node = node;
	cf.version = version;
	cf.has_done = true;
	cf.done = done;
	return kmf_apply(&op);
}

/* A repair's fill: the node takes writes (filling), the version moves on;
 * done, it is a replica; a drop of a filling node keeps the version. */
static void test_chunk_fill(void **state)
{
	uint64_t f = create(KDFS_ROOT_INO, "cf", S_IFREG | 0644);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkAlloc ca = KRG__KDFS__CHUNK_ALLOC__INIT;
	uint32_t nodes[] = { 1, 2 };
	op.op_case = KRG__KDFS__OP__OP_CHUNK_ALLOC;
	op.chunk_alloc = &ca;
	ca.ino = f;
	ca.nodes = nodes;
	ca.n_nodes = 2;
	assert_int_equal(kmf_status(&op), 0);
	Krg__Kdfs__OpResult *r = fill(f, 3, 1, false);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->chunk->version, 2);
	assert_int_equal(r->chunk->n_filling, 1);
	krg__kdfs__op_result__free_unpacked(r, NULL);
	r = fill(f, 3, 1, true); /* the version moved on: stale */
	assert_int_equal(r->status, -ESTALE);
	krg__kdfs__op_result__free_unpacked(r, NULL);
	r = fill(f, 2, 2, false); /* already a replica */
	assert_int_equal(r->status, -EEXIST);
	krg__kdfs__op_result__free_unpacked(r, NULL);
	r = fill(f, 3, 2, true);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->chunk->n_nodes, 3);
	assert_int_equal(r->chunk->n_filling, 0);
	krg__kdfs__op_result__free_unpacked(r, NULL);
	/* A second fill, then its node dropped: the version stays. */
	r = fill(f, 4, 2, false);
	assert_int_equal(r->status, 0);
	krg__kdfs__op_result__free_unpacked(r, NULL);
	Krg__Kdfs__ChunkDrop cd = KRG__KDFS__CHUNK_DROP__INIT;
	op.op_case = KRG__KDFS__OP__OP_CHUNK_DROP;
	op.chunk_drop = &cd;
	cd.ino = f;
	cd.node = 4;
	cd.version = 1;
	r = kmf_apply(&op);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->chunk->version, 3);
	assert_int_equal(r->chunk->n_filling, 0);
	assert_int_equal(r->chunk->n_nodes, 3);
	krg__kdfs__op_result__free_unpacked(r, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readdir_positions),
		cmocka_unit_test(test_xattrs),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_chunk_fill),
	};
	return cmocka_run_group_tests(tests, kmf_setup, kmf_teardown);
}
