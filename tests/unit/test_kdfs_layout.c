/* test_kdfs_layout.c — kdfs striping (src/kdfs/layout.c, docs/kdfs.md
 * "Striping"): the offset -> chunk map against a model built unit by
 * unit, the head each chunk keeps under a size (truncate), and the
 * metadata ops that carry a layout: a file inherits its directory's,
 * else the proposer's default; a file with data cannot change it; a
 * SetAttr drops exactly the chunks the map puts wholly past the size. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "kdfs/layout.h"
#include "kdfs_meta_fixture.h"

#define MIB (1ull << 20)

static const struct {
	uint32_t count;
	uint64_t unit;
} layouts[] = { { 1, KDFS_CHUNK_SIZE }, { 3, 64 << 10 }, { 4, 1 << 20 }, { 2, KDFS_CHUNK_SIZE }, { 5, 8 << 20 } };

/* Not striped: chunk i holds [i*CHUNK, (i+1)*CHUNK), as before striping
 * (a file with no layout fields maps so: compatibility). */
static void test_unstriped(void **state)
{
	struct kdfs_layout l;
	Krg__Kdfs__Inode in = KRG__KDFS__INODE__INIT;
	kdfs_layout_of(&in, &l);
	assert_int_equal(l.count, 1);
	const uint64_t offs[] = { 0, 1, KDFS_CHUNK_SIZE - 1, KDFS_CHUNK_SIZE, 5 * KDFS_CHUNK_SIZE + 12345, 1ull << 40 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct kdfs_extent e;
		kdfs_layout_map(&l, offs[i], &e);
		assert_int_equal(e.index, offs[i] / KDFS_CHUNK_SIZE);
		assert_int_equal(e.off, offs[i] % KDFS_CHUNK_SIZE);
		assert_int_equal(e.len, KDFS_CHUNK_SIZE - offs[i] % KDFS_CHUNK_SIZE);
		assert_int_equal(kdfs_layout_keep(&l, offs[i], e.index), e.off);
	}
	/* A stripe size alone, or count 1, changes nothing. */
	kdfs_layout_make(&l, 1, 64 << 10);
	assert_int_equal(l.unit, KDFS_CHUNK_SIZE);
	assert_false(kdfs_layout_valid(3, 96 << 10));
	assert_false(kdfs_layout_valid(3, 32 << 10));
	assert_false(kdfs_layout_valid(0, 1 << 20));
	assert_false(kdfs_layout_valid(65, 1 << 20));
	assert_true(kdfs_layout_valid(64, KDFS_CHUNK_SIZE));
}

/* The map against a model: unit u goes to group u mod K, the groups' own
 * bytes in unit order, cut into chunks c*K + g. Every unit of the first
 * few hundred MiB, and its pieces' contiguity. */
static void test_map_model(void **state)
{
	for (size_t t = 0; t < sizeof(layouts) / sizeof(layouts[0]); t++) {
		struct kdfs_layout l;
		kdfs_layout_make(&l, layouts[t].count, layouts[t].unit);
		uint64_t gfill[64] = { 0 }; /* model: bytes each group holds so far */
		uint64_t end = 3 * KDFS_CHUNK_SIZE * l.count + 5 * l.unit;
		for (uint64_t u = 0; u * l.unit < end; u++) {
			uint32_t g = (uint32_t)(u % l.count);
			uint64_t goff = gfill[g];
			gfill[g] += l.unit;
			uint64_t pts[] = { 0, 1, l.unit / 2, l.unit - 1 };
			for (size_t p = 0; p < 4; p++) {
				struct kdfs_extent e;
				kdfs_layout_map(&l, u * l.unit + pts[p], &e);
				assert_int_equal(e.group, g);
				assert_int_equal(e.goff, goff + pts[p]);
				assert_int_equal(e.index, (goff + pts[p]) / KDFS_CHUNK_SIZE * l.count + g);
				assert_int_equal(e.off, (goff + pts[p]) % KDFS_CHUNK_SIZE);
				assert_int_equal(e.len, l.unit - pts[p]);
				assert_true(e.off + e.len <= KDFS_CHUNK_SIZE);
				assert_int_equal(kdfs_layout_group(&l, e.index), g);
			}
			struct kdfs_extent e;
			kdfs_layout_map(&l, u * l.unit, &e);
			if (e.off == 0) /* a chunk's first byte */
				assert_int_equal(kdfs_layout_first(&l, e.index), u * l.unit);
		}
	}
}

/* keep(size, index) is the furthest byte below size the map puts in the
 * chunk: computed from the map, piece by piece, for sizes around unit and
 * chunk edges. */
