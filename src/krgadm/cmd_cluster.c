/* cmd_cluster.c — krgadm cluster init | status | wait | poweroff */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include "api/client.h"
#include "krgadm/krgadm.h"
#include "lib/config.h"
#include "lib/json.h"
#include "lib/key.h"
#include "lib/macro.h"
#include "proto/node.pb-c.h"
#include "lib/cmdtable.h"

static void cluster_usage(FILE *f)
{
	fprintf(f,
		"Usage: krgadm cluster init --name NAME --node ID=ADDR [--node ID=ADDR...] [--self ID] [--dir DIR]\n"
		"       krgadm cluster status [--json] [--socket PATH]\n"
		"       krgadm cluster wait [--timeout SECONDS] [--up COUNT] [--socket PATH]\n"
		"       krgadm cluster poweroff [--socket PATH]\n"
		"\n"
		"init      write a new cluster key (0600) and a commented krgd.conf into DIR\n"
		"          (default /etc/krg); copy both to every node and set node_id there.\n"
		"          Node ids default, as in Kerrighed, to the last byte of the address.\n"
		"status    this node's view: quorum, leader, epoch, every node's state and link,\n"
		"          and every node's capacity and load (cpus, load average, memory,\n"
		"          processes; see docs/krg-ps.md)\n"
		"wait      until this node has quorum and sees COUNT nodes (default: all) up and linked\n"
		"poweroff  stop krgd on every node cleanly (root)\n");
}

/* Node load figures (node.stats); NULL when krgd has none to give. */
static Krg__Node__NodeStats *fetch_stats(const char *sock)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256];
	if (krg_api_call(krg_api_socket_path(sock), "node.stats", NULL, 0, 5000, &buf, &len, err, sizeof(err)) < 0) {
		free(buf);
		return NULL;
	}
	Krg__Node__NodeStats *ns = krg__node__node_stats__unpack(NULL, len, buf);
	free(buf);
	return ns;
}

static const Krg__Node__NodeStat *stat_of(const Krg__Node__NodeStats *ns, uint32_t id)
{
	for (size_t i = 0; ns && i < ns->n_nodes; i++)
		if (ns->nodes[i]->load->node == id)
			return ns->nodes[i];
	return NULL;
}

static void json_load(struct krg_json *j, const Krg__Node__NodeStat *s)
{
	static const char *const keys[] = { "cpus", "load1", "load5", "load15", "mem_total_kb", "mem_free_kb",
					    "mem_available_kb", "procs", "krg_procs", "stats_age_ms" };
	if (!s) {
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			krg_json_null(j, keys[i]);
		return;
	}
	const Krg__Node__NodeLoad *l = s->load;
	krg_json_double(j, "cpus", l->cpus);
	krg_json_double(j, "load1", l->load1);
	krg_json_double(j, "load5", l->load5);
	krg_json_double(j, "load15", l->load15);
	krg_json_uint(j, "mem_total_kb", l->mem_total_kb);
	krg_json_uint(j, "mem_free_kb", l->mem_free_kb);
	krg_json_uint(j, "mem_available_kb", l->mem_available_kb);
	krg_json_uint(j, "procs", l->procs);
	krg_json_uint(j, "krg_procs", l->krg_procs);
	krg_json_uint(j, "stats_age_ms", s->age_ms);
}

