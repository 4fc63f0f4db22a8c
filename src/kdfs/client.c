/* client.c — krg-kdfs, the FUSE client of kdfs on one node.
 *
 * Started by krgd with one end of a socketpair (--fd) and the mount point.
 * Each file system call from the kernel becomes one Request to krgd and
 * waits for its Reply (libfuse's multithreaded loop: many calls wait at
 * once; a reader thread hands replies to their callers by id). krgd does
 * the metadata and data work; this process holds no state but the kernel's
 * lookups, so it can die and be restarted without losing anything.
 *
 * Consistency (docs/kdfs.md): entries are not cached by the kernel
 * (timeout 0: every name is looked up, after a read barrier), attributes
 * are until krgd says they changed (ATTR_TIMEOUT at most), and the page
 * cache is dropped at open unless the file is unchanged, so what a close
 * on one node published is what an open on another sees. Permission
 * checks are the kernel's (default_permissions) with the caller's
 * credentials; new inodes belong to the caller's fsuid/fsgid. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <linux/falloc.h>
#include <time.h>
#include <unistd.h>
#include "kdfs/meta.h"
#include "lib/callwait.h"
#include "lib/fileio.h"
#include "proto/kdfs.pb-c.h"

_Static_assert(KDFS_SET_MODE == FUSE_SET_ATTR_MODE && KDFS_SET_UID == FUSE_SET_ATTR_UID &&
		       KDFS_SET_GID == FUSE_SET_ATTR_GID && KDFS_SET_SIZE == FUSE_SET_ATTR_SIZE &&
		       KDFS_SET_ATIME == FUSE_SET_ATTR_ATIME && KDFS_SET_MTIME == FUSE_SET_ATTR_MTIME &&
		       KDFS_SET_ATIME_NOW == FUSE_SET_ATTR_ATIME_NOW && KDFS_SET_MTIME_NOW == FUSE_SET_ATTR_MTIME_NOW,
	       "SetAttr.valid uses FUSE's bits");

#define MAX_FRAME (8u << 20)

/* Attribute cache (docs/kdfs.md, "Attribute cache"): the kernel keeps the
 * attributes a lookup, getattr, create or setattr answered, so a stat is
 * one call (the lookup), not two. krgd sends an invalidation for every
 * inode an op changes as its replica applies the op, before any later
 * reply, so the cache is never older than this node's replica, which is
 * what a getattr answers from. The timeout only bounds what a lost
 * invalidation (no memory) could cost. */
#define ATTR_TIMEOUT 1.0

static uint64_t next_fh = 1; /* fi->fh: names an open file for its OFD/flock locks */

/* The kernel cache where consistency allows (docs/kdfs.md, "kernel
 * cache"): for each file, the ctime of the state this node's page cache
 * holds. Every change to a file's data that another node makes reaches
 * the metadata as an op that sets its ctime (Extend at close/fsync,
 * SetAttr for a truncate), so an open that finds the ctime it recorded
 * keeps the pages (keep_cache) and any other drops them. Lossy: a slot
 * taken by another inode only costs a dropped cache. */
#define CACHE_SLOTS 4096
static struct {
	uint64_t ino;
	int64_t ctime_ns;
} cache_seen[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Open: may the pages stay? Either way they hold ctime's state after it. */
static bool cache_open(uint64_t ino, int64_t ctime_ns)
{
	pthread_mutex_lock(&cache_lock);
	size_t i = ino % CACHE_SLOTS;
	bool keep = cache_seen[i].ino == ino && cache_seen[i].ctime_ns == ctime_ns;
	cache_seen[i].ino = ino;
	cache_seen[i].ctime_ns = ctime_ns;
	pthread_mutex_unlock(&cache_lock);
	return keep;
}

/* Our own Extend moved ctime from prev to now: the pages follow only if
 * nothing else changed the file in between (prev is what we recorded). */
static void cache_extended(uint64_t ino, int64_t prev, int64_t now)
{
	pthread_mutex_lock(&cache_lock);
	size_t i = ino % CACHE_SLOTS;
	if (cache_seen[i].ino == ino)
		cache_seen[i].ctime_ns = cache_seen[i].ctime_ns == prev ? now : INT64_MIN;
	pthread_mutex_unlock(&cache_lock);
}

/* ---- calls to krgd ---- */

static struct {
	int fd;
	pthread_mutex_t wlock;     /* one frame at a time on fd */
	struct krg_callwait calls; /* replies are Krg__Kdfs__Reply */
	struct fuse_session *se;
} K = { .wlock = PTHREAD_MUTEX_INITIALIZER, .calls = KRG_CALLWAIT_INIT };

static int send_req(Krg__Kdfs__Request *req)
{
	size_t n = krg__kdfs__request__get_packed_size(req);
	uint8_t *buf = malloc(4 + n);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)(n >> 24), buf[1] = (uint8_t)(n >> 16), buf[2] = (uint8_t)(n >> 8), buf[3] = (uint8_t)n;
	krg__kdfs__request__pack(req, buf + 4);
	pthread_mutex_lock(&K.wlock);
	int r = krg_write_all(K.fd, buf, 4 + n) < 0 ? -EIO : 0;
	pthread_mutex_unlock(&K.wlock);
	free(buf);
	return r;
}

