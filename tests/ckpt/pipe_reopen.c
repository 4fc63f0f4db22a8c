/* Pipes opened again, and a FIFO whose name is gone (issue 14 item 11):
 *  - a pipe's read end opened again through /proc/self/fd/N (O_RDONLY):
 *    a second open file description of the same pipe, with its own flags
 *    (O_NONBLOCK on one only); data written before the checkpoint is
 *    read after it through either;
 *  - a pipe's write end opened again through /proc/self/fd/N as O_WRONLY
 *    next to the original;
 *  - a FIFO opened at both ends and then unlinked, holding unread data:
 *    after restart both ends still talk, the data is there, and nothing
 *    of it shows in the directory (the name stays gone).
 * The pairs must stay ONE pipe: a byte written through one description
 * is read through the other. */
#include <errno.h>
#include <sys/stat.h>
#include "zdtm.h"

static void expect(int fd, const char *want, const char *what)
{
	char buf[128] = { 0 };
	size_t len = strlen(want), got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			fail("%s: read after %zu of %zu bytes: %zd (%s)", what, got, len, n, strerror(errno));
		got += (size_t)n;
	}
	if (memcmp(buf, want, len))
		fail("%s: got '%s', want '%s'", what, buf, want);
}

static int reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = open(path, flags);
	if (r < 0)
		fail("open %s: %s", path, strerror(errno));
	return r;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int p[2];
	if (pipe(p) < 0)
		fail("pipe");
	int r2 = reopen(p[0], O_RDONLY | O_NONBLOCK); /* second reader, non-blocking */
	int w2 = reopen(p[1], O_WRONLY);              /* second writer */
	if (write(p[1], "one", 3) != 3 || write(w2, "two", 3) != 3)
		fail("write");

	if (mkfifo("gone.fifo", 0640) < 0)
		fail("mkfifo");
	int fr = open("gone.fifo", O_RDONLY | O_NONBLOCK);
	int fw = open("gone.fifo", O_WRONLY);
	if (fr < 0 || fw < 0)
		fail("open fifo");
	if (unlink("gone.fifo") < 0)
		fail("unlink");
	if (write(fw, "unlinked", 8) != 8)
		fail("write fifo");

	test_ready(argv);
	test_wait();

	if (!(fcntl(r2, F_GETFL) & O_NONBLOCK) || (fcntl(p[0], F_GETFL) & O_NONBLOCK))
		fail("the two read descriptions lost their own O_NONBLOCK");
	expect(p[0], "onetwo", "pipe through its first read end");
	char c;
	if (read(r2, &c, 1) != -1 || errno != EAGAIN)
		fail("the reopened read end is not the same (empty) pipe");
	if (write(w2, "x", 1) != 1)
		fail("write through the reopened write end");
	expect(r2, "x", "reopened write end -> reopened read end");
	if (write(p[1], "y", 1) != 1)
		fail("write through the first write end");
	expect(p[0], "y", "first write end -> first read end");
	struct stat a, b;
	if (fstat(p[0], &a) < 0 || fstat(r2, &b) < 0 || a.st_ino != b.st_ino)
		fail("the reopened read end is another pipe");

	expect(fr, "unlinked", "unlinked fifo");
	if (write(fw, "still", 5) != 5)
		fail("write unlinked fifo after restart");
	expect(fr, "still", "unlinked fifo after restart");
	if (fstat(fr, &a) < 0 || !S_ISFIFO(a.st_mode) || (a.st_mode & 07777) != 0640)
		fail("unlinked fifo: mode %o", (unsigned)a.st_mode);
	if (access("gone.fifo", F_OK) == 0)
		fail("the fifo's name came back");
	pass();
}
