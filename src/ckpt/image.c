/* image.c — the frame around every image file, and loading a whole image.
 *
 * Frame (64 bytes, little-endian, docs/protocol.md "Checkpoint images"):
 *   0  magic "KRGCKPT\n"     8  u32 format version    12 u32 part kind
 *   16 u64 payload length    24 BLAKE2b-256 over payload, then bytes 0..23
 *   56 8 reserved bytes, zero
 * Except pages-<pid>.img: its payload is raw page data, hashed once, per
 * VMA, with XXH3-128 (the sums are in mm-<pid>.img); its frame sum is
 * BLAKE2b-256 over those region sums in VMA order, then bytes 0..23. So
 * every payload byte is under exactly one region sum (ckpt_mm_validate
 * checks the runs tile the payload) and the frame ties the file to its mm.
 * A truncated, extended or altered file fails the length or a checksum;
 * the whole file is checked before any of it is believed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckpt/ckpt-int.h"
#include "lib/fault.h"
#include "lib/fileio.h"
#include "lib/macro.h"

#define CKPT_MAGIC "KRGCKPT\n"

struct ckpt_frame {
	char magic[8];
	uint32_t version;
	uint32_t part;
	uint64_t length;
	uint8_t sum[32];
	uint8_t reserved[8];
};
_Static_assert(sizeof(struct ckpt_frame) == 64, "frame is 64 bytes");
_Static_assert(offsetof(struct ckpt_frame, length) == 16, "frame layout");
_Static_assert(offsetof(struct ckpt_frame, sum) == 24, "frame layout");
#define CKPT_SUMMED_HDR 24  /* bytes of the frame covered by the checksum */

int ckpt_fail(struct ckpt_error *err, int errnum, const char *fmt, ...)
{
	if (err && !err->msg[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return errnum > 0 ? -errnum : errnum;
}

void ckpt_fail_append(struct ckpt_error *err, const char *fmt, ...)
{
	size_t used = strlen(err->msg);
	if (used && used + 1 < sizeof(err->msg))
		err->msg[used++] = '\n', err->msg[used] = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg + used, sizeof(err->msg) - used, fmt, ap);
	va_end(ap);
}

const char *ckpt_part_name(enum ckpt_part part)
{
	switch (part) {
	case CKPT_PART_INVENTORY: return "inventory";
	case CKPT_PART_CORE: return "core";
	case CKPT_PART_MM: return "mm";
	case CKPT_PART_FILES: return "files";
	case CKPT_PART_PAGES: return "pages";
	case CKPT_PART_SYSV: return "sysvipc";
	}
	return "?";
}

char *ckpt_strdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();  /* like protobuf-c's allocator: no way on without memory */
	return d;
}

/* The payload is streamed before its length is known, so the sum is over
 * the payload first, then the frame's first 24 bytes (magic, version,
 * part, length). Readers hash in the same order. */
static void sum_frame(crypto_generichash_state *st, const struct ckpt_frame *f)
{
	crypto_generichash_update(st, (const uint8_t *)f, CKPT_SUMMED_HDR);
}

struct ckpt_writer {
	int dirfd;                     /* borrowed */
	int fd;                        /* owned: the .tmp file */
	char name[64];
	char tmp[72];
	struct ckpt_frame frame;
	crypto_generichash_state st;   /* over the payload (or region sums) + frame's first 24 bytes */
	bool raw;                      /* pages: the payload is not in st (ckpt_writer_sum) */
	uint64_t len;
	uint64_t flushed;              /* bytes handed to writeback (sync_file_range) */
};

/* Writeback is started every WRITEBACK_STEP bytes while a part is being
 * written, so the disk works during the dump instead of all at once in
 * the final fsync, and a large image never piles up as dirty pages that
 * get the dumper throttled (balance_dirty_pages) mid-way. */
#define WRITEBACK_STEP (8ULL << 20)

/* While an application waits frozen for a dump it will survive, the
 * parts are only put in the page cache (ckpt_image_defer_sync): starting
 * writeback then would stall the copy on a busy disk and lengthen the
 * freeze; ckpt_image_sync makes them durable once it runs again. */
static bool defer_sync;

