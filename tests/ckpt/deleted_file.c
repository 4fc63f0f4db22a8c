/* A deleted-but-open regular file: 300 KiB of content, read-write at an
 * offset, a read-only second open of it, mode 0640, owned by 1234:1234
 * (not the test's root). After restart the content is there, the offsets
 * too, the mode and owner, the file still has no name (link count 0) and
 * lives in the same directory's filesystem. */
#include <sys/stat.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	static char data[300 * 1024];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i % 253);
	int w = open("gone.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (w < 0 || write(w, data, sizeof(data)) != sizeof(data))
		fail("write");
	int r = open("gone.dat", O_RDONLY);
	if (fchown(w, 1234, 1234) < 0)
		fail("fchown");
	unlink("gone.dat");
	lseek(w, 1000, SEEK_SET);
	lseek(r, 5000, SEEK_SET);
	struct stat before;
	fstat(w, &before);
	test_ready(argv);
	test_wait();
	struct stat st;
	if (fstat(w, &st) < 0 || st.st_nlink != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0640 || st.st_size != sizeof(data))
		fail("stat: nlink %lu mode %o size %lld", (unsigned long)st.st_nlink, st.st_mode, (long long)st.st_size);
	if (st.st_uid != 1234 || st.st_gid != 1234)
		fail("owner %u:%u, expected 1234:1234", (unsigned)st.st_uid, (unsigned)st.st_gid);
	if (st.st_dev != before.st_dev)
		fail("moved to another filesystem");
	if (lseek(w, 0, SEEK_CUR) != 1000 || lseek(r, 0, SEEK_CUR) != 5000)
		fail("offsets");
	if ((fcntl(r, F_GETFL) & O_ACCMODE) != O_RDONLY || write(r, "x", 1) != -1)
		fail("read-only open became writable");
	char buf[sizeof(data)];
	if (pread(r, buf, sizeof(buf), 0) != sizeof(buf) || memcmp(buf, data, sizeof(data)))
		fail("content");
	if (access("gone.dat", F_OK) == 0)
		fail("the file got a name again");
	write(w, "NEW", 3);
	char b3[4] = { 0 };
	pread(r, b3, 3, 1000);
	if (strcmp(b3, "NEW"))
		fail("the two opens are not the same file");
	pass();
}
