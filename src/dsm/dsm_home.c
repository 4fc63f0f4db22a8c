/* dsm_home.c — the directory of the pages this node homes (docs/dsm.md,
 * "Manager"). Requests for one page run one at a time, FIFO; the home's
 * own requests and its own copy go through direct calls, never messages.
 * Invariant: when a page has no writer, this node's memfd holds it (a hole
 * there is a page never written, zeros). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "dsm/dsm-int.h"
#include "lib/log.h"

static inline uint64_t bit(uint32_t node) { return 1ull << node; }

/* A writer elsewhere takes the page: remember it as it is now. */
static void keep(struct dsm_dir *d, const uint8_t *data)
{
	if (!d->kept && !(d->kept = malloc(DSM_PAGE_SIZE)))
		return;
	if (data)
		memcpy(d->kept, data, DSM_PAGE_SIZE);
	else
		memset(d->kept, 0, DSM_PAGE_SIZE);
}

static void unkeep(struct dsm_dir *d)
{
	free(d->kept);
	d->kept = NULL;
}

/* The home's memfd gets the page: a read copy here. */
static void home_take(struct dsm_node *n, uint64_t page, const uint8_t *data)
{
	static const uint8_t zeros[DSM_PAGE_SIZE];
	if (dsm_write_page(n, page, data ? data : zeros) == 0 && n->copy[page].state == DSM_INVALID)
		n->copy[page].state = DSM_READ;
}

/* The writer died: the page is the home's last copy again. */
static void recover(struct dsm_node *n, uint64_t page, const uint8_t *data)
{
	struct dsm_dir *d = &n->dir[page];
	home_take(n, page, data ? data : d->kept);
	unkeep(d);
	d->writer = -1;
	d->copyset = bit(n->cfg.self);
	n->st.recovered++;
	log_warn("dsm: segment %" PRIu64 " page %" PRIu64 ": its writer died; back to the last copy",
			n->cfg.seg, page);
}

static void pop_head(struct dsm_dir *d)
{
	struct dsm_req *r = d->head;
	d->head = r->next;
	if (!d->head)
		d->tail = NULL;
	free(r);
	free(d->data);
	d->data = NULL;
	d->busy = false;
	d->acks = 0;
}

/* The request at the head is answered: the grantee keeps it a while. */
static void grant(struct dsm_node *n, uint64_t page, uint32_t to, bool writable,
		const uint8_t *data)
{
	struct dsm_dir *d = &n->dir[page];
	d->last_grantee = to;
	d->resident_until = n->cfg.min_residency_ns ? n->now + n->cfg.min_residency_ns : 0;
	if (n->dead & bit(to)) {
		/* Its requester died meanwhile: the grant goes nowhere. */
		if (writable)
			recover(n, page, data);
		else
			d->copyset &= ~bit(to);
		d->resident_until = 0;
	} else if (to == n->cfg.self) {
		dsm_copy_on_grant(n, page, writable, data);
	} else {
		dsm_send_msg(n, to, KRG__DSM__TYPE__GRANT, page, writable, data);
		n->st.serves++;
		n->st.serve_ns += dsm_now_ns() - n->now;
	}
	pop_head(d);
}

/* The writer's data is here (FETCH answered, or this node was the writer). */
static void fetched(struct dsm_node *n, uint64_t page, const uint8_t *data)
{
	struct dsm_dir *d = &n->dir[page];
	uint32_t self = n->cfg.self, w = (uint32_t)d->writer, r = d->head->from;
	if (d->head->write) {
		d->writer = (int32_t)r;
		d->copyset = 0;
		if (r == self)
			unkeep(d);
		else
			keep(d, data);
		grant(n, page, r, true, data);
		return;
	}
	/* Downgrade: the home takes a copy, so "no writer" finds the page here. */
	if (w != self)
		home_take(n, page, data);
	unkeep(d);
	d->writer = -1;
	d->copyset |= (bit(w) | bit(r) | bit(self)) & ~n->dead;
	grant(n, page, r, false, r == self ? NULL : data);
}

/* No writer, a write wanted: every other copy goes first. */
static void invalidate_readers(struct dsm_node *n, uint64_t page)
{
	struct dsm_dir *d = &n->dir[page];
	uint32_t self = n->cfg.self, r = d->head->from;
	if (!(d->copyset & bit(r))) {
		d->data = malloc(DSM_PAGE_SIZE);
		if (!d->data || dsm_read_page(n, page, d->data) < 0) {
			log_error("dsm: page %" PRIu64 ": cannot read the home copy", page);
			free(d->data);
			d->data = calloc(1, DSM_PAGE_SIZE);
		}
	}
	if (r != self) {
		uint8_t now[DSM_PAGE_SIZE];
		if (dsm_read_page(n, page, now) < 0)
			memset(now, 0, sizeof now);
		keep(d, now);
	}
	uint64_t others = d->copyset & ~bit(r);
	d->copyset = 0;
	d->acks = 0;
	for (uint32_t i = 0; i < n->cfg.nnodes; i++) {
		if (!(others & bit(i)) || (n->dead & bit(i)))
			continue;
		if (i == self) {
			dsm_copy_give_up(n, page, true, NULL);
		} else if (dsm_send_msg(n, i, KRG__DSM__TYPE__INVAL, page, false, NULL) == 0) {
			d->acks++;
			d->copyset |= bit(i); /* "still to ack" until it does */
		}
	}
}

static bool takes_from_others(const struct dsm_dir *d, const struct dsm_req *r)
{
	if (d->writer >= 0 && (uint32_t)d->writer != r->from)
		return true;
	return r->write && (d->copyset & ~bit(r->from));
}

