/* precopy.c — a live migration's memory copied while the process runs
 * (ckpt.h, ckpt_precopy_*; docs/migration.md "Pre-copy").
 *
 * Written pages are found with userfaultfd write-protection in async mode
 * (the kernel resolves the fault itself: no handler thread, the process
 * only takes a minor fault on its first write to a page after each
 * round) and PAGEMAP_SCAN, which reports the written pages of a range and
 * write-protects them again in one atomic walk, so no write can fall
 * between "seen" and "protected". Soft-dirty (clear_refs + pagemap bit
 * 55) would need the process stopped around each read-and-clear, and is
 * not built into every kernel (it is not into this cluster's).
 *
 * Copies are appended to the pages file of the image being made
 * (.pages-<pid>.img.tmp), never rewritten: a page written again gets a
 * newer copy further on, so bytes already streamed to the target stay
 * valid and the transfer can follow the file as it grows. Per page we keep
 * the offset of its current copy and its XXH3-64, so the final dump (the
 * process frozen) references clean copies without reading them again, and
 * sums a region from the page sums (Mm.pages_sparse, docs/protocol.md).
 *
 * Only private anonymous areas (heap, stack, anonymous) of a bounded size
 * are tracked; everything else is read by the final dump as usual. The
 * final dump trusts a copy only if its page sits in an area still
 * registered and has not been written since (a page in an area that was
 * unmapped and mapped again, moved by mremap, or zapped and faulted in
 * again is reported as written or not write-protectable). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include "ckpt/ckpt-int.h"
#include "lib/macro.h"

/* PAGEMAP_SCAN and the userfaultfd features: ckpt-int.h, uffd_take.c. */

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PC_NONE UINT64_MAX
#define PC_CHUNK (1UL << 20)            /* bytes read from the process at once */
#define PC_MIN_AREA (64UL << 10)        /* smaller areas are left to the final dump */
#define PC_MAX_AREA (16ULL << 30)       /* per-page tables: 16 bytes per page */
#define PC_MAX_AREAS 4096
#define PC_VEC 512                      /* page_region entries per PAGEMAP_SCAN call */

struct pc_area {
	uint64_t start, end;  /* registered range (a VMA when pre-copy started) */
	uint64_t *off;        /* owned, per page: payload offset of its current copy, PC_NONE: none */
	uint64_t *sum;        /* owned, per page: XXH3-64 of that copy */
};

struct ckpt_precopy {
	pid_t pid;
	pid_t acc;                 /* the thread /proc and process_vm_readv go through (ckpt_live_tid) */
	int uffd;                  /* owned: made in the process's mm, duplicated to us */
	int pmfd;                  /* owned: /proc/PID/pagemap */
	int dirfd;                 /* owned: the image directory */
	struct ckpt_writer *w;     /* owned until the dump commits it: the pages file */
	struct pc_area *a;         /* owned, ascending */
	size_t n;
	unsigned rounds;
	uint64_t tracked;          /* bytes present in the areas at the start */
	uint8_t *buf;              /* owned, PC_CHUNK */
	struct page_region *vec;   /* owned, PC_VEC */
	ckpt_precopy_copy_fn copy; /* NULL: we copy into the file ourselves */
	void *copy_ctx;
};

void ckpt_precopy_set_copier(struct ckpt_precopy *pc, ckpt_precopy_copy_fn copy, void *ctx)
{
	pc->copy = copy;
	pc->copy_ctx = ctx;
}

void ckpt_precopy_free(struct ckpt_precopy *pc)
{
	if (!pc)
		return;
	ckpt_writer_abort(pc->w);
	for (size_t i = 0; i < pc->n; i++) {
		free(pc->a[i].off);
		free(pc->a[i].sum);
	}
	free(pc->a);
	/* Closing the last reference unregisters every area and drops the
	 * write-protection: the process runs on as before. */
	if (pc->uffd >= 0)
		close(pc->uffd);
	if (pc->pmfd >= 0)
		close(pc->pmfd);
	if (pc->dirfd >= 0)
		close(pc->dirfd);
	free(pc->buf);
	free(pc->vec);
	free(pc);
}

/* Private anonymous areas worth tracking, from smaps: registered (or,
 * without a uffd, only counted in pc->tracked). */
