/* client.c — the FUSE side of a file view (docs/fsview.md).
 *
 * krgd starts one per (home node, uid, gid) that has processes here. It
 * makes a new mount namespace (a slave of the node's, so later mounts such
 * as kdfs still appear), mounts a FUSE view over each node-local path,
 * says READY, and krgd puts the application's processes into that
 * namespace (setns). Each call the kernel makes becomes one Request to
 * krgd, which forwards it home; the Reply comes back by id (a reader
 * thread hands it to the waiting FUSE thread). Nothing is cached for long:
 * attributes and names expire after 1 ms and the page cache is dropped at
 * open, so home's processes and every node see the same files. If krgd
 * goes away every call fails with EIO; it never waits for a reply that
 * cannot come.
 *
 * Writes are write-behind: a WRITE is sent and the write(2) returns
 * without waiting for home's answer, up to FSV_WRITE_BEHIND bytes in
 * flight, so the data of consecutive writes streams home instead of
 * taking one round trip each. Home does them in the order sent
 * (serve.c). Every other call first waits until no write is in flight,
 * so whatever this node asks next (a stat, a read, an open on another
 * node's behalf...) sees them done. A write that failed at home is
 * reported by every later write on that handle and by fsync/close
 * (flush), which forget it once said. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fsview/fsview-int.h"
#include "fsview/submounts.h"
#include "fsview/wire.h"
#include "proto/fsview.pb-c.h"

struct call {
	struct call *next;
	uint64_t id;
	Krg__Fsview__Reply *reply;
	bool done;
	bool async;                /* a write-behind WRITE: the reader finishes it */
	uint64_t fh;               /* async: its handle and size */
	size_t size;
	pthread_cond_t cond;
};

/* A write-behind error not yet reported, per handle. */
struct fherr {
	struct fherr *next;
	uint64_t fh;
	int err;
};

static struct {
	int fd;
	pthread_mutex_t lock, wlock;
	struct call *calls;
	uint64_t next_id;
	bool dead;
	uid_t uid;                 /* the view's user */
	gid_t gid;
	/* write-behind (under lock): writes in flight, their bytes, callers
	 * waiting for none to be (writers hold back for them), errors */
	unsigned inflight, barrier_waiting;
	size_t inflight_bytes;
	pthread_cond_t drained;
	struct fherr *errs;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER, .wlock = PTHREAD_MUTEX_INITIALIZER, .next_id = 1,
	.drained = PTHREAD_COND_INITIALIZER };

struct mnt {
	const char *prefix;        /* home's path this mount shows, e.g. "/tmp" */
	struct fsv_subs subs;      /* the node's own mounts under it, kept */
	struct fuse *f;
	pthread_t th;
};

/* q; its data (a write's) is q->data, or, when pipe >= 0, the
 * q->data.len bytes waiting in that pipe. */
static int send_req_from(Krg__Fsview__Request *q, int pipe)
{
	/* A write's data is not copied into the packed request: the rest is
	 * packed, the data field written after it as it is (wire.h). */
	ProtobufCBinaryData data = q->data;
	bool bulk = q->has_data && (pipe >= 0 || data.len > FSV_SPLIT_MIN);
	if (bulk)
		q->has_data = false;
	size_t n = krg__fsview__request__get_packed_size(q);
	uint8_t *b = malloc(n + 16);
	if (!b)
		return -ENOMEM;
	krg__fsview__request__pack(q, b);
	if (bulk) {
		n += fsv_bytes_field(b + n, 8 /* Request.data */, data.len);
		q->has_data = true;
	}
	pthread_mutex_lock(&C.wlock);
	int r;
	if (pipe < 0)
		r = fsv_write_frame2(C.fd, b, n, bulk ? data.data : NULL, bulk ? data.len : 0);
	else if ((r = fsv_write_head(C.fd, b, n, data.len)) == 0 && (r = fsv_write_splice(C.fd, pipe, data.len)) < 0)
		shutdown(C.fd, SHUT_RDWR); /* a frame cut short: nothing after it could be read */
	pthread_mutex_unlock(&C.wlock);
	free(b);
	return r < 0 ? -EIO : 0;
}

