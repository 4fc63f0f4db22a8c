/* fdpass.c — see fdpass.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/fdpass.h"

/* Room for exactly one fd: a second one does not fit (MSG_CTRUNC). */
union one_fd {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

int krg_fd_sendv(int sock, const struct iovec *iov, int n, int fd, int flags)
{
	union one_fd u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	size_t want = 0;
	for (int i = 0; i < n; i++)
		want += iov[i].iov_len;
	if (fd >= 0) {
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t r;
	do
		r = sendmsg(sock, &m, flags);
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)want ? 0 : r < 0 ? -errno : -EIO;
}

int krg_fd_send(int sock, const void *data, size_t len, int fd, int flags)
{
	struct iovec iov = { (void *)data, len };
	return krg_fd_sendv(sock, &iov, 1, fd, flags);
}

ssize_t krg_fd_recvv(int sock, struct iovec *iov, int n, int flags, int *fd)
{
	union one_fd u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	*fd = -1;
	ssize_t r;
	do
		r = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	size_t nfd = 0;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	/* One fd per message; a truncated control message closed the fds we
	 * never saw, and the ones we did see are closed here. */
	if (nfd > 1 || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		for (size_t i = 0; i < nfd; i++) {
			int bad;
			memcpy(&bad, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(bad);
		}
		return -EBADMSG;
	}
	if (nfd)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return r;
}
