/* dsm_node.c — one node's copies of a segment's pages and the kernel
 * operations that keep its mapping honest (docs/dsm.md, "Page states on a
 * node"): userfaultfd MISSING/MINOR faults for misses, write-protect for
 * upgrades, UFFDIO_CONTINUE to map a page present in the memfd, hole
 * punching to invalidate. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "dsm/dsm-int.h"
#include "lib/log.h"

uint64_t dsm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t dsm_page_home(uint64_t seg, uint64_t page, uint32_t nnodes)
{
	/* splitmix64: neighbouring pages land on different homes. */
	uint64_t z = seg * 0x9e3779b97f4a7c15ull + page + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint32_t)(z % nnodes);
}

/* ---- the memfd and the mapping ----------------------------------------- */

int dsm_read_page(struct dsm_node *n, uint64_t page, uint8_t *buf)
{
	/* pread of a hole gives zeros without allocating: the page stays invalid. */
	ssize_t r = pread(n->memfd, buf, DSM_PAGE_SIZE, (off_t)(page * DSM_PAGE_SIZE));
	if (r != (ssize_t)DSM_PAGE_SIZE)
		return r < 0 ? -errno : -EIO;
	return 0;
}

int dsm_write_page(struct dsm_node *n, uint64_t page, const uint8_t *buf)
{
	ssize_t r = pwrite(n->memfd, buf, DSM_PAGE_SIZE, (off_t)(page * DSM_PAGE_SIZE));
	if (r != (ssize_t)DSM_PAGE_SIZE)
		return r < 0 ? -errno : -EIO;
	return 0;
}

void dsm_copy_on_grant(struct dsm_node *n, uint64_t page, bool writable, const uint8_t *data)
{
	struct dsm_copy *c = &n->copy[page];
	/* A request that waited for a message (asked_us set): its time. */
	uint32_t asked = c->pending ? c->asked_us : 0;
	if (asked) {
		uint64_t ns = (uint64_t)((uint32_t)(n->now / 1000) - asked) * 1000;
		if (c->pending == DSM_WRITE) {
			n->st.wwaits++;
			n->st.wwait_ns += ns;
		} else {
			n->st.rwaits++;
			n->st.rwait_ns += ns;
		}
	}
	if (data && dsm_write_page(n, page, data) < 0)
		log_error("dsm: page %" PRIu64 ": cannot write the local copy", page);
	c->state = writable ? DSM_WRITE : DSM_READ;
	c->pending = 0;
	c->asked_us = 0;
	n->st.grants++;
	dsm_view_map_all(n, page);
	if (asked)
		n->st.install_ns += dsm_now_ns() - n->now;
}

int dsm_copy_give_up(struct dsm_node *n, uint64_t page, bool invalidate, uint8_t *buf)
{
	struct dsm_copy *c = &n->copy[page];
	/* Protect first: a store in flight faults and waits, and is not lost
	 * between the read below and the punch. */
	if (c->state == DSM_WRITE)
		dsm_view_protect_all(n, page);
	if (buf && dsm_read_page(n, page, buf) < 0)
		memset(buf, 0, DSM_PAGE_SIZE);
	if (invalidate) {
		if (fallocate(n->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(page * DSM_PAGE_SIZE), DSM_PAGE_SIZE) < 0)
			log_error("dsm: punching page %" PRIu64 ": %s", page, strerror(errno));
		c->state = DSM_INVALID;
		n->st.invalidated++;
	} else {
		c->state = DSM_READ;
	}
	return 0;
}

/* ---- faults -------------------------------------------------------------- */

/* ahead: asked for before any thread faulted on it (read-ahead), so not
 * timed as a wait until a thread does. */
static void request(struct dsm_node *n, uint64_t page, bool write, bool ahead)
{
	struct dsm_copy *c = &n->copy[page];
	uint32_t now_us = (uint32_t)(n->now / 1000) | 1;
	if (c->pending) {
		/* One request per page; the grant wakes every waiter. A fault on
		 * a page asked for ahead waits from now on. */
		if (!ahead && !c->asked_us)
			c->asked_us = now_us;
		return;
	}
	c->pending = write ? DSM_WRITE : DSM_READ;
	if (write)
		n->st.write_miss++;
	else
		n->st.read_miss++;
	if (ahead)
		n->st.prefetched++;
	uint32_t home = dsm_page_home(n->cfg.seg, page, n->cfg.nnodes);
	/* Timed only if it waits for a message (not granted right here). */
	c->asked_us = 0;
	if (home == n->cfg.self)
		dsm_home_request(n, page, home, write);
	else
		dsm_send_msg(n, home, write ? KRG__DSM__TYPE__WRITE_REQ : KRG__DSM__TYPE__READ_REQ,
				page, false, NULL);
	if (c->pending && !ahead)
		c->asked_us = now_us;
}

