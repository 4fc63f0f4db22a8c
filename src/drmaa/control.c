/* control.c — drmaa_control (suspend, resume, hold, release, terminate,
 * for one job or DRMAA_JOB_IDS_SESSION_ALL) and drmaa_job_ps.
 * Suspend and resume stop and continue the job's whole process tree
 * (krg's application freeze), terminate goes through krg's kill path (API
 * "proc.kill" with the job's cluster-wide id: the node that runs it checks
 * our uid); hold and release act on the job's shepherd
 * under the job's lock, so they cannot race with its start. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "api/client.h"
#include "drmaa/drmaa-int.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/node.pb-c.h"

int drmaa_job_get(const char *job_id, struct krg_job *j, char *diag, size_t len)
{
	if (!job_id)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job id is NULL");
	unsigned seq = drmaa_job_seq(job_id);
	if (!seq)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_JOB, "'%.80s' is not a job id of session %s",
				  job_id, drmaa_sess.name);
	int r = krg_job_load(drmaa_sess.dir, drmaa_sess.name, seq, j);
	if (r < 0 || !j->name[0])
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_JOB, "no job %.80s in session %s", job_id,
				  drmaa_sess.name);
	return 0;
}

static int krg_kill(uint32_t id, int sig, const char *job, char *diag, size_t len)
{
	Krg__Node__ProcKill k = KRG__NODE__PROC_KILL__INIT;
	k.id = id;
	k.signal = sig;
	uint8_t body[32];
	size_t n = krg__node__proc_kill__pack(&k, body);
	char err[512];
	int r = krg_api_call(drmaa_socket(), "proc.kill", body, n, 10000, NULL, NULL, err, sizeof(err));
	if (r < 0)
		return drmaa_diag(diag, len, drmaa_errno_code(r), "job %s (krg id %u): %s", job, id, err);
	return 0;
}

/* Suspend / resume the whole job, its children included: krg's
 * application freeze (API "ckpt.dump" with freeze or unfreeze: every
 * process of the tree stopped, parents before their children are listed,
 * or continued), checked against our uid on the job's node. */
static int krg_freeze(uint32_t id, bool freeze, const char *job, char *diag, size_t len)
{
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	d.id = id;
	d.has_freeze = d.freeze = freeze;
	d.has_unfreeze = d.unfreeze = !freeze;
	uint8_t body[32], *resp = NULL;
	size_t n = krg__ckptsvc__dump__pack(&d, body), rlen = 0;
	char err[512];
	int r = krg_api_call(drmaa_socket(), "ckpt.dump", body, n, 10000, &resp, &rlen, err, sizeof(err));
	free(resp);
	if (r < 0)
		return drmaa_diag(diag, len, drmaa_errno_code(r), "job %s (krg id %u): %s", job, id, err);
	return 0;
}

static int lock_job(unsigned seq)
{
	char p[PATH_MAX + 32];
	krg_job_path(p, sizeof(p), drmaa_sess.dir, seq, "job");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	return fd;
}

