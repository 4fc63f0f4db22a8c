/* Zombies killed by signals (issue 14 item 10): children of the root
 * killed by SIGKILL, by SIGQUIT without a core file (core limit 0) and by
 * SIGSEGV with one (core limit lifted, in a directory of its own; the
 * core-dump bit then depends on kernel.core_pattern, and is kept as it
 * was), none reaped. After restart each waitpid gives exactly the wait
 * status it gave before (waitid WNOWAIT at setup): WIFSIGNALED, the same
 * signal, the same core-dump bit. */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "zdtm.h"

static pid_t victim(int how)
{
	pid_t c = fork();
	if (c < 0)
		fail("fork: %s", strerror(errno));
	if (c)
		return c;
	if (how == SIGQUIT)
		setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	if (how == SIGSEGV) {
		/* a few pages of notes, in a directory removed once it is dead */
		int f = open("/proc/self/coredump_filter", O_WRONLY);
		if (f >= 0 && write(f, "0", 1) < 0)
			_exit(2);
		setrlimit(RLIMIT_CORE, &(struct rlimit){ RLIM_INFINITY, RLIM_INFINITY });
		prctl(PR_SET_DUMPABLE, 1);
		if (chdir("zcore") < 0)
			_exit(3);
		raise(SIGSEGV);
	}
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	mkdir("zcore", 0700);
	int sigs[3] = { SIGKILL, SIGQUIT, SIGSEGV };
	pid_t kids[3];
	int want[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = victim(sigs[i]);
		if (sigs[i] != SIGSEGV)
			kill(kids[i], sigs[i]);
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOWAIT) < 0)
			fail("waitid: %s", strerror(errno));
		if ((si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED) || si.si_status != sigs[i])
			fail("child %d: code %d status %d, not killed by %d", kids[i], si.si_code, si.si_status, sigs[i]);
		want[i] = si.si_status | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	}
	/* its core, if the kernel wrote one */
	system("rm -rf zcore");
	test_ready(argv);
	test_wait();

	for (int i = 0; i < 3; i++) {
		int st = 0;
		pid_t w = waitpid(kids[i], &st, WNOHANG);
		if (w != kids[i])
			fail("zombie %d: waitpid gave %d (%s)", kids[i], w, w < 0 ? strerror(errno) : "not a zombie");
		if (!WIFSIGNALED(st) || WTERMSIG(st) != sigs[i] || st != want[i])
			fail("zombie %d: wait status %#x, was %#x (killed by signal %d%s)", kids[i], st, want[i], sigs[i],
			     want[i] & 0x80 ? ", core dumped" : "");
	}
	pass();
}
