/* cmd_kdfs.c — krg kdfs show PATH [--json]: a kdfs file's layout, where
 * each of its chunks lives and whether those nodes are up; krg kdfs set
 * PATH --replicas N: the copies new chunks of the file, or of files made
 * in the directory from now on, get (docs/kdfs.md). The path is resolved
 * here, with the caller's own permissions; krgd checks again that the
 * caller may see (show) or owns (set) the inode. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include "api/client.h"
#include "kdfs.pb-c.h"
#include "krg/cli.h"
#include "lib/cmdtable.h"
#include "lib/json.h"

#define FUSE_SUPER_MAGIC 0x65735546

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: krg kdfs show PATH [--json] [--socket PATH]\n"
		"       krg kdfs set PATH --replicas N [--socket PATH]\n"
		"\n"
		"show   the file's size, the copies its new chunks get, and for each chunk\n"
		"       its version and the nodes holding it (\"*\": the node is down)\n"
		"set    the copies new chunks get: of the file, or of files and directories\n"
		"       made in the directory from now on (owner or root)\n");
}

static int ino_of(const char *path, uint64_t *ino)
{
	struct stat st;
	struct statfs sf;
	if (stat(path, &st) < 0 || statfs(path, &sf) < 0) {
		fprintf(stderr, "krg kdfs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((unsigned long)sf.f_type != FUSE_SUPER_MAGIC) {
		fprintf(stderr, "krg kdfs: %s is not on kdfs\n", path);
		return -1;
	}
	*ino = st.st_ino;
	return 0;
}

static void show_json(const Krg__Kdfs__Show *s)
{
	struct krg_json j;
	krg_json_init(&j, stdout);
	krg_json_begin_object(&j, NULL);
	krg_json_uint(&j, "ino", s->ino);
	krg_json_uint(&j, "size", s->size);
	krg_json_uint(&j, "replicas", s->replicas);
	krg_json_uint(&j, "chunk_size", s->chunk_size);
	krg_json_begin_array(&j, "chunks");
	for (size_t i = 0; i < s->n_chunks; i++) {
		const Krg__Kdfs__ChunkHealth *c = s->chunks[i];
		size_t up = 0;
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "index", c->index);
		krg_json_uint(&j, "version", c->version);
		krg_json_begin_array(&j, "nodes");
		for (size_t k = 0; k < c->n_nodes; k++) {
			krg_json_begin_object(&j, NULL);
			krg_json_uint(&j, "node", c->nodes[k]);
			krg_json_bool(&j, "up", k < c->n_up && c->up[k]);
			krg_json_end_object(&j);
			up += k < c->n_up && c->up[k];
		}
		krg_json_end_array(&j);
		krg_json_string(&j, "health", up == 0 ? "lost" : up < s->replicas ? "under-replicated" : "ok");
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void show_text(const Krg__Kdfs__Show *s)
{
	printf("inode %" PRIu64 ", size %" PRIu64 ", %u copies, chunks of %" PRIu64 " MiB\n", s->ino, s->size,
	       s->replicas, s->chunk_size >> 20);
	printf("%-6s %-8s %-18s %s\n", "chunk", "version", "health", "nodes");
	for (size_t i = 0; i < s->n_chunks; i++) {
		const Krg__Kdfs__ChunkHealth *c = s->chunks[i];
		char nodes[256] = "";
		size_t up = 0, at = 0;
		for (size_t k = 0; k < c->n_nodes && at < sizeof(nodes) - 16; k++) {
			bool u = k < c->n_up && c->up[k];
			at += (size_t)snprintf(nodes + at, sizeof(nodes) - at, "%s%u%s", k ? "," : "", c->nodes[k],
					       u ? "" : "*");
			up += u;
		}
		printf("%-6u %-8" PRIu64 " %-18s %s\n", c->index, c->version,
		       up == 0 ? "lost" : up < s->replicas ? "under-replicated" : "ok", nodes);
	}
}

static int call(const char *sock, const char *cmd, const void *body, size_t len, uint8_t **resp, size_t *rlen)
{
	char err[512];
	if (krg_api_call(krg_api_socket_path(sock), cmd, body, len, 15000, resp, rlen, err, sizeof(err)) < 0) {
		fprintf(stderr, "krg kdfs: %s\n", err);
		return 1;
	}
	return 0;
}

int cmd_kdfs(int argc, char **argv)
{
	const char *sock = NULL, *op = NULL, *path = NULL;
	bool json = false;
	long replicas = -1;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 1;
	while ((o = krg_getopt("krg kdfs", argc, argv, "h", opts)) != -1) {
		char *end;
		switch (o) {
		case 'j':
			json = true;
			break;
		case 'S':
			sock = optarg;
			break;
		case 'r':
			replicas = strtol(optarg, &end, 10);
			if (*end || end == optarg || replicas < 1 || replicas > 64) {
				fprintf(stderr, "krg kdfs: --replicas wants a number from 1 to the number of nodes\n");
				return KRG_EXIT_USAGE;
			}
			break;
		default:
			return krg_getopt_other(o, usage, KRG_EXIT_USAGE);
		}
	}
	if (optind < argc)
		op = argv[optind++];
	if (optind < argc)
		path = argv[optind++];
	if (krg_getopt_done("krg kdfs", argc, argv) < 0)
		return KRG_EXIT_USAGE;
	bool show = op && !strcmp(op, "show"), set = op && !strcmp(op, "set");
	if ((!show && !set) || !path || (set && replicas < 0) || (show && replicas >= 0)) {
		usage(stderr);
		return KRG_EXIT_USAGE;
	}
	uint64_t ino;
	if (ino_of(path, &ino) < 0)
		return 1;
	uint8_t *resp = NULL, buf[64];
	size_t len = 0;
	if (set) {
		Krg__Kdfs__SetLayout sl = KRG__KDFS__SET_LAYOUT__INIT;
		sl.ino = ino;
		sl.has_replicas = true;
		sl.replicas = (uint32_t)replicas;
		int r = call(sock, "kdfs.set", buf, krg__kdfs__set_layout__pack(&sl, buf), &resp, &len);
		free(resp);
		return r;
	}
	Krg__Kdfs__ShowRequest rq = KRG__KDFS__SHOW_REQUEST__INIT;
	rq.ino = ino;
	if (call(sock, "kdfs.show", buf, krg__kdfs__show_request__pack(&rq, buf), &resp, &len))
		return 1;
	Krg__Kdfs__Show *s = krg__kdfs__show__unpack(NULL, len, resp);
	free(resp);
	if (!s) {
		fprintf(stderr, "krg kdfs: krgd sent an undecodable answer\n");
		return 1;
	}
	if (json)
		show_json(s);
	else
		show_text(s);
	krg__kdfs__show__free_unpacked(s, NULL);
	return 0;
}
