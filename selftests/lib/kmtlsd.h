/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_KMTLSD_H
#define KMTLS_SELFTEST_KMTLSD_H

#include "proc.h"

/* kmtlsd started by a test with the test PKI, one listener from flags. */
struct kmtlsd {
	struct proc proc;
	int port;
};

/*
 * Start kmtlsd --foreground in front of 127.0.0.1:backend_port with the
 * test PKI's server certificate, CA and CRL, plus @extra flags (NULL-
 * terminated). Waits for its "listening on" line. 0, or -1 when it exited
 * or did not get ready (its log says why).
 */
int kmtlsd_start(struct kmtlsd *d, int backend_port, const char *const *extra);
/*
 * Start kmtlsd --foreground --workers 1 --log-level debug with exactly
 * @args after that (the caller names listen, backend, certificates...).
 * @port is what the caller put in --listen, kept in d->port.
 */
int kmtlsd_run(struct kmtlsd *d, int port, const char *const *args);

/*
 * How long a start (or a stop) may take: longer when $KMTLS_WRAP puts a
 * tool such as valgrind in front of the daemon (kmtlsd_start honours it).
 */
int kmtlsd_start_timeout_ms(void);

/*
 * SIGTERM and wait: 0 when it exited cleanly (also when it never ran);
 * under ASan a leak or error at exit makes this non-zero.
 */
int kmtlsd_stop(struct kmtlsd *d);

/* Wait until the daemon's log has @needle (0) or timeout (-1). */
int kmtlsd_wait_log(struct kmtlsd *d, const char *needle, int timeout_ms);

/*
 * SIGHUP, then wait (5 s at most) until the log says "reloaded
 * certificates" for the @nth time: 0, or -1.
 */
int kmtlsd_reload(struct kmtlsd *d, int nth);

/* Print the daemon's log to stderr (for failing tests). */
void kmtlsd_dump_log(struct kmtlsd *d);

#endif
