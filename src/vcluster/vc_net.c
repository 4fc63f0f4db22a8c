/* vc_net.c — vcluster networking. Host side: a bridge krgbr-<prefix>
 * (10.77.S.254/24) and one veth per node, host end krg<prefix>-<i> on the
 * bridge, node end eth0 born inside the node's netns (so no temporary host
 * name can clash with another cluster's). Host links are managed with `ip`
 * (iproute2 is a dependency); inside the node, lo and eth0 are configured
 * with ioctls so node init needs no external tool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "vc.h"

int vc_bridge_create(const struct vc_cluster *c)
{
	char addr[32];
	int r;

	snprintf(addr, sizeof(addr), "10.77.%d.254/24", c->subnet);
	r = vc_run((const char *const[]){ "ip", "link", "add", c->bridge, "type", "bridge", NULL });
	if (r < 0)
		return r;
	r = vc_run((const char *const[]){ "ip", "addr", "add", addr, "dev", c->bridge, NULL });
	if (r < 0)
		return r;
	return vc_run((const char *const[]){ "ip", "link", "set", c->bridge, "up", NULL });
}

/* The kernel keeps one neighbour (ARP/NDP) table for every network
 * namespace together, capped by the init namespace's gc_thresh3 (1024 by
 * default). Nodes that all talk to each other need about N*(N-1) entries:
 * past ~32 nodes new pairs cannot resolve each other ("neighbor table
 * overflow" in dmesg) and their links sit in the handshake. Raise the caps
 * (never lower them) to room for n nodes, twice over for other clusters. */
static void neigh_room_one(const char *fam, int n)
{
	static const char *const names[] = { "gc_thresh2", "gc_thresh3" };
	long want[] = { (long)n * n * 2, (long)n * n * 4 };
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		char path[96], val[32];
		_cleanup_free_ char *cur = NULL;
		snprintf(path, sizeof(path), "/proc/sys/net/%s/neigh/default/%s", fam, names[k]);
		if (vc_read_file(path, &cur) < 0)
			continue;
		long have = strtol(cur, NULL, 10);
		if (have >= want[k])
			continue;
		snprintf(val, sizeof(val), "%ld\n", want[k]);
		if (vc_write_knob(path, val) < 0)
			fprintf(stderr, "vcluster: cannot raise %s from %ld to %ld: %d nodes may not all reach each other\n",
				path, have, want[k], n);
		else
			fprintf(stderr, "vcluster: %s raised from %ld to %ld for %d nodes (one neighbour table for all namespaces)\n",
				path, have, want[k], n);
	}
}

void vc_neigh_room(int n)
{
	if (n * n * 4 <= 1024)
		return; /* the kernel's default holds it */
	neigh_room_one("ipv4", n);
	neigh_room_one("ipv6", n);
}

int vc_veth_create(const struct vc_cluster *c, int i, pid_t netns_pid)
{
	char veth[IFNAMSIZ], pid[16];
	int r;

	vc_veth_name(c, i, veth, sizeof(veth));
	snprintf(pid, sizeof(pid), "%d", (int)netns_pid);
	r = vc_run((const char *const[]){ "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pid, NULL });
	if (r < 0)
		return r;
	r = vc_run((const char *const[]){ "ip", "link", "set", veth, "master", c->bridge, NULL });
	if (r < 0)
		return r;
	return vc_link_set(veth, true);
}

int vc_link_set(const char *ifname, bool up)
{
	return vc_run((const char *const[]){ "ip", "link", "set", ifname, up ? "up" : "down", NULL });
}

bool vc_link_exists(const char *ifname)
{
	return if_nametoindex(ifname) != 0;
}

/* krg<prefix>-<digits>, exactly: "krga-1" must not match prefix "ab". */
static bool is_cluster_veth(const struct vc_cluster *c, const char *name)
{
	size_t pl = strlen(c->prefix);

	if (strncmp(name, "krg", 3) != 0 || strncmp(name + 3, c->prefix, pl) != 0 || name[3 + pl] != '-')
		return false;
	const char *d = name + 4 + pl;
	return *d && strspn(d, "0123456789") == strlen(d);
}

int vc_links_delete(const struct vc_cluster *c)
{
	struct if_nameindex *ifs = if_nameindex();
	int n = 0, r = 0;

	if (!ifs)
		return vc_fail(-errno, "cannot list network interfaces: %s", strerror(errno));
	for (struct if_nameindex *p = ifs; p->if_index; p++) {
		if (!is_cluster_veth(c, p->if_name))
			continue;
		/* Gone already if its node's netns died meanwhile: fine. */
		if (vc_run((const char *const[]){ "ip", "link", "del", p->if_name, NULL }) < 0 && vc_link_exists(p->if_name))
			r = -EIO;
		else
			n++;
		vc_error_clear();
	}
	if_freenameindex(ifs);
	if (vc_link_exists(c->bridge)) {
		if (vc_run((const char *const[]){ "ip", "link", "del", c->bridge, NULL }) < 0)
			return r < 0 ? r : -EIO;
		n++;
	}
	if (r < 0)
		return vc_fail(r, "cannot delete the veths of vcluster '%s'", c->prefix);
	return n;
}

static int if_up(int sock, const char *name)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return vc_fail(-errno, "cannot read flags of %s: %s", name, strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return vc_fail(-errno, "cannot set %s up: %s", name, strerror(errno));
	return 0;
}

static int if_set_in(int sock, const char *name, unsigned long req, const char *addr)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
		return vc_fail(-EINVAL, "bad address %s", addr);
	if (ioctl(sock, req, &ifr) < 0)
		return vc_fail(-errno, "cannot set address %s on %s: %s", addr, name, strerror(errno));
	return 0;
}

int vc_node_net_config(const char *addr)
{
	_cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	if (sock < 0)
		return vc_fail(-errno, "socket: %s", strerror(errno));
	if ((r = if_up(sock, "lo")) < 0)
		return r;
	/* Address first (the kernel gives it a classful mask), then the /24
	 * mask, which also installs the connected route. */
	if ((r = if_set_in(sock, "eth0", SIOCSIFADDR, addr)) < 0)
		return r;
	if ((r = if_set_in(sock, "eth0", SIOCSIFNETMASK, "255.255.255.0")) < 0)
		return r;
	return if_up(sock, "eth0");
}
