/* exec_back.c — target side of remote execution: spawn the process as the
 * caller, pump its stdio (pipes or a pty) with credit-based back-pressure,
 * reap it and report its exact status after all of its output. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "ipc/intercept.h"
#include "ipc/intercept_svc.h"
#include "lib/log.h"
#include "fsview/fsview.h"
#include "proc/exec/exec-int.h"
#include "proc/exec/exec_msg.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"

#define GRACE_MS 250   /* orphans holding the output open after exit */

enum { H_IN, H_OUT, H_ERR, H_N };

struct exec_back {
	struct exec_back *next;
	struct krg_exec *e;
	uint32_t caller;
	uint64_t stream;
	pid_t pid;
	bool tty;
	uv_pipe_t h[H_N];          /* tty: H_OUT is the master, both ways */
	bool open[H_N];
	bool stdin_eof;            /* caller sent EOF */
	size_t stdin_pending;      /* writes in flight */
	size_t unacked;            /* output sent, not yet credited */
	size_t stdin_credit;       /* written to the process, not yet credited */
	bool reading;
	bool discard;              /* caller gone: read and drop output */
	bool reaped;
	int status;
	struct rusage ru;          /* from wait4 */
	uint64_t start_ms, end_ms; /* uv_now at fork and at reaping: wall time */
	bool finished;             /* exit sent, removed from the list */
	uint64_t read_since_tick;
	uv_timer_t grace, orphan;
	int handles;               /* open uv handles */
};

struct in_write {
	uv_write_t w;
	struct exec_back *b;
	size_t len;
	uint8_t data[];
};

static struct exec_back *back_find(struct krg_exec *e, uint32_t caller, uint64_t stream)
{
	for (struct exec_back *b = e->backs; b; b = b->next)
		if (b->caller == caller && b->stream == stream)
			return b;
	return NULL;
}

static void back_handle_closed(uv_handle_t *h)
{
	struct exec_back *b = h->data;
	if (--b->handles == 0)
		free(b);
}

static void close_io(struct exec_back *b, int i)
{
	if (!b->open[i])
		return;
	b->open[i] = false;
	uv_close((uv_handle_t *)&b->h[i], back_handle_closed);
}

static void unlink_back(struct exec_back *b)
{
	for (struct exec_back **p = &b->e->backs; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
}

/* Exit sent (or nobody to send it to): release everything. */
static void back_release(struct exec_back *b)
{
	if (b->finished)
		return;
	b->finished = true;
	unlink_back(b);
	for (int i = 0; i < H_N; i++)
		close_io(b, i);
	uv_close((uv_handle_t *)&b->grace, back_handle_closed);
	uv_close((uv_handle_t *)&b->orphan, back_handle_closed);
}

static bool outputs_open(const struct exec_back *b)
{
	return b->open[H_OUT] || b->open[H_ERR];
}

static void maybe_finish(struct exec_back *b)
{
	if (b->finished || !b->reaped || outputs_open(b))
		return;
	Krg__Proc__Exit x = KRG__PROC__EXIT__INIT;
	x.stream = b->stream;
	if (WIFSIGNALED(b->status)) {
		x.has_signal = true;
		x.signal = WTERMSIG(b->status);
		x.has_core_dumped = true;
		x.core_dumped = WCOREDUMP(b->status);
	} else {
		x.has_code = true;
		x.code = WEXITSTATUS(b->status);
	}
	x.has_utime_us = x.has_stime_us = x.has_maxrss_kb = x.has_wall_ms = true;
	x.utime_us = (uint64_t)b->ru.ru_utime.tv_sec * 1000000 + (uint64_t)b->ru.ru_utime.tv_usec;
	x.stime_us = (uint64_t)b->ru.ru_stime.tv_sec * 1000000 + (uint64_t)b->ru.ru_stime.tv_usec;
	x.maxrss_kb = b->ru.ru_maxrss > 0 ? (uint64_t)b->ru.ru_maxrss : 0;
	x.wall_ms = b->end_ms - b->start_ms;
	size_t n;
	uint8_t *buf = x_pack(&x.base, &n);
	if (buf && x_send_bulk(b->e, b->caller, "proc.exit", buf, n) < 0)
		log_debug("exec: cannot report exit of pid %d to node %u", (int)b->pid, b->caller);
	log_debug("exec: pid %d (stream %llu of node %u) done, status 0x%x", (int)b->pid,
		  (unsigned long long)b->stream, b->caller, (unsigned)b->status);
	back_release(b);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	/* Room for the Data envelope in front of the bytes. */
	char *p = malloc(EXEC_CHUNK);
	*buf = uv_buf_init(p, p ? EXEC_CHUNK : 0);
}

static void reading_set(struct exec_back *b, bool on);

static void out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct exec_back *b = s->data;
	int i = (uv_pipe_t *)s == &b->h[H_OUT] ? H_OUT : H_ERR;
	if (nread > 0) {
		b->read_since_tick += (size_t)nread;
		if (!b->discard) {
			Krg__Proc__Data d = KRG__PROC__DATA__INIT;
			d.stream = b->stream;
			d.fd = i == H_OUT ? 1 : 2;
			d.has_data = true;
			d.data.data = (uint8_t *)buf->base;
			d.data.len = (size_t)nread;
			size_t n;
			uint8_t *m = x_pack(&d.base, &n);
			if (m && x_send_bulk(b->e, b->caller, "proc.data", m, n) == 0) {
				b->unacked += (size_t)nread;
				if (b->unacked >= EXEC_WINDOW)
					reading_set(b, false);
			}
		}
	} else if (nread < 0) {
		/* EOF, or EIO on a pty master once every slave fd is closed. */
		close_io(b, i);
		if (b->tty)
			b->open[H_IN] = false; /* same fd, already closed */
		maybe_finish(b);
	}
	free(buf->base);
}

