/* ckpt_rx.c — the target's side of a restart on another node
 * (ckpt_service.c streams a version directory there): net "ckpt.recv"
 * opens a transfer, bulk "ckpt.file" pieces fill it, and the last piece
 * starts the restore with the node's worker. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckpt/store.h"
#include "lib/fault.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "net/net.h"
#include "proc/ckpt/ckpt_msg.h"
#include "proc/ckpt/ckptsvc-int.h"
#include "proc/xfer.h"
#include "proto/ckptsvc.pb-c.h"

#define XFER_IDLE_MS (60u * 1000) /* drop a transfer silent that long */

/* On the target. The version is received where nobody looks for one,
 * STORE/.tmp/<appid>.rx<xfer>.<krgd's pid> (root's, 0700), and renamed to
 * STORE/<appid>/v<n> once its last piece is written, as the local store
 * does: a krgd killed mid-transfer leaves no partial version in the
 * user's directory, and the next krgd removes the temporary one at start
 * (krg_ckpt_store_clean: its writer's pid is gone). */
struct rx {
	struct krg_xfer_rx x;  /* first: from, xfer, total, ended, failed, has_req, req_id */
	struct krg_ckptsvc *c;
	uint32_t appid, version;
	uid_t caller;
	uid_t owner_uid;
	gid_t owner_gid;
	bool created_app, started, copy_only, new_pidns, periodic, sysv_keep;
	bool placed;     /* renamed from dir into final; dir then names it */
	char dir[600];   /* where the pieces go: the temporary directory, then final */
	char final[600]; /* STORE/<appid>/v<version> */
	char err[700];
};

static void rx_idle(struct krg_xfer_rx *b);

static void rx_closed(struct krg_xfer_rx *b)
{
	free(b);
}

static struct krg_xfer_rxset rxs = { .idle_ms = XFER_IDLE_MS, .idle = rx_idle, .closed = rx_closed };

static void rx_remove_dir(struct rx *x)
{
	if (x->dir[0])
		krg_rm_tree(AT_FDCWD, x->dir, NULL);
	if (x->created_app) {
		char app[600];
		snprintf(app, sizeof(app), "%s/%u", krg_ckpt_store(), x->appid);
		rmdir(app);
	}
}

static void rx_free(struct rx *x)
{
	krg_xfer_rx_drop(&x->x);
}

static void rx_answer_fail(struct rx *x)
{
	if (x->x.has_req) {
		struct krg_origin o = { .from = x->x.from, .req_id = x->x.req_id };
		ckptsvc_answer(x->c, o, -EIO, x->err, 0);
		x->x.has_req = false;
	}
}

static void rx_fail(struct rx *x, const char *fmt, const char *what)
{
	if (x->x.failed)
		return;
	x->x.failed = true;
	snprintf(x->err, sizeof(x->err), fmt, what);
	log_warn("ckpt: receiving app %u v%u from node %u: %s", x->appid, x->version, x->x.from, x->err);
	rx_remove_dir(x);
	rx_answer_fail(x);
}

static void rx_idle(struct krg_xfer_rx *b)
{
	struct rx *x = (struct rx *)b;
	if (!x->x.failed)
		rx_fail(x, "%s", "the transfer stalled");
	rx_free(x);
}

/* Every piece written: the version appears, whole, under its name. */
static int rx_place(struct rx *x)
{
	char app[600];
	snprintf(app, sizeof(app), "%s/%u", krg_ckpt_store(), x->appid);
	if (mkdir(app, 0700) == 0) {
		x->created_app = true;
		if (chown(app, x->owner_uid, x->owner_gid) < 0) {
			rx_fail(x, "cannot chown %s", app);
			return -1;
		}
	} else if (errno != EEXIST) {
		rx_fail(x, "cannot create %s", app);
		return -1;
	}
	if (renameat2(AT_FDCWD, x->dir, AT_FDCWD, x->final, RENAME_NOREPLACE) < 0) {
		int e = errno;
		char what[700];
		snprintf(what, sizeof(what), "%s: %s", x->final, strerror(e));
		rx_fail(x, "cannot put the version in place, %s", what);
		return -1;
	}
	x->placed = true;
	snprintf(x->dir, sizeof(x->dir), "%s", x->final);
	return 0;
}


static void rx_try_start(struct rx *x)
{
	if (x->x.failed || !x->x.ended || !x->x.has_req || x->started)
		return;
	if (!x->placed && rx_place(x) < 0)
		return;
	x->started = true;
	struct krg_origin o = { .from = x->x.from, .req_id = x->x.req_id };
	struct work w = { .restart = true, .appid = x->appid, .version = x->version, .caller = x->caller, .new_pidns = x->new_pidns,
			  .sysv_keep = x->sysv_keep };
	log_info("ckpt: received %s (%llu bytes) from node %u", x->dir, (unsigned long long)x->x.total, x->x.from);
	krg_metrics_restart_rx(x->x.total);
	if (x->copy_only) {
		if (x->periodic)
			periodic_index_add(x->appid, x->version);
		ckptsvc_answer(x->c, o, 0, x->dir, 0);
		rx_free(x);
		return;
	}
	int r = ckptsvc_sysv_restore_then_spawn(x->c, o, &w);
	if (r < 0) {
		snprintf(x->err, sizeof(x->err), "cannot start the restart worker: %s", strerror(-r));
		x->started = false;
		x->x.failed = true;
		rx_remove_dir(x);
		rx_answer_fail(x);
	}
	rx_free(x);
}

