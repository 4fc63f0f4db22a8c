/* ckpt-int.h — private to src/ckpt. Map of the module:
 *   image.c    framed, checksummed image files (read, verify, write)
 *   ptrace.c   seize/interrupt, registers, syscall injection
 *   core.c     registers, signals, cwd/umask/rlimits/creds (core-<pid>.img)
 *   mm.c       VMAs and page contents (mm-<pid>.img, pages-<pid>.img)
 *   precopy.c  a live migration's memory copied while the process runs
 *   files.c    file descriptors, one ops struct per kind (files-<pid>.img)
 *   dump.c     orchestrates a checkpoint
 *   restore.c  orchestrates a restart
 *   show.c     krg image show */
#pragma once
#include "lib/fileio.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/ioctl.h>
#include "ckpt/ckpt.h"
#include "proto/ckpt.pb-c.h"

/* PAGEMAP_SCAN (Linux 6.7; precopy.c, mm.c): the C library's kernel
 * headers may predate it; the values are ABI. */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PM_SCAN_WP_MATCHING (1 << 0)
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PAGE_IS_PFNZERO
#define PAGE_IS_PFNZERO (1 << 5)
#endif

/* In n areas stride bytes apart, each a struct that begins with
 * `uint64_t start, end` ([start, end), sorted, disjoint): the one holding
 * addr, or NULL (pre-copy's areas, incremental checkpoints' VMAs). */
