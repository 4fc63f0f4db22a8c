/* vc_cmd_status.c — `krgadm vcluster status [--json]`: nodes, their init
 * and krgd pids, addresses and link state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include "vc.h"

struct node_status {
	pid_t init, krgd;
	char addr[32];
	char veth[16];
	const char *link; /* "up", "down", "missing" */
};

static void node_status(const struct vc_cluster *c, int i, struct node_status *s)
{
	char path[64];
	long flags;

	memset(s, 0, sizeof(*s));
	if (vc_node_init_pid(c, i, &s->init) < 0)
		s->init = 0;
	if (vc_node_find(c, i, "krgd", &s->krgd, 1) <= 0)
		s->krgd = 0;
	vc_node_addr(c, i, s->addr, sizeof(s->addr));
	vc_veth_name(c, i, s->veth, sizeof(s->veth));
	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", s->veth);
	_cleanup_free_ char *txt = NULL;
	if (vc_read_file(path, &txt) < 0)
		s->link = "missing";
	else
		s->link = (flags = strtol(txt, NULL, 16)) & IFF_UP ? "up" : "down";
}

int vc_cmd_status(const struct vc_args *a)
{
	struct vc_cluster c;
	int r;

	if (a->npos != 0)
		return vc_fail(-EINVAL, "usage: krgadm vcluster status [--prefix NAME] [--json]");
	if ((r = vc_cluster_init(&c, a->prefix)) < 0 || (r = vc_cluster_load(&c)) < 0)
		return r;
	if (a->json) {
		printf("{\"prefix\":\"%s\",\"subnet\":\"10.77.%d.0/24\",\"bridge\":\"%s\",\"state_dir\":\"%s\",\"nodes\":[",
		       c.prefix, c.subnet, c.bridge, c.dir);
		for (int i = 1; i <= c.n_nodes; i++) {
			struct node_status s;
			node_status(&c, i, &s);
			printf("%s{\"id\":%d,\"address\":\"%s\",\"init_pid\":%d,\"running\":%s,\"krgd_pid\":%d,"
			       "\"veth\":\"%s\",\"link\":\"%s\"}",
			       i > 1 ? "," : "", i, s.addr, (int)s.init, s.init ? "true" : "false", (int)s.krgd, s.veth, s.link);
		}
		printf("]}\n");
		return 0;
	}
	printf("vcluster %s: %d nodes, subnet 10.77.%d.0/24, bridge %s, state %s\n", c.prefix, c.n_nodes, c.subnet,
	       c.bridge, c.dir);
	printf("%-5s %-15s %-9s %-9s %s\n", "NODE", "ADDRESS", "INIT", "KRGD", "LINK");
	for (int i = 1; i <= c.n_nodes; i++) {
		struct node_status s;
		char init[16] = "-", krgd[16] = "-";
		node_status(&c, i, &s);
		if (s.init)
			snprintf(init, sizeof(init), "%d", (int)s.init);
		if (s.krgd)
			snprintf(krgd, sizeof(krgd), "%d", (int)s.krgd);
		printf("%-5d %-15s %-9s %-9s %s\n", i, s.addr, init, krgd, s.link);
	}
	return 0;
}
