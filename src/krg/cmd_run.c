/* krg run — run a command on a node of the cluster as the caller, with
 * its stdio, signals, terminal and exit status (docs/krg-run.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include "api/client.h"
#include "api/server.h"
#include "krg/cli.h"
#include "lib/macro.h"
#include "proto/proc.pb-c.h"
#include "lib/cmdtable.h"

extern char **environ;

#define OUT_MAX (512u << 10) /* stdin bytes buffered towards krgd */
#define CHUNK (256u << 10)     /* = EXEC_CHUNK, the largest stdin frame krgd takes */

static int sigpipe_fds[2] = { -1, -1 };
static struct termios saved_tio;
static bool raw_on;

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg run [-n NODE | --auto] [--cwd DIR] [--env K=V ...] [--socket PATH] [--local-files] -- CMD [ARGS...]\n"
		   "\n"
		   "Run CMD on a node of the cluster as you (same uid, gids, environment,\n"
		   "umask, limits, working directory), with your stdin/stdout/stderr, your\n"
		   "terminal (when stdin and stdout are terminals) and your signals.\n"
		   "\n"
		   "  -n, --node NODE   run on node NODE (default: this node)\n"
		   "  -a, --auto        let krg pick the least loaded node\n"
		   "  -C, --cwd DIR     working directory there (default: the current one)\n"
		   "  -e, --env K=V     set K in the command's environment (repeatable)\n"
		   "  -s, --socket PATH krgd API socket of this node\n"
		   "  -L, --local-files the files of the node it runs on: its own /tmp etc.\n"
		   "                    (default: this node's, as every process of yours sees them)\n"
		   "\n"
		   "Exit status: the command's own; 128+N if a signal N killed it;\n"
		   "127 command not found; 126 not executable; 255 krg failed (a line says why).\n");
}

static void raw_restore(void)
{
	if (raw_on) {
		tcsetattr(0, TCSADRAIN, &saved_tio);
		raw_on = false;
	}
}

static void raw_enter(void)
{
	struct termios t = saved_tio;
	cfmakeraw(&t);
	if (tcsetattr(0, TCSADRAIN, &t) == 0)
		raw_on = true;
}

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t r = write(sigpipe_fds[1], &c, 1);
	(void)r;
	errno = saved;
}

static int fail(const char *fmt, const char *a)
{
	raw_restore();
	fprintf(stderr, "krg run: ");
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
	return KRG_EXIT_FAILURE;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_add_frame(struct buf *b, const Krg__Proc__Io *io)
{
	size_t n = krg__proc__io__get_packed_size(io);
	if (b->cap - b->len < n + 4) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc - b->len < n + 4)
			nc *= 2;
		uint8_t *np = realloc(b->p, nc);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = nc;
	}
	uint8_t *o = b->p + b->len;
	o[0] = (uint8_t)(n >> 24);
	o[1] = (uint8_t)(n >> 16);
	o[2] = (uint8_t)(n >> 8);
	o[3] = (uint8_t)n;
	krg__proc__io__pack(io, o + 4);
	b->len += 4 + n;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = { .fd = fd, .events = POLLOUT };
				poll(&pf, 1, -1);
				continue;
			}
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void send_winsize(struct buf *out)
{
	struct winsize ws;
	if (ioctl(1, TIOCGWINSZ, &ws) < 0)
		return;
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_rows = io.has_cols = true;
	io.rows = ws.ws_row;
	io.cols = ws.ws_col;
	buf_add_frame(out, &io);
}

static void send_signal(struct buf *out, int sig)
{
	Krg__Proc__Io io = KRG__PROC__IO__INIT;
	io.has_signal = true;
	io.signal = sig;
	buf_add_frame(out, &io);
}

static void flush_now(int sock, struct buf *out)
{
	/* Best effort before we stop ourselves. */
	size_t off = 0;
	while (off < out->len) {
		struct pollfd pf = { .fd = sock, .events = POLLOUT };
		if (poll(&pf, 1, 1000) <= 0)
			break;
		ssize_t k = send(sock, out->p + off, out->len - off, MSG_NOSIGNAL);
		if (k <= 0 && errno != EINTR && errno != EAGAIN)
			break;
		if (k > 0)
			off += (size_t)k;
	}
	memmove(out->p, out->p + off, out->len - off);
	out->len -= off;
}

