/* rpc_bench.c — krg-bench-rpc: the transport against raw TCP between two
 * hosts (two vcluster nodes, or 127.0.0.1), same sizes, same run.
 *
 *   krg-bench-rpc server --host ADDR --port P
 *       krg_net node 2 with encrypt on at P and off at P+1, raw TCP at P+2.
 *   krg-bench-rpc client --host ADDR --peer ADDR --port P --encrypt on|off
 *                        [--count N] [--size B] [--bulk BYTES] [--chunk BYTES]
 *       node 1: N small round trips and BYTES of bulk over krg_net, the same
 *       over raw TCP, one line each with the ratio.
 *   ... client ... --echo R
 *       node 1, R rounds of BYTES there and back (raw TCP to an echo
 *       server; krg_net's bulk channel, each message sent back) and one
 *       way (the sink above): the baselines of a remote `cat`
 *       (bench/run), one line per round, in MiB/s.
 *
 * Benchmark only: the cluster key is a fixed hash, not a secret. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "lib/log.h"
#include "net/net.h"

static const char *host = "127.0.0.1", *peer_host = "127.0.0.1";
static unsigned port = 7790, count = 20000;
static size_t msg_size = 64, bulk_total = 1ull << 30, chunk = 1u << 20;
static bool encrypt = true;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void percentiles(double *v, size_t n, double *med, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_d);
	*med = v[n / 2];
	*p99 = v[(size_t)(n * 0.99)];
}

static void die(const char *what)
{
	fprintf(stderr, "krg-bench-rpc: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	return fd;
}

static struct sockaddr_in sin_of(const char *h, unsigned p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
	if (inet_pton(AF_INET, h, &sa.sin_addr) != 1) {
		fprintf(stderr, "krg-bench-rpc: bad address %s\n", h);
		exit(2);
	}
	return sa;
}

static bool read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = write(fd, (const char *)buf + off, n - off);
		if (r <= 0)
			return false;
		off += (size_t)r;
	}
	return true;
}

/* ---- raw TCP: 'E' + u32 size = echo fixed-size messages; 'B' + u64 total
 * = sink that many bytes then answer one byte ------------------------------ */

static void *raw_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t mode;
	if (!read_full(fd, &mode, 1))
		goto out;
	if (mode == 'E') {
		uint32_t sz;
		if (!read_full(fd, &sz, 4) || sz > (1u << 20))
			goto out;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		uint8_t *b = malloc(sz);
		while (read_full(fd, b, sz) && write_full(fd, b, sz))
			;
		free(b);
	} else if (mode == 'R' || mode == 'B') {
		/* A stream of that many bytes: echoed back as it comes (R), or
		 * taken and answered with one byte at its end (B). */
		uint64_t total, got = 0;
		if (!read_full(fd, &total, 8))
			goto out;
		size_t bl = 1u << 20;
		uint8_t *b = malloc(bl);
		while (got < total) {
			ssize_t r = read(fd, b, bl);
			if (r <= 0 || (mode == 'R' && !write_full(fd, b, (size_t)r)))
				break;
			got += (uint64_t)r;
		}
		if (mode == 'B')
			write_full(fd, "k", 1);
		free(b);
	}
out:
	close(fd);
	return NULL;
}