void dsm_home_run(struct dsm_node *n, uint64_t page)
{
	struct dsm_dir *d = &n->dir[page];
	uint32_t self = n->cfg.self;
	while (!d->busy && d->head) {
		struct dsm_req *r = d->head;
		if (takes_from_others(d, r) && d->resident_until && d->last_grantee != r->from &&
				n->now < d->resident_until) {
			if (!d->deferred) {
				d->deferred = true;
				n->ndeferred++;
				n->st.deferred++;
			}
			return;
		}
		if (d->deferred) {
			d->deferred = false;
			n->ndeferred--;
		}
		d->busy = true;
		if (d->writer >= 0 && (uint32_t)d->writer == r->from) {
			grant(n, page, r->from, true, NULL);
		} else if (d->writer >= 0) {
			if ((uint32_t)d->writer == self) {
				uint8_t buf[DSM_PAGE_SIZE];
				dsm_copy_give_up(n, page, r->write, buf);
				fetched(n, page, buf);
			} else {
				dsm_send_msg(n, (uint32_t)d->writer, KRG__DSM__TYPE__FETCH, page,
						r->write, NULL);
				return; /* the ACK goes on */
			}
		} else if (!r->write) {
			bool current = d->copyset & bit(r->from);
			uint8_t buf[DSM_PAGE_SIZE];
			if (!current && dsm_read_page(n, page, buf) < 0)
				memset(buf, 0, sizeof buf);
			d->copyset |= bit(r->from);
			grant(n, page, r->from, false, current ? NULL : buf);
		} else {
			invalidate_readers(n, page);
			if (d->acks)
				return;
			d->writer = (int32_t)r->from;
			grant(n, page, r->from, true, d->data);
		}
	}
}

void dsm_home_request(struct dsm_node *n, uint64_t page, uint32_t from, bool write)
{
	struct dsm_dir *d = &n->dir[page];
	if (n->dead & bit(from))
		return; /* late news from a node declared down */
	struct dsm_req *r = calloc(1, sizeof *r);
	if (!r) {
		log_error("dsm: out of memory queueing a request for page %" PRIu64, page);
		return;
	}
	r->from = from;
	r->write = write;
	if (d->tail)
		d->tail->next = r;
	else
		d->head = r;
	d->tail = r;
	dsm_home_run(n, page);
}

/* An ACK from `from`: a FETCH's data, or an INVAL done. -EBADMSG if this
 * home asked nothing of it. */
int dsm_home_ack(struct dsm_node *n, uint64_t page, uint32_t from, const uint8_t *data)
{
	struct dsm_dir *d = &n->dir[page];
	if (!d->busy || !d->head)
		return -EBADMSG;
	if (d->writer >= 0 && (uint32_t)d->writer == from && from != d->head->from) {
		if (!data)
			return -EBADMSG;
		fetched(n, page, data);
	} else if (d->writer < 0 && d->acks && (d->copyset & bit(from))) {
		d->copyset &= ~bit(from);
		if (--d->acks)
			return 0;
		d->writer = (int32_t)d->head->from;
		grant(n, page, d->head->from, true, d->data);
	} else {
		return -EBADMSG;
	}
	dsm_home_run(n, page);
	return 0;
}

/* The page's home died and homes do not move yet: the page is lost here,
 * and whoever touches it gets SIGBUS rather than waiting forever. */
static void lose(struct dsm_node *n, uint64_t page)
{
	struct dsm_copy *c = &n->copy[page];
	if (c->state == DSM_LOST)
		return;
	if (c->state != DSM_INVALID)
		dsm_copy_give_up(n, page, true, NULL);
	c->state = DSM_LOST;
	c->pending = 0;
	n->st.lost++;
	dsm_view_poison(n, -1, page);
}

void dsm_node_down(struct dsm_node *n, uint32_t node)
{
	if (node >= n->cfg.nnodes || node == n->cfg.self)
		return;
	n->dead |= bit(node);
	for (uint64_t p = 0; p < n->cfg.npages; p++) {
		uint32_t home = dsm_page_home(n->cfg.seg, p, n->cfg.nnodes);
		if (home == node)
			lose(n, p);
		if (home != n->cfg.self)
			continue;
		struct dsm_dir *d = &n->dir[p];
		/* Its queued requests go (the one in progress ends in grant()). */
		for (struct dsm_req **pp = d->busy && d->head ? &d->head->next : &d->head; *pp;) {
			struct dsm_req *r = *pp;
			if (r->from == node) {
				*pp = r->next;
				free(r);
			} else {
				pp = &r->next;
			}
		}
		d->tail = d->head;
		while (d->tail && d->tail->next)
			d->tail = d->tail->next;
		if (d->last_grantee == node)
			d->resident_until = 0;
		if (!d->busy) {
			if (d->writer == (int32_t)node)
				recover(n, p, NULL);
			d->copyset &= ~bit(node);
		} else if (d->writer == (int32_t)node && d->head->from != node) {
			/* Waiting for its FETCH: the last copy answers instead. */
			uint8_t buf[DSM_PAGE_SIZE];
			if (d->kept)
				memcpy(buf, d->kept, sizeof buf);
			else
				memset(buf, 0, sizeof buf);
			n->st.recovered++;
			log_warn("dsm: segment %" PRIu64 " page %" PRIu64
					": its writer died; back to the last copy", n->cfg.seg, p);
			fetched(n, p, buf);
		} else if (d->writer < 0 && d->acks && (d->copyset & bit(node))) {
			dsm_home_ack(n, p, node, NULL); /* its INVAL counts as done */
			continue;
		}
		dsm_home_run(n, p);
	}
}
