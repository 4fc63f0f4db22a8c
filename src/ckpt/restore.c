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
	/* Not raise(): after a raw clone3 libc's idea of our tid is krg's. */
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	_exit(127);  /* only if the parent let us go without restoring */
}

/* struct clone_args of clone3 (CLONE_ARGS_SIZE_VER2). */
struct kclone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* The restore child, with the image's pid if it is free and we may choose
 * (clone3 set_tid: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in our pid
 * namespace); else a plain fork. */
static pid_t fork_as(pid_t want, bool *exact)
{
	pid_t tid = want;
	struct kclone_args a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };
	long r = syscall(SYS_clone3, &a, sizeof(a));
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
	for (int attempt = 0; attempt < (newns ? 1 : 2); attempt++) {
		a.set_tid = attempt == 0 ? tid_at : 0;
		a.set_tid_size = attempt == 0 ? 1 : 0;
		if ((r = ckpt_poke(lead->pid, args_at, &a, sizeof(a))) < 0 || (r = ckpt_poke(lead->pid, tid_at, &want, sizeof(want))) < 0)
			return ckpt_fail(err, r, "thread %d: writing clone3 arguments: %s", tc->tid, strerror(-r));
		ret = ckpt_syscall(lead, err, SYS_clone3, (long)args_at, sizeof(a), 0, 0, 0, 0);
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

struct rseq_conf {
	uint64_t ptr;
	uint32_t size, sig, flags, pad;
};

/* tids: as we see them (ptrace); inner: as the process sees them. */
static int rebuild(struct ckpt_tracee *t, const struct ckpt_image *img, bool newns, pid_t self, pid_t *tids, pid_t *inner, size_t *ntids,
		   struct ckpt_error *err)
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
	/* From here nothing may be delivered until the registers are back:
	 * block everything (new threads inherit it); the real masks come last. */
	uint64_t all = ~0ULL;
	if (ptrace(PTRACE_SETSIGMASK, t->pid, (void *)sizeof(all), &all) < 0)
		return ckpt_fail(err, errno, "blocking signals during the restore: %s", strerror(errno));
	/* The other threads, each cloned from the leader (sharing everything
	 * restored so far, credentials included), then its own state. */
	const Krg__Ckpt__Core *c = img->core;
	tids[0] = t->pid;
	inner[0] = self;
	*ntids = 1;
	size_t exact = 0;
	for (size_t i = 1; i < c->n_threads; i++) {
		bool ex = false;
		if ((r = make_thread(t, c->threads[i], newns, &tids[i], &inner[i], &ex, err)) < 0)
			return r;
		*ntids = i + 1;
		if (newns && !ex)
			return ckpt_fail(err, EEXIST, "thread %d came back as %d in the new pid namespace", c->threads[i]->tid, inner[i]);
		exact += ex;
		struct ckpt_tracee tt = { .pid = tids[i], .code = t->code, .scratch = t->scratch, .scratch_len = t->scratch_len };
		r = ckpt_core_restore_thread(&tt, c->threads[i], c->comm, err);
		t->pending_sigs |= tt.pending_sigs;
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_threads; i++)
		fix_libc_tid(t->pid, c->threads[i], inner[i]);
	if ((r = ckpt_core_restore_signals(t, c, self, inner, err)) < 0)
		return r;
	/* The helper goes last; its syscall returns into the exit stop, so
	 * nothing executes from the unmapped page. */
	long ret = ckpt_syscall(t, err, SYS_munmap, (long)t->code, HELPER_PAGES * CKPT_PAGE, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "unmapping the helper page: %s", strerror((int)-ret));
	for (size_t i = 0; i < c->n_threads; i++)
		if ((r = ckpt_core_restore_regs(tids[i], c->threads[i], err)) < 0)
			return r;
	return 0;
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
	for (size_t i = 0; i < core->n_uids; i++)
		if (core->uids[i] != st.st_uid)
			return ckpt_fail(err, EPERM, "image %s is owned by uid %u but asks for uid %u: refused", dir,
					 (unsigned)st.st_uid, core->uids[i]);
	struct passwd *pw = getpwuid(st.st_uid);
	gid_t groups[256];
	int ng = (int)(sizeof(groups) / sizeof(groups[0]));
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	for (size_t i = 0; i < core->n_gids; i++) {
		bool ok = false;
		for (int k = 0; k < ng && !ok; k++)
			ok = groups[k] == (gid_t)core->gids[i];
		if (!ok && core->gids[i] != st.st_gid)
			return ckpt_fail(err, EPERM, "image %s is owned by uid %u, not a member of gid %u: refused", dir,
					 (unsigned)st.st_uid, core->gids[i]);
	}
	return 0;
}

