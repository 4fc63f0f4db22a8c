/* fuzz_api.c — libFuzzer target for what a local user sends to krgd.sock:
 * the real API server (src/api/server.c: its framing, Request decoding,
 * command dispatch, root-only refusals, proc.run's turn into a stream and
 * the stream frames after it) over a real unix socket, with every command
 * krgd registers answered by a stand-in that decodes and checks its body
 * as the service does before any work: the protobuf bodies, the text
 * bodies of sched.ctl and sched.capset (process ids by krg_procid_parse),
 * proc.run's request as the proc.spawn the target node would check
 * (exec_spawn_valid), and the stream's Io frames with the range checks of
 * exec_front.c. The input is the byte stream the client writes.
 * Build and run: scripts/fuzz.sh SECONDS api. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>
#include "api/server.h"
#include "lib/log.h"
#include "proc/exec/exec_msg.h"
#include "proc/procid.h"
#include "proto/api.pb-c.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/migrate.pb-c.h"
#include "proto/node.pb-c.h"
#include "proto/proc.pb-c.h"

static uv_loop_t loop;
/* The stream the last Io frame paused (as exec_front.c does when stdin
 * runs ahead of its window); the test resumes it, as a credit would. */
static struct krg_api_stream *paused;
static struct krg_api_server *srv;
static char dir[] = "/tmp/krg-fuzz-api.XXXXXX", path[64];

/* Unknown fields anywhere in m: in m itself or in a message inside it
 * (a RunRequest's Rlimit can carry one as well as the RunRequest). */
static bool has_unknown(const ProtobufCMessage *m)
{
	if (m->n_unknown_fields)
		return true;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *at = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
			for (size_t k = 0; k < n; k++)
				if (v[k] && has_unknown(v[k]))
					return true;
		} else {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
			if (sub && has_unknown(sub))
				return true;
		}
	}
	return false;
}

/* A message accepted packs back to as many bytes as it says; they unpack
 * again unless it kept unknown fields: protobuf-c keeps those as read and
 * writes them back, also ones it could not read again (field number 0,
 * tests/fuzz/corpus/api/unknown-field-0; inside a nested message too:
 * nested-unknown-field). krg only re-packs a user's
 * message in proc.run (the RunRequest inside proc.spawn): the target node
 * then refuses it as malformed, which is the right answer. */
static void roundtrip(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n ? n : 1);
	if (protobuf_c_message_pack(m, b) != n)
		abort();
	ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
	if (!again && !has_unknown(m))
		abort();
	if (again)
		protobuf_c_message_free_unpacked(again, NULL);
	free(b);
}

static void on_proto(struct krg_api_call *call, void *data)
{
	const ProtobufCMessageDescriptor *d = data;
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, call->len, call->body);
	if (!m) {
		krg_api_reply(call, -EINVAL, "malformed request", NULL, 0);
		return;
	}
	roundtrip(m);
	protobuf_c_message_free_unpacked(m, NULL);
	krg_api_reply(call, 0, NULL, "ok", 2);
}

static void on_nobody(struct krg_api_call *call, void *data)
{
	krg_api_reply(call, 0, NULL, NULL, 0);
}

/* sched.ctl and sched.capset: text, copied with the services' limits. */
static void on_text(struct krg_api_call *call, void *data)
{
	char body[1024], target[32], op[8], capn[40] = "";
	size_t max = (size_t)(uintptr_t)data;
	if (call->len == 0 || call->len >= max) {
		krg_api_reply(call, -EINVAL, "malformed request", NULL, 0);
		return;
	}
	memcpy(body, call->body, call->len);
	body[call->len] = 0;
	uint32_t id;
	if (sscanf(body, "%31s %7s %39s", target, op, capn) >= 2 && strcmp(target, "self"))
		krg_procid_parse(target, &id);
	krg_api_reply(call, 0, NULL, NULL, 0);
}

