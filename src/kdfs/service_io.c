/* service_io.c — kdfs's data path in krgd: reads from the nearest good
 * replica, writes to every replica, truncates, and the peers' chunk
 * messages ("kdfs.cread", "kdfs.cwrite", "kdfs.ctrunc").
 *
 * A write is answered once every replica of its chunk has it. A replica
 * that fails (dead node, bad disk) is dropped from the chunk by a
 * ChunkDrop on the log, which bumps the chunk's version: the copies that
 * have the write move to the new version with the next write, and the
 * dropped one can never serve a read again (its version is behind). Only
 * when no replica took the write does the call fail (EIO). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "kdfs/layout.h"
#include "kdfs/service-int.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"

#define KMSG_READ "kdfs.cread"
#define KMSG_WRITE "kdfs.cwrite"
#define KMSG_TRUNC "kdfs.ctrunc"
#define KMSG_SYNC "kdfs.csync"
#define PEER_TIMEOUT_MS 3000

static Krg__Kdfs__Chunk *chunk_dup(const Krg__Kdfs__Chunk *c)
{
	size_t n = krg__kdfs__chunk__get_packed_size(c);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return NULL;
	krg__kdfs__chunk__pack(c, b);
	Krg__Kdfs__Chunk *d = krg__kdfs__chunk__unpack(NULL, n, b);
	free(b);
	return d;
}

/* Where file offset off of ino lives, from the local replica of the
 * metadata: *x (layout.c's map), *out the chunk (NULL: none yet, a hole),
 * *size the published size, *lo the file's layout (each may be NULL). */
static int chunk_at(struct krg_kdfs *k, uint64_t ino, uint64_t off, struct kdfs_extent *x, Krg__Kdfs__Chunk **out,
		    uint64_t *size, struct kdfs_layout *lo)
{
	Krg__Kdfs__Inode *in;
	int r = kdfs_meta_get(k->meta, ino, &in);
	if (r < 0)
		return r;
	struct kdfs_layout l;
	struct kdfs_extent e;
	kdfs_layout_of(in, &l);
	kdfs_layout_map(&l, off, &e);
	if (x)
		*x = e;
	if (lo)
		*lo = l;
	if (out)
		*out = NULL;
	if (size)
		*size = in->attr->size;
	if (!S_ISREG(in->attr->mode))
		r = S_ISDIR(in->attr->mode) ? -EISDIR : -EINVAL;
	for (size_t i = 0; !r && out && i < in->n_chunks; i++)
		if (in->chunks[i]->index == e.index && !(*out = chunk_dup(in->chunks[i])))
			r = -ENOMEM;
	krg__kdfs__inode__free_unpacked(in, NULL);
	return r;
}

static void set_chunk(struct kreq *q, Krg__Kdfs__Chunk *c)
{
	if (q->chunk)
		krg__kdfs__chunk__free_unpacked(q->chunk, NULL);
	q->chunk = c;
}

/* ---- reads ---- */

static void read_next(struct kreq *q);

static void read_advance(struct kreq *q, size_t n)
{
	q->off += n;
	q->try = 0;
	set_chunk(q, NULL);
	read_next(q);
}

/* Replica i of the chunk in reading order: this node first, then the
 * others the membership says are up. -1 when there is none left. */
static int replica_at(struct kreq *q, size_t i)
{
	struct krg_kdfs *k = q->k;
	size_t seen = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t j = 0; j < q->chunk->n_nodes; j++) {
			uint32_t n = q->chunk->nodes[j];
			bool self = n == k->self;
			if ((pass == 0) != self || (!self && !kdfs_node_alive(k, n)))
				continue;
			if (seen++ == i)
				return (int)n;
		}
	return -1;
}

static void read_piece(struct kreq *q);

static void bad_dropped(struct kreq *d, int status)
{
	kreq_free(d);
}

/* A replica failed a block's checksum: it leaves the chunk (and the
 * others move to the new version), so the repair gives the chunk a good
 * copy again. The read goes on from another replica meanwhile. */
