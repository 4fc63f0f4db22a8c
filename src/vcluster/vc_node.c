/* vc_node.c — the node init: pid 1 of a node's pid namespace.
 *
 *   krgadm (P) --fork--> A: join cgroup, unshare(net,mnt,pid,ipc,uts)
 *                        A --fork--> B (pid 1 of the new pid ns), A exits
 *   P moves the veth peer into B's netns, then says "go" on a pipe;
 *   B makes mounts private, mounts /proc, /run, /tmp, /var/lib/krg,
 *   /dev/shm, writes /run/krg/{krgd.conf,cluster.key}, sets hostname and
 *   addresses, starts krgd, says "ok", and then only reaps children.
 *
 * Everything B needs from the host (config text, key, log fd, krgd binary
 * fd) is taken before the tmpfs mounts hide /run/krg-vcluster. B drops
 * every inherited fd and detaches from the terminal so `up` returns and
 * harnesses that capture its output see EOF. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdlib.h>
#include "vc.h"
#include "lib/config.h"
#include "lib/pidrange.h"

extern char **environ;

enum { MSG_PID = 1, MSG_OK, MSG_ERR };

struct node_msg {
	int type;
	int pid;
	int err;
	char text[400];
};

struct node_ctx {
	int id;
	char hostname[64];
	char addr[32];
	char *conf;
	char *key;
	int st_fd;   /* write: messages to P */
	int go_fd;   /* read: P's go */
	int log_fd;  /* node<i>/krgd.log on the host */
	int bin_fd;  /* O_PATH of krgd, or -1 */
	const char *bin_path;
};

static void send_msg(int fd, int type, int pid, int err)
{
	struct node_msg m = { .type = type, .pid = pid, .err = err };
	const char *e = vc_error();

	snprintf(m.text, sizeof(m.text), "%s", e ? e : (err ? strerror(-err) : ""));
	/* One write below PIPE_BUF is atomic; A and B share this pipe. */
	if (write(fd, &m, sizeof(m)) < 0) {
		/* P is gone; nothing to tell. */
	}
}


void vc_steer_pids(void)
{
	/* krgd's own pid is the parent's pid of `krg run`'s processes: from
	 * the node's range, it is free on the others, and a migrant's holder
	 * there can take it (docs/migration.md, "Pids"). krgd steers the
	 * rest itself; best effort. */
	struct krg_config *cfg = calloc(1, sizeof(*cfg));
	char err[256];
	if (cfg && krg_config_load("/run/krg/krgd.conf", cfg, err, sizeof(err)) == 0) {
		struct krg_pidrange r = krg_pidrange_of_config(cfg);
		krg_pidrange_steer(&r);
	}
	free(cfg);
}

void vc_exec_krgd(const char *path, int bin_fd)
{
	char *const argv[] = { "krgd", "--config", "/run/krg/krgd.conf", NULL };
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setenv("KRG_CONFIG", "/run/krg/krgd.conf", 1);
	/* By path when the node sees it (also works for scripts); else by
	 * fd: the build dir may be under /tmp, hidden by the node's tmpfs. */
	if (path)
		execv(path, argv);
	syscall(SYS_execveat, bin_fd, "", argv, environ, AT_EMPTY_PATH);
	fprintf(stderr, "vcluster: cannot execute krgd: %s\n", strerror(errno));
	_exit(127);
}

static int mount_tmpfs(const char *dir, const char *opts)
{
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return vc_fail(-errno, "cannot mount tmpfs on %s: %s", dir, strerror(errno));
	return 0;
}

