/* krg image — look at checkpoint images. `show` decodes every part after
 * verifying it, for people or (--json) for scripts. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "ckpt/ckpt.h"
#include "krg/cli.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg image show DIR [--json]\n"
		   "\n"
		   "Verify and decode the checkpoint image in DIR. Exit status 0 if the image\n"
		   "is sound, 1 if it is damaged or unreadable (one line says why).\n");
}

int cmd_image(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	if (argc < 2 || strcmp(argv[1], "show")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return 0;
		}
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	argc--, argv++;
	bool json = false;
	int c;
	while ((c = krg_getopt("krg image", argc, argv, "jh", opts)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		default:
			return krg_getopt_other(c, usage, KRG_EXIT_USAGE);
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { 0 };
	if (ckpt_image_show(argv[optind], json, stdout, &err) < 0) {
		fprintf(stderr, "krg image show: %s\n", err.msg);
		return 1;
	}
	return 0;
}
