/* krg checkpoint — save a running process, from outside (ptrace), leaving
 * it running unless --kill. Two modes (docs/checkpoint.md):
 *   --dir DIR   into that directory;
 *   default     into the image store, STORE/<appid>/v<n>/ (n = next
 *               version), STORE = /var/lib/krg/chkpt (KRG_CKPT_STORE
 *               overrides it, for tests). Through krgd when it is
 *               reachable (API "ckpt.dump": the process's node dumps it
 *               into its own store, from any node, for its owner or
 *               root); otherwise locally (the process must run on this
 *               node), as with --local. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "api/client.h"
#include "ckpt/ckpt.h"
#include "ckpt/store.h"
#include "krg/cli.h"
#include "proc/procid.h"
#include "proto/ckptsvc.pb-c.h"
#include "lib/cmdtable.h"
#include "lib/duration.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg checkpoint [-a] ID [--kill[=SIG] | --stop] [--ignore-unsupported] [-d TEXT] [--local]\n"
		   "       krg checkpoint [-a] ID --freeze | --unfreeze\n"
		   "       krg checkpoint PID --dir DIR [--kill[=SIG] | --stop] [--ignore-unsupported] [-d TEXT]\n"
		   "       krg checkpoint --every DURATION [-a] ID [--ignore-unsupported]\n"
		   "       krg checkpoint --list [--json]\n"
		   "\n"
		   "Freeze the application (the process ID and all its descendants), save it and\n"
		   "let it run on. Without --dir the image goes to the store, %s/<ID>/v<N>/\n"
		   "(N: next version), and its path is printed; ID is a cluster-wide id (krg ps):\n"
		   "through krgd the process's node saves it in its store, from any node; without\n"
		   "krgd (or with --local) ID must be a process of this node and the store is\n"
		   "this node's.\n"
		   "  -a, --app              ID is any process of a krg run tree: act on the whole\n"
		   "                         tree, from its root (through krgd)\n"
		   "  --local                do not go through krgd\n"
		   "  --dir DIR              image directory instead (must not hold an image yet)\n"
		   "  --kill[=SIG]           after a successful checkpoint, send SIG (default KILL)\n"
		   "                         to every process of the application\n"
		   "  --stop                 leave the application stopped (SIGSTOP) after it\n"
		   "  --freeze, --unfreeze   only stop / continue the application, no image (to\n"
		   "                         copy its files meanwhile; a frozen application is\n"
		   "                         checkpointed as it is and stays frozen)\n"
		   "  --snapshot-files       also save the content of regular files the application\n"
		   "                         has open for writing; restart writes it back first\n"
		   "  --ignore-unsupported   save anyway when an fd cannot be (sockets, terminals,\n"
		   "                         ...): it is closed after restart\n"
		   "  -d, --description TEXT stored in the image (and in the store's description file)\n"
		   "  --every DURATION       no image now: krgd checkpoints the application every\n"
		   "                         DURATION (30s, 2m, 1h; at least 1s; 0 stops), keeps the\n"
		   "                         latest image on its node and a copy on another one, and\n"
		   "                         restarts it from there if its node dies\n"
		   "  --list                 the applications with periodic checkpoints (--json)\n"
		   "Exit status 0 on success, 1 on failure (one line says why), 2 on bad usage.\n",
		KRG_CKPT_STORE_DEFAULT);
}

/* ---- progress on a terminal (shared with krg restart) ---- */
static struct timespec prog_t0;
static bool prog_shown;

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void progress_cb(const char *what, uint64_t done, uint64_t total, void *arg)
{
	const char *cmd = arg;
	/* Only for operations that last: nothing within the first second. */
	if (!prog_shown && since(&prog_t0) < 1.0)
		return;
	prog_shown = true;
	fprintf(stderr, "\r%s: %s %llu/%llu MiB (%d%%)%s", cmd, what, (unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
		total ? (int)(done * 100 / total) : 100, done >= total ? "\n" : "");
}

void krg_ckpt_progress(const char *cmd)
{
	if (!isatty(STDERR_FILENO))
		return;
	clock_gettime(CLOCK_MONOTONIC, &prog_t0);
	prog_shown = false;
	ckpt_set_progress(progress_cb, (void *)cmd);
}

/* ---- the store (src/ckpt/store.c) ---- */
static int to_store(pid_t pid, uint32_t appid, const struct ckpt_dump_opts *o)
{
	char pp[64], msg[4400];
	struct stat st;
	snprintf(pp, sizeof(pp), "/proc/%d", pid);
	if (stat(pp, &st) < 0) {
		fprintf(stderr, "krg checkpoint: no process %d on this node (id %u)\n", pid, appid);
		return 1;
	}
	krg_ckpt_progress("krg checkpoint");
	/* The images belong to the process's owner, and only to them. */
	if (krg_ckpt_store_dump(pid, st.st_uid, st.st_gid, appid, o, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "krg checkpoint: %s\n", msg);
		return 1;
	}
	printf("%s\n", msg);
	return 0;
}

/* Through krgd. 0 and *rc set if krgd answered; -ENOENT if it cannot be
 * reached (the caller falls back to the local mode). */
/* What a checkpoint command asks besides the dump options. */
struct ckpt_cmd {
	int freeze;  /* 1 --freeze, -1 --unfreeze */
	bool app;    /* -a */
	bool every;  /* --every */
	uint64_t every_ms;
};

static int via_krgd(uint32_t id, const struct ckpt_dump_opts *o, const struct ckpt_cmd *cmd, int *rc)
{
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	d.id = id;
	d.has_kill = d.kill = o->kill;
	d.has_kill_signal = o->kill_sig != 0;
	d.kill_signal = (uint32_t)o->kill_sig;
	d.has_stop = d.stop = o->stop;
	d.has_freeze = d.freeze = cmd->freeze > 0;
	d.has_unfreeze = d.unfreeze = cmd->freeze < 0;
	d.has_app = d.app = cmd->app;
	d.has_snapshot_files = d.snapshot_files = o->snapshot_files;
	d.has_ignore_unsupported = d.ignore_unsupported = o->ignore_unsupported;
	d.description = (char *)o->description;
	d.has_every_ms = cmd->every;
	d.every_ms = (uint32_t)cmd->every_ms;
	size_t len = krg__ckptsvc__dump__get_packed_size(&d);
	uint8_t *buf = malloc(len ? len : 1), *resp = NULL;
	size_t rlen = 0;
	char err[512] = "";
	if (!buf)
		return -ENOMEM;
	krg__ckptsvc__dump__pack(&d, buf);
	int r = krg_api_call(krg_api_socket_path(NULL), "ckpt.dump", buf, len, 35u * 60 * 1000, &resp, &rlen, err,
			     sizeof(err));
	free(buf);
	if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR)
		return -ENOENT;
	if (r < 0) {
		fprintf(stderr, "krg checkpoint: %s\n", err[0] ? err : strerror(-r));
		*rc = 1;
		return 0;
	}
	Krg__Ckptsvc__Result *res = krg__ckptsvc__result__unpack(NULL, rlen, resp);
	free(resp);
	if (!res || !res->text) {
		fprintf(stderr, "krg checkpoint: malformed answer from krgd\n");
		*rc = 1;
	} else {
		printf("%s\n", res->text);
		*rc = 0;
	}
	if (res)
		krg__ckptsvc__result__free_unpacked(res, NULL);
	return 0;
}

