/* eventfd: a counter of 1234567 (non-blocking, close-on-exec), a
 * semaphore one at 3, a zero one: counts, modes and flags come back. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int s = eventfd(3, EFD_SEMAPHORE);
	int z = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 1234567;
	if (a < 0 || s < 0 || z < 0 || write(a, &v, 8) != 8)
		fail("eventfd");
	test_ready(argv);
	test_wait();
	if (!(fcntl(a, F_GETFL) & O_NONBLOCK) || !(fcntl(a, F_GETFD) & FD_CLOEXEC) || (fcntl(s, F_GETFL) & O_NONBLOCK))
		fail("flags lost");
	if (read(a, &v, 8) != 8 || v != 1234567)
		fail("count %llu", (unsigned long long)v);
	for (int i = 0; i < 3; i++)
		if (read(s, &v, 8) != 8 || v != 1)
			fail("semaphore read %d gave %llu", i, (unsigned long long)v);
	if (read(z, &v, 8) != -1 || errno != EAGAIN)
		fail("zero eventfd readable");
	v = 5;
	write(z, &v, 8);
	if (read(z, &v, 8) != 8 || v != 5)
		fail("zero eventfd does not count");
	pass();
}
