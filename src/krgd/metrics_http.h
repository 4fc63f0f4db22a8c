/* metrics_http.h — the Prometheus endpoint of krgd (docs/monitoring.md):
 * GET /metrics on metrics_listen, served by libmicrohttpd in its own
 * thread. What belongs to the event loop (Raft, the node table, the
 * process list) is written on the loop thread: the HTTP thread asks for it
 * through a uv_async and waits (5 s at most, else 503); what can be read
 * from any thread (this node's /proc figures, DRMAA job files) is written
 * by the HTTP thread, so that a slow file never holds up krgd. */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

struct krg_metrics_http;
/* Write the loop's part of the page to f; runs on the loop thread. */
typedef void (*krg_metrics_loop_fn)(FILE *f, void *data);
/* Write the rest; runs on the HTTP thread. */
typedef void (*krg_metrics_thread_fn)(FILE *f);

/* Listen on host:port (IPv4) and serve. 0, or -errno with one line in err. */
int krg_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port, krg_metrics_loop_fn loop_fn,
			   krg_metrics_thread_fn thread_fn, void *data, struct krg_metrics_http **out, char *err,
			   size_t errlen);
/* Stop serving (a request waiting for the loop gets 503), join the thread,
 * free. Loop thread; NULL is fine. */
void krg_metrics_http_stop(struct krg_metrics_http *m);
