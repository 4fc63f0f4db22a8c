/* mm_restore.c — memory at restore: mappings rebuilt in the tracee, private
 * data filled through a userfaultfd (a part of mm.c, mm-int.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <linux/prctl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>
#include "ckpt/ckpt-int.h"
#include "lib/fault.h"
#include "lib/macro.h"
#include "ckpt/mm-int.h"

/* ---- restore ---- */

struct range {
	uint64_t start, end;
	char name[32];
};

/* The tracee's current mappings. */
static int read_ranges(pid_t pid, struct range *out, size_t max, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[4352];
	*n = 0;
	while (fgets(line, sizeof(line), f) && *n < max) {
		unsigned long s, e;
		int pos = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &s, &e, &pos) < 2)
			continue;
		struct range *r = &out[(*n)++];
		r->start = s, r->end = e;
		snprintf(r->name, sizeof(r->name), "%s", line + pos);
		r->name[strcspn(r->name, "\n")] = 0;
	}
	return 0;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2) { return s1 < e2 && s2 < e1; }

static bool free_in_image(const Krg__Ckpt__Mm *mm, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (overlaps(s, e, mm->vmas[i]->start, mm->vmas[i]->end))
			return false;
	return true;
}

/* An address range of `len` bytes free in the image and in `busy`. */
static uint64_t find_free(const Krg__Ckpt__Mm *const *mms, size_t nmm, const struct range *busy, size_t nbusy, uint64_t len)
{
	for (uint64_t a = 0x10000000UL; a + len < CKPT_TASK_SIZE; a += 0x200000UL) {
		/* Keep a page clear on both sides: nothing merges with it. */
		uint64_t s = a - CKPT_PAGE, e = a + len + CKPT_PAGE;
		bool ok = true;
		for (size_t k = 0; k < nmm && ok; k++)
			ok = free_in_image(mms[k], s, e);
		for (size_t i = 0; i < nbusy && ok; i++)
			ok = !overlaps(s, e, busy[i].start, busy[i].end);
		if (ok)
			return a;
	}
	return 0;
}

uint64_t ckpt_mm_helper_addr(const Krg__Ckpt__Mm *const *mms, size_t nmm, uint64_t len, pid_t pid)
{
	static struct range self[8192];
	size_t n;
	if (read_ranges(pid ? pid : getpid(), self, ARRAY_SIZE(self), &n) < 0)
		return 0;
	return find_free(mms, nmm, self, n, len);
}

long ckpt_mm_sys(struct ckpt_tracee *t, struct ckpt_error *err, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	return ckpt_syscall(t, err, nr, a1, a2, a3, a4, a5, a6);
}

/* vdso/vvar: the kernel maps its own; move them where the image had its
 * (code in the process may hold pointers into the old vdso). Moved as a
 * block with mremap: vdso code finds its data at a fixed distance. */
static int relocate_vdso(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, struct range *sp, size_t nsp, struct ckpt_error *err)
{
	const Krg__Ckpt__Vma *img[8];
	size_t ni = 0;
	for (size_t i = 0; i < mm->n_vmas && ni < 8; i++)
		if (mm->vmas[i]->kind == KRG__CKPT__VMA_KIND__VMA_VDSO || mm->vmas[i]->kind == KRG__CKPT__VMA_KIND__VMA_VVAR)
			img[ni++] = mm->vmas[i];
	long ret;
	if (!ni) {  /* the image had no vdso: neither will it now */
		for (size_t i = 0; i < nsp; i++)
			ckpt_mm_sys(t, err, SYS_munmap, (long)sp[i].start, (long)(sp[i].end - sp[i].start), 0, 0, 0, 0);
		return err->msg[0] ? -EIO : 0;
	}
	if (!nsp)
		return ckpt_fail(err, EOPNOTSUPP, "the image has a vdso and this kernel gives none (vdso=0?)");
	/* Same names, sizes and distances, or the layouts differ. */
	bool same = ni == nsp;
	for (size_t i = 0; same && i < ni; i++)
		same = img[i]->name && !strcmp(img[i]->name, sp[i].name) && img[i]->end - img[i]->start == sp[i].end - sp[i].start &&
		       img[i]->start - img[0]->start == sp[i].start - sp[0].start;
	if (!same)
		return ckpt_fail(err, EOPNOTSUPP, "the vdso/vvar layout of this kernel differs from the image's (%zu areas here, %zu in the image, first %s at %#llx): restart on a node with the same kernel",
				 nsp, ni, img[0]->name ? img[0]->name : "?", (unsigned long long)img[0]->start);
	if (img[0]->start == sp[0].start)
		return 0;
	uint64_t span = sp[nsp - 1].end - sp[0].start;
	struct range busy[10];
	size_t nb = 0;
	busy[nb++] = (struct range){ t->code & ~(CKPT_PAGE - 1), t->scratch + t->scratch_len, "" };
	busy[nb++] = (struct range){ sp[0].start, sp[nsp - 1].end, "" };
	uint64_t tmp = find_free(&mm, 1, busy, nb, span);
	if (!tmp)
		return ckpt_fail(err, ENOMEM, "no room to move the vdso");
	/* Two steps (to a free spot, then home) so a target overlapping the
	 * current place is no problem. */
	for (int step = 0; step < 2; step++)
		for (size_t i = 0; i < nsp; i++) {
			uint64_t len = sp[i].end - sp[i].start;
			uint64_t from = step == 0 ? sp[i].start : tmp + (sp[i].start - sp[0].start);
			uint64_t to = step == 0 ? tmp + (sp[i].start - sp[0].start) : img[i]->start;
			ret = ckpt_mm_sys(t, err, SYS_mremap, (long)from, (long)len, (long)len, MREMAP_MAYMOVE | MREMAP_FIXED, (long)to, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "moving %s from %#llx to %#llx: %s", sp[i].name, (unsigned long long)from,
						 (unsigned long long)to, strerror((int)-ret));
		}
	return 0;
}