int ckpt_writer_open(int dirfd, const char *name, enum ckpt_part part, struct ckpt_writer **out, struct ckpt_error *err)
{
	struct ckpt_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return ckpt_fail(err, ENOMEM, "out of memory");
	w->dirfd = dirfd;
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->tmp, sizeof(w->tmp), ".%s.tmp", name);
	w->fd = openat(dirfd, w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int r = -errno;
		free(w);
		return ckpt_fail(err, r, "cannot create image file %s: %s", name, strerror(-r));
	}
	memcpy(w->frame.magic, CKPT_MAGIC, 8);
	w->frame.version = CKPT_IMAGE_VERSION;
	w->frame.part = part;
	w->raw = part == CKPT_PART_PAGES;
	crypto_generichash_init(&w->st, NULL, 0, sizeof(w->frame.sum));
	/* The frame is written last (length and sum unknown): leave room. */
	if (lseek(w->fd, sizeof(w->frame), SEEK_SET) < 0) {
		int r = -errno;
		ckpt_writer_abort(w);
		return ckpt_fail(err, r, "seek in %s: %s", name, strerror(-r));
	}
	*out = w;
	return 0;
}

int ckpt_writer_write(struct ckpt_writer *w, const void *buf, size_t len, struct ckpt_error *err)
{
	int r = krg_write_all(w->fd, buf, len);
	if (r < 0)
		return ckpt_fail(err, r, "writing image file %s: %s", w->name, strerror(-r));
	if (!w->raw)
		crypto_generichash_update(&w->st, buf, len);
	w->len += len;
	if (!defer_sync && w->len - w->flushed >= WRITEBACK_STEP) {
		/* Only a hint: an error here shows again at fsync. */
		(void)sync_file_range(w->fd, (off_t)(sizeof(w->frame) + w->flushed), (off_t)(w->len - w->flushed), SYNC_FILE_RANGE_WRITE);
		w->flushed = w->len;
	}
	return 0;
}

void ckpt_writer_sum(struct ckpt_writer *w, const void *buf, size_t len)
{
	crypto_generichash_update(&w->st, buf, len);
}

uint64_t ckpt_writer_offset(const struct ckpt_writer *w) { return w->len; }

int ckpt_writer_skip(struct ckpt_writer *w, uint64_t len, struct ckpt_error *err)
{
	if (lseek(w->fd, (off_t)len, SEEK_CUR) < 0)
		return ckpt_fail(err, errno, "seek in image file %s: %s", w->name, strerror(errno));
	w->len += len;
	w->flushed = w->len;  /* nothing of ours to write back there */
	return 0;
}

void ckpt_writer_abort(struct ckpt_writer *w)
{
	if (!w)
		return;
	close(w->fd);
	unlinkat(w->dirfd, w->tmp, 0);
	free(w);
}

/* Deferred durability (ckpt_image_defer_sync): parts are written and
 * renamed now, made durable by ckpt_image_sync before the inventory. */
void ckpt_image_defer_sync(bool on)
{
	defer_sync = on;
}

