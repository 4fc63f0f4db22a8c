/* client.c — see client.h. Plain blocking sockets with poll() timeouts:
 * the CLIs make one call and exit, an event loop would be overhead. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "api/client.h"
#include "api/server.h"
#include "lib/config.h"
#include "lib/macro.h"
#include "proto/api.pb-c.h"

const char *krg_api_socket_path(const char *override)
{
	static char path[PATH_MAX];
	if (override && *override)
		return override;
	const char *env = getenv("KRG_SOCKET");
	if (env && *env)
		return env;
	struct krg_config *c = malloc(sizeof(*c));
	char err[256];
	snprintf(path, sizeof(path), "%s", KRG_DEFAULT_SOCKET);
	if (c && krg_config_load(krg_config_default_path(), c, err, sizeof(err)) == 0)
		snprintf(path, sizeof(path), "%s", c->api_socket);
	free(c);
	return path;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int io_all(int fd, uint8_t *buf, size_t n, bool wr, int64_t deadline)
{
	size_t off = 0;
	while (off < n) {
		int r = wait_fd(fd, wr ? POLLOUT : POLLIN, deadline);
		if (r < 0)
			return r;
		ssize_t k = wr ? send(fd, buf + off, n - off, MSG_NOSIGNAL) : recv(fd, buf + off, n - off, 0);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (k == 0)
			return -ECONNRESET;
		off += (size_t)k;
	}
	return 0;
}

static __thread bool last_reached;

bool krg_api_reached_krgd(void)
{
	return last_reached;
}

static int call_common(const char *socket_path, const char *command, const void *body, size_t len,
		       unsigned timeout_ms, uint8_t **resp_out, size_t *resp_len, char *err, size_t errlen,
		       int *keep_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	last_reached = false;
	if (resp_out)
		*resp_out = NULL;
	if (resp_len)
		*resp_len = 0;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot reach krgd at %s: %s (is krgd running on this node?)", socket_path,
			 strerror(errno));
		return r;
	}
	Krg__Api__Request req = KRG__API__REQUEST__INIT;
	req.version = KRG_API_VERSION;
	req.command = (char *)command;
	if (body) {
		req.has_body = true;
		req.body.data = (uint8_t *)body;
		req.body.len = len;
	}
	size_t n = krg__api__request__get_packed_size(&req);
	_cleanup_free_ uint8_t *out = malloc(4 + n);
	if (!out)
		return -ENOMEM;
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	krg__api__request__pack(&req, out + 4);
	r = io_all(fd, out, 4 + n, true, deadline);
	uint8_t hdr[4];
	/* A krgd that refuses the connection (a per-user limit) answers and
	 * closes before it reads: its answer says why, better than EPIPE. */
	if (r == 0 || r == -EPIPE || r == -ECONNRESET) {
		int w = r;
		r = io_all(fd, hdr, 4, false, deadline);
		if (r < 0 && w < 0)
			r = w;
	}
	if (r < 0) {
		snprintf(err, errlen, "krgd at %s: %s", socket_path,
			 r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
		return r;
	}
	uint32_t m = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (m == 0 || m > KRG_API_MAX_FRAME) {
		snprintf(err, errlen, "krgd at %s sent a bad frame", socket_path);
		return -EBADMSG;
	}
	_cleanup_free_ uint8_t *in = malloc(m);
	if (!in)
		return -ENOMEM;
	r = io_all(fd, in, m, false, deadline);
	if (r < 0) {
		snprintf(err, errlen, "krgd at %s: %s", socket_path, strerror(-r));
		return r;
	}
	Krg__Api__Response *resp = krg__api__response__unpack(NULL, m, in);
	if (!resp) {
		snprintf(err, errlen, "krgd at %s sent a malformed response", socket_path);
		return -EBADMSG;
	}
	last_reached = true;
	r = resp->status;
	if (r < 0)
		snprintf(err, errlen, "%s", resp->error ? resp->error : strerror(-r));
	if (r >= 0 && resp->has_body && resp_out) {
		*resp_out = malloc(resp->body.len ? resp->body.len : 1);
		if (*resp_out) {
			if (resp->body.len)
				memcpy(*resp_out, resp->body.data, resp->body.len);
			*resp_len = resp->body.len;
		} else {
			r = -ENOMEM;
		}
	}
	krg__api__response__free_unpacked(resp, NULL);
	if (r >= 0 && keep_fd)
		*keep_fd = TAKE_FD(fd);
	return r;
}

int krg_api_call(const char *socket_path, const char *command, const void *body, size_t len,
		 unsigned timeout_ms, uint8_t **resp_out, size_t *resp_len, char *err, size_t errlen)
{
	return call_common(socket_path, command, body, len, timeout_ms, resp_out, resp_len, err, errlen, NULL);
}

int krg_api_call_stream(const char *socket_path, const char *command, const void *body, size_t len,
			unsigned timeout_ms, uint8_t **resp, size_t *resp_len, int *fd, char *err,
			size_t errlen)
{
	*fd = -1;
	return call_common(socket_path, command, body, len, timeout_ms, resp, resp_len, err, errlen, fd);
}
