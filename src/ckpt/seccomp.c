/* seccomp.c — seccomp filters across a checkpoint. The only filter krg
 * saves is its own IPC filter (ipc/intercept.h): it is recorded as
 * Core.ipc_intercepted, and the restore installs it again by an injected
 * seccomp() before the process forks its children and clones its threads
 * (they inherit it), taking the listener with pidfd_getfd for the
 * restarting krgd. A filter of the application's own is refused: the
 * process would come back without its sandbox (and a listener of its own
 * cannot be recreated). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ipc/intercept.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

/* "Seccomp:" mode and "Seccomp_filters:" count of thread tid. */
static int seccomp_state(pid_t pid, pid_t tid, int *mode, int *count)
{
	char path[96], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return -errno ? -errno : -EIO;
	const char *m = strstr(buf, "\nSeccomp:"), *f = strstr(buf, "\nSeccomp_filters:");
	*mode = m ? atoi(m + 9) : 0;
	*count = f ? atoi(f + 17) : (*mode == 2 ? 1 : 0);
	return 0;
}

int ckpt_seccomp_dump(pid_t pid, const struct ckpt_thread *th, size_t n, bool *intercepted, struct ckpt_error *err)
{
	*intercepted = false;
	int mode0 = 0, count0 = 0;
	for (size_t i = 0; i < n; i++) {
		int mode = 0, count = 0;
		if (seccomp_state(pid, th[i].tid, &mode, &count) < 0)
			return ckpt_fail(err, ESRCH, "process %d: thread %d: cannot read its seccomp state", pid, th[i].tid);
		if (i == 0)
			mode0 = mode, count0 = count;
		else if (mode != mode0 || count != count0)
			return ckpt_fail(err, EOPNOTSUPP, "process %d: its threads have different seccomp filters (not saved)", pid);
	}
	if (mode0 == 0)
		return 0;
	if (mode0 != 2)
		return ckpt_fail(err, EOPNOTSUPP, "process %d is in seccomp strict mode (not saved)", pid);
	/* Index 0 is the newest filter. */
	struct sock_filter prog[KRG_INTERCEPT_FILTER_SOCK_LEN + 1];
	long len = ptrace(PTRACE_SECCOMP_GET_FILTER, th[0].tid, 0, NULL);
	if (len < 0)
		return ckpt_fail(err, errno, "process %d: reading its seccomp filter: %s%s", pid, strerror(errno),
				 errno == EACCES || errno == EPERM ? " (checkpoint it through krgd, as root)" : "");
	/* Either of krg's: a migrant's with forwarded sockets is saved as the
	 * plain one (its next node installs what its own fds need). */
	bool ours = count0 == 1 && (len == KRG_INTERCEPT_FILTER_LEN || len == KRG_INTERCEPT_FILTER_SOCK_LEN) &&
		    ptrace(PTRACE_SECCOMP_GET_FILTER, th[0].tid, 0, prog) == len &&
		    krg_intercept_filter_is_ours(prog, (size_t)len);
	if (!ours)
		return ckpt_fail(err, EOPNOTSUPP, "process %d has a seccomp filter of its own (%d filter%s): not saved, it would come back unconfined",
				 pid, count0, count0 == 1 ? "" : "s");
	*intercepted = true;
	return 0;
}

int ckpt_seccomp_restore(struct ckpt_tracee *t, int *listener, bool sockets, struct ckpt_error *err)
{
	struct sock_filter f[KRG_INTERCEPT_FILTER_SOCK_LEN];
	size_t n = krg_intercept_filter_for(f, sockets);
	/* In the tracee's scratch: the program, then its struct sock_fprog. */
	uint64_t prog_at = t->scratch, fprog_at = t->scratch + sizeof(f);
	struct {
		uint16_t len;
		uint16_t pad[3];
		uint64_t filter;
	} fp = { .len = (uint16_t)n, .filter = prog_at };
	_Static_assert(sizeof(fp) == sizeof(struct sock_fprog), "sock_fprog");
	int r = ckpt_poke(t->pid, prog_at, f, sizeof(f));
	if (r == 0)
		r = ckpt_poke(t->pid, fprog_at, &fp, sizeof(fp));
	if (r < 0)
		return ckpt_fail(err, -r, "process %d: writing the IPC filter: %s", t->pid, strerror(-r));
	long fd = ckpt_syscall(t, err, SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, (long)fprog_at, 0, 0, 0);
	if (err->msg[0])
		return -EIO;
	if (fd < 0)
		return ckpt_fail(err, (int)-fd, "process %d: installing the IPC filter: %s", t->pid, strerror((int)-fd));
	int pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	int lfd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	int e = errno;
	if (pidfd >= 0)
		close(pidfd);
	/* Not the application's: it goes before its fds are rebuilt. */
	ckpt_syscall(t, err, SYS_close, fd, 0, 0, 0, 0, 0);
	if (lfd < 0) {
		if (err->msg[0])
			return -EIO;
		return ckpt_fail(err, e, "process %d: taking the IPC filter's listener: %s", t->pid, strerror(e));
	}
	if (err->msg[0]) {
		close(lfd);
		return -EIO;
	}
	*listener = lfd;
	return 0;
}
