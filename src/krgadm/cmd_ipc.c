/* cmd_ipc.c — krgadm ipc status [--json]: the cluster's System V message
 * queues and semaphore sets, with the node serving each (its home) and the
 * nodes whose processes use it (docs/ipc.md). A user sees the objects they
 * may read; root sees all (krgd checks, with the caller's SO_PEERCRED). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ipc.pb-c.h"
#include "ipc/ipc_engine.h"
#include "krgadm/krgadm.h"
#include "lib/json.h"
#include "lib/nodelist.h"

static void ipc_usage(FILE *f)
{
	fprintf(f,
		"Usage: krgadm ipc status [--json] [--socket PATH]\n"
		"\n"
		"status   every System V message queue and semaphore set of the cluster\n"
		"         that you may read (root: all): kind, key, id, owner, mode, the\n"
		"         node serving it (home) and the nodes whose processes used it\n");
}

static int cmp_obj(const void *a, const void *b)
{
	const Krg__Ipc__ObjInfo *x = *(Krg__Ipc__ObjInfo *const *)a, *y = *(Krg__Ipc__ObjInfo *const *)b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void users_text(uint64_t users, char *buf, size_t len)
{
	struct krg_nodeset s = { 0 };
	s.bits[0] = users;
	krg_nodelist_format(&s, buf, len);
	if (!*buf)
		snprintf(buf, len, "-");
}

static void print_json(const Krg__Ipc__Status *st)
{
	struct krg_json j;
	krg_json_init(&j, stdout);
	krg_json_begin_object(&j, NULL);
	krg_json_begin_array(&j, "objects");
	for (size_t i = 0; i < st->n_objs; i++) {
		const Krg__Ipc__ObjInfo *o = st->objs[i];
		krg_json_begin_object(&j, NULL);
		krg_json_string(&j, "kind", o->kind == KRG_IPC_MSG ? "msg" : o->kind == KRG_IPC_SEM ? "sem" : "shm");
		char key[16];
		snprintf(key, sizeof(key), "0x%08x", (uint32_t)o->perm->key);
		krg_json_string(&j, "key", key);
		krg_json_int(&j, "id", o->id);
		krg_json_uint(&j, "home", o->home);
		krg_json_begin_array(&j, "nodes");
		for (unsigned n = 0; n < 64; n++)
			if (o->users >> n & 1)
				krg_json_uint(&j, NULL, n);
		krg_json_end_array(&j);
		krg_json_uint(&j, "uid", o->perm->uid);
		krg_json_uint(&j, "gid", o->perm->gid);
		krg_json_uint(&j, "mode", o->perm->mode);
		if (o->kind == KRG_IPC_MSG) {
			krg_json_uint(&j, "messages", o->qnum);
			krg_json_uint(&j, "bytes", o->cbytes);
			krg_json_uint(&j, "qbytes", o->qbytes);
		} else {
			krg_json_uint(&j, "nsems", o->nsems);
		}
		krg_json_end_object(&j);
	}
	krg_json_end_array(&j);
	krg_json_end_object(&j);
	krg_json_finish(&j);
}

static void print_text(const Krg__Ipc__Status *st)
{
	printf("%-4s %-10s %-10s %-6s %-6s %-5s %-5s %-12s %s\n", "kind", "key", "id", "uid", "gid", "mode", "home",
	       "size", "nodes");
	for (size_t i = 0; i < st->n_objs; i++) {
		const Krg__Ipc__ObjInfo *o = st->objs[i];
		char size[32], users[128];
		if (o->kind == KRG_IPC_MSG)
			snprintf(size, sizeof(size), "%llu msg", (unsigned long long)o->qnum);
		else
			snprintf(size, sizeof(size), "%llu sem", (unsigned long long)o->nsems);
		users_text(o->users, users, sizeof(users));
		printf("%-4s 0x%08x %-10d %-6u %-6u %04o  %-5u %-12s %s\n", o->kind == KRG_IPC_MSG ? "msg" : o->kind == KRG_IPC_SEM ? "sem" : "shm",
		       (uint32_t)o->perm->key, o->id, o->perm->uid, o->perm->gid, o->perm->mode, o->home, size, users);
	}
}

int cmd_ipc(int argc, char **argv)
{
	struct krgadm_opts o;
	Krg__Ipc__Status *st;
	int r = krgadm_status_fetch("ipc", argc, argv, ipc_usage, "ipc.status", &krg__ipc__status__descriptor, &o,
				    (ProtobufCMessage **)&st);
	if (r >= 0)
		return r;
	bool json = o.json;
	for (size_t i = 0; i < st->n_objs; i++)
		if (!st->objs[i]->perm) {
			fprintf(stderr, "krgadm: ipc status: krgd sent an object without permissions\n");
			krg__ipc__status__free_unpacked(st, NULL);
			return KRGADM_FAIL;
		}
	qsort(st->objs, st->n_objs, sizeof(*st->objs), cmp_obj);
	if (json)
		print_json(st);
	else
		print_text(st);
	krg__ipc__status__free_unpacked(st, NULL);
	return 0;
}
