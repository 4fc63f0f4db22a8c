/* meta_lock.c — cluster-wide file locks in the metadata store.
 *
 * fcntl (POSIX and OFD) and flock locks live in the replicated store, one
 * record per inode ('L' + ino -> LockTable), changed only by SetLock and
 * DropLocks ops applied in log order: every node decides a conflict the
 * same way, and a lock taken on node 1 is seen by node 2's next request
 * (docs/kdfs.md, "Locks"). Semantics are Linux's: an owner's fcntl locks
 * are ranges that a new lock of the same owner splits or replaces; read
 * locks share, write locks exclude; flock locks are whole-file and do not
 * interact with fcntl locks. A conflict is EBUSY here (the client maps it
 * to EAGAIN or waits: EAGAIN itself means "no leader" on this path). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include "kdfs/meta-int.h"

static size_t lock_key(uint8_t *k, uint64_t ino)
{
	k[0] = 'L';
	meta_be64(k + 1, ino);
	return 9;
}

/* The inode's table (empty when it has none); free with
 * krg__kdfs__lock_table__free_unpacked. */
static int table_get(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino, Krg__Kdfs__LockTable **out)
{
	uint8_t k[9];
	MDB_val key = { lock_key(k, ino), k }, val;
	int rc = mdb_get(txn, m->dbi, &key, &val);
	if (rc == MDB_NOTFOUND)
		val = (MDB_val){ 0, (void *)"" };
	else if (rc)
		return meta_err(rc);
	*out = krg__kdfs__lock_table__unpack(NULL, val.mv_size, val.mv_data);
	return *out ? 0 : -EIO;
}

