/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_UIDLOOKUP_H
#define KMTLS_UIDLOOKUP_H

#include <stddef.h>

#include "config.h"

/*
 * allow-uid user names on reload, looked up by a process outside the
 * sandbox (uidlookup.c says why). At start, before any key is loaded, any
 * thread started and the sandbox applied: when kmtlsd has a config file,
 * [kernel NAME] profiles and the sandbox on, fork that process and make
 * the config parser ask it (kmtls_config_set_user_lookup()). 0, or -1 with
 * a sentence in err.
 */
int kmtls_uidlookup_start(const struct kmtls_config *cfg, char *err, size_t errlen);

#endif
