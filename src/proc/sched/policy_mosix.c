/* policy_mosix.c — a MOSIX-like load balancer (Kerrighed's
 * mosix_load_balancer with its threshold and freq_limit filters). Every
 * node balances itself: when its CPU demand per CPU (runnable / cpus)
 * exceeds the least-loaded node's by more than `threshold` times the load
 * one process adds there, it sends runnable processes to it, one at a
 * time in its model of the loads, until that no longer holds (so a move
 * never makes the target busier than the source: no ping-pong); then it
 * waits `min_interval_ms` before deciding again, so the peers' figures
 * catch up. Processes doing more than `max_io_kbps` of I/O stay with
 * their data; processes younger than `min_age_ms` are not moved (MOSIX's
 * minimum age: a short job ends before its migration would pay off).
 *
 * Self-adaptation (`adaptive`, on by default): krgd judges every move this
 * policy asked for (observe(): did the migrant's gain outweigh the
 * migration's cost?). A useless move raises the bar: the threshold by
 * half, the interval doubled, bounded at 4x and 16x the configured values;
 * a useful one brings both a third of the way back. Why both: a high
 * threshold alone still lets a burst of short jobs on one node trigger
 * moves every second; a long interval alone still moves the wrong ones.
 * The raise is also forgotten with time (half-life 60 s), since a bar
 * raised high enough stops the moves that could show it is too high.
 * It also learns what a move costs (the verdicts' migration times) and
 * leaves alone processes younger than that cost times the bar: Unix
 * process lifetimes are heavy-tailed (Harchol-Balter and Downey, 1997),
 * so a process expects to run about as long again as it already has, and
 * one younger than a migration is as likely to end before the move pays
 * as after. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include "proc/sched/sched-int.h"

enum { P_THRESHOLD, P_MIN_INTERVAL, P_MAX_IO, P_MIN_AGE, P_ADAPTIVE };

#define MAX_THR_F 4.0       /* the adapted threshold stays <= 4 x the configured one */
#define MAX_IVL_F 16.0      /* the adapted interval <= 16 x */
#define RELAX 0.66          /* a useful move keeps this much of the raise */
#define HALF_LIFE_MS 60000.0

static const struct krg_sched_param_def params[] = {
	[P_THRESHOLD] = { "threshold", 1.5, 0.5, 100, "move when the gap exceeds this many processes' load on the target" },
	[P_MIN_INTERVAL] = { "min_interval_ms", 1000, 100, 3600000, "at least this long between two decisions" },
	[P_MAX_IO] = { "max_io_kbps", 1024, 0, 1e9, "processes doing more I/O than this (KiB/s) are not moved" },
	[P_MIN_AGE] = { "min_age_ms", 0, 0, 3600000, "processes younger than this are not moved (short jobs end first)" },
	[P_ADAPTIVE] = { "adaptive", 1, 0, 1, "1: tune threshold and interval from the moves' outcomes" },
};

struct mosix_state {
	uint64_t last_ms;   /* monotonic time of the last decision that moved something */
	double thr_f;       /* adapted threshold / configured, in [1, MAX_THR_F] */
	double ivl_f;       /* adapted interval / configured, in [1, MAX_IVL_F] */
	double cost_ms;     /* moving average of the judged moves' cost, 0 before any */
	uint64_t decay_ms;  /* monotonic time the factors were last decayed */
};

static bool adaptive(const double *p)
{
	return p[P_ADAPTIVE] >= 0.5;
}

