/* sched_service-int.h — what the parts of the scheduler service share
 * (sched_service.c: policies, placement, balancing, probes, start/stop;
 * sched_api.c: its API commands). */
#pragma once
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "proc/sched/capset_msg.h"
#include "proc/sched/sched-int.h"
#include "proc/table.h"
#include "lib/procfs.h"

#define PERIOD_MS 1000
#define MAX_PLUGINS 16
#define MAX_WATCH 64

/* A move a balancer started here, watched until it can be judged: its
 * cost comes from the migration service, its gain from how long the
 * migrant then ran on the target at a better CPU share. */
struct watch {
	bool used;
	uint16_t gen;           /* tells a late callback from a reused slot */
	struct sched_policy *pol; /* borrowed: the policy that asked (the table never shrinks) */
	uint32_t id, node;
	pid_t pid;              /* its pid here if this is its home (the deputy stays), else 0 */
	uint64_t pid_start;
	uint64_t t_ms;          /* loop time the move started */
	double share_src;       /* its CPU share here and on the target, in the */
	double share_tgt;       /* loads the balancer was given, at the decision */
	bool done;              /* the migration service told the cost */
	int status;
	uint64_t total_ms, frozen_ms;
	int pidfd;              /* of pid, readable once it exits (-1: not watched) */
	uv_poll_t poll;         /* on pidfd while polling */
	bool polling, closing;
	uint64_t exit_ms;       /* loop time pid exited, 0 while it runs */
};

#define SETTLE_MS 3000          /* a migrant still running is judged after this long there */
#define GIVE_UP_MS 60000        /* ... and at the latest after this */
#define FORGET_MS 300000        /* a move the migration service never answered */

/* A plugin of the cluster state this node refused to load. It is tried
 * again when the file at its path changes (another inode, or a chmod or
 * chown: the ctime), so an admin who fixes it need not restart krgd. */
struct refusal {
	char line[SCHED_SHA256_HEX + SCHED_PATH_MAX]; /* its "SHA256 PATH" line of the registry */
	char why[300];
	dev_t dev;              /* of the file when refused (0: there was none) */
	ino_t ino;
	struct timespec ctime;
};

struct krg_sched {
	struct krg_services *s;     /* borrowed */
	krg_sched_mover_fn mover;   /* the migration service's (krg_sched_set_mover); NULL: no moves */
	void *mover_svc;
	uint32_t self;
	pid_t krgd;
	bool running;
	uv_timer_t timer;
	struct sched_policy pol[SCHED_MAX_POLICIES];
	size_t n_pol;
	struct sched_probes probes;
	struct refusal refused[MAX_PLUGINS]; /* plugins this node refused, until their file changes */
	size_t n_refused;
	bool publishing;            /* our "refused.NODE" on its way through the log */
	uint64_t migrations;        /* started by a balancer on this node */
	uint64_t distant_forks;     /* children placed on another node (DISTANT_FORK) */
	struct sched_exec *exec;    /* placement at execve (sched_exec.c) */
	uint64_t caps_gc_ms;        /* loop time of the last collection of the caps registry */
	uint64_t caps_collected;    /* entries of exited processes dropped by this node */
	struct {
		uint32_t id;
		uint32_t node;          /* where it went */
		uint64_t ms;
	} recent[64];               /* processes a balancer moved lately: left alone a while */
	size_t n_recent;
	uint32_t stays_logged[16];  /* DISTANT_FORK children lately logged as staying (each exec asks again) */
	size_t stays_next;
	struct watch watch[MAX_WATCH];
	/* Eviction (docs/reconfiguration.md): this node is leaving. */
	struct {
		uint32_t id;
		uint64_t ms;
		bool mig_failed;    /* its migration failed: CHECKPOINTABLE without CAN_MIGRATE goes by checkpoint */
		bool ckpt_started;  /* a checkpoint of it was started (and counted) */
	} evict_sent[256];          /* moves started, retried after EVICT_RETRY_MS */
	size_t n_evict_sent;
	uint64_t evict_log_ms, evict_left_ms;
	uint64_t evict_epoch;       /* the node's epoch when this leave began: a new leave starts afresh */
	unsigned evict_moved;
	unsigned evict_ckpt;        /* of which checkpointed and restarted elsewhere (no CAN_MIGRATE) */
};

#define EVICT_RETRY_MS 4000

#define RECENT_MS 10000         /* a process a balancer moved stays put this long */
#define ARRIVED_MS 3000         /* a migrant that arrived stays put this long */
#define LAG_MS 2500             /* a move shows in the target's broadcast figures after this */

/* net and api have no unregister: one instance, kept after stop. */

extern struct krg_sched the_sched;

size_t sched_gather_nodes(struct krg_sched *sc, struct krg_sched_node *out);
void sched_on_api_capset(struct krg_api_call *call, void *data);
void sched_on_api_ctl(struct krg_api_call *call, void *data);
void sched_on_api_status(struct krg_api_call *call, void *data);
void sched_on_net_capset(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
bool sched_plugin_line(const char *line, char hex[SCHED_SHA256_HEX], const char **path);
int sched_plugin_load(struct krg_sched *sc, const char *path, const char *expect, char hex[SCHED_SHA256_HEX],
		       char *err, size_t errlen);
struct sched_policy *sched_policy_find(struct krg_sched *sc, const char *name);
bool sched_reg_get(struct krg_sched *sc, const char *key, char *buf, size_t len);
void sched_sync_state(struct krg_sched *sc);
