/* layout.c — the file offset -> chunk mapping (layout.h, docs/kdfs.md
 * "Striping"). Pure arithmetic: the metadata ops (apply on every node)
 * and krgd's data path both use it, so it must be deterministic. */
#include "kdfs/layout.h"

bool kdfs_layout_valid(uint32_t count, uint64_t unit)
{
	return count >= 1 && count <= KDFS_STRIPE_COUNT_MAX && unit >= KDFS_STRIPE_SIZE_MIN &&
	       unit <= KDFS_STRIPE_SIZE_MAX && (unit & (unit - 1)) == 0;
}

void kdfs_layout_make(struct kdfs_layout *l, uint32_t count, uint64_t unit)
{
	/* Not striped: one group whose units are whole chunks, which is
	 * the map of a file made before striping existed. */
	if (count <= 1 || !kdfs_layout_valid(count, unit)) {
		l->count = 1;
		l->unit = KDFS_CHUNK_SIZE;
		return;
	}
	l->count = count;
	l->unit = unit;
}

void kdfs_layout_of(const Krg__Kdfs__Inode *in, struct kdfs_layout *l)
{
	kdfs_layout_make(l, in->has_stripe_count ? in->stripe_count : 1,
			 in->has_stripe_size ? in->stripe_size : KDFS_CHUNK_SIZE);
}

void kdfs_layout_map(const struct kdfs_layout *l, uint64_t off, struct kdfs_extent *e)
{
	uint64_t u = off / l->unit, in = off % l->unit;
	e->group = (uint32_t)(u % l->count);
	e->goff = u / l->count * l->unit + in;
	e->index = e->goff / KDFS_CHUNK_SIZE * l->count + e->group;
	e->off = e->goff % KDFS_CHUNK_SIZE;
	/* The unit divides the chunk: the rest of the unit is in this chunk,
	 * and the next byte of the file is the next unit's, in another group
	 * (with one group, the next chunk's). */
	e->len = l->unit - in;
}

uint32_t kdfs_layout_group(const struct kdfs_layout *l, uint64_t index)
{
	return (uint32_t)(index % l->count);
}

/* How many bytes of group g lie below file offset size: the group
 * offset of the first byte at or after size that the group holds. */
static uint64_t group_end(const struct kdfs_layout *l, uint64_t size, uint32_t g)
{
	struct kdfs_extent e;
	kdfs_layout_map(l, size, &e);
	if (e.group == g)
		return e.goff;
	uint64_t u = size / l->unit;
	u += (g + l->count - (uint32_t)(u % l->count)) % l->count; /* the group's next unit */
	kdfs_layout_map(l, u * l->unit, &e);
	return e.goff;
}

uint64_t kdfs_layout_keep(const struct kdfs_layout *l, uint64_t size, uint64_t index)
{
	uint64_t end = group_end(l, size, kdfs_layout_group(l, index)), base = index / l->count * KDFS_CHUNK_SIZE;
	if (end <= base)
		return 0;
	return end - base < KDFS_CHUNK_SIZE ? end - base : KDFS_CHUNK_SIZE;
}

uint64_t kdfs_layout_first(const struct kdfs_layout *l, uint64_t index)
{
	/* Group offset c*CHUNK is unit c*CHUNK/S of the group, the file's
	 * unit (that) * K + g. */
	uint64_t gunit = index / l->count * (KDFS_CHUNK_SIZE / l->unit);
	return (gunit * l->count + kdfs_layout_group(l, index)) * l->unit;
}

unsigned kdfs_layout_row_share(const Krg__Kdfs__Inode *in, uint64_t index, uint32_t node)
{
	struct kdfs_layout l;
	kdfs_layout_of(in, &l);
	unsigned n = 0;
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		if (c->index == index || c->index / l.count != index / l.count)
			continue;
		bool holds = false;
		for (size_t j = 0; j < c->n_nodes; j++)
			holds |= c->nodes[j] == node;
		for (size_t j = 0; j < c->n_filling; j++)
			holds |= c->filling[j] == node;
		n += holds;
	}
	return n;
}
