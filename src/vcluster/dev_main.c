/* dev_main.c — development driver: `krgadm-vcluster-dev ARGS` runs
 * `krgadm vcluster ARGS` without krgadm's main. */
#include "vcluster/vcluster.h"

int main(int argc, char **argv)
{
	argv[0] = "vcluster";
	return krg_vcluster_main(argc, argv);
}
