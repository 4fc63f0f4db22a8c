/* mm.c — the address space (mm-<pid>.img) and its contents
 * (pages-<pid>.img).
 *
 * Dump: /proc/PID/smaps gives every VMA with its flags and Rss; pagemap
 * says which pages exist. Saved: present or swapped pages of anonymous
 * memory, the COW'd (anonymous) pages of private file mappings, all of
 * shared anonymous memory. File pages are reopened from the file.
 * Restore (inside the tracee, by injected syscalls): unmap everything but
 * our helper page and the kernel's vdso/vvar, move those to where the
 * image had them, mmap each VMA at its address, write its pages, set
 * its final protection, then the mm fields (brk, arg/env, auxv, exe). */
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

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)  /* mapped by this process only */
#define IO_CHUNK (1UL << 20)
#define FILL_PIECE (4UL << 20)          /* restore: at most this much per UFFDIO_COPY */
#define FILL_TWO_THREADS (32UL << 20)   /* a second copying thread for a VMA with this much data */
#define SUM_LEN 16  /* Vma.checksum: XXH3-128, canonical (big-endian) */

static XXH3_state_t *sum_new(void)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st || XXH3_128bits_reset(st) != XXH_OK)
		abort();
	return st;
}

static void sum_final(XXH3_state_t *st, uint8_t out[SUM_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out, c.digest, SUM_LEN);
	XXH3_freeState(st);
}

const char *ckpt_vma_kind_name(Krg__Ckpt__VmaKind k)
{
	switch (k) {
	case KRG__CKPT__VMA_KIND__VMA_ANON: return "anon";
	case KRG__CKPT__VMA_KIND__VMA_FILE: return "file";
	case KRG__CKPT__VMA_KIND__VMA_HEAP: return "heap";
	case KRG__CKPT__VMA_KIND__VMA_STACK: return "stack";
	case KRG__CKPT__VMA_KIND__VMA_VDSO: return "vdso";
	case KRG__CKPT__VMA_KIND__VMA_VVAR: return "vvar";
	case KRG__CKPT__VMA_KIND__VMA_VSYSCALL: return "vsyscall";
	case KRG__CKPT__VMA_KIND__VMA_SHMEM: return "shmem";
	default: return "?";
	}
}

void ckpt_mm_free(Krg__Ckpt__Mm *mm)
{
	if (!mm)
		return;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Krg__Ckpt__Vma *v = mm->vmas[i];
		for (size_t j = 0; j < v->n_runs; j++)
			free(v->runs[j]);
		free(v->runs);
		free(v->path);
		free(v->name);
		free(v->vmflags);
		free(v->checksum.data);
		free(v);
	}
	free(mm->vmas);
	free(mm->fields);
	free(mm->auxv.data);
	free(mm->exe);
	free(mm);
}

static bool special(const Krg__Ckpt__Vma *v)
{
	return v->kind == KRG__CKPT__VMA_KIND__VMA_VDSO || v->kind == KRG__CKPT__VMA_KIND__VMA_VVAR ||
	       v->kind == KRG__CKPT__VMA_KIND__VMA_VSYSCALL;
}

/* One smaps header line into a Vma; unsupported mappings are refused. */
static int parse_vma_line(pid_t pid, const char *line, Krg__Ckpt__Vma *v, struct ckpt_error *err)
{
	unsigned long start, end, pgoff, inode;
	char perms[8];
	unsigned maj, min;
	int pos = 0;
	if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &start, &end, perms, &pgoff, &maj, &min, &inode, &pos) < 7)
		return ckpt_fail(err, EIO, "process %d: cannot parse smaps line '%s'", pid, line);
	const char *path = line + pos;
	krg__ckpt__vma__init(v);
	v->start = start, v->end = end;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
	bool shared = perms[3] == 's';
	v->flags = shared ? MAP_SHARED : MAP_PRIVATE;
	size_t pl = strlen(path);
	bool deleted = pl > 10 && !strcmp(path + pl - 10, " (deleted)");
	if (!strcmp(path, "[heap]"))
		v->kind = KRG__CKPT__VMA_KIND__VMA_HEAP;
	else if (!strcmp(path, "[stack]"))
		v->kind = KRG__CKPT__VMA_KIND__VMA_STACK;
	else if (!strcmp(path, "[vdso]"))
		v->kind = KRG__CKPT__VMA_KIND__VMA_VDSO;
	else if (!strncmp(path, "[vvar", 5))
		v->kind = KRG__CKPT__VMA_KIND__VMA_VVAR;
	else if (!strcmp(path, "[vsyscall]"))
		v->kind = KRG__CKPT__VMA_KIND__VMA_VSYSCALL;
	else if (shared && !strncmp(path, "/dev/zero", 9) && deleted) {
		v->kind = KRG__CKPT__VMA_KIND__VMA_SHMEM;
		/* One object, maybe mapped by several processes of the application. */
		v->has_shmem_ino = v->has_pgoff = true;
		v->shmem_ino = inode;
		v->pgoff = pgoff;
	}
	else if (!*path || !strncmp(path, "[anon:", 6))
		v->kind = shared ? KRG__CKPT__VMA_KIND__VMA_SHMEM : KRG__CKPT__VMA_KIND__VMA_ANON;
	else if (path[0] == '/' && !deleted) {
		v->kind = KRG__CKPT__VMA_KIND__VMA_FILE;
		v->path = ckpt_strdup(path);
		v->has_pgoff = true;
		v->pgoff = pgoff;
	} else
		return ckpt_fail(err, EOPNOTSUPP, "process %d: mapping %lx-%lx of '%s' is not supported (%s)", pid, start, end, path,
				 deleted ? "deleted file or memfd" : "unknown special mapping");
	if (v->kind != KRG__CKPT__VMA_KIND__VMA_FILE)
		v->flags |= MAP_ANONYMOUS;
	if (*path && path[0] == '[')
		v->name = ckpt_strdup(path);
	return 0;
}

struct vma_extra {
	uint64_t rss_kb, swap_kb;
};

/* Progress hook (ckpt.h): reported every CKPT_PROGRESS_STEP bytes. */
static ckpt_progress_fn progress_fn;
static void *progress_arg;
static struct {
	const char *what;
	uint64_t done, total, next;
} prog;

void ckpt_set_progress(ckpt_progress_fn fn, void *arg)
{
	progress_fn = fn;
	progress_arg = arg;
}

static void progress_start(const char *what, uint64_t total)
{
	prog.what = what, prog.done = 0, prog.total = total, prog.next = CKPT_PROGRESS_STEP;
}

static void progress_add(uint64_t bytes)
{
	prog.done += bytes;
	if (prog.done > prog.total)
		prog.total = prog.done;
	if (progress_fn && prog.done >= prog.next) {
		progress_fn(prog.what, prog.done, prog.total, progress_arg);
		prog.next = prog.done + CKPT_PROGRESS_STEP;
	}
}

