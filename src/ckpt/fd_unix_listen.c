/* fd_unix_listen.c — a listening unix socket (stream or seqpacket), bound
 * to a path or an abstract name. Dumped: its address (a relative path is
 * made absolute against the process's cwd and checked to be that very
 * socket file, by sock_diag's UNIX_DIAG_VFS inode), its backlog, the
 * socket file's mode and owner. Connections waiting to be accepted come
 * from clients krg cannot bring back: such a socket is refused. Restore:
 * socket + bind + listen in the process; a socket file left by the dead
 * original (nobody listening: connect says ECONNREFUSED) is removed
 * first, one with a live listener is refused ("address in use"); then
 * the file gets its mode and owner back. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include "ckpt/fd-int.h"
#include "lib/macro.h"

int ckpt_unix_diag(uint64_t ino, struct ckpt_unix_diag *out)
{
	_cleanup_close_ int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		return -errno;
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		  .r = { .sdiag_family = AF_UNIX, .udiag_ino = (uint32_t)ino, .udiag_show = UDIAG_SHOW_RQLEN | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER,
			 .udiag_cookie = { ~0U, ~0U } } };
	union {
		struct nlmsghdr h;
		char b[8192];
	} buf;
	if (send(s, &req, sizeof(req), 0) != sizeof(req))
		return -errno;
	ssize_t n = recv(s, &buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	memset(out, 0, sizeof(*out));
	for (struct nlmsghdr *h = &buf.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR)
			return ((struct nlmsgerr *)NLMSG_DATA(h))->error ?: -EPROTO;
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		struct unix_diag_msg *m = NLMSG_DATA(h);
		int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == UNIX_DIAG_RQLEN) {
				struct unix_diag_rqlen *q = RTA_DATA(a);
				out->rqlen = q->udiag_rqueue;
				out->wqlen = q->udiag_wqueue;
			} else if (a->rta_type == UNIX_DIAG_VFS) {
				out->vfs_ino = ((struct unix_diag_vfs *)RTA_DATA(a))->udiag_vfs_ino;
			} else if (a->rta_type == UNIX_DIAG_PEER) {
				out->peer_ino = *(uint32_t *)RTA_DATA(a);
			}
		}
		return 0;
	}
	return -EPROTO;
}

static bool listen_match(pid_t pid, int fd, const struct stat *st, const char *link)
{
	if (!S_ISSOCK(st->st_mode))
		return false;
	_cleanup_close_ int l = ckpt_fd_getfd_pid(pid, fd);
	int dom = 0, acc = 0;
	socklen_t sl = sizeof(int);
	return l >= 0 && !getsockopt(l, SOL_SOCKET, SO_DOMAIN, &dom, &sl) && dom == AF_UNIX &&
	       (sl = sizeof(int), !getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl)) && acc;
}

int ckpt_unix_name_dump(pid_t pid, int fd, int l, uint64_t ino, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	if (getsockname(l, (struct sockaddr *)&a, &al) < 0)
		return ckpt_fail(err, errno, "process %d fd %d: getsockname: %s", pid, fd, strerror(errno));
	size_t nl = al > offsetof(struct sockaddr_un, sun_path) ? al - offsetof(struct sockaddr_un, sun_path) : 0;
	if (!nl)
		return 0;  /* unnamed */
	out->has_sock_addr = true;
	out->sock_addr.len = nl;
	out->sock_addr.data = malloc(nl);
	if (!out->sock_addr.data)
		return ckpt_fail(err, ENOMEM, "out of memory");
	memcpy(out->sock_addr.data, a.sun_path, nl);
	if (a.sun_path[0] == 0)
		return 0;  /* abstract */
	char name[sizeof(a.sun_path) + 1], full[4096 + sizeof(name)];
	memcpy(name, a.sun_path, nl);
	name[nl] = 0;
	if (name[0] == '/') {
		snprintf(full, sizeof(full), "%s", name);
	} else {
		/* Relative to the cwd at bind(); only the current cwd is known:
		 * accepted if that resolves to the very socket file. */
		char p[64], cwd[4096];
		snprintf(p, sizeof(p), "/proc/%d/cwd", pid);
		ssize_t n = readlink(p, cwd, sizeof(cwd) - 1);
		if (n <= 0)
			return ckpt_fail(err, errno, "process %d fd %d: reading its cwd: %s", pid, fd, strerror(errno));
		cwd[n] = 0;
		snprintf(full, sizeof(full), "%s/%s", cwd, name);
	}
	struct ckpt_unix_diag di;
	struct stat st;
	if (ckpt_unix_diag(ino, &di) < 0 || stat(full, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_ino != di.vfs_ino)
		return ckpt_fail(err, ENOTSUP, "process %d fd %d: unix socket bound to '%s': that name no longer leads to it (removed or moved) is not supported",
				 pid, fd, name);
	out->path = strdup(full);
	if (!out->path)
		return ckpt_fail(err, ENOMEM, "out of memory");
	out->has_mode = out->has_uid = out->has_gid = true;
	out->mode = st.st_mode & 07777;
	out->uid = st.st_uid;
	out->gid = st.st_gid;
	return 0;
}

