/* policy_least_loaded.c — placement on the node with the lowest load per
 * CPU of capacity (load1 / cpus); ties go to the node with fewer krg
 * processes, then to the deciding node. The default policy of
 * `krg run --auto`. */
#include <errno.h>
#include <math.h>
#include "proc/sched/sched-int.h"

static int least_loaded_place(void *state, const double *params, const struct krg_sched_node *nodes, size_t n,
			      uint32_t *node)
{
	(void)state;
	(void)params;
	const struct krg_sched_node *best = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct krg_sched_node *x = &nodes[i];
		bool better;
		if (!best)
			better = true;
		else if (fabs(x->load_norm - best->load_norm) > 1e-9)
			better = x->load_norm < best->load_norm;
		else if (x->krg_procs != best->krg_procs)
			better = x->krg_procs < best->krg_procs;
		else
			better = x->self;
		if (better)
			best = x;
	}
	if (!best)
		return -EAGAIN;
	*node = best->id;
	return 0;
}

const struct krg_sched_policy_ops sched_least_loaded = {
	.version = KRG_SCHED_API_VERSION,
	.size = sizeof(struct krg_sched_policy_ops),
	.name = "least_loaded",
	.description = "the up node with the lowest load1 / cpus (ties: fewer krg processes, then this node)",
	.kind = KRG_SCHED_PLACEMENT,
	.place = least_loaded_place,
};
