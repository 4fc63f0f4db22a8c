/* cmd_kdfs.c — krgadm kdfs status [--json]: kdfs over the cluster
 * (docs/kdfs.md): per node its state, disk capacity and free space, and
 * the chunk replicas placed there; files, chunks, under-replicated and
 * lost chunks, repairs in progress. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kdfs.pb-c.h"
#include "krgadm/krgadm.h"
#include "lib/json.h"

static void kdfs_usage(FILE *f)
{
	fprintf(f,
		"Usage: krgadm kdfs status [--json] [--socket PATH]\n"
		"\n"
		"status   per node: state, capacity and free space of its kdfs share, chunk\n"
		"         replicas it holds; the cluster's files, chunks, under-replicated\n"
		"         chunks (fewer copies on live nodes than asked), lost chunks (no\n"
		"         copy on a live node), repairs in progress (per node: bytes copied of\n"
		"         the chunk it copies) and chunks with a copy on a leaving node (they\n"
		"         get copies elsewhere before `krgadm nodes del` lets the node go)\n");
}

static void print_json(const Krg__Kdfs__Status *st)
{
	struct krg_json j;
	krg_json_init(&j, stdout);
	krg_json_begin_object(&j, NULL);
	krg_json_begin_array(&j, "nodes");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Krg__Kdfs__NodeUse *u = st->nodes[i];
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "node", u->node);
		krg_json_string(&j, "state", u->state);
		if (u->has_total) {
			krg_json_uint(&j, "capacity", u->total);
			krg_json_uint(&j, "free", u->avail);
		} else {
			krg_json_null(&j, "capacity");
			krg_json_null(&j, "free");
		}
		krg_json_uint(&j, "replicas", u->replicas);
		if (u->has_repairs) {
			krg_json_uint(&j, "repairs", u->repairs);
			krg_json_uint(&j, "repair_copied", u->repaired_bytes);
			krg_json_uint(&j, "repair_bytes", u->repair_total);
		}
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_uint(&j, "files", st->files);
	krg_json_uint(&j, "chunks", st->chunks);
	krg_json_uint(&j, "under_replicated", st->under_replicated);
	krg_json_uint(&j, "lost", st->lost);
	krg_json_uint(&j, "repairs", st->repairs);
	krg_json_uint(&j, "draining", st->draining);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void mib(char *buf, size_t len, const Krg__Kdfs__NodeUse *u, uint64_t v)
{
	if (u->has_total)
		snprintf(buf, len, "%" PRIu64, v >> 20);
	else
		snprintf(buf, len, "-");
}

static void print_text(const Krg__Kdfs__Status *st)
{
	printf("%-5s %-8s %12s %12s %10s  %s\n", "node", "state", "capacity_MiB", "free_MiB", "replicas", "repair");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const Krg__Kdfs__NodeUse *u = st->nodes[i];
		char cap[32], fr[32], rep[48] = "-";
		mib(cap, sizeof(cap), u, u->total);
		mib(fr, sizeof(fr), u, u->avail);
		if (u->has_repairs && u->repairs)
			snprintf(rep, sizeof(rep), "%" PRIu64 "/%" PRIu64 " MiB", u->repaired_bytes >> 20,
				 u->repair_total >> 20);
		printf("%-5u %-8s %12s %12s %10" PRIu64 "  %s\n", u->node, u->state, cap, fr, u->replicas, rep);
	}
	printf("files %" PRIu64 ", chunks %" PRIu64 ", under-replicated %" PRIu64 ", lost %" PRIu64
	       ", repairs in progress %" PRIu64 ", on leaving nodes %" PRIu64 "\n",
	       st->files, st->chunks, st->under_replicated, st->lost, st->repairs, st->draining);
}

int cmd_kdfs(int argc, char **argv)
{
	struct krgadm_opts o;
	Krg__Kdfs__Status *st;
	int r = krgadm_status_fetch("kdfs", argc, argv, kdfs_usage, "kdfs.status", &krg__kdfs__status__descriptor, &o,
				    (ProtobufCMessage **)&st);
	if (r >= 0)
		return r;
	bool json = o.json;
	if (json)
		print_json(st);
	else
		print_text(st);
	krg__kdfs__status__free_unpacked(st, NULL);
	return 0;
}
