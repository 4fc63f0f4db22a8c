/* meta.h — kdfs's metadata: the namespace, inodes and chunk maps, kept in
 * LMDB and changed only by ops applied in the cluster log's order
 * (kdfs.proto Op). Every node holds the whole store; reads are local.
 *
 * The store is a cache of the log: it is emptied at open and rebuilt from
 * raft's snapshot and entries, so it never disagrees with the log after a
 * crash (docs/kdfs.md, "Metadata"). Single-threaded: krgd's loop only. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "proto/kdfs.pb-c.h"

#define KDFS_ROOT_INO 1
#define KDFS_CHUNK_SIZE (64ull << 20) /* bytes per chunk */
#define KDFS_NAME_MAX 255

/* SetAttr.valid bits: the values of FUSE_SET_ATTR_* (the client checks). */
#define KDFS_SET_MODE (1u << 0)
#define KDFS_SET_UID (1u << 1)
#define KDFS_SET_GID (1u << 2)
#define KDFS_SET_SIZE (1u << 3)
#define KDFS_SET_ATIME (1u << 4)
#define KDFS_SET_MTIME (1u << 5)
#define KDFS_SET_ATIME_NOW (1u << 7)
#define KDFS_SET_MTIME_NOW (1u << 8)
#define KDFS_SET_CTIME (1u << 10)

struct kdfs_meta;

/* An inode is gone for good (reaped): its chunks may be deleted. Inode
 * numbers are never reused, so a replayed reap is harmless. */
typedef void (*kdfs_meta_reap_cb)(uint64_t ino, void *data);

/* Inodes whose record an applied op changed (attributes, links, chunk
 * map), after its commit; inos NULL: any inode may have (a snapshot
 * was installed). krgd tells its FUSE client, whose kernel keeps
 * attributes cached until told (docs/kdfs.md, "Attribute cache"). */
typedef void (*kdfs_meta_change_cb)(const uint64_t *inos, size_t n, void *data);
void kdfs_meta_on_change(struct kdfs_meta *m, kdfs_meta_change_cb cb, void *data);

/* Open (creating) the store in dir, emptied, with only the root. */
int kdfs_meta_open(const char *dir, kdfs_meta_reap_cb reap_cb, void *data, struct kdfs_meta **out);
void kdfs_meta_close(struct kdfs_meta *m);

/* The cluster state machine's callbacks (struct krg_cluster_sm_ops). */
void kdfs_meta_apply(void *m, const uint8_t *op, size_t len, uint8_t **res, size_t *res_len);
int kdfs_meta_snapshot(void *m, uint8_t **state, size_t *len);
int kdfs_meta_restore(void *m, const uint8_t *state, size_t len);

/* Reads of the local replica. get: *out to free with
 * krg__kdfs__inode__free_unpacked. */
int kdfs_meta_get(struct kdfs_meta *m, uint64_t ino, Krg__Kdfs__Inode **out);
int kdfs_meta_lookup(struct kdfs_meta *m, uint64_t parent, const char *name, uint64_t *ino);
/* Entries of dir from position offset (0 = first); cb returns nonzero to
 * stop (the entry was not taken). "." and ".." are the client's. */
typedef int (*kdfs_meta_dirent_cb)(const char *name, uint64_t ino, uint32_t mode, uint64_t next, void *data);
int kdfs_meta_readdir(struct kdfs_meta *m, uint64_t dir, uint64_t offset, kdfs_meta_dirent_cb cb, void *data);
uint64_t kdfs_meta_inodes(struct kdfs_meta *m);
/* Every inode, in number order; cb returns nonzero to stop. */
typedef int (*kdfs_meta_inode_cb)(const Krg__Kdfs__Inode *in, void *data);
int kdfs_meta_each_inode(struct kdfs_meta *m, kdfs_meta_inode_cb cb, void *data);
/* F_GETLK: *out is the first lock in want's way, or want with type F_UNLCK. */
int kdfs_meta_getlk(struct kdfs_meta *m, uint64_t ino, const Krg__Kdfs__LockRange *want, Krg__Kdfs__LockRange *out);
