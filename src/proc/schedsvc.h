/* schedsvc.h — the customizable scheduler service (src/proc/sched/,
 * docs/sched.md): probes sampled every second on every node, placement
 * policies behind one ops struct (include/krg/sched_policy.h), built in or
 * loaded from plugins, their state kept in the cluster registry "sched",
 * and Kerrighed's process capabilities kept in the registry "caps". */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/service.h"

struct krg_sched;
struct krg_cluster;

/* The balancer's mover, registered by the migration service at its start
 * (the scheduler calls no service above it by name). done is told once
 * the move ended: status 0 or -errno, total_ms from its start to the end,
 * frozen_ms the time the process did not run (0 if it failed). */
typedef void (*krg_sched_move_done_fn)(int status, uint64_t total_ms, uint64_t frozen_ms, void *data);
/* Start moving process id, which runs on this node, to node `to`, as root,
 * nobody waiting for the result (logged); done (may be NULL) is told its
 * cost. 0 once started, else -errno and a one-line reason in err (done is
 * then not called). evicting: this node is leaving, and a process without
 * CAN_MIGRATE but CHECKPOINTABLE may go too (a migration is a checkpoint
 * restored at once, and it keeps the process's id, pid and streams where a
 * checkpoint and restart would give it new ones). */
typedef int (*krg_sched_mover_fn)(void *svc, uint32_t id, uint32_t to, bool evicting, krg_sched_move_done_fn done,
				  void *data, char *err, size_t errlen);
void krg_sched_set_mover(struct krg_sched *sc, krg_sched_mover_fn fn, void *svc);
/* krgd's table line (lib/service.h); sets s->sched. */
extern const struct krg_service krg_service_sched;
/* krg run --auto: the node the enabled placement policy chooses; this node
 * when no policy is enabled or none can decide. */
uint32_t krg_sched_place(struct krg_sched *sc);
/* The IPC filter's exec hook (krg_intercept_set_exec_hook, sched an
 * struct krg_sched): tid is blocked before its execve of the program at
 * path (an address in tid, 0 if unknown). true: a DISTANT_FORK child to
 * stop right after the exec goes on; the scheduler then moves it to the
 * node least_loaded chose (docs/sched.md, "Distant fork"). */
bool krg_sched_exec_hook(void *sched, pid_t tid, uint64_t path);
/* Did the scheduler stop pid at its exec to move it? Then its stop is not
 * the process's own (job control): the migration restores it running.
 * Asked by the migration worker, a fork of krgd. */
bool krg_sched_exec_held(pid_t pid);

/* Capabilities (Kerrighed's kerrighed_capabilities(7)). */
enum krg_cap {
	KRG_CAP_CAN_MIGRATE = 1u << 0,
	KRG_CAP_DISTANT_FORK = 1u << 1,
	KRG_CAP_CHECKPOINTABLE = 1u << 2,
};
#define KRG_CAP_ALL (KRG_CAP_CAN_MIGRATE | KRG_CAP_DISTANT_FORK | KRG_CAP_CHECKPOINTABLE)

struct krg_caps {
	uint32_t eff;       /* effective: what the process may do now */
	uint32_t perm;      /* permitted: what it may make effective */
	uint32_t inh_eff;   /* inheritable effective: children's effective */
	uint32_t inh_perm;  /* inheritable permitted: children's permitted */
};

/* The sets a child of a process with sets k starts with (Kerrighed's
 * fork rule): the inheritable sets become its effective and permitted. */
void krg_caps_child(const struct krg_caps *k, struct krg_caps *child);
/* Write process id's entry (pid: its pid here, for the start time) to the
 * registry "caps"; cb as krg_cluster_registry_set's (may be NULL). */
int krg_caps_store(struct krg_cluster *c, uint32_t id, pid_t pid, const struct krg_caps *k,
		   void (*cb)(int status, const char *msg, void *data), void *data);

/* Parse "CAN_MIGRATE" etc.; 0 if unknown. */
uint32_t krg_cap_parse(const char *name);
const char *krg_cap_name(uint32_t cap);
/* The capabilities of process id whose pid on this node is pid (0 if it
 * does not run here): its own entry in the registry, else inherited from
 * its nearest ancestor on this node with one (1 is returned for both),
 * else every capability (0 is returned: nobody set them). */
int krg_caps_get(struct krg_cluster *c, uint32_t self, uint32_t id, pid_t pid, struct krg_caps *out);
