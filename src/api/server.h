/* server.h — the local API of krgd: a unix socket on which krg and krgadm
 * send one Request and get one Response (src/proto/api.proto), framed as a
 * 4-byte big-endian length + message. The caller is identified by
 * SO_PEERCRED, never by anything it says. Services register commands by
 * name. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define KRG_API_VERSION 1
#define KRG_API_MAX_FRAME (4u << 20)

struct krg_api_server;

/* One call in progress. Valid until krg_api_reply() on it. */
struct krg_api_call {
	uid_t uid;            /* from SO_PEERCRED */
	gid_t gid;
	pid_t pid;
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
/* root_only: callers with uid != 0 get -EPERM without reaching cb. */
int krg_api_register(struct krg_api_server *srv, const char *command, bool root_only, krg_api_handler_cb cb,
		     void *data);
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
