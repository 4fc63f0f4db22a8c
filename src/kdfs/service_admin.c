/* service_admin.c — kdfs's administration on krgd's local API:
 *   kdfs.status  capacity and use per node, chunks, under-replicated and
 *                lost counts (krgadm kdfs status)
 *   kdfs.show    one file's layout, where each chunk lives and whether
 *                those nodes are up (krg kdfs show)
 *   kdfs.set     the copies new chunks get and the striping, on a file
 *                or a directory's new files (krg kdfs set)
 * and the peers' "kdfs.space" (a node's free and total bytes). Counts come
 * from this node's replica of the metadata, after a read barrier. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "kdfs/layout.h"
#include "kdfs/service-int.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"

#define KMSG_SPACE "kdfs.space"
#define SPACE_TIMEOUT_MS 2000

static void on_space(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_kdfs *k = data;
	if (!req_id)
		return;
	Krg__Kdfs__NodeUse u = KRG__KDFS__NODE_USE__INIT;
	u.node = k->self;
	u.state = (char *)krg_node_state_name(krg_cluster_node_state(k->cluster, k->self));
	u.has_total = u.has_avail = kdfs_chunks_space(k->chunks, &u.total, &u.avail) == 0;
	u.has_repairs = u.has_repaired_bytes = u.has_repair_total = true;
	kdfs_repair_progress(k, &u.repairs, &u.repaired_bytes, &u.repair_total);
	uint8_t buf[96];
	size_t n = krg__kdfs__node_use__pack(&u, buf);
	krg_net_reply(net, from, req_id, 0, buf, n);
}

/* ---- kdfs.status ---- */

struct status_call {
	struct krg_kdfs *k;
	struct krg_api_call *call;
	Krg__Kdfs__Status st;
	Krg__Kdfs__NodeUse use[KRG_MAX_NODES], *ptrs[KRG_MAX_NODES];
	int waiting;
};

static Krg__Kdfs__NodeUse *use_of(struct status_call *s, uint32_t node)
{
	for (size_t i = 0; i < s->st.n_nodes; i++)
		if (s->use[i].node == node)
			return &s->use[i];
	return NULL;
}

static int count_inode(const Krg__Kdfs__Inode *in, void *data)
{
	struct status_call *s = data;
	/* Unlinked inodes wait for their reap: nothing to read or repair. */
	if (!S_ISREG(in->attr->mode) || in->attr->nlink == 0)
		return 0;
	s->st.files++;
	unsigned want = kdfs_copies_wanted(s->k, in);
	for (size_t i = 0; i < in->n_chunks; i++) {
		const Krg__Kdfs__Chunk *c = in->chunks[i];
		unsigned up = 0, alive = 0;
		s->st.chunks++;
		for (size_t j = 0; j < c->n_nodes; j++) {
			Krg__Kdfs__NodeUse *u = use_of(s, c->nodes[j]);
			if (u)
				u->replicas++;
			up += kdfs_node_up(s->k, c->nodes[j]);
			alive += kdfs_node_alive(s->k, c->nodes[j]);
		}
		/* A copy on a leaving node still serves but does not count:
		 * its chunk is under-replicated until the drain copied it. */
		s->st.lost += alive == 0;
		s->st.under_replicated += alive > 0 && up < want;
		s->st.draining += alive > up;
	}
	return 0;
}

static void status_reply(struct status_call *s)
{
	size_t n = krg__kdfs__status__get_packed_size(&s->st);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf) {
		krg__kdfs__status__pack(&s->st, buf);
		krg_api_reply(s->call, 0, NULL, buf, n);
	} else {
		krg_api_reply(s->call, -ENOMEM, "out of memory", NULL, 0);
	}
	free(buf);
	free(s);
}

static void space_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct status_call *s = data;
	Krg__Kdfs__NodeUse *got = status == 0 ? krg__kdfs__node_use__unpack(NULL, reply->len, reply->body) : NULL;
	Krg__Kdfs__NodeUse *u = got ? use_of(s, got->node) : NULL;
	if (u && got->has_total) {
		u->has_total = u->has_avail = true;
		u->total = got->total;
		u->avail = got->avail;
	}
	if (u && got->has_repairs) {
		u->has_repairs = u->has_repaired_bytes = u->has_repair_total = true;
		u->repairs = got->repairs;
		u->repaired_bytes = got->repaired_bytes;
		u->repair_total = got->repair_total;
		s->st.repairs += got->repairs;
	}
	if (got)
		krg__kdfs__node_use__free_unpacked(got, NULL);
	if (--s->waiting == 0)
		status_reply(s);
}

