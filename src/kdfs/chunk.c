/* chunk.c — chunk replicas on the local disk, a checksum per block.
 *
 * <index>-<gen>      the chunk's bytes (sparse: holes read as zeros)
 * <index>-<gen>.sum  "KDFSSUM1", the replica's version (8 bytes little-endian),
 *              then per block the XXH64 (seed 0, little-endian) of its
 *              64 KiB, zero-padded past the end of the data file. A block
 *              past the end of the .sum file is a block of zeros.
 * The checksum of every block a read touches is checked before a byte of
 * it is returned: a flipped bit on disk is an error, not data. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>
#include "kdfs/chunk.h"
#include "lib/macro.h"

#define SUM_MAGIC "KDFSSUM1"
#define SUM_HDR 16

struct kdfs_chunks {
	int dirfd;               /* kdfs_dir/chunks */
	uint64_t zero_sum;       /* XXH64 of a block of zeros */
};

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t rdle64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int kdfs_chunks_open(const char *dir, struct kdfs_chunks **out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/chunks", dir);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || (mkdir(path, 0700) < 0 && errno != EEXIST))
		return -errno;
	struct kdfs_chunks *cs = calloc(1, sizeof(*cs));
	void *zero = calloc(1, KDFS_BLOCK_SIZE);
	if (!cs || !zero) {
		free(cs);
		free(zero);
		return -ENOMEM;
	}
	cs->zero_sum = XXH64(zero, KDFS_BLOCK_SIZE, 0);
	free(zero);
	cs->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cs->dirfd < 0) {
		int r = -errno;
		free(cs);
		return r;
	}
	*out = cs;
	return 0;
}

void kdfs_chunks_close(struct kdfs_chunks *cs)
{
	if (!cs)
		return;
	close(cs->dirfd);
	free(cs);
}

struct replica {
	int dat, sum;
	uint64_t version;
	bool fresh;              /* no .sum yet */
};

static void replica_close(struct replica *r)
{
	if (r->dat >= 0)
		close(r->dat);
	if (r->sum >= 0)
		close(r->sum);
}

/* Older allocations of this chunk are garbage once a new one is written. */
static void drop_other_gens(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen)
{
	char name[64], mine[48];
	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	int fd = openat(cs->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	snprintf(name, sizeof(name), "%u-", index);
	snprintf(mine, sizeof(mine), "%u-%llu", index, (unsigned long long)gen);
	size_t nl = strlen(name), ml = strlen(mine);
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, name, nl) &&
		    !(!strncmp(de->d_name, mine, ml) && (de->d_name[ml] == '\0' || de->d_name[ml] == '.')))
			unlinkat(fd, de->d_name, 0);
	closedir(d);
}

