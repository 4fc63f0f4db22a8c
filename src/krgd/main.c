/* krgd — the krg daemon, one per node. Starts the local API, the
 * authenticated transport to the other nodes and the membership service,
 * then runs the event loop until SIGTERM/SIGINT or `cluster poweroff`. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>
#include <uv.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "lib/config.h"
#include "lib/fault.h"
#include "lib/key.h"
#include "lib/log.h"
#include "net/net.h"
#include "krgd/join.h"
#include "krgd/metrics_http.h"
#include "krgd/metrics_page.h"
#include "krgd/services.h"
#include "proc/pidrange.h"

struct daemon {
	uv_loop_t loop;
	struct krg_config cfg;
	struct krg_api_server *api;
	struct krg_net *net;
	struct krg_cluster *cluster;
	struct krgd_services services; /* the service table (services.c) and what it hands out */
	struct krg_metrics_src metrics_src;
	struct krg_metrics_http *metrics; /* metrics_listen; NULL when off */
	uv_signal_t sigterm, sigint;
	uv_timer_t stop_timer;
	bool stopping;
	int exit_code;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: krgd [--config FILE] [--join HOST[:PORT]] [--log-level LEVEL] [--daemon]\n"
		"\n"
		"The krg daemon: one per node. Reads FILE (default $KRG_CONFIG or %s),\n"
		"joins the cluster described there and serves the local API socket.\n"
		"\n"
		"  -c, --config FILE      configuration file (see docs/krgd.conf.example)\n"
		"  -j, --join HOST[:PORT] join a running cluster through this member: the\n"
		"                         config has no node_id, sets 'address' and holds the\n"
		"                         cluster key; the cluster gives this node its id\n"
		"                         (docs/reconfiguration.md)\n"
		"  -l, --log-level LEVEL  error, warn, info, debug or trace (overrides the file)\n"
		"  -d, --daemon           detach from the terminal after start-up checks\n"
		"  -h, --help             this text\n"
		"\n"
		"Stops cleanly on SIGTERM or SIGINT. Exit status: 0 clean stop, 1 refused\n"
		"to start (the reason is printed on one line), 2 bad usage.\n",
		KRG_DEFAULT_CONFIG);
}

static void cluster_closed(void *data)
{
	struct daemon *d = data;
	d->cluster = NULL;
	if (d->net)
		krg_net_close(d->net, NULL, NULL);
	d->net = NULL;
	/* What services keep until now (stores membership applied into,
	 * handles net called): the transport, closed, calls them no more. */
	krgd_services_release(&d->services);
	krg_api_server_close(d->api);
	d->api = NULL;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->stop_timer, NULL);
}

static void daemon_stop(struct daemon *d, int code)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->exit_code = code;
	log_info("stopping");
	/* systemd (Type=notify) shows "deactivating" until we exit; a no-op
	 * without $NOTIFY_SOCKET. */
	sd_notify(0, "STOPPING=1");
	/* Metrics first: the page reads the services stopped below. */
	krg_metrics_http_stop(d->metrics);
	d->metrics = NULL;
	/* Services first (they use the layers below), in reverse start
	 * order, then membership. */
	krgd_services_stop(&d->services);
	krg_pidrange_stop();
	if (d->cluster)
		krg_cluster_close(d->cluster, cluster_closed, d);
	else
		cluster_closed(d);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	log_info("received %s", strsignal(signum));
	daemon_stop(d, 0);
}

/* poweroff: answer the API call first, stop a moment later so the
 * messages to the other nodes leave. */
static void stop_timer_cb(uv_timer_t *t)
{
	daemon_stop(t->data, 0);
}

static void shutdown_cb(struct krg_cluster *c, void *data)
{
	struct daemon *d = data;
	uv_timer_start(&d->stop_timer, stop_timer_cb, 200, 0);
}

static void fatal_cb(struct krg_net *net, int err, const char *msg, void *data)
{
	struct daemon *d = data;
	/* The same one line as every other refusal; logs may be elsewhere. */
	fprintf(stderr, "krgd: %s\n", msg);
	daemon_stop(d, 1);
}

static void open_handle_cb(uv_handle_t *h, void *arg)
{
	char *kinds = arg;
	size_t l = strlen(kinds);
	snprintf(kinds + l, 256 - l, " %s%s", uv_handle_type_name(uv_handle_get_type(h)), uv_is_closing(h) ? "(closing)" : "");
}

