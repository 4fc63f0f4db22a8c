/* intercept_fdpass.c — a listener fd handed to krgd over a unix socket
 * (SCM_RIGHTS). The sender is a fork of krgd between fork and exec, so
 * only async-signal-safe calls on its side. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "ipc/intercept.h"

int krg_intercept_send_fd(int sock, int fd)
{
	char tag = 'L';
	struct iovec iov = { &tag, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}

int krg_intercept_recv_fd(int sock, int *fd)
{
	char tag;
	struct iovec iov = { &tag, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	*fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	/* A truncated control message would have closed fds we never saw. */
	if ((m.msg_flags & MSG_CTRUNC) || tag != 'L' || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int))) {
		if (c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int bad;
			memcpy(&bad, CMSG_DATA(c), sizeof(int));
			close(bad);
		}
		return -EBADMSG;
	}
	memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

int krg_intercept_send_msg(int sock, char tag, const void *data, size_t len, int fd)
{
	struct iovec iov[2] = { { &tag, 1 }, { (void *)data, len } };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	if (fd >= 0) {
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)(len + 1) ? 0 : n < 0 ? -errno : -EIO;
}

int krg_intercept_recv_msg(int sock, bool wait, char *tag, void *data, size_t cap, size_t *len, int *fd)
{
	struct iovec iov[2] = { { tag, 1 }, { data, cap } };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = cap ? 2 : 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	*fd = -1;
	*len = 0;
	*tag = 0;
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
		memcpy(fd, CMSG_DATA(c), sizeof(int));
		/* One fd per message: a second one would be leaked here. */
		if (c->cmsg_len != CMSG_LEN(sizeof(int))) {
			close(*fd);
			*fd = -1;
			return -EBADMSG;
		}
	}
	if (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EBADMSG;
	}
	*len = (size_t)n - 1;
	return 0;
}
