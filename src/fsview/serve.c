/* serve.c — `krg-fsview --serve`: the home side of a file view.
 *
 * krgd forks it per (node, uid, gid) that has processes elsewhere, already
 * dropped to that user's credentials (the user's groups at home, as a
 * login would have them), so every path operation here is checked by the
 * home kernel exactly as a local call by that user would be: nothing in
 * this process decides permissions. Requests are served by a few threads
 * (one blocked on a FIFO's open does not stop the others); each takes the
 * next frame, does the call, writes the Reply. Open files are this
 * process's descriptors, named by number (fh). Writes are done in the
 * order they arrived (the node sends them without waiting for each
 * other's answers: client.c's write-behind), other calls as they come. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/un.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "fsview/fsview-int.h"
#include "fsview/wire.h"
#include "lib/fileio.h"
#include "proto/fsview.pb-c.h"

#define SERVE_THREADS 4
/* A socket's OP_SOCK_RECV waits at home up to this long, then answers
 * -EAGAIN (the node asks again), so a quiet connection never reaches the
 * transport's timeout. Each waiting call holds a thread: more are started
 * when none is idle, up to MAX_THREADS. */
#define SOCK_WAIT_MS 5000
#define MAX_THREADS 64

static struct {
	int fd;
	uint32_t gen;              /* random per server: in every fh it hands out */
	pthread_mutex_t rlock, wlock;
	atomic_int idle, threads;
	/* WRITEs in arrival order: tickets handed out under rlock */
	pthread_mutex_t olock;
	pthread_cond_t oturn;
	uint64_t wnext, wdone;
} S = { .rlock = PTHREAD_MUTEX_INITIALIZER, .wlock = PTHREAD_MUTEX_INITIALIZER, .olock = PTHREAD_MUTEX_INITIALIZER,
	.oturn = PTHREAD_COND_INITIALIZER };

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void fill_stat(Krg__Fsview__Stat *o, const struct stat *st)
{
	krg__fsview__stat__init(o);
	o->ino = st->st_ino;
	o->mode = st->st_mode;
	o->nlink = (uint32_t)st->st_nlink;
	o->uid = st->st_uid;
	o->gid = st->st_gid;
	o->rdev = st->st_rdev;
	o->size = st->st_size;
	o->blocks = st->st_blocks;
	o->atime_ns = ts_ns(st->st_atim);
	o->mtime_ns = ts_ns(st->st_mtim);
	o->ctime_ns = ts_ns(st->st_ctim);
	o->blksize = (uint32_t)st->st_blksize;
}

/* A file handle is gen << 32 | fd. The gen makes a handle of a previous
 * server (home's krgd restarted, the node's client did not) fail with
 * EBADF instead of naming whatever file this one has at that number. It
 * must be one of ours and not the channel to krgd. */
static int fh_ok(const Krg__Fsview__Request *q)
{
	if (!q->has_fh || q->fh >> 32 != S.gen)
		return -1;
	int fd = (int)(q->fh & 0x3fffffff);
	return fd > 2 && fd != S.fd && (uint64_t)fd == (q->fh & 0xffffffffu) ? fd : -1;
}

/* The type of the socket bound at home to the socket file p (a listening
 * stream or seqpacket socket, or a datagram socket), 0 if none: from
 * /proc/net/unix, which names every bound socket of home's network
 * namespace by the path it was bound to. Only for socket files (rare). */
static uint32_t bound_type(const char *p)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[PATH_MAX + 128];
	uint32_t type = 0;
	while (f && !type && fgets(line, sizeof(line), f)) {
		unsigned flags, t, st;
		int at = 0;
		if (sscanf(line, "%*x: %*x %*x %x %x %x %*u %n", &flags, &t, &st, &at) != 3 || !at)
			continue;
		char *path = line + at;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path, p))
			continue;
		if (t == SOCK_DGRAM || ((t == SOCK_STREAM || t == SOCK_SEQPACKET) && (flags & 0x10000 /* __SO_ACCEPTCON */)))
			type = t;
	}
	if (f)
		fclose(f);
	return type;
}