static int send_req(Krg__Fsview__Request *q)
{
	return send_req_from(q, -1);
}

/* Under C.lock: until no write-behind is in flight (or krgd is gone). */
static void wait_drained(void)
{
	C.barrier_waiting++;
	while (C.inflight && !C.dead)
		pthread_cond_wait(&C.drained, &C.lock);
	C.barrier_waiting--;
	pthread_cond_broadcast(&C.drained); /* writers held back for us */
}

/* Under C.lock: fh's write error not yet reported by fsync or close
 * (0: none); forgotten once said, unless keep. */
static int find_err(uint64_t fh, bool keep)
{
	for (struct fherr **p = &C.errs; *p; p = &(*p)->next)
		if ((*p)->fh == fh) {
			struct fherr *x = *p;
			int e = x->err;
			if (!keep) {
				*p = x->next;
				free(x);
			}
			return e;
		}
	return 0;
}

static int take_err(uint64_t fh)
{
	return find_err(fh, false);
}

/* Under C.lock: keep the first error of fh until it is reported. */
static void note_err(uint64_t fh, int err)
{
	for (struct fherr *x = C.errs; x; x = x->next)
		if (x->fh == fh)
			return;
	struct fherr *x = malloc(sizeof(*x));
	if (!x)
		return; /* cannot happen in practice; the data is lost silently then */
	*x = (struct fherr){ .next = C.errs, .fh = fh, .err = err };
	C.errs = x;
}

