/* vc_enter.c — getting into a running node from the host: join its cgroup
 * and namespaces (exec, krgd start), find its processes, probe its krgd
 * API socket through /proc/<init>/root (the node's mount view). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "vc.h"

int vc_node_enter(const struct vc_cluster *c, int i)
{
	static const struct { const char *name; int type; } nss[] = {
		/* mnt last: it changes our root and cwd, and /proc/<pid>/ns
		 * paths are opened up front anyway. */
		{ "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET },
		{ "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS },
	};
	int fds[ARRAY_SIZE(nss)];
	_cleanup_free_ char *cg = NULL;
	char path[256];
	pid_t init;
	int r;

	if (vc_node_init_pid(c, i, &init) < 0)
		return vc_fail(-ESRCH, "node %d of vcluster '%s' is not running", i, c->prefix);
	vc_node_file(c, i, "cgroup", path, sizeof(path));
	if ((r = vc_read_file(path, &cg)) < 0)
		return vc_fail(r, "cannot read %s: %s", path, strerror(-r));
	cg[strcspn(cg, "\n")] = 0;
	for (size_t k = 0; k < ARRAY_SIZE(nss); k++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, nss[k].name);
		fds[k] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[k] < 0) {
			r = vc_fail(-errno, "cannot open %s: %s", path, strerror(errno));
			while (k-- > 0)
				close(fds[k]);
			return r;
		}
	}
	/* The node's CPU quota must apply to whatever runs in it. */
	r = vc_cgroup_join(cg, 0);
	for (size_t k = 0; k < ARRAY_SIZE(nss); k++) {
		if (r == 0 && setns(fds[k], nss[k].type) < 0)
			r = vc_fail(-errno, "cannot enter %s namespace of node %d: %s", nss[k].name, i, strerror(errno));
		close(fds[k]);
	}
	return r;
}

static int ns_of(pid_t pid, ino_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* comm alone is not enough: a program run with execveat(fd) may be named
 * after the fd number on older kernels, so the exe basename counts too. */
static bool proc_is(pid_t pid, const char *name)
{
	char path[64], exe[PATH_MAX];
	_cleanup_free_ char *comm = NULL;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (vc_read_file(path, &comm) >= 0) {
		comm[strcspn(comm, "\n")] = 0;
		if (strcmp(comm, name) == 0)
			return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t k = readlink(path, exe, sizeof(exe) - 1);
	if (k <= 0)
		return false;
	exe[k] = 0;
	char *del = strstr(exe, " (deleted)");
	if (del)
		*del = 0;
	const char *base = strrchr(exe, '/');
	return strcmp(base ? base + 1 : exe, name) == 0;
}

int vc_node_find(const struct vc_cluster *c, int i, const char *comm, pid_t *pids, int max)
{
	pid_t init;
	ino_t want, got;
	int n = 0;

	if (vc_node_init_pid(c, i, &init) < 0 || ns_of(init, &want) < 0)
		return 0;
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 0 || pid == init || ns_of(pid, &got) < 0 || got != want)
			continue;
		if ((!comm || proc_is(pid, comm)) && vc_pid_alive(pid))
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

bool vc_node_socket_ready(pid_t init_pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/%d/root/run/krg/krgd.sock", (int)init_pid);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

int vc_krgd_spawn_entered(const char *path, int bin_fd, int log_fd)
{
	int status;

	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return vc_fail(-errno, "fork: %s", strerror(errno));
	if (p == 0) {
		/* First child is in the node's pid ns; its child, orphaned
		 * when it exits, is adopted by the node init. */
		setsid();
		vc_steer_pids();
		pid_t q = fork();
		if (q != 0)
			_exit(q < 0 ? 1 : 0);
		int *keep[] = { &bin_fd, &log_fd };
		if (vc_keep_fds(keep, 2) < 0 || vc_redirect_stdio(log_fd) < 0 || chdir("/") < 0)
			_exit(1);
		vc_exec_krgd(path, bin_fd);
	}
	while (waitpid(p, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return vc_fail(-ECHILD, "cannot start krgd in the node");
	return 0;
}

/* The last line of node i's krgd.log: up's teardown deletes the log, so
 * the error must carry krgd's own reason. */
static void last_log_line(const struct vc_cluster *c, int i, char *buf, size_t len)
{
	char path[256];
	_cleanup_free_ char *s = NULL;

	buf[0] = 0;
	vc_node_file(c, i, "krgd.log", path, sizeof(path));
	int n = vc_read_file(path, &s);
	if (n <= 0)
		return;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
	/* Skip node init's own lines: krgd's last words are the news. */
	for (;;) {
		char *nl = strrchr(s, '\n');
		char *line = nl ? nl + 1 : s;
		if (strncmp(line, "vcluster node init:", 19) != 0 || !nl) {
			snprintf(buf, len, "%s", line);
			return;
		}
		*nl = 0;
	}
}

int vc_wait_sockets(const struct vc_cluster *c, const pid_t *pids, int n, long timeout_ms)
{
	long deadline = vc_now_ms() + timeout_ms;
	bool ready[VC_MAX_NODES + 1] = { false };

	for (;;) {
		int left = 0;
		for (int i = 1; i <= n; i++) {
			if (ready[i] || !pids[i]) /* 0: not waited for */
				continue;
			if (vc_node_socket_ready(pids[i])) {
				ready[i] = true;
				continue;
			}
			pid_t k;
			char last[300];
			if (!vc_pid_alive(pids[i])) {
				last_log_line(c, i, last, sizeof(last));
				return vc_fail(-ESRCH, "node %d: node init died; its log ends: %s", i, last);
			}
			/* Any process but init counts: at up nothing else runs
			 * in the node, and a krgd wrapper (script, valgrind)
			 * has another name. */
			if (vc_node_find(c, i, NULL, &k, 1) == 0) {
				last_log_line(c, i, last, sizeof(last));
				return vc_fail(-ESRCH, "node %d: krgd exited; its log ends: %s", i, last);
			}
			left++;
		}
		if (!left)
			return 0;
		if (vc_now_ms() > deadline) {
			for (int i = 1; i <= n; i++)
				if (!ready[i]) {
					char last[300];
					last_log_line(c, i, last, sizeof(last));
					return vc_fail(-ETIMEDOUT, "node %d: krgd API socket not ready after %ld s; its log ends: %s",
						       i, timeout_ms / 1000, last);
				}
		}
		vc_msleep(50);
	}
}
