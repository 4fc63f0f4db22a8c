/* meta_ops.c — the metadata ops, applied on every node in log order.
 *
 * Each op runs in one LMDB write transaction and either commits whole or
 * leaves the store untouched; its status (0 or -errno, the POSIX error the
 * call returns) and the changed inode go back to the proposer. Permission
 * checks are the kernel's (the client mounts with default_permissions and
 * the caller's credentials); what is checked here is what only the whole
 * namespace can tell: existence, types, emptiness, rename loops. Apply is
 * deterministic: times come from the op (the proposer's clock). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include "kdfs/layout.h"
#include "kdfs/meta-int.h"
#include "lib/macro.h"

struct ctx {
	struct kdfs_meta *m;
	MDB_txn *txn;
	int64_t now;
	Krg__Kdfs__OpResult *res;
	Krg__Kdfs__Inode *keep[4];   /* inodes whose attr the result borrows */
	uint64_t reaped;             /* inode deleted by this op: reap callback after commit */
	Krg__Kdfs__LockTable *locks; /* setlock: the result's conflict points into it */
};

static void hold(struct ctx *c, Krg__Kdfs__Inode *in)
{
	for (size_t i = 0; i < ARRAY_SIZE(c->keep); i++)
		if (!c->keep[i]) {
			c->keep[i] = in;
			return;
		}
	krg__kdfs__inode__free_unpacked(in, NULL);
}

static bool name_ok(const char *n)
{
	return n && *n && strlen(n) <= KDFS_NAME_MAX && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, "..");
}

static int get_dir(struct ctx *c, uint64_t ino, Krg__Kdfs__Inode **out)
{
	int r = meta_inode_get(c->m, c->txn, ino, out);
	if (r < 0)
		return r;
	hold(c, *out);
	return S_ISDIR((*out)->attr->mode) ? 0 : -ENOTDIR;
}

static int get_inode(struct ctx *c, uint64_t ino, Krg__Kdfs__Inode **out)
{
	int r = meta_inode_get(c->m, c->txn, ino, out);
	if (r == 0)
		hold(c, *out);
	return r;
}

/* A regular file's inode (its data ops: Extend, ChunkAlloc). */
static int get_regular(struct ctx *c, uint64_t ino, Krg__Kdfs__Inode **in)
{
	int r = get_inode(c, ino, in);
	if (r < 0)
		return r;
	return S_ISREG((*in)->attr->mode) ? 0 : -EINVAL;
}

/* The inode changed, stored; the result carries its attributes. */
static int put_inode_attr(struct ctx *c, Krg__Kdfs__Inode *in)
{
	int r = meta_inode_put(c->m, c->txn, in);
	if (r < 0)
		return r;
	c->res->attr = in->attr;
	return 0;
}

static void touch(struct ctx *c, Krg__Kdfs__Inode *in, bool mtime)
{
	in->attr->ctime_ns = c->now;
	if (mtime)
		in->attr->mtime_ns = c->now;
}

/* One link less; an inode at zero links stays (open files keep reading
 * it) until a Reap: the result names it. */
static int drop_link(struct ctx *c, Krg__Kdfs__Inode *in)
{
	bool dir = S_ISDIR(in->attr->mode);
	in->attr->nlink = dir ? 0 : in->attr->nlink - (in->attr->nlink > 0);
	touch(c, in, false);
	if (in->attr->nlink == 0) {
		c->res->has_orphan = true;
		c->res->orphan = in->attr->ino;
	}
	return meta_inode_put(c->m, c->txn, in);
}

