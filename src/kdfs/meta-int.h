/* meta-int.h — private to meta.c and meta_ops.c. */
#pragma once
#include <lmdb.h>
#include <stdbool.h>
#include "kdfs/meta.h"

/* One LMDB database; keys start with their table's letter:
 *   'i' + ino (8 bytes big-endian)                 -> Inode
 *   'd' + parent (8 bytes BE) + name               -> child ino (8 bytes BE)
 *   'n'                                            -> next inode number (8 bytes BE)
 * Big-endian numbers so that a directory's entries are one key range. */
struct kdfs_meta {
	MDB_env *env;
	MDB_dbi dbi;
	char dir[4096];
	kdfs_meta_reap_cb reap_cb;
	void *data;
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