static void print_status_json(const Krg__Api__ClusterStatus *st, const Krg__Node__NodeStats *ns)
{
	struct krg_json j;
	krg_json_init(&j, stdout);
	krg_json_begin_object(&j, NULL);
	krg_json_string(&j, "cluster", st->cluster_name);
	krg_json_uint(&j, "self", st->self);
	krg_json_bool(&j, "quorum", st->quorum);
	if (st->has_leader)
		krg_json_uint(&j, "leader", st->leader);
	else
		krg_json_null(&j, "leader");
	krg_json_string(&j, "role", st->raft_role);
	krg_json_uint(&j, "term", st->term);
	krg_json_uint(&j, "epoch", st->epoch);
	unsigned up = 0;
	krg_json_begin_array(&j, "nodes");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Krg__Cluster__NodeEntry *e = st->nodes[i];
		const Krg__Api__NodeLink *l = i < st->n_links ? st->links[i] : NULL;
		up += e->state == KRG__CLUSTER__NODE_STATE__NODE_UP;
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "id", e->id);
		krg_json_string(&j, "state", krgadm_state_name(e->state));
		krg_json_uint(&j, "epoch", e->epoch);
		krg_json_string(&j, "reason", e->reason);
		if (l) {
			krg_json_string(&j, "address", l->address);
			krg_json_bool(&j, "link", l->connected);
			if (l->has_linked)
				krg_json_bool(&j, "linked", l->linked);
			if (l->has_last_heard_ms_ago)
				krg_json_uint(&j, "last_heard_ms", l->last_heard_ms_ago);
			else
				krg_json_null(&j, "last_heard_ms");
		}
		json_load(&j, stat_of(ns, e->id));
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_uint(&j, "nodes_up", up);
	if (ns) {
		const Krg__Node__NodeTotals *t = ns->total;
		krg_json_begin_object(&j, "total");
		krg_json_uint(&j, "nodes", t->nodes);
		krg_json_double(&j, "cpus", t->cpus);
		krg_json_double(&j, "load1", t->load1);
		krg_json_double(&j, "load5", t->load5);
		krg_json_double(&j, "load15", t->load15);
		krg_json_uint(&j, "mem_total_kb", t->mem_total_kb);
		krg_json_uint(&j, "mem_free_kb", t->mem_free_kb);
		krg_json_uint(&j, "mem_available_kb", t->mem_available_kb);
		krg_json_uint(&j, "procs", t->procs);
		krg_json_uint(&j, "krg_procs", t->krg_procs);
		krg_json_end_object(&j);
	} else
		krg_json_null(&j, "total");
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void print_loads(const Krg__Api__ClusterStatus *st, const Krg__Node__NodeStats *ns)
{
	if (!ns) {
		printf("\n(no load figures from krgd)\n");
		return;
	}
	printf("\n%-5s %6s %6s %6s %6s %10s %10s %10s %6s %5s %7s\n", "NODE", "CPUS", "LOAD1", "LOAD5", "LOAD15",
	       "MEM_MiB", "FREE_MiB", "AVAIL_MiB", "PROCS", "KRG", "AGE");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Krg__Node__NodeStat *s = stat_of(ns, st->nodes[i]->id);
		if (!s) {
			printf("%-5u %6s\n", st->nodes[i]->id, "-");
			continue;
		}
		const Krg__Node__NodeLoad *l = s->load;
		printf("%-5u %6.2f %6.2f %6.2f %6.2f %10llu %10llu %10llu %6u %5u %6.1fs\n", l->node, l->cpus, l->load1,
		       l->load5, l->load15, (unsigned long long)l->mem_total_kb / 1024,
		       (unsigned long long)l->mem_free_kb / 1024, (unsigned long long)l->mem_available_kb / 1024,
		       l->procs, l->krg_procs, (double)s->age_ms / 1000.0);
	}
	const Krg__Node__NodeTotals *t = ns->total;
	printf("%-5s %6.2f %6.2f %6.2f %6.2f %10llu %10llu %10llu %6u %5u %7s\n", "TOTAL", t->cpus, t->load1, t->load5,
	       t->load15, (unsigned long long)t->mem_total_kb / 1024, (unsigned long long)t->mem_free_kb / 1024,
	       (unsigned long long)t->mem_available_kb / 1024, t->procs, t->krg_procs, "");
}

static void print_status(const Krg__Api__ClusterStatus *st, const Krg__Node__NodeStats *ns)
{
	unsigned up = 0;
	for (size_t i = 0; i < st->n_nodes; i++)
		up += st->nodes[i]->state == KRG__CLUSTER__NODE_STATE__NODE_UP;
	printf("cluster '%s', seen from node %u (%s, term %llu)\n", st->cluster_name, st->self, st->raft_role,
	       (unsigned long long)st->term);
	if (st->quorum)
		printf("quorum:  yes, leader is node %u\n", st->leader);
	else
		printf("quorum:  NO - this node cannot reach a majority: it makes no membership decision\n"
		       "         and the table below may be stale\n");
	printf("epoch:   %llu\nnodes:   %u up of %zu configured\n\n", (unsigned long long)st->epoch, up, st->n_nodes);
	krgadm_print_nodes(st, NULL);
	print_loads(st, ns);
}

