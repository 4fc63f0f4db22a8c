/* core.c — the task itself: registers (general and XSAVE), signal
 * dispositions and mask, sigaltstack, rseq, robust list, cwd, umask,
 * rlimits, personality, credentials (core-<pid>.img). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/macro.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct rseq_conf {  /* struct ptrace_rseq_configuration */
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};
#define RSEQ_FLAG_UNREGISTER 1

/* The kernel's struct sigaction on x86-64 (what rt_sigaction takes). */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

#define REG_FIELDS(X) X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) \
	X(rax) X(rcx) X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) X(rsp) X(ss) \
	X(fs_base) X(gs_base) X(ds) X(es) X(fs) X(gs)

void ckpt_regs_to_pb(const struct user_regs_struct *r, Krg__Ckpt__GpRegs *pb)
{
	krg__ckpt__gp_regs__init(pb);
#define X(f) pb->f = r->f;
	REG_FIELDS(X)
#undef X
}

void ckpt_regs_from_pb(const Krg__Ckpt__GpRegs *pb, struct user_regs_struct *r)
{
	memset(r, 0, sizeof(*r));
#define X(f) r->f = pb->f;
	REG_FIELDS(X)
#undef X
}

static const char *status_field(const char *status, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = status; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ':')
			return p + n + 1;
	return NULL;
}

void ckpt_core_free(Krg__Ckpt__Core *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_threads; i++) {
		free(c->threads[i]->regs);
		free(c->threads[i]->xsave.data);
		free(c->threads[i]->comm);
		for (size_t k = 0; k < c->threads[i]->n_pending; k++)
			free(c->threads[i]->pending[k].data);
		free(c->threads[i]->pending);
		free(c->threads[i]);
	}
	free(c->threads);
	for (size_t i = 0; i < c->n_sigactions; i++)
		free(c->sigactions[i]);
	free(c->sigactions);
	for (size_t i = 0; i < c->n_rlimits; i++)
		free(c->rlimits[i]);
	free(c->rlimits);
	for (size_t i = 0; i < c->n_shared_pending; i++)
		free(c->shared_pending[i].data);
	free(c->shared_pending);
	for (size_t i = 0; i < c->n_itimers; i++)
		free(c->itimers[i]);
	free(c->itimers);
	for (size_t i = 0; i < c->n_posix_timers; i++)
		free(c->posix_timers[i]);
	free(c->posix_timers);
	free(c->uids);
	free(c->gids);
	free(c->groups);
	free(c->comm);
	free(c->cwd);
	free(c->cwd_deleted);
	free(c);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		abort();
	return p;
}

/* Kernel-internal restart codes a syscall interrupted by our stop returns. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* A thread frozen inside a syscall: the kernel would restart it on the way
 * out of the signal stop; after our injections (or in a new process)
 * nobody will, so re-run the `syscall` instruction by hand. */
void ckpt_regs_fixup_restart(struct user_regs_struct *r)
{
	if ((int64_t)r->orig_rax >= 0) {
		int64_t ax = (int64_t)r->rax;
		if (ax == -ERESTARTSYS || ax == -ERESTARTNOINTR || ax == -ERESTARTNOHAND) {
			r->rax = r->orig_rax;
			r->rip -= 2;
		} else if (ax == -ERESTART_RESTARTBLOCK) {
			r->rax = SYS_restart_syscall;
			r->rip -= 2;
		}
	}
	r->orig_rax = (uint64_t)-1;
}

#ifndef PTRACE_PEEKSIGINFO
#define PTRACE_PEEKSIGINFO 0x4209
#endif
#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
#endif
struct peeksiginfo_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

/* Pending signals of one queue (a thread's, or the process's shared one)
 * without dequeuing them. */
