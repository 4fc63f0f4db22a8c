/* mig_self NODE: libkrg's krg_migrate_self — prints the node's hostname,
 * moves itself to NODE, prints it again with the answer, exits 0 if the
 * hostname changed (vcluster nodes are <prefix>-node<i>) and a heap
 * pattern survived. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <krg/krg.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	char before[256] = "", after[256] = "";
	gethostname(before, sizeof(before));
	size_t n = 8 << 20;
	unsigned char *p = malloc(n);
	for (size_t i = 0; p && i < n; i++)
		p[i] = (unsigned char)(i * 7);
	int r = krg_migrate_self(atoi(argv[1]));
	gethostname(after, sizeof(after));
	printf("before %s after %s r %d %s\n", before, after, r, r ? krg_last_error() : "");
	for (size_t i = 0; p && i < n; i++)
		if (p[i] != (unsigned char)(i * 7))
			return 3;
	free(p);
	if (r != 0 || !strcmp(before, after))
		return 1;
	/* And a second time, to a node given as a bad number: one clean error. */
	r = krg_migrate_self(999);
	printf("bad node: %d %s\n", r, krg_last_error());
	return r < 0 ? 0 : 4;
}