static void status_barrier(int status, void *data)
{
	struct status_call *s = data;
	struct krg_kdfs *k = s->k;
	s->st.has_draining = true;
	int e = status < 0 ? status : kdfs_meta_each_inode(k->meta, count_inode, s);
	if (e < 0) {
		krg_api_reply(s->call, e, "cannot read the metadata", NULL, 0);
		free(s);
		return;
	}
	s->waiting = 1;
	for (size_t i = 0; i < s->st.n_nodes; i++) {
		Krg__Kdfs__NodeUse *u = &s->use[i];
		if (u->node == k->self) {
			u->has_total = u->has_avail = kdfs_chunks_space(k->chunks, &u->total, &u->avail) == 0;
			u->has_repairs = u->has_repaired_bytes = u->has_repair_total = true;
			kdfs_repair_progress(k, &u->repairs, &u->repaired_bytes, &u->repair_total);
			s->st.repairs += u->repairs;
		} else if (kdfs_node_alive(k, u->node)) {
			s->waiting++;
			if (krg_net_request(k->net, u->node, KMSG_SPACE, NULL, 0, SPACE_TIMEOUT_MS, space_cb, s) < 0)
				s->waiting--;
		}
	}
	if (--s->waiting == 0)
		status_reply(s);
}

static void on_status(struct krg_api_call *call, void *data)
{
	struct krg_kdfs *k = data;
	struct status_call *s = calloc(1, sizeof(*s));
	if (!s)
		return krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
	s->k = k;
	s->call = call;
	krg__kdfs__status__init(&s->st);
	for (size_t i = 0; i < k->cfg->n_nodes && i < KRG_MAX_NODES; i++) {
		Krg__Kdfs__NodeUse *u = &s->use[i];
		krg__kdfs__node_use__init(u);
		u->node = k->cfg->nodes[i].id;
		u->state = (char *)krg_node_state_name(krg_cluster_node_state(k->cluster, u->node));
		s->ptrs[i] = u;
		s->st.n_nodes++;
	}
	s->st.nodes = s->ptrs;
	int r = krg_cluster_sm_barrier(k->cluster, status_barrier, s);
	if (r < 0) {
		free(s);
		krg_api_reply(call, r, r == -EAGAIN ? "no leader: the cluster has no quorum" : "read barrier failed",
			      NULL, 0);
	}
}

/* ---- kdfs.show and kdfs.set: one inode the caller may see ---- */

/* The caller may read the inode's layout as it may stat... what it may
 * name; without the path we ask for read access or ownership. */
static bool may_see(const struct krg_api_call *call, const Krg__Kdfs__Attr *a)
{
	if (call->uid == 0 || call->uid == a->uid || (a->mode & S_IROTH))
		return true;
	if (!(a->mode & S_IRGRP))
		return false;
	if (call->gid == a->gid)
		return true;
	for (size_t i = 0; i < call->n_groups; i++)
		if (call->groups[i] == a->gid)
			return true;
	return false;
}

static int inode_for(struct krg_kdfs *k, struct krg_api_call *call, uint64_t *ino, Krg__Kdfs__Inode **in)
{
	Krg__Kdfs__ShowRequest *rq = krg__kdfs__show_request__unpack(NULL, call->len, call->body);
	if (!rq)
		return -EINVAL;
	*ino = rq->ino;
	krg__kdfs__show_request__free_unpacked(rq, NULL);
	int e = kdfs_meta_get(k->meta, *ino, in);
	if (e == 0 && !may_see(call, (*in)->attr)) {
		krg__kdfs__inode__free_unpacked(*in, NULL);
		e = -EACCES;
	}
	return e;
}

