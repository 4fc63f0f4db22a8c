/* dump.c — a checkpoint, in order: freeze the application (the process
 * and, unless asked otherwise, every descendant: parents are frozen
 * before their children are listed, so nobody forks behind our back),
 * refuse early if an fd cannot be saved, link what processes share, ask
 * each process what only it can tell (signal actions, brk, ...) through
 * injected syscalls, save memory, write the parts, inventory last; then
 * thaw (or kill). */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <elf.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/fault.h"
#include "lib/macro.h"

/* One process of the application while it is frozen. */
struct dump_proc {
	pid_t pid, ppid, pgid, sid;
	/* The thread that /proc, ptrace and injected syscalls go through: the
	 * leader, or a live thread once the leader exited (a zombie thread
	 * has no fds, maps or mm in /proc and cannot be traced). */
	pid_t acc;
	bool leader_exited;
	bool zombie;
	int exit_status;               /* zombie: wait status */
	char comm[32];                 /* zombie: its name */
	bool stopped;                  /* live: in a job-control stop when frozen */
	int stop_signal;               /* stopped: its stop not yet collected by its parent (0: collected) */
	struct ckpt_thread *th;        /* live: its frozen threads, the leader first */
	size_t nth;
	Krg__Ckpt__Files *files;
	Krg__Ckpt__Core *core;
	Krg__Ckpt__Mm *mm;
};

struct dump_app {
	struct dump_proc *p;
	size_t n;
	uint32_t xsave_size;  /* the root's XSAVE area length (kept past the thaw) */
};

/* A `syscall` instruction (0f 05) in the tracee's vdso: its fallback
 * paths have some. 0 if none. */
uint64_t ckpt_find_syscall_insn(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	unsigned long s = 0, e = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2) {
			found = true;
			break;
		}
	if (!found || e - s > (1 << 20))
		return 0;
	_cleanup_free_ uint8_t *buf = malloc(e - s);
	if (!buf || ckpt_peek(pid, s, buf, e - s) < 0)
		return 0;
	for (unsigned long i = 0; i + 1 < e - s; i++)
		if (buf[i] == 0x0f && buf[i + 1] == 0x05)
			return s + i;
	return 0;
}

/* State, parent, group, session and (field 52) exit code from
 * /proc/PID/stat. 0 or -errno. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid, int *exit_code)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int r = krg_read_small(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p += 2;
	*state = *p;
	/* fields from 3 (state) on, space separated */
	long f[53] = { 0 };
	int n = 3;
	for (char *tok = strtok(p, " "); tok && n < 53; tok = strtok(NULL, " "), n++)
		f[n] = strtol(tok, NULL, 10);
	*ppid = (pid_t)f[4];
	*pgid = (pid_t)f[5];
	*sid = (pid_t)f[6];
	*exit_code = n > 52 ? (int)f[52] : 0;
	return 0;
}

static bool in_app(const struct dump_app *a, pid_t pid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->p[i].pid == pid)
			return true;
	return false;
}

static int add_proc(struct dump_app *a, pid_t pid, struct ckpt_error *err)
{
	if (a->n >= CKPT_MAX_PROCS)
		return ckpt_fail(err, E2BIG, "the application has more than %d processes", CKPT_MAX_PROCS);
	struct dump_proc *np = realloc(a->p, (a->n + 1) * sizeof(*np));
	if (!np)
		abort();
	a->p = np;
	a->p[a->n++] = (struct dump_proc){ .pid = pid };
	return 0;
}

/* The children of every thread of pid, appended to the application. */
static int add_children(struct dump_app *a, pid_t pid, struct ckpt_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return ckpt_fail(err, ESRCH, "process %d vanished", pid);
	struct dirent *de;
	int r = 0;
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char cp[300], buf[8192];
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", pid, de->d_name);
		if (krg_read_small(cp, buf, sizeof(buf)) < 0)
			continue;  /* the thread ended */
		for (char *tok = strtok(buf, " \n"); tok && !r; tok = strtok(NULL, " \n")) {
			pid_t c = atoi(tok);
			if (c > 0 && !in_app(a, c))
				r = add_proc(a, c, err);
		}
	}
	closedir(d);
	return r;
}

/* Freeze the root, then each process found, listing its children once it
 * cannot fork any more. A child that exits meanwhile is a zombie (its
 * parent is frozen: nobody reaps it). */
