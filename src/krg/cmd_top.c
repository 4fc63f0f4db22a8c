/* Placeholder until 'krg top' lands. */
#include <stdio.h>
#include "krg/krg.h"

int cmd_top(int argc, char **argv)
{
	fprintf(stderr, "krg top: not available in this build yet\n");
	return 1;
}