static void drop_bad(struct kreq *q, uint32_t node)
{
	struct kreq *d = calloc(1, sizeof(*d));
	if (!d || !(d->chunk = chunk_dup(q->chunk))) {
		free(d);
		return;
	}
	d->k = q->k;
	d->ino = q->req->read->ino;
	d->failed[d->n_failed++] = node;
	log_warn("kdfs: node %u's replica of inode %llu chunk %u failed its checksum; dropping it for a repair",
		 node, (unsigned long long)d->ino, q->chunk->index);
	kdfs_io_drop(d, bad_dropped);
}

static void cread_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct kreq *q = data;
	size_t at = q->off - q->req->read->offset, want = q->piece;
	Krg__Kdfs__ChunkData *d = NULL;
	if (status == 0 && (!(d = krg__kdfs__chunk_data__unpack(NULL, reply->len, reply->body)) || d->data.len != want))
		status = -EBADMSG;
	if (status == 0)
		memcpy(q->buf + at, d->data.data, want);
	if (d)
		krg__kdfs__chunk_data__free_unpacked(d, NULL);
	if (status == 0)
		return read_advance(q, want);
	q->stale |= status == -ESTALE;
	if (status != -ENOENT)
		q->status = status;
	if (status == -EBADMSG && q->chunk->n_nodes > 1)
		drop_bad(q, (uint32_t)replica_at(q, q->try));
	q->try++;
	read_piece(q);
}

/* After the barrier of a copy past our map: the piece again, mapped anew. */
static void read_retry(int status, void *data)
{
	struct kreq *q = data;
	if (status < 0) /* the leader went away under the barrier: the client redoes it */
		return kdfs_reply(q, status == -ECANCELED ? -EIO : -EAGAIN, NULL);
	read_next(q);
}

/* Read the current piece from the next replica to try. */
static void read_piece(struct kreq *q)
{
	struct krg_kdfs *k = q->k;
	size_t at = q->off - q->req->read->offset, want = q->piece;
	uint64_t in = q->piece_off;
	for (;;) {
		int node = replica_at(q, q->try);
		if (node < 0) {
			/* Every replica said "never written": a hole. */
			if (q->status == 0) {
				memset(q->buf + at, 0, want);
				return read_advance(q, want);
			}
			if (q->stale && q->stale_tries < 8) {
				/* A copy is past our map (a drop or a fill moved the
				 * chunk on and reached it before this node applied
				 * the change): read the map again and redo. */
				q->stale = false;
				q->stale_tries++;
				q->try = 0;
				set_chunk(q, NULL);
				int r = krg_cluster_sm_barrier(k->cluster, read_retry, q);
				if (r == 0)
					return;
				return kdfs_reply(q, r == -EAGAIN ? -EAGAIN : -EIO, NULL);
			}
			log_warn("kdfs: inode %llu chunk %u: no good replica (%s)",
				 (unsigned long long)q->req->read->ino, q->chunk->index, strerror(-q->status));
			return kdfs_reply(q, -EIO, NULL);
		}
		if ((uint32_t)node == k->self) {
			int r = kdfs_chunk_read(k->chunks, q->req->read->ino, q->chunk->index, q->chunk->gen,
						q->chunk->version, in, q->buf + at, want);
			if (r == 0)
				return read_advance(q, want);
			q->stale |= r == -ESTALE;
			if (r != -ENOENT) {
				q->status = r;
				log_warn("kdfs: local replica of inode %llu chunk %u: %s; reading another",
					 (unsigned long long)q->req->read->ino, q->chunk->index, strerror(-r));
			}
			if (r == -EBADMSG && q->chunk->n_nodes > 1)
				drop_bad(q, k->self);
			q->try++;
			continue;
		}
		Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
		io.ino = q->req->read->ino;
		io.index = q->chunk->index;
		io.version = q->chunk->version;
		io.has_gen = true;
		io.gen = q->chunk->gen;
		io.offset = in;
		io.has_length = true;
		io.length = (uint32_t)want;
		uint8_t buf[128];
		size_t n = krg__kdfs__chunk_io__pack(&io, buf);
		if (krg_net_request(k->net, (uint32_t)node, KMSG_READ, buf, n, PEER_TIMEOUT_MS, cread_cb, q) == 0)
			return;
		q->try++;
	}
}

