/* proclist.c — see proclist.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api/client.h"
#include "krg/proclist.h"

static int call(const char *cmd, const char *sock, const char *command, const void *body, size_t len,
		uint8_t **resp, size_t *resp_len)
{
	char err[512];
	int r = krg_api_call(krg_api_socket_path(sock), command, body, len, 10000, resp, resp_len, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "krg %s: %s\n", cmd, err);
		return 1;
	}
	return 0;
}

int krg_fetch_procs(const char *cmd, const char *sock, bool all, Krg__Node__ProcList **out)
{
	Krg__Node__ProcListRequest rq = KRG__NODE__PROC_LIST_REQUEST__INIT;
	uint8_t body[16], *resp = NULL;
	size_t resp_len = 0;
	rq.all = all; /* uid: krgd takes it from the socket */
	size_t len = krg__node__proc_list_request__pack(&rq, body);
	int r = call(cmd, sock, "proc.list", body, len, &resp, &resp_len);
	if (r)
		return r;
	*out = krg__node__proc_list__unpack(NULL, resp_len, resp);
	free(resp);
	if (!*out) {
		fprintf(stderr, "krg %s: krgd sent a malformed process list\n", cmd);
		return 1;
	}
	for (size_t i = 0; i < (*out)->n_unreachable; i++)
		fprintf(stderr, "krg %s: warning: node %u did not answer; its processes are missing\n", cmd,
			(*out)->unreachable[i]);
	return 0;
}

int krg_fetch_stats(const char *cmd, const char *sock, Krg__Node__NodeStats **out)
{
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int r = call(cmd, sock, "node.stats", NULL, 0, &resp, &resp_len);
	if (r)
		return r;
	*out = krg__node__node_stats__unpack(NULL, resp_len, resp);
	free(resp);
	if (!*out) {
		fprintf(stderr, "krg %s: krgd sent malformed node figures\n", cmd);
		return 1;
	}
	return 0;
}

void krg_fmt_start(uint64_t unix_ms, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ms / 1000), now = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, now - t < 24 * 3600 ? "%H:%M" : "%b%d", &tm);
}

void krg_put_safe(FILE *f, const char *s, int width)
{
	for (int n = 0; *s && (width <= 0 || n < width); s++, n++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}
