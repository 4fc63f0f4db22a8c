/* nodelist.c — see nodelist.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include "nodelist.h"

unsigned krg_nodeset_count(const struct krg_nodeset *s)
{
	unsigned n = 0;
	for (size_t i = 0; i < sizeof(s->bits) / sizeof(s->bits[0]); i++)
		n += (unsigned)__builtin_popcountll(s->bits[i]);
	return n;
}

static int parse_id(const char **p, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*s)) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v >= KRG_MAX_NODES)
			return -ERANGE;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

int krg_nodelist_parse(const char *text, struct krg_nodeset *out, char *err, size_t errlen)
{
	struct krg_nodeset s = { 0 };
	const char *p = text;

	if (!text || !*text) {
		snprintf(err, errlen, "empty node list");
		return -EINVAL;
	}
	for (;;) {
		unsigned a, b;
		int r = parse_id(&p, &a);
		if (r < 0)
			goto bad;
		b = a;
		if (*p == '-') {
			p++;
			r = parse_id(&p, &b);
			if (r < 0)
				goto bad;
			if (b < a) {
				snprintf(err, errlen, "bad node list '%s': range %u-%u is reversed", text, a, b);
				return -EINVAL;
			}
		}
		for (unsigned i = a; i <= b; i++)
			krg_nodeset_add(&s, i);
		if (*p == '\0')
			break;
		if (*p != ',')
			goto bad;
		p++;
		continue;
	bad:
		if (r == -ERANGE)
			snprintf(err, errlen, "bad node list '%s': node ids go from 0 to %d", text, KRG_MAX_NODES - 1);
		else
			snprintf(err, errlen, "bad node list '%s' at '%s': expected ID or A-B, comma separated", text, p);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

void krg_nodelist_format(const struct krg_nodeset *s, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < KRG_MAX_NODES; i++) {
		if (!krg_nodeset_has(s, i))
			continue;
		unsigned j = i;
		while (j + 1 < KRG_MAX_NODES && krg_nodeset_has(s, j + 1))
			j++;
		int n = j > i ? snprintf(buf + off, len - off, "%s%u-%u", off ? "," : "", i, j)
			      : snprintf(buf + off, len - off, "%s%u", off ? "," : "", i);
		if (n < 0 || (size_t)n >= len - off)
			return;
		off += (size_t)n;
		i = j;
	}
}