static int node_setup(struct node_ctx *n)
{
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return vc_fail(-errno, "cannot make mounts private: %s", strerror(errno));
	/* A /proc for the new pid ns: the node must see only its processes. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return vc_fail(-errno, "cannot mount /proc: %s", strerror(errno));
	/* A build tree under /tmp (CI clones there) would vanish under the
	 * node's private /tmp, and with it the krg tools `exec` puts on PATH:
	 * carry its top directory over with a bind mount. */
	char self[PATH_MAX], top[PATH_MAX] = "";
	_cleanup_close_ int top_fd = -1;
	if (vc_self_dir(self, sizeof(self)) == 0 && strncmp(self, "/tmp/", 5) == 0) {
		const char *slash = strchr(self + 5, '/');
		size_t n = slash ? (size_t)(slash - self) : strlen(self);
		memcpy(top, self, n);
		top[n] = '\0';
		top_fd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if ((r = mount_tmpfs("/run", "mode=0755")) < 0 || (r = mount_tmpfs("/tmp", "mode=1777")) < 0 ||
	    (r = mount_tmpfs("/var/lib/krg", "mode=0700")) < 0 || (r = mount_tmpfs("/dev/shm", "mode=1777")) < 0)
		return r;
	if (top_fd >= 0) {
		char src[64];
		snprintf(src, sizeof(src), "/proc/self/fd/%d", top_fd);
		if (mkdir(top, 0755) < 0 && errno != EEXIST)
			return vc_fail(-errno, "cannot create %s in the node: %s", top, strerror(errno));
		if (mount(src, top, NULL, MS_BIND | MS_REC, NULL) < 0)
			return vc_fail(-errno, "cannot bind %s into the node: %s", top, strerror(errno));
	}
	if (mkdir("/run/krg", 0755) < 0 && errno != EEXIST)
		return vc_fail(-errno, "cannot create /run/krg: %s", strerror(errno));
	if ((r = vc_write_file("/run/krg/krgd.conf", n->conf, 0644)) < 0)
		return r;
	if ((r = vc_write_file("/run/krg/cluster.key", n->key, 0600)) < 0)
		return r;
	if (sethostname(n->hostname, strlen(n->hostname)) < 0)
		return vc_fail(-errno, "sethostname: %s", strerror(errno));
	return vc_node_net_config(n->addr);
}

static void node_reap(pid_t krgd)
{
	int status;
	pid_t p;

	while ((p = waitpid(-1, &status, WNOHANG)) > 0)
		if (p == krgd)
			fprintf(stderr, "vcluster node init: krgd (pid %d in node) exited with status %d\n", (int)p,
				vc_wait_status(status));
}

static void node_init_main(struct node_ctx *n) __attribute__((noreturn));
static void node_init_main(struct node_ctx *n)
{
	int *keep[] = { &n->st_fd, &n->go_fd, &n->log_fd, &n->bin_fd };
	sigset_t set;
	char go;
	pid_t krgd = -1;

	setsid();
	if (vc_keep_fds(keep, n->bin_fd >= 0 ? 4 : 3) < 0 || vc_redirect_stdio(n->log_fd) < 0)
		_exit(1);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (chdir("/") < 0)
		_exit(1);
	prctl(PR_SET_NAME, "krg-node-init");
	/* Signals arrive through sigwaitinfo only; pid 1 of a pid ns gets no
	 * default action for signals it does not handle, so this is explicit. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	/* EOF instead of "go": P died (e.g. killed during up); give up. */
	if (read(n->go_fd, &go, 1) != 1)
		_exit(1);
	close(n->go_fd);
	int r = node_setup(n);
	if (r < 0) {
		fprintf(stderr, "vcluster node init: %s\n", vc_error() ? vc_error() : strerror(-r));
		send_msg(n->st_fd, MSG_ERR, 0, r);
		_exit(1);
	}
	if (n->bin_fd >= 0) {
		vc_steer_pids();
		krgd = fork();
		if (krgd < 0) {
			r = vc_fail(-errno, "cannot fork krgd: %s", strerror(errno));
			send_msg(n->st_fd, MSG_ERR, 0, r);
			_exit(1);
		}
		if (krgd == 0)
			vc_exec_krgd(n->bin_path, n->bin_fd);
		close(n->bin_fd);
	}
	fprintf(stderr, "vcluster node init: node %d up as %s (%s)%s\n", n->id, n->hostname, n->addr,
		krgd > 0 ? ", krgd started" : "");
	send_msg(n->st_fd, MSG_OK, 0, 0);
	close(n->st_fd);
	free(n->conf);
	free(n->key);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			node_reap(krgd);
			continue;
		}
		/* Stop: kill the whole node, reap, leave. */
		fprintf(stderr, "vcluster node init: signal %d, stopping node %d\n", sig, n->id);
		kill(-1, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		_exit(0);
	}
}

/* Child A: enter the cgroup and new namespaces, fork pid 1, report it. */
static void node_fork_init(struct node_ctx *n, const char *cgroup) __attribute__((noreturn));
static void node_fork_init(struct node_ctx *n, const char *cgroup)
{
	int r = vc_cgroup_join(cgroup, 0);
	if (r < 0) {
		send_msg(n->st_fd, MSG_ERR, 0, r);
		_exit(1);
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
		r = vc_fail(-errno, "unshare of node namespaces failed: %s", strerror(errno));
		send_msg(n->st_fd, MSG_ERR, 0, r);
		_exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = vc_fail(-errno, "cannot fork node init: %s", strerror(errno));
		send_msg(n->st_fd, MSG_ERR, 0, r);
		_exit(1);
	}
	if (pid == 0)
		node_init_main(n);
	send_msg(n->st_fd, MSG_PID, pid, 0);
	_exit(0);
}