/* Under C.lock: an async write is over (its reply, or krgd gone). */
static void async_done(struct call *c, int err)
{
	if (err < 0)
		note_err(c->fh, err);
	C.inflight--;
	C.inflight_bytes -= c->size;
	pthread_cond_broadcast(&C.drained);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* One request, its reply (caller frees), or -errno (-EIO: no answer).
 * Sent once every write-behind is done at home. */
int fsv_call(Krg__Fsview__Request *q, Krg__Fsview__Reply **out)
{
	struct call c = { .done = false };
	pthread_cond_init(&c.cond, NULL);
	pthread_mutex_lock(&C.lock);
	wait_drained();
	if (C.dead) {
		pthread_mutex_unlock(&C.lock);
		return -EIO;
	}
	c.id = q->id = C.next_id++;
	c.next = C.calls;
	C.calls = &c;
	pthread_mutex_unlock(&C.lock);
	int r = send_req(q);
	pthread_mutex_lock(&C.lock);
	while (r == 0 && !c.done)
		pthread_cond_wait(&c.cond, &C.lock);
	for (struct call **p = &C.calls; *p; p = &(*p)->next)
		if (*p == &c) {
			*p = c.next;
			break;
		}
	pthread_mutex_unlock(&C.lock);
	pthread_cond_destroy(&c.cond);
	if (r < 0 || !c.reply) {
		if (c.reply)
			krg__fsview__reply__free_unpacked(c.reply, NULL);
		return -EIO;
	}
	if (c.reply->err < 0) {
		int e = c.reply->err;
		krg__fsview__reply__free_unpacked(c.reply, NULL);
		return e;
	}
	*out = c.reply;
	return 0;
}

/* A write-behind's reply: 0, or the error to report later. */
static int async_status(const struct call *c, const Krg__Fsview__Reply *r)
{
	if (r->err < 0)
		return r->err;
	return r->has_size && r->size == c->size ? 0 : -EIO; /* short: home's file system is full, say */
}

static void *reader(void *arg)
{
	for (;;) {
		/* A read's data is received straight into the buffer that goes
		 * to libfuse (v_read_buf): no copy by the unpack. */
		uint8_t *buf, *data;
		size_t len, dlen;
		if (fsv_read_frame_split(C.fd, 4 /* Reply.data */, &buf, &len, &data, &dlen) < 0)
			break;
		Krg__Fsview__Reply *r = krg__fsview__reply__unpack(NULL, len, buf);
		free(buf);
		if (!r || (data && r->has_data)) {
			free(data);
			if (r)
				krg__fsview__reply__free_unpacked(r, NULL);
			break;
		}
		if (data) {
			r->has_data = true;
			r->data.data = data;
			r->data.len = dlen;
		}
		pthread_mutex_lock(&C.lock);
		struct call **pc = &C.calls;
		while (*pc && (*pc)->id != r->id)
			pc = &(*pc)->next;
		struct call *c = *pc;
		if (c && c->async) {
			*pc = c->next;
			async_done(c, async_status(c, r));
			c = NULL;
		} else if (c) {
			c->reply = r;
			c->done = true;
			pthread_cond_signal(&c->cond);
		}
		pthread_mutex_unlock(&C.lock);
		if (!c)
			krg__fsview__reply__free_unpacked(r, NULL);
	}
	/* krgd is gone: fail everything, now and later. */
	pthread_mutex_lock(&C.lock);
	C.dead = true;
	for (struct call **pc = &C.calls; *pc;) {
		struct call *c = *pc;
		if (c->async) {
			*pc = c->next;
			async_done(c, -EIO);
			continue;
		}
		c->done = true;
		pthread_cond_signal(&c->cond);
		pc = &c->next;
	}
	pthread_cond_broadcast(&C.drained);
	pthread_mutex_unlock(&C.lock);
	return arg;
}

/* ---- path operations ---- */

struct rq {
	Krg__Fsview__Request q;
	char path[PATH_MAX], path2[PATH_MAX];
};

static int rq_init(struct rq *r, Krg__Fsview__Op op, const char *path)
{
	struct mnt *m = fuse_get_context()->private_data;
	krg__fsview__request__init(&r->q);
	r->q.op = op;
	if (path) {
		if ((size_t)snprintf(r->path, sizeof(r->path), "%s%s", m->prefix, strcmp(path, "/") ? path : "") >=
		    sizeof(r->path))
			return -ENAMETOOLONG;
		r->q.path = r->path;
	}
	return 0;
}

static int rq_path2(struct rq *r, const char *p2)
{
	struct mnt *m = fuse_get_context()->private_data;
	if ((size_t)snprintf(r->path2, sizeof(r->path2), "%s%s", m->prefix, strcmp(p2, "/") ? p2 : "") >= sizeof(r->path2))
		return -ENAMETOOLONG;
	r->q.path2 = r->path2;
	return 0;
}

/* A call whose reply carries nothing but a status. */
static int simple(struct rq *r)
{
	Krg__Fsview__Reply *rep;
	int e = fsv_call(&r->q, &rep);
	if (e == 0)
		krg__fsview__reply__free_unpacked(rep, NULL);
	return e;
}

static void to_stat(const Krg__Fsview__Stat *s, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_mode = s->mode;
	st->st_nlink = s->nlink;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_rdev = s->rdev;
	st->st_size = s->size;
	st->st_blocks = s->blocks;
	st->st_blksize = s->blksize;
	st->st_atim = (struct timespec){ s->atime_ns / 1000000000, s->atime_ns % 1000000000 };
	st->st_mtim = (struct timespec){ s->mtime_ns / 1000000000, s->mtime_ns % 1000000000 };
	st->st_ctim = (struct timespec){ s->ctime_ns / 1000000000, s->ctime_ns % 1000000000 };
}

static int v_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct mnt *m = fuse_get_context()->private_data;
	if (!fi && path && fsv_subs_stat(&m->subs, path, st))
		return 0; /* a kept mount's point: the node's (submounts.h) */
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_GETATTR, fi ? NULL : path);
	if (e < 0)
		return e;
	if (fi) {
		r.q.has_fh = true;
		r.q.fh = fi->fh;
	}
	Krg__Fsview__Reply *rep;
	if ((e = fsv_call(&r.q, &rep)) < 0)
		return e;
	if (rep->st)
		to_stat(rep->st, st);
	else
		e = -EIO;
	if (e == 0 && rep->st->has_sock_type) {
		/* Bound at home: a symlink to its relay here (relay.c). */
		char rp[108];
		st->st_mode = S_IFLNK | 0777;
		st->st_size = (off_t)fsv_relay_name(rep->st->ino, rep->st->sock_type, rp, sizeof(rp));
	}
	krg__fsview__reply__free_unpacked(rep, NULL);
	return e;
}

