/* engine_hash.c — the engine's intrusive chained hash table: tokens,
 * keys, undo records, processes. Grows by doubling so lookups stay O(1)
 * with tens of thousands of objects and waiters. */
#include <errno.h>
#include <stdlib.h>
#include "ipc/engine_int.h"

/* splitmix64's finaliser: keys are often small consecutive integers. */
static size_t bucket(uint64_t key, size_t nb)
{
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebull;
	key ^= key >> 31;
	return (size_t)key & (nb - 1);
}

static int grow(struct khash *h)
{
	size_t nb = h->nb ? h->nb * 2 : 64;
	struct khnode **b = calloc(nb, sizeof *b);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < h->nb; i++) {
		struct khnode *n = h->b[i];
		while (n) {
			struct khnode *next = n->next;
			size_t j = bucket(n->key, nb);
			n->next = b[j];
			b[j] = n;
			n = next;
		}
	}
	free(h->b);
	h->b = b;
	h->nb = nb;
	return 0;
}

int khash_insert(struct khash *h, struct khnode *n)
{
	if (h->n + 1 > h->nb) {
		int r = grow(h);
		if (r < 0 && h->nb == 0)
			return r;
		/* A failed grow keeps the old (longer-chained) table working. */
	}
	size_t j = bucket(n->key, h->nb);
	n->next = h->b[j];
	h->b[j] = n;
	h->n++;
	return 0;
}

struct khnode *khash_first(const struct khash *h, uint64_t key)
{
	if (!h->nb)
		return NULL;
	for (struct khnode *n = h->b[bucket(key, h->nb)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

struct khnode *khash_next(const struct khnode *n)
{
	for (struct khnode *m = n->next; m; m = m->next)
		if (m->key == n->key)
			return m;
	return NULL;
}

void khash_remove(struct khash *h, struct khnode *n)
{
	struct khnode **pp = &h->b[bucket(n->key, h->nb)];
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = n->next;
		n->next = NULL;
		h->n--;
	}
}

void khash_free(struct khash *h)
{
	free(h->b);
	h->b = NULL;
	h->nb = h->n = 0;
}
