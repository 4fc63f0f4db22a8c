/* restore.c — a restart: verify the whole image first (nothing is
 * started from a damaged one), fork a child that stops itself with a
 * helper page (a `syscall` instruction and scratch memory) at an address
 * free in the image, rebuild the process from outside by injected
 * syscalls, put registers back, let go. On any failure the child is
 * killed: nothing half-restored is left running. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "ipc/intercept.h"
#include "lib/fault.h"
#include "lib/macro.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

#define HELPER_PAGES 3  /* code, then two scratch pages */

/* The child: map the helper, then stop for the parent. Only
 * async-signal-safe calls: we are a fork of krg. */
static _Noreturn void child(uint64_t helper, bool own_proc)
{
	/* In a new pid namespace: a /proc of its own, so /proc/<getpid()> and
	 * /proc/self agree inside (a private mount namespace holds it). */
	if (own_proc && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
			 mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0))
		_exit(126);
	void *p = mmap((void *)helper, HELPER_PAGES * CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)helper)
		_exit(127);
	((uint8_t *)p)[0] = 0x0f, ((uint8_t *)p)[1] = 0x05;  /* syscall */
	((uint8_t *)p)[2] = 0xcc;                             /* int3, never reached */
	if (mprotect(p, CKPT_PAGE, PROT_READ | PROT_EXEC) < 0 || ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		_exit(127);
	/* Not raise(): after a raw clone3 libc's idea of our tid is krg's. */
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	_exit(127);  /* only if the parent let us go without restoring */
}

/* struct clone_args of clone3 (CLONE_ARGS_SIZE_VER2). */
struct kclone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* Is pid a dead process waiting to be reaped (or reaped by now)? After
 * checkpoint --kill the orphans of the application wait for init, which
 * may take a second. */
static bool pid_dying(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return true;
	const char *p = strrchr(buf, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

#define PID_WAIT_STEPS 250  /* of 20 ms */
#define K_ERESTARTNOINTR 513
#define FORK_RETRIES 100

/* A process being rebuilt takes no signal until its own mask is restored
 * with its registers (ckpt_core_restore_regs): a signal pending there (a
 * child it just got stopped, SIGCHLD) makes an injected clone3 fail with
 * -ERESTARTNOINTR, which a real fork restarts but an injection returns,
 * and the child would come out of the fallback with another pid (a ghost
 * under another pid: waitpid() of the real one says ECHILD). */
static void hold_signals(pid_t pid)
{
	uint64_t all = ~0ULL;
	(void)ptrace(PTRACE_SETSIGMASK, pid, (void *)sizeof(all), &all);
}

/* clone3 injected into t with its arguments at args_at, made again while
 * it returns -ERESTARTNOINTR (a signal came in: the same fork again), up
 * to FORK_RETRIES times. The syscall's return; the caller checks
 * err->msg (the injection itself failed) first. */
static long inject_clone3(struct ckpt_tracee *t, uint64_t args_at, struct ckpt_error *err)
{
	long ret = -K_ERESTARTNOINTR;
	for (int k = 0; k < FORK_RETRIES && ret == -K_ERESTARTNOINTR && !err->msg[0]; k++)
		ret = ckpt_syscall(t, err, SYS_clone3, (long)args_at, sizeof(struct kclone_args), 0, 0, 0, 0);
	return ret;
}

/* The restore child, with the image's pid if it is free and we may choose
 * (clone3 set_tid: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in our pid
 * namespace); else a plain fork. */
static pid_t fork_as(pid_t want, bool *exact)
{
	pid_t tid = want;
	struct kclone_args a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };
	long r = syscall(SYS_clone3, &a, sizeof(a));
	for (int wait = 0; wait < PID_WAIT_STEPS && r < 0 && errno == EEXIST && pid_dying(want); wait++) {
		usleep(20000);
		r = syscall(SYS_clone3, &a, sizeof(a));
	}
	if (r >= 0) {
		*exact = true;
		return (pid_t)r;
	}
	*exact = false;
	return fork();
}

/* libc keeps each thread's tid in its thread descriptor, and the kernel's
 * clear_child_tid points at that field (glibc: &pthread->tid). If the word
 * there still holds the old tid, it is that field: put the new tid in, or
 * pthread_kill and friends would aim at the old one. */
static void fix_libc_tid(pid_t pid, const Krg__Ckpt__ThreadCore *tc, pid_t now)
{
	int32_t v;
	if (now == tc->tid || !tc->has_clear_child_tid || !tc->clear_child_tid)
		return;
	if (ckpt_peek(pid, tc->clear_child_tid, &v, sizeof(v)) == 0 && v == tc->tid)
		ckpt_poke(pid, tc->clear_child_tid, &now, sizeof(now));
}

/* The tid, in our pid namespace, of the thread of `lead` whose tid in its
 * innermost namespace is `inner` (the last field of NSpid); 0 if none. */
static pid_t outer_tid(pid_t lead, pid_t inner)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", lead);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char sp[300], line[256];
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/status", lead, e->d_name);
		FILE *f = fopen(sp, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "NSpid:", 6)) {
				char *last = strrchr(line, '\t');
				if (last && atoi(last + 1) == inner)
					found = atoi(e->d_name);
				break;
			}
		fclose(f);
	}
	closedir(d);
	return found;
}

/* The pid namespace's cursor: its next fork or clone takes the first
 * free pid after `last`. Best effort (root only). */
static void steer_cursor(pid_t last)
{
	char v[16];
	int n = snprintf(v, sizeof(v), "%d", (int)last);
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, v, (size_t)n) != n) {
			/* not ours to steer: the thread gets another tid */
		}
		close(fd);
	}
}

/* A thread of the image: clone3 injected into the leader (with the old
 * tid if we can get it, else clone3 without), then it stops at once: it is
 * traced from birth (PTRACE_O_TRACECLONE) and starts with a SIGSTOP. Its
 * stack pointer is the top of the helper's scratch; it runs no code of its
 * own before its registers are set. */
