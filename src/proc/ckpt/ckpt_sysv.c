/* ckpt_sysv.c — the System V queues and semaphore sets of a checkpointed
 * application (docs/ipc.md, "With checkpoint and migration"): at a dump,
 * the nodes are asked which objects the application's processes created
 * (one parallel query with a deadline) and those go into the image as
 * sysvipc.img; at a restart they are recreated under their ids before the
 * processes, or the restart is refused in one line naming the object in
 * the way. Split from ckpt_service.c, which starts the workers. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "api/server.h"
#include "lib/fault.h"
#include "cluster/cluster.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/metrics.h"
#include "net/net.h"
#include "ckpt/store.h"
#include "fsview/fsview.h"
#include "proc/ckptsvc.h"
#include "ipc/intercept.h"
#include "ipc/intercept_svc.h"
#include "ipc/ipc_service.h"
#include "proc/table.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "lib/procfs.h"
#include "proc/ckpt/ckpt_msg.h"
#include "proc/ckpt/ckptsvc-int.h"
#include "proc/xfer.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/ipc.pb-c.h"
#include "ckpt/ckpt.h"

/* ---- System V objects of the application (docs/ipc.md) ---- */

/* The cluster's queues and semaphore sets the application created are
 * saved with its image (sysvipc.img) and come back at its restart under
 * their ids (--ignore-unsupported: not asked for, not saved). */

/* How long the nodes have to answer (each answers at once; KDDM alone
 * would retry a node that says it is not ready for ~40 s). */
#define IPC_CHECK_DEADLINE_MS 10000

struct ipc_check {
	struct krg_ckptsvc *c;
	struct krg_origin o;
	struct work w;
	char *description;  /* owned copy of w.opts.description */
	uint32_t id;
};

static void ipc_checked(void *data, const struct krg_ipc_created *res)
{
	struct ipc_check *k = data;
	if (res && res->status < 0) {
		char e[400];
		if (res->status == -ETIMEDOUT)
			snprintf(e, sizeof(e),
				 "node %u did not say within %u s which System V queues and semaphore sets the application "
				 "created: checkpoint not made (--ignore-unsupported checkpoints without asking)",
				 res->node, IPC_CHECK_DEADLINE_MS / 1000);
		else
			snprintf(e, sizeof(e),
				 "node %u could not say which System V queues and semaphore sets the application created "
				 "(%s): checkpoint not made (--ignore-unsupported checkpoints without asking)",
				 res->node, strerror(-res->status));
		log_info("ckpt.dump %u: refused, %s", k->id, e);
		ckptsvc_answer(k->c, k->o, res->status == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH, e, k->id);
	} else if (res && res->n) {
		/* Saved with the image (sysvipc.img), each as its home
		 * exported it; the worker is a fork of this krgd: it has the
		 * bytes. */
		Krg__Ipc__Saved sv = KRG__IPC__SAVED__INIT;
		ProtobufCBinaryData *bd = calloc(res->n, sizeof(*bd));
		size_t len = 0;
		uint8_t *buf = NULL;
		if (bd) {
			for (size_t i = 0; i < res->n; i++)
				bd[i].data = res->objs[i], bd[i].len = res->lens[i];
			sv.n_objects = res->n;
			sv.objects = bd;
			len = krg__ipc__saved__get_packed_size(&sv);
			if ((buf = malloc(len ? len : 1)))
				krg__ipc__saved__pack(&sv, buf);
		}
		free(bd);
		int r = buf ? 0 : -ENOMEM;
		if (buf) {
			k->w.opts.sysv = buf;
			k->w.opts.sysv_len = len;
			log_info("ckpt.dump %u: %zu System V object%s of the application saved with the image", k->id, res->n,
				 res->n == 1 ? "" : "s");
			r = ckptsvc_spawn(k->c, k->o, &k->w);
			free(buf);
		}
		if (r < 0) {
			char err[256];
			ckptsvc_answer(k->c, k->o, r, ckptsvc_why(r, err, sizeof(err), k->id), k->id);
		}
	} else {
		int r = ckptsvc_spawn(k->c, k->o, &k->w);
		if (r < 0) {
			char err[256];
			ckptsvc_answer(k->c, k->o, r, ckptsvc_why(r, err, sizeof(err), k->id), k->id);
		}
	}
	if (k->w.opts.has_root_pidfd)
		close(k->w.opts.root_pidfd);
	free(k->description);
	free(k);
}

/* The cluster process ids of root and its descendants here, as the IPC
 * interception names its callers (ipc_glue.c: a migrant's is its home's). */
static size_t app_procs(struct krg_ckptsvc *c, pid_t root, uint64_t **out)
{
	size_t n = 0, cap = 64;
	uint64_t *v = malloc(cap * sizeof(*v));
	DIR *dir = opendir("/proc");
	struct dirent *e;
	while (v && dir && (e = readdir(dir))) {
		char *end;
		long p = strtol(e->d_name, &end, 10);
		if (*end || p <= 0 || (p != root && !procfs_is_descendant((pid_t)p, root)))
			continue;
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		uint32_t hid, home;
		v[n++] = krg_proc_table_kind(c->s->table, (pid_t)p, &hid, &home) == KRG_PROC_MIGRANT ? hid : krg_procid_make(c->self, (uint32_t)p);
	}
	if (dir)
		closedir(dir);
	*out = v;
	return v ? n : 0;
}

