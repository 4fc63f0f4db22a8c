/* test_dsm.c — the DSM page protocol on 3 nodes in one process (docs/dsm.md):
 * each node its own memfd, mapping and userfaultfd, its own loop thread,
 * socketpairs between them. Plain and atomic accesses from threads of
 * every node must behave as on one machine: values written on one node
 * are read on the others, an __atomic_fetch_add counter ends exact,
 * Peterson's algorithm keeps two nodes out of each other's critical
 * section; and peers' bad messages are refused. Needs root (userfaultfd
 * for kernel accesses). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "ckpt/ckpt.h"
#include "dsm/dsm.h"
#include "dsm/dsm_sock.h"
#include "lib/fdpass.h"
#include "dsm.pb-c.h"

#define NPAGES 16

struct cluster {
	uint32_t n;
	struct dsm_sock *node[4];
	uint8_t *mem[4];
};

static uint32_t cluster_readahead; /* cfg.readahead of the next cluster_start */

static void cluster_start(struct cluster *c, uint32_t n, uint64_t residency_ns)
{
	int fds[4][4];
	c->n = n;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++) {
			int sv[2];
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			fds[i][j] = sv[0];
			fds[j][i] = sv[1];
		}
	for (uint32_t i = 0; i < n; i++) {
		struct dsm_config cfg = { .seg = 42, .self = i, .nnodes = n, .npages = NPAGES,
			.min_residency_ns = residency_ns, .readahead = cluster_readahead };
		int r = dsm_sock_start(&cfg, fds[i], &c->node[i]);
		if (r < 0)
			fail_msg("dsm_sock_start: %s", strerror(-r));
		c->mem[i] = dsm_node_addr(dsm_sock_node(c->node[i]));
	}
}

static void cluster_stop(struct cluster *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		struct dsm_stats st;
		dsm_sock_stats(c->node[i], &st);
		assert_int_equal(st.rejected, 0);
		assert_int_equal(st.send_errors, 0);
		dsm_sock_stop(c->node[i]);
	}
}

/* A page whose home is `home` (the hash spreads them). */
static uint64_t page_homed_at(uint32_t home, uint32_t n, uint64_t after)
{
	for (uint64_t p = after; p < NPAGES; p++)
		if (dsm_page_home(42, p, n) == home)
			return p;
	fail_msg("no page homed at %u", home);
	return 0;
}

static void test_read_write_across(void **state)
{
	struct cluster c;
	cluster_start(&c, 3, 0);
	/* Every page, written on node 0, read on 1 and 2, rewritten on 2, read on 0 and 1. */
	for (uint64_t p = 0; p < NPAGES; p++)
		for (size_t o = 0; o < DSM_PAGE_SIZE; o += 512)
			c.mem[0][p * DSM_PAGE_SIZE + o] = (uint8_t)(p + o / 512 + 1);
	for (uint32_t i = 1; i < 3; i++)
		for (uint64_t p = 0; p < NPAGES; p++)
			for (size_t o = 0; o < DSM_PAGE_SIZE; o += 512)
				assert_int_equal(c.mem[i][p * DSM_PAGE_SIZE + o], (uint8_t)(p + o / 512 + 1));
	for (uint64_t p = 0; p < NPAGES; p++)
		c.mem[2][p * DSM_PAGE_SIZE + 7] = 0xa0 + (uint8_t)p;
	for (uint32_t i = 0; i < 2; i++)
		for (uint64_t p = 0; p < NPAGES; p++) {
			assert_int_equal(c.mem[i][p * DSM_PAGE_SIZE + 7], 0xa0 + (uint8_t)p);
			assert_int_equal(c.mem[i][p * DSM_PAGE_SIZE], (uint8_t)(p + 1));
		}
	/* A page never written reads as zeros everywhere. */
	struct dsm_stats st;
	dsm_sock_stats(c.node[1], &st);
	assert_true(st.read_miss >= NPAGES);
	dsm_sock_stats(c.node[2], &st);
	assert_true(st.write_miss >= 1);
	cluster_stop(&c);
}