static int freeze_app(struct dump_app *a, pid_t root, bool with_children, bool root_stop_ours, struct ckpt_error *err)
{
	int r = add_proc(a, root, err);
	for (size_t i = 0; i < a->n && r >= 0; i++) {
		struct dump_proc *p = &a->p[i];
		char state = 0;
		int code = 0;
		if ((r = read_stat(p->pid, &state, &p->ppid, &p->pgid, &p->sid, &code)) < 0) {
			r = ckpt_fail(err, ESRCH, "process %d vanished during the checkpoint", p->pid);
			break;
		}
		/* A leader that exited while its threads run shows as a zombie. */
		if ((state == 'Z' || state == 'X') && ckpt_leader_exited(p->pid))
			state = 'S';
		if (state == 'T' && !(i == 0 && root_stop_ours)) {
			/* A job-control stop, read before the seize turns it into a
			 * ptrace stop. The stat's exit code is then the group's: the
			 * stop signal until the parent's waitpid(WUNTRACED) takes it,
			 * 0 after. */
			p->stopped = true;
			p->stop_signal = code;
		}
		if (state != 'Z' && state != 'X') {
			r = ckpt_seize_all(p->pid, &p->th, &p->nth, err);
			if (r == 0) {
				p->acc = p->th[0].tid;
				p->leader_exited = p->acc != p->pid;
			}
			if (r == -ESRCH || r == -EPERM) {
				/* exited between the listing and the seize? */
				char st2 = 0;
				if (i > 0 && read_stat(p->pid, &st2, &p->ppid, &p->pgid, &p->sid, &code) == 0 && (st2 == 'Z' || st2 == 'X')) {
					err->msg[0] = 0;
					state = st2;
					r = 0;
				}
			}
			if (r < 0)
				break;
		}
		if (state == 'Z' || state == 'X') {
			if (i == 0) {
				r = ckpt_fail(err, ESRCH, "process %d has exited", p->pid);
				break;
			}
			p->zombie = true;
			p->exit_status = code;
			char cp[64];
			snprintf(cp, sizeof(cp), "/proc/%d/comm", p->pid);
			if (krg_read_small(cp, p->comm, sizeof(p->comm)) >= 0)
				p->comm[strcspn(p->comm, "\n")] = 0;
			continue;
		}
		if (with_children)
			r = add_children(a, p->pid, err);
	}
	return r;
}

/* Let the application go: SIGKILLed (kill_sig), or with a signal queued
 * before it runs again (another kill_sig, SIGSTOP for --stop), or as it
 * was. */
static void release_app(struct dump_app *a, int kill_sig)
{
	/* Children first when killing: a parent that goes first would have
	 * them reparented while we still trace them. */
	for (size_t i = a->n; i-- > 0;) {
		struct dump_proc *p = &a->p[i];
		if (p->th && kill_sig && kill_sig != SIGKILL)
			kill(p->pid, kill_sig);
		if (p->th)
			ckpt_release_all(p->pid, p->th, p->nth, kill_sig == SIGKILL);
		p->th = NULL;
	}
}

static void thaw_app(struct dump_app *a, int kill_sig)
{
	release_app(a, kill_sig);
	for (size_t i = a->n; i-- > 0;) {
		struct dump_proc *p = &a->p[i];
		ckpt_files_free(p->files);
		ckpt_core_free(p->core);
		ckpt_mm_free(p->mm);
	}
	free(a->p);
	a->p = NULL;
	a->n = 0;
}

/* Sessions and groups krg can recreate: a process's session is its
 * parent's or its own; its group has a member in the application that
 * leads it, or is the root's. Anything else is refused by name. */
static int check_groups(const struct dump_app *a, struct ckpt_error *err)
{
	const struct dump_proc *root = &a->p[0];
	for (size_t i = 1; i < a->n; i++) {
		const struct dump_proc *p = &a->p[i], *parent = NULL;
		for (size_t j = 0; j < i && !parent; j++)
			if (a->p[j].pid == p->ppid)
				parent = &a->p[j];
		if (!parent)
			return ckpt_fail(err, ESRCH, "process %d: its parent %d left the application during the checkpoint", p->pid, p->ppid);
		if (p->sid != parent->sid && p->sid != p->pid)
			return ckpt_fail(err, EOPNOTSUPP, "process %d: its session %d is neither its parent's nor its own: not supported", p->pid, p->sid);
		if (p->pgid != p->pid && p->pgid != root->pgid && !in_app(a, p->pgid))
			return ckpt_fail(err, EOPNOTSUPP, "process %d: its process group %d has no leader in the application: not supported", p->pid, p->pgid);
	}
	return 0;
}

