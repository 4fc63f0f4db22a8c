/* memfd: one with 1 MiB of content and sealed against shrinking and
 * growing, one empty, read-only reopen of the first through /proc at an
 * offset. Names, content, seals, offsets come back. */
#include <errno.h>
#include <sys/mman.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int m = memfd_create("krg-test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	int e = memfd_create("empty one", 0);
	static char data[1 << 20];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 13);
	if (m < 0 || e < 0 || write(m, data, sizeof(data)) != sizeof(data))
		fail("memfd");
	if (fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		fail("seals");
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", m);
	int ro = open(p, O_RDONLY);
	lseek(ro, 4096, SEEK_SET);
	test_ready(argv);
	test_wait();
	char l[256] = { 0 };
	snprintf(p, sizeof(p), "/proc/self/fd/%d", m);
	readlink(p, l, sizeof(l) - 1);
	if (strcmp(l, "/memfd:krg-test (deleted)"))
		fail("name: %s", l);
	memset(l, 0, sizeof(l));
	snprintf(p, sizeof(p), "/proc/self/fd/%d", e);
	readlink(p, l, sizeof(l) - 1);
	if (strcmp(l, "/memfd:empty one (deleted)"))
		fail("name: %s", l);
	if (fcntl(m, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW))
		fail("seals %#x", fcntl(m, F_GET_SEALS));
	if (fcntl(e, F_GET_SEALS) != F_SEAL_SEAL)
		fail("the memfd without MFD_ALLOW_SEALING can be sealed now (%#x)", fcntl(e, F_GET_SEALS));
	if (!(fcntl(m, F_GETFD) & FD_CLOEXEC))
		fail("cloexec");
	if (ftruncate(m, 10) != -1 || errno != EPERM)
		fail("F_SEAL_SHRINK not enforced");
	static char buf[sizeof(data)];
	if (pread(m, buf, sizeof(buf), 0) != sizeof(buf) || memcmp(buf, data, sizeof(data)))
		fail("content");
	if (lseek(ro, 0, SEEK_CUR) != 4096 || (fcntl(ro, F_GETFL) & O_ACCMODE) != O_RDONLY)
		fail("read-only reopen");
	pwrite(m, "ZZ", 2, 4096);
	char z[3] = { 0 };
	if (read(ro, z, 2) != 2 || strcmp(z, "ZZ"))
		fail("reopen is not the same memfd");
	pass();
}
