/* mig_msg.h — the checks of the mig.* messages a peer sends, apart from
 * the work they ask for (who may speak about a process is the service's
 * business). Pure, so that tests/fuzz/fuzz_peer.c runs the very checks
 * mig_service.c runs. mig.file has its own decoder (filemsg.h). */
#pragma once
#include <stdbool.h>
#include "proto/migrate.pb-c.h"

/* mig.io, mig.exit, mig.where, mig.go, mig.sig: a process id, and data
 * no larger than one frame's chunk. */
bool mig_io_valid(const Krg__Mig__Io *io);
/* mig.recv: at most MIG_MAX_PROXIES forwarded descriptors, each a small
 * fd number. */
bool mig_recv_valid(const Krg__Mig__Recv *q);
/* mig.move from a peer: the process id and the caller's uid (which the
 * sending krgd learnt from SO_PEERCRED) are both there. */
bool mig_move_peer_valid(const Krg__Mig__Move *q);
