/* table_msg.h — the checks of the messages a peer sends to the process
 * table service, apart from the work they ask for. Pure, so that
 * tests/fuzz/fuzz_peer.c runs the very checks table_service.c runs. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "proto/node.pb-c.h"

/* node.load: sent by the node it describes, with finite figures in
 * plausible ranges and counts that agree with each other (a bad figure
 * would steer every placement in the cluster). */
bool table_load_valid(const Krg__Node__NodeLoad *l, uint32_t from);
/* proc.kill: a signal 0..64 (0 probes). */
bool table_kill_valid(const Krg__Node__ProcKill *k);
