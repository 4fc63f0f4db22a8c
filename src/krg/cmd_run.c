/* Placeholder until 'krg run' lands. */
#include <stdio.h>
#include "krg/krg.h"

int cmd_run(int argc, char **argv)
{
	fprintf(stderr, "krg run: not available in this build yet\n");
	return 1;
}
