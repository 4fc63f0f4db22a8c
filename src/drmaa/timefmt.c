/* timefmt.c — the time formats of DRMAA 1.0 (GFD.22 §3.2.2):
 *   start/deadline: [[[[CC]YY/]MM/]DD] hh:mm[:ss] [{-|+}UU:uu]
 *   durations:      [[h:]m:]s
 * Without a date, today is meant, or tomorrow if that time has passed. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "drmaa/drmaa-int.h"

/* Up to 3 ':' or '/'-separated unsigned fields of digits; count or -EINVAL. */
static int fields(const char *s, size_t n, char sep, long out[4], int widths[4])
{
	int k = 0;
	size_t i = 0;
	while (i <= n) {
		if (k == 4)
			return -EINVAL;
		size_t start = i;
		long v = 0;
		while (i < n && isdigit((unsigned char)s[i])) {
			v = v * 10 + (s[i] - '0');
			if (v > 100000000)
				return -EINVAL;
			i++;
		}
		if (i == start)
			return -EINVAL;
		widths[k] = (int)(i - start);
		out[k++] = v;
		if (i == n)
			break;
		if (s[i] != sep)
			return -EINVAL;
		i++;
		if (i == n)
			return -EINVAL;
	}
	return k;
}

int drmaa_time_parse(const char *s, time_t now, int64_t *out)
{
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	char *tok[4];
	int nt = 0;
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (nt == 4)
			return -EINVAL;
		tok[nt++] = t;
	}
	int ti = -1;
	for (int i = 0; i < nt; i++)
		if (strchr(tok[i], ':') && tok[i][0] != '+' && tok[i][0] != '-') {
			ti = i;
			break;
		}
	if (ti < 0 || ti > 1 || (ti == 1 && strchr(tok[0], ':')) || nt > ti + 2)
		return -EINVAL;
	struct tm tm;
	localtime_r(&now, &tm);
	bool have_date = ti == 1;
	if (have_date) {
		long d[4];
		int w[4];
		int k = fields(tok[0], strlen(tok[0]), '/', d, w);
		if (k < 1 || k > 3)
			return -EINVAL;
		long day = d[k - 1];
		if (day < 1 || day > 31)
			return -EINVAL;
		tm.tm_mday = (int)day;
		if (k >= 2) {
			if (d[k - 2] < 1 || d[k - 2] > 12)
				return -EINVAL;
			tm.tm_mon = (int)d[k - 2] - 1;
		}
		if (k == 3) {
			long y = d[0];
			if (w[0] == 2)
				y += 2000;
			else if (w[0] != 4)
				return -EINVAL;
			tm.tm_year = (int)y - 1900;
		}
	}
	long t[4];
	int w[4];
	int k = fields(tok[ti], strlen(tok[ti]), ':', t, w);
	if (k < 2 || k > 3 || t[0] > 23 || t[1] > 59 || (k == 3 && t[2] > 60))
		return -EINVAL;
	tm.tm_hour = (int)t[0];
	tm.tm_min = (int)t[1];
	tm.tm_sec = k == 3 ? (int)t[2] : 0;
	tm.tm_isdst = -1;
	int64_t when;
	if (nt == ti + 2) {
		const char *z = tok[ti + 1];
		if (z[0] != '+' && z[0] != '-')
			return -EINVAL;
		long o[4];
		int ow[4];
		int ok = fields(z + 1, strlen(z + 1), ':', o, ow);
		if (ok != 2 || o[0] > 23 || o[1] > 59)
			return -EINVAL;
		long off = (o[0] * 60 + o[1]) * 60 * (z[0] == '-' ? -1 : 1);
		when = (int64_t)timegm(&tm) - off;
	} else {
		time_t m = mktime(&tm);
		if (m == (time_t)-1)
			return -EINVAL;
		when = m;
	}
	if (!have_date && when < (int64_t)now)
		when += 24 * 3600;
	*out = when;
	return 0;
}

int drmaa_duration_parse(const char *s, int64_t *out)
{
	long f[4];
	int w[4];
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return -EINVAL;
	int k = fields(s, n, ':', f, w);
	if (k < 1 || k > 3)
		return -EINVAL;
	int64_t v = 0;
	for (int i = 0; i < k; i++)
		v = v * 60 + f[i];
	*out = v;
	return 0;
}