static int table_put(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino, const Krg__Kdfs__LockTable *t)
{
	uint8_t k[9];
	MDB_val key = { lock_key(k, ino), k };
	if (t->n_locks == 0) {
		int rc = mdb_del(txn, m->dbi, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : meta_err(rc);
	}
	MDB_val val = { krg__kdfs__lock_table__get_packed_size(t), NULL };
	int rc = mdb_put(txn, m->dbi, &key, &val, MDB_RESERVE);
	if (rc)
		return meta_err(rc);
	krg__kdfs__lock_table__pack(t, val.mv_data);
	return 0;
}

static bool same_owner(const Krg__Kdfs__LockRange *a, const Krg__Kdfs__LockRange *b)
{
	return a->node == b->node && a->owner == b->owner && a->flock == b->flock;
}

static bool conflicts(const Krg__Kdfs__LockRange *held, const Krg__Kdfs__LockRange *want)
{
	if (held->flock != want->flock || same_owner(held, want))
		return false;
	if (held->end < want->start || want->end < held->start)
		return false;
	return held->type == F_WRLCK || want->type == F_WRLCK;
}

static const Krg__Kdfs__LockRange *first_conflict(const Krg__Kdfs__LockTable *t, const Krg__Kdfs__LockRange *want)
{
	for (size_t i = 0; i < t->n_locks; i++)
		if (conflicts(t->locks[i], want))
			return t->locks[i];
	return NULL;
}

static Krg__Kdfs__LockRange *range_dup(const Krg__Kdfs__LockRange *r, uint64_t start, uint64_t end)
{
	Krg__Kdfs__LockRange *n = malloc(sizeof(*n));
	if (n) {
		*n = *r;
		n->start = start;
		n->end = end;
	}
	return n;
}

static int table_add(Krg__Kdfs__LockTable *t, Krg__Kdfs__LockRange *r)
{
	Krg__Kdfs__LockRange **v = realloc(t->locks, (t->n_locks + 1) * sizeof(*v));
	if (!v) {
		free(r);
		return -ENOMEM;
	}
	t->locks = v;
	v[t->n_locks++] = r;
	return 0;
}

/* The owner's locks lose [start, end]: removed, shortened or split. */
static int carve(Krg__Kdfs__LockTable *t, const Krg__Kdfs__LockRange *w)
{
	size_t n = t->n_locks;
	for (size_t i = 0; i < n; i++) {
		Krg__Kdfs__LockRange *h = t->locks[i];
		if (!h || !same_owner(h, w) || h->end < w->start || w->end < h->start)
			continue;
		if (h->start < w->start && h->end > w->end) { /* split: the tail is a new range */
			Krg__Kdfs__LockRange *tail = range_dup(h, w->end + 1, h->end);
			int r = tail ? table_add(t, tail) : -ENOMEM;
			if (r < 0)
				return r;
			h = t->locks[i]; /* table_add may have moved the array, not the ranges */
			h->end = w->start - 1;
		} else if (h->start < w->start) {
			h->end = w->start - 1;
		} else if (h->end > w->end) {
			h->start = w->end + 1;
		} else {
			free(h);
			t->locks[i] = NULL;
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < t->n_locks; i++)
		if (t->locks[i])
			t->locks[k++] = t->locks[i];
	t->n_locks = k;
	return 0;
}

int meta_lock_set(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__SetLock *o, Krg__Kdfs__OpResult *res,
		  Krg__Kdfs__LockTable **keep)
{
	const Krg__Kdfs__LockRange *w = o->lock;
	Krg__Kdfs__LockTable *t;
	int r;
	if (!w || w->start > w->end || (w->type != F_RDLCK && w->type != F_WRLCK && w->type != F_UNLCK))
		return -EINVAL;
	if ((r = table_get(m, txn, o->ino, &t)) < 0)
		return r;
	*keep = t; /* the result may borrow a range of it */
	if (w->type != F_UNLCK) {
		const Krg__Kdfs__LockRange *c = first_conflict(t, w);
		if (c) {
			res->conflict = (Krg__Kdfs__LockRange *)c;
			return -EBUSY;
		}
	}
	if ((r = carve(t, w)) < 0)
		return r;
	if (w->type != F_UNLCK) {
		Krg__Kdfs__LockRange *n = range_dup(w, w->start, w->end);
		if (!n || (r = table_add(t, n)) < 0)
			return n ? r : -ENOMEM;
	}
	return table_put(m, txn, o->ino, t);
}

static bool drop_matches(const Krg__Kdfs__DropLocks *o, const Krg__Kdfs__LockRange *l)
{
	return l->node == o->node && (!o->has_owner || (l->owner == o->owner && l->flock == o->flock));
}

static int drop_in(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino, const Krg__Kdfs__DropLocks *o)
{
	Krg__Kdfs__LockTable *t;
	int r = table_get(m, txn, ino, &t);
	if (r < 0)
		return r;
	size_t k = 0;
	for (size_t i = 0; i < t->n_locks; i++) {
		if (drop_matches(o, t->locks[i]))
			free(t->locks[i]);
		else
			t->locks[k++] = t->locks[i];
	}
	bool changed = k != t->n_locks;
	t->n_locks = k;
	r = changed ? table_put(m, txn, ino, t) : 0;
	krg__kdfs__lock_table__free_unpacked(t, NULL);
	return r;
}

int meta_lock_drop(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__DropLocks *o)
{
	if (o->has_ino)
		return drop_in(m, txn, o->ino, o);
	/* Every table: collect the inodes first (a cursor must not see its
	 * records rewritten under it). Lock tables are few. */
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, m->dbi, &cur);
	if (rc)
		return meta_err(rc);
	uint64_t *inos = NULL;
	size_t n = 0;
	uint8_t k[9] = { 'L' };
	MDB_val key = { 1, k }, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 9 || ((uint8_t *)key.mv_data)[0] != 'L')
			break;
		uint64_t *v = realloc(inos, (n + 1) * sizeof(*v));
		if (!v) {
			free(inos);
			mdb_cursor_close(cur);
			return -ENOMEM;
		}
		inos = v;
		inos[n++] = meta_rd64((uint8_t *)key.mv_data + 1);
	}
	mdb_cursor_close(cur);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = drop_in(m, txn, inos[i], o);
	free(inos);
	return r;
}

int meta_lock_forget(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino)
{
	uint8_t k[9];
	MDB_val key = { lock_key(k, ino), k };
	int rc = mdb_del(txn, m->dbi, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : meta_err(rc);
}

int kdfs_meta_getlk(struct kdfs_meta *m, uint64_t ino, const Krg__Kdfs__LockRange *want, Krg__Kdfs__LockRange *out)
{
	MDB_txn *txn;
	Krg__Kdfs__LockTable *t;
	int rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_err(rc);
	int r = table_get(m, txn, ino, &t);
	mdb_txn_abort(txn);
	if (r < 0)
		return r;
	const Krg__Kdfs__LockRange *c = first_conflict(t, want);
	*out = c ? *c : *want;
	if (!c)
		out->type = F_UNLCK;
	krg__kdfs__lock_table__free_unpacked(t, NULL);
	return 0;
}