static int sock_connect(const char *p, uint32_t type, Krg__Fsview__Reply *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
		return -EINVAL;
	if (strlen(p) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, p);
	int fd = socket(AF_UNIX, (int)type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	r->has_fh = true;
	r->fh = (uint64_t)S.gen << 32 | (uint64_t)fd;
	return 0;
}

/* One message or a stream's bytes, waiting up to SOCK_WAIT_MS. */
static int sock_recv(int fd, uint64_t size, Krg__Fsview__Reply *r, char **data_out)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, SOCK_WAIT_MS);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EAGAIN;
	size_t cap = size > FSV_MAX_IO ? FSV_MAX_IO : size ? size : 1;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	ssize_t got = recv(fd, b, cap, MSG_DONTWAIT);
	if (got < 0) {
		int e = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		free(b);
		return e;
	}
	*data_out = b;
	r->has_data = true;
	r->data.data = (uint8_t *)b;
	r->data.len = (size_t)got;
	return 0;
}

static struct timespec to_ts(int64_t ns)
{
	if (ns == UTIME_NOW || ns == UTIME_OMIT)
		return (struct timespec){ 0, (long)ns };
	return (struct timespec){ ns / 1000000000, ns % 1000000000 };
}

/* A path must be absolute: it is the process's own name for the file. */
static int do_op(const Krg__Fsview__Request *q, Krg__Fsview__Reply *r, Krg__Fsview__Stat *st_out, struct statvfs *sv,
		 char **data_out)
{
	const char *p = q->path, *p2 = q->path2;
	struct stat st;
	int fd = fh_ok(q);
	if (q->op != KRG__FSVIEW__OP__OP_READ && q->op != KRG__FSVIEW__OP__OP_WRITE && q->op != KRG__FSVIEW__OP__OP_RELEASE &&
	    q->op != KRG__FSVIEW__OP__OP_FSYNC && q->op != KRG__FSVIEW__OP__OP_SOCK_SEND &&
	    q->op != KRG__FSVIEW__OP__OP_SOCK_RECV && !(q->has_fh && (q->op == KRG__FSVIEW__OP__OP_GETATTR ||
								 q->op == KRG__FSVIEW__OP__OP_TRUNCATE)) &&
	    (!p || p[0] != '/'))
		return -EINVAL;
	switch (q->op) {
	case KRG__FSVIEW__OP__OP_GETATTR:
		if ((q->has_fh ? (fd < 0 ? (errno = EBADF, -1) : fstat(fd, &st)) : lstat(p, &st)) < 0)
			return -errno;
		fill_stat(st_out, &st);
		if (!q->has_fh && S_ISSOCK(st.st_mode) && (st_out->sock_type = bound_type(p)))
			st_out->has_sock_type = true;
		r->st = st_out;
		return 0;
	case KRG__FSVIEW__OP__OP_READLINK: {
		char *b = malloc(PATH_MAX);
		ssize_t n = b ? readlink(p, b, PATH_MAX) : (errno = ENOMEM, -1);
		if (n < 0) {
			int e = errno;
			free(b);
			/* A socket bound at home is a symlink on the node (to its
			 * relay): say so, with its type, instead of EINVAL. */
			uint32_t t = e == EINVAL && lstat(p, &st) == 0 && S_ISSOCK(st.st_mode) ? bound_type(p) : 0;
			if (t) {
				fill_stat(st_out, &st);
				st_out->sock_type = t;
				st_out->has_sock_type = true;
				r->st = st_out;
				return 0;
			}
			return -e;
		}
		*data_out = b;
		r->has_data = true;
		r->data.data = (uint8_t *)b;
		r->data.len = (size_t)n;
		return 0;
	}
	case KRG__FSVIEW__OP__OP_MKNOD:
		return mknod(p, (mode_t)q->mode, (dev_t)q->rdev) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_MKDIR:
		return mkdir(p, (mode_t)q->mode) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_UNLINK:
		return unlink(p) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_RMDIR:
		return rmdir(p) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_SYMLINK:
		return !p2 ? -EINVAL : symlink(p2, p) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_RENAME:
		return !p2 || p2[0] != '/' ? -EINVAL : renameat2(AT_FDCWD, p, AT_FDCWD, p2, q->flags) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_LINK:
		return !p2 || p2[0] != '/' ? -EINVAL : link(p, p2) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_CHMOD:
		return chmod(p, (mode_t)q->mode) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_CHOWN:
		return lchown(p, (uid_t)q->uid, (gid_t)q->gid) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_TRUNCATE:
		if (q->has_fh)
			return fd < 0 ? -EBADF : ftruncate(fd, (off_t)q->size) < 0 ? -errno : 0;
		return truncate(p, (off_t)q->size) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_OPEN:
	case KRG__FSVIEW__OP__OP_CREATE: {
		/* O_APPEND is kept: pwrite on it appends at home's end of file,
		 * whatever size this node's kernel believed. */
		int flags = (int)q->flags & ~(O_NOCTTY | O_CLOEXEC);
		int nfd = q->op == KRG__FSVIEW__OP__OP_CREATE ? open(p, flags | O_CREAT | O_CLOEXEC, (mode_t)q->mode)
							    : open(p, flags | O_CLOEXEC);
		if (nfd < 0)
			return -errno;
		r->has_fh = true;
		r->fh = (uint64_t)S.gen << 32 | (uint64_t)nfd;
		return 0;
	}
	case KRG__FSVIEW__OP__OP_READ: {
		size_t n = q->size > FSV_MAX_IO ? FSV_MAX_IO : q->size;
		char *b = malloc(n ? n : 1);
		if (!b)
			return -ENOMEM;
		ssize_t got = fd < 0 ? (errno = EBADF, -1) : pread(fd, b, n, q->offset);
		if (got < 0) {
			free(b);
			return -errno;
		}
		*data_out = b;
		r->has_data = true;
		r->data.data = (uint8_t *)b;
		r->data.len = (size_t)got;
		return 0;
	}
	case KRG__FSVIEW__OP__OP_WRITE: {
		ssize_t w = fd < 0 ? (errno = EBADF, -1) : pwrite(fd, q->data.data, q->data.len, q->offset);
		if (w < 0)
			return -errno;
		r->has_size = true;
		r->size = (uint64_t)w;
		return 0;
	}
	case KRG__FSVIEW__OP__OP_SOCK_CONNECT:
		return sock_connect(p, q->flags, r);
	case KRG__FSVIEW__OP__OP_SOCK_SEND: {
		if (fd < 0)
			return -EBADF;
		if (!q->has_data && (q->flags & 1))
			return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
		ssize_t w = send(fd, q->data.data, q->data.len, MSG_NOSIGNAL);
		if (w < 0)
			return -errno;
		r->has_size = true;
		r->size = (uint64_t)w;
		return 0;
	}
	case KRG__FSVIEW__OP__OP_SOCK_RECV:
		return fd < 0 ? -EBADF : sock_recv(fd, q->size, r, data_out);
	case KRG__FSVIEW__OP__OP_RELEASE:
		return fd < 0 ? -EBADF : close(fd) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_FSYNC:
		return fd < 0 ? -EBADF : ((q->flags & 1) ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_STATFS:
		if (statvfs(p, sv) < 0)
			return -errno;
		r->has_bsize = r->has_blocks = r->has_bfree = r->has_bavail = r->has_files = r->has_ffree = r->has_namemax = true;
		r->bsize = sv->f_bsize, r->blocks = sv->f_blocks, r->bfree = sv->f_bfree, r->bavail = sv->f_bavail;
		r->files = sv->f_files, r->ffree = sv->f_ffree, r->namemax = sv->f_namemax;
		return 0;
	case KRG__FSVIEW__OP__OP_ACCESS:
		return faccessat(AT_FDCWD, p, (int)q->mode, AT_EACCESS) < 0 ? -errno : 0;
	case KRG__FSVIEW__OP__OP_UTIMENS: {
		struct timespec ts[2] = { to_ts(q->atime_ns), to_ts(q->mtime_ns) };
		return utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	}
	default:
		return -EOPNOTSUPP;
	}
}

/* Every entry in one reply: directories of node-local trees are small. */
static int do_readdir(const char *p, Krg__Fsview__Reply *r)
{
	DIR *d = p && p[0] == '/' ? opendir(p) : (errno = EINVAL, NULL);
	if (!d)
		return -errno;
	size_t cap = 0, bytes = 0;
	struct dirent *e;
	int err = 0;
	while ((e = readdir(d))) {
		if (r->n_entries == cap) {
			cap = cap ? cap * 2 : 64;
			Krg__Fsview__Dirent **n = realloc(r->entries, cap * sizeof(*n));
			if (!n) {
				err = -ENOMEM;
				break;
			}
			r->entries = n;
		}
		Krg__Fsview__Dirent *x = malloc(sizeof(*x));
		char *name = strdup(e->d_name);
		if (!x || !name || (bytes += strlen(name) + 8) > FSV_MAX_FRAME / 2) {
			free(x);
			free(name);
			err = x && name ? -EOVERFLOW : -ENOMEM;
			break;
		}
		krg__fsview__dirent__init(x);
		x->name = name;
		x->type = e->d_type;
		r->entries[r->n_entries++] = x;
	}
	closedir(d);
	return err;
}

/* A read of a regular file answered with its data sent from the page
 * cache straight into the channel (sendfile: no copy through a buffer
 * of ours). false: not such a read, done the plain way (do_op). */
static bool read_sendfile(const Krg__Fsview__Request *q)
{
	int fd = fh_ok(q);
	struct stat st;
	if (q->op != KRG__FSVIEW__OP__OP_READ || fd < 0 || q->offset < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size <= q->offset)
		return false;
	uint64_t n = q->size > FSV_MAX_IO ? FSV_MAX_IO : q->size;
	if ((uint64_t)(st.st_size - q->offset) < n)
		n = (uint64_t)(st.st_size - q->offset);
	if (n <= FSV_SPLIT_MIN)
		return false;
	Krg__Fsview__Reply r = KRG__FSVIEW__REPLY__INIT;
	r.id = q->id;
	uint8_t out[64];
	size_t hl = krg__fsview__reply__pack(&r, out);
	hl += fsv_bytes_field(out + hl, 4 /* Reply.data */, n);
	pthread_mutex_lock(&S.wlock);
	int w = fsv_write_head(S.fd, out, hl, n) < 0 ? -1 : 0;
	off_t off = q->offset;
	uint64_t left = n;
	while (w == 0 && left) {
		ssize_t k = sendfile(S.fd, fd, &off, left);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* the file shrank since fstat, or failed: zeros follow */
		left -= (uint64_t)k;
	}
	/* The frame promised n bytes: a read racing a truncate gets zeros
	 * past the new end (as a mapping of it would), the stream stays whole. */
	static const uint8_t zero[4096];
	while (w == 0 && left) {
		size_t z = left < sizeof(zero) ? left : sizeof(zero);
		if (fsv_write_raw(S.fd, zero, z) < 0)
			w = -1;
		left -= z;
	}
	pthread_mutex_unlock(&S.wlock);
	if (w < 0)
		_exit(0);
	return true;
}

/* q was read and its ticket taken under rlock (serve_thread); a WRITE
 * done there already (done) has its count or -errno in written. */
static void serve_one(Krg__Fsview__Request *q, uint64_t ticket, bool done, ssize_t written)
{
	Krg__Fsview__Reply r = KRG__FSVIEW__REPLY__INIT;
	Krg__Fsview__Stat st;
	struct statvfs sv;
	char *data = NULL;
	r.id = q->id;
	if (read_sendfile(q)) {
		krg__fsview__request__free_unpacked(q, NULL);
		return;
	}
	bool ordered = q->op == KRG__FSVIEW__OP__OP_WRITE && !done;
	if (done) {
		r.err = written < 0 ? (int32_t)written : 0;
		r.has_size = written >= 0;
		r.size = written >= 0 ? (uint64_t)written : 0;
	} else if (ordered) {
		pthread_mutex_lock(&S.olock);
		while (S.wdone != ticket)
			pthread_cond_wait(&S.oturn, &S.olock);
		pthread_mutex_unlock(&S.olock);
	}
	if (!done)
		r.err = q->op == KRG__FSVIEW__OP__OP_READDIR ? do_readdir(q->path, &r) : do_op(q, &r, &st, &sv, &data);
	if (ordered) {
		pthread_mutex_lock(&S.olock);
		S.wdone++;
		pthread_cond_broadcast(&S.oturn);
		pthread_mutex_unlock(&S.olock);
	}
	/* A read's data goes after the packed rest as it is (wire.h). */
	ProtobufCBinaryData bulk = r.data;
	bool big = r.has_data && bulk.len > FSV_SPLIT_MIN;
	if (big)
		r.has_data = false;
	size_t n = krg__fsview__reply__get_packed_size(&r);
	uint8_t *out = malloc(n + 16);
	if (out) {
		krg__fsview__reply__pack(&r, out);
		if (big)
			n += fsv_bytes_field(out + n, 4 /* Reply.data */, bulk.len);
		pthread_mutex_lock(&S.wlock);
		int w = fsv_write_frame2(S.fd, out, n, big ? bulk.data : NULL, big ? bulk.len : 0);
		pthread_mutex_unlock(&S.wlock);
		if (w < 0)
			_exit(0);
	}
	free(out);
	free(data);
	for (size_t i = 0; i < r.n_entries; i++) {
		free(r.entries[i]->name);
		free(r.entries[i]);
	}
	free(r.entries);
	krg__fsview__request__free_unpacked(q, NULL);
}

static void *serve_thread(void *arg);

static void spawn_thread(void)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	atomic_fetch_add(&S.threads, 1);
	atomic_fetch_add(&S.idle, 1);
	if (pthread_create(&t, &a, serve_thread, NULL) != 0) {
		atomic_fetch_sub(&S.threads, 1);
		atomic_fetch_sub(&S.idle, 1);
	}
	pthread_attr_destroy(&a);
}

