/* test_net.c — the transport end to end on 127.0.0.1: several krg_net
 * instances on one uv loop in one thread, plus raw sockets playing a
 * hostile peer. Log lines are captured (stderr) and checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include "lib/log.h"
#include "net/net.h"

#define HB 100
#define MAXN 4

static uv_loop_t loop;
static uint8_t key_a[32], key_b[32];

struct node {
	struct krg_net *net;
	uint32_t id;
	uint16_t port;
	int ups, downs, ups2;
	int fatal_err;
	char fatal_msg[256];
	int msgs;
	bool closed;
};

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void on_peer(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct node *n = data;
	if (up)
		n->ups++;
	else
		n->downs++;
}

static void on_peer2(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct node *n = data;
	n->ups2 += up;
}

static void on_fatal(struct krg_net *net, int err, const char *msg, void *data)
{
	struct node *n = data;
	n->fatal_err = err;
	snprintf(n->fatal_msg, sizeof(n->fatal_msg), "%s", msg);
}

/* Lazy links for the nodes started next (test_lazy): idle_close_ms. */
static unsigned lazy_idle_ms;

/* Start node `id` listening on `port`, knowing the nodes in ids/ports. */
static void node_start(struct node *n, uint32_t id, uint16_t port, const uint32_t *ids, const uint16_t *ports,
		       size_t count, const uint8_t *key, bool encrypt)
{
	struct krg_net_peer_addr peers[MAXN];
	for (size_t i = 0; i < count; i++) {
		peers[i] = (struct krg_net_peer_addr){ .id = ids[i], .port = ports[i] };
		strcpy(peers[i].host, "127.0.0.1");
	}
	struct krg_net_options o = {
		.self_id = id, .cluster_name = "test", .listen_host = "127.0.0.1", .listen_port = port,
		.peers = peers, .n_peers = count, .encrypt = encrypt, .heartbeat_ms = HB,
		.request_timeout_ms = 2000, .fatal_cb = on_fatal,
		.lazy_links = lazy_idle_ms > 0, .idle_close_ms = lazy_idle_ms,
	};
	memcpy(o.key, key, 32);
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->port = port;
	o.data = n;
	assert_int_equal(krg_net_new(&loop, &o, &n->net), 0);
	krg_net_on_peer(n->net, on_peer, n);
	krg_net_on_peer(n->net, on_peer2, n);
	char err[128];
	assert_int_equal(krg_net_start(n->net, err, sizeof(err)), 0);
}

static void on_closed(void *data) { ((struct node *)data)->closed = true; }

/* Run the loop until *flag (or cond) or timeout; returns whether it held. */
#define RUN_UNTIL(cond, ms)                                                  \
	({                                                                   \
		uint64_t _end = uv_now(&loop) + (ms);                        \
		while (!(cond) && uv_now(&loop) < _end)                      \
			uv_run(&loop, UV_RUN_ONCE);                          \
		(bool)(cond);                                                \
	})

static void run_for(unsigned ms)
{
	uint64_t end = uv_now(&loop) + ms;
	while (uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
}

static void node_stop(struct node *n)
{
	krg_net_close(n->net, on_closed, n);
	assert_true(RUN_UNTIL(n->closed, 5000));
	n->net = NULL;
}

/* ---- stderr capture for log assertions --------------------------------- */

static int saved_stderr = -1;
static char cap_path[64];

static void capture_start(void)
{
	strcpy(cap_path, "/tmp/krg-test-net-XXXXXX");
	int fd = mkstemp(cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Stop capturing; true if the captured text contains needle. The text is
 * echoed to the real stderr so failures show the log. */
static bool capture_has(const char *needle)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	FILE *f = fopen(cap_path, "r");
	static char buf[1 << 20];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	unlink(cap_path);
	fwrite(buf, 1, n, stderr);
	return strstr(buf, needle) != NULL;
}

/* ---- handlers ---------------------------------------------------------- */

static void echo_handler(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct node *n = data;
	n->msgs++;
	if (req_id)
		krg_net_reply(net, from, req_id, 0, msg->body, msg->len);
}

static void fail_handler(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	krg_net_reply(net, from, req_id, -EPERM, NULL, 0);
}

static void silent_handler(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id,
			   void *data)
{
}

struct result {
	int calls;
	int status;
	char body[256];
	size_t len;
};

static void on_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct result *r = data;
	r->calls++;
	r->status = status;
	if (reply) {
		r->len = reply->len < sizeof(r->body) ? reply->len : sizeof(r->body);
		memcpy(r->body, reply->body, r->len);
	}
}

/* ---- fixtures ---------------------------------------------------------- */

static struct node A, B, C;
static uint32_t ids2[2] = { 1, 2 };
static uint16_t ports2[2];

static int setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	randombytes_buf(key_a, sizeof(key_a));
	randombytes_buf(key_b, sizeof(key_b));
	ports2[0] = free_port();
	ports2[1] = free_port();
	return uv_loop_init(&loop);
}

