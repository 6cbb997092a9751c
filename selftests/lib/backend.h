/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_BACKEND_H
#define KMTLS_SELFTEST_BACKEND_H

#include <json-c/json.h>

#include "proc.h"

/* The selftest backend (selftests/progs/test_backend.c) as a child process. */
struct backend {
	struct proc proc;
	int port;
	char report[256];
};

/* Start on 127.0.0.1 with extra args (NULL-terminated), wait until ready. */
int backend_start(struct backend *b, const char *const *args);

/* Stop it (the report then ends with the totals line). */
void backend_stop(struct backend *b);

/* Report line @n (0-based) parsed, or NULL; put with json_object_put. */
json_object *backend_report_line(struct backend *b, int n);

/* Totals after backend_stop(): -1 when the report has none. */
long backend_total_bytes(struct backend *b);
long backend_conns(struct backend *b);

/* Wait until the report has @n connection lines; 0 or -1 on timeout. */
int backend_wait_conns(struct backend *b, int n, int timeout_ms);

/* Convenience: string / integer field of a JSON object. */
const char *jstr(json_object *o, const char *key);
long jint(json_object *o, const char *key);

#endif
