/* metrics.c — see metrics.h. */
#include <stdatomic.h>
#include "macro.h"
#include "metrics.h"

/* Durations, seconds: a checkpoint of a few pages to a migration of a few
 * GiB over a slow link. */
static const double dur_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
#define NB ARRAY_SIZE(dur_bounds)

struct histo {
	atomic_uint_least64_t bucket[NB + 1];  /* per bucket (not cumulative); last: +Inf */
	atomic_uint_least64_t sum_us;
};

struct op_counts {
	atomic_uint_least64_t ok, failed, bytes;
	struct histo dur;
};

static struct op_counts ops[KRG_MOP__N];
static struct histo mig_frozen;
static atomic_uint_least64_t restart_rx;

#define PEERS 256
struct link_counts {
	atomic_uint_least64_t bytes[2][2], frames[2][2];  /* [channel][tx] */
	atomic_bool seen;
};
static struct link_counts links[PEERS];

static atomic_uint_least64_t ipc_counts[KRG_MIPC__N];

void krg_metrics_ipc(enum krg_metric_ipc what)
{
	if ((unsigned)what < KRG_MIPC__N)
		atomic_fetch_add_explicit(&ipc_counts[what], 1, memory_order_relaxed);
}

static void observe(struct histo *h, uint64_t ms)
{
	double s = (double)ms / 1000.0;
	size_t i = 0;
	while (i < NB && s > dur_bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, ms * 1000, memory_order_relaxed);
}

void krg_metrics_op(enum krg_metric_op op, bool ok, uint64_t bytes, uint64_t ms)
{
	if ((unsigned)op >= KRG_MOP__N)
		return;
	struct op_counts *o = &ops[op];
	atomic_fetch_add_explicit(ok ? &o->ok : &o->failed, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&o->bytes, bytes, memory_order_relaxed);
	if (ok)
		observe(&o->dur, ms);
}

void krg_metrics_migration_frozen(uint64_t ms) { observe(&mig_frozen, ms); }

void krg_metrics_restart_rx(uint64_t bytes)
{
	atomic_fetch_add_explicit(&restart_rx, bytes, memory_order_relaxed);
}

void krg_metrics_frame(uint32_t peer, int channel, bool tx, size_t bytes)
{
	if (peer >= PEERS || channel < 0 || channel > 1)
		return;
	struct link_counts *l = &links[peer];
	atomic_fetch_add_explicit(&l->bytes[channel][tx], bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->frames[channel][tx], 1, memory_order_relaxed);
	if (!atomic_load_explicit(&l->seen, memory_order_relaxed))
		atomic_store_explicit(&l->seen, true, memory_order_relaxed);
}

static uint64_t get(atomic_uint_least64_t *a) { return atomic_load_explicit(a, memory_order_relaxed); }

/* _count is the sum of the buckets read, so that it always equals the
 * +Inf bucket even while counts move. */
static void write_histo(FILE *f, const char *name, const char *help, struct histo *h)
{
	uint64_t cum = 0;
	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < NB; i++) {
		cum += get(&h->bucket[i]);
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, dur_bounds[i], (unsigned long long)cum);
	}
	cum += get(&h->bucket[NB]);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, (double)get(&h->sum_us) / 1e6, name, (unsigned long long)cum);
}

