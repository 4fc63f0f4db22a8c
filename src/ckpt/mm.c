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
 * its final protection, then the mm fields (brk, arg/env, auxv, exe):
 * mm_restore.c. */
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
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/mm-int.h"
#include "lib/fault.h"
#include "lib/macro.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)  /* mapped by this process only */
#define IO_CHUNK (1UL << 20)
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
	case KRG__CKPT__VMA_KIND__VMA_DSM: return "dsm";
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
		free(v->page_sums.data);
		free(v);
	}
	free(mm->vmas);
	free(mm->fields);
	free(mm->auxv.data);
	free(mm->exe);
	free(mm);
}

bool ckpt_mm_special(const Krg__Ckpt__Vma *v)
{
	return v->kind == KRG__CKPT__VMA_KIND__VMA_VDSO || v->kind == KRG__CKPT__VMA_KIND__VMA_VVAR ||
	       v->kind == KRG__CKPT__VMA_KIND__VMA_VSYSCALL;
}

/* A mapping of krgd's DSM object of a System V segment ("/memfd:krg-dsm:SEG
 * (deleted)", src/dsm/dsm_node.c): with dsm_follow (a migration) its
 * attachment alone is saved (VMA_DSM: the pages stay in the DSM, the
 * target maps its own object of the segment there); else refused by name.
 * 1 if it was one (v filled or err set through *r), 0 if not. */
static int dsm_vma(pid_t pid, const char *path, bool shared, bool dsm_follow, unsigned long start, unsigned long end,
		   unsigned long pgoff, Krg__Ckpt__Vma *v, int *r, struct ckpt_error *err)
{
	unsigned long long seg;
	char tail[16] = "";
	if (sscanf(path, "/memfd:krg-dsm:%llx%15[^\n]", &seg, tail) != 2 || strcmp(tail, " (deleted)"))
		return 0;
	if (!dsm_follow || !shared) {
		*r = ckpt_fail(err, EOPNOTSUPP, "process %d: mapping %lx-%lx (System V segment %d, shared across nodes): %s", pid,
			       start, end, (int)(seg >> 32),
			       shared ? "a checkpoint does not save it yet (docs/dsm.md)" : "a private mapping of it is not supported");
		return 1;
	}
	char mf[96];
	struct stat st;
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", pid, start, end);
	if (stat(mf, &st) < 0) {
		*r = ckpt_fail(err, errno, "process %d: mapping %lx-%lx (System V segment %d): %s: %s", pid, start, end,
			       (int)(seg >> 32), mf, strerror(errno));
		return 1;
	}
	v->kind = KRG__CKPT__VMA_KIND__VMA_DSM;
	v->has_dsm_seg = v->has_dsm_npages = v->has_pgoff = true;
	v->dsm_seg = seg;
	v->dsm_npages = ((uint64_t)st.st_size + CKPT_PAGE - 1) / CKPT_PAGE;
	v->pgoff = pgoff;
	*r = 0;
	return 1;
}

