/* sched-int.h — private to src/proc/sched: the policy table, probes and
 * capability helpers shared by its files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "krg/sched_policy.h"
#include "proc/schedsvc.h"
#include "proc/table.h"

#define SCHED_MAX_POLICIES 16
#define SCHED_MAX_PROCS 512

/* Built-in policies, one file each. */
extern const struct krg_sched_policy_ops sched_least_loaded;
extern const struct krg_sched_policy_ops sched_round_robin;
extern const struct krg_sched_policy_ops sched_mosix;

/* One policy known to this node. */
struct sched_policy {
	const struct krg_sched_policy_ops *ops; /* borrowed: static, or from a plugin never unloaded */
	void *state;                            /* owned by the policy (init/fini) */
	bool enabled;
	double params[KRG_SCHED_MAX_PARAMS];
	char source[256];                       /* "builtin" or the plugin's path */
	char sha256[65];                        /* a plugin's contents in hex, "" for a builtin */
	uint64_t useful, useless;               /* verdicts on its moves started on this node */
};

/* Probes of this node, refreshed every second (sched_probe.c). */
struct sched_proc_probe {
	pid_t pid;
	uint32_t id;
	uint64_t start_ticks;
	uint64_t cpu_ticks;          /* cumulative utime + stime */
	uint64_t io_bytes_r, io_bytes_w; /* cumulative rchar / wchar of /proc/PID/io */
	double cpu_pct;              /* over the last period, 100 = one CPU */
	uint64_t rss_kb;
	double io_r_kbps, io_w_kbps; /* over the last period */
	char comm[32];
	char state;                  /* R, S, D, ... */
	bool migrant;                /* arrived here by migration */
	bool rated;                  /* seen in two samples: the rates are real */
	uint64_t age_ms;             /* since it started (a migrant: since it arrived) */
};

struct sched_probes {
	uint64_t t_ms;               /* monotonic time of the sample */
	struct sched_proc_probe *procs; /* owned, n entries sorted by pid */
	size_t n;
	double node_io_kbps;         /* rchar + wchar of every process of the node */
	double node_cpu_used;        /* CPUs busy with the node's processes */
	uint64_t node_io_bytes;      /* cumulative, for the next delta */
	uint64_t node_cpu_ticks;
};

/* Sample the probes (all processes of this pid namespace; per-process
 * figures for the descendants of krgd). */
struct krg_proc_table;
/* t: the process table, which knows what each process is (its kind hook). */
int sched_probe_sample(struct sched_probes *p, const struct krg_proc_table *t, pid_t krgd, uint32_t self);
void sched_probes_free(struct sched_probes *p);

/* plugin_file.c: open PATH for loading as a plugin, after checking that
 * it and every directory above it are root's and writable by root only,
 * with no symbolic link on the way; *fd (owned by the caller) is the file
 * checked, sha256 its contents. Fails with a one-line reason in err. */
#define SCHED_SHA256_BYTES 32
#define SCHED_SHA256_HEX 65     /* 64 hex digits and the NUL */
#define SCHED_PATH_MAX 256
int sched_plugin_open(const char *path, int *fd, uint8_t sha256[SCHED_SHA256_BYTES], char *err, size_t errlen);
void sched_sha256_hex(const uint8_t sha256[SCHED_SHA256_BYTES], char hex[SCHED_SHA256_HEX]);

/* caps.c */
int sched_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start);
int sched_caps_entry(struct krg_cluster *c, uint32_t id, pid_t pid, struct krg_caps *out);

/* Distant fork (sched_service.c): where child pid (id; parent pp) of a
 * DISTANT_FORK process goes: 1 and *node another node, or 0 (it stays).
 * placed: a move to node was started (ok) or refused. */
struct krg_sched;
int sched_distant_target(struct krg_sched *sc, uint32_t id, pid_t pid, pid_t pp, uint32_t *node);
void sched_distant_placed(struct krg_sched *sc, uint32_t id, uint32_t node, bool ok);

/* sched_exec.c: placement at execve (the IPC filter's exec hook). */
struct sched_exec;
int sched_exec_new(struct krg_sched *sc, uv_loop_t *loop, uint32_t self, struct sched_exec **out);
void sched_exec_free(struct sched_exec *x);
/* tid is blocked before its execve of the program at path (its address
 * in tid, 0 if unknown): true if it is to be stopped right after the
 * exec goes on, and moved. */
bool sched_exec_hook(struct sched_exec *x, pid_t tid, uint64_t path);
void sched_exec_stats(const struct sched_exec *x, uint64_t *placed, uint64_t *failed);

/* Through the hooks the migration service registered (sched_service.c):
 * start moving id to node `to` (krg_sched_mover_fn), and what process
 * pid is to the process table (a migrant, krgd's machinery, ordinary). */
int sched_move(struct krg_sched *sc, uint32_t id, uint32_t to, krg_sched_move_done_fn done, void *data, char *err,
	       size_t errlen);
enum krg_proc_kind sched_proc_kind(struct krg_sched *sc, pid_t pid, uint32_t *id, uint32_t *home);