/* One request, its reply in *out (free with krg__kdfs__reply__free_unpacked);
 * returns the reply's status. EAGAIN (no raft leader: an election, or
 * this node is cut off) is retried for a while, as a disk retries. */
static int call(fuse_req_t freq, Krg__Kdfs__Request *req, Krg__Kdfs__Reply **out)
{
	const struct fuse_ctx *ctx = freq ? fuse_req_ctx(freq) : NULL;
	req->uid = ctx ? ctx->uid : 0;
	req->gid = ctx ? ctx->gid : 0;
	for (int attempt = 0;; attempt++) {
		struct krg_callwait_call c;
		if (krg_callwait_add(&K.calls, &c) < 0)
			return -EIO;
		req->id = c.id;
		int r = send_req(req);
		Krg__Kdfs__Reply *rep = krg_callwait_end(&K.calls, &c, r);
		if (!rep)
			return r < 0 ? r : -EIO;
		int st = rep->status;
		if (st == -EAGAIN && attempt < 300) {
			krg__kdfs__reply__free_unpacked(rep, NULL);
			usleep(50000);
			continue;
		}
		if (out)
			*out = rep;
		else
			krg__kdfs__reply__free_unpacked(rep, NULL);
		return st;
	}
}

static void *reader(void *arg)
{
	for (;;) {
		uint8_t h[4];
		if (krg_read_all(K.fd, h, 4) < 0)
			break;
		size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
		if (n > MAX_FRAME)
			break;
		uint8_t *b = malloc(n ? n : 1);
		if (!b || krg_read_all(K.fd, b, n) < 0) {
			free(b);
			break;
		}
		Krg__Kdfs__Reply *rep = krg__kdfs__reply__unpack(NULL, n, b);
		free(b);
		if (!rep)
			break;
		/* Done here, before the replies that follow it are handed
		 * out. An attributes-only invalidation takes no lock the
		 * kernel holds across a call to us (no page, no directory
		 * lock): it cannot wait on a call waiting for this thread.
		 * ENOENT: the kernel has no such inode cached. */
		for (size_t i = 0; rep->id == 0 && i < rep->n_inval; i++)
			fuse_lowlevel_notify_inval_inode(K.se, rep->inval[i], -1, 0);
		if (rep->id == 0) {
			krg__kdfs__reply__free_unpacked(rep, NULL);
			continue;
		}
		if (!krg_callwait_deliver(&K.calls, rep->id, rep))
			krg__kdfs__reply__free_unpacked(rep, NULL);
	}
	/* krgd is gone: fail every call and leave (krgd unmounts). */
	krg_callwait_dead(&K.calls);
	fuse_session_exit(K.se);
	kill(getpid(), SIGTERM);
	return NULL;
}

/* ---- helpers ---- */

static void to_stat(const Krg__Kdfs__Attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_rdev = a->rdev;
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim.tv_sec = a->atime_ns / 1000000000, st->st_atim.tv_nsec = a->atime_ns % 1000000000;
	st->st_mtim.tv_sec = a->mtime_ns / 1000000000, st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = a->ctime_ns / 1000000000, st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
}

