/* Pipes and a FIFO with unread data: a pipe with both ends (read end
 * O_NONBLOCK, ends at swapped-looking numbers, a dup of the write end),
 * 100 KiB queued in a pipe grown to 256 KiB, a pipe whose write end is
 * closed (data, then EOF), a FIFO opened at both ends. Nothing is read
 * by the checkpoint: every byte is there after restart. */
#include <errno.h>
#include <sys/stat.h>
#include "zdtm.h"

static void check_read(int fd, const char *want, size_t len, const char *what)
{
	char buf[1 << 18];
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			fail("%s: read after %zu of %zu bytes: %zd (%s)", what, got, len, n, strerror(errno));
		got += (size_t)n;
	}
	if (memcmp(buf, want, len))
		fail("%s: data differs", what);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	static char big[100 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	int p[2], q[2], c[2];
	if (pipe2(p, O_NONBLOCK) < 0 || pipe(q) < 0 || pipe(c) < 0)
		fail("pipe");
	/* read end at 11, write end at 10, write end also at 12 */
	dup2(p[0], 11), dup2(p[1], 10), close(p[0]), close(p[1]);
	fcntl(10, F_SETFL, 0);
	dup2(10, 12);
	write(12, "hello, pipe", 11);
	if (fcntl(q[1], F_SETPIPE_SZ, 256 * 1024) < 0)
		fail("F_SETPIPE_SZ");
	if (write(q[1], big, sizeof(big)) != sizeof(big))
		fail("write big");
	write(c[1], "last words", 10);
	close(c[1]);
	mkfifo("fifo", 0600);
	int fr = open("fifo", O_RDONLY | O_NONBLOCK);
	int fw = open("fifo", O_WRONLY);
	write(fw, "through the fifo", 16);
	test_ready(argv);
	test_wait();

	char buf[64] = { 0 };
	if (!(fcntl(11, F_GETFL) & O_NONBLOCK) || (fcntl(10, F_GETFL) & O_NONBLOCK))
		fail("pipe O_NONBLOCK flags not kept");
	check_read(11, "hello, pipe", 11, "pipe");
	if (read(11, buf, 1) != -1 || errno != EAGAIN)
		fail("non-blocking empty pipe did not say EAGAIN");
	write(12, "x", 1);  /* the dup is the same write end */
	write(10, "y", 1);
	check_read(11, "xy", 2, "pipe after restart");
	if (fcntl(q[1], F_GETPIPE_SZ) != 256 * 1024)
		fail("pipe size %d", fcntl(q[1], F_GETPIPE_SZ));
	check_read(q[0], big, sizeof(big), "big pipe");
	check_read(c[0], "last words", 10, "widowed pipe");
	if (read(c[0], buf, 1) != 0)
		fail("no EOF after the closed write end's data");
	check_read(fr, "through the fifo", 16, "fifo");
	write(fw, "again", 5);
	check_read(fr, "again", 5, "fifo after restart");
	struct stat st;
	if (fstat(fr, &st) < 0 || !S_ISFIFO(st.st_mode))
		fail("fifo is no fifo");
	pass();
}
