/* dsm_bench.c — what a DSM page miss costs beside the raw TCP round trip,
 * in the same run (docs/dsm.md). Four DSM nodes, each its own memfd,
 * mapping, userfaultfd and loop thread, talk over TCP on loopback; the
 * baseline is a 64-byte request answered with 4 KiB over the same kind
 * of connection between two threads.
 *   read miss:  node 1 reads a page homed at node 0 that node 0 wrote
 *               (one round trip to the home);
 *   write miss: node 1 writes a page homed at node 0 that nodes 2 and 3
 *               (and the home) read: two remote invalidations, then the grant;
 *   ping-pong:  a counter bumped alternately from nodes 1 and 2: handoffs/s.
 * Usage: krg-bench-dsm [ITERATIONS]. Root (userfaultfd).
 *
 * Between two machines (bench/dsm runs it between two vcluster nodes):
 *   krg-bench-dsm home IP PORT            DSM node 0 (the home of the pages
 *                                         measured) and the raw TCP echo;
 *                                         prints "ready", serves one remote
 *   krg-bench-dsm remote IP PORT [ITER]   DSM node 1: the misses, timed
 * The remote opens two connections to the home: the DSM's and a control
 * one that is also the raw TCP baseline (64 B request, 4 KiB answer), so
 * both cross the same link, in alternating rounds of the same run. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dsm/dsm.h"
#include "dsm/dsm_sock.h"
#include "lib/macro.h"

#define NODES 4
#define SEG 9

static int tcp_pair(int sv[2])
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int one = 1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
			getsockname(l, (struct sockaddr *)&a, &al) < 0)
		return -1;
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (sv[1] < 0)
		return -1;
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

static double us_since(uint64_t t0) { return (double)(dsm_now_ns() - t0) / 1000.0; }

/* ---- raw TCP: 64 B request, 4 KiB reply ---------------------------------- */

static int full_io(int fd, void *buf, size_t len, int wr)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = wr ? write(fd, (char *)buf + done, len - done)
			: read(fd, (char *)buf + done, len - done);
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void *echo_server(void *arg)
{
	int fd = *(int *)arg;
	char req[64], page[DSM_PAGE_SIZE];
	memset(page, 1, sizeof page);
	while (full_io(fd, req, sizeof req, 0) == 0 && full_io(fd, page, sizeof page, 1) == 0)
		;
	return NULL;
}

/* k round trips on the baseline connection, times into v. */
static int raw_tcp_rtt(int fd, double *v, int k)
{
	char req[64] = { 0 }, page[DSM_PAGE_SIZE];
	for (int i = 0; i < k; i++) {
		uint64_t t0 = dsm_now_ns();
		if (full_io(fd, req, sizeof req, 1) || full_io(fd, page, sizeof page, 0))
			return -1;
		v[i] = us_since(t0);
	}
	return 0;
}

/* ---- the DSM -------------------------------------------------------------------- */

static struct dsm_sock *node[NODES];
static volatile uint8_t *mem[NODES];

static int start(uint64_t npages, uint64_t residency)
{
	int fds[NODES][NODES];
	for (int i = 0; i < NODES; i++)
		for (int j = i + 1; j < NODES; j++) {
			int sv[2];
			if (tcp_pair(sv) < 0)
				return -1;
			fds[i][j] = sv[0];
			fds[j][i] = sv[1];
		}
	for (uint32_t i = 0; i < NODES; i++) {
		struct dsm_config cfg = { .seg = SEG, .self = i, .nnodes = NODES, .npages = npages,
			.min_residency_ns = residency };
		int r = dsm_sock_start(&cfg, fds[i], &node[i]);
		if (r < 0) {
			fprintf(stderr, "krg-bench-dsm: starting node %u: %s\n", i, strerror(-r));
			return -1;
		}
		mem[i] = dsm_node_addr(dsm_sock_node(node[i]));
	}
	return 0;
}

static void stop(void)
{
	for (int i = 0; i < NODES; i++)
		dsm_sock_stop(node[i]);
}

struct pp {
	volatile uint64_t *ctr;
	uint64_t me, rounds;
};

