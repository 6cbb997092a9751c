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

#define log_err(...)	kmtls_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	kmtls_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	kmtls_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	kmtls_log(LOG_DEBUG, __VA_ARGS__)

#endif
