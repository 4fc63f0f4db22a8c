/* capset_msg.c — parsing of sched.capset requests (capset_msg.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "proc/sched/capset_msg.h"

/* A uid as the peer wrote it: decimal digits, below (uid_t)-1. */
static int parse_uid(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v >= UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int capset_parse(const void *body, size_t len, bool from_peer, struct capset_req *out)
{
	char text[CAPSET_MAX_PEER + 1];
	size_t max = from_peer ? CAPSET_MAX_PEER : CAPSET_MAX_API;
	memset(out, 0, sizeof(*out));
	out->from_peer = from_peer;
	if (len == 0 || len > max || memchr(body, 0, len))
		return -EINVAL;
	memcpy(text, body, len);
	text[len] = 0;
	char *rest = text;
	if (from_peer) {
		rest = strchr(text, ' ');
		if (!rest)
			return -EINVAL;
		*rest++ = 0;
		if (parse_uid(text, &out->uid) < 0)
			return -EINVAL;
	}
	if (sscanf(rest, "%31s %7s %39s", out->target, out->op, out->cap) < 2)
		return -EINVAL;
	out->self = !strcmp(out->target, "self");
	/* A peer forwards only requests that name a process: "self" is the
	 * local caller, whom only its own node knows. */
	if (out->self && from_peer)
		return -EINVAL;
	return 0;
}
