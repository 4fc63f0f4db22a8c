/* submit.c — drmaa_run_job and drmaa_run_bulk_jobs: resolve a template
 * into a job spec (placeholders, paths, limits, native specification),
 * record the job in the session directory and start its shepherd, a
 * detached process that outlives the caller (shepherd.c). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>
#include "drmaa/drmaa-int.h"

extern char **environ;

const char *drmaa_shepherd_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("KRG_DRMAA_SHEPHERD");
	if (env && *env)
		return env;
	Dl_info info;
	if (dladdr((void *)drmaa_shepherd_path, &info) && info.dli_fname) {
		const char *slash = strrchr(info.dli_fname, '/');
		if (slash) {
			snprintf(path, sizeof(path), "%.*s/krg-drmaa-shepherd", (int)(slash - info.dli_fname),
				 info.dli_fname);
			if (access(path, X_OK) == 0)
				return path; /* beside libdrmaa.so: the build tree */
		}
	}
	return KRG_DRMAA_LIBEXEC "/krg-drmaa-shepherd";
}

/* Replace every occurrence of ph in s by val; malloc'd. */
static char *replace(const char *s, const char *ph, const char *val)
{
	size_t pl = strlen(ph), vl = strlen(val), n = 0;
	for (const char *p = strstr(s, ph); p; p = strstr(p + pl, ph))
		n++;
	char *out = malloc(strlen(s) + n * vl + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = s, *q; (q = strstr(p, ph)) || *p; p = q + pl) {
		if (!q) {
			strcpy(o, p);
			return out;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, val, vl);
		o += vl;
	}
	*o = 0;
	return out;
}

/* Expand placeholders; make relative paths absolute under base. */
static char *expand(const char *v, const char *home, const char *wd, const char *incr, const char *base)
{
	char *a = replace(v, DRMAA_PLACEHOLDER_HD, home);
	char *b = a && wd ? replace(a, DRMAA_PLACEHOLDER_WD, wd) : a;
	if (b != a)
		free(a);
	char *c = b ? replace(b, DRMAA_PLACEHOLDER_INCR, incr) : NULL;
	free(b);
	if (c && c[0] != '/' && base) {
		char *d = NULL;
		if (asprintf(&d, "%s/%s", base, c) < 0)
			d = NULL;
		free(c);
		c = d;
	}
	return c;
}

static int build_env(const struct drmaa_strv *over, struct drmaa_jobspec *js)
{
	size_t ne = 0;
	while (environ[ne])
		ne++;
	js->env = calloc(ne + over->n + 1, sizeof(char *));
	if (!js->env)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < ne; i++) {
		const char *eq = strchr(environ[i], '=');
		if (!eq)
			continue;
		bool replaced = false;
		for (size_t j = 0; j < over->n && !replaced; j++)
			replaced = !strncmp(environ[i], over->v[j], (size_t)(eq - environ[i]) + 1);
		if (!replaced && !(js->env[k++] = strdup(environ[i])))
			return -ENOMEM;
	}
	for (size_t j = 0; j < over->n; j++)
		if (!(js->env[k++] = strdup(over->v[j])))
			return -ENOMEM;
	return 0;
}

static bool node_known(uint32_t node)
{
	for (size_t i = 0; i < drmaa_sess.n_nodes; i++)
		if (drmaa_sess.nodes[i] == node)
			return true;
	return false;
}