/* Page contents go in with userfaultfd (UFFDIO_COPY): the tracee makes
 * the uffd (bound to its mm), krg takes a duplicate with pidfd_getfd, and
 * every run of an anonymous or shared-anonymous VMA is copied straight
 * from krg's mapping of the pages file into freshly allocated pages of the
 * tracee, tens of MiB per ioctl: no zeroed page first, no page-by-page
 * fault or get_user_pages as with process_vm_writev. The range is
 * registered only while being filled (nothing ever faults on it: the
 * tracee is stopped) and unregistered after, so the VMA ends as a plain
 * one; the uffd is closed at the end of the restore. Private file
 * mappings (their COW'd pages), or a kernel without userfaultfd, go
 * through process_vm_writev. */
struct filler {
	int uffd;  /* krg's duplicate, or -1: process_vm_writev */
};

static void filler_open(struct ckpt_tracee *t, struct filler *f, struct ckpt_error *err)
{
	f->uffd = -1;
	if (krg_fault_on("ckpt-no-uffd"))  /* the fallback, for tests and comparisons */
		return;
	long tfd = ckpt_mm_sys(t, err, SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);
	if (tfd == -EINVAL)  /* before 5.11: no user-mode-only flag */
		tfd = ckpt_mm_sys(t, err, SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0, 0);
	if (tfd < 0)
		return;
	int pfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pfd >= 0) {
		f->uffd = (int)syscall(SYS_pidfd_getfd, pfd, (int)tfd, 0);
		close(pfd);
	}
	ckpt_mm_sys(t, err, SYS_close, tfd, 0, 0, 0, 0, 0);  /* our duplicate keeps it */
	struct uffdio_api api = { .api = UFFD_API };
	if (f->uffd >= 0 && ioctl(f->uffd, UFFDIO_API, &api) < 0) {
		close(f->uffd);
		f->uffd = -1;
	}
}

static void filler_close(struct filler *f)
{
	if (f->uffd >= 0)
		close(f->uffd);
	f->uffd = -1;
}

/* len bytes from src to dst in the tracee, through the uffd. */
static int uffd_copy(int uffd, uint64_t dst, const uint8_t *src, uint64_t len)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len, .mode = UFFDIO_COPY_MODE_DONTWAKE };
		int rc = ioctl(uffd, UFFDIO_COPY, &c);
		int e = errno;
		if (c.copy > 0) {  /* partial (EAGAIN: the mm changed under it) or whole */
			dst += (uint64_t)c.copy, src += c.copy, len -= (uint64_t)c.copy;
			continue;
		}
		if (rc == 0)
			return -EIO;  /* nothing copied and no error: do not spin */
		if (e != EAGAIN && e != EINTR)
			return -e;
	}
	return 0;
}

/* The runs of v cut in pieces of at most FILL_PIECE bytes, taken in turn
 * by this thread and, for a big VMA, a second one: UFFDIO_COPY from two
 * threads at once is ~25% faster (the time goes into the tracee's new
 * pages, not into the copy). */
struct piece {
	uint64_t dst;
	const uint8_t *src;
	uint64_t len;
};
struct fill_job {
	int uffd;
	const struct piece *pieces;
	size_t n;
	atomic_size_t next;
	atomic_uint_fast64_t done;  /* bytes copied */
	atomic_int err;             /* first -errno */
};

static void fill_work(struct fill_job *j)
{
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n || atomic_load(&j->err))
			return;
		int r = uffd_copy(j->uffd, j->pieces[i].dst, j->pieces[i].src, j->pieces[i].len);
		if (r < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&j->err, &zero, r);
			return;
		}
		atomic_fetch_add(&j->done, j->pieces[i].len);
	}
}

