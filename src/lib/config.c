/* config.c — see config.h. The parser is line based and strict: an
 * unknown key, a bad value or a duplicate node is an error, because a
 * cluster daemon that silently ignores a typo is worse than one that
 * refuses to start. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include "config.h"
#include "log.h"
#include "macro.h"

void krg_config_defaults(struct krg_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->cluster_name, sizeof(c->cluster_name), "krg");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/krg");
	snprintf(c->key_file, sizeof(c->key_file), "/etc/krg/cluster.key");
	snprintf(c->api_socket, sizeof(c->api_socket), KRG_DEFAULT_SOCKET);
	c->encrypt = true;
	c->ipc_intercept = true;
	c->heartbeat_ms = 250;
	c->failure_timeout_ms = 3000;
	c->election_timeout_ms = 1000;
	c->request_timeout_ms = 5000;
	c->log_level = LOG_LVL_INFO;
	c->api_max_conns_per_user = 2048;
	c->api_max_mib_per_user = 64;
	c->api_idle_ms = 30000;
	c->link_idle_ms = 30000;
	c->migrate_max_workers = 4;
	c->kdfs_replicas = 2;
	c->kdfs_stripe_count = 4;       /* docs/kdfs.md, "Striping": why these */
	c->kdfs_stripe_size_kib = 8192;
	c->kdfs_repair_grace_ms = 30000;
	c->kdfs_repair_mibps = 64;
	c->fsview = true;
	snprintf(c->fsview_paths, sizeof(c->fsview_paths), "/tmp /var/tmp /dev/shm /run/user");
	c->fsview_reap_tick_ms = 2000;
	c->fsview_reap_grace_ms = 6000;
}

const char *krg_config_default_path(void)
{
	const char *p = getenv("KRG_CONFIG");
	return p && *p ? p : KRG_DEFAULT_CONFIG;
}

const struct krg_config_node *krg_config_node(const struct krg_config *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	char *end;
	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

/* metrics_listen = off | PORT | ADDRESS:PORT. A bare port is local only:
 * the page tells who runs what, an admin opens it wider on purpose. */
static int parse_metrics_listen(const char *v, struct krg_config *c, char *why, size_t whylen)
{
	char host[64] = "127.0.0.1";
	const char *port = v;
	const char *colon = strrchr(v, ':');
	if (!strcmp(v, "off")) {
		c->metrics_port = 0;
		return 0;
	}
	if (colon) {
		if ((size_t)(colon - v) >= sizeof(host) || colon == v) {
			snprintf(why, whylen, "want off, PORT or ADDRESS:PORT");
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - v), v);
		port = colon + 1;
	}
	struct in_addr a;
	char *end;
	errno = 0;
	unsigned long p = strtoul(port, &end, 10);
	if (inet_pton(AF_INET, host, &a) != 1 || !*port || *end || errno || p == 0 || p > 65535) {
		snprintf(why, whylen, "want off, PORT or ADDRESS:PORT (IPv4, port 1..65535)");
		return -EINVAL;
	}
	snprintf(c->metrics_host, sizeof(c->metrics_host), "%s", host);
	c->metrics_port = (uint16_t)p;
	return 0;
}

/* Absolute paths, none "/" (the view covers node-local trees, not the
 * whole system), at most 16, within the buffer. */
