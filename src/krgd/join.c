/* join.c — the joining machine's side of "cluster.join": a throw-away
 * transport with a joiner's hello (random id >= KRG_NET_JOINER_MIN) dials
 * the member by address, proves the cluster key, asks for an id, and is
 * closed before krgd starts for real as that node. The answer is kept in
 * state_dir/joined so a restart comes back as the same node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <uv.h>
#include "krgd/join.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "proto/cluster.pb-c.h"

#define JOIN_TIMEOUT_MS 10000

struct joiner {
	struct krg_config *cfg;
	struct krg_net *net;
	uv_timer_t timer;
	uv_timer_t retry;
	uint32_t member;
	bool asked, done, closed;
	int status;
	char err[256];
};

static void finish(struct joiner *j, int status, const char *msg)
{
	if (j->done)
		return;
	j->done = true;
	j->status = status;
	if (msg)
		snprintf(j->err, sizeof(j->err), "%s", msg);
	uv_timer_stop(&j->timer);
	uv_timer_stop(&j->retry);
}

static int save(const struct krg_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/joined", cfg->state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -errno;
	}
	fprintf(f, "# node id given by the cluster when this machine joined; delete to join anew\n");
	fprintf(f, "node_id %u\n", cfg->node_id);
	for (size_t i = 0; i < cfg->n_nodes; i++)
		fprintf(f, "node %u %s %u\n", cfg->nodes[i].id, cfg->nodes[i].host, (unsigned)cfg->nodes[i].port);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* 1: loaded, 0: none, -errno. */
static int load(struct krg_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], line[256];
	snprintf(path, sizeof(path), "%s/joined", cfg->state_dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	bool have_id = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned id, port;
		char host[64];
		if (sscanf(line, "node_id %u", &id) == 1 && id < KRG_MAX_NODES) {
			cfg->node_id = id;
			have_id = true;
		} else if (sscanf(line, "node %u %63s %u", &id, host, &port) == 3 && id < KRG_MAX_NODES && port &&
			   port <= 65535) {
			krg_config_add_node(cfg, id, host, (uint16_t)port);
		}
	}
	fclose(f);
	if (!have_id) {
		snprintf(err, errlen, "%s has no node_id line; delete it to join anew", path);
		return -EINVAL;
	}
	return 1;
}

static void ask(struct joiner *j);

static void retry_cb(uv_timer_t *t)
{
	ask(t->data);
}

static void reply_cb(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct joiner *j = data;
	char msg[256];
	(void)net;
	if (status == -EAGAIN && !j->done) { /* no leader yet, or the cluster is being created */
		uv_timer_start(&j->retry, retry_cb, 300, 0);
		return;
	}
	if (status < 0) {
		if (status == -ETIMEDOUT)
			snprintf(msg, sizeof(msg), "the member did not answer the join request in time");
		else
			snprintf(msg, sizeof(msg), "the cluster refused the join: %s", strerror(-status));
		return finish(j, status, msg);
	}
	Krg__Cluster__JoinReply *rep = krg__cluster__join_reply__unpack(NULL, reply->len, reply->body);
	if (!rep || rep->node_id == 0 || rep->node_id >= KRG_MAX_NODES) {
		if (rep)
			krg__cluster__join_reply__free_unpacked(rep, NULL);
		return finish(j, -EBADMSG, "malformed join answer");
	}
	j->cfg->node_id = rep->node_id;
	for (size_t i = 0; i < rep->n_nodes; i++) {
		const Krg__Cluster__NodeAddr *a = rep->nodes[i];
		if (a->id < KRG_MAX_NODES && a->port && a->port <= 65535 && strlen(a->host) < 64)
			krg_config_add_node(j->cfg, a->id, a->host, (uint16_t)a->port);
	}
	krg__cluster__join_reply__free_unpacked(rep, NULL);
	finish(j, 0, NULL);
}

static void ask(struct joiner *j)
{
	Krg__Cluster__JoinRequest jr = KRG__CLUSTER__JOIN_REQUEST__INIT;
	jr.host = j->cfg->address_host;
	jr.port = j->cfg->address_port;
	uint8_t buf[128];
	size_t n = krg__cluster__join_request__pack(&jr, buf);
	int r = krg_net_request(j->net, j->member, "cluster.join", buf, n, JOIN_TIMEOUT_MS, reply_cb, j);
	if (r < 0)
		finish(j, r, "cannot send the join request");
}

