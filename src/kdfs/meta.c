/* meta.c — kdfs's metadata store on LMDB: records, snapshot/restore and
 * the local reads. The ops that change it are in meta_ops.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kdfs/meta-int.h"
#include "lib/macro.h"

#define SNAP_VERSION 1

int meta_err(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	return rc > 0 && rc < 4096 ? -rc : -EIO;
}

void meta_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t meta_rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int meta_inode_get(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino, Krg__Kdfs__Inode **out)
{
	uint8_t k[9] = { 'i' };
	meta_be64(k + 1, ino);
	MDB_val key = { sizeof(k), k }, val;
	int rc = mdb_get(txn, m->dbi, &key, &val);
	if (rc)
		return meta_err(rc);
	*out = krg__kdfs__inode__unpack(NULL, val.mv_size, val.mv_data);
	return *out ? 0 : -EIO;
}

int meta_inode_put(struct kdfs_meta *m, MDB_txn *txn, const Krg__Kdfs__Inode *in)
{
	uint8_t k[9] = { 'i' };
	meta_be64(k + 1, in->attr->ino);
	size_t n = krg__kdfs__inode__get_packed_size(in);
	MDB_val key = { sizeof(k), k }, val = { n, NULL };
	int rc = mdb_put(txn, m->dbi, &key, &val, MDB_RESERVE);
	if (rc)
		return meta_err(rc);
	krg__kdfs__inode__pack(in, val.mv_data);
	size_t i = 0;
	while (i < m->n_changed && m->changed[i] != in->attr->ino)
		i++;
	if (i == ARRAY_SIZE(m->changed))
		m->changed_many = true;
	else if (i == m->n_changed)
		m->changed[m->n_changed++] = in->attr->ino;
	return 0;
}

void kdfs_meta_on_change(struct kdfs_meta *m, kdfs_meta_change_cb cb, void *data)
{
	m->change_cb = cb;
	m->change_data = data;
}

int meta_inode_del(struct kdfs_meta *m, MDB_txn *txn, uint64_t ino)
{
	uint8_t k[9] = { 'i' };
	meta_be64(k + 1, ino);
	MDB_val key = { sizeof(k), k };
	return meta_err(mdb_del(txn, m->dbi, &key, NULL));
}

static size_t dent_key(uint8_t *k, uint64_t parent, const char *name)
{
	size_t n = strlen(name);
	k[0] = 'd';
	meta_be64(k + 1, parent);
	memcpy(k + 9, name, n);
	return 9 + n;
}

int meta_dent_get(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t *ino)
{
	uint8_t k[9 + KDFS_NAME_MAX];
	if (strlen(name) > KDFS_NAME_MAX)
		return -ENAMETOOLONG;
	MDB_val key = { dent_key(k, parent, name), k }, val;
	int rc = mdb_get(txn, m->dbi, &key, &val);
	if (rc)
		return meta_err(rc);
	if (val.mv_size != 16)
		return -EIO;
	*ino = meta_rd64(val.mv_data);
	return 0;
}

/* The readdir order index: 'o' + dir + seq -> name. */
static size_t order_key(uint8_t *k, uint64_t dir, uint64_t seq)
{
	k[0] = 'o';
	meta_be64(k + 1, dir);
	meta_be64(k + 9, seq);
	return 17;
}

