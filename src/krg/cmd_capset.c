/* krg capset — Kerrighed's process capabilities (krgcapset,
 * kerrighed_capabilities(7)), docs/sched.md "Capabilities". */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/client.h"
#include "krg/cli.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg capset [-e|-d] CAPABILITY (-p ID | -- COMMAND [ARG...])\n"
		   "       krg capset -p ID                   show the capabilities of ID\n"
		   "\n"
		   "Capabilities: CAN_MIGRATE (krg migrate and the balancer may move it),\n"
		   "DISTANT_FORK (its new children are placed on the least-loaded node, by\n"
		   "migration, once someone set its capabilities), CHECKPOINTABLE (krg\n"
		   "checkpoint may save it). Each process has four sets: effective,\n"
		   "permitted, inheritable effective and inheritable permitted; its children\n"
		   "start with the inheritable sets as effective and permitted. Without any\n"
		   "setting a process has every capability.\n"
		   "  -e CAP     enable CAP: add it to the effective sets; a user may only\n"
		   "             enable what is in the permitted set, root may grant anything\n"
		   "  -d CAP     drop CAP from all four sets (only root can give it back)\n"
		   "  -p ID      the krg process ID (krg ps), yours unless you are root; from\n"
		   "             any node (the request goes to ID's home node)\n"
		   "  -- CMD     apply to this process, then run CMD in its place (CMD and its\n"
		   "             children have the capabilities)\n"
		   "  --socket PATH   krgd's API socket\n"
		   "Exit status 0 done, 1 refused (reason on stderr), 2 bad usage.\n");
}

int cmd_capset(int argc, char **argv)
{
	const char *sock = NULL, *cap = NULL, *id = NULL;
	char op = 0;
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	/* '+': stop at the command after "--", whose options are its own. */
	while ((o = krg_getopt("krg capset", argc, argv, "+e:d:p:h", opts)) != -1) {
		switch (o) {
		case 'e':
		case 'd':
			if (op) {
				fprintf(stderr, "krg capset: one of -e or -d, once (see krg capset --help)\n");
				return KRG_EXIT_USAGE;
			}
			op = (char)o;
			cap = optarg;
			break;
		case 'p':
			id = optarg;
			break;
		case 'S':
			sock = optarg;
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	bool dashdash = optind > 1 && !strcmp(argv[optind - 1], "--");
	if (optind < argc && !dashdash) {
		fprintf(stderr, "krg capset: unknown argument '%s' (see krg capset --help)\n", argv[optind]);
		return KRG_EXIT_USAGE;
	}
	int cmd_at = dashdash ? optind : -1;
	bool has_cmd = dashdash && optind < argc;
	if (dashdash && !has_cmd) {
		fprintf(stderr, "krg capset: no command after -- (see krg capset --help)\n");
		return KRG_EXIT_USAGE;
	}
	if (!!id == has_cmd) {
		fprintf(stderr, "krg capset: give either -p ID or -- COMMAND (see krg capset --help)\n");
		return KRG_EXIT_USAGE;
	}
	if (!op && !id) {
		fprintf(stderr, "krg capset: -- COMMAND needs -e or -d (see krg capset --help)\n");
		return KRG_EXIT_USAGE;
	}
	if (cap && strcmp(cap, "CAN_MIGRATE") && strcmp(cap, "DISTANT_FORK") && strcmp(cap, "CHECKPOINTABLE")) {
		fprintf(stderr, "krg capset: unknown capability '%s' (CAN_MIGRATE, DISTANT_FORK, CHECKPOINTABLE)\n", cap);
		return KRG_EXIT_USAGE;
	}
	if (id && (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 10)) {
		fprintf(stderr, "krg capset: '%s': not a krg process id (see krg ps)\n", id);
		return KRG_EXIT_USAGE;
	}
	char body[128], err[1024];
	snprintf(body, sizeof(body), "%s %s %s", id ? id : "self", op == 'e' ? "e" : op == 'd' ? "d" : "show",
		 cap ? cap : "");
	uint8_t *resp = NULL;
	size_t rlen = 0;
	int r = krg_api_call(krg_api_socket_path(sock), "sched.capset", body, strlen(body), 15000, &resp, &rlen, err,
			     sizeof(err));
	if (r < 0) {
		free(resp);
		fprintf(stderr, "krg capset: %s\n", err);
		return 1;
	}
	if (resp && rlen)
		fwrite(resp, 1, rlen, stdout);
	free(resp);
	if (!has_cmd)
		return 0;
	fflush(stdout);
	execvp(argv[cmd_at], argv + cmd_at);
	fprintf(stderr, "krg capset: cannot run %s: %s\n", argv[cmd_at], strerror(errno));
	return errno == ENOENT ? KRG_EXIT_NOTFOUND : KRG_EXIT_NOEXEC;
}