static void progress_end(void)
{
	if (progress_fn && prog.total)
		progress_fn(prog.what, prog.done, prog.done, progress_arg);
}

static int parse_smaps(pid_t pid, Krg__Ckpt__Mm *mm, struct vma_extra **extra, struct ckpt_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return ckpt_fail(err, errno, "process %d: %s: %s", pid, path, strerror(errno));
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, alloc = 0;
	struct vma_extra *ex = NULL;
	ssize_t l;
	int r = 0;
	while ((l = getline(&line, &cap, f)) > 0) {
		if (line[l - 1] == '\n')
			line[--l] = 0;
		/* A header line starts with a hex range; field lines with a name. */
		const char *sp = strchr(line, ' '), *dash = strchr(line, '-');
		if (dash && sp && dash < sp) {
			if (mm->n_vmas == alloc) {
				alloc = alloc ? 2 * alloc : 64;
				mm->vmas = realloc(mm->vmas, alloc * sizeof(*mm->vmas));
				ex = realloc(ex, alloc * sizeof(*ex));
				if (!mm->vmas || !ex)
					abort();
			}
			Krg__Ckpt__Vma *v = calloc(1, sizeof(*v));
			if (!v)
				abort();
			mm->vmas[mm->n_vmas] = v;
			ex[mm->n_vmas] = (struct vma_extra){ 0 };
			mm->n_vmas++;
			if ((r = parse_vma_line(pid, line, v, err)) < 0)
				break;
			continue;
		}
		if (!mm->n_vmas)
			continue;
		Krg__Ckpt__Vma *v = mm->vmas[mm->n_vmas - 1];
		if (!strncmp(line, "Rss:", 4))
			ex[mm->n_vmas - 1].rss_kb = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "Swap:", 5))
			ex[mm->n_vmas - 1].swap_kb = strtoull(line + 5, NULL, 10);
		else if (!strncmp(line, "VmFlags:", 8)) {
			const char *fl = line + 8;
			while (*fl == ' ')
				fl++;
			v->vmflags = ckpt_strdup(fl);
			if (strstr(fl, "gd"))
				v->flags |= MAP_GROWSDOWN;
			if (strstr(fl, "nr"))  /* huge sparse reservations (sanitizer shadow) */
				v->flags |= MAP_NORESERVE;
		}
	}
	*extra = ex;
	return r;
}

/* Does this page of the VMA hold data we must save? */
static bool want_page(const Krg__Ckpt__Vma *v, uint64_t pm)
{
	if (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE)
		return (pm & PM_SWAP) || ((pm & PM_PRESENT) && !(pm & PM_FILE));
	return pm & (PM_PRESENT | PM_SWAP);
}

static int add_run(Krg__Ckpt__Vma *v, uint64_t start, uint64_t npages, uint64_t offset)
{
	/* The array doubles (at each power of two): after a pre-copy a VMA
	 * may have tens of thousands of runs (pages copied again elsewhere). */
	if (v->n_runs < 8 ? !v->n_runs : !(v->n_runs & (v->n_runs - 1))) {
		Krg__Ckpt__PageRun **nr = realloc(v->runs, (v->n_runs < 8 ? 8 : 2 * v->n_runs) * sizeof(*nr));
		if (!nr)
			abort();
		v->runs = nr;
	}
	Krg__Ckpt__PageRun *run = calloc(1, sizeof(*run));
	if (!run)
		abort();
	krg__ckpt__page_run__init(run);
	run->start = start, run->npages = npages, run->offset = offset;
	v->runs[v->n_runs++] = run;
	return 0;
}

/* The VMA's checksum from its pages' hash state (consumed). */
static void vma_seal_sum(Krg__Ckpt__Vma *v, XXH3_state_t *hs)
{
	v->has_checksum = true;
	v->checksum.len = SUM_LEN;
	v->checksum.data = malloc(SUM_LEN);
	if (!v->checksum.data)
		abort();
	sum_final(hs, v->checksum.data);
}

/* npages at addr, at payload offset off, as v's next run: the last run
 * grows when they follow it in both the address space and the file. */
static void extend_run(Krg__Ckpt__Vma *v, uint64_t addr, uint64_t npages, uint64_t off)
{
	Krg__Ckpt__PageRun *last = v->n_runs ? v->runs[v->n_runs - 1] : NULL;
	if (last && last->start + last->npages * CKPT_PAGE == addr && last->offset + last->npages * CKPT_PAGE == off)
		last->npages += npages;
	else
		add_run(v, addr, npages, off);
}

/* The ranges of v's wanted pages (want_page: present or swapped; of a
 * private file mapping only its anonymous, written, pages) in address
 * order, from PAGEMAP_SCAN: fn(ctx, start, end, err) for each; 0 or
 * -errno. With may_fall_back, a kernel without PAGEMAP_SCAN returns 1
 * before any fn call (the caller reads pagemap instead). */
typedef int (*range_fn)(void *ctx, uint64_t s, uint64_t e, struct ckpt_error *err);

static int for_wanted_ranges(pid_t pid, int pmfd, const Krg__Ckpt__Vma *v, bool may_fall_back, range_fn fn, void *ctx,
			     struct ckpt_error *err)
{
	struct page_region vec[256];
	for (uint64_t at = v->start; at < v->end;) {
		struct pm_scan_arg sa = { .size = sizeof(sa), .start = at, .end = v->end, .vec = (uintptr_t)vec, .vec_len = 256,
					  .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
					  .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
		if (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE)
			sa.category_inverted = sa.category_mask = PAGE_IS_FILE;
		long n = ioctl(pmfd, PAGEMAP_SCAN, &sa);
		if (n < 0 && may_fall_back && at == v->start && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP))
			return 1;
		if (n < 0)
			return ckpt_fail(err, errno, "process %d: PAGEMAP_SCAN of %#llx-%#llx: %s", pid, (unsigned long long)at,
					 (unsigned long long)v->end, strerror(errno));
		for (long k = 0; k < n; k++) {
			int r = fn(ctx, vec[k].start, vec[k].end, err);
			if (r < 0)
				return r;
		}
		if (sa.walk_end <= at)
			break;
		at = sa.walk_end;
	}
	return 0;
}

/* Where a VMA's pages are read from: the process's memory, or (shared
 * anonymous memory) its object through /proc/PID/map_files, with pread at
 * the address plus delta. Reading the object reads what every process
 * sharing it wrote, and maps nothing into the process: a process_vm_readv
 * of a page no one touched would allocate it in the object. */
struct page_src {
	pid_t pid;
	int fd;         /* the object, or -1: the process's memory */
	int64_t delta;  /* file offset - address */
	int pmfd;       /* the process's pagemap and mem (or -1), borrowed */
	int memfd;
};

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	return 0;
}