static void test_keep(void **state)
{
	for (size_t t = 0; t < sizeof(layouts) / sizeof(layouts[0]); t++) {
		struct kdfs_layout l;
		kdfs_layout_make(&l, layouts[t].count, layouts[t].unit);
		uint64_t span = 2 * KDFS_CHUNK_SIZE * l.count;
		uint64_t sizes[] = { 0, 1, l.unit - 1, l.unit, l.unit + 7, 3 * l.unit + 1, KDFS_CHUNK_SIZE,
				     KDFS_CHUNK_SIZE * l.count, KDFS_CHUNK_SIZE * l.count + l.unit / 2,
				     span - 1, span, span + 3 * l.unit + 100 };
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint64_t want[256] = { 0 };
			for (uint64_t off = 0; off < sizes[s];) {
				struct kdfs_extent e;
				kdfs_layout_map(&l, off, &e);
				uint64_t n = e.len < sizes[s] - off ? e.len : sizes[s] - off;
				assert_true(e.index < 256);
				if (e.off + n > want[e.index])
					want[e.index] = e.off + n;
				off += n;
			}
			for (uint64_t i = 0; i < 256; i++)
				assert_int_equal(kdfs_layout_keep(&l, sizes[s], i), want[i]);
		}
	}
}

/* A repair's target preference: copies of the chunk's stripe row (its
 * file's other groups at the same depth), replicas and fills alike. */
static void test_row_share(void **state)
{
	Krg__Kdfs__Attr a = KRG__KDFS__ATTR__INIT;
	Krg__Kdfs__Inode in = KRG__KDFS__INODE__INIT;
	Krg__Kdfs__Chunk ch[6], *chp[6];
	/* 3 groups: row 0 is chunks 0, 1, 2; row 1 is 3, 4, 5. */
	uint32_t nodes[6][2] = { { 1, 2 }, { 2, 3 }, { 3, 1 }, { 4, 0 }, { 1, 0 }, { 2, 0 } };
	uint32_t fill5 = 4;
	in.attr = &a;
	in.has_stripe_count = in.has_stripe_size = true;
	in.stripe_count = 3;
	in.stripe_size = 1u << 20;
	for (int i = 0; i < 6; i++) {
		krg__kdfs__chunk__init(&ch[i]);
		ch[i].index = (uint32_t)i;
		ch[i].nodes = nodes[i];
		ch[i].n_nodes = nodes[i][1] ? 2 : 1;
		chp[i] = &ch[i];
	}
	ch[5].filling = &fill5;
	ch[5].n_filling = 1;
	in.chunks = chp;
	in.n_chunks = 6;
	assert_int_equal(kdfs_layout_row_share(&in, 0, 1), 1); /* chunk 2 */
	assert_int_equal(kdfs_layout_row_share(&in, 0, 3), 2); /* chunks 1, 2 */
	assert_int_equal(kdfs_layout_row_share(&in, 1, 2), 1); /* chunk 0, not itself */
	assert_int_equal(kdfs_layout_row_share(&in, 3, 4), 1); /* chunk 5 being filled there */
	assert_int_equal(kdfs_layout_row_share(&in, 3, 1), 1); /* chunk 4; row 0's do not count */
	assert_int_equal(kdfs_layout_row_share(&in, 4, 3), 0);
	/* Not striped: a chunk is its own row. */
	in.has_stripe_count = in.has_stripe_size = false;
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(kdfs_layout_row_share(&in, 0, n), 0);
	(void)state;
}

/* ---- the ops ---- */

static int set_layout(uint64_t ino, uint32_t count, uint32_t size)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetLayout sl = KRG__KDFS__SET_LAYOUT__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETLAYOUT;
	op.setlayout = &sl;
	sl.ino = ino;
	sl.has_stripe_count = count > 0;
	sl.stripe_count = count;
	sl.has_stripe_size = size > 0;
	sl.stripe_size = size;
	return kmf_status(&op);
}

static void layout(uint64_t ino, struct kdfs_layout *l, size_t *chunks)
{
	Krg__Kdfs__Inode *in;
	assert_int_equal(kdfs_meta_get(kmf_meta, ino, &in), 0);
	kdfs_layout_of(in, l);
	if (chunks)
		*chunks = in->n_chunks;
	krg__kdfs__inode__free_unpacked(in, NULL);
}

static void alloc(uint64_t ino, uint32_t index)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkAlloc ca = KRG__KDFS__CHUNK_ALLOC__INIT;
	uint32_t nodes[] = { 1, 2 };
	op.op_case = KRG__KDFS__OP__OP_CHUNK_ALLOC;
	op.chunk_alloc = &ca;
	ca.ino = ino;
	ca.index = index;
	ca.nodes = nodes;
	ca.n_nodes = 2;
	assert_int_equal(kmf_status(&op), 0);
}

