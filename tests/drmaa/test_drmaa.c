/* test_drmaa — the DRMAA 1.0 C binding of krg (src/drmaa), every function
 * and its error paths.
 *
 * Group "unit" needs no cluster: strings, vectors, stat decoders, time and
 * native-specification parsing, every call before drmaa_init, bad contact
 * strings, an unreachable krgd, an unsafe state directory.
 * Group "cluster" (KRG_DRMAA_CLUSTER=1, run inside a vcluster node by
 * tests/drmaa/cluster.sh): templates, submission, control, waits, limits,
 * start times, files, threads. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "drmaa.h"
#include "drmaa/drmaa-int.h"

#define E DRMAA_ERROR_STRING_BUFFER
static char diag[E];
static char scratch[PATH_MAX]; /* a directory for job files */

/* ---------------- unit ---------------- */

static void test_strerror(void **st)
{
	for (int i = DRMAA_ERRNO_SUCCESS; i < DRMAA_NO_ERRNO; i++) {
		const char *s = drmaa_strerror(i);
		assert_non_null(s);
		assert_true(strlen(s) > 5);
		assert_null(strstr(s, "unknown DRMAA"));
	}
	assert_non_null(strstr(drmaa_strerror(-1), "unknown"));
	assert_non_null(strstr(drmaa_strerror(DRMAA_NO_ERRNO), "unknown"));
	assert_non_null(strstr(drmaa_strerror(1000), "unknown"));
	/* The standard values (python3-drmaa and others hard-code them). */
	assert_int_equal(DRMAA_ERRNO_NO_MORE_ELEMENTS, 25);
	assert_int_equal(DRMAA_ERRNO_INVALID_JOB, 18);
	assert_int_equal(DRMAA_PS_FAILED, 0x40);
	assert_int_equal(DRMAA_CONTROL_TERMINATE, 4);
}