static int cluster_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *sock = NULL;
	bool json = false;
	int o;
	optind = 1;
	while ((o = krg_getopt("krgadm cluster status", argc, argv, "js:h", opts)) != -1) {
		if (o == 'j')
			json = true;
		else if (o == 's')
			sock = optarg;
		else
			return krg_getopt_other(o, cluster_usage, KRGADM_USAGE);
	}
	Krg__Api__ClusterStatus *st;
	int r = krgadm_fetch_status(sock, &st);
	if (r)
		return r;
	Krg__Node__NodeStats *ns = fetch_stats(sock);
	if (json)
		print_status_json(st, ns);
	else
		print_status(st, ns);
	if (ns)
		krg__node__node_stats__free_unpacked(ns, NULL);
	krg__api__cluster_status__free_unpacked(st, NULL);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cluster_wait(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' }, { "up", required_argument, NULL, 'u' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *sock = NULL;
	double timeout = 30;
	long want = -1;
	int o;
	optind = 1;
	while ((o = krg_getopt("krgadm cluster wait", argc, argv, "t:u:s:h", opts)) != -1) {
		if (o == 't')
			timeout = atof(optarg);
		else if (o == 'u')
			want = atol(optarg);
		else if (o == 's')
			sock = optarg;
		else
			return krg_getopt_other(o, cluster_usage, KRGADM_USAGE);
	}
	double deadline = now_s() + timeout;
	char last[160] = "krgd not reachable";
	while (now_s() < deadline) {
		Krg__Api__ClusterStatus *st;
		char err[256];
		uint8_t *buf = NULL;
		size_t len = 0;
		int r = krg_api_call(krg_api_socket_path(sock), "cluster.status", NULL, 0, 5000, &buf, &len, err,
				     sizeof(err));
		if (r == 0 && (st = krg__api__cluster_status__unpack(NULL, len, buf))) {
			/* Up in this node's table and linked to it: a follower's
			 * table trails the leader's, and a stale "up" with no link
			 * is not ready. */
			unsigned up = 0;
			for (size_t i = 0; i < st->n_nodes; i++)
				up += st->nodes[i]->state == KRG__CLUSTER__NODE_STATE__NODE_UP &&
				      (st->nodes[i]->id == st->self || (i < st->n_links && st->links[i]->connected));
			unsigned need = want >= 0 ? (unsigned)want : (unsigned)st->n_nodes;
			bool ok = st->quorum && up >= need;
			snprintf(last, sizeof(last), "quorum %s, %u of %u node(s) up", st->quorum ? "yes" : "no", up,
				 need);
			krg__api__cluster_status__free_unpacked(st, NULL);
			free(buf);
			if (ok) {
				printf("cluster ready: %s\n", last);
				return 0;
			}
		} else {
			snprintf(last, sizeof(last), "%s", err);
			free(buf);
		}
		usleep(100000);
	}
	fprintf(stderr, "krgadm: cluster not ready after %.0f s: %s\n", timeout, last);
	return KRGADM_FAIL;
}

static int cluster_poweroff(int argc, char **argv)
{
	const char *sock = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cluster_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock = argv[++i];
		else {
			fprintf(stderr, "krgadm: unexpected argument '%s'\n", argv[i]);
			return KRGADM_USAGE;
		}
	}
	int r = krgadm_call(sock, "cluster.poweroff", NULL, 0, NULL, NULL);
	if (r == 0)
		printf("poweroff requested: krgd stops on every reachable node\n");
	return r;
}

static int write_file_0600(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n)
		return -EIO;
	return fsync(fd) < 0 ? -errno : 0;
}

