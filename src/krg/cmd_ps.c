/* Placeholder until 'krg ps' lands. */
#include <stdio.h>
#include "krg/krg.h"

int cmd_ps(int argc, char **argv)
{
	fprintf(stderr, "krg ps: not available in this build yet\n");
	return 1;
}