static void reading_set(struct exec_back *b, bool on)
{
	if (b->reading == on)
		return;
	b->reading = on;
	for (int i = H_OUT; i <= H_ERR; i++) {
		if (!b->open[i])
			continue;
		if (on)
			uv_read_start((uv_stream_t *)&b->h[i], out_alloc, out_read);
		else
			uv_read_stop((uv_stream_t *)&b->h[i]);
	}
}

static void grace_cb(uv_timer_t *t)
{
	struct exec_back *b = t->data;
	/* Exited, output still open: if nothing came since the last tick while
	 * we were free to read, orphans hold it open; stop waiting. */
	if (b->reading && b->read_since_tick == 0) {
		close_io(b, H_OUT);
		close_io(b, H_ERR);
		if (b->tty)
			b->open[H_IN] = false;
		maybe_finish(b);
		return;
	}
	b->read_since_tick = 0;
}

static void hangup(struct exec_back *b)
{
	b->discard = true;
	reading_set(b, true);
	if (!b->tty)
		close_io(b, H_IN);
	if (!b->reaped) {
		kill(-b->pid, SIGHUP);
		kill(-b->pid, SIGCONT);
	}
}

static void orphan_cb(uv_timer_t *t)
{
	struct exec_back *b = t->data;
	log_info("exec: caller node %u unreachable for too long, killing pid %d", b->caller, (int)b->pid);
	hangup(b);
	if (!b->reaped)
		kill(-b->pid, SIGKILL);
}

void back_peer_lost(struct krg_exec *e, uint32_t node)
{
	for (struct exec_back *b = e->backs; b; b = b->next)
		if (b->caller == node && !uv_is_active((uv_handle_t *)&b->orphan))
			uv_timer_start(&b->orphan, orphan_cb, e->s->cfg->failure_timeout_ms, 0);
}

void back_stop_all(struct krg_exec *e)
{
	while (e->backs) {
		struct exec_back *b = e->backs;
		if (!b->reaped) {
			kill(-b->pid, SIGHUP);
			kill(-b->pid, SIGCONT);
			kill(-b->pid, SIGKILL);
		}
		back_release(b);
	}
}

void back_reap(struct krg_exec *e)
{
	for (;;) {
		int st;
		struct rusage ru;
		pid_t pid = wait4(-1, &st, WNOHANG, &ru);
		if (pid <= 0)
			return;
		struct exec_back *b = e->backs;
		while (b && b->pid != pid)
			b = b->next;
		if (!b || b->reaped) {
			log_debug("exec: reaped orphan %d (status %#x)", (int)pid, st);
			continue;
		}
		b->reaped = true;
		b->status = st;
		b->ru = ru;
		b->end_ms = uv_now(e->s->loop);
		if (outputs_open(b)) {
			b->read_since_tick = 0;
			uv_timer_start(&b->grace, grace_cb, GRACE_MS, GRACE_MS);
		}
		maybe_finish(b);
	}
}

