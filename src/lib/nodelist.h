/* nodelist.h — Kerrighed node lists: "item(,item)*", an item a node id
 * or an inclusive range "a-b". Node ids are 0..KRG_MAX_NODES-1. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KRG_MAX_NODES 256

struct krg_nodeset {
	uint64_t bits[KRG_MAX_NODES / 64];
};

static inline void krg_nodeset_add(struct krg_nodeset *s, unsigned id) { s->bits[id / 64] |= 1ULL << (id % 64); }
static inline void krg_nodeset_del(struct krg_nodeset *s, unsigned id) { s->bits[id / 64] &= ~(1ULL << (id % 64)); }
static inline bool krg_nodeset_has(const struct krg_nodeset *s, unsigned id)
{
	return id < KRG_MAX_NODES && (s->bits[id / 64] >> (id % 64)) & 1;
}
unsigned krg_nodeset_count(const struct krg_nodeset *s);

/* Parse a list into *out (cleared first). Returns 0 or -EINVAL; on error
 * err gets a one-line reason. */
int krg_nodelist_parse(const char *text, struct krg_nodeset *out, char *err, size_t errlen);
/* Format as the shortest list ("1-3,5"). */
void krg_nodelist_format(const struct krg_nodeset *s, char *buf, size_t len);
