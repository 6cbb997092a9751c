/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsd's status endpoint on 127.0.0.1, as the tests read it. */
#ifndef KMTLS_SELFTEST_STATUS_HTTP_H
#define KMTLS_SELFTEST_STATUS_HTTP_H

/*
 * GET @path (HTTP/1.0) from kmtlsd's status endpoint on 127.0.0.1:@port:
 * the body (malloc'd), or NULL unless the answer was 200.
 */
char *status_get(int port, const char *path);

/*
 * An integer of the JSON on /status: "active", or "handshakes.failed" one
 * level down. -1 when the endpoint or the key is not there.
 */
long status_int(int port, const char *key);

/*
 * The value of metric @name (its whole name, labels included) in the
 * /metrics text @text, or -1 when it is not there.
 */
long status_metric(const char *text, const char *name);

/* Wait until status_int(@key) == @want: 0, or -1 after @timeout_ms. */
int status_wait(int port, const char *key, long want, int timeout_ms);

#endif
