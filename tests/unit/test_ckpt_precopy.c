/* test_ckpt_precopy.c — a live migration's pre-copy (src/ckpt/precopy.c,
 * docs/migration.md "Pre-copy") against a real child process: the final
 * dump trusts a page's copy only if the page was not written, and not
 * zapped (MADV_DONTNEED), since the copy was taken. A zapped page whose
 * old copy were trusted would come back on the destination with the
 * bytes the program threw away instead of zeros; the kernel reports such
 * a page as written (no write-protect marker survives the zap), which is
 * what this checks, both for a zap after the last round and for one
 * between rounds. Root (userfaultfd, PAGEMAP_SCAN: Linux 6.7). */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>
#include <cmocka.h>
#include "ckpt/ckpt.h"
#include "ckpt/ckpt-int.h"
#include "lib/fdpass.h"

#define PG 4096UL
#define NPAGES 64 /* 256 KiB: above pre-copy's smallest tracked area */

struct child {
	pid_t pid;
	int sock;      /* commands to the child, its answers */
	uint8_t *area; /* the child's area (same address space layout: forked) */
	int uffd;
};

static void page_fill(uint8_t *p, uint8_t v)
{
	memset(p, v, PG);
}

/* The child: its area, a userfaultfd made in its own mm (as krgd's
 * injected call does), then commands: z N zaps page N, w N writes it. */
static void child_main(int sock, uint8_t *area)
{
	for (int i = 0; i < NPAGES; i++)
		page_fill(area + i * PG, (uint8_t)(i + 1));
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	char c = u < 0 ? 'E' : 'R';
	if (krg_fd_send(sock, &c, 1, u, 0) < 0)
		_exit(2);
	if (u >= 0)
		close(u);
	char cmd[2];
	while (read(sock, cmd, 2) == 2) {
		uint8_t *p = area + (uint8_t)cmd[1] * PG;
		if (cmd[0] == 'z')
			madvise(p, PG, MADV_DONTNEED);
		else if (cmd[0] == 'w')
			page_fill(p, 0xee);
		if (write(sock, "k", 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static void child_start(struct child *c)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	c->area = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(c->area != MAP_FAILED);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(sv[0]);
		child_main(sv[1], c->area);
	}
	close(sv[1]);
	c->sock = sv[0];
	/* Our own copy of the area is of no use: only the child's is tracked. */
	munmap(c->area, NPAGES * PG);
	char ch = 0;
	struct iovec iov = { &ch, 1 };
	assert_int_equal(krg_fd_recvv(c->sock, &iov, 1, 0, &c->uffd), 1);
	if (ch != 'R')
		fail_msg("the child cannot make a userfaultfd (root and CONFIG_USERFAULTFD needed)");
	assert_true(c->uffd >= 0);
}

static void child_do(struct child *c, char op, int page)
{
	char cmd[2] = { op, (char)page }, k;
	assert_int_equal(write(c->sock, cmd, 2), 2);
	assert_int_equal(read(c->sock, &k, 1), 1);
}

static void child_end(struct child *c)
{
	close(c->sock);
	int st;
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static uint64_t sum_of(uint8_t v)
{
	static uint8_t p[PG];
	memset(p, v, PG);
	return XXH3_64bits(p, PG);
}

/* The copy the final dump would use for page i, if it trusts one. */
static bool copy_of(struct ckpt_precopy *pc, const struct child *c, int i, uint64_t *sum)
{
	uint64_t off;
	return ckpt_precopy_lookup(pc, (uint64_t)(uintptr_t)(c->area + i * PG), &off, sum);
}

static void run(bool zap_between_rounds)
{
	struct child c;
	child_start(&c);
	char dir[] = "/tmp/test_ckpt_precopy.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct ckpt_precopy *pc = NULL;
	struct ckpt_error err = { 0 };
	int r = ckpt_precopy_start(c.pid, c.uffd, dir, &pc, &err);
	if (r < 0)
		fail_msg("pre-copy start: %s", err.msg);
	uint64_t bytes, sum;
	r = ckpt_precopy_round(pc, &bytes, &err);
	if (r < 0)
		fail_msg("round 1: %s", err.msg);
	assert_true(bytes >= NPAGES * PG);
	assert_true(copy_of(pc, &c, 3, &sum));
	assert_true(sum == sum_of(4));
	/* Page 3 zapped (its bytes thrown away: it reads zeros now), page 5
	 * written, page 7 untouched. */
	child_do(&c, 'z', 3);
	child_do(&c, 'w', 5);
	if (zap_between_rounds) {
		r = ckpt_precopy_round(pc, &bytes, &err);
		if (r < 0)
			fail_msg("round 2: %s", err.msg);
		/* The written pages were copied again: page 3's copy is zeros now. */
		assert_true(bytes >= 2 * PG);
		assert_true(copy_of(pc, &c, 3, &sum));
		assert_true(sum == sum_of(0));
		assert_true(copy_of(pc, &c, 5, &sum));
		assert_true(sum == sum_of(0xee));
	}
	r = ckpt_precopy_final(pc, &err);
	if (r < 0)
		fail_msg("final: %s", err.msg);
	if (zap_between_rounds) {
		/* Copied after the zap and the write, untouched since: trusted. */
		assert_true(copy_of(pc, &c, 3, &sum) && sum == sum_of(0));
		assert_true(copy_of(pc, &c, 5, &sum) && sum == sum_of(0xee));
	} else {
		/* Zapped or written after the last round: read again by the dump. */
		assert_false(copy_of(pc, &c, 3, &sum));
		assert_false(copy_of(pc, &c, 5, &sum));
	}
	assert_true(copy_of(pc, &c, 7, &sum));
	assert_true(sum == sum_of(8));
	ckpt_precopy_free(pc);
	child_end(&c);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_zap_after_last_round(void **state)
{
	run(false);
}

static void test_zap_between_rounds(void **state)
{
	run(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zap_after_last_round),
		cmocka_unit_test(test_zap_between_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
