/* ptrace.c — freezing a process, reading its registers, and running
 * syscalls inside it. A syscall is injected by pointing rip at a `syscall`
 * instruction that already exists in the tracee (its vdso at dump time,
 * our helper page at restore time) and stepping it with PTRACE_SYSCALL:
 * entry stop, exit stop, read rax. Nothing in the tracee's memory is
 * written to run one. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/macro.h"

#define XSAVE_MAX (64 * 1024)

uint64_t ckpt_xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

int ckpt_get_regs(pid_t tid, struct ckpt_thread *t, struct ckpt_error *err)
{
	struct iovec iov = { &t->regs, sizeof(t->regs) };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "thread %d: reading registers: %s", tid, strerror(errno));
	free(t->xsave);
	t->xsave = malloc(XSAVE_MAX);
	if (!t->xsave)
		return ckpt_fail(err, ENOMEM, "out of memory");
	iov = (struct iovec){ t->xsave, XSAVE_MAX };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return ckpt_fail(err, errno, "thread %d: reading FPU/SSE/AVX state (NT_X86_XSTATE): %s", tid, strerror(errno));
	t->xsave_len = iov.iov_len;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(t->sigmask), &t->sigmask) < 0)
		return ckpt_fail(err, errno, "thread %d: reading the signal mask: %s", tid, strerror(errno));
	return 0;
}

size_t ckpt_xsave_size(void)
{
	/* What NT_X86_XSTATE gives on this CPU: ask our own kernel the way a
	 * tracer would, via CPUID leaf 0xd (size for the enabled features). */
	uint32_t a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(0));
	return b;
}

/* Interrupt one thread and wait until it is in a ptrace stop. */
static int seize_one(pid_t tid, struct ckpt_thread *t, long options, struct ckpt_error *err)
{
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)options) < 0)
		return ckpt_fail(err, errno, "cannot seize thread %d: %s", tid, strerror(errno));
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return ckpt_fail(err, errno, "cannot interrupt thread %d: %s", tid, strerror(errno));
	for (;;) {
		int st;
		if (waitpid(tid, &st, __WALL) < 0)
			return ckpt_fail(err, errno, "waiting for thread %d to stop: %s", tid, strerror(errno));
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return ckpt_fail(err, ESRCH, "thread %d exited during the checkpoint", tid);
		if (!WIFSTOPPED(st))
			continue;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* A signal got there first: keep it for the thaw, and go on to
		 * the interrupt stop that is still pending. */
		t->stop_sig = WSTOPSIG(st);
		if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
			return ckpt_fail(err, errno, "thread %d: %s", tid, strerror(errno));
	}
}

/* A thread of pid's group other than the leader, 0 if none. */
static pid_t other_tid(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	pid_t tid = 0;
	struct dirent *de;
	while (!tid && (de = readdir(d)))
		if (atoi(de->d_name) > 0 && atoi(de->d_name) != pid)
			tid = atoi(de->d_name);
	closedir(d);
	return tid;
}

static bool leader_is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	const char *p = strrchr(buf, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

/* A zombie leader with live threads: others in its task list. */
bool ckpt_leader_exited(pid_t pid)
{
	return leader_is_zombie(pid) && other_tid(pid) != 0;
}

pid_t ckpt_live_tid(pid_t pid)
{
	pid_t tid = leader_is_zombie(pid) ? other_tid(pid) : 0;
	return tid ? tid : pid;
}

static bool have_tid(const struct ckpt_thread *th, size_t n, pid_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (th[i].tid == tid)
			return true;
	return false;
}

int ckpt_seize_all(pid_t pid, struct ckpt_thread **threads, size_t *n_out, struct ckpt_error *err)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return ckpt_fail(err, ESRCH, "no process %d", pid);
	const char *tg = strstr(buf, "\nTgid:");
	if (!tg || atoi(tg + 6) != pid)
		return ckpt_fail(err, EINVAL, "%d is a thread, not a process (use its thread group id)", pid);
	if (pid == getpid())
		return ckpt_fail(err, EINVAL, "krg cannot checkpoint itself");

	struct ckpt_thread *th = NULL;
	size_t n = 0;
	int r = 0;
	/* Threads may be born while we freeze the others: list again until a
	 * pass finds nobody new. */
	for (bool again = true; again;) {
		again = false;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		DIR *d = opendir(path);
		if (!d) {
			r = ckpt_fail(err, ESRCH, "process %d vanished", pid);
			goto fail;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			if (tid <= 0 || have_tid(th, n, tid))
				continue;
			struct ckpt_thread *nt = realloc(th, (n + 1) * sizeof(*th));
			if (!nt) {
				closedir(d);
				r = ckpt_fail(err, ENOMEM, "out of memory");
				goto fail;
			}
			th = nt;
			/* A leader that exited (pthread_exit in main) is a zombie
			 * thread: not to be seized (ptrace refuses it), not saved. */
			if (tid == pid && ckpt_leader_exited(pid))
				continue;
			r = seize_one(tid, &th[n], PTRACE_O_TRACESYSGOOD, err);
			if (r < 0 && ((r == -ESRCH && tid != pid) || (tid == pid && ckpt_leader_exited(pid)))) {
				err->msg[0] = 0;  /* a thread that exits while we freeze is not an error */
				r = 0;
				continue;
			}
			n++;
			if (r < 0) {
				closedir(d);
				goto fail;
			}
			again = true;
		}
		closedir(d);
	}
	if (!n) {
		r = ckpt_fail(err, ESRCH, "process %d has exited", pid);
		goto fail;
	}
	/* The leader first. */
	for (size_t i = 0; i < n; i++)
		if (th[i].tid == pid && i) {
			struct ckpt_thread tmp = th[0];
			th[0] = th[i], th[i] = tmp;
		}
	for (size_t i = 0; i < n; i++)
		if ((r = ckpt_get_regs(th[i].tid, &th[i], err)) < 0)
			goto fail;
	*threads = th;
	*n_out = n;
	return 0;
fail:
	ckpt_release_all(pid, th, n, false);
	return r;
}