static int op_create(struct ctx *c, const Krg__Kdfs__Create *o)
{
	Krg__Kdfs__Inode *dir;
	uint64_t ino, exist;
	int r;
	if (!name_ok(o->name))
		return strlen(o->name ? o->name : "") > KDFS_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	if ((r = get_dir(c, o->parent, &dir)) < 0)
		return r;
	if (dir->attr->nlink == 0)
		return -ENOENT; /* removed directory */
	if ((r = meta_dent_get(c->m, c->txn, o->parent, o->name, &exist)) != -ENOENT)
		return r == 0 ? -EEXIST : r;
	if ((r = meta_next_ino(c->m, c->txn, &ino)) < 0)
		return r;
	static Krg__Kdfs__Attr a;
	static Krg__Kdfs__Inode in;
	krg__kdfs__attr__init(&a);
	krg__kdfs__inode__init(&in);
	in.attr = &a;
	a.ino = ino;
	a.mode = o->mode;
	a.uid = o->uid;
	a.gid = o->gid;
	/* BSD group semantics under a set-group-ID directory, as ext4. */
	if (dir->attr->mode & S_ISGID) {
		a.gid = dir->attr->gid;
		if (S_ISDIR(o->mode))
			a.mode |= S_ISGID;
	}
	a.nlink = S_ISDIR(o->mode) ? 2 : 1;
	in.has_replicas = dir->has_replicas; /* the directory's layout */
	in.replicas = dir->replicas;
	/* Striping: the directory's, field by field; a regular file the
	 * directory sets nothing for takes the proposer's default (in the op,
	 * so that every node applies the same), and keeps it for life. A
	 * Create from before striping carries none: not striped. */
	in.has_stripe_count = dir->has_stripe_count;
	in.stripe_count = dir->stripe_count;
	in.has_stripe_size = dir->has_stripe_size;
	in.stripe_size = dir->stripe_size;
	if (S_ISREG(o->mode) && !in.has_stripe_count && o->has_stripe_count) {
		in.has_stripe_count = true;
		in.stripe_count = o->stripe_count;
	}
	if (S_ISREG(o->mode) && !in.has_stripe_size && o->has_stripe_size) {
		in.has_stripe_size = true;
		in.stripe_size = o->stripe_size;
	}
	a.atime_ns = a.mtime_ns = a.ctime_ns = c->now;
	a.has_rdev = o->has_rdev;
	a.rdev = o->rdev;
	if (S_ISLNK(o->mode)) {
		in.has_target = true;
		in.target = o->target;
		a.size = o->target.len;
	}
	if (S_ISDIR(o->mode)) {
		in.has_parent = true;
		in.parent = o->parent;
		dir->attr->nlink++;
	}
	touch(c, dir, true);
	if ((r = meta_inode_put(c->m, c->txn, &in)) < 0 || (r = meta_dent_put(c->m, c->txn, o->parent, o->name, ino)) < 0 ||
	    (r = meta_inode_put(c->m, c->txn, dir)) < 0)
		return r;
	c->res->attr = &a;
	return 0;
}

static int op_link(struct ctx *c, const Krg__Kdfs__Link *o)
{
	Krg__Kdfs__Inode *dir, *in;
	uint64_t exist;
	int r;
	if (!name_ok(o->name))
		return strlen(o->name ? o->name : "") > KDFS_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r;
	if (S_ISDIR(in->attr->mode))
		return -EPERM;
	if (in->attr->nlink == 0)
		return -ENOENT;
	if ((r = get_dir(c, o->parent, &dir)) < 0)
		return r;
	if ((r = meta_dent_get(c->m, c->txn, o->parent, o->name, &exist)) != -ENOENT)
		return r == 0 ? -EEXIST : r;
	in->attr->nlink++;
	touch(c, in, false);
	touch(c, dir, true);
	if ((r = meta_dent_put(c->m, c->txn, o->parent, o->name, o->ino)) < 0 ||
	    (r = meta_inode_put(c->m, c->txn, in)) < 0 || (r = meta_inode_put(c->m, c->txn, dir)) < 0)
		return r;
	c->res->attr = in->attr;
	return 0;
}

static int op_unlink(struct ctx *c, const Krg__Kdfs__Unlink *o)
{
	Krg__Kdfs__Inode *dir, *in;
	uint64_t ino;
	int r;
	if ((r = get_dir(c, o->parent, &dir)) < 0)
		return r;
	if ((r = meta_dent_get(c->m, c->txn, o->parent, o->name, &ino)) < 0)
		return r;
	if ((r = get_inode(c, ino, &in)) < 0)
		return r;
	if (o->dir) {
		if (!S_ISDIR(in->attr->mode))
			return -ENOTDIR;
		if (!meta_dir_empty(c->m, c->txn, ino))
			return -ENOTEMPTY;
		dir->attr->nlink--;
	} else if (S_ISDIR(in->attr->mode)) {
		return -EISDIR;
	}
	touch(c, dir, true);
	if ((r = meta_dent_del(c->m, c->txn, o->parent, o->name)) < 0 || (r = meta_inode_put(c->m, c->txn, dir)) < 0 ||
	    (r = drop_link(c, in)) < 0)
		return r;
	return 0;
}

