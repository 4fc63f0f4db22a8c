/* dev_main.c — development driver: `krgadm-vcluster-dev ARGS` runs
 * `krgadm vcluster ARGS` without krgadm's main. */
#include <string.h>
#include "vcluster/vcluster.h"

int main(int argc, char **argv)
{
	/* Also accept `krgadm-vcluster-dev vcluster ARGS`, so tests can use it
	 * as KRGADM. */
	if (argc > 1 && strcmp(argv[1], "vcluster") == 0) {
		argv++;
		argc--;
	}
	argv[0] = "vcluster";
	return krg_vcluster_main(argc, argv);
}