/* Drop the order index of dir's entry whose 'd' value is val. */
static int order_del(struct kdfs_meta *m, MDB_txn *txn, uint64_t dir, const MDB_val *val)
{
	uint8_t k[17];
	if (val->mv_size != 16)
		return -EIO;
	MDB_val key = { order_key(k, dir, meta_rd64((const uint8_t *)val->mv_data + 8)), k };
	int rc = mdb_del(txn, m->dbi, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : meta_err(rc);
}

int meta_dent_put(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t ino)
{
	uint8_t k[9 + KDFS_NAME_MAX], v[16], ok[17];
	uint8_t sk = 's';
	size_t nl = strlen(name);
	int r;
	if (nl > KDFS_NAME_MAX)
		return -ENAMETOOLONG;
	MDB_val key = { dent_key(k, parent, name), k }, val;
	/* A replaced entry (rename over a name) leaves its old position. */
	if (mdb_get(txn, m->dbi, &key, &val) == 0 && (r = order_del(m, txn, parent, &val)) < 0)
		return r;
	MDB_val skey = { 1, &sk }, sval;
	uint64_t seq = mdb_get(txn, m->dbi, &skey, &sval) == 0 && sval.mv_size == 8 ? meta_rd64(sval.mv_data) : 1;
	uint8_t sv[8];
	meta_be64(sv, seq + 1);
	sval = (MDB_val){ 8, sv };
	if ((r = meta_err(mdb_put(txn, m->dbi, &skey, &sval, 0))) < 0)
		return r;
	meta_be64(v, ino);
	meta_be64(v + 8, seq);
	val = (MDB_val){ 16, v };
	if ((r = meta_err(mdb_put(txn, m->dbi, &key, &val, 0))) < 0)
		return r;
	MDB_val okey = { order_key(ok, parent, seq), ok }, oval = { nl, (void *)name };
	return meta_err(mdb_put(txn, m->dbi, &okey, &oval, 0));
}

int meta_dent_del(struct kdfs_meta *m, MDB_txn *txn, uint64_t parent, const char *name)
{
	uint8_t k[9 + KDFS_NAME_MAX];
	if (strlen(name) > KDFS_NAME_MAX)
		return -ENAMETOOLONG;
	MDB_val key = { dent_key(k, parent, name), k }, val;
	int rc = mdb_get(txn, m->dbi, &key, &val), r;
	if (rc)
		return meta_err(rc);
	if ((r = order_del(m, txn, parent, &val)) < 0)
		return r;
	return meta_err(mdb_del(txn, m->dbi, &key, NULL));
}

/* Position cur on dir's first entry at or after the name in key. */
static bool dir_cursor(MDB_cursor *cur, uint64_t dir, MDB_val *key, MDB_val *val, MDB_cursor_op op)
{
	if (mdb_cursor_get(cur, key, val, op))
		return false;
	const uint8_t *p = key->mv_data;
	return key->mv_size > 9 && p[0] == 'd' && meta_rd64(p + 1) == dir;
}

bool meta_dir_empty(struct kdfs_meta *m, MDB_txn *txn, uint64_t dir)
{
	MDB_cursor *cur;
	uint8_t k[9];
	k[0] = 'd';
	meta_be64(k + 1, dir);
	MDB_val key = { sizeof(k), k }, val;
	if (mdb_cursor_open(txn, m->dbi, &cur))
		return false;
	bool any = dir_cursor(cur, dir, &key, &val, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	return !any;
}

int meta_next_ino(struct kdfs_meta *m, MDB_txn *txn, uint64_t *ino)
{
	uint8_t k = 'n', v[8];
	MDB_val key = { 1, &k }, val;
	int rc = mdb_get(txn, m->dbi, &key, &val);
	if (rc || val.mv_size != 8)
		return rc ? meta_err(rc) : -EIO;
	*ino = meta_rd64(val.mv_data);
	meta_be64(v, *ino + 1);
	val = (MDB_val){ 8, v };
	return meta_err(mdb_put(txn, m->dbi, &key, &val, 0));
}

/* Empty the store and put the root and the inode counter back. */
static int reset(struct kdfs_meta *m, bool with_root)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (rc)
		return meta_err(rc);
	rc = mdb_drop(txn, m->dbi, 0);
	if (!rc && with_root) {
		Krg__Kdfs__Inode in = KRG__KDFS__INODE__INIT;
		Krg__Kdfs__Attr a = KRG__KDFS__ATTR__INIT;
		a.ino = KDFS_ROOT_INO;
		a.mode = S_IFDIR | 0755;
		a.nlink = 2;
		in.attr = &a;
		in.has_parent = true;
		in.parent = KDFS_ROOT_INO;
		uint8_t k = 'n', v[8];
		meta_be64(v, KDFS_ROOT_INO + 1);
		MDB_val key = { 1, &k }, val = { 8, v };
		rc = mdb_put(txn, m->dbi, &key, &val, 0);
		int r = rc ? meta_err(rc) : meta_inode_put(m, txn, &in);
		if (r < 0) {
			mdb_txn_abort(txn);
			return r;
		}
	}
	if (rc) {
		mdb_txn_abort(txn);
		return meta_err(rc);
	}
	return meta_err(mdb_txn_commit(txn));
}

int kdfs_meta_open(const char *dir, kdfs_meta_reap_cb reap_cb, void *data, struct kdfs_meta **out)
{
	struct kdfs_meta *m = calloc(1, sizeof(*m));
	MDB_txn *txn = NULL;
	int rc;
	if (!m)
		return -ENOMEM;
	snprintf(m->dir, sizeof(m->dir), "%s", dir);
	m->reap_cb = reap_cb;
	m->data = data;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		free(m);
		return rc;
	}
	/* The log is the durable copy (docs/kdfs.md): no fsync here. */
	if ((rc = mdb_env_create(&m->env)) || (rc = mdb_env_set_mapsize(m->env, (size_t)8 << 30)) ||
	    (rc = mdb_env_open(m->env, dir, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS, 0600)) ||
	    (rc = mdb_txn_begin(m->env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &m->dbi)) ||
	    (rc = mdb_txn_commit(txn))) {
		if (m->env)
			mdb_env_close(m->env);
		free(m);
		return meta_err(rc);
	}
	rc = reset(m, true);
	if (rc < 0) {
		mdb_env_close(m->env);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void kdfs_meta_close(struct kdfs_meta *m)
{
	if (!m)
		return;
	mdb_env_close(m->env);
	free(m);
}

int kdfs_meta_snapshot(void *mp, uint8_t **state, size_t *len)
{
	struct kdfs_meta *m = mp;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_stat st;
	int rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_err(rc);
	if ((rc = mdb_stat(txn, m->dbi, &st)) || (rc = mdb_cursor_open(txn, m->dbi, &cur))) {
		mdb_txn_abort(txn);
		return meta_err(rc);
	}
	Krg__Kdfs__Snapshot snap = KRG__KDFS__SNAPSHOT__INIT;
	Krg__Kdfs__KV *kv = calloc(st.ms_entries + 1, sizeof(*kv));
	Krg__Kdfs__KV **kvp = calloc(st.ms_entries + 1, sizeof(*kvp));
	size_t n = 0;
	MDB_val key, val;
	int r = kv && kvp ? 0 : -ENOMEM;
	for (int op = MDB_FIRST; !r && n < st.ms_entries && !mdb_cursor_get(cur, &key, &val, op); op = MDB_NEXT) {
		krg__kdfs__kv__init(&kv[n]);
		kv[n].key = (ProtobufCBinaryData){ key.mv_size, key.mv_data };
		kv[n].value = (ProtobufCBinaryData){ val.mv_size, val.mv_data };
		kvp[n] = &kv[n];
		n++;
	}
	snap.version = SNAP_VERSION;
	snap.n_records = n;
	snap.records = kvp;
	if (!r) {
		*len = krg__kdfs__snapshot__get_packed_size(&snap);
		*state = malloc(*len ? *len : 1);
		if (*state)
			krg__kdfs__snapshot__pack(&snap, *state);
		else
			r = -ENOMEM;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	free(kv);
	free(kvp);
	return r;
}

int kdfs_meta_restore(void *mp, const uint8_t *state, size_t len)
{
	struct kdfs_meta *m = mp;
	if (!state)
		return reset(m, true);
	Krg__Kdfs__Snapshot *snap = krg__kdfs__snapshot__unpack(NULL, len, state);
	if (!snap)
		return -EBADMSG;
	int r = reset(m, false);
	MDB_txn *txn = NULL;
	if (!r)
		r = meta_err(mdb_txn_begin(m->env, NULL, 0, &txn));
	for (size_t i = 0; !r && i < snap->n_records; i++) {
		MDB_val key = { snap->records[i]->key.len, snap->records[i]->key.data };
		MDB_val val = { snap->records[i]->value.len, snap->records[i]->value.data };
		r = key.mv_size ? meta_err(mdb_put(txn, m->dbi, &key, &val, 0)) : -EBADMSG;
	}
	if (txn)
		r = r ? (mdb_txn_abort(txn), r) : meta_err(mdb_txn_commit(txn));
	krg__kdfs__snapshot__free_unpacked(snap, NULL);
	if (m->change_cb)
		m->change_cb(NULL, 0, m->change_data);
	return r;
}

int kdfs_meta_get(struct kdfs_meta *m, uint64_t ino, Krg__Kdfs__Inode **out)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_err(rc);
	int r = meta_inode_get(m, txn, ino, out);
	mdb_txn_abort(txn);
	return r;
}

int kdfs_meta_lookup(struct kdfs_meta *m, uint64_t parent, const char *name, uint64_t *ino)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return meta_err(rc);
	int r = meta_dent_get(m, txn, parent, name, ino);
	mdb_txn_abort(txn);
	return r;
}

/* A read-only transaction and a cursor on the store: 0 or -errno. */
static int read_cursor(struct kdfs_meta *m, MDB_txn **txn, MDB_cursor **cur)
{
	int rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, txn);
	if (rc)
		return meta_err(rc);
	if ((rc = mdb_cursor_open(*txn, m->dbi, cur))) {
		mdb_txn_abort(*txn);
		return meta_err(rc);
	}
	return 0;
}