/* ---- stdin ---- */

static void send_stdin_credit(struct exec_back *b, size_t n)
{
	b->stdin_credit += n;
	if (b->stdin_credit < EXEC_CREDIT_BATCH)
		return;
	Krg__Proc__Ctl c = KRG__PROC__CTL__INIT;
	c.stream = b->stream;
	c.has_stdin_credit = true;
	c.stdin_credit = (uint32_t)b->stdin_credit;
	b->stdin_credit = 0;
	x_send_ctl(b->e, b->caller, &c);
}

static void in_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct exec_back *b = req->data;
	free(req);
	close_io(b, H_IN);
}

static void stdin_close_if_done(struct exec_back *b)
{
	if (!b->stdin_eof || b->stdin_pending || !b->open[H_IN] || b->tty)
		return;
	uv_shutdown_t *req = malloc(sizeof(*req));
	if (!req) {
		close_io(b, H_IN);
		return;
	}
	req->data = b;
	if (uv_shutdown(req, (uv_stream_t *)&b->h[H_IN], in_shutdown_cb) < 0) {
		free(req);
		close_io(b, H_IN);
	}
}

static void in_write_cb(uv_write_t *w, int status)
{
	struct in_write *iw = (struct in_write *)w;
	struct exec_back *b = iw->b;
	b->stdin_pending -= iw->len;
	if (!b->finished) {
		send_stdin_credit(b, iw->len);
		if (status < 0 && !b->tty)
			close_io(b, H_IN); /* EPIPE: the process closed its stdin */
		else
			stdin_close_if_done(b);
	}
	free(iw);
}

void back_on_data(struct krg_exec *e, uint32_t from, const Krg__Proc__Data *d)
{
	struct exec_back *b = back_find(e, from, d->stream);
	if (!b || b->finished)
		return; /* the process is gone: its stdin with it */
	size_t len = d->has_data ? d->data.len : 0;
	uv_pipe_t *h = b->tty ? &b->h[H_OUT] : &b->h[H_IN];
	bool ok = b->tty ? b->open[H_OUT] : b->open[H_IN];
	if (len) {
		if (!ok || b->stdin_eof) {
			send_stdin_credit(b, len);
		} else {
			struct in_write *iw = malloc(sizeof(*iw) + len);
			if (!iw) {
				send_stdin_credit(b, len);
				return;
			}
			iw->b = b;
			iw->len = len;
			memcpy(iw->data, d->data.data, len);
			uv_buf_t buf = uv_buf_init((char *)iw->data, (unsigned)len);
			if (uv_write(&iw->w, (uv_stream_t *)h, &buf, 1, in_write_cb) < 0) {
				free(iw);
				send_stdin_credit(b, len);
			} else {
				b->stdin_pending += len;
			}
		}
	}
	if (d->has_eof && d->eof && !b->stdin_eof) {
		if (b->tty && ok) {
			/* The terminal's EOF character, as a local user would type. */
			static char eof_char = 4;
			struct in_write *iw = malloc(sizeof(*iw) + 1);
			if (iw) {
				iw->b = b;
				iw->len = 0;
				iw->data[0] = (uint8_t)eof_char;
				uv_buf_t buf = uv_buf_init((char *)iw->data, 1);
				if (uv_write(&iw->w, (uv_stream_t *)h, &buf, 1, in_write_cb) < 0)
					free(iw);
			}
		}
		b->stdin_eof = true;
		stdin_close_if_done(b);
	}
}

void back_on_ctl(struct krg_exec *e, uint32_t from, const Krg__Proc__Ctl *c)
{
	struct exec_back *b = back_find(e, from, c->stream);
	if (!b || b->finished)
		return;
	if (c->has_credit) {
		b->unacked = c->credit > b->unacked ? 0 : b->unacked - c->credit;
		if (b->unacked < EXEC_WINDOW)
			reading_set(b, true);
	}
	if (c->has_rows && c->has_cols && b->tty && b->open[H_OUT]) {
		struct winsize ws = { .ws_row = (unsigned short)c->rows, .ws_col = (unsigned short)c->cols };
		uv_os_fd_t fd;
		if (uv_fileno((uv_handle_t *)&b->h[H_OUT], &fd) == 0)
			ioctl(fd, TIOCSWINSZ, &ws);
	}
	if (!b->reaped && c->has_signal)
		kill(b->pid, c->signal);
	if (!b->reaped && c->has_group_signal)
		kill(-b->pid, c->group_signal);
	if (c->hangup)
		hangup(b);
	if (c->kill) {
		hangup(b);
		if (!b->reaped)
			kill(-b->pid, SIGKILL);
	}
}