static int make_thread(struct ckpt_tracee *lead, const Krg__Ckpt__ThreadCore *tc, bool newns, pid_t *tid_out, pid_t *inner_out, bool *exact,
		       struct ckpt_error *err)
{
	struct kclone_args a = {
		.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS,
		.stack = lead->scratch,
		.stack_size = lead->scratch_len - 256,
		.tls = tc->regs->fs_base,
	};
	if (tc->has_clear_child_tid && tc->clear_child_tid) {
		a.flags |= CLONE_CHILD_CLEARTID;
		a.child_tid = tc->clear_child_tid;
	}
	uint64_t args_at = lead->scratch + lead->scratch_len - 256, tid_at = args_at + sizeof(a);
	int32_t want = tc->tid;
	long ret = -EINVAL;
	int r;
	hold_signals(lead->pid);
	for (int attempt = 0; attempt < (newns ? 1 : 2); attempt++) {
		a.set_tid = attempt == 0 ? tid_at : 0;
		a.set_tid_size = attempt == 0 ? 1 : 0;
		if ((r = ckpt_poke(lead->pid, args_at, &a, sizeof(a))) < 0 || (r = ckpt_poke(lead->pid, tid_at, &want, sizeof(want))) < 0)
			return ckpt_fail(err, r, "thread %d: writing clone3 arguments: %s", tc->tid, strerror(-r));
		/* A process restored in place runs as its user, who may not
		 * choose tids (set_tid): the pid namespace's cursor, just below
		 * the old tid, gives it unless another fork takes it first. */
		if (attempt == 1 && lead->unpriv && want > 1)
			steer_cursor(want - 1);
		ret = inject_clone3(lead, args_at, err);
		if (err->msg[0])
			return -EIO;
		if (ret > 0)
			break;
	}
	if (ret <= 0)
		return ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "recreating thread %d: clone3: %s", tc->tid, strerror(ret < 0 ? (int)-ret : EIO));
	/* clone3 answers in the process's namespace; we trace in ours. */
	pid_t tid = newns ? outer_tid(lead->pid, (pid_t)ret) : (pid_t)ret;
	*inner_out = (pid_t)ret;
	*exact = ret == tc->tid;
	if (!tid)
		return ckpt_fail(err, ESRCH, "recreated thread %d: not found in /proc/%d/task", tc->tid, lead->pid);
	*tid_out = tid;
	int st;
	if (waitpid(tid, &st, __WALL) < 0 || !WIFSTOPPED(st))
		return ckpt_fail(err, ECHILD, "recreated thread %d (now %d) did not stop (status %#x)", tc->tid, tid, st);
	return 0;
}

static int inj_errno_r(long ret)
{
	return ret < -4095 ? EIO : (int)-ret;
}

struct rseq_conf {
	uint64_t ptr;
	uint32_t size, sig, flags, pad;
};

/* One process of the restore. */
struct rproc {
	const struct ckpt_proc_image *img;
	pid_t pid;              /* in our pid namespace; 0: not made (yet) */
	pid_t inner;            /* as the application sees it */
	bool dead;              /* a zombie made, or reaped on failure */
	bool released;          /* let go already (a job-control stop, restore_stop) */
	struct ckpt_tracee t;
	pid_t *tids, *inner_tids;  /* live: every thread, as we and as it see them; [0] the leader */
	size_t ntids;
	size_t toff;            /* tids[i + toff] is core->threads[i]: 1 when the leader had exited (not in threads) */
	size_t live;            /* index among the live processes (app fds) */
	struct ckpt_lazy *lazy; /* its memory comes in lazily (lazy.c); NULL: copied before it runs */
	bool mm_done;           /* its memory is restored (before its children were forked) */
	const struct rproc *from;  /* forked from this process once its memory was restored: holds its pages */
	bool in_place;          /* an existing process, seized (ckpt_restore_opts.into) */
};

/* The pid, in our namespace, of the child of `parent` whose pid in its
 * innermost namespace is `inner`; 0 if none. */
static pid_t outer_child(pid_t parent, pid_t inner)
{
	char path[96], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", parent, parent);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		pid_t c = atoi(tok);
		if (c > 0 && outer_tid(c, inner) == c)
			return c;
	}
	return 0;
}

/* A child of the process `parent` (still a restore shell: only the
 * helper is its own), forked by an injected clone3 with the image's pid.
 * Traced from birth (PTRACE_O_TRACEFORK), it stops before running
 * anything. */
static int make_child(struct ckpt_tracee *parent, pid_t want, bool newns, pid_t *pid_out, pid_t *inner_out, bool *exact, struct ckpt_error *err)
{
	struct kclone_args a = { .exit_signal = SIGCHLD };
	uint64_t args_at = parent->scratch + parent->scratch_len - 256, tid_at = args_at + sizeof(a);
	long ret = -EINVAL;
	int r;
	hold_signals(parent->pid);
	for (int attempt = 0; attempt < (newns ? 1 : 2); attempt++) {
		a.set_tid = attempt == 0 ? tid_at : 0;
		a.set_tid_size = attempt == 0 ? 1 : 0;
		if ((r = ckpt_poke(parent->pid, args_at, &a, sizeof(a))) < 0 || (r = ckpt_poke(parent->pid, tid_at, &want, sizeof(want))) < 0)
			return ckpt_fail(err, r, "process %d: writing clone3 arguments: %s", want, strerror(-r));
		for (int wait = 0; wait < PID_WAIT_STEPS; wait++) {
			ret = inject_clone3(parent, args_at, err);
			if (err->msg[0])
				return -EIO;
			if (ret != -EEXIST || attempt || newns || !pid_dying(want))
				break;
			usleep(20000);
		}
		if (ret > 0)
			break;
	}
	if (ret <= 0)
		return ckpt_fail(err, ret < 0 ? (int)-ret : EIO, "recreating process %d: clone3: %s", want, strerror(ret < 0 ? (int)-ret : EIO));
	pid_t pid = newns ? outer_child(parent->pid, (pid_t)ret) : (pid_t)ret;
	if (!pid)
		return ckpt_fail(err, ESRCH, "recreated process %d: not found among the children of %d", want, parent->pid);
	*inner_out = (pid_t)ret;
	*exact = ret == want;
	*pid_out = pid;
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st))
		return ckpt_fail(err, ECHILD, "recreated process %d (now %d) did not stop (status %#x)", want, pid, st);
	return 0;
}

/* A child of the root that is not in the image (ckpt_extra_child): a
 * shell forked like the image's children, then exec'd. Its exec is
 * traced with PTRACE_O_TRACEEXEC (no stray SIGTRAP after it) and it is let
 * go at the exec stop, so it runs its own program while the root is
 * still being rebuilt. Every signal is blocked before the exec. */