static int v_readlink(const char *path, char *buf, size_t size)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_READLINK, path);
	Krg__Fsview__Reply *rep;
	if (e < 0 || (e = fsv_call(&r.q, &rep)) < 0)
		return e;
	char rp[108];
	const uint8_t *d = rep->data.data;
	size_t len = rep->data.len;
	if (rep->st && rep->st->has_sock_type) {
		/* A socket bound at home: the path of its relay here. */
		e = fsv_relay_get(r.path, rep->st->ino, rep->st->sock_type, C.uid, C.gid);
		if (e < 0) {
			krg__fsview__reply__free_unpacked(rep, NULL);
			return -EINVAL; /* shown as a socket then, which is no link */
		}
		len = fsv_relay_name(rep->st->ino, rep->st->sock_type, rp, sizeof(rp));
		d = (const uint8_t *)rp;
	}
	size_t n = len < size - 1 ? len : size - 1;
	memcpy(buf, d, n);
	buf[n] = 0;
	krg__fsview__reply__free_unpacked(rep, NULL);
	return 0;
}

static int v_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_MKNOD, path);
	r.q.has_mode = r.q.has_rdev = true;
	r.q.mode = mode;
	r.q.rdev = rdev;
	return e < 0 ? e : simple(&r);
}

static int v_mkdir(const char *path, mode_t mode)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_MKDIR, path);
	r.q.has_mode = true;
	r.q.mode = mode;
	return e < 0 ? e : simple(&r);
}

static int v_path_op(Krg__Fsview__Op op, const char *path)
{
	struct rq r;
	int e = rq_init(&r, op, path);
	return e < 0 ? e : simple(&r);
}

static int v_unlink(const char *path)
{
	return v_path_op(KRG__FSVIEW__OP__OP_UNLINK, path);
}

static int v_rmdir(const char *path)
{
	return v_path_op(KRG__FSVIEW__OP__OP_RMDIR, path);
}

static int v_symlink(const char *target, const char *path)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_SYMLINK, path);
	r.q.path2 = (char *)target; /* the link's text, as given */
	return e < 0 ? e : simple(&r);
}

static int v_rename(const char *from, const char *to, unsigned int flags)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_RENAME, from);
	if (e == 0)
		e = rq_path2(&r, to);
	r.q.has_flags = true;
	r.q.flags = flags;
	return e < 0 ? e : simple(&r);
}

static int v_link(const char *from, const char *to)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_LINK, from);
	if (e == 0)
		e = rq_path2(&r, to);
	return e < 0 ? e : simple(&r);
}

static int v_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_CHMOD, path);
	r.q.has_mode = true;
	r.q.mode = mode;
	return e < 0 ? e : !path ? -EOPNOTSUPP : simple(&r);
}

static int v_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_CHOWN, path);
	r.q.has_uid = r.q.has_gid = true;
	r.q.uid = uid == (uid_t)-1 ? -1 : (int64_t)uid;
	r.q.gid = gid == (gid_t)-1 ? -1 : (int64_t)gid;
	return e < 0 ? e : !path ? -EOPNOTSUPP : simple(&r);
}

static int v_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_TRUNCATE, fi ? NULL : path);
	r.q.has_size = true;
	r.q.size = (uint64_t)size;
	if (fi) {
		r.q.has_fh = true;
		r.q.fh = fi->fh;
	}
	return e < 0 ? e : simple(&r);
}

static int v_open_common(Krg__Fsview__Op op, const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, op, path);
	if (e < 0)
		return e;
	r.q.has_flags = r.q.has_mode = true;
	r.q.flags = (uint32_t)fi->flags;
	r.q.mode = mode;
	Krg__Fsview__Reply *rep;
	if ((e = fsv_call(&r.q, &rep)) < 0)
		return e;
	if (!rep->has_fh) {
		krg__fsview__reply__free_unpacked(rep, NULL);
		return -EIO;
	}
	fi->fh = rep->fh;
	/* The page cache may hold what another node changed: drop it. */
	fi->keep_cache = 0;
	krg__fsview__reply__free_unpacked(rep, NULL);
	return 0;
}

static int v_open(const char *path, struct fuse_file_info *fi)
{
	return v_open_common(KRG__FSVIEW__OP__OP_OPEN, path, 0, fi);
}

