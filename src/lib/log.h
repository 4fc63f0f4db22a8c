/* log.h — leveled logging to stderr or a file, one line per event.
 * The level is checked before arguments are formatted. Library code
 * returns negative errno; the boundary logs once with log_error_errno(). */
#pragma once
#include <stdarg.h>
#include "macro.h"

enum krg_log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_TRACE };

extern enum krg_log_level krg_log_max;

void krg_log_set_level(enum krg_log_level lvl);
int krg_log_parse_level(const char *s); /* level or -EINVAL */
const char *krg_log_level_name(enum krg_log_level lvl);
/* Prefix every line with this tag (e.g. "krgd[1]"). String is copied. */
void krg_log_set_tag(const char *tag);
/* Lines of one call site are rate-limited (log.c: 50 per 10 s at error,
 * warn and info; the rest counted and summarised). A daemon calls this
 * now and then so that a count is written even when its site went quiet. */
void krg_log_flush_suppressed(void);
void krg_log_write(enum krg_log_level lvl, const char *file, int line, const char *fmt, ...) _printf_(4, 5);

#define krg_log(lvl, ...)                                                \
	do {                                                             \
		if ((lvl) <= krg_log_max)                                \
			krg_log_write((lvl), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#define log_error(...) krg_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) krg_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) krg_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) krg_log(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_trace(...) krg_log(LOG_LVL_TRACE, __VA_ARGS__)

/* Log at error level and evaluate to r (a negative errno). */
#define log_error_errno(r, ...)            \
	({                                 \
		log_error(__VA_ARGS__);    \
		(r);                       \
	})
