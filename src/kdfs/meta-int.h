/* meta-int.h — private to meta.c and meta_ops.c. */
#pragma once
#include <lmdb.h>
#include <stdbool.h>
#include "kdfs/meta.h"

/* One LMDB database; keys start with their table's letter:
 *   'i' + ino (8 bytes big-endian)                 -> Inode
 *   'd' + parent (8 bytes BE) + name               -> child ino, seq (8 + 8 bytes BE)
 *   'o' + parent (8 bytes BE) + seq (8 bytes BE)   -> name (readdir order: stable positions)
 *   'n'                                            -> next inode number (8 bytes BE)
 *   's'                                            -> next entry seq (8 bytes BE)
 *   'L' + ino (8 bytes BE)                         -> LockTable (meta_lock.c)
 * Big-endian numbers so that a directory's entries are one key range. */
struct kdfs_meta {
	MDB_env *env;
	MDB_dbi dbi;
	char dir[4096];
	kdfs_meta_reap_cb reap_cb;
	void *data;
	kdfs_meta_change_cb change_cb;
	void *change_data;
	/* The op being applied: inodes it put (an op puts at most 4). */
	uint64_t changed[8];
	size_t n_changed;
	bool changed_many;  /* more than that: every inode is told */
};

void meta_be64(uint8_t *p, uint64_t v);
uint64_t meta_rd64(const uint8_t *p);
/* Within txn: the inode (NULL-safe free), -ENOENT, -EIO. */
int meta_inode_get(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino, Krg__Kdfs__Inode **out);
int meta_inode_put(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__Inode *in);
int meta_inode_del(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino);
int meta_dent_get(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t *ino);
int meta_dent_put(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t ino);
int meta_dent_del(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name);
/* Does dir have any entry? */
bool meta_dir_empty(struct kdfs_meta *m, MDB_txn *txn, uint64_t dir);
int meta_next_ino(struct kdfs_meta *m, MDB_txn *txn, uint64_t *ino);
/* An LMDB error as a negative errno. */
int meta_err(int rc);

/* meta_lock.c: the lock ops. set: *keep is a table the result may borrow
 * from (free it after packing the result). */
int meta_lock_set(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__SetLock *o, Krg__Kdfs__OpResult *res,
		  Krg__Kdfs__LockTable **keep);
int meta_lock_drop(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__DropLocks *o);
/* A reaped inode's locks go with it. */
int meta_lock_forget(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino);
