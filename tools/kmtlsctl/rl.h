/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl ratelimit: shared by ratelimit.c (verbs) and rl_*.c. */
#ifndef KMTLS_KMTLSCTL_RL_H
#define KMTLS_KMTLSCTL_RL_H

#include <stddef.h>

#include <json-c/json.h>

#include "hello_limit.h"

struct hello_limit;

/* The pinned maps, as fds (-1 when closed). */
struct rl_maps {
	int config, stats, sources, global, allow;
};

/*
 * Open the pinned maps and check their layout against this build.
 * 0, -ENOENT when nothing is pinned yet, other -errno with @err set.
 */
int rl_maps_open(struct rl_maps *m, char *err, size_t errlen);
void rl_maps_close(struct rl_maps *m);

/*
 * Load the program with its maps pinned by name under the pin directory
 * (created, or reused with the configuration they hold), and give a fresh
 * configuration map its defaults. NULL with @err set on failure.
 */
struct hello_limit *rl_load(char *err, size_t errlen);

/* rl_maps_open, loading the program first when nothing is pinned yet. */
int rl_maps_get(struct rl_maps *m, char *err, size_t errlen);

int rl_config_get(const struct rl_maps *m, struct hl_config *c);
/* Derive the computed fields of @c and store it. */
int rl_config_put(const struct rl_maps *m, struct hl_config *c);

/* hl_stats summed over the possible CPUs. */
int rl_stats_get(const struct rl_maps *m, struct hl_stats *s);

/* "443,8443": 0, or -1 with @err set. */
int rl_parse_ports(const char *s, struct hl_config *c, char *err, size_t errlen);

/* "10.0.0.0/8", "2001:db8::/32", or a bare address: 0 or -1. */
int rl_parse_cidr(const char *s, struct hl_lpm_key *k);

/* @addr (IPv4-mapped) with @prefixlen (in the 128-bit space) as CIDR text. */
void rl_format_prefix(const __u8 addr[16], unsigned int prefixlen, char *buf, size_t len);

/* Counter names in struct hl_stats order. */
extern const char *const rl_stat_names[];
#define RL_NSTATS ((int)(sizeof(struct hl_stats) / sizeof(__u64)))

const char *rl_mode_name(__u32 mode);
json_object *rl_config_json(const struct hl_config *c);
void rl_config_print(const struct hl_config *c);

int rl_status(struct ctl *c, int argc, char **argv);

#endif