static int teardown(void **state)
{
	struct node *all[] = { &A, &B, &C };
	for (size_t i = 0; i < 3; i++)
		if (all[i]->net)
			node_stop(all[i]);
	lazy_idle_ms = 0;
	uv_run(&loop, UV_RUN_DEFAULT);
	int r = uv_loop_close(&loop); /* -EBUSY if any handle leaked */
	assert_int_equal(r, 0);
	return 0;
}

static void start_pair(const uint8_t *kb, bool enc_a, bool enc_b)
{
	node_start(&A, 1, ports2[0], ids2, ports2, 2, key_a, enc_a);
	node_start(&B, 2, ports2[1], ids2, ports2, 2, kb, enc_b);
}

static bool both_up(void) { return krg_net_peer_up(A.net, 2) && krg_net_peer_up(B.net, 1); }

/* ---- tests ------------------------------------------------------------- */

static void test_handshake_ok(void **state)
{
	start_pair(key_a, true, true);
	assert_true(RUN_UNTIL(both_up(), 3000));
	assert_int_equal(A.ups, 1);
	assert_int_equal(A.ups2, 1); /* every registration is called */
	assert_int_equal(B.ups, 1);
	assert_true(krg_net_last_heard(A.net, 2) > 0);
	assert_int_equal(krg_net_self(B.net), 2);
	/* keepalives keep it up and last_heard fresh */
	run_for(6 * HB);
	assert_true(both_up());
	assert_int_equal(A.downs, 0);
	assert_true(uv_now(&loop) - krg_net_last_heard(A.net, 2) <= 2 * HB);
	assert_int_equal(krg_net_port(A.net), ports2[0]);
}

static void test_wrong_key(void **state)
{
	capture_start();
	start_pair(key_b, true, true);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	run_for(1200);
	bool up = krg_net_peer_up(A.net, 2) || krg_net_peer_up(B.net, 1);
	int r = krg_net_send(A.net, 2, "t.echo", "x", 1);
	run_for(100);
	bool logged = capture_has("failed authentication (wrong cluster key?)");
	assert_false(up);
	assert_int_equal(r, -EHOSTUNREACH);
	assert_int_equal(B.msgs, 0);
	assert_int_equal(A.ups + B.ups, 0);
	assert_true(logged);
}

static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* True once the server closed the socket (EOF or reset), draining its Hello. */
static bool raw_closed(int fd)
{
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return true;
		if (n < 0)
			return false;
	}
}