/* ---- spawn ---- */

struct spawn_ctx {
	char **argv, **envp, **cands, **sh_argv;
	gid_t *groups;
	size_t n_groups;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	const char *cwd;
	struct {
		int res;
		struct rlimit rl;
	} rl[RLIM_NLIMITS];
	size_t n_rl;
	bool tty;
	char slave[64];
	bool restart;                 /* krg restart --foreground: restore, not exec */
	uint32_t restart_appid, restart_version;
	pid_t krgd;                   /* the child's parent: it dies with it */
	int isock;                    /* -1, or where the IPC listener goes to krgd (ipc/intercept.h) */
	int fsns;                     /* -1, or the file view of the caller's node (fsview/fsview.h) */
};

struct child_err {
	int stage; /* 1 setgroups, 2 setgid, 3 setuid, 4 chdir, 5 exec, 6 tty, 7 other, 8 restart, 9 IPC filter, 10 file view */
	int err;
	char msg[512];             /* restart: why, in words */
};

static _Noreturn void child_fail(int fd, int stage, int err)
{
	struct child_err ce = { .stage = stage, .err = err };
	ssize_t r = write(fd, &ce, sizeof(ce));
	(void)r;
	_exit(127);
}

/* Stage 11: in a file view, the child goes on alone (child_run). */
#define STAGE_ALONE 11

