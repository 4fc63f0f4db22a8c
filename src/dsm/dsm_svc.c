/* dsm_svc.c — the DSM inside krgd (dsm_svc.h): segments by name, their
 * nodes' messages on krg_net, their faults and timers on the loop. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dsm/dsm-int.h"
#include "dsm/dsm_svc.h"
#include "dsm.pb-c.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/service.h"
#include "net/net.h"

struct seg {
	struct seg *next;
	struct krg_dsm *d;
	uint64_t id, npages;
	struct dsm_node *node;
	uv_poll_t poll;               /* the node's epoll fd of userfaultfds */
	uv_timer_t timer;             /* the residency deadline */
	int handles;                  /* open: freed at 0 after drop */
	bool dropped;
};

/* Pages asked for ahead of a sequential read miss (docs/dsm.md,
 * "Read-ahead"): 16 pages, 64 KiB, as a modest file read-ahead. */
#define DSM_SVC_READAHEAD 16

struct krg_dsm {
	uv_loop_t *loop;
	struct krg_net *net;
	uint32_t self;                /* dense index of this node */
	uint32_t nnodes;
	uint32_t ids[DSM_MAX_NODES];  /* dense index -> node id, ascending */
	uint64_t min_residency_ns;
	struct seg *segs;
	uint64_t in, out, refused;
	struct dsm_stats gone;        /* counters of segments dropped (kept in the sums) */
#define GONE_IDS 64
	uint64_t gone_ids[GONE_IDS];  /* segments destroyed lately: their late messages are dropped */
	unsigned gone_next;
	uint64_t down;                /* dense indices of nodes down (membership) */
	krg_dsm_futex_fn futex_fn;
	void *futex_ctx;
	krg_dsm_fork_fn fork_fn;
	void *fork_ctx;
	bool stopped;
	int handles;                  /* of segments dropped, not closed yet */
	bool free_when_closed;
};

static int dense(const struct krg_dsm *d, uint32_t node)
{
	for (uint32_t i = 0; i < d->nnodes; i++)
		if (d->ids[i] == node)
			return (int)i;
	return -1;
}

static int send_cb(void *ctx, uint32_t to, const uint8_t *buf, size_t len)
{
	struct seg *s = ctx;
	struct krg_dsm *d = s->d;
	if (to >= d->nnodes)
		return -EINVAL;
	int r = krg_net_send(d->net, d->ids[to], KRG_DSM_MSG, buf, len);
	if (r == 0)
		d->out++;
	return r;
}

static void maybe_free(struct krg_dsm *d)
{
	if (d->free_when_closed && d->handles == 0)
		free(d);
}

static void seg_closed(uv_handle_t *h)
{
	struct seg *s = h->data;
	if (--s->handles)
		return;
	struct krg_dsm *d = s->d;
	dsm_node_free(s->node);
	free(s);
	d->handles--;
	maybe_free(d);
}

/* After every entry point: the residency timer follows the node's
 * earliest deadline. */