/* window: stdin bytes we may have sent and not yet got credited back
 * (RunStarted.window); 0 = no limit (older krgd). Staying within it means
 * krgd never has to stop reading our socket, so signals and window sizes
 * never wait behind stdin the remote process does not read. */
static int stream_loop(int sock, bool tty, size_t window)
{
	static const int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT,
				   SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGALRM };
	struct buf out = { 0 }, in = { 0 };
	bool stdin_done = false, out_closed[3] = { false };
	size_t inflight = 0; /* stdin sent, not yet credited */
	int wdead = 0;       /* krgd closed its side (errno): read what is left */
	size_t out_off = 0;  /* out.p[out_off..out.len) is still to send */
	int rc = -1;

	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return fail("%s", strerror(errno));
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tty) {
		raw_enter();
		send_winsize(&out);
	}
	in.cap = 2 * CHUNK + 64;
	in.p = malloc(in.cap);
	if (!in.p)
		return fail("%s", strerror(ENOMEM));

	while (rc < 0) {
		/* Sent bytes are dropped lazily (no memmove per send), but the
		 * dead prefix stays below OUT_MAX. */
		if (out_off && (out_off == out.len || out_off >= OUT_MAX)) {
			memmove(out.p, out.p + out_off, out.len - out_off);
			out.len -= out_off;
			out_off = 0;
		}
		struct pollfd pf[3] = {
			{ .fd = sock, .events = POLLIN | (out.len > out_off && !wdead ? POLLOUT : 0) },
			{ .fd = sigpipe_fds[0], .events = POLLIN },
			{ .fd = stdin_done || wdead || out.len - out_off >= OUT_MAX || (window && inflight >= window) ? -1 : 0,
			  .events = POLLIN },
		};
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = fail("poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents & POLLIN) {
			unsigned char sigs[32];
			ssize_t n = read(sigpipe_fds[0], sigs, sizeof(sigs));
			for (ssize_t i = 0; i < n; i++) {
				int sig = sigs[i];
				if (sig == SIGWINCH) {
					if (tty)
						send_winsize(&out);
					continue;
				}
				send_signal(&out, sig);
				if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
					/* Stop ourselves too, as the default action would;
					 * krgd sees us stopped and stops the remote. */
					memmove(out.p, out.p + out_off, out.len - out_off);
					out.len -= out_off;
					out_off = 0;
					flush_now(sock, &out);
					bool was_raw = raw_on;
					raw_restore();
					raise(SIGSTOP);
					if (was_raw)
						raw_enter();
				} else if (sig == SIGCONT && tty) {
					raw_enter();
					send_winsize(&out);
				}
			}
		}
		if (pf[2].revents) {
			uint8_t data[CHUNK];
			size_t want = sizeof(data);
			if (window && window - inflight < want)
				want = window - inflight;
			ssize_t n = read(0, data, want);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				goto sock;
			Krg__Proc__Io io = KRG__PROC__IO__INIT;
			if (n > 0) {
				io.has_data = true;
				io.data.data = data;
				io.data.len = (size_t)n;
				inflight += (size_t)n;
			} else {
				io.has_eof = io.eof = true;
				stdin_done = true;
			}
			buf_add_frame(&out, &io);
		}
	sock:
		if (pf[0].revents & POLLOUT && out.len > out_off) {
			ssize_t k = send(sock, out.p + out_off, out.len - out_off, MSG_NOSIGNAL);
			if (k > 0) {
				out_off += (size_t)k;
			} else if (k < 0 && errno != EAGAIN && errno != EINTR) {
				/* krgd ends the stream after the exit frame: it may
				 * close before it read all we sent. Read on: the
				 * last frame tells how it ended. */
				wdead = errno;
			}
		}
		if (wdead)
			out.len = out_off = 0;
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (in.cap - in.len < CHUNK + 64) {
			uint8_t *np = realloc(in.p, in.cap * 2);
			if (!np) {
				rc = fail("%s", strerror(ENOMEM));
				break;
			}
			in.p = np;
			in.cap *= 2;
		}
		ssize_t k = recv(sock, in.p + in.len, in.cap - in.len, 0);
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rc = fail("lost the connection to krgd: %s", strerror(errno));
			break;
		}
		if (k == 0) {
			rc = wdead ? fail("lost the connection to krgd: %s", strerror(wdead))
				   : fail("%s", "lost the connection to krgd");
			break;
		}
		in.len += (size_t)k;
		size_t off = 0;
		while (rc < 0 && in.len - off >= 4) {
			const uint8_t *h = in.p + off;
			uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
			if (n == 0 || n > KRG_API_MAX_FRAME) {
				rc = fail("%s", "krgd sent a bad frame");
				break;
			}
			if (in.len - off - 4 < n)
				break;
			Krg__Proc__Io *io = krg__proc__io__unpack(NULL, n, h + 4);
			off += 4 + n;
			if (!io) {
				rc = fail("%s", "krgd sent a malformed frame");
				break;
			}
			if (io->has_data && io->has_fd && (io->fd == 1 || io->fd == 2) && !out_closed[io->fd]) {
				if (write_all((int)io->fd, io->data.data, io->data.len) == -EPIPE) {
					/* Our reader went away: the remote writer gets SIGPIPE,
					 * as it would locally. */
					out_closed[io->fd] = true;
					send_signal(&out, SIGPIPE);
				}
			}
			if (io->has_stdin_credit)
				inflight -= io->stdin_credit < inflight ? io->stdin_credit : inflight;
			if (io->error) {
				rc = fail("%s", io->error);
			} else if (io->has_exited && io->exited) {
				if (io->has_term_signal)
					rc = 128 + (io->term_signal & 127);
				else
					rc = io->has_code ? io->code & 255 : 0;
			}
			krg__proc__io__free_unpacked(io, NULL);
		}
		memmove(in.p, in.p + off, in.len - off);
		in.len -= off;
	}
	raw_restore();
	free(in.p);
	free(out.p);
	return rc;
}

