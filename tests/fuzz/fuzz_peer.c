/* fuzz_peer.c — libFuzzer target for what an authenticated peer sends
 * (after authentication a peer is still not trusted to send valid
 * messages): the session frame's Envelope (src/net/frame.c), then the body
 * of every message type a service registers with krg_net_handle, decoded
 * as its handler decodes it and checked as its handler checks it before
 * any work, by the services' own check functions: proc.* (exec_msg.c;
 * proc.spawn's is what stands between a peer and a fork+exec as a uid),
 * mig.* (mig_msg.c, and mig.file's hand decoder), ckpt.* (ckpt_msg.c),
 * node.load and proc.kill (table_msg.c), sched.capset's text
 * (capset_msg.c), the messages that carry another encoded
 * message (cluster.propose, cluster.nodes, fsview.req) down to the inner one, and the
 * protobuf of every other type. The input is the Envelope's bytes.
 * Build and run: scripts/fuzz.sh SECONDS peer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/frame.h"
#include "fsview/fsview_msg.h"
#include "proc/exec/exec_msg.h"
#include "proc/ckpt/ckpt_msg.h"
#include "proc/migrate/filemsg.h"
#include "proc/migrate/mig_msg.h"
#include "proc/procid.h"
#include "proc/sched/capset_msg.h"
#include "proc/table/table_msg.h"
#include "proto/api.pb-c.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "proto/migrate.pb-c.h"
#include "proto/node.pb-c.h"
#include "proto/proc.pb-c.h"

/* Every type krgd registers (grep krg_net_handle), with its body's schema. */
static const struct {
	const char *type;
	const ProtobufCMessageDescriptor *desc; /* NULL: not a protobuf */
} types[] = {
	{ "proc.spawn", &krg__proc__spawn__descriptor },
	{ "proc.data", &krg__proc__data__descriptor },
	{ "proc.exit", &krg__proc__exit__descriptor },
	{ "proc.ctl", &krg__proc__ctl__descriptor },
	{ "proc.list", &krg__node__proc_list_request__descriptor },
	{ "proc.kill", &krg__node__proc_kill__descriptor },
	{ "node.load", &krg__node__node_load__descriptor },
	{ "sched.capset", NULL },
	{ "ckpt.dump", &krg__ckptsvc__dump__descriptor },
	{ "ckpt.restart", &krg__ckptsvc__restart__descriptor },
	{ "ckpt.recv", &krg__ckptsvc__recv__descriptor },
	{ "ckpt.file", &krg__ckptsvc__file__descriptor },
	{ "mig.io", &krg__mig__io__descriptor },
	{ "mig.exit", &krg__mig__io__descriptor },
	{ "mig.where", &krg__mig__io__descriptor },
	{ "mig.go", &krg__mig__io__descriptor },
	{ "mig.sig", &krg__mig__io__descriptor },
	{ "mig.move", &krg__mig__move__descriptor },
	{ "mig.status", &krg__mig__move__descriptor },
	{ "mig.recv", &krg__mig__recv__descriptor },
	{ "mig.file", NULL },
	{ "mig.got", &krg__mig__got__descriptor },
	{ "cluster.nodes", &krg__cluster__nodes_request__descriptor },
	{ "cluster.propose", &krg__cluster__propose__descriptor },
	{ "cluster.poweroff", NULL },
	{ "raft.tunnel", &krg__cluster__raft_tunnel__descriptor },
	{ "fsview.req", &krg__fsview__forward__descriptor },
};

static void touch(const uint8_t *p, size_t n)
{
	volatile uint8_t x = 0;
	for (size_t i = 0; i < n; i++)
		x ^= p[i];
	(void)x;
}