static int make_extra(struct ckpt_tracee *root, bool newns, struct ckpt_extra_child *x, struct ckpt_error *err)
{
	pid_t pid, inner;
	bool exact = false;
	int r = make_child(root, x->pid, newns, &pid, &inner, &exact, err);
	if (r < 0)
		return r;
	x->got = pid;
	size_t argc = 0, slen = 0;
	while (x->argv[argc])
		slen += strlen(x->argv[argc++]) + 1;
	size_t ptrs = (argc + 2) * sizeof(uint64_t); /* argv, its NULL, an empty envp */
	if (!argc || ptrs + slen > root->scratch_len - 256)
		return ckpt_fail(err, E2BIG, "extra child %d: arguments too long", x->pid);
	_cleanup_free_ uint8_t *buf = calloc(1, ptrs + slen);
	if (!buf)
		return ckpt_fail(err, ENOMEM, "out of memory");
	uint64_t *p = (uint64_t *)buf;
	size_t off = ptrs;
	for (size_t i = 0; i < argc; i++) {
		p[i] = root->scratch + off;
		memcpy(buf + off, x->argv[i], strlen(x->argv[i]) + 1);
		off += strlen(x->argv[i]) + 1;
	}
	uint64_t all = ~0ULL;
	if ((r = ckpt_poke(pid, root->scratch, buf, ptrs + slen)) < 0)
		return ckpt_fail(err, -r, "extra child %d: writing its arguments: %s", x->pid, strerror(-r));
	if (ptrace(PTRACE_SETSIGMASK, pid, (void *)sizeof(all), &all) < 0 ||
	    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC)) < 0)
		return ckpt_fail(err, errno, "extra child %d: ptrace: %s", x->pid, strerror(errno));
	struct user_regs_struct regs;
	struct iovec iov = { &regs, sizeof(regs) };
	if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "extra child %d: registers: %s", x->pid, strerror(errno));
	regs.rip = root->code, regs.rax = SYS_execve, regs.orig_rax = (uint64_t)-1;
	regs.rdi = p[0], regs.rsi = root->scratch, regs.rdx = root->scratch + (argc + 1) * sizeof(uint64_t);
	/* krg's own exec: past the IPC filter's exec check (whose listener
	 * krgd gets only once this restore is done). */
	regs.r10 = KRG_INTERCEPT_EXEC_PASS;
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0 || ptrace(PTRACE_CONT, pid, 0, 0) < 0)
		return ckpt_fail(err, errno, "extra child %d: %s", x->pid, strerror(errno));
	/* Next stop: the exec, or the int3 after a failed execve. */
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st))
		return ckpt_fail(err, ECHILD, "extra child %d did not stop after exec (status %#x)", x->pid, st);
	if (st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0)
			regs.rax = (uint64_t)-EIO;
		long e = (long)regs.rax;
		return ckpt_fail(err, e < 0 && e > -4096 ? (int)-e : EIO, "extra child %d: exec of %s: %s", x->pid, x->argv[0],
				 strerror(e < 0 && e > -4096 ? (int)-e : EIO));
	}
	if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0)
		return ckpt_fail(err, errno, "extra child %d: letting it go: %s", x->pid, strerror(errno));
	return 0;
}

/* The file system credentials of the tracee: the image's effective user
 * and group, with no supplementary group but the user's own ones (on), or
 * root again (off). fsuid 0 -> other drops CAP_DAC_OVERRIDE & co. from the
 * effective set, and back to 0 raises them again. */
static int fs_creds(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, bool on, struct ckpt_error *err)
{
	/* In place: the process is its user already, and may not change its groups. */
	if (c->n_uids != 3 || c->n_gids != 3 || t->unpriv)
		return 0;
	/* The kernel checks file access with the fs ids, which setfsuid /
	 * setfsgid may have moved off the effective ones. */
	uint32_t fsuid = c->has_fsuid ? c->fsuid : c->uids[1], fsgid = c->has_fsgid ? c->fsgid : c->gids[1];
	if (fsuid == 0 && fsgid == 0)
		return 0;
	if (!on) {
		ckpt_syscall(t, err, SYS_setfsuid, 0, 0, 0, 0, 0, 0);
		ckpt_syscall(t, err, SYS_setfsgid, 0, 0, 0, 0, 0, 0);
		return err->msg[0] ? -EIO : 0;
	}
	gid_t groups[256];
	int ng = (int)(sizeof(groups) / sizeof(groups[0]));
	struct passwd *pw = getpwuid(fsuid);
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	if ((size_t)ng * sizeof(gid_t) > t->scratch_len || ckpt_poke(t->pid, t->scratch, groups, (size_t)ng * sizeof(gid_t)) < 0)
		ng = 0;
	long r1 = ckpt_syscall(t, err, SYS_setgroups, ng, (long)t->scratch, 0, 0, 0, 0);
	ckpt_syscall(t, err, SYS_setfsgid, fsgid, 0, 0, 0, 0, 0);
	ckpt_syscall(t, err, SYS_setfsuid, fsuid, 0, 0, 0, 0, 0);
	long now = ckpt_syscall(t, err, SYS_setfsuid, -1, 0, 0, 0, 0, 0);
	if (r1 < 0 || now != (long)fsuid)
		return ckpt_fail(err, EPERM, "taking the file system identity of uid %u: %s", fsuid, r1 < 0 ? strerror(inj_errno_r(r1)) : "refused");
	return 0;
}

/* The address space of one process. A process forked from one whose
 * memory was restored already keeps what it shares with it copy-on-write
 * (ckpt_mm_restore), as it did when it was saved. */
static int rebuild_mm(struct rproc *p, struct ckpt_app_fds *app, struct ckpt_error *err)
{
	struct ckpt_tracee *t = &p->t;
	const struct ckpt_proc_image *img = p->img;
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
	const struct ckpt_mm_parent from = { p->from ? p->from->img->mm : NULL, p->from ? &p->from->img->pages : NULL };
	int r = ckpt_mm_restore(t, img->mm, &img->pages, &app->shm, p->inner, p->lazy, p->from ? &from : NULL, err);
	p->mm_done = r == 0;
	return r;
}

/* Everything of one process but its registers and the helper, which go
 * last (finish), once every process of the application is rebuilt. */
static int rebuild(struct rproc *p, struct ckpt_app_fds *app, bool newns, struct ckpt_error *err)
{
	struct ckpt_tracee *t = &p->t;
	const struct ckpt_proc_image *img = p->img;
	int r;
	if (!p->mm_done && (r = rebuild_mm(p, app, err)) < 0)
		return r;
	if ((r = ckpt_mm_restore_fields(t, img->mm, err)) < 0)
		return r;
	/* Paths are opened (and snapshots written) as the image's user would:
	 * the restorer is root, the image is the user's to forge. */
	if ((r = fs_creds(t, img->core, true, err)) < 0)
		return r;
	if ((r = ckpt_files_restore(t, app, p->live, err)) < 0)
		return r;
	if ((r = fs_creds(t, img->core, false, err)) < 0)
		return r;
	if ((r = ckpt_core_restore_task(t, img->core, err)) < 0)
		return r;
	if ((r = ckpt_core_restore_creds(t, img->core, err)) < 0)
		return r;
	/* Every process is forked by now (ckpt_restore_opts forks them all
	 * before rebuilding any), so MADV_DONTFORK and MADV_WIPEONFORK no
	 * longer change what the children inherit; and the credentials and
	 * rlimits are the process's own, for mlock. */
	if ((r = ckpt_mm_restore_advice(t, img->mm, err)) < 0)
		return r;
	/* From here nothing may be delivered until the registers are back:
	 * block everything (new threads inherit it); the real masks come last. */
	uint64_t all = ~0ULL;
	if (ptrace(PTRACE_SETSIGMASK, t->pid, (void *)sizeof(all), &all) < 0)
		return ckpt_fail(err, errno, "blocking signals during the restore: %s", strerror(errno));
	/* The other threads, each cloned from the leader (sharing everything
	 * restored so far, credentials included), then its own state. */
	const Krg__Ckpt__Core *c = img->core;
	p->tids[0] = t->pid;
	p->inner_tids[0] = p->inner;
	p->ntids = 1;
	/* A leader that had exited is not in threads: every one is a clone. */
	size_t off = p->toff = c->leader_exited ? 1 : 0;
	for (size_t i = 1 - off; i < c->n_threads; i++) {
		bool ex = false;
		if ((r = make_thread(t, c->threads[i], newns, &p->tids[i + off], &p->inner_tids[i + off], &ex, err)) < 0)
			return r;
		p->ntids = i + off + 1;
		if (newns && !ex)
			return ckpt_fail(err, EEXIST, "thread %d came back as %d in the new pid namespace", c->threads[i]->tid, p->inner_tids[i + off]);
		struct ckpt_tracee tt = { .pid = p->tids[i + off], .code = t->code, .scratch = t->scratch, .scratch_len = t->scratch_len };
		r = ckpt_core_restore_thread(&tt, c->threads[i], c->comm, err);
		t->pending_sigs |= tt.pending_sigs;
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_threads; i++)
		fix_libc_tid(t->pid, c->threads[i], p->inner_tids[i + off]);
	return ckpt_core_restore_signals(t, c, p->inner, p->inner_tids + off, err);
}

