/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_LOG_H
#define KMTLS_LOG_H

#include <syslog.h>

/* Where log lines go: stderr in the foreground, syslog (journal) otherwise. */
void kmtls_log_init(const char *ident, int to_stderr, int min_level);
void kmtls_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether a line at @level would be written: skip building what it needs. */
int kmtls_log_enabled(int level);

/*
 * Log a message at most once per process for a given key (a static string):
 * fallback reasons repeat for every connection and would flood the journal.
 */
void kmtls_log_once(const char *key, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Lines a peer or any local user can cause at will (a refused kernel
 * request, a failed handshake): of each @key (a static string naming the
 * kind, quoted by the summary) the first KMTLS_LOG_LIMIT_BURST lines of a
 * KMTLS_LOG_LIMIT_WINDOW_MS window are logged; the others are counted and
 * said in one line once the window is over, so that a flood neither fills
 * the disk nor makes journald drop kmtlsd's other lines.
 */
#define KMTLS_LOG_LIMIT_BURST		20
#define KMTLS_LOG_LIMIT_WINDOW_MS	10000
void kmtls_log_limited(const char *key, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Log the summaries of the windows that are over. Returns the ms until
 * the next one is due, or -1 when nothing is held back. The main thread
 * calls it, so that a summary comes when its window ends, not at the next
 * line of its kind.
 */
long kmtls_log_limited_flush(void);

#define log_err(...)	kmtls_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	kmtls_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	kmtls_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	kmtls_log(LOG_DEBUG, __VA_ARGS__)

#endif
