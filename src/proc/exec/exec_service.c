/* Placeholder until remote execution lands: krgd starts without it. */
#include <errno.h>
#include <stdio.h>
#include "proc/exec.h"

int krg_exec_start(struct krg_services *s, struct krg_exec **out, char *err, size_t errlen)
{
	*out = NULL;
	return 0;
}

void krg_exec_stop(struct krg_exec *e)
{
}
