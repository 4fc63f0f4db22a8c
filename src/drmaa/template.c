/* template.c — job templates: every mandatory and optional scalar and
 * vector attribute of DRMAA 1.0 but drmaa_transfer_files (files are
 * opened by the job's shepherd on this host; see docs/drmaa.md), checked
 * when set. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "drmaa/drmaa-int.h"

static const char *const attr_names[A_N] = {
	[A_REMOTE_COMMAND] = DRMAA_REMOTE_COMMAND, [A_JS_STATE] = DRMAA_JS_STATE,
	[A_WD] = DRMAA_WD, [A_JOB_CATEGORY] = DRMAA_JOB_CATEGORY,
	[A_NATIVE] = DRMAA_NATIVE_SPECIFICATION, [A_BLOCK_EMAIL] = DRMAA_BLOCK_EMAIL,
	[A_START_TIME] = DRMAA_START_TIME, [A_JOB_NAME] = DRMAA_JOB_NAME,
	[A_INPUT_PATH] = DRMAA_INPUT_PATH, [A_OUTPUT_PATH] = DRMAA_OUTPUT_PATH,
	[A_ERROR_PATH] = DRMAA_ERROR_PATH, [A_JOIN_FILES] = DRMAA_JOIN_FILES,
	[A_DEADLINE_TIME] = DRMAA_DEADLINE_TIME, [A_WCT_HLIMIT] = DRMAA_WCT_HLIMIT,
	[A_WCT_SLIMIT] = DRMAA_WCT_SLIMIT, [A_DURATION_HLIMIT] = DRMAA_DURATION_HLIMIT,
	[A_DURATION_SLIMIT] = DRMAA_DURATION_SLIMIT,
};
static const char *const vattr_names[V_N] = { [V_ARGV] = DRMAA_V_ARGV, [V_ENV] = DRMAA_V_ENV,
					      [V_EMAIL] = DRMAA_V_EMAIL };

/* The template must be one allocated in this session (never dereferenced
 * otherwise: a stale pointer is an error, not a crash). Lock held. */
static int find_jt(const drmaa_job_template_t *jt, char *diag, size_t len)
{
	int r = drmaa_need_session(diag, len);
	if (r)
		return r;
	if (!jt)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "job template is NULL");
	for (struct drmaa_job_template_s *t = drmaa_sess.templates; t; t = t->next)
		if (t == jt)
			return 0;
	return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
			  "not a job template of this session (deleted, or from before drmaa_exit)");
}

int drmaa_allocate_job_template(drmaa_job_template_t **jt, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len);
	if (!r && !jt)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "jt is NULL");
	if (!r) {
		struct drmaa_job_template_s *t = calloc(1, sizeof(*t));
		if (!t)
			r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
		else {
			t->next = drmaa_sess.templates;
			drmaa_sess.templates = t;
			*jt = t;
		}
	}
	drmaa_unlock();
	return r;
}

void drmaa_template_free(struct drmaa_job_template_s *t)
{
	for (int i = 0; i < A_N; i++)
		free(t->attr[i]);
	for (int i = 0; i < V_N; i++)
		drmaa_strv_clear(&t->vattr[i]);
	free(t);
}

int drmaa_delete_job_template(drmaa_job_template_t *jt, char *diag, size_t len)
{
	drmaa_lock();
	int r = find_jt(jt, diag, len);
	if (!r) {
		for (struct drmaa_job_template_s **p = &drmaa_sess.templates; *p; p = &(*p)->next)
			if (*p == jt) {
				*p = jt->next;
				break;
			}
		drmaa_template_free(jt);
	}
	drmaa_unlock();
	return r;
}

int drmaa_native_parse(const char *spec, struct drmaa_native *out, char *diag, size_t len)
{
	struct drmaa_native n = { 0 };
	char buf[256];
	if (strlen(spec) >= sizeof(buf))
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "native specification too long");
	strcpy(buf, spec);
	char *save = NULL;
	for (char *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
		const char *val = NULL;
		if (!strcmp(t, "-a") || !strcmp(t, "--auto")) {
			n.auto_ = true;
			continue;
		}
		if (!strcmp(t, "-n") || !strcmp(t, "--node")) {
			val = strtok_r(NULL, " \t\n", &save);
			if (!val)
				return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
						  "native specification: %s needs a node id", t);
		} else if (!strncmp(t, "--node=", 7))
			val = t + 7;
		else if (!strncmp(t, "-n", 2) && isdigit((unsigned char)t[2]))
			val = t + 2;
		else
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					  "native specification: unknown option '%s' (krg knows -n NODE, --auto)", t);
		char *end;
		errno = 0;
		unsigned long v = strtoul(val, &end, 10);
		if (!*val || *end || errno || v > 255 || !isdigit((unsigned char)*val))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					  "native specification: bad node '%s' (a node id, 0-255)", val);
		n.has_node = true;
		n.node = (uint32_t)v;
	}
	if (n.has_node && n.auto_)
		return drmaa_diag(diag, len, DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES,
				  "native specification: -n and --auto exclude each other");
	if (out)
		*out = n;
	return 0;
}