static void *raw_server(void *arg)
{
	int ls = tcp_socket();
	struct sockaddr_in sa = sin_of(host, port + 2);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 16) < 0)
		die("raw listen");
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t t;
		pthread_create(&t, NULL, raw_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

static int raw_connect(char mode, const void *arg, size_t arglen)
{
	int fd = tcp_socket();
	struct sockaddr_in sa = sin_of(peer_host, port + 2);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("raw connect");
	if (!write_full(fd, &mode, 1) || !write_full(fd, arg, arglen))
		die("raw write");
	return fd;
}

static void raw_rtt(double *med, double *p99)
{
	uint32_t sz = (uint32_t)msg_size;
	int fd = raw_connect('E', &sz, 4);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	uint8_t *b = calloc(1, msg_size);
	double *v = malloc(count * sizeof(*v));
	for (unsigned i = 0; i < count; i++) {
		double t0 = now_us();
		if (!write_full(fd, b, msg_size) || !read_full(fd, b, msg_size))
			die("raw echo");
		v[i] = now_us() - t0;
	}
	percentiles(v, count, med, p99);
	free(v);
	free(b);
	close(fd);
}

static double raw_bulk(void)
{
	uint64_t total = bulk_total;
	int fd = raw_connect('B', &total, 8);
	uint8_t *b = malloc(chunk);
	memset(b, 0x5a, chunk);
	double t0 = now_us();
	for (uint64_t off = 0; off < total; off += chunk)
		if (!write_full(fd, b, MIN(chunk, total - off)))
			die("raw bulk");
	char k;
	if (!read_full(fd, &k, 1))
		die("raw bulk ack");
	double dt = now_us() - t0;
	free(b);
	close(fd);
	return total / dt; /* bytes/us = MB/s */
}

struct echo_writer {
	int fd;
	uint64_t total;
};

static void *raw_echo_writer(void *arg)
{
	struct echo_writer *w = arg;
	uint8_t *b = malloc(chunk);
	memset(b, 0x5a, chunk);
	for (uint64_t off = 0; off < w->total; off += chunk)
		if (!write_full(w->fd, b, MIN(chunk, w->total - off)))
			die("raw echo write");
	free(b);
	return NULL;
}

/* bulk_total bytes there and back through a raw TCP echo: MB/s of the
 * bytes moved one way (each crosses the link twice). */
static double raw_echo(void)
{
	uint64_t total = bulk_total;
	struct echo_writer w = { raw_connect('R', &total, 8), total };
	uint8_t *b = malloc(1u << 20);
	double t0 = now_us();
	pthread_t t;
	pthread_create(&t, NULL, raw_echo_writer, &w);
	for (uint64_t got = 0; got < total;) {
		ssize_t r = read(w.fd, b, 1u << 20);
		if (r <= 0)
			die("raw echo read");
		got += (uint64_t)r;
	}
	double dt = now_us() - t0;
	pthread_join(t, NULL);
	free(b);
	close(w.fd);
	return total / dt;
}

/* ---- krg_net ----------------------------------------------------------- */

static uv_loop_t loop;

static struct krg_net *make_net(uint32_t self, const char *listen, unsigned lport, const char *phost, unsigned pport,
				bool enc)
{
	struct krg_net_peer_addr p = { .id = self == 1 ? 2 : 1, .port = (uint16_t)pport };
	snprintf(p.host, sizeof(p.host), "%s", phost);
	struct krg_net_options o = {
		.self_id = self, .cluster_name = "bench", .listen_host = listen, .listen_port = (uint16_t)lport,
		.peers = &p, .n_peers = 1, .encrypt = enc, .heartbeat_ms = 500, .request_timeout_ms = 10000,
	};
	crypto_generichash(o.key, sizeof(o.key), (const uint8_t *)"krg-bench-key", 13, NULL, 0);
	struct krg_net *net;
	char err[160];
	if (krg_net_new(&loop, &o, &net) < 0 || krg_net_start(net, err, sizeof(err)) < 0) {
		fprintf(stderr, "krg-bench-rpc: %s\n", err);
		exit(1);
	}
	return net;
}

/* server side */
static uint64_t srv_expect, srv_got;

static void srv_echo(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	krg_net_reply(net, from, req_id, 0, m->body, m->len);
}

static void srv_bulkstart(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	memcpy(&srv_expect, m->body, 8);
	srv_got = 0;
	krg_net_reply(net, from, req_id, 0, NULL, 0);
}

static void srv_bulk(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	srv_got += m->len;
	if (srv_got == srv_expect)
		krg_net_send(net, from, "bench.bulkdone", NULL, 0);
}

static void srv_echo_done(int status, void *data)
{
	free(data);
}

/* Echo of bulk: each message goes back on the bulk channel. */
static void srv_becho(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	uint8_t *c = malloc(m->len ? m->len : 1);
	memcpy(c, m->body, m->len);
	if (krg_net_send_bulk(net, from, "bench.bback", c, m->len, srv_echo_done, c) < 0)
		free(c);
}

static int server(void)
{
	pthread_t t;
	pthread_create(&t, NULL, raw_server, NULL);
	for (int enc = 0; enc < 2; enc++) {
		/* the client listens at P+10 (encrypt on) / P+11 (off) */
		struct krg_net *net = make_net(2, host, port + (enc ? 0 : 1), peer_host, port + (enc ? 10 : 11), enc);
		krg_net_handle(net, "bench.echo", srv_echo, NULL);
		krg_net_handle(net, "bench.bulkstart", srv_bulkstart, NULL);
		krg_net_handle(net, "bench.bulk", srv_bulk, NULL);
		krg_net_handle(net, "bench.becho", srv_becho, NULL);
	}
	printf("ready\n");
	fflush(stdout);
	return uv_run(&loop, UV_RUN_DEFAULT);
}

/* client side: a little state machine driven by callbacks */
static struct krg_net *cnet;
static double *rtts, t_start, bulk_mbps;
static unsigned done_rtt;
static size_t bulk_sent, bulk_inflight;
static uint8_t *bulk_buf, *msg_buf;
static bool finished;

static void next_request(void);
static void bulk_pump(void);
static void on_bulkstart(struct krg_net *net, int status, const struct krg_msg *reply, void *data);
static bool echo;            /* --echo N: bulk there and back, N rounds */
static unsigned echo_rounds, echo_round;
static double *echo_mbps, *oneway_mbps;
static uint64_t echo_got;

static void on_echo(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	if (status) {
		fprintf(stderr, "krg-bench-rpc: request failed: %s\n", strerror(-status));
		exit(1);
	}
	rtts[done_rtt++] = now_us() - t_start;
	next_request();
}

static void on_bulk_done(int status, void *data)
{
	if (status) {
		fprintf(stderr, "krg-bench-rpc: bulk failed: %s\n", strerror(-status));
		exit(1);
	}
	bulk_inflight--;
	bulk_pump();
}

static void bulk_pump(void)
{
	while (bulk_inflight < 8 && bulk_sent < bulk_total) {
		size_t n = MIN(chunk, bulk_total - bulk_sent);
		int r = krg_net_send_bulk(cnet, 2, echo ? "bench.becho" : "bench.bulk", bulk_buf, n, on_bulk_done, NULL);
		if (r < 0) {
			fprintf(stderr, "krg-bench-rpc: send_bulk: %s\n", strerror(-r));
			exit(1);
		}
		bulk_sent += n;
		bulk_inflight++;
	}
}

static void cl_bulkdone(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	bulk_mbps = bulk_total / (now_us() - t_start);
	if (echo_rounds) {
		oneway_mbps[echo_round++] = bulk_mbps;
		if (echo_round < echo_rounds) {
			uint64_t total = bulk_total;
			bulk_sent = 0;
			krg_net_request(cnet, 2, "bench.bulkstart", &total, 8, 0, on_bulkstart, NULL);
			return;
		}
	}
	finished = true;
	uv_stop(&loop);
}

static void echo_start(void)
{
	bulk_sent = 0;
	echo_got = 0;
	t_start = now_us();
	bulk_pump();
}

static void cl_bback(struct krg_net *net, uint32_t from, const struct krg_msg *m, uint64_t req_id, void *data)
{
	echo_got += m->len;
	if (echo_got < bulk_total)
		return;
	echo_mbps[echo_round++] = bulk_total / (now_us() - t_start);
	if (echo_round < echo_rounds) {
		echo_start();
		return;
	}
	/* Then the same bytes one way (bench.bulk), as many rounds. */
	echo = false;
	echo_round = 0;
	bulk_sent = 0;
	uint64_t total = bulk_total;
	krg_net_request(cnet, 2, "bench.bulkstart", &total, 8, 0, on_bulkstart, NULL);
}

static void on_bulkstart(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	t_start = now_us();
	bulk_pump();
}

static void next_request(void)
{
	if (done_rtt == count && echo) {
		echo_start();
		return;
	}
	if (done_rtt == count) {
		uint64_t total = bulk_total;
		krg_net_request(cnet, 2, "bench.bulkstart", &total, 8, 0, on_bulkstart, NULL);
		return;
	}
	t_start = now_us();
	int r = krg_net_request(cnet, 2, "bench.echo", msg_buf, msg_size, 0, on_echo, NULL);
	if (r < 0) {
		fprintf(stderr, "krg-bench-rpc: request: %s\n", strerror(-r));
		exit(1);
	}
}

static void on_peer(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	if (up && !rtts) {
		rtts = malloc(count * sizeof(*rtts));
		next_request();
	}
}

/* --echo: raw TCP echo rounds, then krg transport echo rounds, each line
 * in MiB/s of the bytes (each crosses the link there and back). */
static int client_echo(void)
{
	double *raw = malloc(echo_rounds * sizeof(*raw)), *raw1 = malloc(echo_rounds * sizeof(*raw1));
	echo_mbps = malloc(echo_rounds * sizeof(*echo_mbps));
	oneway_mbps = malloc(echo_rounds * sizeof(*oneway_mbps));
	for (unsigned i = 0; i < echo_rounds; i++) {
		raw[i] = raw_echo();
		raw1[i] = raw_bulk();
	}
	bulk_buf = malloc(chunk);
	memset(bulk_buf, 0x5a, chunk);
	msg_buf = calloc(1, msg_size);
	cnet = make_net(1, host, port + (encrypt ? 10 : 11), peer_host, port + (encrypt ? 0 : 1), encrypt);
	krg_net_handle(cnet, "bench.bback", cl_bback, NULL);
	krg_net_handle(cnet, "bench.bulkdone", cl_bulkdone, NULL);
	krg_net_on_peer(cnet, on_peer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!finished)
		return 1;
	const double mib = 1.048576; /* MB/s per MiB/s */
	for (unsigned i = 0; i < echo_rounds; i++)
		printf("%zu MiB in %zu KiB encrypt=%s MiB/s: echo krg %.0f raw %.0f one-way krg %.0f raw %.0f\n",
		       bulk_total >> 20, chunk >> 10, encrypt ? "on" : "off", echo_mbps[i] / mib, raw[i] / mib,
		       oneway_mbps[i] / mib, raw1[i] / mib);
	fflush(stdout);
	return 0;
}

static int client(void)
{
	double raw_med, raw_p99, krg_med, krg_p99;
	if (echo)
		return client_echo();
	raw_rtt(&raw_med, &raw_p99);
	double raw_mbps = raw_bulk();

	msg_buf = calloc(1, msg_size);
	bulk_buf = malloc(chunk);
	memset(bulk_buf, 0x5a, chunk);
	cnet = make_net(1, host, port + (encrypt ? 10 : 11), peer_host, port + (encrypt ? 0 : 1), encrypt);
	krg_net_handle(cnet, "bench.bulkdone", cl_bulkdone, NULL);
	krg_net_on_peer(cnet, on_peer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!finished)
		return 1;
	percentiles(rtts, count, &krg_med, &krg_p99);
	const char *e = encrypt ? "on " : "off";
	printf("encrypt=%s rtt  %u x %zu B: krg median %.1f us p99 %.1f us | raw median %.1f us p99 %.1f us | "
	       "ratio %.2f\n",
	       e, count, msg_size, krg_med, krg_p99, raw_med, raw_p99, krg_med / raw_med);
	printf("encrypt=%s bulk %zu MiB in %zu KiB: krg %.0f MB/s | raw %.0f MB/s | ratio %.2f\n", e, bulk_total >> 20,
	       chunk >> 10, bulk_mbps, raw_mbps, bulk_mbps / raw_mbps);
	fflush(stdout);
	return 0;
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'G': case 'g': v *= 1 << 30; break;
	case 'M': case 'm': v *= 1 << 20; break;
	case 'K': case 'k': v *= 1 << 10; break;
	}
	return (size_t)v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },  { "peer", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },  { "encrypt", required_argument, NULL, 'e' },
		{ "count", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "bulk", required_argument, NULL, 'b' },  { "chunk", required_argument, NULL, 'c' },
		{ "echo", required_argument, NULL, 'E' },  { NULL, 0, NULL, 0 },
	};
	if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: krg-bench-rpc server|client --host A [--peer A] [--port P] [--encrypt on|off]\n"
				"       [--count N] [--size B] [--bulk BYTES] [--chunk BYTES] [--echo ROUNDS]\n");
		return 2;
	}
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h': host = optarg; break;
		case 'p': peer_host = optarg; break;
		case 'P': port = (unsigned)atoi(optarg); break;
		case 'e': encrypt = strcmp(optarg, "off") != 0; break;
		case 'n': count = (unsigned)atoi(optarg); break;
		case 's': msg_size = parse_size(optarg); break;
		case 'b': bulk_total = parse_size(optarg); break;
		case 'c': chunk = parse_size(optarg); break;
		case 'E': echo = true; echo_rounds = (unsigned)atoi(optarg); break;
		default: return 2;
		}
	}
	if (!count || !msg_size || !chunk || (echo && !echo_rounds))
		return 2;
	if (sodium_init() < 0)
		return 1;
	krg_log_set_level(LOG_LVL_WARN);
	/* As krgd (src/krgd/main.c): frame buffers come from the heap, not
	 * from a fresh mmap (page faults on every MiB) each time. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	uv_loop_init(&loop);
	return strcmp(argv[1], "server") == 0 ? server() : client();
}
