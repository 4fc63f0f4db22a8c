/* /dev/null (write-only), /dev/zero (read), /dev/urandom (read,
 * non-blocking), /dev/full (read-write): the same devices, modes and
 * flags after restart, and they behave as such. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "zdtm.h"

static void check_dev(int fd, unsigned minor_no, int acc, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != minor_no)
		fail("%s: not the device it was", what);
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != acc)
		fail("%s: access mode", what);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int n = open("/dev/null", O_WRONLY);
	int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	int u = open("/dev/urandom", O_RDONLY | O_NONBLOCK);
	int f = open("/dev/full", O_RDWR);
	if (n < 0 || z < 0 || u < 0 || f < 0)
		fail("open");
	test_ready(argv);
	test_wait();
	check_dev(n, 3, O_WRONLY, "/dev/null");
	check_dev(z, 5, O_RDONLY, "/dev/zero");
	check_dev(u, 9, O_RDONLY, "/dev/urandom");
	check_dev(f, 7, O_RDWR, "/dev/full");
	if (!(fcntl(z, F_GETFD) & FD_CLOEXEC) || !(fcntl(u, F_GETFL) & O_NONBLOCK))
		fail("flags");
	char b[64];
	if (write(n, "x", 1) != 1)
		fail("/dev/null write");
	memset(b, 1, sizeof(b));
	if (read(z, b, sizeof(b)) != sizeof(b) || b[0] || b[63])
		fail("/dev/zero read");
	char r2[64] = { 0 };
	if (read(u, b, sizeof(b)) != sizeof(b) || read(u, r2, sizeof(r2)) != sizeof(r2) || !memcmp(b, r2, sizeof(b)))
		fail("/dev/urandom read");
	if (write(f, "x", 1) != -1 || errno != ENOSPC)
		fail("/dev/full write");
	pass();
}
