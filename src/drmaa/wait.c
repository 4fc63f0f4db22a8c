/* wait.c — drmaa_wait, drmaa_synchronize and the decoders of the stat
 * value. Waiting watches the session directory with inotify (a shepherd
 * renames <n>.state into place when its job ends) and rechecks at least
 * every 500 ms, so a vanished shepherd is noticed too; the session lock
 * is dropped while sleeping so other threads go on. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>
#include "drmaa/drmaa-int.h"

#define ST_EXITED 0x10000
#define ST_SIGNALED 0x20000
#define ST_ABORTED 0x40000
#define ST_CORE 0x80000

int drmaa_stat_encode(const struct krg_job *j)
{
	if (j->phase != KRG_JOB_DONE) /* its shepherd vanished: it never reported */
		return ST_ABORTED;
	int st = 0;
	if (j->aborted)
		st |= ST_ABORTED;
	else if (j->signaled)
		st |= ST_SIGNALED | (j->signal & 0xff) << 8 | (j->core ? ST_CORE : 0);
	else if (j->exited)
		st |= ST_EXITED | (j->code & 0xff);
	return st;
}

static bool finished(const struct krg_job *j)
{
	if (j->phase == KRG_JOB_NONE)
		return false; /* being submitted: its shepherd writes the state first */
	int ps = krg_job_ps(j);
	return ps == DRMAA_PS_DONE || ps == DRMAA_PS_FAILED || ps == DRMAA_PS_UNDETERMINED;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int add_usage(drmaa_attr_values_t *v, const char *k, const char *fmt, double x)
{
	char buf[128], num[64];
	snprintf(num, sizeof(num), fmt, x);
	snprintf(buf, sizeof(buf), "%s=%s", k, num);
	return drmaa_strv_add(&v->s, buf);
}

static drmaa_attr_values_t *usage(const struct krg_job *j)
{
	drmaa_attr_values_t *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	double cpu = (double)(j->utime_us + j->stime_us) / 1e6;
	int r = add_usage(v, "cpu", "%.3f", cpu) || add_usage(v, "ru_utime", "%.3f", (double)j->utime_us / 1e6) ||
		add_usage(v, "ru_stime", "%.3f", (double)j->stime_us / 1e6) ||
		add_usage(v, "mem", "%.0f", (double)j->maxrss_kb) ||
		add_usage(v, "ru_maxrss", "%.0f", (double)j->maxrss_kb) ||
		add_usage(v, "wallclock", "%.3f", (double)j->wall_ms / 1e3) ||
		add_usage(v, "ru_wallclock", "%.3f", (double)j->wall_ms / 1e3) ||
		add_usage(v, "submission_time", "%.3f", (double)j->submit_ms / 1e3) ||
		add_usage(v, "start_time", "%.3f", (double)j->start_ms / 1e3) ||
		add_usage(v, "end_time", "%.3f", (double)j->end_ms / 1e3) ||
		add_usage(v, "exit_status", "%.0f", (double)(j->signaled ? 128 + j->signal : j->code)) ||
		add_usage(v, "signal", "%.0f", (double)(j->signaled ? j->signal : 0)) ||
		add_usage(v, "node", "%.0f", (double)j->node) || add_usage(v, "krg_id", "%.0f", (double)j->krg_id);
	if (r) {
		drmaa_release_attr_values(v);
		return NULL;
	}
	return v;
}

/* Sleep until the session directory changes or ms pass; lock dropped. */
static void nap(int ino, int64_t ms)
{
	if (ms > 500)
		ms = 500;
	if (ms < 0)
		ms = 0;
	drmaa_unlock();
	if (ino >= 0) {
		struct pollfd pf = { .fd = ino, .events = POLLIN };
		if (poll(&pf, 1, (int)ms) > 0) {
			char buf[4096];
			while (read(ino, buf, sizeof(buf)) > 0)
				;
		}
	} else
		usleep((useconds_t)ms * 1000);
	drmaa_lock();
}

static int watch(void)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd >= 0 && inotify_add_watch(fd, drmaa_sess.dir, IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int drmaa_wait(const char *job_id, char *job_id_out, size_t job_id_out_len, int *stat, signed long timeout,
	       drmaa_attr_values_t **rusage, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len), ino = -1;
	uint64_t gen = drmaa_sess.gen;
	if (!r && !job_id)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job id is NULL");
	if (!r && timeout < DRMAA_TIMEOUT_WAIT_FOREVER)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "timeout %ld: seconds, or -1 for ever",
			       timeout);
	int64_t end = timeout < 0 ? INT64_MAX : mono_ms() + (int64_t)timeout * 1000;
	bool any = job_id && !strcmp(job_id, DRMAA_JOB_IDS_SESSION_ANY);
	while (!r) {
		if (drmaa_sess.gen != gen || !drmaa_sess.active) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION, "the session ended while waiting");
			break;
		}
		struct krg_job j, found;
		bool have = false, pending = false;
		if (any) {
			if (!drmaa_sess.npend && drmaa_pending_refresh() < 0) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot read %s", drmaa_sess.dir);
				break;
			}
			for (size_t i = 0; i < drmaa_sess.npend && !have; i++) {
				unsigned seq = drmaa_sess.pend[i];
				if (krg_job_load_state(drmaa_sess.dir, drmaa_sess.name, seq, &j) < 0 || j.reaped) {
					/* Reaped by another attachment, or its state is
					 * unreadable: never to be waited for here. */
					drmaa_reap(seq);
					break; /* the list changed: look again */
				}
				if (finished(&j)) {
					found = j;
					have = true;
				} else
					pending = true;
			}
			if (!have && !pending && drmaa_sess.npend) {
				pending = true; /* looked at a changed list: again at once */
				continue;
			}
			if (!have && !pending) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
					       "no job of session %s left to wait for", drmaa_sess.name);
				break;
			}
		} else {
			if ((r = drmaa_job_get(job_id, &j, diag, len)))
				break;
			if (j.reaped) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
					       "job %s was already reaped by drmaa_wait or drmaa_synchronize", job_id);
				break;
			}
			if (finished(&j)) {
				found = j;
				have = true;
			}
		}
		if (have) {
			if (drmaa_reap(found.seq) < 0) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot mark %s reaped", found.id);
				break;
			}
			if (job_id_out && job_id_out_len)
				snprintf(job_id_out, job_id_out_len, "%s", found.id);
			if (stat)
				*stat = drmaa_stat_encode(&found);
			if (rusage) {
				*rusage = usage(&found);
				if (!*rusage)
					r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
			}
			break;
		}
		int64_t left = end - mono_ms();
		if (left <= 0) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_EXIT_TIMEOUT, "job %s did not finish within %ld s",
				       any ? "of the session" : job_id, timeout);
			break;
		}
		if (ino < 0)
			ino = watch();
		nap(ino, left);
	}
	if (ino >= 0)
		close(ino);
	drmaa_unlock();
	return r;
}

