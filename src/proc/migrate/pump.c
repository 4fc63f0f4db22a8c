/* pump.c — the proxied fds of a migrant, on both ends (mig-int.h): the
 * deputy pumps the real fds at home, the holder the FIFOs the migrant
 * holds instead. Data goes as MF_DATA frames of at most MIG_CHUNK bytes;
 * the writing end acknowledges what it wrote (MF_ACK), and a reading end
 * stops reading with MIG_WINDOW bytes unacknowledged, so nothing between
 * the two ends (krgd's, the network) ever holds more than a window per fd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "proc/migrate/mig-int.h"

struct mig_qbuf {
	struct mig_qbuf *next;
	size_t len, off;
	uint8_t data[];
};

int mig_send(int sock, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len)
{
	struct mig_hdr h = { .type = type, .fd = fd, .arg = arg };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	for (;;) {
		ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			struct pollfd p = { .fd = sock, .events = POLLOUT };
			poll(&p, 1, -1);
			continue;
		}
		return -errno;
	}
}

void mig_siginfo_put(uint8_t out[MIG_SIGINFO_LEN], const struct mig_siginfo *s)
{
	memcpy(out, &s->code, 4);
	memcpy(out + 4, &s->pid, 4);
	memcpy(out + 8, &s->uid, 4);
	memcpy(out + 12, &s->value, 8);
}

bool mig_siginfo_get(const uint8_t *data, size_t len, struct mig_siginfo *s)
{
	if (len != MIG_SIGINFO_LEN)
		return false;
	memcpy(&s->code, data, 4);
	memcpy(&s->pid, data + 4, 4);
	memcpy(&s->uid, data + 8, 4);
	memcpy(&s->value, data + 12, 8);
	return s->code < 0;
}

static struct mig_pfd *find(struct mig_pump *p, int num)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->p[i].num == num)
			return &p->p[i];
	return NULL;
}

static void pfd_close(struct mig_pfd *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->nb > 0)
		close(f->nb);
	f->nb = 0;
	while (f->qh) {
		struct mig_qbuf *b = f->qh;
		f->qh = b->next;
		free(b);
	}
	f->qt = NULL;
	free(f->part);
	f->part = NULL;
}

static int send_ack(struct mig_pump *p, struct mig_pfd *f, bool force)
{
	if (!f->to_ack || (!force && f->to_ack < MIG_ACK_BATCH))
		return 0;
	size_t n = f->to_ack;
	f->to_ack = 0;
	return mig_send(p->sock, MF_ACK, f->num, (int64_t)n, NULL, 0);
}

/* The data of a dst stream ended and all of it is written: a socket's
 * peer gets end of file (shutdown: the holder's socketpair end is the
 * migrant's peer alone; home's real socket only if the migrant shut it
 * without closing it, since other processes at home may hold it too). */
static void dst_end(struct mig_pump *p, struct mig_pfd *f)
{
	if (f->stype && f->fd >= 0 && (p->holder || f->eof_half))
		shutdown(f->fd, SHUT_WR);
	pfd_close(f);
}

/* A dst stream's reader went away (EPIPE, or POLLERR/POLLHUP): what is
 * queued is dropped (acknowledged, so the other end does not wait for
 * it) and the other end closes its reading side, so the writer there
 * gets EPIPE too. */
static int reader_gone(struct mig_pump *p, struct mig_pfd *f)
{
	size_t left = 0;
	for (struct mig_qbuf *q = f->qh; q; q = q->next)
		left += q->len - q->off;
	f->to_ack += left;
	pfd_close(f);
	int r = send_ack(p, f, true);
	if (r == 0 && f->exact && !f->eof_sent) {
		f->eof_sent = true;
		r = mig_send(p->sock, MF_EOF, f->num, 0, NULL, 0);
	}
	return r;
}

