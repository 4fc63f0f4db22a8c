/* map_answer.c — answer a syscall held in a seccomp user notification by
 * mapping a shared object into the caller: the shmat path of the DSM
 * (docs/dsm.md, "The shmat path"). A seccomp listener can only return a
 * value or install an fd; the mapping needs the caller's own mmap. So:
 * the listener installs the object's fd in the caller (ADDFD, while the
 * notification is valid), then this freezes the process — which drops the
 * notification, the call would restart — injects mmap and close there,
 * and sets the frozen thread's registers so that the interrupted call
 * returns the address (or -errno) instead of restarting. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <elf.h>
#include "ckpt/ckpt-int.h"

/* Kernel-internal restart codes (as core.c): a call dropped by our stop. */
#define K_ERESTARTSYS 512
#define K_ERESTARTNOINTR 513
#define K_ERESTARTNOHAND 514

static bool restarting(const struct user_regs_struct *r, long nr)
{
	int64_t ax = (int64_t)r->rax;
	return (int64_t)r->orig_rax == nr &&
	       (ax == -K_ERESTARTSYS || ax == -K_ERESTARTNOINTR || ax == -K_ERESTARTNOHAND);
}

/* A userfaultfd made in the frozen process, taken here, its copy there
 * closed, and [at, at + size) registered as the DSM needs (dsm.h): before
 * the process runs again, so that its first access already faults to us.
 * devfd: /dev/userfaultfd open in the process (or -1), for a process
 * without CAP_SYS_PTRACE. */
int ckpt_dsm_uffd(struct ckpt_tracee *t, pid_t pid, long devfd, uint64_t at, uint64_t size, int *out, struct ckpt_error *err)
{
	long fd = ckpt_syscall(t, err, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	if (fd == -EPERM && devfd >= 0 && !err->msg[0])
		/* Not privileged and vm.unprivileged_userfaultfd is 0: the
		 * device's USERFAULTFD_IOC_NEW makes one that also takes the
		 * kernel's faults (a read(2) into the segment), for whoever
		 * holds the device open (krgd opened it, Linux 6.1+). */
		fd = ckpt_syscall(t, err, SYS_ioctl, devfd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK, 0, 0, 0);
	if (fd == -EPERM && !err->msg[0])
		/* No device either: faults from user mode only (a read(2) into
		 * the segment then fails EFAULT on a page not present here;
		 * docs/dsm.md). */
		fd = ckpt_syscall(t, err, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1 /* UFFD_USER_MODE_ONLY */, 0, 0,
				  0, 0, 0);
	if (fd < 0)
		return err->msg[0] ? (int)fd : ckpt_fail(err, (int)-fd, "process %d: userfaultfd: %s", pid, strerror((int)-fd));
	int r = 0, u = -1, pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0)
		u = (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	if (u < 0)
		r = ckpt_fail(err, errno, "process %d: taking its userfaultfd: %s", pid, strerror(errno));
	if (pidfd >= 0)
		close(pidfd);
	ckpt_syscall(t, err, SYS_close, fd, 0, 0, 0, 0, 0);
	/* EVENT_FORK: a child inherits the attach through a userfaultfd of
	 * its own, handed to whoever reads this one (the DSM: a new view). */
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |
								  UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
								  UFFD_FEATURE_EVENT_FORK };
	/* A segment's size need not be a multiple of the page (PostgreSQL's
	 * is 56 bytes); its mapping, and the range registered, are. */
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct uffdio_register reg = { .range = { at, (size + page - 1) / page * page },
				       .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
					       UFFDIO_REGISTER_MODE_WP };
	if (r == 0 && (ioctl(u, UFFDIO_API, &api) < 0 || ioctl(u, UFFDIO_REGISTER, &reg) < 0))
		r = ckpt_fail(err, errno, "process %d: registering its mapping with userfaultfd: %s", pid, strerror(errno));
	if (r < 0 && u >= 0)
		close(u);
	else
		*out = u;
	return r;
}

int ckpt_map_answer(pid_t pid, pid_t tid, long nr, int fd, int devfd, uint64_t addr, uint64_t size, int prot,
		    int flags, uint64_t *mapped, int *uffd_out, struct ckpt_error *err)
{
	struct ckpt_thread *th = NULL;
	size_t nth = 0;
	int r = ckpt_seize_all(pid, &th, &nth, err);
	if (r < 0)
		return r;
	size_t k = 0;
	while (k < nth && th[k].tid != tid)
		k++;
	if (k == nth)
		r = ckpt_fail(err, ESRCH, "process %d has no thread %d", pid, tid);
	else if (!restarting(&th[k].regs, nr))
		/* It is not in the call any more (answered, or killed and
		 * gone on): nothing to answer; it goes on as it was. */
		r = ckpt_fail(err, EAGAIN, "thread %d is not waiting in syscall %ld", tid, nr);
	struct ckpt_tracee t = { .pid = tid, .code = r == 0 ? ckpt_find_syscall_insn(tid) : 0 };
	if (r == 0 && !t.code)
		r = ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction", pid);
	long ret = 0;
	bool answer = false;
	if (r == 0) {
		ret = fd < 0 ? ckpt_syscall(&t, err, SYS_munmap, (long)addr, (long)size, 0, 0, 0, 0)
			     : ckpt_syscall(&t, err, SYS_mmap, (long)addr, (long)size, prot, flags, fd, 0);
		if (ret < 0 && err->msg[0]) {
			r = (int)ret;  /* the injection itself failed: let the call restart */
		} else {
			answer = true;
			if (ret < 0)
				r = ckpt_fail(err, (int)-ret, "mmap in process %d: %s", pid, strerror((int)-ret));
			else
				*mapped = (uint64_t)ret;
		}
		if (fd >= 0)
			ckpt_syscall(&t, err, SYS_close, fd, 0, 0, 0, 0, 0);
		if (r == 0 && fd >= 0 && uffd_out && ckpt_dsm_uffd(&t, pid, devfd, (uint64_t)ret, size, uffd_out, err) < 0) {
			/* No coherent view: undo the mapping, the call fails. */
			ckpt_syscall(&t, err, SYS_munmap, ret, (long)size, 0, 0, 0, 0);
			ret = -ENOMEM;
			r = -ENOMEM;
		}
		if (devfd >= 0)
			ckpt_syscall(&t, err, SYS_close, devfd, 0, 0, 0, 0, 0);
	}
	struct user_regs_struct regs = k < nth ? th[k].regs : th[0].regs;
	if (answer) {
		/* The interrupted call returns ret; orig_rax -1: no restart. */
		regs.rax = (uint64_t)ret;
		regs.orig_rax = (uint64_t)-1;
	} else {
		ckpt_regs_fixup_restart(&regs);
	}
	if (k < nth) {
		struct iovec iov = { &regs, sizeof(regs) };
		ptrace(PTRACE_SETREGSET, th[k].tid, (void *)NT_PRSTATUS, &iov);
		for (int s = 1; s <= 64; s++)
			if (t.pending_sigs & (1ULL << (s - 1)))
				th[k].stop_sig = th[k].stop_sig ? th[k].stop_sig : s;
	}
	ckpt_release_all(pid, th, nth, false);
	return r;
}
