/* service.c — krgd's kdfs service: the metadata state machine, the FUSE
 * client (krg-kdfs) it starts and serves, and the metadata requests.
 *
 * Map:
 *   setup ......... krg_kdfs_new (before raft starts) / start / stop
 *   client ........ spawn, respawn, the socketpair's frames
 *   requests ...... dispatch: lookups and attributes from the local
 *                   replica (after a read barrier where close-to-open
 *                   needs one), changes proposed on the cluster log
 *   data .......... service_io.c
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cluster/cluster.h"
#include "kdfs/service-int.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/service.h"
#include "net/net.h"

#define SM_NAME "kdfs"
#define MAX_FRAME (8u << 20)

static const struct krg_cluster_sm_ops sm_ops = {
	.apply = kdfs_meta_apply,
	.snapshot = kdfs_meta_snapshot,
	.restore = kdfs_meta_restore,
};

bool kdfs_node_up(struct krg_kdfs *k, uint32_t node)
{
	return krg_cluster_node_state(k->cluster, node) == KRG_NODE_UP;
}

bool kdfs_node_alive(struct krg_kdfs *k, uint32_t node)
{
	enum krg_node_state st = krg_cluster_node_state(k->cluster, node);
	return st == KRG_NODE_UP || st == KRG_NODE_LEAVING;
}

unsigned kdfs_copies_wanted(struct krg_kdfs *k, const Krg__Kdfs__Inode *in)
{
	unsigned want = in->has_replicas && in->replicas ? in->replicas : k->cfg->kdfs_replicas, members = 0;
	/* A node that left (absent) is no place for a copy; one that is
	 * down may come back and still counts. */
	for (size_t i = 0; i < k->cfg->n_nodes; i++)
		members += krg_cluster_node_state(k->cluster, k->cfg->nodes[i].id) != KRG_NODE_ABSENT;
	return MAX(1u, MIN(want ? want : 1, members));
}

unsigned kdfs_replicas_of(struct krg_kdfs *k, uint64_t ino)
{
	Krg__Kdfs__Inode *in;
	unsigned n = k->cfg->kdfs_replicas ? k->cfg->kdfs_replicas : 1;
	if (kdfs_meta_get(k->meta, ino, &in) == 0) {
		if (in->has_replicas && in->replicas)
			n = in->replicas;
		krg__kdfs__inode__free_unpacked(in, NULL);
	}
	return n;
}

static void reaped(uint64_t ino, void *data)
{
	struct krg_kdfs *k = data;
	int r = kdfs_chunks_remove(k->chunks, ino);
	if (r < 0)
		log_warn("kdfs: cannot remove the chunks of inode %llu: %s", (unsigned long long)ino, strerror(-r));
}

struct pending *kdfs_pending(struct krg_kdfs *k, uint64_t ino, bool create)
{
	for (struct pending *p = k->pending; p; p = p->next)
		if (p->ino == ino)
			return p;
	if (!create)
		return NULL;
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ino = ino;
	p->next = k->pending;
	k->pending = p;
	return p;
}