/* Read-ahead (docs/dsm.md): a reader going through pages in order gets
 * the next ones asked for before it faults on them; one skipping pages
 * does not; a copy read ahead is invalidated by a write elsewhere like any
 * read copy. */
static void test_readahead(void **state)
{
	struct cluster c;
	cluster_readahead = 8;
	cluster_start(&c, 2, 0);
	cluster_readahead = 0;
	for (uint64_t p = 0; p < NPAGES; p++)
		c.mem[0][p * DSM_PAGE_SIZE + 5] = (uint8_t)(p + 1);
	for (uint64_t p = 0; p < NPAGES; p += 2)
		assert_int_equal(c.mem[1][p * DSM_PAGE_SIZE + 5], (uint8_t)(p + 1));
	struct dsm_stats st;
	dsm_sock_stats(c.node[1], &st);
	assert_int_equal(st.prefetched, 0);
	for (uint64_t p = 0; p < NPAGES; p++)
		c.mem[0][p * DSM_PAGE_SIZE + 5] = (uint8_t)(p + 0x41);
	for (uint64_t p = 0; p < NPAGES; p++)
		assert_int_equal(c.mem[1][p * DSM_PAGE_SIZE + 5], (uint8_t)(p + 0x41));
	dsm_sock_stats(c.node[1], &st);
	/* The miss on page 1 follows the one on page 0: pages 2-9 asked for. */
	assert_true(st.prefetched >= 8);
	c.mem[0][12 * DSM_PAGE_SIZE + 5] = 0x99;
	assert_int_equal(c.mem[1][12 * DSM_PAGE_SIZE + 5], 0x99);
	cluster_stop(&c);
}

/* ---- an atomic counter from threads on every node ------------------------ */

#define THREADS_PER_NODE 2
#define INCREMENTS 20000

static pthread_barrier_t start_line;

struct worker {
	uint64_t *counter;
	uint64_t *other;          /* a second counter on another page */
	int n;
};

static void *inc_worker(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&start_line);
	for (int i = 0; i < w->n; i++) {
		__atomic_fetch_add(w->counter, 1, __ATOMIC_SEQ_CST);
		if (i % 16 == 0)
			__atomic_fetch_add(w->other, 1, __ATOMIC_SEQ_CST);
		if (i % 200 == 199)
			usleep(100); /* let the other nodes take the page away */
	}
	return NULL;
}

static void test_atomic_counter(void **state)
{
	struct cluster c;
	cluster_start(&c, 3, 200000);
	uint64_t pa = page_homed_at(1, 3, 0), pb = page_homed_at(2, 3, 0);
	pthread_t t[3 * THREADS_PER_NODE];
	struct worker w[3 * THREADS_PER_NODE];
	pthread_barrier_init(&start_line, NULL, 3 * THREADS_PER_NODE);
	for (uint32_t i = 0; i < 3 * THREADS_PER_NODE; i++) {
		uint8_t *m = c.mem[i / THREADS_PER_NODE];
		w[i] = (struct worker){ (uint64_t *)(m + pa * DSM_PAGE_SIZE + 64),
			(uint64_t *)(m + pb * DSM_PAGE_SIZE + 128), INCREMENTS };
		assert_int_equal(pthread_create(&t[i], NULL, inc_worker, &w[i]), 0);
	}
	for (uint32_t i = 0; i < 3 * THREADS_PER_NODE; i++)
		pthread_join(t[i], NULL);
	uint64_t want = 3 * THREADS_PER_NODE * INCREMENTS;
	uint64_t want_other = 3 * THREADS_PER_NODE * ((INCREMENTS + 15) / 16);
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t v = __atomic_load_n((uint64_t *)(c.mem[i] + pa * DSM_PAGE_SIZE + 64),
				__ATOMIC_SEQ_CST);
		uint64_t o = __atomic_load_n((uint64_t *)(c.mem[i] + pb * DSM_PAGE_SIZE + 128),
				__ATOMIC_SEQ_CST);
		assert_int_equal(v, want);
		assert_int_equal(o, want_other);
	}
	pthread_barrier_destroy(&start_line);
	uint64_t moves = 0;
	for (uint32_t i = 0; i < 3; i++) {
		struct dsm_stats st;
		dsm_sock_stats(c.node[i], &st);
		assert_true(st.write_miss >= 1); /* every node had the page written here */
		moves += st.write_miss;
	}
	print_message("counter %" PRIu64 " exact; %" PRIu64 " write misses\n", want, moves);
	cluster_stop(&c);
}

