/* krg-bench-drmaa N NATIVE — bench/drmaa's helper: N trivial jobs
 * (/bin/true) through libdrmaa, submitted in bulk and one by one, each
 * time until all complete, beside a baseline measured in the same run:
 * N local fork+exec of /bin/true (all started, then all reaped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "drmaa.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char diag[DRMAA_ERROR_STRING_BUFFER];

static void die(const char *what, int r)
{
	fprintf(stderr, "krg-bench-drmaa: %s: %s (%s)\n", what, drmaa_strerror(r), diag);
	exit(1);
}

/* Reap every job of the session; returns how many failed. */
static int reap_all(int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		char id[DRMAA_JOBNAME_BUFFER];
		int stat, ex = 0, code = 1;
		int r = drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, id, sizeof(id), &stat, 600, NULL, diag, sizeof(diag));
		if (r)
			die("drmaa_wait", r);
		drmaa_wifexited(&ex, stat, NULL, 0);
		drmaa_wexitstatus(&code, stat, NULL, 0);
		if ((!ex || code) && bad++ < 5) {
			int ab = 0, sig = 0;
			drmaa_wifaborted(&ab, stat, NULL, 0);
			drmaa_wifsignaled(&sig, stat, NULL, 0);
			fprintf(stderr, "krg-bench-drmaa: job %s: exited %d code %d aborted %d signaled %d\n", id, ex,
				code, ab, sig);
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	const char *native = argc > 2 ? argv[2] : "--auto";
	if (n < 1) {
		fprintf(stderr, "usage: krg-bench-drmaa [N] [NATIVE]\n");
		return 2;
	}
	/* Baseline: local fork+exec. */
	double t0 = now();
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (p < 0) {
			perror("fork");
			return 1;
		}
	}
	double t_spawn = now() - t0;
	while (wait(NULL) > 0)
		;
	double t_local = now() - t0;

	int r;
	if ((r = drmaa_init(NULL, diag, sizeof(diag))))
		die("drmaa_init", r);
	drmaa_job_template_t *jt;
	if ((r = drmaa_allocate_job_template(&jt, diag, sizeof(diag))) ||
	    (r = drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, "/bin/true", diag, sizeof(diag))) ||
	    (r = drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, native, diag, sizeof(diag))))
		die("template", r);

	drmaa_job_ids_t *ids;
	t0 = now();
	if ((r = drmaa_run_bulk_jobs(&ids, jt, 1, n, 1, diag, sizeof(diag))))
		die("drmaa_run_bulk_jobs", r);
	double t_bulk_sub = now() - t0;
	drmaa_release_job_ids(ids);
	int bad = reap_all(n);
	double t_bulk = now() - t0;

	t0 = now();
	for (int i = 0; i < n; i++) {
		char id[DRMAA_JOBNAME_BUFFER];
		if ((r = drmaa_run_job(id, sizeof(id), jt, diag, sizeof(diag))))
			die("drmaa_run_job", r);
	}
	double t_one_sub = now() - t0;
	bad += reap_all(n);
	double t_one = now() - t0;
	drmaa_exit(NULL, 0);

	printf("%d trivial jobs (/bin/true), native '%s'     jobs/s submitted   all done (s)   jobs/s done\n", n,
	       native);
	printf("  local fork+exec (baseline)                  %10.0f %14.3f %13.0f\n", n / t_spawn, t_local,
	       n / t_local);
	printf("  drmaa_run_bulk_jobs                         %10.0f %14.3f %13.0f\n", n / t_bulk_sub, t_bulk,
	       n / t_bulk);
	printf("  drmaa_run_job one by one                    %10.0f %14.3f %13.0f\n", n / t_one_sub, t_one,
	       n / t_one);
	printf("  ratio to baseline (time until all done)     bulk %.1fx, one by one %.1fx\n", t_bulk / t_local,
	       t_one / t_local);
	if (bad) {
		printf("  %d jobs did not exit 0 (krg jobs --json says why)\n", bad);
		return 1;
	}
	return 0;
}
