/* Regular files: one read at an offset, one read-write at another, one
 * O_APPEND, one close-on-exec, all with their numbers, offsets and flags;
 * and the cwd and umask. The test runs in a scratch dir given as cwd. */
#include <sys/stat.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int w = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (int i = 0; i < 1000; i++)
		dprintf(w, "%04d\n", i);
	int r = open("data.txt", O_RDONLY | O_CLOEXEC);
	lseek(r, 5 * 123, SEEK_SET);
	lseek(w, 5 * 500, SEEK_SET);
	int a = open("append.txt", O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	write(a, "before\n", 7);
	int hi = dup2(r, 42);
	lseek(hi, 0, SEEK_CUR);
	umask(027);
	mkdir("sub", 0755);
	chdir("sub");
	test_ready(argv);
	test_wait();
	char buf[6] = { 0 };
	if (read(r, buf, 5) != 5 || strcmp(buf, "0123\n"))
		fail("read fd at offset: '%s'", buf);
	if (!(fcntl(r, F_GETFD) & FD_CLOEXEC))
		fail("close-on-exec lost");
	if (fcntl(r, F_GETFL) & O_ACCMODE)
		fail("read-only fd became writable");
	if (lseek(42, 0, SEEK_CUR) != 5 * 124)
		fail("fd 42 shares the file offset of its dup before the checkpoint; after, offset %lld", (long long)lseek(42, 0, SEEK_CUR));
	if (write(w, "XXXX\n", 5) != 5)
		fail("write to read-write fd");
	if (!(fcntl(a, F_GETFL) & O_APPEND))
		fail("O_APPEND lost");
	write(a, "after\n", 6);
	char app[32] = { 0 };
	int ar = open("../append.txt", O_RDONLY);
	read(ar, app, sizeof(app) - 1);
	if (strcmp(app, "before\nafter\n"))
		fail("append file holds '%s'", app);
	pread(w, buf, 5, 5 * 500);
	if (strcmp(buf, "XXXX\n"))
		fail("write landed elsewhere");
	mode_t m = umask(0);
	if (m != 027)
		fail("umask %o", m);
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(strrchr(cwd, '/'), "/sub"))
		fail("cwd %s", cwd);
	pass();
}