/* Bump the counter when it is my turn (parity), rounds times. */
static void *pingpong(void *arg)
{
	struct pp *p = arg;
	for (uint64_t i = 0; i < p->rounds; i++) {
		/* Yield while waiting: on 2 cores a pure spin starves the loops. */
		while (__atomic_load_n(p->ctr, __ATOMIC_ACQUIRE) % 2 != p->me)
			sched_yield();
		__atomic_fetch_add(p->ctr, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static int pair_main(int argc, char **argv);

static int echo_main(int argc, char **argv);

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "home") || !strcmp(argv[1], "remote")))
		return pair_main(argc, argv);
	if (argc > 1 && (!strcmp(argv[1], "echo") || !strcmp(argv[1], "rtt")))
		return echo_main(argc, argv);
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: krg-bench-dsm [ITERATIONS]\n"
		       "       krg-bench-dsm home IP PORT\n"
		       "       krg-bench-dsm remote IP PORT [ITERATIONS]\n"
		       "       krg-bench-dsm echo IP PORT | rtt IP PORT [ITERATIONS]\n"
		       "         (the raw TCP round trip beside the DSM through krgd: bench/dsm part 3)\n"
		       "DSM page misses beside the raw TCP round trip, in one process (4 nodes on\n"
		       "loopback) or between two machines (docs/dsm.md). Root (userfaultfd).\n");
		return 0;
	}
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	if (iters < 10 || iters > 1000000) {
		fprintf(stderr, "krg-bench-dsm: ITERATIONS must be 10..1000000\n");
		return 2;
	}
	uint64_t npages = 4096;
	if (start(npages, 0) < 0)
		return 1;
	/* Pages homed at node 0. */
	uint64_t *pg = malloc(sizeof *pg * npages);
	int np = 0;
	for (uint64_t p = 0; p < npages; p++)
		if (dsm_page_home(SEG, p, NODES) == 0)
			pg[np++] = p;
	int n = iters < np ? iters : np;
	double *rd = malloc(sizeof *rd * (size_t)iters), *wr = malloc(sizeof *wr * (size_t)iters);
	int nl = 0;
	double *rt = malloc(sizeof *rt * (size_t)iters), *lc = malloc(sizeof *lc * (size_t)iters);
	int sv[2];
	pthread_t echo;
	if (tcp_pair(sv) < 0 || pthread_create(&echo, NULL, echo_server, &sv[1]))
		return 1;
	/* Rounds of 50 of each, alternating, so that the machine's load
	 * (shared cores) weighs on the baseline and the DSM alike. */
	if (n > 50)
		n = 50;
	for (int done = 0; done < iters; done += n) {
		int k = iters - done < n ? iters - done : n;
		if (raw_tcp_rtt(sv[0], rt + done, k) < 0)
			return 1;
		for (int i = 0; i < k; i++)
			mem[0][pg[i] * DSM_PAGE_SIZE] = (uint8_t)(done + i + 1);
		for (int i = 0; i < k; i++) {
			uint64_t t0 = dsm_now_ns();
			uint8_t v = mem[1][pg[i] * DSM_PAGE_SIZE];
			rd[done + i] = us_since(t0);
			if (v != (uint8_t)(done + i + 1)) {
				fprintf(stderr, "krg-bench-dsm: read %u, want %u\n", v, (uint8_t)(done + i + 1));
				return 1;
			}
		}
		/* A miss served at the home itself: the fault and the page
		 * install alone, no network (a page nobody touched yet). */
		for (int i = 0; i < k && nl < np - n; i++, nl++) {
			uint64_t t0 = dsm_now_ns();
			(void)mem[0][pg[n + nl] * DSM_PAGE_SIZE + 2];
			lc[nl] = us_since(t0);
		}
		for (int i = 0; i < k; i++) {
			(void)mem[2][pg[i] * DSM_PAGE_SIZE];
			(void)mem[3][pg[i] * DSM_PAGE_SIZE];
		}
		for (int i = 0; i < k; i++) {
			uint64_t t0 = dsm_now_ns();
			mem[1][pg[i] * DSM_PAGE_SIZE + 1] = 1;
			wr[done + i] = us_since(t0);
		}
	}
	close(sv[0]);
	pthread_join(echo, NULL);
	close(sv[1]);
	double rtt = median(rt, iters), r = median(rd, iters), w = median(wr, iters);
	double l = median(lc, nl);

	/* Ping-pong: a counter handed between nodes 1 and 2. */
	uint64_t rounds = (uint64_t)iters;
	volatile uint64_t *c1 = (volatile uint64_t *)(mem[1] + pg[0] * DSM_PAGE_SIZE + 512);
	volatile uint64_t *c2 = (volatile uint64_t *)(mem[2] + pg[0] * DSM_PAGE_SIZE + 512);
	struct pp a = { c1, 0, rounds }, b = { c2, 1, rounds };
	pthread_t ta, tb;
	uint64_t t0 = dsm_now_ns();
	pthread_create(&ta, NULL, pingpong, &a);
	pthread_create(&tb, NULL, pingpong, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	double secs = (double)(dsm_now_ns() - t0) / 1e9;
	uint64_t final = *c1;
	stop();
	if (final != 2 * rounds) {
		fprintf(stderr, "krg-bench-dsm: ping-pong counter %lu, want %lu\n",
				(unsigned long)final, (unsigned long)(2 * rounds));
		return 1;
	}
	printf("dsm over TCP loopback, %d iterations, 4 nodes (threads of one process)\n", iters);
	printf("  raw TCP round trip (64 B -> 4 KiB): %7.1f us  (median, rounds alternating with the DSM's)\n",
			rtt);
	printf("  miss at the home (fault + install): %7.1f us\n", l);
	printf("  read miss (1 round trip to home):   %7.1f us  = %.2fx raw RTT (target <= 2x)\n",
			r, r / rtt);
	printf("  write miss, 2 remote readers:       %7.1f us  = %.2fx raw RTT (target <= 3x)\n",
			w, w / rtt);
	printf("  ping-pong between 2 nodes:          %7.0f handoffs/s (%.1f us each)\n",
			2.0 * (double)rounds / secs, secs * 1e6 / (2.0 * (double)rounds));
	free(pg);
	free(rd);
	free(wr);
	free(rt);
	free(lc);
	return 0;
}

