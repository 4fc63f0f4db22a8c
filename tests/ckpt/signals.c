/* Signal state: handlers with flags (SA_SIGINFO, SA_RESTART, a handler
 * mask), ignored signals, the blocked mask, sigaltstack. */
#include <stdint.h>
#include "zdtm.h"

static volatile sig_atomic_t got2;
static void h2(int s, siginfo_t *si, void *uc) { got2 = si->si_signo; }

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_sigaction = h2, .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	sigset_t blk;
	sigemptyset(&blk);
	sigaddset(&blk, SIGINT);
	sigaddset(&blk, SIGRTMIN + 3);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	static char alt[65536];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };
	sigaltstack(&ss, NULL);
	test_ready(argv);
	test_wait();
	struct sigaction now;
	sigaction(SIGUSR2, NULL, &now);
	if (now.sa_sigaction != h2 || !(now.sa_flags & SA_SIGINFO) || !(now.sa_flags & SA_RESTART) || !sigismember(&now.sa_mask, SIGTERM))
		fail("SIGUSR2 action changed (flags %#x)", now.sa_flags);
	sigaction(SIGHUP, NULL, &now);
	if (now.sa_handler != SIG_IGN)
		fail("SIGHUP no longer ignored");
	sigset_t cur;
	sigprocmask(SIG_SETMASK, NULL, &cur);
	if (!sigismember(&cur, SIGINT) || !sigismember(&cur, SIGRTMIN + 3) || sigismember(&cur, SIGUSR1))
		fail("blocked mask changed");
	stack_t now_ss;
	sigaltstack(NULL, &now_ss);
	if (now_ss.ss_sp != alt || now_ss.ss_size != sizeof(alt))
		fail("sigaltstack changed");
	raise(SIGUSR2);
	if (got2 != SIGUSR2)
		fail("SIGUSR2 handler did not run");
	pass();
}