static void put_str(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

/* An exec that failed with err found the program but could not run it
 * (krg run: 126), rather than not finding it (127) or failing otherwise. */
static bool exec_not_executable(int err)
{
	return err == EACCES || err == EPERM || err == EISDIR || err == ENOEXEC;
}

/* After STAGE_ALONE nobody reads errfd: a chdir or exec that fails says
 * so on the program's stderr, as a shell would, and exits with what krg
 * run gives for the same failure outside a view (docs/krg-run.md): 127
 * not found, 126 not executable, 255 krg's own failures (a chdir).
 * Async-signal-safe (no strerror: krgd has threads). */
static _Noreturn void child_fail_alone(const char *what, const char *name, int err)
{
	bool exec = !strcmp(what, "");
	int code = !exec ? 255 : err == ENOENT ? 127 : exec_not_executable(err) ? 126 : 255;
	static const struct { int e; const char *s; } msgs[] = {
		{ ENOENT, "No such file or directory" }, { EACCES, "Permission denied" },
		{ ENOTDIR, "Not a directory" }, { EIO, "Input/output error" }, { ENOEXEC, "Exec format error" },
		{ ELOOP, "Too many levels of symbolic links" }, { ENAMETOOLONG, "File name too long" },
		{ EPERM, "Operation not permitted" }, { EISDIR, "Is a directory" }, { ETXTBSY, "Text file busy" },
		{ E2BIG, "Argument list too long" }, { ENOMEM, "Cannot allocate memory" },
	};
	const char *m = "error";
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		if (msgs[i].e == err)
			m = msgs[i].s;
	put_str("krg run: ");
	put_str(what);
	put_str(name);
	put_str(": ");
	put_str(err == ENOENT && exec ? "command not found" : m);
	put_str("\n");
	_exit(code);
}

/* In the child, after fork: only async-signal-safe calls. */
static _Noreturn void child_run(const struct spawn_ctx *c, int in, int out, int err, int errfd)
{
	if (setsid() < 0)
		child_fail(errfd, 7, errno);
	if (c->tty) {
		int fd = open(c->slave, O_RDWR);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
			child_fail(errfd, 6, errno);
		in = out = err = fd;
	}
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(errfd, 7, errno);
	if (c->restart) {
		/* The stand-in dies with krgd, and the application with the
		 * stand-in (exec_restart.c): otherwise both run on under the
		 * node's init, out of krg's sight. Root from here on, so nothing
		 * clears it; checked after, krgd may be gone already. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->krgd)
			_exit(127);
		/* Root until the image's credentials are restored (the store
		 * checks that the caller may restart it). */
		for (int s = 1; s < 65; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Keep errfd and the listener's way to krgd. */
		int lo = c->isock >= 0 && c->isock < errfd ? c->isock : errfd, hi = lo == errfd ? c->isock : errfd;
		if (lo > 3)
			close_range(3, (unsigned)lo - 1, 0);
		if (hi > lo + 1)
			close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
		close_range((unsigned)(hi > lo ? hi : lo) + 1, ~0u, 0);
		struct child_err ce = { .stage = 8 };
		ce.err = -exec_restart_child(c->restart_appid, c->restart_version, c->uid, c->tty ? c->slave : NULL, errfd,
					     c->isock, ce.msg, sizeof(ce.msg));
		ssize_t w = write(errfd, &ce, sizeof(ce));
		(void)w;
		_exit(127);
	}
	/* The caller's node's files (docs/fsview.md); needs root: first. */
	if (c->fsns >= 0 && krg_fsview_enter(c->fsns) < 0)
		child_fail(errfd, 10, errno);
	/* The IPC filter while still root (CAP_SYS_ADMIN: no no_new_privs,
	 * setuid programs keep working); every process of the application
	 * inherits it, through fork and exec. Its listener goes to krgd. */
	if (c->isock >= 0) {
		int lfd = krg_intercept_install();
		if (lfd < 0)
			child_fail(errfd, 9, -lfd);
		int r = krg_intercept_send_fd(c->isock, lfd);
		if (r < 0)
			child_fail(errfd, 9, -r);
		close(lfd);
		close(c->isock);
	}
	if (setgroups(c->n_groups, c->groups) < 0)
		child_fail(errfd, 1, errno);
	if (setgid(c->gid) < 0)
		child_fail(errfd, 2, errno);
	if (setuid(c->uid) < 0)
		child_fail(errfd, 3, errno);
	/* krgd gone (killed) = node gone: take the process with it. After
	 * setuid, which would clear it; checked after, krgd may be gone. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->krgd)
		_exit(127);
	umask(c->umask);
	for (size_t i = 0; i < c->n_rl; i++)
		setrlimit(c->rl[i].res, &c->rl[i].rl); /* best effort, as the caller now */
	/* In a file view, chdir and exec may look paths up through it (a
	 * working directory or a program in /tmp), and krgd relays those
	 * lookups home: krgd stops waiting here (it would wait on itself) and
	 * the child reports a failure of either on its own stderr. */
	bool alone = c->fsns >= 0;
	if (alone) {
		struct child_err ce = { .stage = STAGE_ALONE };
		ssize_t w = write(errfd, &ce, sizeof(ce));
		(void)w;
	}
	if (chdir(c->cwd) < 0) {
		if (alone)
			child_fail_alone("cannot change directory to ", c->cwd, errno);
		child_fail(errfd, 4, errno);
	}
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (errfd > 3)
		close_range(3, (unsigned)errfd - 1, 0);
	close_range((unsigned)errfd + 1, ~0u, 0);
	int e = ENOENT;
	bool eacces = false;
	for (char **p = c->cands; *p; p++) {
		/* krg's own exec: not one to place elsewhere (intercept.h). */
		syscall(SYS_execve, *p, c->argv, c->envp, KRG_INTERCEPT_EXEC_PASS);
		e = errno;
		if (e == ENOEXEC) {
			/* As execvp: a file without a #! line is a shell script. */
			c->sh_argv[1] = *p;
			syscall(SYS_execve, "/bin/sh", c->sh_argv, c->envp, KRG_INTERCEPT_EXEC_PASS);
			e = errno;
			break;
		}
		if (e == EACCES)
			eacces = true;
		else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ELOOP && e != ENAMETOOLONG)
			break;
	}
	if (eacces && (e == ENOENT || e == ENOTDIR))
		e = EACCES;
	if (alone)
		child_fail_alone("", c->argv[0], e);
	child_fail(errfd, 5, e);
}

static const char *stage_name(int stage)
{
	static const char *n[] = { "?", "setgroups", "setgid", "setuid", "chdir", "exec", "terminal", "setup", "restart",
				   "installing the IPC filter", "entering the file view" };
	return stage >= 0 && stage < 11 ? n[stage] : "?";
}

static void spawn_reply(struct krg_exec *e, uint32_t from, uint64_t req_id, int err, const char *msg, pid_t pid)
{
	Krg__Proc__Spawned r = KRG__PROC__SPAWNED__INIT;
	if (err) {
		r.has_err = true;
		r.err = err;
		r.error = (char *)msg;
	} else {
		r.has_pid = r.has_id = r.has_window = true;
		r.pid = (uint32_t)pid;
		r.id = krg_procid_make(e->self, (uint32_t)pid);
		r.window = EXEC_WINDOW;
	}
	size_t n;
	uint8_t *b = x_pack(&r.base, &n);
	if (b) {
		x_reply(e, from, req_id, b, n);
		free(b);
	}
}

/* What the child needs, from the request: its argv (and /bin/sh's, for a
 * script without #!), environment, PATH candidates, ids, umask, cwd,
 * limits and terminal. 0 or -ENOMEM. */
static int spawn_ctx_fill(struct spawn_ctx *c, const Krg__Proc__Spawn *s)
{
	const Krg__Proc__RunRequest *r = s->run;
	c->argv = calloc(r->n_argv + 1, sizeof(char *));
	c->sh_argv = calloc(r->n_argv + 2, sizeof(char *));
	c->envp = calloc(r->n_env + 1, sizeof(char *));
	c->groups = calloc(s->n_groups + 1, sizeof(gid_t));
	if (!c->argv || !c->sh_argv || !c->envp || !c->groups)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_argv; i++) {
		c->argv[i] = r->argv[i];
		c->sh_argv[i + 1] = r->argv[i];
	}
	c->sh_argv[0] = "/bin/sh";
	for (size_t i = 0; i < r->n_env; i++)
		c->envp[i] = r->env[i];
	c->cands = exec_path_candidates(r->argv[0], exec_env_get(r->env, r->n_env, "PATH"));
	if (!c->cands)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_groups; i++)
		c->groups[i] = (gid_t)s->groups[i];
	c->n_groups = s->n_groups;
	c->uid = s->uid;
	c->gid = s->gid;
	c->umask = (mode_t)r->umask;
	c->cwd = r->cwd;
	for (size_t i = 0; i < r->n_rlimits; i++) {
		c->rl[c->n_rl].res = (int)r->rlimits[i]->resource;
		c->rl[c->n_rl].rl.rlim_cur = r->rlimits[i]->cur;
		c->rl[c->n_rl].rl.rlim_max = r->rlimits[i]->max;
		c->n_rl++;
	}
	c->tty = r->has_tty && r->tty;
	c->restart = r->has_restart_appid;
	c->restart_appid = r->restart_appid;
	c->restart_version = r->restart_version;
	c->krgd = getpid();
	c->isock = -1;
	c->fsns = -1;
	return 0;
}

