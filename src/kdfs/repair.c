/* repair.c — re-replication: chunks left with fewer live copies than
 * their file asks get new ones, after kdfs_repair_grace_ms past the last
 * node failure, one chunk at a time per node, at most kdfs_repair_mibps.
 *
 * The node that repairs a chunk is the lowest-numbered live node holding
 * it (so each chunk has one repairer); it copies its replica to a live
 * node T that holds none (docs/kdfs.md, "Repair"):
 *   1. begin    T empties its replica of the chunk and from now on refuses
 *               a partial write to a block it has not got yet (it could
 *               not merge it); a whole-block write or a truncate makes the
 *               block T's own
 *   2. fill     ChunkFill on the log: T joins the chunk's filling nodes,
 *               which take every write but serve no read, and the version
 *               moves on, so a write still made with the old map is
 *               refused by every replica and redone with the new one
 *   3. bump     the replicas move to the new version (an empty write)
 *   4. copy     the repairer's blocks to T, a MiB at a time; T keeps a
 *               block only where no write came first
 *   5. done     ChunkFill done: T is a replica
 *   6. end      T forgets the fill
 * Any failure (T refused a write, a node died, the version moved) ends the
 * fill: T leaves the filling nodes, and the chunk is tried again later.
 * A node that comes back with stale copies is repaired the same way: it
 * is a live node that holds no good replica. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cluster/cluster.h"
#include "kdfs/layout.h"
#include "kdfs/service-int.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"

#define KMSG_FILL "kdfs.cfill"
#define SCAN_MS 1000
#define PIECE (1u << 20)
#define FILL_TIMEOUT_MS 5000
#define NBLOCKS (KDFS_CHUNK_SIZE / KDFS_BLOCK_SIZE)

/* ---- the node being filled ---- */

struct kdfs_fill {
	struct kdfs_fill *next;
	uint64_t ino, gen;
	uint32_t index;
	uint8_t done[NBLOCKS / 8];   /* blocks this node has (copied, or wholly written) */
};

static struct kdfs_fill *fill_find(struct krg_kdfs *k, uint64_t ino, uint32_t index, uint64_t gen)
{
	for (struct kdfs_fill *f = k->fills; f; f = f->next)
		if (f->ino == ino && f->index == index && f->gen == gen)
			return f;
	return NULL;
}

static bool is_done(const struct kdfs_fill *f, uint64_t b)
{
	return b >= NBLOCKS || (f->done[b / 8] >> (b % 8) & 1);
}

static void set_done(struct kdfs_fill *f, uint64_t b)
{
	if (b < NBLOCKS)
		f->done[b / 8] |= (uint8_t)(1u << (b % 8));
}

int kdfs_fill_admit(struct krg_kdfs *k, uint64_t ino, uint32_t index, uint64_t gen, uint64_t off, uint64_t len,
		    bool trunc)
{
	struct kdfs_fill *f = fill_find(k, ino, index, gen);
	if (!f)
		return 0;
	if (trunc) {
		/* Past the cut the chunk is zeros everywhere: those blocks are
		 * known. The block the cut falls in keeps a head we may lack. */
		if (off % KDFS_BLOCK_SIZE && !is_done(f, off / KDFS_BLOCK_SIZE))
			return -EAGAIN;
		for (uint64_t b = (off + KDFS_BLOCK_SIZE - 1) / KDFS_BLOCK_SIZE; b < NBLOCKS; b++)
			set_done(f, b);
		return 0;
	}
	if (len == 0)
		return 0; /* a version bump */
	uint64_t first = off / KDFS_BLOCK_SIZE, last = (off + len - 1) / KDFS_BLOCK_SIZE;
	for (uint64_t b = first; b <= last; b++) {
		uint64_t bs = b * KDFS_BLOCK_SIZE, be = bs + KDFS_BLOCK_SIZE;
		bool whole = off <= bs && off + len >= be;
		if (!whole && !is_done(f, b))
			return -EAGAIN;
	}
	for (uint64_t b = first; b <= last; b++)
		set_done(f, b);
	return 0;
}

