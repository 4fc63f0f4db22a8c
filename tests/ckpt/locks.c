/* File locks (zdtm shape): a POSIX write lock on bytes 0-99 and a read
 * lock from 200 to the end of one file, an flock(LOCK_EX) on a second
 * file, an OFD read lock on a third. After restart a child checks each
 * one conflicts as before (F_GETLK names the holder, flock would block,
 * F_OFD_GETLK sees the read lock), and that bytes 100-199 are free. */
#include <errno.h>
#include <sys/file.h>
#include <sys/wait.h>
#include "zdtm.h"

static int lockf_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* In a child: what does fcntl(F_GETLK) say for a write lock on [start, start+len)? */
static int probe(int fd, int cmd, off_t start, off_t len, pid_t *holder, short *type)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	*holder = fl.l_pid;
	*type = fl.l_type;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int a = open("posix.lck", O_RDWR | O_CREAT | O_TRUNC, 0600);
	int b = open("flock.lck", O_RDWR | O_CREAT | O_TRUNC, 0600);
	int c = open("ofd.lck", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (a < 0 || b < 0 || c < 0 || ftruncate(a, 4096) < 0)
		fail("setup: %s", strerror(errno));
	if (lockf_range(a, F_SETLK, F_WRLCK, 0, 100) < 0 || lockf_range(a, F_SETLK, F_RDLCK, 200, 0) < 0)
		fail("POSIX locks: %s", strerror(errno));
	if (flock(b, LOCK_EX | LOCK_NB) < 0)
		fail("flock: %s", strerror(errno));
	if (lockf_range(c, F_OFD_SETLK, F_RDLCK, 10, 10) < 0)
		fail("OFD lock: %s", strerror(errno));
	test_ready(argv);
	test_wait();
	pid_t me = getpid(), kid = fork();
	if (kid == 0) {
		pid_t h;
		short t;
		if (probe(a, F_GETLK, 0, 1, &h, &t) < 0 || t != F_WRLCK || h != me)
			_exit(10);
		if (probe(a, F_GETLK, 300, 1, &h, &t) < 0 || t != F_RDLCK || h != me)
			_exit(11);
		if (probe(a, F_GETLK, 100, 100, &h, &t) < 0 || t != F_UNLCK)
			_exit(12);
		int b2 = open("flock.lck", O_RDWR);
		if (b2 < 0 || flock(b2, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(13);
		int c2 = open("ofd.lck", O_RDWR);
		if (c2 < 0 || probe(c2, F_OFD_GETLK, 15, 1, &h, &t) < 0 || t != F_RDLCK)
			_exit(14);
		_exit(0);
	}
	int st;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st))
		fail("checker died");
	switch (WEXITSTATUS(st)) {
	case 0: pass();
	case 10: fail("the POSIX write lock on 0-99 is gone");
	case 11: fail("the POSIX read lock from 200 is gone");
	case 12: fail("bytes 100-199 are locked");
	case 13: fail("the flock is gone");
	case 14: fail("the OFD lock is gone");
	default: fail("checker status %d", WEXITSTATUS(st));
	}
}