static void test_hostile_bytes(void **state)
{
	capture_start();
	start_pair(key_a, true, true);
	krg_net_handle(A.net, "t.echo", echo_handler, &A);
	/* B stays away until the garbage is dealt with */
	node_stop(&B);

	int fds[4];
	fds[0] = raw_connect(ports2[0]);
	assert_true(write(fds[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27) == 27);
	fds[1] = raw_connect(ports2[0]);
	assert_true(write(fds[1], "\xff\xff\xff\xff", 4) == 4);
	fds[2] = raw_connect(ports2[0]);
	assert_true(write(fds[2], "\0\0\0\0", 4) == 4);
	fds[3] = raw_connect(ports2[0]);
	assert_true(write(fds[3], "\0\0\0\x64truncated", 13) == 13);
	shutdown(fds[3], SHUT_WR);
	assert_true(RUN_UNTIL(raw_closed(fds[0]) && raw_closed(fds[1]) && raw_closed(fds[2]) && raw_closed(fds[3]),
			      3000));
	/* a well-framed but garbage handshake */
	int g = raw_connect(ports2[0]);
	assert_true(write(g, "\0\0\0\x05zzzzz", 9) == 9);
	assert_true(RUN_UNTIL(raw_closed(g), 3000));
	close(g);
	for (int i = 0; i < 4; i++)
		close(fds[i]);

	/* the server still serves a good peer */
	node_start(&B, 2, ports2[1], ids2, ports2, 2, key_a, true);
	assert_true(RUN_UNTIL(both_up(), 3000));
	struct result res = { 0 };
	assert_int_equal(krg_net_request(B.net, 1, "t.echo", "hi", 2, 0, on_reply, &res), 0);
	assert_true(RUN_UNTIL(res.calls, 3000));
	bool l1 = capture_has("exceeds the limit");
	assert_int_equal(res.status, 0);
	assert_true(l1);
}

/* Idle connections that never say Hello: past MAX_UNAUTH_PER_ADDR from one
 * address the listener closes them at once; a real peer still gets in. */
static void test_unauth_flood(void **state)
{
	capture_start();
	start_pair(key_a, true, true);
	node_stop(&B);
	enum { N = 80 };
	int fds[N];
	for (int i = 0; i < N; i++)
		fds[i] = raw_connect(ports2[0]);
	run_for(300);
	int closed = 0;
	for (int i = 0; i < N; i++)
		closed += raw_closed(fds[i]);
	bool logged = capture_has("not yet authenticated");
	node_start(&B, 2, ports2[1], ids2, ports2, 2, key_a, true);
	/* B dials from 127.0.0.1 too: it gets in once A's handshake timeout
	 * has dropped the idle ones. */
	bool up = RUN_UNTIL(both_up(), 8000);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	assert_int_equal(closed, N - 32);
	assert_true(logged);
	assert_true(up);
}

static void test_hostile_log_lines(void **state)
{
	/* each rejection names the address and the reason */
	capture_start();
	node_start(&A, 1, ports2[0], ids2, ports2, 2, key_a, true);
	int f1 = raw_connect(ports2[0]);
	assert_true(write(f1, "\0\0\0\0", 4) == 4);
	int f2 = raw_connect(ports2[0]);
	assert_true(write(f2, "\0\0\0\x64trunc", 9) == 9);
	shutdown(f2, SHUT_WR);
	assert_true(RUN_UNTIL(raw_closed(f1) && raw_closed(f2), 3000));
	close(f1);
	close(f2);
	bool zero = capture_has("dropping connection from 127.0.0.1:");
	capture_start();
	int f3 = raw_connect(ports2[0]);
	assert_true(write(f3, "\0\0\0\0", 4) == 4);
	assert_true(RUN_UNTIL(raw_closed(f3), 3000));
	close(f3);
	bool zl = capture_has("frame length 0");
	assert_true(zero);
	assert_true(zl);
}

static void test_request_response(void **state)
{
	start_pair(key_a, true, true);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	krg_net_handle(B.net, "t.fail", fail_handler, &B);
	krg_net_handle(B.net, "t.silent", silent_handler, &B);
	assert_int_equal(krg_net_handle(B.net, "t.echo", echo_handler, &B), -EEXIST);
	/* no link yet: error at call time, callback never called */
	struct result r0 = { 0 };
	int r = krg_net_request(A.net, 2, "t.echo", "x", 1, 0, on_reply, &r0);
	if (!krg_net_peer_up(A.net, 2))
		assert_int_equal(r, -EHOSTUNREACH);
	assert_int_equal(krg_net_request(A.net, 9, "t.echo", "x", 1, 0, on_reply, &r0), -EHOSTUNREACH);
	assert_true(RUN_UNTIL(both_up(), 3000));
	if (r == 0)
		assert_true(RUN_UNTIL(r0.calls, 3000));

	struct result echo = { 0 }, unknown = { 0 }, failed = { 0 }, slow = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.echo", "hello", 5, 0, on_reply, &echo), 0);
	assert_int_equal(krg_net_request(A.net, 2, "t.nope", "?", 1, 0, on_reply, &unknown), 0);
	assert_int_equal(krg_net_request(A.net, 2, "t.fail", NULL, 0, 0, on_reply, &failed), 0);
	assert_int_equal(krg_net_request(A.net, 2, "t.silent", NULL, 0, 300, on_reply, &slow), 0);
	assert_true(RUN_UNTIL(echo.calls && unknown.calls && failed.calls && slow.calls, 3000));
	assert_int_equal(echo.status, 0);
	assert_int_equal(echo.len, 5);
	assert_memory_equal(echo.body, "hello", 5);
	assert_int_equal(unknown.status, -ENOENT);
	assert_int_equal(failed.status, -EPERM);
	assert_int_equal(slow.status, -ETIMEDOUT);
	/* one-way messages, also to an unknown type (logged, ignored) */
	assert_int_equal(krg_net_send(A.net, 2, "t.echo", "1", 1), 0);
	assert_int_equal(krg_net_send(A.net, 2, "t.unknown", "1", 1), 0);
	assert_true(RUN_UNTIL(B.msgs == 2, 2000));
	/* many in flight, both directions */
	krg_net_handle(A.net, "t.echo", echo_handler, &A);
	struct result many[200] = { 0 };
	for (int i = 0; i < 200; i++)
		assert_int_equal(krg_net_request(i & 1 ? A.net : B.net, i & 1 ? 2 : 1, "t.echo", &i, sizeof(i), 0,
						 on_reply, &many[i]),
				 0);
	bool all = RUN_UNTIL(({
		int k = 0;
		for (int i = 0; i < 200; i++)
			k += many[i].calls;
		k == 200;
	}), 5000);
	assert_true(all);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(many[i].calls, 1);
		assert_int_equal(many[i].status, 0);
		assert_memory_equal(many[i].body, &i, sizeof(i));
	}
	/* pending request when closing: called once with -ECANCELED */
	struct result pend = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.silent", NULL, 0, 5000, on_reply, &pend), 0);
	node_stop(&A);
	assert_int_equal(pend.calls, 1);
	assert_int_equal(pend.status, -ECANCELED);
	/* and the other side sees the link go */
	assert_true(RUN_UNTIL(B.downs == 1, 3000));
}