int drmaa_synchronize(const char *job_ids[], signed long timeout, int dispose, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len), ino = -1;
	uint64_t gen = drmaa_sess.gen;
	if (!r && !job_ids)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job_ids is NULL");
	if (!r && timeout < DRMAA_TIMEOUT_WAIT_FOREVER)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "timeout %ld: seconds, or -1 for ever",
			       timeout);
	/* The set: job numbers, SESSION_ALL expanded now. */
	unsigned *set = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; !r && job_ids[i]; i++) {
		unsigned *all = NULL, one = 0;
		size_t k = 0;
		if (!strcmp(job_ids[i], DRMAA_JOB_IDS_SESSION_ALL)) {
			if (krg_jobs_list(drmaa_sess.dir, &all, &k) < 0) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot read %s", drmaa_sess.dir);
				break;
			}
		} else {
			struct krg_job j;
			if ((r = drmaa_job_get(job_ids[i], &j, diag, len)))
				break;
			if (j.reaped) {
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_JOB, "job %s was already reaped",
					       job_ids[i]);
				break;
			}
			one = j.seq;
			k = 1;
		}
		if (n + k > cap) {
			size_t nc = (n + k) * 2;
			unsigned *ns = realloc(set, nc * sizeof(*ns));
			if (!ns) {
				free(all);
				r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
				break;
			}
			set = ns;
			cap = nc;
		}
		for (size_t x = 0; x < k; x++)
			if (!all || !drmaa_reaped_known(all[x]))
				set[n++] = all ? all[x] : one;
		free(all);
	}
	int64_t end = timeout < 0 ? INT64_MAX : mono_ms() + (int64_t)timeout * 1000;
	size_t done = 0; /* set[0..done) are finished */
	while (!r) {
		if (drmaa_sess.gen != gen || !drmaa_sess.active) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION, "the session ended while waiting");
			break;
		}
		while (done < n) {
			struct krg_job j;
			if (krg_job_load_state(drmaa_sess.dir, drmaa_sess.name, set[done], &j) == 0 && !j.reaped &&
			    !finished(&j))
				break;
			done++;
		}
		if (done == n)
			break;
		int64_t left = end - mono_ms();
		if (left <= 0) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_EXIT_TIMEOUT, "%zu of %zu jobs still unfinished after %ld s",
				       n - done, n, timeout);
			break;
		}
		if (ino < 0)
			ino = watch();
		nap(ino, left);
	}
	if (!r && dispose)
		for (size_t i = 0; i < n; i++)
			drmaa_reap(set[i]);
	free(set);
	if (ino >= 0)
		close(ino);
	drmaa_unlock();
	return r;
}

static int need(const void *p, char *diag, size_t len)
{
	return p ? 0 : drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "output pointer is NULL");
}

int drmaa_wifexited(int *exited, int stat, char *diag, size_t len)
{
	int r = need(exited, diag, len);
	if (!r)
		*exited = !!(stat & ST_EXITED);
	return r;
}

int drmaa_wexitstatus(int *exit_status, int stat, char *diag, size_t len)
{
	int r = need(exit_status, diag, len);
	if (!r)
		*exit_status = stat & ST_EXITED ? stat & 0xff : 0;
	return r;
}

int drmaa_wifsignaled(int *signaled, int stat, char *diag, size_t len)
{
	int r = need(signaled, diag, len);
	if (!r)
		*signaled = !!(stat & ST_SIGNALED);
	return r;
}

int drmaa_wtermsig(char *signal, size_t signal_len, int stat, char *diag, size_t len)
{
	int r = need(signal, diag, len);
	if (!r && !signal_len)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "signal buffer of 0 bytes");
	if (!r) {
		int sig = stat & ST_SIGNALED ? (stat >> 8) & 0xff : 0;
		const char *n = sig ? sigabbrev_np(sig) : NULL;
		if (n)
			snprintf(signal, signal_len, "SIG%s", n);
		else if (sig)
			snprintf(signal, signal_len, "%d", sig);
		else
			signal[0] = 0;
	}
	return r;
}

int drmaa_wcoredump(int *core_dumped, int stat, char *diag, size_t len)
{
	int r = need(core_dumped, diag, len);
	if (!r)
		*core_dumped = !!(stat & ST_CORE);
	return r;
}

int drmaa_wifaborted(int *aborted, int stat, char *diag, size_t len)
{
	int r = need(aborted, diag, len);
	if (!r)
		*aborted = !!(stat & ST_ABORTED);
	return r;
}
