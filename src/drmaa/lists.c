/* lists.c — the opaque string vectors of the C binding: attribute names,
 * attribute values (vector attributes, rusage) and job ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drmaa/drmaa-int.h"

int drmaa_strv_add(struct drmaa_strv *s, const char *str)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 8;
		char **nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return DRMAA_ERRNO_NO_MEMORY;
		s->v = nv;
		s->cap = nc;
	}
	if (!(s->v[s->n] = strdup(str)))
		return DRMAA_ERRNO_NO_MEMORY;
	s->n++;
	return 0;
}

void drmaa_strv_clear(struct drmaa_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct drmaa_strv){ 0 };
}

static int next(struct drmaa_strv *s, char *value, size_t len)
{
	if (!s)
		return DRMAA_ERRNO_INVALID_ARGUMENT;
	if (s->next >= s->n)
		return DRMAA_ERRNO_NO_MORE_ELEMENTS;
	if (value && len)
		snprintf(value, len, "%s", s->v[s->next]);
	s->next++;
	return DRMAA_ERRNO_SUCCESS;
}

static int count(struct drmaa_strv *s, size_t *size)
{
	if (!s || !size)
		return DRMAA_ERRNO_INVALID_ARGUMENT;
	*size = s->n;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_next_attr_name(drmaa_attr_names_t *values, char *value, size_t value_len)
{
	return next(values ? &values->s : NULL, value, value_len);
}

int drmaa_get_next_attr_value(drmaa_attr_values_t *values, char *value, size_t value_len)
{
	return next(values ? &values->s : NULL, value, value_len);
}

int drmaa_get_next_job_id(drmaa_job_ids_t *values, char *value, size_t value_len)
{
	return next(values ? &values->s : NULL, value, value_len);
}

int drmaa_get_num_attr_names(drmaa_attr_names_t *values, size_t *size)
{
	return count(values ? &values->s : NULL, size);
}

int drmaa_get_num_attr_values(drmaa_attr_values_t *values, size_t *size)
{
	return count(values ? &values->s : NULL, size);
}

int drmaa_get_num_job_ids(drmaa_job_ids_t *values, size_t *size)
{
	return count(values ? &values->s : NULL, size);
}

void drmaa_release_attr_names(drmaa_attr_names_t *values)
{
	if (values) {
		drmaa_strv_clear(&values->s);
		free(values);
	}
}

void drmaa_release_attr_values(drmaa_attr_values_t *values)
{
	if (values) {
		drmaa_strv_clear(&values->s);
		free(values);
	}
}

void drmaa_release_job_ids(drmaa_job_ids_t *values)
{
	if (values) {
		drmaa_strv_clear(&values->s);
		free(values);
	}
}
