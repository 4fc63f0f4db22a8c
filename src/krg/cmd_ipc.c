/* krg ipcs / ipcmk / ipcrm — util-linux's commands for the cluster's System
 * V IPC space (docs/ipc.md): the same objects from every node. krgd does
 * the calls as the caller (SO_PEERCRED), with Linux's permission checks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/client.h"
#include "ipc.pb-c.h"
#include "ipc/ipc_engine.h"
#include "krg/cli.h"
#include "lib/json.h"
#include "lib/cmdtable.h"

#define IPC_CREAT_ 01000
#define IPC_EXCL_ 02000
#define IPC_RMID_ 0

/* One call through krgd; the syscall's return value, or -errno. */
static int64_t ipc_call(const char *sock, const Krg__Ipc__Req *req)
{
	size_t len = krg__ipc__req__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1), *resp = NULL;
	size_t rlen = 0;
	char err[512];
	if (!buf)
		return -ENOMEM;
	krg__ipc__req__pack(req, buf);
	int r = krg_api_call(krg_api_socket_path(sock), "ipc.call", buf, len, 15000, &resp, &rlen, err, sizeof(err));
	free(buf);
	if (r < 0) {
		fprintf(stderr, "krg: %s\n", err);
		return r;
	}
	Krg__Ipc__Reply *rep = krg__ipc__reply__unpack(NULL, rlen, resp);
	free(resp);
	if (!rep) {
		fprintf(stderr, "krg: krgd sent an undecodable answer\n");
		return -EIO;
	}
	int64_t ret = rep->ret;
	krg__ipc__reply__free_unpacked(rep, NULL);
	return ret;
}

static int parse_num(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || *end || !*s || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- ipcs ------------------------------------------------------------------ */

static void ipcs_usage(FILE *f)
{
	fprintf(f, "Usage: krg ipcs [-q | -s] [--json] [--socket PATH]\n"
		   "\n"
		   "The cluster's message queues (-q) and semaphore arrays (-s), both by default,\n"
		   "as ipcs(1) shows them, plus the node serving each. You see what you may read;\n"
		   "root sees everything.\n");
}

int cmd_ipcs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queues", no_argument, NULL, 'q' }, { "semaphores", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },   { "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },   { 0 },
	};
	bool q = false, sem = false, json = false;
	const char *sock = NULL;
	int opt;
	while ((opt = krg_getopt("krg ipcs", argc, argv, "qsh", opts)) != -1) {
		switch (opt) {
		case 'q': q = true; break;
		case 's': sem = true; break;
		case 'j': json = true; break;
		case 'S': sock = optarg; break;
		default:
			return krg_getopt_other(opt, ipcs_usage, KRG_EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "krg ipcs: unexpected argument '%s'\n", argv[optind]);
		return KRG_EXIT_USAGE;
	}
	if (!q && !sem)
		q = sem = true;
	uint8_t *resp = NULL;
	size_t len = 0;
	char err[512];
	int r = krg_api_call(krg_api_socket_path(sock), "ipc.status", NULL, 0, 15000, &resp, &len, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "krg ipcs: %s\n", err);
		return 1;
	}
	Krg__Ipc__Status *st = krg__ipc__status__unpack(NULL, len, resp);
	free(resp);
	if (!st) {
		fprintf(stderr, "krg ipcs: krgd sent an undecodable answer\n");
		return 1;
	}
	struct krg_json j;
	if (json) {
		krg_json_init(&j, stdout);
		krg_json_begin_array(&j, NULL);
	}
	for (int kind = KRG_IPC_MSG; kind <= KRG_IPC_SEM; kind++) {
		if ((kind == KRG_IPC_MSG && !q) || (kind == KRG_IPC_SEM && !sem))
			continue;
		if (!json)
			printf(kind == KRG_IPC_MSG ? "\n------ Message Queues --------\n"
						     "key        msqid      owner      perms      used-bytes   messages    home\n"
						   : "\n------ Semaphore Arrays --------\n"
						     "key        semid      owner      perms      nsems     home\n");
		for (size_t i = 0; i < st->n_objs; i++) {
			const Krg__Ipc__ObjInfo *o = st->objs[i];
			if ((int)o->kind != kind || !o->perm)
				continue;
			if (json) {
				krg_json_begin_object(&j, NULL);
				krg_json_string(&j, "kind", kind == KRG_IPC_MSG ? "msg" : "sem");
				krg_json_int(&j, "key", o->perm->key);
				krg_json_int(&j, "id", o->id);
				krg_json_uint(&j, "uid", o->perm->uid);
				krg_json_uint(&j, "mode", o->perm->mode);
				krg_json_uint(&j, "home", o->home);
				if (kind == KRG_IPC_MSG) {
					krg_json_uint(&j, "bytes", o->cbytes);
					krg_json_uint(&j, "messages", o->qnum);
				} else {
					krg_json_uint(&j, "nsems", o->nsems);
				}
				krg_json_end_object(&j);
			} else if (kind == KRG_IPC_MSG) {
				printf("0x%08x %-10d %-10u %-10o %-12llu %-11llu %u\n", (uint32_t)o->perm->key, o->id,
				       o->perm->uid, o->perm->mode, (unsigned long long)o->cbytes,
				       (unsigned long long)o->qnum, o->home);
			} else {
				printf("0x%08x %-10d %-10u %-10o %-9llu %u\n", (uint32_t)o->perm->key, o->id, o->perm->uid,
				       o->perm->mode, (unsigned long long)o->nsems, o->home);
			}
		}
	}
	if (json) {
		krg_json_end_array(&j);
		krg_json_finish(&j);
	}
	krg__ipc__status__free_unpacked(st, NULL);
	return 0;
}

