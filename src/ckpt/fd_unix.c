/* ckpt_fd_unix.c — unix socketpairs with the data queued in them (a part of files.c, fd-int.h). */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/fd-int.h"
#include "lib/macro.h"

/* ---- unix socketpairs (SOCK_STREAM, SOCK_DGRAM), both ends in the
 * process: unnamed, not listening. The peer comes from sock_diag
 * (UNIX_DIAG_PEER); what is queued at each end is peeked (MSG_PEEK from
 * peek offset 0, the socket's own peek offset put back) through
 * pidfd_getfd. Restore: socketpair in the tracee, each end's queue sent
 * again from the other end, from krg. ---- */

static bool unix_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	if (!S_ISSOCK(st->st_mode))
		return false;
	int l = ckpt_fd_getfd_pid(pid, fd);
	if (l < 0)
		return false;
	int dom = 0, type = 0, acc = 1;
	socklen_t sl = sizeof(int);
	bool ok = !getsockopt(l, SOL_SOCKET, SO_DOMAIN, &dom, &sl) && dom == AF_UNIX && (sl = sizeof(int), !getsockopt(l, SOL_SOCKET, SO_TYPE, &type, &sl)) &&
		  (type == SOCK_STREAM || type == SOCK_DGRAM || type == SOCK_SEQPACKET) &&
		  (sl = sizeof(int), !getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl)) && !acc;
	close(l);
	return ok;
}

static int unix_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	int l = ckpt_fd_getfd_pid(pid, fd), type = 0;
	socklen_t sl = sizeof(type);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", pid, fd, strerror(-l));
	getsockopt(l, SOL_SOCKET, SO_TYPE, &type, &sl);
	out->has_ino = true;
	out->ino = st->st_ino;
	out->has_sock_type = true;
	out->sock_type = (uint32_t)type;
	/* A name matters to a socket nobody is connected to (a datagram
	 * socket others send to); one with a peer comes back as a pair. */
	int r = ckpt_unix_name_dump(pid, fd, l, st->st_ino, out, err);
	close(l);
	return r;
}

/* The inode of unix socket `ino`'s peer (0: none), or -errno. */
long long ckpt_fd_unix_peer_ino(uint64_t ino)
{
	struct ckpt_unix_diag d;
	int r = ckpt_unix_diag(ino, &d);
	return r < 0 ? r : (long long)d.peer_ino;
}

/* What is queued at socket `l`, not consumed: a stream's bytes, or datagrams. */
static int unix_peek(int l, Krg__Ckpt__Fd *e, struct ckpt_error *err)
{
	int old = -1, zero = 0, r = 0;
	socklen_t sl = sizeof(old);
	if (getsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &old, &sl) < 0 || setsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return ckpt_fail(err, errno, "fd %d: SO_PEEK_OFF: %s", e->fd, strerror(errno));
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		abort();
	for (unsigned i = 0; i < 100000; i++) {
		char cbuf[CMSG_SPACE(sizeof(int) * 64)];
		struct iovec iov = { buf, cap };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(l, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			r = ckpt_fail(err, errno, "fd %d: peeking at the queued data: %s", e->fd, strerror(errno));
			break;
		}
		bool fds = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				fds = true;
				for (int *p = (int *)CMSG_DATA(c); (uint8_t *)p < (uint8_t *)c + c->cmsg_len; p++)
					close(*p);
			}
		if (fds || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
			r = ckpt_fail(err, EOPNOTSUPP, "fd %d: unix socket with file descriptors (SCM_RIGHTS) or an oversized datagram in flight: not supported",
				      e->fd);
			break;
		}
		if (e->sock_type == SOCK_STREAM) {
			if (!n)
				break;
			e->data.data = realloc(e->data.data, e->data.len + (size_t)n);
			if (!e->data.data)
				abort();
			memcpy(e->data.data + e->data.len, buf, (size_t)n);
			e->data.len += (size_t)n;
			e->has_data = true;
		} else {
			e->packets = realloc(e->packets, (e->n_packets + 1) * sizeof(*e->packets));
			if (!e->packets)
				abort();
			ProtobufCBinaryData *d = &e->packets[e->n_packets++];
			d->len = (size_t)n;
			d->data = malloc((size_t)n + 1);
			if (!d->data)
				abort();
			memcpy(d->data, buf, (size_t)n);
		}
	}
	free(buf);
	setsockopt(l, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old));
	return r;
}