static int fill_data(struct krg_kdfs *k, struct kdfs_fill *f, const Krg__Kdfs__ChunkFillIO *io)
{
	uint64_t off = io->offset;
	const uint8_t *p = io->data.data;
	size_t left = io->data.len;
	while (left) {
		uint64_t b = off / KDFS_BLOCK_SIZE;
		size_t n = MIN(left, (size_t)KDFS_BLOCK_SIZE);
		if (!is_done(f, b)) {
			int r = kdfs_chunk_write(k->chunks, io->ino, io->index, io->gen, io->version, off, p, n);
			if (r < 0)
				return r;
			set_done(f, b);
		}
		off += n;
		p += n;
		left -= n;
	}
	return 0;
}

static void on_cfill(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_kdfs *k = data;
	Krg__Kdfs__ChunkFillIO *io = krg__kdfs__chunk_fill_io__unpack(NULL, msg->len, msg->body);
	int r = 0;
	if (!io || (io->has_data && (io->offset % KDFS_BLOCK_SIZE || io->offset > KDFS_CHUNK_SIZE ||
				     io->data.len > KDFS_CHUNK_SIZE - io->offset))) {
		log_warn("kdfs: malformed chunk fill from node %u refused", from);
		r = -EBADMSG;
		goto out;
	}
	struct kdfs_fill *f = fill_find(k, io->ino, io->index, io->gen);
	if (io->begin) {
		if (!f) {
			if (!(f = calloc(1, sizeof(*f)))) {
				r = -ENOMEM;
				goto out;
			}
			f->ino = io->ino;
			f->index = io->index;
			f->gen = io->gen;
			f->next = k->fills;
			k->fills = f;
		}
		memset(f->done, 0, sizeof(f->done));
		r = kdfs_chunk_discard(k->chunks, io->ino, io->index, io->gen);
	} else if (io->end) {
		for (struct kdfs_fill **pp = &k->fills; *pp; pp = &(*pp)->next)
			if (*pp == f) {
				*pp = f->next;
				free(f);
				break;
			}
	} else if (!f) {
		r = -ENOENT;
	} else if (io->has_data) {
		r = fill_data(k, f, io);
	}
out:
	if (r < 0 && r != -EBADMSG)
		log_warn("kdfs: filling inode %llu chunk %u: %s", (unsigned long long)io->ino, io->index, strerror(-r));
	if (req_id)
		krg_net_reply(net, from, req_id, r, NULL, 0);
	if (io)
		krg__kdfs__chunk_fill_io__free_unpacked(io, NULL);
}

/* ---- the repairer ---- */

struct kdfs_repair {
	struct krg_kdfs *k;
	uv_timer_t timer;          /* scans; paces the copy */
	uint64_t quiet_from;       /* uv_now from which repairs may run */
	bool running;              /* a chunk is being repaired */
	/* the chunk being repaired */
	uint64_t ino, gen, version;
	uint32_t index, target;
	uint64_t off, len, copied, started;
	uint8_t *buf;
	bool in_filling;           /* ChunkFill committed: T must leave if we fail */
	/* Drain (this node is leaving): its replicas go once the chunk has
	 * its copies on up nodes; the leave is held until none is left. */
	enum { DRAIN_NONE, DRAIN_HOLDING, DRAIN_DONE } drain;
	bool dropping;             /* a drain's ChunkDrop in flight */
	unsigned drained;          /* replicas this node handed over */
	uint64_t drain_log_ms;
};

static void scan(uv_timer_t *t);
static void job_end(struct kdfs_repair *rp, int status, const char *why);

static void schedule(struct kdfs_repair *rp, uint64_t ms)
{
	if (!rp->k->stopping)
		uv_timer_start(&rp->timer, scan, ms, 0);
}

static struct kreq *job_req(struct kdfs_repair *rp)
{
	struct kreq *q = calloc(1, sizeof(*q));
	if (q) {
		q->k = rp->k;
		q->ino = rp->ino;
		q->ctx = rp;
	}
	return q;
}

