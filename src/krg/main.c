/* krg — the user CLI. One table of commands, one file per command. */
#include <stdio.h>
#include <string.h>
#include "krg/krg.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "run", cmd_run, "run a command on a node of the cluster (-n NODE | --auto)" },
	{ "ps", cmd_ps, "list krg processes of the whole cluster" },
	{ "kill", cmd_kill, "send a signal to krg processes by cluster-wide id" },
	{ "top", cmd_top, "live view of nodes and processes" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg COMMAND [ARGS...]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-6s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'krg COMMAND --help' describes each. krg talks to the krgd of this node\n"
		   "(--socket PATH or $KRG_SOCKET to choose another).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "krg: unknown command '%s' (see krg --help)\n", argv[1]);
	return KRG_EXIT_USAGE;
}