/* ---- two processes, two machines ------------------------------------------------ */

enum { C_ECHO = 1, C_WRITE, C_PINGPONG, C_JOIN };

struct ctl {                      /* the 64-byte control request */
	uint32_t cmd, k;
	uint64_t val;
	uint64_t rounds;
	uint8_t pad[40];
};
_Static_assert(sizeof(struct ctl) == 64, "64-byte request");

#define PAIR_NODES 2

static int addr_of(const char *ip, const char *port, struct sockaddr_in *a)
{
	char *end;
	long p = strtol(port, &end, 10);
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)p);
	if (*end || p < 1 || p > 65535 || inet_pton(AF_INET, ip, &a->sin_addr) != 1) {
		fprintf(stderr, "krg-bench-dsm: bad address %s:%s\n", ip, port);
		return -1;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Pages of the segment homed at node 0 of 2 (the home process). */
static uint64_t *home_pages(uint64_t npages, int *np)
{
	uint64_t *pg = malloc(sizeof *pg * npages);
	*np = 0;
	for (uint64_t p = 0; pg && p < npages; p++)
		if (dsm_page_home(SEG, p, PAIR_NODES) == 0)
			pg[(*np)++] = p;
	return pg;
}

#define PAIR_PAGES 256

static int pair_home(const struct sockaddr_in *a)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (const struct sockaddr *)a, sizeof *a) < 0 || listen(l, 2) < 0) {
		fprintf(stderr, "krg-bench-dsm: listen: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int peers[PAIR_NODES] = { -1, accept4(l, NULL, NULL, SOCK_CLOEXEC) };
	int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (peers[1] < 0 || c < 0) {
		fprintf(stderr, "krg-bench-dsm: accept: %s\n", strerror(errno));
		return 1;
	}
	nodelay(peers[1]);
	nodelay(c);
	struct dsm_config cfg = { .seg = SEG, .self = 0, .nnodes = PAIR_NODES, .npages = PAIR_PAGES };
	struct dsm_sock *ds;
	int r = dsm_sock_start(&cfg, peers, &ds);
	if (r < 0) {
		fprintf(stderr, "krg-bench-dsm: DSM node: %s\n", strerror(-r));
		return 1;
	}
	volatile uint8_t *m = dsm_node_addr(dsm_sock_node(ds));
	int np;
	_cleanup_free_ uint64_t *pg = home_pages(PAIR_PAGES, &np);
	char page[DSM_PAGE_SIZE];
	memset(page, 1, sizeof page);
	struct ctl q, ack = { 0 };
	pthread_t pp;
	struct pp st;
	int rc = 0;
	while (full_io(c, &q, sizeof q, 0) == 0) {
		if (q.cmd == C_ECHO) {
			if (full_io(c, page, sizeof page, 1))
				break;
			continue;
		}
		if (q.cmd == C_WRITE) {
			for (uint32_t i = 0; i < q.k && i < (uint32_t)np; i++)
				m[pg[i] * DSM_PAGE_SIZE] = (uint8_t)(q.val + i);
		} else if (q.cmd == C_PINGPONG) {
			st = (struct pp){ (volatile uint64_t *)(m + pg[0] * DSM_PAGE_SIZE + 512), 0, q.rounds };
			if (pthread_create(&pp, NULL, pingpong, &st))
				rc = 1;
		} else if (q.cmd == C_JOIN) {
			pthread_join(pp, NULL);
		}
		if (full_io(c, &ack, sizeof ack, 1))
			break;
	}
	close(c);
	dsm_sock_stop(ds);
	return rc;
}

static int ctl_call(int c, uint32_t cmd, uint32_t k, uint64_t val, uint64_t rounds)
{
	struct ctl q = { .cmd = cmd, .k = k, .val = val, .rounds = rounds }, ack;
	return full_io(c, &q, sizeof q, 1) || full_io(c, &ack, sizeof ack, 0) ? -1 : 0;
}

static int connect_to(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
		fprintf(stderr, "krg-bench-dsm: connect: %s\n", strerror(errno));
		return -1;
	}
	nodelay(fd);
	return fd;
}