int ckptsvc_sysv_check_then_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w, uint32_t id)
{
	struct ipc_check *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->c = c;
	k->o = o;
	k->w = *w;
	k->id = id;
	if (w->opts.description && !(k->description = strdup(w->opts.description))) {
		free(k);
		return -ENOMEM;
	}
	k->w.opts.description = k->description;
	/* The caller's pidfd is closed when dump_local returns: keep a copy. */
	if (w->opts.has_root_pidfd && (k->w.opts.root_pidfd = fcntl(w->opts.root_pidfd, F_DUPFD_CLOEXEC, 3)) < 0) {
		int r = -errno;
		free(k->description);
		free(k);
		return r;
	}
	uint64_t *procs;
	size_t n = app_procs(c, w->pid, &procs);
	int r = krg_ipc_service_created_by(c->s->ipc, procs, n, IPC_CHECK_DEADLINE_MS, ipc_checked, k);
	free(procs);
	if (r < 0) {
		/* No answer to be had: the image is made without asking. */
		log_warn("ckpt.dump %u: cannot ask for the application's System V objects: %s", id, strerror(-r));
		ipc_checked(k, NULL);
	}
	return 0;
}

/* ---- a restart's System V objects (sysvipc.img) ---- */

struct ipc_restore {
	struct krg_ckptsvc *c;
	struct krg_origin o;
	struct work w;
};

static void ipc_restored(void *data, int status, const struct krg_ipc_obj_info *obj)
{
	struct ipc_restore *k = data;
	if (status < 0) {
		char e[400];
		const char *what = obj && obj->kind == KRG_IPC_SEM ? "semaphore set" : "message queue";
		uint32_t key = obj ? (uint32_t)obj->key : 0;
		int32_t id = obj ? obj->id : -1;
		switch (status) {
		case -EEXIST:
			snprintf(e, sizeof(e), "the image's System V %s id %d (key 0x%08x) is taken by another object: remove it first (krg ipcrm)",
				 what, id, key);
			break;
		case -EADDRINUSE:
			snprintf(e, sizeof(e), "the image's System V %s key 0x%08x (id %d) names another object now: remove it first (krg ipcrm)",
				 what, key, id);
			break;
		case -EPERM:
			snprintf(e, sizeof(e), "the image's System V %s id %d is not the image owner's", what, id);
			break;
		default:
			snprintf(e, sizeof(e), "the image's System V %s id %d (key 0x%08x) cannot be recreated: %s", what, id, key,
				 strerror(-status));
		}
		log_info("ckpt.restart %u: refused, %s", k->w.appid, e);
		ckptsvc_answer(k->c, k->o, status == -EADDRINUSE ? -EEXIST : status, e, k->w.appid);
	} else if (k->w.sysv_only) {
		ckptsvc_answer(k->c, k->o, 0, "", k->w.appid);
	} else {
		int r = ckptsvc_spawn(k->c, k->o, &k->w);
		if (r < 0)
			ckptsvc_answer(k->c, k->o, r, strerror(-r), k->w.appid);
	}
	free(k);
}

/* A recovery: the SEM_UNDO records its processes left in the cluster's
 * sets under their dead node's ids go by their ids here (same pids), so
 * their exits here apply them. */
static void undo_follow(struct krg_ckptsvc *c, const struct work *w, const char *path)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int r = ckpt_image_pids(path, &pids, &n);
	uint64_t *pairs = r == 0 ? malloc((2 * n + 1) * sizeof(*pairs)) : NULL;
	for (size_t i = 0; pairs && i < n; i++) {
		pairs[2 * i] = krg_procid_make(w->ran_on, (uint32_t)pids[i]);
		pairs[2 * i + 1] = krg_procid_make(c->self, (uint32_t)pids[i]);
	}
	if (pairs)
		r = krg_ipc_service_undo_rename(c->s->ipc, pairs, n);
	if (r < 0)
		log_warn("app %u: its SEM_UNDO records stay under node %u's process ids: %s", w->appid, w->ran_on,
			 strerror(-r));
	free(pairs);
	free(pids);
}

/* The image's queues and semaphore sets first (same ids, or a one-line
 * refusal naming the one in the way), then the processes. */
int ckptsvc_sysv_restore_then_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w)
{
	char path[512];
	int r = krg_ckpt_store_find(w->appid, w->version, w->caller, path, sizeof(path));
	if (r == 0 && w->recovery && c->s->ipc && w->ran_on != c->self)
		undo_follow(c, w, path);
	if (w->sysv_only && r < 0) {
		ckptsvc_answer(c, o, r, path, w->appid);
		return 0;
	}
	if (!c->s->ipc || r < 0)
		return w->sysv_only ? -ENOTSUP : ckptsvc_spawn(c, o, w); /* the worker says why it cannot find it */
	uint8_t *saved = NULL;
	size_t len = 0, n = 0;
	struct ckpt_error err = { 0 };
	r = ckpt_sysv_read(path, &saved, &len, &n, &err);
	if (r == -ENOENT && w->sysv_only) {
		ckptsvc_answer(c, o, 0, "", w->appid);
		return 0;
	}
	if (r == -ENOENT)
		return ckptsvc_spawn(c, o, w);
	if (r < 0) {
		ckptsvc_answer(c, o, r, err.msg, w->appid);
		return 0;
	}
	return ckptsvc_sysv_restore_saved(c, o, w, saved, len, n);
}

int ckptsvc_sysv_restore_saved(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w, uint8_t *saved,
			       size_t len, size_t n)
{
	struct ipc_restore *k = calloc(1, sizeof(*k));
	if (!k) {
		free(saved);
		return -ENOMEM;
	}
	k->c = c;
	k->o = o;
	k->w = *w;
	log_info("ckpt.restart %u: recreating %zu System V object%s", w->appid, n, n == 1 ? "" : "s");
	int r = krg_ipc_service_restore(c->s->ipc, saved, len, w->caller, c->self,
					w->recovery || w->sysv_keep ? KRG_IPC_RESTORE_KEEP : 0, ipc_restored, k);
	free(saved);
	if (r < 0) {
		free(k);
		return r;
	}
	return 0;
}