int ckpt_fd_link_unix(struct link_state *ls, Krg__Ckpt__Files *f, size_t i, struct ckpt_error *err)
{
	Krg__Ckpt__Fd *e = f->fds[i];
	long long peer = ckpt_fd_unix_peer_ino(e->ino);
	if (peer < 0)
		return ckpt_fail(err, (int)-peer, "process %d fd %d: asking sock_diag for the peer of socket:[%llu]: %s", ls->pid, e->fd,
				 (unsigned long long)e->ino, strerror((int)-peer));
	if (peer && !e->has_peer) {
		Krg__Ckpt__Fd *p = NULL;
		for (size_t j = 0; j < f->n_fds && !p; j++)
			if (j != i && !f->fds[j]->has_dup_of && !strcmp(f->fds[j]->kind, "unix") && f->fds[j]->ino == (uint64_t)peer)
				p = f->fds[j];
		if (!p && !ls->in_app && e->fd <= 2) {
			ckpt_fd_make_inherit(e);
			return 0;
		}
		if (!p && !ls->in_app) {
			ckpt_fd_refuse(ls, i, e->fd, CKPT_REFUSED_PEER_OUTSIDE, err, "process %d fd %d: unix socket (socket:[%llu]) whose peer socket:[%lld] is outside the process is not supported yet",
			       ls->pid, e->fd, (unsigned long long)e->ino, peer);
			return 0;
		}
		if (p) {
			e->has_peer = p->has_peer = true;
			e->peer = p->fd;
			p->peer = e->fd;
		}
	}
	int l = ckpt_fd_getfd_pid(ls->pid, e->fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", ls->pid, e->fd, strerror(-l));
	int r = unix_peek(l, e, err);
	close(l);
	return r;
}

/* Send what `to` had queued, from the tracee's socket `from`. */
static int unix_refill(struct ckpt_fd_rctx *c, long from, const Krg__Ckpt__Fd *to, struct ckpt_error *err)
{
	if (!to->has_data && !to->n_packets)
		return 0;
	int l = ckpt_fd_rgetfd(c, from, to->fd, err);
	if (l < 0)
		return l;
	int r = 0;
	for (size_t done = 0; to->has_data && done < to->data.len && !r;) {
		ssize_t n = send(l, to->data.data + done, to->data.len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			r = ckpt_fail(err, n < 0 ? errno : EIO, "fd %d: sending its %zu queued bytes again: %s", to->fd, to->data.len, strerror(n < 0 ? errno : EIO));
		else
			done += (size_t)n;
	}
	for (size_t k = 0; k < to->n_packets && !r; k++)
		if (send(l, to->packets[k].data, to->packets[k].len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)to->packets[k].len)
			r = ckpt_fail(err, errno, "fd %d: sending queued datagram %zu again: %s", to->fd, k, strerror(errno));
	close(l);
	return r;
}

/* A bound socket without a peer (a datagram socket others send to): its
 * own socket and name, its queue sent again to that name from krg. */
static int unix_restore_bound(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	long s = INJ(c, fd->fd, "socket", SYS_socket, AF_UNIX, fd->sock_type, 0, 0, 0, 0);
	int r = ckpt_unix_name_restore(c, s, fd, err);
	if (r < 0)
		return r;
	if (fd->n_packets) {
		/* By its absolute path: a relative name is the process's. */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		const void *name = fd->path ? (const void *)fd->path : fd->sock_addr.data;
		size_t nl = fd->path ? strlen(fd->path) : fd->sock_addr.len;
		if (nl > sizeof(a.sun_path))
			return ckpt_fail(err, ENAMETOOLONG, "fd %d: socket name too long", fd->fd);
		socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nl);
		memcpy(a.sun_path, name, nl);
		int l = socket(AF_UNIX, (int)fd->sock_type | SOCK_CLOEXEC, 0);
		for (size_t k = 0; k < fd->n_packets && !r; k++)
			if (l < 0 || sendto(l, fd->packets[k].data, fd->packets[k].len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, al) !=
					     (ssize_t)fd->packets[k].len)
				r = ckpt_fail(err, errno, "fd %d: sending queued datagram %zu again: %s", fd->fd, k, strerror(errno));
		if (l >= 0)
			close(l);
		if (r < 0)
			return r;
	}
	return ckpt_fd_place(c, s, fd, err);
}

static int unix_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (!fd->has_sock_type || (fd->sock_type != SOCK_STREAM && fd->sock_type != SOCK_DGRAM && fd->sock_type != SOCK_SEQPACKET) ||
	    (fd->has_sock_addr && (!fd->sock_addr.len || fd->sock_addr.len > sizeof(((struct sockaddr_un *)0)->sun_path))))
		return ckpt_fail(err, EBADMSG, "image: fd %d: unix socket of unknown type or with a bad name", fd->fd);
	bool made = false;
	const Krg__Ckpt__Fd *remote = ckpt_fd_remote_peer(c, fd, &made);
	if (made)
		return ckpt_fd_take_parked(c, fd, err);
	if (!remote && !fd->has_peer && fd->has_sock_addr && fd->sock_type != SOCK_STREAM)
		return unix_restore_bound(c, fd, err);
	INJ(c, fd->fd, "socketpair", SYS_socketpair, AF_UNIX, fd->sock_type, 0, (long)c->t->scratch, 0, 0);
	int sv[2];
	if (ckpt_peek(c->t->pid, c->t->scratch, sv, sizeof(sv)) < 0)
		return ckpt_fail(err, EIO, "fd %d: reading socketpair's answer", fd->fd);
	size_t pi = 0;
	const Krg__Ckpt__Fd *peer = remote ? remote : fd->has_peer ? ckpt_fd_entry_of(c->f, fd->peer, &pi) : NULL;
	int r = unix_refill(c, sv[1], fd, err);
	if (r == 0 && peer)
		r = unix_refill(c, sv[0], peer, err);
	if (r < 0)
		return r;
	if (!peer) {
		ckpt_syscall(c->t, err, SYS_close, sv[1], 0, 0, 0, 0, 0);
		return ckpt_fd_place(c, sv[0], fd, err);
	}
	if (remote) {
		r = ckpt_fd_park(c, sv[1], fd->peer_pid, fd->peer, err);
		return r < 0 ? r : ckpt_fd_place(c, sv[0], fd, err);
	}
	c->done[pi] = true;
	return ckpt_fd_place_pair(c, sv[0], fd, sv[1], peer, err);
}

const struct ckpt_fd_ops ckpt_fd_unix = { CKPT_FD_OPS_VERSION, "unix", false, unix_match, unix_dump, unix_restore };