static void *fill_thread(void *arg)
{
	fill_work(arg);
	return NULL;
}

static int uffd_fill_vma(int uffd, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages)
{
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	struct piece *pc = NULL;
	for (size_t j = 0; j < v->n_runs; j++) {
		const Krg__Ckpt__PageRun *run = v->runs[j];
		for (uint64_t off = 0; off < run->npages * CKPT_PAGE; off += FILL_PIECE) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				pc = realloc(pc, cap * sizeof(*pc));
				if (!pc)
					abort();
			}
			uint64_t len = MIN(run->npages * CKPT_PAGE - off, FILL_PIECE);
			pc[n++] = (struct piece){ run->start + off, pages->data + run->offset + off, len };
			total += len;
		}
	}
	struct fill_job job = { .uffd = uffd, .pieces = pc, .n = n };
	pthread_t th;
	bool two = total >= FILL_TWO_THREADS && pthread_create(&th, NULL, fill_thread, &job) == 0;
	/* This thread works too, and reports progress for both. */
	uint64_t reported = 0;
	for (;;) {
		size_t i = atomic_fetch_add(&job.next, 1);
		if (i >= job.n || atomic_load(&job.err))
			break;
		int r = uffd_copy(uffd, pc[i].dst, pc[i].src, pc[i].len);
		if (r < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&job.err, &zero, r);
			break;
		}
		atomic_fetch_add(&job.done, pc[i].len);
		uint64_t d = atomic_load(&job.done);
		ckpt_mm_progress_add(d - reported);
		reported = d;
	}
	if (two)
		pthread_join(th, NULL);
	ckpt_mm_progress_add(atomic_load(&job.done) - reported);
	free(pc);
	return atomic_load(&job.err);
}

/* The pages of v. */
static int fill_vma(struct filler *f, pid_t pid, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, struct ckpt_error *err)
{
	int r = 0;
	if (f->uffd >= 0 && v->kind != KRG__CKPT__VMA_KIND__VMA_FILE) {
		struct uffdio_register reg = { .range = { .start = v->start, .len = v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (ioctl(f->uffd, UFFDIO_REGISTER, &reg) == 0) {
			uint64_t before = ckpt_mm_progress_done();
			r = uffd_fill_vma(f->uffd, v, pages);
			struct uffdio_range rg = reg.range;
			if (ioctl(f->uffd, UFFDIO_UNREGISTER, &rg) < 0 && r == 0)
				r = -errno;
			if (r == 0)
				return 0;
			/* Whatever went wrong, the slow way writes it all again. */
			ckpt_mm_progress_rewind(before);
			r = 0;
		}
	}
	/* process_vm_writev, in steps so progress shows inside a big run. */
	for (size_t j = 0; j < v->n_runs && r == 0; j++) {
		const Krg__Ckpt__PageRun *run = v->runs[j];
		for (uint64_t off = 0; off < run->npages * CKPT_PAGE;) {
			uint64_t len = MIN(run->npages * CKPT_PAGE - off, CKPT_PROGRESS_STEP);
			r = ckpt_poke(pid, run->start + off, pages->data + run->offset + off, len);
			if (r < 0)
				return ckpt_fail(err, r, "writing %llu pages at %#llx: %s", (unsigned long long)run->npages, (unsigned long long)run->start,
						 strerror(-r));
			ckpt_mm_progress_add(len);
			off += len;
		}
	}
	return 0;
}

/* Shared anonymous memory already restored in an earlier process of the
 * application covering this VMA's window of the object: map that object
 * (through /proc/PID/map_files of the owner) instead of a new one. fd set
 * (or -1: none); *covered: no need to fill. */
static int shared_object(struct ckpt_tracee *t, struct ckpt_shm_table *shm, const Krg__Ckpt__Vma *v, long *fd, bool *covered,
			 struct ckpt_error *err)
{
	*fd = -1;
	*covered = false;
	if (!shm || !v->has_shmem_ino)
		return 0;
	const struct ckpt_shm *o = NULL;
	for (size_t i = 0; i < shm->n && !o; i++)
		if (shm->e[i].ino == v->shmem_ino)
			o = &shm->e[i];
	if (!o)
		return 0;
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)o->owner, (unsigned long long)o->start, (unsigned long long)o->end);
	if (ckpt_poke(t->pid, t->scratch, path, strlen(path) + 1) < 0)
		return ckpt_fail(err, EIO, "shared memory at %#llx: cannot pass %s", (unsigned long long)v->start, path);
	*fd = ckpt_mm_sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (*fd < 0)
		return ckpt_fail(err, *fd < -4095 ? EIO : (int)-*fd, "shared memory at %#llx: opening the object of process %d (%s): %s",
				 (unsigned long long)v->start, (int)o->owner, path, strerror((int)-*fd));
	uint64_t pg = v->has_pgoff ? v->pgoff : 0;
	*covered = pg >= o->pgoff && pg + (v->end - v->start) <= o->pgoff + (o->end - o->start);
	return 0;
}

