/* Placeholder until the process table lands: krgd starts without it. */
#include <errno.h>
#include "proc/table.h"

int krg_proc_table_start(struct krg_services *s, struct krg_proc_table **out, char *err, size_t errlen)
{
	*out = NULL;
	return 0;
}

void krg_proc_table_stop(struct krg_proc_table *t)
{
}

int krg_proc_table_pick(struct krg_proc_table *t, uint32_t *node)
{
	return -EAGAIN;
}
