/* ipc_glue.c — krgd's wiring of the IPC interception (ipc/intercept_svc.h):
 * which backend serves the intercepted calls, and how a local process
 * gets its cluster-wide id. One place to change when the backend does. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include "ckpt/ckpt.h"
#include "dsm/dsm_svc.h"
#include "ipc/intercept_svc.h"
#include "ipc/ipc_service.h"
#include "krgd/ipc_glue.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/service.h"
#include "proc/migrate.h"
#include "proc/table.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"

/* A migrant keeps the id of its home; anything else is this node's. */
static uint64_t proc_id(void *data, pid_t tgid)
{
	struct krg_ipc_glue *g = data;
	uint32_t id, home;
	if (krg_proc_table_kind(g->table, tgid, &id, &home) == KRG_PROC_MIGRANT)
		return id;
	return krg_procid_make(g->self, (uint32_t)tgid);
}

static bool moved_on(void *data, pid_t tgid)
{
	return krg_mig_moved_on(tgid);
}

/* ---- the cluster's IPC service (ipc_service.h): its entry points are
 * the backend's, one for one ---- */

static int c_submit(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req, uint64_t token,
		    krg_intercept_done_fn done, void *cookie)
{
	struct krg_ipc_glue *g = ctx;
	return krg_ipc_service_submit(g->svc, who, req, token, done, cookie);
}

static void c_cancel(void *ctx, uint64_t token)
{
	struct krg_ipc_glue *g = ctx;
	/* -EALREADY cannot be: the listener cancels only calls not done. */
	krg_ipc_service_cancel(g->svc, token);
}

static void c_undeliverable(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req,
			    const struct krg_ipc_reply *reply)
{
	struct krg_ipc_glue *g = ctx;
	krg_ipc_service_undeliverable(g->svc, who, req, reply);
}

static void c_process_exit(void *ctx, uint64_t proc_id, int32_t pid)
{
	struct krg_ipc_glue *g = ctx;
	krg_ipc_service_process_exit(g->svc, proc_id, pid);
}

static const struct krg_intercept_backend cluster_backend = {
	.version = KRG_INTERCEPT_BACKEND_V1,
	.name = "cluster IPC service",
	.submit = c_submit,
	.cancel = c_cancel,
	.undeliverable = c_undeliverable,
	.process_exit = c_process_exit,
	.proc_id = proc_id,
	.moved_on = moved_on,
};

/* shmat: the caller maps the node's object of the segment (docs/dsm.md,
 * "shmat through krgd"); with uffd, registered with a userfaultfd of its
 * own before it runs again. */
static int map_answer(void *ctx, pid_t pid, pid_t tid, int fd, int devfd, uint64_t addr, uint64_t size, int prot,
		      int flags, uint64_t *mapped, int *uffd)
{
	(void)ctx;
	struct ckpt_error err = { 0 };
	int r = ckpt_map_answer(pid, tid, fd < 0 ? SYS_shmdt : SYS_shmat, fd, devfd, addr, size, prot, flags, mapped, uffd,
				&err);
	if (r < 0 && r != -EAGAIN)
		log_warn("ipc: %s of process %d: %s", fd < 0 ? "shmdt" : "shmat", pid, err.msg);
	return r;
}

/* ---- System V segments on the DSM (dsm/dsm_svc.h) ---- */

static uint64_t npages_of(uint64_t size)
{
	return (size + DSM_PAGE_SIZE - 1) / DSM_PAGE_SIZE;
}

static int d_segment(void *ctx, uint64_t seg, uint64_t size, int *memfd)
{
	struct krg_ipc_glue *g = ctx;
	return krg_dsm_segment(g->dsm, seg, npages_of(size), memfd);
}

static bool d_room(void *ctx, uint64_t seg)
{
	struct krg_ipc_glue *g = ctx;
	return krg_dsm_room(g->dsm, seg);
}

static int d_attach(void *ctx, uint64_t seg, int uffd, uint64_t base)
{
	struct krg_ipc_glue *g = ctx;
	return krg_dsm_attach(g->dsm, seg, uffd, base);
}

static void d_detach(void *ctx, uint64_t seg, int view)
{
	struct krg_ipc_glue *g = ctx;
	krg_dsm_detach(g->dsm, seg, view);
}

static void d_destroyed(void *ctx, uint64_t seg)
{
	struct krg_ipc_glue *g = ctx;
	krg_dsm_destroy(g->dsm, seg);
}

static void d_futex_wake(void *ctx, uint64_t seg, uint64_t off, uint32_t bits)
{
	struct krg_ipc_glue *g = ctx;
	krg_dsm_futex_wake(g->dsm, seg, off, bits);
}

