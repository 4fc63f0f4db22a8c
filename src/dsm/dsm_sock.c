/* dsm_sock.c — a DSM node's event loop over stream sockets (dsm_sock.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include "dsm/dsm_sock.h"
#include "lib/log.h"

struct dsm_sock {
	struct dsm_node *node;
	struct dsm_config cfg;
	int peers[DSM_MAX_NODES];
	int stopfd;
	pthread_t thread;
	pthread_mutex_t lock;     /* held by the loop while it runs the node */
};

static int write_full(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

static int sock_send(void *ctx, uint32_t to, const uint8_t *buf, size_t len)
{
	struct dsm_sock *s = ctx;
	if (to >= s->cfg.nnodes || s->peers[to] < 0)
		return -ENOTCONN;
	uint8_t hdr[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
		(uint8_t)(len >> 24) };
	struct iovec iov[2] = { { hdr, 4 }, { (void *)buf, len } };
	return write_full(s->peers[to], iov, 2);
}

static int recv_one(struct dsm_sock *s, uint32_t from)
{
	uint8_t hdr[4], buf[DSM_PAGE_SIZE + 256];
	int r = read_full(s->peers[from], hdr, 4);
	if (r < 0)
		return r;
	size_t len = hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
	if (len > sizeof buf)
		return -EMSGSIZE;
	r = read_full(s->peers[from], buf, len);
	if (r < 0)
		return r;
	dsm_node_deliver(s->node, from, buf, len);
	return 0;
}

static void *loop(void *arg)
{
	struct dsm_sock *s = arg;
	struct pollfd p[DSM_MAX_NODES + 2];
	uint32_t who[DSM_MAX_NODES + 2];
	for (;;) {
		nfds_t n = 0;
		p[n++] = (struct pollfd){ .fd = s->stopfd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = dsm_node_uffd(s->node), .events = POLLIN };
		for (uint32_t i = 0; i < s->cfg.nnodes; i++) {
			if (s->peers[i] < 0)
				continue;
			who[n] = i;
			p[n++] = (struct pollfd){ .fd = s->peers[i], .events = POLLIN };
		}
		int timeout = -1;
		uint64_t dl = dsm_node_next_deadline(s->node);
		if (dl != UINT64_MAX) {
			uint64_t now = dsm_now_ns();
			timeout = dl <= now ? 0 : (int)((dl - now + 999999) / 1000000);
		}
		if (poll(p, n, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		pthread_mutex_lock(&s->lock);
		if (p[1].revents & POLLIN)
			dsm_node_fault(s->node);
		for (nfds_t i = 2; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (recv_one(s, who[i]) < 0) {
				close(s->peers[who[i]]);
				s->peers[who[i]] = -1;
			}
		}
		dsm_node_tick(s->node, dsm_now_ns());
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

int dsm_sock_start(const struct dsm_config *cfg, const int *peers, struct dsm_sock **out)
{
	struct dsm_sock *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	for (uint32_t i = 0; i < DSM_MAX_NODES; i++)
		s->peers[i] = i < cfg->nnodes && i != cfg->self ? peers[i] : -1;
	pthread_mutex_init(&s->lock, NULL);
	int r = dsm_node_new(cfg, sock_send, s, &s->node);
	if (r < 0)
		goto fail;
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	if (s->stopfd < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&s->thread, NULL, loop, s);
	if (r < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->stopfd > 0)
		close(s->stopfd);
	dsm_node_free(s->node);
	for (uint32_t i = 0; i < cfg->nnodes; i++)
		if (s->peers[i] >= 0)
			close(s->peers[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return r;
}

void dsm_sock_stop(struct dsm_sock *s)
{
	if (!s)
		return;
	uint64_t one = 1;
	if (write(s->stopfd, &one, sizeof one) < 0)
		log_error("dsm: stopping the loop: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->stopfd);
	for (uint32_t i = 0; i < s->cfg.nnodes; i++)
		if (s->peers[i] >= 0)
			close(s->peers[i]);
	dsm_node_free(s->node);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct dsm_node *dsm_sock_node(struct dsm_sock *s) { return s->node; }

void dsm_sock_stats(struct dsm_sock *s, struct dsm_stats *out)
{
	pthread_mutex_lock(&s->lock);
	dsm_node_stats(s->node, out);
	pthread_mutex_unlock(&s->lock);
}

int dsm_sock_attach(struct dsm_sock *s, int uffd, uint64_t base)
{
	pthread_mutex_lock(&s->lock);
	int r = dsm_node_attach(s->node, uffd, base);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void dsm_sock_detach(struct dsm_sock *s, int view)
{
	pthread_mutex_lock(&s->lock);
	dsm_node_detach(s->node, view);
	pthread_mutex_unlock(&s->lock);
}
