/* duration.c — see duration.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/duration.h"

static const struct {
	const char *name;
	uint64_t ms;
} units[] = {
	{ "ms", 1 }, { "s", 1000 }, { "sec", 1000 }, { "m", 60000 }, { "min", 60000 }, { "h", 3600000 }, { "d", 86400000 },
};

int krg_duration_parse(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	const char *p = s;
	double total = 0;
	if (!s || !*s) {
		snprintf(err, errlen, "empty duration");
		return -EINVAL;
	}
	while (*p) {
		if ((*p < '0' || *p > '9') && *p != '.')
			goto bad;
		char *end;
		double v = strtod(p, &end);
		if (end == p || v < 0)
			goto bad;
		p = end;
		size_t n = 0;
		while (p[n] >= 'a' && p[n] <= 'z')
			n++;
		uint64_t mult = 0;
		if (n == 0) {
			if (p != s + strlen(s) || total != 0) /* a bare number only alone: seconds */
				goto bad;
			mult = 1000;
		}
		for (size_t i = 0; n && i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].name) == n && !strncmp(p, units[i].name, n))
				mult = units[i].ms;
		if (!mult)
			goto bad;
		p += n;
		total += v * (double)mult;
		if (total > 4294967295.0) {
			snprintf(err, errlen, "duration '%s' is too long (at most 49 days)", s);
			return -ERANGE;
		}
	}
	if (total != (double)(uint64_t)total)
		goto bad;
	*ms = (uint64_t)total;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a duration (e.g. 30s, 500ms, 2m, 1h30m)", s);
	return -EINVAL;
}

void krg_duration_format(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%llu ms", (unsigned long long)ms);
	else if (ms < 120000)
		snprintf(buf, len, "%.3g s", (double)ms / 1000);
	else if (ms < 7200000)
		snprintf(buf, len, "%.3g min", (double)ms / 60000);
	else
		snprintf(buf, len, "%.3g h", (double)ms / 3600000);
}