/* Is `ino` the directory `anc` or below it? Walks parent links to the root. */
static int is_below(struct ctx *c, uint64_t ino, uint64_t anc, bool *below)
{
	*below = false;
	for (int depth = 0; depth < 4096; depth++) {
		if (ino == anc) {
			*below = true;
			return 0;
		}
		if (ino == KDFS_ROOT_INO)
			return 0;
		Krg__Kdfs__Inode *in;
		int r = meta_inode_get(c->m, c->txn, ino, &in);
		if (r < 0)
			return r;
		uint64_t up = in->has_parent ? in->parent : KDFS_ROOT_INO;
		krg__kdfs__inode__free_unpacked(in, NULL);
		ino = up;
	}
	return -ELOOP;
}

static int rename_checks(struct ctx *c, const Krg__Kdfs__Rename *o, Krg__Kdfs__Inode *src, Krg__Kdfs__Inode *dst)
{
	bool below;
	int r;
	if (S_ISDIR(src->attr->mode) && o->parent != o->newparent) {
		if ((r = is_below(c, o->newparent, src->attr->ino, &below)) < 0)
			return r;
		if (below)
			return -EINVAL;
	}
	if (!dst)
		return 0;
	if (o->flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (o->flags & RENAME_EXCHANGE) {
		if (S_ISDIR(dst->attr->mode) && o->parent != o->newparent) {
			if ((r = is_below(c, o->parent, dst->attr->ino, &below)) < 0)
				return r;
			if (below)
				return -EINVAL;
		}
		return 0;
	}
	if (S_ISDIR(src->attr->mode) && !S_ISDIR(dst->attr->mode))
		return -ENOTDIR;
	if (!S_ISDIR(src->attr->mode) && S_ISDIR(dst->attr->mode))
		return -EISDIR;
	if (S_ISDIR(dst->attr->mode) && !meta_dir_empty(c->m, c->txn, dst->attr->ino))
		return -ENOTEMPTY;
	return 0;
}

/* A directory moved from one parent to another: '..' moves with it. */
static void reparent(Krg__Kdfs__Inode *in, Krg__Kdfs__Inode *from, Krg__Kdfs__Inode *to)
{
	if (!S_ISDIR(in->attr->mode) || from == to)
		return;
	from->attr->nlink--;
	to->attr->nlink++;
	in->has_parent = true;
	in->parent = to->attr->ino;
}

static int op_rename(struct ctx *c, const Krg__Kdfs__Rename *o)
{
	Krg__Kdfs__Inode *pd, *nd, *src, *dst = NULL;
	uint64_t sino, dino;
	int r;
	if (o->flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (!name_ok(o->newname))
		return strlen(o->newname ? o->newname : "") > KDFS_NAME_MAX ? -ENAMETOOLONG : -EINVAL;
	if ((r = get_dir(c, o->parent, &pd)) < 0)
		return r;
	if (o->newparent == o->parent)
		nd = pd;
	else if ((r = get_dir(c, o->newparent, &nd)) < 0)
		return r;
	if ((r = meta_dent_get(c->m, c->txn, o->parent, o->name, &sino)) < 0 || (r = get_inode(c, sino, &src)) < 0)
		return r;
	r = meta_dent_get(c->m, c->txn, o->newparent, o->newname, &dino);
	if (r == 0 && (r = get_inode(c, dino, &dst)) < 0)
		return r;
	if (r < 0 && r != -ENOENT)
		return r;
	if ((o->flags & RENAME_EXCHANGE) && !dst)
		return -ENOENT;
	if (dst && dino == sino)
		return 0; /* two links to one inode: POSIX says do nothing */
	if ((r = rename_checks(c, o, src, dst)) < 0)
		return r;
	if (o->flags & RENAME_EXCHANGE) {
		reparent(src, pd, nd);
		reparent(dst, nd, pd);
		touch(c, dst, false);
		if ((r = meta_dent_put(c->m, c->txn, o->parent, o->name, dino)) < 0 ||
		    (r = meta_inode_put(c->m, c->txn, dst)) < 0)
			return r;
	} else {
		if (dst) {
			if (S_ISDIR(dst->attr->mode))
				nd->attr->nlink--;
			if ((r = drop_link(c, dst)) < 0)
				return r;
		}
		reparent(src, pd, nd);
		if ((r = meta_dent_del(c->m, c->txn, o->parent, o->name)) < 0)
			return r;
	}
	touch(c, src, false);
	touch(c, pd, true);
	touch(c, nd, true);
	if ((r = meta_dent_put(c->m, c->txn, o->newparent, o->newname, sino)) < 0 ||
	    (r = meta_inode_put(c->m, c->txn, src)) < 0 || (r = meta_inode_put(c->m, c->txn, pd)) < 0 ||
	    (nd != pd && (r = meta_inode_put(c->m, c->txn, nd)) < 0))
		return r;
	c->res->attr = src->attr;
	return 0;
}

/* Chunks wholly past a new size hold nothing any more (which ones: the
 * file's layout says, layout.c). */
static void cut_chunks(Krg__Kdfs__Inode *in, uint64_t size)
{
	struct kdfs_layout l;
	kdfs_layout_of(in, &l);
	size_t k = 0;
	for (size_t i = 0; i < in->n_chunks; i++) {
		if (kdfs_layout_keep(&l, size, in->chunks[i]->index) > 0)
			in->chunks[k++] = in->chunks[i];
		else
			krg__kdfs__chunk__free_unpacked(in->chunks[i], NULL);
	}
	in->n_chunks = k;
}

static int op_setattr(struct ctx *c, const Krg__Kdfs__SetAttr *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r;
	Krg__Kdfs__Attr *a = in->attr;
	if ((o->valid & KDFS_SET_SIZE) && S_ISDIR(a->mode))
		return -EISDIR;
	if ((o->valid & KDFS_SET_SIZE) && !S_ISREG(a->mode))
		return -EINVAL;
	if (o->valid & KDFS_SET_MODE)
		a->mode = (a->mode & S_IFMT) | (o->mode & 07777);
	if (o->valid & KDFS_SET_UID)
		a->uid = o->uid;
	if (o->valid & KDFS_SET_GID)
		a->gid = o->gid;
	if (o->valid & KDFS_SET_SIZE) {
		if (o->size != a->size)
			a->mtime_ns = c->now;
		a->size = o->size;
		cut_chunks(in, o->size);
	}
	if (o->valid & KDFS_SET_ATIME)
		a->atime_ns = (o->valid & KDFS_SET_ATIME_NOW) ? c->now : o->atime_ns;
	if (o->valid & KDFS_SET_MTIME)
		a->mtime_ns = (o->valid & KDFS_SET_MTIME_NOW) ? c->now : o->mtime_ns;
	a->ctime_ns = c->now;
	return put_inode_attr(c, in);
}

static int op_extend(struct ctx *c, const Krg__Kdfs__Extend *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_regular(c, o->ino, &in)) < 0)
		return r;
	in->attr->size = MAX(in->attr->size, o->size);
	c->res->has_prev_ctime_ns = true;
	c->res->prev_ctime_ns = in->attr->ctime_ns;
	touch(c, in, true);
	return put_inode_attr(c, in);
}