/* The file view of the caller's node and the IPC channel for the child.
 * 0 or -errno with line set. */
static int spawn_views(struct krg_exec *e, uint32_t from, struct spawn_ctx *c, const Krg__Proc__Spawn *s, char *line,
		       size_t len)
{
	const Krg__Proc__RunRequest *r = s->run;
	/* Started for a caller on another node: it sees that node's files. */
	if (from != e->self && !c->restart && !(r->has_local_files && r->local_files)) {
		int fd = krg_fsview_ns(e->s->fsview, from, s->uid, s->gid);
		if (fd < 0 && fd != -ENOENT) {
			snprintf(line, len, "cannot show node %u's files on node %u: %s (krg run --local-files runs without)",
				 from, e->self, strerror(-fd));
			return fd;
		}
		c->fsns = fd;
	}
	int err;
	if (e->s->intercept && (err = krg_intercept_channel(e->s->intercept, &c->isock)) < 0) {
		snprintf(line, len, "cannot start %s on node %u: IPC interception: %s", r->argv[0], e->self, strerror(-err));
		return err;
	}
	return 0;
}

/* Its stdio: a pseudo-terminal (master in *master) or three pipes. 0 or
 * -errno (line set when it says more). */
static int spawn_stdio(struct krg_exec *e, struct spawn_ctx *c, const Krg__Proc__Spawn *s, int fds[3][2], int *master,
		       char *line, size_t len)
{
	const Krg__Proc__RunRequest *r = s->run;
	if (!c->tty) {
		for (int i = 0; i < 3; i++) {
			if (pipe2(fds[i], O_CLOEXEC) < 0)
				return -errno;
			/* Fewer, larger reads and writes for bulk stdio; best effort
			 * (limited by /proc/sys/fs/pipe-max-size and the user's quota). */
			if (fcntl(fds[i][0], F_SETPIPE_SZ, EXEC_PIPE_SZ) < 0)
				log_debug("exec: F_SETPIPE_SZ: %s", strerror(errno));
		}
		return 0;
	}
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0 || ptsname_r(*master, c->slave, sizeof(c->slave)) != 0) {
		int err = -errno;
		snprintf(line, len, "cannot open a pseudo-terminal on node %u: %s", e->self, strerror(errno));
		return err;
	}
	struct winsize ws = { .ws_row = (unsigned short)(r->has_rows ? r->rows : 24),
			      .ws_col = (unsigned short)(r->has_cols ? r->cols : 80) };
	ioctl(*master, TIOCSWINSZ, &ws);
	/* The terminal belongs to the user, as login would set it. */
	if (chown(c->slave, s->uid, (gid_t)-1) < 0 || chmod(c->slave, 0620) < 0)
		log_debug("exec: cannot hand %s to uid %u: %s", c->slave, s->uid, strerror(errno));
	return 0;
}