/* The chunk as the local replica of the metadata has it now. */
static Krg__Kdfs__Chunk *chunk_now(struct kdfs_repair *rp)
{
	Krg__Kdfs__Inode *in;
	Krg__Kdfs__Chunk *c = NULL;
	if (kdfs_meta_get(rp->k->meta, rp->ino, &in) < 0)
		return NULL;
	for (size_t i = 0; i < in->n_chunks; i++)
		if (in->chunks[i]->index == rp->index && in->chunks[i]->gen == rp->gen) {
			size_t n = krg__kdfs__chunk__get_packed_size(in->chunks[i]);
			uint8_t *b = malloc(n ? n : 1);
			if (b) {
				krg__kdfs__chunk__pack(in->chunks[i], b);
				c = krg__kdfs__chunk__unpack(NULL, n, b);
				free(b);
			}
		}
	krg__kdfs__inode__free_unpacked(in, NULL);
	return c;
}

static void fill_op(const struct kdfs_repair *rp, Krg__Kdfs__ChunkFill *cf)
{
	cf->ino = rp->ino;
	cf->index = rp->index;
	cf->node = rp->target;
	cf->version = rp->version;
}

static int send_fill(struct kdfs_repair *rp, Krg__Kdfs__ChunkFillIO *io, krg_net_reply_cb cb)
{
	io->ino = rp->ino;
	io->index = rp->index;
	io->gen = rp->gen;
	io->version = rp->version;
	size_t n = krg__kdfs__chunk_fill_io__get_packed_size(io);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return -ENOMEM;
	krg__kdfs__chunk_fill_io__pack(io, b);
	int r = krg_net_request(rp->k->net, rp->target, KMSG_FILL, b, n, FILL_TIMEOUT_MS, cb, rp);
	free(b);
	return r;
}

static void end_sent(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
}

static void left_filling(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	kreq_free(q);
}

static void job_end(struct kdfs_repair *rp, int status, const char *why)
{
	Krg__Kdfs__ChunkFillIO io = KRG__KDFS__CHUNK_FILL_IO__INIT;
	io.has_end = io.end = true;
	send_fill(rp, &io, end_sent);
	if (status < 0 && rp->in_filling) {
		/* T leaves the filling nodes: writes stop going there. */
		Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
		Krg__Kdfs__ChunkDrop cd = KRG__KDFS__CHUNK_DROP__INIT;
		op.op_case = KRG__KDFS__OP__OP_CHUNK_DROP;
		op.chunk_drop = &cd;
		cd.ino = rp->ino;
		cd.index = rp->index;
		cd.node = rp->target;
		cd.version = rp->version;
		struct kreq *q = job_req(rp);
		if (q && kdfs_propose(q, &op, left_filling) < 0)
			kreq_free(q);
	}
	if (status < 0)
		log_warn("kdfs: repair of inode %llu chunk %u onto node %u stopped: %s (%s); tried again later",
			 (unsigned long long)rp->ino, rp->index, rp->target, why, strerror(-status));
	else
		log_info("kdfs: inode %llu chunk %u has a new copy on node %u (%llu bytes in %llu ms)",
			 (unsigned long long)rp->ino, rp->index, rp->target, (unsigned long long)rp->copied,
			 (unsigned long long)(uv_now(rp->k->loop) - rp->started));
	free(rp->buf);
	rp->buf = NULL;
	rp->running = false;
	rp->in_filling = false;
	schedule(rp, status < 0 ? SCAN_MS * 2 : 10);
}

/* 5. T has every block: it becomes a replica. */
static void filled(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	struct kdfs_repair *rp = q->ctx;
	kreq_free(q);
	if (status == 0)
		rp->in_filling = false;
	job_end(rp, status, "joining the replicas");
}

static void copy_next(struct kdfs_repair *rp);

static void pace_cb(uv_timer_t *t)
{
	copy_next(t->data);
}

