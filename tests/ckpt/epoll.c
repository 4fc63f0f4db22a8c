/* epoll: an epoll (and a dup of it at fd 50) watching a pipe (level,
 * data 0x1111), an eventfd already readable (edge-triggered, data
 * 0x2222) and a one-shot eventfd that fired (disarmed); a second epoll,
 * at a lower fd, watching the first. After restart: the ready eventfd is
 * reported, the pipe once written, the disarmed one never, the outer
 * epoll sees the inner one ready, the dup is the same epoll. */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "zdtm.h"

static int wait1(int ep, uint64_t *data)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, 0);
	if (n == 1)
		*data = ev[0].data.u64;
	return n;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int outer = epoll_create1(EPOLL_CLOEXEC);
	int p[2];
	int ep = epoll_create1(0);
	int ready = eventfd(1, EFD_NONBLOCK), once = eventfd(0, EFD_NONBLOCK);
	if (outer < 0 || ep < 0 || pipe(p) < 0 || ready < 0 || once < 0)
		fail("setup");
	struct epoll_event a = { .events = EPOLLIN, .data.u64 = 0x1111 };
	struct epoll_event b = { .events = EPOLLIN | EPOLLET, .data.u64 = 0x2222 };
	struct epoll_event c = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x3333 };
	struct epoll_event o = { .events = EPOLLIN, .data.u64 = 0x4444 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &a) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, once, &c) < 0 ||
	    epoll_ctl(outer, EPOLL_CTL_ADD, ep, &o) < 0)
		fail("epoll_ctl: %s", strerror(errno));
	uint64_t one = 1, d = 0;
	/* Fire the one-shot entry, so that it is disarmed. */
	if (write(once, &one, 8) != 8 || wait1(ep, &d) != 1 || d != 0x3333)
		fail("one-shot entry did not fire before the checkpoint");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ready, &b) < 0 || dup2(ep, 50) < 0)
		fail("epoll_ctl/dup2: %s", strerror(errno));
	test_ready(argv);
	test_wait();
	if (!(fcntl(outer, F_GETFD) & FD_CLOEXEC))
		fail("EPOLL_CLOEXEC lost");
	if (wait1(outer, &d) != 1 || d != 0x4444)
		fail("outer epoll does not see the inner one ready");
	if (wait1(50, &d) != 1 || d != 0x2222)
		fail("the readable eventfd not reported through the dup (got %d, data %#llx)", wait1(50, &d), (unsigned long long)d);
	if (wait1(ep, &d) != 0)
		fail("edge-triggered entry reported twice");
	if (write(p[1], "x", 1) != 1 || wait1(ep, &d) != 1 || d != 0x1111)
		fail("pipe entry not reported once written");
	char x;
	if (read(p[0], &x, 1) != 1 || write(once, &one, 8) != 8 || wait1(ep, &d) != 0)
		fail("disarmed one-shot entry reported");
	struct epoll_event re = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x5555 };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, once, &re) < 0 || wait1(ep, &d) != 1 || d != 0x5555)
		fail("one-shot entry cannot be re-armed");
	pass();
}
