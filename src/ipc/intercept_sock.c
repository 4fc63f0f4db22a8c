/* intercept_sock.c — socket queries of a migrant whose sockets are
 * forwarded (docs/migration.md, "Forwarded fds"): its home answers. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <uv.h>
#include "ipc/intercept_svc-int.h"
#include "lib/log.h"

/* getsockname/getpeername(fd, addr, addrlen), getsockopt(fd, level,
 * name, val, len) of a migrant with forwarded sockets (only its filter
 * sends them): home's answer if fd is one of them, else the kernel
 * answers. As Linux: the address cut to *addrlen, its whole length
 * written back; an int option or SO_PEERCRED cut to *len, the length
 * given written back; SO_PEERSEC and SO_PEERGROUPS not cut: ERANGE with
 * the length needed written back. */
void isvc_sock_serve(struct lsn *l, const struct seccomp_notif *n)
{
	struct krg_intercept *in = l->in;
	uint8_t addr[KRG_INTERCEPT_SOCKADDR_MAX];
	int fd = (int)n->data.args[0];
	bool opt = n->data.nr == SYS_getsockopt;
	enum krg_intercept_sock_what what = n->data.nr == SYS_getpeername ? KRG_SOCK_PEER : KRG_SOCK_NAME;
	if (opt && (int)n->data.args[1] == SOL_SOCKET && (int)n->data.args[2] == SO_DOMAIN)
		what = KRG_SOCK_DOMAIN;
	else if (opt && (int)n->data.args[1] == SOL_SOCKET && (int)n->data.args[2] == SO_PROTOCOL)
		what = KRG_SOCK_PROTOCOL;
	else if (opt && (int)n->data.args[1] == SOL_SOCKET && (int)n->data.args[2] == SO_PEERCRED)
		what = KRG_SOCK_PEERCRED;
	else if (opt && (int)n->data.args[1] == SOL_SOCKET && (int)n->data.args[2] == SO_PEERSEC)
		what = KRG_SOCK_PEERSEC;
	else if (opt && (int)n->data.args[1] == SOL_SOCKET && (int)n->data.args[2] == SO_PEERGROUPS)
		what = KRG_SOCK_PEERGROUPS;
	else if (opt)
		fd = -1; /* another option: the kernel's */
	size_t got = 0;
	int k = in->sock_hook && fd >= 0 && (uint64_t)fd == n->data.args[0]
			? in->sock_hook(in->sock_ctx, (pid_t)n->pid, fd, what, addr, sizeof(addr), &got)
			: 0;
	if (k == 0) {
		isvc_send_continue(in, l->fd, n->id);
		return;
	}
	if (k < 0) {
		isvc_send_resp(in, l->fd, n->id, k);
		return;
	}
	if (got > sizeof(addr)) {
		isvc_send_resp(in, l->fd, n->id, -EIO);
		return;
	}
	int32_t cap;
	uint64_t out_at = opt ? n->data.args[3] : n->data.args[1], len_at = opt ? n->data.args[4] : n->data.args[2];
	struct iovec li = { &cap, sizeof(cap) }, ri = { (void *)(uintptr_t)len_at, sizeof(cap) };
	if (process_vm_readv((pid_t)n->pid, &li, 1, &ri, 1, 0) != (ssize_t)sizeof(cap)) {
		isvc_send_resp(in, l->fd, n->id, errno == ESRCH ? -ESRCH : -EFAULT);
		return;
	}
	if (cap < 0) {
		isvc_send_resp(in, l->fd, n->id, -EINVAL);
		return;
	}
	int32_t len = (int32_t)got;
	bool whole = what == KRG_SOCK_PEERSEC || what == KRG_SOCK_PEERGROUPS;
	struct iovec la[2] = { { addr, (size_t)(cap < len ? cap : len) }, { &len, sizeof(len) } };
	struct iovec ra[2] = { { (void *)(uintptr_t)out_at, la[0].iov_len }, { ri.iov_base, sizeof(len) } };
	if (opt)
		len = (int32_t)la[0].iov_len;
	/* What we read and write is the caller's only if it still waits. */
	if (!isvc_id_valid(l->fd, n->id))
		return;
	if (whole && cap < (int32_t)got) {
		len = (int32_t)got;
		bool ok = process_vm_writev((pid_t)n->pid, la + 1, 1, ra + 1, 1, 0) == (ssize_t)sizeof(len);
		isvc_send_resp(in, l->fd, n->id, ok ? -ERANGE : -EFAULT);
		return;
	}
	ssize_t w = la[0].iov_len ? process_vm_writev((pid_t)n->pid, la, 1, ra, 1, 0) : 0;
	if (w == (ssize_t)la[0].iov_len)
		w = process_vm_writev((pid_t)n->pid, la + 1, 1, ra + 1, 1, 0) == (ssize_t)sizeof(len) ? 0 : -1;
	isvc_send_resp(in, l->fd, n->id, w == 0 ? 0 : -EFAULT);
}

