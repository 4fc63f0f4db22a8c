/* jobstore.h — the per-user state of DRMAA jobs, shared by libdrmaa and
 * `krg jobs` (docs/drmaa.md, "State"). A job lives as small files in
 *     BASE/<session>/<n>.job    what was submitted (library, written once)
 *     BASE/<session>/<n>.state  where it is: queued, running, done (shepherd)
 *     BASE/<session>/<n>.hold   present while on user hold
 *     BASE/<session>/<n>.susp   present while suspended through drmaa_control
 *     BASE/<session>/<n>.reaped present once drmaa_wait/synchronize disposed it
 *     BASE/<session>/<n>.alive  flock'ed by the job's shepherd for its whole life
 * BASE is $KRG_DRMAA_DIR, else $XDG_RUNTIME_DIR/krg-drmaa, else
 * /tmp/krg-drmaa-<uid>; it must be a directory of ours with mode 0700, so
 * another user's jobs are neither visible nor controllable. Files are
 * "key=value" lines, replaced atomically. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KRG_JOB_SESSION_MAX 48   /* session name length limit */
#define KRG_JOB_ID_MAX 64        /* "<session>.<n>" */

enum krg_job_phase { KRG_JOB_NONE, KRG_JOB_QUEUED, KRG_JOB_RUNNING, KRG_JOB_DONE };

struct krg_job {
	char id[KRG_JOB_ID_MAX];
	unsigned seq;
	/* .job */
	char name[256];
	char command[512];        /* argv joined by spaces, for people */
	char category[128];
	char native[256];
	int64_t submit_ms;        /* wall clock, ms since the epoch */
	int bulk_index;           /* -1 if not a bulk task */
	/* .state */
	enum krg_job_phase phase;
	pid_t shepherd;           /* pid of the process that runs the job */
	uint64_t shepherd_start;  /* its start time (/proc stat field 22): pid reuse check */
	uint32_t krg_id, node;    /* cluster-wide id and node, once running */
	int64_t start_ms, end_ms;
	bool exited, signaled, core, aborted;
	int code, signal;
	uint64_t utime_us, stime_us, maxrss_kb, wall_ms;
	char error[256];          /* why it failed to start, if it did */
	unsigned requeued;        /* times run again from the start: its node died */
	char requeue_why[256];    /* the last requeue's reason */
	/* markers */
	bool hold, susp, reaped;
	bool shepherd_alive;      /* its shepherd holds <n>.alive (checked at load) */
};

/* The base directory (created 0700 if create), checked: ours, a real
 * directory, mode 0700. 0 or negative errno; why gets one line. */
int krg_jobs_base(char *out, size_t len, bool create, char *why, size_t whylen);
/* Session names: [A-Za-z0-9_-], 1..KRG_JOB_SESSION_MAX-1 chars. */
bool krg_jobs_session_valid(const char *name);
/* Sequence numbers of a session directory's jobs, ascending. */
int krg_jobs_list(const char *sdir, unsigned **seqs, size_t *n);
/* Load job seq of session directory sdir (named session). */
int krg_job_load(const char *sdir, const char *session, unsigned seq, struct krg_job *j);
/* Only what waiting needs: .state and the markers (no .job). */
int krg_job_load_state(const char *sdir, const char *session, unsigned seq, struct krg_job *j);
/* DRMAA_PS_* of a loaded job (checks the shepherd is still alive). */
int krg_job_ps(const struct krg_job *j);
const char *krg_job_ps_name(int ps);
/* Path of "<sdir>/<seq>.<ext>". */
void krg_job_path(char *out, size_t len, const char *sdir, unsigned seq, const char *ext);
bool krg_job_has(const char *sdir, unsigned seq, const char *ext);
int krg_job_mark(const char *sdir, unsigned seq, const char *ext, bool on);

/* key=value files. */
struct krg_kv {
	char *buf;   /* owned */
	size_t len, cap;
};
void krg_kv_put(struct krg_kv *kv, const char *key, const char *value);
void krg_kv_putf(struct krg_kv *kv, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Write atomically (tmp + rename), mode 0600. 0 or -errno. */
int krg_kv_write(const struct krg_kv *kv, const char *path);
void krg_kv_free(struct krg_kv *kv);
/* Call cb for each key=value of the file (values unescaped). */
int krg_kv_read(const char *path, void (*cb)(const char *key, const char *value, void *data), void *data);
/* Start time of a process (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t krg_proc_starttime(pid_t pid);
