/* cmd_nodes.c — krgadm nodes status | add | del, with Kerrighed's
 * selectors: -n LIST, -c COUNT, -t TOTAL, -a. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "krgadm/krgadm.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/nodelist.h"
#include "lib/cmdtable.h"

static void nodes_usage(FILE *f)
{
	fprintf(f,
		"Usage: krgadm nodes status [-n LIST] [--json] [--socket PATH]\n"
		"       krgadm nodes add (-n LIST | -c COUNT | -t TOTAL | -a) [--no-wait] [--socket PATH]\n"
		"       krgadm nodes add --address HOST[:PORT] [--socket PATH]\n"
		"       krgadm nodes del (-n LIST | -c COUNT | -t TOTAL | -a) [--force] [--no-wait] [--socket PATH]\n"
		"\n"
		"LIST is item(,item)*, an item a node id or a range a-b (e.g. 1-3,5).\n"
		"add: the listed nodes, or COUNT present nodes, or enough to reach TOTAL\n"
		"     members, or (-a) every present node; waits until they are up.\n"
		"     --address: a new machine that listens at HOST[:PORT] (port 7480 by\n"
		"     default) gets a node id now, shown, and state joining; its `krgd --join\n"
		"     MEMBER` then starts as that node (the same id for the same address).\n"
		"del: the same for removal; -a removes every node but this one. A selection\n"
		"     that takes this node or every member is refused without --force.\n"
		"     A process without CAN_MIGRATE migrates too if CHECKPOINTABLE (keeping\n"
		"     its id), or is checkpointed and restarted elsewhere if its migration\n"
		"     fails; one allowing (or able to do) neither makes the node refuse to\n"
		"     leave (named); --force ends such processes.\n"
		"States: absent (not a member), joining, up, leaving, down (silent member).\n");
}

void krgadm_print_nodes(const Krg__Api__ClusterStatus *st, const bool *only)
{
	printf("%-5s %-8s %-6s %-5s %-9s %-22s %s\n", "NODE", "STATE", "EPOCH", "LINK", "HEARD", "ADDRESS", "REASON");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Krg__Cluster__NodeEntry *e = st->nodes[i];
		const Krg__Api__NodeLink *l = i < st->n_links ? st->links[i] : NULL;
		char heard[32] = "-";
		if (only && (e->id >= KRG_MAX_NODES || !only[e->id]))
			continue;
		if (l && l->has_last_heard_ms_ago && e->id != st->self)
			snprintf(heard, sizeof(heard), "%.1fs ago", (double)l->last_heard_ms_ago / 1000.0);
		printf("%-5u %-8s %-6llu %-5s %-9s %-22s %s\n", e->id, krgadm_state_name(e->state),
		       (unsigned long long)e->epoch, e->id == st->self ? "self" : (l && l->connected ? "yes" : "no"),
		       heard, l ? l->address : "", e->reason ? e->reason : "");
	}
}

static int nodes_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nodes", required_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *sock = NULL, *list = NULL;
	bool json = false;
	int o;
	optind = 1;
	while ((o = krg_getopt("krgadm nodes status", argc, argv, "n:js:h", opts)) != -1) {
		if (o == 'n')
			list = optarg;
		else if (o == 'j')
			json = true;
		else if (o == 's')
			sock = optarg;
		else if (o == 'h') {
			nodes_usage(stdout);
			return 0;
		} else
			return KRGADM_USAGE;
	}
	bool only[KRG_MAX_NODES] = { false };
	struct krg_nodeset set;
	char err[160];
	if (list) {
		if (krg_nodelist_parse(list, &set, err, sizeof(err)) < 0) {
			fprintf(stderr, "krgadm: %s\n", err);
			return KRGADM_USAGE;
		}
		for (unsigned i = 0; i < KRG_MAX_NODES; i++)
			only[i] = krg_nodeset_has(&set, i);
	}
	Krg__Api__ClusterStatus *st;
	int r = krgadm_fetch_status(sock, &st);
	if (r)
		return r;
	if (list) {
		for (unsigned i = 0; i < KRG_MAX_NODES; i++) {
			bool known = false;
			for (size_t k = 0; k < st->n_nodes; k++)
				known |= st->nodes[k]->id == i;
			if (only[i] && !known) {
				fprintf(stderr, "krgadm: unknown node %u\n", i);
				krg__api__cluster_status__free_unpacked(st, NULL);
				return KRGADM_FAIL;
			}
		}
	}
	if (json) {
		struct krg_json j;
		krg_json_init(&j, stdout);
		krg_json_begin_array(&j, NULL);
		for (size_t i = 0; i < st->n_nodes; i++) {
			const Krg__Cluster__NodeEntry *e = st->nodes[i];
			const Krg__Api__NodeLink *l = i < st->n_links ? st->links[i] : NULL;
			if (list && !only[e->id])
				continue;
			krg_json_begin_object(&j, NULL);
			krg_json_uint(&j, "id", e->id);
			krg_json_string(&j, "state", krgadm_state_name(e->state));
			krg_json_uint(&j, "epoch", e->epoch);
			krg_json_string(&j, "reason", e->reason);
			krg_json_bool(&j, "self", e->id == st->self);
			if (l) {
				krg_json_string(&j, "address", l->address);
				krg_json_bool(&j, "link", l->connected);
			}
			krg_json_end_object(&j);
		}
		krg_json_end_array(&j);
		krg_json_finish(&j);
	} else {
		if (!st->quorum)
			printf("warning: node %u has no quorum; this view may be stale\n", st->self);
		krgadm_print_nodes(st, list ? only : NULL);
	}
	krg__api__cluster_status__free_unpacked(st, NULL);
	return 0;
}

/* After add/del: wait until every changed node reached its final state.
 * del: a live node leaves only once its processes moved away (eviction,
 * docs/reconfiguration.md); each change of a node's state is shown. */