/* The process's pages [addr, addr + len), without changing them.
 * process_vm_readv pins the pages it reads (FOLL_PIN), and since Linux
 * 5.19 pinning an anonymous page still shared copy-on-write (a parent and
 * the children it forked) first gives the process a copy of its own: a
 * checkpoint that leaves the application running un-shared every such
 * page of every process, 64 MiB shared by four processes became 256.
 * /proc/PID/mem only takes a reference (FOLL_GET) and leaves the page
 * shared, but copies through a bounce page (~1.4x the time), so it reads
 * the chunks that hold a page not mapped by this process alone (pagemap
 * bit 56), or swapped out (a swap-in is shared the same way). */
static int proc_read(const struct page_src *src, uint64_t addr, void *buf, size_t len)
{
	static uint64_t pm[IO_CHUNK / CKPT_PAGE];
	for (size_t done = 0; done < len;) {
		size_t n = MIN(len - done, IO_CHUNK), np = n / CKPT_PAGE;
		uint64_t a = addr + done;
		bool excl = src->pmfd >= 0 && src->memfd >= 0 && np * CKPT_PAGE == n &&
			    pread_all(src->pmfd, pm, np * 8, (off_t)(a / CKPT_PAGE * 8)) == 0;
		for (size_t k = 0; excl && k < np; k++)
			excl = (pm[k] & (PM_PRESENT | PM_EXCLUSIVE)) == (PM_PRESENT | PM_EXCLUSIVE);
		int r = excl || src->memfd < 0 ? ckpt_peek(src->pid, a, (uint8_t *)buf + done, n)
					       : pread_all(src->memfd, (uint8_t *)buf + done, n, (off_t)a);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

static int src_read(const struct page_src *src, uint64_t addr, void *buf, size_t len)
{
	if (src->fd < 0)
		return proc_read(src, addr, buf, len);
	return pread_all(src->fd, buf, len, (off_t)((int64_t)addr + src->delta));
}

/* Pages [s, e) of v, all wanted: read IO_CHUNK at a time, appended,
 * hashed, recorded as runs (merged with the previous one when contiguous
 * in both the address space and the file). */
static int dump_range(const struct page_src *src, Krg__Ckpt__Vma *v, XXH3_state_t *hs, struct ckpt_writer *w, uint8_t *buf, uint64_t s,
		      uint64_t e, struct ckpt_error *err)
{
	for (uint64_t addr = s; addr < e;) {
		size_t len = (size_t)MIN(e - addr, IO_CHUNK);
		int r = src_read(src, addr, buf, len);
		if (r < 0)
			return ckpt_fail(err, r, "process %d: reading memory at %#" PRIx64 " (%zu bytes): %s", src->pid, addr, len, strerror(-r));
		extend_run(v, addr, len / CKPT_PAGE, ckpt_writer_offset(w));
		XXH3_128bits_update(hs, buf, len);
		if ((r = ckpt_writer_write(w, buf, len, err)) < 0)
			return r;
		progress_add(len);
		addr += len;
	}
	return 0;
}

/* The wanted pages of v from 8 bytes of pagemap per page (kernels
 * without PAGEMAP_SCAN). */
static int dump_vma_pagemap(const struct page_src *proc, Krg__Ckpt__Vma *v, XXH3_state_t *hs, struct ckpt_writer *w, uint8_t *buf,
			    struct ckpt_error *err)
{
	const pid_t pid = proc->pid;
	const int pmfd = proc->pmfd;
	uint64_t npages = (v->end - v->start) / CKPT_PAGE, run = UINT64_MAX;
	static uint64_t pm[4096];
	for (uint64_t i = 0; i < npages; i++) {
		if (i % 4096 == 0) {
			size_t cnt = (size_t)MIN(4096, npages - i);
			ssize_t got = pread(pmfd, pm, cnt * 8, (off_t)((v->start / CKPT_PAGE + i) * 8));
			if (got != (ssize_t)(cnt * 8))
				return ckpt_fail(err, got < 0 ? errno : EIO, "process %d: reading pagemap: %s", pid, got < 0 ? strerror(errno) : "short read");
		}
		bool want = want_page(v, pm[i % 4096]);
		if (want && run == UINT64_MAX)
			run = i;
		if (!want && run != UINT64_MAX) {
			int r = dump_range(proc, v, hs, w, buf, v->start + run * CKPT_PAGE, v->start + i * CKPT_PAGE, err);
			if (r < 0)
				return r;
			run = UINT64_MAX;
		}
	}
	return run == UINT64_MAX ? 0 : dump_range(proc, v, hs, w, buf, v->start + run * CKPT_PAGE, v->end, err);
}

struct range_dump {
	struct page_src src;
	Krg__Ckpt__Vma *v;
	XXH3_state_t *hs;
	struct ckpt_writer *w;
	uint8_t *buf;
};

static int range_dump_fn(void *ctx, uint64_t s, uint64_t e, struct ckpt_error *err)
{
	struct range_dump *d = ctx;
	return dump_range(&d->src, d->v, d->hs, d->w, d->buf, s, e, err);
}

/* Shared anonymous memory: its object, opened through
 * /proc/PID/map_files/START-END (root), read at the VMA's window. 0, or
 * -errno (the caller reads the process's memory instead). */
static int shmem_open(const struct page_src *proc, const Krg__Ckpt__Vma *v, struct page_src *src)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, proc->pid, v->start, v->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*src = *proc;
	src->fd = fd;
	src->delta = (int64_t)(v->has_pgoff ? v->pgoff : 0) - (int64_t)v->start;
	return 0;
}

/* The ranges of v's window of its object that hold pages: SEEK_DATA and
 * SEEK_HOLE on a shmem file give what is in its page cache or swap,
 * whichever process of the application (or outside it) wrote it; pages
 * nobody touched are holes and read as zeros once restored. A 4 GiB
 * region with three pages written is three pages of image, not 4 GiB
 * (pagemap would see only the pages this process has mapped). */
static int for_shmem_ranges(const struct page_src *src, const Krg__Ckpt__Vma *v, range_fn fn, void *ctx, struct ckpt_error *err)
{
	const off_t lo = (off_t)((int64_t)v->start + src->delta), hi = (off_t)((int64_t)v->end + src->delta);
	const off_t pg = (off_t)CKPT_PAGE;
	for (off_t at = lo; at < hi;) {
		off_t d = lseek(src->fd, at, SEEK_DATA);
		if (d < 0 && errno == ENXIO)  /* no data after at */
			return 0;
		off_t h = d < 0 ? -1 : lseek(src->fd, d, SEEK_HOLE);
		if (h < 0)
			return ckpt_fail(err, errno, "process %d: shared memory at %#llx: %s: %s", src->pid, (unsigned long long)v->start,
					 d < 0 ? "SEEK_DATA" : "SEEK_HOLE", strerror(errno));
		if (d >= hi)
			return 0;
		d &= ~(pg - 1);
		h = (h + pg - 1) & ~(pg - 1);
		if (h > hi || h <= d)
			h = hi;
		int r = fn(ctx, (uint64_t)((int64_t)d - src->delta), (uint64_t)((int64_t)h - src->delta), err);
		if (r < 0)
			return r;
		at = h;
	}
	return 0;
}

/* A shared anonymous object is saved once: with the first process of the
 * dump that maps it (the one the restore creates it in, same order), and
 * with a later one only where its window is not inside that first one
 * (where the restore fills it). seen: the first window of each object. */
static bool shmem_saved(const struct ckpt_shm_table *seen, const Krg__Ckpt__Vma *v)
{
	if (!seen || !v->has_shmem_ino)
		return false;
	for (size_t i = 0; i < seen->n; i++)
		if (seen->e[i].ino == v->shmem_ino) {
			const struct ckpt_shm *o = &seen->e[i];
			uint64_t pg = v->has_pgoff ? v->pgoff : 0;
			return pg >= o->pgoff && pg + (v->end - v->start) <= o->pgoff + (o->end - o->start);
		}
	return false;
}

static void shared_record(struct ckpt_shm_table *shm, pid_t owner, const Krg__Ckpt__Vma *v);

static int dump_vma_pages(const struct page_src *proc, Krg__Ckpt__Vma *v, const struct vma_extra *ex, struct ckpt_writer *w, uint8_t *buf,
			  struct ckpt_error *err)
{
	const pid_t pid = proc->pid;
	const int pmfd = proc->pmfd;
	bool shmem = v->kind == KRG__CKPT__VMA_KIND__VMA_SHMEM;
	if (special(v) || (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE && (v->flags & MAP_SHARED)))
		return 0;
	/* (A shared page may be present in the object without being mapped
	 * here: Rss says nothing about it.) */
	if (!shmem && !ex->rss_kb && !ex->swap_kb)
		return 0;
	XXH3_state_t *hs = sum_new();
	int r = 0;
	struct range_dump rd = { .src = *proc, .v = v, .hs = hs, .w = w, .buf = buf };
	if (shmem) {
		if (shmem_open(proc, v, &rd.src) == 0) {
			r = for_shmem_ranges(&rd.src, v, range_dump_fn, &rd, err);
			close(rd.src.fd);
		} else {  /* no map_files (not root?): all of it, as read here */
			r = dump_range(&rd.src, v, hs, w, buf, v->start, v->end, err);
		}
	} else {
		/* The wanted pages as ranges from PAGEMAP_SCAN: reading 8
		 * bytes of pagemap per page would take seconds for a large
		 * sparse reservation with a few pages in it (a sanitizer's
		 * shadow, a runtime's reserved heap: terabytes of address
		 * space). fault point ckpt-no-pagemap-scan: the older kernels' way,
		 * for tests. */
		r = krg_fault_on("ckpt-no-pagemap-scan") ? 1 : for_wanted_ranges(pid, pmfd, v, true, range_dump_fn, &rd, err);
		if (r == 1)
			r = dump_vma_pagemap(proc, v, hs, w, buf, err);
	}
	if (r == 0 && v->n_runs) {
		vma_seal_sum(v, hs);
		return 0;
	}
	XXH3_freeState(hs);
	return r;
}

/* A sparse VMA's sum: over its page sums, in address order, fed to the
 * hash a few thousand at a time (the same sum as one by one, and the
 * frozen dump of a 1 GiB process hashes 262144 of them). */
struct sparse_sum {
	XXH3_state_t *hs;
	size_t n;
	uint8_t b[4096 * 8];
};

static void sparse_sum_flush(struct sparse_sum *ss)
{
	XXH3_128bits_update(ss->hs, ss->b, ss->n);
	ss->n = 0;
}

/* Sparse pages (Mm.pages_sparse): a page of the run list, at payload
 * offset off, with sum its XXH3-64. */
static void sparse_add(Krg__Ckpt__Vma *v, struct sparse_sum *ss, uint64_t addr, uint64_t off, uint64_t sum)
{
	extend_run(v, addr, 1, off);
	XXH64_canonicalFromHash((XXH64_canonical_t *)(ss->b + ss->n), sum);
	if ((ss->n += 8) == sizeof(ss->b))
		sparse_sum_flush(ss);
}

/* Pages read now (not pre-copied, or written since): [s, s + n pages). */
static int sparse_fresh(const struct page_src *src, Krg__Ckpt__Vma *v, struct sparse_sum *hs, struct ckpt_writer *w, uint8_t *buf, uint64_t s,
			uint64_t n, struct ckpt_error *err)
{
	if (!n)
		return 0;
	size_t len = n * CKPT_PAGE;
	int r = src_read(src, s, buf, len);
	if (r < 0)
		return ckpt_fail(err, r, "process %d: reading memory at %#" PRIx64 " (%zu bytes): %s", src->pid, s, len, strerror(-r));
	uint64_t off = ckpt_writer_offset(w);
	if ((r = ckpt_writer_write(w, buf, len, err)) < 0)
		return r;
	for (uint64_t k = 0; k < n; k++)
		sparse_add(v, hs, s + k * CKPT_PAGE, off + k * CKPT_PAGE, XXH3_64bits(buf + k * CKPT_PAGE, CKPT_PAGE));
	progress_add(len);
	return 0;
}

/* The walk of one VMA after a pre-copy, page by page in address order. */
struct sparse_walk {
	struct page_src src;
	const struct ckpt_precopy *pc;
	Krg__Ckpt__Vma *v;
	struct sparse_sum *hs;
	struct ckpt_writer *w;
	uint8_t *buf;
	uint64_t fs, fn;  /* pending fresh pages: start address, count */
};

/* A page the image must have: its pre-copied copy if still good (shared
 * anonymous and file pages are never tracked), else read now, with its
 * fresh neighbours in one go. */
static int sparse_page(struct sparse_walk *s, uint64_t addr, struct ckpt_error *err)
{
	uint64_t off, sum;
	bool have = s->v->kind != KRG__CKPT__VMA_KIND__VMA_SHMEM && s->v->kind != KRG__CKPT__VMA_KIND__VMA_FILE &&
		    ckpt_precopy_lookup(s->pc, addr, &off, &sum);
	if (!have && s->fn && s->fs + s->fn * CKPT_PAGE == addr && s->fn < IO_CHUNK / CKPT_PAGE) {
		s->fn++;
		return 0;
	}
	/* Address order: the pending fresh pages go before this one. */
	int r = sparse_fresh(&s->src, s->v, s->hs, s->w, s->buf, s->fs, s->fn, err);
	if (r < 0)
		return r;
	s->fn = 0;
	if (have) {
		sparse_add(s->v, s->hs, addr, off, sum);
		progress_add(CKPT_PAGE);
	} else {
		s->fs = addr, s->fn = 1;
	}
	return 0;
}

static int sparse_range_fn(void *ctx, uint64_t s, uint64_t e, struct ckpt_error *err)
{
	for (uint64_t a = s; a < e; a += CKPT_PAGE) {
		int r = sparse_page(ctx, a, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* dump_vma_pages after a pre-copy: a page whose copy is still good is
 * referenced where it is in the file, the others are read and appended.
 * The pages it has come from PAGEMAP_SCAN as ranges (a pre-copy needs
 * that ioctl anyway), not 8 bytes of pagemap per page: this runs while
 * the process is frozen. */
static int dump_vma_sparse(const struct page_src *proc, const struct ckpt_precopy *pc, Krg__Ckpt__Vma *v, const struct vma_extra *ex,
			   struct ckpt_writer *w, uint8_t *buf, struct ckpt_error *err)
{
	const pid_t pid = proc->pid;
	const int pmfd = proc->pmfd;
	bool shmem = v->kind == KRG__CKPT__VMA_KIND__VMA_SHMEM;
	if (special(v) || (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE && (v->flags & MAP_SHARED)))
		return 0;
	if (!shmem && !ex->rss_kb && !ex->swap_kb)
		return 0;
	_cleanup_free_ struct sparse_sum *hs = malloc(sizeof(*hs));
	if (!hs)
		abort();
	hs->hs = sum_new();
	hs->n = 0;
	struct sparse_walk sw = { .src = *proc, .pc = pc, .v = v, .hs = hs, .w = w, .buf = buf };
	int r;
	if (shmem && shmem_open(proc, v, &sw.src) == 0)
		r = for_shmem_ranges(&sw.src, v, sparse_range_fn, &sw, err);
	else
		r = shmem ? sparse_range_fn(&sw, v->start, v->end, err) : for_wanted_ranges(pid, pmfd, v, false, sparse_range_fn, &sw, err);
	if (r == 0)
		r = sparse_fresh(&sw.src, v, hs, w, buf, sw.fs, sw.fn, err);
	if (sw.src.fd >= 0)
		close(sw.src.fd);
	if (r == 0 && v->n_runs) {
		sparse_sum_flush(hs);
		vma_seal_sum(v, hs->hs);
		return 0;
	}
	XXH3_freeState(hs->hs);
	return r;
}

/* /proc/PID/stat fields 26.. (1-based numbering of proc(5)). */
static int read_mm_fields(pid_t pid, uint64_t brk, Krg__Ckpt__MmFields *mf, struct ckpt_error *err)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int r = krg_read_small(path, buf, sizeof(buf));
	if (r < 0)
		return ckpt_fail(err, r, "process %d: reading stat: %s", pid, strerror(-r));
	char *p = strrchr(buf, ')');
	if (!p)
		return ckpt_fail(err, EIO, "process %d: cannot parse stat", pid);
	uint64_t f[64] = { 0 };
	int n = 3;
	for (char *tok = strtok(p + 2, " "); tok && n < 64; tok = strtok(NULL, " "))
		f[n++] = strtoull(tok, NULL, 10);
	if (n < 52)
		return ckpt_fail(err, EIO, "process %d: stat has only %d fields", pid, n);
	krg__ckpt__mm_fields__init(mf);
	mf->start_code = f[26], mf->end_code = f[27], mf->start_stack = f[28];
	mf->start_data = f[45], mf->end_data = f[46], mf->start_brk = f[47];
	mf->arg_start = f[48], mf->arg_end = f[49], mf->env_start = f[50], mf->env_end = f[51];
	mf->brk = brk;
	return 0;
}

/* VmFlags (smaps: two-letter words) has `two`. */
static bool has_vmflag(const char *fl, const char *two)
{
	for (const char *p = fl; p && *p;) {
		p += strspn(p, " \n");
		size_t n = strcspn(p, " \n");
		if (n == 2 && !memcmp(p, two, 2))
			return true;
		p += n;
	}
	return false;
}

/* A VMA registered for missing pages (userfaultfd: "um"). */
static bool missing_registered(const Krg__Ckpt__Mm *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (has_vmflag(mm->vmas[i]->vmflags, "um"))
			return true;
	return false;
}

static int mm_dump_once(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_shm_table *seen,
			Krg__Ckpt__Mm **out, struct ckpt_error *err);

int ckpt_mm_dump(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_shm_table *seen,
		 Krg__Ckpt__Mm **out, struct ckpt_error *err)
{
	/* A page still missing after a lazy restore is not present, and only
	 * present pages are saved: if it is still coming in, wait until all
	 * of it is (seen in the smaps the dump reads anyway). */
	for (int attempt = 0;; attempt++) {
		int r = mm_dump_once(pid, acc, brk, dirfd, pc, seen, out, err);
		if (r != -EAGAIN || attempt == 2)
			return r == -EAGAIN ? ckpt_fail(err, EBUSY, "process %d: its memory is still registered for missing pages", pid) : r;
		if ((r = ckpt_mm_wait_filled(acc, 60000, err)) < 0)
			return r;
	}
}

static int mm_dump_once(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_shm_table *seen,
			Krg__Ckpt__Mm **out, struct ckpt_error *err)
{
	struct ckpt_writer *pw = ckpt_precopy_writer(pc, pid);
	Krg__Ckpt__Mm *mm = calloc(1, sizeof(*mm));
	if (!mm)
		abort();
	krg__ckpt__mm__init(mm);
	mm->pid = pid;
	struct vma_extra *ex = NULL;
	struct ckpt_writer *w = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int pmfd = -1, afd = -1, memfd = -1;
	char path[64], name[64];
	int r = parse_smaps(acc, mm, &ex, err);
	if (r < 0)
		goto fail;
	if (missing_registered(mm)) {  /* nothing written yet: just again */
		free(ex);
		ckpt_mm_free(mm);
		return -EAGAIN;
	}
	mm->fields = calloc(1, sizeof(*mm->fields));
	if (!mm->fields)
		abort();
	if ((r = read_mm_fields(acc, brk, mm->fields, err)) < 0)
		goto fail;
	static uint8_t auxv[4096];
	snprintf(path, sizeof(path), "/proc/%d/auxv", acc);
	afd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t al = afd >= 0 ? read(afd, auxv, sizeof(auxv)) : -1;
	if (al > 0) {
		mm->has_auxv = true;
		mm->auxv.len = (size_t)al;
		mm->auxv.data = malloc((size_t)al);
		if (!mm->auxv.data)
			abort();
		memcpy(mm->auxv.data, auxv, (size_t)al);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", acc);
	char exe[4096];
	ssize_t el = readlink(path, exe, sizeof(exe) - 1);
	if (el > 0) {
		exe[el] = 0;
		mm->exe = ckpt_strdup(exe);
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", acc);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0) {
		r = ckpt_fail(err, errno, "process %d: %s: %s", pid, path, strerror(errno));
		goto fail;
	}
	buf = malloc(IO_CHUNK);
	if (!buf)
		abort();
	snprintf(name, sizeof(name), "pages-%d.img", pid);
	if (pw) {
		/* It is frozen: copies of pages written since are dropped, and
		 * the pages file goes on where the pre-copy left it. */
		if ((r = ckpt_precopy_final(pc, err)) < 0)
			goto fail;
		w = pw;
		mm->has_pages_sparse = mm->pages_sparse = true;
	} else if ((r = ckpt_writer_open(dirfd, name, CKPT_PART_PAGES, &w, err)) < 0)
		goto fail;
	uint64_t expect = 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		expect += (ex[i].rss_kb + ex[i].swap_kb) * 1024;
	progress_start("dump", expect);
	/* Through a live thread (acc): a leader that exited has no mm of
	 * its own to read in /proc. */
	snprintf(path, sizeof(path), "/proc/%d/mem", acc);
	memfd = open(path, O_RDONLY | O_CLOEXEC);  /* without it, process_vm_readv alone */
	const struct page_src proc = { .pid = acc, .fd = -1, .pmfd = pmfd, .memfd = memfd };
	/* seen is extended as this process's objects are saved: on failure
	 * the whole dump fails, so a stale entry is never used. */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Krg__Ckpt__Vma *v = mm->vmas[i];
		if (shmem_saved(seen, v))
			continue;
		if ((r = pw ? dump_vma_sparse(&proc, pc, v, &ex[i], w, buf, err) : dump_vma_pages(&proc, v, &ex[i], w, buf, err)) < 0)
			goto fail;
		shared_record(seen, pid, v);
	}
	progress_end();
	/* The pages frame sum covers the region sums, not the pages again. */
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->n_runs)
			ckpt_writer_sum(w, mm->vmas[i]->checksum.data, SUM_LEN);
	mm->pages_size = ckpt_writer_offset(w);
	r = ckpt_writer_commit(w, err);
	w = NULL;
	if (pw)
		ckpt_precopy_writer_done(pc, true);  /* the commit freed it, failed or not */
	pw = NULL;
	if (r < 0)
		goto fail;
	free(ex);
	*out = mm;
	return 0;
fail:
	if (pw)
		ckpt_precopy_writer_done(pc, false);
	else
		ckpt_writer_abort(w);
	free(ex);
	ckpt_mm_free(mm);
	return r;
}

int ckpt_mm_wait_filled(pid_t pid, int timeout_ms, struct ckpt_error *err)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	for (int waited = 0;; waited += 5) {
		_cleanup_fclose_ FILE *f = fopen(path, "re");
		if (!f)
			return ckpt_fail(err, errno, "process %d: %s: %s", pid, path, strerror(errno));
		bool missing = false;
		while (!missing && fgets(line, sizeof(line), f))
			missing = !strncmp(line, "VmFlags:", 8) && has_vmflag(line + 8, "um");
		if (!missing)
			return 0;
		if (waited >= timeout_ms)
			return ckpt_fail(err, EBUSY, "process %d: its memory is registered for missing pages (userfaultfd): a lazy restore "
						     "still copying it in after %d ms, or the program's own userfaultfd, which krg cannot dump",
					 pid, waited);
		usleep(5000);
	}
}

/* ---- page sums, checked a step at a time ---- */

/* A VMA whose contents a lazy restore (lazy.c) may copy in after the
 * process runs: private anonymous memory with pages in the image. */
bool ckpt_vma_lazy(const Krg__Ckpt__Vma *v)
{
	bool anon = v->kind == KRG__CKPT__VMA_KIND__VMA_ANON || v->kind == KRG__CKPT__VMA_KIND__VMA_HEAP ||
		    v->kind == KRG__CKPT__VMA_KIND__VMA_STACK;
	return anon && v->n_runs && !(v->flags & MAP_SHARED) && !v->has_shmem_ino;
}

struct ckpt_vma_check {
	uint64_t start, end;
	bool sparse;
	const uint8_t *data;  /* the pages payload */
	size_t nruns, run;
	uint64_t (*runs)[2];  /* offset, bytes */
	uint64_t off;         /* into runs[run] */
	XXH3_state_t *hs;
	uint8_t want[SUM_LEN];
	bool has_want;
};

/* Runs must have passed the bounds checks (ckpt_mm_validate). */
struct ckpt_vma_check *ckpt_vma_check_new(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse)
{
	struct ckpt_vma_check *c = calloc(1, sizeof(*c));
	if (!c || !(c->runs = calloc(v->n_runs + 1, sizeof(*c->runs))))
		abort();
	c->start = v->start, c->end = v->end, c->sparse = sparse, c->data = pages->data, c->nruns = v->n_runs;
	for (size_t j = 0; j < v->n_runs; j++)
		c->runs[j][0] = v->runs[j]->offset, c->runs[j][1] = v->runs[j]->npages * CKPT_PAGE;
	c->has_want = v->has_checksum && v->checksum.len == SUM_LEN;
	if (c->has_want)
		memcpy(c->want, v->checksum.data, SUM_LEN);
	c->hs = sum_new();
	return c;
}

void ckpt_vma_check_free(struct ckpt_vma_check *c)
{
	if (!c)
		return;
	if (c->hs)
		XXH3_freeState(c->hs);
	free(c->runs);
	free(c);
}

int ckpt_vma_check_step(struct ckpt_vma_check *c, uint64_t budget, uint64_t *hashed)
{
	*hashed = 0;
	while (c->run < c->nruns && *hashed < budget) {
		uint64_t len = c->runs[c->run][1];
		uint64_t step = MIN(len - c->off, budget - *hashed);
		if (c->sparse)
			step = MAX(step - step % CKPT_PAGE, CKPT_PAGE);  /* page sums: whole pages */
		const uint8_t *p = c->data + c->runs[c->run][0] + c->off;
		/* Sparse (pre-copy): a sum over page sums, what pre-copy knows
		 * without reading the pages again. */
		if (c->sparse)
			for (uint64_t q = 0; q < step; q += CKPT_PAGE) {
				XXH64_canonical_t k;
				XXH64_canonicalFromHash(&k, XXH3_64bits(p + q, CKPT_PAGE));
				XXH3_128bits_update(c->hs, k.digest, sizeof(k.digest));
			}
		else
			XXH3_128bits_update(c->hs, p, step);
		*hashed += step;
		if ((c->off += step) == len)
			c->run++, c->off = 0;
	}
	if (c->run < c->nruns)
		return 0;
	uint8_t sum[SUM_LEN];
	sum_final(c->hs, sum);
	c->hs = NULL;
	return c->has_want && (!CKPT_SUMS_CHECKED || !memcmp(sum, c->want, SUM_LEN)) ? 1 : -EBADMSG;
}

void ckpt_vma_check_range(const struct ckpt_vma_check *c, uint64_t *start, uint64_t *end)
{
	*start = c->start, *end = c->end;
}

/* Every page of v against its sum, at once; progress: report the bytes
 * (the "verify" pass of a restart; not inside another pass). */
static int vma_check_all(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse, bool progress, struct ckpt_error *err)
{
	struct ckpt_vma_check *c = ckpt_vma_check_new(v, pages, sparse);
	int r;
	uint64_t n;
	while ((r = ckpt_vma_check_step(c, CKPT_PROGRESS_STEP, &n)) == 0)
		if (progress)
			progress_add(n);
	if (progress)
		progress_add(n);
	ckpt_vma_check_free(c);
	if (r < 0)
		return ckpt_fail(err, EBADMSG, "image file %s: contents of VMA %#llx-%#llx fail their checksum (the file is damaged)", pages->name,
				 (unsigned long long)v->start, (unsigned long long)v->end);
	return 0;
}

int ckpt_mm_validate(const Krg__Ckpt__Mm *mm, const struct ckpt_blob *pages, bool defer_lazy, struct ckpt_error *err)
{
	if (mm->pages_size != pages->len)
		return ckpt_fail(err, EBADMSG, "image: pages file holds %zu bytes, mm says %llu", pages->len, (unsigned long long)mm->pages_size);
	uint64_t prev_end = 0, cursor = 0;
	_cleanup_free_ uint8_t *sums = malloc(mm->n_vmas * SUM_LEN + 1);
	size_t nsums = 0;
	if (!sums)
		abort();
	progress_start("verify", pages->len);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		bool vsys = v->kind == KRG__CKPT__VMA_KIND__VMA_VSYSCALL;
		if (v->start >= v->end || v->start % CKPT_PAGE || v->end % CKPT_PAGE || v->start < prev_end || (!vsys && v->end > CKPT_TASK_SIZE))
			return ckpt_fail(err, EBADMSG, "image: VMA %zu (%#llx-%#llx) is malformed", i, (unsigned long long)v->start, (unsigned long long)v->end);
		if (v->kind > KRG__CKPT__VMA_KIND__VMA_SHMEM || (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE && (!v->path || v->path[0] != '/')))
			return ckpt_fail(err, EBADMSG, "image: VMA %#llx has an unknown kind or no path", (unsigned long long)v->start);
		prev_end = v->end;
		/* Runs tile the payload in order, so every byte is under one sum.
		 * Sparse: runs anywhere in the payload, in address order. */
		uint64_t addr_end = v->start;
		for (size_t j = 0; j < v->n_runs; j++) {
			const Krg__Ckpt__PageRun *run = v->runs[j];
			uint64_t len = run->npages * CKPT_PAGE;
			if (run->npages == 0 || run->npages > (v->end - v->start) / CKPT_PAGE || run->start < v->start ||
			    run->start % CKPT_PAGE || run->start + len > v->end || (!mm->pages_sparse && run->offset != cursor) ||
			    run->offset > pages->len || len > pages->len - run->offset || (mm->pages_sparse && run->start < addr_end))
				return ckpt_fail(err, EBADMSG, "image: page run %zu of VMA %#llx is out of bounds", j, (unsigned long long)v->start);
			addr_end = run->start + len;
			cursor += len;
		}
		if (!v->n_runs)
			continue;
		if (!v->has_checksum || v->checksum.len != SUM_LEN)
			return ckpt_fail(err, EBADMSG, "image: VMA %#llx-%#llx has pages but no checksum", (unsigned long long)v->start,
					 (unsigned long long)v->end);
		/* A lazy restore checks these itself, while it copies them in
		 * (lazy.c); the frame sum below still covers the VMA sum. */
		int r;
		if (!(defer_lazy && ckpt_vma_lazy(v)) && (r = vma_check_all(v, pages, mm->pages_sparse, true, err)) < 0)
			return r;
		memcpy(sums + nsums++ * SUM_LEN, v->checksum.data, SUM_LEN);
	}
	if (!mm->pages_sparse && cursor != pages->len)
		return ckpt_fail(err, EBADMSG, "image: page runs cover %llu of the %zu bytes of %s", (unsigned long long)cursor, pages->len, pages->name);
	int r = ckpt_pages_verify(pages, sums, nsums * SUM_LEN, err);
	if (r < 0)
		return r;
	progress_end();
	if (mm->auxv.len > 512 || mm->auxv.len % 16)
		return ckpt_fail(err, EBADMSG, "image: auxv of %zu bytes", mm->auxv.len);
	return 0;
}

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