static int v_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return v_open_common(KRG__FSVIEW__OP__OP_CREATE, path, mode, fi);
}

/* The reply's data is handed to libfuse as it is (read_buf), which
 * writes it to /dev/fuse and free()s it: no copy into a buffer of its
 * own. protobuf-c allocated it with malloc (the default allocator). */
static int v_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct rq r;
	rq_init(&r, KRG__FSVIEW__OP__OP_READ, NULL);
	r.q.has_fh = r.q.has_offset = r.q.has_size = true;
	r.q.fh = fi->fh;
	r.q.offset = off;
	r.q.size = size;
	Krg__Fsview__Reply *rep;
	int e = fsv_call(&r.q, &rep);
	if (e < 0)
		return e;
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	if (!bv) {
		krg__fsview__reply__free_unpacked(rep, NULL);
		return -ENOMEM;
	}
	*bv = FUSE_BUFVEC_INIT(rep->data.len < size ? rep->data.len : size);
	bv->buf[0].mem = bv->buf[0].size ? rep->data.data : NULL;
	if (bv->buf[0].mem) {
		rep->data.data = NULL; /* libfuse's now */
		rep->has_data = false;
	}
	krg__fsview__reply__free_unpacked(rep, NULL);
	*bufp = bv;
	return 0;
}

/* Write-behind (see the top): sent, not waited for. The frame is in
 * krgd's pipe when this returns, so buf may be reused. The data is buf,
 * or (buf NULL) the size bytes in pipe. */
static int write_behind(const char *buf, int pipe, size_t size, off_t off, struct fuse_file_info *fi)
{
	pthread_mutex_lock(&C.lock);
	/* An earlier write's error fails this one, and stays for fsync or
	 * close: the kernel turns an error of any request but a write(2)'s
	 * first into a short count, which would lose it. */
	int e = find_err(fi->fh, true);
	/* Room in the window; and a caller waiting for the writes to drain
	 * goes first (a stream of writes does not starve it). */
	while (!e && !C.dead && (C.barrier_waiting || (C.inflight && C.inflight_bytes + size > FSV_WRITE_BEHIND)))
		pthread_cond_wait(&C.drained, &C.lock);
	if (!e && C.dead)
		e = -EIO;
	struct call *c = e ? NULL : calloc(1, sizeof(*c));
	if (!e && !c)
		e = -ENOMEM;
	if (e) {
		pthread_mutex_unlock(&C.lock);
		return e;
	}
	Krg__Fsview__Request q = KRG__FSVIEW__REQUEST__INIT;
	q.op = KRG__FSVIEW__OP__OP_WRITE;
	q.has_fh = q.has_offset = q.has_data = true;
	q.fh = fi->fh;
	q.offset = off;
	q.data.data = (uint8_t *)buf;
	q.data.len = size;
	pthread_cond_init(&c->cond, NULL);
	c->async = true;
	c->fh = fi->fh;
	c->size = size;
	c->id = q.id = C.next_id++;
	c->next = C.calls;
	C.calls = c;
	C.inflight++;
	C.inflight_bytes += size;
	pthread_mutex_unlock(&C.lock);
	if (send_req_from(&q, buf ? -1 : pipe) == 0)
		return (int)size;
	/* Not sent: the reader may have failed it already (krgd gone). */
	pthread_mutex_lock(&C.lock);
	for (struct call **pc = &C.calls; *pc; pc = &(*pc)->next)
		if (*pc == c) {
			*pc = c->next;
			async_done(c, 0);
			break;
		}
	take_err(fi->fh);
	pthread_mutex_unlock(&C.lock);
	return -EIO;
}

static int v_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	/* O_SYNC/O_DSYNC: the data is at home when write(2) returns. */
	if (!(fi->flags & O_DSYNC))
		return write_behind(buf, -1, size, off, fi);
	struct rq r;
	rq_init(&r, KRG__FSVIEW__OP__OP_WRITE, NULL);
	r.q.has_fh = r.q.has_offset = r.q.has_data = true;
	r.q.fh = fi->fh;
	r.q.offset = off;
	r.q.data.data = (uint8_t *)buf;
	r.q.data.len = size;
	Krg__Fsview__Reply *rep;
	int e = fsv_call(&r.q, &rep);
	if (e < 0)
		return e;
	e = rep->has_size && rep->size <= size ? (int)rep->size : -EIO;
	krg__fsview__reply__free_unpacked(rep, NULL);
	return e;
}