static int refuse(const char *fmt, const char *detail)
{
	fprintf(stderr, "krgd: ");
	fprintf(stderr, fmt, detail);
	fprintf(stderr, "\n");
	return 1;
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create state dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state dir %s is not a directory", dir);
		return -ENOTDIR;
	}
	/* State files are nobody else's business. */
	if ((st.st_mode & 077) && chmod(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot chmod 700 %s: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* --daemon: fork before any thread exists; the parent waits until the
 * child is serving (exit 0) or has refused to start (its status, its
 * one-line reason already on the shared stderr). -1 in the child, which
 * goes on (*ready_fd: where to say it serves); else the exit status. */
static int detach_start(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return refuse("cannot detach: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return refuse("cannot detach: %s", strerror(errno));
	if (pid > 0) {
		char c;
		int status;
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			return 0;
		if (waitpid(pid, &status, 0) < 0)
			return 1;
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	close(p[0]);
	*ready_fd = p[1];
	setsid();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	return -1;
}

/* The transport to the other nodes of the config, started (listening and
 * connecting); no holds the key. 0, or -errno and one line in err. */
static int start_net(struct daemon *d, const struct krg_config_node *self, struct krg_net_options *no, char *err,
		     size_t errlen)
{
	struct krg_net_peer_addr peers[KRG_MAX_NODES];
	size_t np = 0;
	for (size_t i = 0; i < d->cfg.n_nodes; i++) {
		if (d->cfg.nodes[i].id == d->cfg.node_id)
			continue;
		peers[np].id = d->cfg.nodes[i].id;
		snprintf(peers[np].host, sizeof(peers[np].host), "%s", d->cfg.nodes[i].host);
		peers[np].port = d->cfg.nodes[i].port;
		np++;
	}
	no->self_id = d->cfg.node_id;
	no->cluster_name = d->cfg.cluster_name;
	no->listen_host = self->host;
	no->listen_port = self->port;
	no->peers = peers;
	no->n_peers = np;
	no->encrypt = d->cfg.encrypt;
	no->heartbeat_ms = d->cfg.heartbeat_ms;
	/* Links outlive the membership's verdict: failure_timeout_ms of
	 * silence, then at most two elections. Until then a silent peer is
	 * only slow, and its streams wait. */
	no->dead_after_ms = d->cfg.failure_timeout_ms + 2 * d->cfg.election_timeout_ms;
	no->request_timeout_ms = d->cfg.request_timeout_ms;
	/* Links on demand (docs/protocol.md "Lazy links"): a cluster of N
	 * nodes no longer dials N² links at start; the membership says which
	 * ones it needs (leader, voters), the rest come with their first
	 * message and go when idle. */
	no->lazy_links = d->cfg.lazy_links;
	no->idle_close_ms = d->cfg.link_idle_ms;
	no->fatal_cb = fatal_cb;
	no->joiner_msg = "cluster.join";
	no->data = d;
	int r = krg_net_new(&d->loop, no, &d->net);
	if (r < 0) {
		snprintf(err, errlen, "cannot create transport: %s", strerror(-r));
		return r;
	}
	return krg_net_start(d->net, err, errlen);
}

/* Command line. */
struct args {
	const char *config_path, *level, *join;
	bool detach;
};

/* 0 to go on; else the exit code (--help: 0 after the text, -1 here). */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "join", required_argument, NULL, 'j' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;
	a->config_path = krg_config_default_path();
	while ((opt = getopt_long(argc, argv, "c:l:j:dh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->config_path = optarg;
			break;
		case 'l':
			a->level = optarg;
			break;
		case 'j':
			a->join = optarg;
			break;
		case 'd':
			a->detach = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "krgd: unexpected argument '%s' (see krgd --help)\n", argv[optind]);
		return 2;
	}
	return 0;
}

static void set_tag(uint32_t node)
{
	char tag[32];
	snprintf(tag, sizeof(tag), "krgd[%u]", node);
	krg_log_set_tag(tag);
}

/* Who this node is: its config, log level, cluster key and state
 * directory; a joining machine gets its id from the cluster. 0 or -1
 * with err set. */
static int load_identity(struct daemon *d, const struct args *a, struct krg_net_options *no, bool *joined, char *err,
			 size_t errlen)
{
	if (krg_config_load(a->config_path, &d->cfg, err, errlen) < 0)
		return -1;
	krg_log_set_level((enum krg_log_level)d->cfg.log_level);
	if (a->level) {
		int r = krg_log_parse_level(a->level);
		if (r < 0) {
			snprintf(err, errlen, "unknown log level '%s'", a->level);
			return -1;
		}
		krg_log_set_level((enum krg_log_level)r);
	}
	set_tag(d->cfg.node_id);
	if (krg_key_load(d->cfg.key_file, no->key, err, errlen) < 0 || make_state_dir(d->cfg.state_dir, err, errlen) < 0)
		return -1;
	*joined = !d->cfg.has_node_id;
	if (a->join && !*joined) {
		snprintf(err, errlen, "--join: %s", "the config sets node_id; a joining machine's config has none");
		return -1;
	}
	if (*joined) {
		if (krgd_join(&d->cfg, a->join, no->key, err, errlen) < 0)
			return -1;
		set_tag(d->cfg.node_id);
	}
	return 0;
}

/* The local API, the links, membership, the services, the pid range and
 * the metrics page. 0 or -1 with err set (the API socket closed). */
static int start_all(struct daemon *d, struct krg_net_options *no, bool joined, char *err, size_t errlen)
{
	int r = krg_api_server_new(&d->loop, d->cfg.api_socket, &d->api, err, errlen);
	if (r < 0)
		return -1;
	struct krg_api_limits lim = KRG_API_LIMITS_DEFAULT;
	lim.max_conns_per_user = d->cfg.api_max_conns_per_user;
	lim.max_bytes_per_user = (size_t)d->cfg.api_max_mib_per_user << 20;
	lim.idle_ms = d->cfg.api_idle_ms;
	krg_api_server_set_limits(d->api, &lim);

	const struct krg_config_node *self = krg_config_node(&d->cfg, d->cfg.node_id);
	r = start_net(d, self, no, err, errlen);
	sodium_memzero(no->key, sizeof(no->key));
	if (r == 0) {
		struct krg_cluster_options co = {
			.config = &d->cfg, .joined = joined, .net = d->net, .api = d->api, .shutdown_cb = shutdown_cb, .data = d,
		};
		r = krg_cluster_new(&d->loop, &co, &d->cluster, err, errlen);
		d->services.s = (struct krg_services){
			.loop = &d->loop, .cfg = &d->cfg, .net = d->net, .api = d->api, .cluster = d->cluster,
		};
	}
	/* Before raft starts: a service's state machine on the cluster log
	 * (kdfs's metadata) is registered when raft replays it. */
	if (r == 0)
		r = krgd_services_init(&d->services, err, errlen);
	if (r == 0)
		r = krg_cluster_start(d->cluster, err, errlen);
	if (r == 0)
		r = krgd_services_start(&d->services, err, errlen);
	/* This node's pids from its own range: a migrant keeps its pid and
	 * tids on any node (proc/pidrange.h). Best effort, logged. */
	if (r == 0)
		krg_pidrange_start(&d->loop, &d->cfg);
	if (r == 0 && d->cfg.metrics_port) {
		d->metrics_src = (struct krg_metrics_src){ .cfg = &d->cfg, .cluster = d->cluster, .table = d->services.s.table };
		r = krg_metrics_http_start(&d->loop, d->cfg.metrics_host, d->cfg.metrics_port, krg_metrics_page_loop,
					   krg_metrics_page_thread, &d->metrics_src, &d->metrics, err, errlen);
		if (r == 0)
			log_info("metrics on http://%s:%u/metrics", d->cfg.metrics_host, (unsigned)d->cfg.metrics_port);
	}
	if (r < 0) {
		krg_api_server_close(d->api);
		return -1;
	}
	return 0;
}

/* Up: SIGTERM/SIGINT stop it; the parent (--daemon) and systemd are told. */
static void announce_ready(struct daemon *d, int ready_fd)
{
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	d->sigterm.data = d->sigint.data = d;
	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	uv_timer_init(&d->loop, &d->stop_timer);
	d->stop_timer.data = d;

	if (ready_fd >= 0) {
		/* Tell the waiting parent we are up; it exits 0. */
		if (write(ready_fd, "R", 1) < 0)
			log_warn("cannot notify parent: %s", strerror(errno));
		close(ready_fd);
	}
	const struct krg_config_node *self = krg_config_node(&d->cfg, d->cfg.node_id);
	log_info("krgd %s node %u of cluster '%s' listening on %s:%u, api %s, encryption %s", KRG_VERSION,
		 d->cfg.node_id, d->cfg.cluster_name, self->host, self->port, d->cfg.api_socket,
		 d->cfg.encrypt ? "on" : "off");
	/* Under systemd (Type=notify): the API socket serves and every service
	 * runs, so `systemctl start krgd` returns and units ordered after it
	 * may use krg. MAINPID: with --daemon this is the child. */
	int r = sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=node %u of cluster '%s', api %s", (unsigned long)getpid(),
			   d->cfg.node_id, d->cfg.cluster_name, d->cfg.api_socket);
	if (r < 0)
		log_warn("cannot notify systemd: %s", strerror(-r));
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	char err[512];
	int r;

	/* Bulk data (krg run stdio, net frames) goes through short-lived
	 * buffers of up to a few hundred KiB: keep them in the heap and keep
	 * freed heap up to 16 MiB, instead of a brk/mmap + page faults per
	 * chunk. Bounded: the credit windows bound what is in flight. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);

	if ((r = parse_args(argc, argv, &a)) != 0)
		return r < 0 ? 0 : r;
	int ready_fd = -1;
	if (a.detach && (r = detach_start(&ready_fd)) >= 0)
		return r;
	if (krg_fault_check(err, sizeof(err)) < 0)
		return refuse("%s", err);
	if (sodium_init() < 0)
		return refuse("%s", "libsodium failed to initialise");

	static struct daemon d;
	struct krg_net_options no = { 0 };
	bool joined;
	if (load_identity(&d, &a, &no, &joined, err, sizeof(err)) < 0)
		return refuse("%s", err);
	signal(SIGPIPE, SIG_IGN);
	/* Orphans of krg processes come to us, not to a pid 1 that may not reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	uv_loop_init(&d.loop);
	if (start_all(&d, &no, joined, err, sizeof(err)) < 0)
		return refuse("%s", err);
	announce_ready(&d, ready_fd);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&d.loop);
	if (r == UV_EBUSY) {
		char kinds[256] = "";
		uv_walk(&d.loop, open_handle_cb, kinds);
		log_warn("event loop closed with handles still open:%s", kinds);
	}
	log_info("stopped");
	return d.exit_code;
}