static void read_next(struct kreq *q)
{
	if (q->off >= q->req->read->offset + q->len) {
		Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
		r.has_data = true;
		r.data.data = q->buf;
		r.data.len = q->len;
		return kdfs_reply(q, 0, &r);
	}
	Krg__Kdfs__Chunk *c;
	struct kdfs_extent x;
	int e = chunk_at(q->k, q->req->read->ino, q->off, &x, &c, NULL, NULL);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	size_t at = q->off - q->req->read->offset;
	size_t want = (size_t)MIN((uint64_t)(q->len - at), x.len);
	q->piece = want;
	q->piece_off = x.off;
	if (!c) { /* no chunk: a hole */
		memset(q->buf + at, 0, want);
		return read_advance(q, want);
	}
	set_chunk(q, c);
	q->status = 0;
	read_piece(q);
}

void kdfs_io_read(struct kreq *q)
{
	const Krg__Kdfs__Read *rd = q->req->read;
	uint64_t size;
	int e = chunk_at(q->k, rd->ino, 0, NULL, NULL, &size, NULL);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	struct pending *p = kdfs_pending(q->k, rd->ino, false);
	if (p && p->size > size)
		size = p->size;
	q->len = rd->offset < size ? (size_t)MIN((uint64_t)rd->size, size - rd->offset) : 0;
	q->off = rd->offset;
	if (q->len && !(q->buf = malloc(q->len)))
		return kdfs_reply(q, -ENOMEM, NULL);
	read_next(q);
}

/* ---- writes and truncates: every replica ---- */

typedef void (*replicated_cb)(struct kreq *q, int status);

struct rep_call {
	struct kreq *q;
	uint32_t node;
};

static void drop_next(struct kreq *q);

static void dropped(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	Krg__Kdfs__Chunk *c;
	if (status < 0) {
		/* The failed replica stays in the map at the version the others
		 * hold: the change cannot be acknowledged. The client redoes it
		 * (a write is idempotent) once a leader takes the drop. */
		log_warn("kdfs: cannot drop a failed replica: %s", strerror(-status));
		q->n_failed = 0;
		q->need_bump = false;
		return q->rep_done(q, -EAGAIN);
	} else if (res->chunk && res->chunk->version != q->chunk->version && (c = chunk_dup(res->chunk))) {
		set_chunk(q, c);
		q->need_bump = true;
	}
	drop_next(q);
}

static void replicate(struct kreq *q, const char *type, Krg__Kdfs__ChunkIO *io, replicated_cb done);

static void bumped(struct kreq *q, int status)
{
	q->bump_then(q, status);
}

static uint64_t req_ino(const struct kreq *q)
{
	if (!q->req)
		return q->ino; /* a repair's own change */
	if (q->req->req_case == KRG__KDFS__REQUEST__REQ_FSYNC)
		return q->req->fsync;
	return q->req->req_case == KRG__KDFS__REQUEST__REQ_WRITE ? q->req->write->ino : q->req->op->setattr->ino;
}

/* Take the replicas that failed out of the chunk, one op each. */
static void drop_next(struct kreq *q)
{
	if (!q->n_failed && q->need_bump) {
		/* The replicas that took the change are still at the old
		 * version: a read at the new one would find none. An empty
		 * write moves them up (and drops any that fails in turn). */
		Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
		io.ino = req_ino(q);
		io.has_data = true;
		q->need_bump = false;
		if (q->rep_done != bumped) /* a bump of a bump keeps the first caller */
			q->bump_then = q->rep_done;
		return replicate(q, KMSG_WRITE, &io, bumped);
	}
	if (!q->n_failed)
		return q->rep_done(q, 0);
	uint32_t node = q->failed[--q->n_failed];
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkDrop cd = KRG__KDFS__CHUNK_DROP__INIT;
	op.op_case = KRG__KDFS__OP__OP_CHUNK_DROP;
	op.chunk_drop = &cd;
	cd.ino = req_ino(q);
	cd.index = q->chunk->index;
	cd.node = node;
	cd.version = q->chunk->version;
	if (q->draining)
		log_info("kdfs: node %u leaves: dropping its replica of inode %llu chunk %u", node,
			 (unsigned long long)cd.ino, cd.index);
	else
		log_warn("kdfs: node %u missed a change of inode %llu chunk %u; dropping that replica", node,
			 (unsigned long long)cd.ino, cd.index);
	int r = kdfs_propose(q, &op, dropped);
	if (r < 0) {
		/* No leader (it may be the node that just died): try again. */
		q->n_failed = 0;
		q->need_bump = false;
		q->rep_done(q, r == -EAGAIN ? -EAGAIN : -EIO);
	}
}

