/* json.h — a tiny streaming JSON writer for --json outputs. It tracks
 * commas itself so callers just emit keys and values in order. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct krg_json {
	FILE *f;
	int depth;
	bool need_comma[32];
};

void krg_json_init(struct krg_json *j, FILE *f);
void krg_json_begin_object(struct krg_json *j, const char *key); /* key NULL inside arrays / at top */
void krg_json_end_object(struct krg_json *j);
void krg_json_begin_array(struct krg_json *j, const char *key);
void krg_json_end_array(struct krg_json *j);
void krg_json_string(struct krg_json *j, const char *key, const char *v);
void krg_json_uint(struct krg_json *j, const char *key, uint64_t v);
void krg_json_int(struct krg_json *j, const char *key, int64_t v);
void krg_json_double(struct krg_json *j, const char *key, double v);
void krg_json_bool(struct krg_json *j, const char *key, bool v);
void krg_json_null(struct krg_json *j, const char *key);
/* Ends the document with a newline. */
void krg_json_finish(struct krg_json *j);