static int find_areas(struct ckpt_precopy *pc, struct ckpt_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pc->acc);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return ckpt_fail(err, errno, "process %d: %s: %s", pc->pid, path, strerror(errno));
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool cand = false;
	uint64_t s = 0, e = 0, rss = 0;
	ssize_t l;
	while ((l = getline(&line, &cap, f)) > 0) {
		if (line[l - 1] == '\n')
			line[--l] = 0;
		unsigned long vs, ve;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &vs, &ve, perms, &pos) >= 3 && pos > 0) {
			const char *name = line + pos;
			cand = perms[3] == 'p' && (!*name || !strcmp(name, "[heap]") || !strcmp(name, "[stack]") || !strncmp(name, "[anon:", 6)) &&
			       ve - vs <= PC_MAX_AREA;
			s = vs, e = ve, rss = 0;
			continue;
		}
		if (!strncmp(line, "Rss:", 4))
			rss = strtoull(line + 4, NULL, 10) << 10;
		else if (!strncmp(line, "VmFlags:", 8) && cand && rss >= PC_MIN_AREA && pc->n < PC_MAX_AREAS) {
			/* Sparse reservations (sanitizer shadow), I/O and pinned
			 * areas are left out: huge, or written behind the page
			 * tables' back. */
			if (strstr(line, " nr") || strstr(line, " io") || strstr(line, " pf") || strstr(line, " dd"))
				continue;
			if (pc->uffd < 0) {
				pc->tracked += rss;
				continue;
			}
			struct uffdio_register reg = { .range = { .start = s, .len = e - s }, .mode = UFFDIO_REGISTER_MODE_WP };
			if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg) < 0)
				continue;  /* not this one (it changed, or uses a uffd of its own): the final dump reads it */
			struct pc_area *na = realloc(pc->a, (pc->n + 1) * sizeof(*na));
			if (!na)
				abort();
			pc->a = na;
			struct pc_area *a = &pc->a[pc->n++];
			uint64_t np = (e - s) / CKPT_PAGE;
			a->start = s, a->end = e;
			a->off = malloc(np * sizeof(*a->off));
			a->sum = malloc(np * sizeof(*a->sum));
			if (!a->off || !a->sum)
				abort();
			memset(a->off, 0xff, np * sizeof(*a->off));
			pc->tracked += rss;
		}
	}
	return 0;
}