static void piece_sent(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct kdfs_repair *rp = data;
	if (status < 0)
		return job_end(rp, status, "copying");
	size_t n = MIN((uint64_t)PIECE, rp->len - rp->off);
	rp->off += n;
	rp->copied += n;
	/* Throttle: no faster than kdfs_repair_mibps. */
	uint64_t elapsed = uv_now(rp->k->loop) - rp->started;
	uint64_t due = rp->copied * 1000 / ((uint64_t)rp->k->cfg->kdfs_repair_mibps << 20);
	if (due > elapsed) {
		uv_timer_start(&rp->timer, pace_cb, due - elapsed, 0);
		return;
	}
	copy_next(rp);
}

/* 4. The next MiB of the repairer's replica, at the chunk's version now. */
static void copy_next(struct kdfs_repair *rp)
{
	if (rp->k->stopping)
		return;
	Krg__Kdfs__Chunk *c = chunk_now(rp);
	bool still = false;
	uint64_t version = 0;
	if (c) {
		for (size_t i = 0; i < c->n_filling; i++)
			still |= c->filling[i] == rp->target;
		version = c->version;
		krg__kdfs__chunk__free_unpacked(c, NULL);
	}
	if (!still)
		return job_end(rp, -ECANCELED, "the node left the filling nodes");
	rp->version = version;
	int r = kdfs_chunk_length(rp->k->chunks, rp->ino, rp->index, rp->gen, &rp->len);
	if (r < 0)
		return job_end(rp, r, "sizing the replica");
	if (rp->off >= rp->len) {
		Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
		Krg__Kdfs__ChunkFill cf = KRG__KDFS__CHUNK_FILL__INIT;
		op.op_case = KRG__KDFS__OP__OP_CHUNK_FILL;
		op.chunk_fill = &cf;
		fill_op(rp, &cf);
		cf.has_done = cf.done = true;
		struct kreq *q = job_req(rp);
		if (!q || (r = kdfs_propose(q, &op, filled)) < 0) {
			free(q);
			return job_end(rp, q ? r : -ENOMEM, "proposing the new replica");
		}
		return;
	}
	size_t n = MIN((uint64_t)PIECE, rp->len - rp->off);
	r = kdfs_chunk_read(rp->k->chunks, rp->ino, rp->index, rp->gen, rp->version, rp->off, rp->buf, n);
	if (r < 0)
		return job_end(rp, r, "reading the local replica");
	Krg__Kdfs__ChunkFillIO io = KRG__KDFS__CHUNK_FILL_IO__INIT;
	io.has_offset = io.has_data = true;
	io.offset = rp->off;
	io.data.data = rp->buf;
	io.data.len = n;
	if ((r = send_fill(rp, &io, piece_sent)) < 0)
		job_end(rp, r, "sending");
}

/* 3. The replicas are at the new version: copy. */
static void bumped(struct kreq *q, int status)
{
	struct kdfs_repair *rp = q->ctx;
	kreq_free(q);
	if (status < 0)
		return job_end(rp, status, "moving the replicas to the new version");
	rp->started = uv_now(rp->k->loop);
	copy_next(rp);
}

/* 2. T is a filling node; the version moved on. */
static void fill_started(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	struct kdfs_repair *rp = q->ctx;
	Krg__Kdfs__Chunk *c = status == 0 && res->chunk ? chunk_now(rp) : NULL;
	if (!c) {
		kreq_free(q);
		return job_end(rp, status < 0 ? status : -ENOENT, "starting the fill");
	}
	rp->in_filling = true;
	rp->version = c->version;
	q->chunk = c;
	kdfs_io_bump(q, bumped);
}

/* 1. T is ready to be filled. */
static void begun(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct kdfs_repair *rp = data;
	if (status < 0)
		return job_end(rp, status, "beginning on the target");
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkFill cf = KRG__KDFS__CHUNK_FILL__INIT;
	op.op_case = KRG__KDFS__OP__OP_CHUNK_FILL;
	op.chunk_fill = &cf;
	fill_op(rp, &cf);
	struct kreq *q = job_req(rp);
	int r = q ? kdfs_propose(q, &op, fill_started) : -ENOMEM;
	if (r < 0) {
		free(q);
		job_end(rp, r, "proposing the fill");
	}
}

