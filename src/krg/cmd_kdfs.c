/* cmd_kdfs.c — krg kdfs show PATH [--json]: a kdfs file's layout
 * (copies, striping), where each of its chunks lives and whether those
 * nodes are up; krg kdfs set PATH [--replicas N] [--stripe-count K]
 * [--stripe-size S]: the copies new chunks of the file get and its
 * striping, or those of files made in the directory from now on
 * (docs/kdfs.md, "Striping"). The path is resolved
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
		"       krg kdfs set PATH [--replicas N] [--stripe-count K] [--stripe-size S] [--socket PATH]\n"
		"\n"
		"show   the file's size, the copies its new chunks get, its striping (a\n"
		"       directory: what its new files get), and for each chunk its group,\n"
		"       the first file offset it holds, its version and the nodes holding it\n"
		"       (\"*\": the node is down)\n"
		"set    of the file, or of files and directories made in the directory from\n"
		"       now on (owner or root):\n"
		"       --replicas N      copies of each new chunk (1 to the number of nodes)\n"
		"       --stripe-count K  chunk groups the data is spread over, round-robin,\n"
		"                         each on other nodes (1 to the number of nodes; 1: not\n"
		"                         striped); a file's only while it holds no data\n"
		"       --stripe-size S   bytes per stripe unit, a power of two from 64K to 64M\n"
		"                         (suffix K or M)\n");
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
	krg_json_uint(&j, "stripe_count", s->has_stripe_count ? s->stripe_count : 1);
	krg_json_uint(&j, "stripe_size", s->has_stripe_size ? s->stripe_size : s->chunk_size);
	krg_json_bool(&j, "directory", s->directory);
	krg_json_begin_array(&j, "chunks");
	for (size_t i = 0; i < s->n_chunks; i++) {
		const Krg__Kdfs__ChunkHealth *c = s->chunks[i];
		size_t up = 0;
		krg_json_begin_object(&j, NULL);
		krg_json_uint(&j, "index", c->index);
		krg_json_uint(&j, "group", c->group);
		krg_json_uint(&j, "first", c->first);
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
	char stripes[96] = "not striped";
	if (s->has_stripe_count && s->stripe_count > 1)
		snprintf(stripes, sizeof(stripes), "striped over %u groups in units of %" PRIu64 " KiB", s->stripe_count,
			 s->stripe_size >> 10);
	printf("inode %" PRIu64 ", size %" PRIu64 ", %u copies, %s%s, chunks of %" PRIu64 " MiB\n", s->ino, s->size,
	       s->replicas, s->directory ? "new files " : "", stripes, s->chunk_size >> 20);
	printf("%-6s %-6s %-14s %-8s %-18s %s\n", "chunk", "group", "first", "version", "health", "nodes");
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
		printf("%-6u %-6u %-14" PRIu64 " %-8" PRIu64 " %-18s %s\n", c->index, c->group, c->first, c->version,
		       up == 0 ? "lost" : up < s->replicas ? "under-replicated" : "ok", nodes);
	}
}

/* --stripe-size: bytes, or with a K or M suffix; a power of two from
 * 64 KiB to 64 MiB (krgd checks again). */
static int parse_size(const char *v, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || v[0] == '-' || x > (64ull << 20))
		return -1;
	if (*end == 'K' || *end == 'k')
		x <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		x <<= 20, end++;
	if (*end || x < (64ull << 10) || x > (64ull << 20) || (x & (x - 1)))
		return -1;
	*out = x;
	return 0;
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
	long replicas = -1, count = -1;
	unsigned long long size = 0;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "stripe-count", required_argument, NULL, 'c' },
		{ "stripe-size", required_argument, NULL, 's' },
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
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || end == optarg || count < 1 || count > 64) {
				fprintf(stderr, "krg kdfs: --stripe-count wants a number from 1 to the number of nodes\n");
				return KRG_EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_size(optarg, &size) < 0) {
				fprintf(stderr, "krg kdfs: --stripe-size wants a power of two from 64K to 64M (e.g. 1M)\n");
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
	bool layout = replicas >= 0 || count >= 0 || size;
	if ((!show && !set) || !path) {
		fprintf(stderr, "krg kdfs: want 'show PATH' or 'set PATH OPTIONS' (see krg kdfs --help)\n");
		return KRG_EXIT_USAGE;
	}
	if (set && !layout) {
		fprintf(stderr, "krg kdfs: set wants --replicas, --stripe-count or --stripe-size\n");
		return KRG_EXIT_USAGE;
	}
	if (show && layout) {
		fprintf(stderr, "krg kdfs: show takes no --replicas, --stripe-count or --stripe-size\n");
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
		sl.has_replicas = replicas >= 0;
		sl.replicas = (uint32_t)(replicas >= 0 ? replicas : 0);
		sl.has_stripe_count = count >= 0;
		sl.stripe_count = (uint32_t)(count >= 0 ? count : 0);
		sl.has_stripe_size = size != 0;
		sl.stripe_size = (uint32_t)size;
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