static Krg__Kdfs__Chunk *find_chunk(Krg__Kdfs__Inode *in, uint32_t index)
{
	for (size_t i = 0; i < in->n_chunks; i++)
		if (in->chunks[i]->index == index)
			return in->chunks[i];
	return NULL;
}

static int op_chunk_alloc(struct ctx *c, const Krg__Kdfs__ChunkAlloc *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_regular(c, o->ino, &in)) < 0)
		return r;
	if (o->has_stripe_count) {
		struct kdfs_layout l;
		kdfs_layout_of(in, &l);
		if (l.count != o->stripe_count || (l.count > 1 && l.unit != o->stripe_size))
			return -ESTALE;
	}
	Krg__Kdfs__Chunk *ch = find_chunk(in, o->index);
	if (ch) { /* someone else allocated it first: theirs stands */
		c->res->chunk = ch;
		c->res->attr = in->attr;
		return 0;
	}
	if (!o->n_nodes)
		return -EINVAL;
	static Krg__Kdfs__Chunk nc;
	krg__kdfs__chunk__init(&nc);
	nc.index = o->index;
	nc.version = 1;
	nc.has_gen = true;
	nc.gen = (uint64_t)c->now;
	nc.n_nodes = o->n_nodes;
	nc.nodes = o->nodes;
	Krg__Kdfs__Chunk **v = realloc(in->chunks, (in->n_chunks + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	in->chunks = v;
	/* Borrowed into the packed record only; taken out again before the
	 * inode is freed (protobuf-c would free it otherwise). */
	in->chunks[in->n_chunks++] = &nc;
	r = meta_inode_put(c->m, c->txn, in);
	in->n_chunks--;
	if (r < 0)
		return r;
	c->res->chunk = &nc;
	c->res->attr = in->attr;
	return 0;
}

/* The chunk a ChunkDrop or ChunkFill names, also the result's. */
static int get_chunk(struct ctx *c, uint64_t ino, uint32_t index, Krg__Kdfs__Inode **in, Krg__Kdfs__Chunk **ch)
{
	int r;
	if ((r = get_inode(c, ino, in)) < 0)
		return r;
	if (!(*ch = find_chunk(*in, index)))
		return -ENOENT;
	c->res->chunk = *ch;
	return 0;
}

/* Takes node out of the set v (order does not matter); false if absent. */
static bool take_node(uint32_t *v, size_t *n, uint32_t node)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == node) {
			v[i] = v[--*n];
			return true;
		}
	return false;
}

