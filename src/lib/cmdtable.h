/* cmdtable.h — the command table shared by the CLIs (krg, krgadm): one
 * entry per subcommand, git's builtin table in miniature. */
#pragma once
#include <stddef.h>
#include <stdio.h>

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

struct option;

/* getopt_long for every subcommand, with one error shape: getopt's own
 * messages are off, and an unknown option or a missing argument prints
 * "PROG: unknown option '-x' (see PROG --help)" (or "... needs an
 * argument ...") on stderr and returns '?'. PROG names the subcommand
 * ("krg capset"). A leading '+' in shortopts stops at the first operand,
 * as getopt does; the caller sets optind = 1 before the first call. */
int krg_getopt(const char *prog, int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The default of an option loop's switch: 'h' (--help) prints usage on
 * stdout and gives 0; anything else is a usage error krg_getopt has
 * already said: usage_status. */
int krg_getopt_other(int opt, void (*usage)(FILE *f), int usage_status);
/* After the options: 0 when no operand is left, else "PROG: unexpected
 * argument 'X' (see PROG --help)" on stderr and -1. */
int krg_getopt_done(const char *prog, int argc, char **argv);