int ckpt_image_sync(int dirfd, struct ckpt_error *err)
{
	int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return ckpt_fail(err, errno, "image directory: %s", strerror(errno));
	}
	int r = 0;
	struct dirent *e;
	while (!r && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".img"))
			continue;
		/* Only the regular files krg wrote: a FIFO or a link planted here
		 * must neither block the open nor be followed. */
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		int fd = openat(dirfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		if (fd < 0 || fsync(fd) < 0)
			r = ckpt_fail(err, errno, "writing image file %s: %s", e->d_name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	if (!r && fsync(dirfd) < 0)
		r = ckpt_fail(err, errno, "image directory: fsync: %s", strerror(errno));
	return r;
}

/* Fault injection for the tests (tests/ckpt/leftovers.sh): while the
 * file that fault point ckpt-hold-commit names exists (at most a minute), a pages
 * part waits, written in full under its temporary name, before its
 * rename: a writer killed there leaves the biggest half-done image. */
static void test_hold_commit(const char *name)
{
	char buf[512];
	const char *flag = krg_fault_value("ckpt-hold-commit", buf, sizeof(buf));
	if (!flag || strncmp(name, "pages-", 6))
		return;
	for (int i = 0; i < 6000 && access(flag, F_OK) == 0; i++)
		usleep(10000);
}

int ckpt_writer_commit(struct ckpt_writer *w, struct ckpt_error *err)
{
	int r;
	w->frame.length = w->len;
	sum_frame(&w->st, &w->frame);
	crypto_generichash_final(&w->st, w->frame.sum, sizeof(w->frame.sum));
	if (pwrite(w->fd, &w->frame, sizeof(w->frame), 0) != (ssize_t)sizeof(w->frame) || (!defer_sync && fsync(w->fd) < 0)) {
		r = -errno;
		ckpt_fail(err, r, "writing image file %s: %s", w->name, strerror(-r));
		ckpt_writer_abort(w);
		return r;
	}
	test_hold_commit(w->name);
	if (renameat(w->dirfd, w->tmp, w->dirfd, w->name) < 0) {
		r = -errno;
		ckpt_fail(err, r, "renaming image file %s: %s", w->name, strerror(-r));
		ckpt_writer_abort(w);
		return r;
	}
	close(w->fd);
	free(w);
	return 0;
}

int ckpt_write_msg(int dirfd, const char *name, enum ckpt_part part, const ProtobufCMessage *msg, struct ckpt_error *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return ckpt_fail(err, ENOMEM, "out of memory");
	protobuf_c_message_pack(msg, buf);
	struct ckpt_writer *w;
	int r = ckpt_writer_open(dirfd, name, part, &w, err);
	if (r < 0)
		return r;
	r = ckpt_writer_write(w, buf, len, err);
	if (r < 0) {
		ckpt_writer_abort(w);
		return r;
	}
	return ckpt_writer_commit(w, err);
}

__attribute__((constructor)) static void ckpt_sodium_init(void)
{
	if (sodium_init() < 0)
		abort();
}

void ckpt_blob_free(struct ckpt_blob *b)
{
	if (b->map && b->map != MAP_FAILED)
		munmap(b->map, b->map_len);
	memset(b, 0, sizeof(*b));
}

int ckpt_read_part(int dirfd, const char *name, enum ckpt_part part, struct ckpt_blob *out, struct ckpt_error *err)
{
	/* O_NONBLOCK: a FIFO put in the directory would block the open until
	 * a writer comes; O_NOFOLLOW: a link could name any file. Both are
	 * then refused as not regular. */
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP)
		return ckpt_fail(err, EINVAL, "image file %s: a symbolic link, not a regular file", name);
	if (fd < 0)
		return ckpt_fail(err, errno, "image file %s: %s", name, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ckpt_fail(err, errno, "image file %s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ckpt_fail(err, EINVAL, "image file %s: not a regular file", name);
	if ((uint64_t)st.st_size < sizeof(struct ckpt_frame))
		return ckpt_fail(err, EBADMSG, "image file %s: truncated (%lld bytes, less than its 64-byte frame)", name, (long long)st.st_size);
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return ckpt_fail(err, errno, "image file %s: mmap: %s", name, strerror(errno));
	/* The pages are read once, in order (sums, then the copy into the
	 * process goes over the page cache again): from a disk, have the
	 * kernel read the whole file ahead now, in large requests, rather
	 * than page fault by page fault as the checking reaches it. */
	if (part == CKPT_PART_PAGES) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	}
	struct ckpt_blob b = { .map = map, .map_len = (size_t)st.st_size };
	const struct ckpt_frame *f = map;
	int r = 0;
	uint8_t sum[32];
	crypto_generichash_state hs;
	if (memcmp(f->magic, CKPT_MAGIC, 8)) {
		r = ckpt_fail(err, EBADMSG, "image file %s: not a krg image (bad magic)", name);
		goto fail;
	}
	if (f->version != CKPT_IMAGE_VERSION) {
		r = ckpt_fail(err, EPROTO, "image file %s: format version %u, this krg reads version %u", name, f->version, CKPT_IMAGE_VERSION);
		goto fail;
	}
	if (f->length != (uint64_t)st.st_size - sizeof(*f)) {
		r = ckpt_fail(err, EBADMSG, "image file %s: %s (frame says %llu payload bytes, file has %llu)", name,
			      f->length > (uint64_t)st.st_size - sizeof(*f) ? "truncated" : "has trailing bytes or a damaged length",
			      (unsigned long long)f->length, (unsigned long long)(st.st_size - sizeof(*f)));
		goto fail;
	}
	/* Pages: summed later, region by region (ckpt_mm_validate, then
	 * ckpt_pages_verify for the frame); only the reserved bytes here. */
	bool bad = !sodium_is_zero(f->reserved, sizeof(f->reserved));
	if (part != CKPT_PART_PAGES) {
		crypto_generichash_init(&hs, NULL, 0, sizeof(sum));
		crypto_generichash_update(&hs, (const uint8_t *)map + sizeof(*f), f->length);
		sum_frame(&hs, f);
		crypto_generichash_final(&hs, sum, sizeof(sum));
		bad = bad || (CKPT_SUMS_CHECKED && sodium_memcmp(sum, f->sum, sizeof(sum)));
	}
	if (bad) {
		r = ckpt_fail(err, EBADMSG, "image file %s: checksum mismatch (the file is damaged)", name);
		goto fail;
	}
	if (f->part != part) {
		r = ckpt_fail(err, EBADMSG, "image file %s: holds a %s part, expected %s", name, ckpt_part_name(f->part), ckpt_part_name(part));
		goto fail;
	}
	b.data = (const uint8_t *)map + sizeof(*f);
	b.len = f->length;
	memcpy(b.head, map, sizeof(b.head));
	snprintf(b.name, sizeof(b.name), "%s", name);
	*out = b;
	return 0;
fail:
	ckpt_blob_free(&b);
	return r;
}

int ckpt_pages_verify(const struct ckpt_blob *pages, const uint8_t *sums, size_t len, struct ckpt_error *err)
{
	const struct ckpt_frame *f = (const struct ckpt_frame *)pages->head;
	uint8_t sum[32];
	crypto_generichash_state hs;
	crypto_generichash_init(&hs, NULL, 0, sizeof(sum));
	crypto_generichash_update(&hs, sums, len);
	sum_frame(&hs, f);
	crypto_generichash_final(&hs, sum, sizeof(sum));
	if (CKPT_SUMS_CHECKED && sodium_memcmp(sum, f->sum, sizeof(sum)))
		return ckpt_fail(err, EBADMSG, "image file %s: checksum mismatch (the file is damaged)", pages->name);
	return 0;
}

static int read_msg(int dirfd, const char *name, enum ckpt_part part, const ProtobufCMessageDescriptor *desc, void **out, struct ckpt_error *err)
{
	struct ckpt_blob b;
	int r = ckpt_read_part(dirfd, name, part, &b, err);
	if (r < 0)
		return r;
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, b.len, b.data);
	ckpt_blob_free(&b);
	if (!m)
		return ckpt_fail(err, EBADMSG, "image file %s: cannot decode its %s message", name, ckpt_part_name(part));
	*out = m;
	return 0;
}