/* The init of a new pid namespace: SIGCHLD ignored, so every orphan
 * reparented here is reaped by the kernel; exits with the status read
 * from the pipe (1 if the restorer went away without one). A fork of krg:
 * async-signal-safe calls only. */
static _Noreturn void reaper(int rfd)
{
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

int ckpt_restore(const char *dir, pid_t *pid_out, struct ckpt_error *err)
{
	return ckpt_restore_ns(dir, NULL, pid_out, err);
}

int ckpt_restore_ns(const char *dir, struct ckpt_pidns *ns, pid_t *pid_out, struct ckpt_error *err)
{
	struct ckpt_image img;
	pid_t *tids = NULL, *inner = NULL;
	size_t ntids = 0;
	int r = ckpt_image_load(dir, true, &img, err);
	if (r < 0)
		return r;
	if (img.inv->xsave_size != ckpt_xsave_size() || (img.inv->has_xcr0 && (img.inv->xcr0 & ~ckpt_xcr0()))) {
		r = ckpt_fail(err, EOPNOTSUPP, "image %s: FPU state from a CPU with other features (XSAVE %u bytes, xcr0 %#llx; here %zu, %#llx)", dir,
			      img.inv->xsave_size, (unsigned long long)img.inv->xcr0, ckpt_xsave_size(), (unsigned long long)ckpt_xcr0());
		goto out;
	}
	if ((r = check_owner(dir, img.core, err)) < 0)
		goto out;
	uint64_t helper = ckpt_mm_helper_addr(img.mm, HELPER_PAGES * CKPT_PAGE);
	if (!helper) {
		r = ckpt_fail(err, ENOMEM, "no free address for the restore helper page");
		goto out;
	}
	tids = calloc(img.core->n_threads, sizeof(*tids));
	inner = calloc(img.core->n_threads, sizeof(*inner));
	if (!tids || !inner) {
		r = ckpt_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	if (ns) {
		ns->reaper = 0;
		if (img.core->pid == 1) {
			r = ckpt_fail(err, EEXIST, "image %s: its pid is 1, the new pid namespace's init (krg's reaper) holds that", dir);
			goto out;
		}
		fflush(NULL);
		if ((r = pidns_start(ns, err)) < 0)
			goto out;
	}
	fflush(NULL);
	bool exact_pid;
	pid_t pid = fork_as(img.core->pid, &exact_pid);
	int fork_errno = errno;
	/* Our later children (and sanitizers' helper processes) are ours again. */
	if (ns && pid != 0) {
		setns(ns->home, CLONE_NEWPID);
		close(ns->home);
		ns->home = -1;
	}
	if (pid < 0) {
		r = ckpt_fail(err, fork_errno, "fork: %s", strerror(fork_errno));
		goto out;
	}
	if (pid == 0)
		child(helper);
	if (ns && !exact_pid) {
		r = ckpt_fail(err, EEXIST, "pid %d in the new pid namespace: clone3 set_tid refused", img.core->pid);
		/* not traced yet: a plain kill and reap */
		kill(pid, SIGKILL);
		waitpid(pid, &(int){ 0 }, __WALL);
		goto out;
	}
	struct ckpt_tracee t = { .pid = pid, .code = helper, .scratch = helper + CKPT_PAGE, .scratch_len = 2 * CKPT_PAGE };
	int st;
	if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
		r = ckpt_fail(err, ECHILD, "the restore child did not start (status %#x)", st);
		goto kill;
	}
	/* If krg dies half-way, so does the half-restored process. */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE)) < 0) {
		r = ckpt_fail(err, errno, "ptrace options: %s", strerror(errno));
		goto kill;
	}
	if ((r = rebuild(&t, &img, ns != NULL, ns ? img.core->pid : pid, tids, inner, &ntids, err)) < 0)
		goto kill;
	/* All threads together: none runs before every one is ready. */
	for (size_t i = 0; i < ntids; i++)
		if (ptrace(PTRACE_DETACH, tids[i], 0, 0) < 0) {
			r = ckpt_fail(err, errno, "letting thread %d of the restored process go: %s", tids[i], strerror(errno));
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
	/* Traced threads are ours to reap before the leader can be. */
	for (size_t i = ntids; i-- > 1;)
		while (waitpid(tids[i], &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
			;
	while (waitpid(pid, &st, __WALL) > 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
		;
out:
	if (r < 0 && ns)
		ckpt_pidns_finish(ns, 1 << 8);
	free(tids);
	free(inner);
	ckpt_image_free(&img);
	return r;
}
