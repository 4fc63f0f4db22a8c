/* Unit tests for src/lib/config.c: every error names file:line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include "lib/config.h"

static const char good[] =
	"# comment\n"
	"node_id = 2\n"
	"cluster_name = lab   # trailing comment\n"
	"node = 1 10.0.0.1:7480\n"
	"node = 2 10.0.0.2\n"
	"encrypt = off\n"
	"heartbeat_ms = 100\n"
	"failure_timeout_ms = 2000\n";

static void test_good(void **state)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_parse("t.conf", good, &c, err, sizeof(err)), 0);
	assert_int_equal(c.node_id, 2);
	assert_string_equal(c.cluster_name, "lab");
	assert_int_equal(c.n_nodes, 2);
	assert_string_equal(krg_config_node(&c, 2)->host, "10.0.0.2");
	assert_int_equal(krg_config_node(&c, 2)->port, KRG_DEFAULT_PORT);
	assert_int_equal(krg_config_node(&c, 1)->port, 7480);
	assert_false(c.encrypt);
	assert_int_equal(c.failure_timeout_ms, 2000);
	assert_string_equal(c.api_socket, KRG_DEFAULT_SOCKET);
	assert_int_equal(c.api_max_conns_per_user, 2048);
	assert_int_equal(c.migrate_max_workers, 4);
	assert_int_equal(c.kdfs_stripe_count, 4);
	assert_int_equal(c.kdfs_stripe_size_kib, 8192);
	assert_true(c.fsview);
	assert_false(c.migrant_outlives_home);
	assert_string_equal(c.fsview_paths, "/tmp /var/tmp /dev/shm /run/user");
	assert_int_equal(c.fsview_reap_tick_ms, 2000);
	assert_int_equal(c.fsview_reap_grace_ms, 6000);
}

static void test_limits(void **state)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_parse("t.conf",
					  "node_id = 1\nnode = 1 10.0.0.1\napi_max_conns_per_user = 7\n"
					  "api_max_mib_per_user = 8\napi_idle_ms = 250\nmigrate_max_workers = 2\n"
					  "fsview = off\nfsview_paths = /tmp /scratch\nmigrant_outlives_home = on\n"
					  "fsview_reap_tick_ms = 500\nfsview_reap_grace_ms = 2500\n",
					  &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.api_max_conns_per_user, 7);
	assert_int_equal(c.api_max_mib_per_user, 8);
	assert_int_equal(c.api_idle_ms, 250);
	assert_int_equal(c.migrate_max_workers, 2);
	assert_false(c.fsview);
	assert_true(c.migrant_outlives_home);
	assert_string_equal(c.fsview_paths, "/tmp /scratch");
	assert_int_equal(c.fsview_reap_tick_ms, 500);
	assert_int_equal(c.fsview_reap_grace_ms, 2500);
}

static void expect_error(const char *text, const char *needle)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_parse("t.conf", text, &c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void test_errors(void **state)
{
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nbogus = 3\n", "t.conf:3: unknown key 'bogus'");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nnode = 1 10.0.0.2\n", "t.conf:3: node: duplicate node id 1");
	expect_error("node_id = 300\n", "t.conf:1: bad value '300' for node_id");
	expect_error("node_id = 1\nnode = 1 nothost\n", "t.conf:2: node: 'nothost' is not an IPv4 address");
	expect_error("node_id = 1\nnode = 1 10.0.0.1:99999\n", "t.conf:2: node: bad port");
	expect_error("node_id = 1\n\n\njunk\n", "t.conf:4: expected 'key = value'");
	expect_error("node_id = 1\nnode = 2 10.0.0.2\n", "no 'node = 1 ADDRESS' line");
	expect_error("node = 2 10.0.0.2\n", "node_id is not set");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nencrypt = maybe\n", "t.conf:3: bad value 'maybe' for encrypt");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nlog_level =\n", "t.conf:3: 'log_level' has no value");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\napi_max_conns_per_user = 0\n",
		     "t.conf:3: api_max_conns_per_user: must be at least 1");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\napi_max_mib_per_user = 4\n",
		     "t.conf:3: api_max_mib_per_user: must be at least 8");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\napi_idle_ms = 5\n", "t.conf:3: api_idle_ms: must be at least 100");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nmigrate_max_workers = 0\n",
		     "t.conf:3: migrate_max_workers: must be at least 1");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nfsview_paths = /tmp /\n", "t.conf:3: fsview_paths: want up to 16 absolute paths");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nfsview_paths = tmp\n", "t.conf:3: fsview_paths: want up to 16 absolute paths");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nfsview_reap_tick_ms = 50\n",
		     "t.conf:3: fsview_reap_tick_ms: must be at least 100");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nfsview_reap_grace_ms = 10\n",
		     "t.conf:3: fsview_reap_grace_ms: must be at least 1000 (a process handed a view joins it a moment later)");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nfsview_reap_grace_ms = 2s\n",
		     "t.conf:3: bad value '2s' for fsview_reap_grace_ms");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nheartbeat_ms = 0\n", "t.conf:3: heartbeat_ms: must be at least 1");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nkdfs_stripe_size_kib = 96\n",
		     "t.conf:3: kdfs_stripe_size_kib: must be a power of two from 64 to 65536");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nkdfs_stripe_count = 0\n", "t.conf:3: kdfs_stripe_count: must be at least 1");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nheartbeat_ms = 500\nfailure_timeout_ms = 600\n",
		     "t.conf: failure_timeout_ms (600) must be at least twice heartbeat_ms (500)");
	expect_error("node_id = 1\nnode = 1 10.0.0.1\nnode = 2 10.0.0.1:7480\n",
		     "t.conf:3: node: node 2 has the same address 10.0.0.1:7480 as node 1");
}

/* Two krgd's on one host on different ports are two addresses. */
static void test_same_host_other_port(void **state)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_parse("t.conf", "node_id = 1\nnode = 1 10.0.0.1\nnode = 2 10.0.0.1:7481\n", &c, err,
					  sizeof(err)), 0);
}

static void test_missing_file(void **state)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_load("/nonexistent/krgd.conf", &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/krgd.conf"));
}

/* A directory opens but cannot be read: the reason is in the message. */
static void test_unreadable(void **state)
{
	struct krg_config c;
	char err[256] = "";
	assert_int_equal(krg_config_load("/", &c, err, sizeof(err)), -EISDIR);
	if (!strstr(err, "cannot read config /: Is a directory"))
		fail_msg("error '%s' does not say why", err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_same_host_other_port),
		cmocka_unit_test(test_unreadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