/* ---- Peterson's algorithm between two nodes ------------------------------ */

#define ROUNDS 300

struct peterson {
	volatile int *flag;       /* [2], on one page */
	volatile int *turn;       /* on another page */
	volatile int *inside;     /* a third page: who is in the critical section */
	volatile uint64_t *count; /* plain increments, protected by the lock */
	int me;
	int violations;
};

static void *peterson_worker(void *arg)
{
	struct peterson *p = arg;
	int other = 1 - p->me;
	for (int i = 0; i < ROUNDS; i++) {
		__atomic_store_n(&p->flag[p->me], 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(p->turn, other, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&p->flag[other], __ATOMIC_SEQ_CST) &&
				__atomic_load_n(p->turn, __ATOMIC_SEQ_CST) == other)
			;
		if (*p->inside != -1)
			p->violations++;
		*p->inside = p->me;
		*p->count = *p->count + 1;
		if (*p->inside != p->me)
			p->violations++;
		*p->inside = -1;
		__atomic_store_n(&p->flag[p->me], 0, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void test_peterson(void **state)
{
	struct cluster c;
	cluster_start(&c, 3, 200000);
	uint64_t pf = page_homed_at(2, 3, 0), pt = page_homed_at(0, 3, 0),
		pi = page_homed_at(1, 3, 0);
	/* inside starts at -1: written before anyone else maps the page. */
	*(volatile int *)(c.mem[2] + pi * DSM_PAGE_SIZE) = -1;
	struct peterson p[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		uint8_t *m = c.mem[i]; /* nodes 0 and 1 compete; node 2 is a home */
		p[i] = (struct peterson){ (volatile int *)(m + pf * DSM_PAGE_SIZE),
			(volatile int *)(m + pt * DSM_PAGE_SIZE + 256),
			(volatile int *)(m + pi * DSM_PAGE_SIZE),
			(volatile uint64_t *)(m + pi * DSM_PAGE_SIZE + 8), i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, peterson_worker, &p[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(p[0].violations + p[1].violations, 0);
	assert_int_equal(*(volatile uint64_t *)(c.mem[2] + pi * DSM_PAGE_SIZE + 8), 2 * ROUNDS);
	cluster_stop(&c);
}

/* ---- separate processes, each with its own userfaultfd, served by the node -- */

#define PROC_INCREMENTS 5000

static int send_fd(int sock, int fd, uint64_t base)
{
	return krg_fd_send(sock, &base, sizeof base, fd, 0);
}

static int recv_fd(int sock, uint64_t *base)
{
	struct iovec iov = { base, sizeof *base };
	int fd;
	return krg_fd_recvv(sock, &iov, 1, 0, &fd) == (ssize_t)sizeof *base ? fd : -1;
}

/* What krgd will inject into an attaching process: a mapping of the
 * node's memfd and a userfaultfd, handed to the node, which registers the
 * mapping from outside (a userfaultfd acts on the address space that made
 * it, whoever holds it). Here the process does its part itself. Then it
 * counts. */
static void counting_child(int memfd, size_t size, int sock, uint64_t off)
{
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM |
		UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	if (m == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 ||
			send_fd(sock, uffd, (uintptr_t)m) < 0)
		_exit(2);
	close(uffd);
	char go;
	if (read(sock, &go, 1) != 1)
		_exit(3);
	for (int i = 0; i < PROC_INCREMENTS; i++) {
		__atomic_fetch_add((uint64_t *)(m + off), 1, __ATOMIC_SEQ_CST);
		if (i % 200 == 199)
			usleep(100);
	}
	_exit(0);
}

static void test_processes(void **state)
{
	struct cluster c;
	cluster_start(&c, 3, 200000);
	uint64_t pa = page_homed_at(1, 3, 0);
	uint64_t off = pa * DSM_PAGE_SIZE + 72;
	pid_t pid[3];
	int sock[3], view[3];
	for (int i = 0; i < 3; i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct dsm_node *n = dsm_sock_node(c.node[i]);
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			close(sv[0]);
			counting_child(dsm_node_memfd(n), dsm_node_size(n), sv[1], off);
		}
		close(sv[1]);
		sock[i] = sv[0];
		uint64_t base;
		int uffd = recv_fd(sock[i], &base);
		assert_true(uffd >= 0);
		struct uffdio_register reg = { .range = { base, dsm_node_size(n) },
			.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
				UFFDIO_REGISTER_MODE_WP };
		assert_int_equal(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
		view[i] = dsm_sock_attach(c.node[i], uffd, base);
		assert_true(view[i] > 0);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(write(sock[i], "g", 1), 1);
	for (int i = 0; i < 3; i++) {
		int st;
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		dsm_sock_detach(c.node[i], view[i]);
		close(sock[i]);
	}
	/* Every node's own mapping sees the exact count. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(__atomic_load_n((uint64_t *)(c.mem[i] + off), __ATOMIC_SEQ_CST),
				3 * PROC_INCREMENTS);
	cluster_stop(&c);
}

/* ---- unmodified processes: the userfaultfd injected from outside ---------- */

/* Maps the memfd, says where, waits in read() (the injection interrupts
 * it and it restarts), then counts. No userfaultfd call of its own. */
static void plain_child(int memfd, size_t size, int tell, int go, uint64_t off)
{
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	uint64_t base = (uintptr_t)m;
	char c;
	if (m == MAP_FAILED || write(tell, &base, sizeof base) != sizeof base || read(go, &c, 1) != 1)
		_exit(2);
	for (int i = 0; i < PROC_INCREMENTS; i++) {
		__atomic_fetch_add((uint64_t *)(m + off), 1, __ATOMIC_SEQ_CST);
		if (i % 200 == 199)
			usleep(100);
	}
	_exit(0);
}

static void test_injected(void **state)
{
	struct cluster c;
	cluster_start(&c, 3, 200000);
	uint64_t off = page_homed_at(2, 3, 0) * DSM_PAGE_SIZE + 8;
	pid_t pid[3];
	int go[3], view[3];
	for (int i = 0; i < 3; i++) {
		int tell[2], g[2];
		assert_int_equal(pipe2(tell, O_CLOEXEC), 0);
		assert_int_equal(pipe2(g, O_CLOEXEC), 0);
		struct dsm_node *n = dsm_sock_node(c.node[i]);
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0)
			plain_child(dsm_node_memfd(n), dsm_node_size(n), tell[1], g[0], off);
		close(tell[1]);
		close(g[0]);
		go[i] = g[1];
		uint64_t base;
		assert_int_equal(read(tell[0], &base, sizeof base), sizeof base);
		close(tell[0]);
		usleep(10000); /* let it block in read() */
		struct ckpt_error err = { 0 };
		int uffd = -1;
		if (ckpt_uffd_take(pid[i], &uffd, &err) < 0)
			fail_msg("ckpt_uffd_take: %s", err.msg);
		struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM |
			UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
		struct uffdio_register reg = { .range = { base, dsm_node_size(n) },
			.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
				UFFDIO_REGISTER_MODE_WP };
		assert_int_equal(ioctl(uffd, UFFDIO_API, &api), 0);
		assert_int_equal(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
		view[i] = dsm_sock_attach(c.node[i], uffd, base);
		assert_true(view[i] > 0);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(write(go[i], "g", 1), 1);
	for (int i = 0; i < 3; i++) {
		int st;
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("child %d: status 0x%x", i, st);
		dsm_sock_detach(c.node[i], view[i]);
		close(go[i]);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(__atomic_load_n((uint64_t *)(c.mem[i] + off), __ATOMIC_SEQ_CST),
				3 * PROC_INCREMENTS);
	cluster_stop(&c);
}

/* ---- peers' bad messages -------------------------------------------------- */

static int sent;
static int count_send(void *ctx, uint32_t to, const uint8_t *buf, size_t len)
{
	sent++;
	return 0;
}

static size_t pack(uint8_t *buf, Krg__Dsm__Type type, uint64_t seg, uint64_t page, size_t dlen)
{
	static uint8_t page_data[DSM_PAGE_SIZE + 1];
	Krg__Dsm__Msg m = KRG__DSM__MSG__INIT;
	m.type = type;
	m.seg = seg;
	m.page = page;
	if (dlen) {
		m.has_data = true;
		m.data.data = page_data;
		m.data.len = dlen;
	}
	return krg__dsm__msg__pack(&m, buf);
}

static void test_bad_messages(void **state)
{
	struct dsm_node *n;
	struct dsm_config cfg = { .seg = 7, .self = 0, .nnodes = 3, .npages = NPAGES };
	assert_int_equal(dsm_node_new(&cfg, count_send, NULL, &n), 0);
	uint8_t buf[DSM_PAGE_SIZE + 64];
	uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01 };
	uint64_t mine = 0, theirs = 0;
	while (dsm_page_home(7, mine, 3) != 0)
		mine++;
	while (dsm_page_home(7, theirs, 3) == 0)
		theirs++;
	uint32_t theirs_home = dsm_page_home(7, theirs, 3);
	assert_int_equal(dsm_node_deliver(n, 1, junk, sizeof junk), -EBADMSG);
	/* wrong segment, page out of range, sender is self or unknown */
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 8, mine, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, NPAGES, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, 0, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, mine, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, 5, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, mine, 0)), -EBADMSG);
	/* a request for a page homed elsewhere; a short page */
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, theirs, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, theirs_home, buf,
			pack(buf, KRG__DSM__TYPE__GRANT, 7, theirs, 100)), -EBADMSG);
	/* a grant nobody asked for, a FETCH of a page not written here, an
	 * INVAL from a node that is not the home, an ACK nobody awaits */
	assert_int_equal(dsm_node_deliver(n, theirs_home, buf,
			pack(buf, KRG__DSM__TYPE__GRANT, 7, theirs, DSM_PAGE_SIZE)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, theirs_home, buf,
			pack(buf, KRG__DSM__TYPE__FETCH, 7, theirs, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, 3 - theirs_home, buf,
			pack(buf, KRG__DSM__TYPE__INVAL, 7, theirs, 0)), -EBADMSG);
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__ACK, 7, mine, 0)), -EBADMSG);
	assert_int_equal(sent, 0);
	/* A good request is served: a read grant goes back to node 1. */
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, mine, 0)), 0);
	assert_int_equal(sent, 1);
	struct dsm_stats st;
	dsm_node_stats(n, &st);
	assert_int_equal(st.rejected, 11);
	dsm_node_free(n);
}

