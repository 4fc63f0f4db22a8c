/* uffd_take.c — a userfaultfd for another process's address space, made
 * by injecting userfaultfd() into it and taking the fd with pidfd_getfd
 * (docs/dsm.md, "The shmat path"). The caller then does UFFDIO_API and
 * UFFDIO_REGISTER itself: a userfaultfd acts on the address space that
 * created it, whoever holds it. The process is frozen for the two
 * injected calls and goes on as if nothing happened (an interrupted
 * syscall restarts). */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <elf.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"

/* Linux 6.7 (WP_ASYNC) and 6.4 (WP_UNPOPULATED): the C library's kernel
 * headers may predate them; the values are ABI. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

int ckpt_uffd_wp_async(int uffd, struct ckpt_error *err)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return ckpt_fail(err, EOPNOTSUPP, "this kernel has no asynchronous userfaultfd write-protection (%s)",
				 strerror(errno));
	return 0;
}

int ckpt_uffd_take(pid_t pid, int *uffd_out, struct ckpt_error *err)
{
	struct ckpt_thread *th = NULL;
	size_t nth = 0;
	int r = ckpt_seize_all(pid, &th, &nth, err);
	if (r < 0)
		return r;
	struct ckpt_tracee t = { .pid = th[0].tid, .code = ckpt_find_syscall_insn(th[0].tid) };
	long fd = -1;
	int pidfd = -1;
	if (!t.code)
		r = ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction", pid);
	if (r == 0) {
		fd = ckpt_syscall(&t, err, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
		if (fd < 0)
			r = err->msg[0] ? (int)fd
				: ckpt_fail(err, (int)-fd, "process %d: userfaultfd: %s", pid, strerror((int)-fd));
	}
	if (r == 0) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int u = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (u < 0)
			r = ckpt_fail(err, errno, "process %d: taking its userfaultfd: %s", pid, strerror(errno));
		else
			*uffd_out = u;
		if (pidfd >= 0)
			close(pidfd);
	}
	if (fd >= 0)  /* the process never knew it had it */
		ckpt_syscall(&t, err, SYS_close, fd, 0, 0, 0, 0, 0);
	/* Back to what it was doing, as after a dump. */
	ckpt_thread_put_back(&th[0], t.pending_sigs);
	ckpt_release_all(pid, th, nth, false);
	return r;
}
