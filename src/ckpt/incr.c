/* incr.c — incremental checkpoints (ckpt.h, ckpt_track_*; docs/checkpoint.md
 * "Incremental images").
 *
 * Writes are found as a live migration's pre-copy finds them
 * (precopy.c): a userfaultfd made in the process, in asynchronous
 * write-protect mode, registered on its private anonymous areas, and
 * PAGEMAP_SCAN, which reports the pages written since they were last
 * protected and protects them again. The userfaultfd is the caller's,
 * held between checkpoints (krgd keeps one per process of an application
 * checkpointed periodically): the registration lives as long as it is
 * open, and the protection bits live in the process's page tables.
 *
 * A checkpoint with a tracker, the process frozen:
 *  - an area already registered (smaps "uw" before we register it again,
 *    which only succeeds for our own userfaultfd), that the parent image
 *    says was tracked from its checkpoint on, is "eligible": a page in it
 *    that is present, not written and not the shared zero page is the
 *    parent's copy, referenced by its payload offset and page sum (the
 *    parent's Vma.page_sums), not read again. Its written pages are
 *    protected again for the next one;
 *  - any other candidate area is registered and its populated pages
 *    protected now; all its pages are read.
 * A swapped page is always read (a userfaultfd marker left by a zapped
 * page looks swapped to PAGEMAP_SCAN, and reads as zeros), and so is the
 * zero page (a zapped page read again).
 *
 * A dump that fails after its scans unregisters every area it touched:
 * the pages it protected again were not saved anywhere, so the next
 * checkpoint must not take them from the older parent.
 *
 * On the reading side the pages payload of an incremental image continues
 * its parent's (Mm.pages_base): ckpt_chain_pages maps the whole chain as
 * one read-only payload, the root image's file mapped and the increments
 * read after it, so everything that reads pages (verification, restore,
 * lazy restore) sees one payload. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "ckpt/ckpt-int.h"
#include "ckpt/mm-int.h"
#include "lib/macro.h"

#define INCR_MAX_AREA (16ULL << 30)
#define INCR_VEC 512

int ckpt_track_take(pid_t pid, int *uffd_out, struct ckpt_error *err)
{
	int uffd = -1;
	int r = ckpt_uffd_take(pid, &uffd, err);
	if (r < 0)
		return r;
	if ((r = ckpt_uffd_wp_async(uffd, err)) < 0) {
		close(uffd);
		return r;
	}
	*uffd_out = uffd;
	return 0;
}

/* ---- the dump side ---- */

struct pidx {
	uint64_t start, end;
	const Krg__Ckpt__Vma *v;
	uint64_t *first;  /* owned: page index (in page_sums) of each run's first page */
};
CKPT_AREA_HEAD(struct pidx);

struct ckpt_incr {
	pid_t pid;
	int uffd;                      /* borrowed, -1: no tracker */
	const Krg__Ckpt__Mm *parent;   /* borrowed, may be NULL */
	struct pidx *pv;               /* the parent's tracked regions with page sums, ascending */
	size_t npv;
	uint64_t (*reg)[2];            /* areas registered by this dump (undone on failure) */
	size_t nreg;
	/* the VMA being dumped */
	bool eligible;
	uint64_t vstart, vend;
	uint8_t *dirty;                /* owned: bit per page of [vstart, vend), written since the parent */
	size_t dirty_cap;
	struct page_region *vec;
};