/* libfuse splices a big WRITE from /dev/fuse into a pipe when write_buf
 * is given (FUSE_CAP_SPLICE_READ): its data then arrives as that pipe,
 * holding references to the page cache pages the kernel copied the
 * program's buffer into, and is moved on into krgd's channel by splice:
 * no copy of it in this process (two copies fewer per write than a
 * read() of /dev/fuse and a write() to the channel). A later write to
 * the same pages before krgd has read them only puts newer bytes in an
 * older WRITE, which the newer WRITE then writes again at home (they are
 * done in order); a truncate waits for every write in flight (fsv_call).
 * Anything else (small writes, O_SYNC) goes as v_write. */
static int v_write_buf(const char *path, struct fuse_bufvec *bv, off_t off, struct fuse_file_info *fi)
{
	size_t size = fuse_buf_size(bv);
	const struct fuse_buf *b = &bv->buf[bv->idx];
	if (bv->count == 1 && bv->off == 0 && (b->flags & FUSE_BUF_IS_FD) && !(b->flags & FUSE_BUF_FD_SEEK) &&
	    !(fi->flags & O_DSYNC)) {
		int r = write_behind(NULL, b->fd, size, off, fi);
		if (r >= 0)
			bv->idx = bv->count; /* consumed: libfuse keeps its pipe (else it empties it) */
		return r;
	}
	if (bv->count == 1 && bv->off == 0 && !(b->flags & FUSE_BUF_IS_FD))
		return v_write(path, b->mem, size, off, fi);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	if (!(dst.buf[0].mem = malloc(size ? size : 1)))
		return -ENOMEM;
	ssize_t n = fuse_buf_copy(&dst, bv, 0);
	int r = n < 0 ? (int)n : v_write(path, dst.buf[0].mem, (size_t)n, off, fi);
	free(dst.buf[0].mem);
	return r;
}

static int v_fh_op(Krg__Fsview__Op op, struct fuse_file_info *fi, uint32_t flags)
{
	struct rq r;
	rq_init(&r, op, NULL);
	r.q.has_fh = r.q.has_flags = true;
	r.q.fh = fi->fh;
	r.q.flags = flags;
	return simple(&r);
}

/* Waits for the write-behind; then fh's write error not yet reported. */
static int drain_err(uint64_t fh)
{
	pthread_mutex_lock(&C.lock);
	wait_drained();
	int e = take_err(fh);
	pthread_mutex_unlock(&C.lock);
	return e;
}

/* Each close(2) of a descriptor: what it wrote is at home when it
 * returns (close-to-open), and a write that failed there is reported
 * here, as NFS does. No call home. */
static int v_flush(const char *path, struct fuse_file_info *fi)
{
	return drain_err(fi->fh);
}

static int v_release(const char *path, struct fuse_file_info *fi)
{
	drain_err(fi->fh); /* nobody left to tell; home reuses the number */
	return v_fh_op(KRG__FSVIEW__OP__OP_RELEASE, fi, 0);
}

static int v_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int e = drain_err(fi->fh);
	return e < 0 ? e : v_fh_op(KRG__FSVIEW__OP__OP_FSYNC, fi, datasync ? 1 : 0);
}

/* The directory's home path is kept in fh: with nullpath_ok, libfuse
 * hands readdir no path. Listed whole at each readdir from offset 0. */
static int v_opendir(const char *path, struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_READDIR, path);
	if (e < 0)
		return e;
	char *p = strdup(r.path);
	if (!p)
		return -ENOMEM;
	fi->fh = (uint64_t)(uintptr_t)p;
	return 0;
}

static int v_releasedir(const char *path, struct fuse_file_info *fi)
{
	free((char *)(uintptr_t)fi->fh);
	return 0;
}