/* ---- to the node itself (krg_net_handle_self) ---------------------------- */

static int self_from = -1;
static bool self_in_call;  /* a handler must not run inside the sending call */

static void self_handler(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	assert_false(self_in_call);
	self_from = (int)from;
	echo_handler(net, from, msg, req_id, data);
}

static int self_bulk_done_status = 1;
static void self_bulk_done(int status, void *data)
{
	self_bulk_done_status = status;
}

static void test_self(void **state)
{
	start_pair(key_a, true, true);
	krg_net_handle(A.net, "t.self", self_handler, &A);
	krg_net_handle(A.net, "t.peer", echo_handler, &A);
	assert_int_equal(krg_net_handle_self(A.net, "t.none"), -ENOENT);
	assert_int_equal(krg_net_handle_self(A.net, "t.self"), 0);
	/* Not allowed for itself: as before, no link. */
	struct result no = { 0 };
	assert_int_equal(krg_net_send(A.net, 1, "t.peer", "x", 1), -EHOSTUNREACH);
	assert_int_equal(krg_net_request(A.net, 1, "t.peer", "x", 1, 0, on_reply, &no), -EHOSTUNREACH);
	/* A message, a request and a bulk message, in order, from the loop. */
	struct result echo = { 0 };
	self_in_call = true;
	assert_int_equal(krg_net_send(A.net, 1, "t.self", "1", 1), 0);
	assert_int_equal(krg_net_request(A.net, 1, "t.self", "hello", 5, 0, on_reply, &echo), 0);
	assert_int_equal(krg_net_send_bulk(A.net, 1, "t.self", "bulk", 4, self_bulk_done, NULL), 0);
	self_in_call = false;
	assert_int_equal(A.msgs, 0);
	assert_true(RUN_UNTIL(echo.calls && self_bulk_done_status == 0, 2000));
	assert_int_equal(A.msgs, 3);
	assert_int_equal(self_from, 1);
	assert_int_equal(echo.status, 0);
	assert_int_equal(echo.len, 5);
	assert_memory_equal(echo.body, "hello", 5);
	/* Pending at close: the bulk message's callback once, -ECANCELED. */
	self_bulk_done_status = 1;
	assert_int_equal(krg_net_send_bulk(A.net, 1, "t.self", "late", 4, self_bulk_done, NULL), 0);
	node_stop(&A);
	assert_int_equal(self_bulk_done_status, -ECANCELED);
}

