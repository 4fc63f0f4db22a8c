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