/* The child said why it could not start: as -errno and a line. */
static int spawn_child_error(struct krg_exec *e, const Krg__Proc__RunRequest *r, struct child_err *ce, char *line,
			     size_t len)
{
	if (ce->stage == 8) {
		ce->msg[sizeof(ce->msg) - 1] = 0;
		snprintf(line, len, "%s", ce->msg[0] ? ce->msg : strerror(ce->err));
		return ce->err > 0 ? -ce->err : -EIO;
	}
	if (ce->stage == 5 && ce->err == ENOENT) {
		snprintf(line, len, "%s: command not found", r->argv[0]);
		return -ENOENT;
	}
	if (ce->stage == 5 && exec_not_executable(ce->err)) {
		snprintf(line, len, "%s: %s", r->argv[0], strerror(ce->err));
		return -EACCES;
	}
	if (ce->stage == 4)
		snprintf(line, len, "cannot change directory to %s on node %u: %s", r->cwd, e->self, strerror(ce->err));
	else
		snprintf(line, len, "%s: %s failed on node %u: %s", r->argv[0], stage_name(ce->stage), e->self,
			 strerror(ce->err));
	return -ECHILD;
}

/* Started: its stream, reading its output (the fds it takes are -1
 * after). NULL when out of memory. */
static struct exec_back *back_new(struct krg_exec *e, uint32_t from, const Krg__Proc__Spawn *s, pid_t pid, bool tty,
				  int fds[3][2], int *master)
{
	struct exec_back *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->e = e;
	b->caller = from;
	b->stream = s->stream;
	b->pid = pid;
	b->tty = tty;
	uv_update_time(e->s->loop);
	b->start_ms = uv_now(e->s->loop);
	uv_timer_init(e->s->loop, &b->grace);
	uv_timer_init(e->s->loop, &b->orphan);
	b->grace.data = b->orphan.data = b;
	b->handles = 2;
	if (tty) {
		uv_pipe_init(e->s->loop, &b->h[H_OUT], 0);
		b->h[H_OUT].data = b;
		b->handles++;
		b->open[H_OUT] = true;
		if (uv_pipe_open(&b->h[H_OUT], *master) == 0)
			*master = -1;
		else
			close_io(b, H_OUT);
	} else {
		int which[3] = { fds[0][1], fds[1][0], fds[2][0] };
		for (int i = 0; i < 3; i++) {
			uv_pipe_init(e->s->loop, &b->h[i], 0);
			b->h[i].data = b;
			b->handles++;
			b->open[i] = true;
			if (uv_pipe_open(&b->h[i], which[i]) < 0) {
				close(which[i]);
				close_io(b, i);
			}
			fds[i][i == 0 ? 1 : 0] = -1;
		}
	}
	b->next = e->backs;
	e->backs = b;
	reading_set(b, true);
	return b;
}

/* Its capabilities, written once it runs (its id is its pid): until the
 * log applies it, a look-up sees the defaults, but its children's
 * look-ups walk up to this entry whenever they are made. */