static int check_fsview_paths(const char *v, char *why, size_t whylen)
{
	char buf[1024];
	if (strlen(v) >= sizeof(buf)) {
		snprintf(why, whylen, "too long (at most %zu characters)", sizeof(buf) - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", v);
	int n = 0;
	for (char *save, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (t[0] != '/' || !strcmp(t, "/") || ++n > 16) {
			snprintf(why, whylen, "want up to 16 absolute paths other than /, space separated ('%s')", t);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int krg_config_parse_address(const char *v, char *host, size_t hostlen, uint16_t *port, char *why, size_t whylen)
{
	char h[128];
	unsigned long p = KRG_DEFAULT_PORT;
	if (snprintf(h, sizeof(h), "%s", v) >= (int)sizeof(h)) {
		snprintf(why, whylen, "address '%.40s...' is too long", v);
		return -EINVAL;
	}
	char *colon = strrchr(h, ':');
	if (colon) {
		*colon = '\0';
		if (parse_uint(colon + 1, 65535, &p) < 0 || p == 0) {
			snprintf(why, whylen, "bad port '%s'", colon + 1);
			return -EINVAL;
		}
	}
	struct in_addr a;
	if (inet_pton(AF_INET, h, &a) != 1 || strlen(h) >= hostlen) {
		snprintf(why, whylen, "'%s' is not an IPv4 address", h);
		return -EINVAL;
	}
	snprintf(host, hostlen, "%s", h);
	*port = (uint16_t)p;
	return 0;
}

int krg_config_add_node(struct krg_config *c, uint32_t id, const char *host, uint16_t port)
{
	if (id >= KRG_MAX_NODES || strlen(host) >= sizeof(c->nodes[0].host))
		return -EINVAL;
	struct krg_config_node *n = (struct krg_config_node *)krg_config_node(c, id);
	if (!n) {
		if (c->n_nodes >= KRG_MAX_NODES)
			return -ENOSPC;
		n = &c->nodes[c->n_nodes];
		n->id = id;
		snprintf(n->host, sizeof(n->host), "%s", host);
		n->port = port;
		/* Readers on the loop see the entry whole before the count grows. */
		__atomic_store_n(&c->n_nodes, c->n_nodes + 1, __ATOMIC_RELEASE);
		return 1;
	}
	return 0;
}

/* "ID HOST[:PORT]" */
static int parse_node(const char *v, struct krg_config_node *n, char *why, size_t whylen)
{
	char host[128];
	unsigned long id, port = KRG_DEFAULT_PORT;
	char idbuf[16];
	if (sscanf(v, "%15s %127s", idbuf, host) != 2) {
		snprintf(why, whylen, "expected 'node = ID ADDRESS[:PORT]'");
		return -EINVAL;
	}
	if (parse_uint(idbuf, KRG_MAX_NODES - 1, &id) < 0) {
		snprintf(why, whylen, "node id '%s' is not in 0..%d", idbuf, KRG_MAX_NODES - 1);
		return -EINVAL;
	}
	char *colon = strrchr(host, ':');
	if (colon) {
		*colon = '\0';
		if (parse_uint(colon + 1, 65535, &port) < 0 || port == 0) {
			snprintf(why, whylen, "bad port '%s'", colon + 1);
			return -EINVAL;
		}
	}
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(why, whylen, "'%s' is not an IPv4 address", host);
		return -EINVAL;
	}
	n->id = (uint32_t)id;
	memcpy(n->host, host, strlen(host) + 1); /* an IPv4 address fits */
	n->port = (uint16_t)port;
	return 0;
}

#define MS_MAX 3600000UL

/* Keys whose value is a number in min..max. */
static const struct uint_key {
	const char *key;
	size_t off;          /* of an unsigned in struct krg_config */
	unsigned long min, max;
	const char *min_why; /* said when under min (or not a power of two where one is wanted) */
} uint_keys[] = {
	{ "heartbeat_ms", offsetof(struct krg_config, heartbeat_ms), 1, MS_MAX,
	  "must be at least 1 (the keepalive period, in ms)" },
	{ "failure_timeout_ms", offsetof(struct krg_config, failure_timeout_ms), 0, MS_MAX, NULL },
	{ "election_timeout_ms", offsetof(struct krg_config, election_timeout_ms), 0, MS_MAX, NULL },
	{ "request_timeout_ms", offsetof(struct krg_config, request_timeout_ms), 0, MS_MAX, NULL },
	{ "api_max_conns_per_user", offsetof(struct krg_config, api_max_conns_per_user), 1, 1000000, "must be at least 1" },
	{ "api_max_mib_per_user", offsetof(struct krg_config, api_max_mib_per_user), 8, 65536,
	  "must be at least 8 (one whole request is up to 4 MiB)" },
	{ "api_idle_ms", offsetof(struct krg_config, api_idle_ms), 100, MS_MAX, "must be at least 100" },
	{ "link_idle_ms", offsetof(struct krg_config, link_idle_ms), 0, MS_MAX, NULL },
	{ "migrate_max_workers", offsetof(struct krg_config, migrate_max_workers), 1, 1024, "must be at least 1" },
	{ "kdfs_replicas", offsetof(struct krg_config, kdfs_replicas), 1, 16, "must be at least 1" },
	{ "kdfs_stripe_count", offsetof(struct krg_config, kdfs_stripe_count), 1, 64, "must be at least 1" },
	{ "kdfs_stripe_size_kib", offsetof(struct krg_config, kdfs_stripe_size_kib), 64, 65536,
	  "must be a power of two from 64 to 65536" },
	{ "kdfs_repair_grace_ms", offsetof(struct krg_config, kdfs_repair_grace_ms), 0, 86400000, NULL },
	{ "kdfs_repair_mibps", offsetof(struct krg_config, kdfs_repair_mibps), 1, 100000, "must be at least 1" },
	{ "fsview_reap_tick_ms", offsetof(struct krg_config, fsview_reap_tick_ms), 100, MS_MAX, "must be at least 100" },
	/* A process handed a view's namespace joins it a moment later (a
	 * restore's holder after reading its image): not within a second. */
	{ "fsview_reap_grace_ms", offsetof(struct krg_config, fsview_reap_grace_ms), 1000, MS_MAX,
	  "must be at least 1000 (a process handed a view joins it a moment later)" },
};

/* Keys whose value is on/off. */
static const struct bool_key {
	const char *key;
	size_t off;          /* of a bool in struct krg_config */
} bool_keys[] = {
	{ "encrypt", offsetof(struct krg_config, encrypt) },
	{ "ipc_intercept", offsetof(struct krg_config, ipc_intercept) },
	{ "ipc_backup", offsetof(struct krg_config, ipc_backup) },
	{ "ipc_moves", offsetof(struct krg_config, ipc_moves) },
	{ "fsview", offsetof(struct krg_config, fsview) },
	{ "lazy_links", offsetof(struct krg_config, lazy_links) },
	{ "migrant_outlives_home", offsetof(struct krg_config, migrant_outlives_home) },
};

/* Keys whose value is a string kept as it is. */
static const struct str_key {
	const char *key;
	size_t off, size;    /* of a char array in struct krg_config */
	bool whole;          /* a longer value is refused (else cut) */
	bool absolute;       /* an absolute path */
} str_keys[] = {
	{ "join", offsetof(struct krg_config, join), sizeof(((struct krg_config *)0)->join), true, false },
	{ "cluster_name", offsetof(struct krg_config, cluster_name), sizeof(((struct krg_config *)0)->cluster_name), true, false },
	{ "state_dir", offsetof(struct krg_config, state_dir), sizeof(((struct krg_config *)0)->state_dir), false, false },
	{ "key_file", offsetof(struct krg_config, key_file), sizeof(((struct krg_config *)0)->key_file), false, false },
	{ "api_socket", offsetof(struct krg_config, api_socket), sizeof(((struct krg_config *)0)->api_socket), false, false },
	{ "kdfs_mount", offsetof(struct krg_config, kdfs_mount), sizeof(((struct krg_config *)0)->kdfs_mount), true, true },
	{ "kdfs_dir", offsetof(struct krg_config, kdfs_dir), sizeof(((struct krg_config *)0)->kdfs_dir), true, true },
};

/* A `node = ID ADDRESS[:PORT]` line added to c. */
static int add_node_line(struct krg_config *c, const char *v, char *why, size_t whylen)
{
	struct krg_config_node n;
	int r = parse_node(v, &n, why, whylen);
	if (r == 0 && krg_config_node(c, n.id)) {
		snprintf(why, whylen, "duplicate node id %u", n.id);
		r = -EINVAL;
	}
	/* Two ids at one address would be one krgd answering for both. */
	for (size_t i = 0; r == 0 && i < c->n_nodes; i++)
		if (!strcmp(c->nodes[i].host, n.host) && c->nodes[i].port == n.port) {
			snprintf(why, whylen, "node %u has the same address %s:%u as node %u", n.id, n.host,
				 (unsigned)n.port, c->nodes[i].id);
			r = -EINVAL;
		}
	if (r == 0 && c->n_nodes >= KRG_MAX_NODES) {
		snprintf(why, whylen, "too many nodes");
		r = -EINVAL;
	}
	if (r == 0)
		c->nodes[c->n_nodes++] = n;
	return r;
}

/* Keys found in the tables above. -ENOENT: not one of theirs. */
static int parse_table_key(struct krg_config *c, const char *k, const char *v, char *why, size_t whylen)
{
	char *base = (char *)c;
	for (size_t i = 0; i < ARRAY_SIZE(uint_keys); i++) {
		const struct uint_key *t = &uint_keys[i];
		if (strcmp(k, t->key))
			continue;
		unsigned long u = 0;
		int r = parse_uint(v, t->max, &u);
		/* A stripe unit must divide the 64 MiB chunk. */
		bool pow2 = t->off == offsetof(struct krg_config, kdfs_stripe_size_kib);
		if (r == 0 && (u < t->min || (pow2 && (u & (u - 1))))) {
			snprintf(why, whylen, "%s", t->min_why);
			r = -EINVAL;
		}
		*(unsigned *)(base + t->off) = (unsigned)u;
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(bool_keys); i++)
		if (!strcmp(k, bool_keys[i].key))
			return parse_bool(v, (bool *)(base + bool_keys[i].off));
	for (size_t i = 0; i < ARRAY_SIZE(str_keys); i++) {
		const struct str_key *t = &str_keys[i];
		if (strcmp(k, t->key))
			continue;
		if ((t->absolute && v[0] != '/') || (t->whole && strlen(v) >= t->size)) {
			if (t->absolute)
				snprintf(why, whylen, "want an absolute path");
			return -EINVAL;
		}
		snprintf(base + t->off, t->size, "%s", v);
		return 0;
	}
	return -ENOENT;
}

/* One key's value into c: 0, -EINVAL (why may say why), -ENOENT (no
 * such key). */
static int parse_key(struct krg_config *c, const char *k, const char *v, char *why, size_t whylen)
{
	unsigned long u = 0;
	int r;
	if (!strcmp(k, "node_id")) {
		r = parse_uint(v, KRG_MAX_NODES - 1, &u);
		c->node_id = (uint32_t)u;
		c->has_node_id = r == 0;
		return r;
	}
	if (!strcmp(k, "address"))
		return krg_config_parse_address(v, c->address_host, sizeof(c->address_host), &c->address_port, why, whylen);
	if (!strcmp(k, "node"))
		return add_node_line(c, v, why, whylen);
	if (!strcmp(k, "metrics_listen"))
		return parse_metrics_listen(v, c, why, whylen);
	if (!strcmp(k, "fsview_paths")) {
		r = check_fsview_paths(v, why, whylen);
		if (r == 0)
			snprintf(c->fsview_paths, sizeof(c->fsview_paths), "%s", v);
		return r;
	}
	if (!strcmp(k, "log_level")) {
		r = krg_log_parse_level(v);
		if (r < 0)
			return r;
		c->log_level = r;
		return 0;
	}
	return parse_table_key(c, k, v, why, whylen);
}

/* One line (comment cut): 0, or -EINVAL with err set. */
static int parse_line(struct krg_config *c, const char *name, unsigned lineno, char *line, char *err, size_t errlen)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *l = trim(line);
	if (!*l)
		return 0;
	char *eq = strchr(l, '=');
	if (!eq) {
		snprintf(err, errlen, "%s:%u: expected 'key = value', got '%s'", name, lineno, l);
		return -EINVAL;
	}
	*eq = '\0';
	char *k = trim(l), *v = trim(eq + 1);
	char why[256] = "";
	if (!*v) {
		snprintf(err, errlen, "%s:%u: '%s' has no value", name, lineno, k);
		return -EINVAL;
	}
	int r = parse_key(c, k, v, why, sizeof(why));
	if (r == -ENOENT) {
		snprintf(err, errlen, "%s:%u: unknown key '%s'", name, lineno, k);
		return -EINVAL;
	}
	if (r < 0) {
		if (why[0])
			snprintf(err, errlen, "%s:%u: %s: %s", name, lineno, k, why);
		else
			snprintf(err, errlen, "%s:%u: bad value '%s' for %s", name, lineno, v, k);
		return -EINVAL;
	}
	return 0;
}

/* What no single line can say wrong. */
static int check_whole(const struct krg_config *c, const char *name, char *err, size_t errlen)
{
	/* A machine joining a running cluster (docs/reconfiguration.md) has
	 * no id yet: the cluster gives it one; it says where it listens. */
	if (!c->has_node_id && !c->address_host[0]) {
		snprintf(err, errlen, "%s: node_id is not set (or, to join a running cluster, set address)", name);
		return -EINVAL;
	}
	if (c->has_node_id && !krg_config_node(c, c->node_id)) {
		snprintf(err, errlen, "%s: no 'node = %u ADDRESS' line for this node's id", name, c->node_id);
		return -EINVAL;
	}
	if (c->failure_timeout_ms < 2 * c->heartbeat_ms) {
		snprintf(err, errlen, "%s: failure_timeout_ms (%u) must be at least twice heartbeat_ms (%u)", name,
			 c->failure_timeout_ms, c->heartbeat_ms);
		return -EINVAL;
	}
	if (c->election_timeout_ms < 100) {
		snprintf(err, errlen, "%s: election_timeout_ms must be at least 100", name);
		return -EINVAL;
	}
	return 0;
}

int krg_config_parse(const char *name, const char *text, struct krg_config *c, char *err, size_t errlen)
{
	_cleanup_free_ char *copy = strdup(text);
	unsigned lineno = 0;

	if (!copy)
		return -ENOMEM;
	krg_config_defaults(c);
	/* strtok_r skips empty lines, so count newlines by hand. */
	for (char *line = copy, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		int r = parse_line(c, name, ++lineno, line, err, errlen);
		if (r < 0)
			return r;
	}
	int r = check_whole(c, name, err, errlen);
	if (r < 0)
		return r;
	snprintf(c->path, sizeof(c->path), "%s", name);
	return 0;
}

int krg_config_load(const char *path, struct krg_config *c, char *err, size_t errlen)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		snprintf(err, errlen, "cannot read config %s: %s", path, strerror(-r));
		return r;
	}
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f)) {
		int r = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot read config %s: %s", path, strerror(-r));
		return r;
	}
	if (n == sizeof(buf) - 1) {
		snprintf(err, errlen, "%s: file is larger than 64 KiB", path);
		return -EFBIG;
	}
	buf[n] = '\0';
	return krg_config_parse(path, buf, c, err, errlen);
}