static int act(struct krg_job *j, int action, char *diag, size_t len)
{
	int ps = krg_job_ps(j), r = 0, fd;
	switch (action) {
	case DRMAA_CONTROL_SUSPEND:
		if (ps == DRMAA_PS_USER_SUSPENDED)
			return 0;
		if (ps != DRMAA_PS_RUNNING)
			return drmaa_diag(diag, len, DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE,
					  "job %s is %s, not running: cannot suspend it", j->id, krg_job_ps_name(ps));
		if ((r = krg_freeze(j->krg_id, true, j->id, diag, len)))
			return r;
		krg_job_mark(drmaa_sess.dir, j->seq, "susp", true);
		return 0;
	case DRMAA_CONTROL_RESUME:
		if (ps != DRMAA_PS_USER_SUSPENDED)
			return drmaa_diag(diag, len, DRMAA_ERRNO_RESUME_INCONSISTENT_STATE,
					  "job %s is %s, not suspended: cannot resume it", j->id, krg_job_ps_name(ps));
		if ((r = krg_freeze(j->krg_id, false, j->id, diag, len)))
			return r;
		krg_job_mark(drmaa_sess.dir, j->seq, "susp", false);
		return 0;
	case DRMAA_CONTROL_HOLD:
	case DRMAA_CONTROL_RELEASE:
		/* Under the job lock the shepherd cannot start it meanwhile. */
		fd = lock_job(j->seq);
		if (krg_job_load(drmaa_sess.dir, drmaa_sess.name, j->seq, j) == 0)
			ps = krg_job_ps(j);
		if (action == DRMAA_CONTROL_HOLD) {
			if (ps == DRMAA_PS_USER_ON_HOLD)
				r = 0;
			else if (ps != DRMAA_PS_QUEUED_ACTIVE || j->phase != KRG_JOB_QUEUED)
				r = drmaa_diag(diag, len, DRMAA_ERRNO_HOLD_INCONSISTENT_STATE,
					       "job %s is %s, not queued: cannot hold it", j->id,
					       krg_job_ps_name(ps));
			else if (krg_job_mark(drmaa_sess.dir, j->seq, "hold", true) < 0)
				r = drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot mark job %s held",
					       j->id);
		} else {
			if (ps != DRMAA_PS_USER_ON_HOLD)
				r = drmaa_diag(diag, len, DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE,
					       "job %s is %s, not on hold: cannot release it", j->id,
					       krg_job_ps_name(ps));
			else {
				krg_job_mark(drmaa_sess.dir, j->seq, "hold", false);
				kill(j->shepherd, SIGUSR1);
			}
		}
		if (fd >= 0)
			close(fd);
		return r;
	case DRMAA_CONTROL_TERMINATE:
		if (ps == DRMAA_PS_DONE || ps == DRMAA_PS_FAILED || ps == DRMAA_PS_UNDETERMINED)
			return 0; /* already over */
		if (j->phase == KRG_JOB_RUNNING && j->krg_id) {
			r = krg_kill(j->krg_id, SIGKILL, j->id, diag, len);
			/* It may have ended meanwhile: then there is nothing to kill. */
			if (r == DRMAA_ERRNO_INVALID_JOB)
				r = 0;
			return r;
		}
		/* Not started: the shepherd records it aborted (or kills it if
		 * it just started). */
		if (kill(j->shepherd, SIGTERM) < 0 && errno != ESRCH)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "job %s: %s", j->id,
					  strerror(errno));
		return 0;
	}
	return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "unknown action %d", action);
}

void drmaa_job_withdraw(const char *job_id)
{
	struct krg_job j;
	char d[256];
	if (drmaa_job_get(job_id, &j, d, sizeof(d)) == 0) {
		act(&j, DRMAA_CONTROL_TERMINATE, d, sizeof(d));
		drmaa_reap(j.seq);
	}
}

int drmaa_control(const char *jobid, int action, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len);
	if (!r && !jobid)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job id is NULL");
	if (!r && (action < DRMAA_CONTROL_SUSPEND || action > DRMAA_CONTROL_TERMINATE))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
			       "unknown action %d (DRMAA_CONTROL_SUSPEND..DRMAA_CONTROL_TERMINATE)", action);
	if (r)
		goto out;
	if (!strcmp(jobid, DRMAA_JOB_IDS_SESSION_ALL)) {
		/* Every job of the session where the action applies; the others
		 * are left as they are. */
		unsigned *seqs;
		size_t n;
		if (krg_jobs_list(drmaa_sess.dir, &seqs, &n) < 0) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR, "cannot read %s", drmaa_sess.dir);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			struct krg_job j;
			if (krg_job_load(drmaa_sess.dir, drmaa_sess.name, seqs[i], &j) < 0 || j.reaped)
				continue;
			int ps = krg_job_ps(&j);
			bool applies = action == DRMAA_CONTROL_SUSPEND	 ? ps == DRMAA_PS_RUNNING
				     : action == DRMAA_CONTROL_RESUME	 ? ps == DRMAA_PS_USER_SUSPENDED
				     : action == DRMAA_CONTROL_HOLD	 ? ps == DRMAA_PS_QUEUED_ACTIVE
				     : action == DRMAA_CONTROL_RELEASE ? ps == DRMAA_PS_USER_ON_HOLD
									: true;
			if (!applies)
				continue;
			int x = act(&j, action, diag, len);
			if (x && x != DRMAA_ERRNO_HOLD_INCONSISTENT_STATE && x != DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE &&
			    !r)
				r = x;
		}
		free(seqs);
		goto out;
	}
	struct krg_job j;
	if ((r = drmaa_job_get(jobid, &j, diag, len)))
		goto out;
	r = act(&j, action, diag, len);
out:
	drmaa_unlock();
	return r;
}

int drmaa_job_ps(const char *job_id, int *remote_ps, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len);
	if (!r && !remote_ps)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "remote_ps is NULL");
	struct krg_job j;
	if (!r && !(r = drmaa_job_get(job_id, &j, diag, len)))
		*remote_ps = krg_job_ps(&j);
	drmaa_unlock();
	return r;
}