/* ---- bulk -------------------------------------------------------------- */

#define BULK_CHUNK (1u << 20)
#define BULK_TOTAL (64u << 20)

struct bulk_state {
	uint8_t *buf; /* BULK_TOTAL of pattern */
	size_t sent, done, inflight;
	size_t received;
	uint64_t sum_rx;
	int errors;
	int out_of_order;
};
static struct bulk_state bs;

static void bulk_pump(void);

static void bulk_done(int status, void *data)
{
	if (status)
		bs.errors++;
	bs.done += BULK_CHUNK;
	bs.inflight--;
	bulk_pump();
}

static void bulk_pump(void)
{
	while (A.net && bs.inflight < 4 && bs.sent < BULK_TOTAL) {
		int r = krg_net_send_bulk(A.net, 2, "t.bulk", bs.buf + bs.sent, BULK_CHUNK, bulk_done, NULL);
		assert_int_equal(r, 0);
		bs.sent += BULK_CHUNK;
		bs.inflight++;
	}
}

static void bulk_handler(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (msg->len != BULK_CHUNK || memcmp(msg->body, bs.buf + bs.received, 64) != 0)
		bs.out_of_order++;
	bs.received += msg->len;
}

static void run_bulk(bool encrypt)
{
	start_pair(key_a, encrypt, encrypt);
	krg_net_handle(B.net, "t.bulk", bulk_handler, &B);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	assert_true(RUN_UNTIL(both_up(), 3000));
	memset(&bs, 0, sizeof(bs));
	bs.buf = malloc(BULK_TOTAL);
	for (size_t i = 0; i < BULK_TOTAL / 8; i++)
		((uint64_t *)bs.buf)[i] = i * 0x9e3779b97f4a7c15ull;
	bulk_pump();
	/* a control round trip while the bulk stream runs */
	struct result ctl = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.echo", "ping", 4, 5000, on_reply, &ctl), 0);
	assert_true(RUN_UNTIL(ctl.calls, 5000));
	size_t rx_at_ctl = bs.received;
	assert_int_equal(ctl.status, 0);
	assert_true(RUN_UNTIL(bs.received == BULK_TOTAL && bs.done == BULK_TOTAL, 20000));
	print_message("control reply after %zu of %u MiB bulk\n", rx_at_ctl >> 20, BULK_TOTAL >> 20);
	assert_int_equal(bs.errors, 0);
	assert_int_equal(bs.out_of_order, 0);
	/* too big for one frame */
	assert_int_equal(krg_net_send_bulk(A.net, 2, "t.bulk", bs.buf, 17u << 20, bulk_done, NULL), -EMSGSIZE);
	free(bs.buf);
}

static void test_bulk(void **state) { run_bulk(true); }
static void test_bulk_plain(void **state) { run_bulk(false); }