static void test_strings_before_init(void **st)
{
	unsigned ma = 9, mi = 9;
	char buf[DRMAA_ATTR_BUFFER];
	assert_int_equal(drmaa_version(&ma, &mi, diag, E), 0);
	assert_int_equal(ma, 1);
	assert_int_equal(mi, 0);
	assert_int_equal(drmaa_version(NULL, &mi, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_DRM_system(buf, sizeof(buf), diag, E), 0);
	assert_non_null(strstr(buf, "krg"));
	assert_int_equal(drmaa_get_DRMAA_implementation(buf, sizeof(buf), diag, E), 0);
	assert_non_null(strstr(buf, "DRMAA 1.0"));
	assert_int_equal(drmaa_get_contact(buf, sizeof(buf), diag, E), 0);
	assert_string_equal(buf, "");
	assert_int_equal(drmaa_get_contact(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_DRM_system(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_DRMAA_implementation(buf, 0, NULL, 0), DRMAA_ERRNO_INVALID_ARGUMENT);
}

static void test_no_session(void **st)
{
	drmaa_job_template_t *jt = NULL;
	drmaa_attr_names_t *names = NULL;
	drmaa_attr_values_t *vals = NULL;
	drmaa_job_ids_t *ids = NULL;
	char buf[128];
	int stat, ps;
	const char *all[] = { DRMAA_JOB_IDS_SESSION_ALL, NULL };
	const char *argv[] = { "x", NULL };
#define NOSESS(call)                                                         \
	do {                                                                 \
		diag[0] = 0;                                                 \
		assert_int_equal(call, DRMAA_ERRNO_NO_ACTIVE_SESSION);       \
		assert_non_null(strstr(diag, "drmaa_init"));                 \
	} while (0)
	NOSESS(drmaa_exit(diag, E));
	NOSESS(drmaa_allocate_job_template(&jt, diag, E));
	NOSESS(drmaa_delete_job_template((drmaa_job_template_t *)buf, diag, E));
	NOSESS(drmaa_set_attribute((drmaa_job_template_t *)buf, DRMAA_WD, "/", diag, E));
	NOSESS(drmaa_get_attribute((drmaa_job_template_t *)buf, DRMAA_WD, buf, sizeof(buf), diag, E));
	NOSESS(drmaa_set_vector_attribute((drmaa_job_template_t *)buf, DRMAA_V_ARGV, argv, diag, E));
	NOSESS(drmaa_get_vector_attribute((drmaa_job_template_t *)buf, DRMAA_V_ARGV, &vals, diag, E));
	NOSESS(drmaa_get_attribute_names(&names, diag, E));
	NOSESS(drmaa_get_vector_attribute_names(&names, diag, E));
	NOSESS(drmaa_run_job(buf, sizeof(buf), (drmaa_job_template_t *)buf, diag, E));
	NOSESS(drmaa_run_bulk_jobs(&ids, (drmaa_job_template_t *)buf, 1, 2, 1, diag, E));
	NOSESS(drmaa_control("x.1", DRMAA_CONTROL_SUSPEND, diag, E));
	NOSESS(drmaa_synchronize(all, 0, 1, diag, E));
	NOSESS(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, buf, sizeof(buf), &stat, 0, &vals, diag, E));
	NOSESS(drmaa_job_ps("x.1", &ps, diag, E));
	/* No diagnosis buffer: still the code, no crash. */
	assert_int_equal(drmaa_exit(NULL, 0), DRMAA_ERRNO_NO_ACTIVE_SESSION);
	assert_null(jt);
}

static void test_vectors(void **st)
{
	char buf[8];
	size_t n = 9;
	assert_int_equal(drmaa_get_next_attr_name(NULL, buf, sizeof(buf)), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_next_attr_value(NULL, buf, sizeof(buf)), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_next_job_id(NULL, buf, sizeof(buf)), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_num_attr_names(NULL, &n), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_num_attr_values(NULL, &n), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_num_job_ids(NULL, &n), DRMAA_ERRNO_INVALID_ARGUMENT);
	drmaa_release_attr_names(NULL);
	drmaa_release_attr_values(NULL);
	drmaa_release_job_ids(NULL);
	drmaa_job_ids_t *ids = calloc(1, sizeof(*ids));
	assert_int_equal(drmaa_strv_add(&ids->s, "abcdefghij"), 0);
	assert_int_equal(drmaa_strv_add(&ids->s, "b"), 0);
	assert_int_equal(drmaa_get_num_job_ids(ids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(drmaa_get_num_job_ids(ids, NULL), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_next_job_id(ids, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abcdefg"); /* truncated to the buffer */
	assert_int_equal(drmaa_get_next_job_id(ids, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "b");
	assert_int_equal(drmaa_get_next_job_id(ids, buf, sizeof(buf)), DRMAA_ERRNO_NO_MORE_ELEMENTS);
	drmaa_release_job_ids(ids);
}

static void test_stat_decoders(void **st)
{
	struct krg_job j = { .phase = KRG_JOB_DONE, .exited = true, .code = 7 };
	int s = drmaa_stat_encode(&j), v;
	char sig[DRMAA_SIGNAL_BUFFER];
	assert_int_equal(drmaa_wifexited(&v, s, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wexitstatus(&v, s, diag, E), 0);
	assert_int_equal(v, 7);
	assert_int_equal(drmaa_wifsignaled(&v, s, diag, E), 0);
	assert_int_equal(v, 0);
	assert_int_equal(drmaa_wifaborted(&v, s, diag, E), 0);
	assert_int_equal(v, 0);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), s, diag, E), 0);
	assert_string_equal(sig, "");
	j = (struct krg_job){ .phase = KRG_JOB_DONE, .signaled = true, .signal = SIGSEGV, .core = true };
	s = drmaa_stat_encode(&j);
	assert_int_equal(drmaa_wifexited(&v, s, diag, E), 0);
	assert_int_equal(v, 0);
	assert_int_equal(drmaa_wifsignaled(&v, s, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), s, diag, E), 0);
	assert_string_equal(sig, "SIGSEGV");
	assert_int_equal(drmaa_wcoredump(&v, s, diag, E), 0);
	assert_int_equal(v, 1);
	j = (struct krg_job){ .phase = KRG_JOB_DONE, .aborted = true };
	s = drmaa_stat_encode(&j);
	assert_int_equal(drmaa_wifaborted(&v, s, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wifexited(&v, s, diag, E), 0);
	assert_int_equal(v, 0);
	/* A job whose shepherd vanished never reported: aborted. */
	j = (struct krg_job){ .phase = KRG_JOB_RUNNING };
	assert_int_equal(drmaa_wifaborted(&v, drmaa_stat_encode(&j), diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wifexited(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wexitstatus(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wifsignaled(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wtermsig(NULL, 0, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wtermsig(sig, 0, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wcoredump(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wifaborted(NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
}

static void test_time_formats(void **st)
{
	struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 26, .tm_hour = 12, .tm_isdst = -1 };
	time_t now = mktime(&tm);
	int64_t t;
	assert_int_equal(drmaa_time_parse("13:30", now, &t), 0);
	assert_int_equal(t, now + 5400);
	assert_int_equal(drmaa_time_parse("11:00", now, &t), 0); /* passed today: tomorrow */
	assert_int_equal(t, now + 23 * 3600);
	assert_int_equal(drmaa_time_parse("12:00:30", now, &t), 0);
	assert_int_equal(t, now + 30);
	assert_int_equal(drmaa_time_parse("27 12:00", now, &t), 0);
	assert_int_equal(t, now + 86400);
	assert_int_equal(drmaa_time_parse("12/01 12:00", now, &t), 0);
	assert_int_equal(t, now + 5 * 86400);
	assert_int_equal(drmaa_time_parse("2027/11/26 12:00", now, &t), 0);
	assert_true(t > now + 364 * 86400);
	assert_int_equal(drmaa_time_parse("27/11/26 12:00", now, &t), 0);
	assert_int_equal(drmaa_time_parse("2026/11/26 12:00 +00:00", now, &t), 0);
	struct tm u = { .tm_year = 126, .tm_mon = 10, .tm_mday = 26, .tm_hour = 12 };
	assert_int_equal(t, timegm(&u));
	assert_int_equal(drmaa_time_parse("2026/11/26 12:00 -02:30", now, &t), 0);
	assert_int_equal(t, timegm(&u) + 9000);
	const char *bad[] = { "", "tomorrow", "25:00", "12:60", "12", "1:2:3:4", "2026/13/01 10:00", "32 10:00",
			      "10:00 +5", "10:00 x", "123/11/26 10:00", "10:00 +01:00 extra", "12:", ":30" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(drmaa_time_parse(bad[i], now, &t), -EINVAL);
	assert_int_equal(drmaa_duration_parse("90", &t), 0);
	assert_int_equal(t, 90);
	assert_int_equal(drmaa_duration_parse("2:30", &t), 0);
	assert_int_equal(t, 150);
	assert_int_equal(drmaa_duration_parse("1:00:05", &t), 0);
	assert_int_equal(t, 3605);
	const char *badd[] = { "", "x", "1:2:3:4", "-5", "1:", "1.5" };
	for (size_t i = 0; i < sizeof(badd) / sizeof(badd[0]); i++)
		assert_int_equal(drmaa_duration_parse(badd[i], &t), -EINVAL);
}

static void test_native_and_paths(void **st)
{
	struct drmaa_native n;
	assert_int_equal(drmaa_native_parse("-n 2", &n, diag, E), 0);
	assert_true(n.has_node && n.node == 2 && !n.auto_);
	assert_int_equal(drmaa_native_parse("--node=3", &n, diag, E), 0);
	assert_int_equal(n.node, 3);
	assert_int_equal(drmaa_native_parse("-n3", &n, diag, E), 0);
	assert_int_equal(n.node, 3);
	assert_int_equal(drmaa_native_parse("  --auto ", &n, diag, E), 0);
	assert_true(n.auto_ && !n.has_node);
	assert_int_equal(drmaa_native_parse("", &n, diag, E), 0);
	assert_int_equal(drmaa_native_parse("-n", &n, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_int_equal(drmaa_native_parse("-n 256", &n, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_int_equal(drmaa_native_parse("-n x", &n, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_int_equal(drmaa_native_parse("-n -1", &n, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_int_equal(drmaa_native_parse("-q all.q", &n, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_non_null(strstr(diag, "-q"));
	assert_int_equal(drmaa_native_parse("-n 1 --auto", &n, diag, E), DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES);
	const char *p;
	char host[256], v[300];
	assert_int_equal(drmaa_path_parse("p", ":/x/y", &p, diag, E), 0);
	assert_string_equal(p, "/x/y");
	assert_int_equal(drmaa_path_parse("p", "/x:y", &p, diag, E), 0);
	assert_string_equal(p, "/x:y");
	assert_int_equal(drmaa_path_parse("p", "localhost:rel", &p, diag, E), 0);
	assert_string_equal(p, "rel");
	gethostname(host, sizeof(host));
	snprintf(v, sizeof(v), "%s:/a", host);
	assert_int_equal(drmaa_path_parse("p", v, &p, diag, E), 0);
	assert_int_equal(drmaa_path_parse("p", "elsewhere.example:/a", &p, diag, E),
			 DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_non_null(strstr(diag, "elsewhere.example"));
	assert_int_equal(drmaa_path_parse("p", ":", &p, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
}

static void test_init_failures(void **st)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/state-unit", scratch);
	setenv("KRG_DRMAA_DIR", dir, 1);
	assert_int_equal(drmaa_init("bad/name", diag, E), DRMAA_ERRNO_INVALID_CONTACT_STRING);
	assert_int_equal(drmaa_init("x y", diag, E), DRMAA_ERRNO_INVALID_CONTACT_STRING);
	assert_int_equal(drmaa_init("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", diag, E),
			 DRMAA_ERRNO_INVALID_CONTACT_STRING);
	/* No krgd there. */
	const char *sock = getenv("KRG_SOCKET");
	char saved[PATH_MAX] = "";
	if (sock)
		snprintf(saved, sizeof(saved), "%s", sock);
	setenv("KRG_SOCKET", "/nonexistent/krgd.sock", 1);
	assert_int_equal(drmaa_init(NULL, diag, E), DRMAA_ERRNO_DRMS_INIT_FAILED);
	assert_non_null(strstr(diag, "krgd"));
	if (*saved)
		setenv("KRG_SOCKET", saved, 1);
	else
		unsetenv("KRG_SOCKET");
	/* A state directory others can read is refused. */
	chmod(dir, 0755);
	assert_int_equal(drmaa_init(NULL, diag, E), DRMAA_ERRNO_DRMS_INIT_FAILED);
	assert_non_null(strstr(diag, "0700"));
	chmod(dir, 0700);
	unsetenv("KRG_DRMAA_DIR");
}

/* ---------------- cluster ---------------- */

static drmaa_job_template_t *tmpl(const char *cmd, const char *const *args)
{
	drmaa_job_template_t *jt;
	assert_int_equal(drmaa_allocate_job_template(&jt, diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, cmd, diag, E), 0);
	if (args)
		assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, (const char **)args, diag, E), 0);
	return jt;
}

static int cl_setup(void **st)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/state", scratch);
	setenv("KRG_DRMAA_DIR", dir, 1);
	int r = drmaa_init(NULL, diag, E);
	if (r)
		fprintf(stderr, "drmaa_init: %s\n", diag);
	return r;
}

static int cl_teardown(void **st)
{
	return drmaa_exit(diag, E);
}

static void test_session(void **st)
{
	char c[DRMAA_CONTACT_BUFFER], s[DRMAA_DRM_SYSTEM_BUFFER];
	assert_int_equal(drmaa_init(NULL, diag, E), DRMAA_ERRNO_ALREADY_ACTIVE_SESSION);
	assert_int_equal(drmaa_get_contact(c, sizeof(c), diag, E), 0);
	assert_true(krg_jobs_session_valid(c));
	assert_int_equal(drmaa_get_DRM_system(s, sizeof(s), diag, E), 0);
	assert_non_null(strstr(s, "cluster"));
	struct stat sb;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/state/%s", scratch, c);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
}

static void test_attributes(void **st)
{
	drmaa_job_template_t *jt;
	drmaa_attr_names_t *names;
	drmaa_attr_values_t *vals;
	char v[DRMAA_ATTR_BUFFER];
	size_t n;
	assert_int_equal(drmaa_allocate_job_template(NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_allocate_job_template(&jt, diag, E), 0);
	/* Every scalar name listed can be set and read back. */
	assert_int_equal(drmaa_get_attribute_names(&names, diag, E), 0);
	assert_int_equal(drmaa_get_num_attr_names(names, &n), 0);
	assert_int_equal(n, 17);
	const struct {
		const char *name, *value;
	} good[] = {
		{ DRMAA_REMOTE_COMMAND, "/bin/true" }, { DRMAA_JS_STATE, DRMAA_SUBMISSION_STATE_HOLD },
		{ DRMAA_WD, "$drmaa_hd_ph$/x" }, { DRMAA_JOB_CATEGORY, "short" },
		{ DRMAA_NATIVE_SPECIFICATION, "-n 1" }, { DRMAA_BLOCK_EMAIL, "1" },
		{ DRMAA_START_TIME, "12:00" }, { DRMAA_JOB_NAME, "name" },
		{ DRMAA_INPUT_PATH, ":/dev/null" }, { DRMAA_OUTPUT_PATH, ":$drmaa_wd_ph$/o.$drmaa_incr_ph$" },
		{ DRMAA_ERROR_PATH, "localhost:/tmp/e" }, { DRMAA_JOIN_FILES, "y" },
		{ DRMAA_DEADLINE_TIME, "2030/01/01 00:00" }, { DRMAA_WCT_HLIMIT, "1:00:00" },
		{ DRMAA_WCT_SLIMIT, "59:00" }, { DRMAA_DURATION_HLIMIT, "3600" }, { DRMAA_DURATION_SLIMIT, "60" },
	};
	char name[DRMAA_ATTR_BUFFER];
	size_t seen = 0;
	while (drmaa_get_next_attr_name(names, name, sizeof(name)) == 0) {
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
			if (!strcmp(good[i].name, name)) {
				assert_int_equal(drmaa_set_attribute(jt, name, good[i].value, diag, E), 0);
				assert_int_equal(drmaa_get_attribute(jt, name, v, sizeof(v), diag, E), 0);
				assert_string_equal(v, good[i].value);
				seen++;
			}
	}
	assert_int_equal(seen, 17);
	drmaa_release_attr_names(names);
	/* Bad names and values. */
	const struct {
		const char *name, *value;
		int code;
	} bad[] = {
		{ "drmaa_colour", "blue", DRMAA_ERRNO_INVALID_ARGUMENT },
		{ DRMAA_V_ARGV, "x", DRMAA_ERRNO_INVALID_ARGUMENT },
		{ DRMAA_TRANSFER_FILES, "i", DRMAA_ERRNO_INVALID_ARGUMENT },
		{ DRMAA_REMOTE_COMMAND, "", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_JS_STATE, "drmaa_sideways", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_BLOCK_EMAIL, "yes", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_JOIN_FILES, "true", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_START_TIME, "noon", DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT },
		{ DRMAA_DEADLINE_TIME, "99:99", DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT },
		{ DRMAA_WCT_HLIMIT, "1h", DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT },
		{ DRMAA_WCT_SLIMIT, "0", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_DURATION_HLIMIT, "", DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT },
		{ DRMAA_NATIVE_SPECIFICATION, "-l h_vmem=1G", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_NATIVE_SPECIFICATION, "-n 1 -a", DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES },
		{ DRMAA_OUTPUT_PATH, "otherhost.invalid:/x", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
		{ DRMAA_INPUT_PATH, ":", DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		diag[0] = 0;
		assert_int_equal(drmaa_set_attribute(jt, bad[i].name, bad[i].value, diag, E), bad[i].code);
		assert_true(strlen(diag) > 5);
	}
	char big[DRMAA_ATTR_BUFFER + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_JOB_NAME, big, diag, E), DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	assert_int_equal(drmaa_set_attribute(jt, NULL, "x", diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_WD, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_attribute(jt, "nope", v, sizeof(v), diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_attribute(jt, DRMAA_WD, NULL, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	/* Old values kept after a refused set. */
	assert_int_equal(drmaa_get_attribute(jt, DRMAA_JS_STATE, v, sizeof(v), diag, E), 0);
	assert_string_equal(v, DRMAA_SUBMISSION_STATE_HOLD);
	/* Vectors. */
	assert_int_equal(drmaa_get_vector_attribute_names(&names, diag, E), 0);
	assert_int_equal(drmaa_get_num_attr_names(names, &n), 0);
	assert_int_equal(n, 3);
	drmaa_release_attr_names(names);
	const char *args[] = { "-c", "echo $X", NULL }, *env[] = { "X=1", "Y=a=b", NULL },
		   *mail[] = { "a@b.c", NULL }, *badenv[] = { "NOEQUALS", NULL }, *badmail[] = { "nobody", NULL };
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, args, diag, E), 0);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ENV, env, diag, E), 0);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_EMAIL, mail, diag, E), 0);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ENV, badenv, diag, E),
			 DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_EMAIL, badmail, diag, E),
			 DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_WD, args, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_vector_attribute(jt, DRMAA_V_ENV, &vals, diag, E), 0);
	assert_int_equal(drmaa_get_num_attr_values(vals, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(drmaa_get_next_attr_value(vals, v, sizeof(v)), 0);
	assert_string_equal(v, "X=1");
	assert_int_equal(drmaa_get_next_attr_value(vals, v, sizeof(v)), 0);
	assert_string_equal(v, "Y=a=b");
	assert_int_equal(drmaa_get_next_attr_value(vals, v, sizeof(v)), DRMAA_ERRNO_NO_MORE_ELEMENTS);
	drmaa_release_attr_values(vals);
	assert_int_equal(drmaa_get_vector_attribute(jt, "drmaa_v_nope", &vals, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_get_vector_attribute(jt, DRMAA_V_ENV, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_delete_job_template(jt, diag, E), 0);
	/* A deleted template is refused, never dereferenced. */
	assert_int_equal(drmaa_delete_job_template(jt, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_WD, "/", diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_delete_job_template(NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
}

static int wait_ps(const char *id, int want, int secs)
{
	int ps = -1;
	for (int i = 0; i < secs * 20; i++) {
		assert_int_equal(drmaa_job_ps(id, &ps, diag, E), 0);
		if (ps == want)
			break;
		usleep(50000);
	}
	return ps;
}

static void test_run_and_wait(void **st)
{
	const char *args[] = { "-c", "echo out $X; echo err >&2; read l; echo got $l; exit 5", NULL };
	const char *env[] = { "X=fromenv", NULL };
	drmaa_job_template_t *jt = tmpl("/bin/sh", args);
	char id[128], out[128], path[PATH_MAX + 64], buf[256];
	int stat, v;
	drmaa_attr_values_t *ru;
	assert_int_equal(drmaa_set_vector_attribute(jt, DRMAA_V_ENV, env, diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_WD, scratch, diag, E), 0);
	snprintf(path, sizeof(path), "%s/in.txt", scratch);
	FILE *f = fopen(path, "w");
	fputs("line one\n", f);
	fclose(f);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_INPUT_PATH, ":in.txt", diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, ":$drmaa_wd_ph$/o.txt", diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_ERROR_PATH, ":e.txt", diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "-n 2", diag, E), 0);
	assert_int_equal(drmaa_run_job(id, 8, jt, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_job(NULL, 0, jt, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_job(id, sizeof(id), NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, DRMAA_TIMEOUT_WAIT_FOREVER, &ru, diag, E), 0);
	assert_string_equal(out, id);
	assert_int_equal(drmaa_wifexited(&v, stat, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wexitstatus(&v, stat, diag, E), 0);
	assert_int_equal(v, 5);
	bool cpu = false, mem = false, wall = false, node2 = false;
	while (drmaa_get_next_attr_value(ru, buf, sizeof(buf)) == 0) {
		cpu |= !strncmp(buf, "cpu=", 4);
		mem |= !strncmp(buf, "mem=", 4) && atoi(buf + 4) > 0;
		wall |= !strncmp(buf, "wallclock=", 10);
		node2 |= !strcmp(buf, "node=2");
	}
	assert_true(cpu && mem && wall && node2);
	drmaa_release_attr_values(ru);
	snprintf(path, sizeof(path), "%s/o.txt", scratch);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "out fromenv\n");
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "got line one\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/e.txt", scratch);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "err\n");
	fclose(f);
	/* Reaped: gone for wait, still known to job_ps. */
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, 0, NULL, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_job_ps(id, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_DONE);
	/* Bad arguments. */
	assert_int_equal(drmaa_wait(NULL, out, sizeof(out), &stat, 0, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, -5, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wait("garbage", out, sizeof(out), &stat, 0, NULL, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_job_ps("garbage", &v, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_job_ps(id, NULL, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_job_ps(NULL, &v, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	/* No remote command; a template of nobody's. */
	drmaa_job_template_t *empty;
	assert_int_equal(drmaa_allocate_job_template(&empty, diag, E), 0);
	assert_int_equal(drmaa_run_job(id, sizeof(id), empty, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_non_null(strstr(diag, DRMAA_REMOTE_COMMAND));
	assert_int_equal(drmaa_run_job(id, sizeof(id), (drmaa_job_template_t *)buf, diag, E),
			 DRMAA_ERRNO_INVALID_ARGUMENT);
	drmaa_delete_job_template(empty, diag, E);
	drmaa_delete_job_template(jt, diag, E);
}

static void test_failures(void **st)
{
	drmaa_job_template_t *jt = tmpl("/no/such/command", NULL);
	char id[128], out[128];
	int stat, v, ps;
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wifaborted(&v, stat, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_job_ps(id, &ps, diag, E), 0);
	assert_int_equal(ps, DRMAA_PS_FAILED);
	/* An unknown node, a passed deadline, conflicting limits: refused at submission. */
	drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, "/bin/true", diag, E);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "-n 77", diag, E), 0);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_DENIED_BY_DRM);
	assert_non_null(strstr(diag, "77"));
	drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "", diag, E);
	drmaa_set_attribute(jt, DRMAA_DEADLINE_TIME, "2001/01/01 00:00", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_DENIED_BY_DRM);
	drmaa_set_attribute(jt, DRMAA_DEADLINE_TIME, "2031/01/01 00:00", diag, E);
	drmaa_set_attribute(jt, DRMAA_START_TIME, "2032/01/01 00:00", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES);
	drmaa_delete_job_template(jt, diag, E);
	jt = tmpl("/bin/true", NULL);
	drmaa_set_attribute(jt, DRMAA_WCT_HLIMIT, "10", diag, E);
	drmaa_set_attribute(jt, DRMAA_WCT_SLIMIT, "20", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES);
	drmaa_set_attribute(jt, DRMAA_WCT_SLIMIT, "5", diag, E);
	drmaa_set_attribute(jt, DRMAA_DURATION_HLIMIT, "10", diag, E);
	drmaa_set_attribute(jt, DRMAA_DURATION_SLIMIT, "20", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES);
	/* No shepherd program: refused with its path, nothing left behind. */
	char saved[PATH_MAX];
	snprintf(saved, sizeof(saved), "%s", getenv("KRG_DRMAA_SHEPHERD"));
	setenv("KRG_DRMAA_SHEPHERD", "/nonexistent/krg-drmaa-shepherd", 1);
	drmaa_set_attribute(jt, DRMAA_WCT_SLIMIT, "5", diag, E);
	drmaa_set_attribute(jt, DRMAA_DURATION_SLIMIT, "5", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), DRMAA_ERRNO_INTERNAL_ERROR);
	assert_non_null(strstr(diag, "/nonexistent/krg-drmaa-shepherd"));
	drmaa_job_ids_t *ids = NULL;
	assert_int_equal(drmaa_run_bulk_jobs(&ids, jt, 1, 3, 1, diag, E), DRMAA_ERRNO_INTERNAL_ERROR);
	assert_null(ids);
	setenv("KRG_DRMAA_SHEPHERD", saved, 1);
	/* An output file that cannot be opened: the job fails with a reason. */
	drmaa_set_attribute(jt, DRMAA_DURATION_SLIMIT, "5", diag, E);
	drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, ":/nonexistent-dir/out", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wifaborted(&v, stat, diag, E), 0);
	assert_int_equal(v, 1);
	struct krg_job j;
	assert_int_equal(drmaa_job_get(id, &j, diag, E), 0);
	assert_non_null(strstr(j.error, "nonexistent-dir"));
	drmaa_delete_job_template(jt, diag, E);
}

static void test_bulk(void **st)
{
	const char *args[] = { "-c", "pwd", NULL };
	drmaa_job_template_t *jt = tmpl("/bin/sh", args);
	drmaa_job_ids_t *ids;
	char dir[PATH_MAX + 16], id[128], out[128], buf[PATH_MAX + 64];
	int stat, v;
	for (int i = 3; i <= 7; i += 2) {
		snprintf(dir, sizeof(dir), "%s/w%d", scratch, i);
		mkdir(dir, 0755);
	}
	snprintf(dir, sizeof(dir), "%s/w$drmaa_incr_ph$", scratch);
	drmaa_set_attribute(jt, DRMAA_WD, dir, diag, E);
	drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, ":pwd.out", diag, E);
	drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "--auto", diag, E);
	assert_int_equal(drmaa_run_bulk_jobs(&ids, jt, 0, 2, 1, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_bulk_jobs(&ids, jt, 3, 2, 1, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_bulk_jobs(&ids, jt, 1, 2, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_run_bulk_jobs(NULL, jt, 1, 2, 1, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	setenv("KRG_DRMAA_MAX_STARTING", "1", 1); /* the shepherds start one at a time */
	assert_int_equal(drmaa_run_bulk_jobs(&ids, jt, 3, 8, 2, diag, E), 0);
	unsetenv("KRG_DRMAA_MAX_STARTING");
	size_t n;
	assert_int_equal(drmaa_get_num_job_ids(ids, &n), 0);
	assert_int_equal(n, 3);
	const char *list[4];
	char idv[3][128];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(drmaa_get_next_job_id(ids, idv[i], sizeof(idv[i])), 0);
		list[i] = idv[i];
	}
	list[3] = NULL;
	assert_int_equal(drmaa_get_next_job_id(ids, id, sizeof(id)), DRMAA_ERRNO_NO_MORE_ELEMENTS);
	drmaa_release_job_ids(ids);
	assert_int_equal(drmaa_synchronize(list, 60, 0, diag, E), 0);
	for (int i = 0; i < 3; i++) {
		/* Each ran in its own directory (placeholder in drmaa_wd). */
		snprintf(buf, sizeof(buf), "%s/w%d/pwd.out", scratch, 3 + 2 * i);
		FILE *f = fopen(buf, "r");
		assert_non_null(f);
		char line[PATH_MAX + 16];
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		snprintf(buf, sizeof(buf), "%s/w%d\n", scratch, 3 + 2 * i);
		assert_string_equal(line, buf);
	}
	/* Not disposed: wait for any reaps each once. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, out, sizeof(out), &stat, 10, NULL, diag, E), 0);
		assert_int_equal(drmaa_wexitstatus(&v, stat, diag, E), 0);
		assert_int_equal(v, 0);
	}
	const char *bad[] = { "nope.1", NULL };
	assert_int_equal(drmaa_synchronize(bad, 0, 0, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_synchronize(list, 0, 0, diag, E), DRMAA_ERRNO_INVALID_JOB); /* reaped */
	assert_int_equal(drmaa_synchronize(NULL, 0, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_synchronize(bad, -3, 0, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	drmaa_delete_job_template(jt, diag, E);
}

static void test_control(void **st)
{
	const char *args[] = { "30", NULL };
	drmaa_job_template_t *jt = tmpl("/bin/sleep", args);
	char id[128], id2[128], out[128], sig[32];
	int stat, v;
	drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "-n 3", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	assert_int_equal(wait_ps(id, DRMAA_PS_RUNNING, 20), DRMAA_PS_RUNNING);
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_RESUME, diag, E), DRMAA_ERRNO_RESUME_INCONSISTENT_STATE);
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_HOLD, diag, E), DRMAA_ERRNO_HOLD_INCONSISTENT_STATE);
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_RELEASE, diag, E), DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE);
	assert_int_equal(drmaa_control(id, 99, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_control(NULL, DRMAA_CONTROL_SUSPEND, diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_control("zz.1", DRMAA_CONTROL_SUSPEND, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_SUSPEND, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_USER_SUSPENDED);
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_RESUME, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_RUNNING);
	/* krgd unreachable: the spec's communication failure, with the reason. */
	char sock[PATH_MAX];
	snprintf(sock, sizeof(sock), "%s", drmaa_sess.socket);
	snprintf(drmaa_sess.socket, sizeof(drmaa_sess.socket), "/nonexistent/krgd.sock");
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_SUSPEND, diag, E), DRMAA_ERRNO_DRM_COMMUNICATION_FAILURE);
	assert_non_null(strstr(diag, "krg id"));
	snprintf(drmaa_sess.socket, sizeof(drmaa_sess.socket), "%s", sock);
	/* Timeouts. */
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, DRMAA_TIMEOUT_NO_WAIT, NULL, diag, E),
			 DRMAA_ERRNO_EXIT_TIMEOUT);
	const char *one[] = { id, NULL };
	assert_int_equal(drmaa_synchronize(one, 1, 0, diag, E), DRMAA_ERRNO_EXIT_TIMEOUT);
	/* Held job: hold/release, suspend refused, SESSION_ALL. */
	drmaa_set_attribute(jt, DRMAA_JS_STATE, DRMAA_SUBMISSION_STATE_HOLD, diag, E);
	assert_int_equal(drmaa_run_job(id2, sizeof(id2), jt, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id2, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_USER_ON_HOLD);
	assert_int_equal(drmaa_control(id2, DRMAA_CONTROL_SUSPEND, diag, E), DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE);
	assert_int_equal(drmaa_control(id2, DRMAA_CONTROL_HOLD, diag, E), 0); /* already */
	assert_int_equal(drmaa_control(DRMAA_JOB_IDS_SESSION_ALL, DRMAA_CONTROL_SUSPEND, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_USER_SUSPENDED);
	assert_int_equal(drmaa_control(DRMAA_JOB_IDS_SESSION_ALL, DRMAA_CONTROL_RESUME, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_RUNNING);
	assert_int_equal(drmaa_control(DRMAA_JOB_IDS_SESSION_ALL, DRMAA_CONTROL_RELEASE, diag, E), 0);
	assert_int_equal(wait_ps(id2, DRMAA_PS_RUNNING, 20), DRMAA_PS_RUNNING);
	assert_int_equal(drmaa_control(DRMAA_JOB_IDS_SESSION_ALL, DRMAA_CONTROL_TERMINATE, diag, E), 0);
	const char *both[] = { id, id2, NULL };
	assert_int_equal(drmaa_synchronize(both, 30, 0, diag, E), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(drmaa_wait(both[i], out, sizeof(out), &stat, 0, NULL, diag, E), 0);
		assert_int_equal(drmaa_wifsignaled(&v, stat, diag, E), 0);
		assert_int_equal(v, 1);
		assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), stat, diag, E), 0);
		assert_string_equal(sig, "SIGKILL");
	}
	/* Terminate a finished job: nothing to do. */
	assert_int_equal(drmaa_control(id, DRMAA_CONTROL_TERMINATE, diag, E), 0);
	drmaa_delete_job_template(jt, diag, E);
}

static void test_limits_and_start(void **st)
{
	const char *sleep_args[] = { "30", NULL };
	const char *spin_args[] = { "-c", "while :; do :; done", NULL };
	char id[128], id2[128], id3[128], out[128], sig[32], when[64];
	int stat, v;
	/* Hard wall clock limit: killed after 1 s. */
	drmaa_job_template_t *jt = tmpl("/bin/sleep", sleep_args);
	drmaa_set_attribute(jt, DRMAA_WCT_HLIMIT, "1", diag, E);
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	/* CPU (run duration) limit: RLIMIT_CPU of 1 s, SIGXCPU. */
	drmaa_job_template_t *spin = tmpl("/bin/sh", spin_args);
	drmaa_set_attribute(spin, DRMAA_DURATION_HLIMIT, "1", diag, E);
	drmaa_set_attribute(spin, DRMAA_WCT_HLIMIT, "20", diag, E); /* safety */
	assert_int_equal(drmaa_run_job(id2, sizeof(id2), spin, diag, E), 0);
	/* Soft wall clock limit: SIGTERM. Deadline: SIGKILL. */
	char id4[128], id5[128], dl[64];
	drmaa_job_template_t *soft = tmpl("/bin/sleep", sleep_args);
	drmaa_set_attribute(soft, DRMAA_WCT_SLIMIT, "1", diag, E);
	assert_int_equal(drmaa_run_job(id4, sizeof(id4), soft, diag, E), 0);
	time_t d = time(NULL) + 2;
	struct tm dtm;
	localtime_r(&d, &dtm);
	strftime(dl, sizeof(dl), "%Y/%m/%d %H:%M:%S", &dtm);
	drmaa_job_template_t *dead = tmpl("/bin/sleep", sleep_args);
	assert_int_equal(drmaa_set_attribute(dead, DRMAA_DEADLINE_TIME, dl, diag, E), 0);
	assert_int_equal(drmaa_run_job(id5, sizeof(id5), dead, diag, E), 0);
	/* Start time 2 s ahead: queued until then. */
	time_t t = time(NULL) + 3;
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y/%m/%d %H:%M:%S", &tm);
	drmaa_job_template_t *later = tmpl("/bin/true", NULL);
	assert_int_equal(drmaa_set_attribute(later, DRMAA_START_TIME, when, diag, E), 0);
	assert_int_equal(drmaa_run_job(id3, sizeof(id3), later, diag, E), 0);
	assert_int_equal(drmaa_job_ps(id3, &v, diag, E), 0);
	assert_int_equal(v, DRMAA_PS_QUEUED_ACTIVE);

	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), stat, diag, E), 0);
	assert_string_equal(sig, "SIGKILL");
	assert_int_equal(drmaa_wait(id2, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wifsignaled(&v, stat, diag, E), 0);
	assert_int_equal(v, 1);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), stat, diag, E), 0);
	assert_true(!strcmp(sig, "SIGXCPU") || !strcmp(sig, "SIGKILL"));
	assert_int_equal(drmaa_wait(id3, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wexitstatus(&v, stat, diag, E), 0);
	assert_int_equal(v, 0);
	assert_int_equal(drmaa_wait(id4, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), stat, diag, E), 0);
	assert_string_equal(sig, "SIGTERM");
	assert_int_equal(drmaa_wait(id5, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_int_equal(drmaa_wtermsig(sig, sizeof(sig), stat, diag, E), 0);
	assert_string_equal(sig, "SIGKILL");
	drmaa_delete_job_template(soft, diag, E);
	drmaa_delete_job_template(dead, diag, E);
	struct krg_job j;
	assert_int_equal(drmaa_job_get(id3, &j, diag, E), 0);
	assert_true(j.start_ms >= (int64_t)(t - 1) * 1000); /* not before its start time (1 s granularity) */
	drmaa_delete_job_template(jt, diag, E);
	drmaa_delete_job_template(spin, diag, E);
	drmaa_delete_job_template(later, diag, E);
}

static void *thread_main(void *arg)
{
	drmaa_job_template_t *jt = arg;
	char d[E], id[128], out[128];
	int stat, ok = 0;
	for (int i = 0; i < 4; i++) {
		if (drmaa_run_job(id, sizeof(id), jt, d, E) != 0)
			return (void *)(intptr_t)-1;
		if (drmaa_wait(id, out, sizeof(out), &stat, 60, NULL, d, E) != 0 || strcmp(id, out))
			return (void *)(intptr_t)-2;
		ok++;
	}
	return (void *)(intptr_t)ok;
}

static void test_threads(void **st)
{
	const char *args[] = { "-c", "exit 0", NULL };
	drmaa_job_template_t *jt = tmpl("/bin/sh", args);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, jt), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_int_equal((intptr_t)r, 4);
	}
	drmaa_delete_job_template(jt, diag, E);
}

static void test_exit_and_reattach(void **st)
{
	const char *args[] = { "1", NULL };
	drmaa_job_template_t *jt = tmpl("/bin/sleep", args);
	char id[128], out[128], contact[DRMAA_CONTACT_BUFFER];
	int stat;
	assert_int_equal(drmaa_run_job(id, sizeof(id), jt, diag, E), 0);
	assert_int_equal(drmaa_get_contact(contact, sizeof(contact), diag, E), 0);
	assert_int_equal(drmaa_exit(diag, E), 0);
	/* The template went with the session: refused, not a crash. */
	assert_int_equal(drmaa_init(contact, diag, E), 0);
	assert_int_equal(drmaa_set_attribute(jt, DRMAA_WD, "/", diag, E), DRMAA_ERRNO_INVALID_ARGUMENT);
	assert_int_equal(drmaa_wait(id, out, sizeof(out), &stat, 30, NULL, diag, E), 0);
	assert_string_equal(out, id);
	/* A job id of another session is not ours. */
	assert_int_equal(drmaa_exit(diag, E), 0);
	assert_int_equal(drmaa_init("another-session", diag, E), 0);
	int ps;
	assert_int_equal(drmaa_job_ps(id, &ps, diag, E), DRMAA_ERRNO_INVALID_JOB);
	assert_int_equal(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, out, sizeof(out), &stat, 0, NULL, diag, E),
			 DRMAA_ERRNO_INVALID_JOB); /* nothing to wait for */
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("KRG_DRMAA_SCRATCH");
	bool own = !tmp;
	/* Linked statically: the library cannot find its shepherd beside itself. */
	setenv("KRG_DRMAA_SHEPHERD", KRG_TEST_SHEPHERD, 0);
	if (tmp)
		snprintf(scratch, sizeof(scratch), "%s", tmp);
	else {
		snprintf(scratch, sizeof(scratch), "/tmp/test_drmaa.XXXXXX");
		if (!mkdtemp(scratch))
			return 1;
	}
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_strerror),	cmocka_unit_test(test_strings_before_init),
		cmocka_unit_test(test_no_session),	cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_stat_decoders),	cmocka_unit_test(test_time_formats),
		cmocka_unit_test(test_native_and_paths), cmocka_unit_test(test_init_failures),
	};
	int r = cmocka_run_group_tests_name("drmaa unit", unit, NULL, NULL);
	if (!getenv("KRG_DRMAA_CLUSTER")) {
		if (own && nftw(scratch, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0)
			perror(scratch);
		return r;
	}
	const struct CMUnitTest cluster[] = {
		cmocka_unit_test(test_session),		 cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_run_and_wait),	 cmocka_unit_test(test_failures),
		cmocka_unit_test(test_bulk),		 cmocka_unit_test(test_control),
		cmocka_unit_test(test_limits_and_start), cmocka_unit_test(test_threads),
		cmocka_unit_test(test_exit_and_reattach),
	};
	return r | cmocka_run_group_tests_name("drmaa cluster", cluster, cl_setup, cl_teardown);
}
