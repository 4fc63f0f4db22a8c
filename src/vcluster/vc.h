/* vc.h — internals of `krgadm vcluster`, shared by the files of
 * src/vcluster/. Every function returns 0 (or a count) or -errno; the first
 * failure also records a one-line reason with vc_fail(), which the command
 * boundary prints once. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "lib/macro.h"

#define VC_MAX_NODES 64
#define VC_PREFIX_MAX 8
#define VC_STATE_ROOT "/run/krg-vcluster"
#define VC_PORT 7480
#define VC_UP_TIMEOUT_MS 15000
#define VC_QUORUM_TIMEOUT_MS 30000 /* after the sockets: the first election and its commit */

/* ---- vc_util.c: errors, files, processes ---- */

/* Record the reason for a failure (first one wins) and return r. */
int vc_fail(int r, const char *fmt, ...) _printf_(2, 3);
/* The recorded reason, or NULL; and forget it. */
const char *vc_error(void);
void vc_error_clear(void);

int vc_write_file(const char *path, const char *text, mode_t mode);
/* Write to an existing file (cgroup/sysfs knobs): no O_CREAT, no O_TRUNC. */
int vc_write_knob(const char *path, const char *text);
/* Read a whole small file into a fresh NUL-terminated buffer. */
int vc_read_file(const char *path, char **out);
/* Read a file holding one integer. */
int vc_read_long(const char *path, long *out);
int vc_mkdir_p(const char *path, mode_t mode);
/* Remove a tree; a missing path is not an error. */
int vc_rm_rf(const char *path);
/* Run argv (argv[0] looked up in PATH) and wait. stdin/stdout go to
 * /dev/null; the first line of stderr lands in vc_fail() on failure. */
int vc_run(const char *const *argv);
/* Directory holding the running binary (dirname of /proc/self/exe). */
int vc_self_dir(char *buf, size_t len);
/* Move the fds in keep[] to 3, 4, ... (updating keep[]) and close every
 * other fd above 2, so nothing of the caller's leaks into a long-lived
 * process (test harness pipes would never see EOF). */
int vc_keep_fds(int *keep[], size_t n);
/* Point stdin to /dev/null and stdout+stderr to fd (or /dev/null if < 0). */
int vc_redirect_stdio(int fd);
/* Sleep ms milliseconds. */
void vc_msleep(unsigned ms);
long vc_now_ms(void);
/* True if pid exists and is not a zombie. */
bool vc_pid_alive(pid_t pid);
/* Exit status in shell form: code, or 128+signal. */
int vc_wait_status(int status);

/* ---- vc_state.c: names, paths and the host-side state directory ---- */

struct vc_cluster {
	char prefix[VC_PREFIX_MAX + 1];
	char dir[128];      /* /run/krg-vcluster/<prefix> */
	char bridge[16];    /* krgbr-<prefix> */
	int subnet;         /* S of 10.77.S.0/24, 0 if unknown */
	int n_nodes;        /* 0 if unknown */
	int n_static;       /* nodes 1..n_static are in every krgd.conf; the
			     * others joined the running cluster (`add`) */
	int join_via;       /* `add`: the member new nodes ask for an id */
	double cpus;
	bool krgd;          /* start krgd on up */
	bool kdfs;          /* nodes mount kdfs on /run/kdfs (docs/kdfs.md) */
	char extra[512];    /* up --conf lines, in every node's krgd.conf (state dir: conf) */
};

/* Validate prefix ([a-z0-9]{1,8}, not "br") and fill names. */
int vc_cluster_init(struct vc_cluster *c, const char *prefix);
/* Load subnet and node count from the state dir; -ENOENT if no cluster. */
int vc_cluster_load(struct vc_cluster *c);
void vc_node_dir(const struct vc_cluster *c, int i, char *buf, size_t len);
void vc_node_file(const struct vc_cluster *c, int i, const char *name, char *buf, size_t len);
void vc_veth_name(const struct vc_cluster *c, int i, char *buf, size_t len);
void vc_node_addr(const struct vc_cluster *c, int i, char *buf, size_t len);
/* Pid of node i's init from its pid file, checked to still be that node's
 * init (alive, in another pid namespace); -ESRCH otherwise. */
int vc_node_init_pid(const struct vc_cluster *c, int i, pid_t *pid);
/* Take the global lock (serializes subnet choice between parallel ups);
 * returns the lock fd. */
int vc_lock(void);
/* Pick a free S in 1..250: not recorded by another vcluster, not on any
 * host interface. */
int vc_subnet_pick(const char *self_prefix, int *subnet);
/* The krgd.conf text for node i. */
int vc_krgd_conf(const struct vc_cluster *c, int i, char **out);

/* ---- vc_net.c: bridge and veths in the host netns, lo/eth0 in a node ---- */

