/* krg restart — recreate a process from an image (a directory, or an app
 * id and version in the image store) as a child of krg, and wait for it:
 * krg's exit status is the process's (128 + signal if killed). The image
 * is verified whole before anything starts. From the store, through krgd
 * when it is reachable (API "ckpt.restart"): the node holding the image
 * (the app id's home node) restores it as a krgd child, a krg process,
 * and krg prints its new id without waiting for it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "api/client.h"
#include "ckpt/ckpt.h"
#include "ckpt/store.h"
#include "krg/cli.h"
#include "proc/procid.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/proc.pb-c.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg restart APPID [VERSION] [-n NODE] [--pidfile FILE] [--local] [--new-pidns] [--replace-tty]\n"
		   "       krg restart APPID [VERSION] [-n NODE] --foreground\n"
		   "       krg restart --dir DIR [--pidfile FILE] [--new-pidns] [--replace-tty]\n"
		   "\n"
		   "Restart an application saved by krg checkpoint and wait for it: from the image\n"
		   "store (%s/APPID/vVERSION, default the latest version),\n"
		   "or from DIR. Only root and the image's owner may restart it.\n"
		   "  --dir DIR       image directory\n"
		   "Through krgd (APPID from the store, krgd reachable, no --local): the node\n"
		   "holding the image (APPID's home node) restarts it as a krg process, from any\n"
		   "node; krg prints its new cluster-wide id and exits 0 without waiting for it.\n"
		   "  -n NODE         the node to run it on (default: the image's node; another\n"
		   "                  node gets a copy of the version directory first). With kdfs\n"
		   "                  the image is in /KDFS/.krg/chkpt and NODE reads it there, also\n"
		   "                  once the image's node is down (then the default is this node)\n"
		   "  --foreground    through krgd, on NODE (default the image's node), attached\n"
		   "                  here as krg run is: stdio (its terminal fds on this terminal),\n"
		   "                  signals, and krg exits with the application's status\n"
		   "  --local         from this node's store, as krg's child, and wait for it\n"
		   "  --pidfile FILE  write the restored process's pid (through krgd: its id) there\n"
		   "  --new-pidns     restart into a fresh pid namespace (init: a krg reaper), with\n"
		   "                  the image's pids and tids inside it and its own /proc (the\n"
		   "                  pidfile and the printed id name it as seen from outside)\n"
		   "  --replace-tty   the application's terminal fds become this terminal (krg's\n"
		   "                  stdin, stdout or stderr), and its root stays in this session\n"
		   "                  and process group, like a job of this shell (implies --local)\n"
		   "Exit status (local): the process's own; 128+N if signal N killed it; 1 if the\n"
		   "restart failed (one line says why; nothing is left running); 2 on bad usage.\n",
		KRG_CKPT_STORE_DEFAULT);
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The image of APPID, version VER (NULL: the latest), in the store; the
 * caller must be root or own it. 0, or krg's exit status. */
static int store_image(const char *appid, const char *ver, char *out, size_t len)
{
	if (!all_digits(appid) || (ver && !all_digits(ver + (*ver == 'v')))) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	unsigned long a = strtoul(appid, NULL, 10), v = ver ? strtoul(ver + (*ver == 'v'), NULL, 10) : 0;
	char msg[4400];
	if (a > UINT32_MAX || v > UINT32_MAX) {
		fprintf(stderr, "krg restart: no image of app %s\n", appid);
		return 1;
	}
	/* Ownership is checked there: root or the owner of <appid>/. */
	if (krg_ckpt_store_find((uint32_t)a, (uint32_t)v, getuid(), msg, sizeof(msg)) < 0) {
		fprintf(stderr, "krg restart: %s\n", msg);
		return 1;
	}
	snprintf(out, len, "%s", msg);
	return 0;
}

static void write_pidfile(const char *pidfile, unsigned long v)
{
	FILE *f = fopen(pidfile, "we");
	if (!f || fprintf(f, "%lu\n", v) < 0 || fclose(f) != 0)
		fprintf(stderr, "krg restart: cannot write %s: %s (the process runs on)\n", pidfile, strerror(errno));
}

/* Through krgd. 0 and *rc set if krgd answered; -ENOENT if it cannot be
 * reached. */