static void proc_image_free(struct ckpt_proc_image *p)
{
	if (p->core)
		krg__ckpt__core__free_unpacked(p->core, NULL);
	if (p->mm)
		krg__ckpt__mm__free_unpacked(p->mm, NULL);
	if (p->files)
		krg__ckpt__files__free_unpacked(p->files, NULL);
	ckpt_blob_free(&p->pages);
}

void ckpt_image_free(struct ckpt_image *img)
{
	for (size_t i = 0; i < img->n_procs; i++)
		proc_image_free(&img->procs[i]);
	free(img->procs);
	free(img->files);
	if (img->inv)
		krg__ckpt__inventory__free_unpacked(img->inv, NULL);
	memset(img, 0, sizeof(*img));
}

/* The tree: the root first with no parent in the image, every other
 * process after its parent, pids unique, the pid list the same. */
static int check_tree(const char *dir, const Krg__Ckpt__Inventory *inv, struct ckpt_error *err)
{
	if (inv->n_procs < 1 || inv->n_procs > CKPT_MAX_PROCS)
		return ckpt_fail(err, EBADMSG, "image %s: %zu processes (1 to %d restorable)", dir, inv->n_procs, CKPT_MAX_PROCS);
	if (inv->n_pids != inv->n_procs)
		return ckpt_fail(err, EBADMSG, "image %s: the pid list and the process list disagree", dir);
	const Krg__Ckpt__Process *root = inv->procs[0];
	if (root->pid != inv->root_pid || root->pid <= 0 || root->ppid != 0 || root->zombie)
		return ckpt_fail(err, EBADMSG, "image %s: the first process is not a live root", dir);
	for (size_t i = 0; i < inv->n_procs; i++) {
		const Krg__Ckpt__Process *p = inv->procs[i];
		if (p->pid <= 0 || inv->pids[i] != p->pid)
			return ckpt_fail(err, EBADMSG, "image %s: process %zu has a bad pid", dir, i);
		bool parent = i == 0;
		for (size_t j = 0; j < i; j++) {
			if (inv->procs[j]->pid == p->pid)
				return ckpt_fail(err, EBADMSG, "image %s: pid %d appears twice", dir, p->pid);
			if (inv->procs[j]->pid == p->ppid && !inv->procs[j]->zombie)
				parent = true;
		}
		if (!parent)
			return ckpt_fail(err, EBADMSG, "image %s: the parent %d of process %d comes nowhere before it", dir, p->ppid, p->pid);
	}
	return 0;
}

