/* table_states.c — krg processes by state, for the metrics page: the
 * processes `krg ps` would list here (descendants of krgd, less the
 * migration service's own deputies, holders and workers). */
#include <unistd.h>
#include "lib/macro.h"
#include "proc/migrate.h"
#include "proc/table.h"
#include "proc/table/table-int.h"

int krg_proc_table_states(uint32_t counts[128])
{
	_cleanup_free_ struct proc_info *v = NULL;
	size_t n = 0;
	int r = table_scan(getpid(), &v, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint32_t id, home;
		if (!v[i].krg || krg_mig_proc_kind(v[i].pid, &id, &home) == 2)
			continue;
		counts[(unsigned char)v[i].state & 127]++;
	}
	return 0;
}