/* A read miss on the page after the previous one, or just past the pages
 * asked for ahead of it, is a sequential reader: ask for the next
 * cfg.readahead pages too (those invalid here and not asked for yet), so
 * their round trips overlap instead of following each other. They are
 * ordinary read requests: the home serialises them with everyone else's,
 * and a write elsewhere invalidates them as any read copy. */
static void read_ahead(struct dsm_node *n, uint64_t page)
{
	bool sequential = page && (page == n->ra_next || page == n->ra_end);
	n->ra_next = page + 1;
	if (!sequential || !n->cfg.readahead)
		return;
	uint64_t end = page + 1 + n->cfg.readahead;
	if (end > n->cfg.npages)
		end = n->cfg.npages;
	for (uint64_t q = page + 1; q < end; q++)
		if (n->copy[q].state == DSM_INVALID && !n->copy[q].pending)
			request(n, q, false, true);
	n->ra_end = end;
}

void dsm_on_fault(struct dsm_node *n, int view, uint64_t page, bool write)
{
	switch (n->copy[page].state) {
	case DSM_LOST:
		dsm_view_poison(n, view, page);
		break;
	case DSM_WRITE:
		dsm_view_map(n, view, page);
		break;
	case DSM_READ:
		if (write)
			request(n, page, true, false);
		else
			dsm_view_map(n, view, page);
		break;
	default:
		request(n, page, write, false);
		if (!write)
			read_ahead(n, page);
	}
}

/* ---- messages -------------------------------------------------------------- */

int dsm_send_msg(struct dsm_node *n, uint32_t to, Krg__Dsm__Type type, uint64_t page,
		bool flag, const uint8_t *data)
{
	Krg__Dsm__Msg m = KRG__DSM__MSG__INIT;
	m.type = type;
	m.seg = n->cfg.seg;
	m.page = page;
	m.has_npages = true;
	m.npages = n->cfg.npages;
	if (type == KRG__DSM__TYPE__GRANT) {
		m.has_writable = true;
		m.writable = flag;
	} else if (type == KRG__DSM__TYPE__FETCH) {
		m.has_invalidate = true;
		m.invalidate = flag;
	}
	if (data) {
		m.has_data = true;
		m.data.data = (uint8_t *)data;
		m.data.len = DSM_PAGE_SIZE;
	}
	uint8_t buf[DSM_PAGE_SIZE + 64];
	size_t len = krg__dsm__msg__pack(&m, buf);
	int r = n->send(n->ctx, to, buf, len);
	if (r < 0) {
		n->st.send_errors++;
		log_error("dsm: sending to node %u: %s", to, strerror(-r));
	}
	return r;
}

static int handle(struct dsm_node *n, uint32_t from, const Krg__Dsm__Msg *m)
{
	uint64_t page = m->page;
	uint32_t home = dsm_page_home(n->cfg.seg, page, n->cfg.nnodes);
	const uint8_t *data = m->has_data ? m->data.data : NULL;
	struct dsm_copy *c = &n->copy[page];
	switch (m->type) {
	case KRG__DSM__TYPE__READ_REQ:
	case KRG__DSM__TYPE__WRITE_REQ:
		if (home != n->cfg.self)
			return -EBADMSG;
		dsm_home_request(n, page, from, m->type == KRG__DSM__TYPE__WRITE_REQ);
		return 0;
	case KRG__DSM__TYPE__ACK:
		if (home != n->cfg.self)
			return -EBADMSG;
		return dsm_home_ack(n, page, from, data);
	case KRG__DSM__TYPE__FETCH: {
		if (from != home || c->state != DSM_WRITE)
			return -EBADMSG;
		uint8_t buf[DSM_PAGE_SIZE];
		dsm_copy_give_up(n, page, m->has_invalidate && m->invalidate, buf);
		n->st.fetched++;
		dsm_send_msg(n, home, KRG__DSM__TYPE__ACK, page, false, buf);
		return 0;
	}
	case KRG__DSM__TYPE__INVAL:
		if (from != home || c->state == DSM_WRITE)
			return -EBADMSG;
		dsm_copy_give_up(n, page, true, NULL);
		dsm_send_msg(n, home, KRG__DSM__TYPE__ACK, page, false, NULL);
		return 0;
	case KRG__DSM__TYPE__GRANT:
		if (from != home || !c->pending || (!data && c->state == DSM_INVALID))
			return -EBADMSG;
		dsm_copy_on_grant(n, page, m->has_writable && m->writable, data);
		return 0;
	default:
		return -EBADMSG;
	}
}