static void pending_drop(struct krg_kdfs *k, uint64_t ino)
{
	for (struct pending **pp = &k->pending; *pp; pp = &(*pp)->next)
		if ((*pp)->ino == ino) {
			struct pending *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
}

/* ---- replies ---- */

void kreq_free(struct kreq *q)
{
	if (q->req)
		krg__kdfs__request__free_unpacked(q->req, NULL);
	if (q->chunk)
		krg__kdfs__chunk__free_unpacked(q->chunk, NULL);
	free(q->buf);
	free(q);
}

static void write_done(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

/* One frame to the client, in order with every other (uv_write keeps
 * the order): an invalidation sent before a reply reaches the kernel
 * before it. */
static void send_frame(struct krg_kdfs *k, const Krg__Kdfs__Reply *r)
{
	if (!k->pipe_open || k->stopping)
		return;
	size_t n = krg__kdfs__reply__get_packed_size(r);
	uint8_t *buf = malloc(4 + n);
	uv_write_t *w = malloc(sizeof(*w));
	if (buf && w) {
		buf[0] = (uint8_t)(n >> 24), buf[1] = (uint8_t)(n >> 16), buf[2] = (uint8_t)(n >> 8), buf[3] = (uint8_t)n;
		krg__kdfs__reply__pack(r, buf + 4);
		w->data = buf;
		uv_buf_t b = uv_buf_init((char *)buf, (unsigned)(4 + n));
		if (uv_write(w, (uv_stream_t *)&k->pipe, &b, 1, write_done) == 0)
			buf = NULL, w = NULL;
	}
	free(buf);
	free(w);
}

void kdfs_reply(struct kreq *q, int status, const Krg__Kdfs__Reply *body)
{
	Krg__Kdfs__Reply r = body ? *body : (Krg__Kdfs__Reply)KRG__KDFS__REPLY__INIT;
	r.id = q->id;
	r.status = status;
	send_frame(q->k, &r);
	kreq_free(q);
}

/* The attribute cache (docs/kdfs.md): the kernel keeps what a lookup or
 * getattr answered for KDFS_ATTR_TIMEOUT; every change applied here,
 * whoever made it, drops it first. Sent as the op is applied, so before
 * the reply to any call that follows it (a barrier's, a proposer's). */
struct inval_all {
	struct krg_kdfs *k;
	Krg__Kdfs__Reply r;
	uint64_t inos[4096];
};

static int inval_each(const Krg__Kdfs__Inode *in, void *data)
{
	struct inval_all *x = data;
	x->inos[x->r.n_inval++] = in->attr->ino;
	if (x->r.n_inval == ARRAY_SIZE(x->inos)) {
		send_frame(x->k, &x->r);
		x->r.n_inval = 0;
	}
	return 0;
}

static void changed(const uint64_t *inos, size_t n, void *data)
{
	struct krg_kdfs *k = data;
	if (!k->pipe_open || k->stopping)
		return;
	if (inos) {
		Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
		r.n_inval = n;
		r.inval = (uint64_t *)inos;
		return send_frame(k, &r);
	}
	/* A snapshot replaced the store: every inode the kernel knows. */
	struct inval_all *x = malloc(sizeof(*x));
	if (!x)
		return;
	x->k = k;
	krg__kdfs__reply__init(&x->r);
	x->r.inval = x->inos;
	kdfs_meta_each_inode(k->meta, inval_each, x);
	if (x->r.n_inval)
		send_frame(k, &x->r);
	free(x);
}

static void fill_attr(struct krg_kdfs *k, Krg__Kdfs__Attr *a)
{
	struct pending *p = kdfs_pending(k, a->ino, false);
	if (p && p->size > a->size)
		a->size = p->size;
}

static void reply_attr(struct kreq *q, Krg__Kdfs__Attr *a)
{
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	fill_attr(q->k, a);
	r.attr = a;
	kdfs_reply(q, 0, &r);
}

static void reply_inode(struct kreq *q, uint64_t ino)
{
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(q->k->meta, ino, &in);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	reply_attr(q, in->attr);
	krg__kdfs__inode__free_unpacked(in, NULL);
}

/* ---- metadata changes ---- */

struct proposal {
	struct kreq *q;
	kdfs_op_cb cb;
};

static void proposed(int status, const uint8_t *res, size_t len, void *data)
{
	struct proposal *p = data;
	Krg__Kdfs__OpResult *r = NULL;
	/* The leader went away with the proposal (killed, an election): the
	 * caller retries with the next one, as when there was none. */
	if (status < 0 && status != -ECANCELED && status != -ENOMEM)
		status = -EAGAIN;
	if (status == 0 && !(r = krg__kdfs__op_result__unpack(NULL, len, res)))
		status = -EIO;
	if (status == 0)
		status = r->status;
	p->cb(p->q, status, r);
	if (r)
		krg__kdfs__op_result__free_unpacked(r, NULL);
	free(p);
}

int kdfs_propose(struct kreq *q, Krg__Kdfs__Op *op, kdfs_op_cb cb)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	op->now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	size_t n = krg__kdfs__op__get_packed_size(op);
	uint8_t *buf = malloc(n ? n : 1);
	struct proposal *p = calloc(1, sizeof(*p));
	if (!buf || !p) {
		free(buf);
		free(p);
		return -ENOMEM;
	}
	krg__kdfs__op__pack(op, buf);
	p->q = q;
	p->cb = cb;
	int r = krg_cluster_sm_propose(q->k->cluster, SM_NAME, buf, n, proposed, p);
	free(buf);
	if (r < 0)
		free(p);
	/* No leader (a minority side, an election), or one that cannot be
	 * reached (just killed): the caller retries. */
	return r < 0 && r != -ENOMEM && r != -ECANCELED ? -EAGAIN : r;
}

static void op_done(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	if (status < 0 || !res->attr)
		return kdfs_reply(q, status, NULL);
	reply_attr(q, res->attr);
}

static void propose_op(struct kreq *q, int status)
{
	if (status < 0)
		return kdfs_reply(q, status, NULL);
	int r = kdfs_propose(q, q->req->op, op_done);
	if (r < 0)
		kdfs_reply(q, r, NULL);
}

/* flush and fsync both publish the size first */
static uint64_t flushed_ino(const struct kreq *q)
{
	return q->req->req_case == KRG__KDFS__REQUEST__REQ_FSYNC ? q->req->fsync : q->req->flush;
}

static void flush_done(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	if (status == 0) {
		struct pending *p = kdfs_pending(q->k, flushed_ino(q), false);
		if (p && !p->dirty && p->size <= res->attr->size)
			pending_drop(q->k, flushed_ino(q));
	}
	if (status == 0 && q->req->req_case == KRG__KDFS__REQUEST__REQ_FSYNC)
		return kdfs_io_fsync(q);
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	if (status == 0 && res->attr && res->has_prev_ctime_ns) {
		r.attr = res->attr;
		r.has_prev_ctime_ns = true;
		r.prev_ctime_ns = res->prev_ctime_ns;
	}
	kdfs_reply(q, status, &r);
}

/* close/fsync: what this node wrote becomes visible everywhere. */
static void do_flush(struct kreq *q)
{
	struct pending *p = kdfs_pending(q->k, flushed_ino(q), false);
	if (!p || !p->dirty)
		return q->req->req_case == KRG__KDFS__REQUEST__REQ_FSYNC ? kdfs_io_fsync(q) : kdfs_reply(q, 0, NULL);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Extend ex = KRG__KDFS__EXTEND__INIT;
	op.op_case = KRG__KDFS__OP__OP_EXTEND;
	op.extend = &ex;
	ex.ino = p->ino;
	ex.size = p->size;
	p->dirty = false;
	int r = kdfs_propose(q, &op, flush_done);
	if (r < 0) {
		p->dirty = true;
		kdfs_reply(q, r, NULL);
	}
}

static void forget_done(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	kreq_free(q);
}

/* The kernel dropped an inode: if it has no name left, no one here uses it. */
static void do_forget(struct kreq *q)
{
	Krg__Kdfs__Inode *in;
	if (kdfs_meta_get(q->k->meta, q->req->forget, &in) < 0)
		return kreq_free(q);
	bool orphan = in->attr->nlink == 0;
	krg__kdfs__inode__free_unpacked(in, NULL);
	if (!orphan)
		return kreq_free(q);
	pending_drop(q->k, q->req->forget);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Reap rp = KRG__KDFS__REAP__INIT;
	op.op_case = KRG__KDFS__OP__OP_REAP;
	op.reap = &rp;
	rp.ino = q->req->forget;
	if (kdfs_propose(q, &op, forget_done) < 0)
		kreq_free(q);
}

/* ---- reads of the local replica ---- */

struct dir_fill {
	Krg__Kdfs__Dirent *ents;
	Krg__Kdfs__Dirent **ptrs;
	char *names;
	size_t n, max;
};

static int dirent_cb(const char *name, uint64_t ino, uint32_t mode, uint64_t next, void *data)
{
	struct dir_fill *f = data;
	if (f->n >= f->max)
		return 1;
	char *nm = f->names + f->n * (KDFS_NAME_MAX + 1);
	snprintf(nm, KDFS_NAME_MAX + 1, "%s", name);
	krg__kdfs__dirent__init(&f->ents[f->n]);
	f->ents[f->n].name = nm;
	f->ents[f->n].ino = ino;
	f->ents[f->n].mode = mode;
	f->ents[f->n].next = next;
	f->ptrs[f->n] = &f->ents[f->n];
	f->n++;
	return 0;
}

static void do_readdir(struct kreq *q)
{
	const Krg__Kdfs__Readdir *rd = q->req->readdir;
	struct dir_fill f = { .max = MIN(MAX(rd->max, 1u), 1024u) };
	f.ents = calloc(f.max, sizeof(*f.ents));
	f.ptrs = calloc(f.max, sizeof(*f.ptrs));
	f.names = malloc(f.max * (KDFS_NAME_MAX + 1));
	int e = f.ents && f.ptrs && f.names ? 0 : -ENOMEM;
	if (!e)
		e = kdfs_meta_readdir(q->k->meta, rd->ino, rd->offset, dirent_cb, &f);
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	r.n_entries = f.n;
	r.entries = f.ptrs;
	kdfs_reply(q, e, &r);
	free(f.ents);
	free(f.ptrs);
	free(f.names);
}

static void do_lookup(struct kreq *q)
{
	uint64_t ino;
	int e = kdfs_meta_lookup(q->k->meta, q->req->lookup->parent, q->req->lookup->name, &ino);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	reply_inode(q, ino);
}

static void do_readlink(struct kreq *q)
{
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(q->k->meta, q->req->readlink, &in);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	r.has_data = in->has_target;
	r.data = in->target;
	kdfs_reply(q, in->has_target ? 0 : -EINVAL, &r);
	krg__kdfs__inode__free_unpacked(in, NULL);
}

/* getxattr/listxattr from the local replica. A size of 0 asks for the
 * size only; a smaller buffer than the answer is ERANGE, as Linux. */
static void reply_xattr(struct kreq *q, const uint8_t *data, size_t len, uint32_t size)
{
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	if (size == 0) {
		r.has_xattr_size = true;
		r.xattr_size = (uint32_t)len;
	} else if (len > size) {
		return kdfs_reply(q, -ERANGE, NULL);
	} else {
		r.has_data = true;
		r.data.data = (uint8_t *)data;
		r.data.len = len;
	}
	kdfs_reply(q, 0, &r);
}

static void do_xattr(struct kreq *q, bool list)
{
	const Krg__Kdfs__Getxattr *g = list ? q->req->listxattr : q->req->getxattr;
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(q->k->meta, g->ino, &in);
	if (e < 0)
		return kdfs_reply(q, e, NULL);
	if (!list) {
		size_t i = 0;
		while (i < in->n_xattrs && strcmp(in->xattrs[i]->name, g->name ? g->name : ""))
			i++;
		if (i == in->n_xattrs)
			kdfs_reply(q, -ENODATA, NULL);
		else
			reply_xattr(q, in->xattrs[i]->value.data, in->xattrs[i]->value.len, g->size);
		return krg__kdfs__inode__free_unpacked(in, NULL);
	}
	size_t len = 0;
	for (size_t i = 0; i < in->n_xattrs; i++)
		len += strlen(in->xattrs[i]->name) + 1;
	char *names = malloc(len ? len : 1), *p = names;
	if (!names) {
		krg__kdfs__inode__free_unpacked(in, NULL);
		return kdfs_reply(q, -ENOMEM, NULL);
	}
	/* trusted.* is listed only to the privileged, as ext4 and tmpfs do
	 * (root here: the daemon sees the caller's ids, not its capabilities). */
	for (size_t i = 0; i < in->n_xattrs; i++)
		if (q->req->uid == 0 || strncmp(in->xattrs[i]->name, "trusted.", 8))
			p = stpcpy(p, in->xattrs[i]->name) + 1;
	reply_xattr(q, (uint8_t *)names, (size_t)(p - names), g->size);
	free(names);
	krg__kdfs__inode__free_unpacked(in, NULL);
}

static void do_statfs(struct kreq *q)
{
	uint64_t total = 0, avail = 0;
	kdfs_chunks_space(q->k->chunks, &total, &avail);
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	Krg__Kdfs__Statfs st = KRG__KDFS__STATFS__INIT;
	/* This node's share, divided by the copies each byte takes. */
	unsigned rep = q->k->cfg->kdfs_replicas ? q->k->cfg->kdfs_replicas : 1;
	st.blocks = total / 4096 / rep;
	st.bfree = avail / 4096 / rep;
	st.files = kdfs_meta_inodes(q->k->meta);
	r.statfs = &st;
	kdfs_reply(q, 0, &r);
}

static void do_getlk(struct kreq *q)
{
	Krg__Kdfs__LockRange out;
	Krg__Kdfs__SetLock *g = q->req->getlk;
	if (!g->lock)
		return kdfs_reply(q, -EINVAL, NULL);
	g->lock->node = q->k->self;
	int e = kdfs_meta_getlk(q->k->meta, g->ino, g->lock, &out);
	Krg__Kdfs__Reply r = KRG__KDFS__REPLY__INIT;
	r.lock = &out;
	kdfs_reply(q, e, e < 0 ? NULL : &r);
}

/* After the barrier: this node's replica has everything committed
 * before the call, so an open sees the last close anywhere. */
static void barrier_then(int status, void *data)
{
	struct kreq *q = data;
	if (status < 0)
		return kdfs_reply(q, status == -ECANCELED ? -EIO : -EAGAIN, NULL);
	switch (q->req->req_case) {
	case KRG__KDFS__REQUEST__REQ_LOOKUP:
		return do_lookup(q);
	case KRG__KDFS__REQUEST__REQ_READDIR:
		return do_readdir(q);
	case KRG__KDFS__REQUEST__REQ_GETLK:
		return do_getlk(q);
	default:
		return reply_inode(q, q->req->open);
	}
}

static void with_barrier(struct kreq *q)
{
	int r = krg_cluster_sm_read_barrier(q->k->cluster, barrier_then, q);
	if (r < 0)
		kdfs_reply(q, r == -EAGAIN ? -EAGAIN : r, NULL);
}

/* A SetAttr that changes the size cuts the replicas first. */
static void setattr_truncated(struct kreq *q, int status)
{
	if (status == 0) {
		struct pending *p = kdfs_pending(q->k, q->req->op->setattr->ino, false);
		if (p)
			p->size = MIN(p->size, q->req->op->setattr->size);
	}
	propose_op(q, status);
}

void kdfs_default_layout(struct krg_kdfs *k, uint32_t *count, uint32_t *size)
{
	/* More groups than nodes would put two of a file's groups on one node. */
	*count = MAX(1u, MIN(k->cfg->kdfs_stripe_count, (unsigned)k->cfg->n_nodes));
	*size = k->cfg->kdfs_stripe_size_kib << 10;
}

static void dispatch(struct kreq *q)
{
	Krg__Kdfs__Request *r = q->req;
	switch (r->req_case) {
	case KRG__KDFS__REQUEST__REQ_OP:
		/* A new regular file's striping, used when its directory sets
		 * none: this node's default, carried in the op so that every
		 * node applies the same (meta_ops.c). Not the client's to say. */
		if (r->op->op_case == KRG__KDFS__OP__OP_CREATE) {
			Krg__Kdfs__Create *c = r->op->create;
			c->has_stripe_count = c->has_stripe_size = S_ISREG(c->mode);
			kdfs_default_layout(q->k, &c->stripe_count, &c->stripe_size);
		}
		/* Locks are this node's: the client cannot speak for another. */
		if (r->op->op_case == KRG__KDFS__OP__OP_SETLOCK && r->op->setlock->lock)
			r->op->setlock->lock->node = q->k->self;
		if (r->op->op_case == KRG__KDFS__OP__OP_DROPLOCKS)
			r->op->droplocks->node = q->k->self;
		if (r->op->op_case == KRG__KDFS__OP__OP_SETATTR && (r->op->setattr->valid & KDFS_SET_SIZE) &&
		    r->op->setattr->has_size)
			return kdfs_io_truncate(q, setattr_truncated);
		return propose_op(q, 0);
	case KRG__KDFS__REQUEST__REQ_GETATTR:
		return reply_inode(q, r->getattr);
	case KRG__KDFS__REQUEST__REQ_LOOKUP:
	case KRG__KDFS__REQUEST__REQ_OPEN:
	case KRG__KDFS__REQUEST__REQ_GETLK:
		return with_barrier(q);
	case KRG__KDFS__REQUEST__REQ_READDIR:
		return r->readdir->offset ? do_readdir(q) : with_barrier(q);
	case KRG__KDFS__REQUEST__REQ_READLINK:
		return do_readlink(q);
	case KRG__KDFS__REQUEST__REQ_READ:
		return kdfs_io_read(q);
	case KRG__KDFS__REQUEST__REQ_FSYNC:
		return do_flush(q);
	case KRG__KDFS__REQUEST__REQ_WRITE:
		return kdfs_io_write(q);
	case KRG__KDFS__REQUEST__REQ_FLUSH:
		return do_flush(q);
	case KRG__KDFS__REQUEST__REQ_FORGET:
		return do_forget(q);
	case KRG__KDFS__REQUEST__REQ_STATFS:
		return do_statfs(q);
	case KRG__KDFS__REQUEST__REQ_GETXATTR:
		return do_xattr(q, false);
	case KRG__KDFS__REQUEST__REQ_LISTXATTR:
		return do_xattr(q, true);
	default:
		return kdfs_reply(q, -EOPNOTSUPP, NULL);
	}
}

/* ---- the client's socketpair ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct krg_kdfs *k = h->data;
	if (k->rcap - k->rlen < 65536) {
		size_t cap = MAX(k->rcap * 2, (size_t)256 << 10);
		uint8_t *n = realloc(k->rbuf, cap);
		if (!n) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		k->rbuf = n;
		k->rcap = cap;
	}
	*buf = uv_buf_init((char *)k->rbuf + k->rlen, (unsigned)(k->rcap - k->rlen));
}

static void pipe_closed(uv_handle_t *h)
{
	struct krg_kdfs *k = h->data;
	k->pipe_open = false;
	if (k->stopping) {
		free(k->rbuf);
		k->rbuf = NULL;
	}
}

static void drop_client(struct krg_kdfs *k)
{
	if (k->pipe_open && !uv_is_closing((uv_handle_t *)&k->pipe))
		uv_close((uv_handle_t *)&k->pipe, pipe_closed);
	k->rlen = 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct krg_kdfs *k = s->data;
	if (n < 0) {
		if (!k->stopping)
			log_warn("kdfs: client connection lost: %s", uv_strerror((int)n));
		return drop_client(k);
	}
	k->rlen += (size_t)n;
	size_t at = 0;
	while (k->rlen - at >= 4) {
		const uint8_t *p = k->rbuf + at;
		size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		if (len > MAX_FRAME) {
			log_error("kdfs: client sent a %zu-byte frame; dropping it", len);
			return drop_client(k);
		}
		if (k->rlen - at < 4 + len)
			break;
		struct kreq *q = calloc(1, sizeof(*q));
		Krg__Kdfs__Request *req = krg__kdfs__request__unpack(NULL, len, p + 4);
		at += 4 + len;
		if (!q || !req) {
			free(q);
			if (req)
				krg__kdfs__request__free_unpacked(req, NULL);
			log_error("kdfs: malformed request from the client");
			continue;
		}
		q->k = k;
		q->id = req->id;
		q->req = req;
		dispatch(q);
		if (!k->pipe_open)
			return;
	}
	memmove(k->rbuf, k->rbuf + at, k->rlen - at);
	k->rlen -= at;
}

static void respawn_cb(uv_timer_t *t);

/* Start krg-kdfs on kdfs_mount with one end of a socketpair. A stale
 * mount (a client that died) is detached first: else ENOTCONN. */
static int spawn_client(struct krg_kdfs *k)
{
	int sv[2];
	umount2(k->cfg->kdfs_mount, MNT_DETACH);
	if (mkdir(k->cfg->kdfs_mount, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		char fd[16];
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		snprintf(fd, sizeof(fd), "%d", 3);
		execl(k->client_path, "krg-kdfs", "--fd", fd, k->cfg->kdfs_mount, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	k->client_pid = pid;
	uv_pipe_init(k->loop, &k->pipe, 0);
	k->pipe.data = k;
	uv_pipe_open(&k->pipe, sv[0]);
	k->pipe_open = true;
	uv_read_start((uv_stream_t *)&k->pipe, alloc_cb, read_cb);
	log_info("kdfs: client %d mounting %s (share %s)", (int)pid, k->cfg->kdfs_mount, k->dir);
	/* Watch it: the exec service reaps children, so poll for its exit. */
	uv_timer_start(&k->respawn, respawn_cb, 1000, 1000);
	return 0;
}

static void respawn_cb(uv_timer_t *t)
{
	struct krg_kdfs *k = t->data;
	if (k->stopping || (k->client_pid > 0 && kill(k->client_pid, 0) == 0 && k->pipe_open))
		return;
	log_warn("kdfs: client %d is gone; starting a new one", (int)k->client_pid);
	drop_client(k);
	if (k->pipe_open)
		return; /* closing; next tick */
	int r = spawn_client(k);
	if (r < 0)
		log_error("kdfs: cannot start the client: %s", strerror(-r));
}

/* ---- a node that went down holds no lock any more ----
 * Its processes are gone or cut off; waiting for it would block every
 * other node. The lowest-numbered node that is up proposes the drop (a
 * repeated drop is harmless). */

static void drop_done(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	if (status < 0 && status != -EAGAIN)
		log_warn("kdfs: cannot release the locks of a node that went down: %s", strerror(-status));
	kreq_free(q);
}

/* Down or removed: the lowest node up drops its locks. */
static void on_node_gone(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_kdfs *k = state;
	kdfs_repair_node_down(k);
	for (uint32_t n = 1; n < k->self; n++)
		if (n != node && kdfs_node_up(k, n))
			return; /* a lower node does it */
	struct kreq *q = calloc(1, sizeof(*q));
	if (!q)
		return;
	q->k = k;
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__DropLocks d = KRG__KDFS__DROP_LOCKS__INIT;
	op.op_case = KRG__KDFS__OP__OP_DROPLOCKS;
	op.droplocks = &d;
	d.node = node;
	if (kdfs_propose(q, &op, drop_done) < 0)
		kreq_free(q);
}

/* `nodes del`: a node leaving keeps serving its replicas while the
 * others get copies of them (repair.c, "drain"); on the node itself, its
 * leave waits until no chunk lists it any more. */
static void on_node_leaving(void *state, uint32_t node, uint64_t epoch)
{
	struct krg_kdfs *k = state;
	if (node == k->self)
		kdfs_repair_drain_begin(k);
}

/* ---- setup ---- */

int krg_kdfs_new(uv_loop_t *loop, const struct krg_config *cfg, struct krg_net *net, struct krg_cluster *cluster,
		 struct krg_kdfs **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->kdfs_mount[0])
		return 0;
	struct krg_kdfs *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->loop = loop;
	k->cfg = cfg;
	k->net = net;
	k->cluster = cluster;
	k->self = cfg->node_id;
	if (cfg->kdfs_dir[0])
		snprintf(k->dir, sizeof(k->dir), "%s", cfg->kdfs_dir);
	else
		snprintf(k->dir, sizeof(k->dir), "%s/kdfs", cfg->state_dir);
	char meta[4200];
	snprintf(meta, sizeof(meta), "%s/meta", k->dir);
	int r;
	if ((mkdir(k->dir, 0700) < 0 && errno != EEXIST) ? (r = -errno) : 0) {
		snprintf(err, errlen, "kdfs: cannot create %s: %s", k->dir, strerror(-r));
	} else if ((r = kdfs_chunks_open(k->dir, &k->chunks)) < 0) {
		snprintf(err, errlen, "kdfs: cannot open the chunk store in %s: %s", k->dir, strerror(-r));
	} else if ((r = kdfs_meta_open(meta, reaped, k, &k->meta)) < 0) {
		snprintf(err, errlen, "kdfs: cannot open the metadata store %s: %s", meta, strerror(-r));
	} else if ((r = krg_cluster_sm_register(cluster, SM_NAME, &sm_ops, k->meta)) < 0) {
		snprintf(err, errlen, "kdfs: cannot register with the cluster: %s", strerror(-r));
	} else if ((r = kdfs_io_register(k)) < 0) {
		snprintf(err, errlen, "kdfs: cannot register chunk messages: %s", strerror(-r));
	}
	if (r < 0) {
		kdfs_chunks_close(k->chunks);
		kdfs_meta_close(k->meta);
		free(k);
		return r;
	}
	kdfs_meta_on_change(k->meta, changed, k); /* nothing to tell before the client runs */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(k->client_path, sizeof(k->client_path), "%s/krg-kdfs", exe);
	uv_timer_init(loop, &k->respawn);
	k->respawn.data = k;
	*out = k;
	return 0;
}

int krg_kdfs_start(struct krg_kdfs *k, struct krg_api_server *api, char *err, size_t errlen)
{
	if (!k)
		return 0;
	int e = kdfs_admin_register(k, api);
	if (e == 0)
		e = kdfs_repair_start(k);
	if (e < 0) {
		snprintf(err, errlen, "kdfs: cannot register its commands: %s", strerror(-e));
		return e;
	}
	if (access(k->client_path, X_OK) < 0) {
		snprintf(err, errlen, "kdfs: %s: %s", k->client_path, strerror(errno));
		return -ENOENT;
	}
	int r = spawn_client(k);
	if (r < 0)
		snprintf(err, errlen, "kdfs: cannot start the client: %s", strerror(-r));
	return r;
}

void krg_kdfs_stop(struct krg_kdfs *k)
{
	if (!k)
		return;
	k->stopping = true;
	kdfs_repair_stop(k);
	uv_timer_stop(&k->respawn);
	if (k->client_pid > 0)
		kill(k->client_pid, SIGTERM);
	/* The mount must not outlive its server: ENOTCONN for everyone. */
	umount2(k->cfg->kdfs_mount, MNT_DETACH);
	while (k->pending) {
		struct pending *p = k->pending;
		k->pending = p->next;
		free(p);
	}
	uv_close((uv_handle_t *)&k->respawn, NULL);
	if (k->pipe_open)
		drop_client(k);
	else
		free(k->rbuf), k->rbuf = NULL;
}

void krg_kdfs_free(struct krg_kdfs *k)
{
	if (!k)
		return;
	kdfs_meta_close(k->meta);
	kdfs_chunks_close(k->chunks);
	free(k->rbuf);
	free(k);
}

/* Before membership starts: raft replays the log into the state machine. */
static int svc_init(struct krg_services *s, void **state, char *err, size_t errlen)
{
	struct krg_kdfs *k = NULL;
	int r = krg_kdfs_new(s->loop, s->cfg, s->net, s->cluster, &k, err, errlen);
	*state = k;
	return r;
}

/* The FUSE client is krgd's: never a process to move (eviction). */
static bool is_client(void *data, int pid)
{
	const struct krg_kdfs *k = data;
	return pid > 0 && k->client_pid == pid;
}

static int svc_start(struct krg_services *s, void **state, char *err, size_t errlen)
{
	int r = krg_kdfs_start(*state, s->api, err, errlen);
	if (r == 0 && *state) {
		s->is_helper = is_client;
		s->helper_data = *state;
	}
	return r;
}

static void svc_stop(void *state)
{
	krg_kdfs_stop(state);
}

/* Once membership is closed: it applies into the stores until then. */
static void svc_release(void *state)
{
	krg_kdfs_free(state);
}

const struct krg_service krg_service_kdfs = {
	.name = "kdfs",
	.init = svc_init,
	.start = svc_start,
	.stop = svc_stop,
	.release = svc_release,
	.node_down = on_node_gone,
	.node_remove = on_node_gone,
	.node_leaving = on_node_leaving,
	.msg_types = (const char *const[]){ "kdfs.cread", "kdfs.cwrite", "kdfs.ctrunc", "kdfs.cfill", "kdfs.space", NULL },
	.api_cmds = (const char *const[]){ "kdfs.status", "kdfs.show", "kdfs.set", NULL },
};