static void reply_entry(fuse_req_t req, int st, Krg__Kdfs__Reply *rep)
{
	if (st < 0 || !rep->attr) {
		fuse_reply_err(req, st < 0 ? -st : EIO);
	} else {
		struct fuse_entry_param e = { 0 };
		e.ino = rep->attr->ino;
		e.generation = 1;
		e.attr_timeout = ATTR_TIMEOUT;
		to_stat(rep->attr, &e.attr);
		fuse_reply_entry(req, &e);
	}
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static void reply_attr(fuse_req_t req, int st, Krg__Kdfs__Reply *rep)
{
	if (st < 0 || !rep->attr) {
		fuse_reply_err(req, st < 0 ? -st : EIO);
	} else {
		struct stat s;
		to_stat(rep->attr, &s);
		fuse_reply_attr(req, &s, ATTR_TIMEOUT);
	}
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static void reply_status(fuse_req_t req, int st)
{
	fuse_reply_err(req, st < 0 ? -st : 0);
}

/* A metadata change on the cluster log. */
static int op_call(fuse_req_t req, Krg__Kdfs__Op *op, Krg__Kdfs__Reply **rep)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	r.req_case = KRG__KDFS__REQUEST__REQ_OP;
	r.op = op;
	return call(req, &r, rep);
}

static void do_create_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
			   const char *target, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Create c = KRG__KDFS__CREATE__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	op.op_case = KRG__KDFS__OP__OP_CREATE;
	op.create = &c;
	c.parent = parent;
	c.name = (char *)name;
	c.mode = mode;
	c.uid = ctx->uid;
	c.gid = ctx->gid;
	c.has_rdev = rdev != 0;
	c.rdev = (uint32_t)rdev;
	if (target) {
		c.has_target = true;
		c.target.data = (uint8_t *)target;
		c.target.len = strlen(target);
	}
	int st = op_call(req, &op, &rep);
	if (!fi || st < 0 || !rep->attr)
		return reply_entry(req, st, rep);
	struct fuse_entry_param e = { 0 };
	e.ino = rep->attr->ino;
	e.generation = 1;
	e.attr_timeout = ATTR_TIMEOUT;
	to_stat(rep->attr, &e.attr);
	fi->keep_cache = cache_open(e.ino, rep->attr->ctime_ns); /* new: nothing cached, nothing to drop */
	fi->fh = __atomic_fetch_add(&next_fh, 1, __ATOMIC_RELAXED);
	fuse_reply_create(req, &e, fi);
	krg__kdfs__reply__free_unpacked(rep, NULL);
}

/* Data changed behind the page cache's back: the next open drops it. */
static void cache_forget(uint64_t ino)
{
	pthread_mutex_lock(&cache_lock);
	if (cache_seen[ino % CACHE_SLOTS].ino == ino)
		cache_seen[ino % CACHE_SLOTS].ctime_ns = INT64_MIN;
	pthread_mutex_unlock(&cache_lock);
}

/* ---- the operations ---- */

static void k_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Lookup l = KRG__KDFS__LOOKUP__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	if (strlen(name) > KDFS_NAME_MAX)
		return (void)fuse_reply_err(req, ENAMETOOLONG);
	r.req_case = KRG__KDFS__REQUEST__REQ_LOOKUP;
	r.lookup = &l;
	l.parent = parent;
	l.name = (char *)name;
	int st = call(req, &r, &rep);
	reply_entry(req, st, rep);
}

static void send_forget(fuse_ino_t ino)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	r.req_case = KRG__KDFS__REQUEST__REQ_FORGET;
	r.forget = ino;
	r.id = 0;
	send_req(&r); /* no answer */
}

static void k_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	send_forget(ino);
	fuse_reply_none(req);
}

static void k_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		send_forget(forgets[i].ino);
	fuse_reply_none(req);
}

static void k_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_GETATTR;
	r.getattr = ino;
	int st = call(req, &r, &rep);
	reply_attr(req, st, rep);
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void k_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetAttr sa = KRG__KDFS__SET_ATTR__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	op.op_case = KRG__KDFS__OP__OP_SETATTR;
	op.setattr = &sa;
	sa.ino = ino;
	sa.valid = (uint32_t)to_set;
	sa.has_mode = sa.has_uid = sa.has_gid = sa.has_size = sa.has_atime_ns = sa.has_mtime_ns = true;
	sa.mode = attr->st_mode;
	sa.uid = attr->st_uid;
	sa.gid = attr->st_gid;
	sa.size = (uint64_t)attr->st_size;
	sa.atime_ns = ts_ns(&attr->st_atim);
	sa.mtime_ns = ts_ns(&attr->st_mtim);
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size < 0)
		return (void)fuse_reply_err(req, EINVAL);
	int st = op_call(req, &op, &rep);
	reply_attr(req, st, rep);
}

