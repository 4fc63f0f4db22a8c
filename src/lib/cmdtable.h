/* cmdtable.h — the command table shared by the CLIs (krg, krgadm): one
 * entry per subcommand, git's builtin table in miniature. */
#pragma once
#include <stddef.h>

struct krg_command {
	const char *name;
	int (*fn)(int argc, char **argv); /* gets argv from the subcommand on */
	const char *summary;
};

/* Run the subcommand named by argv[1]. No command: usage on stderr and
 * usage_status; --help/-h/help: usage on stdout and 0; an unknown one: one
 * line and usage_status. footer ends the usage text. */
int krg_cmdtable_main(const char *prog, const struct krg_command *cmds, size_t n, const char *footer,
		      int usage_status, int argc, char **argv);
