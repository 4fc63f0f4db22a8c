/* main.c — krg-fsview, started by krgd only (docs/fsview.md):
 *   krg-fsview --fd N --mount PATH...   FUSE views of home's PATHs, here
 *   krg-fsview --fd N --serve           home's side, as the user */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fsview/fsview-int.h"

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "--fd")) {
		int fd = atoi(argv[2]);
		if (fd > 2 && !strcmp(argv[3], "--serve") && argc == 4)
			return fsv_serve_main(fd);
		if (fd > 2 && !strcmp(argv[3], "--mount") && argc > 4)
			return fsv_client_main(fd, argv + 4, argc - 4);
	}
	fprintf(stderr, "krg-fsview: started by krgd only (usage: --fd N --serve | --fd N --mount PATH...)\n");
	return 2;
}