static int pair_remote(const struct sockaddr_in *a, int iters)
{
	int peers[PAIR_NODES] = { connect_to(a), -1 };
	int c = peers[0] < 0 ? -1 : connect_to(a);
	if (c < 0)
		return 1;
	struct dsm_config cfg = { .seg = SEG, .self = 1, .nnodes = PAIR_NODES, .npages = PAIR_PAGES };
	struct dsm_sock *ds;
	int r = dsm_sock_start(&cfg, peers, &ds);
	if (r < 0) {
		fprintf(stderr, "krg-bench-dsm: DSM node: %s\n", strerror(-r));
		return 1;
	}
	volatile uint8_t *m = dsm_node_addr(dsm_sock_node(ds));
	int np;
	_cleanup_free_ uint64_t *pg = home_pages(PAIR_PAGES, &np);
	_cleanup_free_ double *rt = malloc(sizeof(double) * (size_t)iters);
	_cleanup_free_ double *rd = malloc(sizeof(double) * (size_t)iters);
	_cleanup_free_ double *wr = malloc(sizeof(double) * (size_t)iters);
	int n = np < 50 ? np : 50, rc = 1;
	char req[64] = { 0 }, page[DSM_PAGE_SIZE];
	((struct ctl *)(void *)req)->cmd = C_ECHO;
	for (int done = 0; done < iters; done += n) {
		int k = iters - done < n ? iters - done : n;
		for (int i = 0; i < k; i++) {
			uint64_t t0 = dsm_now_ns();
			if (full_io(c, req, sizeof req, 1) || full_io(c, page, sizeof page, 0))
				goto out;
			rt[done + i] = us_since(t0);
		}
		/* The home writes the pages (it holds them writable), then we
		 * read each: the home downgrades and sends it, one round trip. */
		if (ctl_call(c, C_WRITE, (uint32_t)k, (uint64_t)done, 0))
			goto out;
		for (int i = 0; i < k; i++) {
			uint64_t t0 = dsm_now_ns();
			uint8_t v = m[pg[i] * DSM_PAGE_SIZE];
			rd[done + i] = us_since(t0);
			if (v != (uint8_t)(done + i)) {
				fprintf(stderr, "krg-bench-dsm: read %u, want %u\n", v, (uint8_t)(done + i));
				goto out;
			}
		}
		/* Upgrade our read copy: the home drops its own, one round trip. */
		for (int i = 0; i < k; i++) {
			uint64_t t0 = dsm_now_ns();
			m[pg[i] * DSM_PAGE_SIZE + 1] = 1;
			wr[done + i] = us_since(t0);
		}
	}
	uint64_t rounds = (uint64_t)iters;
	struct pp me = { (volatile uint64_t *)(m + pg[0] * DSM_PAGE_SIZE + 512), 1, rounds };
	if (ctl_call(c, C_PINGPONG, 0, 0, rounds))
		goto out;
	uint64_t t0 = dsm_now_ns();
	pingpong(&me);
	double secs = (double)(dsm_now_ns() - t0) / 1e9;
	if (ctl_call(c, C_JOIN, 0, 0, 0))
		goto out;
	uint64_t final = *me.ctr;
	if (final != 2 * rounds) {
		fprintf(stderr, "krg-bench-dsm: ping-pong counter %lu, want %lu\n", (unsigned long)final,
			(unsigned long)(2 * rounds));
		goto out;
	}
	double rtt = median(rt, iters), rm = median(rd, iters), wm = median(wr, iters);
	printf("dsm between two machines, %d iterations, 2 nodes (the home and this one)\n", iters);
	printf("  raw TCP round trip (64 B -> 4 KiB): %7.1f us  (median, rounds alternating with the DSM's)\n", rtt);
	printf("  read miss, page written at the home: %6.1f us  = %.2fx raw RTT (target <= 2x)\n", rm, rm / rtt);
	printf("  write upgrade (home's copy dropped): %6.1f us  = %.2fx raw RTT\n", wm, wm / rtt);
	printf("  ping-pong between the 2 nodes:      %7.0f handoffs/s (%.1f us each)\n", 2.0 * (double)rounds / secs,
	       secs * 1e6 / (2.0 * (double)rounds));
	rc = 0;
out:
	close(c);
	dsm_sock_stop(ds);
	return rc;
}

