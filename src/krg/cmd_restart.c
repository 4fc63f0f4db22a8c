/* krg restart — recreate a process from an image directory as a child of
 * krg, and wait for it: krg's exit status is the process's (128 + signal
 * if killed). The image is verified whole before anything starts. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include "ckpt/ckpt.h"
#include "krg/krg.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg restart --dir DIR [--pidfile FILE]\n"
		   "\n"
		   "Restart the process saved in DIR (krg checkpoint) and wait for it.\n"
		   "  --dir DIR       image directory\n"
		   "  --pidfile FILE  write the restored process's pid there once it runs\n"
		   "Exit status: the process's own; 128+N if signal N killed it; 1 if the\n"
		   "restart failed (one line says why; nothing is left running); 2 on bad usage.\n");
}

int cmd_restart(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL, *pidfile = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+D:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'p': pidfile = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return KRG_EXIT_USAGE;
		}
	}
	if (!dir || optind != argc) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { { 0 } };
	pid_t pid;
	if (ckpt_restore(dir, &pid, &err) < 0) {
		fprintf(stderr, "krg restart: %s\n", err.msg);
		return 1;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");
		if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) != 0)
			fprintf(stderr, "krg restart: cannot write %s: %s (the process runs on)\n", pidfile, strerror(errno));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "krg restart: waitpid: %s\n", strerror(errno));
			return 1;
		}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