static int dump_pending(pid_t tid, bool shared, ProtobufCBinaryData **out, size_t *n_out, struct ckpt_error *err)
{
	ProtobufCBinaryData *v = NULL;
	size_t n = 0;
	for (;;) {
		uint8_t si[16][128];
		struct peeksiginfo_args a = { .off = n, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 16 };
		long k = ptrace(PTRACE_PEEKSIGINFO, tid, &a, si);
		if (k < 0) {
			int e = errno;
			for (size_t i = 0; i < n; i++)
				free(v[i].data);
			free(v);
			return ckpt_fail(err, e, "thread %d: reading its %s pending signals: %s", tid, shared ? "process-wide" : "own", strerror(e));
		}
		if (k == 0)
			break;
		v = realloc(v, (n + (size_t)k) * sizeof(*v));
		if (!v)
			abort();
		for (long i = 0; i < k; i++) {
			v[n].len = 128;
			v[n].data = xcalloc(1, 128);
			memcpy(v[n].data, si[i], 128);
			n++;
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

/* What only the thread itself can tell: its clear_child_tid and its
 * sigaltstack, by syscalls injected into it. */
static int dump_thread_inside(struct ckpt_tracee *t, Krg__Ckpt__ThreadCore *tc, struct ckpt_error *err)
{
	long ret = ckpt_syscall(t, err, SYS_prctl, PR_GET_TID_ADDRESS, (long)t->scratch, 0, 0, 0, 0);
	uint64_t tidaddr;
	if (ret == 0 && ckpt_peek(t->pid, t->scratch, &tidaddr, sizeof(tidaddr)) == 0) {
		tc->has_clear_child_tid = true;
		tc->clear_child_tid = tidaddr;
	} else if (err->msg[0]) {
		return -EIO;
	}
	ret = ckpt_syscall(t, err, SYS_sigaltstack, 0, (long)t->scratch, 0, 0, 0, 0);
	stack_t ss;
	if (ret == 0 && ckpt_peek(t->pid, t->scratch, &ss, sizeof(ss)) == 0) {
		tc->has_altstack_sp = tc->has_altstack_size = tc->has_altstack_flags = true;
		tc->altstack_sp = (uint64_t)ss.ss_sp;
		tc->altstack_size = ss.ss_size;
		tc->altstack_flags = (uint32_t)ss.ss_flags;
	}
	return err->msg[0] ? -EIO : 0;
}

/* POSIX timers: /proc/PID/timers says which exist and how they notify
 * (without CONFIG_CHECKPOINT_RESTORE there is no such file: then a
 * process with timers cannot be told from one without, and none are
 * saved); timer_gettime, injected, says when each fires next. */
static int dump_posix_timers(struct ckpt_tracee *t, Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/timers", t->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	Krg__Ckpt__PosixTimer *cur = NULL;
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		int v;
		unsigned long long sv;
		char how[16], target[16];
		if (sscanf(line, "ID: %d", &v) == 1) {
			if (c->n_posix_timers >= 4096) {
				r = ckpt_fail(err, E2BIG, "process %d: more than 4096 POSIX timers", t->pid);
				break;
			}
			cur = xcalloc(1, sizeof(*cur));
			krg__ckpt__posix_timer__init(cur);
			cur->id = v;
			c->posix_timers = realloc(c->posix_timers, (c->n_posix_timers + 1) * sizeof(*c->posix_timers));
			if (!c->posix_timers)
				abort();
			c->posix_timers[c->n_posix_timers++] = cur;
		} else if (cur && sscanf(line, "signal: %d/%llx", &v, &sv) == 2) {
			cur->has_signo = cur->has_sigval = true;
			cur->signo = v;
			cur->sigval = sv;
		} else if (cur && sscanf(line, "notify: %15[^/]/%15[a-z].%d", how, target, &v) == 3) {
			/* "signal/pid.N", "signal/tid.N" (SIGEV_THREAD_ID), "none/pid.N" */
			if (!strcmp(target, "tid")) {
				cur->notify = KRG__CKPT__POSIX_TIMER__NOTIFY__THREAD;
				cur->has_tid = true;
				cur->tid = v;
			} else if (!strcmp(how, "none"))
				cur->notify = KRG__CKPT__POSIX_TIMER__NOTIFY__NONE;
			else
				cur->notify = KRG__CKPT__POSIX_TIMER__NOTIFY__SIGNAL;
		} else if (cur && sscanf(line, "ClockID: %d", &v) == 1) {
			cur->clockid = v;
		}
	}
	fclose(f);
	for (size_t i = 0; r == 0 && i < c->n_posix_timers; i++) {
		Krg__Ckpt__PosixTimer *pt = c->posix_timers[i];
		struct itimerspec its;
		long ret = ckpt_syscall(t, err, SYS_timer_gettime, pt->id, (long)t->scratch, 0, 0, 0, 0);
		if (ret < 0 || ckpt_peek(t->pid, t->scratch, &its, sizeof(its)) < 0) {
			r = ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "process %d: reading POSIX timer %d failed", t->pid, pt->id);
			break;
		}
		pt->interval_ns = (uint64_t)its.it_interval.tv_sec * 1000000000ULL + (uint64_t)its.it_interval.tv_nsec;
		pt->value_ns = (uint64_t)its.it_value.tv_sec * 1000000000ULL + (uint64_t)its.it_value.tv_nsec;
	}
	return r;
}

/* Interval timers are per process (the leader answers). */
static int dump_itimers(struct ckpt_tracee *t, Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	pid_t pid = t->pid;
	long ret;
	int r;
	c->itimers = xcalloc(3, sizeof(*c->itimers));
	for (int which = 0; which < 3; which++) {
		struct itimerval it;
		ret = ckpt_syscall(t, err, SYS_getitimer, which, (long)t->scratch, 0, 0, 0, 0);
		if (ret < 0 || ckpt_peek(pid, t->scratch, &it, sizeof(it)) < 0) {
			r = ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "process %d: reading interval timer %d failed", pid, which);
			return r;
		}
		uint64_t value_us = (uint64_t)it.it_value.tv_sec * 1000000 + (uint64_t)it.it_value.tv_usec;
		uint64_t interval_us = (uint64_t)it.it_interval.tv_sec * 1000000 + (uint64_t)it.it_interval.tv_usec;
		/* ITIMER_REAL reads 0 between an expiry and the moment its
		 * SIGALRM is taken (the kernel re-arms it then, by the
		 * interval): a frozen process caught there has it pending
		 * (saved with the signals) and the timer still running. Saved
		 * as due one interval on, or it would come back disarmed. */
		if (!value_us && which == ITIMER_REAL && interval_us)
			value_us = interval_us;
		if (!value_us)
			continue;  /* disarmed */
		Krg__Ckpt__Itimer *pi = xcalloc(1, sizeof(*pi));
		krg__ckpt__itimer__init(pi);
		pi->which = (uint32_t)which;
		pi->interval_us = interval_us;
		pi->value_us = value_us;
		c->itimers[c->n_itimers++] = pi;
	}
	return 0;
}