/* ---- the minimum residency, deterministically (no sockets, no threads) --- */

static uint32_t last_to;
static int last_type;
static int last_byte = -1;     /* first byte of the page sent, -1 for none */
static int record_send(void *ctx, uint32_t to, const uint8_t *buf, size_t len)
{
	Krg__Dsm__Msg *m = krg__dsm__msg__unpack(NULL, len, buf);
	assert_non_null(m);
	last_to = to;
	last_type = m->type;
	last_byte = m->has_data ? m->data.data[0] : -1;
	krg__dsm__msg__free_unpacked(m, NULL);
	sent++;
	return 0;
}

static void test_residency(void **state)
{
	struct dsm_node *n;
	struct dsm_config cfg = { .seg = 7, .self = 0, .nnodes = 3, .npages = NPAGES,
		.min_residency_ns = 30ull * 1000000000ull };
	assert_int_equal(dsm_node_new(&cfg, record_send, NULL, &n), 0);
	uint64_t p = 0;
	while (dsm_page_home(7, p, 3) != 0)
		p++;
	uint8_t buf[DSM_PAGE_SIZE + 64];
	sent = 0;
	/* node 1 writes: granted at once */
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, p, 0)), 0);
	assert_int_equal(sent, 1);
	assert_int_equal(last_to, 1);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	/* node 2 reads right after: held for the residency, nothing sent */
	uint64_t t0 = dsm_now_ns();
	assert_int_equal(dsm_node_deliver(n, 2, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, p, 0)), 0);
	assert_int_equal(sent, 1);
	struct dsm_stats st;
	dsm_node_stats(n, &st);
	assert_int_equal(st.deferred, 1);
	uint64_t dl = dsm_node_next_deadline(n);
	assert_true(dl >= t0 + 29ull * 1000000000ull && dl <= dsm_now_ns() + cfg.min_residency_ns);
	dsm_node_tick(n, dl - 1);
	assert_int_equal(sent, 1);
	/* its time come, the home asks the writer for the page */
	dsm_node_tick(n, dl);
	assert_int_equal(sent, 2);
	assert_int_equal(last_to, 1);
	assert_int_equal(last_type, KRG__DSM__TYPE__FETCH);
	assert_int_equal(dsm_node_next_deadline(n), UINT64_MAX);
	/* the writer answers: node 2 gets a read copy */
	memset(buf, 0, sizeof buf);
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__ACK, 7, p, DSM_PAGE_SIZE)), 0);
	assert_int_equal(sent, 3);
	assert_int_equal(last_to, 2);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	dsm_node_free(n);
}