static bool in_list(const uint32_t *v, size_t n, uint32_t node)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == node)
			return true;
	return false;
}

static void stale_retry(int status, void *data);

/* One answer less; the last one decides. */
static void rep_finish(struct kreq *q)
{
	if (--q->waiting > 0)
		return;
	size_t failed_replicas = 0;
	for (size_t i = 0; i < q->n_failed; i++)
		failed_replicas += in_list(q->chunk->nodes, q->chunk->n_nodes, q->failed[i]);
	if (q->stale && q->rep_done != bumped && q->stale_tries < 8) {
		/* A replica is at a newer version than our map (a repair or a
		 * drop moved the chunk on): read the map again and redo. */
		q->stale = false;
		q->stale_tries++;
		q->n_failed = 0;
		int r = krg_cluster_sm_barrier(q->k->cluster, stale_retry, q);
		if (r == 0)
			return;
		/* No leader (an election): the client redoes the change. */
		return q->rep_done(q, r == -EAGAIN ? -EAGAIN : -EIO);
	}
	q->stale = false;
	if (failed_replicas >= q->chunk->n_nodes) {
		q->n_failed = 0;
		return q->rep_done(q, -EIO);
	}
	drop_next(q);
}

static void rep_one_done(struct rep_call *c, int status)
{
	struct kreq *q = c->q;
	if (status == -ESTALE)
		q->stale = true;
	else if (status < 0 && q->n_failed < ARRAY_SIZE(q->failed))
		q->failed[q->n_failed++] = c->node;
	free(c);
	rep_finish(q);
}

static void rep_reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	rep_one_done(data, status);
}

/* Send io (KMSG_WRITE or KMSG_TRUNC) to every replica of q->chunk; done once all answered. */
static void replicate(struct kreq *q, const char *type, Krg__Kdfs__ChunkIO *io, replicated_cb done)
{
	struct krg_kdfs *k = q->k;
	io->index = q->chunk->index;
	io->version = q->chunk->version;
	io->has_gen = true;
	io->gen = q->chunk->gen;
	size_t n = krg__kdfs__chunk_io__get_packed_size(io);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return done(q, -ENOMEM);
	krg__kdfs__chunk_io__pack(io, buf);
	q->rep_done = done;
	q->n_failed = 0;
	q->waiting = 1; /* ours, until every call is out: none can finish q early */
	/* The replicas, and the nodes being filled by a repair: they must
	 * see every change from the moment they start filling. The other
	 * nodes' requests go out first (pass 0) and our own disk's write
	 * is made while they travel (pass 1): the replicas work at once
	 * instead of one after the other. */
	size_t all = q->chunk->n_nodes + q->chunk->n_filling;
	for (size_t i = 0; i < 2 * all; i++) {
		uint32_t node = i % all < q->chunk->n_nodes ? q->chunk->nodes[i % all]
							    : q->chunk->filling[i % all - q->chunk->n_nodes];
		if ((node == k->self) != (i >= all))
			continue;
		struct rep_call *c = calloc(1, sizeof(*c));
		if (!c) {
			if (q->n_failed < ARRAY_SIZE(q->failed))
				q->failed[q->n_failed++] = node;
			continue;
		}
		c->q = q;
		c->node = node;
		q->waiting++;
		int admit = 0;
		if (c->node == k->self && !io->sync &&
		    (admit = kdfs_fill_admit(k, io->ino, io->index, io->gen, io->offset,
					     io->truncate ? 0 : io->data.len, io->truncate)) < 0) {
			rep_one_done(c, admit);
		} else if (c->node == k->self && io->sync) {
			int r = kdfs_chunk_sync(k->chunks, io->ino, io->index, io->gen, io->version);
			if (r < 0 && r != -ESTALE)
				log_warn("kdfs: local replica of inode %llu chunk %u: fsync: %s",
					 (unsigned long long)io->ino, io->index, strerror(-r));
			rep_one_done(c, r);
		} else if (c->node == k->self) {
			int r = io->truncate ? kdfs_chunk_truncate(k->chunks, io->ino, io->index, io->gen, io->version,
								   io->offset)
					     : kdfs_chunk_write(k->chunks, io->ino, io->index, io->gen, io->version,
								io->offset, io->data.data, io->data.len);
			if (r < 0)
				log_warn("kdfs: local replica of inode %llu chunk %u: %s",
					 (unsigned long long)io->ino, io->index, strerror(-r));
			rep_one_done(c, r);
		} else if (!kdfs_node_alive(k, c->node) ||
			   krg_net_request(k->net, c->node, type, buf, n, PEER_TIMEOUT_MS, rep_reply_cb, c) < 0) {
			rep_one_done(c, -EHOSTUNREACH);
		}
	}
	free(buf);
	rep_finish(q);
}

