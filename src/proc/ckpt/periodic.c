/* periodic.c — periodic checkpoints and the restart of their applications
 * when their node dies (issue 19 item 3; docs/reconfiguration.md "Failure
 * recovery").
 *
 * The cluster state (Raft registry "ckpt.every", key: the app id the
 * application started as, value: ckptsvc.proto Periodic) says which
 * applications are checkpointed, how often, where they run and where
 * their latest image is. Everything here is level-triggered from one
 * timer that reads the local replica, so a krgd that restarts, a log
 * replayed at start or a missed membership event changes nothing:
 *
 * - on the node an application runs on: when its period is up, a dump
 *   into this node's store (the ordinary worker, ckpt_service.c), a copy
 *   of that version to a second up node (ckpt.recv/ckpt.file, copy_only),
 *   then the entry is updated through the log with the version and both
 *   holders. An application that ended takes its entry (and, on every
 *   node, its images) with it;
 * - on every node: an entry whose node the leader declared down is
 *   restarted by the first of its image's holders that is up, from that
 *   image, in its own store (no transfer on the critical path). That node
 *   then records itself as the application's node, with the age of the
 *   checkpoint it resumed from. The decision is the leader's (only a
 *   majority declares a node down) and the choice needs no message: every
 *   node computes the same one from the same replica;
 * - on every node: versions made or received for this (listed in
 *   STORE/.periodic/<image id>, root's, 0700) are removed once the
 *   entry records a newer one, or once no entry refers to them.
 *
 * Checkpoints are incremental (docs/checkpoint.md "Incremental images"):
 * this krgd holds a write tracker (a userfaultfd made in the process) per
 * process of the application between its checkpoints, and each one
 * names the previous as its parent and saves only the pages written
 * since. A full one is taken first, after any failure, when the second
 * holder changes (it must hold the whole chain), and once the increments
 * since the last full one add up to half its size or number MAX_CHAIN
 * (a restart reads the whole chain: this bounds its extra reading and
 * the store's extra space to half an image; the older chain is then
 * pruned whole). Pruning keeps the chain of the latest recorded version.
 *
 * With kdfs mounted the images are written there (the worker chooses,
 * ckpt_service.c), incremental as in the node's store, each increment
 * next to its parent: nothing is copied, the entry says on_kdfs, and any
 * up node can restart the application — the lowest-numbered one does,
 * reading the image and its chain in place. Superseded kdfs versions
 * (all but the recorded one's chain) are removed by the node that
 * records a newer one, ended applications' by the node that saw them end
 * (the "periodic checkpoint of app N" description tells them from the
 * user's own versions of the same id).
 *
 * A node cut off from the majority stops those of its applications that
 * another node could restart, before the majority may do so, and kills
 * them once it hears that it did ("the fence", below). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "api/server.h"
#include "ckpt/store.h"
#include "cluster/cluster.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/procfs.h"
#include "net/net.h"
#include "proto/ckptsvc.pb-c.h"
#include "proc/ckpt/ckptsvc-int.h"
#include "proc/procid.h"

#define REGISTRY "ckpt.every"
#define TICK_MS 250
#define PRUNE_MS 2000
#define MIN_EVERY_MS 1000u
#define MAX_APPS 1024
#define INDEX_DIR ".periodic"
#define MAX_CHAIN 32  /* increments before a full checkpoint again (at most) */

/* What this node remembers of an entry (not replicated). */
struct pstate {
	uint32_t appid;
	bool busy;           /* a dump, copy, record or restart in flight */
	bool seen_alive;     /* its process seen running here by this krgd */
	bool failed_logged;  /* a failure said once until it works again */
	bool lost_logged;
	bool restart_failed; /* a recovery here failed: not tried again */
	uint64_t last_start; /* uv_now of the last dump started, 0: none yet */
	uint32_t recovered_as; /* restarted here as this id, entry not updated yet */
	uint32_t recovered_from;
	uint32_t fence_killed;   /* the id whose copy the fence killed here: never restarted here */
	/* Incremental checkpoints: write trackers of the application's
	 * processes, kept from one checkpoint to the next. */
	struct ckpt_track tr[CKPT_PERIODIC_TRACK];
	size_t ntr;
	uint32_t tr_id;          /* the application's id they were taken for */
	uint32_t tr_parent;      /* the last version made with them: the next one's parent (0: the next is full) */
	uint32_t tr_copied;      /* where that version and its chain were copied, 0: nowhere */
	bool tr_kdfs;            /* that version and its chain are in kdfs (no copy) */
	unsigned tr_chain;       /* increments since the last full one */
	uint64_t tr_full_bytes;  /* size of that full one */
	uint64_t tr_chain_bytes; /* and of the increments since */
	bool tr_said;            /* "cannot track" said once */
};

static void track_reset(struct pstate *ps)
{
	for (size_t i = 0; i < ps->ntr; i++)
		close(ps->tr[i].uffd);
	ps->ntr = 0;
	ps->tr_parent = ps->tr_copied = ps->tr_chain = 0;
	ps->tr_kdfs = false;
	ps->tr_full_bytes = ps->tr_chain_bytes = 0;
}

/* An application stopped here by the fence (see "the fence" below). */
#define FENCE_PIDS 64
struct fenced {
	uint32_t appid, id;         /* its entry, and the id it ran as here */
	pid_t pids[FENCE_PIDS];     /* the processes this fence stopped (not those already stopped) */
	size_t npids;
};

struct krg_periodic {
	struct krg_ckptsvc *c;
	uv_timer_t timer;
	struct pstate st[MAX_APPS];
	size_t n;
	uint64_t last_prune;
	/* The fence: this node lost its quorum and stopped the applications
	 * the majority may restart elsewhere. */
	uint64_t noquorum_since;    /* uv_now when the quorum was first missed, 0: it has one */
	uint64_t quorum_since;      /* uv_now when it was last found again */
	bool had_quorum;            /* since this krgd started: before, nothing of its ran */
	bool fenced;
	char fence_why[96];         /* said with the first application stopped */
	bool self_down;             /* the log said this node was declared down since the fence */
	bool healing;               /* a read barrier in flight */
	struct fenced *fz;
	size_t nfz;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct pstate *pstate(struct krg_periodic *p, uint32_t appid, bool make)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->st[i].appid == appid)
			return &p->st[i];
	if (!make || p->n == MAX_APPS)
		return NULL;
	p->st[p->n] = (struct pstate){ .appid = appid };
	return &p->st[p->n++];
}

