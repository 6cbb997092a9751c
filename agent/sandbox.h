/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SANDBOX_H
#define KMTLS_SANDBOX_H

#include <stddef.h>

#include "config.h"

/*
 * Once every listening socket is bound and before any thread starts: no
 * core dumps, switch to the configured user, then (unless sandbox = off)
 * Landlock and the seccomp allowlist. Each step the kernel lacks is logged
 * and skipped. Returns 0, or -1 with a sentence in err: kmtlsd must not
 * serve then.
 */
int kmtls_sandbox_apply(const struct kmtls_config *cfg, char *err, size_t errlen);

/* The [kmtlsd] user exists (for start-up and --check-config). 0 or -1 + err. */
int kmtls_sandbox_check(const struct kmtls_config *cfg, char *err, size_t errlen);

#endif