int mig_pump_frame(struct mig_pump *p, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	if (h->type != MF_DATA && h->type != MF_EOF && h->type != MF_ACK)
		return 0;
	struct mig_pfd *f = find(p, h->fd);
	if (!f)
		return 1;
	if (h->type == MF_ACK) {
		size_t a = h->arg > 0 ? (size_t)h->arg : 0;
		f->unacked = a > f->unacked ? 0 : f->unacked - a;
	} else if (h->type == MF_EOF) {
		if (!f->src) {
			f->eof_pending = true;
			f->eof_half = h->arg == 1;
			if (!f->qh)
				dst_end(p, f);
		} else if (f->fd >= 0 && f->exact) {
			/* Nobody reads this stream at the other end any more:
			 * neither do we (the writer here gets EPIPE once no other
			 * reader holds it). */
			if (f->stype && p->holder)
				shutdown(f->fd, SHUT_RD);
			f->eof_sent = true;
			pfd_close(f);
		}
	} else if (!f->src) {
		if (f->fd < 0) {
			/* Closed here: nobody will read it; say it was written. */
			f->to_ack += len;
			send_ack(p, f, false);
			return 1;
		}
		/* A socket's message longer than a frame: its pieces are put
		 * together, then queued as one message. */
		struct mig_qbuf *b;
		size_t have = f->part ? f->part->len : 0;
		if (f->stype && f->stype != SOCK_STREAM && (h->arg == 1 || f->part)) {
			b = realloc(f->part, sizeof(*b) + have + len);
			if (!b)
				return 1;
			memcpy(b->data + have, data, len);
			b->len = have + len;
			f->part = b;
			if (h->arg == 1)
				return 1;
			f->part = NULL;
		} else {
			b = malloc(sizeof(*b) + len);
			if (!b)
				return 1;
			b->len = len;
			memcpy(b->data, data, len);
		}
		b->next = NULL;
		b->off = 0;
		if (f->qt)
			f->qt->next = b;
		else
			f->qh = b;
		f->qt = b;
	}
	return 1;
}

size_t mig_pump_pollfds(struct mig_pump *p, struct pollfd *pfd, size_t max, size_t *map)
{
	size_t k = 0;
	for (size_t i = 0; i < p->n && k < max; i++) {
		struct mig_pfd *f = &p->p[i];
		if (f->fd < 0)
			continue;
		short ev = 0;
		if (f->src && p->out_enabled && !f->eof_sent && f->unacked < MIG_WINDOW)
			ev = POLLIN;
		else if (!f->src && f->qh)
			ev = POLLOUT;
		/* Nothing to write: still watched for its reader going away
		 * (POLLERR/POLLHUP come whatever the events). */
		if (!ev && !(!f->src && f->exact && p->out_enabled))
			continue;
		pfd[k] = (struct pollfd){ .fd = f->fd, .events = ev };
		map[k++] = i;
	}
	return k;
}

/* A socket read 0: end of file, or (seqpacket, datagram) an empty
 * message? And was it closed, or only shut for sending (arg of MF_EOF)? */
