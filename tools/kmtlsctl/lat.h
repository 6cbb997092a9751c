/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl latency: shared by latency.c (verbs) and lat_*.c. */
#ifndef KMTLS_KMTLSCTL_LAT_H
#define KMTLS_KMTLSCTL_LAT_H

#include <stddef.h>

#include <json-c/json.h>

#include "hs_latency.h"

struct ctl;
struct hs_latency;

/* The pinned maps, as fds (-1 when closed). */
struct lat_maps {
	int config, conns, addrs, hist, rows, rowkey, rowix, stats, events;
};

/*
 * Open the pinned maps and check their layout against this build.
 * 0, -ENOENT when nothing is pinned yet, other -errno with @err set.
 */
int lat_maps_open(struct lat_maps *m, char *err, size_t errlen);
void lat_maps_close(struct lat_maps *m);

/*
 * Load hs_latency with its maps pinned by name under the pin directory
 * (created, or reused with what they hold); a fresh configuration map gets
 * its defaults. NULL with @err set on failure.
 */
struct hs_latency *lat_load(char *err, size_t errlen);

int lat_config_get(const struct lat_maps *m, struct hs_config *c);
int lat_config_put(const struct lat_maps *m, const struct hs_config *c);

/* hs_stats summed over the possible CPUs. */
int lat_stats_get(const struct lat_maps *m, struct hs_stats *s);
/* Counter names in struct hs_stats order. */
extern const char *const lat_stat_names[];
#define LAT_NSTATS ((int)(sizeof(struct hs_stats) / sizeof(__u64)))

/* Forget every histogram and counter. */
int lat_reset(const struct lat_maps *m);

/*
 * Forget every handshake in progress: once detached nothing frees their
 * slots, and a socket tracked before a detach must not be counted after
 * the next attach. 0 or -errno.
 */
int lat_conns_clear(const struct lat_maps *m);

/* One hs_hist entry. */
struct lat_hist {
	struct hs_hist_key key;
	struct hs_hist h;
};

/* All of hs_hist: an array to free() in @out, its length in @n. */
int lat_hist_read(const struct lat_maps *m, struct lat_hist **out, size_t *n);

/*
 * "443,8443" into @ports / @n (at most HS_MAX_PORTS); "none" is the empty
 * list. 0, or -1 with @err set.
 */
int lat_parse_ports(const char *s, __u16 *ports, __u32 *n, char *err, size_t errlen);

/* The configuration as JSON and as one line of text. */
json_object *lat_config_json(const struct hs_config *c);
void lat_config_print(const struct hs_config *c);

/* kmtlsctl latency [--port N] [--interval S [--count N]] */
int lat_show(struct ctl *c, int argc, char **argv);
/* kmtlsctl latency --events [--port N] [--count N] [--duration S] */
int lat_events(struct ctl *c, int argc, char **argv);

#endif