uint64_t ckpt_mm_helper_addr(const Krg__Ckpt__Mm *const *mms, size_t nmm, uint64_t len)
{
	static struct range self[8192];
	size_t n;
	if (read_ranges(getpid(), self, ARRAY_SIZE(self), &n) < 0)
		return 0;
	return find_free(mms, nmm, self, n, len);
}

static long sys(struct ckpt_tracee *t, struct ckpt_error *err, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
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
			sys(t, err, SYS_munmap, (long)sp[i].start, (long)(sp[i].end - sp[i].start), 0, 0, 0, 0);
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
			ret = sys(t, err, SYS_mremap, (long)from, (long)len, (long)len, MREMAP_MAYMOVE | MREMAP_FIXED, (long)to, 0);
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
	long tfd = sys(t, err, SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);
	if (tfd == -EINVAL)  /* before 5.11: no user-mode-only flag */
		tfd = sys(t, err, SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0, 0);
	if (tfd < 0)
		return;
	int pfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pfd >= 0) {
		f->uffd = (int)syscall(SYS_pidfd_getfd, pfd, (int)tfd, 0);
		close(pfd);
	}
	sys(t, err, SYS_close, tfd, 0, 0, 0, 0, 0);  /* our duplicate keeps it */
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
		progress_add(d - reported);
		reported = d;
	}
	if (two)
		pthread_join(th, NULL);
	progress_add(atomic_load(&job.done) - reported);
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
			uint64_t before = prog.done;
			r = uffd_fill_vma(f->uffd, v, pages);
			struct uffdio_range rg = reg.range;
			if (ioctl(f->uffd, UFFDIO_UNREGISTER, &rg) < 0 && r == 0)
				r = -errno;
			if (r == 0)
				return 0;
			/* Whatever went wrong, the slow way writes it all again. */
			prog.done = before;
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
			progress_add(len);
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
	*fd = sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (*fd < 0)
		return ckpt_fail(err, *fd < -4095 ? EIO : (int)-*fd, "shared memory at %#llx: opening the object of process %d (%s): %s",
				 (unsigned long long)v->start, (int)o->owner, path, strerror((int)-*fd));
	uint64_t pg = v->has_pgoff ? v->pgoff : 0;
	*covered = pg >= o->pgoff && pg + (v->end - v->start) <= o->pgoff + (o->end - o->start);
	return 0;
}