static bool sock_ended(int fd, int stype, bool *half)
{
	struct pollfd q = { .fd = fd, .events = POLLIN | POLLRDHUP };
	if (poll(&q, 1, 0) < 0)
		q.revents = POLLHUP;
	*half = !(q.revents & (POLLHUP | POLLERR));
	return stype == SOCK_STREAM || (stype != SOCK_DGRAM && (q.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

/* A socket's next message (recv): any fds passed with it (SCM_RIGHTS)
 * are closed at once and counted in *passed (-1: more than we could
 * take); they cannot cross nodes. */
static ssize_t sock_recv(int fd, void *buf, size_t len, int *passed)
{
	struct iovec iov = { buf, len };
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(64 * sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	*passed = 0;
	ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int x;
				memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(x);
				(*passed)++;
			}
	if (m.msg_flags & MSG_CTRUNC)
		*passed = -1;
	return n;
}

/* A message passing fds over a forwarded socket (issue 14 item 13): the
 * fds cannot go to the other node, and the message without them would be
 * another message. It is not delivered; the socket is shut at both ends
 * (end of file for readers, EPIPE for writers: the program sees it
 * fail) and krgd logs why, naming the fd (MF_NOTE). */
static int refuse_passed(struct mig_pump *p, struct mig_pfd *f, int passed)
{
	int num = f->num & ~MIG_REV;
	int r = mig_send(p->sock, MF_NOTE, num, passed, NULL, 0);
	struct mig_pfd *sib = find(p, f->num ^ MIG_REV);
	f->eof_sent = true;
	pfd_close(f);
	if (r == 0)
		r = mig_send(p->sock, MF_EOF, f->num, 0, NULL, 0);
	if (sib && sib->fd >= 0) {
		/* The other direction: its reader (us) is gone. */
		pfd_close(sib);
		if (r == 0 && !sib->src)
			r = mig_send(p->sock, MF_EOF, sib->num, 0, NULL, 0);
	}
	return r;
}

/* A seqpacket or datagram socket's next message, longer than a frame:
 * read whole and sent as pieces, all but the last with arg 1. */
static int read_message(struct mig_pump *p, struct mig_pfd *f, size_t len)
{
	uint8_t *m = malloc(len);
	int passed = 0;
	ssize_t n = m ? sock_recv(f->fd, m, len, &passed) : -1;
	int r = 0;
	if (passed) {
		free(m);
		return refuse_passed(p, f, passed);
	}
	size_t chunk = p->chunk ? p->chunk : MIG_CHUNK_SMALL;
	for (size_t off = 0; r == 0 && n > 0 && off < (size_t)n; off += chunk) {
		size_t k = (size_t)n - off < chunk ? (size_t)n - off : chunk;
		r = mig_send(p->sock, MF_DATA, f->num, off + k < (size_t)n, m + off, k);
	}
	free(m);
	if (n > 0)
		f->unacked += (size_t)n;
	return r;
}

size_t mig_sock_bufs(int fd)
{
	int sz = MIG_SOCK_BUF, got = 0;
	socklen_t gl = sizeof(got);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	/* A SOCK_SEQPACKET message must fit in the send buffer (less a
	 * little): room for two frames, or the small ones. */
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &gl) == 0 && (size_t)got >= 2 * (MIG_CHUNK + 4096))
		return MIG_CHUNK;
	return MIG_CHUNK_SMALL;
}

static int read_some(struct mig_pump *p, struct mig_pfd *f, bool *empty)
{
	static uint8_t buf[MIG_CHUNK];
	size_t chunk = p->chunk ? p->chunk : MIG_CHUNK_SMALL;
	*empty = false;
	if (f->stype && f->stype != SOCK_STREAM) {
		/* The next message's length (MSG_TRUNC: whole, whatever the buffer). */
		ssize_t len = recv(f->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (len > (ssize_t)chunk)
			return read_message(p, f, (size_t)len);
	}
	/* A socket: one message at a time (its boundaries are the frames'). */
	int passed = 0;
	ssize_t n = f->stype ? sock_recv(f->fd, buf, chunk, &passed) : read(f->nb > 0 ? f->nb : f->fd, buf, chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		*empty = true;
		return 0;
	}
	if (passed) {
		*empty = true;
		return refuse_passed(p, f, passed);
	}
	bool half = false;
	if (n == 0 && f->stype && !sock_ended(f->fd, f->stype, &half))
		return mig_send(p->sock, MF_DATA, f->num, 0, NULL, 0);
	if (n <= 0) {
		/* End (or an error, which ends it as well). */
		f->eof_sent = true;
		pfd_close(f);
		*empty = true;
		return mig_send(p->sock, MF_EOF, f->num, half, NULL, 0);
	}
	f->unacked += (size_t)n;
	return mig_send(p->sock, MF_DATA, f->num, 0, buf, (size_t)n);
}

int mig_pump_ready(struct mig_pump *p, size_t idx, short revents)
{
	struct mig_pfd *f = &p->p[idx];
	if (f->fd < 0)
		return 0;
	if (f->src) {
		/* Non-blocking (sockets are read with MSG_DONTWAIT, the holder's
		 * fds are all non-blocking): a few frames per wakeup, as long as
		 * the window allows, fewer polls per byte. */
		bool empty = false;
		int r = 0;
		for (int k = 0; r == 0 && !empty && f->fd >= 0 && k < ((f->stype || p->holder || f->nb > 0) ? 16 : 1) &&
				(k == 0 || f->unacked < MIG_WINDOW); k++)
			r = read_some(p, f, &empty);
		return r;
	}
	if (!(revents & POLLOUT) && (revents & (POLLERR | POLLHUP)))
		return reader_gone(p, f);
	/* A non-blocking fd (a socket written with MSG_DONTWAIT, the
	 * holder's, the deputy's own open of a pipe): everything queued that
	 * it takes; else one write, which POLLOUT says will not block. */
	bool nonblock = f->stype || p->holder || f->nb > 0;
	int wfd = f->nb > 0 ? f->nb : f->fd;
	size_t wrote = 0;
	while (f->fd >= 0 && f->qh) {
		struct mig_qbuf *b = f->qh;
		size_t want = b->len - b->off;
		if (!nonblock && p->small_writes && want > PIPE_BUF)
			want = PIPE_BUF;
		/* A socket: the whole message at once (never blocks, no SIGPIPE). */
		ssize_t n = f->stype ? send(wfd, b->data + b->off, want, MSG_DONTWAIT | MSG_NOSIGNAL)
				     : write(wfd, b->data + b->off, want);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0 && errno == EMSGSIZE)
			n = (ssize_t)want; /* larger than the socket takes: dropped, as its sender's would be */
		if (n < 0)
			return reader_gone(p, f);
		b->off += (size_t)n;
		f->to_ack += (size_t)n;
		wrote += (size_t)n;
		if (b->off == b->len) {
			f->qh = b->next;
			if (!f->qh)
				f->qt = NULL;
			free(b);
		}
		if (!nonblock || (size_t)n < want)
			break;
	}
	if (!wrote)
		return 0;
	int r = send_ack(p, f, !f->qh);
	if (!f->qh && f->eof_pending)
		dst_end(p, f);
	return r;
}

void mig_pump_more(struct mig_pump *p, uint8_t *buf, size_t cap, int max)
{
	for (int i = 0; i < max; i++) {
		struct mig_hdr h;
		ssize_t n = recv(p->sock, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
		if (n < (ssize_t)sizeof(h) || (h.type != MF_DATA && h.type != MF_EOF && h.type != MF_ACK))
			return;
		n = recv(p->sock, buf, cap, MSG_DONTWAIT);
		if (n < (ssize_t)sizeof(h))
			return;
		memcpy(&h, buf, sizeof(h));
		mig_pump_frame(p, &h, buf + sizeof(h), (size_t)n - sizeof(h));
	}
}

void mig_pump_reopen(struct mig_pump *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct mig_pfd *f = &p->p[i];
		struct stat st;
		if (f->stype || f->fd < 0 || fstat(f->fd, &st) < 0 || !S_ISFIFO(st.st_mode))
			continue;
		/* A pipe's /proc link opens the same pipe anew: a description
		 * of our own, which O_NONBLOCK changes for nobody else. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
		int fd = open(path, (f->src ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		f->nb = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
		close(fd);
		if (f->nb < 0)
			f->nb = 0;
	}
}

int mig_pump_drain(struct mig_pump *p, bool eof)
{
	for (size_t i = 0; i < p->n; i++) {
		struct mig_pfd *f = &p->p[i];
		if (!f->src)
			continue;
		bool empty = false;
		while (f->fd >= 0 && !empty) {
			int r = read_some(p, f, &empty);
			if (r < 0)
				return r;
		}
		if (eof && !f->eof_sent) {
			f->eof_sent = true;
			pfd_close(f);
			int r = mig_send(p->sock, MF_EOF, f->num, 0, NULL, 0);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

void mig_pump_flush(struct mig_pump *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct mig_pfd *f = &p->p[i];
		while (!f->src && f->fd >= 0 && f->qh) {
			struct pollfd q = { .fd = f->nb > 0 ? f->nb : f->fd, .events = POLLOUT };
			if (poll(&q, 1, -1) < 0 && errno != EINTR)
				break;
			if (q.revents && mig_pump_ready(p, i, q.revents) < 0)
				break;
		}
	}
}

void mig_pump_flush_close(struct mig_pump *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct mig_pfd *f = &p->p[i];
		if (!f->src && f->fd >= 0) {
			/* Blocking writes of what is left, then close. */
			int fl = fcntl(f->fd, F_GETFL);
			if (fl >= 0 && (fl & O_NONBLOCK))
				fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK);
			for (struct mig_qbuf *b = f->qh; b; b = b->next) {
				while (b->off < b->len) {
					ssize_t n = write(f->fd, b->data + b->off, b->len - b->off);
					if (n < 0 && errno == EINTR)
						continue;
					if (n <= 0)
						break;
					b->off += (size_t)n;
				}
			}
		}
		pfd_close(f);
	}
}

int mig_pump_return(struct mig_pump *p, uint8_t type)
{
	for (size_t i = 0; i < p->n; i++) {
		struct mig_pfd *f = &p->p[i];
		while (!f->src && f->qh) {
			struct mig_qbuf *b = f->qh;
			int r = 0;
			size_t chunk = p->chunk ? p->chunk : MIG_CHUNK_SMALL;
			for (size_t off = b->off; r == 0 && off < b->len; off += chunk)
				r = mig_send(p->sock, type, f->num, 0, b->data + off, b->len - off < chunk ? b->len - off : chunk);
			f->qh = b->next;
			free(b);
			if (r < 0)
				return r;
		}
		f->qt = NULL;
	}
	return 0;
}

_Noreturn void mig_die_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = status & 0x7f;
		struct sigaction sa = { .sa_handler = SIG_DFL };
		sigaction(sig, &sa, NULL);
		if (!(status & 0x80)) {
			/* No core dump: the parent must not see one either. */
			struct rlimit rl = { 0, 0 };
			setrlimit(RLIMIT_CORE, &rl);
		}
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(sig);
		kill(getpid(), SIGKILL);
	}
	_exit((status >> 8) & 0xff);
}
