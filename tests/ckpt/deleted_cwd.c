/* A working directory removed while the process is in it (issue 14 item
 * 9), mode 0751. After restart, as on one machine: getcwd() fails with
 * ENOENT, /proc/self/cwd reads "PATH (deleted)" with the same path, the
 * directory has no links, its mode is kept, nothing can be created in it,
 * and a relative path to its old parent still works (..). */
#include <errno.h>
#include <sys/stat.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd0[4096];
	if (!realpath(".", cwd0))
		fail("realpath");
	umask(022);
	if (mkdir("gone-dir", 0751) < 0 && errno != EEXIST)
		fail("mkdir");
	chmod("gone-dir", 0751);
	if (chdir("gone-dir") < 0 || rmdir("../gone-dir") < 0)
		fail("chdir/rmdir");
	char before[4096];
	ssize_t n = readlink("/proc/self/cwd", before, sizeof(before) - 1);
	if (n < 0)
		fail("readlink");
	before[n] = 0;
	test_ready(argv);  /* an absolute path (the drivers give one) */
	test_wait();
	char buf[4096];
	errno = 0;
	if (getcwd(buf, sizeof(buf)) || errno != ENOENT)
		fail("getcwd: %s (errno %d), not ENOENT", getcwd(buf, sizeof(buf)) ? buf : "failed", errno);
	n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
	if (n < 0)
		fail("readlink after");
	buf[n] = 0;
	if (strcmp(buf, before))
		fail("/proc/self/cwd is %s, was %s", buf, before);
	struct stat st;
	if (stat(".", &st) < 0 || st.st_nlink != 0 || (st.st_mode & 07777) != 0751)
		fail("stat .: nlink %lu mode %o", (unsigned long)st.st_nlink, st.st_mode & 07777);
	if (open("x", O_WRONLY | O_CREAT, 0600) >= 0 || errno != ENOENT)
		fail("a file could be created in the removed directory (errno %d)", errno);
	struct stat up, parent;
	if (stat("..", &up) < 0 || stat(cwd0, &parent) < 0 || up.st_ino != parent.st_ino)
		fail(".. is not the old parent");
	pass();
}