static int via_krgd(uint32_t appid, uint32_t version, long node, bool newns, const char *pidfile, int *rc)
{
	Krg__Ckptsvc__Restart q = KRG__CKPTSVC__RESTART__INIT;
	q.appid = appid;
	q.has_new_pidns = q.new_pidns = newns;
	q.has_version = version != 0;
	q.version = version;
	q.has_node = node >= 0;
	q.node = node >= 0 ? (uint32_t)node : 0;
	uint8_t buf[64], *resp = NULL;
	size_t rlen = 0;
	char err[512] = "";
	size_t len = krg__ckptsvc__restart__pack(&q, buf);
	int r = krg_api_call(krg_api_socket_path(NULL), "ckpt.restart", buf, len, 35u * 60 * 1000, &resp, &rlen, err,
			     sizeof(err));
	/* Only when krgd cannot be reached does krg restore by itself; an
	 * answer of krgd's, -ENOENT ("no image") included, is final. */
	if (r < 0 && !krg_api_reached_krgd())
		return -ENOENT;
	*rc = 1;
	if (r < 0) {
		fprintf(stderr, "krg restart: %s\n", err[0] ? err : strerror(-r));
		return 0;
	}
	Krg__Ckptsvc__Result *res = krg__ckptsvc__result__unpack(NULL, rlen, resp);
	free(resp);
	if (!res || !res->has_id) {
		fprintf(stderr, "krg restart: malformed answer from krgd\n");
	} else {
		printf("%u\n", res->id);
		fflush(stdout);
		if (pidfile)
			write_pidfile(pidfile, res->id);
		*rc = 0;
	}
	if (res)
		krg__ckptsvc__result__free_unpacked(res, NULL);
	return 0;
}

/* One preparatory step of a restart on `node` (a ckpt.restart that only
 * copies the version there, or only recreates its System V objects); 0 or
 * krg's status. `exists_ok`: "File exists" is no failure. */
static int restart_step(uint32_t appid, uint32_t version, uint32_t node, bool copy_only, unsigned timeout_ms,
			bool exists_ok)
{
	Krg__Ckptsvc__Restart q = KRG__CKPTSVC__RESTART__INIT;
	q.appid = appid;
	q.has_version = version != 0;
	q.version = version;
	q.has_node = true;
	q.node = node;
	if (copy_only)
		q.has_copy_only = q.copy_only = true;
	else
		q.has_sysv_only = q.sysv_only = true;
	uint8_t buf[64], *resp = NULL;
	size_t rlen = 0;
	char err[512] = "";
	size_t len = krg__ckptsvc__restart__pack(&q, buf);
	int r = krg_api_call(krg_api_socket_path(NULL), "ckpt.restart", buf, len, timeout_ms, &resp, &rlen, err, sizeof(err));
	free(resp);
	if (r < 0 && !(exists_ok && strstr(err, "File exists"))) {
		fprintf(stderr, "krg restart: %s\n", err[0] ? err : strerror(-r));
		return 1;
	}
	return 0;
}

/* Put the version on `node` (holder: nothing to do). A version is never
 * rewritten: a copy from an earlier restart is it. */
static int copy_to(uint32_t appid, uint32_t version, uint32_t node)
{
	return restart_step(appid, version, node, true, 35u * 60 * 1000, true);
}

/* Have node recreate the System V objects of its copy of the version
 * (sysvipc.img). */
static int sysv_restore(uint32_t appid, uint32_t version, uint32_t node)
{
	return restart_step(appid, version, node, false, 2u * 60 * 1000, false);
}

/* --foreground: the node restores it as the child of an exec stream, the
 * way krg run starts a command; krg is its terminal and gets its status. */
static int foreground_restart(uint32_t appid, uint32_t version, long node)
{
	uint32_t holder = krg_procid_home(appid), target = node >= 0 ? (uint32_t)node : holder;
	if (target != holder) {
		int rc = copy_to(appid, version, target);
		if (rc)
			return rc;
	}
	/* The image's System V objects first, by that node's krgd: the
	 * restore below runs in a child krgd waits for. */
	int rc = sysv_restore(appid, version, target);
	if (rc)
		return rc;
	char app[16];
	snprintf(app, sizeof(app), "%u", appid);
	char *argv[] = { "krg-restart", app, NULL };
	Krg__Proc__RunRequest req = KRG__PROC__RUN_REQUEST__INIT;
	req.argv = argv;
	req.n_argv = 2;
	req.cwd = "/";
	mode_t um = umask(0);
	umask(um);
	req.umask = um;
	req.has_node = true;
	req.node = target;
	req.has_restart_appid = true;
	req.restart_appid = appid;
	req.has_restart_version = version != 0;
	req.restart_version = version;
	return krg_run_request(&req, NULL, "krg restart", NULL, NULL);
}