/* ---- finding work ---- */

struct pick {
	struct kdfs_repair *rp;
	bool quiet;                /* within the grace after a failure */
	bool found;
	bool cleaned;              /* ended a fill left behind instead */
};

static bool listed(const uint32_t *v, size_t n, uint32_t node)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == node)
			return true;
	return false;
}

static void take(struct kdfs_repair *rp, const Krg__Kdfs__Inode *in, const Krg__Kdfs__Chunk *c, uint32_t target)
{
	rp->ino = in->attr->ino;
	rp->index = c->index;
	rp->gen = c->gen;
	rp->version = c->version;
	rp->target = target;
}

static int consider(const Krg__Kdfs__Inode *in, void *data)
{
	struct pick *p = data;
	struct krg_kdfs *k = p->rp->k;
	if (!S_ISREG(in->attr->mode) || in->attr->nlink == 0)
		return 0;
	unsigned want = kdfs_copies_wanted(k, in);
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		unsigned up = 0, alive = 0;
		uint32_t repairer = 0;
		/* Copies on up nodes count; a leaving node's still serves, so
		 * it may be the repairer (the only copy may be there). */
		for (size_t j = 0; j < c->n_nodes; j++)
			if (kdfs_node_alive(k, c->nodes[j])) {
				alive++;
				up += kdfs_node_up(k, c->nodes[j]);
				if (!repairer || c->nodes[j] < repairer)
					repairer = c->nodes[j];
			}
		if (up >= want || repairer != k->self)
			continue;
		/* After a failure, wait the grace (the node may come back);
		 * a chunk short only because a node is leaving moves at once. */
		if (p->quiet && alive < want)
			continue;
		if (c->n_filling) {
			/* A fill whose repairer is gone (we are not running it):
			 * take the node out, the next scan starts afresh. */
			struct kdfs_repair *rp = p->rp;
			take(rp, in, c, c->filling[0]);
			rp->in_filling = true;
			rp->running = true;
			p->cleaned = true;
			job_end(rp, -ECANCELED, "an earlier fill was left behind");
			return 1;
		}
		/* A live node with no copy, from a point that spreads the load,
		 * holding as few of the chunk's stripe row (its file's other
		 * groups there) as can be: one node lost, fewer groups short. */
		size_t nn = k->cfg->n_nodes, start = (size_t)((in->attr->ino + c->index) % (nn ? nn : 1));
		uint32_t best = 0;
		unsigned best_share = UINT_MAX;
		for (size_t j = 0; j < nn && best_share; j++) {
			uint32_t id = k->cfg->nodes[(start + j) % nn].id;
			if (id == k->self || !kdfs_node_up(k, id) || listed(c->nodes, c->n_nodes, id))
				continue;
			unsigned share = kdfs_layout_row_share(in, c->index, id);
			if (share < best_share)
				best = id, best_share = share;
		}
		if (best) {
			take(p->rp, in, c, best);
			p->found = true;
			return 1;
		}
	}
	return 0;
}

/* ---- drain: this node is leaving (`krgadm nodes del`) ----
 * Its chunks get their copies on up nodes through the repair above (a
 * leaving node's copy does not count, and is copied without waiting the
 * grace); then, chunk by chunk, this node drops its own replica (a
 * ChunkDrop and a bump of the others, as for a replica that failed) and
 * deletes its files. Once no chunk lists it, the leave goes on. */

struct drain {
	struct krg_kdfs *k;
	unsigned n_up;             /* up nodes: the copies a chunk can have */
	unsigned held;             /* chunks that still list this node */
	Krg__Kdfs__Chunk *chunk;   /* one that can go now (owned) */
	uint64_t ino;
};

