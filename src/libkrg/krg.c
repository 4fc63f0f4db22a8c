/* libkrg (include/krg/krg.h): thin client of the local krgd's API. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../include/krg/krg.h"
#include "api/client.h"
#include "proc/procid.h"
#include "proto/migrate.pb-c.h"

static __thread char last_error[512];

const char *krg_last_error(void)
{
	return last_error;
}

static int move(const Krg__Mig__Move *q)
{
	uint8_t body[64];
	size_t len = krg__mig__move__pack(q, body);
	int r = krg_api_call(krg_api_socket_path(NULL), "mig.move", body, len, 30u * 60 * 1000, NULL, NULL, last_error,
			     sizeof(last_error));
	return r;
}

int krg_migrate(pid_t pid, int node)
{
	last_error[0] = 0;
	if (pid <= 0 || node < 0 || node > 255) {
		snprintf(last_error, sizeof(last_error), "bad process id or node");
		return -EINVAL;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.node = (uint32_t)node;
	if ((uint32_t)pid > KRG_PID_MASK)
		q.has_id = true, q.id = (uint32_t)pid;
	else
		q.has_pid = true, q.pid = (uint32_t)pid;
	return move(&q);
}

int krg_migrate_self(int node)
{
	last_error[0] = 0;
	if (node < 0 || node > 255) {
		snprintf(last_error, sizeof(last_error), "bad node");
		return -EINVAL;
	}
	/* The answer comes through a pipe of our own: it moves with us (a
	 * pipe with both ends in the process is part of the image), and the
	 * node we land on writes "0\n" into it; a failure is written here. */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(last_error, sizeof(last_error), "pipe: %s", strerror(errno));
		return -errno;
	}
	Krg__Mig__Move q = KRG__MIG__MOVE__INIT;
	q.node = (uint32_t)node;
	q.has_pid = true;
	q.pid = (uint32_t)getpid();
	q.has_notify_fd = true;
	/* Write end in the low 16 bits, read end above: krgd freezes us
	 * only once we wait in read() on it (our API socket is closed then). */
	q.notify_fd = (uint32_t)p[1] | (uint32_t)p[0] << 16;
	int r = move(&q);
	if (r == 0) {
		char buf[32];
		size_t n = 0;
		while (n < sizeof(buf) - 1) {
			ssize_t k = read(p[0], buf + n, 1);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0 || buf[n] == '\n')
				break;
			n++;
		}
		buf[n] = 0;
		r = n ? atoi(buf) : -EIO;
		if (r > 0 || r < -4095)
			r = -EIO;
		if (r < 0)
			snprintf(last_error, sizeof(last_error), "migration to node %d failed: %s", node, strerror(-r));
	}
	close(p[0]);
	close(p[1]);
	return r;
}