void ckpt_mm_shared_record(struct ckpt_shm_table *shm, pid_t owner, const Krg__Ckpt__Vma *v)
{
	if (!shm || !v->has_shmem_ino)
		return;
	for (size_t i = 0; i < shm->n; i++)
		if (shm->e[i].ino == v->shmem_ino)
			return;
	struct ckpt_shm *ne = realloc(shm->e, (shm->n + 1) * sizeof(*ne));
	if (!ne)
		abort();
	shm->e = ne;
	shm->e[shm->n++] = (struct ckpt_shm){ .ino = v->shmem_ino, .owner = owner, .start = v->start, .end = v->end,
					      .pgoff = v->has_pgoff ? v->pgoff : 0 };
}

/* A userfaultfd for a lazy restore: made by the tracee while it is still
 * root (one that also takes faults from the kernel, e.g. a read() into a
 * missing page, which a user-mode-only one would fail with EFAULT), with
 * the fork/remap/remove/unmap events (krg must be CAP_SYS_PTRACE). On any
 * failure the restore is a plain one. */
static void lazy_open(struct ckpt_tracee *t, struct ckpt_lazy *lz, struct ckpt_error *err)
{
	long tfd = ckpt_mm_sys(t, err, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	if (tfd < 0)
		return;
	int fd = -1, pfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pfd >= 0) {
		fd = (int)syscall(SYS_pidfd_getfd, pfd, (int)tfd, 0);
		close(pfd);
	}
	ckpt_mm_sys(t, err, SYS_close, tfd, 0, 0, 0, 0, 0);
	if (fd >= 0 && ckpt_lazy_attach(lz, fd) < 0)
		close(fd);
}

/* The file of the last file mapping, still open in the tracee: a library
 * is mapped in four or five VMAs, and each injected syscall is a round
 * trip through ptrace that the process waits on, frozen. */
struct open_file {
	const char *path;  /* borrowed from the image */
	int oflags;
	long fd;           /* in the tracee; -1: none */
};

/* A System V segment of krgd's DSM (a migration, docs/dsm.md "Checkpoint
 * and migration"): this node's object of the segment, got from the hooks'
 * owner (krgd), opened in the tracee through /proc (it is still root
 * here), mapped where the image had it, and registered with a userfaultfd
 * made in the tracee before it runs: its pages come on demand. The
 * userfaultfd goes to the caller in shm->dsm->out. */
static int map_dsm(struct ckpt_tracee *t, struct ckpt_shm_table *shm, const Krg__Ckpt__Vma *v, struct ckpt_error *err)
{
	struct ckpt_dsm_hooks *h = shm ? shm->dsm : NULL;
	uint64_t len = v->end - v->start;
	int seg_id = (int)(v->dsm_seg >> 32);
	if (!h)
		return ckpt_fail(err, EOPNOTSUPP, "mapping %#llx-%#llx (System V segment %d, shared across nodes): restored only by a "
						  "migration through krgd", (unsigned long long)v->start, (unsigned long long)v->end, seg_id);
	int fd = h->segment(h->ctx, v->dsm_seg, v->dsm_npages);
	if (fd < 0)
		return ckpt_fail(err, -fd, "System V segment %d (shared across nodes): not served on this node: %s", seg_id,
				 strerror(-fd));
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
	if (ckpt_poke(t->pid, t->scratch, path, strlen(path) + 1) < 0)
		return ckpt_fail(err, EIO, "System V segment %d: cannot pass %s", seg_id, path);
	long tfd = ckpt_mm_sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (tfd < 0)
		return ckpt_fail(err, tfd < -4095 ? EIO : (int)-tfd, "System V segment %d: opening this node's object in the process: %s",
				 seg_id, strerror((int)-tfd));
	long ret = ckpt_mm_sys(t, err, SYS_mmap, (long)v->start, (long)len, v->prot, MAP_SHARED | MAP_FIXED_NOREPLACE, tfd,
			       v->has_pgoff ? (long)v->pgoff : 0);
	ckpt_mm_sys(t, err, SYS_close, tfd, 0, 0, 0, 0, 0);
	if (ret != (long)v->start)
		return ckpt_fail(err, ret < 0 && ret > -4096 ? (int)-ret : EIO, "mapping %#llx-%#llx (System V segment %d): %s",
				 (unsigned long long)v->start, (unsigned long long)v->end, seg_id,
				 ret < 0 && ret > -4096 ? strerror((int)-ret) : "mapped elsewhere");
	int uffd = -1;
	int r = ckpt_dsm_uffd(t, t->pid, -1, v->start, len, &uffd, err);
	if (r < 0)
		return r;
	struct ckpt_dsm_attach *no = realloc(h->out, (h->n + 1) * sizeof(*no));
	if (!no)
		abort();
	h->out = no;
	h->out[h->n++] = (struct ckpt_dsm_attach){ .seg = v->dsm_seg, .npages = v->dsm_npages, .addr = v->start, .len = len,
						   .prot = v->prot, .pid = t->pid, .uffd = uffd };
	return 0;
}