static void test_reconnect(void **state)
{
	start_pair(key_a, true, true);
	krg_net_handle(B.net, "t.silent", silent_handler, &B);
	assert_true(RUN_UNTIL(both_up(), 3000));
	struct result pend = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.silent", NULL, 0, 10000, on_reply, &pend), 0);
	run_for(50);
	node_stop(&B);
	assert_true(RUN_UNTIL(A.downs == 1, 3000));
	assert_int_equal(pend.calls, 1);
	assert_int_equal(pend.status, -ECONNRESET);
	assert_false(krg_net_peer_up(A.net, 2));
	run_for(500); /* A retries against a closed port meanwhile */
	node_start(&B, 2, ports2[1], ids2, ports2, 2, key_a, true);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	assert_true(RUN_UNTIL(both_up(), 3000));
	assert_int_equal(A.ups, 2);
	struct result echo = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.echo", "again", 5, 0, on_reply, &echo), 0);
	assert_true(RUN_UNTIL(echo.calls, 3000));
	assert_int_equal(echo.status, 0);
}

/* Relaxed links (neither end a raft voter): pings every 10 s, announced in
 * the ping, so the peer waits for them and does not call the link silent
 * after 4 heartbeats; back to close, pings resume at once. */
static void test_relaxed(void **state)
{
	start_pair(key_a, true, true);
	assert_true(RUN_UNTIL(both_up(), 3000));
	run_for(5 * HB); /* the bulk links follow */
	/* Only A relaxed: B still pings every heartbeat, A's silence is fine. */
	krg_net_set_relaxed(A.net, 2, true);
	run_for(8 * HB);
	assert_true(both_up());
	assert_int_equal(A.downs + B.downs, 0);
	assert_true(uv_now(&loop) - krg_net_last_heard(A.net, 2) <= 2 * HB);
	assert_true(uv_now(&loop) - krg_net_last_heard(B.net, 1) > 4 * HB);
	/* Both relaxed: silence both ways, links up. */
	krg_net_set_relaxed(B.net, 1, true);
	run_for(8 * HB);
	assert_true(both_up());
	assert_int_equal(A.downs + B.downs, 0);
	assert_true(uv_now(&loop) - krg_net_last_heard(A.net, 2) > 4 * HB);
	/* Close again: both hear each other within a heartbeat or two. */
	krg_net_set_relaxed(A.net, 2, false);
	krg_net_set_relaxed(B.net, 1, false);
	run_for(3 * HB);
	assert_true(uv_now(&loop) - krg_net_last_heard(A.net, 2) <= 2 * HB);
	assert_true(uv_now(&loop) - krg_net_last_heard(B.net, 1) <= 2 * HB);
	assert_true(both_up());
	assert_int_equal(A.downs + B.downs, 0);
}

static bool linked_either(void) { return krg_net_peer_linked(A.net, 2) || krg_net_peer_linked(B.net, 1); }

/* Lazy links (docs/protocol.md): nothing dialed at start; a request dials
 * and waits for the link; an idle link closes by agreement without a
 * peer-down event, and the next message (either way) dials again; a peer
 * that does not answer fails what waited after 3 s and is unreachable. */
static void test_lazy(void **state)
{
	lazy_idle_ms = 300;
	start_pair(key_a, true, true);
	krg_net_handle(A.net, "t.echo", echo_handler, &A);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	run_for(5 * HB);
	assert_false(linked_either());
	assert_int_equal(A.ups + B.ups, 0);
	assert_true(both_up()); /* reachable on demand */

	struct result r1 = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.echo", "one", 3, 0, on_reply, &r1), 0);
	assert_true(RUN_UNTIL(r1.calls, 3000));
	assert_int_equal(r1.status, 0);
	assert_memory_equal(r1.body, "one", 3);
	assert_true(krg_net_peer_linked(A.net, 2));

	/* Idle: closed by agreement, both ends, and no one saw the peer go. */
	assert_true(RUN_UNTIL(!linked_either(), 3000));
	run_for(3 * HB);
	assert_false(linked_either());
	assert_int_equal(A.downs + B.downs, 0);
	assert_true(both_up());

	/* The other way: B dials A for its message. */
	struct result r2 = { 0 };
	assert_int_equal(krg_net_request(B.net, 1, "t.echo", "two", 3, 0, on_reply, &r2), 0);
	assert_true(RUN_UNTIL(r2.calls, 3000));
	assert_int_equal(r2.status, 0);
	assert_memory_equal(r2.body, "two", 3);
	assert_int_equal(A.downs + B.downs, 0);

	/* B gone: A's next request waits 3 s for a link, then fails, and
	 * node 2 counts as unreachable for a while. */
	node_stop(&B);
	assert_true(RUN_UNTIL(!krg_net_peer_linked(A.net, 2), 3000));
	struct result r3 = { 0 };
	int rc = krg_net_request(A.net, 2, "t.echo", "three", 5, 10000, on_reply, &r3);
	if (rc == 0) {
		assert_true(RUN_UNTIL(r3.calls, 5000));
		assert_true(r3.status == -EHOSTUNREACH || r3.status == -ECONNRESET);
	} else {
		assert_int_equal(rc, -EHOSTUNREACH); /* its link was lost: already given up on */
	}
	assert_false(krg_net_peer_up(A.net, 2));
	assert_int_equal(krg_net_send(A.net, 2, "t.echo", "x", 1), -EHOSTUNREACH);
}