void ckpt_release_all(pid_t pid, struct ckpt_thread *th, size_t n, bool kill_it)
{
	if (kill_it) {
		kill(pid, SIGKILL);
		for (size_t i = n; i-- > 0;) {
			int st;
			while (waitpid(th[i].tid, &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
				;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			ptrace(PTRACE_DETACH, th[i].tid, NULL, NULL);
			if (th[i].stop_sig)
				tgkill(pid, th[i].tid, th[i].stop_sig);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(th[i].xsave);
	free(th);
}

void ckpt_thread_put_back(struct ckpt_thread *t, uint64_t pending)
{
	struct user_regs_struct regs = t->regs;
	ckpt_regs_fixup_restart(&regs);
	struct iovec iov = { &regs, sizeof(regs) };
	ptrace(PTRACE_SETREGSET, t->tid, (void *)NT_PRSTATUS, &iov);
	for (int s = 1; s <= 64 && !t->stop_sig; s++)
		if (pending & (1ULL << (s - 1)))
			t->stop_sig = s;
}

/* Wait for the next syscall stop of an injection; other signals that show
 * up meanwhile are suppressed here and re-sent when we let go. */
/* waitpid for t->pid. A thread that is not the leader takes the leader's
 * pid when its execve succeeds, and a wait for its old tid never ends:
 * then both are polled (up to 30 s), and the process's pid is the
 * tracee's from there on. */
static pid_t wait_tracee(struct ckpt_tracee *t, int *st)
{
	if (!t->tgid || t->pid == t->tgid)
		return waitpid(t->pid, st, __WALL);
	for (int i = 0; i < 30000; i++) {
		pid_t w = waitpid(t->pid, st, __WALL | WNOHANG);
		if (w != 0 && !(w < 0 && errno == ECHILD))
			return w;
		w = waitpid(t->tgid, st, __WALL | WNOHANG);
		if (w > 0) {
			t->pid = t->tgid;
			return w;
		}
		usleep(1000);
	}
	errno = ETIMEDOUT;
	return -1;
}

static int wait_syscall_stop(struct ckpt_tracee *t, struct ckpt_error *err)
{
	for (;;) {
		int st;
		if (wait_tracee(t, &st) < 0)
			return ckpt_fail(err, errno, "process %d: waitpid: %s", t->pid, strerror(errno));
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return ckpt_fail(err, ESRCH, "process %d died while krg was working on it (%s %d)", t->pid,
					 WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st);
		if (sig == (SIGTRAP | 0x80))
			return 0;
		if ((st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
			t->execed = true;  /* ckpt_inj_attach asks for these */
		else if ((st >> 16) == 0 && sig != SIGTRAP && sig > 0 && sig < 64)
			t->pending_sigs |= 1ULL << (sig - 1);
		if (ptrace(PTRACE_SYSCALL, t->pid, NULL, NULL) < 0)
			return ckpt_fail(err, errno, "process %d: PTRACE_SYSCALL: %s", t->pid, strerror(errno));
	}
}

int ckpt_inject(struct ckpt_tracee *t, long nr, const long a[6], long *ret, struct ckpt_error *err)
{
	struct user_regs_struct r;
	struct iovec iov = { &r, sizeof(r) };
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "process %d: reading registers: %s", t->pid, strerror(errno));
	r.rip = t->code;
	r.rax = (uint64_t)nr;
	r.orig_rax = (uint64_t)-1;  /* not in a syscall: no restart fix-up by the kernel */
	r.rdi = (uint64_t)a[0], r.rsi = (uint64_t)a[1], r.rdx = (uint64_t)a[2];
	r.r10 = (uint64_t)a[3], r.r8 = (uint64_t)a[4], r.r9 = (uint64_t)a[5];
	if (ptrace(PTRACE_SETREGSET, t->pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "process %d: setting registers: %s", t->pid, strerror(errno));
	int e;
	if (ptrace(PTRACE_SYSCALL, t->pid, NULL, NULL) < 0)
		return ckpt_fail(err, errno, "process %d: PTRACE_SYSCALL: %s", t->pid, strerror(errno));
	if ((e = wait_syscall_stop(t, err)) < 0)  /* entry */
		return e;
	if (ptrace(PTRACE_SYSCALL, t->pid, NULL, NULL) < 0)
		return ckpt_fail(err, errno, "process %d: PTRACE_SYSCALL: %s", t->pid, strerror(errno));
	if ((e = wait_syscall_stop(t, err)) < 0)  /* exit */
		return e;
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "process %d: reading registers: %s", t->pid, strerror(errno));
	*ret = (long)r.rax;
	return 0;
}

/* Convenience: the syscall's result (negative errno on its failure);
 * an injection failure is also returned as a negative errno, with err set. */
long ckpt_syscall(struct ckpt_tracee *t, struct ckpt_error *err, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	const long a[6] = { a1, a2, a3, a4, a5, a6 };
	long ret;
	int r = ckpt_inject(t, nr, a, &ret, err);
	return r < 0 ? r : ret;
}

static int mem_rw(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec l = { buf, len }, rm = { (void *)addr, len };
	ssize_t n = write ? process_vm_writev(pid, &l, 1, &rm, 1, 0) : process_vm_readv(pid, &l, 1, &rm, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	/* Not readable/writable through the page tables (PROT_NONE, read-only):
	 * /proc/PID/mem goes through FOLL_FORCE. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	_cleanup_close_ int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < len) {
		ssize_t k = write ? pwrite(fd, (uint8_t *)buf + done, len - done, (off_t)(addr + done))
				  : pread(fd, (uint8_t *)buf + done, len - done, (off_t)(addr + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	return 0;
}

int ckpt_poke(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	return mem_rw(pid, addr, (void *)buf, len, true);
}

int ckpt_peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return mem_rw(pid, addr, buf, len, false);
}

/* ---- the injector for callers outside a dump or restore (ckpt.h) ---- */

struct ckpt_inj {
	struct ckpt_tracee t;
	struct user_regs_struct saved;  /* at attach, put back at detach */
	bool have_regs;
};

int ckpt_inj_attach(struct ckpt_inj **out, pid_t pid)
{
	struct ckpt_inj *j = *out = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->t.tgid = pid;
	j->t.pid = ckpt_live_tid(pid);
	struct ckpt_thread th;
	/* Exec events: the deputy is exec'd by an injected execve. */
	int r = seize_one(j->t.pid, &th, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC, NULL);
	if (th.stop_sig > 0 && th.stop_sig <= 64)
		j->t.pending_sigs |= 1ULL << (th.stop_sig - 1);
	if (r < 0)
		return r;
	struct iovec iov = { &j->saved, sizeof(j->saved) };
	if (ptrace(PTRACE_GETREGSET, j->t.pid, (void *)NT_PRSTATUS, &iov) < 0)
		return -errno;
	j->have_regs = true;
	j->t.code = ckpt_find_syscall_insn(j->t.pid);
	return j->t.code ? 0 : -EOPNOTSUPP;
}

long ckpt_inj_call(struct ckpt_inj *j, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	if (!j || !j->t.code)
		return -ESRCH;
	struct ckpt_error err;
	err.msg[0] = 0;
	return ckpt_syscall(&j->t, &err, nr, a1, a2, a3, a4, a5, a6);
}

int ckpt_inj_poke(struct ckpt_inj *j, uint64_t addr, const void *buf, size_t len)
{
	return j ? ckpt_poke(j->t.pid, addr, buf, len) : -ESRCH;
}

pid_t ckpt_inj_tid(const struct ckpt_inj *j)
{
	return j ? j->t.pid : 0;
}

bool ckpt_inj_execed(const struct ckpt_inj *j)
{
	return j && j->t.execed;
}

void ckpt_inj_detach(struct ckpt_inj *j)
{
	if (!j)
		return;
	if (j->have_regs && !j->t.execed) {
		struct user_regs_struct r = j->saved;
		ckpt_regs_fixup_restart(&r);
		struct iovec iov = { &r, sizeof(r) };
		ptrace(PTRACE_SETREGSET, j->t.pid, (void *)NT_PRSTATUS, &iov);
	}
	/* The first signal that showed up goes with the detach, as if never
	 * intercepted; any others are sent again. Not traced (the seize
	 * failed): the detach fails, harmless. */
	int first = 0;
	for (int s = 1; s <= 64 && !first; s++)
		if (j->t.pending_sigs & (1ULL << (s - 1)))
			first = s;
	ptrace(PTRACE_DETACH, j->t.pid, NULL, (void *)(long)first);
	for (int s = first + 1; first && s <= 64; s++)
		if (j->t.pending_sigs & (1ULL << (s - 1)))
			tgkill(j->t.tgid, j->t.pid, s);
	free(j);
}