static int map_vma(struct ckpt_tracee *t, struct filler *f, struct ckpt_lazy *lz, struct open_file *of, struct ckpt_shm_table *shm,
		   pid_t self, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse, struct ckpt_error *err)
{
	if (v->kind == KRG__CKPT__VMA_KIND__VMA_DSM)
		return map_dsm(t, shm, v, err);
	long ret, fd = -1;
	uint64_t len = v->end - v->start;
	bool covered = false;
	int r0 = shared_object(t, shm, v, &fd, &covered, err);
	if (r0 < 0)
		return r0;
	bool fill = v->n_runs && !covered;
	uint32_t prot = v->prot | (fill ? PROT_READ | PROT_WRITE : 0);
	int flags = (int)(v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_NORESERVE)) | MAP_FIXED_NOREPLACE;
	if (fd >= 0)
		flags &= ~MAP_ANONYMOUS;
	if (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE) {
		size_t pl = strlen(v->path) + 1;
		int r;
		if (pl > t->scratch_len || (r = ckpt_poke(t->pid, t->scratch, v->path, pl)) < 0)
			return ckpt_fail(err, ENAMETOOLONG, "mapping %s: cannot pass its path", v->path);
		int oflags = (v->flags & MAP_SHARED) && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
		if (of->fd >= 0 && of->oflags == oflags && !strcmp(of->path, v->path)) {
			fd = of->fd;
		} else {
			if (of->fd >= 0)
				ckpt_mm_sys(t, err, SYS_close, of->fd, 0, 0, 0, 0, 0);
			of->fd = -1;
			fd = ckpt_mm_sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, oflags | O_CLOEXEC, 0, 0, 0);
			if (fd < 0)
				return ckpt_fail(err, fd < -4095 ? EIO : (int)-fd, "reopening %s to map it at %#llx: %s", v->path,
						 (unsigned long long)v->start, strerror((int)-fd));
			*of = (struct open_file){ v->path, oflags, fd };
		}
	}
	ret = ckpt_mm_sys(t, err, SYS_mmap, (long)v->start, (long)len, prot, flags, fd, fd >= 0 && v->has_pgoff ? (long)v->pgoff : 0);
	if (fd >= 0 && fd != of->fd)
		ckpt_mm_sys(t, err, SYS_close, fd, 0, 0, 0, 0, 0);
	if (ret != (long)v->start)
		return ckpt_fail(err, ret < 0 && ret > -4096 ? (int)-ret : EIO, "mapping %#llx-%#llx (%s%s%s): %s", (unsigned long long)v->start,
				 (unsigned long long)v->end, ckpt_vma_kind_name(v->kind), v->path ? " " : "", v->path ? v->path : "",
				 ret < 0 && ret > -4096 ? strerror((int)-ret) : "mapped elsewhere");
	int r;
	if (fill && lz && ckpt_vma_lazy(v)) {
		struct uffdio_register reg = { .range = { .start = v->start, .len = len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (ckpt_lazy_uffd(lz) >= 0 && ioctl(ckpt_lazy_uffd(lz), UFFDIO_REGISTER, &reg) == 0) {
			ckpt_lazy_add(lz, v, pages, sparse);
			fill = false;
		} else if ((r = ckpt_mm_vma_check_all(v, pages, sparse, false, err)) < 0) {
			/* a lazy restore was to check them and did not take them */
			return r;
		}
	}
	if (fill && (r = fill_vma(f, t->pid, v, pages, err)) < 0)
		return r;
	ckpt_mm_shared_record(shm, self, v);
	if (prot != v->prot) {
		ret = ckpt_mm_sys(t, err, SYS_mprotect, (long)v->start, (long)len, v->prot, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "mprotect %#llx: %s", (unsigned long long)v->start, strerror((int)-ret));
	}
	return 0;
}

/* Copy-on-write sharing with the process this one was forked from
 * (ckpt_mm_parent). */

static bool runs_sorted(const Krg__Ckpt__Vma *v)
{
	for (size_t i = 1; i < v->n_runs; i++)
		if (v->runs[i]->start < v->runs[i - 1]->start + v->runs[i - 1]->npages * CKPT_PAGE)
			return false;
	return true;
}

/* from's VMA that v is exactly (same range, protection, flags, private
 * anonymous), so the tracee holds v's memory already as from's; or NULL. */
static const Krg__Ckpt__Vma *inherited_vma(const struct ckpt_mm_parent *from, const Krg__Ckpt__Vma *v)
{
	if (!from || (v->flags & MAP_SHARED) || v->has_shmem_ino ||
	    (v->kind != KRG__CKPT__VMA_KIND__VMA_ANON && v->kind != KRG__CKPT__VMA_KIND__VMA_HEAP && v->kind != KRG__CKPT__VMA_KIND__VMA_STACK))
		return NULL;
	size_t lo = 0, hi = from->mm->n_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const Krg__Ckpt__Vma *pv = from->mm->vmas[mid];
		if (pv->start < v->start)
			lo = mid + 1;
		else if (pv->start > v->start)
			hi = mid;
		else
			return pv->end == v->end && pv->prot == v->prot && pv->flags == v->flags && pv->kind == v->kind && !pv->has_shmem_ino &&
				       runs_sorted(pv) && runs_sorted(v) ? pv : NULL;
	}
	return NULL;
}

