/* table_msg.c — checks of node.load and proc.kill (table_msg.h). */
#include <math.h>
#include "lib/nodelist.h"
#include "proc/table/table_msg.h"

static bool sane_double(double d, double max)
{
	return isfinite(d) && d >= 0 && d <= max;
}

bool table_load_valid(const Krg__Node__NodeLoad *l, uint32_t from)
{
	return l->node == from && from < KRG_MAX_NODES && sane_double(l->cpus, 1e6) && l->cpus > 0 &&
	       sane_double(l->load1, 1e9) && sane_double(l->load5, 1e9) && sane_double(l->load15, 1e9) &&
	       l->mem_free_kb <= l->mem_total_kb && l->mem_available_kb <= l->mem_total_kb &&
	       l->krg_procs <= l->procs && !(l->has_runnable && l->runnable > l->procs) &&
	       !(l->has_io_kbps && !sane_double(l->io_kbps, 1e12)) &&
	       !(l->has_cpu_used && !sane_double(l->cpu_used, 1e6));
}

bool table_kill_valid(const Krg__Node__ProcKill *k)
{
	return k->signal >= 0 && k->signal <= 64;
}
