/* Shared anonymous memory between processes (zdtm shape): a parent and
 * its child share a MAP_SHARED|MAP_ANONYMOUS region (4 MiB, a pattern
 * written before the checkpoint) and a one-page flag. After restart, what
 * the child writes the parent reads: still one object, not two copies. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "zdtm.h"

#define SZ (4 << 20)

int main(int argc, char **argv)
{
	test_init(argc, argv);
	volatile unsigned char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile unsigned *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || flag == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	for (int i = 0; i < SZ; i++)
		m[i] = (unsigned char)(i * 13);
	pid_t kid = fork();
	if (kid == 0) {
		/* the child: waits for its turn (flag 1), writes, says so (2) */
		while (*flag != 1)
			usleep(1000);
		for (int i = 0; i < SZ; i += 4096)
			m[i] = (unsigned char)~(i * 13);
		*flag = 2;
		_exit(0);
	}
	test_ready(argv);
	test_wait();
	for (int i = 0; i < SZ; i++)
		if (m[i] != (unsigned char)(i * 13))
			fail("byte %d of the shared region lost", i);
	*flag = 1;
	for (int i = 0; i < 5000 && *flag != 2; i++)
		usleep(1000);
	if (*flag != 2)
		fail("the child's flag never reached the parent: the region is no longer shared");
	for (int i = 0; i < SZ; i += 4096)
		if (m[i] != (unsigned char)~(i * 13))
			fail("the child's write at %d is not seen by the parent", i);
	int st;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("child status %#x", st);
	pass();
}