/* Send a filled RunRequest (argv, env, cwd, umask, rlimits, node...) to
 * krgd as "proc.run", on this terminal if stdin and stdout are one, and
 * stream until the remote process ends: krg's exit status. Shared with
 * krg restart --foreground. env and envset (may be NULL) are freed once
 * the request is packed. */
int krg_run_request(Krg__Proc__RunRequest *reqp, const char *sock_path, const char *who, char **env, char **envset)
{
	Krg__Proc__RunRequest req = *reqp;
	/* krg restart's own failures are 1, not run's 126/127/255. */
	int failed = req.has_restart_appid ? 1 : KRG_EXIT_FAILURE;
	bool tty = isatty(0) && isatty(1) && tcgetattr(0, &saved_tio) == 0;
	if (tty) {
		struct winsize ws;
		req.has_tty = req.tty = true;
		if (ioctl(1, TIOCGWINSZ, &ws) == 0) {
			req.has_rows = req.has_cols = true;
			req.rows = ws.ws_row;
			req.cols = ws.ws_col;
		}
		req.term = getenv("TERM");
	}

	size_t n = krg__proc__run_request__get_packed_size(&req);
	uint8_t *body = malloc(n ? n : 1);
	if (!body) {
		fprintf(stderr, "%s: %s\n", who, strerror(ENOMEM));
		return failed;
	}
	krg__proc__run_request__pack(&req, body);
	free(env);
	free(envset);
	char err[512];
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int sock = -1;
	int r = krg_api_call_stream(krg_api_socket_path(sock_path), "proc.run", body, n, 40000, &resp, &resp_len,
				    &sock, err, sizeof(err));
	free(body);
	if (r == -ENOENT && strstr(err, "command not found")) {
		fprintf(stderr, "%s: %s\n", who, err);
		return req.has_restart_appid ? failed : KRG_EXIT_NOTFOUND;
	}
	if (r == -EACCES) {
		fprintf(stderr, "%s: %s\n", who, err);
		return req.has_restart_appid ? failed : KRG_EXIT_NOEXEC;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", who, err);
		return failed;
	}
	Krg__Proc__RunStarted *rs = krg__proc__run_started__unpack(NULL, resp_len, resp);
	free(resp);
	size_t window = rs && rs->has_window ? rs->window : 0;
	if (rs)
		krg__proc__run_started__free_unpacked(rs, NULL);
	return stream_loop(sock, tty, window);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "auto", no_argument, NULL, 'a' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "env", required_argument, NULL, 'e' },
		{ "socket", required_argument, NULL, 's' },
		{ "local-files", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	Krg__Proc__RunRequest req = KRG__PROC__RUN_REQUEST__INIT;
	const char *sock_path = NULL, *cwd = NULL;
	_cleanup_free_ char **envset = calloc((size_t)argc + 1, sizeof(char *));
	size_t n_envset = 0;
	int opt;

	if (!envset)
		return fail("%s", strerror(ENOMEM));
	/* A closed stdin/stdout/stderr would be taken by our socket: give the
	 * command /dev/null there, as a closed fd reads EOF. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return KRG_EXIT_FAILURE;
	optind = 1;
	while ((opt = krg_getopt("krg run", argc, argv, "+n:aC:e:s:Lh", opts)) != -1) {
		switch (opt) {
		case 'n': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || errno || v > 255) {
				fprintf(stderr, "krg run: bad node '%s' (a node id, 0-255)\n", optarg);
				return KRG_EXIT_FAILURE;
			}
			req.has_node = true;
			req.node = (uint32_t)v;
			break;
		}
		case 'a':
			req.has_auto_ = req.auto_ = true;
			break;
		case 'C':
			cwd = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				fprintf(stderr, "krg run: --env wants K=V, not '%s'\n", optarg);
				return KRG_EXIT_FAILURE;
			}
			envset[n_envset++] = optarg;
			break;
		case 's':
			sock_path = optarg;
			break;
		case 'L':
			req.has_local_files = req.local_files = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return KRG_EXIT_FAILURE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "krg run: no command given (see krg run --help)\n");
		return KRG_EXIT_FAILURE;
	}
	if (req.has_node && req.has_auto_) {
		fprintf(stderr, "krg run: -n and --auto exclude each other\n");
		return KRG_EXIT_FAILURE;
	}
	req.n_argv = (size_t)(argc - optind);
	req.argv = argv + optind;

	/* Environment: ours, with --env overriding. */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **env = calloc(ne + n_envset + 1, sizeof(char *));
	if (!env)
		return fail("%s", strerror(ENOMEM));
	size_t k = 0;
	for (size_t i = 0; i < ne; i++) {
		bool over = false;
		for (size_t j = 0; j < n_envset; j++) {
			size_t l = (size_t)(strchr(envset[j], '=') - envset[j]);
			if (!strncmp(environ[i], envset[j], l + 1))
				over = true;
		}
		if (!over && strchr(environ[i], '='))
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < n_envset; j++)
		env[k++] = envset[j];
	req.env = env;
	req.n_env = k;

	char cwdbuf[PATH_MAX];
	if (!cwd)
		cwd = getcwd(cwdbuf, sizeof(cwdbuf)) ? cwdbuf : "/";
	req.cwd = (char *)cwd;
	mode_t um = umask(0);
	umask(um);
	req.umask = um;
	Krg__Proc__Rlimit rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;
		if (getrlimit(i, &r) < 0)
			continue;
		krg__proc__rlimit__init(&rl[req.n_rlimits]);
		rl[req.n_rlimits].resource = (uint32_t)i;
		rl[req.n_rlimits].cur = r.rlim_cur;
		rl[req.n_rlimits].max = r.rlim_max;
		rlp[req.n_rlimits] = &rl[req.n_rlimits];
		req.n_rlimits++;
	}
	req.rlimits = rlp;
	return krg_run_request(&req, sock_path, "krg run", env, TAKE_PTR(envset));
}
