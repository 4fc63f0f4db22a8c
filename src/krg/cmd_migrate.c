/* krg migrate — move a running krg process to another node
 * (docs/migration.md). The process keeps its id, its pid and its parent
 * at home; it runs on NODE from then on. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/client.h"
#include "krg/krg.h"
#include "lib/nodelist.h"
#include "proc/procid.h"
#include "proto/migrate.pb-c.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg migrate [-v] [--socket PATH] ID NODE\n"
		   "\n"
		   "Move the running krg process ID (its cluster-wide id, as krg ps shows it) to\n"
		   "node NODE, wherever it runs now. It goes on there with its memory, threads,\n"
		   "signals and files; at home a deputy keeps its pid, its parent and the fds\n"
		   "that cannot move (terminal, pipes, sockets), which are proxied. You may\n"
		   "move your own processes; root may move any krg process.\n"
		   "  -v, --verbose   print the image size, total and frozen time\n"
		   "Exit status 0 once it runs on NODE, 1 if it did not move, 2 on bad usage.\n");
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
	if (!*s || strlen(s) > 12)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int cmd_migrate(int argc, char **argv)
{
	const char *sock = NULL;
	const char *pos[2];
	int np = 0;
	bool verbose = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = true;
		} else if (!strcmp(a, "--socket")) {
			if (++i >= argc) {
				fprintf(stderr, "krg migrate: --socket needs a path\n");
				return KRG_EXIT_USAGE;
			}
			sock = argv[i];
		} else if (!strncmp(a, "--socket=", 9)) {
			sock = a + 9;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "krg migrate: unknown option '%s' (see krg migrate --help)\n", a);
			return KRG_EXIT_USAGE;
		} else if (np < 2) {
			pos[np++] = a;
		} else {
			fprintf(stderr, "krg migrate: too many arguments (see krg migrate --help)\n");
			return KRG_EXIT_USAGE;
		}
	}
	if (np != 2) {
		fprintf(stderr, "krg migrate: need a process id and a node (see krg migrate --help)\n");
		return KRG_EXIT_USAGE;
	}
	unsigned long long id, node;
	if (parse_num(pos[0], (1ull << 30) - 1, &id) < 0 || (id & KRG_PID_MASK) == 0) {
		fprintf(stderr, "krg migrate: '%s': not a krg process id (see krg ps)\n", pos[0]);
		return KRG_EXIT_USAGE;
	}
	if (parse_num(pos[1], KRG_MAX_NODES - 1, &node) < 0) {
		fprintf(stderr, "krg migrate: '%s': not a node id (0-%d)\n", pos[1], KRG_MAX_NODES - 1);
		return KRG_EXIT_USAGE;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.node = (uint32_t)node;
	if (krg_procid_home((uint32_t)id) == 0)
		q.has_pid = true, q.pid = (uint32_t)id; /* a plain pid of this node */
	else
		q.has_id = true, q.id = (uint32_t)id;
	uint8_t body[64];
	size_t len = krg__mig__move__pack(&q, body);
	char err[1024];
	uint8_t *resp = NULL;
	size_t rlen = 0;
	int r = krg_api_call(krg_api_socket_path(sock), "mig.move", body, len, 30u * 60 * 1000, &resp, &rlen, err,
			     sizeof(err));
	if (r < 0) {
		free(resp);
		fprintf(stderr, "krg migrate: %s\n", err);
		return 1;
	}
	if (verbose && resp) {
		Krg__Mig__Result *res = krg__mig__result__unpack(NULL, rlen, resp);
		if (res) {
			printf("%u on node %u: %s\n", res->has_id ? res->id : (unsigned)id, res->has_node ? res->node : (unsigned)node,
			       res->text ? res->text : "");
			krg__mig__result__free_unpacked(res, NULL);
		}
	}
	free(resp);
	return 0;
}
