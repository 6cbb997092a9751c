// SPDX-License-Identifier: GPL-2.0-or-later
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
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

/* ---- lines that may come in floods ------------------------------------ */

#define LIMIT_SLOTS 32	/* kinds: call sites, a few each */

struct limit {
	const char *key;
	int level;
	uint64_t start;		/* ms, monotonic: the window's beginning */
	unsigned int logged;	/* in this window */
	unsigned long held;	/* not logged in this window */
};

static struct limit limits[LIMIT_SLOTS];
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say_held(const char *key, int level, unsigned long held)
{
	kmtls_log(level, "%lu more \"%s\" line(s) within %d s were not logged (at most %d of each kind are, per %d s)",
		  held, key, KMTLS_LOG_LIMIT_WINDOW_MS / 1000, KMTLS_LOG_LIMIT_BURST,
		  KMTLS_LOG_LIMIT_WINDOW_MS / 1000);
}

void kmtls_log_limited(const char *key, int level, const char *fmt, ...)
{
	unsigned long held = 0;
	int i, say = 1, held_level = level;
	struct limit *l;
	uint64_t now;
	va_list ap;

	if (level > log_min)
		return;
	now = mono_ms();
	pthread_mutex_lock(&limit_lock);
	for (i = 0; i < LIMIT_SLOTS && limits[i].key; i++)
		if (limits[i].key == key || !strcmp(limits[i].key, key))
			break;
	if (i < LIMIT_SLOTS) {	/* else more kinds than slots: not limited */
		l = &limits[i];
		if (!l->key || now - l->start >= KMTLS_LOG_LIMIT_WINDOW_MS) {
			held = l->held;	/* the window before, not flushed yet */
			held_level = l->level;
			*l = (struct limit){ .key = key, .level = level, .start = now };
		}
		if (l->logged < KMTLS_LOG_LIMIT_BURST) {
			l->logged++;
		} else {
			l->held++;
			say = 0;
		}
	}
	pthread_mutex_unlock(&limit_lock);
	if (held)
		say_held(key, held_level, held);
	if (!say)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

long kmtls_log_limited_flush(void)
{
	struct limit due[LIMIT_SLOTS];
	uint64_t now = mono_ms(), end;
	long next = -1;
	int i, n = 0;

	pthread_mutex_lock(&limit_lock);
	for (i = 0; i < LIMIT_SLOTS && limits[i].key; i++) {
		if (!limits[i].held)
			continue;
		end = limits[i].start + KMTLS_LOG_LIMIT_WINDOW_MS;
		if (now >= end) {
			due[n++] = limits[i];
			limits[i].held = 0;	/* the next line opens a new window */
		} else if (next < 0 || (long)(end - now) < next) {
			next = (long)(end - now);
		}
	}
	pthread_mutex_unlock(&limit_lock);
	for (i = 0; i < n; i++)
		say_held(due[i].key, due[i].level, due[i].held);
	return next;
}
