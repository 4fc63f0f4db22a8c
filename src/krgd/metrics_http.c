/* metrics_http.c — see metrics_http.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include "krgd/metrics_http.h"

#define LOOP_WAIT_S 5

struct krg_metrics_http {
	uv_loop_t *loop;
	uv_async_t async;
	struct MHD_Daemon *mhd;
	int lfd;
	krg_metrics_loop_fn loop_fn;
	krg_metrics_thread_fn thread_fn;
	void *data;
	/* The hand-over between the HTTP thread and the loop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want, done, stopping;
	char *text;
	size_t len;
};

/* Loop thread: write the loop's part for the waiting request. */
static void on_async(uv_async_t *a)
{
	struct krg_metrics_http *m = a->data;
	pthread_mutex_lock(&m->lock);
	bool want = m->want && !m->done;
	pthread_mutex_unlock(&m->lock);
	if (!want)
		return;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f) {
		m->loop_fn(f, m->data);
		fclose(f);
	}
	pthread_mutex_lock(&m->lock);
	m->text = text;
	m->len = f ? len : 0;
	m->done = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* HTTP thread: the loop's part, or NULL if the loop did not answer. */
static char *loop_part(struct krg_metrics_http *m, size_t *len)
{
	char *text = NULL;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LOOP_WAIT_S;
	pthread_mutex_lock(&m->lock);
	m->want = true;
	m->done = false;
	m->text = NULL;
	pthread_mutex_unlock(&m->lock);
	uv_async_send(&m->async);
	pthread_mutex_lock(&m->lock);
	while (!m->done && !m->stopping)
		if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
			break;
	if (m->done) {
		text = m->text;
		*len = m->len;
	}
	m->want = false;
	m->done = false;
	m->text = NULL;
	pthread_mutex_unlock(&m->lock);
	return text;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
				status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return reply(conn, status, strdup(text), strlen(text));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct krg_metrics_http *m = cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(conn, 405, "only GET\n");
	if (strcmp(url, "/metrics"))
		return reply_text(conn, 404, "krgd serves /metrics\n");
	size_t llen = 0;
	char *lpart = loop_part(m, &llen);
	if (!lpart)
		return reply_text(conn, 503, "krgd's event loop did not answer (stopping or busy)\n");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		free(lpart);
		return reply_text(conn, 500, "out of memory\n");
	}
	fwrite(lpart, 1, llen, f);
	free(lpart);
	m->thread_fn(f);
	fclose(f);
	return reply(conn, 200, text, len);
}

static int listen_on(const char *host, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "metrics_listen: bad address %s", host);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		int r = -errno;
		snprintf(err, errlen, "cannot serve metrics on %s:%u: %s", host, (unsigned)port, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

static void async_closed(uv_handle_t *h)
{
	struct krg_metrics_http *m = h->data;
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

int krg_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port, krg_metrics_loop_fn loop_fn,
			   krg_metrics_thread_fn thread_fn, void *data, struct krg_metrics_http **out, char *err,
			   size_t errlen)
{
	struct krg_metrics_http *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = (struct krg_metrics_http){ .loop = loop, .loop_fn = loop_fn, .thread_fn = thread_fn, .data = data };
	m->lfd = listen_on(host, port, err, errlen);
	if (m->lfd < 0) {
		int r = m->lfd;
		free(m);
		return r;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	uv_async_init(loop, &m->async, on_async);
	m->async.data = m;
	/* One internal thread, so one request at a time: a scraper polls every
	 * few seconds. Few connections, short timeouts: nobody holds it. */
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, m,
				  MHD_OPTION_LISTEN_SOCKET, m->lfd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)10, MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "cannot serve metrics on %s:%u: libmicrohttpd failed to start", host,
			 (unsigned)port);
		close(m->lfd);
		uv_close((uv_handle_t *)&m->async, async_closed);
		return -EIO;
	}
	*out = m;
	return 0;
}

void krg_metrics_http_stop(struct krg_metrics_http *m)
{
	if (!m)
		return;
	/* A request waiting for this very thread gives up at once (503). */
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
	/* Closes the listening socket too (MHD owns it once started). */
	MHD_stop_daemon(m->mhd);
	uv_close((uv_handle_t *)&m->async, async_closed);
}
