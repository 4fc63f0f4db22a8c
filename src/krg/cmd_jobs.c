/* krg jobs — the DRMAA jobs of your sessions with their states, read from
 * your job state directory (docs/drmaa.md). Another user's jobs live in
 * their own 0700 directory: never listed here. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "drmaa/jobstore.h"
#include "krg/cli.h"
#include "krg/proclist.h"
#include "lib/json.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg jobs [--session NAME] [--json | --forget]\n"
		   "\n"
		   "List the jobs submitted through DRMAA (libdrmaa) by you, in every session\n"
		   "(or session NAME, the contact string): job id, state (queued, hold,\n"
		   "running, suspended, done, failed, undetermined; '*' once drmaa_wait\n"
		   "reaped it), cluster-wide krg id and node while or after it ran, exit\n"
		   "status, submission time, name and command.\n"
		   "\n"
		   "  -S, --session NAME  only this session\n"
		   "      --json          machine-readable output\n"
		   "      --forget        delete what is kept of jobs already reaped (waited\n"
		   "                      for), and sessions left empty; prints how many\n"
		   "Job state directory: $KRG_DRMAA_DIR, else $XDG_RUNTIME_DIR/krg-drmaa, else\n"
		   "/tmp/krg-drmaa-UID.\n");
}

struct row {
	char session[KRG_JOB_SESSION_MAX];
	struct krg_job j;
	int ps;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->j.submit_ms != y->j.submit_ms)
		return x->j.submit_ms < y->j.submit_ms ? -1 : 1;
	int c = strcmp(x->session, y->session);
	return c ? c : (x->j.seq > y->j.seq) - (x->j.seq < y->j.seq);
}

static void print_json(const char *base, const struct row *rows, size_t n)
{
	struct krg_json js;
	krg_json_init(&js, stdout);
	krg_json_begin_object(&js, NULL);
	krg_json_string(&js, "dir", base);
	krg_json_begin_array(&js, "jobs");
	for (size_t i = 0; i < n; i++) {
		const struct krg_job *j = &rows[i].j;
		krg_json_begin_object(&js, NULL);
		krg_json_string(&js, "id", j->id);
		krg_json_string(&js, "session", rows[i].session);
		krg_json_string(&js, "state", krg_job_ps_name(rows[i].ps));
		krg_json_bool(&js, "reaped", j->reaped);
		krg_json_string(&js, "name", j->name);
		krg_json_string(&js, "command", j->command);
		krg_json_string(&js, "category", j->category);
		krg_json_string(&js, "native", j->native);
		if (j->bulk_index >= 0)
			krg_json_int(&js, "bulk_index", j->bulk_index);
		else
			krg_json_null(&js, "bulk_index");
		if (j->krg_id) {
			krg_json_uint(&js, "krg_id", j->krg_id);
			krg_json_uint(&js, "node", j->node);
		} else {
			krg_json_null(&js, "krg_id");
			krg_json_null(&js, "node");
		}
		krg_json_int(&js, "submit_unix_ms", j->submit_ms);
		krg_json_int(&js, "start_unix_ms", j->start_ms);
		krg_json_int(&js, "end_unix_ms", j->end_ms);
		if (j->phase == KRG_JOB_DONE && !j->aborted)
			krg_json_int(&js, "exit_status", j->signaled ? 128 + j->signal : j->code);
		else
			krg_json_null(&js, "exit_status");
		krg_json_int(&js, "signal", j->signaled ? j->signal : 0);
		krg_json_bool(&js, "aborted", j->aborted);
		krg_json_double(&js, "cpu_s", (double)(j->utime_us + j->stime_us) / 1e6);
		krg_json_uint(&js, "maxrss_kb", j->maxrss_kb);
		krg_json_uint(&js, "wall_ms", j->wall_ms);
		krg_json_string(&js, "error", j->error);
		krg_json_uint(&js, "requeued", j->requeued);
		krg_json_string(&js, "requeue_reason", j->requeue_why);
		krg_json_end_object(&js);
	}
	krg_json_end_array(&js);
	krg_json_end_object(&js);
	krg_json_finish(&js);
}

static void print_table(const struct row *rows, size_t n)
{
	printf("%-24s %-13s %10s %4s %4s %5s %-12s %s\n", "JOBID", "STATE", "KRG_ID", "NODE", "EXIT", "START",
	       "NAME", "COMMAND");
	for (size_t i = 0; i < n; i++) {
		const struct krg_job *j = &rows[i].j;
		char st[24], id[16] = "-", node[8] = "-", ex[8] = "-", start[16];
		snprintf(st, sizeof(st), "%s%s", krg_job_ps_name(rows[i].ps), j->reaped ? "*" : "");
		if (j->krg_id) {
			snprintf(id, sizeof(id), "%u", j->krg_id);
			snprintf(node, sizeof(node), "%u", j->node);
		}
		if (j->phase == KRG_JOB_DONE && !j->aborted)
			snprintf(ex, sizeof(ex), "%d", j->signaled ? 128 + j->signal : j->code);
		krg_fmt_start((uint64_t)j->submit_ms, start, sizeof(start));
		printf("%-24s %-13s %10s %4s %4s %5s ", j->id, st, id, node, ex, start);
		krg_put_safe(stdout, j->name, 12);
		putchar(' ');
		if (j->requeued && !j->error[0])
			printf("[requeued %u] ", j->requeued);
		krg_put_safe(stdout, j->error[0] ? j->error : j->command, 0);
		putchar('\n');
	}
}

static int add_session(const char *base, const char *name, struct row **rows, size_t *n, size_t *cap)
{
	char sdir[4096];
	snprintf(sdir, sizeof(sdir), "%s/%s", base, name);
	unsigned *seqs;
	size_t k;
	int r = krg_jobs_list(sdir, &seqs, &k);
	if (r < 0)
		return r;
	for (size_t i = 0; i < k; i++) {
		if (*n == *cap) {
			size_t nc = *cap ? 2 * *cap : 64;
			struct row *nr = realloc(*rows, nc * sizeof(*nr));
			if (!nr) {
				free(seqs);
				return -ENOMEM;
			}
			*rows = nr;
			*cap = nc;
		}
		struct row *w = &(*rows)[*n];
		if (krg_job_load(sdir, name, seqs[i], &w->j) < 0 || !w->j.name[0])
			continue; /* being written */
		snprintf(w->session, sizeof(w->session), "%s", name);
		w->ps = krg_job_ps(&w->j);
		(*n)++;
	}
	free(seqs);
	return 0;
}