static int listen_dump(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err)
{
	_cleanup_close_ int l = ckpt_fd_getfd_pid(pid, fd);
	if (l < 0)
		return ckpt_fail(err, -l, "process %d fd %d: pidfd_getfd: %s", pid, fd, strerror(-l));
	int type = 0;
	socklen_t sl = sizeof(type);
	getsockopt(l, SOL_SOCKET, SO_TYPE, &type, &sl);
	struct ckpt_unix_diag di;
	int r = ckpt_unix_diag(st->st_ino, &di);
	if (r < 0)
		return ckpt_fail(err, -r, "process %d fd %d: sock_diag of socket:[%llu]: %s", pid, fd, (unsigned long long)st->st_ino,
				 strerror(-r));
	if (di.rqlen)
		return ckpt_fail(err, ENOTSUP,
				 "process %d fd %d: listening unix socket with %u connection%s waiting to be accepted (their clients cannot be brought back) is not supported",
				 pid, fd, di.rqlen, di.rqlen > 1 ? "s" : "");
	out->has_ino = out->has_sock_type = out->has_backlog = true;
	out->ino = st->st_ino;
	out->sock_type = (uint32_t)type;
	out->backlog = di.wqlen;
	r = ckpt_unix_name_dump(pid, fd, l, st->st_ino, out, err);
	if (r < 0)
		return r;
	if (!out->has_sock_addr)
		return ckpt_fail(err, ENOTSUP, "process %d fd %d: listening unix socket without a name", pid, fd);
	return 0;
}

/* A socket file left at `path` by a process that is gone: removed. One
 * somebody listens on: -EADDRINUSE. */
static int clear_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EADDRINUSE;
	_cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (s < 0 || strlen(path) >= sizeof(a.sun_path))
		return -EINVAL;
	memcpy(a.sun_path, path, strlen(path));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 || (errno != ECONNREFUSED && errno != EPROTOTYPE))
		return -EADDRINUSE;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int ckpt_unix_name_restore(struct ckpt_fd_rctx *c, long s, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len = offsetof(struct sockaddr_un, sun_path);
	if (fd->path) {
		if (strlen(fd->path) >= sizeof(a.sun_path))
			return ckpt_fail(err, ENAMETOOLONG, "fd %d: socket path %s is too long to bind", fd->fd, fd->path);
		int r = clear_stale(fd->path);
		if (r < 0)
			return ckpt_fail(err, -r, "fd %d: binding unix socket %s: %s", fd->fd, fd->path,
					 r == -EADDRINUSE ? "the name is in use (the original still runs there?)" : strerror(-r));
		memcpy(a.sun_path, fd->path, strlen(fd->path));
		len += strlen(fd->path) + 1;
	} else {
		if (!fd->sock_addr.len || fd->sock_addr.len > sizeof(a.sun_path) || fd->sock_addr.data[0])
			return ckpt_fail(err, EBADMSG, "image: fd %d: unix socket name is not an abstract name", fd->fd);
		memcpy(a.sun_path, fd->sock_addr.data, fd->sock_addr.len);
		len += fd->sock_addr.len;
	}
	long at = ckpt_fd_scratch(c, &a, len, fd->fd, err);
	if (at < 0)
		return (int)at;
	long r = ckpt_syscall(c->t, err, SYS_bind, s, at, (long)len, 0, 0, 0);
	if (r < 0)
		return ckpt_fail(err, ckpt_fd_inj_errno(r), "fd %d: binding unix socket %s: %s", fd->fd,
				 fd->path ? fd->path : "(abstract)", strerror(ckpt_fd_inj_errno(r)));
	if (fd->path && ((fd->has_uid && lchown(fd->path, fd->uid, fd->gid) < 0) || (fd->has_mode && chmod(fd->path, fd->mode) < 0)))
		return ckpt_fail(err, errno, "fd %d: giving socket file %s its owner and mode back: %s", fd->fd, fd->path, strerror(errno));
	return 0;
}

static int listen_restore(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err)
{
	if (!fd->has_sock_type || (fd->sock_type != SOCK_STREAM && fd->sock_type != SOCK_SEQPACKET) || !fd->has_sock_addr)
		return ckpt_fail(err, EBADMSG, "image: fd %d: listening unix socket of unknown type or without a name", fd->fd);
	long s = INJ(c, fd->fd, "socket", SYS_socket, AF_UNIX, fd->sock_type, 0, 0, 0, 0);
	int r = ckpt_unix_name_restore(c, s, fd, err);
	if (r < 0)
		return r;
	INJ(c, fd->fd, "listen", SYS_listen, s, fd->has_backlog ? (long)fd->backlog : 128, 0, 0, 0, 0);
	return ckpt_fd_place(c, s, fd, err);
}

const struct ckpt_fd_ops ckpt_fd_unix_listen = { CKPT_FD_OPS_VERSION, "unix-listen", false, listen_match, listen_dump, listen_restore };
