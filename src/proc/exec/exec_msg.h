/* exec_msg.h — the checks of every proc.* message a peer sends, apart from
 * the work the message asks for: each returns whether an unpacked message
 * is one the exec service may act on. Pure (no state, no I/O), so that
 * tests/fuzz/fuzz_peer.c can run them on anything. */
#pragma once
#include <stdbool.h>
#include "proto/proc.pb-c.h"

/* proc.spawn: argv, env, groups, rlimits, cwd, umask and the identity. */
bool exec_spawn_valid(const Krg__Proc__Spawn *s);
/* proc.data: a chunk no larger than EXEC_CHUNK, for fd 0, 1 or 2. */
bool exec_data_valid(const Krg__Proc__Data *d);
/* proc.exit: a signal 1..127 or a code 0..255. */
bool exec_exit_valid(const Krg__Proc__Exit *x);
/* proc.ctl: signals 1..64, credits within the window, a window size. */
bool exec_ctl_valid(const Krg__Proc__Ctl *c);
