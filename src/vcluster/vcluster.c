/* vcluster.c — `krgadm vcluster` entry: argument parsing, --help, and the
 * error boundary (one line on stderr, non-zero exit). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "vcluster.h"
#include "vc.h"

enum { OPT_PREFIX = 1, OPT_CPUS = 2, OPT_NOKRGD = 4, OPT_JSON = 8, OPT_CMD = 16, OPT_KDFS = 32, OPT_CONF = 64 };

struct subcmd {
	const char *name;
	int (*fn)(const struct vc_args *a);
	unsigned opts;
	const char *help;
};

static const struct subcmd subcmds[] = {
	{ "up", vc_cmd_up, OPT_PREFIX | OPT_CPUS | OPT_NOKRGD | OPT_KDFS | OPT_CONF,
	  "usage: krgadm vcluster up N [--prefix NAME] [--cpus X] [--no-krgd] [--kdfs] [--conf 'KEY = VALUE']...\n"
	  "Start a virtual cluster of N (1..64) nodes on this machine. Each node has its own\n"
	  "network (10.77.S.i/24 on eth0, bridged), mount, pid, IPC and UTS namespaces, and a\n"
	  "cgroup whose CPU quota is X CPUs (default 1). Starts krgd in every node and waits\n"
	  "for its API socket, unless --no-krgd. Prints one line per node: id, address, init pid.\n"
	  "  --prefix NAME  cluster name, 1..8 of [a-z0-9] (default krg)\n"
	  "  --cpus X       CPU capacity of each node, e.g. 0.5 (default 1)\n"
	  "  --kdfs         every node mounts kdfs on /run/kdfs (share in its /var/lib/krg/kdfs)\n"
	  "  --conf LINE    add LINE ('KEY = VALUE') to every node's krgd.conf, also of nodes\n"
	  "                 added later (up to 8, e.g. --conf 'link_idle_ms = 2000')\n"
	  "  --no-krgd      do not start krgd\n" },
	{ "add", vc_cmd_add, OPT_PREFIX,
	  "usage: krgadm vcluster add [N] [--prefix NAME]\n"
	  "Grow a running cluster by N (default 1) nodes that join it live: each new node's\n"
	  "krgd.conf has no node id and no node list, only its address and a member to join\n"
	  "through (docs/reconfiguration.md). Waits until every new node has quorum; prints\n"
	  "one line per node like up.\n" },
	{ "exec", vc_cmd_exec, OPT_PREFIX | OPT_CMD,
	  "usage: krgadm vcluster exec I [--prefix NAME] -- CMD [ARGS...]\n"
	  "Run CMD inside node I (its namespaces and cgroup) with krgadm's directory first in\n"
	  "PATH and KRG_CONFIG=/run/krg/krgd.conf. Exits with CMD's status, 128+signal if it was\n"
	  "killed, 125 if it could not be started.\n" },
	{ "down", vc_cmd_down, OPT_PREFIX,
	  "usage: krgadm vcluster down [--prefix NAME]\n"
	  "Stop every node and remove the bridge, veths, cgroups and state of the cluster, also\n"
	  "after a failed up or a crash. Succeeds when there is nothing to remove.\n" },
	{ "status", vc_cmd_status, OPT_PREFIX | OPT_JSON,
	  "usage: krgadm vcluster status [--prefix NAME] [--json]\n"
	  "Show the nodes of a cluster: address, init pid, krgd pid, link state.\n" },
	{ "krgd", vc_cmd_krgd, OPT_PREFIX,
	  "usage: krgadm vcluster krgd I start|kill [--prefix NAME]\n"
	  "kill: SIGKILL krgd in node I. start: start krgd again in node I (log appended to\n"
	  "the node's krgd.log) and wait for its API socket.\n" },
	{ "link", vc_cmd_link, OPT_PREFIX,
	  "usage: krgadm vcluster link I down|up [--prefix NAME]\n"
	  "Cut (down) or heal (up) node I's network link by setting its host-side veth down/up.\n" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: krgadm vcluster up|add|exec|down|status|krgd|link [ARGS] [--prefix NAME]\n"
		   "A virtual krg cluster of N nodes on this machine (needs root).\n"
		   "Run 'krgadm vcluster SUBCOMMAND --help' for details.\n");
}

static int parse(const struct subcmd *sc, int argc, char **argv, struct vc_args *a)
{
	memset(a, 0, sizeof(*a));
	a->prefix = "krg";
	for (int i = 2; i < argc; i++) {
		char *arg = argv[i], *val = NULL;
		if (strcmp(arg, "--") == 0) {
			if (!(sc->opts & OPT_CMD))
				return vc_fail(-EINVAL, "unexpected '--'");
			a->cmd = argv + i + 1;
			return 0;
		}
		if (arg[0] != '-' || arg[1] == 0) {
			if (a->npos >= (int)ARRAY_SIZE(a->pos))
				return vc_fail(-EINVAL, "too many arguments");
			a->pos[a->npos++] = arg;
			continue;
		}
		char *eq = strchr(arg, '=');
		size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
#define IS(o) (strlen(o) == nl && strncmp(arg, o, nl) == 0)
		unsigned o = IS("--prefix") ? OPT_PREFIX : IS("--cpus") ? OPT_CPUS : IS("--no-krgd") ? OPT_NOKRGD : IS("--kdfs") ? OPT_KDFS
			   : IS("--json") ? OPT_JSON : IS("--conf") ? OPT_CONF : 0;
#undef IS
		if (!(o & sc->opts))
			return vc_fail(-EINVAL, "unknown option '%s' for '%s' (see --help)", arg, sc->name);
		if (o == OPT_PREFIX || o == OPT_CPUS || o == OPT_CONF) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return vc_fail(-EINVAL, "option '%s' needs a value", arg);
			if (o == OPT_PREFIX) {
				a->prefix = val;
			} else if (o == OPT_CONF) {
				if (a->n_conf >= (int)ARRAY_SIZE(a->conf))
					return vc_fail(-EINVAL, "at most %zu --conf lines", ARRAY_SIZE(a->conf));
				a->conf[a->n_conf++] = val;
			} else
				a->cpus = val;
		} else if (eq) {
			return vc_fail(-EINVAL, "option '%.*s' takes no value", (int)nl, arg);
		} else if (o == OPT_NOKRGD) {
			a->no_krgd = true;
		} else if (o == OPT_KDFS) {
			a->kdfs = true;
		} else {
			a->json = true;
		}
	}
	if (sc->opts & OPT_CMD)
		return vc_fail(-EINVAL, "missing '-- CMD' (see --help)");
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int krg_vcluster_main(int argc, char **argv)
{
	struct vc_args a;
	const struct subcmd *sc = NULL;

	vc_error_clear();
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (strcmp(argv[1], subcmds[i].name) == 0)
			sc = &subcmds[i];
	if (!sc) {
		fprintf(stderr, "krgadm vcluster: unknown subcommand '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	if (wants_help(argc, argv)) {
		fputs(sc->help, stdout);
		return 0;
	}
	int r = parse(sc, argc, argv, &a);
	if (r < 0) {
		fprintf(stderr, "krgadm vcluster %s: %s\n", sc->name, vc_error());
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "krgadm vcluster %s: must run as root (namespaces, cgroups, network links)\n", sc->name);
		return 1;
	}
	r = sc->fn(&a);
	fflush(stdout);
	if (sc->fn == vc_cmd_exec && r >= 0)
		return r; /* the command's own status */
	if (r < 0) {
		const char *e = vc_error();
		/* krgd start's child already printed its reason. */
		if (e || r != -EIO)
			fprintf(stderr, "krgadm vcluster %s: %s\n", sc->name, e ? e : strerror(-r));
		return sc->fn == vc_cmd_exec ? 125 : 1;
	}
	return 0;
}
