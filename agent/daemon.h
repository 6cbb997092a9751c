/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_DAEMON_H
#define KMTLS_DAEMON_H

#include "config.h"

/*
 * Build listeners and workers from a validated config, serve until SIGTERM
 * or SIGINT, reload TLS material (and what of the config file may change,
 * reconfig.h, which updates @cfg) on SIGHUP. Returns the exit status.
 */
int kmtls_daemon_run(struct kmtls_config *cfg);

/* Load every listener's TLS material once (for --check-config). */
int kmtls_daemon_check(const struct kmtls_config *cfg, char *err, size_t errlen);

#endif