static int v_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		     enum fuse_readdir_flags flags)
{
	struct rq r;
	rq_init(&r, KRG__FSVIEW__OP__OP_READDIR, NULL);
	r.q.path = (char *)(uintptr_t)fi->fh;
	Krg__Fsview__Reply *rep;
	int e = fsv_call(&r.q, &rep);
	if (e < 0)
		return e;
	for (size_t i = 0; i < rep->n_entries; i++) {
		struct stat st = { .st_mode = (mode_t)(rep->entries[i]->type << 12) };
		if (fill(buf, rep->entries[i]->name, &st, 0, 0))
			break;
	}
	krg__fsview__reply__free_unpacked(rep, NULL);
	return 0;
}

static int v_statfs(const char *path, struct statvfs *sv)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_STATFS, path);
	Krg__Fsview__Reply *rep;
	if (e < 0 || (e = fsv_call(&r.q, &rep)) < 0)
		return e;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = rep->bsize;
	sv->f_blocks = rep->blocks, sv->f_bfree = rep->bfree, sv->f_bavail = rep->bavail;
	sv->f_files = rep->files, sv->f_ffree = rep->ffree, sv->f_namemax = rep->namemax;
	krg__fsview__reply__free_unpacked(rep, NULL);
	return 0;
}

static int v_access(const char *path, int mode)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_ACCESS, path);
	r.q.has_mode = true;
	r.q.mode = (uint32_t)mode;
	return e < 0 ? e : simple(&r);
}

static int v_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct rq r;
	int e = rq_init(&r, KRG__FSVIEW__OP__OP_UTIMENS, path);
	r.q.has_atime_ns = r.q.has_mtime_ns = true;
	r.q.atime_ns = tv[0].tv_nsec == UTIME_NOW || tv[0].tv_nsec == UTIME_OMIT ? tv[0].tv_nsec
										 : (int64_t)tv[0].tv_sec * 1000000000 + tv[0].tv_nsec;
	r.q.mtime_ns = tv[1].tv_nsec == UTIME_NOW || tv[1].tv_nsec == UTIME_OMIT ? tv[1].tv_nsec
										 : (int64_t)tv[1].tv_sec * 1000000000 + tv[1].tv_nsec;
	return e < 0 ? e : !path ? -EOPNOTSUPP : simple(&r);
}

/* The largest write request whose data libfuse can splice out of
 * /dev/fuse (v_write_buf): it wants a pipe holding a whole request, the
 * data and a page for the header. Root with CAP_SYS_RESOURCE may make
 * that pipe FSV_MAX_IO + 4 KiB; without it, pipes stop at
 * fs.pipe-max-size (1 MiB by default), so the data gets a page less.
 * Else FSV_MAX_IO, copied. */
static unsigned splice_max_write(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return FSV_MAX_IO;
	unsigned n = fcntl(p[0], F_SETPIPE_SZ, FSV_MAX_IO + 4096) >= 0 ? FSV_MAX_IO
		     : fcntl(p[0], F_SETPIPE_SZ, FSV_MAX_IO) >= 0      ? FSV_MAX_IO - 4096
									     : FSV_MAX_IO;
	close(p[0]);
	close(p[1]);
	return n;
}

static void *v_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Home is the truth: nothing cached past the system call that
	 * fetched it. 1 ms (one jiffy, the kernel's granularity) rather than
	 * 0: a stat's LOOKUP then serves its GETATTR too, so a metadata call
	 * costs one round trip home, not two. Negative entries never stay. */
	cfg->entry_timeout = cfg->attr_timeout = 0.001;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	/* An open file unlinked is renamed .fuse_hiddenN at home until its
	 * last close (libfuse's way): fstat() on it needs a path, since the
	 * kernel sends no handle with the getattr of fstat. */
	cfg->hard_remove = 0;
	cfg->nullpath_ok = 1;
	conn->max_write = splice_max_write();
	conn->max_readahead = FSV_READAHEAD;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = v_init, .getattr = v_getattr, .readlink = v_readlink, .mknod = v_mknod, .mkdir = v_mkdir,
	.unlink = v_unlink, .rmdir = v_rmdir, .symlink = v_symlink, .rename = v_rename, .link = v_link,
	.chmod = v_chmod, .chown = v_chown, .truncate = v_truncate, .open = v_open, .create = v_create,
	.read_buf = v_read_buf, .write = v_write, .write_buf = v_write_buf, .flush = v_flush, .release = v_release, .fsync = v_fsync, .opendir = v_opendir, .readdir = v_readdir, .releasedir = v_releasedir,
	.statfs = v_statfs, .access = v_access, .utimens = v_utimens,
};