static void timer_cb(uv_timer_t *t);
static void rearm(struct seg *s)
{
	uint64_t dl = dsm_node_next_deadline(s->node);
	if (dl == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	uint64_t now = dsm_now_ns();
	uv_timer_start(&s->timer, timer_cb, dl <= now ? 0 : (dl - now + 999999) / 1000000, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct seg *s = t->data;
	dsm_node_tick(s->node, dsm_now_ns());
	rearm(s);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct seg *s = p->data;
	if (status < 0)
		return;
	dsm_node_fault(s->node);
	rearm(s);
}

static void forked(void *ctx, int parent, int child)
{
	struct seg *s = ctx;
	if (s->d->fork_fn)
		s->d->fork_fn(s->d->fork_ctx, s->id, parent, child);
}

static struct seg *find(struct krg_dsm *d, uint64_t id)
{
	for (struct seg *s = d->segs; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static int seg_get(struct krg_dsm *d, uint64_t id, uint64_t npages, struct seg **out)
{
	struct seg *s = find(d, id);
	if (s) {
		if (s->npages != npages)
			return -EINVAL;
		*out = s;
		return 0;
	}
	if (d->stopped)
		return -ESHUTDOWN;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct dsm_config cfg = { .seg = id, .self = d->self, .nnodes = d->nnodes, .npages = npages,
		.min_residency_ns = d->min_residency_ns, .own_map_unused = true,
		.readahead = DSM_SVC_READAHEAD };
	s->d = d;
	s->id = id;
	s->npages = npages;
	int r = dsm_node_new(&cfg, send_cb, s, &s->node);
	if (r < 0) {
		free(s);
		return r;
	}
	dsm_node_on_fork(s->node, forked, s);
	/* Nodes already down: nothing is asked of them (their pages are lost). */
	for (uint32_t i = 0; i < d->nnodes; i++)
		if (d->down & (1ull << i))
			dsm_node_down(s->node, i);
	uv_poll_init(d->loop, &s->poll, dsm_node_uffd(s->node));
	uv_timer_init(d->loop, &s->timer);
	s->poll.data = s->timer.data = s;
	s->handles = 2;
	uv_poll_start(&s->poll, UV_READABLE, poll_cb);
	s->next = d->segs;
	d->segs = s;
	log_debug("dsm: segment %" PRIx64 " (%" PRIu64 " pages) on this node", id, npages);
	*out = s;
	return 0;
}

static void seg_drop(struct krg_dsm *d, struct seg *s)
{
	for (struct seg **p = &d->segs; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	struct dsm_stats st;
	dsm_node_stats(s->node, &st);
	uint64_t *a = (uint64_t *)&d->gone, *b = (uint64_t *)&st;
	for (size_t i = 0; i < sizeof(st) / sizeof(uint64_t); i++)
		a[i] += b[i];
	s->dropped = true;
	d->handles++;
	uv_close((uv_handle_t *)&s->poll, seg_closed);
	uv_close((uv_handle_t *)&s->timer, seg_closed);
}

static void destroyed(struct krg_dsm *d, uint64_t seg);

static void on_msg(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	(void)net;
	(void)req_id;
	struct krg_dsm *d = data;
	int idx = dense(d, from);
	Krg__Dsm__Msg *m = d->stopped || idx < 0 ? NULL : krg__dsm__msg__unpack(NULL, msg->len, msg->body);
	struct seg *s = NULL;
	bool gone = false;
	for (size_t i = 0; m && i < GONE_IDS; i++)
		gone |= d->gone_ids[i] == m->seg && m->seg;
	if (m && m->type == KRG__DSM__TYPE__FUTEX_WAKE) {
		if (d->futex_fn)
			d->futex_fn(d->futex_ctx, m->seg, m->page, m->has_bits ? m->bits : UINT32_MAX);
		krg__dsm__msg__free_unpacked(m, NULL);
		d->in++;
		return;
	}
	if (m && m->type == KRG__DSM__TYPE__DESTROY) {
		destroyed(d, m->seg);
		krg__dsm__msg__free_unpacked(m, NULL);
		d->in++;
		return;
	}
	if (m && gone) {
		/* late news of a segment destroyed: nothing to do */
		krg__dsm__msg__free_unpacked(m, NULL);
		return;
	}
	if (m && m->has_npages && m->npages)
		seg_get(d, m->seg, m->npages, &s);
	if (!s) {
		if (m)
			krg__dsm__msg__free_unpacked(m, NULL);
		d->refused++;
		log_warn("dsm: refused a page message from node %u", from);
		return;
	}
	d->in++;
	if (dsm_node_deliver_msg(s->node, (uint32_t)idx, m) < 0)
		d->refused++;
	krg__dsm__msg__free_unpacked(m, NULL);
	rearm(s);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int krg_dsm_new(uv_loop_t *loop, struct krg_net *net, uint32_t self, const uint32_t *nodes, size_t n,
		uint64_t min_residency_ns, struct krg_dsm **out)
{
	if (!n || n > DSM_MAX_NODES)
		return -EINVAL;
	struct krg_dsm *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->net = net;
	d->min_residency_ns = min_residency_ns;
	memcpy(d->ids, nodes, n * sizeof(*nodes));
	qsort(d->ids, n, sizeof(d->ids[0]), cmp_u32);
	d->nnodes = (uint32_t)n;
	int me = dense(d, self);
	int r = me < 0 ? -EINVAL : krg_net_handle(net, KRG_DSM_MSG, on_msg, d);
	if (r < 0) {
		free(d);
		return r;
	}
	d->self = (uint32_t)me;
	*out = d;
	return 0;
}

/* Stop serving: the handler stays registered with the transport (there
 * is no unregistering) and refuses from now on. */
static void dsm_stop(struct krg_dsm *d)
{
	d->stopped = true;
	while (d->segs)
		seg_drop(d, d->segs);
}

void krg_dsm_free(struct krg_dsm *d)
{
	if (!d)
		return;
	dsm_stop(d);
	d->free_when_closed = true;
	maybe_free(d);
}

int krg_dsm_segment(struct krg_dsm *d, uint64_t seg, uint64_t npages, int *memfd)
{
	struct seg *s;
	int r = seg_get(d, seg, npages, &s);
	if (r == 0)
		*memfd = dsm_node_memfd(s->node);
	return r;
}

int krg_dsm_attach(struct krg_dsm *d, uint64_t seg, int uffd, uint64_t base)
{
	struct seg *s = find(d, seg);
	int r = s ? dsm_node_attach(s->node, uffd, base) : -ENOENT;
	if (r < 0)
		close(uffd);
	return r;
}

void krg_dsm_detach(struct krg_dsm *d, uint64_t seg, int view)
{
	struct seg *s = find(d, seg);
	if (s && view > 0)
		dsm_node_detach(s->node, view);
}

int krg_dsm_view_probe(struct krg_dsm *d, uint64_t seg, int view)
{
	struct seg *s = find(d, seg);
	return s ? dsm_node_view_probe(s->node, view) : -ENOENT;
}

void krg_dsm_on_fork(struct krg_dsm *d, krg_dsm_fork_fn fn, void *ctx)
{
	d->fork_fn = fn;
	d->fork_ctx = ctx;
}

bool krg_dsm_room(struct krg_dsm *d, uint64_t seg)
{
	struct seg *s = find(d, seg);
	return !s || dsm_node_views_free(s->node) > 0;
}

/* Forget seg here; messages still in flight for it are refused rather
 * than making it again. */
static void destroyed(struct krg_dsm *d, uint64_t seg)
{
	d->gone_ids[d->gone_next++ % GONE_IDS] = seg;
	struct seg *s = find(d, seg);
	struct dsm_stats st = { 0 };
	if (s)
		dsm_node_stats(s->node, &st);
	/* What the segment cost here, once (tests/dsm/krgd.sh reads it). */
	log_info("dsm: segment %" PRIx64 " destroyed%s: %" PRIu64 " read misses, %" PRIu64 " write misses, %" PRIu64
		 " grants, %" PRIu64 " pages fetched, %" PRIu64 " invalidated, %" PRIu64 " deferred, %" PRIu64
		 " read ahead", seg,
		 s ? ", its pages here freed" : " (none here)", st.read_miss, st.write_miss, st.grants, st.fetched,
		 st.invalidated, st.deferred, st.prefetched);
	/* Where a miss's time went here (bench/dsm prints it). */
	if (st.rwaits || st.wwaits || st.serves)
		log_info("dsm: segment %" PRIx64 " timing: read wait %.1f us x %" PRIu64 ", write wait %.1f us x %" PRIu64
			 ", install %.1f us, home service %.1f us x %" PRIu64, seg,
			 st.rwaits ? st.rwait_ns / 1e3 / (double)st.rwaits : 0.0, st.rwaits,
			 st.wwaits ? st.wwait_ns / 1e3 / (double)st.wwaits : 0.0, st.wwaits,
			 st.rwaits + st.wwaits ? st.install_ns / 1e3 / (double)(st.rwaits + st.wwaits) : 0.0,
			 st.serves ? st.serve_ns / 1e3 / (double)st.serves : 0.0, st.serves);
	if (s)
		seg_drop(d, s);
}

/* One small message to every other node; false if one could not be sent. */
static bool broadcast(struct krg_dsm *d, const Krg__Dsm__Msg *m)
{
	uint8_t buf[64];
	size_t len = krg__dsm__msg__pack(m, buf);
	bool all = true;
	for (uint32_t i = 0; i < d->nnodes; i++)
		if (i != d->self) {
			if (krg_net_send(d->net, d->ids[i], KRG_DSM_MSG, buf, len) < 0)
				all = false;
			else
				d->out++;
		}
	return all;
}

void krg_dsm_destroy(struct krg_dsm *d, uint64_t seg)
{
	destroyed(d, seg);
	Krg__Dsm__Msg m = KRG__DSM__MSG__INIT;
	m.type = KRG__DSM__TYPE__DESTROY;
	m.seg = seg;
	if (!broadcast(d, &m))
		log_warn("dsm: segment %" PRIx64 ": a node was not told of its end (its pages stay there)", seg);
}

void krg_dsm_futex_wake(struct krg_dsm *d, uint64_t seg, uint64_t off, uint32_t bits)
{
	Krg__Dsm__Msg m = KRG__DSM__MSG__INIT;
	m.type = KRG__DSM__TYPE__FUTEX_WAKE;
	m.seg = seg;
	m.page = off;
	m.has_bits = true;
	m.bits = bits;
	/* A node that cannot be told has its waiters woken by their hold
	 * time (intercept_svc.c): later, not lost. */
	broadcast(d, &m);
}

void krg_dsm_on_futex_wake(struct krg_dsm *d, krg_dsm_futex_fn fn, void *ctx)
{
	d->futex_fn = fn;
	d->futex_ctx = ctx;
}

void krg_dsm_get_stats(const struct krg_dsm *d, struct krg_dsm_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->messages_in = d->in;
	out->messages_out = d->out;
	out->refused = d->refused;
	out->pages = d->gone;
	for (const struct seg *s = d->segs; s; s = s->next) {
		struct dsm_stats st;
		dsm_node_stats(s->node, &st);
		uint64_t *a = (uint64_t *)&out->pages, *b = (uint64_t *)&st;
		for (size_t i = 0; i < sizeof(st) / sizeof(uint64_t); i++)
			a[i] += b[i];
		out->segments++;
	}
}

void krg_dsm_node_down(struct krg_dsm *d, uint32_t node)
{
	int i = dense(d, node);
	if (i < 0 || (uint32_t)i == d->self || (d->down & (1ull << i)))
		return;
	d->down |= 1ull << i;
	for (struct seg *s = d->segs; s; s = s->next) {
		dsm_node_down(s->node, (uint32_t)i);
		rearm(s);
	}
	log_warn("dsm: node %u is down: pages it wrote come back as their last copy, pages it homed are lost "
		 "(SIGBUS on access) in the %s segments held here", node, d->segs ? "shared" : "(no)");
}

/* ---- krgd's table line ---- */

static void svc_node_down(void *state, uint32_t node, uint64_t epoch)
{
	(void)epoch;
	krg_dsm_node_down(state, node);
}

/* Back: segments made from now on use it again (those held meanwhile do
 * not: their pages homed there were lost). */
static void svc_node_up(void *state, uint32_t node, uint64_t epoch)
{
	(void)epoch;
	struct krg_dsm *d = state;
	int i = dense(d, node);
	if (i >= 0)
		d->down &= ~(1ull << i);
}


static int svc_start(struct krg_services *sv, void **state, char *err, size_t errlen)
{
	uint32_t ids[DSM_MAX_NODES];
	size_t n = 0;
	for (size_t i = 0; i < sv->cfg->n_nodes && n < DSM_MAX_NODES; i++)
		ids[n++] = sv->cfg->nodes[i].id;
	*state = NULL;
	if (sv->cfg->n_nodes > DSM_MAX_NODES || !sv->cfg->has_node_id) {
		/* Not refused silently: shmat of a segment used on another
		 * node then fails by name (intercept_svc.c). */
		log_warn("dsm: off (%s): System V segments are served on one node only",
			 sv->cfg->has_node_id ? "more than 64 nodes" : "a joining machine");
		return 0;
	}
	struct krg_dsm *d;
	int r = krg_dsm_new(sv->loop, sv->net, sv->cfg->node_id, ids, n, 1000000, &d);
	if (r < 0) {
		snprintf(err, errlen, "dsm: cannot start: %s", strerror(-r));
		return r;
	}
	sv->dsm = d;
	*state = d;
	return 0;
}

static void svc_stop(void *state)
{
	dsm_stop(state);
}

static void svc_release(void *state)
{
	krg_dsm_free(state);
}

const struct krg_service krg_service_dsm = {
	.name = "dsm",
	.start = svc_start,
	.stop = svc_stop,
	.release = svc_release,
	.node_down = svc_node_down,
	.node_up = svc_node_up,
	.node_remove = svc_node_down,
	.msg_types = (const char *const[]){ KRG_DSM_MSG, NULL },
};
