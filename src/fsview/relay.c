/* relay.c — unix sockets bound at home, reached from a node's view
 * (docs/fsview.md, "Unix sockets").
 *
 * A socket is a kernel object of the node that bound it: a connect() on
 * the node to home's socket file (forwarded as a file) would reach no
 * listener. So the view shows such a file as a symlink to a relay socket
 * of this client, bound in a tmpfs private to the view's mount namespace
 * (RELAY_DIR, the view's user's only). The kernel follows the symlink on
 * connect/sendto; the relay accepts, has home's server connect to the
 * real path as the user (home checks the permission), and carries the
 * bytes or messages both ways, one OP_SOCK_SEND / OP_SOCK_RECV per
 * message, so datagram and seqpacket boundaries are kept. A datagram
 * relay carries what is sent to home's socket; answers to the sender's
 * own address are not carried back (docs/fsview.md). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "fsview/fsview-int.h"
#include "fsview/wire.h"

struct relay {
	struct relay *next;
	uint64_t ino;              /* home's socket file */
	uint32_t type;
	char home[PATH_MAX];
	int fd;
};

static struct {
	pthread_mutex_t lock;
	struct relay *list;
	bool ready;                /* RELAY_DIR is our tmpfs */
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

int fsv_relay_setup(uid_t uid, gid_t gid)
{
	char opts[64];
	snprintf(opts, sizeof(opts), "mode=0700,uid=%u,gid=%u,size=64k", (unsigned)uid, (unsigned)gid);
	/* The directory is made on the node (an empty one, left there); the
	 * tmpfs on it is this namespace's only, gone with the view. */
	if ((mkdir(FSV_RELAY_DIR, 0755) < 0 && errno != EEXIST) ||
	    mount("krg-fsview-relay", FSV_RELAY_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return -errno;
	R.ready = true;
	return 0;
}

size_t fsv_relay_name(uint64_t ino, uint32_t type, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/s%llu-%u", FSV_RELAY_DIR, (unsigned long long)ino, type);
}

static int sock_call(Krg__Fsview__Op op, uint64_t fh, const void *data, size_t n, uint32_t flags,
		     Krg__Fsview__Reply **rep)
{
	Krg__Fsview__Request q = KRG__FSVIEW__REQUEST__INIT;
	q.op = op;
	q.has_fh = true;
	q.fh = fh;
	if (data) {
		q.has_data = true;
		q.data.data = (uint8_t *)data;
		q.data.len = n;
	} else if (op == KRG__FSVIEW__OP__OP_SOCK_RECV) {
		q.has_size = true;
		q.size = n;
	}
	q.has_flags = flags != 0;
	q.flags = flags;
	Krg__Fsview__Reply *r = NULL;
	int e = fsv_call(&q, &r);
	if (e == 0 && rep)
		*rep = r;
	else if (r)
		krg__fsview__reply__free_unpacked(r, NULL);
	return e;
}

static int home_connect(const struct relay *rl, uint64_t *fh)
{
	Krg__Fsview__Request q = KRG__FSVIEW__REQUEST__INIT;
	q.op = KRG__FSVIEW__OP__OP_SOCK_CONNECT;
	q.path = (char *)rl->home;
	q.has_flags = true;
	q.flags = rl->type;
	Krg__Fsview__Reply *r;
	int e = fsv_call(&q, &r);
	if (e < 0)
		return e;
	e = r->has_fh ? 0 : -EIO;
	*fh = r->fh;
	krg__fsview__reply__free_unpacked(r, NULL);
	return e;
}

/* Every byte of a stream; a message whole. */
static int send_home(uint64_t fh, const char *p, size_t n, bool stream)
{
	do {
		Krg__Fsview__Reply *r;
		int e = sock_call(KRG__FSVIEW__OP__OP_SOCK_SEND, fh, p, n, 0, &r);
		if (e < 0)
			return e;
		size_t w = r->has_size && r->size <= n ? r->size : 0;
		krg__fsview__reply__free_unpacked(r, NULL);
		if (!w && n)
			return -EIO;
		p += w;
		n -= w;
	} while (stream && n);
	return 0;
}

static void release_home(uint64_t fh)
{
	sock_call(KRG__FSVIEW__OP__OP_RELEASE, fh, NULL, 0, 0, NULL);
}

/* ---- a connection (stream, seqpacket): two threads, one per way ---- */

struct conn {
	struct relay *rl;
	int fd;                    /* the accepted local end */
	uint64_t fh;               /* home's connected socket */
	atomic_int refs;
	atomic_bool up_done;
};

static void conn_put(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		release_home(c->fh);
		close(c->fd);
		free(c);
	}
}

/* Home -> the local end, until home's end of stream or an error. */
static void *conn_down(void *arg)
{
	struct conn *c = arg;
	for (;;) {
		Krg__Fsview__Reply *r;
		int e = sock_call(KRG__FSVIEW__OP__OP_SOCK_RECV, c->fh, NULL, FSV_MAX_IO, 0, &r);
		if (e == -EAGAIN) {
			/* Quiet: stop if the local side is gone both ways. */
			struct pollfd p = { .fd = c->fd, .events = 0 };
			if (atomic_load(&c->up_done) && poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
				break;
			continue;
		}
		if (e < 0) {
			shutdown(c->fd, SHUT_RDWR);
			break;
		}
		size_t n = r->has_data ? r->data.len : 0;
		if (!n) {
			krg__fsview__reply__free_unpacked(r, NULL);
			shutdown(c->fd, SHUT_WR); /* home's end of stream */
			break;
		}
		ssize_t w = 0;
		for (size_t at = 0; at < n; at += (size_t)w) {
			w = send(c->fd, r->data.data + at, n - at, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				break;
		}
		krg__fsview__reply__free_unpacked(r, NULL);
		if (w < 0)
			break;
	}
	conn_put(c);
	return NULL;
}

/* The local end -> home; then the other way in its own thread. */
static void *conn_up(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc(FSV_MAX_IO);
	int e = buf ? home_connect(c->rl, &c->fh) : -ENOMEM;
	if (e < 0) {
		/* Home refused (nobody listens any more, permission): the
		 * local end is closed, the client sees ECONNRESET/EOF. */
		free(buf);
		close(c->fd);
		free(c);
		return NULL;
	}
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	atomic_store(&c->refs, 2);
	if (pthread_create(&t, &a, conn_down, c) != 0)
		atomic_store(&c->refs, 1);
	pthread_attr_destroy(&a);
	bool stream = c->rl->type == SOCK_STREAM;
	for (;;) {
		ssize_t n = recv(c->fd, buf, FSV_MAX_IO, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0) /* the client's end of stream: home's too */
				sock_call(KRG__FSVIEW__OP__OP_SOCK_SEND, c->fh, NULL, 0, 1, NULL);
			break;
		}
		if (send_home(c->fh, buf, (size_t)n, stream) < 0) {
			shutdown(c->fd, SHUT_RDWR);
			break;
		}
	}
	free(buf);
	atomic_store(&c->up_done, true);
	conn_put(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct relay *rl = arg;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(rl->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
				if (errno != EINTR && errno != ECONNABORTED)
					usleep(100000);
				continue;
			}
			break;
		}
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t t;
		if (!c || (c->rl = rl, c->fd = fd, pthread_create(&t, &a, conn_up, c) != 0)) {
			close(fd);
			free(c);
		}
	}
	pthread_attr_destroy(&a);
	return NULL;
}

/* Datagrams sent to the relay go to home's socket, one by one. */
static void *dgram_loop(void *arg)
{
	struct relay *rl = arg;
	char *buf = malloc(FSV_MAX_IO);
	uint64_t fh = 0;
	while (buf) {
		ssize_t n = recv(rl->fd, buf, FSV_MAX_IO, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!fh && home_connect(rl, &fh) < 0) {
			fh = 0;
			continue; /* nobody bound at home now: dropped, as a full queue would */
		}
		if (send_home(fh, buf, (size_t)n, false) < 0) {
			release_home(fh);
			fh = 0;
		}
	}
	free(buf);
	return NULL;
}

int fsv_relay_get(const char *home, uint64_t ino, uint32_t type, uid_t uid, gid_t gid)
{
	if (!R.ready)
		return -EOPNOTSUPP;
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
		return -EINVAL;
	pthread_mutex_lock(&R.lock);
	struct relay *rl = R.list;
	while (rl && !(rl->ino == ino && rl->type == type))
		rl = rl->next;
	int e = 0;
	if (!rl) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		fsv_relay_name(ino, type, sa.sun_path, sizeof(sa.sun_path));
		rl = calloc(1, sizeof(*rl));
		int fd = rl ? socket(AF_UNIX, (int)type | SOCK_CLOEXEC, 0) : -1;
		pthread_t t;
		if (!rl || fd < 0 || (unlink(sa.sun_path), bind(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 ||
		    chown(sa.sun_path, uid, gid) < 0 || chmod(sa.sun_path, 0600) < 0 ||
		    (type != SOCK_DGRAM && listen(fd, 128) < 0)) {
			e = -errno;
		} else {
			snprintf(rl->home, sizeof(rl->home), "%s", home);
			rl->ino = ino;
			rl->type = type;
			rl->fd = fd;
			if (pthread_create(&t, NULL, type == SOCK_DGRAM ? dgram_loop : accept_loop, rl) != 0)
				e = -EAGAIN;
			else
				pthread_detach(t);
		}
		if (e < 0) {
			if (fd >= 0)
				close(fd);
			unlink(sa.sun_path);
			free(rl);
		} else {
			rl->next = R.list;
			R.list = rl;
		}
	}
	pthread_mutex_unlock(&R.lock);
	return e;
}