static int wait_nodes(const char *sock, const Krg__Api__NodesChangeResult *res, bool add, double timeout)
{
	struct timespec start, now;
	int shown[KRG_MAX_NODES];
	uint64_t first_epoch[KRG_MAX_NODES];
	for (size_t i = 0; i < KRG_MAX_NODES; i++) {
		shown[i] = -1;
		first_epoch[i] = UINT64_MAX;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		Krg__Api__ClusterStatus *st;
		int r = krgadm_fetch_status(sock, &st);
		if (r)
			return r;
		size_t done = 0;
		uint32_t pending = 0;
		for (size_t i = 0; i < res->n_changed; i++)
			for (size_t k = 0; k < st->n_nodes; k++) {
				const Krg__Cluster__NodeEntry *e = st->nodes[k];
				if (e->id != res->changed[i] || e->id >= KRG_MAX_NODES)
					continue;
				bool final = e->state == (add ? KRG__CLUSTER__NODE_STATE__NODE_UP
							       : KRG__CLUSTER__NODE_STATE__NODE_ABSENT);
				if (first_epoch[e->id] == UINT64_MAX)
					first_epoch[e->id] = e->epoch;
				/* The node refused to leave (a process that cannot): a
				 * change after this command's, not an older refusal. */
				if (!add && e->state == KRG__CLUSTER__NODE_STATE__NODE_UP && e->reason &&
				    !strncmp(e->reason, "refused to leave", 16) &&
				    e->epoch != first_epoch[e->id]) {
					fprintf(stderr, "krgadm: node %u %s\n", e->id, e->reason);
					krg__api__cluster_status__free_unpacked(st, NULL);
					return KRGADM_FAIL;
				}
				done += final;
				if (!final)
					pending = e->id;
				if (!add && shown[e->id] != (int)e->state) {
					shown[e->id] = (int)e->state;
					if (e->state == KRG__CLUSTER__NODE_STATE__NODE_LEAVING)
						printf("node %u: leaving, moving its processes to other nodes\n", e->id);
					else if (final)
						printf("node %u: %s\n", e->id, e->reason && e->reason[0] ? e->reason : "left");
					fflush(stdout);
				}
			}
		krg__api__cluster_status__free_unpacked(st, NULL);
		if (done == res->n_changed)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 > timeout) {
			if (add)
				fprintf(stderr, "krgadm: nodes did not become up within %.0f s (see krgadm nodes status)\n",
					timeout);
			else
				fprintf(stderr,
					"krgadm: node %u still leaving after %.0f s: some of its processes cannot move "
					"(its krgd log names them)\n", pending, timeout);
			return KRGADM_FAIL;
		}
		usleep(100000);
	}
}