static void write_next(struct kreq *q);

/* After the barrier of a stale answer: the same piece again, with the
 * chunk map as it is now. */
static void stale_retry(int status, void *data)
{
	struct kreq *q = data;
	if (status < 0) /* the leader went away under the barrier: redo, unless krgd stops */
		return q->rep_done(q, status == -ECANCELED ? -EIO : -EAGAIN);
	set_chunk(q, NULL);
	if (!q->req)
		return q->rep_done(q, -ESTALE); /* a repair's own change: it starts over */
	if (q->req->req_case == KRG__KDFS__REQUEST__REQ_WRITE)
		return write_next(q);
	if (q->req->req_case == KRG__KDFS__REQUEST__REQ_FSYNC)
		return kdfs_io_fsync(q);
	kdfs_io_truncate(q, q->after);
}

static void write_piece_done(struct kreq *q, int status)
{
	if (status < 0)
		return kdfs_reply(q, status, NULL);
	q->off += q->piece;
	const Krg__Kdfs__Write *w = q->req->write;
	struct pending *p = kdfs_pending(q->k, w->ino, true);
	if (p) {
		p->size = MAX(p->size, q->off);
		p->dirty = true;
	}
	set_chunk(q, NULL);
	write_next(q);
}

static void write_piece(struct kreq *q)
{
	const Krg__Kdfs__Write *w = q->req->write;
	Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
	io.ino = w->ino;
	io.offset = q->piece_off;
	io.has_data = true;
	io.data.data = w->data.data + (q->off - w->offset);
	io.data.len = q->piece;
	replicate(q, KMSG_WRITE, &io, write_piece_done);
}

static void alloc_retry(int status, void *data)
{
	struct kreq *q = data;
	if (status < 0)
		return kdfs_reply(q, status == -ECANCELED ? -EIO : -EAGAIN, NULL);
	write_next(q);
}

static void allocated(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	if (status == -ESTALE && q->stale_tries++ < 8) {
		/* The file's striping changed under the write (it was still
		 * empty): map the offset again once this node has the change. */
		int r = krg_cluster_sm_barrier(q->k->cluster, alloc_retry, q);
		if (r < 0)
			kdfs_reply(q, r == -EAGAIN ? -EAGAIN : -EIO, NULL);
		return;
	}
	if (status < 0 || !res->chunk)
		return kdfs_reply(q, status < 0 ? status : -EIO, NULL);
	Krg__Kdfs__Chunk *c = chunk_dup(res->chunk);
	if (!c)
		return kdfs_reply(q, -ENOMEM, NULL);
	set_chunk(q, c);
	write_piece(q);
}

/* Replicas for a new chunk. Group 0 (every chunk of a file that is not
 * striped): this node, then the next up nodes after a point that depends
 * on the chunk, so that files spread over the nodes. Group g > 0 of a
 * striped file: the up nodes from the g-th after this one on, so that the
 * groups' first copies are on different nodes (as far as there are
 * nodes) and a small file, all in group 0, stays where it is written.
 * A node that is leaving places nothing on itself (unless it is alone). */