/* One smaps header line into a Vma; unsupported mappings are refused. */
static int parse_vma_line(pid_t pid, const char *line, bool dsm_follow, Krg__Ckpt__Vma *v, struct ckpt_error *err)
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
	int dr = 0;
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
	else if (dsm_vma(pid, path, shared, dsm_follow, start, end, pgoff, v, &dr, err)) {
		if (dr < 0)
			return dr;
	} else if (path[0] == '/' && !deleted) {
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

uint64_t ckpt_mm_progress_done(void)
{
	return prog.done;
}

void ckpt_mm_progress_rewind(uint64_t done)
{
	prog.done = done;
}

void ckpt_mm_progress_start(const char *what, uint64_t total)
{
	prog.what = what, prog.done = 0, prog.total = total, prog.next = CKPT_PROGRESS_STEP;
}

void ckpt_mm_progress_add(uint64_t bytes)
{
	prog.done += bytes;
	if (prog.done > prog.total)
		prog.total = prog.done;
	if (progress_fn && prog.done >= prog.next) {
		progress_fn(prog.what, prog.done, prog.total, progress_arg);
		prog.next = prog.done + CKPT_PROGRESS_STEP;
	}
}

void ckpt_mm_progress_end(void)
{
	if (progress_fn && prog.total)
		progress_fn(prog.what, prog.done, prog.done, progress_arg);
}

static int parse_smaps(pid_t pid, bool dsm_follow, Krg__Ckpt__Mm *mm, struct vma_extra **extra, struct ckpt_error *err)
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
			if ((r = parse_vma_line(pid, line, dsm_follow, v, err)) < 0)
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

struct ranges {
	range_fn fn;
	void *ctx;
};

static int each_range(void *ctx, const struct page_region *g, struct ckpt_error *err)
{
	struct ranges *r = ctx;
	return r->fn(r->ctx, g->start, g->end, err);
}

static int for_wanted_ranges(pid_t pid, int pmfd, const Krg__Ckpt__Vma *v, bool may_fall_back, range_fn fn, void *ctx,
			     struct ckpt_error *err)
{
	struct page_region vec[256];
	struct pm_scan_arg sa = { .start = v->start, .end = v->end, .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				  .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
	if (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE)
		sa.category_inverted = sa.category_mask = PAGE_IS_FILE;
	struct ranges r = { fn, ctx };
	return ckpt_pm_scan(pid, pmfd, sa, vec, 256, may_fall_back, each_range, &r, err);
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
		ckpt_mm_progress_add(len);
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


/* Whether v has pages of its own to save: not a special mapping, not a
 * shared file mapping (the file has them), and some resident or swapped
 * (a shared memory object's page may be present in the object without
 * being mapped here: Rss says nothing about it). */
static bool vma_saves_pages(const Krg__Ckpt__Vma *v, const struct vma_extra *ex)
{
	if (ckpt_mm_special(v) || (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE && (v->flags & MAP_SHARED)))
		return false;
	return v->kind == KRG__CKPT__VMA_KIND__VMA_SHMEM || ex->rss_kb || ex->swap_kb;
}

static int dump_vma_pages(const struct page_src *proc, Krg__Ckpt__Vma *v, const struct vma_extra *ex, struct ckpt_writer *w, uint8_t *buf,
			  struct ckpt_error *err)
{
	const pid_t pid = proc->pid;
	const int pmfd = proc->pmfd;
	bool shmem = v->kind == KRG__CKPT__VMA_KIND__VMA_SHMEM;
	if (!vma_saves_pages(v, ex))
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
	bool record;       /* keep every page sum (Vma.page_sums: incremental checkpoints) */
	uint8_t *rec;
	size_t rec_n, rec_cap;
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
	if (ss->record) {
		if (ss->rec_n + 8 > ss->rec_cap) {
			ss->rec_cap = ss->rec_cap ? 2 * ss->rec_cap : 4096;
			if (!(ss->rec = realloc(ss->rec, ss->rec_cap)))
				abort();
		}
		memcpy(ss->rec + ss->rec_n, ss->b + ss->n, 8);
		ss->rec_n += 8;
	}
	if ((ss->n += 8) == sizeof(ss->b))
		sparse_sum_flush(ss);
}

/* Pages read now (not pre-copied, or written since): [s, s + n pages).
 * base: where the file's payload begins in the image's (an increment's
 * continues its parent's). */
static int sparse_fresh(const struct page_src *src, Krg__Ckpt__Vma *v, struct sparse_sum *hs, struct ckpt_writer *w, uint64_t base,
			uint8_t *buf, uint64_t s, uint64_t n, struct ckpt_error *err)
{
	if (!n)
		return 0;
	size_t len = n * CKPT_PAGE;
	int r = src_read(src, s, buf, len);
	if (r < 0)
		return ckpt_fail(err, r, "process %d: reading memory at %#" PRIx64 " (%zu bytes): %s", src->pid, s, len, strerror(-r));
	uint64_t off = base + ckpt_writer_offset(w);
	if ((r = ckpt_writer_write(w, buf, len, err)) < 0)
		return r;
	for (uint64_t k = 0; k < n; k++)
		sparse_add(v, hs, s + k * CKPT_PAGE, off + k * CKPT_PAGE, XXH3_64bits(buf + k * CKPT_PAGE, CKPT_PAGE));
	ckpt_mm_progress_add(len);
	return 0;
}

/* The walk of one VMA after a pre-copy, page by page in address order. */
struct sparse_walk {
	struct page_src src;
	const struct ckpt_precopy *pc;
	struct ckpt_incr *in;  /* instead of pc: an incremental checkpoint's parent */
	uint64_t base;
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
		    (s->pc ? ckpt_precopy_lookup(s->pc, addr, &off, &sum) : ckpt_incr_lookup(s->in, addr, &off, &sum));
	if (!have && s->fn && s->fs + s->fn * CKPT_PAGE == addr && s->fn < IO_CHUNK / CKPT_PAGE) {
		s->fn++;
		return 0;
	}
	/* Address order: the pending fresh pages go before this one. */
	int r = sparse_fresh(&s->src, s->v, s->hs, s->w, s->base, s->buf, s->fs, s->fn, err);
	if (r < 0)
		return r;
	s->fn = 0;
	if (have) {
		sparse_add(s->v, s->hs, addr, off, sum);
		ckpt_mm_progress_add(CKPT_PAGE);
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
static int dump_vma_sparse(const struct page_src *proc, const struct ckpt_precopy *pc, struct ckpt_incr *in, Krg__Ckpt__Vma *v,
			   const struct vma_extra *ex, struct ckpt_writer *w, uint8_t *buf, struct ckpt_error *err)
{
	const pid_t pid = proc->pid;
	const int pmfd = proc->pmfd;
	bool shmem = v->kind == KRG__CKPT__VMA_KIND__VMA_SHMEM;
	if (!vma_saves_pages(v, ex))
		return 0;
	_cleanup_free_ struct sparse_sum *hs = malloc(sizeof(*hs));
	if (!hs)
		abort();
	hs->hs = sum_new();
	hs->n = 0;
	hs->record = !pc;
	hs->rec = NULL;
	hs->rec_n = hs->rec_cap = 0;
	struct sparse_walk sw = { .src = *proc, .pc = pc, .in = in, .base = ckpt_incr_base(in), .v = v, .hs = hs, .w = w, .buf = buf };
	int r;
	if (shmem && shmem_open(proc, v, &sw.src) == 0)
		r = for_shmem_ranges(&sw.src, v, sparse_range_fn, &sw, err);
	else
		r = shmem ? sparse_range_fn(&sw, v->start, v->end, err) : for_wanted_ranges(pid, pmfd, v, false, sparse_range_fn, &sw, err);
	if (r == 0)
		r = sparse_fresh(&sw.src, v, hs, w, sw.base, buf, sw.fs, sw.fn, err);
	if (sw.src.fd >= 0)
		close(sw.src.fd);
	if (r == 0 && v->n_runs) {
		sparse_sum_flush(hs);
		vma_seal_sum(v, hs->hs);
		if (hs->record) {
			v->has_page_sums = true;
			v->page_sums.data = hs->rec;
			v->page_sums.len = hs->rec_n;
		} else {
			free(hs->rec);
		}
		return 0;
	}
	free(hs->rec);
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
bool ckpt_mm_has_vmflag(const char *fl, const char *two)
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

/* A VMA registered for missing pages (userfaultfd: "um"), but the DSM's
 * (registered by krgd for good, its pages not saved). */
static bool missing_registered(const Krg__Ckpt__Mm *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind != KRG__CKPT__VMA_KIND__VMA_DSM && ckpt_mm_has_vmflag(mm->vmas[i]->vmflags, "um"))
			return true;
	return false;
}

static int mm_dump_once(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_incr *in,
			struct ckpt_shm_table *seen, Krg__Ckpt__Mm **out, struct ckpt_error *err);

int ckpt_mm_dump(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_incr *in,
		 struct ckpt_shm_table *seen, Krg__Ckpt__Mm **out, struct ckpt_error *err)
{
	/* A page still missing after a lazy restore is not present, and only
	 * present pages are saved: if it is still coming in, wait until all
	 * of it is (seen in the smaps the dump reads anyway). */
	for (int attempt = 0;; attempt++) {
		int r = mm_dump_once(pid, acc, brk, dirfd, pc, in, seen, out, err);
		if (r != -EAGAIN || attempt == 2)
			return r == -EAGAIN ? ckpt_fail(err, EBUSY, "process %d: its memory is still registered for missing pages", pid) : r;
		if ((r = ckpt_mm_wait_filled(acc, 60000, err)) < 0)
			return r;
	}
}

static int mm_dump_once(pid_t pid, pid_t acc, uint64_t brk, int dirfd, struct ckpt_precopy *pc, struct ckpt_incr *in,
			struct ckpt_shm_table *seen, Krg__Ckpt__Mm **out, struct ckpt_error *err)
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
	int r = parse_smaps(acc, seen && seen->dsm_follow, mm, &ex, err);
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
	/* Incremental (a tracker or a parent): sparse, with page sums, the
	 * payload continuing the parent's. */
	uint64_t base = pw ? 0 : ckpt_incr_base(in);
	if (!pw && in) {
		mm->has_pages_sparse = mm->pages_sparse = true;
		mm->has_pages_base = base > 0;
		mm->pages_base = base;
	}
	uint64_t expect = 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		expect += (ex[i].rss_kb + ex[i].swap_kb) * 1024;
	ckpt_mm_progress_start("dump", expect);
	/* Through a live thread (acc): a leader that exited has no mm of
	 * its own to read in /proc. */
	snprintf(path, sizeof(path), "/proc/%d/mem", acc);
	memfd = open(path, O_RDONLY | O_CLOEXEC);  /* without it, process_vm_readv alone */
	const struct page_src proc = { .pid = acc, .fd = -1, .pmfd = pmfd, .memfd = memfd };
	/* seen is extended as this process's objects are saved: on failure
	 * the whole dump fails, so a stale entry is never used. */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Krg__Ckpt__Vma *v = mm->vmas[i];
		if (shmem_saved(seen, v) || v->kind == KRG__CKPT__VMA_KIND__VMA_DSM)
			continue;
		if (!pw && in && (r = ckpt_incr_vma(in, pmfd, v, err)) < 0)
			goto fail;
		if (pw || in)
			r = dump_vma_sparse(&proc, pw ? pc : NULL, pw ? NULL : in, v, &ex[i], w, buf, err);
		else
			r = dump_vma_pages(&proc, v, &ex[i], w, buf, err);
		if (r < 0)
			goto fail;
		ckpt_mm_shared_record(seen, pid, v);
	}
	ckpt_mm_progress_end();
	/* The pages frame sum covers the region sums, not the pages again. */
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->n_runs)
			ckpt_writer_sum(w, mm->vmas[i]->checksum.data, SUM_LEN);
	mm->pages_size = base + ckpt_writer_offset(w);
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
		bool missing = false, dsm = false;
		while (!missing && fgets(line, sizeof(line), f)) {
			/* A header line (a range first): the DSM's mappings are
			 * registered by krgd for good, their pages not ours. */
			const char *sp = strchr(line, ' '), *dash = strchr(line, '-');
			if (dash && sp && dash < sp)
				dsm = strstr(line, " /memfd:krg-dsm:") != NULL;
			missing = !dsm && !strncmp(line, "VmFlags:", 8) && ckpt_mm_has_vmflag(line + 8, "um");
		}
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
int ckpt_mm_vma_check_all(const Krg__Ckpt__Vma *v, const struct ckpt_blob *pages, bool sparse, bool progress, struct ckpt_error *err)
{
	struct ckpt_vma_check *c = ckpt_vma_check_new(v, pages, sparse);
	int r;
	uint64_t n;
	while ((r = ckpt_vma_check_step(c, CKPT_PROGRESS_STEP, &n)) == 0)
		if (progress)
			ckpt_mm_progress_add(n);
	if (progress)
		ckpt_mm_progress_add(n);
	ckpt_vma_check_free(c);
	if (r < 0)
		return ckpt_fail(err, EBADMSG, "image file %s: contents of VMA %#llx-%#llx fail their checksum (the file is damaged)", pages->name,
				 (unsigned long long)v->start, (unsigned long long)v->end);
	return 0;
}

int ckpt_mm_validate(const Krg__Ckpt__Mm *mm, const struct ckpt_blob *pages, bool defer_lazy, struct ckpt_error *err)
{
	int r0 = ckpt_incr_parent_check(mm, pages->name, err);
	if (r0 < 0)
		return r0;
	if (mm->pages_base && !mm->pages_sparse)
		return ckpt_fail(err, EBADMSG, "image: pages of an increment that are not sparse");
	if (mm->pages_size != pages->len)
		return ckpt_fail(err, EBADMSG, "image: pages file holds %zu bytes, mm says %llu", pages->len, (unsigned long long)mm->pages_size);
	uint64_t prev_end = 0, cursor = 0;
	_cleanup_free_ uint8_t *sums = malloc(mm->n_vmas * SUM_LEN + 1);
	size_t nsums = 0;
	if (!sums)
		abort();
	ckpt_mm_progress_start("verify", pages->len);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		bool vsys = v->kind == KRG__CKPT__VMA_KIND__VMA_VSYSCALL;
		if (v->start >= v->end || v->start % CKPT_PAGE || v->end % CKPT_PAGE || v->start < prev_end || (!vsys && v->end > CKPT_TASK_SIZE))
			return ckpt_fail(err, EBADMSG, "image: VMA %zu (%#llx-%#llx) is malformed", i, (unsigned long long)v->start, (unsigned long long)v->end);
		if (v->kind > KRG__CKPT__VMA_KIND__VMA_DSM || (v->kind == KRG__CKPT__VMA_KIND__VMA_FILE && (!v->path || v->path[0] != '/')))
			return ckpt_fail(err, EBADMSG, "image: VMA %#llx has an unknown kind or no path", (unsigned long long)v->start);
		if (v->kind == KRG__CKPT__VMA_KIND__VMA_DSM &&
		    (!v->has_dsm_seg || !v->has_dsm_npages || !v->dsm_npages || v->n_runs || !(v->flags & MAP_SHARED) ||
		     (v->has_pgoff && (v->pgoff % CKPT_PAGE || v->pgoff / CKPT_PAGE + (v->end - v->start) / CKPT_PAGE > v->dsm_npages))))
			return ckpt_fail(err, EBADMSG, "image: DSM mapping %#llx is malformed", (unsigned long long)v->start);
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
		if (!(defer_lazy && ckpt_vma_lazy(v)) && (r = ckpt_mm_vma_check_all(v, pages, mm->pages_sparse, true, err)) < 0)
			return r;
		memcpy(sums + nsums++ * SUM_LEN, v->checksum.data, SUM_LEN);
	}
	if (!mm->pages_sparse && cursor != pages->len)
		return ckpt_fail(err, EBADMSG, "image: page runs cover %llu of the %zu bytes of %s", (unsigned long long)cursor, pages->len, pages->name);
	int r = ckpt_pages_verify(pages, sums, nsums * SUM_LEN, err);
	if (r < 0)
		return r;
	ckpt_mm_progress_end();
	if (mm->auxv.len > 512 || mm->auxv.len % 16)
		return ckpt_fail(err, EBADMSG, "image: auxv of %zu bytes", mm->auxv.len);
	return 0;
}

