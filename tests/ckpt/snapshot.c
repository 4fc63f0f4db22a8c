/* Files open for writing (zdtm shape), for checkpoint --snapshot-files:
 * log.txt written through an O_APPEND fd and data.bin through a
 * read-write fd at an offset. The driver damages both files between
 * checkpoint and restart; after restart they hold what they held at the
 * checkpoint and the offsets are where they were. */
#include <errno.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int log = open("log.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);
	int data = open("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
	char block[4096];
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (char)(i * 7);
	if (log < 0 || data < 0 || write(log, "before\n", 7) != 7)
		fail("setup: %s", strerror(errno));
	for (int i = 0; i < 64; i++)
		if (write(data, block, sizeof(block)) != (ssize_t)sizeof(block))
			fail("write: %s", strerror(errno));
	lseek(data, 12345, SEEK_SET);
	test_ready(argv);
	test_wait();
	char buf[4096];
	int r = open("log.txt", O_RDONLY);
	ssize_t n = read(r, buf, sizeof(buf));
	if (n != 7 || memcmp(buf, "before\n", 7))
		fail("log.txt holds %zd bytes, not what it held at the checkpoint", n);
	if (lseek(data, 0, SEEK_CUR) != 12345)
		fail("data.bin offset %lld, not 12345", (long long)lseek(data, 0, SEEK_CUR));
	if (lseek(data, 0, SEEK_END) != 64 * 4096)
		fail("data.bin is %lld bytes, not %d", (long long)lseek(data, 0, SEEK_END), 64 * 4096);
	for (int i = 0; i < 64; i++)
		if (pread(data, buf, sizeof(buf), (off_t)i * 4096) != (ssize_t)sizeof(buf) || memcmp(buf, block, sizeof(buf)))
			fail("data.bin block %d differs", i);
	if (write(log, "after\n", 6) != 6)
		fail("append: %s", strerror(errno));
	pass();
}