static void *loop_thread(void *arg)
{
	struct mnt *m = arg;
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (lc)
		fuse_loop_cfg_set_max_threads(lc, 16);
	fuse_loop_mt(m->f, lc);
	fuse_loop_cfg_destroy(lc);
	return NULL;
}

/* The kernel caps a FUSE mount's readahead at the default 128 KiB
 * (max_readahead only lowers it): raise it to a few requests' worth
 * (FSV_READAHEAD), so a sequential read has several 1 MiB reads on their
 * way home at once (each request carries at most FSV_MAX_IO) instead of
 * one 128 KiB round trip after the other. Best effort: only speed
 * depends on it. */
static void raise_readahead(const char *path)
{
	/* Its device from mountinfo: a stat() of our own mount before it is
	 * served would wait on ourselves. The last mount on path is ours. */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], dev[32] = "", p[96], v[32];
	while (f && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], d[32];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", d, mp) == 2 && !strcmp(mp, path))
			snprintf(dev, sizeof(dev), "%s", d);
	}
	if (f)
		fclose(f);
	if (!dev[0])
		return;
	snprintf(p, sizeof(p), "/sys/class/bdi/%s/read_ahead_kb", dev);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	int l = snprintf(v, sizeof(v), "%u", FSV_READAHEAD >> 10);
	if (write(fd, v, (size_t)l) != l)
		fprintf(stderr, "krg-fsview: %s: %s\n", p, strerror(errno));
	close(fd);
}

int fsv_client_main(int fd, char **paths, int n, uid_t uid, gid_t gid)
{
	C.fd = fd;
	C.uid = uid;
	C.gid = gid;
	/* Our own mount namespace, a slave of the node's: the views are
	 * mounted only here; mounts made on the node later still show. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		fprintf(stderr, "krg-fsview: a mount namespace: %s\n", strerror(errno));
		return 1;
	}
	int re = fsv_relay_setup(uid, gid);
	if (re < 0) /* sockets bound at home are then plain socket files here */
		fprintf(stderr, "krg-fsview: no relay for home's unix sockets (%s): %s\n", FSV_RELAY_DIR, strerror(-re));
	struct mnt *m = calloc((size_t)n, sizeof(*m));
	if (!m)
		return 1;
	int mounted = 0;
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* not on this node: nothing to cover */
		char *av[] = { "krg-fsview", "-o", "allow_other,fsname=krg-fsview,subtype=krg", NULL };
		struct fuse_args args = FUSE_ARGS_INIT(3, av);
		m[i].prefix = paths[i];
		if (fsv_subs_find(paths[i], &m[i].subs) < 0)
			continue;
		m[i].f = fuse_new(&args, &ops, sizeof(ops), &m[i]);
		if (!m[i].f || fuse_mount(m[i].f, paths[i]) < 0) {
			fprintf(stderr, "krg-fsview: cannot mount the view on %s\n", paths[i]);
			return 1;
		}
		mounted++;
		raise_readahead(paths[i]);
	}
	pthread_t rt;
	if (pthread_create(&rt, NULL, reader, NULL) != 0)
		return 1;
	for (int i = 0; i < n; i++)
		if (m[i].f && pthread_create(&m[i].th, NULL, loop_thread, &m[i]) != 0)
			return 1;
	/* Served now: the lookups of the binds are answered here. */
	for (int i = 0; i < n; i++)
		if (m[i].f)
			fsv_subs_bind(paths[i], &m[i].subs);
	Krg__Fsview__Request ready = KRG__FSVIEW__REQUEST__INIT;
	ready.op = KRG__FSVIEW__OP__OP_READY;
	if (send_req(&ready) < 0)
		return 1;
	/* Until krgd goes: then the mounts answer ENOTCONN, never hang. */
	pthread_join(rt, NULL);
	return mounted >= 0 ? 0 : 1;
}