/* A leader that had exited exits again, by itself (SYS_exit: this thread
 * only, a zombie thread until the group ends, as pthread_exit left it):
 * stopped at the syscall's entry, then let go. */
static int leader_exit(struct rproc *p, struct ckpt_error *err)
{
	struct user_regs_struct regs;
	struct iovec iov = { &regs, sizeof(regs) };
	pid_t pid = p->tids[0];
	if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0)
		return ckpt_fail(err, errno, "process %d: the leader's registers: %s", p->img->info->pid, strerror(errno));
	regs.rip = p->t.code, regs.rax = SYS_exit, regs.orig_rax = (uint64_t)-1, regs.rdi = 0;
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0 || ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0)
		return ckpt_fail(err, errno, "process %d: making its leader exit: %s", p->img->info->pid, strerror(errno));
	for (;;) {
		int st;
		if (waitpid(pid, &st, __WALL) < 0)
			return ckpt_fail(err, errno, "process %d: waiting for its leader: %s", p->img->info->pid, strerror(errno));
		if (WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80))
			break;
		if (!WIFSTOPPED(st) || ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0)
			return ckpt_fail(err, EIO, "process %d: its leader did not reach its exit (status %#x)", p->img->info->pid, st);
	}
	if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0)
		return ckpt_fail(err, errno, "process %d: letting its leader exit: %s", p->img->info->pid, strerror(errno));
	/* Gone from the task's point of view before anything else runs. */
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", p->pid, pid);
	for (int i = 0; i < 5000; i++) {
		const char *q;
		if (krg_read_small(path, buf, sizeof(buf)) < 0 || ((q = strrchr(buf, ')')) && (q[2] == 'Z' || q[2] == 'X')))
			return 0;
		usleep(1000);
	}
	return ckpt_fail(err, ETIMEDOUT, "process %d: its leader did not exit", p->img->info->pid);
}

static int finish(struct rproc *p, struct ckpt_error *err)
{
	int r;
	/* The helper goes last; its syscall returns into the exit stop, so
	 * nothing executes from the unmapped page. With an exited leader, the
	 * leader exits first and a thread unmaps it. */
	struct ckpt_tracee t = p->t;
	if (p->toff) {
		if ((r = leader_exit(p, err)) < 0)
			return r;
		t.pid = p->tids[1];
	}
	long ret = ckpt_syscall(&t, err, SYS_munmap, (long)p->t.code, HELPER_PAGES * CKPT_PAGE, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: unmapping the helper page: %s", p->img->info->pid, strerror((int)-ret));
	p->t.pending_sigs |= t.pending_sigs;
	for (size_t i = 0; i < p->img->core->n_threads; i++)
		if ((r = ckpt_core_restore_regs(p->tids[i + p->toff], p->img->core->threads[i], err)) < 0)
			return r;
	return 0;
}

/* Image pid -> the restore's process, or NULL. */
static struct rproc *by_pid(struct rproc *ps, size_t n, int32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (ps[i].img->info->pid == pid)
			return &ps[i];
	return NULL;
}

/* Process groups: leaders first, then members. A group that was the
 * root's and led from outside the application stays whatever the root
 * and its children inherited. */
static int restore_groups(struct rproc *ps, size_t n, bool shell_job, struct ckpt_error *err)
{
	const Krg__Ckpt__Process *root = ps[0].img->info;
	/* A shell job's root stays in the caller's group, with its members. */
	bool root_group_outside = shell_job || !by_pid(ps, n, root->pgid);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const Krg__Ckpt__Process *pi = ps[i].img->info;
			if (pi->sid == pi->pid)
				continue;  /* a session leader leads its group already */
			bool leader = pi->pgid == pi->pid;
			if ((pass == 0) != leader || (root_group_outside && pi->pgid == root->pgid))
				continue;
			struct rproc *l = by_pid(ps, n, pi->pgid);
			if (!l)
				return ckpt_fail(err, EBADMSG, "image: process %d: group %d has no leader in the image", pi->pid, pi->pgid);
			long ret = ckpt_syscall(&ps[i].t, err, SYS_setpgid, 0, l->inner, 0, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: joining process group %d: %s", pi->pid, pi->pgid,
						 strerror(ret < -4095 ? EIO : (int)-ret));
		}
	return 0;
}

/* A process stopped by job control at the checkpoint (waitstate.c): it
 * gets its registers, its stop signal is queued and it is let go, so it
 * stops as the kernel stops a process, every thread taking part; then its
 * parent, still a tracee with its helper (children are done before their
 * parents), is made to see what it saw. The stop cannot be run before the
 * others are ready: a stopped process runs nothing. */
static int restore_stop(struct rproc *ps, size_t n, struct rproc *p, struct ckpt_error *err)
{
	const Krg__Ckpt__Process *pi = p->img->info;
	struct rproc *q = p == &ps[0] ? NULL : by_pid(ps, n, pi->ppid);
	if (q && (!q->img->core || q->released))
		q = NULL;
	bool chld_was = q && ckpt_sig_pending(q->pid, SIGCHLD);
	int sig = pi->stop_signal > 0 && pi->stop_signal < 32 ? pi->stop_signal : SIGSTOP;
	int r = finish(p, err);
	if (r < 0)
		return r;
	if (kill(p->pid, sig) < 0)
		return ckpt_fail(err, errno, "process %d: stopping it again: %s", pi->pid, strerror(errno));
	for (size_t k = 0; k < p->ntids; k++)
		if (ptrace(PTRACE_DETACH, p->tids[k], 0, 0) < 0)
			return ckpt_fail(err, errno, "letting thread %d of restored process %d go: %s", p->tids[k], pi->pid, strerror(errno));
	p->released = true;
	/* A stop signal other than SIGSTOP is dropped in an orphaned process
	 * group; the stop itself matters more than which signal it shows. */
	if (ckpt_stop_released(p->pid, pi->pid, sig, err) < 0) {
		if (sig == SIGSTOP)
			return -ETIMEDOUT;
		err->msg[0] = 0;
		kill(p->pid, SIGSTOP);
		if ((r = ckpt_stop_released(p->pid, pi->pid, SIGSTOP, err)) < 0)
			return r;
	}
	if (!q)
		return 0;
	return ckpt_stop_parent_view(&q->t, q->img->info->pid, q->img->core, p->inner, pi->pid, pi->stop_signal, chld_was, err);
}

