/* vc_quorum.c — `vcluster up` returns once the cluster can act: every
 * node's krgd answering is not enough (a test's first `nodes del` or
 * registry write would meet "no quorum" while the first election runs),
 * so up waits until each node says it has quorum, with a deadline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api/client.h"
#include "proto/api.pb-c.h"
#include "vc.h"

/* 1 when node init_pid's krgd says it has quorum, 0 when not (yet), or
 * -errno with why (what the node answered) in buf. */
static int node_quorum(pid_t init_pid, char *why, size_t len)
{
	char sock[96], err[200];
	uint8_t *buf = NULL;
	size_t n = 0;
	snprintf(sock, sizeof(sock), "/proc/%d/root/run/krg/krgd.sock", (int)init_pid);
	int r = krg_api_call(sock, "cluster.status", NULL, 0, 2000, &buf, &n, err, sizeof(err));
	if (r != 0) {
		snprintf(why, len, "%s", err);
		free(buf);
		return r < 0 ? r : -EIO;
	}
	Krg__Api__ClusterStatus *st = krg__api__cluster_status__unpack(NULL, n, buf);
	free(buf);
	if (!st) {
		snprintf(why, len, "malformed cluster status");
		return -EBADMSG;
	}
	int q = st->quorum ? 1 : 0;
	snprintf(why, len, "it says quorum: no (role %s)", st->raft_role ? st->raft_role : "?");
	krg__api__cluster_status__free_unpacked(st, NULL);
	return q;
}

int vc_wait_quorum(const pid_t *pids, int n, long timeout_ms)
{
	long deadline = vc_now_ms() + timeout_ms;
	bool ok[VC_MAX_NODES + 1] = { false };
	char why[256] = "";
	int waiting = 0;
	for (;;) {
		int left = 0;
		for (int i = 1; i <= n; i++) {
			if (ok[i] || !pids[i]) /* 0: not waited for */
				continue;
			if (node_quorum(pids[i], why, sizeof(why)) == 1)
				ok[i] = true;
			else {
				left++;
				waiting = i;
			}
		}
		if (!left)
			return 0;
		if (vc_now_ms() >= deadline)
			return vc_fail(-ETIMEDOUT, "node %d has no quorum after %ld s: %s", waiting, timeout_ms / 1000,
				       why);
		usleep(50000);
	}
}
