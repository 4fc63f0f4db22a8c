/* kdfs.h — krgd's kdfs service (docs/kdfs.md).
 *
 * Two steps because of raft: krg_kdfs_new registers the metadata state
 * machine before the cluster starts (raft replays its log into it at
 * start); krg_kdfs_start, once the cluster runs, starts this node's FUSE
 * client (krg-kdfs) on kdfs_mount and serves it and the peers' chunk
 * requests. Off (both return 0, *out NULL) when kdfs_mount is unset. */
#pragma once
#include <stddef.h>
#include <uv.h>
#include "lib/config.h"

struct krg_net;
struct krg_cluster;
struct krg_kdfs;

int krg_kdfs_new(uv_loop_t *loop, const struct krg_config *cfg, struct krg_net *net, struct krg_cluster *cluster,
		 struct krg_kdfs **out, char *err, size_t errlen);
struct krg_api_server;
/* api: where kdfs.status / kdfs.show / kdfs.set are served. */
int krg_kdfs_start(struct krg_kdfs *k, struct krg_api_server *api, char *err, size_t errlen);
/* Unmount and stop the client (NULL-safe). Before the cluster closes. */
void krg_kdfs_stop(struct krg_kdfs *k);
/* Free the stores, once the cluster is closed (it applies into them until then). */
void krg_kdfs_free(struct krg_kdfs *k);
/* krgd's table line (lib/service.h): init is krg_kdfs_new. */
extern const struct krg_service krg_service_kdfs;