static void k_readlink(fuse_req_t req, fuse_ino_t ino)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_READLINK;
	r.readlink = ino;
	int st = call(req, &r, &rep);
	if (st < 0 || !rep->has_data) {
		fuse_reply_err(req, st < 0 ? -st : EINVAL);
	} else {
		char *s = strndup((const char *)rep->data.data, rep->data.len);
		if (s)
			fuse_reply_readlink(req, s);
		else
			fuse_reply_err(req, ENOMEM);
		free(s);
	}
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static void k_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	do_create_node(req, parent, name, mode, rdev, NULL, NULL);
}

static void k_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	do_create_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

static void k_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	do_create_node(req, parent, name, S_IFLNK | 0777, 0, link, NULL);
}

static void k_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	do_create_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Unlink u = KRG__KDFS__UNLINK__INIT;
	op.op_case = KRG__KDFS__OP__OP_UNLINK;
	op.unlink = &u;
	u.parent = parent;
	u.name = (char *)name;
	u.dir = dir;
	reply_status(req, op_call(req, &op, NULL));
}

static void k_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void k_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void k_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		     unsigned int flags)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Rename rn = KRG__KDFS__RENAME__INIT;
	op.op_case = KRG__KDFS__OP__OP_RENAME;
	op.rename = &rn;
	rn.parent = parent;
	rn.name = (char *)name;
	rn.newparent = newparent;
	rn.newname = (char *)newname;
	rn.has_flags = true;
	rn.flags = flags;
	reply_status(req, op_call(req, &op, NULL));
}

static void k_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Link l = KRG__KDFS__LINK__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	op.op_case = KRG__KDFS__OP__OP_LINK;
	op.link = &l;
	l.ino = ino;
	l.parent = newparent;
	l.name = (char *)newname;
	int st = op_call(req, &op, &rep);
	reply_entry(req, st, rep);
}

static void k_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	r.req_case = KRG__KDFS__REQUEST__REQ_OPEN;
	r.open = ino;
	Krg__Kdfs__Reply *rep = NULL;
	int st = call(req, &r, &rep);
	if (st < 0) {
		if (rep)
			krg__kdfs__reply__free_unpacked(rep, NULL);
		return (void)fuse_reply_err(req, -st);
	}
	/* close-to-open: the pages go unless no one changed the file since
	 * they were right (the open passed a read barrier: ctime is current). */
	fi->keep_cache = rep->attr ? cache_open(ino, rep->attr->ctime_ns) : 0;
	krg__kdfs__reply__free_unpacked(rep, NULL);
	fi->fh = __atomic_fetch_add(&next_fh, 1, __ATOMIC_RELAXED); /* names the open file (locks) */
	fuse_reply_open(req, fi);
}

static void k_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Read rd = KRG__KDFS__READ__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_READ;
	r.read = &rd;
	rd.ino = ino;
	rd.offset = (uint64_t)off;
	rd.size = (uint32_t)size;
	int st = call(req, &r, &rep);
	if (st < 0)
		fuse_reply_err(req, -st);
	else
		fuse_reply_buf(req, (const char *)rep->data.data, rep->has_data ? rep->data.len : 0);
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

/* Files this client wrote since their last flush. krgd publishes the
 * size at a flush only then (its own record, per node); every write on
 * this node passes here, so a close of a file not written costs no call
 * to krgd (a create/close pair: two round trips fewer). Never loses a
 * mark: a slot wanted by two files becomes DIRTY_ANY for good, and every
 * file that hashes there is flushed as before. */
#define DIRTY_SLOTS 4096
#define DIRTY_ANY UINT64_MAX
static uint64_t dirty_ino[DIRTY_SLOTS];
static pthread_mutex_t dirty_lock = PTHREAD_MUTEX_INITIALIZER;

static void dirty_mark(uint64_t ino)
{
	uint64_t *s = &dirty_ino[ino % DIRTY_SLOTS];
	pthread_mutex_lock(&dirty_lock);
	*s = *s == 0 || *s == ino ? ino : DIRTY_ANY;
	pthread_mutex_unlock(&dirty_lock);
}

/* Before a flush: was it written? Clears its mark (a write that comes
 * meanwhile marks it again). */
static bool dirty_take(uint64_t ino)
{
	uint64_t *s = &dirty_ino[ino % DIRTY_SLOTS];
	pthread_mutex_lock(&dirty_lock);
	bool d = *s == ino || *s == DIRTY_ANY;
	if (*s == ino)
		*s = 0;
	pthread_mutex_unlock(&dirty_lock);
	return d;
}