/* Does process pid have a seccomp filter? */
static bool has_seccomp(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n > 0;
}

/* A restore into an existing process (ckpt_restore_opts.into): seize it,
 * stop it wherever it is (a stop its parent does not see), and give it
 * the helper pages by syscalls injected through its vdso's `syscall`.
 * On failure it is let go untouched. */
static int seize_into(pid_t pid, uint64_t helper, struct ckpt_tracee *t, struct ckpt_error *err)
{
	/* A process of root's may be given what root may give. */
	char path[64], line[256];
	unsigned ruid = 0, euid = 1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *sf = fopen(path, "re");
	while (sf && fgets(line, sizeof(line), sf) && sscanf(line, "Uid: %u %u", &ruid, &euid) != 2)
		;
	if (sf)
		fclose(sf);
	*t = (struct ckpt_tracee){ .pid = pid, .unpriv = euid != 0 };
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK)) < 0)
		return ckpt_fail(err, errno, "process %d: seizing it: %s", pid, strerror(errno));
	int st = 0, r;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 || waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st)) {
		r = ckpt_fail(err, errno ? errno : ESRCH, "process %d: stopping it (status %#x): %s", pid, st, strerror(errno ? errno : ESRCH));
		goto fail;
	}
	/* A signal that stopped it on its way in is given back at the end. */
	if ((st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP && WSTOPSIG(st) < 64)
		t->pending_sigs |= 1ULL << (WSTOPSIG(st) - 1);
	t->code = ckpt_find_syscall_insn(pid);
	if (!t->code) {
		r = ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction", pid);
		goto fail;
	}
	long ret = ckpt_syscall(t, err, SYS_mmap, (long)helper, HELPER_PAGES * CKPT_PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (ret != (long)helper) {
		r = ckpt_fail(err, ret < 0 && ret > -4096 ? (int)-ret : EIO, "process %d: mapping the helper at %#llx: %s", pid,
			      (unsigned long long)helper, strerror(ret < 0 && ret > -4096 ? (int)-ret : EIO));
		goto fail;
	}
	static const uint8_t insn[3] = { 0x0f, 0x05, 0xcc };  /* syscall; int3, never reached */
	if ((r = ckpt_poke(pid, helper, insn, sizeof(insn))) < 0 ||
	    (r = (int)ckpt_syscall(t, err, SYS_mprotect, (long)helper, CKPT_PAGE, PROT_READ | PROT_EXEC, 0, 0, 0)) < 0) {
		ckpt_fail(err, -r, "process %d: the helper page: %s", pid, strerror(-r));
		ckpt_syscall(t, err, SYS_munmap, (long)helper, HELPER_PAGES * CKPT_PAGE, 0, 0, 0, 0);
		goto fail;
	}
	t->code = helper, t->scratch = helper + CKPT_PAGE, t->scratch_len = 2 * CKPT_PAGE;
	return 0;
fail:
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return r < 0 ? r : -EIO;
}

static void kill_all(struct rproc *ps, size_t n, struct ckpt_extra_child *extra, size_t n_extra)
{
	/* Orphans of the half-built tree come to us (not to init, which may
	 * take its time): when we return, none of them is left, not even as
	 * a zombie. */
	int was = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &was, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i].got)
			kill(extra[i].got, SIGKILL);
	for (size_t i = n; i-- > 0;) {
		struct rproc *p = &ps[i];
		if (!p->pid || p->dead)
			continue;
		kill(p->pid, SIGKILL);
		int st;
		/* Traced threads are ours to reap before the leader can be. */
		for (size_t k = p->ntids; k-- > 1;)
			while (waitpid(p->tids[k], &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
				;
		while (waitpid(p->pid, &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
			;
		p->dead = true;
	}
	/* The tracer's wait above left the non-children zombies of their
	 * parents, dead now: reparented to us, reaped here. */
	for (size_t i = 1; i < n; i++)
		if (ps[i].pid)
			for (int k = 0; k < 500 && waitpid(ps[i].pid, &(int){ 0 }, __WALL | WNOHANG) == 0; k++)
				usleep(1000);
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i].got) {
			for (int k = 0; k < 500 && waitpid(extra[i].got, &(int){ 0 }, __WALL | WNOHANG) == 0; k++)
				usleep(1000);
			extra[i].got = 0;
		}
	prctl(PR_SET_CHILD_SUBREAPER, was, 0, 0, 0);
}

/* The restorer runs as root and gives the process the credentials written
 * in the image. Anyone who can write an image directory can write those,
 * so an image never gets more than the directory's owner has: unless root
 * owns the directory, every uid must be the owner's and every gid one of
 * the owner's groups. */
static int check_owner(const char *dir, const Krg__Ckpt__Core *core, struct ckpt_error *err)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return ckpt_fail(err, errno, "image %s: %s", dir, strerror(errno));
	if (st.st_uid == 0)
		return 0;
	for (size_t i = 0; i <= core->n_uids; i++) {
		uint32_t uid = i < core->n_uids ? core->uids[i] : core->has_fsuid ? core->fsuid : st.st_uid;
		if (uid != st.st_uid)
			return ckpt_fail(err, EPERM, "image %s is owned by uid %u but asks for uid %u: refused", dir, (unsigned)st.st_uid, uid);
	}
	struct passwd *pw = getpwuid(st.st_uid);
	gid_t groups[256];
	int ng = (int)(sizeof(groups) / sizeof(groups[0]));
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	for (size_t i = 0; i <= core->n_gids + core->n_groups; i++) {
		uint32_t gid = i < core->n_gids ? core->gids[i] : i < core->n_gids + core->n_groups ? core->groups[i - core->n_gids]
				: core->has_fsgid ? core->fsgid : st.st_gid;
		bool ok = false;
		for (int k = 0; k < ng && !ok; k++)
			ok = groups[k] == (gid_t)gid;
		if (!ok && gid != st.st_gid)
			return ckpt_fail(err, EPERM, "image %s is owned by uid %u, not a member of gid %u: refused", dir, (unsigned)st.st_uid, gid);
	}
	return 0;
}

/* The init of a new pid namespace: SIGCHLD ignored, so every orphan
 * reparented here is reaped by the kernel; exits with the status read
 * from the pipe (1 if the restorer went away without one). A fork of krg:
 * async-signal-safe calls only. */