static int d_probe(void *ctx, uint64_t seg, int view)
{
	struct krg_ipc_glue *g = ctx;
	return krg_dsm_view_probe(g->dsm, seg, view);
}

/* A process attached here forked (UFFD_EVENT_FORK). */
static void forked(void *ctx, uint64_t seg, int parent, int child)
{
	struct krg_ipc_glue *g = ctx;
	krg_intercept_shm_forked(g->in, seg, parent, child);
}

/* Another node's FUTEX_WAKE. */
static void futex_in(void *ctx, uint64_t seg, uint64_t off, uint32_t bits)
{
	struct krg_ipc_glue *g = ctx;
	krg_intercept_futex_wake(g->in, seg, off, bits);
}

static const struct krg_intercept_shm_ops dsm_ops = {
	.futex_wake = d_futex_wake,
	.segment = d_segment,
	.room = d_room,
	.attach = d_attach,
	.detach = d_detach,
	.destroyed = d_destroyed,
	.probe = d_probe,
};

int krg_ipc_glue_start(struct krg_ipc_glue *g, uv_loop_t *loop, uint32_t self, struct krg_ipc_service *svc, char *err,
		       size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->self = self;
	g->svc = svc;
	const struct krg_intercept_backend *be = &cluster_backend;
	void *ctx = g;
	int r = 0;
	if (!svc) {
		/* No cluster service: one engine on this node serves them. */
		r = krg_intercept_local_new(loop, proc_id, g, &g->local);
		be = krg_intercept_local_backend();
		ctx = g->local;
	}
	if (r == 0)
		r = krg_intercept_start(loop, be, ctx, NULL, &g->in);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the IPC interception: %s", strerror(-r));
		krg_intercept_local_free(g->local);
		g->local = NULL;
		return r;
	}
	krg_intercept_set_map_hook(g->in, map_answer, g);
	log_info("ipc: System V IPC of krg processes served by the %s", be->name);
	return 0;
}

void krg_ipc_glue_stop(struct krg_ipc_glue *g)
{
	krg_intercept_stop(g->in);
	g->in = NULL;
	krg_intercept_local_free(g->local);
	g->local = NULL;
}

/* ---- krgd's table line ---- */

struct glue_svc {
	struct krg_ipc_glue g;
	struct krg_services *s;
};

/* The cluster's IPC service serves the intercepted calls of krg processes
 * (docs/ipc.md, "Interception"); off unless ipc_intercept is set. */
static int svc_start(struct krg_services *s, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (!s->cfg->ipc_intercept)
		return 0;
	struct glue_svc *gs = calloc(1, sizeof(*gs));
	if (!gs) {
		snprintf(err, errlen, "ipc interception: out of memory");
		return -ENOMEM;
	}
	int r = krg_ipc_glue_start(&gs->g, s->loop, s->cfg->node_id, s->ipc, err, errlen);
	gs->g.table = s->table;
	/* Segments shared across nodes: only with the cluster's service
	 * (which counts attaches from every node) and the DSM. */
	if (r == 0 && s->ipc && s->dsm) {
		gs->g.dsm = s->dsm;
		krg_intercept_set_shm_ops(gs->g.in, &dsm_ops, &gs->g);
		krg_dsm_on_futex_wake(s->dsm, futex_in, &gs->g);
		krg_dsm_on_fork(s->dsm, forked, &gs->g);
	}
	gs->s = s;
	s->intercept = gs->g.in;
	/* Their execs too: DISTANT_FORK children are placed there (docs/sched.md). */
	if (r == 0 && gs->g.in && s->sched)
		krg_intercept_set_exec_hook(gs->g.in, krg_sched_exec_hook, s->sched);
	*state = gs;
	return r;
}

static void svc_stop(void *state)
{
	struct glue_svc *gs = state;
	/* No new application gets the filter from here on. */
	gs->s->intercept = NULL;
	if (gs->g.dsm) {
		krg_dsm_on_futex_wake(gs->g.dsm, NULL, NULL);
		krg_dsm_on_fork(gs->g.dsm, NULL, NULL);
	}
	krg_ipc_glue_stop(&gs->g);
}

static void svc_release(void *state)
{
	free(state);
}

const struct krg_service krg_service_ipc_intercept = {
	.name = "ipc-intercept",
	/* the table knows migrants' ids; the scheduler places execs */
	.needs = (const char *const[]){ "ipc", "table", "sched", "dsm", NULL },
	.start = svc_start,
	.stop = svc_stop,
	.release = svc_release,
};
