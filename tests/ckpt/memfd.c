/* memfd: one with 1 MiB of content and sealed against shrinking and
 * growing, one empty, read-only reopen of the first through /proc at an
 * offset; the first fchmod'ed to 0642, the second fchown'ed to 1234:1234.
 * Names, content, seals, offsets, modes and owners come back. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	if (fchmod(m, 0642) < 0 || fchown(e, 1234, 1234) < 0)
		fail("fchmod/fchown");
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
	struct stat sm, se;
	if (fstat(m, &sm) < 0 || fstat(e, &se) < 0)
		fail("fstat");
	if ((sm.st_mode & 07777) != 0642 || sm.st_uid != 0 || sm.st_gid != 0)
		fail("first memfd: mode %o owner %u:%u, expected 0642 0:0", sm.st_mode & 07777, (unsigned)sm.st_uid, (unsigned)sm.st_gid);
	if ((se.st_mode & 07777) != 0777 || se.st_uid != 1234 || se.st_gid != 1234)
		fail("second memfd: mode %o owner %u:%u, expected 0777 1234:1234", se.st_mode & 07777, (unsigned)se.st_uid, (unsigned)se.st_gid);
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