static _Noreturn void reaper(int rfd)
{
	/* Hold nothing of the restorer's (a pipe it answers through must see
	 * EOF when the restorer closes it). */
	if (rfd > 0)
		close_range(0, (unsigned)rfd - 1, 0);
	close_range((unsigned)rfd + 1, ~0u, 0);
	struct sigaction sa = { .sa_handler = SIG_IGN };
	sigaction(SIGCHLD, &sa, NULL);
	prctl(PR_SET_NAME, (unsigned long)"krg-pidns-init", 0, 0, 0);
	int st = 0;
	ssize_t n;
	while ((n = read(rfd, &st, sizeof(st))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(st))
		_exit(1);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int pidns_start(struct ckpt_pidns *ns, struct ckpt_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_fail(err, errno, "pipe: %s", strerror(errno));
	ns->home = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (ns->home < 0 || unshare(CLONE_NEWPID) < 0) {
		int e = errno;
		close(p[0]), close(p[1]);
		if (ns->home >= 0)
			close(ns->home);
		return ckpt_fail(err, e, "a new pid namespace: unshare: %s", strerror(e));
	}
	pid_t r = fork();
	if (r < 0) {
		int e = errno;
		close(p[0]), close(p[1]);
		setns(ns->home, CLONE_NEWPID);
		close(ns->home);
		return ckpt_fail(err, e, "forking the pid namespace's init: %s", strerror(e));
	}
	if (r == 0) {
		close(p[1]);
		reaper(p[0]);
	}
	close(p[0]);
	ns->reaper = r;
	ns->fd = p[1];
	return 0;
}

void ckpt_pidns_finish(struct ckpt_pidns *ns, int status)
{
	if (!ns->reaper)
		return;
	if (write(ns->fd, &status, sizeof(status)) < 0) {
		/* it is gone already: reaped below */
	}
	close(ns->fd);
	int st;
	while (waitpid(ns->reaper, &st, 0) < 0 && errno == EINTR)
		;
	ns->reaper = 0;
}

/* What this machine and this caller can restore: the CPU's FPU state
 * format, and never more credentials than the image's directory owner. */
static int check_image(const char *dir, const Krg__Ckpt__Inventory *inv, const struct rproc *ps, size_t n,
		       struct ckpt_error *err)
{
	int r = 0;
	if (inv->xsave_size != ckpt_xsave_size() || (inv->has_xcr0 && (inv->xcr0 & ~ckpt_xcr0()))) {
		r = ckpt_fail(err, EOPNOTSUPP, "image %s: FPU state from a CPU with other features (XSAVE %u bytes, xcr0 %#llx; here %zu, %#llx)", dir,
			      inv->xsave_size, (unsigned long long)inv->xcr0, ckpt_xsave_size(), (unsigned long long)ckpt_xcr0());
		return r;
	}
	for (size_t i = 0; i < n; i++)
		if (ps[i].img->core && (r = check_owner(dir, ps[i].img->core, err)) < 0)
			return r;
	return 0;
}

/* krg's IPC filter before anything forks or clones: they inherit it. */
static int ipc_filter_first(struct rproc *ps, size_t n, int32_t root_pid, int *ipc_lfd, bool sockets, struct ckpt_error *err)
{
	int r = 0;
	for (size_t i = 1; i < n; i++)
		if (ps[i].img->core && ps[i].img->core->ipc_intercepted && !(ps[0].img->core && ps[0].img->core->ipc_intercepted)) {
			r = ckpt_fail(err, EBADMSG, "image: process %d has krg's IPC filter but the root %d has not", ps[i].img->info->pid, root_pid);
			return r;
		}
	if (ps[0].img->core && ps[0].img->core->ipc_intercepted && (r = ckpt_seccomp_restore(&ps[0].t, ipc_lfd, sockets, err)) < 0)
		return r;
	return 0;
}

/* The tree's shape first, while every process is only a shell: each
 * forked by its parent with its own pid, a session leader making its
 * session before its children inherit it. ps[0] is forked already. */
static int shape_tree(struct rproc *ps, size_t n, struct ckpt_app_fds *app, bool in_ns, const char *replace_tty,
		      uint64_t helper, struct ckpt_tracee **tracees, pid_t *live_inner, struct ckpt_error *err)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		const Krg__Ckpt__Process *pi = ps[i].img->info;
		if (i > 0) {
			struct rproc *parent = by_pid(ps, n, pi->ppid);
			bool exact = false;
			if (!parent || !parent->pid) {
				r = ckpt_fail(err, EBADMSG, "image: the parent %d of process %d is not restored before it", pi->ppid, pi->pid);
				return r;
			}
			/* The parent's memory first, so that its children start
			 * with it copy-on-write, as when they were saved: one
			 * copy of what they still shared, not one each (a lazy
			 * restore fills it later: not with children). */
			if (parent->img->core && !parent->mm_done && !parent->lazy && (r = rebuild_mm(parent, app, err)) < 0)
				return r;
			if ((r = make_child(&parent->t, pi->pid, in_ns, &ps[i].pid, &ps[i].inner, &exact, err)) < 0)
				return r;
			ps[i].t = (struct ckpt_tracee){ .pid = ps[i].pid, .code = helper, .scratch = helper + CKPT_PAGE, .scratch_len = 2 * CKPT_PAGE };
			ps[i].from = parent->mm_done ? parent : NULL;
			if (!exact) {
				r = ckpt_fail(err, EEXIST, "pid %d is taken%s: a process tree comes back with its own pids (restart it in a new pid namespace)",
					      pi->pid, in_ns ? " in the new pid namespace" : " on this node");
				return r;
			}
		}
		/* A shell job (--replace-tty) stays in the caller's session. */
		/* A process restored in place may lead its session already. */
		if (pi->sid == pi->pid && !(replace_tty && i == 0) && !(ps[i].in_place && getsid(ps[i].pid) == ps[i].pid)) {
			long ret = ckpt_syscall(&ps[i].t, err, SYS_setsid, 0, 0, 0, 0, 0, 0);
			if (ret < 0) {
				r = ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: setsid: %s", pi->pid, strerror(ret < -4095 ? EIO : (int)-ret));
				return r;
			}
		}
		if (ps[i].img->core) {
			live_inner[ps[i].live] = ps[i].inner;
			tracees[ps[i].live] = &ps[i].t;
		}
	}
	return 0;
}

/* The end: the zombies die as they did, the stopped stop, every process
 * gets its last state, then all threads go together, the root last (none
 * runs before every one is ready), and get the signals pending on them. */
static int let_go(struct rproc *ps, size_t n, struct ckpt_error *err)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (ps[i].img->core)
			continue;
		if ((r = ckpt_zombie_die(&ps[i].t, ps[i].inner, ps[i].img->info, err)) < 0)
			return r;
		ps[i].dead = true;
	}
	for (size_t i = n; i-- > 0;)
		if (ps[i].img->core && ps[i].img->info->stopped && (r = restore_stop(ps, n, &ps[i], err)) < 0)
			return r;
	for (size_t i = 0; i < n; i++)
		if (ps[i].img->core && !ps[i].released && (r = finish(&ps[i], err)) < 0)
			return r;
	/* All threads of all processes together, the root last: none runs
	 * before every one is ready. */
	for (size_t i = n; i-- > 0;) {
		struct rproc *p = &ps[i];
		if (!p->img->core || p->released)
			continue;
		for (size_t k = p->toff; k < p->ntids; k++)  /* an exited leader is let go already */
			if (ptrace(PTRACE_DETACH, p->tids[k], 0, 0) < 0) {
				r = ckpt_fail(err, errno, "letting thread %d of restored process %d go: %s", p->tids[k], p->img->info->pid, strerror(errno));
				return r;
			}
	}
	for (size_t i = 0; i < n; i++)
		for (int s = 1; s <= 64; s++)
			if (ps[i].img->core && (ps[i].t.pending_sigs & (1ULL << (s - 1))))
				kill(ps[i].pid, s);
	return 0;
}

