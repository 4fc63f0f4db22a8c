/* log.c — see log.h. Lines look like:
 *   2026-11-26T15:04:05.123Z krgd[1] info: node 2 is up (epoch 4)
 * Errors and warnings add file:line so a report points at the code. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <sys/stat.h>
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

/* Rate limit per call site: a site may write LOG_BURST lines per window of
 * LOG_WINDOW_MS; what it would write beyond that is counted, and the count
 * is written as one line once the window is over (at the site's next line
 * or at krg_log_flush_suppressed()). A peer or a local user who makes krgd
 * log on every connection cannot fill the disk that way. Sites are keyed
 * by the __FILE__ pointer and line; debug and trace are never limited. */
enum { LOG_BURST = 50, LOG_WINDOW_MS = 10000, LOG_SITES = 512 };
struct log_site {
	const char *file;
	int line;
	enum krg_log_level lvl;
	unsigned written;      /* lines written in this window */
	unsigned long suppressed;
	int64_t window_start;  /* ms, CLOCK_MONOTONIC */
};
static struct log_site sites[LOG_SITES];
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Under systemd, stderr is a stream to the journal ($JOURNAL_STREAM names
 * its device and inode): the journal stamps each line itself, and a
 * "<N>" prefix (sd-daemon(3)) gives it the line's priority, so
 * `journalctl -p warning -u krgd` works. Checked once, on the first line:
 * a stderr redirected elsewhere keeps the full format. */
static int journal_stderr = -1;

static bool stderr_is_journal(void)
{
	if (journal_stderr < 0) {
		const char *js = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;
		journal_stderr = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
				 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return journal_stderr;
}

static void emit(enum krg_log_level lvl, const char *file, int line, const char *msg)
{
	/* syslog priorities: err, warning, info, debug, debug */
	static const int prio[] = { 3, 4, 6, 7, 7 };
	char ts[40];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (stderr_is_journal()) {
		if (lvl <= LOG_LVL_WARN)
			fprintf(stderr, "<%d>%s %s: %s (%s:%d)\n", prio[lvl], log_tag, krg_log_level_name(lvl), msg,
				base, line);
		else
			fprintf(stderr, "<%d>%s %s: %s\n", prio[lvl], log_tag, krg_log_level_name(lvl), msg);
		return;
	}
	if (lvl <= LOG_LVL_WARN)
		fprintf(stderr, "%s.%03ldZ %s %s: %s (%s:%d)\n", ts, (long)tv.tv_usec / 1000, log_tag,
			krg_log_level_name(lvl), msg, base, line);
	else
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", ts, (long)tv.tv_usec / 1000, log_tag,
			krg_log_level_name(lvl), msg);
}

/* Write the count of a site's suppressed lines, if any. Lock held. */
static void site_summary(struct log_site *s, int64_t now)
{
	if (!s->suppressed)
		return;
	char msg[160];
	snprintf(msg, sizeof(msg), "... %lu more like this in %.1f s (rate limit: %d lines per %d s)", s->suppressed,
		 (double)(now - s->window_start) / 1000.0, LOG_BURST, LOG_WINDOW_MS / 1000);
	emit(s->lvl, s->file, s->line, msg);
	s->suppressed = 0;
}

/* May this site write a line now? Lock held. */
static bool site_admit(enum krg_log_level lvl, const char *file, int line)
{
	size_t h = ((uintptr_t)file * 31u + (unsigned)line) % LOG_SITES;
	struct log_site *s = NULL;
	for (size_t i = 0; i < LOG_SITES; i++) {
		struct log_site *c = &sites[(h + i) % LOG_SITES];
		if (!c->file || (c->file == file && c->line == line)) {
			s = c;
			break;
		}
	}
	if (!s)
		return true;  /* table full: unlimited rather than silent */
	int64_t now = mono_ms();
	if (!s->file)
		*s = (struct log_site){ .file = file, .line = line, .lvl = lvl, .window_start = now };
	if (now - s->window_start >= LOG_WINDOW_MS) {
		site_summary(s, now);
		s->window_start = now;
		s->written = 0;
	}
	if (s->written >= LOG_BURST) {
		s->suppressed++;
		return false;
	}
	s->written++;
	return true;
}

void krg_log_flush_suppressed(void)
{
	int64_t now = mono_ms();
	pthread_mutex_lock(&sites_lock);
	for (size_t i = 0; i < LOG_SITES; i++)
		if (sites[i].file && sites[i].suppressed && now - sites[i].window_start >= LOG_WINDOW_MS) {
			site_summary(&sites[i], now);
			sites[i].window_start = now;
			sites[i].written = 0;
		}
	pthread_mutex_unlock(&sites_lock);
}

void krg_log_write(enum krg_log_level lvl, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved = errno;

	if (lvl <= LOG_LVL_INFO) {
		pthread_mutex_lock(&sites_lock);
		bool ok = site_admit(lvl, file, line);
		pthread_mutex_unlock(&sites_lock);
		if (!ok) {
			errno = saved;
			return;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(lvl, file, line, msg);
	errno = saved;
}
