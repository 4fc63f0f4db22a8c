/* waitstate.c — what a parent's wait() sees of its children after a
 * restart, exactly as before the checkpoint:
 *   zombies  a restore shell dies the way the process died: exit_group
 *            with its code, or its signal with the default action, with
 *            a core dump only if its wait status had the core bit
 *            (WCOREDUMP), since only a dump that succeeds sets it;
 *   stops    a process that was in a job-control stop stops again with
 *            its signal; its parent's view is then put back: a stop it
 *            had not collected is there for waitpid(WUNTRACED), one it
 *            had collected is taken by an injected waitid, and the
 *            SIGCHLD the new stop sent it is taken back (an injected
 *            rt_sigtimedwait) unless one was pending in the image. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/fileio.h"
#include "lib/macro.h"

#define STOP_WAIT_MS 2000

static int inj_errno(long ret)
{
	return ret < -4095 ? EIO : (int)-ret;
}

/* Remove the directory a core was dumped into, with what is in it
 * ("core", or "core.PID" with kernel.core_uses_pid). */
static void remove_core_dir(const char *dir)
{
	krg_rm_tree(AT_FDCWD, dir, NULL);
}

/* A core-dumping death leaves its core in a private directory of ours,
 * which is removed after: the shell's cwd goes there, the core limit is
 * lifted and its coredump_filter emptied (the dump is then a few pages of
 * notes). Only a core_pattern naming a file relative to the cwd can be
 * steered so; another is refused (a pipe would hand a krg shell to the
 * system's crash reporter). */
static int prepare_core(struct ckpt_tracee *t, int32_t pid, char dir[64], struct ckpt_error *err)
{
	char pat[256] = "";
	if (krg_read_small("/proc/sys/kernel/core_pattern", pat, sizeof(pat)) < 0)
		return ckpt_fail(err, EIO, "zombie %d: reading kernel.core_pattern: %s", pid, strerror(errno));
	pat[strcspn(pat, "\n")] = 0;
	if (!pat[0] || pat[0] == '|' || strchr(pat, '/'))
		return ckpt_fail(err, EOPNOTSUPP,
				 "zombie %d: it dumped core, and krg recreates that wait status only with a kernel.core_pattern naming a file in the cwd (now '%s')",
				 pid, pat);
	snprintf(dir, 64, "/tmp/krg-zombie-core.XXXXXX");
	if (!mkdtemp(dir))
		return ckpt_fail(err, errno, "zombie %d: a directory for its core: %s", pid, strerror(errno));
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/coredump_filter", t->pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool filtered = fd >= 0 && write(fd, "0", 1) == 1;
	if (fd >= 0)
		close(fd);
	uint64_t inf[2] = { RLIM_INFINITY, RLIM_INFINITY };
	if (!filtered || ckpt_poke(t->pid, t->scratch, inf, sizeof(inf)) < 0 || ckpt_poke(t->pid, t->scratch + 64, dir, strlen(dir) + 1) < 0)
		return ckpt_fail(err, EIO, "zombie %d: preparing its core dump failed", pid);
	long r1 = ckpt_syscall(t, err, SYS_prlimit64, 0, RLIMIT_CORE, (long)t->scratch, 0, 0, 0);
	long r2 = ckpt_syscall(t, err, SYS_chdir, (long)(t->scratch + 64), 0, 0, 0, 0, 0);
	long r3 = ckpt_syscall(t, err, SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0, 0);
	if (err->msg[0])
		return -EIO;
	if (r1 < 0 || r2 < 0 || r3 < 0)
		return ckpt_fail(err, inj_errno(r1 < 0 ? r1 : r2 < 0 ? r2 : r3), "zombie %d: preparing its core dump: %s", pid,
				 strerror(inj_errno(r1 < 0 ? r1 : r2 < 0 ? r2 : r3)));
	return 0;
}