/* --forget: a reaped job is over for DRMAA (drmaa_wait will not return
 * it again), so its files can go; then its session, if empty. */
static int forget_reaped(const char *base, const struct row *rows, size_t n)
{
	static const char *const ext[] = { "state", "hold", "susp", "alive", "spec", "reaped", "job" };
	size_t jobs = 0, sessions = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct krg_job *j = &rows[i].j;
		if (!j->reaped || j->phase != KRG_JOB_DONE)
			continue;
		char sdir[4096];
		snprintf(sdir, sizeof(sdir), "%s/%s", base, rows[i].session);
		for (size_t e = 0; e < sizeof(ext) / sizeof(ext[0]); e++)
			if (krg_job_mark(sdir, j->seq, ext[e], false) < 0)
				rc = -1;
		jobs++;
		/* The session directory goes once empty (rmdir fails otherwise). */
		if (i + 1 == n || strcmp(rows[i + 1].session, rows[i].session))
			sessions += rmdir(sdir) == 0;
	}
	printf("forgot %zu reaped job%s, %zu empty session%s\n", jobs, jobs == 1 ? "" : "s", sessions,
	       sessions == 1 ? "" : "s");
	return rc;
}

int cmd_jobs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "session", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "forget", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *session = NULL;
	bool json = false, forget = false;
	int o;
	optind = 1;
	while ((o = krg_getopt("krg jobs", argc, argv, "S:jh", opts)) != -1) {
		switch (o) {
		case 'S':
			session = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'F':
			forget = true;
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	if (krg_getopt_done("krg jobs", argc, argv) < 0)
		return KRG_EXIT_USAGE;
	if (json && forget) {
		fprintf(stderr, "krg jobs: --json and --forget exclude each other\n");
		return KRG_EXIT_USAGE;
	}
	if (session && !krg_jobs_session_valid(session)) {
		fprintf(stderr, "krg jobs: '%s' is not a session name ([A-Za-z0-9_-])\n", session);
		return KRG_EXIT_USAGE;
	}
	char base[4096], why[512];
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int r = krg_jobs_base(base, sizeof(base), false, why, sizeof(why));
	if (r == -ENOENT) {
		/* No job was ever submitted: an empty list. */
	} else if (r < 0) {
		fprintf(stderr, "krg jobs: %s\n", why);
		return 1;
	} else if (session) {
		if ((r = add_session(base, session, &rows, &n, &cap)) < 0 && r != -ENOENT) {
			fprintf(stderr, "krg jobs: session %s: %s\n", session, strerror(-r));
			free(rows);
			return 1;
		}
		if (r == -ENOENT) {
			fprintf(stderr, "krg jobs: no session %s\n", session);
			return 1;
		}
	} else {
		DIR *d = opendir(base);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (krg_jobs_session_valid(de->d_name))
				add_session(base, de->d_name, &rows, &n, &cap);
		if (d)
			closedir(d);
	}
	if (forget) {
		r = forget_reaped(base, rows, n);
		free(rows);
		return r < 0 ? 1 : 0;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	if (json)
		print_json(base, rows, n);
	else
		print_table(rows, n);
	free(rows);
	return 0;
}
