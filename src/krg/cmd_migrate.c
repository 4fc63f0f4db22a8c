/* krg migrate — move a running krg process to another node
 * (docs/migration.md). The process keeps its id, its pid and its parent
 * at home; it runs on NODE from then on. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/client.h"
#include "krg/cli.h"
#include "lib/cmdtable.h"
#include "lib/nodelist.h"
#include "proc/procid.h"
#include "proto/migrate.pb-c.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg migrate [-v] [--progress] [--socket PATH] ID NODE\n"
		   "\n"
		   "Move the running krg process ID (its cluster-wide id, as krg ps shows it) to\n"
		   "node NODE, wherever it runs now. It goes on there with its memory, threads,\n"
		   "signals and files; at home a deputy keeps its pid, its parent and the fds\n"
		   "that cannot move (terminal, pipes, sockets), which are proxied. You may\n"
		   "move your own processes; root may move any krg process.\n"
		   "  -v, --verbose   print the image size, total and frozen time\n"
		   "  -p, --progress  say where the move stands (queued behind others, copying,\n"
		   "                  sending, restoring) while it lasts over a second; the\n"
		   "                  default when stderr is a terminal\n"
		   "Exit status 0 once it runs on NODE, 1 if it did not move, 2 on bad usage.\n");
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
	if (!*s || strlen(s) > 12)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The move runs in a thread (krg_api_call blocks until the process runs
 * on NODE); meanwhile the main thread asks krgd where it stands. */
struct mig_call {
	const char *sock;
	uint8_t body[64];
	size_t len;
	int r;
	uint8_t *resp;
	size_t rlen;
	char err[1024];
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *mig_call_thread(void *arg)
{
	struct mig_call *c = arg;
	c->r = krg_api_call(c->sock, "mig.move", c->body, c->len, 30u * 60 * 1000, &c->resp, &c->rlen, c->err,
			    sizeof(c->err));
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* One line on stderr, rewritten in place: where the move stands. */
static void show_status(struct mig_call *c, unsigned long long id, bool *shown)
{
	uint8_t *resp = NULL;
	size_t rlen = 0;
	char err[256];
	if (krg_api_call(c->sock, "mig.status", c->body, c->len, 2000, &resp, &rlen, err, sizeof(err)) < 0) {
		free(resp);
		return;  /* the move's own answer says what went wrong */
	}
	Krg__Mig__Status *st = resp ? krg__mig__status__unpack(NULL, rlen, resp) : NULL;
	free(resp);
	if (!st)
		return;
	char line[200] = "";
	if (!strcmp(st->state, "queued"))
		snprintf(line, sizeof(line), "%llu: queued on node %u, %u before it, %u migrating", id, st->node, st->ahead,
			 st->running);
	else if (strcmp(st->state, "none"))
		snprintf(line, sizeof(line), "%llu: %s, %llu MiB sent to node %u", id, st->state,
			 (unsigned long long)(st->bytes >> 20), st->to);
	krg__mig__status__free_unpacked(st, NULL);
	if (line[0]) {
		fprintf(stderr, "\rkrg migrate: %-70s", line);
		*shown = true;
	}
}

static int run_move(struct mig_call *c, unsigned long long id, bool progress)
{
	pthread_t t;
	if (pthread_create(&t, NULL, mig_call_thread, c) != 0) {
		mig_call_thread(c);
		return c->r;
	}
	bool shown = false;
	struct timespec start;
	clock_gettime(CLOCK_REALTIME, &start);
	pthread_mutex_lock(&c->lock);
	for (unsigned tick = 0; !c->done; tick++) {
		/* Nothing for moves done within a second; then twice a second. */
		struct timespec until = start;
		until.tv_sec += 1 + tick / 2;
		until.tv_nsec += (tick % 2) * 500000000L;
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		if (pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0 || c->done || !progress)
			continue;
		pthread_mutex_unlock(&c->lock);
		show_status(c, id, &shown);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_join(t, NULL);
	if (shown)
		fprintf(stderr, "\n");
	return c->r;
}

int cmd_migrate(int argc, char **argv)
{
	const char *sock = NULL;
	const char *pos[2];
	int np = 0;
	bool verbose = false, progress = isatty(STDERR_FILENO);
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "progress", no_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	while ((o = krg_getopt("krg migrate", argc, argv, "vph", opts)) != -1) {
		switch (o) {
		case 'v':
			verbose = true;
			break;
		case 'p':
			progress = true;
			break;
		case 'S':
			sock = optarg;
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	if (argc - optind > 2) {
		fprintf(stderr, "krg migrate: too many arguments (see krg migrate --help)\n");
		return KRG_EXIT_USAGE;
	}
	for (; optind < argc; optind++)
		pos[np++] = argv[optind];
	if (np != 2) {
		fprintf(stderr, "krg migrate: need a process id and a node (see krg migrate --help)\n");
		return KRG_EXIT_USAGE;
	}
	unsigned long long id, node;
	if (parse_num(pos[0], (1ull << 30) - 1, &id) < 0 || (id & KRG_PID_MASK) == 0) {
		fprintf(stderr, "krg migrate: '%s': not a krg process id (see krg ps)\n", pos[0]);
		return KRG_EXIT_USAGE;
	}
	if (parse_num(pos[1], KRG_MAX_NODES - 1, &node) < 0) {
		fprintf(stderr, "krg migrate: '%s': not a node id (0-%d)\n", pos[1], KRG_MAX_NODES - 1);
		return KRG_EXIT_USAGE;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.node = (uint32_t)node;
	if (krg_procid_home((uint32_t)id) == 0)
		q.has_pid = true, q.pid = (uint32_t)id; /* a plain pid of this node */
	else
		q.has_id = true, q.id = (uint32_t)id;
	static struct mig_call c = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	c.sock = krg_api_socket_path(sock);
	c.len = krg__mig__move__pack(&q, c.body);
	int r = run_move(&c, id, progress);
	uint8_t *resp = c.resp;
	size_t rlen = c.rlen;
	if (r < 0) {
		free(resp);
		fprintf(stderr, "krg migrate: %s\n", c.err);
		return 1;
	}
	if (verbose && resp) {
		Krg__Mig__Result *res = krg__mig__result__unpack(NULL, rlen, resp);
		if (res) {
			printf("%u on node %u: %s\n", res->has_id ? res->id : (unsigned)id, res->has_node ? res->node : (unsigned)node,
			       res->text ? res->text : "");
			krg__mig__result__free_unpacked(res, NULL);
		}
	}
	free(resp);
	return 0;
}
