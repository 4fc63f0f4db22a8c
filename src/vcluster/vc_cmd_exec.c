/* vc_cmd_exec.c — `krgadm vcluster exec I -- CMD...`: run CMD inside node
 * I (its cgroup and ipc/uts/net/pid/mnt namespaces) and return its status,
 * 128+signal if it was killed. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include "vc.h"

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

int vc_parse_node(const char *s, int n, int *id)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || end == s || v < 1 || v > (n ? n : VC_MAX_NODES))
		return vc_fail(-EINVAL, "invalid node '%s': want 1..%d", s, n ? n : VC_MAX_NODES);
	*id = (int)v;
	return 0;
}

int vc_cmd_exec(const struct vc_args *a)
{
	struct vc_cluster c;
	char cwd[PATH_MAX], self[PATH_MAX - 64], path[PATH_MAX * 2];
	int id, r, status;

	if (a->npos != 1 || !a->cmd || !a->cmd[0])
		return vc_fail(-EINVAL, "usage: krgadm vcluster exec I [--prefix NAME] -- CMD [ARGS...]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0 || (r = vc_cluster_load(&c)) < 0)
		return r;
	if ((r = vc_parse_node(a->pos[0], c.n_nodes, &id)) < 0)
		return r;
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	if ((r = vc_self_dir(self, sizeof(self))) < 0)
		return r;
	/* To go back home once the child runs: see below. */
	_cleanup_close_ int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int own_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (own_pidns < 0 || own_mntns < 0)
		return vc_fail(-errno, "cannot open /proc/self/ns: %s", strerror(errno));
	if ((r = vc_node_enter(&c, id)) < 0)
		return r;
	/* Same cwd when the node sees it (it does unless under /run, /tmp,
	 * /var/lib/krg or /dev/shm), else the node's root. */
	if (chdir(cwd) < 0 && chdir("/") < 0)
		return vc_fail(-errno, "chdir /: %s", strerror(errno));
	const char *old = getenv("PATH");
	snprintf(path, sizeof(path), "%s:%s", self, old ? old : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	setenv("PATH", path, 1);
	setenv("KRG_CONFIG", "/run/krg/krgd.conf", 1);

	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return vc_fail(-errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Handlers reset to default at exec; the fork makes us a
		 * member of the node's pid namespace. */
		execvp(a->cmd[0], a->cmd);
		fprintf(stderr, "krgadm vcluster exec: %s: %s\n", a->cmd[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	child_pid = pid;
	/* The waiting parent goes back to the host's pid and mount
	 * namespaces: whatever runs in it until exit (e.g. LeakSanitizer,
	 * which forks a tracer and reads /proc/<our pid>) must see the host. */
	if (setns(own_pidns, CLONE_NEWPID) < 0 || setns(own_mntns, CLONE_NEWNS) < 0)
		return vc_fail(-errno, "cannot return to the host namespaces: %s", strerror(errno));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return vc_fail(-errno, "waitpid: %s", strerror(errno));
	return vc_wait_status(status);
}
