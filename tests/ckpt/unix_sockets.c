/* unix sockets of every type: a stream socket listening on a path (a
 * relative name, mode 0600), a seqpacket one listening on an abstract
 * name, a connection accepted from the first with bytes queued both
 * ways, a seqpacket pair with two messages queued, a datagram socket
 * bound to a path with two datagrams queued from a sender now closed.
 * After restart: new clients connect to both listeners and talk, the
 * accepted connection and the pair keep their data and boundaries, the
 * datagrams are there and the path still reaches the socket. */
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "zdtm.h"

static socklen_t addr(struct sockaddr_un *a, const char *name, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

static int listener(int type, const char *name, size_t len)
{
	struct sockaddr_un a;
	socklen_t al = addr(&a, name, len);
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, al) < 0 || listen(s, 8) < 0)
		fail("listener %s: %s", name[0] ? name : name + 1, strerror(errno));
	return s;
}

/* A new client of (name, len): says hello, gets the reply through accept. */
static void talk(int srv, int type, const char *name, size_t len, const char *what)
{
	struct sockaddr_un a;
	socklen_t al = addr(&a, name, len);
	int c = socket(AF_UNIX, type, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, al) < 0)
		fail("%s: connect after restart: %s", what, strerror(errno));
	int s = accept(srv, NULL, NULL);
	char b[16] = "";
	if (s < 0 || write(c, "ping", 4) != 4 || read(s, b, sizeof(b)) != 4 || memcmp(b, "ping", 4) || write(s, "pong", 4) != 4 ||
	    read(c, b, sizeof(b)) != 4 || memcmp(b, "pong", 4))
		fail("%s: no conversation after restart (%s)", what, strerror(errno));
	close(c);
	close(s);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char abs_name[64];
	size_t abs_len = (size_t)snprintf(abs_name, sizeof(abs_name), "%ckrg-ckpt-%d", 0, getpid());
	unlink("srv.sock");
	unlink("dg.sock");
	mode_t old = umask(0177);
	int srv = listener(SOCK_STREAM, "srv.sock", 8);
	umask(old);
	int sq = listener(SOCK_SEQPACKET, abs_name, abs_len);
	/* An accepted connection, data queued both ways. */
	struct sockaddr_un a;
	socklen_t al = addr(&a, "srv.sock", 8);
	int cl = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cl < 0 || connect(cl, (struct sockaddr *)&a, al) < 0)
		fail("connect: %s", strerror(errno));
	int acc = accept(srv, NULL, NULL);
	if (acc < 0 || write(cl, "to-server", 9) != 9 || write(acc, "to-client!", 10) != 10)
		fail("accept/write");
	/* A seqpacket pair, two messages queued at one end. */
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0 || write(sp[0], "one", 3) != 3 || write(sp[0], "second", 6) != 6)
		fail("seqpacket pair");
	/* A bound datagram socket, two datagrams from a sender now gone. */
	int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
	al = addr(&a, "dg.sock", 7);
	if (dg < 0 || bind(dg, (struct sockaddr *)&a, al) < 0)
		fail("bind dg.sock: %s", strerror(errno));
	int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(tx, "d1", 2, 0, (struct sockaddr *)&a, al) != 2 || sendto(tx, "dgram-2", 7, 0, (struct sockaddr *)&a, al) != 7)
		fail("sendto");
	close(tx);
	test_ready(argv);
	test_wait();
	struct stat st;
	if (stat("srv.sock", &st) < 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0600)
		fail("srv.sock: not a socket of mode 0600 after restart (%o)", st.st_mode & 0777);
	char b[32] = "";
	if (read(acc, b, sizeof(b)) != 9 || memcmp(b, "to-server", 9) || read(cl, b, sizeof(b)) != 10 || memcmp(b, "to-client!", 10))
		fail("accepted connection lost its queued bytes");
	if (write(cl, "more", 4) != 4 || read(acc, b, sizeof(b)) != 4)
		fail("accepted connection does not carry new bytes");
	if (read(sp[1], b, sizeof(b)) != 3 || memcmp(b, "one", 3) || read(sp[1], b, sizeof(b)) != 6 || memcmp(b, "second", 6))
		fail("seqpacket messages lost or merged");
	if (recv(dg, b, sizeof(b), 0) != 2 || memcmp(b, "d1", 2) || recv(dg, b, sizeof(b), 0) != 7 || memcmp(b, "dgram-2", 7))
		fail("queued datagrams lost");
	tx = socket(AF_UNIX, SOCK_DGRAM, 0);
	al = addr(&a, "dg.sock", 7);
	if (sendto(tx, "d3", 2, 0, (struct sockaddr *)&a, al) != 2 || recv(dg, b, sizeof(b), 0) != 2)
		fail("dg.sock does not reach the restored socket (%s)", strerror(errno));
	talk(srv, SOCK_STREAM, "srv.sock", 8, "srv.sock");
	talk(sq, SOCK_SEQPACKET, abs_name, abs_len, "abstract seqpacket listener");
	pass();
}