/* pipe: the reader's, for writes spliced into their file (write_in). */
static int splice_pipe[2] = { -1, -1 };

/* n bytes that are in splice_pipe, into fd at *off (advanced) by splice:
 * the file system copies them once, from the pages the channel received
 * them in. Where splice cannot (a file system without it), through a
 * buffer. Every byte leaves the pipe, whatever happens; the count
 * written. *err: the first error. */
static size_t pipe_to_file(int fd, off_t *off, size_t n, int *err)
{
	size_t done = 0;
	bool copy = false;
	while (n) {
		ssize_t w = -1;
		if (!*err && !copy) {
			w = splice(splice_pipe[0], NULL, fd, off, n, SPLICE_F_MOVE);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EINVAL) {
				copy = true;
				continue;
			}
			if (w <= 0)
				*err = w < 0 ? errno : EIO;
		}
		if (w <= 0) {
			/* Out of the pipe through a buffer: written if no
			 * error yet, else dropped. */
			static __thread uint8_t b[65536];
			ssize_t k = read(splice_pipe[0], b, n < sizeof(b) ? n : sizeof(b));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				_exit(0); /* our own pipe failed: nothing is in order any more */
			n -= (size_t)k;
			if (*err)
				continue;
			ssize_t p = pwrite(fd, b, (size_t)k, *off);
			if (p < 0)
				*err = errno;
			if (p > 0) {
				*off += p;
				done += (size_t)p;
			}
			if (p >= 0 && p < k)
				*err = EIO; /* short: the rest would leave a hole */
			continue;
		}
		n -= (size_t)w;
		done += (size_t)w;
	}
	return done;
}