static int op_chunk_drop(struct ctx *c, const Krg__Kdfs__ChunkDrop *o)
{
	Krg__Kdfs__Inode *in;
	Krg__Kdfs__Chunk *ch;
	int r;
	if ((r = get_chunk(c, o->ino, o->index, &in, &ch)) < 0)
		return r;
	/* A node being filled never served a read: it just goes. */
	if (take_node(ch->filling, &ch->n_filling, o->node))
		return meta_inode_put(c->m, c->txn, in);
	if (ch->version != o->version)
		return 0; /* someone dropped it already; the caller re-reads */
	size_t k = 0;
	for (size_t i = 0; i < ch->n_nodes; i++)
		if (ch->nodes[i] != o->node)
			ch->nodes[k++] = ch->nodes[i];
	if (k == ch->n_nodes)
		return 0;
	if (k == 0)
		return -EIO; /* never drop the last replica */
	ch->n_nodes = k;
	ch->version++;
	return meta_inode_put(c->m, c->txn, in);
}

static bool has_node(const uint32_t *v, size_t n, uint32_t node)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == node)
			return true;
	return false;
}

static int add_node(uint32_t **v, size_t *n, uint32_t node)
{
	uint32_t *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = node;
	*v = nv;
	return 0;
}

static int op_chunk_fill(struct ctx *c, const Krg__Kdfs__ChunkFill *o)
{
	Krg__Kdfs__Inode *in;
	Krg__Kdfs__Chunk *ch;
	int r;
	if ((r = get_chunk(c, o->ino, o->index, &in, &ch)) < 0)
		return r;
	if (ch->version != o->version)
		return -ESTALE;
	bool filling = has_node(ch->filling, ch->n_filling, o->node);
	if (!o->done) {
		if (filling || has_node(ch->nodes, ch->n_nodes, o->node))
			return -EEXIST;
		if ((r = add_node(&ch->filling, &ch->n_filling, o->node)) < 0)
			return r;
		ch->version++;
	} else {
		if (!take_node(ch->filling, &ch->n_filling, o->node))
			return -ENOENT; /* dropped meanwhile: a write missed it */
		if ((r = add_node(&ch->nodes, &ch->n_nodes, o->node)) < 0)
			return r;
	}
	return meta_inode_put(c->m, c->txn, in);
}

static int op_reap(struct ctx *c, const Krg__Kdfs__Reap *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r == -ENOENT ? 0 : r;
	if (in->attr->nlink != 0)
		return -EBUSY;
	if ((r = meta_inode_del(c->m, c->txn, o->ino)) < 0 || (r = meta_lock_forget(c->m, c->txn, o->ino)) < 0)
		return r;
	c->reaped = o->ino;
	return 0;
}

/* ---- extended attributes: kept in the inode, in name order ----
 * The kernel checks names (ERANGE past 255 bytes), value sizes (E2BIG past
 * 64 KiB) and who may touch which namespace (trusted.* needs
 * CAP_SYS_ADMIN, user.* only on files and directories, the caller's
 * permissions); what is left is existence and a bound per inode. */

#define XATTR_TOTAL_MAX (256u << 10)  /* names + values per inode, as a file system block bounds ext4's */