static void test_encrypt_off(void **state)
{
	start_pair(key_a, false, false);
	krg_net_handle(B.net, "t.echo", echo_handler, &B);
	assert_true(RUN_UNTIL(both_up(), 3000));
	struct result echo = { 0 };
	assert_int_equal(krg_net_request(A.net, 2, "t.echo", "plain", 5, 0, on_reply, &echo), 0);
	assert_true(RUN_UNTIL(echo.calls, 3000));
	assert_int_equal(echo.status, 0);
	assert_memory_equal(echo.body, "plain", 5);
}

static void test_encrypt_mismatch(void **state)
{
	capture_start();
	start_pair(key_a, true, false);
	run_for(1000);
	bool up = krg_net_peer_up(A.net, 2) || krg_net_peer_up(B.net, 1);
	bool logged = capture_has("encryption mismatch");
	assert_false(up);
	assert_true(logged);
}

static void test_duplicate_id(void **state)
{
	start_pair(key_a, true, true);
	assert_true(RUN_UNTIL(both_up(), 3000));
	/* a second "node 2" on another port, same peer list */
	capture_start();
	uint16_t ports_c[2] = { ports2[0], free_port() };
	node_start(&C, 2, ports_c[1], ids2, ports_c, 2, key_a, true);
	bool got = RUN_UNTIL(C.fatal_err != 0, 3000);
	run_for(3 * HB);
	bool logged = capture_has("already in use");
	assert_true(got);
	assert_int_equal(C.fatal_err, -EEXIST);
	assert_string_equal(C.fatal_msg, "another krgd with node id 2 is already running (reported by node 1)");
	assert_true(logged);
	/* the real node 2 is untouched */
	assert_true(both_up());
	assert_int_equal(A.downs, 0);
	assert_int_equal(C.ups, 0);
}

static void test_unknown_node(void **state)
{
	capture_start();
	node_start(&A, 1, ports2[0], ids2, ports2, 2, key_a, true);
	/* node 7 is in nobody's list but knows where node 1 is */
	uint32_t ids_c[2] = { 1, 7 };
	uint16_t ports_c[2] = { ports2[0], free_port() };
	node_start(&C, 7, ports_c[1], ids_c, ports_c, 2, key_a, true);
	run_for(800);
	/* and one claiming node 1's own id, dialing node 1 as if it were 2 */
	uint32_t ids_d[2] = { 1, 2 };
	uint16_t ports_d[2] = { free_port(), ports2[0] };
	node_start(&B, 1, ports_d[0], ids_d, ports_d, 2, key_a, true);
	run_for(800);
	bool unknown = capture_has("unknown node 7"); /* also checks "own node id" below */
	assert_true(unknown);
	assert_int_equal(A.ups + C.ups + B.ups, 0);
}

int main(void)
{
	const char *lvl = getenv("KRG_LOG");
	krg_log_set_level(lvl ? (enum krg_log_level)krg_log_parse_level(lvl) : LOG_LVL_INFO);
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_log_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unauth_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relaxed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_node, setup, teardown),
	};
	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