/* Template → spec for bulk index idx (-1: single job). Lock held. */
static int build_spec(const drmaa_job_template_t *jt, int idx, struct drmaa_jobspec *js, char *diag, size_t len)
{
	char *const *a = jt->attr;
	char incr[16], cwd[PATH_MAX];
	memset(js, 0, sizeof(*js));
	snprintf(incr, sizeof(incr), "%d", idx < 0 ? 0 : idx);
	if (!a[A_REMOTE_COMMAND])
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
				  "the job template has no " DRMAA_REMOTE_COMMAND);
	const char *home = getenv("HOME");
	struct passwd *pw;
	if ((!home || !*home) && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	if (!home)
		home = "/";
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "%s", home);
	const struct drmaa_strv *args = &jt->vattr[V_ARGV];
	js->argv = calloc(args->n + 2, sizeof(char *));
	if (!js->argv || !(js->argv[0] = strdup(a[A_REMOTE_COMMAND])))
		goto nomem;
	for (size_t i = 0; i < args->n; i++)
		if (!(js->argv[i + 1] = strdup(args->v[i])))
			goto nomem;
	if (build_env(&jt->vattr[V_ENV], js) < 0)
		goto nomem;
	js->wd = a[A_WD] ? expand(a[A_WD], home, NULL, incr, cwd) : strdup(cwd);
	if (!js->wd)
		goto nomem;
	const int pa[3] = { A_INPUT_PATH, A_OUTPUT_PATH, A_ERROR_PATH };
	char **pv[3] = { &js->in, &js->out, &js->err };
	for (int i = 0; i < 3; i++) {
		const char *path;
		if (!a[pa[i]])
			continue;
		if (drmaa_path_parse("path", a[pa[i]], &path, diag, len))
			return DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE;
		if (!(*pv[i] = expand(path, home, js->wd, incr, js->wd)))
			goto nomem;
	}
	js->join = a[A_JOIN_FILES] && !strcmp(a[A_JOIN_FILES], "y");
	/* A DRM places jobs: krg's placement unless a node is named. */
	if (a[A_NATIVE]) {
		int r = drmaa_native_parse(a[A_NATIVE], &js->native, diag, len);
		if (r)
			return r;
		if (js->native.has_node && !node_known(js->native.node))
			return drmaa_diag(diag, len, DRMAA_ERRNO_DENIED_BY_DRM, "no node %u in cluster %s",
					  js->native.node, drmaa_sess.cluster);
	}
	js->native.auto_ = !js->native.has_node;
	time_t now = time(NULL);
	if (a[A_START_TIME] && drmaa_time_parse(a[A_START_TIME], now, &js->start_at) < 0)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT, "bad start time");
	if (a[A_DEADLINE_TIME]) {
		if (drmaa_time_parse(a[A_DEADLINE_TIME], now, &js->deadline) < 0)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT, "bad deadline time");
		if (js->start_at && js->deadline <= js->start_at)
			return drmaa_diag(diag, len, DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES,
					  DRMAA_DEADLINE_TIME " is not after " DRMAA_START_TIME);
		if (js->deadline <= (int64_t)now)
			return drmaa_diag(diag, len, DRMAA_ERRNO_DENIED_BY_DRM, DRMAA_DEADLINE_TIME " has passed");
	}
	const int la[4] = { A_WCT_HLIMIT, A_WCT_SLIMIT, A_DURATION_HLIMIT, A_DURATION_SLIMIT };
	int64_t *lv[4] = { &js->wct_hard, &js->wct_soft, &js->cpu_hard, &js->cpu_soft };
	for (int i = 0; i < 4; i++)
		if (a[la[i]] && drmaa_duration_parse(a[la[i]], lv[i]) < 0)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT, "bad duration");
	if (js->wct_hard && js->wct_soft > js->wct_hard)
		return drmaa_diag(diag, len, DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES,
				  DRMAA_WCT_SLIMIT " is above " DRMAA_WCT_HLIMIT);
	if (js->cpu_hard && js->cpu_soft > js->cpu_hard)
		return drmaa_diag(diag, len, DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES,
				  DRMAA_DURATION_SLIMIT " is above " DRMAA_DURATION_HLIMIT);
	return 0;
nomem:
	return drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reserve the next job number: <n>.job created exclusively. */