static int cluster_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'N' }, { "node", required_argument, NULL, 'n' },
		{ "self", required_argument, NULL, 'S' }, { "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *name = NULL, *dir = "/etc/krg";
	char nodes[4096] = "";
	size_t off = 0;
	long self = -1;
	int o;
	optind = 1;
	while ((o = krg_getopt("krgadm cluster init", argc, argv, "N:n:S:d:h", opts)) != -1) {
		switch (o) {
		case 'N':
			name = optarg;
			break;
		case 'n': {
			/* ID=ADDR or just ADDR (id = last byte of the address) */
			char *eq = strchr(optarg, '=');
			const char *addr = eq ? eq + 1 : optarg;
			long id;
			if (eq) {
				id = atol(optarg);
			} else {
				const char *dot = strrchr(addr, '.');
				id = dot ? atol(dot + 1) : -1;
			}
			if (id < 0 || id > 255) {
				fprintf(stderr, "krgadm: bad --node '%s': expected ID=ADDRESS[:PORT]\n", optarg);
				return KRGADM_USAGE;
			}
			off += (size_t)snprintf(nodes + off, sizeof(nodes) - off, "node = %ld %s\n", id, addr);
			if (off >= sizeof(nodes))
				return KRGADM_USAGE;
			break;
		}
		case 'S':
			self = atol(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return krg_getopt_other(o, cluster_usage, KRGADM_USAGE);
		}
	}
	if (!name || !nodes[0]) {
		fprintf(stderr, "krgadm: cluster init needs --name and at least one --node\n");
		return KRGADM_USAGE;
	}
	char key[PATH_MAX], conf[PATH_MAX], err[512];
	snprintf(key, sizeof(key), "%s/cluster.key", dir);
	snprintf(conf, sizeof(conf), "%s/krgd.conf", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "krgadm: cannot create %s: %s\n", dir, strerror(errno));
		return KRGADM_FAIL;
	}
	if (krg_key_generate(key, err, sizeof(err)) < 0) {
		fprintf(stderr, "krgadm: %s\n", err);
		return KRGADM_FAIL;
	}
	char text[8192];
	snprintf(text, sizeof(text),
		 "# krgd.conf - configuration of one krg node (written by krgadm cluster init).\n"
		 "# Copy this file and cluster.key to every node; change node_id on each.\n"
		 "\n"
		 "# This node's id (0..255); it must have a 'node =' line below.\n"
		 "node_id = %ld\n"
		 "# Name of the cluster; both ends of every link must agree.\n"
		 "cluster_name = %s\n"
		 "\n"
		 "# Every node of the cluster: node = ID ADDRESS[:PORT] (port 7480 by default).\n"
		 "%s"
		 "\n"
		 "# Raft log and node state (made 0700).\n"
		 "state_dir = /var/lib/krg\n"
		 "# 32-byte cluster key, hex; must not be readable by group or others.\n"
		 "key_file = %s\n"
		 "# Local API socket used by krg and krgadm.\n"
		 "api_socket = /run/krg/krgd.sock\n"
		 "# Encrypt traffic between nodes (integrity is always protected). Turn off\n"
		 "# only on a trusted fabric.\n"
		 "encrypt = on\n"
		 "# Link keepalive period and the silence after which the majority marks a\n"
		 "# node down (detection takes at most failure_timeout_ms + one election).\n"
		 "heartbeat_ms = 250\n"
		 "failure_timeout_ms = 3000\n"
		 "election_timeout_ms = 1000\n"
		 "# Default timeout of a request to another node.\n"
		 "request_timeout_ms = 5000\n"
		 "# error, warn, info, debug or trace.\n"
		 "log_level = info\n",
		 self >= 0 ? self : atol(nodes + 7), name, nodes, key);
	int r = write_file_0600(conf, text);
	if (r < 0) {
		fprintf(stderr, "krgadm: cannot write %s: %s\n", conf, strerror(-r));
		unlink(key);
		return KRGADM_FAIL;
	}
	printf("wrote %s and %s\n", key, conf);
	return 0;
}

int cmd_cluster(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cluster_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? KRGADM_USAGE : 0;
	}
	if (!strcmp(argv[1], "status"))
		return cluster_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "wait"))
		return cluster_wait(argc - 1, argv + 1);
	if (!strcmp(argv[1], "poweroff"))
		return cluster_poweroff(argc - 1, argv + 1);
	if (!strcmp(argv[1], "init"))
		return cluster_init(argc - 1, argv + 1);
	fprintf(stderr, "krgadm: unknown cluster command '%s' (see krgadm cluster --help)\n", argv[1]);
	return KRGADM_USAGE;
}
