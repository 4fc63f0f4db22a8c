/* table_states.c — krg processes by state, for the metrics page: the
 * processes `krg ps` would list here (descendants of krgd, less those
 * the kind hook hides: the migration service's deputies, holders and
 * workers). */
#include <unistd.h>
#include "lib/macro.h"
#include "proc/table.h"
#include "lib/procfs.h"

int krg_proc_table_states(const struct krg_proc_table *t, uint32_t counts[128])
{
	_cleanup_free_ struct proc_info *v = NULL;
	size_t n = 0;
	int r = procfs_scan(getpid(), &v, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint32_t id, home;
		if (!v[i].krg || krg_proc_table_kind(t, v[i].pid, &id, &home) == KRG_PROC_HIDDEN)
			continue;
		counts[(unsigned char)v[i].state & 127]++;
	}
	return 0;
}