/* Every signal's action, asked inside the process. */
static int dump_sigactions(struct ckpt_tracee *t, Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	pid_t pid = t->pid;
	long ret;
	int r;
	c->sigactions = xcalloc(64, sizeof(*c->sigactions));
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct ksigaction ka;
		ret = ckpt_syscall(t, err, SYS_rt_sigaction, sig, 0, (long)t->scratch, 8, 0, 0);
		if (ret < 0 || (r = ckpt_peek(pid, t->scratch, &ka, sizeof(ka))) < 0) {
			r = ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "process %d: reading the action of signal %d failed", pid, sig);
			return r;
		}
		Krg__Ckpt__SigAction *sa = xcalloc(1, sizeof(*sa));
		krg__ckpt__sig_action__init(sa);
		sa->signo = (uint32_t)sig;
		sa->handler = ka.handler, sa->flags = ka.flags, sa->restorer = ka.restorer, sa->mask = ka.mask;
		c->sigactions[c->n_sigactions++] = sa;
	}
	return 0;
}

/* From /proc and from outside: comm, cwd, umask, ids, groups, limits. */
static int dump_from_proc(pid_t pid, Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	char path[64], buf[8192];
	int r;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	c->comm = ckpt_strdup(buf);
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	ssize_t l = readlink(path, buf, sizeof(buf) - 1);
	if (l < 0) {
		r = ckpt_fail(err, errno, "process %d: reading its cwd: %s", pid, strerror(errno));
		return r;
	}
	buf[l] = 0;
	/* A removed cwd reads "PATH (deleted)"; a directory really named so
	 * still has links. */
	struct stat cst;
	size_t cl = (size_t)l;
	if (cl > 10 && !strcmp(buf + cl - 10, " (deleted)") && stat(path, &cst) == 0 && cst.st_nlink == 0) {
		buf[cl - 10] = 0;
		c->cwd_deleted = xcalloc(1, sizeof(*c->cwd_deleted));
		krg__ckpt__deleted_dir__init(c->cwd_deleted);
		c->cwd_deleted->mode = cst.st_mode & 07777;
		c->cwd_deleted->uid = cst.st_uid;
		c->cwd_deleted->gid = cst.st_gid;
	}
	c->cwd = ckpt_strdup(buf);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((r = krg_read_small(path, buf, sizeof(buf))) < 0) {
		r = ckpt_fail(err, r, "process %d: reading its status: %s", pid, strerror(-r));
		return r;
	}
	const char *f;
	c->umask = (f = status_field(buf, "Umask")) ? (uint32_t)strtoul(f, NULL, 8) : 022;
	if ((f = status_field(buf, "PPid")))
		c->has_ppid = true, c->ppid = atoi(f);
	c->uids = xcalloc(3, sizeof(uint32_t));
	c->gids = xcalloc(3, sizeof(uint32_t));
	if ((f = status_field(buf, "Uid")) && sscanf(f, "%u %u %u %u", &c->uids[0], &c->uids[1], &c->uids[2], &c->fsuid) >= 3)
		c->n_uids = 3;
	if ((f = status_field(buf, "Gid")) && sscanf(f, "%u %u %u %u", &c->gids[0], &c->gids[1], &c->gids[2], &c->fsgid) >= 3)
		c->n_gids = 3;
	/* The file system ids (4th column) only where setfsuid/setfsgid moved
	 * them off the effective ones. */
	c->has_fsuid = c->n_uids == 3 && c->fsuid != c->uids[1];
	c->has_fsgid = c->n_gids == 3 && c->fsgid != c->gids[1];
	if ((f = status_field(buf, "Groups"))) {
		char *end;
		for (const char *q = f; *q && *q != '\n' && c->n_groups < 65536;) {
			unsigned long g = strtoul(q, &end, 10);
			if (end == q)
				break;
			c->groups = realloc(c->groups, (c->n_groups + 1) * sizeof(*c->groups));
			if (!c->groups)
				abort();
			c->groups[c->n_groups++] = (uint32_t)g;
			q = end;
			while (*q == ' ')
				q++;
		}
	}
	c->rlimits = xcalloc(RLIM_NLIMITS, sizeof(*c->rlimits));
	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit rl;
		if (prlimit(pid, (enum __rlimit_resource)res, NULL, &rl) < 0)
			continue;
		Krg__Ckpt__Rlimit *pr = xcalloc(1, sizeof(*pr));
		krg__ckpt__rlimit__init(pr);
		pr->resource = (uint32_t)res, pr->cur = rl.rlim_cur, pr->max = rl.rlim_max;
		c->rlimits[c->n_rlimits++] = pr;
	}
	return 0;
}

