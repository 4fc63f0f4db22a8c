/* adopt.c — siblings migrated to one node keep their parent's pid
 * (docs/migration.md, "Pids"). A migrant's holder has the pid of its
 * parent at home, so getppid() is unchanged; a second child of that
 * parent moved to the same node cannot have a holder of that pid too. So
 * the first holder (the "adopter") forks a shell with the second
 * migrant's pid (clone3 set_tid): its child, so the migrant's parent is
 * the process with the right pid; the second holder restores the
 * migrant into that shell (ckpt_restore_opts.into) and does everything
 * else a holder does. Only a parent learns how its child ended: the
 * adopter reaps it and writes the wait status to the second holder, over
 * a socketpair krgd gave them (MF_SHELL), and stays until every child it
 * adopted has ended, even after its own migrant ended or left. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/fdpass.h"
#include "proc/migrate/mig-int.h"
#include "proc/migrate/worker.h"

#define SHELL_NAME "krg-shell"

struct kclone {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

int mig_send_fd(int sock, uint8_t type, int fd)
{
	struct mig_hdr h = { .type = type };
	return krg_fd_send(sock, &h, sizeof(h), fd, MSG_DONTWAIT | MSG_NOSIGNAL);
}

ssize_t mig_recv_frame(int sock, uint8_t *buf, size_t cap, int *fd)
{
	struct iovec iov = { buf, cap };
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	*fd = -1;
	ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n;
}

/* ---- the adopter (the holder with the parent's pid) ---- */

void mig_adopt_add(struct mig_adopts *a, int fd)
{
	if (a->n == MIG_MAX_ADOPT) {
		close(fd);
		return;
	}
	a->a[a->n++] = (struct mig_adoptee){ .fd = fd, .pid = 0, .pidfd = -1 };
}

/* A shell with pid `want`, our child, waiting to be restored into: every
 * signal blocked, nothing of ours open, named so that one never
 * restored into can be told apart. A fork of a holder: async-signal-safe
 * calls only in the child. */
static pid_t make_shell(pid_t want)
{
	pid_t tid = want;
	struct kclone a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };
	long r = syscall(SYS_clone3, &a, sizeof(a));
	if (r == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		close_range(0, ~0U, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		prctl(PR_SET_NAME, (unsigned long)SHELL_NAME, 0, 0, 0);
		for (;;)
			pause();
	}
	return r < 0 ? -errno : (pid_t)r;
}

static bool still_shell(pid_t pid)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	return n > 0 && !strncmp(comm, SHELL_NAME, strlen(SHELL_NAME));
}

static void adoptee_drop(struct mig_adoptee *e)
{
	if (e->fd >= 0)
		close(e->fd);
	if (e->pidfd >= 0)
		close(e->pidfd);
	*e = (struct mig_adoptee){ .fd = -1, .pidfd = -1 };
}

size_t mig_adopt_pollfds(struct mig_adopts *a, struct pollfd *pfd, size_t max, size_t *map)
{
	size_t k = 0;
	for (size_t i = 0; i < a->n && k + 2 <= max; i++) {
		struct mig_adoptee *e = &a->a[i];
		if (e->fd >= 0) {
			pfd[k] = (struct pollfd){ .fd = e->fd, .events = POLLIN };
			map[k++] = i;
		}
		if (e->pidfd >= 0) {
			pfd[k] = (struct pollfd){ .fd = e->pidfd, .events = POLLIN };
			map[k++] = i | MIG_ADOPT_PIDFD;
		}
	}
	return k;
}

void mig_adopt_ready(struct mig_adopts *a, size_t m, short revents)
{
	struct mig_adoptee *e = &a->a[m & ~MIG_ADOPT_PIDFD];
	if (m & MIG_ADOPT_PIDFD) {
		/* It ended: its status to its holder, who reports it home. */
		int st = 0;
		if (waitpid(e->pid, &st, 0) != e->pid)
			st = SIGKILL;
		if (e->fd >= 0 && send(e->fd, &st, sizeof(st), MSG_NOSIGNAL) < 0) {
			/* its holder is gone: nobody to tell */
		}
		adoptee_drop(e);
		return;
	}
	int32_t want = 0;
	ssize_t n = (revents & POLLIN) ? recv(e->fd, &want, sizeof(want), MSG_DONTWAIT) : 0;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(want)) {
		/* Its holder went away: a shell never restored into goes too;
		 * one that is a process now stays our child (we reap it). */
		if (e->pid > 0 && still_shell(e->pid))
			kill(e->pid, SIGKILL);
		close(e->fd);
		e->fd = -1;
		if (e->pid <= 0)
			adoptee_drop(e);
		return;
	}
	if (e->pid > 0 || want <= 1)
		return;
	pid_t r = make_shell(want);
	int32_t ans = r;
	if (r > 0) {
		e->pid = r;
		e->pidfd = (int)syscall(SYS_pidfd_open, r, 0);
	}
	if (send(e->fd, &ans, sizeof(ans), MSG_NOSIGNAL) < 0 && r > 0)
		kill(r, SIGKILL);
}

void mig_adopt_linger(struct mig_adopts *a)
{
	for (;;) {
		struct pollfd pfd[2 * MIG_MAX_ADOPT];
		size_t map[2 * MIG_MAX_ADOPT];
		size_t k = mig_adopt_pollfds(a, pfd, 2 * MIG_MAX_ADOPT, map);
		bool any = false;
		for (size_t i = 0; i < a->n; i++)
			any |= a->a[i].pid > 0;
		if (!k || !any)
			return;
		if (poll(pfd, k, -1) < 0 && errno != EINTR)
			return;
		for (size_t i = 0; i < k; i++)
			if (pfd[i].revents)
				mig_adopt_ready(a, map[i], pfd[i].revents);
	}
}

/* ---- the adopted one's holder ---- */

static int wait_read(int fd, void *buf, size_t len, int ms)
{
	struct pollfd q = { .fd = fd, .events = POLLIN };
	int r;
	while ((r = poll(&q, 1, ms)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return -ETIMEDOUT;
	return recv(fd, buf, len, 0) == (ssize_t)len ? 0 : -EIO;
}

pid_t mig_adopt_shell(int fd, pid_t want)
{
	int32_t w = want, ans = 0;
	if (send(fd, &w, sizeof(w), MSG_NOSIGNAL) < 0)
		return -errno;
	int r = wait_read(fd, &ans, sizeof(ans), 5000);
	return r < 0 ? r : ans;
}

int mig_adopt_status(int fd)
{
	int st = 0;
	return wait_read(fd, &st, sizeof(st), 3000) < 0 ? SIGKILL : st;
}
