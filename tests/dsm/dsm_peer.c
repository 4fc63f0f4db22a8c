/* dsm_peer.c — one DSM node per machine, for tests/dsm/vcluster.sh: the
 * page protocol (src/dsm) between real network namespaces. Each node is
 * one process with its own memfd, mapping and userfaultfd; the nodes talk
 * over a TCP mesh (dsm_sock). Three checks on the shared segment:
 *   1. a counter bumped with __atomic_fetch_add ROUNDS times by every node
 *      ends at nodes * ROUNDS;
 *   2. Peterson's lock between nodes 0 and 1 (flags, turn and the critical
 *      section on different pages): no two inside at once, and a plain
 *      (non-atomic) counter it protects ends at 2 * ROUNDS;
 *   3. barriers between the phases are DSM atomics too.
 * Usage: dsm_peer SELF PORT ROUNDS IP0 IP1 [IP2 ...]. Prints one line per
 * check ("counter N", "peterson count N violations N"), exit 0 if all
 * hold. Root (userfaultfd). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "dsm/dsm.h"
#include "dsm/dsm_sock.h"

#define SEG 17
#define NPAGES 16
#define P_COUNTER 0
#define P_BARRIER 1
#define P_FLAGS 2
#define P_TURN 3
#define P_INSIDE 4
#define P_COUNT 5

static volatile uint8_t *mem;
static uint32_t nodes, self;

static volatile uint64_t *u64(int page, size_t off)
{
	return (volatile uint64_t *)(mem + (size_t)page * DSM_PAGE_SIZE + off);
}

/* Sleep outside the shared page for about us microseconds, so that the
 * nodes' loops overlap and the pages change hands many times: a node that
 * spun instead could finish its whole loop in one CPU time slice (3
 * processes on 2 cores) or one residency window. */
static void think(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };
	nanosleep(&ts, NULL);
}

static int full(int fd, void *b, size_t n, int wr)
{
	for (size_t d = 0; d < n;) {
		ssize_t r = wr ? write(fd, (char *)b + d, n - d) : read(fd, (char *)b + d, n - d);
		if (r <= 0)
			return -1;
		d += (size_t)r;
	}
	return 0;
}

/* Everyone reaches barrier k (counters on one page, 8 bytes apart). */
static void barrier(int k)
{
	volatile uint64_t *b = u64(P_BARRIER, (size_t)k * 8);
	__atomic_fetch_add(b, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(b, __ATOMIC_SEQ_CST) < nodes)
		sched_yield();
}

/* The mesh: connect to every lower node, accept every higher one; each
 * connection starts with the connecting node's number. */
