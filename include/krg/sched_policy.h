/* sched_policy.h — the krg scheduler policy plugin API (docs/sched.md).
 *
 * A policy is one versioned ops struct, like sqlite's sqlite3_vfs: krgd's
 * built-in policies (src/proc/sched/policy_*.c) and plugins loaded by
 * `krgadm sched load PATH.so` use the same struct. A plugin is a shared
 * object exporting
 *
 *     const struct krg_sched_policy_ops *krg_sched_policy_entry(void);
 *
 * returning a struct that lives as long as the object (a static const).
 * krgd refuses an object whose version differs from KRG_SCHED_API_VERSION,
 * whose size is smaller than the struct it knows, whose name is empty or
 * already taken, or whose kind it does not know.
 *
 * Threading and lifetime: every callback runs on krgd's event loop thread,
 * must not block and must not keep the pointers it is given. A plugin is
 * never unloaded while krgd runs.
 *
 * Parameters are doubles declared in params[]; krgd keeps their values
 * (defaults, then `krgadm sched set POLICY.PARAM VALUE`, checked against
 * min/max, replicated in the cluster state) and passes them in declaration
 * order to every call.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KRG_SCHED_API_VERSION 2  /* 2: io_kbps and cpu_used in krg_sched_node */
#define KRG_SCHED_PLUGIN_SYMBOL "krg_sched_policy_entry"
#define KRG_SCHED_MAX_PARAMS 8
#define KRG_MAX_SCHED_NODES 256  /* node ids 0..255 */

enum krg_sched_kind {
	KRG_SCHED_PLACEMENT = 1, /* chooses the node of `krg run --auto` */
	KRG_SCHED_BALANCER = 2,  /* moves running processes between nodes */
};

/* One up node as the probes see it (this node's values are fresh; the
 * others' come from their last broadcast, at most a few seconds old). */
struct krg_sched_node {
	uint32_t id;
	bool self;                 /* the node making the decision */
	double cpus;               /* capacity: cgroup CPU quota / period, else online CPUs */
	double load1;              /* 1-minute load average */
	double load_norm;          /* load1 / cpus */
	uint64_t mem_total_kb;
	uint64_t mem_available_kb;
	uint32_t krg_procs;        /* krg processes running there */
	uint32_t runnable;         /* processes in state R there (the run queue) */
	double run_norm;           /* runnable / cpus: the CPU demand per CPU of capacity */
	uint64_t age_ms;           /* age of these figures */
	double io_kbps;            /* node I/O: KiB/s of rchar + wchar of all its processes */
	double cpu_used;           /* CPUs busy with its processes over the last second */
};

/* A process of the deciding node that a balancer may move: a krg process
 * with CAN_MIGRATE, not moved in the last few seconds. */
struct krg_sched_proc {
	uint32_t id;               /* cluster-wide id */
	bool runnable;             /* in state R now */
	double cpu_pct;            /* CPU over the last second, 100 = one CPU */
	uint64_t rss_kb;
	double io_kbps;            /* rchar + wchar over the last second */
	uint64_t age_ms;           /* time since it started here */
};

/* One migration a balancer asks for. */
struct krg_sched_move {
	uint32_t id;
	uint32_t node;
};

/* What became of a migration the balancer asked for, judged by krgd once
 * the migrant exited or had run on the target long enough to tell
 * (docs/sched.md, "Self-adaptation"). */
struct krg_sched_verdict {
	uint32_t id;               /* the process */
	uint32_t node;             /* where it went */
	bool useful;               /* its estimated gain outweighed the cost */
	bool exited;               /* it ended on the target (or while moving) */
	bool reversed;             /* the target ended up busier than this node */
	uint64_t cost_ms;          /* the migration's total time */
	uint64_t frozen_ms;        /* of which the process did not run */
	uint64_t ran_ms;           /* on the target, until it exited or the verdict */
	double gain_ms;            /* CPU time it gained there, estimated */
};

struct krg_sched_param_def {
	const char *name;          /* [a-z0-9_]+ */
	double def, min, max;
	const char *help;          /* one line */
};

struct krg_sched_policy_ops {
	uint32_t version;          /* KRG_SCHED_API_VERSION */
	uint32_t size;             /* sizeof(struct krg_sched_policy_ops) the plugin was built with */
	const char *name;          /* [a-z0-9_]+, unique in the cluster */
	const char *description;   /* one line */
	enum krg_sched_kind kind;
	const struct krg_sched_param_def *params; /* n_params entries, may be NULL */
	size_t n_params;           /* at most KRG_SCHED_MAX_PARAMS */
	/* Optional: per-node private state, returned through *state. 0 or -errno. */
	int (*init)(void **state);
	void (*fini)(void *state);
	/* KRG_SCHED_PLACEMENT: choose one of nodes[0..n) (n >= 1, sorted by id)
	 * and store its id in *node. 0, or -errno to leave the choice to krgd
	 * (the local node). */
	int (*place)(void *state, const double *params, const struct krg_sched_node *nodes, size_t n,
		     uint32_t *node);
	/* KRG_SCHED_BALANCER: called every second on every node with the up
	 * nodes and this node's movable processes; fill at most max_moves
	 * moves (each of a process in procs to another node in nodes) and
	 * return how many, 0 for none, or -errno. krgd starts them at once. */
	int (*balance)(void *state, const double *params, const struct krg_sched_node *nodes, size_t n,
		       const struct krg_sched_proc *procs, size_t nprocs, struct krg_sched_move *moves,
		       size_t max_moves);
	/* Optional, and only read when size covers them (a plugin built
	 * before they existed has a smaller size and still loads).
	 * KRG_SCHED_BALANCER: one verdict on a move it asked for, so it can
	 * tune itself. */
	void (*observe)(void *state, const double *params, const struct krg_sched_verdict *v);
	/* The values it uses now in place of params (after its own tuning),
	 * n_params of them into out, shown by `krgadm sched status`. */
	void (*adapted)(void *state, const double *params, double *out);
};

/* The size of the struct before observe/adapted: the smallest krgd loads. */
#define KRG_SCHED_OPS_MIN_SIZE offsetof(struct krg_sched_policy_ops, observe)
/* Whether ops (of ops->size bytes) has field f. */
#define KRG_SCHED_OPS_HAS(ops, f) \
	((ops)->size >= offsetof(struct krg_sched_policy_ops, f) + sizeof((ops)->f) && (ops)->f)

/* What a plugin exports. */
typedef const struct krg_sched_policy_ops *(*krg_sched_policy_entry_fn)(void);