static int replica_open(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, bool create,
			struct replica *r)
{
	char name[64];
	int flags = (create ? O_RDWR | O_CREAT : O_RDWR) | O_CLOEXEC;
	*r = (struct replica){ .dat = -1, .sum = -1 };
	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	if (create && mkdirat(cs->dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(name, sizeof(name), "%016llx/%u-%llu.sum", (unsigned long long)ino, index, (unsigned long long)gen);
	r->sum = openat(cs->dirfd, name, flags, 0600);
	if (r->sum < 0)
		return -errno;
	snprintf(name, sizeof(name), "%016llx/%u-%llu", (unsigned long long)ino, index, (unsigned long long)gen);
	r->dat = openat(cs->dirfd, name, flags, 0600);
	if (r->dat < 0) {
		int e = -errno;
		replica_close(r);
		return e;
	}
	uint8_t hdr[SUM_HDR];
	ssize_t n = pread(r->sum, hdr, sizeof(hdr), 0);
	if (n == 0 && create) {
		r->fresh = true;
		drop_other_gens(cs, ino, index, gen);
		return 0;
	}
	if (n != SUM_HDR || memcmp(hdr, SUM_MAGIC, 8)) {
		replica_close(r);
		return -EBADMSG;
	}
	r->version = rdle64(hdr + 8);
	return 0;
}

static int set_version(struct replica *r, uint64_t version)
{
	uint8_t hdr[SUM_HDR];
	memcpy(hdr, SUM_MAGIC, 8);
	le64(hdr + 8, version);
	if (pwrite(r->sum, hdr, sizeof(hdr), 0) != SUM_HDR)
		return -EIO;
	r->version = version;
	r->fresh = false;
	return 0;
}

/* Read block b whole (zeros past the end) and check it. */
static int block_read(struct kdfs_chunks *cs, struct replica *r, uint64_t b, uint8_t *blk, bool check)
{
	ssize_t n = pread(r->dat, blk, KDFS_BLOCK_SIZE, (off_t)(b * KDFS_BLOCK_SIZE));
	if (n < 0)
		return -errno;
	memset(blk + n, 0, KDFS_BLOCK_SIZE - (size_t)n);
	if (!check)
		return 0;
	uint8_t s[8];
	ssize_t m = pread(r->sum, s, 8, (off_t)(SUM_HDR + b * 8));
	if (m < 0)
		return -errno;
	uint64_t want = m == 8 ? rdle64(s) : cs->zero_sum;
	return XXH64(blk, KDFS_BLOCK_SIZE, 0) == want ? 0 : -EBADMSG;
}

/* Store block b's sum; blocks between the old end of .sum and b get
 * the zero block's sum (they are holes). */
static int sum_write(struct kdfs_chunks *cs, struct replica *r, uint64_t b, uint64_t sum)
{
	struct stat st;
	if (fstat(r->sum, &st) < 0)
		return -errno;
	uint64_t have = st.st_size > SUM_HDR ? ((uint64_t)st.st_size - SUM_HDR) / 8 : 0;
	uint8_t s[8];
	le64(s, cs->zero_sum);
	for (uint64_t i = have; i < b; i++)
		if (pwrite(r->sum, s, 8, (off_t)(SUM_HDR + i * 8)) != 8)
			return -EIO;
	le64(s, sum);
	return pwrite(r->sum, s, 8, (off_t)(SUM_HDR + b * 8)) == 8 ? 0 : -EIO;
}

int kdfs_chunk_read(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off,
		    void *buf, size_t len)
{
	struct replica r;
	int e = replica_open(cs, ino, index, gen, false, &r);
	if (e < 0)
		return e;
	/* Past the caller's version: its map is old (it reads again with a
	 * fresh one). Behind it: a drop or a fill moved the chunk on and the
	 * bump (an empty write) has not reached this copy yet, or never will
	 * if the node that moved it died first. A copy the map lists holds
	 * every acknowledged write whatever its version (a write is
	 * acknowledged only once each listed copy took it or was dropped),
	 * so it serves the read. */
	if (r.version > version) {
		replica_close(&r);
		return -ESTALE;
	}
	uint8_t *blk = malloc(KDFS_BLOCK_SIZE);
	if (!blk) {
		replica_close(&r);
		return -ENOMEM;
	}
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done, b = pos / KDFS_BLOCK_SIZE, in = pos % KDFS_BLOCK_SIZE;
		size_t n = MIN(len - done, (size_t)(KDFS_BLOCK_SIZE - in));
		if ((e = block_read(cs, &r, b, blk, true)) < 0)
			break;
		memcpy((uint8_t *)buf + done, blk + in, n);
		done += n;
	}
	free(blk);
	replica_close(&r);
	return e < 0 ? e : 0;
}

/* Open for a change at version: the replica moves up, never down. */
static int open_for_change(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, bool create,
			   struct replica *r)
{
	int e = replica_open(cs, ino, index, gen, create, r);
	if (e < 0)
		return e;
	if (!r->fresh && r->version > version) {
		replica_close(r);
		return -ESTALE;
	}
	if ((r->fresh || r->version < version) && (e = set_version(r, version)) < 0) {
		replica_close(r);
		return e;
	}
	return 0;
}

int kdfs_chunk_write(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off,
		     const void *buf, size_t len)
{
	struct replica r;
	int e = open_for_change(cs, ino, index, gen, version, true, &r);
	if (e < 0)
		return e;
	uint8_t *blk = malloc(KDFS_BLOCK_SIZE);
	if (!blk) {
		replica_close(&r);
		return -ENOMEM;
	}
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done, b = pos / KDFS_BLOCK_SIZE, in = pos % KDFS_BLOCK_SIZE;
		size_t n = MIN(len - done, (size_t)(KDFS_BLOCK_SIZE - in));
		/* A partial block merges with what is there, checked first so
		 * that a bad byte is never given a good checksum. */
		if (n < KDFS_BLOCK_SIZE && (e = block_read(cs, &r, b, blk, true)) < 0)
			break;
		/* A whole block is summed where it is, not copied first. */
		const uint8_t *whole = n < KDFS_BLOCK_SIZE ? blk : (const uint8_t *)buf + done;
		if (n < KDFS_BLOCK_SIZE)
			memcpy(blk + in, (const uint8_t *)buf + done, n);
		if (pwrite(r.dat, whole + in, n, (off_t)pos) != (ssize_t)n) {
			e = -EIO;
			break;
		}
		if ((e = sum_write(cs, &r, b, XXH64(whole, KDFS_BLOCK_SIZE, 0))) < 0)
			break;
		done += n;
	}
	free(blk);
	replica_close(&r);
	return e;
}

