/* chunk.h — this node's replicas of kdfs chunks, as files under
 * kdfs_dir/chunks/<ino>/<index>-<gen>, with a checksum per 64 KiB block
 * in <index>-<gen>.sum that every read verifies (docs/kdfs.md, "Chunks";
 * docs/protocol.md gives the .sum format).
 *
 * Blocking file I/O on the local disk; errors are negative errno, and
 * -EBADMSG means a block failed its checksum (the caller reads another
 * replica), -ESTALE that the replica is past the version asked for. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KDFS_BLOCK_SIZE (64u << 10)

struct kdfs_chunks;

int kdfs_chunks_open(const char *dir, struct kdfs_chunks **out);
void kdfs_chunks_close(struct kdfs_chunks *cs);

/* Read len bytes at off inside chunk (ino, index) at version; bytes never
 * written read as zeros. -ESTALE if the replica is past version; one
 * behind it serves the read (a listed copy holds every acknowledged
 * write; its bump may still be on the way). */
int kdfs_chunk_read(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off,
		    void *buf, size_t len);
/* Write, creating the replica; a version above the replica's becomes its
 * version (the chunk moved on), one below is refused (-ESTALE). */
int kdfs_chunk_write(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off,
		     const void *buf, size_t len);
/* Cut the replica at off (bytes after it read as zeros again). */
int kdfs_chunk_truncate(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version, uint64_t off);
/* The replica's bytes, sums and names on stable storage (fsync); -ESTALE
 * if it is past version (a replica behind it is synced too). */
int kdfs_chunk_sync(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t version);
/* Remove every replica of ino. */
int kdfs_chunks_remove(struct kdfs_chunks *cs, uint64_t ino);
/* Bytes of the replica's data file (0 when there is none). */
int kdfs_chunk_length(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen, uint64_t *len);
/* Whether this node has a replica of the chunk (its data file). */
bool kdfs_chunk_present(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen);
/* Remove this node's replica of one chunk (a repair starts it afresh). */
int kdfs_chunk_discard(struct kdfs_chunks *cs, uint64_t ino, uint32_t index, uint64_t gen);
/* Bytes used and free on the file system that holds the chunks. */
int kdfs_chunks_space(struct kdfs_chunks *cs, uint64_t *total, uint64_t *avail);
