/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_STATUS_H
#define KMTLS_STATUS_H

#include <stddef.h>
#include <time.h>

struct kmtls_worker;
struct kmtls_listener;
struct kmtls_kservice;

/* What the status endpoint reports on; owned by the daemon. */
struct kmtls_status_src {
	const struct kmtls_worker *ws;
	int n_workers;
	const struct kmtls_listener *ls;
	int n_listeners;
	time_t started;
	volatile time_t *reloaded;	/* last successful reload (daemon.c says when) */
	volatile unsigned long *reload_failures;	/* SIGHUPs that did not all apply */
	const struct kmtls_kservice *ks;	/* NULL: no [kernel] profile */
};

/*
 * Serve GET /metrics (Prometheus text) and GET /status (JSON) on @addr
 * ("127.0.0.1:9443" or "unix:/run/kmtls/status.sock") from a thread of its
 * own. Returns 0 or -1 with err. Local only by design: there is no TLS and
 * no authentication on this endpoint.
 *
 * kmtls_status_bind() creates the listening socket alone, so that it can
 * come before privileges are dropped and the sandbox is applied (daemon.c);
 * kmtls_status_start() then uses that socket, or binds itself.
 */
int kmtls_status_bind(const char *addr, char *err, size_t errlen);
int kmtls_status_start(const char *addr, const struct kmtls_status_src *src,
		       char *err, size_t errlen);
void kmtls_status_stop(void);

/* The two documents, for tests and for the endpoint (malloc'd). */
char *kmtls_status_metrics(const struct kmtls_status_src *src);
char *kmtls_status_json(const struct kmtls_status_src *src);

#endif