static void on_show(struct krg_api_call *call, void *data)
{
	struct krg_kdfs *k = data;
	uint64_t ino;
	Krg__Kdfs__Inode *in;
	int e = inode_for(k, call, &ino, &in);
	if (e < 0)
		return krg_api_reply(call, e, e == -EINVAL ? "malformed request" : NULL, NULL, 0);
	Krg__Kdfs__Show sh = KRG__KDFS__SHOW__INIT;
	sh.ino = ino;
	sh.size = in->attr->size;
	sh.replicas = kdfs_replicas_of(k, ino);
	sh.chunk_size = KDFS_CHUNK_SIZE;
	/* A file's own layout; a directory's is what its new files get:
	 * its fields, else this node's defaults. */
	struct kdfs_layout l;
	if (S_ISDIR(in->attr->mode)) {
		uint32_t count, size;
		kdfs_default_layout(k, &count, &size);
		kdfs_layout_make(&l, in->has_stripe_count ? in->stripe_count : count,
				 in->has_stripe_size ? in->stripe_size : size);
		sh.has_directory = sh.directory = true;
	} else {
		kdfs_layout_of(in, &l);
	}
	sh.has_stripe_count = sh.has_stripe_size = true;
	sh.stripe_count = l.count;
	sh.stripe_size = l.unit;
	Krg__Kdfs__ChunkHealth *ch = calloc(in->n_chunks ? in->n_chunks : 1, sizeof(*ch));
	Krg__Kdfs__ChunkHealth **chp = calloc(in->n_chunks ? in->n_chunks : 1, sizeof(*chp));
	protobuf_c_boolean *up = calloc(KRG_MAX_NODES * (in->n_chunks ? in->n_chunks : 1), sizeof(*up));
	uint8_t *buf = NULL;
	size_t n = 0;
	if (ch && chp && up) {
		for (size_t i = 0; i < in->n_chunks; i++) {
			const Krg__Kdfs__Chunk *c = in->chunks[i];
			krg__kdfs__chunk_health__init(&ch[i]);
			ch[i].index = c->index;
			ch[i].version = c->version;
			ch[i].has_group = ch[i].has_first = true;
			ch[i].group = kdfs_layout_group(&l, c->index);
			ch[i].first = kdfs_layout_first(&l, c->index);
			ch[i].n_nodes = ch[i].n_up = MIN(c->n_nodes, (size_t)KRG_MAX_NODES);
			ch[i].nodes = c->nodes;
			ch[i].up = up + i * KRG_MAX_NODES;
			for (size_t j = 0; j < ch[i].n_nodes; j++)
				ch[i].up[j] = kdfs_node_alive(k, c->nodes[j]);
			chp[i] = &ch[i];
		}
		sh.n_chunks = in->n_chunks;
		sh.chunks = chp;
		n = krg__kdfs__show__get_packed_size(&sh);
		if ((buf = malloc(n ? n : 1)))
			krg__kdfs__show__pack(&sh, buf);
	}
	if (buf)
		krg_api_reply(call, 0, NULL, buf, n);
	else
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
	free(buf);
	free(ch);
	free(chp);
	free(up);
	krg__kdfs__inode__free_unpacked(in, NULL);
}

static void set_done(struct kreq *q, int status, Krg__Kdfs__OpResult *res)
{
	krg_api_reply(q->ctx, status,
		      status == -EAGAIN  ? "no leader: the cluster has no quorum"
		      : status == -EBUSY ? "the file holds data: its striping cannot change (copy it into a directory "
					   "with the striping wanted)"
		      : status == -EINVAL ? "striping applies to regular files and directories only"
					  : NULL,
		      NULL, 0);
	kreq_free(q);
}

static void on_set(struct krg_api_call *call, void *data)
{
	struct krg_kdfs *k = data;
	Krg__Kdfs__SetLayout *sl = krg__kdfs__set_layout__unpack(NULL, call->len, call->body);
	if (!sl)
		return krg_api_reply(call, -EINVAL, "malformed request", NULL, 0);
	Krg__Kdfs__Inode *in;
	int e = kdfs_meta_get(k->meta, sl->ino, &in);
	if (e == 0) {
		/* As chmod: the owner or root. */
		if (call->uid != 0 && call->uid != in->attr->uid)
			e = -EPERM;
		krg__kdfs__inode__free_unpacked(in, NULL);
	}
	const char *why = NULL;
	if (e == 0 && sl->has_replicas && (sl->replicas < 1 || sl->replicas > k->cfg->n_nodes))
		e = -EINVAL, why = "replicas must be between 1 and the number of nodes";
	/* More groups than nodes would put two groups of a file on one node. */
	if (e == 0 && sl->has_stripe_count && (sl->stripe_count < 1 || sl->stripe_count > k->cfg->n_nodes))
		e = -EINVAL, why = "the stripe count must be between 1 and the number of nodes";
	if (e == 0 && sl->has_stripe_size && !kdfs_layout_valid(1, sl->stripe_size))
		e = -EINVAL, why = "the stripe size must be a power of two from 64 KiB to 64 MiB";
	struct kreq *q = e == 0 ? calloc(1, sizeof(*q)) : NULL;
	if (e == 0 && !q)
		e = -ENOMEM;
	if (e < 0) {
		krg__kdfs__set_layout__free_unpacked(sl, NULL);
		return krg_api_reply(call, e, why, NULL, 0);
	}
	q->k = k;
	q->ctx = call;
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	op.op_case = KRG__KDFS__OP__OP_SETLAYOUT;
	op.setlayout = sl;
	e = kdfs_propose(q, &op, set_done);
	krg__kdfs__set_layout__free_unpacked(sl, NULL);
	if (e < 0) {
		krg_api_reply(call, e, e == -EAGAIN ? "no leader: the cluster has no quorum" : NULL, NULL, 0);
		kreq_free(q);
	}
}

int kdfs_admin_register(struct krg_kdfs *k, struct krg_api_server *api)
{
	int r;
	if ((r = krg_net_handle(k->net, KMSG_SPACE, on_space, k)) < 0)
		return r;
	if (!api)
		return 0;
	if ((r = krg_api_register(api, "kdfs.status", false, on_status, k)) < 0 ||
	    (r = krg_api_register(api, "kdfs.show", false, on_show, k)) < 0 ||
	    (r = krg_api_register(api, "kdfs.set", false, on_set, k)) < 0)
		return r;
	return 0;
}