/* A WRITE's data, pre (already read with its frame's head) and then rest
 * bytes still in the channel, written at off of fd, taking every byte
 * from the channel: socket -> pipe -> file by splice, one copy at home
 * instead of two (a read into a buffer, a pwrite of it). The count, or
 * -errno when nothing was written. */
static ssize_t write_in(int fd, off_t off, const uint8_t *pre, size_t npre, size_t rest)
{
	int err = 0;
	size_t done = 0;
	if (npre) {
		ssize_t p = pwrite(fd, pre, npre, off);
		if (p < 0)
			err = errno;
		else {
			done = (size_t)p;
			off += p;
			if ((size_t)p < npre)
				err = EIO;
		}
	}
	while (rest) {
		ssize_t k = splice(S.fd, NULL, splice_pipe[1], NULL, rest, SPLICE_F_MOVE);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(0); /* krgd closed the channel: the view is gone */
		rest -= (size_t)k;
		done += pipe_to_file(fd, &off, (size_t)k, &err);
	}
	return done ? (ssize_t)done : err ? -err : 0;
}

/* The next request (a write's data received into a buffer of its own,
 * not copied by the unpack; or written into its file at once, *written),
 * and its place among the writes. NULL: none to answer (krgd validated
 * it). */
static Krg__Fsview__Request *next_request(uint64_t *ticket, bool *inline_done, ssize_t *written)
{
	uint8_t *buf, *data = NULL;
	size_t got, total, hlen, doff;
	int r = fsv_read_frame_start(S.fd, 8 /* Request.data */, &buf, &got, &total, &hlen, &doff);
	if (r < 0)
		_exit(0); /* krgd closed the channel: the view is gone */
	Krg__Fsview__Request *q = krg__fsview__request__unpack(NULL, hlen, buf);
	int fd = -1;
	/* A big write to a file open without O_APPEND (splice refuses those;
	 * pwrite appends there) is written from the channel here, in its
	 * turn: every WRITE before it is done, as the tickets keep them. */
	if (r == 1 && q && !q->has_data && q->op == KRG__FSVIEW__OP__OP_WRITE && splice_pipe[0] >= 0 &&
	    (fd = fh_ok(q)) >= 0 && q->offset >= 0 && !(fcntl(fd, F_GETFL) & O_APPEND)) {
		uint64_t t = S.wnext++;
		pthread_mutex_lock(&S.olock);
		while (S.wdone != t)
			pthread_cond_wait(&S.oturn, &S.olock);
		pthread_mutex_unlock(&S.olock);
		*written = write_in(fd, (off_t)q->offset, buf + doff, got - doff, total - got);
		*inline_done = true;
		free(buf);
		pthread_mutex_lock(&S.olock);
		S.wdone++;
		pthread_cond_broadcast(&S.oturn);
		pthread_mutex_unlock(&S.olock);
		return q;
	}
	if (r == 1) {
		/* The bulk bytes into a buffer of their own. */
		data = malloc(total - doff);
		if (!data || krg_read_all(S.fd, data + (got - doff), total - got) < 0)
			_exit(0); /* the channel cannot be followed any more */
		memcpy(data, buf + doff, got - doff);
	}
	free(buf);
	if (!q || (data && q->has_data)) {
		free(data);
		if (q)
			krg__fsview__request__free_unpacked(q, NULL);
		return NULL;
	}
	if (data) {
		q->has_data = true;
		q->data.data = data; /* freed with q */
		q->data.len = total - doff;
	}
	if (q->op == KRG__FSVIEW__OP__OP_WRITE)
		*ticket = S.wnext++;
	return q;
}

