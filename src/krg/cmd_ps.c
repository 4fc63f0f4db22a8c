/* krg ps — every krg process of the cluster (docs/krg-ps.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "krg/cli.h"
#include "krg/proclist.h"
#include "lib/json.h"
#include "proto/ckptsvc.pb-c.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg ps [-a] [--json] [--socket PATH]\n"
		   "\n"
		   "List krg processes on every node of the cluster: cluster-wide id, node it\n"
		   "runs on, home node, user, state, %%cpu (cpu time / elapsed time since it\n"
		   "started), resident memory (KiB), start time and command.\n"
		   "\n"
		   "  -a, --all      every user's processes (default: only yours); the\n"
		   "                 arguments of other users' processes are not shown\n"
		   "      --json     machine-readable output\n"
		   "      --socket   krgd API socket (default $KRG_SOCKET or krgd.conf's)\n");
}

/* The periodic checkpoints entry of process id, if it is such an application's root. */
static const Krg__Ckptsvc__Periodic *periodic_of(const Krg__Ckptsvc__PeriodicList *pl, uint32_t id)
{
	for (size_t i = 0; pl && i < pl->n_apps; i++)
		if (pl->apps[i]->id == id)
			return pl->apps[i];
	return NULL;
}

static void print_json(const Krg__Node__ProcList *l, const Krg__Ckptsvc__PeriodicList *pl)
{
	struct krg_json j;
	krg_json_init(&j, stdout);
	krg_json_begin_object(&j, NULL);
	krg_json_begin_array(&j, "processes");
	for (size_t i = 0; i < l->n_procs; i++) {
		const Krg__Node__Proc *p = l->procs[i];
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "id", p->id);
		krg_json_uint(&j, "node", p->node);
		krg_json_uint(&j, "home", p->home);
		krg_json_uint(&j, "pid", p->pid);
		krg_json_uint(&j, "ppid", p->ppid);
		krg_json_uint(&j, "uid", p->uid);
		krg_json_string(&j, "user", p->user);
		krg_json_string(&j, "state", p->state);
		krg_json_double(&j, "cpu_pct", p->cpu_pct);
		krg_json_uint(&j, "cpu_ms", p->cpu_ms);
		krg_json_uint(&j, "rss_kb", p->rss_kb);
		krg_json_uint(&j, "start_unix_ms", p->start_unix_ms);
		krg_json_uint(&j, "threads", p->has_threads ? p->threads : 0);
		krg_json_bool(&j, "args_visible", p->args_visible);
		krg_json_string(&j, "command", p->command);
		const Krg__Ckptsvc__Periodic *e = periodic_of(pl, p->id);
		if (e) {
			krg_json_begin_object(&j, "checkpoints");
			krg_json_uint(&j, "appid", e->appid);
			krg_json_uint(&j, "every_ms", e->every_ms);
			krg_json_uint(&j, "version", e->version);
			krg_json_uint(&j, "recoveries", e->recoveries);
			if (e->recoveries) {
				krg_json_uint(&j, "recovered_from", e->recovered_from);
				krg_json_double(&j, "resumed_checkpoint_age_s", (double)e->recovered_age_ms / 1000);
			}
			krg_json_end_object(&j);
		}
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_begin_array(&j, "unreachable");
	for (size_t i = 0; i < l->n_unreachable; i++)
		krg_json_uint(&j, NULL, l->unreachable[i]);
	krg_json_end_array(&j);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void print_table(const Krg__Node__ProcList *l, const Krg__Ckptsvc__PeriodicList *pl)
{
	printf("%10s %4s %4s %-10s %1s %5s %8s %5s %s\n", "ID", "NODE", "HOME", "USER", "S", "%CPU", "RSS", "START",
	       "COMMAND");
	for (size_t i = 0; i < l->n_procs; i++) {
		const Krg__Node__Proc *p = l->procs[i];
		char start[16];
		krg_fmt_start(p->start_unix_ms, start, sizeof(start));
		printf("%10u %4u %4u %-10.10s %1.1s %5.1f %8llu %5s ", p->id, p->node, p->home, p->user, p->state,
		       p->cpu_pct, (unsigned long long)p->rss_kb, start);
		krg_put_safe(stdout, p->command, 0);
		const Krg__Ckptsvc__Periodic *e = periodic_of(pl, p->id);
		if (e) {
			char note[256];
			krg_ckpt_every_note(e, note, sizeof(note));
			printf("  [%s]", note);
		}
		putchar('\n');
	}
}

int cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' }, { "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *sock = NULL;
	bool all = false, json = false;
	int o;
	optind = 1;
	while ((o = krg_getopt("krg ps", argc, argv, "ajs:h", opts)) != -1) {
		switch (o) {
		case 'a':
			all = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	if (krg_getopt_done("krg ps", argc, argv) < 0)
		return KRG_EXIT_USAGE;
	Krg__Node__ProcList *l;
	int r = krg_fetch_procs("ps", sock, all, &l);
	if (r)
		return r;
	/* Best effort: an older krgd lists no periodic checkpoints. */
	char err[256];
	Krg__Ckptsvc__PeriodicList *pl = krg_ckpt_every_fetch(sock, err, sizeof(err));
	if (json)
		print_json(l, pl);
	else
		print_table(l, pl);
	krg__node__proc_list__free_unpacked(l, NULL);
	if (pl)
		krg__ckptsvc__periodic_list__free_unpacked(pl, NULL);
	return 0;
}
