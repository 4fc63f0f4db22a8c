/* exec_msg.c — checks of the proc.* messages peers send (exec_msg.h). */
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include "proc/exec/exec-int.h"
#include "proc/exec/exec_msg.h"

bool exec_spawn_valid(const Krg__Proc__Spawn *s)
{
	const Krg__Proc__RunRequest *r = s->run;
	if (!r || r->n_argv == 0 || r->n_argv > EXEC_MAX_ARGS || r->n_env > EXEC_MAX_ARGS ||
	    s->n_groups > EXEC_MAX_GROUPS || r->n_rlimits > RLIM_NLIMITS || !r->cwd || !*r->cwd ||
	    strlen(r->cwd) >= PATH_MAX || !*r->argv[0] || r->umask > 0777)
		return false;
	for (size_t i = 0; i < r->n_env; i++)
		if (!strchr(r->env[i], '='))
			return false;
	for (size_t i = 0; i < r->n_rlimits; i++)
		if (r->rlimits[i]->resource >= RLIM_NLIMITS)
			return false;
	return s->uid != (uint32_t)-1 && s->gid != (uint32_t)-1;
}

bool exec_data_valid(const Krg__Proc__Data *d)
{
	return !(d->has_data && d->data.len > EXEC_CHUNK) && d->fd <= 2;
}

bool exec_exit_valid(const Krg__Proc__Exit *x)
{
	return !(x->has_signal && (x->signal <= 0 || x->signal >= 128)) &&
	       !(x->has_code && (x->code < 0 || x->code > 255));
}

bool exec_ctl_valid(const Krg__Proc__Ctl *c)
{
	return !((c->has_signal && (c->signal <= 0 || c->signal >= 65)) ||
		 (c->has_group_signal && (c->group_signal <= 0 || c->group_signal >= 65)) ||
		 (c->has_credit && c->credit > EXEC_WINDOW) ||
		 (c->has_stdin_credit && c->stdin_credit > EXEC_WINDOW) || (c->has_rows && c->rows > 65535) ||
		 (c->has_cols && c->cols > 65535));
}
