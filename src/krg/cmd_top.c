/* krg top — live view of the cluster: nodes (capacity, load, memory,
 * processes), then krg processes by %cpu. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "krg/cli.h"
#include "krg/proclist.h"
#include "lib/cmdtable.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg top [--once] [-d SECONDS] [--socket PATH]\n"
		   "\n"
		   "Live view of the cluster, refreshed every SECONDS (default 1): every node's\n"
		   "CPU capacity, load average, memory and process counts, then every user's krg\n"
		   "processes by %%cpu (cpu time used since the previous frame; the first frame\n"
		   "shows the lifetime average). q or Ctrl-C quits.\n"
		   "\n"
		   "  -d, --delay SECONDS  refresh period (at least 0.1)\n"
		   "      --once           print one frame without clearing the screen, exit\n"
		   "      --socket PATH    krgd API socket\n");
}

static volatile sig_atomic_t quit;
static void on_signal(int sig)
{
	quit = 1;
}

/* cpu_ms of the previous frame, by id, for the sampled %cpu. */
struct prev {
	uint32_t *ids;
	uint64_t *cpu_ms;
	size_t n;
	double at; /* seconds, monotonic */
};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct row {
	const Krg__Node__Proc *p;
	double cpu;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->cpu != y->cpu)
		return x->cpu < y->cpu ? 1 : -1;
	return (x->p->id > y->p->id) - (x->p->id < y->p->id);
}

static const char *state_name(uint32_t s)
{
	static const char *const n[] = { "absent", "joining", "up", "leaving", "down" };
	return s < 5 ? n[s] : "?";
}

static void frame(const Krg__Node__NodeStats *ns, const Krg__Node__ProcList *pl, struct prev *pv, int max_rows)
{
	char now[16];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(now, sizeof(now), "%H:%M:%S", &tm);
	const Krg__Node__NodeTotals *tot = ns->total;
	printf("krg top - %s  %u node(s) up, %.2f cpus, load %.2f %.2f %.2f, mem %llu MiB (%llu free), "
	       "%u procs (%u krg)\n\n",
	       now, tot->nodes, tot->cpus, tot->load1, tot->load5, tot->load15,
	       (unsigned long long)tot->mem_total_kb / 1024, (unsigned long long)tot->mem_available_kb / 1024,
	       tot->procs, tot->krg_procs);
	printf("%-5s %-7s %6s %6s %6s %6s %9s %9s %6s %5s\n", "NODE", "STATE", "CPUS", "LOAD1", "LOAD5", "LD/CPU",
	       "MEM_MiB", "AVAIL_MiB", "PROCS", "KRG");
	for (size_t i = 0; i < ns->n_nodes; i++) {
		const Krg__Node__NodeLoad *l = ns->nodes[i]->load;
		printf("%-5u %-7s %6.2f %6.2f %6.2f %6.2f %9llu %9llu %6u %5u%s\n", l->node,
		       state_name(ns->nodes[i]->state), l->cpus, l->load1, l->load5, l->cpus > 0 ? l->load1 / l->cpus : 0,
		       (unsigned long long)l->mem_total_kb / 1024, (unsigned long long)l->mem_available_kb / 1024,
		       l->procs, l->krg_procs, ns->nodes[i]->age_ms > 3000 ? "  (stale)" : "");
	}
	double at = mono_s(), dt = at - pv->at;
	struct row *rows = calloc(pl->n_procs ? pl->n_procs : 1, sizeof(*rows));
	if (!rows)
		return;
	for (size_t i = 0; i < pl->n_procs; i++) {
		const Krg__Node__Proc *p = pl->procs[i];
		rows[i].p = p;
		rows[i].cpu = p->cpu_pct;
		for (size_t k = 0; pv->n && dt > 0.05 && k < pv->n; k++)
			if (pv->ids[k] == p->id) {
				uint64_t d = p->cpu_ms >= pv->cpu_ms[k] ? p->cpu_ms - pv->cpu_ms[k] : 0;
				rows[i].cpu = (double)d / (dt * 10.0);
				break;
			}
	}
	qsort(rows, pl->n_procs, sizeof(*rows), cmp_row);
	printf("\n%10s %4s %-10s %1s %5s %8s %8s %s\n", "ID", "NODE", "USER", "S", "%CPU", "RSS", "TIME", "COMMAND");
	for (size_t i = 0; i < pl->n_procs && (max_rows <= 0 || (int)i < max_rows); i++) {
		const Krg__Node__Proc *p = rows[i].p;
		unsigned long long s = p->cpu_ms / 1000;
		char tbuf[16];
		snprintf(tbuf, sizeof(tbuf), "%llu:%02llu", s / 60, s % 60);
		printf("%10u %4u %-10.10s %1.1s %5.1f %8llu %8s ", p->id, p->node, p->user, p->state, rows[i].cpu,
		       (unsigned long long)p->rss_kb, tbuf);
		krg_put_safe(stdout, p->command, 200);
		putchar('\n');
	}
	free(rows);
	/* Remember this frame. */
	free(pv->ids);
	free(pv->cpu_ms);
	pv->n = 0;
	pv->ids = malloc((pl->n_procs ? pl->n_procs : 1) * sizeof(*pv->ids));
	pv->cpu_ms = malloc((pl->n_procs ? pl->n_procs : 1) * sizeof(*pv->cpu_ms));
	if (pv->ids && pv->cpu_ms) {
		for (size_t i = 0; i < pl->n_procs; i++) {
			pv->ids[i] = pl->procs[i]->id;
			pv->cpu_ms[i] = pl->procs[i]->cpu_ms;
		}
		pv->n = pl->n_procs;
	}
	pv->at = at;
}