int vc_bridge_create(const struct vc_cluster *c);
/* Neighbour-table caps raised (never lowered) for a cluster of n nodes. */
void vc_neigh_room(int n);
/* Veth pair: host side krg<prefix>-<i> on the bridge and up, peer named
 * eth0 created directly in the netns of pid. */
int vc_veth_create(const struct vc_cluster *c, int i, pid_t netns_pid);
int vc_link_set(const char *ifname, bool up);
bool vc_link_exists(const char *ifname);
/* Delete every host link of this cluster (veths, then bridge), found by
 * name. Returns how many were deleted. */
int vc_links_delete(const struct vc_cluster *c);
/* Inside a node: lo up, eth0 = addr/24 up (ioctl, no external tools). */
int vc_node_net_config(const char *addr);

/* ---- vc_cgroup.c: per-node cgroup with a CPU quota, v1 or v2 ---- */

/* Create krg-<prefix>/node<i> with quota cpus*100000/100000; path gets the
 * node cgroup directory. */
int vc_cgroup_create(const struct vc_cluster *c, int i, char *path, size_t len);
/* Move pid (0 = self) into the cgroup directory path. */
int vc_cgroup_join(const char *path, pid_t pid);
/* SIGKILL every task in the cluster's cgroups (both hierarchies); returns
 * how many were signalled. */
int vc_cgroup_kill_all(const struct vc_cluster *c);
/* Number of tasks left in the cluster's cgroups. */
int vc_cgroup_count(const struct vc_cluster *c);
/* rmdir node cgroups then the parent, retrying while tasks drain. */
int vc_cgroup_remove(const struct vc_cluster *c);

/* ---- vc_node.c: the node init (pid 1 of the node) ---- */

struct vc_node_spec {
	const struct vc_cluster *c;
	int id;
	const char *cgroup;     /* node cgroup dir */
	const char *krgd_path;  /* krgd binary, or NULL for --no-krgd */
};
/* Start node init; returns its host pid in *pid once the node is fully
 * set up (netns has eth0 configured, mounts done, config written, krgd
 * started). On failure the node is killed and an error recorded. */
int vc_node_start(const struct vc_node_spec *spec, pid_t *pid);
/* exec krgd --config /run/krg/krgd.conf from an O_PATH fd (the binary may
 * be hidden inside the node); signals unblocked. Never returns. */
void vc_exec_krgd(const char *path, int bin_fd) __attribute__((noreturn));
/* Put the node's pid cursor in the range of the node /run/krg/krgd.conf
 * describes (lib/pidrange.h), right before forking krgd: krgd's own pid
 * is then the node's. Best effort. */
void vc_steer_pids(void);

/* ---- vc_enter.c: join a running node ---- */

/* Join node i (cgroup, then ipc/uts/net/pid/mnt namespaces of its init).
 * The caller must fork afterwards for the pid namespace to apply. */
int vc_node_enter(const struct vc_cluster *c, int i);
/* Host pids of processes named comm (NULL: any) in node i's pid namespace,
 * its init excluded. */
int vc_node_find(const struct vc_cluster *c, int i, const char *comm, pid_t *pids, int max);
/* Does node i's krgd API socket accept a connection? */
bool vc_node_socket_ready(pid_t init_pid);
/* Start krgd inside the node the caller already entered (vc_node_enter):
 * double fork so it is reparented to the node init. */
int vc_krgd_spawn_entered(const char *path, int bin_fd, int log_fd);
/* Wait until every node's socket answers, or timeout. */
int vc_wait_sockets(const struct vc_cluster *c, const pid_t *pids, int n, long timeout_ms);
/* vc_quorum.c: wait until every node's krgd says it has quorum, or timeout. */
int vc_wait_quorum(const pid_t *pids, int n, long timeout_ms);

/* ---- commands ---- */
struct vc_args {
	const char *prefix;
	const char *cpus;
	bool no_krgd;
	bool kdfs;
	bool json;
	const char *conf[8];    /* up --conf: krgd.conf lines for every node */
	int n_conf;
	int npos;
	char *pos[8];           /* positional arguments after the subcommand */
	char **cmd;             /* after "--" (exec) */
};
int vc_cmd_up(const struct vc_args *a);
/* vc_cmd_up.c: node i's state dir, cgroup and init (krgd at krgd, or NULL). */
int vc_up_node(const struct vc_cluster *c, int i, const char *krgd, pid_t *pid);
int vc_cmd_down(const struct vc_args *a);
int vc_cmd_exec(const struct vc_args *a);
int vc_cmd_status(const struct vc_args *a);
int vc_cmd_krgd(const struct vc_args *a);
int vc_cmd_link(const struct vc_args *a);
int vc_cmd_add(const struct vc_args *a);
/* Tear down a cluster; quiet selects no output. Returns 0 or -errno. */
int vc_teardown(const struct vc_cluster *c, bool *found);
/* Parse a node id 1..n (n 0 = unknown: up to VC_MAX_NODES). */
int vc_parse_node(const char *s, int n, int *id);