static void peer_cb(struct krg_net *net, uint32_t peer, bool up, void *data)
{
	struct joiner *j = data;
	(void)net;
	if (!up || j->asked || j->done)
		return;
	j->asked = true;
	j->member = peer;
	ask(j);
}

static void timeout_cb(uv_timer_t *t)
{
	finish(t->data, -ETIMEDOUT,
	       "no authenticated answer (address unreachable, no krgd there, or another cluster key or name)");
}

static void fatal_cb(struct krg_net *net, int err, const char *msg, void *data)
{
	(void)net;
	finish(data, err, msg);
}

static void net_closed(void *data)
{
	((struct joiner *)data)->closed = true;
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

int krgd_join(struct krg_config *cfg, const char *join_addr, const uint8_t key[KRG_KEY_BYTES], char *err,
	      size_t errlen)
{
	char why[160], host[64];
	uint16_t port;
	int r = load(cfg, err, errlen);
	if (r < 0)
		return r;
	if (r == 0) {
		const char *addr = join_addr ? join_addr : cfg->join;
		if (!addr[0]) {
			snprintf(err, errlen, "%s: no node_id, and no member to join (--join HOST[:PORT] or join = ...)",
				 cfg->path);
			return -EINVAL;
		}
		if (!cfg->address_host[0]) {
			snprintf(err, errlen, "%s: joining needs 'address = HOST[:PORT]' (where this node listens)",
				 cfg->path);
			return -EINVAL;
		}
		if (krg_config_parse_address(addr, host, sizeof(host), &port, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "--join %s: %s", addr, why);
			return -EINVAL;
		}
		uv_loop_t loop;
		uv_loop_init(&loop);
		struct joiner j = { .cfg = cfg };
		struct krg_net_peer_addr member = { .id = KRG_NET_ANY_ID, .port = port };
		snprintf(member.host, sizeof(member.host), "%s", host);
		struct krg_net_options no = {
			.self_id = KRG_NET_JOINER_MIN + randombytes_uniform(0x7fff0000u),
			.cluster_name = cfg->cluster_name,
			.listen_host = cfg->address_host,
			.listen_port = 0,
			.peers = &member,
			.n_peers = 1,
			.encrypt = cfg->encrypt,
			.heartbeat_ms = cfg->heartbeat_ms,
			.request_timeout_ms = JOIN_TIMEOUT_MS,
			.auth_fatal = true,
			.fatal_cb = fatal_cb,
			.data = &j,
		};
		memcpy(no.key, key, KRG_KEY_BYTES);
		r = krg_net_new(&loop, &no, &j.net);
		sodium_memzero(no.key, sizeof(no.key));
		if (r < 0) {
			snprintf(err, errlen, "cannot create transport: %s", strerror(-r));
			return r;
		}
		krg_net_on_peer(j.net, peer_cb, &j);
		r = krg_net_start(j.net, why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "%s", why);
			krg_net_close(j.net, net_closed, &j);
		} else {
			log_info("joining the cluster through %s:%u", host, (unsigned)port);
			uv_timer_init(&loop, &j.timer);
			j.timer.data = &j;
			uv_timer_start(&j.timer, timeout_cb, JOIN_TIMEOUT_MS, 0);
			uv_timer_init(&loop, &j.retry);
			j.retry.data = &j;
			while (!j.done && uv_run(&loop, UV_RUN_ONCE))
				;
			uv_close((uv_handle_t *)&j.timer, timer_closed);
			uv_close((uv_handle_t *)&j.retry, timer_closed);
			krg_net_close(j.net, net_closed, &j);
		}
		while (!j.closed && uv_run(&loop, UV_RUN_ONCE))
			;
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		if (r < 0)
			return r;
		if (j.status < 0) {
			snprintf(err, errlen, "cannot join through %s: %s", addr, j.err);
			return j.status;
		}
		krg_config_add_node(cfg, cfg->node_id, cfg->address_host, cfg->address_port);
		if ((r = save(cfg, err, errlen)) < 0)
			return r;
		log_info("joined the cluster as node %u", cfg->node_id);
	} else {
		krg_config_add_node(cfg, cfg->node_id, cfg->address_host, cfg->address_port);
		log_info("resuming as node %u, given when this machine joined", cfg->node_id);
	}
	cfg->has_node_id = true;
	return 0;
}