static int reserve(unsigned *seq)
{
	if (!drmaa_sess.next_seq) {
		unsigned *v;
		size_t n;
		drmaa_sess.next_seq = 1;
		if (krg_jobs_list(drmaa_sess.dir, &v, &n) == 0) {
			if (n)
				drmaa_sess.next_seq = v[n - 1] + 1;
			free(v);
		}
	}
	for (int tries = 0; tries < 1000; tries++) {
		char p[PATH_MAX + 32];
		unsigned s = drmaa_sess.next_seq++;
		krg_job_path(p, sizeof(p), drmaa_sess.dir, s, "job");
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			*seq = s;
			return 0;
		}
		if (errno == ENOENT && mkdir(drmaa_sess.dir, 0700) == 0) {
			drmaa_sess.next_seq--; /* `krg jobs --forget` removed the empty session: again */
			continue;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* Record and start one job. Lock held. */
static int submit_one(const drmaa_job_template_t *jt, const struct drmaa_jobspec *js, int idx, char *id,
		      size_t idlen, char *diag, size_t len)
{
	unsigned seq = 0;
	char p[PATH_MAX + 32];
	int r = reserve(&seq);
	if (r < 0)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot create a job in %s: %s",
				  drmaa_sess.dir, strerror(-r));
	krg_job_path(p, sizeof(p), drmaa_sess.dir, seq, "job");
	struct krg_kv kv = { 0 };
	char cmd[512] = "";
	size_t off = 0;
	for (char **a = js->argv; *a && off < sizeof(cmd) - 1; a++)
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s", a == js->argv ? "" : " ", *a);
	const char *name = jt->attr[A_JOB_NAME];
	if (!name) {
		name = strrchr(js->argv[0], '/');
		name = name ? name + 1 : js->argv[0];
	}
	krg_kv_put(&kv, "name", name);
	krg_kv_put(&kv, "command", cmd);
	krg_kv_put(&kv, "category", jt->attr[A_JOB_CATEGORY]);
	krg_kv_put(&kv, "native", jt->attr[A_NATIVE]);
	krg_kv_put(&kv, "wd", js->wd);
	krg_kv_putf(&kv, "submit_ms", "%lld", (long long)wall_ms());
	krg_kv_putf(&kv, "bulk_index", "%d", idx);
	r = krg_kv_write(&kv, p);
	krg_kv_free(&kv);
	bool hold = jt->attr[A_JS_STATE] && !strcmp(jt->attr[A_JS_STATE], DRMAA_SUBMISSION_STATE_HOLD);
	if (!r && hold)
		r = krg_job_mark(drmaa_sess.dir, seq, "hold", true);
	int ready[2] = { -1, -1 };
	if (!r && pipe2(ready, O_CLOEXEC) < 0)
		r = -errno;
	if (r < 0) {
		unlink(p);
		return drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot record job %u: %s", seq,
				  strerror(-r));
	}
	/* The shepherd is a program of its own, started with posix_spawn
	 * (vfork: the caller's size does not matter, and nothing of a
	 * multithreaded caller's state is used after the fork). It detaches
	 * itself (forks, its parent exits at once) and writes one byte on fd
	 * 3 once the job is recorded queued. */
	char sp[PATH_MAX + 32], seqs[16];
	krg_job_path(sp, sizeof(sp), drmaa_sess.dir, seq, "spec");
	snprintf(seqs, sizeof(seqs), "%u", seq);
	const char *prog = drmaa_shepherd_path();
	char *const argv[] = { "krg-drmaa-shepherd", drmaa_sess.dir, seqs, (char *)drmaa_socket(), NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	pid_t pid = -1;
	int e = drmaa_jobspec_write(js, sp);
	if (!e) {
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&at);
		for (int fd = 0; fd < 3; fd++)
			posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
		posix_spawn_file_actions_adddup2(&fa, ready[1], 3);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &all);
		e = -posix_spawn(&pid, prog, &fa, &at, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
	}
	close(ready[1]);
	char c = 0;
	ssize_t n = -1;
	if (!e) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		do
			n = read(ready[0], &c, 1);
		while (n < 0 && errno == EINTR);
	}
	close(ready[0]);
	if (n != 1) {
		unlink(p);
		unlink(sp);
		krg_job_mark(drmaa_sess.dir, seq, "hold", false);
		return drmaa_diag(diag, len, e ? DRMAA_ERRNO_INTERNAL_ERROR : DRMAA_ERRNO_TRY_LATER,
				  "cannot start the job's shepherd %s: %s", prog,
				  e ? strerror(-e) : "it exited before recording the job");
	}
	drmaa_pending_add(seq);
	if (id)
		snprintf(id, idlen, "%s.%u", drmaa_sess.name, seq);
	return 0;
}

/* A session, and jt one of its templates: 0, or a DRMAA error with diag. */
static int need_template(const drmaa_job_template_t *jt, char *diag, size_t len)
{
	int r = drmaa_need_session(diag, len);
	bool found = false;
	for (struct drmaa_job_template_s *t = drmaa_sess.templates; !r && t && !found; t = t->next)
		found = t == jt;
	if (!r && !found)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "not a job template of this session");
	return r;
}

int drmaa_run_job(char *job_id, size_t job_id_len, const drmaa_job_template_t *jt, char *diag, size_t len)
{
	drmaa_lock();
	int r = need_template(jt, diag, len);
	if (!r && (!job_id || job_id_len < KRG_JOB_ID_MAX))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job id buffer missing or below %d bytes",
			       KRG_JOB_ID_MAX);
	struct drmaa_jobspec js = { 0 };
	if (!r)
		r = build_spec(jt, -1, &js, diag, len);
	if (!r)
		r = submit_one(jt, &js, -1, job_id, job_id_len, diag, len);
	drmaa_jobspec_free(&js);
	drmaa_unlock();
	return r;
}

int drmaa_run_bulk_jobs(drmaa_job_ids_t **jobids, const drmaa_job_template_t *jt, int start, int end, int incr,
			char *diag, size_t len)
{
	drmaa_lock();
	int r = need_template(jt, diag, len);
	if (!r && !jobids)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "jobids is NULL");
	if (!r && (start < 1 || end < start || incr < 1))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
			       "bulk range %d..%d step %d: need 1 <= start <= end and step >= 1", start, end, incr);
	drmaa_job_ids_t *ids = NULL;
	if (!r && !(ids = calloc(1, sizeof(*ids))))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
	for (long i = start; !r && i <= end; i += incr) {
		struct drmaa_jobspec js;
		char id[KRG_JOB_ID_MAX];
		r = build_spec(jt, (int)i, &js, diag, len);
		if (!r)
			r = submit_one(jt, &js, (int)i, id, sizeof(id), diag, len);
		if (!r && drmaa_strv_add(&ids->s, id))
			r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
		drmaa_jobspec_free(&js);
	}
	if (r && ids)
		for (size_t i = 0; i < ids->s.n; i++)
			drmaa_job_withdraw(ids->s.v[i]); /* all or nothing */
	if (r)
		drmaa_release_job_ids(ids);
	else
		*jobids = ids;
	drmaa_unlock();
	return r;
}
