/* ipc_glue.c — krgd's wiring of the IPC interception (ipc/intercept_svc.h):
 * which backend serves the intercepted calls, and how a local process
 * gets its cluster-wide id. One place to change when the backend does. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "ipc/intercept_svc.h"
#include "krgd/ipc_glue.h"
#include "lib/log.h"
#include "proc/migrate.h"
#include "proc/procid.h"

/* A migrant keeps the id of its home; anything else is this node's. */
static uint64_t proc_id(void *data, pid_t tgid)
{
	struct krg_ipc_glue *g = data;
	uint32_t id, home;
	if (krg_mig_proc_kind(tgid, &id, &home) == 1)
		return id;
	return krg_procid_make(g->self, (uint32_t)tgid);
}

int krg_ipc_glue_start(struct krg_ipc_glue *g, uv_loop_t *loop, uint32_t self, char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->self = self;
	int r = krg_intercept_local_new(loop, proc_id, g, &g->local);
	if (r == 0)
		r = krg_intercept_start(loop, krg_intercept_local_backend(), g->local, NULL, &g->in);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the IPC interception: %s", strerror(-r));
		krg_intercept_local_free(g->local);
		g->local = NULL;
		return r;
	}
	log_info("ipc: System V IPC of krg processes served by the %s", krg_intercept_local_backend()->name);
	return 0;
}

void krg_ipc_glue_stop(struct krg_ipc_glue *g)
{
	krg_intercept_stop(g->in);
	g->in = NULL;
	krg_intercept_local_free(g->local);
	g->local = NULL;
}
