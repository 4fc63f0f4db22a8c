/* exec-int.h — internals of the remote execution service (exec.h).
 *
 * Two roles per krgd: the *front* serves a local `krg run` (API stream)
 * and relays to the target node; the *back* runs the process on the
 * target node. When the target is the local node both roles live in the
 * same krgd and talk through a loopback queue with the same messages. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "net/net.h"
#include "proc/exec.h"
#include "proto/proc.pb-c.h"

#define EXEC_WINDOW (1u << 20)   /* credit window per direction per stream */
#define EXEC_CHUNK (256u << 10)  /* largest data chunk (read from a pipe, in a frame) */
#define EXEC_PIPE_SZ (1 << 20)   /* F_SETPIPE_SZ of the process's stdio pipes */
/* Credits are returned in batches of at least this much: a sender only
 * blocks with a whole window unacknowledged, so a held-back batch smaller
 * than the window can never stall it. */
#define EXEC_CREDIT_BATCH (EXEC_WINDOW / 4)
#define EXEC_MAX_ARGS 65536
#define EXEC_MAX_GROUPS 65536

struct exec_front;
struct exec_back;

struct krg_exec {
	struct krg_services *s;
	uint32_t self;
	bool running;
	bool stopping;
	uint64_t next_stream;
	struct exec_front *fronts;
	struct exec_back *backs;
	uv_signal_t sigchld;
	uv_timer_t watch;     /* polls local clients' run state (SIGSTOP) */
	int open_handles;
};

/* Transport: to any node, this one included (net delivers to itself). */
int x_send(struct krg_exec *e, uint32_t to, const char *type, const void *body, size_t len);
/* body is malloc'd and owned by the call (freed when written or failed). */
int x_send_bulk(struct krg_exec *e, uint32_t to, const char *type, uint8_t *body, size_t len);
int x_request(struct krg_exec *e, uint32_t to, const char *type, const void *body, size_t len,
	      unsigned timeout_ms, krg_net_reply_cb cb, void *data);
int x_reply(struct krg_exec *e, uint32_t to, uint64_t req_id, const void *body, size_t len);
/* Pack a protobuf message into a malloc'd buffer. */
uint8_t *x_pack(const ProtobufCMessage *m, size_t *len);
int x_send_ctl(struct krg_exec *e, uint32_t to, const Krg__Proc__Ctl *c);

/* Back (exec_back.c). */
void back_on_spawn(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void back_on_data(struct krg_exec *e, uint32_t from, const Krg__Proc__Data *d);
void back_on_ctl(struct krg_exec *e, uint32_t from, const Krg__Proc__Ctl *c);
void back_reap(struct krg_exec *e);
void back_peer_lost(struct krg_exec *e, uint32_t node);
void back_stop_all(struct krg_exec *e);

/* Front (exec_front.c). */
void front_register(struct krg_exec *e);
void front_on_data(struct krg_exec *e, uint32_t from, const Krg__Proc__Data *d);
void front_on_exit(struct krg_exec *e, uint32_t from, const Krg__Proc__Exit *x);
void front_on_ctl(struct krg_exec *e, uint32_t from, const Krg__Proc__Ctl *c);
void front_node_lost(struct krg_exec *e, uint32_t node, const char *why);
void front_stop_all(struct krg_exec *e);
void front_watch(struct krg_exec *e);

/* Helpers (exec_util.c), pure: unit-tested. */
/* State letter of a /proc/<pid>/stat text ('R', 'S', 'T', ...), 0 if malformed. */
char exec_parse_stat_state(const char *stat);
/* Candidate paths for argv0 under PATH (execvp's search; empty PATH
 * element = current directory). NULL-terminated malloc'd array of
 * malloc'd strings, NULL on ENOMEM. */
char **exec_path_candidates(const char *argv0, const char *path);
void exec_strv_free(char **v);
/* Value of NAME in a "K=V" list, or NULL. */
const char *exec_env_get(char *const *env, size_t n, const char *name);
/* Shell-style exit status mapping: 0..255 for code, 128+sig for signals. */
int exec_shell_status(bool signaled, int code_or_sig);

/* krg restart --foreground (exec_restart.c), in the exec child on the
 * stream's stdio: restore the image APPID/VERSION of this node's store for
 * `caller`, on terminal `tty` (NULL: pipes), close errfd once it runs,
 * send the IPC listener of an application that had one on isock (-1:
 * none wanted; closed),
 * then stand in for it and exit as it does. Returns only on failure:
 * -errno and one line in msg. */
int exec_restart_child(uint32_t appid, uint32_t version, uid_t caller, const char *tty, int errfd, int isock, char *msg,
		       size_t len);
