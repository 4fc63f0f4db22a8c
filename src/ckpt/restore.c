/* restore.c — a restart: verify the whole image first (nothing is
 * started from a damaged one), fork a child that stops itself with a
 * helper page (a `syscall` instruction and scratch memory) at an address
 * free in the image, rebuild the process from outside by injected
 * syscalls, put registers back, let go. On any failure the child is
 * killed: nothing half-restored is left running. */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

#define HELPER_PAGES 3  /* code, then two scratch pages */

/* The child: map the helper, then stop for the parent. Only
 * async-signal-safe calls: we are a fork of krg. */
static _Noreturn void child(uint64_t helper)
{
	void *p = mmap((void *)helper, HELPER_PAGES * CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)helper)
		_exit(127);
	((uint8_t *)p)[0] = 0x0f, ((uint8_t *)p)[1] = 0x05;  /* syscall */
	((uint8_t *)p)[2] = 0xcc;                             /* int3, never reached */
	if (mprotect(p, CKPT_PAGE, PROT_READ | PROT_EXEC) < 0 || ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		_exit(127);
	raise(SIGSTOP);
	_exit(127);  /* only if the parent let us go without restoring */
}

struct rseq_conf {
	uint64_t ptr;
	uint32_t size, sig, flags, pad;
};

static int rebuild(struct ckpt_tracee *t, const struct ckpt_image *img, struct ckpt_error *err)
{
	int r;
	/* The fork inherited krg's rseq registration; its area is about to be
	 * unmapped, and the kernel writes to it on every return to user. */
	struct rseq_conf rc = { 0 };
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, (void *)sizeof(rc), &rc) > 0 && rc.ptr) {
		long ret = ckpt_syscall(t, err, SYS_rseq, (long)rc.ptr, rc.size, 1 /* RSEQ_FLAG_UNREGISTER */, rc.sig, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "unregistering the inherited rseq area: %s", strerror((int)-ret));
	}
	/* krg's robust futex list points into memory about to go. */
	ckpt_syscall(t, err, SYS_set_robust_list, 0, 24, 0, 0, 0, 0);
	if ((r = ckpt_mm_restore(t, img->mm, &img->pages, err)) < 0)
		return r;
	if ((r = ckpt_mm_restore_fields(t, img->mm, err)) < 0)
		return r;
	if ((r = ckpt_files_restore(t, img->files, err)) < 0)
		return r;
	if ((r = ckpt_core_restore_task(t, img->core, err)) < 0)
		return r;
	if ((r = ckpt_core_restore_creds(t, img->core, err)) < 0)
		return r;
	/* The helper goes last; its syscall returns into the exit stop, so
	 * nothing executes from the unmapped page. */
	long ret = ckpt_syscall(t, err, SYS_munmap, (long)t->code, HELPER_PAGES * CKPT_PAGE, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "unmapping the helper page: %s", strerror((int)-ret));
	return ckpt_core_restore_regs(t->pid, img->core->threads[0], err);
}

int ckpt_restore(const char *dir, pid_t *pid_out, struct ckpt_error *err)
{
	struct ckpt_image img;
	int r = ckpt_image_load(dir, true, &img, err);
	if (r < 0)
		return r;
	if (img.core->n_threads > 1) {
		r = ckpt_fail(err, EOPNOTSUPP, "image %s: process %d had %zu threads; restoring threads is not implemented yet", dir,
			      img.core->pid, img.core->n_threads);
		goto out;
	}
	if (img.inv->xsave_size != ckpt_xsave_size() || (img.inv->has_xcr0 && (img.inv->xcr0 & ~ckpt_xcr0()))) {
		r = ckpt_fail(err, EOPNOTSUPP, "image %s: FPU state from a CPU with other features (XSAVE %u bytes, xcr0 %#llx; here %zu, %#llx)", dir,
			      img.inv->xsave_size, (unsigned long long)img.inv->xcr0, ckpt_xsave_size(), (unsigned long long)ckpt_xcr0());
		goto out;
	}
	uint64_t helper = ckpt_mm_helper_addr(img.mm, HELPER_PAGES * CKPT_PAGE);
	if (!helper) {
		r = ckpt_fail(err, ENOMEM, "no free address for the restore helper page");
		goto out;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		r = ckpt_fail(err, errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(helper);
	struct ckpt_tracee t = { .pid = pid, .code = helper, .scratch = helper + CKPT_PAGE, .scratch_len = 2 * CKPT_PAGE };
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
		r = ckpt_fail(err, ECHILD, "the restore child did not start (status %#x)", st);
		goto kill;
	}
	/* If krg dies half-way, so does the half-restored process. */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) < 0) {
		r = ckpt_fail(err, errno, "ptrace options: %s", strerror(errno));
		goto kill;
	}
	if ((r = rebuild(&t, &img, err)) < 0)
		goto kill;
	if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0) {
		r = ckpt_fail(err, errno, "letting the restored process go: %s", strerror(errno));
		goto kill;
	}
	for (int s = 1; s <= 64; s++)
		if (t.pending_sigs & (1ULL << (s - 1)))
			kill(pid, s);
	*pid_out = pid;
	r = 0;
	goto out;
kill:
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
		;
out:
	ckpt_image_free(&img);
	return r;
}