static void k_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Write w = KRG__KDFS__WRITE__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_WRITE;
	r.write = &w;
	w.ino = ino;
	w.offset = (uint64_t)off;
	w.data.data = (uint8_t *)buf;
	w.data.len = size;
	dirty_mark(ino); /* before the call: a flush after it must publish */
	int st = call(req, &r, &rep);
	if (st < 0)
		fuse_reply_err(req, -st);
	else
		fuse_reply_write(req, rep->written);
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static int flush_ino(fuse_req_t req, fuse_ino_t ino)
{
	if (!dirty_take(ino))
		return 0;
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	r.req_case = KRG__KDFS__REQUEST__REQ_FLUSH;
	r.flush = ino;
	Krg__Kdfs__Reply *rep = NULL;
	int st = call(req, &r, &rep);
	if (st == 0 && rep->attr && rep->has_prev_ctime_ns)
		cache_extended(ino, rep->prev_ctime_ns, rep->attr->ctime_ns);
	if (st < 0)
		dirty_mark(ino); /* not published: the next flush tries again */
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
	return st;
}

static void release_locks(fuse_req_t req, uint64_t ino, uint64_t owner, uint64_t fh, bool flock);

static void k_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* POSIX: any close of the file by a lock's owner releases it. */
	release_locks(req, ino, fi->lock_owner, 0, false);
	reply_status(req, flush_ino(req, ino));
}

static void k_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* The last close of an open file: its flock and OFD locks go. */
	release_locks(req, ino, 0, fi->fh, true);
	release_locks(req, ino, 0, fi->fh, false);
	reply_status(req, flush_ino(req, ino));
}

/* fsync and fdatasync alike: the size is published on the log (durable
 * there: raft's own fsync) and every replica of every chunk is on its
 * node's stable storage before the call returns. */
static void k_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	r.req_case = KRG__KDFS__REQUEST__REQ_FSYNC;
	r.fsync = ino;
	reply_status(req, call(req, &r, NULL));
}

static void k_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	char *buf = calloc(1, size);
	size_t used = 0;
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	/* Offsets: 1 after ".", 2 after "..", 2+k after the store's entry k. */
	for (; off < 2; off++) {
		struct stat st = { .st_ino = off == 0 ? ino : FUSE_ROOT_ID, .st_mode = S_IFDIR };
		size_t n = fuse_add_direntry(req, buf + used, size - used, off == 0 ? "." : "..", &st, off + 1);
		if (n > size - used)
			goto out;
		used += n;
	}
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Readdir rd = KRG__KDFS__READDIR__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_READDIR;
	r.readdir = &rd;
	rd.ino = ino;
	rd.offset = (uint64_t)off - 2;
	rd.max = (uint32_t)(size / 32 + 1);
	int e = call(req, &r, &rep);
	if (e < 0) {
		free(buf);
		return (void)fuse_reply_err(req, -e);
	}
	for (size_t i = 0; i < rep->n_entries; i++) {
		struct stat st = { .st_ino = rep->entries[i]->ino, .st_mode = rep->entries[i]->mode };
		size_t n = fuse_add_direntry(req, buf + used, size - used, rep->entries[i]->name, &st,
					     (off_t)rep->entries[i]->next + 2);
		if (n > size - used)
			break;
		used += n;
	}
	krg__kdfs__reply__free_unpacked(rep, NULL);
out:
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void k_statfs(fuse_req_t req, fuse_ino_t ino)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_STATFS;
	r.statfs = true;
	int e = call(req, &r, &rep);
	if (e < 0 || !rep->statfs) {
		fuse_reply_err(req, e < 0 ? -e : EIO);
	} else {
		struct statvfs sv = { 0 };
		sv.f_bsize = sv.f_frsize = 4096;
		sv.f_blocks = rep->statfs->blocks;
		sv.f_bfree = sv.f_bavail = rep->statfs->bfree;
		sv.f_files = rep->statfs->files + 1000000;
		sv.f_ffree = sv.f_favail = 1000000;
		sv.f_namemax = KDFS_NAME_MAX;
		fuse_reply_statfs(req, &sv);
	}
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

/* ---- extended attributes ---- */

static void k_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetXattr sx = KRG__KDFS__SET_XATTR__INIT;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return (void)fuse_reply_err(req, EINVAL);
	/* POSIX ACLs would need the kernel to enforce them (FUSE_CAP_POSIX_ACL). */
	if (!strncmp(name, "system.", 7))
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	op.op_case = KRG__KDFS__OP__OP_SETXATTR;
	op.setxattr = &sx;
	sx.ino = ino;
	sx.name = (char *)name;
	sx.value.data = (uint8_t *)value;
	sx.value.len = size;
	sx.has_flags = true;
	sx.flags = (uint32_t)flags;
	reply_status(req, op_call(req, &op, NULL));
}

