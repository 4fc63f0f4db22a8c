/* capset_msg.h — the text of a sched.capset request, parsed and checked
 * before any work: "TARGET OP [CAP]" from the local API (krg capset), or
 * "UID TARGET OP [CAP]" when a peer forwards one to the process's home
 * node. Pure (no state, no I/O), so tests/fuzz/fuzz_peer.c runs the very
 * code sched_service.c runs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPSET_MAX_API 255   /* bytes of a request from the local API */
#define CAPSET_MAX_PEER 319  /* with the uid a peer prefixes */

struct capset_req {
	bool from_peer;
	uint32_t uid;        /* from_peer: the uid the sending krgd got from SO_PEERCRED */
	bool self;           /* TARGET was "self" (the caller; local API only) */
	char target[32];     /* a krg process id when !self */
	char op[8];          /* "show", "e" or "d" (checked by the service) */
	char cap[40];        /* may be empty */
};

/* 0, or -EINVAL for a body that is empty, too long, not text, lacks a
 * field, or (from a peer) has a malformed uid or names "self". */
int capset_parse(const void *body, size_t len, bool from_peer, struct capset_req *out);