static size_t pick_nodes(struct krg_kdfs *k, uint64_t ino, const struct kdfs_layout *l, uint32_t index,
			 uint32_t *out, size_t max)
{
	const struct krg_config *cfg = k->cfg;
	size_t n = 0, want = MIN((size_t)kdfs_replicas_of(k, ino), max), nn = cfg->n_nodes ? cfg->n_nodes : 1;
	uint32_t group = kdfs_layout_group(l, index);
	size_t start = (size_t)((ino + index) % nn);
	if (group == 0 && kdfs_node_up(k, k->self)) {
		out[n++] = k->self;
	} else if (group > 0) {
		size_t self_at = 0;
		while (self_at < cfg->n_nodes && cfg->nodes[self_at].id != k->self)
			self_at++;
		start = (self_at + group) % nn;
	}
	for (size_t i = 0; i < cfg->n_nodes && n < want; i++) {
		uint32_t id = cfg->nodes[(start + i) % cfg->n_nodes].id;
		bool taken = false;
		for (size_t j = 0; j < n; j++)
			taken |= out[j] == id;
		if (!taken && kdfs_node_up(k, id))
			out[n++] = id;
	}
	if (n == 0)
		out[n++] = k->self;
	return n;
}

static void write_next(struct kreq *q)
{
	const Krg__Kdfs__Write *w = q->req->write;
	if (q->off >= w->offset + w->data.len) {
		Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
		r.has_written = true;
		r.written = (uint32_t)w->data.len;
		return kdfs_reply(q, 0, &r);
	}
	Krg__Kdfs__Chunk *c;
	struct kdfs_extent x;
	struct kdfs_layout l;
	int e = chunk_at(q->k, w->ino, q->off, &x, &c, NULL, &l);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	if (x.index > KDFS_INDEX_MAX) {
		if (c)
			krg__kdfs__chunk__free_unpacked(c, NULL);
		return kdfs_reply(q, -EFBIG, NULL);
	}
	q->piece = (size_t)MIN((uint64_t)(w->data.len - (q->off - w->offset)), x.len);
	q->piece_off = x.off;
	uint32_t index = (uint32_t)x.index;
	if (c) {
		set_chunk(q, c);
		return write_piece(q);
	}
	uint32_t nodes[16];
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__ChunkAlloc ca = KRG__KDFS__CHUNK_ALLOC__INIT;
	op.op_case = KRG__KDFS__OP__OP_CHUNK_ALLOC;
	op.chunk_alloc = &ca;
	ca.ino = w->ino;
	ca.index = index;
	ca.nodes = nodes;
	ca.n_nodes = pick_nodes(q->k, w->ino, &l, index, nodes, ARRAY_SIZE(nodes));
	ca.has_stripe_count = ca.has_stripe_size = true;
	ca.stripe_count = l.count;
	ca.stripe_size = (uint32_t)l.unit;
	e = kdfs_propose(q, &op, allocated);
	if (e < 0)
		kdfs_reply(q, e, NULL);
}

void kdfs_io_write(struct kreq *q)
{
	const Krg__Kdfs__Write *w = q->req->write;
	if (w->offset + w->data.len < w->offset || w->offset + w->data.len > (uint64_t)INT64_MAX)
		return kdfs_reply(q, -EFBIG, NULL);
	q->off = w->offset;
	write_next(q);
}

/* ---- truncate ---- */

/* One chunk cut: the next one (q->off: the next index to look at). */
static void truncated(struct kreq *q, int status)
{
	if (status == 0)
		q->off = (uint64_t)q->chunk->index + 1;
	set_chunk(q, NULL);
	if (status < 0)
		return q->after(q, status);
	kdfs_io_truncate(q, q->after);
}

/* Each chunk that keeps a head below the new size (one per group: the
 * layout's keep is neither 0 nor the whole chunk) is cut there, in index
 * order; the chunks wholly past it go with the op (cut_chunks). */
void kdfs_io_truncate(struct kreq *q, void (*then)(struct kreq *q, int status))
{
	const Krg__Kdfs__SetAttr *sa = q->req->op->setattr;
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(q->k->meta, sa->ino, &in);
	if (e < 0)
		return then(q, e);
	if (!S_ISREG(in->attr->mode)) {
		krg__kdfs__inode__free_unpacked(in, NULL);
		return then(q, 0); /* the op answers EISDIR/EINVAL */
	}
	struct kdfs_layout l;
	kdfs_layout_of(in, &l);
	const Krg__Kdfs__Chunk *next = NULL;
	uint64_t keep = 0;
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		uint64_t kp = kdfs_layout_keep(&l, sa->size, c->index);
		if (c->index >= q->off && kp > 0 && kp < KDFS_CHUNK_SIZE && (!next || c->index < next->index)) {
			next = c;
			keep = kp;
		}
	}
	Krg__Kdfs__Chunk *c = next ? chunk_dup(next) : NULL;
	krg__kdfs__inode__free_unpacked(in, NULL);
	if (!next)
		return then(q, 0);
	if (!c)
		return then(q, -ENOMEM);
	set_chunk(q, c);
	Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
	io.ino = sa->ino;
	io.offset = keep;
	io.has_truncate = true;
	io.truncate = true;
	q->after = then;
	replicate(q, KMSG_TRUNC, &io, truncated);
}