int ckpt_precopy_start(pid_t pid, int uffd, const char *dir, struct ckpt_precopy **out, struct ckpt_error *err)
{
	struct ckpt_precopy *pc = calloc(1, sizeof(*pc));
	if (!pc) {
		close(uffd);
		return ckpt_fail(err, ENOMEM, "out of memory");
	}
	pc->pid = pid;
	pc->acc = ckpt_live_tid(pid);
	pc->uffd = uffd;
	pc->pmfd = pc->dirfd = -1;
	int r;
	/* Just restored lazily (lazy.c)? Its areas are registered for missing
	 * pages, which also excludes write-protection: wait until it is in. */
	if ((r = ckpt_mm_wait_filled(pc->acc, 60000, err)) < 0)
		goto fail;
	if ((r = ckpt_uffd_wp_async(uffd, err)) < 0)
		goto fail;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pc->acc);
	pc->pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pc->pmfd < 0) {
		r = ckpt_fail(err, errno, "process %d: %s: %s", pid, path, strerror(errno));
		goto fail;
	}
	/* The kernel knows PAGEMAP_SCAN? (an empty range: nothing walked) */
	struct pm_scan_arg probe = { .size = sizeof(probe) };
	if (ioctl(pc->pmfd, PAGEMAP_SCAN, &probe) < 0) {
		r = ckpt_fail(err, EOPNOTSUPP, "this kernel has no PAGEMAP_SCAN (%s)", strerror(errno));
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = ckpt_fail(err, errno, "cannot create image directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	pc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pc->dirfd < 0) {
		r = ckpt_fail(err, errno, "image directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	pc->buf = malloc(PC_CHUNK);
	pc->vec = calloc(PC_VEC, sizeof(*pc->vec));
	if (!pc->buf || !pc->vec)
		abort();
	if ((r = find_areas(pc, err)) < 0)
		goto fail;
	*out = pc;
	return 0;
fail:
	ckpt_precopy_free(pc);
	return r;
}

uint64_t ckpt_precopy_tracked(const struct ckpt_precopy *pc) { return pc->tracked; }

int ckpt_precopy_size(pid_t pid, uint64_t *bytes, struct ckpt_error *err)
{
	struct ckpt_precopy pc = { .pid = pid, .acc = ckpt_live_tid(pid), .uffd = -1 };
	*bytes = 0;
	/* Counted are present pages: after a lazy restore, once all are in. */
	int r = ckpt_mm_wait_filled(pid, 60000, err);
	if (r < 0)
		return r;
	r = find_areas(&pc, err);
	*bytes = pc.tracked;
	return r;
}

uint64_t ckpt_precopy_file_size(const struct ckpt_precopy *pc)
{
	return pc->w ? 64 + ckpt_writer_offset(pc->w) : 0;
}

/* Copy [s, e) of area a (pages the process may be changing: each one is
 * write-protected already, so a change after its copy shows as written).
 * A page that cannot be read (unmapped meanwhile) keeps no copy. */
static int copy_range(struct ckpt_precopy *pc, struct pc_area *a, uint64_t s, uint64_t e, uint64_t *bytes, struct ckpt_error *err)
{
	if (pc->copy && s < e) {
		/* Copied elsewhere: a hole here, no copy until it is reported
		 * (an older copy of these pages is stale: they were written). */
		uint64_t off = ckpt_writer_offset(pc->w);
		int r = pc->copy(pc->copy_ctx, s, e - s, off);
		if (r < 0)
			return ckpt_fail(err, -r, "process %d: handing over pages at %#" PRIx64 ": %s", pc->pid, s, strerror(-r));
		if ((r = ckpt_writer_skip(pc->w, e - s, err)) < 0)
			return r;
		for (uint64_t p = s; p < e; p += CKPT_PAGE)
			a->off[(p - a->start) / CKPT_PAGE] = PC_NONE;
		*bytes += e - s;
		return 0;
	}
	while (s < e) {
		size_t len = (size_t)MIN(e - s, PC_CHUNK);
		int r = ckpt_peek(pc->acc, s, pc->buf, len);
		if (r < 0) {
			/* Gone (killed meanwhile, a zombie or reaped: its pagemap
			 * reads nothing): not worth trying page by page. */
			uint64_t pm;
			if (pread(pc->pmfd, &pm, sizeof(pm), (off_t)(s / CKPT_PAGE * 8)) != (ssize_t)sizeof(pm))
				return ckpt_fail(err, ESRCH, "process %d ended during the pre-copy", pc->pid);
			if (len == CKPT_PAGE) {
				a->off[(s - a->start) / CKPT_PAGE] = PC_NONE;
				s += CKPT_PAGE;
				continue;
			}
			/* Page by page: only the unreadable ones are lost. */
			for (uint64_t p = s; p < s + len; p += CKPT_PAGE)
				if ((r = copy_range(pc, a, p, p + CKPT_PAGE, bytes, err)) < 0)
					return r;
			s += len;
			continue;
		}
		uint64_t off = ckpt_writer_offset(pc->w);
		if ((r = ckpt_writer_write(pc->w, pc->buf, len, err)) < 0)
			return r;
		for (size_t k = 0; k < len / CKPT_PAGE; k++) {
			uint64_t i = (s - a->start) / CKPT_PAGE + k;
			a->off[i] = off + k * CKPT_PAGE;
			a->sum[i] = XXH3_64bits(pc->buf + k * CKPT_PAGE, CKPT_PAGE);
		}
		*bytes += len;
		s += len;
	}
	return 0;
}

/* First round: protect, then copy, every present (or swapped) page. */
static int first_round(struct ckpt_precopy *pc, struct pc_area *a, uint64_t *bytes, struct ckpt_error *err)
{
	static uint64_t pm[4096];
	uint64_t np = (a->end - a->start) / CKPT_PAGE;
	for (uint64_t i = 0; i < np; i += 4096) {
		size_t cnt = (size_t)MIN(4096, np - i);
		ssize_t got = pread(pc->pmfd, pm, cnt * 8, (off_t)((a->start / CKPT_PAGE + i) * 8));
		if (got != (ssize_t)(cnt * 8))
			return ckpt_fail(err, got < 0 ? errno : EIO, "process %d: reading pagemap: %s", pc->pid, got < 0 ? strerror(errno) : "short read");
		for (size_t k = 0; k < cnt;) {
			if (!(pm[k] & (PM_PRESENT | PM_SWAP))) {
				k++;
				continue;
			}
			size_t k0 = k;
			while (k < cnt && (pm[k] & (PM_PRESENT | PM_SWAP)))
				k++;
			uint64_t s = a->start + (i + k0) * CKPT_PAGE, e = a->start + (i + k) * CKPT_PAGE;
			/* Only populated runs: protecting a hole would plant a
			 * marker there that pagemap shows as swapped. */
			struct uffdio_writeprotect wp = { .range = { .start = s, .len = e - s }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
			if (ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
				continue;  /* changed under us: no copy, the final dump reads it */
			int r = copy_range(pc, a, s, e, bytes, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Later rounds: the pages written since the last scan, protected again
 * by the same walk, then copied. */
struct round {
	struct ckpt_precopy *pc;
	struct pc_area *a;
	uint64_t *bytes;
};

static int copy_region(void *ctx, const struct page_region *g, struct ckpt_error *err)
{
	struct round *r = ctx;
	return copy_range(r->pc, r->a, g->start, g->end, r->bytes, err);
}

static int next_round(struct ckpt_precopy *pc, struct pc_area *a, uint64_t *bytes, struct ckpt_error *err)
{
	struct pm_scan_arg sa = { .flags = PM_SCAN_WP_MATCHING, .start = a->start, .end = a->end, .category_mask = PAGE_IS_WRITTEN,
				  .return_mask = PAGE_IS_WRITTEN };
	struct round r = { pc, a, bytes };
	return ckpt_pm_scan(pc->pid, pc->pmfd, sa, pc->vec, PC_VEC, false, copy_region, &r, err);
}

int ckpt_precopy_round(struct ckpt_precopy *pc, uint64_t *bytes, struct ckpt_error *err)
{
	*bytes = 0;
	if (!pc->rounds) {
		/* The file appears with the first round: a caller that finds
		 * too little to track never made one. */
		char name[64];
		snprintf(name, sizeof(name), "pages-%d.img", pc->pid);
		int r = ckpt_writer_open(pc->dirfd, name, CKPT_PART_PAGES, &pc->w, err);
		if (r < 0)
			return r;
	}
	if (!pc->w)
		return ckpt_fail(err, EINVAL, "pre-copy already used by a dump");
	for (size_t i = 0; i < pc->n; i++) {
		int r = pc->rounds ? next_round(pc, &pc->a[i], bytes, err) : first_round(pc, &pc->a[i], bytes, err);
		if (r < 0)
			return r;
	}
	pc->rounds++;
	return 0;
}

/* ---- for the final dump (mm.c) ---- */

static void drop(struct pc_area *a, uint64_t s, uint64_t e)
{
	for (uint64_t p = s; p < e; p += CKPT_PAGE)
		a->off[(p - a->start) / CKPT_PAGE] = PC_NONE;
}

/* The final scan of one area: clean_to, where the regions reported so
 * far end. */
struct final {
	struct ckpt_precopy *pc;
	struct pc_area *a;
	uint64_t clean_to;
};

static int keep_clean(void *ctx, const struct page_region *g, struct ckpt_error *err)
{
	struct final *f = ctx;
	if (g->start < f->clean_to || g->end > f->a->end)
		return ckpt_fail(err, EIO, "process %d: PAGEMAP_SCAN returned a region out of order", f->pc->pid);
	drop(f->a, f->clean_to, g->start);
	if (!(g->categories & PAGE_IS_WPALLOWED) || (g->categories & PAGE_IS_WRITTEN))
		drop(f->a, g->start, g->end);
	f->clean_to = g->end;
	return 0;
}

int ckpt_precopy_final(struct ckpt_precopy *pc, struct ckpt_error *err)
{
	/* The process is frozen: what is written now stays written. Every
	 * page not reported both write-protectable and unwritten loses its
	 * copy (holes, areas unmapped or replaced, written pages). No
	 * WP_MATCHING: nothing is changed, so this may run again. */
	for (size_t i = 0; i < pc->n; i++) {
		struct pc_area *a = &pc->a[i];
		struct final f = { pc, a, a->start };
		struct pm_scan_arg sa = { .start = a->start, .end = a->end, .return_mask = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN };
		int r = ckpt_pm_scan(pc->pid, pc->pmfd, sa, pc->vec, PC_VEC, false, keep_clean, &f, err);
		if (r < 0)
			return r;
		drop(a, f.clean_to, a->end);
	}
	return 0;
}

CKPT_AREA_HEAD(struct pc_area);

static struct pc_area *area_of(const struct ckpt_precopy *pc, uint64_t addr)
{
	return ckpt_area_find(pc->a, pc->n, sizeof(*pc->a), addr);
}

void ckpt_precopy_copied(struct ckpt_precopy *pc, uint64_t addr, uint64_t off, size_t n, const uint64_t *sums, const uint8_t *ok)
{
	struct pc_area *a = area_of(pc, addr);
	if (!a || addr % CKPT_PAGE || n > (a->end - addr) / CKPT_PAGE)
		return;  /* not a range we handed over: no copy taken */
	uint64_t i0 = (addr - a->start) / CKPT_PAGE;
	for (size_t k = 0; k < n; k++) {
		a->off[i0 + k] = ok[k] ? off + k * CKPT_PAGE : PC_NONE;
		a->sum[i0 + k] = sums[k];
	}
}

bool ckpt_precopy_lookup(const struct ckpt_precopy *pc, uint64_t addr, uint64_t *off, uint64_t *sum)
{
	const struct pc_area *a = area_of(pc, addr);
	if (!a)
		return false;
	uint64_t i = (addr - a->start) / CKPT_PAGE;
	if (a->off[i] == PC_NONE)
		return false;
	*off = a->off[i];
	*sum = a->sum[i];
	return true;
}

struct ckpt_writer *ckpt_precopy_writer(const struct ckpt_precopy *pc, pid_t pid)
{
	return pc && pc->pid == pid ? pc->w : NULL;
}

void ckpt_precopy_writer_done(struct ckpt_precopy *pc, bool committed)
{
	/* Committed: the file is the image's now. Failed: what was appended
	 * may be half written, so nothing of it can be trusted again. */
	if (!committed)
		ckpt_writer_abort(pc->w);
	pc->w = NULL;
}
