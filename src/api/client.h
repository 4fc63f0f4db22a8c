/* client.h — blocking client of the local krgd API (see server.h). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Socket path: --socket option, else api_socket from $KRG_CONFIG (or
 * /etc/krg/krgd.conf) if readable, else /run/krg/krgd.sock. */
const char *krg_api_socket_path(const char *override);

/* Send one request and wait up to timeout_ms for the response.
 * Returns the response status (0 or negative errno); transport failures
 * are negative errnos too. err gets a one-line reason on failure (the
 * daemon's, or the transport's). *resp (malloc'd, may be NULL) and
 * *resp_len receive the body on success. */
int krg_api_call(const char *socket_path, const char *command, const void *body, size_t len,
		 unsigned timeout_ms, uint8_t **resp, size_t *resp_len, char *err, size_t errlen);

/* Did the last call on this thread get an answer from krgd (whatever its
 * status)? false: krgd could not be reached (no socket, refused, no answer
 * in time) — the CLIs' "krgd unreachable" exit status is for that alone. */
bool krg_api_reached_krgd(void);

/* Like krg_api_call(), for commands that turn the connection into a
 * stream (server.h, krg_api_stream_start): on status >= 0, *fd is the
 * connected socket (non-blocking, close-on-exec), now carrying frames of
 * 4-byte big-endian length + message both ways; the caller owns it. */
int krg_api_call_stream(const char *socket_path, const char *command, const void *body, size_t len,
			unsigned timeout_ms, uint8_t **resp, size_t *resp_len, int *fd, char *err,
			size_t errlen);