int drmaa_path_parse(const char *attr, const char *value, const char **path, char *diag, size_t len)
{
	const char *colon = strchr(value, ':'), *slash = strchr(value, '/');
	const char *p = value;
	if (colon && (!slash || colon < slash)) {
		size_t hl = (size_t)(colon - value);
		char host[256], me[256] = "";
		if (hl >= sizeof(host))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: host name too long", attr);
		memcpy(host, value, hl);
		host[hl] = 0;
		gethostname(me, sizeof(me) - 1);
		char *dot = strchr(me, '.');
		size_t ml = dot ? (size_t)(dot - me) : strlen(me);
		if (hl && strcmp(host, "localhost") && strcmp(host, me) && (hl != ml || strncmp(host, me, ml)))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					  "%s: host '%s': krg opens job files on the submitting host (%s); "
					  "use ':path' or '%s:path'",
					  attr, host, me, me);
		p = colon + 1;
	}
	if (!*p)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: empty path", attr);
	if (path)
		*path = p;
	return 0;
}

static int check_value(int a, const char *v, char *diag, size_t len)
{
	const char *name = attr_names[a];
	int64_t x;
	switch (a) {
	case A_REMOTE_COMMAND:
	case A_WD:
	case A_JOB_NAME:
		if (!*v)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: empty value", name);
		return 0;
	case A_JS_STATE:
		if (strcmp(v, DRMAA_SUBMISSION_STATE_ACTIVE) && strcmp(v, DRMAA_SUBMISSION_STATE_HOLD))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					  "%s: '%s' is neither drmaa_active nor drmaa_hold", name, v);
		return 0;
	case A_NATIVE:
		return drmaa_native_parse(v, NULL, diag, len);
	case A_BLOCK_EMAIL:
		if (strcmp(v, "0") && strcmp(v, "1"))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: '%s' is not 0 or 1",
					  name, v);
		return 0;
	case A_JOIN_FILES:
		if (strcmp(v, "y") && strcmp(v, "n"))
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: '%s' is not y or n",
					  name, v);
		return 0;
	case A_START_TIME:
	case A_DEADLINE_TIME:
		if (drmaa_time_parse(v, time(NULL), &x) < 0)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT,
					  "%s: '%s' is not [[[[CC]YY/]MM/]DD] hh:mm[:ss] [{-|+}UU:uu]", name, v);
		return 0;
	case A_WCT_HLIMIT:
	case A_WCT_SLIMIT:
	case A_DURATION_HLIMIT:
	case A_DURATION_SLIMIT:
		if (drmaa_duration_parse(v, &x) < 0)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT,
					  "%s: '%s' is not a duration [[h:]m:]s", name, v);
		if (x == 0)
			return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: a limit of 0 s", name);
		return 0;
	case A_INPUT_PATH:
	case A_OUTPUT_PATH:
	case A_ERROR_PATH:
		return drmaa_path_parse(name, v, NULL, diag, len);
	default:
		return 0;
	}
}

static int attr_index(const char *name, bool vector)
{
	int n = vector ? V_N : A_N;
	for (int i = 0; i < n; i++)
		if (!strcmp(name, vector ? vattr_names[i] : attr_names[i]))
			return i;
	return -1;
}

static int unknown(const char *name, bool vector, char *diag, size_t len)
{
	if (attr_index(name, !vector) >= 0)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "'%s' is a %s attribute", name,
				  vector ? "scalar" : "vector");
	if (!strcmp(name, DRMAA_TRANSFER_FILES))
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
				  "%s is not supported: krg opens job files on the submitting host", name);
	return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "unknown attribute '%s' (see %s)", name,
			  vector ? "drmaa_get_vector_attribute_names" : "drmaa_get_attribute_names");
}