/* ---- ipcmk ------------------------------------------------------------------ */

static void ipcmk_usage(FILE *f)
{
	fprintf(f, "Usage: krg ipcmk (-Q | -S NSEMS) [-k KEY] [-p MODE] [--socket PATH]\n"
		   "\n"
		   "Create a message queue (-Q) or a semaphore array of NSEMS (-S) in the\n"
		   "cluster's IPC space, with KEY (default IPC_PRIVATE; an existing object with\n"
		   "that key is returned) and permissions MODE (octal, default 0644). Prints its id.\n");
}

int cmd_ipcmk(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue", no_argument, NULL, 'Q' },	  { "semaphore", required_argument, NULL, 'S' },
		{ "key", required_argument, NULL, 'k' },  { "mode", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 'O' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long long nsems = 0, key = 0, mode = 0644;
	bool queue = false;
	const char *sock = NULL;
	int opt;
	while ((opt = krg_getopt("krg ipcmk", argc, argv, "QS:k:p:h", opts)) != -1) {
		switch (opt) {
		case 'Q': queue = true; break;
		case 'S':
			if (parse_num(optarg, 1, 65535, &nsems) < 0) {
				fprintf(stderr, "krg ipcmk: -S needs a number of semaphores, got '%s'\n", optarg);
				return KRG_EXIT_USAGE;
			}
			break;
		case 'k':
			if (parse_num(optarg, INT32_MIN, UINT32_MAX, &key) < 0) {
				fprintf(stderr, "krg ipcmk: '%s' is not a key\n", optarg);
				return KRG_EXIT_USAGE;
			}
			break;
		case 'p': {
			char *end;
			mode = strtoll(optarg, &end, 8);
			if (*end || !*optarg || mode < 0 || mode > 0777) {
				fprintf(stderr, "krg ipcmk: '%s' is not an octal mode\n", optarg);
				return KRG_EXIT_USAGE;
			}
			break;
		}
		case 'O': sock = optarg; break;
		default:
			return krg_getopt_other(opt, ipcmk_usage, KRG_EXIT_USAGE);
		}
	}
	if (queue == (nsems > 0) || optind < argc) {
		ipcmk_usage(stderr);
		return KRG_EXIT_USAGE;
	}
	Krg__Ipc__Req req = KRG__IPC__REQ__INIT;
	req.op = queue ? KRG_IPC_OP_MSGGET : KRG_IPC_OP_SEMGET;
	req.id = KRG_IPC_ID_ANY;
	req.key = (int32_t)(uint32_t)key;
	req.nsems = (int32_t)nsems;
	req.flags = IPC_CREAT_ | (int32_t)mode;
	int64_t r = ipc_call(sock, &req);
	if (r < 0) {
		fprintf(stderr, "krg ipcmk: %s\n", strerror((int)-r));
		return 1;
	}
	printf("%s id: %lld\n", queue ? "Message queue" : "Semaphore", (long long)r);
	return 0;
}

/* ---- ipcrm ------------------------------------------------------------------ */

static void ipcrm_usage(FILE *f)
{
	fprintf(f, "Usage: krg ipcrm [-q MSQID] [-s SEMID] [-Q KEY] [-S KEY] [--socket PATH]\n"
		   "\n"
		   "Remove message queues and semaphore arrays of the cluster by id or by key,\n"
		   "wherever they live, as msgctl/semctl(IPC_RMID) would for you: the creator,\n"
		   "the owner or root. Exit status 0 if every one was removed, 1 otherwise.\n");
}

static int rm_one(const char *sock, bool sem, bool by_key, const char *arg)
{
	long long v;
	if (parse_num(arg, by_key ? INT32_MIN : 0, by_key ? UINT32_MAX : INT32_MAX, &v) < 0 || (by_key && v == 0)) {
		fprintf(stderr, "krg ipcrm: '%s' is not a valid %s\n", arg, by_key ? "key" : "id");
		return 1;
	}
	int64_t id = v;
	if (by_key) {
		Krg__Ipc__Req g = KRG__IPC__REQ__INIT;
		g.op = sem ? KRG_IPC_OP_SEMGET : KRG_IPC_OP_MSGGET;
		g.key = (int32_t)(uint32_t)v;
		g.id = KRG_IPC_ID_ANY;
		id = ipc_call(sock, &g);
		if (id < 0) {
			fprintf(stderr, "krg ipcrm: key %s: %s\n", arg, strerror((int)-id));
			return 1;
		}
	}
	Krg__Ipc__Req r = KRG__IPC__REQ__INIT;
	r.op = sem ? KRG_IPC_OP_SEMCTL : KRG_IPC_OP_MSGCTL;
	r.id = (int32_t)id;
	r.cmd = IPC_RMID_;
	int64_t ret = ipc_call(sock, &r);
	if (ret < 0) {
		fprintf(stderr, "krg ipcrm: %s %s: %s\n", by_key ? "key" : "id", arg, strerror((int)-ret));
		return 1;
	}
	return 0;
}

int cmd_ipcrm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue-id", required_argument, NULL, 'q' }, { "semaphore-id", required_argument, NULL, 's' },
		{ "queue-key", required_argument, NULL, 'Q' }, { "semaphore-key", required_argument, NULL, 'S' },
		{ "socket", required_argument, NULL, 'O' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *sock = NULL;
	int opt, fails = 0, n = 0;
	/* Collect first: --socket may come last. */
	struct { int kind; const char *arg; } todo[64];
	while ((opt = krg_getopt("krg ipcrm", argc, argv, "q:s:Q:S:h", opts)) != -1) {
		switch (opt) {
		case 'q': case 's': case 'Q': case 'S':
			if (n == 64) {
				fprintf(stderr, "krg ipcrm: at most 64 objects at once\n");
				return KRG_EXIT_USAGE;
			}
			todo[n].kind = opt;
			todo[n++].arg = optarg;
			break;
		case 'O': sock = optarg; break;
		default:
			return krg_getopt_other(opt, ipcrm_usage, KRG_EXIT_USAGE);
		}
	}
	if (!n || optind < argc) {
		ipcrm_usage(stderr);
		return KRG_EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		int k = todo[i].kind;
		fails += rm_one(sock, k == 's' || k == 'S', k == 'Q' || k == 'S', todo[i].arg);
	}
	return fails ? 1 : 0;
}
