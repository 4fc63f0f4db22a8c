/* jobstore.c — see jobstore.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "drmaa.h"
#include "drmaa/jobstore.h"
#include "lib/fileio.h"

int krg_jobs_base(char *out, size_t len, bool create, char *why, size_t whylen)
{
	const char *env = getenv("KRG_DRMAA_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(out, len, "%s", env);
	else if (xdg && *xdg && access(xdg, W_OK | X_OK) == 0)
		snprintf(out, len, "%s/krg-drmaa", xdg);
	else
		snprintf(out, len, "/tmp/krg-drmaa-%u", (unsigned)getuid());
	if (create && mkdir(out, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(why, whylen, "cannot create the job state directory %s: %s", out, strerror(e));
		return -e;
	}
	struct stat st;
	if (lstat(out, &st) < 0) {
		int e = errno;
		snprintf(why, whylen, "job state directory %s: %s", out, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
		snprintf(why, whylen,
			 "job state directory %s is not a directory of uid %u with mode 0700: refused", out,
			 (unsigned)getuid());
		return -EPERM;
	}
	return 0;
}

bool krg_jobs_session_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= KRG_JOB_SESSION_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

static int cmp_uns(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

int krg_jobs_list(const char *sdir, unsigned **seqs, size_t *n)
{
	DIR *d = opendir(sdir);
	if (!d)
		return -errno;
	size_t cap = 64, k = 0;
	unsigned *v = malloc(cap * sizeof(*v));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		char *end;
		unsigned long s = strtoul(de->d_name, &end, 10);
		if (end == de->d_name || strcmp(end, ".job") || s == 0 || s > 0xffffffffu)
			continue;
		if (k == cap) {
			unsigned *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[k++] = (unsigned)s;
	}
	closedir(d);
	if (!v)
		return -ENOMEM;
	qsort(v, k, sizeof(*v), cmp_uns);
	*seqs = v;
	*n = k;
	return 0;
}

void krg_job_path(char *out, size_t len, const char *sdir, unsigned seq, const char *ext)
{
	snprintf(out, len, "%s/%u.%s", sdir, seq, ext);
}

bool krg_job_has(const char *sdir, unsigned seq, const char *ext)
{
	char p[4096];
	krg_job_path(p, sizeof(p), sdir, seq, ext);
	return access(p, F_OK) == 0;
}

int krg_job_mark(const char *sdir, unsigned seq, const char *ext, bool on)
{
	char p[4096];
	krg_job_path(p, sizeof(p), sdir, seq, ext);
	if (on) {
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
		return 0;
	}
	return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}

/* ---- key=value ---- */

static void kv_add(struct krg_kv *kv, const char *s, size_t n)
{
	if (!kv->buf && kv->cap == SIZE_MAX)
		return; /* failed before */
	if (kv->len + n + 1 > kv->cap) {
		size_t nc = kv->cap ? kv->cap : 256;
		while (kv->len + n + 1 > nc)
			nc *= 2;
		char *nb = realloc(kv->buf, nc);
		if (!nb) {
			free(kv->buf);
			kv->buf = NULL;
			kv->cap = SIZE_MAX;
			return;
		}
		kv->buf = nb;
		kv->cap = nc;
	}
	memcpy(kv->buf + kv->len, s, n);
	kv->len += n;
	kv->buf[kv->len] = 0;
}

void krg_kv_put(struct krg_kv *kv, const char *key, const char *value)
{
	kv_add(kv, key, strlen(key));
	kv_add(kv, "=", 1);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\n')
			kv_add(kv, "\\n", 2);
		else if (*p == '\\')
			kv_add(kv, "\\\\", 2);
		else
			kv_add(kv, p, 1);
	}
	kv_add(kv, "\n", 1);
}