static void store_caps(struct krg_exec *e, const Krg__Proc__Spawn *s, pid_t pid)
{
	struct krg_caps k = { s->caps->eff, s->caps->perm, s->caps->inh_eff, s->caps->inh_perm };
	int cr = krg_caps_store(e->s->cluster, krg_procid_make(e->self, (uint32_t)pid), pid, &k, NULL, NULL);
	if (cr < 0)
		log_warn("exec: cannot store the capabilities of pid %d: %s", (int)pid, strerror(-cr));
}

/* Forked: our ends of its pipes kept, its ends closed; then what the
 * error pipe says: 0 started, or -errno with line. */
static int spawn_wait_exec(struct krg_exec *e, const Krg__Proc__RunRequest *r, struct spawn_ctx *c, pid_t pid,
			   int fds[3][2], int errp[2], char *line, size_t len)
{
	if (c->fsns >= 0)
		close(c->fsns);
	c->fsns = -1;
	if (c->isock >= 0)
		close(c->isock);
	c->isock = -1;
	close(errp[1]);
	errp[1] = -1;
	for (int i = 0; i < 3; i++) {
		int child_end = i == 0 ? 0 : 1;
		if (fds[i][child_end] >= 0)
			close(fds[i][child_end]);
		fds[i][child_end] = -1;
	}
	struct child_err ce;
	ssize_t n;
	do
		n = read(errp[0], &ce, sizeof(ce));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(ce) || ce.stage == STAGE_ALONE)
		return 0; /* started (in a view: going on alone, child_run) */
	int st;
	waitpid(pid, &st, 0);
	return spawn_child_error(e, r, &ce, line, len);
}

void back_on_spawn(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_exec *e = data;
	char line[512] = "";
	int fds[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int errp[2] = { -1, -1 }, master = -1;
	struct spawn_ctx c = { .isock = -1 };
	int err = 0;

	if (!req_id)
		return;
	Krg__Proc__Spawn *s = krg__proc__spawn__unpack(NULL, msg->len, msg->body);
	if (!s || !exec_spawn_valid(s)) {
		log_warn("exec: malformed proc.spawn from node %u, refused", from);
		spawn_reply(e, from, req_id, -EINVAL, "malformed request", 0);
		goto out;
	}
	if (back_find(e, from, s->stream)) {
		spawn_reply(e, from, req_id, -EEXIST, "stream already exists", 0);
		goto out;
	}
	const Krg__Proc__RunRequest *r = s->run;
	if ((err = spawn_ctx_fill(&c, s)) < 0 || (err = spawn_views(e, from, &c, s, line, sizeof(line))) < 0 ||
	    (err = spawn_stdio(e, &c, s, fds, &master, line, sizeof(line))) < 0)
		goto fail;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		err = -errno;
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0) {
		err = -errno;
		goto fail;
	}
	if (pid == 0)
		child_run(&c, fds[0][0], fds[1][1], fds[2][1], errp[1]);
	if ((err = spawn_wait_exec(e, r, &c, pid, fds, errp, line, sizeof(line))) < 0)
		goto fail;
	/* Started. */
	if (!back_new(e, from, s, pid, c.tty, fds, &master)) {
		kill(-pid, SIGKILL);
		err = -ENOMEM;
		goto fail;
	}
	log_debug("exec: started %s as pid %d for uid %u of node %u", r->argv[0], (int)pid, s->uid, from);
	if (s->caps && !c.restart && e->s->cluster)
		store_caps(e, s, pid);
	spawn_reply(e, from, req_id, 0, NULL, pid);
	goto cleanup;

fail:
	if (!line[0])
		snprintf(line, sizeof(line), "cannot start %s on node %u: %s", r->argv[0], e->self, strerror(-err));
	spawn_reply(e, from, req_id, err, line, 0);
cleanup:
	if (c.isock >= 0)
		close(c.isock);
	if (c.fsns > 2) /* from F_DUPFD_CLOEXEC, 3 up; 0 before it was set */
		close(c.fsns);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (fds[i][j] >= 0)
				close(fds[i][j]);
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	if (master >= 0)
		close(master);
	free(c.argv);
	free(c.sh_argv);
	free(c.envp);
	free(c.groups);
	exec_strv_free(c.cands);
out:
	if (s)
		krg__proc__spawn__free_unpacked(s, NULL);
}
