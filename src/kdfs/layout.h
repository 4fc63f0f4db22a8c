/* layout.h — how a kdfs file's bytes map to its chunks (docs/kdfs.md,
 * "Striping"). kdfs_layout_map is the one function that turns a file
 * offset into a chunk: reads, writes (and so fallocate's zeros), holes,
 * truncates (the cut made by krgd and the chunks the SetAttr op drops)
 * and kdfs show all go through it, so they can never disagree.
 *
 * A file striped over K chunk groups in units of S bytes: unit u (bytes
 * [u*S, (u+1)*S)) belongs to group u mod K, at offset (u div K)*S + (off
 * mod S) of that group's bytes; each group is cut into 64 MiB chunks, and
 * the c-th chunk of group g has index c*K + g. With K = 1 this is the
 * unstriped map (chunk i holds [i*64 MiB, (i+1)*64 MiB)), which is what
 * every file made before striping has. S divides the chunk size, so a
 * unit never spans two chunks. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "kdfs/meta.h"

#define KDFS_STRIPE_COUNT_MAX 64
#define KDFS_STRIPE_SIZE_MIN (64ull << 10)  /* one checksum block */
#define KDFS_STRIPE_SIZE_MAX KDFS_CHUNK_SIZE

struct kdfs_layout {
	uint32_t count;  /* chunk groups, >= 1 */
	uint64_t unit;   /* stripe size; KDFS_CHUNK_SIZE when count is 1 */
};

/* Where file offset off lives. */
struct kdfs_extent {
	uint64_t index;  /* the chunk (past UINT32_MAX: beyond the largest file, a hole) */
	uint32_t group;  /* its chunk group */
	uint64_t goff;   /* offset inside the group's bytes */
	uint64_t off;    /* offset inside the chunk */
	uint64_t len;    /* bytes from off on that stay in this chunk and are the file's next ones */
};

/* Are these a valid count and stripe size? */
bool kdfs_layout_valid(uint32_t count, uint64_t unit);
/* The layout of a regular file (absent fields: not striped). */
void kdfs_layout_of(const Krg__Kdfs__Inode *in, struct kdfs_layout *l);
/* A layout from count and unit (count 1 or an invalid unit: not striped). */
void kdfs_layout_make(struct kdfs_layout *l, uint32_t count, uint64_t unit);
/* The mapping: file offset -> chunk, offset in it, contiguous length. */
void kdfs_layout_map(const struct kdfs_layout *l, uint64_t off, struct kdfs_extent *e);
/* The group of a chunk. */
uint32_t kdfs_layout_group(const struct kdfs_layout *l, uint64_t index);
/* Bytes at the start of chunk index that hold file offsets below size
 * (0: the chunk lies wholly past size; KDFS_CHUNK_SIZE: wholly before). */
uint64_t kdfs_layout_keep(const struct kdfs_layout *l, uint64_t size, uint64_t index);
/* The first file offset chunk index holds. */
uint64_t kdfs_layout_first(const struct kdfs_layout *l, uint64_t index);
/* The chunks of index's stripe row (c*K + g for its c, every other
 * group g) that list node as a replica or a node being filled: a repair
 * puts a new copy where this is lowest, so that a node lost takes as few
 * of a file's groups at once as it can (docs/kdfs.md, "Repair"). 0 for a
 * file not striped. */
unsigned kdfs_layout_row_share(const Krg__Kdfs__Inode *in, uint64_t index, uint32_t node);
/* The largest chunk index a write may create (files end before it). */
#define KDFS_INDEX_MAX ((uint64_t)UINT32_MAX)
