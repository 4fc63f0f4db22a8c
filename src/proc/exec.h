/* exec.h — remote execution service (src/proc/exec*.c): `krg run` on any
 * node starts a process on a chosen node as the caller, forwards stdio
 * (pipes or a pty) with back-pressure, signals, and the exact exit status.
 * It owns SIGCHLD: krgd is a child subreaper and reaps everything. */
#pragma once
#include "lib/service.h"

struct krg_exec;

/* krgd's table line (lib/service.h). */
extern const struct krg_service krg_service_exec;