void krg_kv_putf(struct krg_kv *kv, const char *key, const char *fmt, ...)
{
	char v[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	krg_kv_put(kv, key, v);
}

int krg_kv_write(const struct krg_kv *kv, const char *path)
{
	if (!kv->buf)
		return -ENOMEM;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = krg_write_all(fd, kv->buf, kv->len);
	if (r < 0) {
		close(fd);
		unlink(tmp);
		return r;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

void krg_kv_free(struct krg_kv *kv)
{
	free(kv->buf);
	*kv = (struct krg_kv){ 0 };
}

/* A job's key=value file is a few hundred bytes; this bounds what a
 * reader takes from a file a user filled on purpose. */
#define KV_MAX_BYTES (1 << 20)

int krg_kv_read(const char *path, void (*cb)(const char *key, const char *value, void *data), void *data)
{
	/* Never a symbolic link, a FIFO or a device: krgd (root) counts
	 * users' jobs from these files for its metrics page, and must neither
	 * block on a FIFO nor read a file the user points it at. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > KV_MAX_BYTES) {
		close(fd);
		return -EINVAL;
	}
	FILE *f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return -errno;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		char *w = eq + 1;
		for (char *r = eq + 1; *r; r++) {
			if (*r == '\\' && r[1]) {
				r++;
				*w++ = *r == 'n' ? '\n' : *r;
			} else
				*w++ = *r;
		}
		*w = 0;
		cb(line, eq + 1, data);
	}
	free(line);
	fclose(f);
	return 0;
}

uint64_t krg_proc_starttime(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (krg_read_small(p, buf, sizeof(buf)) <= 0)
		return 0;
	char *s = strrchr(buf, ')');
	if (!s)
		return 0;
	/* Fields after ") ": 3 state ... 22 starttime. */
	s += 2;
	for (int field = 3; field < 22 && s; field++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	return s ? strtoull(s, NULL, 10) : 0;
}

/* ---- loading ---- */

static void set_str(char *dst, size_t len, const char *v)
{
	snprintf(dst, len, "%s", v);
}

static void job_cb(const char *k, const char *v, void *data)
{
	struct krg_job *j = data;
	if (!strcmp(k, "name"))
		set_str(j->name, sizeof(j->name), v);
	else if (!strcmp(k, "command"))
		set_str(j->command, sizeof(j->command), v);
	else if (!strcmp(k, "category"))
		set_str(j->category, sizeof(j->category), v);
	else if (!strcmp(k, "native"))
		set_str(j->native, sizeof(j->native), v);
	else if (!strcmp(k, "submit_ms"))
		j->submit_ms = strtoll(v, NULL, 10);
	else if (!strcmp(k, "bulk_index"))
		j->bulk_index = atoi(v);
}

static void state_cb(const char *k, const char *v, void *data)
{
	struct krg_job *j = data;
	if (!strcmp(k, "phase"))
		j->phase = !strcmp(v, "queued") ? KRG_JOB_QUEUED
			 : !strcmp(v, "running") ? KRG_JOB_RUNNING
			 : !strcmp(v, "done")	 ? KRG_JOB_DONE
						 : KRG_JOB_NONE;
	else if (!strcmp(k, "shepherd"))
		j->shepherd = (pid_t)atoi(v);
	else if (!strcmp(k, "shepherd_start"))
		j->shepherd_start = strtoull(v, NULL, 10);
	else if (!strcmp(k, "krg_id"))
		j->krg_id = (uint32_t)strtoul(v, NULL, 10);
	else if (!strcmp(k, "node"))
		j->node = (uint32_t)strtoul(v, NULL, 10);
	else if (!strcmp(k, "start_ms"))
		j->start_ms = strtoll(v, NULL, 10);
	else if (!strcmp(k, "end_ms"))
		j->end_ms = strtoll(v, NULL, 10);
	else if (!strcmp(k, "exited"))
		j->exited = atoi(v);
	else if (!strcmp(k, "signaled"))
		j->signaled = atoi(v);
	else if (!strcmp(k, "core"))
		j->core = atoi(v);
	else if (!strcmp(k, "aborted"))
		j->aborted = atoi(v);
	else if (!strcmp(k, "code"))
		j->code = atoi(v);
	else if (!strcmp(k, "signal"))
		j->signal = atoi(v);
	else if (!strcmp(k, "utime_us"))
		j->utime_us = strtoull(v, NULL, 10);
	else if (!strcmp(k, "stime_us"))
		j->stime_us = strtoull(v, NULL, 10);
	else if (!strcmp(k, "maxrss_kb"))
		j->maxrss_kb = strtoull(v, NULL, 10);
	else if (!strcmp(k, "wall_ms"))
		j->wall_ms = strtoull(v, NULL, 10);
	else if (!strcmp(k, "error"))
		set_str(j->error, sizeof(j->error), v);
	else if (!strcmp(k, "requeued"))
		j->requeued = (unsigned)strtoul(v, NULL, 10);
	else if (!strcmp(k, "requeue_why"))
		set_str(j->requeue_why, sizeof(j->requeue_why), v);
}

static bool shepherd_alive(const char *sdir, const struct krg_job *j);

static int load(const char *sdir, const char *session, unsigned seq, struct krg_job *j, bool full)
{
	char p[4096];
	int r;
	memset(j, 0, sizeof(*j));
	j->seq = seq;
	j->bulk_index = -1;
	snprintf(j->id, sizeof(j->id), "%s.%u", session, seq);
	if (full) {
		krg_job_path(p, sizeof(p), sdir, seq, "job");
		if ((r = krg_kv_read(p, job_cb, j)) < 0)
			return r;
	}
	krg_job_path(p, sizeof(p), sdir, seq, "state");
	r = krg_kv_read(p, state_cb, j);
	if (r < 0 && r != -ENOENT)
		return r;
	if (j->phase == KRG_JOB_QUEUED || j->phase == KRG_JOB_RUNNING) {
		j->shepherd_alive = shepherd_alive(sdir, j);
		if (!j->shepherd_alive) {
			/* It may have written "done" and exited since we read. */
			r = krg_kv_read(p, state_cb, j);
			if (r < 0 && r != -ENOENT)
				return r;
		}
	}
	j->hold = krg_job_has(sdir, seq, "hold");
	j->susp = krg_job_has(sdir, seq, "susp");
	j->reaped = krg_job_has(sdir, seq, "reaped");
	return 0;
}

int krg_job_load(const char *sdir, const char *session, unsigned seq, struct krg_job *j)
{
	return load(sdir, session, seq, j, true);
}

int krg_job_load_state(const char *sdir, const char *session, unsigned seq, struct krg_job *j)
{
	return load(sdir, session, seq, j, false);
}

/* The shepherd holds an exclusive flock on <n>.alive while it lives: the
 * kernel drops it when the process ends, however it ends, so no pid (and
 * no pid namespace, no pid reuse) is involved. */
static bool shepherd_alive(const char *sdir, const struct krg_job *j)
{
	char p[4096];
	krg_job_path(p, sizeof(p), sdir, j->seq, "alive");
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	bool alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

int krg_job_ps(const struct krg_job *j)
{
	switch (j->phase) {
	case KRG_JOB_DONE:
		return j->aborted || j->error[0] ? DRMAA_PS_FAILED : DRMAA_PS_DONE;
	case KRG_JOB_QUEUED:
		if (!j->shepherd_alive)
			return DRMAA_PS_UNDETERMINED;
		return j->hold ? DRMAA_PS_USER_ON_HOLD : DRMAA_PS_QUEUED_ACTIVE;
	case KRG_JOB_RUNNING:
		if (!j->shepherd_alive)
			return DRMAA_PS_UNDETERMINED;
		if (!j->krg_id)
			return DRMAA_PS_QUEUED_ACTIVE; /* being started */
		return j->susp ? DRMAA_PS_USER_SUSPENDED : DRMAA_PS_RUNNING;
	default:
		return DRMAA_PS_UNDETERMINED;
	}
}

const char *krg_job_ps_name(int ps)
{
	switch (ps) {
	case DRMAA_PS_QUEUED_ACTIVE: return "queued";
	case DRMAA_PS_SYSTEM_ON_HOLD: return "system_hold";
	case DRMAA_PS_USER_ON_HOLD: return "hold";
	case DRMAA_PS_USER_SYSTEM_ON_HOLD: return "user_system_hold";
	case DRMAA_PS_RUNNING: return "running";
	case DRMAA_PS_SYSTEM_SUSPENDED: return "system_suspended";
	case DRMAA_PS_USER_SUSPENDED: return "suspended";
	case DRMAA_PS_USER_SYSTEM_SUSPENDED: return "user_system_suspended";
	case DRMAA_PS_DONE: return "done";
	case DRMAA_PS_FAILED: return "failed";
	default: return "undetermined";
	}
}
