/* Kinds krg does not save yet: an io_uring fd (fd 7) and a TCP socket
 * (fd 8). Checkpoint refuses, naming each; with --ignore-unsupported
 * they are closed after restart and everything else is kept. */
#include <errno.h>
#include <netinet/in.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct io_uring_params p = { 0 };
	int i = (int)syscall(SYS_io_uring_setup, 4, &p), t = socket(AF_INET, SOCK_STREAM, 0);
	if (i < 0 || t < 0 || dup2(i, 7) < 0 || dup2(t, 8) < 0)
		fail("setup");
	close(i), close(t);
	int keep = open("/dev/null", O_WRONLY);
	test_ready(argv);
	test_wait();
	if (fcntl(7, F_GETFD) != -1 || errno != EBADF || fcntl(8, F_GETFD) != -1 || errno != EBADF)
		fail("unsupported fds still open after restart");
	if (write(keep, "x", 1) != 1)
		fail("the supported fd was lost");
	pass();
}