/* Positions are the entries' sequence numbers (given when the name was
 * made, never reused): a directory changed between two calls neither
 * repeats nor skips an entry that stayed (POSIX leaves the entries added
 * or removed meanwhile unspecified). */
int kdfs_meta_readdir(struct kdfs_meta *m, uint64_t dir, uint64_t offset, kdfs_meta_dirent_cb cb, void *data)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = read_cursor(m, &txn, &cur);
	if (rc < 0)
		return rc;
	uint8_t k[17];
	MDB_val key = { order_key(k, dir, offset), k }, val;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const uint8_t *p = key.mv_data;
		if (key.mv_size != 17 || p[0] != 'o' || meta_rd64(p + 1) != dir)
			break;
		uint64_t seq = meta_rd64(p + 9);
		char name[KDFS_NAME_MAX + 1];
		size_t nl = MIN(val.mv_size, (size_t)KDFS_NAME_MAX);
		memcpy(name, val.mv_data, nl);
		name[nl] = '\0';
		uint64_t ino;
		if (meta_dent_get(m, txn, dir, name, &ino) < 0)
			continue;
		Krg__Kdfs__Inode *in = NULL;
		uint32_t mode = meta_inode_get(m, txn, ino, &in) == 0 ? in->attr->mode : 0;
		if (in)
			krg__kdfs__inode__free_unpacked(in, NULL);
		if (cb(name, ino, mode, seq + 1, data))
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return 0;
}

uint64_t kdfs_meta_inodes(struct kdfs_meta *m)
{
	MDB_txn *txn;
	MDB_stat st;
	uint64_t n = 0;
	if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (!mdb_stat(txn, m->dbi, &st))
		n = st.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

int kdfs_meta_each_inode(struct kdfs_meta *m, kdfs_meta_inode_cb cb, void *data)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = read_cursor(m, &txn, &cur);
	if (rc < 0)
		return rc;
	uint8_t k = 'i';
	MDB_val key = { 1, &k }, val;
	int r = 0;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); !rc && !r;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 9 || ((uint8_t *)key.mv_data)[0] != 'i')
			break;
		Krg__Kdfs__Inode *in = krg__kdfs__inode__unpack(NULL, val.mv_size, val.mv_data);
		if (!in) {
			r = -EIO;
			break;
		}
		r = cb(in, data);
		krg__kdfs__inode__free_unpacked(in, NULL);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return r < 0 ? r : 0;
}
