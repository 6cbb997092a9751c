/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hello_limit.h - the maps of the XDP ClientHello limiter, shared by
 * bpf/hello_limit.bpf.c, agent/rl*.c (kmtlsctl ratelimit and kmtlsd's
 * [ratelimit]) and the selftests.
 *
 * Every map is pinned by name under the pin directory (/sys/fs/bpf/kmtls by
 * default) and carries BTF, so `bpftool map dump pinned .../hl_config`
 * prints field names. The configuration lives in those maps: a restarted
 * kmtlsd or a new program instance finds it there. A layout change here must
 * change HL_CONFIG_VERSION (kmtlsctl refuses maps from another version).
 */
#ifndef KMTLS_HELLO_LIMIT_H
#define KMTLS_HELLO_LIMIT_H

#include <linux/types.h>

#define HL_CONFIG_VERSION	1
#define HL_MAX_PORTS		16
#define HL_MAX_SOURCES		65536	/* hl_sources LRU entries */
#define HL_MAX_ALLOW		4096	/* hl_allow prefixes */

#define HL_MAP_CONFIG	"hl_config"
#define HL_MAP_STATS	"hl_stats"
#define HL_MAP_SOURCES	"hl_sources"
#define HL_MAP_GLOBAL	"hl_global"
#define HL_MAP_ALLOW	"hl_allow"
#define HL_PIN_PROG	"hello_limit"	/* the newest program instance */
#define HL_PIN_LINK	"hl_link_"	/* + interface name: one XDP link each */

enum hl_mode {
	HL_MODE_ENFORCE = 0,	/* over-limit ClientHellos are dropped */
	HL_MODE_MONITOR = 1,	/* ... only counted */
};

/* hl_config[0]. Written by agent/rl_maps.c, read by the program per TCP segment. */
struct hl_config {
	__u32 version;		/* HL_CONFIG_VERSION once initialized */
	__u32 mode;		/* enum hl_mode */
	__u32 nports;
	__u16 ports[HL_MAX_PORTS];	/* destination ports watched, host order */
	__u32 rate;		/* per-source ClientHellos/s, 0: no per-source limit */
	__u32 burst;
	__u32 global_rate;	/* all sources together, 0: no global limit */
	__u32 global_burst;
	__u32 prefix4;		/* sources aggregated to this IPv4 prefix (32) */
	__u32 prefix6;		/* ... and this IPv6 prefix (64) */
	/* Derived by kmtlsctl from the fields above (see hl_config_derive). */
	__u32 mask[4];		/* IPv6 source mask, network order */
	__u32 mask4;		/* IPv4 source mask, network order */
	__u32 pad;
	__u64 interval_ns;	/* 1e9 / rate */
	__u64 tolerance_ns;	/* (burst - 1) * interval_ns, a tick at least */
	__u64 global_interval_ns;
	__u64 global_tolerance_ns;
};

/*
 * hl_stats[0], per CPU. Each packet counts once in seen, once in passed or
 * dropped, and once in exactly one of the reasons from not_tcp to
 * over_global (the same order as enum hl_reason). hello_odd_version counts
 * ClientHellos with an unusual record version on top of their reason.
 */
struct hl_stats {
	__u64 seen;
	__u64 passed;
	__u64 dropped;
	__u64 not_tcp;		/* not IPv4/IPv6 TCP, non-first fragments */
	__u64 unwatched_port;
	__u64 no_payload;
	__u64 malformed;	/* unparseable headers or TLS record length */
	__u64 not_tls;
	__u64 partial;		/* ClientHello starts split before the handshake
				 * type (by TCP or IP fragments): charged as
				 * ClientHellos, counted here as well */
	__u64 other_handshake;
	__u64 hello_allowed;	/* ClientHello from an allowlisted source */
	__u64 hello_ok;		/* ClientHello within every budget */
	__u64 over_source;	/* over its source's budget */
	__u64 over_global;	/* over the global budget */
	__u64 hello_odd_version;
};

