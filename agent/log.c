// SPDX-License-Identifier: GPL-2.0-or-later
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_stderr = 1;
static int log_min = LOG_INFO;
static const char *log_ident = "kmtls";

void kmtls_log_init(const char *ident, int to_stderr, int min_level)
{
	log_ident = ident;
	log_stderr = to_stderr;
	log_min = min_level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE: case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;

	if (level > log_min)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (!log_stderr) {
		syslog(level, "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* One fprintf per line so lines from several workers never interleave. */
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%s]: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
		level_name(level), line);
}

int kmtls_log_enabled(int level)
{
	return level <= log_min;
}

void kmtls_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

#define ONCE_SLOTS 64

void kmtls_log_once(const char *key, int level, const char *fmt, ...)
{
	static const char *seen[ONCE_SLOTS];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	va_list ap;
	int i, fresh = 1;

	pthread_mutex_lock(&lock);
	for (i = 0; i < ONCE_SLOTS && seen[i]; i++) {
		if (seen[i] == key || !strcmp(seen[i], key)) {
			fresh = 0;
			break;
		}
	}
	if (fresh && i < ONCE_SLOTS)
		seen[i] = key;
	pthread_mutex_unlock(&lock);
	if (!fresh)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
