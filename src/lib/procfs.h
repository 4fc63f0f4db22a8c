/* procfs.h — what krgd's services read from /proc and the cgroup files of
 * their own node (procfs.c: processes; procfs_node.c: node figures).
 * Nothing here talks to the network. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One process as /proc/PID/stat and status show it. */
struct proc_info {
	pid_t pid;
	pid_t ppid;
	char state;                /* R, S, D, Z, T, ... */
	char comm[32];             /* from stat, without the parentheses */
	uint64_t cpu_ticks;        /* utime + stime, clock ticks */
	uint64_t start_ticks;      /* since boot, clock ticks */
	uint64_t rss_pages;
	uint32_t threads;
	bool krg;                  /* a descendant of the root given to the scan */
};

/* Every process of this pid namespace; krg set on the descendants of root
 * (root itself excluded). *out malloc'd (may be NULL with *n == 0). */
int procfs_scan(pid_t root, struct proc_info **out, size_t *n);
/* Whether pid is a descendant of root right now (walks /proc ppid links). */
bool procfs_is_descendant(pid_t pid, pid_t root);
/* Real and saved uid from /proc/PID/status; -ESRCH if gone. */
int procfs_uids(pid_t pid, uid_t *ruid, uid_t *suid);
/* argv joined by spaces (at most len-1 bytes); 0 if empty (kernel thread,
 * zombie) or -errno. */
int procfs_cmdline(pid_t pid, char *buf, size_t len);

/* Node figures. */
struct node_sample {
	double cpus;
	double load1, load5, load15;
	uint64_t mem_total_kb, mem_free_kb, mem_available_kb;
};
/* CPU capacity from this process's cgroup CPU quota (v1 cfs or v2
 * cpu.max; the smallest along the path to the hierarchy's root), else the
 * number of online CPUs; never more than the online CPUs. */
double procfs_cgroup_cpus(void);
int procfs_sample_node(struct node_sample *s);

/* System clock facts for %cpu and start times. */
long procfs_clk_tck(void);
int procfs_uptime_ms(uint64_t *ms);
