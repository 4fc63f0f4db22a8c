/* policy_round_robin.c — placement in turn on every up node (Kerrighed's
 * round_robin_balancer, for placement): each deciding node keeps its own
 * cursor, the last node it chose, and takes the next up node by id. */
#include <errno.h>
#include <stdlib.h>
#include "proc/sched/sched-int.h"

struct rr_state {
	uint32_t last;   /* id of the node chosen last time */
	bool started;
};

static int rr_init(void **state)
{
	*state = calloc(1, sizeof(struct rr_state));
	return *state ? 0 : -ENOMEM;
}

static void rr_fini(void *state)
{
	free(state);
}

static int rr_place(void *state, const double *params, const struct krg_sched_node *nodes, size_t n,
		    uint32_t *node)
{
	(void)params;
	struct rr_state *st = state;
	if (n == 0)
		return -EAGAIN;
	/* nodes[] is sorted by id: the first one after the last choice. */
	size_t pick = 0;
	if (st->started)
		for (size_t i = 0; i < n; i++)
			if (nodes[i].id > st->last) {
				pick = i;
				break;
			}
	st->last = nodes[pick].id;
	st->started = true;
	*node = nodes[pick].id;
	return 0;
}

const struct krg_sched_policy_ops sched_round_robin = {
	.version = KRG_SCHED_API_VERSION,
	.size = sizeof(struct krg_sched_policy_ops),
	.name = "round_robin",
	.description = "every up node in turn, by node id",
	.kind = KRG_SCHED_PLACEMENT,
	.init = rr_init,
	.fini = rr_fini,
	.place = rr_place,
};