static void body(size_t t, const uint8_t *b, size_t n)
{
	if (!strcmp(types[t].type, "sched.capset")) {
		struct capset_req q;
		uint32_t id;
		if (capset_parse(b, n, true, &q) == 0)
			krg_procid_parse(q.target, &id);
		return;
	}
	if (!strcmp(types[t].type, "fsview.req")) {
		/* krgd reads it in place (fsv_forward_parse): the request it
		 * hands on lies inside the body; the unpacked check runs below. */
		struct fsv_forward f;
		if (fsv_forward_parse(b, n, &f) && (f.req < b || f.req + f.req_len > b + n))
			abort();
	}
	if (!strcmp(types[t].type, "mig.file")) {
		struct mig_file_view v;
		if (mig_file_decode(b, n, &v) == 0) {
			if (v.len && (v.data < b || v.data + v.len > b + n))
				abort();
			touch(v.data, v.len);
		}
		return;
	}
	if (!types[t].desc)
		return;
	ProtobufCMessage *m = protobuf_c_message_unpack(types[t].desc, NULL, n, b);
	if (!m)
		return;
	const char *ty = types[t].type;
	if (!strcmp(ty, "proc.spawn"))
		exec_spawn_valid((Krg__Proc__Spawn *)m);
	else if (!strcmp(ty, "proc.data"))
		exec_data_valid((Krg__Proc__Data *)m);
	else if (!strcmp(ty, "proc.exit"))
		exec_exit_valid((Krg__Proc__Exit *)m);
	else if (!strcmp(ty, "proc.ctl"))
		exec_ctl_valid((Krg__Proc__Ctl *)m);
	else if (!strcmp(ty, "node.load"))
		table_load_valid((Krg__Node__NodeLoad *)m, 1);
	else if (!strcmp(ty, "proc.kill"))
		table_kill_valid((Krg__Node__ProcKill *)m);
	else if (!strcmp(ty, "ckpt.dump"))
		ckpt_dump_valid((Krg__Ckptsvc__Dump *)m);
	else if (!strcmp(ty, "ckpt.restart"))
		ckpt_restart_valid((Krg__Ckptsvc__Restart *)m);
	else if (!strcmp(ty, "ckpt.file")) {
		Krg__Ckptsvc__File *f = (Krg__Ckptsvc__File *)m;
		if (ckpt_file_valid(f))
			touch(f->data.data, f->data.len);
	} else if (!strcmp(ty, "mig.recv"))
		mig_recv_valid((Krg__Mig__Recv *)m);
	else if (!strcmp(ty, "mig.move") || !strcmp(ty, "mig.status"))
		mig_move_peer_valid((Krg__Mig__Move *)m);
	else if (!strncmp(ty, "mig.", 4) && types[t].desc == &krg__mig__io__descriptor) {
		Krg__Mig__Io *io = (Krg__Mig__Io *)m;
		if (mig_io_valid(io) && io->has_data)
			touch(io->data.data, io->data.len);
	} else if (!strcmp(ty, "cluster.propose")) {
		Krg__Cluster__Propose *p = (Krg__Cluster__Propose *)m;
		Krg__Cluster__Command *c = krg__cluster__command__unpack(NULL, p->command.len, p->command.data);
		if (c)
			krg__cluster__command__free_unpacked(c, NULL);
	} else if (!strcmp(ty, "cluster.nodes")) {
		Krg__Cluster__NodesRequest *r = (Krg__Cluster__NodesRequest *)m;
		Krg__Api__NodesChange *c = krg__api__nodes_change__unpack(NULL, r->change.len, r->change.data);
		if (c)
			krg__api__nodes_change__free_unpacked(c, NULL);
	} else if (!strcmp(ty, "fsview.req")) {
		uint64_t id;
		fsv_forward_valid((Krg__Fsview__Forward *)m, &id);
	} else if (!strcmp(ty, "raft.tunnel")) {
		Krg__Cluster__RaftTunnel *r = (Krg__Cluster__RaftTunnel *)m;
		if (r->has_data)
			touch(r->data.data, r->data.len);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A heap copy, so that ASan sees reads past the end. */
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	struct krg_env e;
	if (krg_env_decode(copy, size, &e) == 0) {
		if (e.body_len && (e.body < copy || e.body + e.body_len > copy + size))
			abort();
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			if (e.type_len == strlen(types[t].type) && !memcmp(e.type, types[t].type, e.type_len))
				body(t, e.body, e.body_len);
	}
	free(copy);
	return 0;
}
