/* fsview_msg.h — the check of a peer's "fsview.req" before any work
 * (pure: used by krgd's handler and by tests/fuzz/fuzz_peer.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/fsview.pb-c.h"

/* Request field 1 (the id) read without unpacking: protobuf-c writes
 * fields in order, so a Request and a Reply start with it. */
bool fsv_peek_id(const uint8_t *p, size_t n, uint64_t *id);
/* f's inner request decodes, is not READY (local only), carries an id
 * that fsv_peek_id finds, and its paths are absolute where present.
 * *id set when true. */
bool fsv_forward_valid(const Krg__Fsview__Forward *f, uint64_t *id);
/* The same check on a packed Forward, read in place (no copy of a
 * write's data): its fields, req pointing into p. */
struct fsv_forward {
	uint32_t uid, gid;
	const uint8_t *req;
	size_t req_len;
	uint64_t id;
};
bool fsv_forward_parse(const uint8_t *p, size_t n, struct fsv_forward *out);
