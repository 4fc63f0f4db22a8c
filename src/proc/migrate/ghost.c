/* krg-ghost — a child a migrant left at home, on the node the migrant
 * runs on (mig-int.h, docs/migration.md "Children left at home").
 *
 * The real child stays at home as the deputy's child (it cannot move with
 * its parent: a migration moves one process). So that the migrant's
 * wait()/waitpid(pid)/kill(pid) keep working where it runs, its holder
 * restores it with one ghost per such child: a child of the migrant made
 * by the restore before the migrant runs, with the home child's pid (free
 * in this node's pid namespace, else another), exec'd into this program
 * with every signal blocked. The ghost
 *   - takes every signal with a signalfd and sends it to the holder, which
 *     has home's deputy send it to the real child (SIGKILL and SIGSTOP
 *     cannot be caught: a SIGKILLed ghost is seen dying by the holder,
 *     which sends SIGKILL on; SIGSTOP stops the ghost only);
 *   - waits for the real child's wait status (MF_KID_EXIT), relayed by
 *     home from the deputy, which reaps it, and dies the same way, so the
 *     migrant's wait() sees what the real child did;
 *   - if its holder goes away (the migrant left or ended), it exits;
 *   - if the real child was stopped and the migrant had not reaped that
 *     stop (STOPSIG given), it stops itself by that signal first, so the
 *     migrant's waitpid(WUNTRACED) reports the stop as it would have.
 * Usage (by the restore only): krg-ghost FD UID[,SUID] GID COMM [STOPSIG]
 * FD: its SOCK_SEQPACKET socket to the holder (mig-int.h frames); UID,
 * SUID, GID: the real child's real and saved uid and real gid. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proc/migrate/mig-int.h"

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "krg-ghost: started by a migration's restore only\n");
		return 255;
	}
	/* Blocked before the exec already (the restore did it); kept so. */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	int sock = atoi(argv[1]);
	if (sock < 0)
		return 255;
	/* The holder's other fds came along through the fork: not ours. */
	if (sock > 0)
		close_range(0, (unsigned)sock - 1, 0);
	close_range((unsigned)sock + 1, ~0u, 0);
	/* The real child's ids, so that whoever may signal it may signal
	 * us (kill(2) checks the sender's uid against our real and saved
	 * ones), the migrant first. */
	char *end;
	uid_t uid = (uid_t)strtoul(argv[2], &end, 10), suid = uid;
	if (*end == ',')
		suid = (uid_t)strtoul(end + 1, NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, suid, suid) < 0)
		return 255;
	prctl(PR_SET_NAME, argv[4], 0, 0, 0);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0)
		return 255;
	int stop = argc == 6 ? atoi(argv[5]) : 0;
	if (stop >= 1 && stop <= 64 && stop != SIGKILL) {
		/* Its default action (stop) for a moment; a SIGTSTP & co. the
		 * kernel would drop (an orphaned process group) stops by
		 * SIGSTOP instead. Signals meanwhile stay pending for the
		 * signalfd. */
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, stop);
		signal(stop, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		int r = kill(getpid(), stop);
		sigprocmask(SIG_BLOCK, &one, NULL);
		if (r < 0 && stop != SIGSTOP)
			kill(getpid(), SIGSTOP);
	}
	for (;;) {
		struct pollfd pfd[2] = { { .fd = sock, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 255;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			/* SIGCHLD: a ghost has no children; any other is the
			 * migrant's (or anyone's) signal to the child. */
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
				mig_send(sock, MF_KID_SIG, 0, si.ssi_signo, NULL, 0);
		}
		if (pfd[0].revents) {
			struct mig_hdr h;
			ssize_t n = recv(sock, &h, sizeof(h), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < (ssize_t)sizeof(h))
				_exit(255); /* the holder is gone, and the migrant with it */
			if (h.type == MF_KID_EXIT)
				mig_die_like((int)h.arg);
		}
	}
}
