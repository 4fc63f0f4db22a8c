/* A deleted file open write-only (issue 14 item 8): 100 KiB of content,
 * the fd at offset 70000, an O_APPEND write-only one beside it, mode 0620.
 * The checkpoint must read the content without a readable fd of the
 * process. After restart the content is intact, writes continue at the
 * offset, the fds are still write-only, and the file has no name. */
#include <sys/stat.h>
#include "zdtm.h"

#define SIZE (100 * 1024)

int main(int argc, char **argv)
{
	test_init(argc, argv);
	static char data[SIZE];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i % 251);
	int w = open("gone-wr.dat", O_WRONLY | O_CREAT | O_TRUNC, 0620);
	if (w < 0 || write(w, data, sizeof(data)) != sizeof(data))
		fail("write");
	fchmod(w, 0620);  /* past the umask */
	int a = open("gone-wr.dat", O_WRONLY | O_APPEND);
	if (a < 0)
		fail("open O_APPEND");
	unlink("gone-wr.dat");
	lseek(w, 70000, SEEK_SET);
	struct stat before;
	fstat(w, &before);
	test_ready(argv);
	test_wait();
	struct stat st;
	if (fstat(w, &st) < 0 || st.st_nlink != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0620 || st.st_size != SIZE)
		fail("stat: nlink %lu mode %o size %lld", (unsigned long)st.st_nlink, st.st_mode, (long long)st.st_size);
	if (st.st_dev != before.st_dev)
		fail("moved to another filesystem");
	if ((fcntl(w, F_GETFL) & O_ACCMODE) != O_WRONLY || (fcntl(a, F_GETFL) & (O_ACCMODE | O_APPEND)) != (O_WRONLY | O_APPEND))
		fail("flags %#x %#x", fcntl(w, F_GETFL), fcntl(a, F_GETFL));
	char c;
	if (read(w, &c, 1) != -1)
		fail("a write-only fd became readable");
	if (lseek(w, 0, SEEK_CUR) != 70000)
		fail("offset %lld, was 70000", (long long)lseek(w, 0, SEEK_CUR));
	if (write(w, "NEW", 3) != 3 || lseek(w, 0, SEEK_CUR) != 70003)
		fail("write at the offset");
	if (write(a, "END", 3) != 3)
		fail("append");
	/* Read it back the way the test suite would: through /proc/self/fd. */
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", w);
	int r = open(p, O_RDONLY);
	if (r < 0)
		fail("reopen");
	static char buf[SIZE + 3];
	if (pread(r, buf, sizeof(buf), 0) != sizeof(buf))
		fail("size after the writes");
	memcpy(data + 70000, "NEW", 3);
	if (memcmp(buf, data, SIZE) || memcmp(buf + SIZE, "END", 3))
		fail("content");
	if (access("gone-wr.dat", F_OK) == 0)
		fail("the file got a name again");
	pass();
}
