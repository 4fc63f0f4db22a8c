/* Unit tests for the proxied-fd pump of migration (src/proc/migrate/pump.c):
 * a reading end sends DATA until a window is unacknowledged, resumes on
 * ACK, sends EOF at the end; a writing end writes DATA into its fd,
 * acknowledges it, closes on EOF; queued input is returned (MF_BACK). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "proc/migrate/mig-int.h"

static uint8_t big[MIG_CHUNK];

/* Next frame on s: type, and the header in *h; data length in *len. */
static int next_frame(int s, struct mig_hdr *h, size_t *len)
{
	static uint8_t buf[sizeof(struct mig_hdr) + MIG_CHUNK];
	ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < (ssize_t)sizeof(*h))
		return -1;
	memcpy(h, buf, sizeof(*h));
	*len = (size_t)n - sizeof(*h);
	return h->type;
}

/* Run the pump's ready fds once. */
static void turn(struct mig_pump *p)
{
	struct pollfd pfd[MIG_MAX_PROXIES];
	size_t map[MIG_MAX_PROXIES];
	size_t k = mig_pump_pollfds(p, pfd, MIG_MAX_PROXIES, map);
	if (!k || poll(pfd, k, 0) <= 0)
		return;
	for (size_t i = 0; i < k; i++)
		if (pfd[i].revents)
			assert_true(mig_pump_ready(p, map[i], pfd[i].revents) >= 0);
}

static void test_window_and_eof(void **state)
{
	int sv[2], pp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	int big_buf = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big_buf, sizeof(big_buf));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big_buf, sizeof(big_buf));
	assert_int_equal(pipe2(pp, O_NONBLOCK), 0);
	fcntl(pp[0], F_SETPIPE_SZ, 1 << 20);
	fcntl(pp[1], F_SETPIPE_SZ, 1 << 20);
	struct mig_pump p = { .sock = sv[0], .out_enabled = true };
	p.p[p.n++] = (struct mig_pfd){ .num = 1, .fd = pp[0], .src = true };
	/* More than a window, in rounds: the pump stops at MIG_WINDOW. */
	size_t sent = 0, got = 0;
	struct mig_hdr h;
	size_t len;
	for (int round = 0; round < 4 * (int)(MIG_WINDOW / MIG_CHUNK_SMALL); round++) {
		while (sent < MIG_WINDOW + 4 * MIG_CHUNK) {
			ssize_t w = write(pp[1], big, sizeof(big));
			if (w <= 0)
				break;
			sent += (size_t)w;
		}
		turn(&p);
		while (next_frame(sv[1], &h, &len) == MF_DATA) {
			assert_int_equal(h.fd, 1);
			got += len;
		}
	}
	assert_true(got >= MIG_WINDOW);
	assert_true(got < MIG_WINDOW + MIG_CHUNK);
	assert_true(mig_pump_pollfds(&p, (struct pollfd[1]){ 0 }, 1, (size_t[1]){ 0 }) == 0); /* waiting for credit */
	/* Credit back: it reads on, to the end. */
	h = (struct mig_hdr){ .type = MF_ACK, .fd = 1, .arg = (int64_t)got };
	assert_int_equal(mig_pump_frame(&p, &h, NULL, 0), 1);
	close(pp[1]);
	bool eof = false;
	for (int round = 0; round < 256 && !eof; round++) {
		turn(&p);
		int t;
		while ((t = next_frame(sv[1], &h, &len)) > 0) {
			if (t == MF_DATA)
				got += len;
			else if (t == MF_EOF)
				eof = true;
		}
		h = (struct mig_hdr){ .type = MF_ACK, .fd = 1, .arg = (int64_t)MIG_WINDOW };
		mig_pump_frame(&p, &h, NULL, 0);
	}
	assert_true(eof);
	assert_int_equal(got, sent);
	close(sv[0]);
	close(sv[1]);
}

static void test_write_ack_close_return(void **state)
{
	int sv[2], pp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(pipe2(pp, O_NONBLOCK), 0);
	struct mig_pump p = { .sock = sv[0] };
	p.p[p.n++] = (struct mig_pfd){ .num = 0, .fd = pp[1], .src = false };
	struct mig_hdr h = { .type = MF_DATA, .fd = 0 };
	assert_int_equal(mig_pump_frame(&p, &h, (const uint8_t *)"hello", 5), 1);
	turn(&p);
	char buf[16];
	assert_int_equal(read(pp[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	size_t len;
	struct mig_hdr a;
	assert_int_equal(next_frame(sv[1], &a, &len), MF_ACK);
	assert_int_equal(a.arg, 5);
	/* Queued, not written: returned as MF_BACK. */
	assert_int_equal(mig_pump_frame(&p, &h, (const uint8_t *)"later", 5), 1);
	assert_int_equal(mig_pump_return(&p, MF_BACK), 0);
	assert_int_equal(next_frame(sv[1], &a, &len), MF_BACK);
	assert_int_equal(len, 5);
	/* EOF closes the fd: the reader sees the end. */
	h.type = MF_EOF;
	assert_int_equal(mig_pump_frame(&p, &h, NULL, 0), 1);
	assert_int_equal(p.p[0].fd, -1);
	assert_int_equal(read(pp[0], buf, sizeof(buf)), 0);
	/* Not pump business. */
	h.type = MF_SIG;
	assert_int_equal(mig_pump_frame(&p, &h, NULL, 0), 0);
	close(pp[0]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_and_eof),
		cmocka_unit_test(test_write_ack_close_return),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
