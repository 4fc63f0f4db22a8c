/* krg restart — recreate a process from an image (a directory, or an app
 * id and version in the image store) as a child of krg, and wait for it:
 * krg's exit status is the process's (128 + signal if killed). The image
 * is verified whole before anything starts. The store is node-local: a
 * restart happens on this node. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "krg/krg.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg restart APPID [VERSION] [--pidfile FILE]\n"
		   "       krg restart --dir DIR [--pidfile FILE]\n"
		   "\n"
		   "Restart a process saved by krg checkpoint and wait for it: from the image\n"
		   "store (%s/APPID/vVERSION, default the latest version),\n"
		   "or from DIR. Only root and the image's owner may restart it.\n"
		   "  --dir DIR       image directory\n"
		   "  -n NODE         not yet: the store is node-local, restart runs on this node\n"
		   "  --pidfile FILE  write the restored process's pid there once it runs\n"
		   "Exit status: the process's own; 128+N if signal N killed it; 1 if the\n"
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
	char appdir[4096];
	if (!all_digits(appid) || (ver && !all_digits(ver + (*ver == 'v')))) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	snprintf(appdir, sizeof(appdir), "%s/%s", krg_ckpt_store(), appid);
	struct stat st;
	if (stat(appdir, &st) < 0) {
		fprintf(stderr, "krg restart: no image of app %s in %s: %s\n", appid, krg_ckpt_store(), strerror(errno));
		return 1;
	}
	/* Ownership first: the 0700 directory stops others already, but say it
	 * plainly (and do not rely on modes alone). */
	if (getuid() != 0 && st.st_uid != getuid()) {
		fprintf(stderr, "krg restart: the images of app %s belong to uid %u: permission denied\n", appid, st.st_uid);
		return 1;
	}
	unsigned n;
	if (ver)
		n = (unsigned)strtoul(ver + (*ver == 'v'), NULL, 10);
	else {
		int r = krg_ckpt_versions(appdir, &n);
		if (r < 0 || n == 0) {
			fprintf(stderr, "krg restart: no image of app %s: %s\n", appid, r < 0 ? strerror(-r) : "no version saved");
			return 1;
		}
	}
	if (snprintf(out, len, "%s/v%u", appdir, n) >= (int)len || access(out, F_OK) < 0) {
		fprintf(stderr, "krg restart: app %s has no version %u\n", appid, n);
		return 1;
	}
	return 0;
}

int cmd_restart(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL, *pidfile = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "D:p:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'n':
			fprintf(stderr, "krg restart: -n: restart on another node is not implemented yet (the image store is\n"
					"node-local): run krg restart on the node that holds the image\n");
			return KRG_EXIT_USAGE;
		case 'p': pidfile = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return KRG_EXIT_USAGE;
		}
	}
	char img[4200];
	if (!dir) {
		if (optind == argc || argc - optind > 2) {
			usage(stderr);
			return KRG_EXIT_USAGE;
		}
		int r = store_image(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, img, sizeof(img));
		if (r)
			return r;
		dir = img;
	} else if (optind != argc) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	struct ckpt_error err = { { 0 } };
	pid_t pid;
	krg_ckpt_progress("krg restart");
	if (ckpt_restore(dir, &pid, &err) < 0) {
		fprintf(stderr, "krg restart: %s\n", err.msg);
		return 1;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");
		if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) != 0)
			fprintf(stderr, "krg restart: cannot write %s: %s (the process runs on)\n", pidfile, strerror(errno));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "krg restart: waitpid: %s\n", strerror(errno));
			return 1;
		}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