/* The bytes of v's saved page at addr, or NULL: not saved (reads zero). */
static const uint8_t *saved_page(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, uint64_t addr)
{
	size_t lo = 0, hi = v->n_runs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const Krg__Ckpt__PageRun *run = v->runs[mid];
		if (addr < run->start)
			hi = mid;
		else if (addr >= run->start + run->npages * CKPT_PAGE)
			lo = mid + 1;
		else
			return pages->data + run->offset + (addr - run->start);
	}
	return NULL;
}

/* v, inherited from pv: the pages that differ are written (each one now
 * the tracee's own copy), those pv has and v has not are dropped; the
 * rest stays shared with the parent. */
static int fix_inherited(struct ckpt_tracee *t, const Krg__Ckpt__Vma *v, const Krg__Ckpt__Vma *pv, const struct ckpt_blob *pages,
			 const struct ckpt_blob *ppages, struct ckpt_error *err)
{
	bool opened = false;
	int r = 0;
	for (size_t j = 0; j < v->n_runs && r == 0; j++) {
		const Krg__Ckpt__PageRun *run = v->runs[j];
		uint64_t ws = 0, wn = 0;  /* pages to write: from ws, wn of them */
		for (uint64_t k = 0; k <= run->npages && r == 0; k++) {
			uint64_t a = run->start + k * CKPT_PAGE;
			const uint8_t *theirs = k < run->npages ? saved_page(pv, ppages, a) : NULL;
			bool differs = k < run->npages && (!theirs || memcmp(theirs, pages->data + run->offset + k * CKPT_PAGE, CKPT_PAGE));
			if (differs && wn) {
				wn++;
				continue;
			}
			if (differs) {
				ws = a, wn = 1;
				continue;
			}
			if (!wn)
				continue;
			/* Written through the page tables: a read-only or PROT_NONE
			 * VMA is opened for it a moment. */
			if (!opened && (v->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE)) {
				long ret = ckpt_mm_sys(t, err, SYS_mprotect, (long)v->start, (long)(v->end - v->start), PROT_READ | PROT_WRITE, 0, 0, 0);
				if (ret < 0)
					return ckpt_fail(err, (int)-ret, "mprotect %#llx: %s", (unsigned long long)v->start, strerror((int)-ret));
				opened = true;
			}
			r = ckpt_poke(t->pid, ws, pages->data + run->offset + (ws - run->start), wn * CKPT_PAGE);
			if (r < 0)
				return ckpt_fail(err, r, "writing %llu pages at %#llx: %s", (unsigned long long)wn, (unsigned long long)ws, strerror(-r));
			wn = 0;
		}
		ckpt_mm_progress_add(run->npages * CKPT_PAGE);
	}
	for (size_t j = 0; j < pv->n_runs; j++) {
		const Krg__Ckpt__PageRun *run = pv->runs[j];
		uint64_t zs = 0, zn = 0;  /* pages to drop */
		for (uint64_t k = 0; k <= run->npages; k++) {
			uint64_t a = run->start + k * CKPT_PAGE;
			bool drop = k < run->npages && !saved_page(v, pages, a);
			if (drop) {
				zs = zn ? zs : a;
				zn++;
				continue;
			}
			if (!zn)
				continue;
			long ret = ckpt_mm_sys(t, err, SYS_madvise, (long)zs, (long)(zn * CKPT_PAGE), MADV_DONTNEED, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, (int)-ret, "dropping %llu pages at %#llx: %s", (unsigned long long)zn, (unsigned long long)zs,
						 strerror((int)-ret));
			zn = 0;
		}
	}
	if (opened) {
		long ret = ckpt_mm_sys(t, err, SYS_mprotect, (long)v->start, (long)(v->end - v->start), v->prot, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, (int)-ret, "mprotect %#llx: %s", (unsigned long long)v->start, strerror((int)-ret));
	}
	return 0;
}

