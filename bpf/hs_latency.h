/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hs_latency.h - the maps, events and histogram layout of the handshake
 * latency programs (bpf/hs_latency.bpf.c), shared with tools/kmtlsctl and
 * the selftests.
 *
 * Maps are pinned by name under the pin directory (/sys/fs/bpf/kmtls by
 * default) next to hello_limit's, all with BTF: `bpftool map dump pinned
 * .../hs_hist` prints field names. A layout change here must change
 * HS_CONFIG_VERSION (kmtlsctl refuses maps from another version).
 *
 * Latency of a connection = from the moment its TCP connection became
 * ESTABLISHED (for a server: the final ACK, before accept(), so the time
 * in the accept queue counts) to the first completion marker:
 *
 *   HS_SRC_KTLS   setsockopt(SOL_TLS, TLS_TX or TLS_RX): keys installed
 *   HS_SRC_USDT   kmtlsd's kmtls:handshake_done probe (hosts without kTLS)
 *   HS_SRC_CLOSE  the connection left ESTABLISHED first: a failed handshake
 *
 * Each tracked connection is counted exactly once, by the first marker:
 * it claims the connection atomically (a compare-and-swap of its key in
 * hs_conns); later markers find it claimed and count nothing.
 */
#ifndef KMTLS_HS_LATENCY_H
#define KMTLS_HS_LATENCY_H

#include <linux/types.h>
#ifndef __bpf__
#include <stddef.h>
#include <string.h>
#endif

#define HS_CONFIG_VERSION	3
#define HS_MAX_PORTS		16
#define HS_MAX_HIST		1024	/* (port, direction, outcome) keys */
#define HS_HIST_ROWS		32	/* (port, direction) pairs with an "ok" row */
#define HS_RINGBUF_BYTES	(1u << 20)
#define HS_SLOTS		128	/* histogram buckets, see hs_slot() */
#define HS_COMM_LEN		16
#define HS_CIPHER_LEN		40
#define HS_PATH_LEN		256

#define HS_MAP_CONFIG	"hs_config"
#define HS_MAP_CONNS	"hs_conns"
#define HS_MAP_ADDRS	"hs_addrs"
#define HS_MAP_HIST	"hs_hist"
#define HS_MAP_ROWS	"hs_hist_rows"
#define HS_MAP_ROWKEY	"hs_hist_rowkey"
#define HS_MAP_ROWIX	"hs_hist_rowix"
#define HS_MAP_STATS	"hs_stats"
#define HS_MAP_EVENTS	"hs_events"
#define HS_PIN_SOCKOPS	"hs_link_sockops"	/* cgroup link of hs_sockops */
#define HS_PIN_SOCKOPT	"hs_link_setsockopt"	/* cgroup link of hs_setsockopt */
#define HS_PIN_RELEASE	"hs_link_release"	/* cgroup link of hs_release */
#define HS_PIN_USDT	"hs_link_usdt_"		/* + kernel link id: one per probe site */

/* How a handshake ended. The order is the histogram key's. */
enum hs_outcome {
	HS_OK = 0,	/* keys installed, or kmtlsd reported success */
	HS_CLOSED,	/* the connection closed before any completion marker */
	HS_FAILED,	/* kmtlsd reported a handshake error (bad certificate, ...) */
	HS_TIMEOUT,	/* kmtlsd's handshake timeout */
	HS_OUTCOME_MAX,
};

/* Which marker ended the measurement. */
enum hs_source {
	HS_SRC_KTLS = 0,
	HS_SRC_USDT,
	HS_SRC_CLOSE,
};

/* hs_config.flags */
#define HS_CFG_ALL_PASSIVE	(1u << 0)	/* every accepted connection, any port */
#define HS_CFG_USDT		(1u << 1)	/* index new connections for USDT */

/*
 * hs_config[0]. Which connections are tracked: accepted (passive) ones
 * whose local port is in ports[] (or all, HS_CFG_ALL_PASSIVE), and
 * connect()ed (active) ones whose remote port is in active_ports[].
 * Written by kmtlsctl, read by hs_sockops once per new connection.
 */
struct hs_config {
	__u32 version;		/* HS_CONFIG_VERSION once initialized */
	__u32 flags;		/* HS_CFG_* */
	__u32 nports;
	__u32 nactive;
	__u16 ports[HS_MAX_PORTS];	/* host order */
	__u16 active_ports[HS_MAX_PORTS];
	/* For `kmtlsctl latency status` only; the programs never read these. */
	char cgroup[HS_PATH_LEN];	/* the cgroup the links attach to */
	char usdt[HS_PATH_LEN];		/* the binary whose probes are attached */
};

/*
 * hs_conns: the handshakes in progress, an open-addressed table keyed by
 * the kernel socket's address (unique among live sockets; the programs
 * never dereference it). A connection's slot is one of the HS_PROBES of
 * its bucket, hs_conn_hash(): one cache line (16-byte slots, the mmappable
 * array's values start page-aligned), so a lookup, even one that finds
 * nothing, reads one line. The low bits of the key say where it stands. A slot is
 * free when its key is 0 or claimed (the connection has been counted), or
 * when its handshake has been in progress for HS_STALE_NS (left behind by
 * a detach, a connection that never installs keys nor is closed, or one
 * still in the accept queue when its listener closed): a new connection
 * may take it.
 * Socket storage would be the natural home, but allocating it costs
 * more than the whole budget of issue 6 (~1.4 us a connection, measured):
 * this table is preallocated and touched with plain loads and one
 * compare-and-swap. Mmappable: kmtlsctl clears it on attach and detach.
 */
#define HS_CONNS_BITS		16
#define HS_CONNS		(1u << HS_CONNS_BITS)
#define HS_PROBES		4
#define HS_STALE_NS		(600ull * 1000000000ull)
#define HS_K_CLAIMED		1ull	/* counted by its first marker */
#define HS_K_SOCKOPT		2ull	/* setsockopt(SOL_TLS) came: later ones are TLS_RX/TX */
#define HS_K_PASSIVE		4ull	/* accepted (server side) */
#define HS_K_BUSY		8ull	/* being taken: its time is not written yet */
/* TCP sockets come from cache-line-aligned slabs: 4 low bits are free. */
#define HS_K_BITS		15ull
struct hs_track {
	__u64 key;		/* socket address | HS_K_*; 0: free */
	__u64 est_ns;		/* CLOCK_MONOTONIC when it became ESTABLISHED */
};

/* A connection's family, ports (host order) and addresses (IPv4 mapped). */
struct hs_conn {
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/*
 * hs_addrs[i]: the addresses of hs_conns[i], written only while HS_CFG_USDT
 * is set (the setsockopt and close programs read them from the socket);
 * they belong to the tenant whose est_ns is the same.
 */
struct hs_addr {
	__u64 est_ns;
	struct hs_conn conn;
};

/*
 * The first slot of the bucket of socket address @sk: Fibonacci hashing of
 * the address bits.
 */
static inline __u32 hs_conn_hash(__u64 sk)
{
	return (__u32)(((sk >> 3) * 0x9E3779B97F4A7C15ull) >> (64 - HS_CONNS_BITS)) &
	       ~(HS_PROBES - 1);
}
_Static_assert(sizeof(struct hs_track) * HS_PROBES == 64, "a bucket is a cache line");

/* hs_hist key: per port (local for passive, remote for active) and outcome. */
struct hs_hist_key {
	__u16 port;
	__u8 active;		/* 0 passive (server side), 1 active (client side) */
	__u8 outcome;		/* enum hs_outcome */
};

/*
 * hs_hist values (one per CPU: readers sum them). Latency in microseconds,
 * HS_SLOTS buckets: 0-3 us one each, then four
 * per power of two (bucket 4k + s, k >= 1, holds [(4+s) << (k-1),
 * (5+s) << (k-1)) us), up to 2^32 us (71 minutes; longer goes in the last
 * used bucket). Summing each group of four gives bcc's log2 buckets;
 * percentiles use the finer ones (at most 25% wide).
 */
struct hs_hist {
	__u64 slots[HS_SLOTS];
	__u64 count;
	__u64 sum_ns;
};

/*
 * The "ok" histogram of a (port, direction) is one of HS_HIST_ROWS rows of
 * the per-CPU array hs_hist_rows (an array lookup: a successful handshake,
 * the common case, costs no hash lookup); everything else, and the pairs
 * after the first HS_HIST_ROWS, is in hs_hist. Readers add row r to
 * hs_hist's (port, direction, ok) entry, the pair named by
 * hs_hist_rowkey[r]. Rows are taken by the programs on a pair's first
 * "ok", by a compare-and-swap of its hs_hist_rowkey entry from 0; they
 * stay taken (latency reset zeroes their counts, not the assignment).
 * hs_hist_rowix[port] caches the row + 1 of each direction
 * (HS_ROW_NONE: all rows were taken).
 */
#define HS_ROW_USED		(1u << 31)
#define HS_ROW_NONE		0xffffu

static inline __u32 hs_rowkey(__u16 port, int active)
{
	return HS_ROW_USED | (active ? 1u << 16 : 0) | port;
}

struct hs_rowix {
	__u16 row1[2];		/* [active]: row + 1, 0 unknown, HS_ROW_NONE */
};

/*
 * Counters, per CPU (in struct hs_pcpu, the value of hs_stats[0]). Those
 * every tracked connection moves come first, next to the scratch word:
 * together they span one cache line, or two.
 */
struct hs_stats {
	__u64 tracked;		/* connections given a slot in hs_conns */
	__u64 by_ktls;		/* counted at setsockopt(SOL_TLS) */
	__u64 by_usdt;		/* counted at kmtls:handshake_done */
	__u64 by_close;		/* counted when they closed first */
	__u64 events;		/* events written to hs_events */
	__u64 table_full;	/* not tracked: its HS_PROBES slots all in use */
	__u64 stale;		/* slots given up: in progress for HS_STALE_NS, or
				 * left by a socket that died unreleased */
	__u64 ktls_untracked;	/* setsockopt(SOL_TLS) on a connection not tracked */
	__u64 usdt_untracked;	/* handshake_done on a connection not tracked */
	__u64 late;		/* markers after the first one (not counted again) */
	__u64 hist_full;	/* hs_hist had no room for a new key */
	__u64 events_dropped;	/* events that did not fit */
};

/* The value of hs_stats: the programs' scratch word, then the counters. */
struct hs_pcpu {
	__u64 sk_addr;		/* not a counter: see hs_sk_addr() */
	struct hs_stats stats;
};
_Static_assert(__builtin_offsetof(struct hs_pcpu, stats) == sizeof(__u64),
	       "hs_sk_addr() finds sk_addr just before the counters");

/* hs_event.flags */
#define HS_EV_PASSIVE	(1u << 0)
#define HS_EV_RESUMED	(1u << 1)	/* USDT: session resumption */

/* One completed (or failed) handshake, in the ring buffer hs_events. */
struct hs_event {
	__u64 ts_ns;		/* CLOCK_MONOTONIC at the marker */
	__u64 latency_ns;	/* from ESTABLISHED to the marker */
	__u64 agent_ns;		/* USDT: kmtlsd's own duration (from accept), else 0 */
	__u32 pid;		/* tgid of the process at the marker (the one
				 * installing keys, kmtlsd, or the one closing) */
	__s32 status;		/* USDT: 0, a wolfSSL error (< 0) or ETIMEDOUT */
	__u16 family;		/* AF_INET, AF_INET6 */
	__u16 lport;		/* host order */
	__u16 rport;
	__u16 tls_version;	/* USDT: 0x0303, 0x0304; 0 when unknown */
	__u8 outcome;		/* enum hs_outcome */
	__u8 source;		/* enum hs_source */
	__u8 flags;		/* HS_EV_* */
	__u8 pad[5];
	__u8 laddr[16];		/* IPv4 as IPv4-mapped */
	__u8 raddr[16];
	char comm[HS_COMM_LEN];
	char cipher[HS_CIPHER_LEN];	/* USDT: wolfSSL's cipher suite name */
};

/*
 * Events without USDT's cipher end before it: readers take records of at
 * least this size and zero the rest.
 */
#define HS_EVENT_SHORT	((__u32)__builtin_offsetof(struct hs_event, cipher))

/*
 * The event of an IPv4 connection from a marker other than USDT: with the
 * ring's 8-byte header, one cache line. Readers tell it by its size (see
 * hs_event_read()).
 */
struct hs_event4 {
	__u64 ts_ns;
	__u64 latency_ns;
	__u32 pid;
	__u16 lport;		/* host order */
	__u16 rport;
	__u32 laddr;		/* network order */
	__u32 raddr;
	__u8 outcome;
	__u8 source;
	__u8 flags;
	__u8 pad[5];
	char comm[HS_COMM_LEN];
};
_Static_assert(sizeof(struct hs_event4) + 8 == 64, "struct hs_event4: one cache line");
_Static_assert(sizeof(struct hs_event4) != HS_EVENT_SHORT &&
	       sizeof(struct hs_event4) != sizeof(struct hs_event), "told apart by size");

/*
 * What the programs reserve for an event of @n bytes: the record with its
 * 8-byte header a whole number of cache lines, so that records stay
 * aligned to lines and none straddles one more than it needs.
 */
#define HS_EVENT_RECORD(n)	((((n) + 8 + 63) & ~63u) - 8)

#ifndef __bpf__
/*
 * A record of hs_events as struct hs_event: the IPv4 form expanded
 * (IPv4-mapped addresses), a short one without the cipher (what follows
 * HS_EVENT_SHORT in it is padding). -1 for a record of no known size.
 */
static inline int hs_event_read(const void *data, size_t len, struct hs_event *e)
{
	const struct hs_event4 *e4 = (const struct hs_event4 *)data;

	memset(e, 0, sizeof(*e));
	if (len == sizeof(*e4)) {
		e->ts_ns = e4->ts_ns;
		e->latency_ns = e4->latency_ns;
		e->pid = e4->pid;
		e->family = 2;	/* AF_INET */
		e->lport = e4->lport;
		e->rport = e4->rport;
		e->outcome = e4->outcome;
		e->source = e4->source;
		e->flags = e4->flags;
		e->laddr[10] = e->laddr[11] = e->raddr[10] = e->raddr[11] = 0xff;
		memcpy(e->laddr + 12, &e4->laddr, 4);
		memcpy(e->raddr + 12, &e4->raddr, 4);
		memcpy(e->comm, e4->comm, HS_COMM_LEN);
		return 0;
	}
	if (len < HS_EVENT_SHORT)
		return -1;
	memcpy(e, data, len >= sizeof(*e) ? sizeof(*e) : HS_EVENT_SHORT);
	return 0;
}
#endif

/* floor(log2(v)), v > 0. */
static inline __u32 hs_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* The bucket of a latency of @us microseconds. */
static inline __u32 hs_slot(__u64 us)
{
	__u32 e;

	if (us < 4)
		return (__u32)us;
	if (us > 0xffffffffull)
		us = 0xffffffffull;
	e = hs_log2(us);
	return 4 * (e - 1) + (__u32)((us >> (e - 2)) & 3);
}

#ifndef __bpf__
/* Bucket @s holds [*lo, *hi) microseconds. */
static inline void hs_slot_bounds(__u32 s, __u64 *lo, __u64 *hi)
{
	__u32 e = s / 4 + 1, sub = s % 4;

	if (s < 4) {
		*lo = s;
		*hi = s + 1;
		return;
	}
	*lo = (__u64)(4 + sub) << (e - 2);
	*hi = (__u64)(5 + sub) << (e - 2);
}

/*
 * The @q quantile (0..1) of @h in microseconds, linear inside the bucket
 * that holds it; -1 for an empty histogram.
 */
static inline double hs_quantile(const struct hs_hist *h, double q)
{
	__u64 total = 0, seen = 0, lo, hi;
	double rank;
	__u32 s;

	for (s = 0; s < HS_SLOTS; s++)
		total += h->slots[s];
	if (!total)
		return -1;
	rank = q * (double)total;
	if (rank < 1)
		rank = 1;
	for (s = 0; s < HS_SLOTS; s++) {
		if (!h->slots[s])
			continue;
		if ((double)(seen + h->slots[s]) >= rank) {
			hs_slot_bounds(s, &lo, &hi);
			return (double)lo + (double)(hi - lo) *
			       (rank - (double)seen) / (double)h->slots[s];
		}
		seen += h->slots[s];
	}
	hs_slot_bounds(HS_SLOTS - 1, &lo, &hi);
	return (double)hi;
}

static inline const char *hs_outcome_name(unsigned int o)
{
	static const char *const names[] = { "ok", "closed", "failed", "timeout" };

	return o < HS_OUTCOME_MAX ? names[o] : "?";
}

static inline const char *hs_source_name(unsigned int s)
{
	static const char *const names[] = { "ktls", "usdt", "close" };

	return s <= HS_SRC_CLOSE ? names[s] : "?";
}

/* The configuration a new pin directory starts with. */
static inline void hs_config_default(struct hs_config *c)
{
	static const __u16 ports[] = { 443, 8443, 6443 };
	unsigned int i;

	*c = (struct hs_config){ .version = HS_CONFIG_VERSION };
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		c->ports[c->nports++] = ports[i];
}
#endif

#endif