pid_t ckpt_image_root_pid(const char *dir)
{
	struct ckpt_image img;
	struct ckpt_error err = { 0 };
	int r = ckpt_image_load(dir, CKPT_LOAD_NO_PAGES, &img, &err);
	if (r < 0)
		return r;
	pid_t pid = img.inv->root_pid > 0 ? (pid_t)img.inv->root_pid : -EBADMSG;
	ckpt_image_free(&img);
	return pid;
}

int ckpt_image_pids(const char *dir, pid_t **out, size_t *n)
{
	struct ckpt_image img;
	struct ckpt_error err = { 0 };
	int r = ckpt_image_load(dir, CKPT_LOAD_NO_PAGES, &img, &err);
	if (r < 0)
		return r;
	pid_t *v = malloc((img.n_procs + 1) * sizeof(*v));
	if (v)
		for (size_t i = 0; i < img.n_procs; i++)
			v[i] = (pid_t)img.procs[i].info->pid;
	*out = v;
	*n = v ? img.n_procs : 0;
	ckpt_image_free(&img);
	return v ? 0 : -ENOMEM;
}

int ckpt_image_check(const char *dir, struct ckpt_error *err)
{
	struct ckpt_image img;
	int r = ckpt_image_load(dir, CKPT_LOAD_PAGES, &img, err);
	if (r == 0)
		ckpt_image_free(&img);
	return r;
}

int ckpt_restore(const char *dir, pid_t *pid_out, struct ckpt_error *err)
{
	return ckpt_restore_ns(dir, NULL, pid_out, err);
}

int ckpt_restore_ns(const char *dir, struct ckpt_pidns *ns, pid_t *pid_out, struct ckpt_error *err)
{
	return ckpt_restore_opts(dir, ns, NULL, pid_out, err);
}

/* ps[i] for each process of the image, with room for its thread ids;
 * mms: the memory of the live ones (not zombies), in order. Their count. */
static size_t index_procs(struct ckpt_image *img, struct rproc *ps, const Krg__Ckpt__Mm **mms)
{
	size_t nlive = 0;
	for (size_t i = 0; i < img->n_procs; i++) {
		ps[i].img = &img->procs[i];
		if (!ps[i].img->core)
			continue;
		ps[i].live = nlive;
		mms[nlive++] = ps[i].img->mm;
		size_t nt = ps[i].img->core->n_threads + 1;  /* + a leader that had exited */
		if (!(ps[i].tids = calloc(nt, sizeof(pid_t))) || !(ps[i].inner_tids = calloc(nt, sizeof(pid_t))))
			abort();
	}
	return nlive;
}

/* A restore into process `into` (o->into) takes one live process and
 * nothing else; in place, krg's IPC filter is the one the process kept
 * (seccomp filters live through exec): not installed again, its listener
 * still home's krgd's. Input it had not read (unread bytes of the FIFO
 * standing in for a kept fd) cannot go back into the real file: refused
 * before the process is touched. */
static int check_into(const char *dir, const struct ckpt_image *img, const struct rproc *ps,
		      const struct ckpt_restore_opts *o, bool new_pidns, struct ckpt_error *err)
{
	if (img->n_procs > 1 || new_pidns || o->lazy || o->n_extra || o->replace_tty || !ps[0].img->core ||
	    o->n_keep > CKPT_MAX_KEEP)
		return ckpt_fail(err, EINVAL, "image %s: a restore into process %d takes one live process, nothing else asked", dir,
				 o->into);
	for (size_t k = 0; img->n_live && k < o->n_keep; k++)
		for (size_t i = 0; i < img->files[0]->n_fds; i++) {
			const Krg__Ckpt__Fd *e = img->files[0]->fds[i];
			if (e->fd == o->keep_num[k] && ((e->has_data && e->data.len) || e->n_packets))
				return ckpt_fail(err, EAGAIN, "fd %d holds input the process had not read: it cannot go back into the real file", e->fd);
		}
	return 0;
}

/* Fork the restore's root (with the image's pid where it is free),
 * stopped and traced. On failure *started says whether ps[0] runs (to be
 * killed with the rest) or nothing is left to undo. */
static int start_root(struct rproc *ps, int32_t root_pid, struct ckpt_pidns *ns, bool tree, bool lazy, uint64_t helper,
		      bool *started, struct ckpt_error *err)
{
	*started = false;
	fflush(NULL);
	bool exact_pid;
	pid_t pid = fork_as(root_pid, &exact_pid);
	int fork_errno = errno;
	/* Our later children (and sanitizers' helper processes) are ours again. */
	if (ns && pid != 0) {
		setns(ns->home, CLONE_NEWPID);
		close(ns->home);
		ns->home = -1;
	}
	if (pid < 0)
		return ckpt_fail(err, fork_errno, "fork: %s", strerror(fork_errno));
	if (pid == 0)
		child(helper, ns != NULL);
	ps[0].pid = pid;
	ps[0].inner = ns ? root_pid : pid;
	if (lazy)
		ps[0].lazy = ckpt_lazy_new();
	ps[0].t = (struct ckpt_tracee){ .pid = pid, .code = helper, .scratch = helper + CKPT_PAGE, .scratch_len = 2 * CKPT_PAGE };
	if (!exact_pid && (ns || tree)) {
		int r = ckpt_fail(err, EEXIST, "pid %d is taken%s: a process tree comes back with its own pids (restart it in a new pid namespace)",
				  root_pid, ns ? " in the new pid namespace" : " on this node");
		/* not traced yet: a plain kill and reap */
		kill(pid, SIGKILL);
		waitpid(pid, &(int){ 0 }, __WALL);
		ps[0].dead = true;
		return r;
	}
	*started = true;
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
			return ckpt_fail(err, EPERM, "cannot give the new pid namespace its own /proc (mount namespace, proc mount)");
		return ckpt_fail(err, ECHILD, "the restore child did not start (status %#x)", st);
	}
	/* If krg dies half-way, so does the half-restored application. */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK)) < 0)
		return ckpt_fail(err, errno, "ptrace options: %s", strerror(errno));
	return 0;
}

/* Tied to us: set once the root's credentials are final (a change of them
 * clears it); the image has no value of its own for it (reading one would
 * mean writing into the process). */
