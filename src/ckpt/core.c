/* core.c — the task itself: registers (general and XSAVE), signal
 * dispositions and mask, sigaltstack, rseq, robust list, cwd, umask,
 * rlimits, personality, credentials (core-<pid>.img). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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
		free(c->threads[i]);
	}
	free(c->threads);
	for (size_t i = 0; i < c->n_sigactions; i++)
		free(c->sigactions[i]);
	free(c->sigactions);
	for (size_t i = 0; i < c->n_rlimits; i++)
		free(c->rlimits[i]);
	free(c->rlimits);
	free(c->uids);
	free(c->gids);
	free(c->comm);
	free(c->cwd);
	free(c);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		abort();
	return p;
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
	}

	/* Asked inside the leader (nothing outside tells these). */
	Krg__Ckpt__ThreadCore *lead = c->threads[0];
	long ret = ckpt_syscall(t, err, SYS_prctl, PR_GET_TID_ADDRESS, (long)t->scratch, 0, 0, 0, 0);
	uint64_t tidaddr;
	if (ret == 0 && ckpt_peek(pid, t->scratch, &tidaddr, sizeof(tidaddr)) == 0) {
		lead->has_clear_child_tid = true;
		lead->clear_child_tid = tidaddr;
	} else if (err->msg[0]) {
		r = -EIO;
		goto fail;
	}
	ret = ckpt_syscall(t, err, SYS_sigaltstack, 0, (long)t->scratch, 0, 0, 0, 0);
	stack_t ss;
	if (ret == 0 && ckpt_peek(pid, t->scratch, &ss, sizeof(ss)) == 0) {
		lead->has_altstack_sp = lead->has_altstack_size = lead->has_altstack_flags = true;
		lead->altstack_sp = (uint64_t)ss.ss_sp;
		lead->altstack_size = ss.ss_size;
		lead->altstack_flags = (uint32_t)ss.ss_flags;
	}
	c->sigactions = xcalloc(64, sizeof(*c->sigactions));
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct ksigaction ka;
		ret = ckpt_syscall(t, err, SYS_rt_sigaction, sig, 0, (long)t->scratch, 8, 0, 0);
		if (ret < 0 || (r = ckpt_peek(pid, t->scratch, &ka, sizeof(ka))) < 0) {
			r = ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "process %d: reading the action of signal %d failed", pid, sig);
			goto fail;
		}
		Krg__Ckpt__SigAction *sa = xcalloc(1, sizeof(*sa));
		krg__ckpt__sig_action__init(sa);
		sa->signo = (uint32_t)sig;
		sa->handler = ka.handler, sa->flags = ka.flags, sa->restorer = ka.restorer, sa->mask = ka.mask;
		c->sigactions[c->n_sigactions++] = sa;
	}
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

	/* From /proc and from outside. */
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (ckpt_read_file(path, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	c->comm = ckpt_strdup(buf);
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	ssize_t l = readlink(path, buf, sizeof(buf) - 1);
	if (l < 0) {
		r = ckpt_fail(err, errno, "process %d: reading its cwd: %s", pid, strerror(errno));
		goto fail;
	}
	buf[l] = 0;
	c->cwd = ckpt_strdup(buf);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((r = ckpt_read_file(path, buf, sizeof(buf))) < 0) {
		r = ckpt_fail(err, r, "process %d: reading its status: %s", pid, strerror(-r));
		goto fail;
	}
	const char *f;
	c->umask = (f = status_field(buf, "Umask")) ? (uint32_t)strtoul(f, NULL, 8) : 022;
	if ((f = status_field(buf, "PPid")))
		c->has_ppid = true, c->ppid = atoi(f);
	c->uids = xcalloc(3, sizeof(uint32_t));
	c->gids = xcalloc(3, sizeof(uint32_t));
	if ((f = status_field(buf, "Uid")) && sscanf(f, "%u %u %u", &c->uids[0], &c->uids[1], &c->uids[2]) == 3)
		c->n_uids = 3;
	if ((f = status_field(buf, "Gid")) && sscanf(f, "%u %u %u", &c->gids[0], &c->gids[1], &c->gids[2]) == 3)
		c->n_gids = 3;
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
	*out = c;
	return 0;
fail:
	ckpt_core_free(c);
	return r;
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
	const Krg__Ckpt__ThreadCore *lead = c->threads[0];
	stack_t ss = { .ss_flags = SS_DISABLE };
	if (lead->has_altstack_sp && !(lead->altstack_flags & SS_DISABLE))
		ss = (stack_t){ .ss_sp = (void *)lead->altstack_sp, .ss_size = lead->altstack_size, .ss_flags = (int)(lead->altstack_flags & ~SS_ONSTACK) };
	if ((r = ckpt_poke(t->pid, t->scratch, &ss, sizeof(ss))) < 0)
		return ckpt_fail(err, r, "restoring sigaltstack: %s", strerror(-r));
	ret = ckpt_syscall(t, err, SYS_sigaltstack, (long)t->scratch, 0, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "restoring sigaltstack: %s", strerror((int)-ret));

	size_t cl = strlen(c->cwd) + 1;
	if (cl > t->scratch_len || (r = ckpt_poke(t->pid, t->scratch, c->cwd, cl)) < 0)
		return ckpt_fail(err, ENAMETOOLONG, "restoring the cwd %s: cannot pass it", c->cwd);
	ret = ckpt_syscall(t, err, SYS_chdir, (long)t->scratch, 0, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "restoring the cwd %s: %s", c->cwd, strerror((int)-ret));
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
	if (lead->has_robust_list) {
		ret = ckpt_syscall(t, err, SYS_set_robust_list, (long)lead->robust_list, (long)lead->robust_len, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring the robust futex list: %s", strerror((int)-ret));
	}
	if (lead->has_clear_child_tid) {
		ret = ckpt_syscall(t, err, SYS_set_tid_address, (long)lead->clear_child_tid, 0, 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring clear_child_tid");
	}
	if (lead->has_rseq_addr && lead->rseq_addr) {
		ret = ckpt_syscall(t, err, SYS_rseq, (long)lead->rseq_addr, lead->rseq_len, 0, lead->rseq_sig, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "registering rseq at %#llx: %s", (unsigned long long)lead->rseq_addr, strerror((int)-ret));
	}
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", c->comm);
	if ((r = ckpt_poke(t->pid, t->scratch, comm, sizeof(comm))) == 0)
		ckpt_syscall(t, err, SYS_prctl, PR_SET_NAME, (long)t->scratch, 0, 0, 0, 0);
	return err->msg[0] ? -EIO : 0;
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
	if (c->gids[0] != rg || c->gids[1] != eg || c->gids[2] != sg) {
		ret = ckpt_syscall(t, err, SYS_setgroups, 0, 0, 0, 0, 0, 0);
		if (ret >= 0)
			ret = ckpt_syscall(t, err, SYS_setresgid, c->gids[0], c->gids[1], c->gids[2], 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring gids %u/%u/%u: %s", c->gids[0], c->gids[1], c->gids[2], strerror((int)-ret));
	}
	if (c->uids[0] != ru || c->uids[1] != eu || c->uids[2] != su) {
		ret = ckpt_syscall(t, err, SYS_setresuid, c->uids[0], c->uids[1], c->uids[2], 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "restoring uids %u/%u/%u: %s", c->uids[0], c->uids[1], c->uids[2], strerror((int)-ret));
	}
	return 0;
}

/* Kernel-internal restart codes a syscall interrupted by our stop returns. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

int ckpt_core_restore_regs(pid_t pid, const Krg__Ckpt__ThreadCore *tc, struct ckpt_error *err)
{
	struct iovec iov = { tc->xsave.data, tc->xsave.len };
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return ckpt_fail(err, errno, "restoring FPU/SSE/AVX state (%zu bytes): %s", tc->xsave.len, strerror(errno));
	struct user_regs_struct r;
	ckpt_regs_from_pb(tc->regs, &r);
	/* Frozen inside a syscall: the kernel would have restarted it on the way
	 * out; here nobody will, so re-run the `syscall` instruction. */
	if ((int64_t)r.orig_rax >= 0) {
		int64_t ax = (int64_t)r.rax;
		if (ax == -ERESTARTSYS || ax == -ERESTARTNOINTR || ax == -ERESTARTNOHAND) {
			r.rax = r.orig_rax;
			r.rip -= 2;
		} else if (ax == -ERESTART_RESTARTBLOCK) {
			r.rax = SYS_restart_syscall;
			r.rip -= 2;
		}
	}
	r.orig_rax = (uint64_t)-1;
	iov = (struct iovec){ &r, sizeof(r) };
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "restoring registers (rip %#llx): %s", (unsigned long long)r.rip, strerror(errno));
	uint64_t mask = tc->sigmask;
	if (ptrace(PTRACE_SETSIGMASK, pid, (void *)sizeof(mask), &mask) < 0)
		return ckpt_fail(err, errno, "restoring the signal mask: %s", strerror(errno));
	return 0;
}
