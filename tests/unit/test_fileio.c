/* Unit tests for the whole-buffer reads and writes of src/lib/fileio.c
 * (krg_write_all, krg_write_all_nowait, krg_read_all) on real pipes with
 * real threads: short writes and reads, EINTR from a signal without
 * SA_RESTART, EAGAIN on a non-blocking fd, the other end closing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/fileio.h"

#define BIG (1u << 20) /* 16x the 64 KiB pipe: many short writes */

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + i / 251);
	return p;
}

static void pipe_pair(int p[2], bool nonblock_write, bool nonblock_read)
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	if (nonblock_read)
		assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	if (nonblock_write)
		assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
}

/* A reader in a thread: takes `len` bytes in small pieces, slowly enough
 * that the writer finds the pipe full again and again. */
struct drain {
	int fd;
	size_t len, got;
	uint8_t *buf;
	pthread_t writer; /* poked with SIGUSR1 while it writes, if set */
	bool poke;
	unsigned pokes;
};

static void on_usr1(int sig) { (void)sig; }

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	while (d->got < d->len) {
		size_t want = d->len - d->got < 3000 ? d->len - d->got : 3000;
		ssize_t r = read(d->fd, d->buf + d->got, want);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		d->got += (size_t)r;
		if (d->poke && pthread_kill(d->writer, SIGUSR1) == 0)
			d->pokes++;
		if (d->got % 7 == 0)
			sched_yield();
	}
	return NULL;
}

/* SIGUSR1 interrupts a blocked write/read (no SA_RESTART): EINTR or a
 * short count, both of which must be gone through. */
static void interruptible(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
}

static void write_through(bool nonblock, bool poke)
{
	int p[2];
	pipe_pair(p, nonblock, false);
	uint8_t *src = pattern(BIG);
	struct drain d = { .fd = p[0], .len = BIG, .buf = calloc(1, BIG), .writer = pthread_self(), .poke = poke };
	assert_non_null(d.buf);
	interruptible();
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
	assert_int_equal(krg_write_all(p[1], src, BIG), 0);
	pthread_join(t, NULL);
	assert_int_equal(d.got, BIG);
	assert_memory_equal(d.buf, src, BIG);
	if (poke)
		assert_true(d.pokes > 0);
	free(src);
	free(d.buf);
	close(p[0]);
	close(p[1]);
}

/* A blocking pipe, 16x its size: every byte in order. */
static void test_write_short(void **state) { write_through(false, false); }

/* The same while a signal interrupts the write over and over. */
static void test_write_eintr(void **state) { write_through(false, true); }

/* A non-blocking fd: EAGAIN waits for the reader instead of failing. */
static void test_write_eagain_waits(void **state) { write_through(true, true); }

/* krg_write_all_nowait on a full non-blocking pipe nobody drains: -EAGAIN
 * at once (no hang), what fitted stays written. */
static void test_write_nowait(void **state)
{
	int p[2];
	pipe_pair(p, true, false);
	int cap = fcntl(p[1], F_GETPIPE_SZ);
	assert_true(cap > 0);
	uint8_t *src = pattern(BIG);
	assert_int_equal(krg_write_all_nowait(p[1], src, (size_t)cap), 0);
	assert_int_equal(krg_write_all_nowait(p[1], src, 10), -EAGAIN);
	uint8_t *got = malloc((size_t)cap);
	assert_int_equal(krg_read_all(p[0], got, (size_t)cap), 0);
	assert_memory_equal(got, src, (size_t)cap);
	free(got);
	free(src);
	close(p[0]);
	close(p[1]);
}

/* The reader gone: -EPIPE (SIGPIPE ignored, as krgd and the CLIs do). */
static void test_write_closed(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	int p[2];
	pipe_pair(p, false, false);
	close(p[0]);
	assert_int_equal(krg_write_all(p[1], "x", 1), -EPIPE);
	assert_int_equal(krg_write_all_nowait(p[1], "x", 1), -EPIPE);
	assert_int_equal(krg_write_all(-1, "x", 1), -EBADF);
	assert_int_equal(krg_write_all(p[1], "", 0), 0);
	close(p[1]);
}

/* A writer in a thread: `len` bytes in pieces of 1000, poking the reader. */
struct feed {
	int fd;
	const uint8_t *src;
	size_t len;
	pthread_t reader;
	unsigned pokes;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	for (size_t off = 0; off < f->len;) {
		size_t n = f->len - off < 1000 ? f->len - off : 1000;
		ssize_t w = write(f->fd, f->src + off, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
		if (pthread_kill(f->reader, SIGUSR1) == 0)
			f->pokes++;
		sched_yield();
	}
	close(f->fd); /* the end: a read past len would see EOF */
	return NULL;
}

static void read_through(bool nonblock)
{
	int p[2];
	pipe_pair(p, false, nonblock);
	uint8_t *src = pattern(BIG);
	uint8_t *got = calloc(1, BIG);
	interruptible();
	struct feed f = { .fd = p[1], .src = src, .len = BIG, .reader = pthread_self() };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, feed_main, &f), 0);
	/* Less than all, then the rest and one byte more: EOF -> -EPIPE. */
	assert_int_equal(krg_read_all(p[0], got, BIG / 2), 0);
	uint8_t extra[2];
	assert_int_equal(krg_read_all(p[0], got + BIG / 2, BIG - BIG / 2), 0);
	assert_int_equal(krg_read_all(p[0], extra, 1), -EPIPE);
	pthread_join(t, NULL);
	assert_memory_equal(got, src, BIG);
	assert_true(f.pokes > 0);
	free(src);
	free(got);
	close(p[0]);
}

/* Short reads and EINTR on a blocking fd; EAGAIN waits on a non-blocking one. */
static void test_read_blocking(void **state) { read_through(false); }
static void test_read_nonblocking(void **state) { read_through(true); }

/* EOF in the middle of what is asked: -EPIPE, the bytes before it read. */
static void test_read_short_eof(void **state)
{
	int p[2];
	pipe_pair(p, false, false);
	assert_int_equal(krg_write_all(p[1], "abc", 3), 0);
	close(p[1]);
	char b[8] = "";
	assert_int_equal(krg_read_all(p[0], b, 8), -EPIPE);
	assert_string_equal(b, "abc");
	assert_int_equal(krg_read_all(-1, b, 1), -EBADF);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_short),
		cmocka_unit_test(test_write_eintr),
		cmocka_unit_test(test_write_eagain_waits),
		cmocka_unit_test(test_write_nowait),
		cmocka_unit_test(test_write_closed),
		cmocka_unit_test(test_read_blocking),
		cmocka_unit_test(test_read_nonblocking),
		cmocka_unit_test(test_read_short_eof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
