/* shepherd.c — one per DRMAA job: a detached process (its own session,
 * no fds of the caller) that waits while the job is held or its start
 * time is ahead, then runs it as a krg process through the local krgd
 * (API "proc.run", as `krg run` does), pumps its stdio from/to the job's
 * files, enforces the wall-clock limits and the deadline, and writes the
 * outcome and resource usage to <n>.state. It outlives the program that
 * submitted the job, so drmaa_exit leaves jobs running and a later
 * session can wait for them.
 *
 * Signals: SIGUSR1 = "look again" (release), SIGTERM = terminate (abort
 * if not started yet, else SIGKILL to the job through its stream). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "api/client.h"
#include "api/run_client.h"
#include "api/server.h"
#include "drmaa/drmaa-int.h"
#include "lib/fileio.h"
#include "lib/macro.h"
#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "proto/node.pb-c.h"
#include "proto/proc.pb-c.h"

/* A running job whose stream is silent this long is probed: if its
 * process is gone and still nothing comes for as long again, its exit
 * report was lost (a krgd link dropped under overload) — the job fails
 * with that reason instead of waiting for ever. */
#define SILENCE_MS 3000
/* A job whose node died is run again from the start (requeued) at most
 * this many times; the next death fails it. */
#define MAX_REQUEUES 3
/* How long the cluster may take to mark a lost node down (its failure
 * timeout, plus the leader's election) before the job is given up. */
#define DOWN_WAIT_MS 60000
/* After "down", before the job runs again: a node only cut off from the
 * others still runs the old copy until its krgd kills it, failure_timeout_ms
 * after it lost the link to this node (exec's orphan rule, docs/drmaa.md). */
#define REQUEUE_GRACE_MS_DEFAULT 3000