int drmaa_set_attribute(drmaa_job_template_t *jt, const char *name, const char *value, char *diag, size_t len)
{
	drmaa_lock();
	int r = find_jt(jt, diag, len), a = -1;
	if (!r && !name)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "attribute name is NULL");
	if (!r && (a = attr_index(name, false)) < 0)
		r = unknown(name, false, diag, len);
	if (!r && !value)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "%s: value is NULL", name);
	if (!r && strlen(value) >= DRMAA_ATTR_BUFFER)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s: value longer than %d bytes", name,
			       DRMAA_ATTR_BUFFER - 1);
	if (!r)
		r = check_value(a, value, diag, len);
	if (!r && a >= 0) {
		char *d = strdup(value);
		if (!d)
			r = drmaa_diag(diag, len, DRMAA_ERRNO_NO_MEMORY, NULL);
		else {
			free(jt->attr[a]);
			jt->attr[a] = d;
		}
	}
	drmaa_unlock();
	return r;
}

int drmaa_get_attribute(drmaa_job_template_t *jt, const char *name, char *value, size_t value_len, char *diag,
			size_t len)
{
	drmaa_lock();
	int r = find_jt(jt, diag, len), a = -1;
	if (!r && (!name || !value || !value_len))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "name or value buffer missing");
	if (!r && (a = attr_index(name, false)) < 0)
		r = unknown(name, false, diag, len);
	if (!r && a >= 0) {
		const char *v = jt->attr[a];
		if (!v)
			v = a == A_JS_STATE ? DRMAA_SUBMISSION_STATE_ACTIVE
			  : a == A_JOIN_FILES ? "n"
			  : a == A_BLOCK_EMAIL ? "0"
					       : "";
		snprintf(value, value_len, "%s", v);
	}
	drmaa_unlock();
	return r;
}

int drmaa_set_vector_attribute(drmaa_job_template_t *jt, const char *name, const char *value[], char *diag,
			       size_t len)
{
	drmaa_lock();
	int r = find_jt(jt, diag, len), a = -1;
	if (!r && !name)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "attribute name is NULL");
	if (!r && (a = attr_index(name, true)) < 0)
		r = unknown(name, true, diag, len);
	if (!r && !value)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "%s: value is NULL", name);
	for (size_t i = 0; !r && value[i]; i++) {
		if (a == V_ENV && (!strchr(value[i], '=') || value[i][0] == '='))
			r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT,
				       "%s: '%s' is not NAME=VALUE", name, value[i]);
		else if (a == V_EMAIL && !strchr(value[i], '@'))
			r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT,
				       "%s: '%s' is not an e-mail address", name, value[i]);
	}
	if (!r && a >= 0) {
		struct drmaa_strv v = { 0 };
		for (size_t i = 0; !r && value[i]; i++)
			r = drmaa_strv_add(&v, value[i]);
		if (r) {
			drmaa_strv_clear(&v);
			drmaa_diag(diag, len, r, NULL);
		} else {
			drmaa_strv_clear(&jt->vattr[a]);
			jt->vattr[a] = v;
			jt->vset[a] = true;
		}
	}
	drmaa_unlock();
	return r;
}

int drmaa_get_vector_attribute(drmaa_job_template_t *jt, const char *name, drmaa_attr_values_t **values,
			       char *diag, size_t len)
{
	drmaa_lock();
	int r = find_jt(jt, diag, len), a = -1;
	if (!r && (!name || !values))
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "name or values missing");
	if (!r && (a = attr_index(name, true)) < 0)
		r = unknown(name, true, diag, len);
	if (!r && a >= 0) {
		drmaa_attr_values_t *v = calloc(1, sizeof(*v));
		if (!v)
			r = DRMAA_ERRNO_NO_MEMORY;
		for (size_t i = 0; !r && i < jt->vattr[a].n; i++)
			r = drmaa_strv_add(&v->s, jt->vattr[a].v[i]);
		if (r) {
			drmaa_release_attr_values(v);
			drmaa_diag(diag, len, r, NULL);
		} else
			*values = v;
	}
	drmaa_unlock();
	return r;
}

static int names(drmaa_attr_names_t **values, bool vector, char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len);
	if (!r && !values)
		r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "values is NULL");
	if (!r) {
		drmaa_attr_names_t *v = calloc(1, sizeof(*v));
		if (!v)
			r = DRMAA_ERRNO_NO_MEMORY;
		for (int i = 0; !r && i < (vector ? V_N : A_N); i++)
			r = drmaa_strv_add(&v->s, vector ? vattr_names[i] : attr_names[i]);
		if (r) {
			drmaa_release_attr_names(v);
			drmaa_diag(diag, len, r, NULL);
		} else
			*values = v;
	}
	drmaa_unlock();
	return r;
}

int drmaa_get_attribute_names(drmaa_attr_names_t **values, char *diag, size_t len)
{
	return names(values, false, diag, len);
}

int drmaa_get_vector_attribute_names(drmaa_attr_names_t **values, char *diag, size_t len)
{
	return names(values, true, diag, len);
}
