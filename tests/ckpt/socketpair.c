/* Unix socketpairs within the process with data in flight: a stream pair
 * with bytes queued both ways (one end O_NONBLOCK, ends at fds 20 and
 * 15), a datagram pair with three datagrams queued one way (one empty)
 * and one the other, a stream pair whose other end is closed (data,
 * then EOF). Peeking at checkpoint consumes nothing; message boundaries
 * and types come back. */
#include <errno.h>
#include <sys/socket.h>
#include "zdtm.h"

static void expect(int fd, const char *want, size_t len, const char *what)
{
	char buf[1 << 17];
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n <= 0)
			fail("%s: recv after %zu of %zu: %zd (%s)", what, got, len, n, strerror(errno));
		got += (size_t)n;
	}
	if (memcmp(buf, want, len))
		fail("%s: data differs", what);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int s[2], d[2], w[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, d) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, w) < 0)
		fail("socketpair");
	dup2(s[0], 20), dup2(s[1], 15), close(s[0]), close(s[1]);
	fcntl(15, F_SETFL, 0);
	static char big[64 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i ^ (i >> 8));
	if (send(20, big, sizeof(big), 0) != sizeof(big) || send(15, "back", 4, 0) != 4)
		fail("stream send");
	send(d[0], "one", 3, 0), send(d[0], "", 0, 0), send(d[0], "three!", 6, 0);
	send(d[1], "reply", 5, 0);
	send(w[1], "bye", 3, 0);
	close(w[1]);
	test_ready(argv);
	test_wait();
	int type = 0;
	socklen_t sl = sizeof(type);
	if (getsockopt(d[0], SOL_SOCKET, SO_TYPE, &type, &sl) < 0 || type != SOCK_DGRAM)
		fail("datagram socket has type %d", type);
	if (!(fcntl(20, F_GETFL) & O_NONBLOCK) || (fcntl(15, F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK");
	expect(15, big, sizeof(big), "stream 20->15");
	expect(20, "back", 4, "stream 15->20");
	char b[16];
	if (recv(20, b, 1, 0) != -1 || errno != EAGAIN)
		fail("more data than sent");
	send(15, "x", 1, 0);
	expect(20, "x", 1, "stream after restart");
	memset(b, 0, sizeof(b));
	if (recv(d[1], b, sizeof(b), 0) != 3 || strcmp(b, "one"))
		fail("dgram 1: %s", b);
	if (recv(d[1], b, sizeof(b), 0) != 0)
		fail("dgram 2 not empty");
	memset(b, 0, sizeof(b));
	if (recv(d[1], b, sizeof(b), 0) != 6 || strcmp(b, "three!"))
		fail("dgram 3: %s", b);
	memset(b, 0, sizeof(b));
	if (recv(d[0], b, sizeof(b), 0) != 5 || strcmp(b, "reply"))
		fail("dgram back: %s", b);
	if (recv(d[0], b, sizeof(b), MSG_DONTWAIT) != -1 || recv(d[1], b, sizeof(b), MSG_DONTWAIT) != -1)
		fail("extra datagrams");
	expect(w[0], "bye", 3, "widowed stream");
	if (recv(w[0], b, 1, 0) != 0)
		fail("no EOF from the closed peer");
	pass();
}