static void shared_record(struct ckpt_shm_table *shm, pid_t owner, const Krg__Ckpt__Vma *v)
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
	long tfd = sys(t, err, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0);
	if (tfd < 0)
		return;
	int fd = -1, pfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pfd >= 0) {
		fd = (int)syscall(SYS_pidfd_getfd, pfd, (int)tfd, 0);
		close(pfd);
	}
	sys(t, err, SYS_close, tfd, 0, 0, 0, 0, 0);
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

static int map_vma(struct ckpt_tracee *t, struct filler *f, struct ckpt_lazy *lz, struct open_file *of, struct ckpt_shm_table *shm,
		   pid_t self, const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse, struct ckpt_error *err)
{
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
				sys(t, err, SYS_close, of->fd, 0, 0, 0, 0, 0);
			of->fd = -1;
			fd = sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, oflags | O_CLOEXEC, 0, 0, 0);
			if (fd < 0)
				return ckpt_fail(err, fd < -4095 ? EIO : (int)-fd, "reopening %s to map it at %#llx: %s", v->path,
						 (unsigned long long)v->start, strerror((int)-fd));
			*of = (struct open_file){ v->path, oflags, fd };
		}
	}
	ret = sys(t, err, SYS_mmap, (long)v->start, (long)len, prot, flags, fd, fd >= 0 && v->has_pgoff ? (long)v->pgoff : 0);
	if (fd >= 0 && fd != of->fd)
		sys(t, err, SYS_close, fd, 0, 0, 0, 0, 0);
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
		} else if ((r = vma_check_all(v, pages, sparse, false, err)) < 0) {
			/* a lazy restore was to check them and did not take them */
			return r;
		}
	}
	if (fill && (r = fill_vma(f, t->pid, v, pages, err)) < 0)
		return r;
	shared_record(shm, self, v);
	if (prot != v->prot) {
		ret = sys(t, err, SYS_mprotect, (long)v->start, (long)len, v->prot, 0, 0, 0);
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
				long ret = sys(t, err, SYS_mprotect, (long)v->start, (long)(v->end - v->start), PROT_READ | PROT_WRITE, 0, 0, 0);
				if (ret < 0)
					return ckpt_fail(err, (int)-ret, "mprotect %#llx: %s", (unsigned long long)v->start, strerror((int)-ret));
				opened = true;
			}
			r = ckpt_poke(t->pid, ws, pages->data + run->offset + (ws - run->start), wn * CKPT_PAGE);
			if (r < 0)
				return ckpt_fail(err, r, "writing %llu pages at %#llx: %s", (unsigned long long)wn, (unsigned long long)ws, strerror(-r));
			wn = 0;
		}
		progress_add(run->npages * CKPT_PAGE);
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
			long ret = sys(t, err, SYS_madvise, (long)zs, (long)(zn * CKPT_PAGE), MADV_DONTNEED, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, (int)-ret, "dropping %llu pages at %#llx: %s", (unsigned long long)zn, (unsigned long long)zs,
						 strerror((int)-ret));
			zn = 0;
		}
	}
	if (opened) {
		long ret = sys(t, err, SYS_mprotect, (long)v->start, (long)(v->end - v->start), v->prot, 0, 0, 0);
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
			ret = sys(t, err, SYS_munmap, (long)at, (long)(end - at), 0, 0, 0, 0);
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
	progress_start("restore", pages->len);
	struct open_file of = { .fd = -1 };
	for (size_t i = 0; i < mm->n_vmas && r == 0; i++)
		if (inh[i])
			r = fix_inherited(t, mm->vmas[i], inh[i], pages, from->pages, err);
		else if (!special(mm->vmas[i]))
			r = map_vma(t, &f, lz, &of, shm, self, mm->vmas[i], pages, mm->pages_sparse, err);
	if (of.fd >= 0)
		sys(t, err, SYS_close, of.fd, 0, 0, 0, 0, 0);
	filler_close(&f);
	if (r < 0)
		return r;
	progress_end();
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
		exe_fd = sys(t, err, SYS_openat, AT_FDCWD, (long)t->scratch, O_RDONLY | O_CLOEXEC, 0, 0, 0);
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
	ret = sys(t, err, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)t->scratch, sizeof(map), 0, 0);
	if (ret < 0 && exe_fd >= 0) {  /* retry without the exe link */
		map.exe_fd = (uint32_t)-1;
		ckpt_poke(t->pid, t->scratch, &map, sizeof(map));
		ret = sys(t, err, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)t->scratch, sizeof(map), 0, 0);
	}
	if (exe_fd >= 0)
		sys(t, err, SYS_close, exe_fd, 0, 0, 0, 0, 0);
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
		if (special(v) || !v->vmflags)
			continue;
		long start = (long)v->start, len = (long)(v->end - v->start), ret;
		for (size_t k = 0; k < ARRAY_SIZE(vm_advice); k++) {
			if (!has_vmflag(v->vmflags, vm_advice[k].two))
				continue;
			ret = sys(t, err, SYS_madvise, start, len, vm_advice[k].advice, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: giving back its \"%s\" (madvise %d): %s",
						 mm->pid, v->start, v->end, v->path ? v->path : "", vm_advice[k].two, vm_advice[k].advice,
						 strerror(ret < -4095 ? EIO : (int)-ret));
		}
		/* Locked as the process itself may lock: run with its own
		 * credentials and RLIMIT_MEMLOCK, which it fitted in before. */
		if (has_vmflag(v->vmflags, "lo")) {
			bool onfault = has_vmflag(v->vmflags, "lf");
			ret = sys(t, err, SYS_mlock2, start, len, onfault ? MLOCK_ONFAULT : 0, 0, 0, 0);
			if (ret < 0)
				return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: locking it again (mlock2%s) with the process's limits: %s",
						 mm->pid, v->start, v->end, v->path ? v->path : "", onfault ? " MLOCK_ONFAULT" : "",
						 strerror(ret < -4095 ? EIO : (int)-ret));
		}
	}
	/* Sealing last: a sealed VMA refuses the madvise and mprotect above. */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		if (special(v) || !v->vmflags || !has_vmflag(v->vmflags, "sl"))
			continue;
		long ret = sys(t, err, SYS_mseal, (long)v->start, (long)(v->end - v->start), 0, 0, 0, 0);
		if (ret < 0)
			return ckpt_fail(err, ret < -4095 ? EIO : (int)-ret, "process %d: mapping %#" PRIx64 "-%#" PRIx64 " %s: sealing it again (mseal): %s",
					 mm->pid, v->start, v->end, v->path ? v->path : "", strerror(ret < -4095 ? EIO : (int)-ret));
	}
	return 0;
}