/* A node dies: nothing waits for it, its page comes back as the last copy. */
static void test_node_down(void **state)
{
	struct dsm_node *n;
	struct dsm_config cfg = { .seg = 7, .self = 0, .nnodes = 4, .npages = NPAGES };
	assert_int_equal(dsm_node_new(&cfg, record_send, NULL, &n), 0);
	uint64_t p = 0, q, r;
	while (dsm_page_home(7, p, 4) != 0)
		p++;
	for (q = p + 1; dsm_page_home(7, q, 4) != 0; q++)
		;
	for (r = q + 1; dsm_page_home(7, r, 4) != 0; r++)
		;
	assert_true(r < NPAGES);
	uint8_t buf[DSM_PAGE_SIZE + 64];
	static uint8_t page_b[DSM_PAGE_SIZE];
	Krg__Dsm__Msg ack = KRG__DSM__MSG__INIT;
	ack.type = KRG__DSM__TYPE__ACK;
	ack.seg = 7;
	ack.has_data = true;
	ack.data.data = page_b;
	ack.data.len = DSM_PAGE_SIZE;
	/* page p: node 2 writes "B", node 1 takes it (through the home), node 1 dies */
	assert_int_equal(dsm_node_deliver(n, 2, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, p, 0)), 0);
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, p, 0)), 0);
	assert_int_equal(last_type, KRG__DSM__TYPE__FETCH);
	memset(page_b, 'B', sizeof page_b);
	ack.page = p;
	assert_int_equal(dsm_node_deliver(n, 2, buf, krg__dsm__msg__pack(&ack, buf)), 0);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	assert_int_equal(last_to, 1);
	dsm_node_down(n, 1);
	/* node 3 reads: the home answers with "B" (stale by node 1's writes) */
	assert_int_equal(dsm_node_deliver(n, 3, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, p, 0)), 0);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	assert_int_equal(last_to, 3);
	assert_int_equal(last_byte, 'B');
	uint8_t c;
	assert_int_equal(pread(dsm_node_memfd(n), &c, 1, (off_t)(p * DSM_PAGE_SIZE)), 1);
	assert_int_equal(c, 'B');
	/* page q: node 2 writes "C"; node 3 asks; node 2 dies before the FETCH answer */
	memset(page_b, 'C', sizeof page_b);
	assert_int_equal(dsm_node_deliver(n, 2, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, q, 0)), 0);
	assert_int_equal(dsm_node_deliver(n, 3, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, q, 0)), 0);
	assert_int_equal(last_type, KRG__DSM__TYPE__FETCH);
	assert_int_equal(last_to, 2);
	dsm_node_down(n, 2);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	assert_int_equal(last_to, 3);
	assert_int_equal(last_byte, 0);                 /* the page before node 2 had it */
	/* a request that arrives from a node declared down is dropped */
	int before = sent;
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, r, 0)), 0);
	assert_int_equal(sent, before);                 /* late news from a dead node */
	struct dsm_stats st;
	dsm_node_stats(n, &st);
	assert_int_equal(st.recovered, 2);
	dsm_node_free(n);
}

