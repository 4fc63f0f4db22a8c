/* cmdtable.c — see cmdtable.h. */
#include <stdio.h>
#include <string.h>
#include "lib/cmdtable.h"
#include "lib/fault.h"

static void usage(FILE *f, const char *prog, const struct krg_command *cmds, size_t n, const char *footer)
{
	fprintf(f, "Usage: %s COMMAND [ARGS...]\n\nCommands:\n", prog);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\n%s", footer);
}

int krg_cmdtable_main(const char *prog, const struct krg_command *cmds, size_t n, const char *footer,
		      int usage_status, int argc, char **argv)
{
	char err[256];
	if (krg_fault_check(err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return usage_status;
	}
	if (argc < 2) {
		usage(stderr, prog, cmds, n, footer);
		return usage_status;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout, prog, cmds, n, footer);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog, argv[1], prog);
	return usage_status;
}
