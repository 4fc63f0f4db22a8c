/* krg-drmaa-shepherd SESSION_DIR N SOCKET — the program libdrmaa starts
 * for job N (submit.c): reads the job's spec, detaches (the parent exits
 * at once so the submitter reaps it and never sees the job as a child),
 * then runs the job (shepherd.c). fd 3: one byte once recorded queued. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "drmaa/drmaa-int.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "krg-drmaa-shepherd: started by libdrmaa only (SESSION_DIR N SOCKET)\n");
		return 2;
	}
	char *end;
	unsigned long seq = strtoul(argv[2], &end, 10);
	if (*end || !seq || seq > 0xffffffffu)
		return 2;
	char sp[PATH_MAX + 32];
	krg_job_path(sp, sizeof(sp), argv[1], (unsigned)seq, "spec");
	struct drmaa_jobspec js;
	if (drmaa_jobspec_read(sp, &js) < 0)
		return 1;
	unlink(sp);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		_exit(0);
	drmaa_shepherd_main(argv[1], (unsigned)seq, &js, argv[3], 3);
}