int ckpt_mm_restore(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, const struct ckpt_blob *pages, struct ckpt_shm_table *shm, pid_t self,
		    struct ckpt_lazy *lz, const struct ckpt_mm_parent *from, struct ckpt_error *err)
{
	static struct range cur[8192];
	size_t n;
	int r = read_ranges(t->pid, cur, ARRAY_SIZE(cur), &n);
	if (r < 0)
		return ckpt_fail(err, r, "reading the new process's maps: %s", strerror(-r));
	/* Keep: the helper, the kernel's vdso and vvar areas, the VMAs
	 * inherited as they are (in address order). */
	struct range sp[8];
	size_t nk = 0, nsp = 0;
	_cleanup_free_ struct range *keep = malloc((16 + mm->n_vmas) * sizeof(*keep));
	_cleanup_free_ const Krg__Ckpt__Vma **inh = calloc(mm->n_vmas + 1, sizeof(*inh));
	if (!keep || !inh)
		abort();
	keep[nk++] = (struct range){ t->code & ~(CKPT_PAGE - 1), t->scratch + t->scratch_len, "helper" };
	for (size_t i = 0; i < n; i++)
		if ((!strcmp(cur[i].name, "[vdso]") || !strncmp(cur[i].name, "[vvar", 5)) && nsp < 8 && nk < 16)
			sp[nsp++] = cur[i], keep[nk++] = cur[i];
	for (size_t i = 0; i < mm->n_vmas; i++)
		if ((inh[i] = inherited_vma(from, mm->vmas[i])))
			keep[nk++] = (struct range){ mm->vmas[i]->start, mm->vmas[i]->end, "inherited" };
	/* Sort keep by address (tiny). */
	for (size_t i = 0; i < nk; i++)
		for (size_t j = i + 1; j < nk; j++)
			if (keep[j].start < keep[i].start) {
				struct range x = keep[i];
				keep[i] = keep[j], keep[j] = x;
			}
	uint64_t at = 0;
	long ret;
	for (size_t i = 0; i <= nk; i++) {
		uint64_t end = i < nk ? keep[i].start : CKPT_TASK_SIZE;
		if (end > at) {
			ret = ckpt_mm_sys(t, err, SYS_munmap, (long)at, (long)(end - at), 0, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, (int)-ret, "unmapping %#llx-%#llx in the new process: %s", (unsigned long long)at,
						 (unsigned long long)end, strerror((int)-ret));
		}
		if (i < nk)
			at = keep[i].end;
	}
	if ((r = relocate_vdso(t, mm, sp, nsp, err)) < 0)
		return r;
	struct filler f;
	filler_open(t, &f, err);
	if (err->msg[0]) {  /* the injection itself failed */
		filler_close(&f);
		return -EIO;
	}
	if (lz)
		lazy_open(t, lz, err);
	ckpt_mm_progress_start("restore", pages->len);
	struct open_file of = { .fd = -1 };
	for (size_t i = 0; i < mm->n_vmas && r == 0; i++)
		if (inh[i])
			r = fix_inherited(t, mm->vmas[i], inh[i], pages, from->pages, err);
		else if (!ckpt_mm_special(mm->vmas[i]))
			r = map_vma(t, &f, lz, &of, shm, self, mm->vmas[i], pages, mm->pages_sparse, err);
	if (of.fd >= 0)
		ckpt_mm_sys(t, err, SYS_close, of.fd, 0, 0, 0, 0, 0);
	filler_close(&f);
	if (r < 0)
		return r;
	ckpt_mm_progress_end();
	/* From here the restore itself may touch lazy memory (a thread's
	 * libc tid): its faults are served already. */
	if (lz && (r = ckpt_lazy_start(lz, t->pid)) < 0)
		return ckpt_fail(err, -r, "starting the lazy restore's thread: %s", strerror(-r));
	return 0;
}

