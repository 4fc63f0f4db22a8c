/* fsview.h — krgd's file view service (docs/fsview.md).
 *
 * On a node that runs processes of another home: one krg-fsview FUSE
 * client per (home, uid, gid), in its own mount namespace with home's
 * node-local paths mounted over this node's; krgd relays its requests to
 * home ("fsview.req"). At home: one krg-fsview --serve per (node, uid,
 * gid), running as that user, does the calls. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "lib/config.h"

struct krg_net;
struct krg_fsview;

/* NULL *out (and 0) when the view is off in the config. */
int krg_fsview_new(uv_loop_t *loop, const struct krg_config *cfg, struct krg_net *net, struct krg_fsview **out,
		   char *err, size_t errlen);
/* The mount namespace (a new fd, O_CLOEXEC) that processes of home's user
 * uid/gid get on this node, made on first use (blocks krgd's loop while
 * the FUSE mounts are made, a few ms). -ENOENT: no view (off, or home is
 * this node); other -errno: it could not be made. */
int krg_fsview_ns(struct krg_fsview *v, uint32_t home, uid_t uid, gid_t gid);
/* Whose files process pid sees: the home of the view it is in, else this
 * node. 0 when the view is off (the caller keeps its old rule). */
uint32_t krg_fsview_home_of(struct krg_fsview *v, pid_t pid);
/* pid is one of this service's krg-fsview processes: krgd's helpers,
 * neither listed, moved nor checkpointed as a user's process. */
bool krg_fsview_is_helper(const struct krg_fsview *v, pid_t pid);
/* In a forked child, root still: join that namespace (setns). -errno. */
int krg_fsview_enter(int nsfd);
/* Stop: no new view, every krg-fsview told to go, their pipes closed
 * (NULL-safe). krg_fsview_free once the loop has run the close callbacks. */
void krg_fsview_stop(struct krg_fsview *v);
void krg_fsview_free(struct krg_fsview *v);
/* krgd's table line (lib/service.h); sets s->fsview (NULL when off). */
extern const struct krg_service krg_service_fsview;
