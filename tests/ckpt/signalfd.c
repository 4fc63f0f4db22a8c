/* signalfd: SIGUSR2 and SIGRTMIN+1 blocked and taken by a signalfd
 * (non-blocking), SIGUSR2 pending at the checkpoint: the mask comes back,
 * the pending signal is read from it, SIGRTMIN+1 sent after the restart
 * too. */
#include <errno.h>
#include <sys/signalfd.h>
#include "zdtm.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigaddset(&m, SIGRTMIN + 1);
	if (sigprocmask(SIG_BLOCK, &m, NULL) < 0)
		fail("sigprocmask");
	int s = signalfd(-1, &m, SFD_NONBLOCK);
	if (s < 0)
		fail("signalfd: %s", strerror(errno));
	kill(getpid(), SIGUSR2);
	test_ready(argv);
	test_wait();
	struct signalfd_siginfo si;
	if (!(fcntl(s, F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK lost");
	if (read(s, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGUSR2)
		fail("pending SIGUSR2 not read from the signalfd (%s)", strerror(errno));
	if (read(s, &si, sizeof(si)) != -1 || errno != EAGAIN)
		fail("a second signal read");
	sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 77 });
	if (read(s, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != (uint32_t)(SIGRTMIN + 1) || si.ssi_int != 77)
		fail("SIGRTMIN+1 not taken by the signalfd after restart");
	pass();
}