static int fetch_and_draw(const char *sock, struct prev *pv, bool once, int rows)
{
	Krg__Node__NodeStats *ns;
	Krg__Node__ProcList *pl;
	int r = krg_fetch_stats("top", sock, &ns);
	if (r)
		return r;
	r = krg_fetch_procs("top", sock, true, &pl);
	if (r) {
		krg__node__node_stats__free_unpacked(ns, NULL);
		return r;
	}
	if (!once)
		fputs("\033[H\033[2J", stdout);
	frame(ns, pl, pv, rows);
	fflush(stdout);
	krg__node__proc_list__free_unpacked(pl, NULL);
	krg__node__node_stats__free_unpacked(ns, NULL);
	return 0;
}

int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' }, { "delay", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *sock = NULL;
	bool once = false;
	double delay = 1.0;
	int o;
	optind = 1;
	while ((o = krg_getopt("krg top", argc, argv, "od:s:h", opts)) != -1) {
		switch (o) {
		case 'o':
			once = true;
			break;
		case 'd': {
			char *end;
			delay = strtod(optarg, &end);
			if (*end || !(delay >= 0.1) || delay > 86400) {
				fprintf(stderr, "krg top: bad delay '%s': seconds, at least 0.1\n", optarg);
				return KRG_EXIT_USAGE;
			}
			break;
		}
		case 's':
			sock = optarg;
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	if (krg_getopt_done("krg top", argc, argv) < 0)
		return KRG_EXIT_USAGE;
	struct prev pv = { 0 };
	if (once) {
		int r = fetch_and_draw(sock, &pv, true, 0);
		free(pv.ids);
		free(pv.cpu_ms);
		return r;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct termios saved;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		struct termios raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	int r = 0;
	while (!quit) {
		int rows = 0;
		struct winsize ws;
		if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
			rows = ws.ws_row > 12 ? ws.ws_row - 12 : 1;
		if ((r = fetch_and_draw(sock, &pv, false, rows)))
			break;
		double end = mono_s() + delay;
		while (!quit) {
			double left = end - mono_s();
			if (left <= 0)
				break;
			struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
			int n = poll(&p, tty ? 1 : 0, (int)(left * 1000) + 1);
			if (n > 0) {
				char c;
				ssize_t got = read(STDIN_FILENO, &c, 1);
				if (got == 1 && (c == 'q' || c == 'Q' || c == 3))
					quit = 1;
				else if (got == 1 && c == ' ')
					break; /* refresh now */
			}
		}
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	free(pv.ids);
	free(pv.cpu_ms);
	return r;
}