/* Forget a raise with time; with adaptation off, the configured values. */
static void decay(struct mosix_state *st, const double *p, uint64_t now)
{
	if (!adaptive(p)) {
		st->thr_f = st->ivl_f = 1;
		st->cost_ms = 0;
	} else if (st->decay_ms && now > st->decay_ms) {
		double k = pow(0.5, (double)(now - st->decay_ms) / HALF_LIFE_MS);
		st->thr_f = 1 + (st->thr_f - 1) * k;
		st->ivl_f = 1 + (st->ivl_f - 1) * k;
	}
	st->decay_ms = now;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int mosix_init(void **state)
{
	struct mosix_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->thr_f = st->ivl_f = 1;
	*state = st;
	return 0;
}

static void mosix_observe(void *state, const double *p, const struct krg_sched_verdict *v)
{
	struct mosix_state *st = state;
	decay(st, p, now_ms());
	if (!adaptive(p))
		return;
	st->cost_ms = st->cost_ms > 0 ? 0.7 * st->cost_ms + 0.3 * (double)v->cost_ms : (double)v->cost_ms;
	if (v->useful) {
		st->thr_f = 1 + (st->thr_f - 1) * RELAX;
		st->ivl_f = 1 + (st->ivl_f - 1) * RELAX;
	} else {
		st->thr_f = fmin(MAX_THR_F, st->thr_f * 1.5);
		st->ivl_f = fmin(MAX_IVL_F, st->ivl_f * 2);
	}
}

/* Processes younger than this are not moved. */
static double min_age(const struct mosix_state *st, const double *p)
{
	return fmax(p[P_MIN_AGE], st->thr_f * st->cost_ms);
}

static void mosix_adapted(void *state, const double *p, double *out)
{
	struct mosix_state *st = state;
	decay(st, p, now_ms());
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		out[i] = p[i];
	out[P_THRESHOLD] = p[P_THRESHOLD] * st->thr_f;
	out[P_MIN_INTERVAL] = round(p[P_MIN_INTERVAL] * st->ivl_f);
	out[P_MIN_AGE] = round(min_age(st, p));
}

static void mosix_fini(void *state)
{
	free(state);
}

static int mosix_balance(void *state, const double *p, const struct krg_sched_node *nodes, size_t n,
			 const struct krg_sched_proc *procs, size_t nprocs, struct krg_sched_move *moves,
			 size_t max_moves)
{
	struct mosix_state *st = state;
	uint64_t now = now_ms();
	decay(st, p, now);
	double threshold = p[P_THRESHOLD] * st->thr_f;
	uint64_t age = (uint64_t)min_age(st, p);
	if (st->last_ms && now - st->last_ms < (uint64_t)(p[P_MIN_INTERVAL] * st->ivl_f))
		return 0;
	double run[KRG_MAX_SCHED_NODES];
	const struct krg_sched_node *self = NULL;
	if (n > KRG_MAX_SCHED_NODES)
		n = KRG_MAX_SCHED_NODES;
	for (size_t i = 0; i < n; i++) {
		run[i] = nodes[i].runnable;
		if (nodes[i].self)
			self = &nodes[i];
	}
	if (!self || self->cpus <= 0)
		return 0;
	size_t me = (size_t)(self - nodes), k = 0;
	bool *used = calloc(nprocs ? nprocs : 1, sizeof(bool));
	if (!used)
		return -ENOMEM;
	while (k < max_moves) {
		size_t best = n;
		for (size_t i = 0; i < n; i++)
			if (i != me && nodes[i].cpus > 0 &&
			    (best == n || run[i] / nodes[i].cpus < run[best] / nodes[best].cpus))
				best = i;
		if (best == n)
			break;
		double gap = run[me] / self->cpus - run[best] / nodes[best].cpus;
		if (gap <= threshold / nodes[best].cpus)
			break;
		/* The runnable process using the most CPU, light on I/O. */
		size_t pick = nprocs;
		for (size_t j = 0; j < nprocs; j++)
			if (!used[j] && procs[j].runnable && procs[j].io_kbps <= p[P_MAX_IO] &&
			    procs[j].age_ms >= age &&
			    (pick == nprocs || procs[j].cpu_pct > procs[pick].cpu_pct))
				pick = j;
		if (pick == nprocs)
			break;
		used[pick] = true;
		moves[k++] = (struct krg_sched_move){ .id = procs[pick].id, .node = nodes[best].id };
		run[me] -= 1;
		run[best] += 1;
	}
	free(used);
	if (k)
		st->last_ms = now;
	return (int)k;
}

const struct krg_sched_policy_ops sched_mosix = {
	.version = KRG_SCHED_API_VERSION,
	.size = sizeof(struct krg_sched_policy_ops),
	.name = "mosix",
	.description = "MOSIX-like balancer: move runnable processes to less loaded nodes, with hysteresis",
	.kind = KRG_SCHED_BALANCER,
	.params = params,
	.n_params = sizeof(params) / sizeof(params[0]),
	.init = mosix_init,
	.fini = mosix_fini,
	.balance = mosix_balance,
	.observe = mosix_observe,
	.adapted = mosix_adapted,
};