struct shep {
	const char *sdir;
	unsigned seq;
	const struct drmaa_jobspec *js;
	int sigfd;
	uint64_t my_start;
	uint32_t krg_id, node;
	int64_t start_ms;
	int slot;                 /* flock'ed start slot while starting, or -1 */
	unsigned requeued;        /* runs started again after a node died */
	char requeue_why[256];
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_state(struct shep *s, const char *phase, const struct krg_kv *extra)
{
	char p[PATH_MAX + 32];
	struct krg_kv kv = { 0 };
	krg_kv_put(&kv, "phase", phase);
	krg_kv_putf(&kv, "shepherd", "%d", (int)getpid());
	krg_kv_putf(&kv, "shepherd_start", "%llu", (unsigned long long)s->my_start);
	if (s->krg_id) {
		krg_kv_putf(&kv, "krg_id", "%u", s->krg_id);
		krg_kv_putf(&kv, "node", "%u", s->node);
		krg_kv_putf(&kv, "start_ms", "%lld", (long long)s->start_ms);
	}
	if (s->requeued) {
		krg_kv_putf(&kv, "requeued", "%u", s->requeued);
		krg_kv_put(&kv, "requeue_why", s->requeue_why);
	}
	if (extra && extra->buf) {
		/* Append the caller's lines. */
		struct krg_kv *k = &kv;
		size_t n = extra->len;
		char *nb = realloc(k->buf, k->len + n + 1);
		if (nb) {
			memcpy(nb + k->len, extra->buf, n + 1);
			k->buf = nb;
			k->len += n;
			k->cap = k->len + 1;
		}
	}
	krg_job_path(p, sizeof(p), s->sdir, s->seq, "state");
	krg_kv_write(&kv, p);
	krg_kv_free(&kv);
}

/* The job ended without running, or krg failed: FAILED with a reason. */
static _Noreturn void finish_failed(struct shep *s, bool aborted, int code, const char *why)
{
	struct krg_kv kv = { 0 };
	krg_kv_putf(&kv, "aborted", "%d", aborted);
	krg_kv_putf(&kv, "exited", "%d", !aborted);
	krg_kv_putf(&kv, "code", "%d", code);
	krg_kv_putf(&kv, "end_ms", "%lld", (long long)wall_ms());
	krg_kv_put(&kv, "error", why);
	write_state(s, "done", &kv);
	krg_kv_free(&kv);
	krg_job_mark(s->sdir, s->seq, "susp", false);
	krg_job_mark(s->sdir, s->seq, "alive", false); /* done: nobody asks any more */
	_exit(0);
}

static int lock_job(struct shep *s)
{
	char p[PATH_MAX + 32];
	krg_job_path(p, sizeof(p), s->sdir, s->seq, "job");
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	return fd;
}

static void unlock_job(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Drain the signalfd: 1 if asked to terminate. */
static int take_signals(struct shep *s)
{
	struct signalfd_siginfo si;
	int term = 0;
	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo != SIGUSR1)
			term = 1;
	return term;
}

/* Admission: at most KRG_DRMAA_MAX_STARTING (default 32) jobs of this
 * user on this node are being started at once — a bulk submission of
 * thousands would otherwise open as many krgd streams in the same
 * instant. A slot is an flock on BASE/slots/<i>, released by closing it
 * (or by the shepherd's death), so no count can leak. Running jobs are
 * not limited. Returns the locked fd or -1 if every slot tried is busy. */
static int take_slot(struct shep *s)
{
	static unsigned n;
	if (!n) {
		const char *e = getenv("KRG_DRMAA_MAX_STARTING");
		long v = e ? strtol(e, NULL, 10) : 0;
		n = v >= 1 && v <= 4096 ? (unsigned)v : 32;
	}
	char dir[PATH_MAX], p[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s", s->sdir);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return -2;
	snprintf(slash, sizeof(dir) - (size_t)(slash - dir), "/slots");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -2; /* no admission control possible: go on without */
	for (unsigned i = 0; i < n && i < 8; i++) {
		snprintf(p, sizeof(p), "%s/%u", dir, (s->seq + i * 7) % n);
		int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -2;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		close(fd);
	}
	/* All busy: sleep in the kernel on our own slot, at most 1 s (SIGALRM
	 * interrupts it), then the caller looks at holds and signals again. */
	snprintf(p, sizeof(p), "%s/%u", dir, s->seq % n);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -2;
	struct itimerval it = { .it_value = { .tv_sec = 1 } }, off = { 0 };
	setitimer(ITIMER_REAL, &it, NULL);
	int r = flock(fd, LOCK_EX);
	setitimer(ITIMER_REAL, &off, NULL);
	if (r == 0)
		return fd;
	close(fd);
	return -1;
}

static void on_alarm(int sig)
{
	(void)sig; /* only interrupts the flock of take_slot */
}

/* Queued: wait for release and the start time. Returns once the job may
 * start (state written "running" under the job lock, so a concurrent
 * drmaa_control(HOLD) sees it started). */
static void wait_queued(struct shep *s)
{
	const struct drmaa_jobspec *js = s->js;
	for (;;) {
		int fd = lock_job(s);
		if (fd < 0)
			_exit(0); /* the job was removed */
		bool held = krg_job_has(s->sdir, s->seq, "hold");
		int64_t now = wall_ms();
		if (js->deadline && now >= js->deadline * 1000) {
			unlock_job(fd);
			finish_failed(s, true, 0, "the deadline passed before the job could start");
		}
		bool startable = !held && now >= js->start_at * 1000;
		if (startable && s->slot == -1)
			s->slot = take_slot(s);
		if (startable && s->slot != -1) {
			write_state(s, "running", NULL);
			unlock_job(fd);
			return;
		}
		unlock_job(fd);
		int64_t wait = 1000;
		if (startable)
			wait = 0; /* take_slot already waited */
		else if (!held && js->start_at * 1000 - now < wait)
			wait = js->start_at * 1000 - now;
		struct pollfd pf = { .fd = s->sigfd, .events = POLLIN };
		poll(&pf, 1, (int)(wait > 0 ? wait : 0));
		if (take_signals(s))
			finish_failed(s, true, 0, "terminated before it ran");
	}
}

static int open_out(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0666);
}

/* Does the job's process still exist? (krg's kill path, signal 0.) */
static bool job_gone(uint32_t id, const char *socket)
{
	Krg__Node__ProcKill k = KRG__NODE__PROC_KILL__INIT;
	k.id = id;
	k.signal = 0;
	uint8_t body[32];
	size_t n = krg__node__proc_kill__pack(&k, body);
	char err[256];
	return krg_api_call(socket, "proc.kill", body, n, 5000, NULL, NULL, err, sizeof(err)) == -ESRCH;
}

/* The job's stream: output to its files, the end to its state. */
struct shep_stream {
	struct krg_run_client c;
	struct shep *s;
	int out, err;
	int64_t t0;
	bool lost;             /* the job's node was lost: lost_node, why */
	uint32_t lost_node;
	char why[600];
};

static void shep_output(void *data, unsigned fd, const uint8_t *bytes, size_t len)
{
	struct shep_stream *st = data;
	int to = fd == 1 ? st->out : st->err;
	if (to >= 0)
		(void)krg_write_all(to, bytes, len); /* a full disk loses output, not the job */
}

static void shep_ended(void *data, const Krg__Proc__Io *io)
{
	struct shep_stream *st = data;
	struct shep *s = st->s;
	if (io->error && io->has_lost_node) {
		/* The run loop decides: requeue, or fail with this reason. */
		st->lost = true;
		st->lost_node = io->lost_node;
		snprintf(st->why, sizeof(st->why), "krg run: %s", io->error);
		return;
	}
	if (io->error) {
		char why[600];
		snprintf(why, sizeof(why), "krg run: %s", io->error);
		finish_failed(s, false, 255, why);
	}
	struct krg_kv kv = { 0 };
	bool sig = io->has_term_signal;
	krg_kv_putf(&kv, "exited", "%d", !sig);
	krg_kv_putf(&kv, "signaled", "%d", sig);
	krg_kv_putf(&kv, "code", "%d", sig ? 0 : io->code & 255);
	krg_kv_putf(&kv, "signal", "%d", sig ? io->term_signal : 0);
	krg_kv_putf(&kv, "core", "%d", sig && io->core_dumped);
	krg_kv_putf(&kv, "aborted", "0");
	krg_kv_putf(&kv, "utime_us", "%llu", (unsigned long long)io->utime_us);
	krg_kv_putf(&kv, "stime_us", "%llu", (unsigned long long)io->stime_us);
	krg_kv_putf(&kv, "maxrss_kb", "%llu", (unsigned long long)io->maxrss_kb);
	krg_kv_putf(&kv, "wall_ms", "%llu",
		    (unsigned long long)(io->has_wall_ms ? io->wall_ms : (uint64_t)(wall_ms() - st->t0)));
	krg_kv_putf(&kv, "end_ms", "%lld", (long long)wall_ms());
	if (st->out >= 0)
		fsync(st->out);
	write_state(s, "done", &kv);
	krg_job_mark(s->sdir, s->seq, "susp", false);
	krg_job_mark(s->sdir, s->seq, "alive", false);
	_exit(0);
}

/* The job's stdin, stdout and stderr files (-1: none); a failure ends
 * the shepherd. */
static void open_stdio(struct shep *s, int *in, int *out, int *err)
{
	const struct drmaa_jobspec *js = s->js;
	char why[600];
	if (js->in && (*in = open(js->in, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(why, sizeof(why), "cannot open input path %s: %s", js->in, strerror(errno));
		finish_failed(s, true, 0, why);
	}
	if (js->out && (*out = open_out(js->out)) < 0) {
		snprintf(why, sizeof(why), "cannot open output path %s: %s", js->out, strerror(errno));
		finish_failed(s, true, 0, why);
	}
	if (js->join)
		*err = *out;
	else if (js->err && (*err = open_out(js->err)) < 0) {
		snprintf(why, sizeof(why), "cannot open error path %s: %s", js->err, strerror(errno));
		finish_failed(s, true, 0, why);
	}
}

/* proc.run's request for the job, packed (malloc'd, *len bytes). */
static uint8_t *run_request(struct shep *s, size_t *len)
{
	const struct drmaa_jobspec *js = s->js;
	Krg__Proc__RunRequest req = KRG__PROC__RUN_REQUEST__INIT;
	size_t na = 0, ne = 0;
	while (js->argv[na])
		na++;
	while (js->env[ne])
		ne++;
	req.argv = js->argv;
	req.n_argv = na;
	req.env = js->env;
	req.n_env = ne;
	req.cwd = js->wd;
	mode_t um = umask(0);
	umask(um);
	req.umask = um;
	if (js->native.has_node) {
		req.has_node = true;
		req.node = js->native.node;
	}
	if (js->native.auto_)
		req.has_auto_ = req.auto_ = true;
	Krg__Proc__Rlimit rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	krg_run_request_rlimits(&req, rl, rlp, (uint64_t)js->cpu_soft, (uint64_t)js->cpu_hard);
	*len = krg__proc__run_request__get_packed_size(&req);
	uint8_t *body = malloc(*len ? *len : 1);
	if (!body)
		finish_failed(s, true, 0, "out of memory");
	krg__proc__run_request__pack(&req, body);
	return body;
}

/* The job started through krgd: its stream in *sock, its window. */
static void start_job(struct shep *s, const char *socket, int *sock, size_t *window)
{
	size_t blen;
	uint8_t *body = run_request(s, &blen);
	char e[512], why[600];
	uint8_t *resp = NULL;
	size_t rlen = 0;
	/* krgd's listen queue may be full when many jobs start at once
	 * (bulk submission): that is "try later", not a failure. */
	int r, delay_ms = 5;
	int64_t give_up = wall_ms() + 120000;
	while ((r = krg_api_call_stream(socket, "proc.run", body, blen, 40000, &resp, &rlen, sock, e, sizeof(e))) ==
		       -EAGAIN &&
	       wall_ms() < give_up) {
		if (take_signals(s))
			finish_failed(s, true, 0, "terminated before it ran");
		usleep((useconds_t)(delay_ms * 1000 + (getpid() % 7) * 1000));
		if (delay_ms < 200)
			delay_ms *= 2;
	}
	free(body);
	if (r < 0) {
		snprintf(why, sizeof(why), "krg run: %s", e);
		finish_failed(s, true, r == -ENOENT && strstr(e, "command not found") ? 127 : r == -EACCES ? 126 : 255,
			      why);
	}
	Krg__Proc__RunStarted *rs = krg__proc__run_started__unpack(NULL, rlen, resp);
	free(resp);
	if (!rs)
		finish_failed(s, true, 255, "krgd sent a malformed answer to proc.run");
	if (s->slot >= 0)
		close(s->slot); /* started: the next one may start */
	s->slot = -1;
	*window = rs->has_window ? rs->window : 0;
	s->krg_id = rs->id;
	s->node = rs->node;
	s->start_ms = wall_ms();
	krg__proc__run_started__free_unpacked(rs, NULL);
	write_state(s, "running", NULL);
}

/* The job's time limits while it runs. */
struct limits {
	bool soft_sent, hard_sent, dead_sent;
};

/* Soft wall clock: SIGTERM, hard: SIGKILL, deadline: SIGKILL, each once
 * when due. Returns next, or sooner if a limit falls due before. */
static int64_t apply_limits(struct shep *s, struct krg_run_client *c, struct limits *l, int64_t now, int64_t next)
{
	const struct drmaa_jobspec *js = s->js;
	int64_t t0 = s->start_ms;
	if (js->wct_soft && !l->soft_sent) {
		if (now - t0 >= js->wct_soft * 1000) {
			krg_run_client_signal(c, SIGTERM);
			l->soft_sent = true;
		} else if (t0 + js->wct_soft * 1000 < next)
			next = t0 + js->wct_soft * 1000;
	}
	if (js->wct_hard && !l->hard_sent) {
		if (now - t0 >= js->wct_hard * 1000) {
			krg_run_client_signal(c, SIGCONT);
			krg_run_client_signal(c, SIGKILL);
			l->hard_sent = true;
		} else if (t0 + js->wct_hard * 1000 < next)
			next = t0 + js->wct_hard * 1000;
	}
	if (js->deadline && !l->dead_sent) {
		if (now >= js->deadline * 1000) {
			krg_run_client_signal(c, SIGCONT);
			krg_run_client_signal(c, SIGKILL);
			l->dead_sent = true;
		} else if (js->deadline * 1000 < next)
			next = js->deadline * 1000;
	}
	return next;
}

/* Silence from krgd: is the job still there? */
struct silence {
	int64_t heard, gone_at, every;
};

/* Asked every so often (less and less for a quiet long job); gone for
 * SILENCE_MS: the exit report was lost. Returns when to ask next. */
static int64_t probe_silence(struct shep *s, const char *socket, struct silence *q, int64_t now)
{
	if (now - q->heard >= q->every) {
		if (!job_gone(s->krg_id, socket)) {
			q->gone_at = 0;
			if (q->every < 64 * SILENCE_MS)
				q->every *= 2; /* a quiet long job: probe less and less */
		} else if (!q->gone_at) {
			q->gone_at = now;
			q->every = SILENCE_MS;
		} else if (now - q->gone_at >= SILENCE_MS)
			finish_failed(s, false, 255, "krg lost the job's exit report (its process is gone; a krgd link failed)");
		q->heard = now;
	}
	return q->heard + q->every;
}

/* The state of node as this node's krgd sees it (KRG__CLUSTER__NODE_STATE__*),
 * or -1 if krgd cannot tell. */
static int node_state(const char *socket, uint32_t node)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char e[256];
	if (krg_api_call(socket, "cluster.status", NULL, 0, 5000, &buf, &len, e, sizeof(e)) < 0)
		return -1;
	Krg__Api__ClusterStatus *st = krg__api__cluster_status__unpack(NULL, len, buf);
	free(buf);
	if (!st)
		return -1;
	int r = KRG__CLUSTER__NODE_STATE__NODE_ABSENT; /* not a member any more */
	for (size_t i = 0; i < st->n_nodes; i++)
		if (st->nodes[i]->id == node)
			r = st->nodes[i]->state;
	krg__api__cluster_status__free_unpacked(st, NULL);
	return r;
}

static int64_t requeue_grace_ms(void)
{
	const char *v = getenv("KRG_DRMAA_REQUEUE_GRACE_MS");
	char *end;
	long long ms = v && *v ? strtoll(v, &end, 10) : -1;
	return v && *v && !*end && ms >= 0 && ms <= 600000 ? ms : REQUEUE_GRACE_MS_DEFAULT;
}

/* The job's node was lost: run it again from the start elsewhere once
 * the cluster has marked that node down, or fail with st->why. A job
 * bound to that node (-n N) is not moved: it fails. */
static void requeue_or_fail(struct shep *s, struct shep_stream *st, const char *socket)
{
	char why[900];
	uint32_t node = st->lost_node;
	if (s->js->native.has_node && s->js->native.node == node) {
		snprintf(why, sizeof(why), "%s; the job was bound to node %u (-n %u): not requeued", st->why, node, node);
		finish_failed(s, false, 255, why);
	}
	if (s->requeued >= MAX_REQUEUES) {
		snprintf(why, sizeof(why), "%s; requeued %u times already: not again", st->why, s->requeued);
		finish_failed(s, false, 255, why);
	}
	/* Down (or removed) for the cluster, not a link that flapped: then
	 * the process there is gone or being killed. */
	int64_t give_up = wall_ms() + DOWN_WAIT_MS;
	for (;;) {
		int ns = node_state(socket, node);
		if (ns == KRG__CLUSTER__NODE_STATE__NODE_DOWN || ns == KRG__CLUSTER__NODE_STATE__NODE_ABSENT)
			break;
		if (wall_ms() >= give_up) {
			snprintf(why, sizeof(why), "%s; node %u was not marked down within %d s: not requeued",
				 st->why, node, DOWN_WAIT_MS / 1000);
			finish_failed(s, false, 255, why);
		}
		struct pollfd pf = { .fd = s->sigfd, .events = POLLIN };
		poll(&pf, 1, 200);
		if (take_signals(s))
			finish_failed(s, false, 255, "terminated while its node was lost");
	}
	int64_t until = wall_ms() + requeue_grace_ms();
	while (wall_ms() < until) {
		struct pollfd pf = { .fd = s->sigfd, .events = POLLIN };
		poll(&pf, 1, (int)MIN(until - wall_ms(), 200));
		if (take_signals(s))
			finish_failed(s, false, 255, "terminated while being requeued");
	}
	/* From the start: what the lost run wrote goes (a regular file is
	 * emptied; a fifo or a device just goes on). */
	struct stat sb;
	if (st->out >= 0 && fstat(st->out, &sb) == 0 && S_ISREG(sb.st_mode))
		(void)!ftruncate(st->out, 0);
	if (st->err >= 0 && st->err != st->out && fstat(st->err, &sb) == 0 && S_ISREG(sb.st_mode))
		(void)!ftruncate(st->err, 0);
	s->requeued++;
	snprintf(s->requeue_why, sizeof(s->requeue_why), "node %u died while the job ran there (%u was its krg id)",
		 node, s->krg_id);
	s->krg_id = 0;
	write_state(s, "queued", NULL);
}

static _Noreturn void run(struct shep *s, const char *socket)
{
	int in = -1, out = -1, err = -1, sock = -1;
	size_t window;
	open_stdio(s, &in, &out, &err);
again:
	if (in >= 0 && lseek(in, 0, SEEK_SET) < 0 && s->requeued)
		finish_failed(s, false, 255, "requeued, but its input cannot be read again from the start");
	start_job(s, socket, &sock, &window);

	struct shep_stream st = { .s = s, .out = out, .err = err, .t0 = s->start_ms };
	struct krg_run_client *c = &st.c;
	static const struct krg_run_client_cbs cbs = { shep_output, shep_ended };
	struct limits lim = { 0 };
	if (krg_run_client_init(c, sock, window) < 0)
		finish_failed(s, false, 255, "out of memory");
	if (in < 0)
		krg_run_client_stdin_eof(c);
	struct silence q = { .heard = s->start_ms, .every = SILENCE_MS };
	for (;;) {
		int64_t now = wall_ms();
		int64_t next = apply_limits(s, c, &lim, now, probe_silence(s, socket, &q, now));
		/* stdin is a file: read whenever the window allows. */
		bool want_in = krg_run_client_wants_stdin(c, KRG_RUN_CHUNK);
		struct pollfd pf[2] = {
			{ .fd = sock, .events = krg_run_client_events(c) },
			{ .fd = s->sigfd, .events = POLLIN },
		};
		int timeout = want_in ? 0 : (int)(next - now > 0 ? next - now : 0);
		if (poll(pf, 2, timeout) < 0 && errno != EINTR)
			finish_failed(s, false, 255, "poll failed");
		if (pf[1].revents & POLLIN && take_signals(s)) {
			krg_run_client_signal(c, SIGCONT);
			krg_run_client_signal(c, SIGKILL);
		}
		if (want_in && krg_run_client_read_stdin(c, in) == -ENOMEM)
			finish_failed(s, false, 255, "out of memory");
		if (pf[0].revents & POLLOUT)
			krg_run_client_send(c);
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int r = krg_run_client_recv(c, &cbs, &st);
		if (st.lost) {
			krg_run_client_free(c);
			close(sock);
			sock = -1;
			requeue_or_fail(s, &st, socket);
			goto again;
		}
		if (r == -EAGAIN)
			continue;
		if (r == -ECONNRESET)
			finish_failed(s, false, 255, "lost the connection to krgd while the job ran");
		if (r == -EBADMSG)
			finish_failed(s, false, 255, "krgd sent a bad frame");
		if (r < 0)
			finish_failed(s, false, 255, "out of memory");
		q.heard = wall_ms();
		q.gone_at = 0;
	}
}

_Noreturn void drmaa_shepherd_main(const char *sdir, unsigned seq, const struct drmaa_jobspec *js,
				   const char *socket, int ready_fd)
{
	struct shep s = { .sdir = sdir, .seq = seq, .js = js, .slot = -1 };
	setsid();
	prctl(PR_SET_NAME, "krg-drmaa-job");
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3; fd++)
		if (nul >= 0 && nul != fd)
			dup2(nul, fd);
	if (nul > 2)
		close(nul);
	/* Nothing of the caller's: its sockets, pipes and files stay its own. */
	if (ready_fd > 3)
		close_range(3, (unsigned)ready_fd - 1, 0);
	close_range((unsigned)ready_fd + 1, ~0u, 0);
	sigset_t set;
	sigemptyset(&set);
	for (int i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal(i, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_SETMASK, &set, NULL);
	s.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s.my_start = krg_proc_starttime(getpid());
	/* Alive while this lock is held (jobstore.c): taken before any state. */
	char ap[PATH_MAX + 32];
	krg_job_path(ap, sizeof(ap), sdir, seq, "alive");
	int alive = open(ap, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (alive < 0 || flock(alive, LOCK_EX) < 0)
		_exit(1);
	write_state(&s, "queued", NULL);
	char c = 1;
	if (s.sigfd < 0 || write(ready_fd, &c, 1) != 1)
		_exit(1);
	close(ready_fd);
	wait_queued(&s);
	run(&s, socket);
}