static int op_setxattr(struct ctx *c, const Krg__Kdfs__SetXattr *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if (!o->name || !*o->name || strlen(o->name) > 255)
		return -ERANGE;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r;
	size_t at = 0, total = strlen(o->name) + o->value.len;
	Krg__Kdfs__Xattr *found = NULL;
	for (size_t i = 0; i < in->n_xattrs; i++) {
		int cmp = strcmp(in->xattrs[i]->name, o->name);
		if (cmp == 0)
			found = in->xattrs[i];
		else
			total += strlen(in->xattrs[i]->name) + in->xattrs[i]->value.len;
		if (cmp < 0)
			at = i + 1;
	}
	if (found && (o->flags & 1 /* XATTR_CREATE */))
		return -EEXIST;
	if (!found && (o->flags & 2 /* XATTR_REPLACE */))
		return -ENODATA;
	if (total > XATTR_TOTAL_MAX)
		return -ENOSPC;
	static Krg__Kdfs__Xattr nx;
	krg__kdfs__xattr__init(&nx);
	nx.name = o->name;
	nx.value = o->value;
	Krg__Kdfs__Xattr *old = NULL, **v = in->xattrs;
	if (found) {
		old = found;
		in->xattrs[at] = &nx; /* names are sorted: the match follows every smaller one */
	} else {
		if (!(v = realloc(in->xattrs, (in->n_xattrs + 1) * sizeof(*v))))
			return -ENOMEM;
		in->xattrs = v;
		memmove(v + at + 1, v + at, (in->n_xattrs - at) * sizeof(*v));
		v[at] = &nx;
		in->n_xattrs++;
	}
	touch(c, in, false);
	r = meta_inode_put(c->m, c->txn, in);
	/* nx is borrowed: put the old entry back or take nx out before the
	 * inode is freed. */
	for (size_t i = 0; i < in->n_xattrs; i++)
		if (in->xattrs[i] == &nx) {
			if (old) {
				in->xattrs[i] = old;
			} else {
				memmove(in->xattrs + i, in->xattrs + i + 1, (in->n_xattrs - i - 1) * sizeof(*v));
				in->n_xattrs--;
			}
			break;
		}
	if (r < 0)
		return r;
	c->res->attr = in->attr;
	return 0;
}

static int op_removexattr(struct ctx *c, const Krg__Kdfs__RemoveXattr *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r;
	for (size_t i = 0; i < in->n_xattrs; i++)
		if (!strcmp(in->xattrs[i]->name, o->name ? o->name : "")) {
			krg__kdfs__xattr__free_unpacked(in->xattrs[i], NULL);
			memmove(in->xattrs + i, in->xattrs + i + 1, (in->n_xattrs - i - 1) * sizeof(*in->xattrs));
			in->n_xattrs--;
			touch(c, in, false);
			return put_inode_attr(c, in);
		}
	return -ENODATA;
}

/* krg kdfs set: the copies new chunks of this inode get, and its
 * striping (a directory: of the inodes made in it from now on). A file's
 * striping cannot change once it has chunks (EBUSY). krgd checks who may. */
static int op_setlayout(struct ctx *c, const Krg__Kdfs__SetLayout *o)
{
	Krg__Kdfs__Inode *in;
	int r;
	if ((r = get_inode(c, o->ino, &in)) < 0)
		return r;
	if (o->has_replicas && (o->replicas < 1 || o->replicas > 16))
		return -EINVAL;
	bool striping = o->has_stripe_count || o->has_stripe_size;
	if (striping && !S_ISREG(in->attr->mode) && !S_ISDIR(in->attr->mode))
		return -EINVAL;
	if ((o->has_stripe_count && !kdfs_layout_valid(o->stripe_count, KDFS_STRIPE_SIZE_MIN)) ||
	    (o->has_stripe_size && !kdfs_layout_valid(1, o->stripe_size)))
		return -EINVAL;
	if (striping && S_ISREG(in->attr->mode) && in->n_chunks) {
		/* Its chunks hold the bytes where the old map put them. */
		struct kdfs_layout was, now;
		kdfs_layout_of(in, &was);
		kdfs_layout_make(&now, o->has_stripe_count ? o->stripe_count : was.count,
				 o->has_stripe_size ? o->stripe_size : was.unit);
		if (now.count != was.count || now.unit != was.unit)
			return -EBUSY;
	}
	if (o->has_replicas) {
		in->has_replicas = true;
		in->replicas = o->replicas;
	}
	if (o->has_stripe_count) {
		in->has_stripe_count = true;
		in->stripe_count = o->stripe_count;
	}
	if (o->has_stripe_size) {
		in->has_stripe_size = true;
		in->stripe_size = o->stripe_size;
	}
	touch(c, in, false);
	return put_inode_attr(c, in);
}