static void write_ops(FILE *f)
{
	static const struct {
		const char *name, *what, *bytes_help;
	} d[KRG_MOP__N] = {
		[KRG_MOP_MIGRATION] = { "migration", "outgoing migrations", "bytes of memory and files sent by outgoing migrations" },
		[KRG_MOP_CHECKPOINT] = { "checkpoint", "checkpoints dumped on this node", "bytes of checkpoint images written" },
		[KRG_MOP_RESTART] = { "restart", "restarts done on this node", NULL /* krg_restart_image_received_bytes_total instead */ },
	};
	for (int i = 0; i < KRG_MOP__N; i++) {
		fprintf(f, "# HELP krg_%ss_total %s, by result\n# TYPE krg_%ss_total counter\n", d[i].name, d[i].what,
			d[i].name);
		fprintf(f, "krg_%ss_total{result=\"ok\"} %llu\n", d[i].name, (unsigned long long)get(&ops[i].ok));
		fprintf(f, "krg_%ss_total{result=\"failed\"} %llu\n", d[i].name, (unsigned long long)get(&ops[i].failed));
		if (i != KRG_MOP_RESTART)
			fprintf(f, "# HELP krg_%s_bytes_total %s\n# TYPE krg_%s_bytes_total counter\nkrg_%s_bytes_total %llu\n",
				d[i].name, d[i].bytes_help, d[i].name, d[i].name, (unsigned long long)get(&ops[i].bytes));
		char name[64], help[128];
		snprintf(name, sizeof(name), "krg_%s_duration_seconds", d[i].name);
		snprintf(help, sizeof(help), "time from request to answer of successful %s", d[i].what);
		write_histo(f, name, help, &ops[i].dur);
	}
	write_histo(f, "krg_migration_frozen_seconds", "time a migrated process stood still", &mig_frozen);
	fprintf(f, "# HELP krg_restart_image_received_bytes_total checkpoint image bytes received from other nodes for restarts here\n"
		   "# TYPE krg_restart_image_received_bytes_total counter\nkrg_restart_image_received_bytes_total %llu\n",
		(unsigned long long)get(&restart_rx));
}

static void write_links(FILE *f)
{
	static const char *const ch[2] = { "control", "bulk" }, *const dir[2] = { "rx", "tx" };
	static const char *const what[2] = { "bytes", "frames" };
	for (int w = 0; w < 2; w++) {
		fprintf(f, "# HELP krg_transport_%s_total %s on the links to each peer, framing and tags included\n"
			   "# TYPE krg_transport_%s_total counter\n", what[w], what[w], what[w]);
		for (unsigned p = 0; p < PEERS; p++) {
			if (!atomic_load_explicit(&links[p].seen, memory_order_relaxed))
				continue;
			for (int c = 0; c < 2; c++)
				for (int t = 0; t < 2; t++)
					fprintf(f, "krg_transport_%s_total{peer=\"%u\",channel=\"%s\",direction=\"%s\"} %llu\n",
						what[w], p, ch[c], dir[t],
						(unsigned long long)get(w ? &links[p].frames[c][t] : &links[p].bytes[c][t]));
		}
	}
}

static void write_ipc(FILE *f)
{
	static const char *const where[2] = { "local", "remote" };
	fprintf(f, "# HELP krg_ipc_calls_total System V calls of this node's callers, by where their object's home is\n"
		   "# TYPE krg_ipc_calls_total counter\n");
	for (int i = 0; i < 2; i++)
		fprintf(f, "krg_ipc_calls_total{home=\"%s\"} %llu\n", where[i],
			(unsigned long long)get(&ipc_counts[KRG_MIPC_CALL_LOCAL + i]));
	fprintf(f, "# HELP krg_ipc_completions_total parked System V calls completed here, by where their caller is\n"
		   "# TYPE krg_ipc_completions_total counter\n");
	for (int i = 0; i < 2; i++)
		fprintf(f, "krg_ipc_completions_total{caller=\"%s\"} %llu\n", where[i],
			(unsigned long long)get(&ipc_counts[KRG_MIPC_DONE_LOCAL + i]));
	fprintf(f, "# HELP krg_ipc_backup_syncs_total changes copied to their backup node before the answer\n"
		   "# TYPE krg_ipc_backup_syncs_total counter\nkrg_ipc_backup_syncs_total %llu\n",
		(unsigned long long)get(&ipc_counts[KRG_MIPC_BACKUP]));
}

void krg_metrics_write(FILE *f)
{
	write_ops(f);
	write_links(f);
	write_ipc(f);
}