/* ---- fsync: every replica of every chunk on stable storage ----
 * After the flush published the size. The chunks one after the other
 * (q->off: the next index), each through replicate(): a replica that
 * cannot make its copy durable is dropped like one that missed a write,
 * and only a chunk with no durable copy left fails the call (EIO). */

static void synced(struct kreq *q, int status)
{
	if (status < 0)
		return kdfs_reply(q, status, NULL);
	/* A replica dropped on the way moved the others to a new version
	 * (written, not synced): the same chunk again, at that version. */
	if (q->chunk->version == q->len)
		q->off = (uint64_t)q->chunk->index + 1;
	set_chunk(q, NULL);
	kdfs_io_fsync(q);
}

void kdfs_io_fsync(struct kreq *q)
{
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(q->k->meta, q->req->fsync, &in);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	const Krg__Kdfs__Chunk *next = NULL;
	for (size_t i = 0; i < in->n_chunks; i++)
		if (in->chunks[i]->index >= q->off && (!next || in->chunks[i]->index < next->index))
			next = in->chunks[i];
	Krg__Kdfs__Chunk *c = next ? chunk_dup(next) : NULL;
	krg__kdfs__inode__free_unpacked(in, NULL);
	if (!next)
		return kdfs_reply(q, 0, NULL);
	if (!c)
		return kdfs_reply(q, -ENOMEM, NULL);
	set_chunk(q, c);
	q->len = c->version;
	Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
	io.ino = q->req->fsync;
	io.has_sync = true;
	io.sync = true;
	replicate(q, KMSG_SYNC, &io, synced);
}

/* ---- the peers' side ---- */

static Krg__Kdfs__ChunkIO *peer_io(const struct krg_msg *msg, bool need_data)
{
	Krg__Kdfs__ChunkIO *io = krg__kdfs__chunk_io__unpack(NULL, msg->len, msg->body);
	if (!io)
		return NULL;
	uint64_t len = need_data ? io->data.len : io->length;
	if (io->offset > KDFS_CHUNK_SIZE || len > KDFS_CHUNK_SIZE - io->offset || (need_data && !io->has_data)) {
		krg__kdfs__chunk_io__free_unpacked(io, NULL);
		return NULL;
	}
	return io;
}

static void on_cread(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_kdfs *k = data;
	Krg__Kdfs__ChunkIO *io = peer_io(msg, false);
	if (!req_id) {
		if (io)
			krg__kdfs__chunk_io__free_unpacked(io, NULL);
		return;
	}
	if (!io || !io->has_length) {
		log_warn("kdfs: malformed chunk read from node %u refused", from);
		if (io)
			krg__kdfs__chunk_io__free_unpacked(io, NULL);
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
		return;
	}
	uint8_t *buf = malloc(io->length ? io->length : 1);
	int r = buf ? kdfs_chunk_read(k->chunks, io->ino, io->index, io->gen, io->version, io->offset, buf, io->length)
		    : -ENOMEM;
	if (r < 0 && r != -ENOENT)
		log_warn("kdfs: replica of inode %llu chunk %u: %s (node %u reads elsewhere)",
			 (unsigned long long)io->ino, io->index, strerror(-r), from);
	if (r == 0) {
		Krg__Kdfs__ChunkData d = KRG__KDFS__CHUNK_DATA__INIT;
		d.data.data = buf;
		d.data.len = io->length;
		size_t n = krg__kdfs__chunk_data__get_packed_size(&d);
		uint8_t *out = malloc(n);
		if (out) {
			krg__kdfs__chunk_data__pack(&d, out);
			krg_net_reply(net, from, req_id, 0, out, n);
		} else {
			krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
		}
		free(out);
	} else {
		krg_net_reply(net, from, req_id, r, NULL, 0);
	}
	free(buf);
	krg__kdfs__chunk_io__free_unpacked(io, NULL);
}