int ckpt_core_dump(struct ckpt_tracee *t, struct ckpt_thread *th, size_t n, Krg__Ckpt__Core **out, uint64_t *brk, struct ckpt_error *err)
{
	pid_t pid = t->pid;
	Krg__Ckpt__Core *c = xcalloc(1, sizeof(*c));
	krg__ckpt__core__init(c);
	c->pid = pid;
	int r;
	char path[64], buf[8192];

	c->threads = xcalloc(n, sizeof(*c->threads));
	for (size_t i = 0; i < n; i++) {
		Krg__Ckpt__ThreadCore *tc = xcalloc(1, sizeof(*tc));
		krg__ckpt__thread_core__init(tc);
		c->threads[c->n_threads++] = tc;
		tc->tid = th[i].tid;
		tc->regs = xcalloc(1, sizeof(*tc->regs));
		ckpt_regs_to_pb(&th[i].regs, tc->regs);
		tc->xsave.len = th[i].xsave_len;
		tc->xsave.data = xcalloc(1, th[i].xsave_len);
		memcpy(tc->xsave.data, th[i].xsave, th[i].xsave_len);
		tc->sigmask = th[i].sigmask;
		struct rseq_conf rc = { 0 };
		if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, th[i].tid, (void *)sizeof(rc), &rc) > 0 && rc.rseq_abi_pointer) {
			tc->has_rseq_addr = tc->has_rseq_len = tc->has_rseq_sig = true;
			tc->rseq_addr = rc.rseq_abi_pointer;
			tc->rseq_len = rc.rseq_abi_size;
			tc->rseq_sig = rc.signature;
		}
		void *head;
		size_t len;
		if (syscall(SYS_get_robust_list, th[i].tid, &head, &len) == 0) {
			tc->has_robust_list = tc->has_robust_len = true;
			tc->robust_list = (uint64_t)head;
			tc->robust_len = len;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, th[i].tid);
		if (krg_read_small(path, buf, sizeof(buf)) >= 0) {
			buf[strcspn(buf, "\n")] = 0;
			tc->comm = ckpt_strdup(buf);
		}
		if ((r = dump_pending(th[i].tid, false, &tc->pending, &tc->n_pending, err)) < 0)
			goto fail;
	}
	if ((r = dump_pending(pid, true, &c->shared_pending, &c->n_shared_pending, err)) < 0)
		goto fail;
	bool intercepted;
	if ((r = ckpt_seccomp_dump(pid, th, n, &intercepted, err)) < 0)
		goto fail;
	c->has_ipc_intercepted = c->ipc_intercepted = intercepted;
	/* The other threads: inject into each, then put its registers back
	 * (a syscall it was in is restarted by hand: we are past the signal
	 * stop where the kernel would have done it). */
	for (size_t i = 1; i < n; i++) {
		struct ckpt_tracee tt = { .pid = th[i].tid, .code = t->code, .scratch = t->scratch, .scratch_len = t->scratch_len };
		r = dump_thread_inside(&tt, c->threads[i], err);
		struct user_regs_struct regs = th[i].regs;
		ckpt_regs_fixup_restart(&regs);
		struct iovec iov = { &regs, sizeof(regs) };
		if (ptrace(PTRACE_SETREGSET, th[i].tid, (void *)NT_PRSTATUS, &iov) < 0 && r >= 0)
			r = ckpt_fail(err, errno, "thread %d: putting its registers back: %s", th[i].tid, strerror(errno));
		for (int s = 1; s <= 64 && !th[i].stop_sig; s++)
			if (tt.pending_sigs & (1ULL << (s - 1)))
				th[i].stop_sig = s;
		if (r < 0)
			goto fail;
	}

	/* Asked inside the leader (nothing outside tells these). */
	if ((r = dump_thread_inside(t, c->threads[0], err)) < 0)
		goto fail;
	long ret;
	if ((r = dump_itimers(t, c, err)) < 0)
		goto fail;
	if ((r = dump_posix_timers(t, c, err)) < 0)
		goto fail;
	if ((r = dump_sigactions(t, c, err)) < 0)
		goto fail;
	ret = ckpt_syscall(t, err, SYS_brk, 0, 0, 0, 0, 0, 0);
	if (ret <= 0) {
		r = ckpt_fail(err, EIO, "process %d: reading its brk failed", pid);
		goto fail;
	}
	*brk = (uint64_t)ret;
	ret = ckpt_syscall(t, err, SYS_personality, 0xffffffff, 0, 0, 0, 0, 0);
	if (ret >= 0) {
		c->has_personality = true;
		c->personality = (uint32_t)ret;
	}

	if ((r = dump_from_proc(pid, c, err)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	ckpt_core_free(c);
	return r;
}

/* What each thread has of its own, injected into that thread: sigaltstack,
 * robust futex list, clear_child_tid, rseq, name. */
int ckpt_core_restore_thread(struct ckpt_tracee *t, const Krg__Ckpt__ThreadCore *tc, const char *comm_fallback, struct ckpt_error *err)
{
	long ret;
	int r;
	stack_t ss = { .ss_flags = SS_DISABLE };
	if (tc->has_altstack_sp && !(tc->altstack_flags & SS_DISABLE))
		ss = (stack_t){ .ss_sp = (void *)tc->altstack_sp, .ss_size = tc->altstack_size, .ss_flags = (int)(tc->altstack_flags & ~SS_ONSTACK) };
	if ((r = ckpt_poke(t->pid, t->scratch, &ss, sizeof(ss))) < 0)
		return ckpt_fail(err, r, "thread %d: restoring sigaltstack: %s", tc->tid, strerror(-r));
	ret = ckpt_syscall(t, err, SYS_sigaltstack, (long)t->scratch, 0, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "thread %d: restoring sigaltstack: %s", tc->tid, strerror((int)-ret));
	if (tc->has_robust_list) {
		ret = ckpt_syscall(t, err, SYS_set_robust_list, (long)tc->robust_list, (long)tc->robust_len, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "thread %d: restoring the robust futex list: %s", tc->tid, strerror((int)-ret));
	}
	if (tc->has_clear_child_tid) {
		ret = ckpt_syscall(t, err, SYS_set_tid_address, (long)tc->clear_child_tid, 0, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "thread %d: restoring clear_child_tid", tc->tid);
	}
	if (tc->has_rseq_addr && tc->rseq_addr) {
		ret = ckpt_syscall(t, err, SYS_rseq, (long)tc->rseq_addr, tc->rseq_len, 0, tc->rseq_sig, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "thread %d: registering rseq at %#llx: %s", tc->tid, (unsigned long long)tc->rseq_addr,
					 strerror((int)-ret));
	}
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", tc->comm ? tc->comm : comm_fallback);
	if ((r = ckpt_poke(t->pid, t->scratch, comm, sizeof(comm))) == 0)
		ckpt_syscall(t, err, SYS_prctl, PR_SET_NAME, (long)t->scratch, 0, 0, 0, 0);
	return err->msg[0] ? -EIO : 0;
}

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77  /* Linux 6.15: timer_create takes the id it is given */
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* POSIX timers with their own ids (PR_TIMER_CREATE_RESTORE_IDS), their
 * notification (a thread's by its new tid), armed with the time left. */
static int restore_posix_timers(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, const pid_t *tids, struct ckpt_error *err)
{
	if (!c->n_posix_timers)
		return 0;
	long ret = ckpt_syscall(t, err, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "this kernel cannot give POSIX timers their ids back (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15): %s",
				 strerror((int)-ret));
	int r = 0;
	for (size_t i = 0; i < c->n_posix_timers && !r; i++) {
		const Krg__Ckpt__PosixTimer *pt = c->posix_timers[i];
		struct sigevent sev;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_signo = pt->signo;
		sev.sigev_value.sival_ptr = (void *)(uintptr_t)pt->sigval;
		sev.sigev_notify = pt->notify == KRG__CKPT__POSIX_TIMER__NOTIFY__NONE ? SIGEV_NONE
				   : pt->notify == KRG__CKPT__POSIX_TIMER__NOTIFY__THREAD ? SIGEV_THREAD_ID : SIGEV_SIGNAL;
		if (pt->notify == KRG__CKPT__POSIX_TIMER__NOTIFY__THREAD) {
			pid_t tid = 0;
			for (size_t k = 0; k < c->n_threads; k++)
				if (c->threads[k]->tid == pt->tid)
					tid = tids[k];
			if (!tid) {
				r = ckpt_fail(err, EBADMSG, "image: POSIX timer %d signals thread %d, which is not in the image", pt->id, pt->tid);
				break;
			}
			sev._sigev_un._tid = tid;
		}
		int32_t id = pt->id;
		struct itimerspec its = {
			.it_interval = { (time_t)(pt->interval_ns / 1000000000ULL), (long)(pt->interval_ns % 1000000000ULL) },
			.it_value = { (time_t)(pt->value_ns / 1000000000ULL), (long)(pt->value_ns % 1000000000ULL) },
		};
		uint64_t sev_at = t->scratch, id_at = t->scratch + 128, its_at = t->scratch + 192;
		if (ckpt_poke(t->pid, sev_at, &sev, sizeof(sev)) < 0 || ckpt_poke(t->pid, id_at, &id, sizeof(id)) < 0 ||
		    ckpt_poke(t->pid, its_at, &its, sizeof(its)) < 0) {
			r = ckpt_fail(err, EIO, "POSIX timer %d: passing its arguments", pt->id);
			break;
		}
		ret = ckpt_syscall(t, err, SYS_timer_create, pt->clockid, (long)sev_at, (long)id_at, 0, 0, 0);
		int32_t got = -1;
		if (ret < 0 || ckpt_peek(t->pid, id_at, &got, sizeof(got)) < 0 || got != pt->id) {
			r = ckpt_fail(err, ret < 0 ? (int)-ret : EEXIST, "recreating POSIX timer %d: %s", pt->id, ret < 0 ? strerror((int)-ret) : "another id");
			break;
		}
		if (pt->value_ns && (ret = ckpt_syscall(t, err, SYS_timer_settime, pt->id, 0, (long)its_at, 0, 0, 0)) < 0)
			r = ckpt_fail(err, (int)-ret, "arming POSIX timer %d: %s", pt->id, strerror((int)-ret));
	}
	ckpt_syscall(t, err, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0, 0);
	return r;
}

/* Pending signals and interval timers, injected into the leader (so that
 * the kernel accepts siginfo with the original si_code: a process may
 * queue anything to itself). Call with every signal blocked in the leader:
 * nothing must be delivered before the registers are back. self and tids[i]
 * are the leader's pid and c->threads[i]'s tid as the process sees them
 * (its own pid namespace). */
int ckpt_core_restore_signals(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, pid_t self, const pid_t *tids, struct ckpt_error *err)
{
	long ret;
	int r;
	for (size_t i = 0; i < c->n_shared_pending; i++) {
		siginfo_t si;
		memcpy(&si, c->shared_pending[i].data, sizeof(si));
		if (si.si_signo < 1 || si.si_signo > 64 || si.si_signo == SIGKILL || si.si_signo == SIGSTOP)
			continue;
		if ((r = ckpt_poke(t->pid, t->scratch, &si, sizeof(si))) < 0)
			return ckpt_fail(err, r, "re-queueing pending signal %d: %s", si.si_signo, strerror(-r));
		ret = ckpt_syscall(t, err, SYS_rt_sigqueueinfo, self, si.si_signo, (long)t->scratch, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "re-queueing pending signal %d (process-wide): %s", si.si_signo, strerror((int)-ret));
	}
	for (size_t k = 0; k < c->n_threads; k++)
		for (size_t i = 0; i < c->threads[k]->n_pending; i++) {
			siginfo_t si;
			memcpy(&si, c->threads[k]->pending[i].data, sizeof(si));
			if (si.si_signo < 1 || si.si_signo > 64 || si.si_signo == SIGKILL || si.si_signo == SIGSTOP)
				continue;
			if ((r = ckpt_poke(t->pid, t->scratch, &si, sizeof(si))) < 0)
				return ckpt_fail(err, r, "re-queueing pending signal %d: %s", si.si_signo, strerror(-r));
			ret = ckpt_syscall(t, err, SYS_rt_tgsigqueueinfo, self, tids[k], si.si_signo, (long)t->scratch, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, (int)-ret, "re-queueing pending signal %d of thread %d: %s", si.si_signo, c->threads[k]->tid,
						 strerror((int)-ret));
		}
	for (size_t i = 0; i < c->n_itimers; i++) {
		const Krg__Ckpt__Itimer *pi = c->itimers[i];
		if (pi->which > 2)
			continue;
		struct itimerval it = {
			.it_interval = { (time_t)(pi->interval_us / 1000000), (suseconds_t)(pi->interval_us % 1000000) },
			.it_value = { (time_t)(pi->value_us / 1000000), (suseconds_t)(pi->value_us % 1000000) },
		};
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			it.it_value.tv_usec = 1;  /* armed at the checkpoint: stays armed */
		if ((r = ckpt_poke(t->pid, t->scratch, &it, sizeof(it))) < 0)
			return ckpt_fail(err, r, "restoring interval timer %u: %s", pi->which, strerror(-r));
		ret = ckpt_syscall(t, err, SYS_setitimer, pi->which, (long)t->scratch, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring interval timer %u: %s", pi->which, strerror((int)-ret));
	}
	if ((r = restore_posix_timers(t, c, tids, err)) < 0)
		return r;
	return err->msg[0] ? -EIO : 0;
}

static int inj_err(long ret)
{
	return ret < -4095 ? EIO : (int)-ret;
}

/* A cwd that had been removed: an empty directory made at its old path
 * (or, if that is taken or its parent gone, in a new directory of krg's
 * under /tmp), owned and moded as it was, entered and removed again by
 * the process itself. Then getcwd() fails with ENOENT, /proc/PID/cwd
 * says " (deleted)", nothing can be created in it, as before. */
static int restore_deleted_cwd(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	const Krg__Ckpt__DeletedDir *dd = c->cwd_deleted;
	char tmp[] = "/tmp/krg-cwd.XXXXXX", alt[sizeof(tmp) + 16];
	const char *path = c->cwd;
	long ret = -ENAMETOOLONG;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt == 1) {
			if (!mkdtemp(tmp))
				return ckpt_fail(err, errno, "restoring the removed cwd %s: a directory in /tmp: %s", c->cwd, strerror(errno));
			snprintf(alt, sizeof(alt), "%s/cwd", tmp);
			path = alt;
		}
		size_t pl = strlen(path) + 1;
		if (pl <= t->scratch_len && ckpt_poke(t->pid, t->scratch, path, pl) == 0)
			ret = ckpt_syscall(t, err, SYS_mkdir, (long)t->scratch, 0700, 0, 0, 0, 0);
		if (ret == 0 || err->msg[0])
			break;
	}
	if (ret == 0) {
		ckpt_syscall(t, err, SYS_chown, (long)t->scratch, dd->uid, dd->gid, 0, 0, 0);
		ckpt_syscall(t, err, SYS_chmod, (long)t->scratch, dd->mode, 0, 0, 0, 0);
		ret = ckpt_syscall(t, err, SYS_chdir, (long)t->scratch, 0, 0, 0, 0, 0);
		long rm = ckpt_syscall(t, err, SYS_rmdir, (long)t->scratch, 0, 0, 0, 0, 0);
		if (ret == 0 && rm < 0)
			ret = rm;
	}
	if (path == alt)
		rmdir(tmp);
	if (ret < 0 || err->msg[0])
		return ckpt_fail(err, ret < 0 ? inj_err(ret) : EIO, "restoring the removed cwd %s (made again as %s, entered, removed): %s", c->cwd,
				 path, strerror(ret < 0 ? inj_err(ret) : EIO));
	return 0;
}

int ckpt_core_restore_task(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	long ret;
	int r;
	/* Signal dispositions: all of them, so none of krg's own survives. */
	for (size_t i = 0; i < c->n_sigactions; i++) {
		const Krg__Ckpt__SigAction *sa = c->sigactions[i];
		if (sa->signo < 1 || sa->signo > 64 || sa->signo == SIGKILL || sa->signo == SIGSTOP)
			continue;
		struct ksigaction ka = { sa->handler, sa->flags, sa->restorer, sa->mask };
		if ((r = ckpt_poke(t->pid, t->scratch, &ka, sizeof(ka))) < 0)
			return ckpt_fail(err, r, "restoring signal actions: writing to the new process: %s", strerror(-r));
		ret = ckpt_syscall(t, err, SYS_rt_sigaction, sa->signo, (long)t->scratch, 0, 8, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring the action of signal %u: %s", sa->signo, strerror((int)-ret));
	}
	if (c->cwd_deleted) {
		if ((r = restore_deleted_cwd(t, c, err)) < 0)
			return r;
	} else {
		size_t cl = strlen(c->cwd) + 1;
		if (cl > t->scratch_len || (r = ckpt_poke(t->pid, t->scratch, c->cwd, cl)) < 0)
			return ckpt_fail(err, ENAMETOOLONG, "restoring the cwd %s: cannot pass it", c->cwd);
		ret = ckpt_syscall(t, err, SYS_chdir, (long)t->scratch, 0, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring the cwd %s: %s", c->cwd, strerror((int)-ret));
	}
	ret = ckpt_syscall(t, err, SYS_umask, c->umask & 0777, 0, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "restoring the umask");
	if (c->has_personality) {
		ret = ckpt_syscall(t, err, SYS_personality, c->personality, 0, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring the personality %#x: %s", c->personality, strerror((int)-ret));
	}
	for (size_t i = 0; i < c->n_rlimits; i++) {
		struct rlimit rl = { c->rlimits[i]->cur, c->rlimits[i]->max };
		if (c->rlimits[i]->resource < RLIM_NLIMITS && prlimit(t->pid, (enum __rlimit_resource)c->rlimits[i]->resource, &rl, NULL) < 0)
			return ckpt_fail(err, errno, "restoring rlimit %u (%llu/%llu): %s", c->rlimits[i]->resource,
					 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, strerror(errno));
	}
	if (c->leader_exited) {
		/* The leader only lives until its threads are back (then it
		 * exits): of its own it keeps just its name. */
		char comm[16];
		snprintf(comm, sizeof(comm), "%s", c->comm);
		if (ckpt_poke(t->pid, t->scratch, comm, sizeof(comm)) == 0)
			ckpt_syscall(t, err, SYS_prctl, PR_SET_NAME, (long)t->scratch, 0, 0, 0, 0);
		return err->msg[0] ? -EIO : 0;
	}
	return ckpt_core_restore_thread(t, c->threads[0], c->comm, err);
}

/* Real, effective, saved, fs uids (ids[0]) and gids (ids[1]) and the
 * supplementary groups of process pid, from /proc/PID/status. */
static int read_status_ids(pid_t pid, unsigned ids[2][4], uint32_t *groups, size_t *ng, size_t max)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int got = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %u %u %u %u", &ids[0][0], &ids[0][1], &ids[0][2], &ids[0][3]) == 4)
			got |= 1;
		else if (sscanf(line, "Gid: %u %u %u %u", &ids[1][0], &ids[1][1], &ids[1][2], &ids[1][3]) == 4)
			got |= 2;
		else if (!strncmp(line, "Groups:", 7)) {
			got |= 4;
			char *p = line + 7, *e;
			for (unsigned long v; *ng < max && (v = strtoul(p, &e, 10), e != p); p = e)
				groups[(*ng)++] = (uint32_t)v;
		}
	}
	fclose(f);
	return got == 7 ? 0 : -EIO;
}

int ckpt_core_restore_creds(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, struct ckpt_error *err)
{
	if (c->n_uids != 3 || c->n_gids != 3)
		return ckpt_fail(err, EBADMSG, "image has no credentials");
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	long ret;
	/* In place (restore.c, seize_into): the process's own ids are the
	 * ones to compare with, and its groups cannot change (no privilege):
	 * they must be the image's already. */
	if (t->unpriv) {
		unsigned ids[2][4];
		uint32_t groups[256];
		size_t ng = 0;
		if (read_status_ids(t->pid, ids, groups, &ng, 256) < 0)
			return ckpt_fail(err, EIO, "reading the credentials of process %d", t->pid);
		ru = ids[0][0], eu = ids[0][1], su = ids[0][2];
		rg = ids[1][0], eg = ids[1][1], sg = ids[1][2];
		bool same = ng == c->n_groups;
		for (size_t i = 0; same && i < ng; i++) {
			bool found = false;
			for (size_t k = 0; k < c->n_groups && !found; k++)
				found = c->groups[k] == groups[i];
			same = found;
		}
		if (!same)
			return ckpt_fail(err, EPERM, "process %d: its supplementary groups are not the image's, and it may not change them",
					 t->pid);
		goto ids;
	}
	/* Supplementary groups as they were (checked against the image
	 * directory's owner, restore.c), none of krg's. */
	size_t ng = c->n_groups;
	if (ng * sizeof(gid_t) > t->scratch_len)
		return ckpt_fail(err, E2BIG, "image: %zu supplementary groups, more than krg passes", ng);
	gid_t *gl = calloc(ng + 1, sizeof(gid_t));
	if (!gl)
		abort();
	for (size_t i = 0; i < ng; i++)
		gl[i] = (gid_t)c->groups[i];
	int pr = ckpt_poke(t->pid, t->scratch, gl, ng * sizeof(gid_t));
	free(gl);
	if (pr < 0)
		return ckpt_fail(err, EIO, "passing the supplementary groups");
	ret = ckpt_syscall(t, err, SYS_setgroups, (long)ng, (long)t->scratch, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "restoring %zu supplementary groups: %s", ng, strerror((int)-ret));
ids:
	if (c->gids[0] != rg || c->gids[1] != eg || c->gids[2] != sg) {
		ret = ckpt_syscall(t, err, SYS_setresgid, c->gids[0], c->gids[1], c->gids[2], 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring gids %u/%u/%u: %s", c->gids[0], c->gids[1], c->gids[2], strerror((int)-ret));
	}
	/* setfsuid/setfsgid answer the previous value, never an error: the
	 * value asked back (-1 changes nothing) says whether the kernel took
	 * it (it refuses one that is none of the process's ids without
	 * CAP_SETUID/SETGID, so an image cannot gain one this way). Order: setresgid resets the
	 * fsgid and setresuid the fsuid; and once the uids are not root's any
	 * more, the gids cannot change. */
	if (c->has_fsgid) {
		ckpt_syscall(t, err, SYS_setfsgid, c->fsgid, 0, 0, 0, 0, 0);
		if (!err->msg[0] && ckpt_syscall(t, err, SYS_setfsgid, -1, 0, 0, 0, 0, 0) != (long)c->fsgid)
			return ckpt_fail(err, EPERM, "restoring the file system gid %u: refused", c->fsgid);
	}
	if (c->uids[0] != ru || c->uids[1] != eu || c->uids[2] != su) {
		ret = ckpt_syscall(t, err, SYS_setresuid, c->uids[0], c->uids[1], c->uids[2], 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring uids %u/%u/%u: %s", c->uids[0], c->uids[1], c->uids[2], strerror((int)-ret));
	}
	if (c->has_fsuid) {
		ckpt_syscall(t, err, SYS_setfsuid, c->fsuid, 0, 0, 0, 0, 0);
		if (!err->msg[0] && ckpt_syscall(t, err, SYS_setfsuid, -1, 0, 0, 0, 0, 0) != (long)c->fsuid)
			return ckpt_fail(err, EPERM, "restoring the file system uid %u: refused", c->fsuid);
	}
	return err->msg[0] ? -EIO : 0;
}

int ckpt_core_restore_regs(pid_t pid, const Krg__Ckpt__ThreadCore *tc, struct ckpt_error *err)
{
	struct iovec iov = { tc->xsave.data, tc->xsave.len };
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return ckpt_fail(err, errno, "restoring FPU/SSE/AVX state (%zu bytes): %s", tc->xsave.len, strerror(errno));
	struct user_regs_struct r;
	ckpt_regs_from_pb(tc->regs, &r);
	ckpt_regs_fixup_restart(&r);
	iov = (struct iovec){ &r, sizeof(r) };
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "restoring registers (rip %#llx): %s", (unsigned long long)r.rip, strerror(errno));
	uint64_t mask = tc->sigmask;
	if (ptrace(PTRACE_SETSIGMASK, pid, (void *)sizeof(mask), &mask) < 0)
		return ckpt_fail(err, errno, "restoring the signal mask: %s", strerror(errno));
	return 0;
}