static void *serve_thread(void *arg)
{
	for (;;) {
		uint64_t ticket = 0;
		bool done = false;
		ssize_t written = 0;
		pthread_mutex_lock(&S.rlock);
		Krg__Fsview__Request *q = next_request(&ticket, &done, &written);
		pthread_mutex_unlock(&S.rlock);
		if (!q)
			continue;
		/* The last idle thread took a call that may wait (a socket's
		 * recv, a FIFO's open): one more reads the next. */
		if (atomic_fetch_sub(&S.idle, 1) == 1 && atomic_load(&S.threads) < MAX_THREADS)
			spawn_thread();
		serve_one(q, ticket, done, written);
		atomic_fetch_add(&S.idle, 1);
	}
	return arg;
}

int fsv_serve_main(int fd)
{
	S.fd = fd;
	if (getrandom(&S.gen, sizeof(S.gen), 0) != sizeof(S.gen))
		S.gen = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	umask(0); /* the mode a request carries was already masked by the caller's umask */
	/* As large as this user may have it (fs.pipe-max-size): fewer
	 * splices per write. Without a pipe, writes go through buffers. */
	if (pipe2(splice_pipe, O_CLOEXEC) == 0)
		(void)fcntl(splice_pipe[0], F_SETPIPE_SZ, FSV_MAX_IO);
	else
		splice_pipe[0] = splice_pipe[1] = -1;
	for (int i = 1; i < SERVE_THREADS; i++)
		spawn_thread();
	atomic_fetch_add(&S.threads, 1);
	atomic_fetch_add(&S.idle, 1);
	serve_thread(NULL);
	return 0;
}
