/* krgadm — cluster administration. One table of command groups; each group
 * lives in its own file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include "api/client.h"
#include "krgadm/krgadm.h"
#include "lib/cmdtable.h"
#include "vcluster/vcluster.h"

static const struct krg_command commands[] = {
	{ "cluster", cmd_cluster, "init | status | wait | poweroff: the cluster as a whole" },
	{ "nodes", cmd_nodes, "status | add | del: membership of nodes (Kerrighed's -n/-c/-t/-a)" },
	{ "ipc", cmd_ipc, "status: the cluster's System V message queues and semaphore sets" },
	{ "kdfs", cmd_kdfs, "status: kdfs's capacity, use and chunk health over the nodes" },
	{ "sched", cmd_sched, "status | enable | disable | set | load: the scheduler's probes and policies" },
	{ "vcluster", krg_vcluster_main, "up | exec | down | status: a virtual cluster on this machine" },
};

int krgadm_status_args(const char *group, int argc, char **argv, void (*usage)(FILE *), struct krgadm_opts *o)
{
	const char *op = NULL;
	*o = (struct krgadm_opts){ 0 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char prog[64];
	snprintf(prog, sizeof(prog), "krgadm %s", group);
	int c;
	optind = 1;
	while ((c = krg_getopt(prog, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 'S':
			o->socket = optarg;
			break;
		default:
			return krg_getopt_other(c, usage, KRGADM_USAGE);
		}
	}
	if (optind < argc)
		op = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "krgadm: %s: unexpected argument '%s' (see krgadm %s --help)\n", group, argv[optind], group);
		return KRGADM_USAGE;
	}
	if (!op || strcmp(op, "status")) {
		if (op)
			fprintf(stderr, "krgadm: %s: unknown command '%s' (see krgadm %s --help)\n", group, op, group);
		else
			usage(stderr);
		return KRGADM_USAGE;
	}
	return -1;
}

int krgadm_status_fetch(const char *group, int argc, char **argv, void (*usage)(FILE *), const char *command,
			const ProtobufCMessageDescriptor *desc, struct krgadm_opts *o, ProtobufCMessage **out)
{
	int r = krgadm_status_args(group, argc, argv, usage, o);
	if (r >= 0)
		return r;
	uint8_t *resp = NULL;
	size_t len = 0;
	r = krgadm_call(o->socket, command, NULL, 0, &resp, &len);
	if (r)
		return r;
	*out = protobuf_c_message_unpack(desc, NULL, len, resp);
	free(resp);
	if (!*out) {
		fprintf(stderr, "krgadm: %s status: krgd sent an undecodable answer\n", group);
		return KRGADM_FAIL;
	}
	return -1;
}

int krgadm_call(const char *socket, const char *command, const void *body, size_t len, uint8_t **resp,
		size_t *resp_len)
{
	char err[512];
	int r = krg_api_call(krg_api_socket_path(socket), command, body, len, 15000, resp, resp_len, err,
			     sizeof(err));
	if (r < 0) {
		fprintf(stderr, "krgadm: %s\n", err);
		return krg_api_reached_krgd() ? KRGADM_FAIL : KRGADM_NO_DAEMON;
	}
	return 0;
}

int krgadm_fetch_status(const char *socket, Krg__Api__ClusterStatus **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = krgadm_call(socket, "cluster.status", NULL, 0, &buf, &len);
	if (r)
		return r;
	*out = krg__api__cluster_status__unpack(NULL, len, buf);
	free(buf);
	if (!*out) {
		fprintf(stderr, "krgadm: krgd sent a malformed status\n");
		return KRGADM_FAIL;
	}
	return 0;
}

const char *krgadm_state_name(int state)
{
	static const char *const names[] = { "absent", "joining", "up", "leaving", "down" };
	return state >= 0 && state < 5 ? names[state] : "?";
}

int main(int argc, char **argv)
{
	return krg_cmdtable_main("krgadm", commands, sizeof(commands) / sizeof(commands[0]),
				 "'krgadm COMMAND --help' describes each. Common options: --socket PATH\n"
				 "(default: api_socket from $KRG_CONFIG or /etc/krg/krgd.conf, else /run/krg/krgd.sock),\n"
				 "--json where output is parsed by scripts.\n"
				 "Exit status: 0 success, 1 failure, 2 bad usage, 3 krgd unreachable.\n",
				 KRGADM_USAGE, argc, argv);
}