static int nodes_change(int argc, char **argv, bool add)
{
	static const struct option opts[] = {
		{ "nodes", required_argument, NULL, 'n' }, { "count", required_argument, NULL, 'c' },
		{ "total", required_argument, NULL, 't' }, { "all", no_argument, NULL, 'a' },
		{ "no-wait", no_argument, NULL, 'W' }, { "socket", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' }, { "address", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	Krg__Api__NodesChange req = KRG__API__NODES_CHANGE__INIT;
	uint32_t ids[KRG_MAX_NODES];
	const char *sock = NULL;
	bool wait = true;
	int selectors = 0, o;
	char err[160], host[64], address[96];
	uint16_t port;
	optind = 1;
	while ((o = krg_getopt((add ? "krgadm nodes add" : "krgadm nodes del"), argc, argv, "n:c:t:as:h", opts)) != -1) {
		switch (o) {
		case 'n': {
			struct krg_nodeset set;
			if (krg_nodelist_parse(optarg, &set, err, sizeof(err)) < 0) {
				fprintf(stderr, "krgadm: %s\n", err);
				return KRGADM_USAGE;
			}
			for (unsigned i = 0; i < KRG_MAX_NODES; i++)
				if (krg_nodeset_has(&set, i))
					ids[req.n_nodes++] = i;
			req.nodes = ids;
			selectors++;
			break;
		}
		case 'c':
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > KRG_MAX_NODES) {
				fprintf(stderr, "krgadm: bad number '%s'\n", optarg);
				return KRGADM_USAGE;
			}
			if (o == 'c') {
				req.has_count = true;
				req.count = (uint32_t)v;
			} else {
				req.has_total = true;
				req.total = (uint32_t)v;
			}
			selectors++;
			break;
		}
		case 'a':
			req.has_all = req.all = true;
			selectors++;
			break;
		case 'A':
			if (!add) {
				fprintf(stderr, "krgadm: nodes del: --address is for add only (del takes -n ID)\n");
				return KRGADM_USAGE;
			}
			if (krg_config_parse_address(optarg, host, sizeof(host), &port, err, sizeof(err)) < 0) {
				fprintf(stderr, "krgadm: --address: %s\n", err);
				return KRGADM_USAGE;
			}
			snprintf(address, sizeof(address), "%s:%u", host, (unsigned)port);
			req.address = address;
			selectors++;
			break;
		case 'W':
			wait = false;
			break;
		case 'f':
			if (add) {
				fprintf(stderr, "krgadm: nodes add: --force is for del only\n");
				return KRGADM_USAGE;
			}
			req.has_force = req.force = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			nodes_usage(stdout);
			return 0;
		default:
			return KRGADM_USAGE;
		}
	}
	if (selectors != 1) {
		fprintf(stderr, "krgadm: nodes %s needs exactly one of -n LIST, -c COUNT, -t TOTAL, -a%s\n",
			add ? "add" : "del", add ? ", --address HOST[:PORT]" : "");
		return KRGADM_USAGE;
	}
	uint8_t buf[2048];
	size_t len = krg__api__nodes_change__pack(&req, buf);
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int r = krgadm_call(sock, add ? "nodes.add" : "nodes.del", buf, len, &resp, &resp_len);
	if (r)
		return r;
	Krg__Api__NodesChangeResult *res = krg__api__nodes_change_result__unpack(NULL, resp_len, resp);
	free(resp);
	if (!res) {
		fprintf(stderr, "krgadm: krgd sent a malformed answer\n");
		return KRGADM_FAIL;
	}
	if (req.address) {
		/* The machine may not run krgd yet: nothing to wait for. */
		if (res->n_changed == 1)
			printf("node %u: %s, joining until its krgd (krgd --join MEMBER) is heard\n", res->changed[0],
			       req.address);
		else
			fprintf(stderr, "krgadm: krgd sent a malformed answer\n");
		r = res->n_changed == 1 ? 0 : KRGADM_FAIL;
		krg__api__nodes_change_result__free_unpacked(res, NULL);
		return r;
	}
	if (res->n_changed == 0)
		printf("no node to %s\n", add ? "add" : "remove");
	r = wait && res->n_changed ? wait_nodes(sock, res, add, add ? 20 : 120) : 0;
	if (r == 0 && res->n_changed) {
		printf("%s node(s):", add ? (wait ? "added" : "adding") : (wait ? "removed" : "removing"));
		for (size_t i = 0; i < res->n_changed; i++)
			printf(" %u", res->changed[i]);
		printf("\n");
	}
	krg__api__nodes_change_result__free_unpacked(res, NULL);
	return r;
}

int cmd_nodes(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		nodes_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? KRGADM_USAGE : 0;
	}
	if (!strcmp(argv[1], "status"))
		return nodes_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "add"))
		return nodes_change(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "del"))
		return nodes_change(argc - 1, argv + 1, false);
	fprintf(stderr, "krgadm: unknown nodes command '%s' (see krgadm nodes --help)\n", argv[1]);
	return KRGADM_USAGE;
}
