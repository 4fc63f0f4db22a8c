/* klist.h — an intrusive doubly linked list, circular with a head node
 * (Linux's list_head): O(1) add at either end and removal of any entry,
 * FIFO order kept. Used by the IPC engine (its queues keep Linux's order)
 * and by net (connections, requests, handlers, bulk queues). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct klist {
	struct klist *prev, *next;
};

static inline void klist_init(struct klist *h) { h->prev = h->next = h; }
static inline bool klist_empty(const struct klist *h) { return h->next == h; }
static inline void klist_add_tail(struct klist *h, struct klist *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void klist_add_head(struct klist *h, struct klist *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void klist_del(struct klist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
/* Moves every entry of from to the head of to, keeping their order
 * (Linux list_splice_init). */
static inline void klist_splice_head(struct klist *from, struct klist *to)
{
	if (klist_empty(from))
		return;
	struct klist *first = from->next, *last = from->prev;
	last->next = to->next;
	to->next->prev = last;
	to->next = first;
	first->prev = to;
	klist_init(from);
}
#define klist_entry(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
/* Safe against removal of the current entry. */
#define klist_for_each_safe(pos, tmp, head) \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)
