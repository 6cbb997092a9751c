/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_RATELIMIT_H
#define KMTLS_RATELIMIT_H

#include <stddef.h>

#include "config.h"

/*
 * What can be checked of [ratelimit] without the kernel: ports, allow
 * prefixes, interface names. 0, or -1 with a sentence in err (for start-up
 * and --check-config).
 */
int kmtls_ratelimit_check(const struct kmtls_config *cfg, char *err, size_t errlen);

/*
 * At start, before any listener or thread exists and before privileges go:
 * apply [ratelimit] (nothing when the section is absent), then fork the
 * process that applies it again on every reload, because once sandboxed
 * kmtlsd itself may no longer call bpf(2). 0, or -1 with a sentence in err:
 * kmtlsd must not serve then.
 */
int kmtls_ratelimit_start(const struct kmtls_config *cfg, char *err, size_t errlen);

/*
 * SIGHUP, once the rest of the reload has applied: the helper re-reads
 * the config file and applies [ratelimit]; waits until it is done, 10 s
 * at most. A bad section keeps the previous settings. 0 when it applied
 * (or kmtlsd has no [ratelimit] to apply), -1 when it did not, or not
 * in time (logged).
 */
int kmtls_ratelimit_reload(void);

#endif
