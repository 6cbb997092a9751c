/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl ratelimit: shared by ratelimit.c (verbs) and rl_status.c. */
#ifndef KMTLS_KMTLSCTL_RL_CTL_H
#define KMTLS_KMTLSCTL_RL_CTL_H

#include <json-c/json.h>

#include "kmtlsctl.h"
#include "../../agent/rl.h"

json_object *rl_config_json(const struct hl_config *c);
void rl_config_print(const struct hl_config *c);
/* The allowlist's prefixes as CIDR strings; NULL with errno set. */
json_object *rl_allow_json(const struct rl_maps *m);

int rl_status(struct ctl *c, int argc, char **argv);

#endif