static struct rx *rx_get(struct krg_ckptsvc *c, uint32_t from, uint64_t xfer, uint32_t appid, uint32_t version,
			 uid_t owner_uid, gid_t owner_gid)
{
	struct krg_xfer_rx *b = krg_xfer_rx_find(&rxs, from, xfer);
	if (b)
		return (struct rx *)b;
	struct rx *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->c = c;
	x->appid = appid;
	x->version = version;
	x->owner_uid = owner_uid;
	x->owner_gid = owner_gid;
	rxs.loop = c->s->loop;
	krg_xfer_rx_add(&rxs, &x->x, from, xfer);
	const char *store = krg_ckpt_store();
	char tmp[600];
	snprintf(x->final, sizeof(x->final), "%s/%u/v%u", store, appid, version);
	snprintf(tmp, sizeof(tmp), "%s/%s", store, KRG_CKPT_STORE_TMP);
	if (xfer >> 32 != from || version == 0 || appid == 0) {
		x->x.failed = true;
		snprintf(x->err, sizeof(x->err), "malformed transfer from node %u", from);
	} else if (mkdir(store, 0755) < 0 && errno != EEXIST) {
		rx_fail(x, "cannot create the store %s", store);
	} else if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
		rx_fail(x, "cannot create %s", tmp);
	} else if (access(x->final, F_OK) == 0) {
		/* Refused now rather than after the whole copy. */
		x->x.failed = true;
		snprintf(x->err, sizeof(x->err), "cannot create %s on node %u: %s", x->final, c->self, strerror(EEXIST));
	} else {
		/* The pid last: krg_ckpt_store_clean reads it there. */
		snprintf(x->dir, sizeof(x->dir), "%s/%u.rx%" PRIx64 ".%d", tmp, appid, xfer, (int)getpid());
		if (mkdir(x->dir, 0700) < 0) {
			int e = errno;
			snprintf(x->err, sizeof(x->err), "cannot create %s on node %u: %s", x->dir, c->self, strerror(e));
			x->x.failed = true;
			x->dir[0] = 0;
		} else if (chown(x->dir, owner_uid, owner_gid) < 0) {
			rx_fail(x, "cannot chown %s", x->dir);
		}
	}
	return x;
}

/* Fault injection for the tests (tests/ckpt/leftovers.sh): while the file
 * that fault point ckpt-hold-recv names exists (at most a minute), the target of a
 * transfer holds it once a piece is written (the whole event loop waits:
 * a krgd killed there leaves a version received in part). */
static void test_hold_recv(void)
{
	char buf[512];
	const char *flag = krg_fault_value("ckpt-hold-recv", buf, sizeof(buf));
	if (!flag || !flag[0])
		return;
	for (int i = 0; i < 6000 && access(flag, F_OK) == 0; i++)
		usleep(10000);
}

void ckptsvc_on_file(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_ckptsvc *c = &the_svc;
	if (!c->running)
		return;
	Krg__Ckptsvc__File *f = krg__ckptsvc__file__unpack(NULL, msg->len, msg->body);
	if (!f) {
		log_warn("node %u: malformed ckpt.file, dropped", from);
		return;
	}
	struct rx *x = rx_get(c, from, f->xfer, f->appid, f->version, f->owner_uid, f->owner_gid);
	if (!x || x->x.failed || x->x.ended)
		goto out;
	krg_xfer_rx_touch(&x->x);
	if (!ckpt_file_valid(f)) {
		rx_fail(x, "refused piece of '%s' (bad name, size or offset)", f->name);
		goto out;
	}
	int r = krg_xfer_rx_write(&x->x, x->dir, f->name, f->offset, f->data.data, f->data.len, false, x->owner_uid,
				  x->owner_gid, CKPT_XFER_MAX);
	if (r == -EFBIG) {
		rx_fail(x, "%s: image too big", x->final);
		goto out;
	}
	if (r < 0) {
		char path[1300];
		snprintf(path, sizeof(path), "%s/%s", x->dir, f->name);
		rx_fail(x, "cannot write %s", path);
		goto out;
	}
	test_hold_recv();
	if (f->has_end && f->end) {
		x->x.ended = true;
		rx_try_start(x);
	}
out:
	krg__ckptsvc__file__free_unpacked(f, NULL);
}

void ckptsvc_on_recv(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_ckptsvc *c = &the_svc;
	if (!krg_net_request_open(net, from, req_id, !c->running))
		return;
	Krg__Ckptsvc__Recv *m = krg__ckptsvc__recv__unpack(NULL, msg->len, msg->body);
	if (!m) {
		krg_net_reply(net, from, req_id, -EBADMSG, NULL, 0);
		return;
	}
	struct rx *x = rx_get(c, from, m->xfer, m->appid, m->version, m->owner_uid, m->owner_gid);
	if (!x) {
		krg_net_reply(net, from, req_id, -ENOMEM, NULL, 0);
	} else {
		x->caller = (uid_t)m->uid;
		x->copy_only = m->copy_only;
		x->new_pidns = m->new_pidns;
		x->sysv_keep = m->sysv_keep;
		x->periodic = m->periodic;
		x->x.has_req = true;
		x->x.req_id = req_id;
		if (x->x.failed)
			rx_answer_fail(x);
		else
			rx_try_start(x);
	}
	krg__ckptsvc__recv__free_unpacked(m, NULL);
}

void ckptsvc_rx_stop(void)
{
	while (rxs.head) {
		struct rx *x = (struct rx *)rxs.head;
		if (!x->x.failed)
			rx_fail(x, "%s", "krgd is stopping");
		rx_free(x);
	}
}
