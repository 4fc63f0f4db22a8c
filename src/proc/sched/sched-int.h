/* sched-int.h — private to src/proc/sched: the policy table, probes and
 * capability helpers shared by its files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "krg/sched_policy.h"
#include "proc/schedsvc.h"

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