static int pair_main(int argc, char **argv)
{
	struct sockaddr_in a;
	if (argc < 4 || argc > 5 || addr_of(argv[2], argv[3], &a) < 0) {
		fprintf(stderr, "usage: krg-bench-dsm home IP PORT | remote IP PORT [ITERATIONS]\n");
		return 2;
	}
	if (!strcmp(argv[1], "home"))
		return argc == 4 ? pair_home(&a) : 2;
	int iters = argc == 5 ? atoi(argv[4]) : 2000;
	if (iters < 10 || iters > 1000000) {
		fprintf(stderr, "krg-bench-dsm: ITERATIONS must be 10..1000000\n");
		return 2;
	}
	return pair_remote(&a, iters);
}

/* ---- the raw round trip alone (bench/dsm part 3: beside the DSM in krgd) ---- */

static int echo_main(int argc, char **argv)
{
	struct sockaddr_in a;
	if (argc < 4 || argc > 5 || addr_of(argv[2], argv[3], &a) < 0) {
		fprintf(stderr, "usage: krg-bench-dsm echo IP PORT | rtt IP PORT [ITERATIONS]\n");
		return 2;
	}
	if (!strcmp(argv[1], "rtt")) {
		int k = argc == 5 ? atoi(argv[4]) : 2000;
		if (k < 10 || k > 1000000) {
			fprintf(stderr, "krg-bench-dsm: ITERATIONS must be 10..1000000\n");
			return 2;
		}
		int fd = connect_to(&a);
		double *v = malloc(sizeof *v * (size_t)k);
		if (fd < 0 || !v || raw_tcp_rtt(fd, v, k) < 0) {
			fprintf(stderr, "krg-bench-dsm: rtt: %s\n", strerror(errno));
			return 1;
		}
		printf("rtt %.1f\n", median(v, k));
		return 0;
	}
	if (argc != 4)
		return 2;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0) {
		fprintf(stderr, "krg-bench-dsm: echo: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		nodelay(c);
		echo_server(&c);
		close(c);
	}
}