static inline void *ckpt_area_find(const void *base, size_t n, size_t stride, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *a = (const char *)base + mid * stride;
		uint64_t se[2];
		memcpy(se, a, sizeof(se));
		if (addr < se[0])
			hi = mid;
		else if (addr >= se[1])
			lo = mid + 1;
		else
			return (void *)a;
	}
	return NULL;
}
#define CKPT_AREA_HEAD(type) \
	_Static_assert(offsetof(type, start) == 0 && offsetof(type, end) == sizeof(uint64_t), #type " begins with start, end")

/* Every region PAGEMAP_SCAN reports for base (its flags, masks, start and
 * end), walked to base.end: a call stops at vec_len regions, or where
 * the kernel stops. fn(ctx, region, err) for each, in address order
 * (fn NULL: none); a negative return stops the walk (pmscan.c). 0, fn's
 * negative return, or the ioctl's -errno said in err. may_fall_back: a
 * kernel without PAGEMAP_SCAN (ENOTTY, EINVAL, EOPNOTSUPP at the first
 * call) returns 1 before any fn call, err left empty. */
typedef int (*ckpt_pm_fn)(void *ctx, const struct page_region *g, struct ckpt_error *err);
int ckpt_pm_scan(pid_t pid, int pmfd, struct pm_scan_arg base, struct page_region *vec, size_t vec_len, bool may_fall_back,
		 ckpt_pm_fn fn, void *ctx, struct ckpt_error *err);

/* UFFDIO_API on uffd (ckpt_uffd_take's) with asynchronous
 * write-protection, and protection of pages not yet populated (without
 * it PAGEMAP_SCAN does not treat anonymous areas as write-protectable):
 * what pre-copy and incremental checkpoints track writes with
 * (uffd_take.c). 0, or -EOPNOTSUPP with err set; uffd stays open. */
int ckpt_uffd_wp_async(int uffd, struct ckpt_error *err);

#define CKPT_PAGE 4096UL
#define CKPT_TASK_SIZE 0x7ffffffff000UL

/* Fill err (first writer wins unless append) and return -errnum. */
int ckpt_fail(struct ckpt_error *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ckpt_fail_append(struct ckpt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- image.c ---- */
/* Built for tests/fuzz (scripts/fuzz.sh) only: checksums are computed but
 * not believed, so that the fuzzer gets past them to the decoders and
 * checks behind them. Never defined in a krg build. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CKPT_SUMS_CHECKED 0
#else
#define CKPT_SUMS_CHECKED 1
#endif
enum ckpt_part {
	CKPT_PART_INVENTORY = 1,
	CKPT_PART_CORE = 2,
	CKPT_PART_MM = 3,
	CKPT_PART_FILES = 4,
	CKPT_PART_PAGES = 5,
	CKPT_PART_SYSV = 6,   /* sysvipc.img: krg.ipc.Saved (sysv.c) */
};
const char *ckpt_part_name(enum ckpt_part part);

/* A file being written: frame first (filled at close), payload streamed,
 * checksum updated on the way, renamed into place at commit. */
struct ckpt_writer;
int ckpt_writer_open(int dirfd, const char *name, enum ckpt_part part, struct ckpt_writer **out, struct ckpt_error *err);
int ckpt_writer_write(struct ckpt_writer *w, const void *buf, size_t len, struct ckpt_error *err);
uint64_t ckpt_writer_offset(const struct ckpt_writer *w);
/* len bytes of payload left as a hole (written by someone else). */
int ckpt_writer_skip(struct ckpt_writer *w, uint64_t len, struct ckpt_error *err);
/* Pages only: its payload is not summed as written; feed the frame sum
 * the region sums instead (in VMA order) before commit. */
void ckpt_writer_sum(struct ckpt_writer *w, const void *buf, size_t len);
int ckpt_writer_commit(struct ckpt_writer *w, struct ckpt_error *err);  /* frees w */
void ckpt_writer_abort(struct ckpt_writer *w);                          /* frees w */
/* Durability later: while on, committed parts are not fsync'ed (a dump
 * that lets the application run on thaws it first); ckpt_image_sync then
 * fsyncs every part and the directory, before the inventory is written. */
void ckpt_image_defer_sync(bool on);
int ckpt_image_sync(int dirfd, struct ckpt_error *err);
/* Write one protobuf message as a whole part. */
int ckpt_write_msg(int dirfd, const char *name, enum ckpt_part part, const ProtobufCMessage *msg, struct ckpt_error *err);

/* A verified part, mapped read-only. */
struct ckpt_blob {
	void *map;            /* owned: the whole file mapping */
	size_t map_len;
	const uint8_t *data;  /* borrowed from map: the payload */
	size_t len;
	char name[64];        /* the file's name, for errors */
	uint8_t head[64];     /* its frame (an incremental image's pages: the increment's own) */
};
/* For CKPT_PART_PAGES only the frame is checked here: the payload is
 * verified by ckpt_mm_validate (per-VMA sums, then ckpt_pages_verify). */
int ckpt_read_part(int dirfd, const char *name, enum ckpt_part part, struct ckpt_blob *out, struct ckpt_error *err);
/* The pages frame sum: BLAKE2b-256 over the region sums, then the frame head. */
int ckpt_pages_verify(const struct ckpt_blob *pages, const uint8_t *sums, size_t len, struct ckpt_error *err);
void ckpt_blob_free(struct ckpt_blob *b);

/* Most processes one image holds (and one checkpoint freezes). */
#define CKPT_MAX_PROCS 4096

/* One process of an image; a zombie has only its info. */
struct ckpt_proc_image {
	const Krg__Ckpt__Process *info;  /* borrowed from the inventory */
	Krg__Ckpt__Core *core;           /* owned (protobuf-c unpacked); NULL: zombie */
	Krg__Ckpt__Mm *mm;
	Krg__Ckpt__Files *files;
	struct ckpt_blob pages;
};

/* The whole image, verified and decoded: every process in the
 * inventory's order (parents before children, the root first). */
struct ckpt_image {
	const char *dir;                 /* borrowed */
	Krg__Ckpt__Inventory *inv;       /* owned */
	struct ckpt_proc_image *procs;
	size_t n_procs;
	Krg__Ckpt__Files **files;        /* the live processes' files, in order (borrowed from procs) */
	size_t n_live;
};
/* with_pages: CKPT_LOAD_*. */
enum { CKPT_LOAD_NO_PAGES = 0, CKPT_LOAD_PAGES = 1,
       CKPT_LOAD_PAGES_LAZY = 2 /* pages of lazy VMAs (ckpt_vma_lazy) not checked yet: the lazy restore does */ };
int ckpt_image_load(const char *dir, int with_pages, struct ckpt_image *img, struct ckpt_error *err);
void ckpt_image_free(struct ckpt_image *img);

/* ---- ptrace.c ---- */
struct ckpt_thread {
	pid_t tid;
	struct user_regs_struct regs;  /* at freeze time */
	uint8_t *xsave;                /* owned */
	size_t xsave_len;
	uint64_t sigmask;
	int stop_sig;                  /* a signal that stopped it instead of the interrupt, to deliver at thaw */
};

/* A process whose code we can run syscalls in: `code` holds
 * "syscall; int3"; `scratch` is writable memory for arguments. */
struct ckpt_tracee {
	pid_t pid;
	uint64_t code;
	uint64_t scratch;
	size_t scratch_len;
	uint64_t pending_sigs;  /* signals caught while injecting, re-sent at detach */
	bool unpriv;            /* an existing process restored in place (ckpt_restore_opts.into): it runs as
				   its user already, so steps that need privileges are skipped where they
				   would change nothing (its groups, its file system ids) */
	/* Set by ckpt_inj_attach only: the process pid is a thread of. A
	 * thread that is not the leader takes this pid when its execve
	 * succeeds (execed then). */
	pid_t tgid;
	bool execed;
};

/* Freeze every thread of pid, the leader first; a leader that exited while
 * other threads run is left out (threads[0].tid != pid then). */
int ckpt_seize_all(pid_t pid, struct ckpt_thread **threads, size_t *n, struct ckpt_error *err);
/* The leader of pid is a zombie thread and other threads still run. */
bool ckpt_leader_exited(pid_t pid);
void ckpt_release_all(pid_t pid, struct ckpt_thread *threads, size_t n, bool kill_it);
int ckpt_get_regs(pid_t tid, struct ckpt_thread *t, struct ckpt_error *err);
/* Thread t back to what it was doing when frozen (a syscall it was
 * stopped in restarts), the first of the signals in pending (caught
 * while injecting) kept to be sent at its release. */
void ckpt_thread_put_back(struct ckpt_thread *t, uint64_t pending);
int ckpt_inject(struct ckpt_tracee *t, long nr, const long args[6], long *ret, struct ckpt_error *err);
long ckpt_syscall(struct ckpt_tracee *t, struct ckpt_error *err, long nr, long a1, long a2, long a3, long a4, long a5, long a6);
int ckpt_poke(pid_t pid, uint64_t addr, const void *buf, size_t len);
int ckpt_peek(pid_t pid, uint64_t addr, void *buf, size_t len);
size_t ckpt_xsave_size(void);
uint64_t ckpt_xcr0(void);

/* ---- waitstate.c: what a parent's wait() sees ---- */
/* The restore shell t (pid `inner` as the application sees it) dies as
 * zombie `info` died, and stays for its parent to reap. */
int ckpt_zombie_die(struct ckpt_tracee *t, pid_t inner, const Krg__Ckpt__Process *info, struct ckpt_error *err);
bool ckpt_sig_pending(pid_t pid, int sig);
/* Process pid, let go with `sig` queued, is in its group stop (up to 2 s). */
int ckpt_stop_released(pid_t pid, int32_t img_pid, int sig, struct ckpt_error *err);
/* Its parent (still a tracee) sees that stop as before the checkpoint:
 * stop_signal 0 (collected then) collected again; the new SIGCHLD taken
 * back unless chld_was_pending. */
int ckpt_stop_parent_view(struct ckpt_tracee *parent, int32_t parent_pid, const Krg__Ckpt__Core *pcore, pid_t child_inner,
			  int32_t child_pid, int stop_signal, bool chld_was_pending, struct ckpt_error *err);

/* ---- seccomp.c ---- */
/* Which seccomp filter the process has: none, or krg's IPC filter
 * (*intercepted); any other is refused (one line in err). */
int ckpt_seccomp_dump(pid_t pid, const struct ckpt_thread *th, size_t n, bool *intercepted, struct ckpt_error *err);
/* Install krg's IPC filter in tracee t by an injected seccomp(); its
 * listener, taken out of t, in *listener (close-on-exec). sockets: the
 * one that sends getsockname/getpeername to the listener as well (a
 * migrant with forwarded sockets). */
int ckpt_seccomp_restore(struct ckpt_tracee *t, int *listener, bool sockets, struct ckpt_error *err);

/* ---- core.c ---- */
int ckpt_core_dump(struct ckpt_tracee *t, struct ckpt_thread *threads, size_t n, Krg__Ckpt__Core **out, uint64_t *brk, struct ckpt_error *err);
void ckpt_core_free(Krg__Ckpt__Core *c);
/* Task state before registers: signals, cwd, umask, rlimits, rseq, ... */
int ckpt_core_restore_task(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, struct ckpt_error *err);
int ckpt_core_restore_creds(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, struct ckpt_error *err);
/* Per thread, injected into that thread (the leader's is done by _task). */
int ckpt_core_restore_thread(struct ckpt_tracee *t, const Krg__Ckpt__ThreadCore *tc, const char *comm_fallback, struct ckpt_error *err);
/* Pending signals (tids[i]: new tid of threads[i]) and itimers, injected
 * into the leader with every signal blocked. */
int ckpt_core_restore_signals(struct ckpt_tracee *t, const Krg__Ckpt__Core *c, pid_t self, const pid_t *tids, struct ckpt_error *err);
/* Registers last, with syscall-restart fix-up. */
int ckpt_core_restore_regs(pid_t pid, const Krg__Ckpt__ThreadCore *tc, struct ckpt_error *err);
/* A thread stopped inside a syscall: set rax/rip to re-run it, orig_rax -1. */
void ckpt_regs_fixup_restart(struct user_regs_struct *r);
/* Address of a `syscall` instruction in pid's vdso (for injections), or 0. */
uint64_t ckpt_find_syscall_insn(pid_t pid);
void ckpt_regs_to_pb(const struct user_regs_struct *r, Krg__Ckpt__GpRegs *pb);
void ckpt_regs_from_pb(const Krg__Ckpt__GpRegs *pb, struct user_regs_struct *r);

/* ---- precopy.c, for the final dump ---- */
/* The pages writer pre-copy keeps for process pid, or NULL. */
struct ckpt_writer *ckpt_precopy_writer(const struct ckpt_precopy *pc, pid_t pid);
/* The dump is done with it: committed (the image's now) or failed (dropped). */
void ckpt_precopy_writer_done(struct ckpt_precopy *pc, bool committed);
/* The process frozen: forget the copies of pages written since. */
int ckpt_precopy_final(struct ckpt_precopy *pc, struct ckpt_error *err);
/* The current copy of the page at addr: payload offset and XXH3-64. */
bool ckpt_precopy_lookup(const struct ckpt_precopy *pc, uint64_t addr, uint64_t *off, uint64_t *sum);

/* ---- incr.c (incremental checkpoints) ---- */
/* One process's dump with a write tracker (uffd, -1: none) and the mm of
 * the parent image for its pid (NULL: none; page sums checked by
 * ckpt_incr_parent_check). */
struct ckpt_incr;
struct ckpt_incr *ckpt_incr_new(pid_t pid, int uffd, const Krg__Ckpt__Mm *parent);
void ckpt_incr_free(struct ckpt_incr *in);
/* The parent's pages payload length (where this image's own begins). */
uint64_t ckpt_incr_base(const struct ckpt_incr *in);
/* Before VMA v is dumped (frozen): register and protect, or find what
 * was written since the parent; sets v->tracked. 0 or -errno. */
int ckpt_incr_vma(struct ckpt_incr *in, int pmfd, Krg__Ckpt__Vma *v, struct ckpt_error *err);
/* The parent's copy of the clean page at addr of that VMA: logical offset and XXH3-64. */
bool ckpt_incr_lookup(struct ckpt_incr *in, uint64_t addr, uint64_t *off, uint64_t *sum);
/* The dump failed: unregister what it registered (see incr.c). */
void ckpt_incr_undo(struct ckpt_incr *in);
/* Vma.page_sums against Vma.checksum, for every VMA that has them. */
int ckpt_incr_parent_check(const Krg__Ckpt__Mm *mm, const char *what, struct ckpt_error *err);
/* The parent of image inv (in dirfd, named dir for errors): its
 * directory (*pfd, owned) and verified inventory, the identity checked.
 * One line in err otherwise. */
int ckpt_parent_open(int dirfd, const char *dir, const Krg__Ckpt__Inventory *inv, int *pfd, Krg__Ckpt__Inventory **pinv,
		     struct ckpt_error *err);
/* pages (the increment's own file, read by ckpt_read_part) becomes the
 * whole payload of process mm->pid, its parents' bytes first. */
int ckpt_chain_pages(int dirfd, const char *dir, const Krg__Ckpt__Inventory *inv, const Krg__Ckpt__Mm *mm, struct ckpt_blob *pages,
		     struct ckpt_error *err);

/* ---- mm.c ---- */
/* pc may be NULL; with pc's writer for pid, pages go on its file (sparse).
 * acc: the thread to read through (pid, or a live thread when the leader
 * exited). seen (may be NULL): shared anonymous objects saved by earlier
 * processes of the same dump (their first window), extended by this one:
 * pages of a window already saved are not saved again. */
struct ckpt_shm_table;
/* A userfaultfd made in tracee t (process pid), taken here (*out), its
 * copy there closed, and [at, at + size) registered for the DSM (missing,
 * minor and write-protect faults; fork events): map_answer.c. devfd:
 * /dev/userfaultfd open in the tracee, or -1 (see ckpt_map_answer). */
int ckpt_dsm_uffd(struct ckpt_tracee *t, pid_t pid, long devfd, uint64_t at, uint64_t size, int *out, struct ckpt_error *err);
int ckpt_mm_dump(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_incr *in,
		 struct ckpt_shm_table *seen, Krg__Ckpt__Mm **out, struct ckpt_error *err);
void ckpt_mm_free(Krg__Ckpt__Mm *mm);
/* defer_lazy: leave the pages of lazy VMAs unchecked (their sums are
 * still covered by the frame sum): a lazy restore checks them. */
int ckpt_mm_validate(const Krg__Ckpt__Mm *mm, const struct ckpt_blob *pages, bool defer_lazy, struct ckpt_error *err);
/* Page sums checked a step at a time (validate, lazy.c). */
bool ckpt_vma_lazy(const Krg__Ckpt__Vma *v);
struct ckpt_vma_check;
struct ckpt_vma_check *ckpt_vma_check_new(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse);
/* Hash about budget more bytes (*hashed: how many): 0 more to do, 1 all
 * done and the sum matches, -EBADMSG it does not. */
int ckpt_vma_check_step(struct ckpt_vma_check *c, uint64_t budget, uint64_t *hashed);
void ckpt_vma_check_range(const struct ckpt_vma_check *c, uint64_t *start, uint64_t *end);
void ckpt_vma_check_free(struct ckpt_vma_check *c);
/* Wait (up to timeout_ms) until no VMA of pid is registered for missing
 * pages (smaps VmFlags "um": a lazy restore still copying its memory in);
 * the dump reads present pages only. -EBUSY with the line in err. */
int ckpt_mm_wait_filled(pid_t pid, int timeout_ms, struct ckpt_error *err);
/* Shared anonymous memory objects restored (or dumped) so far in an
 * application: a later process that maps the same object (Vma.shmem_ino)
 * maps the owner's through /proc/<owner>/map_files instead of a copy. The
 * first process to map an object, in image order, is its owner at dump
 * and at restore alike. */
struct ckpt_shm {
	uint64_t ino;
	pid_t owner;               /* as the restored processes see it */
	uint64_t start, end, pgoff;
};
struct ckpt_shm_table {
	struct ckpt_shm *e;        /* owned */
	size_t n;
	bool dsm_follow;           /* dump: ckpt_dump_opts.dsm_follow */
	struct ckpt_dsm_hooks *dsm;/* restore: ckpt_restore_opts.dsm (borrowed) */
};
static inline void ckpt_shm_table_done(struct ckpt_shm_table *t)
{
	free(t->e);
	t->e = NULL;
	t->n = 0;
}
/* self: the tracee's pid as the application sees it; shm may be NULL. */
/* lz (may be NULL): copy private anonymous memory in lazily (lazy.c),
 * its thread started before this returns. */
struct ckpt_lazy;
/* The process a tracee was forked from after that one's memory was
 * restored: its image, whose memory the tracee holds copy-on-write. */
struct ckpt_mm_parent {
	const Krg__Ckpt__Mm *mm;           /* borrowed */
	const struct ckpt_blob *pages;     /* borrowed */
};
/* from (may be NULL): private anonymous VMAs the image has exactly as
 * from's are kept, still shared copy-on-write with it; only the pages
 * that differ are written, and those from has and this image has not are
 * dropped (MADV_DONTNEED). */
int ckpt_mm_restore(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, const struct ckpt_blob *pages, struct ckpt_shm_table *shm, pid_t self,
		    struct ckpt_lazy *lz, const struct ckpt_mm_parent *from, struct ckpt_error *err);

/* ---- lazy.c: post-copy from the image, for a migration ---- */
struct ckpt_lazy *ckpt_lazy_new(void);
/* Take uffd (made in the restored process, duplicated to us): events on. -errno. */
int ckpt_lazy_attach(struct ckpt_lazy *lz, int uffd);
int ckpt_lazy_uffd(const struct ckpt_lazy *lz);
/* VMA v, registered on the uffd for missing pages: its runs to copy in, its sum to check. */
void ckpt_lazy_add(struct ckpt_lazy *lz, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse);
/* Start the thread (if anything was added) serving faults and copying;
 * pid: the process, killed if a page sum fails. 0 or -errno. */
int ckpt_lazy_start(struct ckpt_lazy *lz, pid_t pid);
/* The pages mapping is the lazy restore's from now (freed with it). */
void ckpt_lazy_take_map(struct ckpt_lazy *lz, struct ckpt_blob *pages);
bool ckpt_lazy_running(const struct ckpt_lazy *lz);
int ckpt_mm_restore_fields(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, struct ckpt_error *err);
/* The madvise state, locks and seals of the VMAs (Vma.vmflags), with the
 * process's own credentials and limits: after every process is forked
 * (MADV_DONTFORK, MADV_WIPEONFORK would change what children inherit). */
int ckpt_mm_restore_advice(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, struct ckpt_error *err);
const char *ckpt_vma_kind_name(Krg__Ckpt__VmaKind k);
/* A free spot of `len` bytes in every process of the image and in the
 * address space of process pid (0: our own, which the restored processes
 * start as a copy of; else the existing process restored in place); 0 if
 * none. */
uint64_t ckpt_mm_helper_addr(const Krg__Ckpt__Mm *const *mms, size_t n, uint64_t len, pid_t pid);

/* ---- files.c ---- */
/* How one kind of fd is saved and restored: a versioned ops struct, so a
 * kind added later is one more entry. */
struct ckpt_fd_rctx;
struct ckpt_fd_ops {
	unsigned version;        /* CKPT_FD_OPS_VERSION */
	const char *kind;        /* stored in Fd.kind */
	bool needs_path;         /* Fd.path must be an absolute path */
	/* Does fd N of the process (stat of /proc/PID/fd/N, its link) belong to us? */
	bool (*match)(pid_t pid, int fd, const struct stat *st, const char *link);
	/* Fill what the generic part did not (path, size, ...). 0 or -errno. */
	int (*dump)(pid_t pid, int fd, const struct stat *st, const char *link, Krg__Ckpt__Fd *out, struct ckpt_error *err);
	/* Recreate it in the tracee as fd->fd (and, for pairs, its peer). */
	int (*restore)(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err);
};
#define CKPT_FD_OPS_VERSION 2
/* One process's fds. snapshot: save the content of regular files open for
 * writing. in_app: an end whose partner is in another process is left for
 * ckpt_files_link_app instead of being refused. */
int ckpt_files_dump(pid_t pid, bool ignore_unsupported, bool snapshot, bool in_app, Krg__Ckpt__Files **out, struct ckpt_error *err);
/* Across the processes of an application (restore order): shared open
 * file descriptions and pipes/socketpairs between processes. */
int ckpt_files_link_app(Krg__Ckpt__Files **f, size_t n, bool ignore_unsupported, struct ckpt_error *err);
void ckpt_files_free(Krg__Ckpt__Files *f);
int ckpt_files_validate(const Krg__Ckpt__Files *f, struct ckpt_error *err);
int ckpt_files_validate_app(Krg__Ckpt__Files *const *f, size_t n, struct ckpt_error *err);

/* A restore of several processes, one after the other in image order. */
struct ckpt_parked {
	size_t owner;     /* index of the process that made the object and keeps this end */
	int32_t for_pid;  /* image pid and fd number of the process that takes it */
	int32_t for_fd;
	int fd;           /* where the owner keeps it */
};
struct ckpt_app_fds {
	Krg__Ckpt__Files *const *files;  /* borrowed: every live process, in order */
	size_t n;
	const pid_t *inner;              /* their pids as the restored processes see them */
	struct ckpt_parked *parked;      /* owned */
	size_t n_parked;
	const char *replace_tty;         /* --replace-tty: the terminal every tty fd becomes; NULL: their own */
	struct ckpt_shm_table shm;       /* shared anonymous memory restored so far */
	bool session_leader;             /* the process being restored leads its session (its ctty comes back) */
	/* A restore into an existing process (ckpt_restore_opts.into): its
	 * fd keep_fd[i] becomes fd keep_num[i] in place of the image's entry
	 * there; every other fd it had is closed. */
	const int *keep_num, *keep_fd;
	size_t n_keep;
};
int ckpt_files_restore(struct ckpt_tracee *t, struct ckpt_app_fds *app, size_t idx, struct ckpt_error *err);
/* Once every process has its fds: the kept ends go. */
int ckpt_files_close_parked(struct ckpt_app_fds *app, struct ckpt_tracee *const *tracees, struct ckpt_error *err);
/* Take (or release) the file locks an fd entry lists, in the tracee. */
int ckpt_locks_apply(struct ckpt_tracee *t, const Krg__Ckpt__Fd *fd, bool take, struct ckpt_error *err);

/* small helpers (image.c) */
char *ckpt_strdup(const char *s);
