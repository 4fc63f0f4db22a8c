/* log.c — see log.h. Lines look like:
 *   2026-11-26T15:04:05.123Z krgd[1] info: node 2 is up (epoch 4)
 * Errors and warnings add file:line so a report points at the code. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/time.h>
#include "log.h"

enum krg_log_level krg_log_max = LOG_LVL_INFO;
static char log_tag[64] = "krg";

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

void krg_log_set_level(enum krg_log_level lvl) { krg_log_max = lvl; }

const char *krg_log_level_name(enum krg_log_level lvl)
{
	return (unsigned)lvl < ARRAY_SIZE(level_names) ? level_names[lvl] : "?";
}

int krg_log_parse_level(const char *s)
{
	for (unsigned i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void krg_log_set_tag(const char *tag) { snprintf(log_tag, sizeof(log_tag), "%s", tag); }

void krg_log_write(enum krg_log_level lvl, const char *file, int line, const char *fmt, ...)
{
	char msg[1024], ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (lvl <= LOG_LVL_WARN)
		fprintf(stderr, "%s.%03ldZ %s %s: %s (%s:%d)\n", ts, (long)tv.tv_usec / 1000, log_tag,
			krg_log_level_name(lvl), msg, base, line);
	else
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", ts, (long)tv.tv_usec / 1000, log_tag,
			krg_log_level_name(lvl), msg);
	errno = saved;
}
