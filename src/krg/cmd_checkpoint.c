/* krg checkpoint — save a running process into an image directory, from
 * outside (ptrace), leaving it running unless --kill. Local for now: the
 * process is a pid of this node (docs/checkpoint.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "ckpt/ckpt.h"
#include "krg/krg.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg checkpoint PID --dir DIR [--kill] [--ignore-unsupported] [-d TEXT]\n"
		   "\n"
		   "Freeze process PID, save it into DIR (created 0700), and let it run on.\n"
		   "  --dir DIR              image directory (must not hold an image yet)\n"
		   "  --kill                 kill the process after a successful checkpoint\n"
		   "  --ignore-unsupported   save anyway when an fd cannot be (pipes, sockets,\n"
		   "                         terminals, ...): it is closed after restart\n"
		   "  -d, --description TEXT stored in the image\n"
		   "Exit status 0 on success, 1 on failure (one line says why), 2 on bad usage.\n");
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "kill", no_argument, NULL, 'k' },
		{ "ignore-unsupported", no_argument, NULL, 'i' },
		{ "description", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ckpt_dump_opts o = { 0 };
	const char *dir = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "D:kid:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'k': o.kill = true; break;
		case 'i': o.ignore_unsupported = true; break;
		case 'd': o.description = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return KRG_EXIT_USAGE;
		}
	}
	char *end;
	long pid = optind + 1 == argc ? strtol(argv[optind], &end, 10) : 0;
	if (!dir || pid <= 0 || *end) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { { 0 } };
	if (ckpt_dump((pid_t)pid, dir, &o, &err) < 0) {
		fprintf(stderr, "krg checkpoint: %s\n", err.msg);
		return 1;
	}
	return 0;
}
