/* spec.c — a job spec (drmaa-int.h) to and from the job's <n>.spec file,
 * how submit.c hands a job to its shepherd program (krg-drmaa-shepherd):
 * key=value lines (jobstore.h), argv.N / env.N for the vectors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drmaa/drmaa-int.h"

void drmaa_jobspec_free(struct drmaa_jobspec *js)
{
	for (char **p = js->argv; p && *p; p++)
		free(*p);
	for (char **p = js->env; p && *p; p++)
		free(*p);
	free(js->argv);
	free(js->env);
	free(js->wd);
	free(js->in);
	free(js->out);
	free(js->err);
	memset(js, 0, sizeof(*js));
}

int drmaa_jobspec_write(const struct drmaa_jobspec *js, const char *path)
{
	struct krg_kv kv = { 0 };
	char k[32];
	for (size_t i = 0; js->argv[i]; i++) {
		snprintf(k, sizeof(k), "argv.%zu", i);
		krg_kv_put(&kv, k, js->argv[i]);
	}
	for (size_t i = 0; js->env[i]; i++) {
		snprintf(k, sizeof(k), "env.%zu", i);
		krg_kv_put(&kv, k, js->env[i]);
	}
	krg_kv_put(&kv, "wd", js->wd);
	if (js->in)
		krg_kv_put(&kv, "in", js->in);
	if (js->out)
		krg_kv_put(&kv, "out", js->out);
	if (js->err)
		krg_kv_put(&kv, "err", js->err);
	krg_kv_putf(&kv, "join", "%d", js->join);
	if (js->native.has_node)
		krg_kv_putf(&kv, "node", "%u", js->native.node);
	krg_kv_putf(&kv, "auto", "%d", js->native.auto_);
	krg_kv_putf(&kv, "start_at", "%lld", (long long)js->start_at);
	krg_kv_putf(&kv, "deadline", "%lld", (long long)js->deadline);
	krg_kv_putf(&kv, "wct_hard", "%lld", (long long)js->wct_hard);
	krg_kv_putf(&kv, "wct_soft", "%lld", (long long)js->wct_soft);
	krg_kv_putf(&kv, "cpu_hard", "%lld", (long long)js->cpu_hard);
	krg_kv_putf(&kv, "cpu_soft", "%lld", (long long)js->cpu_soft);
	int r = krg_kv_write(&kv, path);
	krg_kv_free(&kv);
	return r;
}

struct reader {
	struct drmaa_jobspec *js;
	size_t na, ne, cap_a, cap_e;
	int err;
};

static int vec_set(char ***v, size_t *cap, size_t *n, unsigned long idx, const char *val)
{
	if (idx > 1u << 20)
		return -EINVAL;
	if (idx + 2 > *cap) {
		size_t nc = (idx + 2) * 2;
		char **nv = realloc(*v, nc * sizeof(char *));
		if (!nv)
			return -ENOMEM;
		memset(nv + *cap, 0, (nc - *cap) * sizeof(char *));
		*v = nv;
		*cap = nc;
	}
	free((*v)[idx]);
	if (!((*v)[idx] = strdup(val)))
		return -ENOMEM;
	if (idx + 1 > *n)
		*n = idx + 1;
	return 0;
}

static void set_str(char **dst, const char *v, int *err)
{
	free(*dst);
	if (!(*dst = strdup(v)))
		*err = -ENOMEM;
}

static void spec_cb(const char *k, const char *v, void *data)
{
	struct reader *r = data;
	struct drmaa_jobspec *js = r->js;
	int e = 0;
	if (!strncmp(k, "argv.", 5))
		e = vec_set(&js->argv, &r->cap_a, &r->na, strtoul(k + 5, NULL, 10), v);
	else if (!strncmp(k, "env.", 4))
		e = vec_set(&js->env, &r->cap_e, &r->ne, strtoul(k + 4, NULL, 10), v);
	else if (!strcmp(k, "wd"))
		set_str(&js->wd, v, &e);
	else if (!strcmp(k, "in"))
		set_str(&js->in, v, &e);
	else if (!strcmp(k, "out"))
		set_str(&js->out, v, &e);
	else if (!strcmp(k, "err"))
		set_str(&js->err, v, &e);
	else if (!strcmp(k, "join"))
		js->join = atoi(v);
	else if (!strcmp(k, "node")) {
		js->native.has_node = true;
		js->native.node = (uint32_t)strtoul(v, NULL, 10);
	} else if (!strcmp(k, "auto"))
		js->native.auto_ = atoi(v);
	else if (!strcmp(k, "start_at"))
		js->start_at = strtoll(v, NULL, 10);
	else if (!strcmp(k, "deadline"))
		js->deadline = strtoll(v, NULL, 10);
	else if (!strcmp(k, "wct_hard"))
		js->wct_hard = strtoll(v, NULL, 10);
	else if (!strcmp(k, "wct_soft"))
		js->wct_soft = strtoll(v, NULL, 10);
	else if (!strcmp(k, "cpu_hard"))
		js->cpu_hard = strtoll(v, NULL, 10);
	else if (!strcmp(k, "cpu_soft"))
		js->cpu_soft = strtoll(v, NULL, 10);
	if (e && !r->err)
		r->err = e;
}

int drmaa_jobspec_read(const char *path, struct drmaa_jobspec *js)
{
	memset(js, 0, sizeof(*js));
	struct reader r = { .js = js };
	int e = krg_kv_read(path, spec_cb, &r);
	if (!e)
		e = r.err;
	/* Every index present, argv non-empty, wd set: else a damaged file. */
	for (size_t i = 0; !e && i < r.na; i++)
		if (!js->argv[i])
			e = -EINVAL;
	for (size_t i = 0; !e && i < r.ne; i++)
		if (!js->env[i])
			e = -EINVAL;
	if (!e && (!r.na || !js->wd))
		e = -EINVAL;
	if (!e && !js->env && !(js->env = calloc(1, sizeof(char *))))
		e = -ENOMEM;
	if (e)
		drmaa_jobspec_free(js);
	return e;
}