/* A reader dies while the home waits for its INVAL ack: the write goes on. */
static void test_node_down_inval(void **state)
{
	struct dsm_node *n;
	struct dsm_config cfg = { .seg = 7, .self = 0, .nnodes = 4, .npages = NPAGES };
	assert_int_equal(dsm_node_new(&cfg, record_send, NULL, &n), 0);
	uint64_t p = 0;
	while (dsm_page_home(7, p, 4) != 0)
		p++;
	uint8_t buf[DSM_PAGE_SIZE + 64];
	assert_int_equal(dsm_node_deliver(n, 1, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, p, 0)), 0);
	assert_int_equal(dsm_node_deliver(n, 2, buf, pack(buf, KRG__DSM__TYPE__READ_REQ, 7, p, 0)), 0);
	int before = sent;
	assert_int_equal(dsm_node_deliver(n, 3, buf, pack(buf, KRG__DSM__TYPE__WRITE_REQ, 7, p, 0)), 0);
	assert_int_equal(sent, before + 2);             /* INVAL to 1 and 2 */
	assert_int_equal(last_type, KRG__DSM__TYPE__INVAL);
	assert_int_equal(dsm_node_deliver(n, 2, buf, pack(buf, KRG__DSM__TYPE__ACK, 7, p, 0)), 0);
	assert_int_equal(sent, before + 2);             /* still waiting for node 1 */
	dsm_node_down(n, 1);
	assert_int_equal(sent, before + 3);
	assert_int_equal(last_type, KRG__DSM__TYPE__GRANT);
	assert_int_equal(last_to, 3);
	dsm_node_free(n);
}

