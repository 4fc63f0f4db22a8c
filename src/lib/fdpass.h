/* fdpass.h — a message and at most one fd over a unix socket
 * (SCM_RIGHTS), the one way krg's processes hand each other fds. */
#pragma once
#include <sys/types.h>
#include <sys/uio.h>

/* Send iov[0..n) (at least one byte in all) and fd (-1: none) in one
 * sendmsg with flags; EINTR retried. Async-signal-safe: a fork of krgd
 * between fork and exec uses it. 0 once all of it went, -EIO if less did,
 * or -errno. */
int krg_fd_sendv(int sock, const struct iovec *iov, int n, int fd, int flags);
/* The same, one buffer. */
int krg_fd_send(int sock, const void *data, size_t len, int fd, int flags);

/* Receive one message into iov[0..n) with flags (MSG_CMSG_CLOEXEC
 * added: the fd is close-on-exec); EINTR retried. *fd the fd it carried,
 * else -1. A message that did not fit (data or fds: more than one fd) is
 * refused: its fd closed, -EBADMSG. Bytes received (0: end of stream),
 * -EAGAIN (MSG_DONTWAIT and nothing waiting), or -errno. */
ssize_t krg_fd_recvv(int sock, struct iovec *iov, int n, int flags, int *fd);