static void get_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Getxattr g = KRG__KDFS__GETXATTR__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	if (name) {
		r.req_case = KRG__KDFS__REQUEST__REQ_GETXATTR;
		r.getxattr = &g;
		g.name = (char *)name;
	} else {
		r.req_case = KRG__KDFS__REQUEST__REQ_LISTXATTR;
		r.listxattr = &g;
	}
	g.ino = ino;
	g.size = (uint32_t)size;
	int st = call(req, &r, &rep);
	if (st < 0)
		fuse_reply_err(req, -st);
	else if (size == 0)
		fuse_reply_xattr(req, rep->xattr_size);
	else
		fuse_reply_buf(req, (const char *)rep->data.data, rep->has_data ? rep->data.len : 0);
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static void k_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (!strncmp(name, "system.", 7))
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	get_xattr(req, ino, name, size);
}

static void k_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	get_xattr(req, ino, NULL, size);
}

static void k_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__RemoveXattr rx = KRG__KDFS__REMOVE_XATTR__INIT;
	if (!strncmp(name, "system.", 7))
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	op.op_case = KRG__KDFS__OP__OP_REMOVEXATTR;
	op.removexattr = &rx;
	rx.ino = ino;
	rx.name = (char *)name;
	reply_status(req, op_call(req, &op, NULL));
}

/* ---- fallocate ----
 * Chunks are sparse files, so a hole costs nothing and reads as zeros:
 * allocating is making the size cover the range (space is not reserved:
 * a later write can still meet ENOSPC). Punching and zeroing write zeros
 * through the replicas, so every replica agrees. The modes tmpfs and ext4
 * share; the others (collapse, insert, unshare) are EOPNOTSUPP. */

static int write_zeros(fuse_req_t req, fuse_ino_t ino, uint64_t off, uint64_t end)
{
	static const uint8_t zeros[1 << 20];
	while (off < end) {
		Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
		Krg__Kdfs__Write w = KRG__KDFS__WRITE__INIT;
		r.req_case = KRG__KDFS__REQUEST__REQ_WRITE;
		r.write = &w;
		w.ino = ino;
		w.offset = off;
		w.data.data = (uint8_t *)zeros;
		w.data.len = (size_t)(end - off < sizeof(zeros) ? end - off : sizeof(zeros));
		dirty_mark(ino);
		int st = call(req, &r, NULL);
		if (st < 0)
			return st;
		off += w.data.len;
	}
	return 0;
}

static void k_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			struct fuse_file_info *fi)
{
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	if (offset < 0 || length <= 0)
		return (void)fuse_reply_err(req, EINVAL);
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_GETATTR;
	r.getattr = ino;
	int st = call(req, &r, &rep);
	if (st < 0 || !rep->attr) {
		if (rep)
			krg__kdfs__reply__free_unpacked(rep, NULL);
		return (void)fuse_reply_err(req, st < 0 ? -st : EIO);
	}
	uint64_t size = rep->attr->size, end = (uint64_t)offset + (uint64_t)length;
	krg__kdfs__reply__free_unpacked(rep, NULL);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		cache_forget(ino); /* the zeros go to the replicas, not through the pages */
		st = write_zeros(req, ino, (uint64_t)offset, end < size ? end : size);
	}
	if (st == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && end > size) {
		Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
		Krg__Kdfs__Extend ex = KRG__KDFS__EXTEND__INIT;
		op.op_case = KRG__KDFS__OP__OP_EXTEND;
		op.extend = &ex;
		ex.ino = ino;
		ex.size = end;
		st = op_call(req, &op, NULL);
	}
	reply_status(req, st);
}

/* ---- locks: cluster-wide, in the metadata store (meta_lock.c) ----
 * The kernel forwards fcntl, OFD and flock locks here. It leaves their
 * release to us: fcntl locks at every close of the file by their owner
 * (flush), flock and OFD locks at the last close of the open file
 * (release). Only owners that took a lock are remembered, so a close
 * costs a log entry only when there is something to release. */

struct held {
	struct held *next;
	uint64_t ino, owner, fh;
	bool flock;
};
static struct held *held;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

