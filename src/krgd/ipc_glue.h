/* ipc_glue.h — krgd's wiring of the IPC interception (ipc_glue.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct krg_intercept;
struct krg_intercept_local;

struct krg_ipc_glue {
	uint32_t self;                      /* this node */
	struct krg_intercept *in;           /* the listener service; NULL: not started */
	struct krg_intercept_local *local;  /* the backend while it is one engine on this node */
};

/* Start the listener service and its backend. 0, or -errno and one line. */
int krg_ipc_glue_start(struct krg_ipc_glue *g, uv_loop_t *loop, uint32_t self, char *err, size_t errlen);
void krg_ipc_glue_stop(struct krg_ipc_glue *g);
