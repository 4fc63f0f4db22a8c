/* main.c — krg-fsview, started by krgd only (docs/fsview.md):
 *   krg-fsview --fd N [--owner UID:GID] --mount PATH...
 *                                       FUSE views of home's PATHs, here
 *                                       (UID:GID: the view's user)
 *   krg-fsview --fd N --serve           home's side, as the user */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fsview/fsview-int.h"
#include "fsview/wire.h"

int main(int argc, char **argv)
{
	/* Both sides allocate and free a buffer of up to FSV_MAX_IO per
	 * read or write: keep them in the heap (no mmap and munmap, no heap
	 * trimmed and grown again), or every MiB costs its page faults and
	 * the kernel's zeroing of fresh pages. */
	mallopt(M_MMAP_THRESHOLD, 4 * FSV_MAX_IO);
	mallopt(M_TRIM_THRESHOLD, 32 * FSV_MAX_IO);
	if (argc >= 4 && !strcmp(argv[1], "--fd")) {
		int fd = atoi(argv[2]);
		if (fd > 2 && !strcmp(argv[3], "--serve") && argc == 4)
			return fsv_serve_main(fd);
		unsigned uid = 0, gid = 0;
		int at = 3;
		if (argc > 5 && !strcmp(argv[3], "--owner")) {
			if (sscanf(argv[4], "%u:%u", &uid, &gid) != 2)
				goto usage;
			at = 5;
		}
		if (fd > 2 && !strcmp(argv[at], "--mount") && argc > at + 1)
			return fsv_client_main(fd, argv + at + 1, argc - at - 1, (uid_t)uid, (gid_t)gid);
	}
usage:
	fprintf(stderr, "krg-fsview: started by krgd only (usage: --fd N --serve | --fd N [--owner UID:GID] --mount PATH...)\n");
	return 2;
}