int dsm_node_deliver_msg(struct dsm_node *n, uint32_t from, const Krg__Dsm__Msg *m)
{
	n->now = dsm_now_ns();
	int r = -EBADMSG;
	if (m && from < n->cfg.nnodes && from != n->cfg.self && m->seg == n->cfg.seg &&
			m->page < n->cfg.npages && (!m->has_npages || m->npages == n->cfg.npages) && (!m->has_data || m->data.len == DSM_PAGE_SIZE))
		r = handle(n, from, m);
	if (r < 0) {
		n->st.rejected++;
		log_warn("dsm: refused a message from node %u", from);
	}
	return r;
}

int dsm_node_deliver(struct dsm_node *n, uint32_t from, const uint8_t *buf, size_t len)
{
	Krg__Dsm__Msg *m = krg__dsm__msg__unpack(NULL, len, buf);
	int r = dsm_node_deliver_msg(n, from, m);
	if (m)
		krg__dsm__msg__free_unpacked(m, NULL);
	return r;
}

/* ---- residency timer --------------------------------------------------------- */

uint64_t dsm_node_next_deadline(const struct dsm_node *n)
{
	if (!n->ndeferred)
		return UINT64_MAX;
	uint64_t t = UINT64_MAX;
	for (uint64_t p = 0; p < n->cfg.npages; p++)
		if (n->dir[p].deferred && n->dir[p].resident_until < t)
			t = n->dir[p].resident_until;
	return t;
}

void dsm_node_tick(struct dsm_node *n, uint64_t now)
{
	n->now = now;
	for (uint64_t p = 0; n->ndeferred && p < n->cfg.npages; p++)
		if (n->dir[p].deferred && n->dir[p].resident_until <= now)
			dsm_home_run(n, p);
}

/* ---- life ------------------------------------------------------------------- */

int dsm_node_new(const struct dsm_config *cfg, dsm_send_fn send, void *ctx,
		struct dsm_node **out)
{
	if (!cfg->nnodes || cfg->nnodes > DSM_MAX_NODES || cfg->self >= cfg->nnodes ||
			!cfg->npages || cfg->npages > (1ull << 36) / DSM_PAGE_SIZE || !send)
		return -EINVAL;
	struct dsm_node *n = calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	n->send = send;
	n->ctx = ctx;
	n->epfd = -1;
	n->size = cfg->npages * DSM_PAGE_SIZE;
	n->map = MAP_FAILED;
	for (int v = 0; v < DSM_MAX_VIEWS; v++)
		n->views[v].uffd = -1;
	int r = -ENOMEM;
	n->copy = calloc(cfg->npages, sizeof *n->copy);
	n->dir = calloc(cfg->npages, sizeof *n->dir);
	if (!n->copy || !n->dir)
		goto fail;
	for (uint64_t p = 0; p < cfg->npages; p++)
		n->dir[p].writer = -1;
	/* Named by the segment: a migration of a process mapping it is
	 * refused by this name (src/proc/migrate/sharedmem.c). */
	char name[40];
	snprintf(name, sizeof name, "krg-dsm:%" PRIx64, cfg->seg);
	n->memfd = memfd_create(name, MFD_CLOEXEC);
	if (n->memfd < 0 || ftruncate(n->memfd, (off_t)n->size) < 0) {
		r = -errno;
		goto fail;
	}
	r = dsm_view_init(n);
	if (r < 0)
		goto fail;
	*out = n;
	return 0;
fail:
	dsm_node_free(n);
	return r;
}

void dsm_node_free(struct dsm_node *n)
{
	if (!n)
		return;
	dsm_view_fini(n);
	if (n->memfd > 0)
		close(n->memfd);
	for (uint64_t p = 0; n->dir && p < n->cfg.npages; p++) {
		while (n->dir[p].head) {
			struct dsm_req *r = n->dir[p].head;
			n->dir[p].head = r->next;
			free(r);
		}
		free(n->dir[p].data);
		free(n->dir[p].kept);
	}
	free(n->dir);
	free(n->copy);
	free(n);
}

void *dsm_node_addr(const struct dsm_node *n) { return n->map; }
size_t dsm_node_size(const struct dsm_node *n) { return n->size; }
int dsm_node_uffd(const struct dsm_node *n) { return n->epfd; }
int dsm_node_memfd(const struct dsm_node *n) { return n->memfd; }
void dsm_node_stats(const struct dsm_node *n, struct dsm_stats *out) { *out = n->st; }
