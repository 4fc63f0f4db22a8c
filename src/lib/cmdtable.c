/* cmdtable.c — see cmdtable.h. */
#include <getopt.h>
#include <stdbool.h>
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

int krg_getopt(const char *prog, int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	/* ':' right after the optional '+' makes getopt tell a missing
	 * argument (':') from an unknown option ('?'). */
	char spec[128];
	bool plus = shortopts[0] == '+';
	if (snprintf(spec, sizeof(spec), "%s:%s", plus ? "+" : "", shortopts + plus) >= (int)sizeof(spec))
		return '?';
	opterr = 0;
	int prev = optind;
	int o = getopt_long(argc, argv, spec, longopts, NULL);
	if (o != '?' && o != ':')
		return o;
	/* The word getopt stopped at: argv[optind - 1] once it moved on. */
	const char *word = optind > prev && optind - 1 < argc ? argv[optind - 1] : argv[prev < argc ? prev : argc - 1];
	char shortname[3] = { '-', (char)optopt, 0 };
	const char *name = optopt && word[0] == '-' && word[1] != '-' ? shortname : word;
	if (o == ':')
		fprintf(stderr, "%s: option '%s' needs an argument (see %s --help)\n", prog, name, prog);
	else
		fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", prog, name, prog);
	return '?';
}

int krg_getopt_other(int opt, void (*usage)(FILE *f), int usage_status)
{
	if (opt != 'h')
		return usage_status;
	usage(stdout);
	return 0;
}

int krg_getopt_done(const char *prog, int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", prog, argv[optind], prog);
	return -1;
}