enum hl_reason {
	HL_R_NOT_TCP,
	HL_R_UNWATCHED_PORT,
	HL_R_NO_PAYLOAD,
	HL_R_MALFORMED,
	HL_R_NOT_TLS,
	HL_R_PARTIAL,
	HL_R_OTHER_HANDSHAKE,
	HL_R_HELLO_ALLOWED,
	HL_R_HELLO_OK,
	HL_R_OVER_SOURCE,
	HL_R_OVER_GLOBAL,
	HL_R_MAX,
};

/* hl_sources key: the source address masked to its prefix (IPv4-mapped). */
struct hl_src_key {
	__u8 addr[16];
};

/*
 * A token bucket as one "theoretical arrival time" (GCRA): a ClientHello at
 * time t conforms when max(tat, t) - t <= tolerance, and then moves tat to
 * max(tat, t) + interval. Equivalent to a bucket of @burst tokens refilled at
 * @rate, but a single word, so it is updated with one compare-and-swap.
 */
struct hl_bucket {
	__u64 tat_ns;		/* CLOCK_MONOTONIC_COARSE, ns */
	__u64 admitted;		/* ClientHellos that conformed */
	__u64 limited;		/* ... over this source's own budget (dropped in
				 * enforce mode); the global cap's refusals
				 * are hl_stats.over_global only */
};

/*
 * hl_allow's values: who put the prefix there. kmtlsd removes the prefixes
 * its [ratelimit] allow no longer lists (at start too), never an
 * operator's; entries of earlier versions (1) count as an operator's.
 */
#define HL_ALLOW_MANUAL	1	/* kmtlsctl ratelimit allow add */
#define HL_ALLOW_CONFIG	2	/* kmtlsd's [ratelimit] allow */

/* hl_allow key: LPM trie over IPv4-mapped addresses (IPv4 /n is 96 + n). */
struct hl_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#ifndef __bpf__
#include <arpa/inet.h>
#include <time.h>

/* Network-order mask of the top @bits (0..32) of a 32-bit word. */
static inline __u32 hl_mask32(int bits)
{
	if (bits <= 0)
		return 0;
	if (bits >= 32)
		return 0xffffffffu;
	return htonl(0xffffffffu << (32 - bits));
}

/*
 * The program's clock (CLOCK_MONOTONIC_COARSE) moves in ticks: within one
 * tick GCRA admits at most burst. When a tick is longer than burst
 * intervals, that would cap the rate at burst per tick (rate 1000, burst
 * 1 at HZ=250: 250/s), so the tolerance covers a tick at least.
 */
static inline __u64 hl_tolerance(__u64 burst, __u64 interval)
{
	struct timespec res;
	__u64 tol = burst ? (burst - 1) * interval : 0, tick;

	if (!interval || clock_getres(CLOCK_MONOTONIC_COARSE, &res))
		return tol;
	tick = (__u64)res.tv_sec * 1000000000ull + (__u64)res.tv_nsec;
	return tick > interval && tol < tick - interval ? tick - interval : tol;
}

/* Fill the derived fields of @c from rate, burst and prefix fields. */
static inline void hl_config_derive(struct hl_config *c)
{
	int i;

	c->mask4 = hl_mask32((int)c->prefix4);
	for (i = 0; i < 4; i++)
		c->mask[i] = hl_mask32((int)c->prefix6 - 32 * i);
	c->interval_ns = c->rate ? 1000000000ull / c->rate : 0;
	c->tolerance_ns = hl_tolerance(c->burst, c->interval_ns);
	c->global_interval_ns = c->global_rate ? 1000000000ull / c->global_rate : 0;
	c->global_tolerance_ns = hl_tolerance(c->global_burst, c->global_interval_ns);
}

/* The configuration a new pin directory starts with. */
static inline void hl_config_default(struct hl_config *c)
{
	static const __u16 ports[] = { 443, 8443, 6443 };
	unsigned int i;

	*c = (struct hl_config){
		.version = HL_CONFIG_VERSION,
		.mode = HL_MODE_ENFORCE,
		.rate = 20,
		.burst = 40,
		.prefix4 = 32,
		.prefix6 = 64,
	};
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		c->ports[c->nports++] = ports[i];
	hl_config_derive(c);
}
#endif

#endif
