/* intercept_fdpass.c — a listener fd handed to krgd over a unix socket
 * (SCM_RIGHTS). The sender is a fork of krgd between fork and exec, so
 * only async-signal-safe calls on its side. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include "ipc/intercept.h"
#include "lib/fdpass.h"

int krg_intercept_send_fd(int sock, int fd)
{
	return krg_intercept_send_msg(sock, 'L', NULL, 0, fd);
}

int krg_intercept_send_msg(int sock, char tag, const void *data, size_t len, int fd)
{
	struct iovec iov[2] = { { &tag, 1 }, { (void *)data, len } };
	return krg_fd_sendv(sock, iov, len ? 2 : 1, fd, MSG_NOSIGNAL);
}

int krg_intercept_recv_msg(int sock, bool wait, char *tag, void *data, size_t cap, size_t *len, int *fd)
{
	struct iovec iov[2] = { { tag, 1 }, { data, cap } };
	*len = 0;
	*tag = 0;
	ssize_t n = krg_fd_recvv(sock, iov, cap ? 2 : 1, wait ? 0 : MSG_DONTWAIT, fd);
	if (n <= 0)
		return (int)n;
	*len = (size_t)n - 1;
	return 0;
}
