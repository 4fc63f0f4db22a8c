/* procid.c — see procid.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include "proc/procid.h"
#include "lib/nodelist.h"

int krg_procid_parse(const char *s, uint32_t *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || (v & KRG_PID_MASK) == 0 || (v >> KRG_PID_BITS) >= KRG_MAX_NODES)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}
