/* Kinds krg does not save yet: an inotify fd (fd 7) and a TCP socket
 * (fd 8). Checkpoint refuses, naming each; with --ignore-unsupported
 * they are closed after restart and everything else is kept. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int i = inotify_init1(0), t = socket(AF_INET, SOCK_STREAM, 0);
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