int ckpt_zombie_die(struct ckpt_tracee *t, pid_t inner, const Krg__Ckpt__Process *info, struct ckpt_error *err)
{
	int st = info->exit_status;
	long nr = SYS_exit_group, a0 = WIFEXITED(st) ? WEXITSTATUS(st) : 0, a1 = 0;
	char core_dir[64] = "";
	int r;
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		if (sig < 1 || sig > 64 || sig == SIGSTOP)
			return ckpt_fail(err, EINVAL, "zombie %d: cannot die of signal %d", info->pid, sig);
		/* SIGKILL has no action to set (and needs none); any other gets
		 * its default one back, so that it kills. */
		uint64_t zero[4] = { 0 };  /* struct sigaction: SIG_DFL */
		long r1 = 0;
		if (sig != SIGKILL) {
			if (ckpt_poke(t->pid, t->scratch, zero, sizeof(zero)) < 0)
				return ckpt_fail(err, EIO, "zombie %d: preparing its death by signal %d failed", info->pid, sig);
			r1 = ckpt_syscall(t, err, SYS_rt_sigaction, sig, (long)t->scratch, 0, 8, 0, 0);
		}
		/* A core file only where the status says one was dumped; not
		 * dumpable otherwise (a core limit of 0 does not stop a pipe). */
		if (WCOREDUMP(st)) {
			if ((r = prepare_core(t, info->pid, core_dir, err)) < 0) {
				if (core_dir[0])
					remove_core_dir(core_dir);
				return r;
			}
		} else {
			long r2 = ckpt_syscall(t, err, SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0);
			r1 = r1 < 0 ? r1 : r2;
		}
		uint64_t none = 0;
		if (err->msg[0] || r1 < 0 || ptrace(PTRACE_SETSIGMASK, t->pid, (void *)sizeof(none), &none) < 0) {
			if (core_dir[0])
				remove_core_dir(core_dir);
			return err->msg[0] ? -EIO : ckpt_fail(err, EIO, "zombie %d: preparing its death by signal %d failed", info->pid, sig);
		}
		nr = SYS_kill, a0 = inner, a1 = sig;
	}
	/* Its name, as ps showed it (else it would be krg's). */
	char name[16] = "";
	if (info->comm)
		snprintf(name, sizeof(name), "%s", info->comm);
	if (name[0] && ckpt_poke(t->pid, t->scratch + 128, name, sizeof(name)) == 0)
		ckpt_syscall(t, err, SYS_prctl, PR_SET_NAME, (long)(t->scratch + 128), 0, 0, 0, 0);
	struct user_regs_struct regs;
	struct iovec iov = { &regs, sizeof(regs) };
	r = 0;
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)NT_PRSTATUS, &iov) < 0) {
		r = ckpt_fail(err, errno, "zombie %d: registers: %s", info->pid, strerror(errno));
		goto out;
	}
	regs.rip = t->code, regs.rax = (uint64_t)nr, regs.orig_rax = (uint64_t)-1, regs.rdi = (uint64_t)a0, regs.rsi = (uint64_t)a1;
	if (ptrace(PTRACE_SETREGSET, t->pid, (void *)NT_PRSTATUS, &iov) < 0 || ptrace(PTRACE_CONT, t->pid, 0, 0) < 0) {
		r = ckpt_fail(err, errno, "zombie %d: %s", info->pid, strerror(errno));
		goto out;
	}
	for (;;) {
		int ws;
		if (waitpid(t->pid, &ws, __WALL) < 0) {
			r = ckpt_fail(err, errno, "zombie %d: waitpid: %s", info->pid, strerror(errno));
			goto out;
		}
		if (WIFEXITED(ws) || WIFSIGNALED(ws)) {
			if (ws != st)
				r = ckpt_fail(err, EIO, "zombie %d: its wait status came back %#x, not %#x", info->pid, ws, st);
			break;
		}
		int sig = WIFSTOPPED(ws) ? WSTOPSIG(ws) : 0;
		bool pass = sig && (ws >> 16) == 0 && sig != SIGTRAP && sig != (SIGTRAP | 0x80) && sig != SIGSTOP;
		if (ptrace(PTRACE_CONT, t->pid, 0, (void *)(long)(pass ? sig : 0)) < 0) {
			r = ckpt_fail(err, errno, "zombie %d: %s", info->pid, strerror(errno));
			goto out;
		}
	}
out:
	if (core_dir[0])
		remove_core_dir(core_dir);
	return r;
}

bool ckpt_sig_pending(pid_t pid, int sig)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	unsigned long long m = 0;
	for (const char *k = buf; (k = strstr(k, "Pnd:\t")); k += 5)
		m |= strtoull(k + 5, NULL, 16);
	return m & (1ULL << (sig - 1));
}

/* The group stop is complete once the stat's exit code (the group's while
 * it is stopped) is the stop signal. */
static bool group_stopped(pid_t pid, int sig)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'T')
		return false;
	char *last = strrchr(p, ' ');
	return last && atoi(last + 1) == sig;
}

int ckpt_stop_released(pid_t pid, int32_t img_pid, int sig, struct ckpt_error *err)
{
	for (int i = 0; i < STOP_WAIT_MS; i++) {
		if (group_stopped(pid, sig))
			return 0;
		usleep(1000);
	}
	return ckpt_fail(err, ETIMEDOUT, "process %d did not stop again with signal %d", img_pid, sig);
}

int ckpt_stop_parent_view(struct ckpt_tracee *parent, int32_t parent_pid, const Krg__Ckpt__Core *pcore, pid_t child_inner,
			  int32_t child_pid, int stop_signal, bool chld_was_pending, struct ckpt_error *err)
{
	long ret;
	if (!stop_signal) {
		/* It had collected this stop: collect it again, unseen. */
		ret = ckpt_syscall(parent, err, SYS_waitid, P_PID, child_inner, (long)parent->scratch, WSTOPPED | WNOHANG, 0, 0);
		if (err->msg[0])
			return -EIO;
		if (ret < 0)
			return ckpt_fail(err, inj_errno(ret), "process %d: taking back the stop notification of child %d: %s",
					 parent_pid, child_pid, strerror(inj_errno(ret)));
	}
	bool nocldstop = false;
	for (size_t i = 0; i < pcore->n_sigactions; i++)
		if (pcore->sigactions[i]->signo == SIGCHLD)
			nocldstop = pcore->sigactions[i]->flags & SA_NOCLDSTOP;
	if (chld_was_pending || nocldstop)
		return 0;
	/* The SIGCHLD of the stop: sent right after the group stop completes. */
	for (int i = 0; i < STOP_WAIT_MS && !ckpt_sig_pending(parent->pid, SIGCHLD); i++)
		usleep(1000);
	uint64_t set[3] = { 1ULL << (SIGCHLD - 1), 0, 0 };  /* the set, then a zero timespec */
	if (ckpt_poke(parent->pid, parent->scratch, set, sizeof(set)) < 0)
		return ckpt_fail(err, EIO, "process %d: writing rt_sigtimedwait arguments", parent_pid);
	ret = ckpt_syscall(parent, err, SYS_rt_sigtimedwait, (long)parent->scratch, 0, (long)(parent->scratch + 8), 8, 0, 0);
	if (err->msg[0])
		return -EIO;
	if (ret != SIGCHLD && ret != -EAGAIN)
		return ckpt_fail(err, inj_errno(ret), "process %d: taking back the SIGCHLD of child %d's stop: %s", parent_pid, child_pid,
				 ret < 0 ? strerror(inj_errno(ret)) : "another signal");
	return 0;
}
