/* server.h — the local API of krgd: a unix socket on which krg and krgadm
 * send one Request and get one Response (src/proto/api.proto), framed as a
 * 4-byte big-endian length + message. The caller is identified by what the
 * kernel vouches for when it connects (SO_PEERCRED, SO_PEERGROUPS,
 * SO_PEERPIDFD), never by anything it says nor by a pid read later.
 * Services register commands by name.
 *
 * Every local user may connect, so every user is bounded (docs/security.md):
 * connections and buffered request bytes per uid, an idle deadline for
 * connections that neither complete a request nor wait for one, and a
 * reserve of descriptors only root's connections may use. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define KRG_API_VERSION 1
#define KRG_API_MAX_FRAME (4u << 20)
/* Supplementary groups kept per caller (NGROUPS_MAX is 65536; a caller
 * with more than this is refused rather than silently truncated). */
#define KRG_API_MAX_GROUPS 1024

struct krg_api_server;

/* Per-user bounds on the socket. Root (uid 0) is never limited by them. */
struct krg_api_limits {
	unsigned max_conns_per_user;  /* open connections of one non-root uid */
	size_t max_bytes_per_user;    /* request bytes buffered for one uid */
	unsigned idle_ms;             /* close a connection with no request completed
				       * and none pending for this long (streams exempt) */
	unsigned reserve_fds;         /* descriptors kept for root and krgd itself */
};
#define KRG_API_LIMITS_DEFAULT { .max_conns_per_user = 2048, .max_bytes_per_user = 64u << 20, \
				 .idle_ms = 30000, .reserve_fds = 512 }

/* One call in progress. Valid until krg_api_reply() on it. */
struct krg_api_call {
	uid_t uid;            /* from SO_PEERCRED, at connect time */
	gid_t gid;
	pid_t pid;            /* the connecting process; trust it only while
			       * krg_api_call_same_process() says so */
	const gid_t *groups;  /* SO_PEERGROUPS at connect time; borrowed */
	size_t n_groups;
	int pidfd;            /* of the connecting process (SO_PEERPIDFD), -1 if
			       * the kernel gave none; borrowed, valid until reply */
	const char *command;  /* borrowed, valid until reply */
	const uint8_t *body;  /* borrowed, valid until reply */
	size_t len;
};

typedef void (*krg_api_handler_cb)(struct krg_api_call *call, void *data);

/* Bind the socket at path (its directory is created 0755). A live socket
 * there means another daemon: -EADDRINUSE. A stale one is replaced. */
int krg_api_server_new(uv_loop_t *loop, const char *path, struct krg_api_server **out, char *err,
		       size_t errlen);
void krg_api_server_close(struct krg_api_server *srv);
/* Replace the per-user bounds (krgd.conf's api_* keys). */
void krg_api_server_set_limits(struct krg_api_server *srv, const struct krg_api_limits *lim);
/* Is the process that connected still alive, so that call->pid still names
 * it (not a process that got its pid since)? Checked through its pidfd;
 * false when there is none. Read /proc/<pid> first, then ask this. */
bool krg_api_call_same_process(const struct krg_api_call *call);
/* A duplicate of the caller's pidfd for the caller to keep (e.g. for a
 * stream that outlives the call), or a negative errno. */
int krg_api_call_dup_pidfd(const struct krg_api_call *call);
/* Whether the process behind pidfd is still running (not exited, not a
 * zombie). false for pidfd < 0. */
bool krg_pidfd_alive(int pidfd);
/* root_only: callers with uid != 0 get -EPERM without reaching cb. */
int krg_api_register(struct krg_api_server *srv, const char *command, bool root_only, krg_api_handler_cb cb,
		     void *data);
/* Whether command is registered (krgd's check of its service table). */
bool krg_api_registered(const struct krg_api_server *srv, const char *command);
/* Send the response and release the call; may be called later, from
 * another callback (asynchronous handlers). error is one line or NULL. */
void krg_api_reply(struct krg_api_call *call, int status, const char *error, const void *body, size_t len);

/* Streams. A command may turn its connection into a bidirectional stream
 * of frames (same framing: 4-byte big-endian length + opaque message, each
 * at most KRG_API_MAX_FRAME): krg_api_stream_start() sends the successful
 * response (status 0, body) and releases the call, and from then on every
 * frame the client sends goes to msg_cb instead of being a new request.
 * Used by proc.run (docs/krg-run.md). */
struct krg_api_stream;
/* One frame from the client; msg is borrowed for the callback. */
typedef void (*krg_api_stream_msg_cb)(struct krg_api_stream *s, const uint8_t *msg, size_t len, void *data);
/* The client closed the connection or it failed. Called once, never after
 * krg_api_stream_end(); the stream is gone when it returns. */
typedef void (*krg_api_stream_close_cb)(struct krg_api_stream *s, void *data);
/* A frame given to krg_api_stream_send() was written (status 0) or
 * dropped (negative). data is the stream's, done_data the send's. Not
 * called once the stream ended or closed. */
typedef void (*krg_api_stream_done_cb)(struct krg_api_stream *s, int status, void *data, void *done_data);

/* NULL if the client already went away (the call is released anyway). */
struct krg_api_stream *krg_api_stream_start(struct krg_api_call *call, const void *body, size_t len,
					    krg_api_stream_msg_cb msg_cb, krg_api_stream_close_cb close_cb,
					    void *data);
/* Queue one frame (copied). done_cb may be NULL. 0 or negative errno. */
int krg_api_stream_send(struct krg_api_stream *s, const void *msg, size_t len, krg_api_stream_done_cb done_cb,
			void *done_data);
/* Bytes queued for the client and not yet written. */
size_t krg_api_stream_queued(const struct krg_api_stream *s);
/* Stop / restart delivering the client's frames (back-pressure). Frames
 * already buffered are held while paused. */
void krg_api_stream_pause(struct krg_api_stream *s, bool paused);
/* Flush what is queued, then close. No callback fires afterwards. */
void krg_api_stream_end(struct krg_api_stream *s);
