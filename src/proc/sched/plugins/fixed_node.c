/* fixed_node.c — a sample placement policy plugin (docs/sched.md): puts
 * every `krg run --auto` on the node given by its parameter `node` when
 * that node is up, else on the least-loaded one of the others. Built as
 * its own shared object (build/src/proc/sched/libkrg_sched_fixed_node.so),
 * loaded by `krgadm sched load PATH.so`. Only the public plugin header is
 * used. */
#include <errno.h>
#include "krg/sched_policy.h"

static const struct krg_sched_param_def params[] = {
	{ "node", 1, 0, 255, "the node that gets every placement" },
};

static int fixed_place(void *state, const double *p, const struct krg_sched_node *nodes, size_t n, uint32_t *node)
{
	(void)state;
	const struct krg_sched_node *best = NULL;
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].id == (uint32_t)p[0]) {
			*node = nodes[i].id;
			return 0;
		}
		if (!best || nodes[i].load_norm < best->load_norm)
			best = &nodes[i];
	}
	if (!best)
		return -EAGAIN;
	*node = best->id;
	return 0;
}

static const struct krg_sched_policy_ops fixed_node = {
	.version = KRG_SCHED_API_VERSION,
	.size = sizeof(struct krg_sched_policy_ops),
	.name = "fixed_node",
	.description = "sample plugin: every placement on node `node` while it is up",
	.kind = KRG_SCHED_PLACEMENT,
	.params = params,
	.n_params = sizeof(params) / sizeof(params[0]),
	.place = fixed_place,
};

__attribute__((visibility("default"))) const struct krg_sched_policy_ops *krg_sched_policy_entry(void)
{
	return &fixed_node;
}
