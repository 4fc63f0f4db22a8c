/* fault.c — the registry of fault points and KRG_FAULT's parsing
 * (fault.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/fault.h"

static const struct krg_fault_point points[] = {
	{ "ckpt-hold-commit", "an image store waits before its commit while FILE (the value) exists" },
	{ "ckpt-hold-recv", "an image received from another node waits while FILE exists" },
	{ "ckpt-pause-ms", "the dump waits MS milliseconds with the processes frozen" },
	{ "ckpt-restore-fail", "a restore fails on purpose once every process is rebuilt" },
	{ "ckpt-no-pagemap-scan", "the dump reads pagemap page by page (as before PAGEMAP_SCAN, kernel < 6.7)" },
	{ "ckpt-no-uffd", "no userfaultfd write-protect tracking (the fallback)" },
	{ "lazy-slow", "a lazy restore waits the milliseconds written in FILE between steps" },
	{ "lazy-corrupt", "a lazy restore damages a page while FILE exists" },
	{ "mig-hold", "a migration's worker and service wait in DIR (hold files) at their checkpoints" },
	{ "mig-no-lazy", "migrations restore every page before the process runs" },
	{ "mig-no-precopy", "migrations stop and copy, without pre-copy rounds" },
	{ "mig-precopy-file", "pre-copy copies into the pages file (the older path)" },
};

const struct krg_fault_point *krg_fault_points(size_t *n)
{
	*n = sizeof(points) / sizeof(points[0]);
	return points;
}

/* Find `name` in KRG_FAULT: its entry's start, the length of its value
 * (value at *val), or NULL. */
static const char *find(const char *name, const char **val, size_t *vlen)
{
	const char *list = getenv("KRG_FAULT");
	size_t nl = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len >= nl && !strncmp(p, name, nl) && (len == nl || p[nl] == ':')) {
			*val = len > nl ? p + nl + 1 : NULL;
			*vlen = len > nl ? len - nl - 1 : 0;
			return p;
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

bool krg_fault_on(const char *name)
{
	const char *v;
	size_t vl;
	return find(name, &v, &vl) != NULL;
}

const char *krg_fault_value(const char *name, char *buf, size_t len)
{
	const char *v;
	size_t vl;
	if (!find(name, &v, &vl) || !v || vl >= len)
		return NULL;
	memcpy(buf, v, vl);
	buf[vl] = 0;
	return buf;
}

long krg_fault_long(const char *name, long dflt)
{
	char buf[32], *end;
	if (!krg_fault_value(name, buf, sizeof(buf)))
		return dflt;
	long v = strtol(buf, &end, 10);
	return end != buf && !*end ? v : dflt;
}

int krg_fault_check(char *err, size_t errlen)
{
	const char *list = getenv("KRG_FAULT");
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *colon = memchr(p, ':', len);
		size_t nl = colon ? (size_t)(colon - p) : len;
		bool known = false;
		for (size_t i = 0; i < sizeof(points) / sizeof(points[0]) && !known; i++)
			known = strlen(points[i].name) == nl && !strncmp(points[i].name, p, nl);
		if (!known) {
			snprintf(err, errlen, "KRG_FAULT names '%.*s', which is no fault point (see docs/testing.md)", (int)nl, p);
			return -EINVAL;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}