struct ckpt_incr *ckpt_incr_new(pid_t pid, int uffd, const Krg__Ckpt__Mm *parent)
{
	struct ckpt_incr *in = calloc(1, sizeof(*in));
	if (!in || !(in->vec = calloc(INCR_VEC, sizeof(*in->vec))))
		abort();
	in->pid = pid;
	in->uffd = uffd;
	in->parent = parent;
	for (size_t i = 0; parent && i < parent->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = parent->vmas[i];
		if (!v->tracked || !v->n_runs || !v->has_page_sums)
			continue;
		uint64_t *first = malloc(v->n_runs * sizeof(*first));
		struct pidx *np = realloc(in->pv, (in->npv + 1) * sizeof(*np));
		if (!first || !np)
			abort();
		in->pv = np;
		uint64_t k = 0;
		for (size_t j = 0; j < v->n_runs; j++)
			first[j] = k, k += v->runs[j]->npages;
		if (k * 8 != v->page_sums.len) {  /* checked by ckpt_incr_parent_check: never here */
			free(first);
			continue;
		}
		in->pv[in->npv++] = (struct pidx){ v->start, v->end, v, first };
	}
	return in;
}

void ckpt_incr_free(struct ckpt_incr *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->npv; i++)
		free(in->pv[i].first);
	free(in->pv);
	free(in->reg);
	free(in->dirty);
	free(in->vec);
	free(in);
}

uint64_t ckpt_incr_base(const struct ckpt_incr *in)
{
	return in && in->parent ? in->parent->pages_size : 0;
}

void ckpt_incr_undo(struct ckpt_incr *in)
{
	for (size_t i = 0; in && in->uffd >= 0 && i < in->nreg; i++) {
		struct uffdio_range rg = { .start = in->reg[i][0], .len = in->reg[i][1] - in->reg[i][0] };
		ioctl(in->uffd, UFFDIO_UNREGISTER, &rg);
	}
}

static bool parent_tracked_cover(const struct ckpt_incr *in, uint64_t s, uint64_t e)
{
	/* The region is the whole (or a part) of one tracked VMA of the parent:
	 * a VMA split since keeps its registration. */
	for (size_t i = 0; in->parent && i < in->parent->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = in->parent->vmas[i];
		if (v->start <= s && e <= v->end)
			return v->tracked;
	}
	return false;
}

static bool candidate(const Krg__Ckpt__Vma *v)
{
	bool anon = v->kind == KRG__CKPT__VMA_KIND__VMA_ANON || v->kind == KRG__CKPT__VMA_KIND__VMA_HEAP ||
		    v->kind == KRG__CKPT__VMA_KIND__VMA_STACK;
	if (!anon || (v->flags & MAP_SHARED) || v->has_shmem_ino || v->end - v->start > INCR_MAX_AREA)
		return false;
	/* Sparse reservations, I/O and pinned areas: as pre-copy, left out. */
	const char *fl = v->vmflags;
	return !(ckpt_mm_has_vmflag(fl, "nr") || ckpt_mm_has_vmflag(fl, "io") || ckpt_mm_has_vmflag(fl, "pf") ||
		 ckpt_mm_has_vmflag(fl, "dd") || ckpt_mm_has_vmflag(fl, "um"));
}

/* Every region PAGEMAP_SCAN reports for base (walked to its end): fn. */
static int scan(struct ckpt_incr *in, int pmfd, struct pm_scan_arg base, ckpt_pm_fn fn, struct ckpt_error *err)
{
	return ckpt_pm_scan(in->pid, pmfd, base, in->vec, INCR_VEC, false, fn, in, err);
}

