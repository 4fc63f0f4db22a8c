/* run_client.c — see run_client.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "api/run_client.h"
#include "api/server.h"
#include "proto/proc.pb-c.h"

/* Sent bytes are dropped lazily (no memmove per send), but the dead
 * prefix stays below this. */
#define OUT_COMPACT (512u << 10)

void krg_run_request_rlimits(Krg__Proc__RunRequest *req, Krg__Proc__Rlimit *rl, Krg__Proc__Rlimit **rlp,
			     uint64_t cpu_soft, uint64_t cpu_hard)
{
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;
		if (getrlimit(i, &r) < 0)
			continue;
		if (i == RLIMIT_CPU && (cpu_hard || cpu_soft)) {
			if (cpu_hard)
				r.rlim_max = (rlim_t)cpu_hard;
			r.rlim_cur = cpu_soft ? (rlim_t)cpu_soft : r.rlim_max;
		}
		krg__proc__rlimit__init(&rl[req->n_rlimits]);
		rl[req->n_rlimits].resource = (uint32_t)i;
		rl[req->n_rlimits].cur = r.rlim_cur;
		rl[req->n_rlimits].max = r.rlim_max;
		rlp[req->n_rlimits] = &rl[req->n_rlimits];
		req->n_rlimits++;
	}
	req->rlimits = rlp;
}

int krg_run_client_init(struct krg_run_client *c, int sock, size_t window)
{
	*c = (struct krg_run_client){ .sock = sock, .window = window };
	c->in_cap = 2 * KRG_RUN_CHUNK + 64;
	c->in = malloc(c->in_cap);
	return c->in ? 0 : -ENOMEM;
}

void krg_run_client_free(struct krg_run_client *c)
{
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
}

static int add_frame(struct krg_run_client *c, const Krg__Proc__Io *io)
{
	size_t n = krg__proc__io__get_packed_size(io);
	if (c->out_off && (c->out_off == c->out_len || c->out_off >= OUT_COMPACT)) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_cap - c->out_len < n + 4) {
		size_t nc = c->out_cap ? c->out_cap : 4096;
		while (nc - c->out_len < n + 4)
			nc *= 2;
		uint8_t *np = realloc(c->out, nc);
		if (!np)
			return -ENOMEM;
		c->out = np;
		c->out_cap = nc;
	}
	uint8_t *o = c->out + c->out_len;
	o[0] = (uint8_t)(n >> 24);
	o[1] = (uint8_t)(n >> 16);
	o[2] = (uint8_t)(n >> 8);
	o[3] = (uint8_t)n;
	krg__proc__io__pack(io, o + 4);
	c->out_len += 4 + n;
	return 0;
}

int krg_run_client_signal(struct krg_run_client *c, int sig)
{
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_signal = true;
	io.signal = sig;
	return add_frame(c, &io);
}

int krg_run_client_winsize(struct krg_run_client *c, unsigned rows, unsigned cols)
{
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_rows = io.has_cols = true;
	io.rows = rows;
	io.cols = cols;
	return add_frame(c, &io);
}

int krg_run_client_stdin_eof(struct krg_run_client *c)
{
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_eof = io.eof = true;
	c->stdin_done = true;
	return add_frame(c, &io);
}

bool krg_run_client_wants_stdin(const struct krg_run_client *c, size_t max_queued)
{
	return !c->stdin_done && !c->wdead && c->out_len - c->out_off < max_queued &&
	       (!c->window || c->inflight < c->window);
}

ssize_t krg_run_client_read_stdin(struct krg_run_client *c, int fd)
{
	static uint8_t data[KRG_RUN_CHUNK];
	size_t want = sizeof(data);
	if (c->window && c->window - c->inflight < want)
		want = c->window - c->inflight;
	ssize_t n = read(fd, data, want);
	if (n < 0) {
		/* Kept before queuing EOF, which may allocate and change errno. */
		int e = errno;
		if (e == EINTR || e == EAGAIN)
			return -e;
		return krg_run_client_stdin_eof(c) < 0 ? -ENOMEM : -e;
	}
	if (n == 0)
		return krg_run_client_stdin_eof(c) < 0 ? -ENOMEM : 0;
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_data = true;
	io.data.data = data;
	io.data.len = (size_t)n;
	c->inflight += (size_t)n;
	return add_frame(c, &io) < 0 ? -ENOMEM : n;
}

short krg_run_client_events(const struct krg_run_client *c)
{
	return (short)(POLLIN | (c->out_len > c->out_off && !c->wdead ? POLLOUT : 0));
}

void krg_run_client_send(struct krg_run_client *c)
{
	if (c->wdead || c->out_len == c->out_off)
		return;
	ssize_t k = send(c->sock, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (k > 0) {
		c->out_off += (size_t)k;
	} else if (k < 0 && errno != EAGAIN && errno != EINTR) {
		/* krgd ends the stream after the exit frame: it may close
		 * before it read all we sent. Read on: the last frame tells
		 * how it ended. */
		c->wdead = errno;
		c->out_len = c->out_off = 0;
	}
}

void krg_run_client_flush(struct krg_run_client *c, int timeout_ms)
{
	while (!c->wdead && c->out_len > c->out_off) {
		struct pollfd pf = { .fd = c->sock, .events = POLLOUT };
		if (poll(&pf, 1, timeout_ms) <= 0)
			return;
		krg_run_client_send(c);
	}
}

int krg_run_client_recv(struct krg_run_client *c, const struct krg_run_client_cbs *cbs, void *data)
{
	if (c->in_cap - c->in_len < KRG_RUN_CHUNK + 64) {
		uint8_t *np = realloc(c->in, c->in_cap * 2);
		if (!np)
			return -ENOMEM;
		c->in = np;
		c->in_cap *= 2;
	}
	ssize_t k = recv(c->sock, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (k < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -ECONNRESET;
	if (k == 0)
		return -ECONNRESET;
	c->in_len += (size_t)k;
	size_t off = 0;
	int r = 0;
	while (r == 0 && c->in_len - off >= 4) {
		const uint8_t *h = c->in + off;
		uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (n == 0 || n > KRG_API_MAX_FRAME)
			return -EBADMSG;
		if (c->in_len - off - 4 < n)
			break;
		Krg__Proc__Io *io = krg__proc__io__unpack(NULL, n, h + 4);
		off += 4 + n;
		if (!io)
			return -EBADMSG;
		if (io->has_data && io->has_fd && (io->fd == 1 || io->fd == 2) && cbs->output)
			cbs->output(data, io->fd, io->data.data, io->data.len);
		if (io->has_stdin_credit)
			c->inflight -= io->stdin_credit < c->inflight ? io->stdin_credit : c->inflight;
		if (io->error || (io->has_exited && io->exited)) {
			if (cbs->ended)
				cbs->ended(data, io);
			r = 1;
		}
		krg__proc__io__free_unpacked(io, NULL);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return r;
}