static int drain_consider(const Krg__Kdfs__Inode *in, void *data)
{
	struct drain *d = data;
	struct krg_kdfs *k = d->k;
	if (!S_ISREG(in->attr->mode))
		return 0;
	/* An unlinked file waits for its reap and is never repaired: it
	 * holds the leave only while a copy elsewhere lets ours go. */
	unsigned need = in->attr->nlink ? MAX(1u, MIN(kdfs_copies_wanted(k, in), d->n_up)) : 1;
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		if (!listed(c->nodes, c->n_nodes, k->self))
			continue;
		unsigned others = 0;
		for (size_t j = 0; j < c->n_nodes; j++)
			others += c->nodes[j] != k->self && kdfs_node_up(k, c->nodes[j]);
		if (others == 0 && in->attr->nlink == 0)
			continue;
		d->held++;
		if (others < need || d->chunk)
			continue;
		size_t n = krg__kdfs__chunk__get_packed_size(c);
		uint8_t *b = malloc(n ? n : 1);
		if (b) {
			krg__kdfs__chunk__pack(c, b);
			d->chunk = krg__kdfs__chunk__unpack(NULL, n, b);
			d->ino = in->attr->ino;
			free(b);
		}
	}
	return 0;
}

static void drain_dropped(struct kreq *q, int status)
{
	struct kdfs_repair *rp = q->ctx;
	struct krg_kdfs *k = rp->k;
	uint32_t index = q->chunk->index;
	uint64_t gen = q->chunk->gen;
	/* Our files go only if the map has let go of us (a drop that met
	 * another change is a no-op: the next scan tries again). */
	Krg__Kdfs__Chunk *now = NULL;
	rp->ino = q->ino;
	rp->index = index;
	rp->gen = gen;
	if (status == 0 && (now = chunk_now(rp)) && !listed(now->nodes, now->n_nodes, k->self) &&
	    !listed(now->filling, now->n_filling, k->self)) {
		int r = kdfs_chunk_discard(k->chunks, q->ino, index, gen);
		if (r < 0)
			log_warn("kdfs: leaving: cannot delete the replica of inode %llu chunk %u: %s",
				 (unsigned long long)q->ino, index, strerror(-r));
		rp->drained++;
	} else if (status < 0) {
		log_warn("kdfs: leaving: cannot drop the replica of inode %llu chunk %u: %s; tried again",
			 (unsigned long long)q->ino, index, strerror(-status));
	}
	if (now)
		krg__kdfs__chunk__free_unpacked(now, NULL);
	kreq_free(q);
	rp->dropping = false;
	schedule(rp, status < 0 ? SCAN_MS : 10);
}

/* true: a drop is under way (it schedules the next scan). */
static bool drain_step(struct kdfs_repair *rp, uint64_t now)
{
	struct krg_kdfs *k = rp->k;
	if (krg_cluster_node_state(k->cluster, k->self) != KRG_NODE_LEAVING) {
		if (rp->drain == DRAIN_HOLDING)
			krg_cluster_leave_hold(k->cluster, "kdfs", false, NULL);
		rp->drain = DRAIN_NONE;
		return false;
	}
	if (rp->drain == DRAIN_DONE)
		return false;
	if (rp->drain == DRAIN_NONE)
		kdfs_repair_drain_begin(k);
	struct drain d = { .k = k };
	for (size_t i = 0; i < k->cfg->n_nodes; i++)
		d.n_up += kdfs_node_up(k, k->cfg->nodes[i].id);
	kdfs_meta_each_inode(k->meta, drain_consider, &d);
	if (d.held == 0) {
		char note[64];
		snprintf(note, sizeof(note), "kdfs: %u chunk replica(s) handed over", rp->drained);
		krg_cluster_leave_hold(k->cluster, "kdfs", false, note);
		rp->drain = DRAIN_DONE;
		log_info("kdfs: leaving: no chunk is left here (%u replica(s) handed over)", rp->drained);
		return false;
	}
	if (now - rp->drain_log_ms >= 2000) {
		rp->drain_log_ms = now;
		log_info("kdfs: leaving: %u chunk(s) still here (%u handed over, %u up node(s) to take them)", d.held,
			 rp->drained, d.n_up);
	}
	if (!d.chunk)
		return false; /* their copies are still being made */
	struct kreq *q = calloc(1, sizeof(*q));
	if (!q) {
		krg__kdfs__chunk__free_unpacked(d.chunk, NULL);
		return false;
	}
	q->k = k;
	q->ino = d.ino;
	q->ctx = rp;
	q->chunk = d.chunk;
	q->draining = true;
	q->failed[q->n_failed++] = k->self;
	rp->dropping = true;
	kdfs_io_drop(q, drain_dropped);
	return true;
}