/* A pid or a cluster-wide id: decimal, pid part non-zero, home < 256. */
static int parse_id(const char *s, uint32_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || (v & KRG_PID_MASK) == 0 || (v >> KRG_PID_BITS) >= 256)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* A signal by number or name (KILL, SIGTERM, 15). 0 if not one. */
static int parse_signal(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end)
		return v >= 1 && v <= 64 ? (int)v : 0;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int sig = 1; sig < 32; sig++) {
		const char *n = sigabbrev_np(sig);
		if (n && !strcasecmp(n, s))
			return sig;
	}
	return 0;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "kill", optional_argument, NULL, 'k' },
		{ "stop", no_argument, NULL, 'S' },
		{ "freeze", no_argument, NULL, 'F' },
		{ "unfreeze", no_argument, NULL, 'U' },
		{ "app", no_argument, NULL, 'a' },
		{ "ignore-unsupported", no_argument, NULL, 'i' },
		{ "snapshot-files", no_argument, NULL, 'W' },
		{ "description", required_argument, NULL, 'd' },
		{ "local", no_argument, NULL, 'L' },
		{ "every", required_argument, NULL, 'E' },
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_cmd cmd = { 0 };
	const char *dir = NULL;
	bool local = false, list = false, json = false;
	char derr[160];
	int c;
	while ((c = krg_getopt("krg checkpoint", argc, argv, "D:aid:h", opts)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'k':
			o.kill = true;
			if (optarg && !(o.kill_sig = parse_signal(optarg))) {
				fprintf(stderr, "krg checkpoint: --kill=%s: not a signal\n", optarg);
				return KRG_EXIT_USAGE;
			}
			break;
		case 'S': o.stop = true; break;
		case 'F': cmd.freeze = 1; break;
		case 'U': cmd.freeze = -1; break;
		case 'a': cmd.app = true; break;
		case 'i': o.ignore_unsupported = true; break;
		case 'W': o.snapshot_files = true; break;
		case 'd': o.description = optarg; break;
		case 'L': local = true; break;
		case 'E':
			if (krg_duration_parse(optarg, &cmd.every_ms, derr, sizeof(derr)) < 0) {
				fprintf(stderr, "krg checkpoint: --every: %s\n", derr);
				return KRG_EXIT_USAGE;
			}
			cmd.every = true;
			break;
		case 'l': list = true; break;
		case 'j': json = true; break;
		default:
			return krg_getopt_other(c, usage, KRG_EXIT_USAGE);
		}
	}
	if (list || json) {
		if (!list || optind != argc || cmd.every || dir || local || cmd.app || cmd.freeze || o.kill || o.stop ||
		    o.description || o.ignore_unsupported || o.snapshot_files) {
			fprintf(stderr, "krg checkpoint: --list takes no id and no other option than --json\n");
			return KRG_EXIT_USAGE;
		}
		return krg_ckpt_every_list(json);
	}
	uint32_t id = 0;
	if (optind + 1 != argc || parse_id(argv[optind], &id) < 0) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	if ((o.kill && o.stop) || (cmd.freeze && (o.kill || o.stop || dir || o.description || o.ignore_unsupported || o.snapshot_files))) {
		fprintf(stderr, "krg checkpoint: --kill, --stop and --freeze/--unfreeze (which saves nothing) exclude each other\n");
		return KRG_EXIT_USAGE;
	}
	if (cmd.every && (dir || local || cmd.freeze || o.kill || o.stop || o.description || o.snapshot_files)) {
		fprintf(stderr, "krg checkpoint: --every takes only -a and --ignore-unsupported besides the id\n");
		return KRG_EXIT_USAGE;
	}
	int rc;
	if (!dir && !local && via_krgd(id, &o, &cmd, &rc) == 0)
		return rc;
	if (cmd.every) {
		fprintf(stderr, "krg checkpoint: --every needs krgd, which is not reachable\n");
		return 1;
	}
	if (cmd.app) {
		fprintf(stderr, "krg checkpoint: -a finds the krg run tree through krgd, which is not reachable (or --local)\n");
		return KRG_EXIT_USAGE;
	}
	if (cmd.freeze) {
		struct ckpt_error err = { 0 };
		size_t n = 0;
		if (ckpt_app_freeze((pid_t)krg_procid_pid(id), cmd.freeze > 0, &n, &err) < 0) {
			fprintf(stderr, "krg checkpoint: %s\n", err.msg);
			return 1;
		}
		printf("%zu process%s %s\n", n, n == 1 ? "" : "es", cmd.freeze > 0 ? "frozen" : "thawed");
		return 0;
	}
	if (!dir)
		return to_store((pid_t)krg_procid_pid(id), id, &o);
	if (id > KRG_PID_MASK) {
		fprintf(stderr, "krg checkpoint: --dir takes a pid of this node, not a cluster id\n");
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { 0 };
	krg_ckpt_progress("krg checkpoint");
	if (ckpt_dump((pid_t)id, dir, &o, &err) < 0) {
		fprintf(stderr, "krg checkpoint: %s\n", err.msg);
		return 1;
	}
	return 0;
}
