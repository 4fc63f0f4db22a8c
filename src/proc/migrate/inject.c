/* inject.c — running a few syscalls inside a frozen process (the
 * migration worker's own, small and independent of src/ckpt's): seize the
 * leader, point rip at a `syscall` instruction of its vdso, load the
 * arguments, step it with PTRACE_SYSCALL (entry stop, exit stop), read
 * rax. Used to swap proxied fds for FIFOs and to exec the deputy. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "proc/migrate/inject.h"

static uint64_t find_insn(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	unsigned long s = 0, e = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2) {
			found = true;
			break;
		}
	fclose(f);
	if (!found || e - s > (1 << 20))
		return 0;
	uint8_t *buf = malloc(e - s);
	uint64_t at = 0;
	struct iovec l = { buf, e - s }, r = { (void *)s, e - s };
	if (buf && process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)(e - s))
		for (unsigned long i = 0; i + 1 < e - s; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				at = s + i;
				break;
			}
	free(buf);
	return at;
}

int inj_attach(struct inj *j, pid_t pid)
{
	memset(j, 0, sizeof(*j));
	j->tgid = pid;
	j->pid = ckpt_live_tid(pid);
	pid = j->pid;
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)) < 0)
		return -errno;
	j->attached = true;
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
		return -errno;
	for (;;) {
		int st;
		if (waitpid(pid, &st, __WALL) < 0)
			return -errno;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			j->attached = false;
			return -ESRCH;
		}
		if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)
			break;
		if (WIFSTOPPED(st)) {
			j->pending = WSTOPSIG(st);
			ptrace(PTRACE_CONT, pid, NULL, NULL);
		}
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &j->saved) < 0)
		return -errno;
	j->insn = find_insn(pid);
	return j->insn ? 0 : -EOPNOTSUPP;
}

/* waitpid for j->pid. A thread that is not the leader takes the leader's
 * pid when its execve succeeds, and a wait for its old tid never ends:
 * then both are polled, and the process's pid is ours from there on. */
static pid_t wait_tracee(struct inj *j, int *st)
{
	if (j->pid == j->tgid)
		return waitpid(j->pid, st, __WALL);
	for (int i = 0; i < 30000; i++) {
		pid_t w = waitpid(j->pid, st, __WALL | WNOHANG);
		if (w != 0 && !(w < 0 && errno == ECHILD))
			return w;
		w = waitpid(j->tgid, st, __WALL | WNOHANG);
		if (w > 0) {
			j->pid = j->tgid;
			return w;
		}
		usleep(1000);
	}
	errno = ETIMEDOUT;
	return -1;
}

static int wait_trap(struct inj *j, bool *exec_seen)
{
	for (;;) {
		int st;
		if (wait_tracee(j, &st) < 0)
			return -errno;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return -ESRCH;
		if (!WIFSTOPPED(st))
			continue;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			return 0;
		if ((st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
			if (exec_seen)
				*exec_seen = true;
		} else if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP) {
			j->pending = WSTOPSIG(st);
		}
		if (ptrace(PTRACE_SYSCALL, j->pid, NULL, NULL) < 0)
			return -errno;
	}
}

long inj_call(struct inj *j, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct user_regs_struct r = j->saved;
	r.rip = j->insn;
	r.rax = (unsigned long)nr;
	r.orig_rax = (unsigned long)-1;
	r.rdi = (unsigned long)a1;
	r.rsi = (unsigned long)a2;
	r.rdx = (unsigned long)a3;
	r.r10 = (unsigned long)a4;
	r.r8 = (unsigned long)a5;
	r.r9 = (unsigned long)a6;
	if (ptrace(PTRACE_SETREGS, j->pid, NULL, &r) < 0)
		return -errno;
	if (ptrace(PTRACE_SYSCALL, j->pid, NULL, NULL) < 0)
		return -errno;
	bool exec_seen = false;
	int e = wait_trap(j, &exec_seen); /* entry */
	if (e < 0)
		return e;
	if (ptrace(PTRACE_SYSCALL, j->pid, NULL, NULL) < 0)
		return -errno;
	e = wait_trap(j, &exec_seen); /* exit */
	if (e < 0)
		return e;
	if (ptrace(PTRACE_GETREGS, j->pid, NULL, &r) < 0)
		return -errno;
	if (exec_seen)
		j->execed = true;
	return (long)r.rax;
}

int inj_poke(struct inj *j, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)addr, len };
	return process_vm_writev(j->pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -EIO;
}

void inj_detach(struct inj *j)
{
	if (!j->attached)
		return;
	if (!j->execed) {
		/* Back to what it was doing: a syscall it was stopped in is
		 * restarted by hand, as the kernel would have at that stop. */
		struct user_regs_struct r = j->saved;
		long rax = (long)r.rax;
		if ((long)r.orig_rax >= 0) {
			if (rax == -512 || rax == -513 || rax == -514) {
				r.rax = r.orig_rax;
				r.rip -= 2;
			} else if (rax == -516) {
				r.rax = SYS_restart_syscall;
				r.rip -= 2;
			}
			r.orig_rax = (unsigned long)-1;
		}
		ptrace(PTRACE_SETREGS, j->pid, NULL, &r);
	}
	ptrace(PTRACE_DETACH, j->pid, NULL, (void *)(long)j->pending);
	j->attached = false;
}