/* Inject into the process: a scratch page for the answers, the core
 * state, the registers put back as they were. */
static int dump_core(struct dump_proc *p, struct ckpt_error *err, uint64_t *brk)
{
	struct ckpt_tracee t = { .pid = p->acc };
	t.code = ckpt_find_syscall_insn(p->acc);
	if (!t.code)
		return ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction: cannot ask it for its signal actions", p->pid);
	int r;
	long ret = ckpt_syscall(&t, err, SYS_mmap, 0, CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ret < 0 && ret > -4096)
		r = ckpt_fail(err, (int)-ret, "process %d: scratch mmap: %s", p->pid, strerror((int)-ret));
	else if (err->msg[0])
		r = -EIO;
	else {
		t.scratch = (uint64_t)ret;
		t.scratch_len = CKPT_PAGE;
		r = ckpt_core_dump(&t, p->th, p->nth, &p->core, brk, err);
		ckpt_syscall(&t, err, SYS_munmap, (long)t.scratch, CKPT_PAGE, 0, 0, 0, 0);
	}
	if (r >= 0 && p->leader_exited) {
		/* The process is the group's, under the leader's pid and name. */
		p->core->pid = p->pid;
		p->core->has_leader_exited = p->core->leader_exited = true;
		char cp[64], name[32];
		snprintf(cp, sizeof(cp), "/proc/%d/comm", p->pid);
		if (krg_read_small(cp, name, sizeof(name)) >= 0) {
			name[strcspn(name, "\n")] = 0;
			free(p->core->comm);
			p->core->comm = ckpt_strdup(name);
		}
	}
	/* Back to what it was doing, registers and all (a syscall it was in
	 * is restarted by hand: we are past the stop where the kernel would). */
	struct user_regs_struct lregs = p->th[0].regs;
	ckpt_regs_fixup_restart(&lregs);
	struct iovec iov = { &lregs, sizeof(lregs) };
	if (ptrace(PTRACE_SETREGSET, p->acc, (void *)NT_PRSTATUS, &iov) < 0 && r >= 0)
		r = ckpt_fail(err, errno, "process %d: putting its registers back: %s", p->pid, strerror(errno));
	/* Signals that reached it while we injected are its own: give them back. */
	for (int s = 1; s <= 64; s++)
		if (t.pending_sigs & (1ULL << (s - 1)))
			p->th[0].stop_sig = p->th[0].stop_sig ? p->th[0].stop_sig : s;
	if (r >= 0 && err->msg[0])
		r = -EIO;
	return r;
}

