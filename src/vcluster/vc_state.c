/* vc_state.c — cluster names and the host-side state directory
 * /run/krg-vcluster/<prefix>/: subnet, nodes, cluster.key, node<i>/{krgd.conf,
 * krgd.log,init.pid,cgroup}. The state dir is a cache for convenience:
 * `down` finds leftovers by name even when it is gone. */
#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/stat.h>
#include "vc.h"

int vc_cluster_init(struct vc_cluster *c, const char *prefix)
{
	size_t n = strlen(prefix);

	memset(c, 0, sizeof(*c));
	if (n < 1 || n > VC_PREFIX_MAX || strspn(prefix, "abcdefghijklmnopqrstuvwxyz0123456789") != n)
		return vc_fail(-EINVAL, "invalid prefix '%s': want 1..%d characters of [a-z0-9]", prefix, VC_PREFIX_MAX);
	/* Veths are krg<prefix>-<i> and bridges krgbr-<prefix>: prefix "br"
	 * would make node i's veth collide with the bridge of prefix "<i>". */
	if (strcmp(prefix, "br") == 0)
		return vc_fail(-EINVAL, "invalid prefix 'br': reserved");
	snprintf(c->prefix, sizeof(c->prefix), "%s", prefix);
	snprintf(c->dir, sizeof(c->dir), VC_STATE_ROOT "/%s", prefix);
	snprintf(c->bridge, sizeof(c->bridge), "krgbr-%s", prefix);
	c->cpus = 1.0;
	c->krgd = true;
	return 0;
}

int vc_cluster_load(struct vc_cluster *c)
{
	char path[256];
	long v;
	int r;

	snprintf(path, sizeof(path), "%s/subnet", c->dir);
	r = vc_read_long(path, &v);
	if (r == -ENOENT)
		return vc_fail(r, "no vcluster '%s' (no %s)", c->prefix, c->dir);
	if (r < 0 || v < 1 || v > 250)
		return vc_fail(r < 0 ? r : -EINVAL, "state of vcluster '%s' is corrupt (%s); run: krgadm vcluster down --prefix %s",
			       c->prefix, path, c->prefix);
	c->subnet = (int)v;
	snprintf(path, sizeof(path), "%s/nodes", c->dir);
	r = vc_read_long(path, &v);
	if (r < 0 || v < 1 || v > VC_MAX_NODES)
		return vc_fail(r < 0 ? r : -EINVAL, "state of vcluster '%s' is corrupt (%s); run: krgadm vcluster down --prefix %s",
			       c->prefix, path, c->prefix);
	c->n_nodes = (int)v;
	snprintf(path, sizeof(path), "%s/static", c->dir);
	c->n_static = vc_read_long(path, &v) == 0 && v >= 1 && v <= c->n_nodes ? (int)v : c->n_nodes;
	snprintf(path, sizeof(path), "%s/kdfs", c->dir);
	c->kdfs = access(path, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/conf", c->dir);
	_cleanup_free_ char *extra = NULL;
	if (vc_read_file(path, &extra) >= 0) /* its length */
		snprintf(c->extra, sizeof(c->extra), "%s", extra);
	return 0;
}

void vc_node_dir(const struct vc_cluster *c, int i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/node%d", c->dir, i);
}

void vc_node_file(const struct vc_cluster *c, int i, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/node%d/%s", c->dir, i, name);
}

void vc_veth_name(const struct vc_cluster *c, int i, char *buf, size_t len)
{
	snprintf(buf, len, "krg%s-%d", c->prefix, i);
}

void vc_node_addr(const struct vc_cluster *c, int i, char *buf, size_t len)
{
	snprintf(buf, len, "10.77.%d.%d", c->subnet, i);
}

static int ns_ino(const char *path, ino_t *ino)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*ino = st.st_ino;
	return 0;
}