void kdfs_repair_drain_begin(struct krg_kdfs *k)
{
	struct kdfs_repair *rp = k->repair;
	int r = krg_cluster_leave_hold(k->cluster, "kdfs", true, NULL);
	if (r < 0)
		log_warn("kdfs: cannot hold this node's leave: %s", strerror(-r));
	if (!rp || rp->drain == DRAIN_HOLDING)
		return;
	log_info("kdfs: this node is leaving: its chunks get copies elsewhere before it goes");
	rp->drain = DRAIN_HOLDING;
	rp->drained = 0;
	if (!rp->running && !rp->dropping)
		schedule(rp, 10);
}

static void scan(uv_timer_t *t)
{
	struct kdfs_repair *rp = t->data;
	struct krg_kdfs *k = rp->k;
	if (rp->running || rp->dropping || k->stopping)
		return;
	uint64_t now = uv_now(k->loop);
	if (drain_step(rp, now))
		return;
	struct pick p = { .rp = rp, .quiet = now < rp->quiet_from };
	kdfs_meta_each_inode(k->meta, consider, &p);
	if (p.cleaned)
		return; /* job_end scheduled the next scan */
	if (!p.found)
		return schedule(rp, SCAN_MS);
	rp->buf = malloc(PIECE);
	if (!rp->buf)
		return schedule(rp, SCAN_MS);
	rp->running = true;
	rp->off = rp->copied = 0;
	rp->started = now;
	log_info("kdfs: inode %llu chunk %u has too few live copies; copying it to node %u",
		 (unsigned long long)rp->ino, rp->index, rp->target);
	Krg__Kdfs__ChunkFillIO io = KRG__KDFS__CHUNK_FILL_IO__INIT;
	io.has_begin = io.begin = true;
	int r = send_fill(rp, &io, begun);
	if (r < 0)
		job_end(rp, r, "reaching the target");
}

void kdfs_repair_node_down(struct krg_kdfs *k)
{
	if (k->repair)
		k->repair->quiet_from = uv_now(k->loop) + k->cfg->kdfs_repair_grace_ms;
}

void kdfs_repair_progress(struct krg_kdfs *k, uint32_t *running, uint64_t *done, uint64_t *total)
{
	struct kdfs_repair *rp = k->repair;
	*running = rp && rp->running;
	*done = rp && rp->running ? rp->copied : 0;
	*total = rp && rp->running ? rp->len : 0;
}

int kdfs_repair_start(struct krg_kdfs *k)
{
	int r = krg_net_handle(k->net, KMSG_FILL, on_cfill, k);
	if (r < 0)
		return r;
	struct kdfs_repair *rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->k = k;
	/* A node that starts waits the grace too: the others may still be
	 * on their way up. */
	rp->quiet_from = uv_now(k->loop) + k->cfg->kdfs_repair_grace_ms;
	uv_timer_init(k->loop, &rp->timer);
	rp->timer.data = rp;
	k->repair = rp;
	schedule(rp, SCAN_MS);
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct kdfs_repair *rp = h->data;
	free(rp->buf);
	free(rp);
}

void kdfs_repair_stop(struct krg_kdfs *k)
{
	if (k->repair) {
		uv_timer_stop(&k->repair->timer);
		uv_close((uv_handle_t *)&k->repair->timer, timer_closed);
		k->repair = NULL;
	}
	while (k->fills) {
		struct kdfs_fill *f = k->fills;
		k->fills = f->next;
		free(f);
	}
}
