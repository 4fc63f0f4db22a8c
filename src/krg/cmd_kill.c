/* Placeholder until 'krg kill' lands. */
#include <stdio.h>
#include "krg/krg.h"

int cmd_kill(int argc, char **argv)
{
	fprintf(stderr, "krg kill: not available in this build yet\n");
	return 1;
}
