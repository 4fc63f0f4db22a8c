/* ckptsvc.h — checkpoint/restart through krgd (src/proc/ckpt/): API
 * "ckpt.dump" and "ckpt.restart" from any node, forwarded to the node of
 * the process (or of the image), which checks the caller (root or the
 * process's / image's owner, uid by SO_PEERCRED) and does the work in a
 * forked worker, off the event loop. docs/checkpoint.md "Through krgd". */
#pragma once
#include "lib/service.h"

struct krg_ckptsvc;

/* krgd's table line (lib/service.h). */
extern const struct krg_service krg_service_ckpt;