/* A page whose home died: a thread waiting for it and a later access both
 * get SIGBUS, nothing hangs. */
static __thread sigjmp_buf bus_jmp;
static void on_bus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

static volatile uint8_t *lost_at;
static void *touch_lost(void *arg)
{
	int *got_bus = arg;
	if (sigsetjmp(bus_jmp, 1) == 0) {
		(void)*lost_at;
		*got_bus = 0;
	} else {
		*got_bus = 1;
	}
	return NULL;
}

static void test_home_lost(void **state)
{
	struct dsm_node *n;
	struct dsm_config cfg = { .seg = 7, .self = 0, .nnodes = 3, .npages = NPAGES };
	assert_int_equal(dsm_node_new(&cfg, record_send, NULL, &n), 0);
	uint64_t p = 0;
	while (dsm_page_home(7, p, 3) != 1)
		p++;
	struct sigaction sa = { .sa_handler = on_bus }, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGBUS, &sa, &old), 0);
	lost_at = (uint8_t *)dsm_node_addr(n) + p * DSM_PAGE_SIZE;
	int got_bus = -1;
	pthread_t t;
	sent = 0;
	assert_int_equal(pthread_create(&t, NULL, touch_lost, &got_bus), 0);
	/* its fault becomes a READ_REQ to node 1 */
	for (int i = 0; i < 2000 && !sent; i++) {
		dsm_node_fault(n);
		usleep(1000);
	}
	assert_int_equal(sent, 1);
	assert_int_equal(last_to, 1);
	assert_int_equal(last_type, KRG__DSM__TYPE__READ_REQ);
	dsm_node_down(n, 1);
	pthread_join(t, NULL);
	assert_int_equal(got_bus, 1);
	/* a later access too, at once */
	int again = -1;
	assert_int_equal(pthread_create(&t, NULL, touch_lost, &again), 0);
	pthread_join(t, NULL);
	assert_int_equal(again, 1);
	struct dsm_stats st;
	dsm_node_stats(n, &st);
	assert_true(st.lost >= 1);
	sigaction(SIGBUS, &old, NULL);
	dsm_node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_residency),
		cmocka_unit_test(test_node_down),
		cmocka_unit_test(test_node_down_inval),
		cmocka_unit_test(test_home_lost),
		cmocka_unit_test(test_read_write_across),
		cmocka_unit_test(test_readahead),
		cmocka_unit_test(test_atomic_counter),
		cmocka_unit_test(test_peterson),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_injected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