/* Does this node's own map say the change comes from an older map than
 * its own and no longer lists it? Then it must not take it: a write
 * there would re-create the replica a drain (or a drop) just deleted, a
 * copy nobody lists. -ESTALE sends the writer to a fresh map. A chunk
 * this node does not know yet, or knows at an older version (a fill that
 * adds it is still on its way here), takes the change. Asked only when
 * the replica is absent (on_cchange): a write to one that exists
 * re-creates nothing, and the store read is the costly part of a write. */
static bool unlisted_here(struct krg_kdfs *k, const Krg__Kdfs__ChunkIO *io)
{
	Krg__Kdfs__Inode *in;
	if (kdfs_meta_get(k->meta, io->ino, &in) < 0)
		return false;
	bool unlisted = false;
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		if (c->index != io->index || c->gen != io->gen || c->version < io->version)
			continue;
		unlisted = !in_list(c->nodes, c->n_nodes, k->self) && !in_list(c->filling, c->n_filling, k->self);
	}
	krg__kdfs__inode__free_unpacked(in, NULL);
	return unlisted;
}

static void on_cchange(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_kdfs *k = data;
	bool trunc = !strcmp(msg->type, KMSG_TRUNC), sync = !strcmp(msg->type, KMSG_SYNC);
	Krg__Kdfs__ChunkIO *io = peer_io(msg, !trunc && !sync);
	int r;
	if (!io) {
		log_warn("kdfs: malformed chunk change from node %u refused", from);
		r = -EBADMSG;
	} else if (sync) {
		r = kdfs_chunk_sync(k->chunks, io->ino, io->index, io->gen, io->version);
	} else if (!kdfs_chunk_present(k->chunks, io->ino, io->index, io->gen) && unlisted_here(k, io)) {
		r = -ESTALE;
	} else if ((r = kdfs_fill_admit(k, io->ino, io->index, io->gen, io->offset, trunc ? 0 : io->data.len,
					 trunc)) < 0) {
		/* A node being filled refuses a change it cannot merge yet. */
	} else if (trunc) {
		r = kdfs_chunk_truncate(k->chunks, io->ino, io->index, io->gen, io->version, io->offset);
	} else {
		r = kdfs_chunk_write(k->chunks, io->ino, io->index, io->gen, io->version, io->offset, io->data.data,
				     io->data.len);
	}
	if (r < 0 && io && r != -ESTALE)
		log_warn("kdfs: replica of inode %llu chunk %u: %s", (unsigned long long)io->ino, io->index,
			 strerror(-r));
	if (req_id)
		krg_net_reply(net, from, req_id, r, NULL, 0);
	if (io)
		krg__kdfs__chunk_io__free_unpacked(io, NULL);
}

int kdfs_io_register(struct krg_kdfs *k)
{
	int r;
	if ((r = krg_net_handle(k->net, KMSG_READ, on_cread, k)) < 0 || (r = krg_net_handle(k->net, KMSG_WRITE, on_cchange, k)) < 0 ||
	    (r = krg_net_handle(k->net, KMSG_TRUNC, on_cchange, k)) < 0 ||
	    (r = krg_net_handle(k->net, KMSG_SYNC, on_cchange, k)) < 0)
		return r;
	return 0;
}

/* A repair's version bump: an empty write at q->chunk's version to every
 * replica and filling node (q->ino names the file). */
void kdfs_io_bump(struct kreq *q, void (*done)(struct kreq *q, int status))
{
	Krg__Kdfs__ChunkIO io = KRG__KDFS__CHUNK_IO__INIT;
	io.ino = q->ino;
	io.has_data = true;
	replicate(q, KMSG_WRITE, &io, done);
}

/* Take q->failed out of q->chunk (ChunkDrop each), move the rest to the
 * new version, then done (q->ino names the file). */
void kdfs_io_drop(struct kreq *q, void (*done)(struct kreq *q, int status))
{
	q->rep_done = done;
	drop_next(q);
}
