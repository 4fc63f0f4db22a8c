/* proc/pidrange.c — see pidrange.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <uv.h>
#include "proc/pidrange.h"
#include "lib/config.h"
#include "lib/log.h"

#define STEER_MS 200

static struct krg_pidrange node_range;
static uv_timer_t steer_timer;
static bool steering;

struct krg_pidrange krg_pidrange_node(void)
{
	return node_range;
}

static void steer_cb(uv_timer_t *t)
{
	(void)t;
	krg_pidrange_steer(&node_range);
}

int krg_pidrange_start(struct uv_loop_s *loop, const struct krg_config *cfg)
{
	struct krg_pidrange r = krg_pidrange_of_config(cfg);
	if (!r.lo) {
		log_warn("pids: no pid range for node %u (pid_max too small for the node ids): pids may collide across nodes",
			 cfg->node_id);
		return 0;
	}
	int ret = krg_pidrange_steer(&r);
	if (ret < 0) {
		log_warn("pids: cannot steer %s: %s: pids may collide across nodes", "/proc/sys/kernel/ns_last_pid", strerror(-ret));
		return ret;
	}
	node_range = r;
	uv_timer_init(loop, &steer_timer);
	uv_timer_start(&steer_timer, steer_cb, STEER_MS, STEER_MS);
	uv_unref((uv_handle_t *)&steer_timer);
	steering = true;
	log_info("pids: node %u allocates pids %d-%d", cfg->node_id, (int)r.lo, (int)r.hi - 1);
	return 0;
}

void krg_pidrange_stop(void)
{
	if (!steering)
		return;
	steering = false;
	uv_close((uv_handle_t *)&steer_timer, NULL);
}