static int mark_dirty(void *ctx, const struct page_region *g, struct ckpt_error *err)
{
	struct ckpt_incr *in = ctx;
	uint64_t s = MAX(g->start, in->vstart), e = MIN(g->end, in->vend);
	for (uint64_t a = s; a < e; a += CKPT_PAGE) {
		uint64_t i = (a - in->vstart) / CKPT_PAGE;
		in->dirty[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	return 0;
}

static int protect(void *ctx, const struct page_region *g, struct ckpt_error *err)
{
	struct ckpt_incr *in = ctx;
	/* Only populated runs: protecting a hole would plant a marker there. */
	struct uffdio_writeprotect wp = { .range = { .start = g->start, .len = g->end - g->start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	ioctl(in->uffd, UFFDIO_WRITEPROTECT, &wp);
	return 0;
}

int ckpt_incr_vma(struct ckpt_incr *in, int pmfd, Krg__Ckpt__Vma *v, struct ckpt_error *err)
{
	if (!in)
		return 0;
	in->eligible = false;
	if (in->uffd < 0 || !candidate(v))
		return 0;
	bool was_ours = ckpt_mm_has_vmflag(v->vmflags, "uw");
	struct uffdio_register reg = { .range = { .start = v->start, .len = v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(in->uffd, UFFDIO_REGISTER, &reg) < 0)
		return 0;  /* the program's own userfaultfd, or it changed: read in full, not tracked */
	uint64_t (*nr)[2] = realloc(in->reg, (in->nreg + 1) * sizeof(*nr));
	if (!nr)
		abort();
	in->reg = nr;
	in->reg[in->nreg][0] = v->start, in->reg[in->nreg][1] = v->end;
	in->nreg++;
	v->has_tracked = v->tracked = true;
	in->vstart = v->start, in->vend = v->end;
	if (was_ours && parent_tracked_cover(in, v->start, v->end)) {
		size_t bytes = (size_t)((v->end - v->start) / CKPT_PAGE + 7) / 8;
		if (bytes > in->dirty_cap) {
			free(in->dirty);
			if (!(in->dirty = malloc(bytes)))
				abort();
			in->dirty_cap = bytes;
		}
		memset(in->dirty, 0, bytes);
		/* Written since the parent, the zero page (zapped and read
		 * again) or not present (swapped, or a zapped page's marker:
		 * read, it reads as what the process would see), then protect
		 * the written ones again: nothing runs in between (frozen). */
		const uint64_t not_clean = PAGE_IS_WRITTEN | PAGE_IS_PFNZERO | PAGE_IS_SWAPPED;
		struct pm_scan_arg look = { .start = v->start, .end = v->end, .category_anyof_mask = not_clean, .return_mask = not_clean };
		int r = scan(in, pmfd, look, mark_dirty, err);
		struct pm_scan_arg again = { .flags = PM_SCAN_WP_MATCHING, .start = v->start, .end = v->end,
					     .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
		if (r == 0)
			r = scan(in, pmfd, again, NULL, err);
		if (r < 0)
			return r;
		in->eligible = true;
		return 0;
	}
	/* Newly tracked: protect what is there now; everything is read. */
	struct pm_scan_arg pop = { .start = v->start, .end = v->end, .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				   .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
	return scan(in, pmfd, pop, protect, err);
}

bool ckpt_incr_lookup(struct ckpt_incr *in, uint64_t addr, uint64_t *off, uint64_t *sum)
{
	if (!in || !in->eligible || addr < in->vstart || addr >= in->vend)
		return false;
	uint64_t i = (addr - in->vstart) / CKPT_PAGE;
	if (in->dirty[i / 8] & (1u << (i % 8)))
		return false;
	const struct pidx *p = ckpt_area_find(in->pv, in->npv, sizeof(*in->pv), addr);
	if (!p)
		return false;
	const Krg__Ckpt__Vma *v = p->v;
	size_t a = 0, b = v->n_runs;
	while (a < b) {
		size_t m = (a + b) / 2;
		const Krg__Ckpt__PageRun *run = v->runs[m];
		if (addr < run->start)
			b = m;
		else if (addr >= run->start + run->npages * CKPT_PAGE)
			a = m + 1;
		else {
			uint64_t k = (addr - run->start) / CKPT_PAGE;
			*off = run->offset + k * CKPT_PAGE;
			*sum = XXH64_hashFromCanonical((const XXH64_canonical_t *)(v->page_sums.data + (p->first[m] + k) * 8));
			return true;
		}
	}
	return false;
}

/* ---- the reading side ---- */

/* The parent's page sums can stand for its pages: their XXH3-128 is the
 * region's checksum, which the pages frame covers. */
int ckpt_incr_parent_check(const Krg__Ckpt__Mm *mm, const char *what, struct ckpt_error *err)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Krg__Ckpt__Vma *v = mm->vmas[i];
		if (!v->has_page_sums)
			continue;
		uint64_t n = 0;
		for (size_t j = 0; j < v->n_runs; j++)
			n += v->runs[j]->npages;
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits(v->page_sums.data, v->page_sums.len));
		if (!mm->pages_sparse || n * 8 != v->page_sums.len || !v->has_checksum || v->checksum.len != sizeof(c) ||
		    (CKPT_SUMS_CHECKED && memcmp(c.digest, v->checksum.data, sizeof(c))))
			return ckpt_fail(err, EBADMSG, "%s: the page sums of VMA %#" PRIx64 " do not match its checksum (the file is damaged)",
					 what, v->start);
	}
	return 0;
}

int ckpt_image_parent(const char *dir, char *name, size_t len)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct ckpt_blob b;
	struct ckpt_error err = { 0 };
	int r = ckpt_read_part(dfd, "inventory.img", CKPT_PART_INVENTORY, &b, &err);
	if (r < 0)
		return r;
	Krg__Ckpt__Inventory *inv = krg__ckpt__inventory__unpack(NULL, b.len, b.data);
	ckpt_blob_free(&b);
	if (!inv)
		return -EBADMSG;
	r = inv->parent ? 0 : -ENOENT;
	if (inv->parent)
		snprintf(name, len, "%s", inv->parent);
	krg__ckpt__inventory__free_unpacked(inv, NULL);
	return r;
}

static bool parent_name_ok(const char *p)
{
	return p && *p && strlen(p) < 64 && !strchr(p, '/') && strcmp(p, ".") && strcmp(p, "..");
}

int ckpt_parent_open(int dirfd, const char *dir, const Krg__Ckpt__Inventory *inv, int *pfd, Krg__Ckpt__Inventory **pinv,
		     struct ckpt_error *err)
{
	if (!parent_name_ok(inv->parent) || !inv->has_parent_sum || inv->parent_sum.len != 32)
		return ckpt_fail(err, EBADMSG, "image %s: an incremental image without a valid parent reference", dir);
	char rel[80];
	snprintf(rel, sizeof(rel), "../%s", inv->parent);
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ckpt_fail(err, errno, "image %s: its parent %s is missing (an incremental image needs every image it builds on): %s",
				 dir, inv->parent, strerror(errno));
	struct ckpt_blob b;
	struct ckpt_error perr = { 0 };
	int r = ckpt_read_part(fd, "inventory.img", CKPT_PART_INVENTORY, &b, &perr);
	if (r < 0) {
		close(fd);
		return ckpt_fail(err, -r, "image %s: its parent %s is unusable: %s", dir, inv->parent, perr.msg);
	}
	bool same = !memcmp(b.head + 24, inv->parent_sum.data, 32) || !CKPT_SUMS_CHECKED;
	Krg__Ckpt__Inventory *pi = same ? krg__ckpt__inventory__unpack(NULL, b.len, b.data) : NULL;
	ckpt_blob_free(&b);
	if (!same || !pi) {
		close(fd);
		return ckpt_fail(err, EBADMSG, "image %s: its parent %s is %s", dir, inv->parent,
				 same ? "undecodable" : "not the image it was taken after (replaced by another)");
	}
	*pfd = fd;
	*pinv = pi;
	return 0;
}

struct seg {
	int fd;        /* owned: the image directory */
	char dir[80];  /* for errors: "v3" */
	uint64_t base, size;
};

static int map_chain(struct seg *segs, size_t n, pid_t pid, const struct ckpt_blob *own, struct ckpt_blob *out, struct ckpt_error *err)
{
	/* segs[n - 1] is the root (base 0): its file is mapped, the payload at
	 * X + 64; each increment's bytes are read in after it. */
	uint64_t total = segs[0].size;
	size_t map_len = (size_t)((64 + total + CKPT_PAGE - 1) / CKPT_PAGE * CKPT_PAGE);
	uint8_t *x = mmap(NULL, map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x == MAP_FAILED)
		return ckpt_fail(err, errno, "mapping the pages of process %d: %s", pid, strerror(errno));
	char name[64];
	snprintf(name, sizeof(name), "pages-%d.img", pid);
	int r = 0;
	const struct seg *root = &segs[n - 1];
	_cleanup_close_ int rfd = openat(root->fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t root_len = (size_t)(64 + root->size);
	if (rfd < 0 || mmap(x, root_len, PROT_READ, MAP_PRIVATE | MAP_FIXED, rfd, 0) == MAP_FAILED) {
		r = ckpt_fail(err, errno, "image %s: %s: %s", root->dir, name, strerror(errno));
		goto fail;
	}
	size_t tail = (root_len + CKPT_PAGE - 1) / CKPT_PAGE * CKPT_PAGE;
	/* The first increment begins in the root's last page (the payload
	 * sits 64 bytes past a page start): that page becomes a private
	 * copy; the rest of the root stays the file's page cache. */
	if (tail < map_len + CKPT_PAGE && n > 1 && mprotect(x + tail - CKPT_PAGE, CKPT_PAGE, PROT_READ | PROT_WRITE) < 0) {
		r = ckpt_fail(err, errno, "mapping the pages of process %d: %s", pid, strerror(errno));
		goto fail;
	}
	if (tail < map_len && mmap(x + tail, map_len - tail, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		r = ckpt_fail(err, errno, "mapping the pages of process %d: %s", pid, strerror(errno));
		goto fail;
	}
	for (size_t k = n - 1; k-- > 0;) {
		const struct seg *s = &segs[k];
		_cleanup_close_ int fd = openat(s->fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		uint64_t want = s->size - s->base, got = 0;
		while (fd >= 0 && got < want) {
			ssize_t m = pread(fd, x + 64 + s->base + got, (size_t)MIN(want - got, 1UL << 30), (off_t)(64 + got));
			if (m <= 0)
				break;
			got += (uint64_t)m;
		}
		if (got < want) {
			r = ckpt_fail(err, fd < 0 ? errno : EIO, "image %s: %s: cannot read its pages", s->dir, name);
			goto fail;
		}
	}
	mprotect(x, map_len, PROT_READ);
	madvise(x, map_len, MADV_SEQUENTIAL);
	*out = *own;
	out->map = x;
	out->map_len = map_len;
	out->data = x + 64;
	out->len = total;
	snprintf(out->name, sizeof(out->name), "pages-%d.img (and its parents')", pid);
	return 0;
fail:
	munmap(x, map_len);
	return r;
}

int ckpt_chain_pages(int dirfd, const char *dir, const Krg__Ckpt__Inventory *inv, const Krg__Ckpt__Mm *mm, struct ckpt_blob *pages,
		     struct ckpt_error *err)
{
	pid_t pid = mm->pid;
	if (!mm->pages_sparse || mm->pages_base % CKPT_PAGE || mm->pages_base > mm->pages_size ||
	    pages->len != mm->pages_size - mm->pages_base)
		return ckpt_fail(err, EBADMSG, "image %s: pages-%d.img holds %zu bytes, mm says %" PRIu64 " from %" PRIu64, dir, pid,
				 pages->len, mm->pages_size, mm->pages_base);
	struct seg segs[CKPT_MAX_CHAIN + 1];
	size_t n = 0;
	int r = 0;
	segs[n++] = (struct seg){ .fd = dup(dirfd), .base = mm->pages_base, .size = mm->pages_size };
	snprintf(segs[0].dir, sizeof(segs[0].dir), "%s", dir);
	Krg__Ckpt__Inventory *ci = NULL;  /* owned from the second step on */
	const Krg__Ckpt__Inventory *cur = inv;
	const char *curname = dir;
	char namebuf[80];
	while (segs[n - 1].base > 0) {
		if (n > CKPT_MAX_CHAIN) {
			r = ckpt_fail(err, ELOOP, "image %s: a chain of more than %d incremental images", dir, CKPT_MAX_CHAIN);
			break;
		}
		int pfd = -1;
		Krg__Ckpt__Inventory *pi = NULL;
		if ((r = ckpt_parent_open(segs[n - 1].fd, curname, cur, &pfd, &pi, err)) < 0)
			break;
		snprintf(namebuf, sizeof(namebuf), "%s", cur->parent);
		if (ci)
			krg__ckpt__inventory__free_unpacked(ci, NULL);
		cur = ci = pi;
		segs[n] = (struct seg){ .fd = pfd };
		snprintf(segs[n].dir, sizeof(segs[n].dir), "%s", namebuf);
		curname = segs[n].dir;
		n++;
		/* Its mm for this pid: the payload this increment continues. */
		char name[64];
		snprintf(name, sizeof(name), "mm-%d.img", pid);
		struct ckpt_blob mb;
		struct ckpt_error perr = { 0 };
		if ((r = ckpt_read_part(pfd, name, CKPT_PART_MM, &mb, &perr)) < 0) {
			r = ckpt_fail(err, -r, "image %s: its parent %s is unusable: %s", dir, curname, perr.msg);
			break;
		}
		Krg__Ckpt__Mm *pm = krg__ckpt__mm__unpack(NULL, mb.len, mb.data);
		ckpt_blob_free(&mb);
		if (!pm) {
			r = ckpt_fail(err, EBADMSG, "image %s: parent %s: cannot decode %s", dir, curname, name);
			break;
		}
		uint64_t want = segs[n - 2].base;
		segs[n - 1].base = pm->pages_base;
		segs[n - 1].size = pm->pages_size;
		/* Its pages frame: length and the checksum over its regions'. */
		struct ckpt_blob pb;
		snprintf(name, sizeof(name), "pages-%d.img", pid);
		if (pm->pages_size != want || pm->pages_base > pm->pages_size || pm->pages_base % CKPT_PAGE)
			r = ckpt_fail(err, EBADMSG, "image %s: parent %s: the pages of process %d end at %" PRIu64 ", the increment continues at %" PRIu64,
				      dir, curname, pid, pm->pages_size, want);
		else if ((r = ckpt_read_part(pfd, name, CKPT_PART_PAGES, &pb, &perr)) < 0)
			r = ckpt_fail(err, -r, "image %s: its parent %s is unusable: %s", dir, curname, perr.msg);
		else {
			uint8_t *sums = malloc(pm->n_vmas * 16 + 1);
			size_t ns = 0;
			if (!sums)
				abort();
			for (size_t i = 0; i < pm->n_vmas; i++)
				if (pm->vmas[i]->n_runs && pm->vmas[i]->checksum.len == 16)
					memcpy(sums + 16 * ns++, pm->vmas[i]->checksum.data, 16);
			if (pb.len != pm->pages_size - pm->pages_base)
				r = ckpt_fail(err, EBADMSG, "image %s: parent %s: %s holds %zu bytes, its mm says %" PRIu64, dir, curname, name, pb.len,
					      pm->pages_size - pm->pages_base);
			else if ((r = ckpt_pages_verify(&pb, sums, ns * 16, &perr)) < 0)
				r = ckpt_fail(err, -r, "image %s: its parent %s is damaged: %s", dir, curname, perr.msg);
			free(sums);
			ckpt_blob_free(&pb);
		}
		krg__ckpt__mm__free_unpacked(pm, NULL);
		if (r < 0)
			break;
	}
	if (ci)
		krg__ckpt__inventory__free_unpacked(ci, NULL);
	if (r == 0) {
		struct ckpt_blob out;
		if ((r = map_chain(segs, n, pid, pages, &out, err)) == 0) {
			ckpt_blob_free(pages);
			*pages = out;
		}
	}
	for (size_t k = 0; k < n; k++)
		if (segs[k].fd >= 0)
			close(segs[k].fd);
	return r;
}