static int write_proc(int dirfd, struct dump_proc *p, struct ckpt_error *err)
{
	char name[64];
	int r;
	snprintf(name, sizeof(name), "core-%d.img", p->pid);
	if ((r = ckpt_write_msg(dirfd, name, CKPT_PART_CORE, &p->core->base, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "mm-%d.img", p->pid);
	if ((r = ckpt_write_msg(dirfd, name, CKPT_PART_MM, &p->mm->base, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "files-%d.img", p->pid);
	return ckpt_write_msg(dirfd, name, CKPT_PART_FILES, &p->files->base, err);
}

static void cleanup_dir(int dirfd, const struct dump_app *a, struct ckpt_precopy *pc)
{
	const char *fmt[] = { "core-%d.img", "mm-%d.img", "files-%d.img", "pages-%d.img", ".pages-%d.img.tmp" };
	char name[64];
	for (size_t k = 0; k < a->n; k++)
		for (size_t i = 0; i < ARRAY_SIZE(fmt); i++) {
			/* A pre-copy still writing its pages file keeps it (a
			 * dump may be tried again). */
			if (i == ARRAY_SIZE(fmt) - 1 && ckpt_precopy_writer(pc, a->p[k].pid))
				continue;
			snprintf(name, sizeof(name), fmt[i], a->p[k].pid);
			unlinkat(dirfd, name, 0);
		}
}

/* The parent of an incremental checkpoint (ckpt_dump_opts.parent). */
struct parent_img {
	int fd;                      /* owned, -1: none */
	Krg__Ckpt__Inventory *inv;   /* owned */
	uint8_t sum[32];             /* its inventory's frame checksum: its identity */
	char name[64];               /* its directory's name, recorded */
	struct ckpt_incr **in;       /* per process of the dump (NULL: no tracker and no parent) */
	Krg__Ckpt__Mm **mm;          /* per process: the parent's mm of that pid, or NULL */
	size_t n;
};

static void parent_done(struct parent_img *pi, bool failed)
{
	for (size_t i = 0; i < pi->n; i++) {
		if (failed)
			ckpt_incr_undo(pi->in[i]);
		ckpt_incr_free(pi->in[i]);
		if (pi->mm[i])
			krg__ckpt__mm__free_unpacked(pi->mm[i], NULL);
	}
	free(pi->in);
	free(pi->mm);
	if (pi->inv)
		krg__ckpt__inventory__free_unpacked(pi->inv, NULL);
	if (pi->fd >= 0)
		close(pi->fd);
	memset(pi, 0, sizeof(*pi));
	pi->fd = -1;
}

/* The parent's mm of process pid if it had one (a live process of it). */
static int parent_mm(struct parent_img *pi, pid_t pid, Krg__Ckpt__Mm **out, struct ckpt_error *err)
{
	*out = NULL;
	bool live = false;
	for (size_t i = 0; i < pi->inv->n_procs; i++)
		live = live || (pi->inv->procs[i]->pid == pid && !pi->inv->procs[i]->zombie);
	if (!live)
		return 0;
	char name[64];
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	struct ckpt_blob b;
	int r = ckpt_read_part(pi->fd, name, CKPT_PART_MM, &b, err);
	if (r < 0)
		return r;
	Krg__Ckpt__Mm *mm = krg__ckpt__mm__unpack(NULL, b.len, b.data);
	ckpt_blob_free(&b);
	if (!mm || mm->pid != pid)
		return ckpt_fail(err, EBADMSG, "parent image %s: cannot decode %s", pi->name, name);
	char what[128];
	snprintf(what, sizeof(what), "parent image %s: %s", pi->name, name);
	if ((r = ckpt_incr_parent_check(mm, what, err)) < 0) {
		krg__ckpt__mm__free_unpacked(mm, NULL);
		return r;
	}
	*out = mm;
	return 0;
}

/* Trackers and parent for each process of the application. */
static int parent_prepare(struct parent_img *pi, const struct dump_app *a, const struct ckpt_dump_opts *opts, struct ckpt_error *err)
{
	pi->fd = -1;
	if (!opts->n_track)
		return 0;
	pi->in = calloc(a->n, sizeof(*pi->in));
	pi->mm = calloc(a->n, sizeof(*pi->mm));
	if (!pi->in || !pi->mm)
		abort();
	pi->n = a->n;
	int r;
	if (opts->parent) {
		const char *base = strrchr(opts->parent, '/');
		base = base ? base + 1 : opts->parent;
		snprintf(pi->name, sizeof(pi->name), "%s", base);
		if (!*pi->name || !strcmp(pi->name, ".") || !strcmp(pi->name, ".."))
			return ckpt_fail(err, EINVAL, "parent image %s: name its directory (it is recorded by name)", opts->parent);
		pi->fd = open(opts->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pi->fd < 0)
			return ckpt_fail(err, errno, "parent image %s: %s", opts->parent, strerror(errno));
		struct ckpt_blob b;
		if ((r = ckpt_read_part(pi->fd, "inventory.img", CKPT_PART_INVENTORY, &b, err)) < 0)
			return r;
		memcpy(pi->sum, b.head + 24, sizeof(pi->sum));
		pi->inv = krg__ckpt__inventory__unpack(NULL, b.len, b.data);
		ckpt_blob_free(&b);
		if (!pi->inv)
			return ckpt_fail(err, EBADMSG, "parent image %s: cannot decode its inventory", opts->parent);
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->p[i].zombie)
			continue;
		int uffd = -1;
		for (size_t k = 0; k < opts->n_track; k++)
			if (opts->track[k].pid == a->p[i].pid)
				uffd = opts->track[k].uffd;
		if (pi->inv && (r = parent_mm(pi, a->p[i].pid, &pi->mm[i], err)) < 0)
			return r;
		/* The parent's pages only with a tracker that says which are clean. */
		pi->in[i] = ckpt_incr_new(a->p[i].pid, uffd, uffd >= 0 ? pi->mm[i] : NULL);
	}
	return 0;
}

static int write_inventory(int dirfd, const struct dump_app *a, const struct ckpt_dump_opts *opts, const struct parent_img *pi,
			   struct ckpt_error *err)
{
	Krg__Ckpt__Inventory inv = KRG__CKPT__INVENTORY__INIT;
	_cleanup_free_ int32_t *pids = calloc(a->n, sizeof(*pids));
	_cleanup_free_ Krg__Ckpt__Process *procs = calloc(a->n, sizeof(*procs));
	_cleanup_free_ Krg__Ckpt__Process **pp = calloc(a->n, sizeof(*pp));
	if (!pids || !procs || !pp)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const struct dump_proc *p = &a->p[i];
		krg__ckpt__process__init(&procs[i]);
		pids[i] = p->pid;
		procs[i].pid = p->pid;
		procs[i].ppid = i ? p->ppid : 0;
		procs[i].pgid = p->pgid;
		procs[i].sid = p->sid;
		procs[i].has_zombie = procs[i].zombie = p->zombie;
		procs[i].has_exit_status = p->zombie;
		procs[i].exit_status = p->exit_status;
		if (p->zombie && p->comm[0])
			procs[i].comm = (char *)p->comm;
		procs[i].has_stopped = procs[i].stopped = p->stopped && !p->zombie;
		procs[i].has_stop_signal = procs[i].stopped;
		procs[i].stop_signal = p->stop_signal;
		pp[i] = &procs[i];
	}
	struct utsname u;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uname(&u);
	inv.image_version = CKPT_IMAGE_VERSION;
	inv.arch = KRG__CKPT__ARCH__ARCH_X86_64;
	inv.root_pid = a->p[0].pid;
	inv.n_pids = a->n;
	inv.pids = pids;
	inv.n_procs = a->n;
	inv.procs = pp;
	inv.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	inv.kernel = u.release;
	inv.description = (char *)opts->description;
	inv.xsave_size = a->xsave_size;
	inv.has_xcr0 = true;
	inv.xcr0 = ckpt_xcr0();
	inv.has_killed = true;
	inv.killed = opts->kill;
	if (pi->inv) {
		inv.parent = (char *)pi->name;
		inv.has_parent_sum = true;
		inv.parent_sum.data = (uint8_t *)pi->sum;
		inv.parent_sum.len = sizeof(pi->sum);
	}
	return ckpt_write_msg(dirfd, "inventory.img", CKPT_PART_INVENTORY, &inv.base, err);
}

int ckpt_dump(pid_t pid, const char *dir, const struct ckpt_dump_opts *opts, struct ckpt_error *err)
{
	int r;
	/* The directory first: no point freezing anything if we cannot write. */
	bool created = mkdir(dir, 0700) == 0;
	if (!created && errno != EEXIST)
		return ckpt_fail(err, errno, "cannot create image directory %s: %s", dir, strerror(errno));
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ckpt_fail(err, errno, "image directory %s: %s", dir, strerror(errno));
	if (faccessat(dirfd, "inventory.img", F_OK, 0) == 0)
		return ckpt_fail(err, EEXIST, "%s already holds an image (remove it or choose another directory)", dir);
	if (fchmod(dirfd, 0700) < 0)
		return ckpt_fail(err, errno, "image directory %s: chmod: %s", dir, strerror(errno));

	struct dump_app a = { 0 };
	/* Shared anonymous memory: saved with the first process mapping it. */
	_cleanup_(ckpt_shm_table_done) struct ckpt_shm_table shm_seen = { .dsm_follow = opts->dsm_follow };
	bool thawed = false;
	_cleanup_free_ Krg__Ckpt__Files **files = NULL;
	struct parent_img pi = { .fd = -1 };
	if ((r = freeze_app(&a, pid, !opts->process_only, opts->root_stopped_by_caller, err)) < 0)
		goto out;
	/* Frozen now, so its pid cannot change hands any more: still the
	 * process the caller checked? (A pidfd polls readable once its
	 * process has exited.) */
	if (opts->has_root_pidfd && poll(&(struct pollfd){ .fd = opts->root_pidfd, .events = POLLIN }, 1, 0) != 0) {
		r = ckpt_fail(err, ESRCH, "process %d exited before it was frozen (its pid may name another process now)", pid);
		goto out;
	}
	if ((r = check_groups(&a, err)) < 0)
		goto out;
	a.xsave_size = (uint32_t)a.p[0].th[0].xsave_len;
	/* Fault injection for the tests (tests/ckpt/run.sh "vanish"): hold
	 * the application frozen a while, so a process can die meanwhile. */
	long pause_ms = krg_fault_long("ckpt-pause-ms", 0);
	if (pause_ms > 0 && pause_ms < 600000)
		usleep((useconds_t)pause_ms * 1000);

	/* Every fd first: an unsupported one anywhere refuses the whole
	 * checkpoint before anything is written. */
	files = calloc(a.n + 1, sizeof(*files));
	size_t nlive = 0;
	if (!files)
		abort();
	int refused = 0;
	char why[sizeof(err->msg)] = "";
	for (size_t i = 0; i < a.n; i++) {
		if (a.p[i].zombie)
			continue;
		r = ckpt_files_dump(a.p[i].acc, opts->ignore_unsupported, opts->snapshot_files, a.n > 1, &a.p[i].files, err);
		if (r >= 0)
			a.p[i].files->pid = a.p[i].pid;
		if (r == -EOPNOTSUPP) {
			/* gather every process's refusals */
			refused++;
			size_t l = strlen(why);
			snprintf(why + l, sizeof(why) - l, "%s%s", l ? "\n" : "", err->msg);
			err->msg[0] = 0;
			continue;
		}
		if (r < 0)
			goto out;
		files[nlive++] = a.p[i].files;
	}
	if (refused) {
		snprintf(err->msg, sizeof(err->msg), "%s", why);
		r = -EOPNOTSUPP;
		goto out;
	}
	if (a.n > 1 && (r = ckpt_files_link_app(files, nlive, opts->ignore_unsupported, err)) < 0)
		goto out;

	/* An application that runs on is thawed once its state is in the
	 * page cache; making the image durable (fsync) is no longer its
	 * wait. One killed or stopped is so only once the image is durable. */
	bool early_thaw = !opts->kill && !opts->stop;
	if ((r = parent_prepare(&pi, &a, opts, err)) < 0)
		goto out;
	ckpt_image_defer_sync(early_thaw);
	for (size_t i = 0; i < a.n; i++) {
		struct dump_proc *p = &a.p[i];
		if (p->zombie)
			continue;
		uint64_t brk = 0;
		if ((r = dump_core(p, err, &brk)) < 0)
			goto out;
		if ((r = ckpt_mm_dump(p->pid, p->acc, brk, dirfd, opts->precopy, pi.in ? pi.in[i] : NULL, &shm_seen, &p->mm, err)) < 0)
			goto out;
		if ((r = write_proc(dirfd, p, err)) < 0)
			goto out;
	}
	if (early_thaw) {
		ckpt_image_defer_sync(false);
		release_app(&a, 0);
		thawed = true;
		if ((r = ckpt_image_sync(dirfd, err)) < 0)
			goto out;
	}
	if (opts->sysv && (r = ckpt_sysv_write(dirfd, opts->sysv, opts->sysv_len, err)) < 0)
		goto out;
	if ((r = write_inventory(dirfd, &a, opts, &pi, err)) < 0)
		goto out;
	fsync(dirfd);
out:
	ckpt_image_defer_sync(false);
	/* Whatever failed, if a process died meanwhile that is the reason. */
	for (size_t i = 0; r < 0 && !thawed && i < a.n; i++) {
		char st = 0;
		pid_t pp, pg, sd;
		int code;
		if (!a.p[i].zombie && (read_stat(a.p[i].acc ? a.p[i].acc : a.p[i].pid, &st, &pp, &pg, &sd, &code) < 0 || st == 'Z' || st == 'X')) {
			snprintf(err->msg, sizeof(err->msg), "process %d died during the checkpoint: nothing saved, the rest of the application runs on",
				 a.p[i].pid);
			r = -ESRCH;
			break;
		}
	}
	parent_done(&pi, r < 0);
	if (r < 0) {
		cleanup_dir(dirfd, &a, opts->precopy);
		if (created)
			rmdir(dir);
	}
	int sig = 0;
	if (r == 0 && opts->kill)
		sig = opts->kill_sig ? opts->kill_sig : SIGKILL;
	else if (r == 0 && opts->stop)
		sig = SIGSTOP;
	thaw_app(&a, sig);
	return r;
}

/* A process is stopped once its state in /proc says so (T). */
static bool wait_stopped(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		char st = 0;
		pid_t pp, pg, sd;
		int code;
		if (read_stat(pid, &st, &pp, &pg, &sd, &code) < 0 || st == 'Z' || st == 'X')
			return false;
		if (st == 'T' || st == 't')
			return true;
		usleep(2000);
	}
	return false;
}

int ckpt_app_freeze(pid_t pid, bool freeze, size_t *count, struct ckpt_error *err)
{
	struct dump_app a = { 0 };
	int r = add_proc(&a, pid, err);
	*count = 0;
	/* Freezing: each process stopped before its children are listed. */
	for (size_t i = 0; i < a.n && r >= 0; i++) {
		pid_t p = a.p[i].pid;
		if (kill(p, freeze ? SIGSTOP : SIGCONT) < 0) {
			if (i == 0)
				r = ckpt_fail(err, errno, "process %d: %s", p, strerror(errno));
			continue;  /* a child gone meanwhile */
		}
		if (freeze && !wait_stopped(p)) {
			if (i == 0)
				r = ckpt_fail(err, ESRCH, "process %d did not stop", p);
			continue;
		}
		char st = 0;
		pid_t pp, pg, sd;
		int code;
		if (read_stat(p, &st, &pp, &pg, &sd, &code) == 0 && st != 'Z' && st != 'X')
			++*count;  /* zombies neither stop nor count */
		if (r >= 0)
			r = add_children(&a, p, err);
		if (r == -ESRCH && i > 0) {
			err->msg[0] = 0;  /* a child that ended meanwhile */
			r = 0;
		}
	}
	free(a.p);
	return r < 0 ? r : 0;
}

int ckpt_app_locks(pid_t pid, const char *dir, bool take, struct ckpt_error *err)
{
	struct ckpt_image img;
	int r = ckpt_image_load(dir, false, &img, err);
	if (r < 0)
		return r;
	const Krg__Ckpt__Files *f = img.n_live ? img.files[0] : NULL;
	bool any = false;
	for (size_t i = 0; f && i < f->n_fds; i++)
		any |= f->fds[i]->n_locks > 0 && !f->fds[i]->has_dup_of;
	if (!any) {
		ckpt_image_free(&img);
		return 0;
	}
	struct ckpt_thread *th = NULL;
	size_t nth = 0;
	if ((r = ckpt_seize_all(pid, &th, &nth, err)) < 0) {
		ckpt_image_free(&img);
		return r;
	}
	/* th[0]: the leader, or a live thread if it exited */
	struct ckpt_tracee t = { .pid = th[0].tid, .code = ckpt_find_syscall_insn(th[0].tid) };
	if (!t.code)
		r = ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction", pid);
	long ret = r < 0 ? 0 : ckpt_syscall(&t, err, SYS_mmap, 0, CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == 0 && (ret < 0 || err->msg[0]))
		r = ckpt_fail(err, ret < 0 && ret > -4096 ? (int)-ret : EIO, "process %d: scratch mmap failed", pid);
	if (r == 0) {
		t.scratch = (uint64_t)ret;
		t.scratch_len = CKPT_PAGE;
		for (size_t i = 0; i < f->n_fds && r == 0; i++)
			if (f->fds[i]->n_locks && !f->fds[i]->has_dup_of)
				r = ckpt_locks_apply(&t, f->fds[i], take, err);
		ckpt_syscall(&t, err, SYS_munmap, (long)t.scratch, CKPT_PAGE, 0, 0, 0, 0);
	}
	/* Back to what it was doing, as after a dump. */
	ckpt_thread_put_back(&th[0], t.pending_sigs);
	ckpt_release_all(pid, th, nth, false);
	ckpt_image_free(&img);
	return r;
}