static void test_ops(void **state)
{
	struct kdfs_layout l;
	size_t n;
	/* No directory layout: a file takes the op's default; an old Create
	 * (no default) makes an unstriped file; a directory takes none. */
	uint64_t f = kmf_create(KDFS_ROOT_INO, "f", S_IFREG | 0644, 3, 8 << 20);
	layout(f, &l, NULL);
	assert_int_equal(l.count, 3);
	assert_int_equal(l.unit, 8 << 20);
	/* A writer that mapped with another striping (a set won the race on
	 * the empty file) is told to map again. */
	Krg__Kdfs__Op aop = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkAlloc ca = KRG__KDFS__CHUNK_ALLOC__INIT;
	uint32_t nodes[] = { 1, 2 };
	aop.op_case = KRG__KDFS__OP__OP_CHUNK_ALLOC;
	aop.chunk_alloc = &ca;
	ca.ino = f;
	ca.index = 1;
	ca.nodes = nodes;
	ca.n_nodes = 2;
	ca.has_stripe_count = ca.has_stripe_size = true;
	ca.stripe_count = 1;
	ca.stripe_size = KDFS_CHUNK_SIZE;
	assert_int_equal(kmf_status(&aop), -ESTALE);
	ca.stripe_count = 3;
	ca.stripe_size = 8 << 20;
	assert_int_equal(kmf_status(&aop), 0);
	uint64_t old = kmf_create(KDFS_ROOT_INO, "old", S_IFREG | 0644, 0, 0);
	layout(old, &l, NULL);
	assert_int_equal(l.count, 1);
	uint64_t d = kmf_create(KDFS_ROOT_INO, "d", S_IFDIR | 0755, 3, 8 << 20);
	/* A directory's layout wins over the default, field by field, and
	 * subdirectories inherit it. */
	assert_int_equal(set_layout(d, 2, 0), 0);
	uint64_t g = kmf_create(d, "g", S_IFREG | 0644, 4, 1 << 20);
	layout(g, &l, NULL);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.unit, 1 << 20);
	assert_int_equal(set_layout(d, 0, 64 << 10), 0);
	uint64_t sub = kmf_create(d, "sub", S_IFDIR | 0755, 0, 0);
	uint64_t h = kmf_create(sub, "h", S_IFREG | 0644, 4, 1 << 20);
	layout(h, &l, NULL);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.unit, 64 << 10);
	/* Bad values; a symlink has no striping. */
	assert_int_equal(set_layout(d, 65, 0), -EINVAL);
	assert_int_equal(set_layout(d, 0, 100 << 10), -EINVAL);
	uint64_t sl = kmf_create(KDFS_ROOT_INO, "sl", S_IFLNK | 0777, 0, 0);
	assert_int_equal(set_layout(sl, 2, 0), -EINVAL);
	/* A file without data may change; with data only to the same map. */
	assert_int_equal(set_layout(h, 3, 0), 0);
	alloc(h, 0);
	assert_int_equal(set_layout(h, 2, 0), -EBUSY);
	assert_int_equal(set_layout(h, 0, 1 << 20), -EBUSY);
	assert_int_equal(set_layout(h, 3, 64 << 10), 0);
	alloc(old, 0);
	assert_int_equal(set_layout(old, 0, 1 << 20), 0); /* still one group: the same map */
	/* A truncate drops the chunks the map puts wholly past the size: h is
	 * 3 groups of 64 KiB units; at 3 chunks and one unit, group 0 reaches
	 * into its second chunk (index 3), groups 1 and 2 fill one each. */
	for (uint32_t i = 1; i < 9; i++)
		alloc(h, i);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetAttr sa = KRG__KDFS__SET_ATTR__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETATTR;
	op.setattr = &sa;
	sa.ino = h;
	sa.valid = KDFS_SET_SIZE;
	sa.has_size = true;
	sa.size = 3 * KDFS_CHUNK_SIZE + (64 << 10);
	assert_int_equal(kmf_status(&op), 0);
	layout(h, &l, &n);
	assert_int_equal(n, 4);
	sa.size = 64 << 10; /* one unit: group 0's first chunk only */
	assert_int_equal(kmf_status(&op), 0);
	layout(h, &l, &n);
	assert_int_equal(n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unstriped),
		cmocka_unit_test(test_map_model),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_row_share),
		cmocka_unit_test(test_ops),
	};
	return cmocka_run_group_tests(tests, kmf_setup, kmf_teardown);
}
