/* json.c — see json.h. */
#include <inttypes.h>
#include "json.h"

void krg_json_init(struct krg_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void prefix(struct krg_json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = true;
	if (key) {
		put_string(j->f, key);
		fputc(':', j->f);
	}
}

static void open_(struct krg_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth < 31)
		j->depth++;
	j->need_comma[j->depth] = false;
}

void krg_json_begin_object(struct krg_json *j, const char *key) { open_(j, key, '{'); }
void krg_json_begin_array(struct krg_json *j, const char *key) { open_(j, key, '['); }

void krg_json_end_object(struct krg_json *j)
{
	j->depth--;
	fputc('}', j->f);
}

void krg_json_end_array(struct krg_json *j)
{
	j->depth--;
	fputc(']', j->f);
}

void krg_json_string(struct krg_json *j, const char *key, const char *v)
{
	prefix(j, key);
	put_string(j->f, v ? v : "");
}

void krg_json_uint(struct krg_json *j, const char *key, uint64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void krg_json_int(struct krg_json *j, const char *key, int64_t v)
{
	prefix(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void krg_json_double(struct krg_json *j, const char *key, double v)
{
	prefix(j, key);
	fprintf(j->f, "%.3f", v);
}

void krg_json_bool(struct krg_json *j, const char *key, bool v)
{
	prefix(j, key);
	fputs(v ? "true" : "false", j->f);
}

void krg_json_null(struct krg_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}

void krg_json_finish(struct krg_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