static int read_msg(int fd, struct node_msg *m)
{
	ssize_t k;

	do
		k = read(fd, m, sizeof(*m));
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k != (ssize_t)sizeof(*m))
		return -EPIPE;
	m->text[sizeof(m->text) - 1] = 0;
	return 0;
}

int vc_node_start(const struct vc_node_spec *spec, pid_t *pid_out)
{
	const struct vc_cluster *c = spec->c;
	struct node_ctx n = { .id = spec->id, .st_fd = -1, .go_fd = -1, .log_fd = -1, .bin_fd = -1 };
	_cleanup_free_ char *conf = NULL, *key = NULL;
	_cleanup_close_ int log_fd = -1, bin_fd = -1, st_r = -1, st_w = -1, go_r = -1, go_w = -1;
	char path[256];
	struct node_msg m;
	int fds[2], r;
	pid_t a, init = -1;

	snprintf(n.hostname, sizeof(n.hostname), "%s-node%d", c->prefix, spec->id);
	vc_node_addr(c, spec->id, n.addr, sizeof(n.addr));
	if ((r = vc_krgd_conf(c, spec->id, &conf)) < 0)
		return vc_fail(r, "cannot format krgd.conf");
	vc_node_file(c, spec->id, "krgd.conf", path, sizeof(path));
	if ((r = vc_write_file(path, conf, 0644)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/cluster.key", c->dir);
	if ((r = vc_read_file(path, &key)) < 0)
		return vc_fail(r, "cannot read %s: %s", path, strerror(-r));
	vc_node_file(c, spec->id, "krgd.log", path, sizeof(path));
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (log_fd < 0)
		return vc_fail(-errno, "cannot open %s: %s", path, strerror(errno));
	if (spec->krgd_path) {
		bin_fd = open(spec->krgd_path, O_PATH | O_CLOEXEC);
		if (bin_fd < 0)
			return vc_fail(-errno, "cannot open krgd binary %s: %s", spec->krgd_path, strerror(errno));
	}
	/* The /var/lib/krg mount point must exist: the node's mount ns is a
	 * copy of the host's. */
	if ((r = vc_mkdir_p("/var/lib/krg", 0700)) < 0)
		return r;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return vc_fail(-errno, "pipe: %s", strerror(errno));
	st_r = fds[0], st_w = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return vc_fail(-errno, "pipe: %s", strerror(errno));
	go_r = fds[0], go_w = fds[1];

	fflush(NULL);
	a = fork();
	if (a < 0)
		return vc_fail(-errno, "fork: %s", strerror(errno));
	if (a == 0) {
		close(st_r);
		close(go_w);
		n.conf = conf, n.key = key;
		n.st_fd = st_w, n.go_fd = go_r, n.log_fd = log_fd, n.bin_fd = bin_fd;
		n.bin_path = spec->krgd_path;
		node_fork_init(&n, spec->cgroup);
	}
	close(TAKE_FD(st_w));
	close(TAKE_FD(go_r));
	r = read_msg(st_r, &m);
	while (waitpid(a, NULL, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return vc_fail(r, "node %d: init process died before starting", spec->id);
	if (m.type != MSG_PID)
		return vc_fail(m.err ? m.err : -EIO, "node %d: %s", spec->id, m.text);
	init = m.pid;
	/* Recorded at once so `down` finds it even if we die right here. */
	vc_node_file(c, spec->id, "init.pid", path, sizeof(path));
	char pidtxt[32];
	snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)init);
	if ((r = vc_write_file(path, pidtxt, 0644)) < 0)
		goto kill;
	if ((r = vc_veth_create(c, spec->id, init)) < 0)
		goto kill;
	if (write(go_w, "g", 1) != 1) {
		r = vc_fail(-errno, "node %d: cannot signal node init: %s", spec->id, strerror(errno));
		goto kill;
	}
	r = read_msg(st_r, &m);
	if (r < 0) {
		r = vc_fail(-EIO, "node %d: init died during setup; see %s/node%d/krgd.log", spec->id, c->dir, spec->id);
		goto kill;
	}
	if (m.type != MSG_OK) {
		r = vc_fail(m.err ? m.err : -EIO, "node %d: %s", spec->id, m.text);
		goto kill;
	}
	*pid_out = init;
	return 0;
kill:
	kill(init, SIGKILL);
	return r;
}