static int load_proc(int dirfd, const char *dir, const Krg__Ckpt__Inventory *inv, struct ckpt_proc_image *p, int with_pages, struct ckpt_error *err)
{
	char name[64];
	int r, pid = p->info->pid;
	snprintf(name, sizeof(name), "core-%d.img", pid);
	if ((r = read_msg(dirfd, name, CKPT_PART_CORE, &krg__ckpt__core__descriptor, (void **)&p->core, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	if ((r = read_msg(dirfd, name, CKPT_PART_MM, &krg__ckpt__mm__descriptor, (void **)&p->mm, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "files-%d.img", pid);
	if ((r = read_msg(dirfd, name, CKPT_PART_FILES, &krg__ckpt__files__descriptor, (void **)&p->files, err)) < 0)
		return r;
	if (p->core->pid != pid || p->mm->pid != pid || p->files->pid != pid)
		return ckpt_fail(err, EBADMSG, "image %s: parts of process %d disagree on the pid", dir, pid);
	if (p->core->n_threads < 1)
		return ckpt_fail(err, EBADMSG, "image %s: core-%d.img has no thread", dir, pid);
	for (size_t i = 0; i < p->core->n_threads; i++)
		if (!p->core->threads[i]->regs || p->core->threads[i]->xsave.len != inv->xsave_size)
			return ckpt_fail(err, EBADMSG, "image %s: process %d thread %zu has no registers or an XSAVE area of the wrong size", dir, pid, i);
	if (p->core->n_threads > 4096)
		return ckpt_fail(err, EBADMSG, "image %s: %zu threads is more than krg restores (4096)", dir, p->core->n_threads);
	for (size_t i = 0; i < p->core->n_shared_pending; i++)
		if (p->core->shared_pending[i].len != 128)
			return ckpt_fail(err, EBADMSG, "image %s: process %d: a pending signal is not a 128-byte siginfo", dir, pid);
	for (size_t i = 0; i < p->core->n_threads; i++)
		for (size_t k = 0; k < p->core->threads[i]->n_pending; k++)
			if (p->core->threads[i]->pending[k].len != 128)
				return ckpt_fail(err, EBADMSG, "image %s: process %d thread %zu: a pending signal is not a 128-byte siginfo", dir, pid, i);
	if (!p->mm->fields)
		return ckpt_fail(err, EBADMSG, "image %s: mm-%d.img has no mm fields", dir, pid);
	if (with_pages) {
		snprintf(name, sizeof(name), "pages-%d.img", pid);
		if ((r = ckpt_read_part(dirfd, name, CKPT_PART_PAGES, &p->pages, err)) < 0)
			return r;
		/* An increment: the payload it continues comes first. */
		if (p->mm->pages_base && (r = ckpt_chain_pages(dirfd, dir, inv, p->mm, &p->pages, err)) < 0)
			return r;
		if ((r = ckpt_mm_validate(p->mm, &p->pages, with_pages == CKPT_LOAD_PAGES_LAZY, err)) < 0)
			return r;
	}
	return ckpt_files_validate(p->files, err);
}

int ckpt_image_load(const char *dir, int with_pages, struct ckpt_image *img, struct ckpt_error *err)
{
	memset(img, 0, sizeof(*img));
	img->dir = dir;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return ckpt_fail(err, errno, "image directory %s: %s", dir, strerror(errno));
	int r = read_msg(dirfd, "inventory.img", CKPT_PART_INVENTORY, &krg__ckpt__inventory__descriptor, (void **)&img->inv, err);
	if (r < 0)
		goto fail;
	const Krg__Ckpt__Inventory *inv = img->inv;
	if (inv->image_version != CKPT_IMAGE_VERSION) {
		r = ckpt_fail(err, EPROTO, "image %s: version %u, this krg reads version %u", dir, inv->image_version, CKPT_IMAGE_VERSION);
		goto fail;
	}
	if (inv->arch != KRG__CKPT__ARCH__ARCH_X86_64) {
		r = ckpt_fail(err, EPROTO, "image %s: not an x86-64 image", dir);
		goto fail;
	}
	if ((r = check_tree(dir, inv, err)) < 0)
		goto fail;
	img->procs = calloc(inv->n_procs, sizeof(*img->procs));
	img->files = calloc(inv->n_procs, sizeof(*img->files));
	if (!img->procs || !img->files)
		abort();
	img->n_procs = inv->n_procs;
	for (size_t i = 0; i < inv->n_procs; i++) {
		img->procs[i].info = inv->procs[i];
		if (inv->procs[i]->zombie)
			continue;
		if ((r = load_proc(dirfd, dir, inv, &img->procs[i], with_pages, err)) < 0)
			goto fail;
		img->files[img->n_live++] = img->procs[i].files;
	}
	if ((r = ckpt_files_validate_app(img->files, img->n_live, err)) < 0)
		goto fail;
	return 0;
fail:
	ckpt_image_free(img);
	return r;
}