static void stream_msg(struct krg_api_stream *s, const uint8_t *msg, size_t len, void *data)
{
	Krg__Proc__Io *io = krg__proc__io__unpack(NULL, len, msg);
	if (!io) {
		if (paused == s)
			paused = NULL;
		krg_api_stream_end(s);
		return;
	}
	if (io->has_data && io->data.len) {
		volatile uint8_t x = 0;
		for (size_t i = 0; i < io->data.len; i++)
			x ^= io->data.data[i];
	}
	if (io->has_signal && io->signal > 0 && io->signal < 65)
		krg_api_stream_send(s, "sig", 3, NULL, NULL);
	if (io->has_rows && io->has_cols && io->rows < 65536 && io->cols < 65536)
		krg_api_stream_pause(s, (paused = io->rows & 1 ? s : NULL) != NULL);
	if (io->has_eof && io->eof) {
		if (paused == s)
			paused = NULL;
		krg_api_stream_end(s);
	}
	krg__proc__io__free_unpacked(io, NULL);
}

static void stream_close(struct krg_api_stream *s, void *data)
{
	if (paused == s)
		paused = NULL;
}

static void on_run(struct krg_api_call *call, void *data)
{
	Krg__Proc__RunRequest *r = krg__proc__run_request__unpack(NULL, call->len, call->body);
	if (!r || r->n_argv == 0 || !r->argv[0][0]) {
		krg_api_reply(call, -EINVAL, "malformed run request", NULL, 0);
		goto out;
	}
	Krg__Proc__Spawn s = KRG__PROC__SPAWN__INIT;
	uint32_t groups[2] = { call->gid, 0 };
	s.run = r;
	s.uid = call->uid;
	s.gid = call->gid;
	s.n_groups = 2;
	s.groups = groups;
	roundtrip(&s.base);
	if (!exec_spawn_valid(&s)) {
		krg_api_reply(call, -EINVAL, "malformed run request", NULL, 0);
		goto out;
	}
	krg_api_stream_start(call, "started", 7, stream_msg, stream_close, NULL);
out:
	if (r)
		krg__proc__run_request__free_unpacked(r, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/krgd.sock", dir);
	krg_log_set_level(LOG_LVL_ERROR);
	uv_loop_init(&loop);
	if (krg_api_server_new(&loop, path, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	/* Every command krgd registers (grep krg_api_register), root-only as there. */
	static const struct {
		const char *name;
		bool root_only;
		krg_api_handler_cb cb;
		const void *data;
	} cmds[] = {
		{ "proc.run", false, on_run, NULL },
		{ "proc.list", false, on_proto, &krg__node__proc_list_request__descriptor },
		{ "proc.kill", false, on_proto, &krg__node__proc_kill__descriptor },
		{ "node.stats", false, on_nobody, NULL },
		{ "ckpt.dump", false, on_proto, &krg__ckptsvc__dump__descriptor },
		{ "ckpt.restart", false, on_proto, &krg__ckptsvc__restart__descriptor },
		{ "mig.move", false, on_proto, &krg__mig__move__descriptor },
		{ "mig.status", false, on_proto, &krg__mig__move__descriptor },
		{ "sched.status", false, on_nobody, NULL },
		{ "sched.ctl", true, on_text, (void *)(uintptr_t)1024 },
		{ "sched.capset", false, on_text, (void *)(uintptr_t)256 },
		{ "cluster.status", false, on_nobody, NULL },
		{ "nodes.add", true, on_proto, &krg__api__nodes_change__descriptor },
		{ "nodes.del", true, on_proto, &krg__api__nodes_change__descriptor },
		{ "cluster.poweroff", true, on_nobody, NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (krg_api_register(srv, cmds[i].name, cmds[i].root_only, cmds[i].cb, (void *)cmds[i].data) < 0)
			abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	int big = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	size_t off = 0;
	bool eof = false, shut = false;
	char buf[65536];
	/* Write what the socket takes, let the server run, read its answers,
	 * until it closed the connection after our end of input. */
	for (int i = 0; !eof && i < 100000; i++) {
		if (off < size) {
			ssize_t n = write(fd, data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = size; /* the server closed on us */
		}
		if (off == size && !shut)
			shut = shutdown(fd, SHUT_WR) == 0 || true;
		uv_run(&loop, UV_RUN_NOWAIT);
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			eof = true;
		} else if (shut) {
			struct krg_api_stream *p = paused;
			if (p) {
				paused = NULL;
				krg_api_stream_pause(p, false);
			}
			uv_run(&loop, UV_RUN_ONCE);
		}
	}
	if (!eof)
		abort(); /* the server kept a connection whose client is gone */
	close(fd);
	/* Let the server's close callbacks free the connection. */
	for (int i = 0; i < 4; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
