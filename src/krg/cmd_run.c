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
#include "api/run_client.h"
#include "api/server.h"
#include "krg/cli.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/macro.h"
#include "proto/proc.pb-c.h"
#include "lib/cmdtable.h"

extern char **environ;

#define OUT_MAX (512u << 10) /* stdin bytes buffered towards krgd */

static int sigpipe_fds[2] = { -1, -1 };
static struct termios saved_tio;
static bool raw_on;

/* --checkpoint-every, in ms (0: none). */
static uint64_t run_every_ms;

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg run [-n NODE | --auto] [--cwd DIR] [--env K=V ...] [--socket PATH] [--local-files]\n"
		   "               [--checkpoint-every DURATION] -- CMD [ARGS...]\n"
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
		   "  --checkpoint-every DURATION\n"
		   "                    checkpoint it every DURATION (30s, 2m; at least 1s), the\n"
		   "                    image on its node and another; if its node dies it is\n"
		   "                    restarted from there (krg checkpoint --every, --list)\n"
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

static void send_winsize(struct krg_run_client *c)
{
	struct winsize ws;
	if (ioctl(1, TIOCGWINSZ, &ws) < 0)
		return;
	krg_run_client_winsize(c, ws.ws_row, ws.ws_col);
}

/* What the stream hands back: output goes to our fds; the end sets rc. */
struct run_state {
	struct krg_run_client c;
	bool out_closed[3];
	int rc;
};

static void on_output(void *data, unsigned fd, const uint8_t *bytes, size_t len)
{
	struct run_state *st = data;
	if (st->out_closed[fd])
		return;
	if (krg_write_all((int)fd, bytes, len) == -EPIPE) {
		/* Our reader went away: the remote writer gets SIGPIPE, as it
		 * would locally. */
		st->out_closed[fd] = true;
		krg_run_client_signal(&st->c, SIGPIPE);
	}
}

static void on_ended(void *data, const Krg__Proc__Io *io)
{
	struct run_state *st = data;
	if (io->error)
		st->rc = fail("%s", io->error);
	else if (io->has_term_signal)
		st->rc = 128 + (io->term_signal & 127);
	else
		st->rc = io->has_code ? io->code & 255 : 0;
}

/* window: stdin bytes we may have sent and not yet got credited back
 * (RunStarted.window); 0 = no limit (older krgd). Staying within it means
 * krgd never has to stop reading our socket, so signals and window sizes
 * never wait behind stdin the remote process does not read. */
static int stream_loop(int sock, bool tty, size_t window)
{
	static const int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT,
				   SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGALRM };
	static const struct krg_run_client_cbs cbs = { on_output, on_ended };
	struct run_state st = { .rc = -1 };

	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return fail("%s", strerror(errno));
	if (krg_run_client_init(&st.c, sock, window) < 0)
		return fail("%s", strerror(ENOMEM));
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tty) {
		raw_enter();
		send_winsize(&st.c);
	}

	while (st.rc < 0) {
		bool want_in = krg_run_client_wants_stdin(&st.c, OUT_MAX);
		struct pollfd pf[3] = {
			{ .fd = sock, .events = krg_run_client_events(&st.c) },
			{ .fd = sigpipe_fds[0], .events = POLLIN },
			{ .fd = want_in ? 0 : -1, .events = POLLIN },
		};
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			st.rc = fail("poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents & POLLIN) {
			unsigned char sigs[32];
			ssize_t n = read(sigpipe_fds[0], sigs, sizeof(sigs));
			for (ssize_t i = 0; i < n; i++) {
				int sig = sigs[i];
				if (sig == SIGWINCH) {
					if (tty)
						send_winsize(&st.c);
					continue;
				}
				krg_run_client_signal(&st.c, sig);
				if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
					/* Stop ourselves too, as the default action would;
					 * krgd sees us stopped and stops the remote. */
					krg_run_client_flush(&st.c, 1000);
					bool was_raw = raw_on;
					raw_restore();
					raise(SIGSTOP);
					if (was_raw)
						raw_enter();
				} else if (sig == SIGCONT && tty) {
					raw_enter();
					send_winsize(&st.c);
				}
			}
		}
		if (pf[2].revents && krg_run_client_read_stdin(&st.c, 0) == -ENOMEM) {
			st.rc = fail("%s", strerror(ENOMEM));
			break;
		}
		if (pf[0].revents & POLLOUT)
			krg_run_client_send(&st.c);
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		int r = krg_run_client_recv(&st.c, &cbs, &st);
		if (r == -EAGAIN || r == 1)
			continue;
		if (r == -ECONNRESET)
			st.rc = st.c.wdead ? fail("lost the connection to krgd: %s", strerror(st.c.wdead))
					   : fail("%s", "lost the connection to krgd");
		else if (r == -EBADMSG)
			st.rc = fail("%s", "krgd sent a bad frame");
		else if (r < 0)
			st.rc = fail("%s", strerror(-r));
	}
	raw_restore();
	krg_run_client_free(&st.c);
	return st.rc;
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
	if (rs && run_every_ms) {
		/* It runs: from now on krgd checkpoints it. A refusal leaves it
		 * running, and says so. */
		char e[512] = "";
		if (krg_ckpt_every_set(rs->id, run_every_ms, e, sizeof(e)) < 0)
			fprintf(stderr, "%s: --checkpoint-every: %s (it runs without)\n", who, e);
	}
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
		{ "checkpoint-every", required_argument, NULL, 'P' },
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
		case 'P': {
			char e[160];
			if (krg_duration_parse(optarg, &run_every_ms, e, sizeof(e)) < 0) {
				fprintf(stderr, "krg run: --checkpoint-every: %s\n", e);
				return KRG_EXIT_USAGE;
			}
			if (!run_every_ms) {
				fprintf(stderr, "krg run: --checkpoint-every 0: no checkpoints; leave the option out\n");
				return KRG_EXIT_USAGE;
			}
			break;
		}
		case 'L':
			req.has_local_files = req.local_files = true;
			break;
		default:
			return krg_getopt_other(opt, usage, KRG_EXIT_FAILURE);
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
	krg_run_request_rlimits(&req, rl, rlp, 0, 0);
	return krg_run_request(&req, sock_path, "krg run", env, TAKE_PTR(envset));
}
