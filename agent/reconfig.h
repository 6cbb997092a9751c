/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_RECONFIG_H
#define KMTLS_RECONFIG_H

#include "config.h"

/*
 * SIGHUP re-reads the config file; reconfig.c says what a running kmtlsd
 * applies and what waits for a restart. Main thread only.
 */

/*
 * Read @cur->path again and check it. The file's configuration, or NULL:
 * no file (flags), or it does not parse or validate (logged, with file,
 * line and key: nothing of it applies). Changes that need a restart are
 * logged here; what may change is applied by the callers, listener by
 * listener, with the functions below.
 */
struct kmtls_config *kmtls_reconfig_read(const struct kmtls_config *cur);
void kmtls_reconfig_free(struct kmtls_config *file);

/* @file's [listener NAME] or [kernel NAME]; NULL when absent or no @file. */
struct kmtls_listener_conf *kmtls_reconfig_listener(struct kmtls_config *file,
						    const char *name);
struct kmtls_kernel_conf *kmtls_reconfig_kernel(struct kmtls_config *file,
						const char *name);

/*
 * What to build the next TLS context and policy from: @cur with the keys a
 * reload may change taken from @file (NULL: @cur as it is). Shallow: @out
 * shares the strings of both.
 */
void kmtls_reconfig_effective_listener(struct kmtls_listener_conf *out,
				       const struct kmtls_listener_conf *cur,
				       const struct kmtls_listener_conf *file);
void kmtls_reconfig_effective_kernel(struct kmtls_kernel_conf *out,
				     const struct kmtls_kernel_conf *cur,
				     const struct kmtls_kernel_conf *file);

/*
 * Once the context built from the effective configuration is in use: @cur
 * takes those values from @file, which gets the old ones (freed with it).
 * Each change is logged.
 */
void kmtls_reconfig_adopt_listener(struct kmtls_listener_conf *cur,
				   struct kmtls_listener_conf *file);
void kmtls_reconfig_adopt_kernel(struct kmtls_kernel_conf *cur,
				 struct kmtls_kernel_conf *file);

/* @dst's reloadable keys refer to @src's values (per-role copies). */
void kmtls_reconfig_share_live(struct kmtls_listener_conf *dst,
			       const struct kmtls_listener_conf *src);

#endif