static void held_add(uint64_t ino, uint64_t owner, uint64_t fh, bool flock)
{
	pthread_mutex_lock(&held_lock);
	for (struct held *h = held; h; h = h->next)
		if (h->ino == ino && h->owner == owner && h->fh == fh && h->flock == flock) {
			pthread_mutex_unlock(&held_lock);
			return;
		}
	struct held *h = calloc(1, sizeof(*h));
	if (h) {
		*h = (struct held){ held, ino, owner, fh, flock };
		held = h;
	}
	pthread_mutex_unlock(&held_lock);
}

/* Forget (and count) what matches: by owner, or (fh != 0) by open file. */
static int held_take(uint64_t ino, uint64_t owner, uint64_t fh, bool flock, uint64_t *owners, int max)
{
	int n = 0;
	pthread_mutex_lock(&held_lock);
	for (struct held **pp = &held; *pp;) {
		struct held *h = *pp;
		bool match = h->ino == ino && h->flock == flock && (fh ? h->fh == fh : h->owner == owner);
		if (!match) {
			pp = &h->next;
			continue;
		}
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= owners[i] == h->owner;
		if (!dup && n < max)
			owners[n++] = h->owner;
		*pp = h->next;
		free(h);
	}
	pthread_mutex_unlock(&held_lock);
	return n;
}

static int drop_locks(fuse_req_t req, uint64_t ino, uint64_t owner, bool flock)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__DropLocks d = KRG__KDFS__DROP_LOCKS__INIT;
	op.op_case = KRG__KDFS__OP__OP_DROPLOCKS;
	op.droplocks = &d;
	d.has_ino = d.has_owner = d.has_flock = true;
	d.ino = ino;
	d.owner = owner;
	d.flock = flock;
	return op_call(req, &op, NULL);
}

static void release_locks(fuse_req_t req, uint64_t ino, uint64_t owner, uint64_t fh, bool flock)
{
	uint64_t owners[32];
	int n = held_take(ino, owner, fh, flock, owners, 32);
	for (int i = 0; i < n; i++)
		drop_locks(req, ino, owners[i], flock);
}

static void to_range(Krg__Kdfs__LockRange *l, uint64_t owner, const struct flock *fl, bool flock)
{
	l->owner = owner;
	l->pid = fl->l_pid > 0 ? (uint32_t)fl->l_pid : 0;
	l->type = (uint32_t)fl->l_type;
	l->start = (uint64_t)fl->l_start;
	l->end = fl->l_len > 0 ? (uint64_t)(fl->l_start + fl->l_len - 1) : UINT64_MAX;
	l->has_flock = true;
	l->flock = flock;
}

/* Take or release; a conflict waits (sleep) until the holder lets go or
 * the caller is interrupted, else is EAGAIN. */
static int set_lock(fuse_req_t req, fuse_ino_t ino, uint64_t owner, uint64_t fh, const struct flock *fl, bool flock,
		    bool sleep)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__SetLock sl = KRG__KDFS__SET_LOCK__INIT;
	Krg__Kdfs__LockRange lr = KRG__KDFS__LOCK_RANGE__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETLOCK;
	op.setlock = &sl;
	sl.ino = ino;
	sl.lock = &lr;
	to_range(&lr, owner, fl, flock);
	if (fl->l_type != F_UNLCK)
		held_add(ino, owner, fh, flock);
	for (useconds_t wait = 2000;; wait = wait < 100000 ? wait * 2 : wait) {
		int st = op_call(req, &op, NULL);
		if (st != -EBUSY)
			return st;
		if (!sleep)
			return -EAGAIN;
		if (fuse_req_interrupted(req))
			return -EINTR;
		usleep(wait);
	}
}

static void k_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	Krg__Kdfs__Request r = KRG__KDFS__REQUEST__INIT;
	Krg__Kdfs__SetLock g = KRG__KDFS__SET_LOCK__INIT;
	Krg__Kdfs__LockRange lr = KRG__KDFS__LOCK_RANGE__INIT;
	Krg__Kdfs__Reply *rep = NULL;
	r.req_case = KRG__KDFS__REQUEST__REQ_GETLK;
	r.getlk = &g;
	g.ino = ino;
	g.lock = &lr;
	to_range(&lr, fi->lock_owner, lock, false);
	int st = call(req, &r, &rep);
	if (st < 0 || !rep->lock) {
		fuse_reply_err(req, st < 0 ? -st : EIO);
	} else {
		struct flock out = *lock;
		out.l_type = (short)rep->lock->type;
		if (rep->lock->type != F_UNLCK) {
			out.l_start = (off_t)rep->lock->start;
			out.l_len = rep->lock->end == UINT64_MAX ? 0 : (off_t)(rep->lock->end - rep->lock->start + 1);
			out.l_pid = (pid_t)rep->lock->pid; /* on the holder's node */
		}
		fuse_reply_lock(req, &out);
	}
	if (rep)
		krg__kdfs__reply__free_unpacked(rep, NULL);
}