static int mesh(uint16_t port, char **ips, int *peers)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, (int)nodes) < 0) {
		fprintf(stderr, "dsm_peer: listen on %u: %s\n", port, strerror(errno));
		return -1;
	}
	for (uint32_t j = 0; j < self; j++) {
		struct sockaddr_in p = { .sin_family = AF_INET, .sin_port = htons(port) };
		if (inet_pton(AF_INET, ips[j], &p.sin_addr) != 1) {
			fprintf(stderr, "dsm_peer: bad address %s\n", ips[j]);
			return -1;
		}
		int fd = -1;
		for (int t = 0; t < 200; t++) {  /* 20 s for the peer to listen */
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (connect(fd, (struct sockaddr *)&p, sizeof p) == 0)
				break;
			close(fd);
			fd = -1;
			usleep(100000);
		}
		if (fd < 0 || full(fd, &self, sizeof self, 1) < 0) {
			fprintf(stderr, "dsm_peer: cannot reach node %u at %s\n", j, ips[j]);
			return -1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		peers[j] = fd;
	}
	for (uint32_t k = self + 1; k < nodes; k++) {
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		uint32_t who;
		if (fd < 0 || full(fd, &who, sizeof who, 0) < 0 || who <= self || who >= nodes || peers[who] >= 0) {
			fprintf(stderr, "dsm_peer: bad peer connection\n");
			return -1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		peers[who] = fd;
	}
	close(l);
	return 0;
}

static int peterson(uint32_t me, long rounds)
{
	volatile int *flag = (volatile int *)(mem + P_FLAGS * DSM_PAGE_SIZE);
	volatile int *turn = (volatile int *)(mem + P_TURN * DSM_PAGE_SIZE);
	volatile int *inside = (volatile int *)(mem + P_INSIDE * DSM_PAGE_SIZE);  /* 0: nobody, else node + 1 */
	volatile uint64_t *count = u64(P_COUNT, 0);
	int other = 1 - (int)me, bad = 0;
	for (long i = 0; i < rounds; i++) {
		__atomic_store_n(&flag[me], 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(turn, other, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&flag[other], __ATOMIC_SEQ_CST) && __atomic_load_n(turn, __ATOMIC_SEQ_CST) == other)
			sched_yield();
		if (*inside != 0)
			bad++;
		*inside = (int)me + 1;
		*count = *count + 1;  /* plain load and store: only the lock protects it */
		if (*inside != (int)me + 1)
			bad++;
		*inside = 0;
		__atomic_store_n(&flag[me], 0, __ATOMIC_SEQ_CST);
		think(20);
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc < 6 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: dsm_peer SELF PORT ROUNDS IP0 IP1 [IP2 ...]\n");
		return 2;
	}
	nodes = (uint32_t)(argc - 4);
	self = (uint32_t)atoi(argv[1]);
	long port = atol(argv[2]), rounds = atol(argv[3]);
	if (nodes > 8 || self >= nodes || port < 1 || port > 65535 || rounds < 1 || rounds > 10000000) {
		fprintf(stderr, "dsm_peer: bad arguments\n");
		return 2;
	}
	int peers[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	if (mesh((uint16_t)port, argv + 4, peers) < 0)
		return 1;
	/* A page stays 200 us where it was granted: two writers of one page
	 * would otherwise take it from each other before either store lands. */
	struct dsm_config cfg = { .seg = SEG, .self = self, .nnodes = nodes, .npages = NPAGES,
		.min_residency_ns = 200000 };
	struct dsm_sock *ds;
	int r = dsm_sock_start(&cfg, peers, &ds);
	if (r < 0) {
		fprintf(stderr, "dsm_peer: DSM node: %s\n", strerror(-r));
		return 1;
	}
	mem = dsm_node_addr(dsm_sock_node(ds));
	barrier(0);
	for (long i = 0; i < rounds; i++) {
		__atomic_fetch_add(u64(P_COUNTER, 0), 1, __ATOMIC_SEQ_CST);
		think(20);
	}
	barrier(1);
	struct dsm_stats st;
	dsm_sock_stats(ds, &st);
	printf("node %u: counter phase: write misses %lu\n", self, (unsigned long)st.write_miss);
	uint64_t c = *u64(P_COUNTER, 0);
	printf("node %u: counter %lu (want %lu)\n", self, (unsigned long)c, (unsigned long)((uint64_t)nodes * (uint64_t)rounds));
	int bad = self < 2 ? peterson(self, rounds / 4 + 1) : 0;
	barrier(2);
	uint64_t pc = *u64(P_COUNT, 0);
	int viol = bad;
	printf("node %u: peterson count %lu (want %lu) violations %d\n", self, (unsigned long)pc,
	       (unsigned long)(2 * (rounds / 4 + 1)), viol);
	barrier(3);
	fflush(stdout);
	/* Serve the others' last reads of the barrier page before leaving. */
	sleep(2);
	dsm_sock_stats(ds, &st);
	printf("node %u: read misses %lu write misses %lu\n", self, (unsigned long)st.read_miss,
	       (unsigned long)st.write_miss);
	dsm_sock_stop(ds);
	return c == (uint64_t)nodes * (uint64_t)rounds && pc == 2 * (uint64_t)(rounds / 4 + 1) && viol == 0 ? 0 : 1;
}
