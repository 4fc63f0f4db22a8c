/* exec_restart.c — krg restart --foreground on the target node. The exec
 * child (a fork of krgd, on the pty or pipes of the stream, still root)
 * restores the image from this node's store and then stands in for the
 * application, as a shell stands for its job: it forwards the signals
 * sent to it, waits for the restored root and ends the same way, so the
 * stream reports the application's own exit status. With a terminal the
 * application's terminal fds become the stream's pty and its root joins
 * this session and process group (the pty's foreground job). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "ckpt/store.h"
#include "ipc/intercept.h"
#include "proc/exec/exec-int.h"

static volatile pid_t app_root;

static void forward(int sig)
{
	if (app_root > 0)
		kill(app_root, sig);
}

int exec_restart_child(uint32_t appid, uint32_t version, uid_t caller, const char *tty, int errfd, int isock, char *msg,
		       size_t len)
{
	char dir[4400];
	/* Only root and the images' owner (the store checks). kdfs first
	 * (this is a fork of krgd: it may wait on that mount). */
	int r = krg_ckpt_store_kdfs() ? krg_ckpt_store_find_in(krg_ckpt_store_kdfs(), appid, version, caller, dir,
							       sizeof(dir))
				      : -ENOENT;
	if (r == -ENOENT)
		r = krg_ckpt_store_find(appid, version, caller, dir, sizeof(dir));
	if (r < 0) {
		snprintf(msg, len, "%s", dir);
		return r;
	}
	struct ckpt_error err = { 0 };
	/* We stay its parent: killed, we take it along (krgd would adopt it,
	 * running with nobody's stream to report to). */
	int lfd = -1;
	struct ckpt_restore_opts o = { .replace_tty = tty, .root_pdeathsig = SIGKILL, .ipc_listener = isock >= 0 ? &lfd : NULL };
	pid_t pid;
	if ((r = ckpt_restore_opts(dir, NULL, &o, &pid, &err)) < 0) {
		snprintf(msg, len, "%s", err.msg);
		return r;
	}
	/* Its IPC calls wait in the kernel until krgd has the listener. */
	if (lfd >= 0 && (r = krg_intercept_send_fd(isock, lfd)) < 0) {
		kill(pid, SIGKILL);
		snprintf(msg, len, "handing the IPC listener to krgd: %s", strerror(-r));
		return r;
	}
	if (lfd >= 0)
		close(lfd);
	if (isock >= 0)
		close(isock);
	app_root = pid;
	/* Keyboard signals reach the job through the terminal itself. */
	static const int fwd[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGINT, SIGQUIT, SIGTSTP };
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		bool keyboard = fwd[i] == SIGINT || fwd[i] == SIGQUIT || fwd[i] == SIGTSTP;
		struct sigaction sa = { .sa_handler = tty && keyboard ? SIG_IGN : forward, .sa_flags = SA_RESTART };
		sigaction(fwd[i], &sa, NULL);
	}
	close(errfd); /* started: the parent reads EOF */
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	/* Die of the same signal, without a core file of ours. */
	int sig = WTERMSIG(st);
	struct rlimit none = { 0, 0 };
	setrlimit(RLIMIT_CORE, &none);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), sig);
	_exit(128 + sig);
}