static int dispatch(struct ctx *c, const Krg__Kdfs__Op *op)
{
	switch (op->op_case) {
	case KRG__KDFS__OP__OP_CREATE:
		return op_create(c, op->create);
	case KRG__KDFS__OP__OP_LINK:
		return op_link(c, op->link);
	case KRG__KDFS__OP__OP_UNLINK:
		return op_unlink(c, op->unlink);
	case KRG__KDFS__OP__OP_RENAME:
		return op_rename(c, op->rename);
	case KRG__KDFS__OP__OP_SETATTR:
		return op_setattr(c, op->setattr);
	case KRG__KDFS__OP__OP_EXTEND:
		return op_extend(c, op->extend);
	case KRG__KDFS__OP__OP_CHUNK_ALLOC:
		return op_chunk_alloc(c, op->chunk_alloc);
	case KRG__KDFS__OP__OP_CHUNK_DROP:
		return op_chunk_drop(c, op->chunk_drop);
	case KRG__KDFS__OP__OP_REAP:
		return op_reap(c, op->reap);
	case KRG__KDFS__OP__OP_SETXATTR:
		return op_setxattr(c, op->setxattr);
	case KRG__KDFS__OP__OP_REMOVEXATTR:
		return op_removexattr(c, op->removexattr);
	case KRG__KDFS__OP__OP_SETLOCK:
		return meta_lock_set(c->m, c->txn, op->setlock, c->res, &c->locks);
	case KRG__KDFS__OP__OP_CHUNK_FILL:
		return op_chunk_fill(c, op->chunk_fill);
	case KRG__KDFS__OP__OP_SETLAYOUT:
		return op_setlayout(c, op->setlayout);
	case KRG__KDFS__OP__OP_DROPLOCKS:
		return meta_lock_drop(c->m, c->txn, op->droplocks);
	default:
		return -EOPNOTSUPP;
	}
}

void kdfs_meta_apply(void *mp, const uint8_t *opb, size_t len, uint8_t **resb, size_t *res_len)
{
	struct kdfs_meta *m = mp;
	Krg__Kdfs__OpResult res = KRG__KDFS__OP_RESULT__INIT;
	struct ctx c = { .m = m, .res = &res };
	Krg__Kdfs__Op *op = krg__kdfs__op__unpack(NULL, len, opb);
	int r;
	if (!op) {
		r = -EBADMSG;
	} else if ((r = meta_err(mdb_txn_begin(m->env, NULL, 0, &c.txn))) == 0) {
		m->n_changed = 0;
		m->changed_many = false;
		c.now = op->now_ns;
		r = dispatch(&c, op);
		if (r == 0)
			r = meta_err(mdb_txn_commit(c.txn));
		else
			mdb_txn_abort(c.txn);
	}
	res.status = r;
	if (r < 0) {
		res.attr = NULL;
		res.chunk = NULL;
		res.has_orphan = false;
	}
	if (r != -EBUSY)
		res.conflict = NULL;
	*res_len = krg__kdfs__op_result__get_packed_size(&res);
	*resb = malloc(*res_len ? *res_len : 1);
	if (*resb)
		krg__kdfs__op_result__pack(&res, *resb);
	else
		*res_len = 0;
	if (r == 0 && c.reaped && m->reap_cb)
		m->reap_cb(c.reaped, m->data);
	if (r == 0 && m->n_changed && m->change_cb)
		m->change_cb(m->changed_many ? NULL : m->changed, m->n_changed, m->change_data);
	for (size_t i = 0; i < ARRAY_SIZE(c.keep); i++)
		if (c.keep[i])
			krg__kdfs__inode__free_unpacked(c.keep[i], NULL);
	if (c.locks)
		krg__kdfs__lock_table__free_unpacked(c.locks, NULL);
	if (op)
		krg__kdfs__op__free_unpacked(op, NULL);
}