static void pstate_drop(struct krg_periodic *p, uint32_t appid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->st[i].appid == appid) {
			track_reset(&p->st[i]);
			p->st[i] = p->st[--p->n];
			return;
		}
}

/* ---- the registry ---- */

struct entries {
	Krg__Ckptsvc__Periodic **v;
	size_t n;
};

static bool collect(const char *key, const uint8_t *value, size_t len, void *data)
{
	struct entries *e = data;
	Krg__Ckptsvc__Periodic *m = krg__ckptsvc__periodic__unpack(NULL, len, value);
	if (!m)
		return false;
	Krg__Ckptsvc__Periodic **nv = realloc(e->v, (e->n + 1) * sizeof(*nv));
	if (!nv) {
		krg__ckptsvc__periodic__free_unpacked(m, NULL);
		return true;
	}
	e->v = nv;
	e->v[e->n++] = m;
	return false;
}

static void entries_free(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		krg__ckptsvc__periodic__free_unpacked(e->v[i], NULL);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

static struct entries entries_read(struct krg_ckptsvc *c)
{
	struct entries e = { 0 };
	krg_cluster_registry_each(c->s->cluster, REGISTRY, collect, &e);
	return e;
}

static Krg__Ckptsvc__Periodic *entry_get(struct krg_ckptsvc *c, uint32_t appid)
{
	char key[16];
	const uint8_t *v;
	size_t n;
	snprintf(key, sizeof(key), "%u", appid);
	if (krg_cluster_registry_get(c->s->cluster, REGISTRY, key, &v, &n) < 0)
		return NULL;
	return krg__ckptsvc__periodic__unpack(NULL, n, v);
}

/* Through the log; e NULL: remove appid's entry. */
static int entry_put(struct krg_ckptsvc *c, uint32_t appid, const Krg__Ckptsvc__Periodic *e, krg_cluster_done_cb cb,
		     void *data)
{
	char key[16];
	snprintf(key, sizeof(key), "%u", appid);
	if (!e)
		return krg_cluster_registry_set(c->s->cluster, REGISTRY, key, NULL, 0, cb, data);
	size_t len = krg__ckptsvc__periodic__get_packed_size(e);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	krg__ckptsvc__periodic__pack(e, buf);
	return krg_cluster_registry_set(c->s->cluster, REGISTRY, key, buf, len, cb, data);
}

/* ---- the index of versions made for this ---- */

static int index_dir(char *path, size_t len)
{
	snprintf(path, len, "%s/%s", krg_ckpt_store(), INDEX_DIR);
	if (mkdir(krg_ckpt_store(), 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void periodic_index_add(uint32_t image_id, uint32_t version)
{
	char dir[600], path[700], line[16];
	if (index_dir(dir, sizeof(dir)) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%u", dir, image_id);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("periodic checkpoints: cannot record %s: %s", path, strerror(errno));
		return;
	}
	int n = snprintf(line, sizeof(line), "%u\n", version);
	if (write(fd, line, (size_t)n) != n)
		log_warn("periodic checkpoints: cannot record %s: %s", path, strerror(errno));
	close(fd);
}

/* Remove STORE/<image_id>/v<version>. <image_id>/ is the user's: nothing
 * under it is followed (a v<n> made a symlink by its owner is only unlinked). */
static void remove_version(uint32_t image_id, uint32_t version)
{
	char path[600], name[16];
	snprintf(path, sizeof(path), "%s/%u", krg_ckpt_store(), image_id);
	snprintf(name, sizeof(name), "v%u", version);
	int afd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = afd < 0 ? -errno : krg_rm_tree(afd, name, NULL);
	if (r < 0 && r != -ENOENT)
		log_warn("periodic checkpoints: cannot remove %s/%s: %s", path, name, strerror(-r));
	if (afd >= 0)
		close(afd);
	rmdir(path); /* only if empty: the user's own versions stay */
}

/* The versions the restart of image_id's version v reads: v and the
 * parents it builds on (an incremental image's chain), at most n. */
static size_t chain_of(uint32_t image_id, uint32_t v, uint32_t *out, size_t n)
{
	size_t k = 0;
	while (v && k < n) {
		out[k++] = v;
		char dir[600], name[64];
		snprintf(dir, sizeof(dir), "%s/%u/v%u", krg_ckpt_store(), image_id, v);
		if (ckpt_image_parent(dir, name, sizeof(name)) < 0 || name[0] != 'v')
			break;
		v = (uint32_t)strtoul(name + 1, NULL, 10);
	}
	return k;
}

/* Versions listed for image_id that no entry needs any more go. */
static void prune_one(const struct entries *es, uint32_t image_id, const char *ipath)
{
	bool running = false; /* an application that runs as image_id: its new versions are not recorded yet */
	uint32_t keep = 0;
	bool referenced = false;
	for (size_t i = 0; i < es->n; i++) {
		if (es->v[i]->id == image_id)
			running = true;
		if (es->v[i]->image_id == image_id && es->v[i]->version) {
			referenced = true;
			if (es->v[i]->version > keep)
				keep = es->v[i]->version;
		}
	}
	if (running && !referenced)
		return;
	uint32_t chain[CKPT_MAX_CHAIN + 1];
	size_t nchain = referenced ? chain_of(image_id, keep, chain, CKPT_MAX_CHAIN + 1) : 0;
	char buf[8192];
	if (krg_read_small(ipath, buf, sizeof(buf)) < 0)
		return;
	char left[8192];
	size_t ll = 0;
	for (char *sv = NULL, *tok = strtok_r(buf, "\n", &sv); tok; tok = strtok_r(NULL, "\n", &sv)) {
		uint32_t v = (uint32_t)strtoul(tok, NULL, 10);
		bool gone = !referenced ? !running : v < keep;
		for (size_t k = 0; gone && k < nchain; k++)
			gone = chain[k] != v;  /* the latest builds on it */
		if (gone) {
			log_info("periodic checkpoints: removing %s/%u/v%u (%s)", krg_ckpt_store(), image_id, v,
				 referenced ? "a newer checkpoint is recorded" : "its application ended");
			remove_version(image_id, v);
		} else if (ll + 16 < sizeof(left)) {
			ll += (size_t)snprintf(left + ll, sizeof(left) - ll, "%u\n", v);
		}
	}
	if (!ll) {
		unlink(ipath);
		return;
	}
	char tmp[700];
	snprintf(tmp, sizeof(tmp), "%s.tmp", ipath);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	bool ok = write(fd, left, ll) == (ssize_t)ll;
	if (close(fd) < 0 || !ok || rename(tmp, ipath) < 0)
		unlink(tmp);
}

static void prune(struct krg_ckptsvc *c)
{
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/%s", krg_ckpt_store(), INDEX_DIR);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct entries es = entries_read(c);
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		unsigned long id = strtoul(e->d_name, &end, 10);
		if (*end || !id || id > UINT32_MAX)
			continue;
		char ipath[700];
		snprintf(ipath, sizeof(ipath), "%s/%s", dir, e->d_name);
		prune_one(&es, (uint32_t)id, ipath);
	}
	closedir(d);
	entries_free(&es);
}

/* ---- checkpoints on the application's node ---- */

struct round {
	struct krg_periodic *p;
	uint32_t appid, id, image_id, version, copy_to;
	uint64_t taken_ms, bytes;
	uid_t uid;
	bool tracked;         /* made with write trackers */
	uint32_t parent;      /* incremental: the version it builds on, 0: full */
	bool parent_kdfs;     /* that version is in kdfs */
	bool on_kdfs;
	uint32_t old_image_id; /* the entry's image before (kdfs): another id's goes once this one is recorded */
	bool old_on_kdfs;
};

static void recorded(int status, const char *msg, void *data)
{
	struct round *r = data;
	struct pstate *ps = pstate(r->p, r->appid, false);
	if (ps)
		ps->busy = false;
	if (status < 0)
		log_warn("app %u: checkpoint v%u of %u not recorded in the cluster state: %s", r->appid, r->version,
			 r->image_id, msg ? msg : strerror(-status));
	else if (r->on_kdfs && r->version) {
		/* The recorded one is the one a recovery reads: the older go. */
		ckptsvc_kdfs_prune(r->p->c, r->image_id, r->appid, r->version, r->version);
		if (r->old_on_kdfs && r->old_image_id != r->image_id)
			ckptsvc_kdfs_prune(r->p->c, r->old_image_id, r->appid, 0, KDFS_PRUNE_ALL);
	}
	free(r);
}

/* The version is where it is: say so in the cluster state. */
static void record(struct round *r, bool copied)
{
	struct krg_ckptsvc *c = r->p->c;
	Krg__Ckptsvc__Periodic *e = entry_get(c, r->appid);
	/* Gone (stopped, the application ended) or moved meanwhile: the
	 * version is left to the pruning. In kdfs no one else will: this
	 * node removes it (and older ones no entry needs) now. */
	if (!e || e->node != c->self || e->id != r->id) {
		if (r->on_kdfs && r->version) {
			struct pstate *ps = pstate(r->p, r->appid, false);
			if (ps)
				track_reset(ps); /* the next one builds on nothing removed */
			ckptsvc_kdfs_prune(c, r->image_id, r->appid, e && e->image_id == r->image_id ? e->version : 0,
					   r->version);
			r->on_kdfs = false; /* not the recorded one: recorded() keeps nothing of it */
		}
		if (e)
			krg__ckptsvc__periodic__free_unpacked(e, NULL);
		recorded(0, NULL, r);
		return;
	}
	uint32_t holders[2] = { c->self, r->copy_to };
	r->old_image_id = e->image_id;
	r->old_on_kdfs = e->on_kdfs;
	e->has_on_kdfs = true;
	e->on_kdfs = r->on_kdfs;
	e->has_image_id = e->has_version = e->has_taken_ms = e->has_image_bytes = true;
	e->image_id = r->image_id;
	e->version = r->version;
	e->taken_ms = r->taken_ms;
	e->image_bytes = r->bytes;
	uint32_t *old = e->holders;
	size_t old_n = e->n_holders;
	e->holders = holders;
	e->n_holders = r->on_kdfs ? 0 : copied ? 2 : 1;
	int rc = entry_put(c, r->appid, e, recorded, r);
	e->holders = old;
	e->n_holders = old_n;
	krg__ckptsvc__periodic__free_unpacked(e, NULL);
	if (rc < 0)
		recorded(rc, NULL, r);
}

static void copied(void *data, int status, const char *text, const void *result, size_t len)
{
	struct round *r = data;
	struct pstate *ps = pstate(r->p, r->appid, false);
	/* The next increment needs this version on its second holder. */
	if (ps && r->tracked && ps->tr_parent == r->version)
		ps->tr_copied = status < 0 ? 0 : r->copy_to;
	if (status < 0)
		log_warn("app %u: checkpoint v%u not copied to node %u (%s): it is on this node only", r->appid,
			 r->version, r->copy_to, text);
	else
		log_info("app %u: checkpoint v%u of %u (%" PRIu64 " bytes) on nodes %u and %u", r->appid, r->version,
			 r->image_id, r->bytes, r->p->c->self, r->copy_to);
	record(r, status == 0);
}

/* The next up node after this one (in id order, wrapping): the second
 * holder. 0 and *to, or -1 if there is none. */
static int second_node(struct krg_ckptsvc *c, uint32_t *to)
{
	for (uint32_t k = 1; k < KRG_MAX_NODES; k++) {
		uint32_t n = (c->self + k) % KRG_MAX_NODES;
		if (krg_cluster_node_state(c->s->cluster, n) == KRG_NODE_UP && krg_net_peer_up(c->s->net, n)) {
			*to = n;
			return 0;
		}
	}
	return -1;
}

static void dumped(void *data, int status, const char *text, const void *result, size_t len)
{
	struct round *r = data;
	struct krg_ckptsvc *c = r->p->c;
	struct pstate *ps = pstate(r->p, r->appid, false);
	const char *v = strrchr(text, '/');
	if (status == 0 && (!v || v[1] != 'v'))
		status = -EIO;
	if (status < 0) {
		if (ps && !ps->failed_logged)
			log_warn("app %u: periodic checkpoint failed (said once until one works): %s", r->appid, text);
		if (ps) {
			ps->failed_logged = true;
			ps->busy = false;
			track_reset(ps);  /* what it protected again was saved nowhere: a full one next */
		}
		free(r);
		return;
	}
	if (ps)
		ps->failed_logged = false;
	r->version = (uint32_t)strtoul(v + 2, NULL, 10);
	/* Its size, as the worker counted it (never here: kdfs is served by this loop). */
	Krg__Ckptsvc__Result *res = krg__ckptsvc__result__unpack(NULL, len, result);
	r->bytes = res && res->has_bytes ? res->bytes : 0;
	if (res)
		krg__ckptsvc__result__free_unpacked(res, NULL);
	bool in_kdfs = krg_ckpt_store_in_kdfs(text);
	/* An increment goes next to its parent: in the other store (kdfs
	 * mounted or gone since) the worker made a full one. */
	if (r->parent && r->parent_kdfs != in_kdfs)
		r->parent = 0;
	if (!in_kdfs)
		periodic_index_add(r->image_id, r->version);
	if (ps && r->tracked) {
		ps->tr_parent = r->version;
		ps->tr_kdfs = in_kdfs;
		ps->tr_copied = 0;
		ps->tr_chain = r->parent ? ps->tr_chain + 1 : 0;
		ps->tr_chain_bytes = r->parent ? ps->tr_chain_bytes + r->bytes : 0;
		if (!r->parent)
			ps->tr_full_bytes = r->bytes;
	}
	if (r->parent)
		log_info("app %u: checkpoint v%u is incremental on v%u (%" PRIu64 " bytes; %u increments since the full one)", r->appid,
			 r->version, r->parent, r->bytes, ps ? ps->tr_chain : 0);
	if (in_kdfs) {
		/* Every node reads it there, its chain next to it: no second
		 * copy to make. */
		r->on_kdfs = true;
		log_info("app %u: checkpoint v%u of %u (%" PRIu64 " bytes) in kdfs", r->appid, r->version, r->image_id,
			 r->bytes);
		record(r, false);
		return;
	}
	if (second_node(c, &r->copy_to) < 0) {
		log_warn("app %u: checkpoint v%u is on this node only: no other node is up", r->appid, r->version);
		record(r, false);
		return;
	}
	Krg__Ckptsvc__Restart q = KRG__CKPTSVC__RESTART__INIT;
	q.appid = r->image_id;
	q.has_version = true;
	q.version = r->version;
	q.has_node = true;
	q.node = r->copy_to;
	q.has_copy_only = q.copy_only = true;
	struct krg_origin o = { .cb = copied, .cb_data = r };
	int rc = ckptsvc_copy(c, o, &q, 0, true);
	if (rc < 0)
		copied(r, rc, strerror(-rc), NULL, 0);
}

/* The version the trackers are relative to is still in this node's store. */
static bool version_here(uint32_t image_id, uint32_t version)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%u/v%u/inventory.img", krg_ckpt_store(), image_id, version);
	return access(path, F_OK) == 0;
}

/* Trackers for the application rooted at pid (its processes now). */
static void track_take(struct krg_ckptsvc *c, struct pstate *ps, const Krg__Ckptsvc__Periodic *e, pid_t pid)
{
	track_reset(ps);
	ps->tr_id = e->id;
	struct proc_info *pl = NULL;
	size_t n = 0;
	pid_t want[CKPT_PERIODIC_TRACK];
	size_t nw = 0;
	want[nw++] = pid;
	if (procfs_scan(pid, &pl, &n) == 0)
		for (size_t i = 0; i < n && nw < CKPT_PERIODIC_TRACK; i++)
			if (pl[i].krg && pl[i].state != 'Z')
				want[nw++] = pl[i].pid;
	free(pl);
	for (size_t i = 0; i < nw; i++) {
		struct ckpt_error err = { 0 };
		int uffd, r = ckpt_track_take(want[i], &uffd, &err);
		if (r == 0) {
			ps->tr[ps->ntr++] = (struct ckpt_track){ want[i], uffd };
		} else if (!ps->tr_said) {
			log_info("app %u: process %d saved in full at each checkpoint (no write tracking: %s)", e->appid,
				 (int)want[i], err.msg);
			ps->tr_said = true;
		}
	}
	(void)c;
}

static void start_dump(struct krg_periodic *p, struct pstate *ps, const Krg__Ckptsvc__Periodic *e)
{
	struct krg_ckptsvc *c = p->c;
	struct round *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	*r = (struct round){ .p = p, .appid = e->appid, .id = e->id, .image_id = e->id, .taken_ms = now_ms(), .uid = e->uid };
	/* Incremental on the last one if it is the same application's, here,
	 * on the node this one will be copied to, and the chain is short. */
	uint32_t to = 0;
	/* In kdfs the chain is where every node reads it (no second holder;
	 * a parent gone from there fails the dump, and the next is full). */
	bool incr = ps->ntr && ps->tr_id == e->id && ps->tr_parent && ps->tr_chain < MAX_CHAIN &&
		    ps->tr_chain_bytes <= ps->tr_full_bytes / 2 &&
		    (ps->tr_kdfs || ((second_node(c, &to) < 0 ? ps->tr_copied == 0 : ps->tr_copied == to) &&
				     version_here(e->id, ps->tr_parent)));
	if (!incr)
		track_take(c, ps, e, (pid_t)krg_procid_pid(e->id));
	r->tracked = ps->ntr > 0;
	r->parent = incr ? ps->tr_parent : 0;
	r->parent_kdfs = incr && ps->tr_kdfs;
	ps->busy = true;
	ps->last_start = uv_now(c->s->loop);
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	d.id = e->id;
	d.has_uid = true;
	d.uid = e->uid;
	d.has_ignore_unsupported = d.ignore_unsupported = e->ignore_unsupported;
	char desc[64];
	snprintf(desc, sizeof(desc), "periodic checkpoint of app %u", e->appid);
	d.description = desc;
	struct krg_origin o = { .cb = dumped, .cb_data = r };
	int rc = ckptsvc_dump_local_incr(c, o, &d, (uid_t)e->uid, ps->tr, ps->ntr, r->parent, r->parent_kdfs);
	if (rc < 0)
		dumped(r, rc, rc == -ESRCH ? "the process is gone" : strerror(-rc), NULL, 0);
}

/* ---- an application's end ---- */

struct ended {
	struct krg_periodic *p;
	uint32_t appid;
};

static void removed(int status, const char *msg, void *data)
{
	struct ended *x = data;
	if (status < 0) {
		struct pstate *ps = pstate(x->p, x->appid, false);
		if (ps)
			ps->busy = false;
	} else {
		pstate_drop(x->p, x->appid);
	}
	free(x);
}

static void app_ended(struct krg_periodic *p, struct pstate *ps, const Krg__Ckptsvc__Periodic *e)
{
	struct ended *x = malloc(sizeof(*x));
	if (!x)
		return;
	*x = (struct ended){ .p = p, .appid = e->appid };
	log_info("app %u (running as %u) ended: its periodic checkpoints stop and their images go", e->appid, e->id);
	if (e->on_kdfs)
		ckptsvc_kdfs_prune(p->c, e->image_id, e->appid, 0, KDFS_PRUNE_ALL);
	ps->busy = true;
	if (entry_put(p->c, e->appid, NULL, removed, x) < 0)
		removed(-EIO, NULL, x);
}

/* ---- recovery: restart an application whose node is down ---- */

struct recovery {
	struct krg_periodic *p;
	uint32_t appid, dead, version, image_id;
	uint64_t age_ms;
};

static void recovery_recorded(int status, const char *msg, void *data)
{
	struct recovery *r = data;
	struct pstate *ps = pstate(r->p, r->appid, false);
	if (ps) {
		ps->busy = false;
		if (status == 0)
			ps->recovered_as = 0;
	}
	if (status < 0)
		log_warn("app %u: restarted here, not yet recorded in the cluster state (%s): trying again",
			 r->appid, msg ? msg : strerror(-status));
	free(r);
}

/* The restarted application is the entry's now. */
static void recovery_record(struct krg_periodic *p, struct pstate *ps, const Krg__Ckptsvc__Periodic *e)
{
	struct krg_ckptsvc *c = p->c;
	struct recovery *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	*r = (struct recovery){ .p = p, .appid = e->appid };
	Krg__Ckptsvc__Periodic n = *e;
	uint32_t holders[8];
	size_t nh = 0;
	for (size_t i = 0; i < e->n_holders && nh < 8; i++)
		if (e->holders[i] != e->node)
			holders[nh++] = e->holders[i];
	n.holders = holders;
	n.n_holders = nh;
	n.id = ps->recovered_as;
	n.node = c->self;
	n.has_recoveries = n.has_recovered_from = n.has_recovered_ms = n.has_recovered_age_ms = true;
	n.recoveries = e->recoveries + 1;
	n.recovered_from = ps->recovered_from;
	n.recovered_ms = now_ms();
	n.recovered_age_ms = e->taken_ms && n.recovered_ms > e->taken_ms ? n.recovered_ms - e->taken_ms : 0;
	ps->busy = true;
	int rc = entry_put(c, e->appid, &n, recovery_recorded, r);
	if (rc < 0)
		recovery_recorded(rc, NULL, r);
}

static void restarted(void *data, int status, const char *text, const void *result, size_t len)
{
	struct recovery *r = data;
	struct krg_periodic *p = r->p;
	struct pstate *ps = pstate(p, r->appid, false);
	if (!ps) {
		free(r);
		return;
	}
	ps->busy = false;
	/* The new id is the Result's. */
	uint32_t id = ckptsvc_result_id(status, result, len);
	if (status == 0 && !id)
		text = "no new process id in the restart worker's answer";
	if (status < 0 || !id) {
		log_error("app %u: cannot restart it from checkpoint v%u of %u: %s; it is lost", r->appid, r->version,
			  r->image_id, text);
		ps->restart_failed = true;
		free(r);
		return;
	}
	log_warn("app %u: running again on node %u as %u, resumed from checkpoint v%u taken %.1f s before node %u "
		 "was declared down",
		 r->appid, p->c->self, id, r->version, (double)r->age_ms / 1000, r->dead);
	ps->recovered_as = id;
	ps->recovered_from = r->dead;
	ps->seen_alive = true;
	ps->last_start = uv_now(p->c->s->loop);
	free(r);
	Krg__Ckptsvc__Periodic *e = entry_get(p->c, ps->appid);
	if (e) {
		recovery_record(p, ps, e);
		krg__ckptsvc__periodic__free_unpacked(e, NULL);
	}
}

static void start_recovery(struct krg_periodic *p, struct pstate *ps, const Krg__Ckptsvc__Periodic *e, const char *why)
{
	struct krg_ckptsvc *c = p->c;
	struct recovery *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	uint64_t now = now_ms();
	*r = (struct recovery){ .p = p, .appid = e->appid, .dead = e->node, .version = e->version, .image_id = e->image_id,
				.age_ms = e->taken_ms && now > e->taken_ms ? now - e->taken_ms : 0 };
	log_warn("app %u: %s; restarting it on this node from its checkpoint v%u of %u (%.1f s old, %" PRIu64
		 " bytes)",
		 e->appid, why, e->version, e->image_id, (double)r->age_ms / 1000, e->image_bytes);
	struct work w = { .restart = true, .appid = e->image_id, .version = e->version, .caller = (uid_t)e->uid,
			  .recovery = true, .ran_on = e->node };
	struct krg_origin o = { .cb = restarted, .cb_data = r };
	ps->busy = true;
	/* Its System V queues and semaphore sets first: those that died with
	 * its node come back from the image under their ids, those still in
	 * the cluster (newer than the image) stay as they are. From kdfs in
	 * place (looked up off the loop); else this node's copy. */
	int rc = e->on_kdfs ? ckptsvc_restart_here(c, o, &w, NULL, NULL) : ckptsvc_sysv_restore_then_spawn(c, o, &w);
	if (rc < 0)
		restarted(r, rc, strerror(-rc), NULL, 0);
}

/* Who restarts e: the first holder of its image that is up, else none. */
static bool holds(const Krg__Ckptsvc__Periodic *e, uint32_t node)
{
	for (size_t i = 0; i < e->n_holders; i++)
		if (e->holders[i] == node)
			return true;
	return false;
}

static uint32_t recoverer(struct krg_ckptsvc *c, const Krg__Ckptsvc__Periodic *e)
{
	/* In kdfs: every node can read it; the lowest up one restarts it. */
	for (uint32_t n = 0; e->version && e->on_kdfs && n < KRG_MAX_NODES; n++)
		if (n != e->node && krg_cluster_node_state(c->s->cluster, n) == KRG_NODE_UP)
			return n;
	for (size_t i = 0; e->version && !e->on_kdfs && i < e->n_holders; i++)
		if (e->holders[i] != e->node && krg_cluster_node_state(c->s->cluster, e->holders[i]) == KRG_NODE_UP)
			return e->holders[i];
	return UINT32_MAX;
}

/* The lowest up node says what nobody can do (once). */
static bool lowest_up(struct krg_ckptsvc *c)
{
	for (uint32_t n = 0; n < c->self; n++)
		if (krg_cluster_node_state(c->s->cluster, n) == KRG_NODE_UP)
			return false;
	return true;
}

/* ---- the fence: a node cut off from the majority stops acting ----
 *
 * A node without quorum cannot tell a partition from the majority's
 * death. If the majority lives, its leader declares this node down after
 * failure_timeout_ms of silence and the holders of this node's
 * checkpoints restart its applications (above). So, once this node has
 * missed its quorum for fence_ms (a quarter of the time between losing
 * it, at most election_timeout_ms after the leader's last message, and
 * being declared down), it stops (SIGSTOP) every application that runs
 * here and that another node could restart: a version of it is recorded
 * and held by another node, or in kdfs. Applications no other node could
 * restart run on, as the minority's other processes do: they are the
 * only copy. A node whose own replica says it is down (the majority
 * heard it too late, or one way only) fences at once. While fenced, no
 * checkpoint starts here and nothing here is recovered or ended.
 *
 * When the quorum is back (for election_timeout_ms: a "down" proposed
 * just before the leader heard this node again is applied by then), a
 * read barrier brings this replica up to the leader's; then each stopped
 * application is
 * - killed if the log declared this node down meanwhile, or if its
 *   entry now names another node or id (it was restarted elsewhere),
 *   or is gone after this node was declared down: the copy the cluster
 *   state records wins, since only the majority could record anything;
 *   this copy's work since its last recorded checkpoint is lost;
 * - continued otherwise (SIGCONT to the processes the fence stopped,
 *   not to those already stopped before it): the partition healed before
 *   the majority gave up on this node, so it is still the only copy.
 * Which copy wins and why: docs/reconfiguration.md, "Partitions". */

static uint64_t fence_ms(const struct krg_ckptsvc *c)
{
	uint32_t f = c->s->cfg->failure_timeout_ms, e = c->s->cfg->election_timeout_ms;
	return f > e ? (f - e) / 4 : 0;
}

/* Another node could restart e: a recorded version held elsewhere or in kdfs. */
static bool restartable_elsewhere(const Krg__Ckptsvc__Periodic *e, uint32_t self)
{
	if (!e->version)
		return false;
	if (e->on_kdfs)
		return true;
	for (size_t i = 0; i < e->n_holders; i++)
		if (e->holders[i] != self)
			return true;
	return false;
}

static bool fz_has(const struct fenced *f, pid_t pid)
{
	for (size_t i = 0; i < f->npids; i++)
		if (f->pids[i] == pid)
			return true;
	return false;
}

/* SIGSTOP root and its descendants (again: level-triggered, a dump's
 * SIGCONT or a new child is caught at the next tick). */
static void fence_stop(struct fenced *f, pid_t root)
{
	struct proc_info *ps = NULL;
	size_t n = 0;
	if (procfs_scan(root, &ps, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (ps[i].pid != root && !ps[i].krg)
			continue;
		bool ours = fz_has(f, ps[i].pid);
		if ((ps[i].state == 'T' || ps[i].state == 't') && !ours)
			continue; /* stopped before the fence: it stays so after */
		if (kill(ps[i].pid, SIGSTOP) == 0 && !ours && f->npids < FENCE_PIDS)
			f->pids[f->npids++] = ps[i].pid;
	}
	free(ps);
}

static void fence_engage(struct krg_periodic *p, const struct entries *es, const char *why)
{
	struct krg_ckptsvc *c = p->c;
	if (!p->fenced) {
		p->fenced = true;
		p->self_down = false;
		snprintf(p->fence_why, sizeof(p->fence_why), "%s", why);
	}
	for (size_t i = 0; i < es->n; i++) {
		const Krg__Ckptsvc__Periodic *e = es->v[i];
		uint32_t pid = krg_procid_pid(e->id);
		if (e->node != c->self || krg_procid_home(e->id) != c->self || !pid ||
		    !restartable_elsewhere(e, c->self) || !procfs_is_descendant((pid_t)pid, c->krgd))
			continue;
		struct fenced *f = NULL;
		for (size_t k = 0; k < p->nfz && !f; k++)
			if (p->fz[k].appid == e->appid)
				f = &p->fz[k];
		if (!f) {
			struct fenced *nv = realloc(p->fz, (p->nfz + 1) * sizeof(*nv));
			if (!nv)
				continue;
			p->fz = nv;
			if (!p->nfz)
				log_warn("fence: %s: stopping the applications another node could restart, until the "
					 "cluster is heard again",
					 p->fence_why);
			f = &p->fz[p->nfz++];
			*f = (struct fenced){ .appid = e->appid, .id = e->id };
			log_warn("fence: app %u (%u) stopped: checkpoint v%u of it is held %s", e->appid, e->id,
				 e->version, e->on_kdfs ? "in kdfs" : "by another node");
		}
		fence_stop(f, (pid_t)pid);
	}
}

static void fence_kill(struct fenced *f)
{
	pid_t root = (pid_t)krg_procid_pid(f->id);
	struct proc_info *ps = NULL;
	size_t n = 0;
	if (procfs_scan(root, &ps, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (ps[i].pid == root || ps[i].krg)
				kill(ps[i].pid, SIGKILL);
	free(ps);
	for (size_t i = 0; i < f->npids; i++)
		kill(f->pids[i], SIGKILL);
}

static void fence_lift(struct krg_periodic *p)
{
	struct krg_ckptsvc *c = p->c;
	for (size_t k = 0; k < p->nfz; k++) {
		struct fenced *f = &p->fz[k];
		Krg__Ckptsvc__Periodic *e = entry_get(c, f->appid);
		bool kill_it;
		if (!e)
			kill_it = p->self_down;
		else if (e->node != c->self || e->id != f->id)
			kill_it = true;
		else
			kill_it = p->self_down && restartable_elsewhere(e, c->self);
		if (kill_it) {
			if (e && e->node != c->self)
				log_warn("fence: app %u was restarted on node %u as %u while this node was cut off: this copy "
					 "(%u), stopped since, is killed",
					 f->appid, e->node, e->id, f->id);
			else
				log_warn("fence: app %u: this node was declared down while cut off, so the cluster may run "
					 "it elsewhere: this copy (%u), stopped since, is killed",
					 f->appid, f->id);
			fence_kill(f);
			/* Never restarted here, nor taken for ended, by this node. */
			struct pstate *ps = pstate(p, f->appid, true);
			if (ps) {
				ps->seen_alive = false;
				ps->fence_killed = f->id;
				ps->lost_logged = true;
			}
		} else {
			log_warn("fence: app %u (%u) goes on: it was not restarted elsewhere", f->appid, f->id);
			for (size_t i = 0; i < f->npids; i++)
				kill(f->pids[i], SIGCONT);
		}
		if (e)
			krg__ckptsvc__periodic__free_unpacked(e, NULL);
	}
	free(p->fz);
	p->fz = NULL;
	p->nfz = 0;
	p->fenced = p->self_down = false;
}

static void fence_barrier_done(int status, void *data)
{
	struct krg_periodic *p = data;
	p->healing = false;
	if (!p->c || !p->c->running || !p->fenced)
		return;
	/* Still cut off, or down in a replica now current: stay fenced. */
	if (status < 0 || !krg_cluster_has_quorum(p->c->s->cluster) ||
	    krg_cluster_node_state(p->c->s->cluster, p->c->self) == KRG_NODE_DOWN)
		return;
	if (p->nfz)
		log_warn("fence: the cluster is heard again (this node was %sdeclared down meanwhile)",
			 p->self_down ? "" : "not ");
	fence_lift(p);
}

/* Each tick, before the entries are looked at; true: fenced (leave them be). */
static bool fence_tick(struct krg_periodic *p, const struct entries *es, bool quorum)
{
	struct krg_ckptsvc *c = p->c;
	uint64_t now = uv_now(c->s->loop);
	bool down_here = krg_cluster_node_state(c->s->cluster, c->self) == KRG_NODE_DOWN;
	if (down_here && p->fenced)
		p->self_down = true;
	if (quorum)
		p->had_quorum = true;
	if ((!quorum || down_here) && p->had_quorum) {
		if (!p->noquorum_since)
			p->noquorum_since = now ? now : 1;
		char why[96];
		if (down_here) {
			snprintf(why, sizeof(why), "this node's replica says it is down");
			fence_engage(p, es, why);
			p->self_down = true;
		} else if (now - p->noquorum_since >= fence_ms(c)) {
			snprintf(why, sizeof(why), "no quorum for %" PRIu64 " ms", now - p->noquorum_since);
			fence_engage(p, es, why);
		}
		return p->fenced;
	}
	if (p->noquorum_since || !p->quorum_since)
		p->quorum_since = now;
	p->noquorum_since = 0;
	/* Lifted once the quorum held for election_timeout_ms: a "down" the
	 * leader proposed just before it heard this node again is applied by
	 * then, and the barrier's answer includes it. */
	if (p->fenced && !p->healing && now - p->quorum_since >= c->s->cfg->election_timeout_ms) {
		p->healing = true;
		if (krg_cluster_sm_barrier(c->s->cluster, fence_barrier_done, p) < 0)
			p->healing = false;
	}
	return p->fenced;
}

void periodic_node_down(struct krg_ckptsvc *c, uint32_t node)
{
	struct krg_periodic *p = c->periodic;
	if (p && p->fenced && node == c->self)
		p->self_down = true;
}

/* ---- the tick ---- */

static void one(struct krg_periodic *p, const Krg__Ckptsvc__Periodic *e, bool quorum)
{
	struct krg_ckptsvc *c = p->c;
	struct pstate *ps = pstate(p, e->appid, true);
	if (!ps || ps->busy)
		return;
	if (ps->recovered_as) {
		/* Restarted here; the record did not make it: again (never a
		 * second restart). */
		if (quorum && e->node != c->self)
			recovery_record(p, ps, e);
		else if (e->node == c->self)
			ps->recovered_as = 0;
		return;
	}
	if (e->node == c->self) {
		uint32_t pid = krg_procid_pid(e->id);
		bool alive = krg_procid_home(e->id) == c->self && pid && procfs_is_descendant((pid_t)pid, c->krgd);
		if (alive) {
			ps->seen_alive = true;
			/* Without quorum nothing could be recorded (and the fence may
			 * stop it in the middle). */
			if (quorum && (!ps->last_start || uv_now(c->s->loop) - ps->last_start >= e->every_ms))
				start_dump(p, ps, e);
		} else if (quorum && ps->seen_alive) {
			app_ended(p, ps, e);
		} else if (quorum && !ps->restart_failed && e->id != ps->fence_killed && e->version &&
			   (e->on_kdfs || holds(e, c->self))) {
			/* Not seen by this krgd: it died with the krgd before this
			 * one (killed and started again faster than the leader
			 * declares a node down). */
			start_recovery(p, ps, e, "its process died with this node's previous krgd");
		} else if (quorum && !ps->lost_logged) {
			log_warn("app %u (%u) is not running on this node and no checkpoint of it is here", e->appid, e->id);
			ps->lost_logged = true;
		}
		return;
	}
	if (!quorum || krg_cluster_node_state(c->s->cluster, e->node) != KRG_NODE_DOWN)
		return;
	uint32_t who = recoverer(c, e);
	if (who == c->self && !ps->restart_failed) {
		char why[64];
		snprintf(why, sizeof(why), "node %u, where it ran, is down", e->node);
		start_recovery(p, ps, e, why);
	} else if (who == UINT32_MAX && !ps->lost_logged && lowest_up(c)) {
		log_error("app %u: node %u, where it ran, is down and %s: it cannot be restarted", e->appid, e->node,
			  e->version ? "no node holding its checkpoint is up" : "it had no checkpoint yet");
		ps->lost_logged = true;
	}
}

static void tick(uv_timer_t *t)
{
	struct krg_periodic *p = t->data;
	struct krg_ckptsvc *c = p->c;
	if (!c->running || !c->s->cluster)
		return;
	bool quorum = krg_cluster_has_quorum(c->s->cluster);
	struct entries es = entries_read(c);
	bool fenced = fence_tick(p, &es, quorum);
	for (size_t i = 0; i < es.n && !fenced; i++)
		one(p, es.v[i], quorum);
	/* Forget entries that are gone (stopped elsewhere) and are not in flight here. */
	for (size_t i = 0; i < p->n;) {
		bool found = false;
		for (size_t k = 0; k < es.n && !found; k++)
			found = es.v[k]->appid == p->st[i].appid;
		if (!found && !p->st[i].busy) {
			track_reset(&p->st[i]);
			p->st[i] = p->st[--p->n];
		}
		else
			i++;
	}
	entries_free(&es);
	uint64_t now = uv_now(c->s->loop);
	if (now - p->last_prune >= PRUNE_MS) {
		p->last_prune = now;
		prune(c);
	}
}

/* ---- krg checkpoint --every ---- */

struct setreq {
	struct krg_ckptsvc *c;
	struct krg_origin o;
	char text[200];
	uint32_t prune_image, prune_app, prune_upto; /* stopped: its kdfs versions */
};

static void set_done(int status, const char *msg, void *data)
{
	struct setreq *s = data;
	if (status == 0 && s->prune_image)
		ckptsvc_kdfs_prune(s->c, s->prune_image, s->prune_app, 0, s->prune_upto);
	if (status < 0)
		ckptsvc_answer(s->c, s->o, status, msg && *msg ? msg : strerror(-status), 0);
	else
		ckptsvc_answer(s->c, s->o, 0, s->text, 0);
	free(s);
}

void periodic_set(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uint32_t id, uid_t uid)
{
	char err[200], every[32];
	if (!c->s->cluster || !krg_cluster_has_quorum(c->s->cluster)) {
		ckptsvc_answer(c, o, -EAGAIN, "no quorum: periodic checkpoints are kept in the cluster state", 0);
		return;
	}
	if (d->every_ms && d->every_ms < MIN_EVERY_MS) {
		krg_duration_format(d->every_ms, every, sizeof(every));
		snprintf(err, sizeof(err), "a checkpoint every %s is too often (at least every 1 s)", every);
		ckptsvc_answer(c, o, -EINVAL, err, 0);
		return;
	}
	/* The entry of this application, under the id it started as. */
	struct entries es = entries_read(c);
	Krg__Ckptsvc__Periodic *old = NULL;
	for (size_t i = 0; i < es.n && !old; i++)
		if (es.v[i]->id == id)
			old = es.v[i];
	struct setreq *s = calloc(1, sizeof(*s));
	if (!s) {
		entries_free(&es);
		ckptsvc_answer(c, o, -ENOMEM, "out of memory", 0);
		return;
	}
	s->c = c;
	s->o = o;
	int r;
	if (!d->every_ms) {
		if (!old) {
			free(s);
			snprintf(err, sizeof(err), "app %u has no periodic checkpoints", id);
			ckptsvc_answer(c, o, -ENOENT, err, 0);
			entries_free(&es);
			return;
		}
		snprintf(s->text, sizeof(s->text), "app %u: periodic checkpoints stopped", old->appid);
		log_info("app %u: periodic checkpoints stopped by uid %u", old->appid, (unsigned)uid);
		/* Its kdfs versions go once the entry is (the node's store's
		 * go with the next pruning, which finds no entry for them); a
		 * dump still under way removes its own as it finds the entry
		 * gone (record). */
		if (old->on_kdfs && old->image_id)
			s->prune_image = old->image_id, s->prune_app = old->appid, s->prune_upto = old->version;
		r = entry_put(c, old->appid, NULL, set_done, s);
	} else {
		Krg__Ckptsvc__Periodic n = KRG__CKPTSVC__PERIODIC__INIT;
		if (old)
			n = *old;
		else {
			n.appid = id;
			n.id = id;
			n.node = c->self;
			n.uid = (uint32_t)uid;
		}
		n.every_ms = d->every_ms;
		n.has_ignore_unsupported = n.ignore_unsupported = d->ignore_unsupported;
		krg_duration_format(d->every_ms, every, sizeof(every));
		snprintf(s->text, sizeof(s->text), "app %u: a checkpoint every %s, %s", n.appid, every,
			 ckptsvc_kdfs_on(c) ? "into kdfs (a second node's store while kdfs is not mounted)"
					    : "copied to a second node");
		log_info("app %u: a checkpoint every %s (uid %u)", n.appid, every, (unsigned)uid);
		r = entry_put(c, n.appid, &n, set_done, s);
	}
	entries_free(&es);
	if (r < 0)
		set_done(r, NULL, s);
}

/* ---- API ckpt.every.list ---- */

static void on_list(struct krg_api_call *call, void *data)
{
	struct krg_ckptsvc *c = data;
	if (!c->running || !c->s->cluster) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return;
	}
	struct entries es = entries_read(c);
	Krg__Ckptsvc__PeriodicList l = KRG__CKPTSVC__PERIODIC_LIST__INIT;
	l.apps = calloc(es.n ? es.n : 1, sizeof(*l.apps));
	if (!l.apps) {
		entries_free(&es);
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
		return;
	}
	for (size_t i = 0; i < es.n; i++)
		if (call->uid == 0 || es.v[i]->uid == (uint32_t)call->uid)
			l.apps[l.n_apps++] = es.v[i];
	size_t len = krg__ckptsvc__periodic_list__get_packed_size(&l);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf) {
		krg__ckptsvc__periodic_list__pack(&l, buf);
		krg_api_reply(call, 0, NULL, buf, len);
	} else {
		krg_api_reply(call, -ENOMEM, "out of memory", NULL, 0);
	}
	free(buf);
	free(l.apps);
	entries_free(&es);
}

/* ---- service ---- */

static struct krg_periodic the_periodic;

int periodic_start(struct krg_ckptsvc *c)
{
	static bool registered;
	struct krg_periodic *p = &the_periodic;
	memset(p, 0, sizeof(*p));
	p->c = c;
	if (!registered) {
		int r = krg_api_register(c->s->api, "ckpt.every.list", false, on_list, c);
		if (r < 0)
			return r;
		registered = true;
	}
	uv_timer_init(c->s->loop, &p->timer);
	p->timer.data = p;
	uv_timer_start(&p->timer, tick, TICK_MS, TICK_MS);
	c->periodic = p;
	return 0;
}

void periodic_stop(struct krg_ckptsvc *c)
{
	if (!c->periodic)
		return;
	uv_timer_stop(&c->periodic->timer);
	uv_close((uv_handle_t *)&c->periodic->timer, NULL);
	/* A krgd that stops leaves fenced applications stopped: the cluster
	 * may run them elsewhere. */
	free(c->periodic->fz);
	c->periodic->fz = NULL;
	c->periodic->nfz = 0;
	c->periodic = NULL;
}