int vc_node_init_pid(const struct vc_cluster *c, int i, pid_t *pid)
{
	char path[256];
	long v;
	ino_t mine = 0, theirs = 0;

	vc_node_file(c, i, "init.pid", path, sizeof(path));
	if (vc_read_long(path, &v) < 0 || v <= 1)
		return -ESRCH;
	if (!vc_pid_alive((pid_t)v))
		return -ESRCH;
	/* A recycled pid would be a process of the host pid namespace; a node
	 * init is the only thing whose pid namespace differs. */
	snprintf(path, sizeof(path), "/proc/%ld/ns/pid", v);
	if (ns_ino(path, &theirs) < 0 || ns_ino("/proc/self/ns/pid", &mine) < 0 || mine == theirs)
		return -ESRCH;
	*pid = (pid_t)v;
	return 0;
}

int vc_lock(void)
{
	int r = vc_mkdir_p(VC_STATE_ROOT, 0755);
	if (r < 0)
		return r;
	int fd = open(VC_STATE_ROOT "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vc_fail(-errno, "cannot open " VC_STATE_ROOT "/.lock: %s", strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return vc_fail(r, "cannot lock " VC_STATE_ROOT "/.lock: %s", strerror(-r));
		}
	}
	return fd;
}

int vc_subnet_pick(const char *self_prefix, int *subnet)
{
	bool used[256] = { false };
	DIR *d = opendir(VC_STATE_ROOT);
	struct ifaddrs *ifa = NULL;

	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			char path[512];
			long v;
			if (de->d_name[0] == '.' || strcmp(de->d_name, self_prefix) == 0)
				continue;
			snprintf(path, sizeof(path), VC_STATE_ROOT "/%s/subnet", de->d_name);
			if (vc_read_long(path, &v) == 0 && v >= 0 && v < 256)
				used[v] = true;
		}
		closedir(d);
	}
	/* A crashed vcluster whose state dir is gone may still hold a bridge
	 * address; so may anything else on the host. */
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
			if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET)
				continue;
			uint32_t a = ntohl(((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
			if ((a >> 16) == ((10u << 8) | 77u))
				used[(a >> 8) & 0xff] = true;
		}
		freeifaddrs(ifa);
	}
	for (int s = 1; s <= 250; s++)
		if (!used[s]) {
			*subnet = s;
			return 0;
		}
	return vc_fail(-EADDRINUSE, "no free subnet 10.77.S.0/24 (S in 1..250)");
}

int vc_krgd_conf(const struct vc_cluster *c, int i, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	if (c->n_static && i > c->n_static) {
		/* Joins the running cluster: no id, no node list (docs/reconfiguration.md). */
		fprintf(f, "# written by krgadm vcluster add\n");
		fprintf(f, "address = 10.77.%d.%d:%d\n", c->subnet, i, VC_PORT);
		fprintf(f, "join = 10.77.%d.%d:%d\n", c->subnet, c->join_via ? c->join_via : 1, VC_PORT);
	} else {
		fprintf(f, "# written by krgadm vcluster up\n");
		fprintf(f, "node_id = %d\n", i);
		for (int j = 1; j <= (c->n_static ? c->n_static : c->n_nodes); j++)
			fprintf(f, "node = %d 10.77.%d.%d:%d\n", j, c->subnet, j, VC_PORT);
	}
	fprintf(f, "cluster_name = %s\n", c->prefix);
	fprintf(f, "state_dir = /var/lib/krg\n");
	fprintf(f, "key_file = /run/krg/cluster.key\n");
	fprintf(f, "api_socket = /run/krg/krgd.sock\n");
	fprintf(f, "encrypt = on\n");
	fprintf(f, "log_level = debug\n");
	/* Under the node's private /run and /var/lib/krg: no node can see
	 * another's mount or share, so nothing passes through the host. */
	if (c->kdfs)
		fprintf(f, "kdfs_mount = /run/kdfs\nkdfs_dir = /var/lib/krg/kdfs\n"
			   "kdfs_repair_grace_ms = 2000\n"); /* tests see repairs in seconds */
	if (c->extra[0])
		fprintf(f, "# up --conf\n%s", c->extra);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}