int ckpt_mm_restore_fields(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, struct ckpt_error *err)
{
	const Krg__Ckpt__MmFields *f = mm->fields;
	long exe_fd = -1, ret;
	int r;
	if (mm->exe && strlen(mm->exe) + 1 <= t->scratch_len && ckpt_poke(t->pid, t->scratch, mm->exe, strlen(mm->exe) + 1) == 0) {
		exe_fd = ckpt_mm_sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_RDONLY | O_CLOEXEC, 0, 0, 0);
		if (exe_fd < 0)
			exe_fd = -1;  /* gone: /proc/PID/exe stays krg's, nothing else breaks */
	}
	struct prctl_mm_map map = {
		.start_code = f->start_code, .end_code = f->end_code, .start_data = f->start_data, .end_data = f->end_data,
		.start_brk = f->start_brk, .brk = f->brk, .start_stack = f->start_stack, .arg_start = f->arg_start,
		.arg_end = f->arg_end, .env_start = f->env_start, .env_end = f->env_end,
		.auxv = mm->auxv.len ? (__u64 *)(t->scratch + 512) : NULL, .auxv_size = (uint32_t)mm->auxv.len,
		.exe_fd = (uint32_t)exe_fd,
	};
	if ((r = ckpt_poke(t->pid, t->scratch, &map, sizeof(map))) < 0 ||
	    (mm->auxv.len && (r = ckpt_poke(t->pid, t->scratch + 512, mm->auxv.data, mm->auxv.len)) < 0))
		return ckpt_fail(err, r, "writing the mm map to the new process: %s", strerror(-r));
	ret = ckpt_mm_sys(t, err, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)t->scratch, sizeof(map), 0, 0);
	if (ret < 0 && exe_fd >= 0) {  /* retry without the exe link */
		map.exe_fd = (uint32_t)-1;
		ckpt_poke(t->pid, t->scratch, &map, sizeof(map));
		ret = ckpt_mm_sys(t, err, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)t->scratch, sizeof(map), 0, 0);
	}
	if (exe_fd >= 0)
		ckpt_mm_sys(t, err, SYS_close, exe_fd, 0, 0, 0, 0, 0);
	if (ret < 0)
		return ckpt_fail(err, (int)-ret, "restoring brk and the mm fields (PR_SET_MM_MAP): %s", strerror((int)-ret));
	return 0;
}

#ifndef SYS_mseal
#define SYS_mseal 462  /* Linux 6.10; older headers lack it */
#endif

/* What madvise set on a VMA, as smaps VmFlags names it, and the advice
 * that sets it again. The others are the mapping's own (prot, shared,
 * growsdown, noreserve: map_vma) or the kernel's (vdso, pfn maps). */
static const struct {
	const char two[3];
	int advice;
} vm_advice[] = {
	{ "dc", MADV_DONTFORK }, { "wf", MADV_WIPEONFORK }, { "dd", MADV_DONTDUMP }, { "hg", MADV_HUGEPAGE },
	{ "nh", MADV_NOHUGEPAGE }, { "mg", MADV_MERGEABLE }, { "rr", MADV_RANDOM }, { "sr", MADV_SEQUENTIAL },
};

int ckpt_mm_restore_advice(struct ckpt_tracee *t, const Krg__Ckpt__Mm *mm, struct ckpt_error *err)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		if (ckpt_mm_special(v) || !v->vmflags)
			continue;
		long start = (long)v->start, len = (long)(v->end - v->start), ret;
		for (size_t k = 0; k < ARRAY_SIZE(vm_advice); k++) {
			if (!ckpt_mm_has_vmflag(v->vmflags, vm_advice[k].two))
				continue;
			ret = ckpt_mm_sys(t, err, SYS_madvise, start, len, vm_advice[k].advice, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: giving back its \"%s\" (madvise %d): %s",
						 mm->pid, v->start, v->end, v->path ? v->path : "", vm_advice[k].two, vm_advice[k].advice,
						 strerror(ret < -4095 ? EIO : (int)-ret));
		}
		/* Locked as the process itself may lock: run with its own
		 * credentials and RLIMIT_MEMLOCK, which it fitted in before. */
		if (ckpt_mm_has_vmflag(v->vmflags, "lo")) {
			bool onfault = ckpt_mm_has_vmflag(v->vmflags, "lf");
			ret = ckpt_mm_sys(t, err, SYS_mlock2, start, len, onfault ? MLOCK_ONFAULT : 0, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: locking it again (mlock2%s) with the process's limits: %s",
						 mm->pid, v->start, v->end, v->path ? v->path : "", onfault ? " MLOCK_ONFAULT" : "",
						 strerror(ret < -4095 ? EIO : (int)-ret));
		}
	}
	/* Sealing last: a sealed VMA refuses the madvise and mprotect above. */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		if (ckpt_mm_special(v) || !v->vmflags || !ckpt_mm_has_vmflag(v->vmflags, "sl"))
			continue;
		long ret = ckpt_mm_sys(t, err, SYS_mseal, (long)v->start, (long)(v->end - v->start), 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: sealing it again (mseal): %s",
					 mm->pid, v->start, v->end, v->path ? v->path : "", strerror(ret < -4095 ? EIO : (int)-ret));
	}
	return 0;
}
