/* drmaa-int.h — internals of krg's DRMAA 1.0 library (include/drmaa.h,
 * docs/drmaa.md). One file per purpose:
 *   errors.c    error strings, the diagnosis buffer
 *   lists.c     attribute name / value / job id vectors
 *   template.c  job templates: attributes, validation, names
 *   timefmt.c   DRMAA time and duration formats
 *   session.c   init/exit, contact, version and system strings, the lock
 *   submit.c    run_job / run_bulk_jobs: placeholders, the job's files
 *   spec.c      a job's spec file, from submit.c to the shepherd
 *   shepherd.c  the process that runs one job through krgd (proc.run);
 *               shepherd_main.c makes it the program krg-drmaa-shepherd
 *   control.c   drmaa_control, drmaa_job_ps
 *   wait.c      drmaa_wait, drmaa_synchronize, the stat decoders
 * Every public call takes the session lock for its bookkeeping; waits
 * drop it while they sleep. */
#pragma once
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "drmaa.h"
#include "drmaa/jobstore.h"

#define KRG_DRMAA_IMPL "krg libdrmaa " KRG_DRMAA_VERSION " (DRMAA 1.0, GFD.133 C binding)"

/* ---- errors.c ---- */
/* Write a diagnosis (printf format) if the caller gave a buffer; returns code. */
int drmaa_diag(char *buf, size_t len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* DRMAA code for a negative errno from krgd or the system. */
int drmaa_errno_code(int neg_errno);

/* ---- lists.c ---- */
struct drmaa_strv {
	char **v;      /* owned, each owned */
	size_t n, cap;
	size_t next;   /* iterator position */
};
int drmaa_strv_add(struct drmaa_strv *s, const char *str);
void drmaa_strv_clear(struct drmaa_strv *s);
struct drmaa_attr_names_s { struct drmaa_strv s; };
struct drmaa_attr_values_s { struct drmaa_strv s; };
struct drmaa_job_ids_s { struct drmaa_strv s; };

/* ---- template.c ---- */
enum drmaa_attr {
	A_REMOTE_COMMAND, A_JS_STATE, A_WD, A_JOB_CATEGORY, A_NATIVE, A_BLOCK_EMAIL, A_START_TIME,
	A_JOB_NAME, A_INPUT_PATH, A_OUTPUT_PATH, A_ERROR_PATH, A_JOIN_FILES, A_DEADLINE_TIME,
	A_WCT_HLIMIT, A_WCT_SLIMIT, A_DURATION_HLIMIT, A_DURATION_SLIMIT, A_N
};
enum drmaa_vattr { V_ARGV, V_ENV, V_EMAIL, V_N };

/* Native specification, parsed. */
struct drmaa_native {
	bool has_node, auto_;
	uint32_t node;
};

struct drmaa_job_template_s {
	char *attr[A_N];              /* owned; NULL = not set */
	struct drmaa_strv vattr[V_N];
	bool vset[V_N];
	struct drmaa_job_template_s *next; /* in the session's list (freed at exit) */
};
void drmaa_template_free(struct drmaa_job_template_s *t);
/* Parse a native specification; 0, or a DRMAA code with diag written. */
int drmaa_native_parse(const char *spec, struct drmaa_native *out, char *diag, size_t len);
/* Check a [host]:path value; sets *path to the path part. */
int drmaa_path_parse(const char *attr, const char *value, const char **path, char *diag, size_t len);

/* ---- timefmt.c ---- */
/* "[[[[CC]YY/]MM/]DD] hh:mm[:ss] [{-|+}UU:uu]" → seconds since the epoch. */
int drmaa_time_parse(const char *s, time_t now, int64_t *out);
/* "[[h:]m:]s" → seconds. */
int drmaa_duration_parse(const char *s, int64_t *out);

/* ---- session.c ---- */
struct drmaa_session {
	pthread_mutex_t lock;
	bool active;
	uint64_t gen;                 /* incremented by init and exit: waiters notice */
	char name[KRG_JOB_SESSION_MAX];
	char base[PATH_MAX - 64];
	char dir[PATH_MAX];           /* base/name */
	char cluster[128];            /* cluster name, from krgd at init */
	char socket[PATH_MAX];        /* krgd's API socket, resolved at init */
	uint32_t node;                /* this node */
	uint32_t nodes[256];          /* configured nodes, from krgd at init */
	size_t n_nodes;
	unsigned next_seq;            /* next job number to try; 0 = scan the directory first */
	uint8_t *reaped;              /* bitmap by job number: known reaped (owned) */
	size_t reaped_bits;
	unsigned *pend;               /* job numbers not reaped yet, ascending (owned) */
	size_t npend, cappend;
	struct drmaa_job_template_s *templates; /* allocated in this session */
};
extern struct drmaa_session drmaa_sess;
void drmaa_lock(void);
void drmaa_unlock(void);
/* With the lock held: DRMAA_ERRNO_NO_ACTIVE_SESSION (diag written) or 0. */
int drmaa_need_session(char *diag, size_t len);
/* Job id "<session>.<n>" of this session → n; 0 if not one. */
unsigned drmaa_job_seq(const char *job_id);
/* Reaped jobs: remembered in memory so scans skip them cheaply. */
bool drmaa_reaped_known(unsigned seq);
int drmaa_reap(unsigned seq);
/* Jobs of the session not reaped yet, as this process knows them: those
 * it submitted, or (when none is left) those the directory lists, so
 * jobs of another attachment to the session are found too. */
int drmaa_pending_refresh(void);
void drmaa_pending_add(unsigned seq);
/* API socket of the local krgd. */
const char *drmaa_socket(void);

/* ---- submit.c / shepherd.c ---- */
/* Everything the shepherd needs, resolved at submit time. */
struct drmaa_jobspec {
	char **argv, **env;           /* owned, NULL-terminated */
	char *wd;                     /* job's working directory */
	char *in, *out, *err;         /* resolved paths or NULL (/dev/null) */
	bool join;
	struct drmaa_native native;
	int64_t start_at;             /* wall clock seconds, 0 = now */
	int64_t deadline;             /* 0 = none */
	int64_t wct_hard, wct_soft;   /* seconds, 0 = none */
	int64_t cpu_hard, cpu_soft;   /* seconds of CPU (RLIMIT_CPU), 0 = none */
};
void drmaa_jobspec_free(struct drmaa_jobspec *js);
/* spec.c: the job's <n>.spec file; 0 or -errno. */
int drmaa_jobspec_write(const struct drmaa_jobspec *js, const char *path);
int drmaa_jobspec_read(const char *path, struct drmaa_jobspec *js);
/* In the shepherd (krg-drmaa-shepherd, detached): run the job, write its
 * state, exit. ready_fd gets one byte once the job is recorded queued. */
_Noreturn void drmaa_shepherd_main(const char *sdir, unsigned seq, const struct drmaa_jobspec *js,
				   const char *socket, int ready_fd);
/* Path of the shepherd program (submit.c): $KRG_DRMAA_SHEPHERD, next to
 * this library (build tree), or the installed one. */
const char *drmaa_shepherd_path(void);

/* ---- control.c / wait.c ---- */
/* Load a job of this session; DRMAA_ERRNO_INVALID_JOB if unknown. */
int drmaa_job_get(const char *job_id, struct krg_job *j, char *diag, size_t len);
/* A bulk submission failed half-way: terminate and reap a task it had
 * submitted, so none of it is left behind. Lock held. */
void drmaa_job_withdraw(const char *job_id);
/* Encode a finished job's status for drmaa_wait's stat. */
int drmaa_stat_encode(const struct krg_job *j);