int kdfs_chunk_sync(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version)
{
	struct replica r;
	int e = replica_open(cs, ino, index, gen, false, &r);
	if (e < 0)
		return e;
	/* Newer: our map is old (redo with a fresh one). Older: the bump of
	 * a drop or a fill has not reached this copy yet; listed, it holds
	 * every acknowledged write (see kdfs_chunk_read), so it is made
	 * durable like one at the version. Refusing it made an fsync racing
	 * a node's drain fail with EIO once every copy answered so. */
	if (r.version > version)
		e = -ESTALE;
	else if (fdatasync(r.dat) < 0 || fdatasync(r.sum) < 0)
		e = -errno;
	replica_close(&r);
	if (e < 0)
		return e;
	/* The names too: the files were made by the first write. */
	char name[32];
	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	int dfd = openat(cs->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0 || fsync(cs->dirfd) < 0)
		e = -errno;
	close(dfd);
	return e;
}

int kdfs_chunk_truncate(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off)
{
	struct replica r;
	int e = open_for_change(cs, ino, index, gen, version, true, &r);
	if (e < 0)
		return e;
	struct stat st;
	if (fstat(r.dat, &st) < 0 || (uint64_t)st.st_size <= off) {
		/* Nothing past off: holes read as zeros already. */
		replica_close(&r);
		return 0;
	}
	uint64_t nblocks = (off + KDFS_BLOCK_SIZE - 1) / KDFS_BLOCK_SIZE;
	uint8_t *blk = malloc(KDFS_BLOCK_SIZE);
	if (!blk)
		e = -ENOMEM;
	/* The block that keeps a head must be good before it is re-summed. */
	if (!e && off % KDFS_BLOCK_SIZE)
		e = block_read(cs, &r, off / KDFS_BLOCK_SIZE, blk, true);
	if (!e && (ftruncate(r.dat, (off_t)off) < 0 || ftruncate(r.sum, (off_t)(SUM_HDR + nblocks * 8)) < 0))
		e = -errno;
	if (!e && off % KDFS_BLOCK_SIZE) {
		memset(blk + off % KDFS_BLOCK_SIZE, 0, KDFS_BLOCK_SIZE - off % KDFS_BLOCK_SIZE);
		e = sum_write(cs, &r, off / KDFS_BLOCK_SIZE, XXH64(blk, KDFS_BLOCK_SIZE, 0));
	}
	free(blk);
	replica_close(&r);
	return e;
}

int kdfs_chunks_remove(struct kdfs_chunks *cs, uint64_t ino)
{
	char name[32];
	snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
	int fd = openat(cs->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	return unlinkat(cs->dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int kdfs_chunks_space(struct kdfs_chunks *cs, uint64_t *total, uint64_t *avail)
{
	struct statvfs sv;
	if (fstatvfs(cs->dirfd, &sv) < 0)
		return -errno;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

int kdfs_chunk_length(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t *len)
{
	char name[64];
	struct stat st;
	snprintf(name, sizeof(name), "%016llx/%u-%llu", (unsigned long long)ino, index, (unsigned long long)gen);
	if (fstatat(cs->dirfd, name, &st, 0) < 0) {
		*len = 0;
		return errno == ENOENT ? 0 : -errno;
	}
	*len = (uint64_t)st.st_size;
	return 0;
}

bool kdfs_chunk_present(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen)
{
	char name[64];
	struct stat st;
	snprintf(name, sizeof(name), "%016llx/%u-%llu", (unsigned long long)ino, index, (unsigned long long)gen);
	return fstatat(cs->dirfd, name, &st, 0) == 0;
}

int kdfs_chunk_discard(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen)
{
	char name[64];
	snprintf(name, sizeof(name), "%016llx/%u-%llu.sum", (unsigned long long)ino, index, (unsigned long long)gen);
	if (unlinkat(cs->dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	name[strlen(name) - 4] = '\0';
	if (unlinkat(cs->dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