static int set_pdeathsig(struct rproc *root, int32_t root_pid, int sig, struct ckpt_error *err)
{
	long ret = ckpt_syscall(&root->t, err, SYS_prctl, PR_SET_PDEATHSIG, sig, 0, 0, 0, 0);
	if (ret >= 0)
		return 0;
	int e = ret < -4095 ? EIO : (int)-ret;
	return ckpt_fail(err, e, "process %d: PR_SET_PDEATHSIG: %s", root_pid, strerror(e));
}

int ckpt_restore_opts(const char *dir, struct ckpt_pidns *ns, const struct ckpt_restore_opts *o, pid_t *pid_out, struct ckpt_error *err)
{
	const char *replace_tty = o ? o->replace_tty : NULL;
	for (size_t i = 0; o && i < o->n_extra; i++)
		o->extra[i].got = 0;
	struct ckpt_image img;
	/* Lazy: one process (a migrant); its private anonymous pages are
	 * checked by the lazy restore as they go in, not before. */
	bool lazy = o && o->lazy;
	if (lazy)
		*o->lazy = NULL;
	int ipc_lfd = -1;  /* krg's IPC filter's listener, until handed out */
	if (o && o->ipc_listener)
		*o->ipc_listener = -1;
	int r = ckpt_image_load(dir, lazy ? CKPT_LOAD_PAGES_LAZY : CKPT_LOAD_PAGES, &img, err);
	if (r < 0)
		return r;
	size_t n = img.n_procs;
	if (lazy && n != 1) {
		r = ckpt_fail(err, EINVAL, "image %s: a lazy restore takes one process, not %zu", dir, n);
		ckpt_image_free(&img);
		return r;
	}
	struct rproc *ps = calloc(n, sizeof(*ps));
	const Krg__Ckpt__Mm **mms = calloc(n, sizeof(*mms));
	struct ckpt_tracee **tracees = calloc(n, sizeof(*tracees));
	pid_t *live_inner = calloc(n, sizeof(*live_inner));
	struct ckpt_app_fds app = { .files = img.files, .n = img.n_live, .inner = live_inner, .replace_tty = replace_tty };
	if (!ps || !mms || !tracees || !live_inner)
		abort();
	size_t nlive = index_procs(&img, ps, mms);
	const Krg__Ckpt__Inventory *inv = img.inv;
	const int32_t root_pid = inv->root_pid;
	bool tree = n > 1;
	if ((r = check_image(dir, inv, ps, n, err)) < 0)
		goto out;
	const pid_t into = o ? o->into : 0;
	if (into && (r = check_into(dir, &img, ps, o, ns != NULL, err)) < 0)
		goto out;
	app.keep_num = into ? o->keep_num : NULL;
	app.keep_fd = into ? o->keep_fd : NULL;
	app.n_keep = into ? o->n_keep : 0;
	app.shm.dsm = o ? o->dsm : NULL;
	uint64_t helper = ckpt_mm_helper_addr(mms, nlive, HELPER_PAGES * CKPT_PAGE, into);
	if (!helper) {
		r = ckpt_fail(err, ENOMEM, "no free address for the restore helper page");
		goto out;
	}
	if (ns) {
		ns->reaper = 0;
		if (root_pid == 1) {
			r = ckpt_fail(err, EEXIST, "image %s: its pid is 1, the new pid namespace's init (krg's reaper) holds that", dir);
			goto out;
		}
		fflush(NULL);
		if ((r = pidns_start(ns, err)) < 0)
			goto out;
	}
	if (into) {
		if ((r = seize_into(into, helper, &ps[0].t, err)) < 0)
			goto out;
		ps[0].pid = ps[0].inner = into;
		ps[0].in_place = true;
		goto seized;
	}
	bool started;
	if ((r = start_root(ps, root_pid, ns, tree, lazy, helper, &started, err)) < 0) {
		if (started)
			goto kill;
		goto out;
	}
seized:;
	pid_t pid = ps[0].pid;
	/* A process restored in place kept its filter (seccomp filters live
	 * through exec), whose listener is where it was: not a second one. */
	bool want_ipc = o && o->ipc_listener && !(into && has_seccomp(into));
	if (want_ipc && (r = ipc_filter_first(ps, n, root_pid, &ipc_lfd, o->ipc_sockets, err)) < 0)
		goto kill;
	if ((r = shape_tree(ps, n, &app, ns != NULL, replace_tty, helper, tracees, live_inner, err)) < 0)
		goto kill;
	/* Children from outside the image, while the root is still a shell
	 * (their fds are the caller's, its memory nobody's yet). */
	for (size_t i = 0; o && i < o->n_extra; i++) {
		o->extra[i].got = 0;
		if ((r = make_extra(&ps[0].t, ns != NULL, &o->extra[i], err)) < 0)
			goto kill;
	}
	/* Then each process's own state, parents first: what a process shares
	 * with an earlier one is taken from it. */
	for (size_t i = 0; i < n; i++) {
		const Krg__Ckpt__Process *pi = ps[i].img->info;
		app.session_leader = pi->sid == pi->pid && !(replace_tty && i == 0);
		if (ps[i].img->core && (r = rebuild(&ps[i], &app, ns != NULL, err)) < 0)
			goto kill;
	}
	if ((r = restore_groups(ps, n, replace_tty != NULL, err)) < 0)
		goto kill;
	/* Fault injection for the tests (run.sh "halfway"): fail once every
	 * process exists and has its state, to check nothing is left behind. */
	if (krg_fault_on("ckpt-restore-fail")) {
		r = ckpt_fail(err, EIO, "fault injected after rebuilding %zu processes (fault point ckpt-restore-fail)", n);
		goto kill;
	}
	if ((r = ckpt_files_close_parked(&app, tracees, err)) < 0)
		goto kill;
	if (o && o->root_pdeathsig && ps[0].img->core && (r = set_pdeathsig(&ps[0], root_pid, o->root_pdeathsig, err)) < 0)
		goto kill;
	if ((r = let_go(ps, n, err)) < 0)
		goto kill;
	*pid_out = pid;
	if (want_ipc) {
		*o->ipc_listener = ipc_lfd;
		ipc_lfd = -1;
	}
	if (ckpt_lazy_running(ps[0].lazy)) {
		ckpt_lazy_take_map(ps[0].lazy, &img.procs[0].pages);
		*o->lazy = ps[0].lazy;
		ps[0].lazy = NULL;
	}
	r = 0;
	goto out;
kill:
	kill_all(ps, n, o ? o->extra : NULL, o ? o->n_extra : 0);
out:
	if (ipc_lfd >= 0)
		close(ipc_lfd);
	if (n)
		ckpt_lazy_free(ps[0].lazy, NULL);
	if (r < 0 && ns)
		ckpt_pidns_finish(ns, 1 << 8);
	for (size_t i = 0; i < n; i++) {
		free(ps[i].tids);
		free(ps[i].inner_tids);
	}
	free(ps);
	free(mms);
	free(tracees);
	free(live_inner);
	free(app.parked);
	free(app.shm.e);
	ckpt_image_free(&img);
	return r;
}
