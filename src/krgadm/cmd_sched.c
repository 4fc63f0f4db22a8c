/* cmd_sched.c — krgadm sched status | enable | disable | set | load: the
 * customizable scheduler (docs/sched.md). krgd formats the status; the
 * changes go through the cluster state, so they hold on every node. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "krgadm/krgadm.h"
#include "lib/cmdtable.h"

static void sched_usage(FILE *f)
{
	fprintf(f,
		"Usage: krgadm sched status [--json] [--socket PATH]\n"
		"       krgadm sched enable|disable POLICY [--socket PATH]\n"
		"       krgadm sched set POLICY.PARAM VALUE [--socket PATH]\n"
		"       krgadm sched load PATH.so [--socket PATH]\n"
		"\n"
		"status   this node's probes (CPU load per CPU of capacity, CPU used, free\n"
		"         memory, I/O rate; per process CPU, size, I/O), every up node's\n"
		"         load, and the policies with their state and parameters\n"
		"enable   turn a policy on, on every node; enabling a placement policy\n"
		"         turns the other placement policies off (krg run --auto uses it)\n"
		"disable  turn it off; with no placement policy, --auto runs locally\n"
		"set      change a policy's parameter, on every node (kept in the cluster state)\n"
		"load     load a policy plugin (a shared object built against\n"
		"         include/krg/sched_policy.h) on every node; the same file must\n"
		"         be at that path on each of them, owned by root and writable by\n"
		"         root alone, in directories that are too (not /tmp). Changes\n"
		"         need root.\n");
}

int cmd_sched(int argc, char **argv)
{
	const char *sock = NULL, *pos[3];
	bool json = false;
	int np = 0;
	/* "set POLICY.PARAM -1": a negative value is an operand, not an
	 * option. getopt sees an empty word in its place (an operand). */
	static char negative_slot[] = "";
	char *args[argc + 1];
	int n = argc;
	for (int i = 0; i < argc; i++)
		args[i] = argv[i];
	args[argc] = NULL;
	bool negative = argc > 3 && !strcmp(argv[1], "set") && argv[3][0] == '-' && argv[3][1] &&
			strspn(argv[3] + 1, "0123456789.") == strlen(argv[3] + 1);
	if (negative)
		args[3] = negative_slot;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	while ((o = krg_getopt("krgadm sched", n, args, "h", opts)) != -1) {
		switch (o) {
		case 'j':
			json = true;
			break;
		case 'S':
			sock = optarg;
			break;
		default:
			return krg_getopt_other(o, sched_usage, KRGADM_USAGE);
		}
	}
	if (n - optind > 3) {
		fprintf(stderr, "krgadm: sched: too many arguments (see krgadm sched --help)\n");
		return KRGADM_USAGE;
	}
	for (; optind < n; optind++)
		pos[np++] = args[optind] == negative_slot ? argv[3] : args[optind];
	if (np == 0) {
		sched_usage(stderr);
		return KRGADM_USAGE;
	}
	char body[PATH_MAX + 64];
	const char *cmd = "sched.ctl";
	const char *op = pos[0];
	int want = !strcmp(op, "status") ? 1 : !strcmp(op, "set") ? 3 : 2;
	if (strcmp(op, "status") && strcmp(op, "enable") && strcmp(op, "disable") && strcmp(op, "set") &&
	    strcmp(op, "load")) {
		fprintf(stderr, "krgadm: sched: unknown command '%s' (see krgadm sched --help)\n", op);
		return KRGADM_USAGE;
	}
	if (np != want) {
		fprintf(stderr, "krgadm: sched %s: expected %d argument%s (see krgadm sched --help)\n", op, want - 1,
			want == 2 ? "" : "s");
		return KRGADM_USAGE;
	}
	if (json && strcmp(op, "status")) {
		fprintf(stderr, "krgadm: sched %s: --json is for status only\n", op);
		return KRGADM_USAGE;
	}
	if (!strcmp(op, "status")) {
		cmd = "sched.status";
		snprintf(body, sizeof(body), "%s", json ? "json" : "text");
	} else if (!strcmp(op, "set")) {
		if (!strchr(pos[1], '.') || strchr(pos[1], ' ') || strchr(pos[2], ' ') || strlen(pos[1]) > 128 ||
		    strlen(pos[2]) > 64) {
			fprintf(stderr, "krgadm: sched set: expected POLICY.PARAM VALUE, got '%s'\n", pos[1]);
			return KRGADM_USAGE;
		}
		snprintf(body, sizeof(body), "set %s %s", pos[1], pos[2]);
	} else if (!strcmp(op, "load")) {
		char real[PATH_MAX];
		if (!realpath(pos[1], real)) {
			fprintf(stderr, "krgadm: sched load: %s: no such file\n", pos[1]);
			return KRGADM_FAIL;
		}
		snprintf(body, sizeof(body), "load %s", real);
	} else {
		if (strlen(pos[1]) > 64 || strchr(pos[1], ' ')) {
			fprintf(stderr, "krgadm: sched %s: '%s' is not a policy name\n", op, pos[1]);
			return KRGADM_USAGE;
		}
		snprintf(body, sizeof(body), "%s %s", op, pos[1]);
	}
	uint8_t *resp = NULL;
	size_t len = 0;
	int r = krgadm_call(sock, cmd, body, strlen(body), &resp, &len);
	if (r)
		return r;
	if (resp && len) {
		fwrite(resp, 1, len, stdout);
		if (json)
			putchar('\n');
	}
	free(resp);
	return 0;
}