static void k_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	reply_status(req, set_lock(req, ino, fi->lock_owner, fi->fh, lock, false, sleep != 0));
}

static void k_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct flock fl = { .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int how = op & ~LOCK_NB;
	fl.l_type = how == LOCK_SH ? F_RDLCK : how == LOCK_EX ? F_WRLCK : F_UNLCK;
	if (how != LOCK_SH && how != LOCK_EX && how != LOCK_UN)
		return (void)fuse_reply_err(req, EINVAL);
	/* flock converts a held lock: let the old one go first, as Linux. */
	reply_status(req, set_lock(req, ino, fi->lock_owner, fi->fh, &fl, true, !(op & LOCK_NB)));
}

/* Every lock of this node's earlier client is stale: its mount is gone. */
static void *drop_stale_locks(void *arg)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__DropLocks d = KRG__KDFS__DROP_LOCKS__INIT;
	op.op_case = KRG__KDFS__OP__OP_DROPLOCKS;
	op.droplocks = &d; /* node: krgd fills in its own */
	op_call(NULL, &op, NULL);
	return NULL;
}

static void k_init(void *data, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_POSIX_LOCKS)
		conn->want |= FUSE_CAP_POSIX_LOCKS;
	if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	/* Truncation goes through setattr, where krgd cuts the replicas first. */
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
}

static const struct fuse_lowlevel_ops ops = {
	.init = k_init,
	.lookup = k_lookup,
	.forget = k_forget,
	.forget_multi = k_forget_multi,
	.getattr = k_getattr,
	.setattr = k_setattr,
	.readlink = k_readlink,
	.mknod = k_mknod,
	.mkdir = k_mkdir,
	.symlink = k_symlink,
	.unlink = k_unlink,
	.rmdir = k_rmdir,
	.rename = k_rename,
	.link = k_link,
	.open = k_open,
	.read = k_read,
	.write = k_write,
	.flush = k_flush,
	.release = k_release,
	.fsync = k_fsync,
	.readdir = k_readdir,
	.statfs = k_statfs,
	.create = k_create,
	.setxattr = k_setxattr,
	.getxattr = k_getxattr,
	.listxattr = k_listxattr,
	.removexattr = k_removexattr,
	.fallocate = k_fallocate,
	.getlk = k_getlk,
	.setlk = k_setlk,
	.flock = k_flock,
};

int main(int argc, char **argv)
{
	if (argc != 4 || strcmp(argv[1], "--fd")) {
		fprintf(stderr, "usage: krg-kdfs --fd FD MOUNTPOINT (started by krgd; see docs/kdfs.md)\n");
		return 2;
	}
	K.fd = atoi(argv[2]);
	const char *mnt = argv[3];
	/* A FUSE server that the kernel's OOM killer picks leaves ENOTCONN
	 * for every process of the node: be the last it picks. */
	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	if (f) {
		fputs("-900", f);
		fclose(f);
	}
	char *fargv[] = { "krg-kdfs", "-o", "default_permissions,allow_other,fsname=kdfs,subtype=kdfs", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	K.se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!K.se) {
		fprintf(stderr, "krg-kdfs: cannot create the FUSE session\n");
		return 1;
	}
	if (fuse_set_signal_handlers(K.se) < 0 || fuse_session_mount(K.se, mnt) < 0) {
		fprintf(stderr, "krg-kdfs: cannot mount %s\n", mnt);
		fuse_session_destroy(K.se);
		return 1;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, reader, NULL) != 0) {
		fuse_session_unmount(K.se);
		fuse_session_destroy(K.se);
		return 1;
	}
	pthread_detach(th);
	if (pthread_create(&th, NULL, drop_stale_locks, NULL) == 0)
		pthread_detach(th);
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	int r = fuse_session_loop_mt(K.se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(K.se);
	fuse_remove_signal_handlers(K.se);
	fuse_session_destroy(K.se);
	return r < 0 ? 1 : 0;
}
