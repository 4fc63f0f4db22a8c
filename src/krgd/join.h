/* join.h — a machine joining a running cluster (docs/reconfiguration.md):
 * before its services start, krgd without a node id asks a member for
 * one, then runs as that node. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "lib/config.h"
#include "lib/key.h"

/* Fill cfg's node id and node list: from state_dir/joined when this
 * machine joined before, else by asking the member at join_addr (cfg->join
 * when NULL) and saving the answer. 0, or -errno with one line in err. */
int krgd_join(struct krg_config *cfg, const char *join_addr, const uint8_t key[KRG_KEY_BYTES], char *err,
	      size_t errlen);
