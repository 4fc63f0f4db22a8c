/* plugin_marker.c — a policy plugin for tests/sched/plugin_trust.sh whose
 * constructor leaves a file behind: a plugin krgd refuses must never have
 * run any of its code, and this file tells whether it did. */
#include <fcntl.h>
#include <unistd.h>
#include "krg/sched_policy.h"

#define MARKER "/run/krg-test-plugin-ran"

__attribute__((constructor)) static void leave_marker(void)
{
	int fd = open(MARKER, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static int here_place(void *state, const double *p, const struct krg_sched_node *nodes, size_t n, uint32_t *node)
{
	(void)state;
	(void)p;
	for (size_t i = 0; i < n; i++)
		if (nodes[i].self) {
			*node = nodes[i].id;
			return 0;
		}
	*node = n ? nodes[0].id : 0;
	return 0;
}

static const struct krg_sched_policy_ops marker = {
	.version = KRG_SCHED_API_VERSION,
	.size = sizeof(struct krg_sched_policy_ops),
	.name = "test_marker",
	.description = "test plugin: places locally; its constructor leaves " MARKER,
	.kind = KRG_SCHED_PLACEMENT,
	.place = here_place,
};

__attribute__((visibility("default"))) const struct krg_sched_policy_ops *krg_sched_policy_entry(void)
{
	return &marker;
}
