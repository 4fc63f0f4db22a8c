/* dump.c — a checkpoint, in order: freeze every thread, refuse early if
 * an fd cannot be saved, ask the leader what only it can tell (signal
 * actions, brk, ...) through injected syscalls, save memory, write the
 * parts, inventory last; then thaw (or kill). */
#include <errno.h>
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
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/macro.h"

/* A `syscall` instruction (0f 05) in the tracee's vdso: its fallback
 * paths have some. 0 if none. */
static uint64_t find_syscall_insn(pid_t pid)
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

static void cleanup_dir(int dirfd, pid_t pid)
{
	const char *fmt[] = { "core-%d.img", "mm-%d.img", "files-%d.img", "pages-%d.img", ".pages-%d.img.tmp" };
	char name[64];
	for (size_t i = 0; i < ARRAY_SIZE(fmt); i++) {
		snprintf(name, sizeof(name), fmt[i], pid);
		unlinkat(dirfd, name, 0);
	}
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

	struct ckpt_thread *th = NULL;
	size_t nth = 0;
	if ((r = ckpt_seize_all(pid, &th, &nth, err)) < 0)
		goto out_dir;

	Krg__Ckpt__Files *files = NULL;
	Krg__Ckpt__Core *core = NULL;
	Krg__Ckpt__Mm *mm = NULL;
	uint64_t brk = 0;
	bool injected = false;
	struct ckpt_tracee t = { .pid = pid };
	if ((r = ckpt_files_dump(pid, opts->ignore_unsupported, &files, err)) < 0)
		goto out;

	/* Inject into the leader: a scratch page for the answers. */
	t.code = find_syscall_insn(pid);
	if (!t.code) {
		r = ckpt_fail(err, EOPNOTSUPP, "process %d has no vdso with a syscall instruction: cannot ask it for its signal actions", pid);
		goto out;
	}
	injected = true;
	long ret = ckpt_syscall(&t, err, SYS_mmap, 0, CKPT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ret < 0 && ret > -4096) {
		r = ckpt_fail(err, (int)-ret, "process %d: scratch mmap: %s", pid, strerror((int)-ret));
		goto out;
	} else if (err->msg[0]) {
		r = -EIO;
		goto out;
	}
	t.scratch = (uint64_t)ret;
	t.scratch_len = CKPT_PAGE;
	r = ckpt_core_dump(&t, th, nth, &core, &brk, err);
	ckpt_syscall(&t, err, SYS_munmap, (long)t.scratch, CKPT_PAGE, 0, 0, 0, 0);
	/* Back to what it was doing, registers and all (a syscall it was in
	 * is restarted by hand: we are past the stop where the kernel would). */
	struct user_regs_struct lregs = th[0].regs;
	ckpt_regs_fixup_restart(&lregs);
	struct iovec iov = { &lregs, sizeof(lregs) };
	if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov) < 0 && r >= 0)
		r = ckpt_fail(err, errno, "process %d: putting its registers back: %s", pid, strerror(errno));
	injected = false;
	if (r < 0)
		goto out;
	if (err->msg[0]) {
		r = -EIO;
		goto out;
	}

	if ((r = ckpt_mm_dump(pid, brk, dirfd, &mm, err)) < 0)
		goto out;
	char name[64];
	snprintf(name, sizeof(name), "core-%d.img", pid);
	if ((r = ckpt_write_msg(dirfd, name, CKPT_PART_CORE, &core->base, err)) < 0)
		goto out;
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	if ((r = ckpt_write_msg(dirfd, name, CKPT_PART_MM, &mm->base, err)) < 0)
		goto out;
	snprintf(name, sizeof(name), "files-%d.img", pid);
	if ((r = ckpt_write_msg(dirfd, name, CKPT_PART_FILES, &files->base, err)) < 0)
		goto out;

	Krg__Ckpt__Inventory inv = KRG__CKPT__INVENTORY__INIT;
	int32_t pids[1] = { pid };
	struct utsname u;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uname(&u);
	inv.image_version = CKPT_IMAGE_VERSION;
	inv.arch = KRG__CKPT__ARCH__ARCH_X86_64;
	inv.root_pid = pid;
	inv.n_pids = 1;
	inv.pids = pids;
	inv.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	inv.kernel = u.release;
	inv.description = (char *)opts->description;
	inv.xsave_size = (uint32_t)th[0].xsave_len;
	inv.has_xcr0 = true;
	inv.xcr0 = ckpt_xcr0();
	inv.has_killed = true;
	inv.killed = opts->kill;
	if ((r = ckpt_write_msg(dirfd, "inventory.img", CKPT_PART_INVENTORY, &inv.base, err)) < 0)
		goto out;
	fsync(dirfd);
out:
	if (injected) {
		struct user_regs_struct lregs2 = th[0].regs;
		ckpt_regs_fixup_restart(&lregs2);
		struct iovec iov2 = { &lregs2, sizeof(lregs2) };
		ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov2);
	}
	/* Signals that reached it while we injected are its own: give them back. */
	for (int s = 1; s <= 64; s++)
		if (t.pending_sigs & (1ULL << (s - 1)))
			th[0].stop_sig = th[0].stop_sig ? th[0].stop_sig : s;
	ckpt_release_all(pid, th, nth, r == 0 && opts->kill);
	ckpt_files_free(files);
	ckpt_core_free(core);
	ckpt_mm_free(mm);
out_dir:
	if (r < 0) {
		cleanup_dir(dirfd, pid);
		if (created)
			rmdir(dir);
	}
	return r;
}