int cmd_restart(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },
		{ "local", no_argument, NULL, 'L' },
		{ "new-pidns", no_argument, NULL, 'N' },
		{ "replace-tty", no_argument, NULL, 'T' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL, *pidfile = NULL;
	long node = -1;
	bool local = false, newns = false, replace_tty = false, foreground = false;
	int c;
	while ((c = krg_getopt("krg restart", argc, argv, "D:p:n:h", opts)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'n': {
			char *end;
			node = strtol(optarg, &end, 10);
			if (!all_digits(optarg) || *end || node >= 256) {
				usage(stderr);
				return KRG_EXIT_USAGE;
			}
			break;
		}
		case 'L': local = true; break;
		case 'N': newns = true; break;
		case 'T': replace_tty = true; break;
		case 'F': foreground = true; break;
		case 'p': pidfile = optarg; break;
		case 'h': usage(stdout); return 0;
		default: return KRG_EXIT_USAGE;
		}
	}
	char img[4200];
	if (!dir) {
		if (optind == argc || argc - optind > 2) {
			usage(stderr);
			return KRG_EXIT_USAGE;
		}
		const char *app = argv[optind], *ver = optind + 1 < argc ? argv[optind + 1] : NULL;
		if (!all_digits(app) || (ver && !all_digits(ver + (*ver == 'v')))) {
			usage(stderr);
			return KRG_EXIT_USAGE;
		}
		unsigned long appid = strtoul(app, NULL, 10);
		unsigned long v = ver ? strtoul(ver + (*ver == 'v'), NULL, 10) : 0;
		if (appid > UINT32_MAX || v > UINT32_MAX || (appid & KRG_PID_MASK) == 0) {
			usage(stderr);
			return KRG_EXIT_USAGE;
		}
		int rc;
		if (foreground) {
			if (local || newns || pidfile) {
				fprintf(stderr, "krg restart: --foreground goes through krgd: not with --local, --new-pidns or --pidfile (yet)\n");
				return KRG_EXIT_USAGE;
			}
			return foreground_restart((uint32_t)appid, (uint32_t)v, node);
		}
		if (replace_tty)
			local = true;
		if (!local && via_krgd((uint32_t)appid, (uint32_t)v, node, newns, pidfile, &rc) == 0)
			return rc;
		if (node >= 0) {
			fprintf(stderr, "krg restart: -n needs krgd (cannot reach it on this node)\n");
			return KRG_EXIT_USAGE;
		}
		int r = store_image(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, img, sizeof(img));
		if (r)
			return r;
		dir = img;
	} else if (optind != argc || node >= 0 || foreground) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { 0 };
	pid_t pid;
	struct ckpt_restore_opts ro = { 0 };
	if (replace_tty) {
		for (int fd = 0; fd < 3 && !ro.replace_tty; fd++)
			ro.replace_tty = isatty(fd) ? ttyname(fd) : NULL;
		if (!ro.replace_tty) {
			fprintf(stderr, "krg restart: --replace-tty: krg's stdin, stdout and stderr are not terminals\n");
			return KRG_EXIT_USAGE;
		}
		/* A job of this terminal: keyboard signals are the application's;
		 * krg only waits, as a shell's system() does. */
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
	}
	krg_ckpt_progress("krg restart");
	struct ckpt_pidns ns = { 0 };
	if (ckpt_restore_opts(dir, newns ? &ns : NULL, &ro, &pid, &err) < 0) {
		fprintf(stderr, "krg restart: %s\n", err.msg);
		return 1;
	}
	if (pidfile)
		write_pidfile(pidfile, (unsigned long)pid);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "krg restart: waitpid: %s\n", strerror(errno));
			kill(pid, SIGKILL);
			ckpt_pidns_finish(&ns, 1 << 8);
			return 1;
		}
	/* The reaper exits with it, ending whatever is left in the namespace. */
	ckpt_pidns_finish(&ns, st);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
