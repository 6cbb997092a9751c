// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_limit - XDP ClientHello flood limiter.
 *
 * Per packet: parse to TCP (hello_parse.h); segments to a watched port whose
 * payload starts a TLS ClientHello go through, in order, the allowlist (LPM
 * trie: pass), the per-source bucket (LRU hash keyed by the source masked to
 * its prefix) and the global bucket. Over-limit ClientHellos are dropped in
 * enforce mode and passed in monitor mode; the buckets evolve the same way
 * in both, so monitor mode counts exactly what enforce mode would drop.
 * Everything else passes. Every packet leaves through hl_verdict(), which
 * counts it in the per-CPU hl_stats. No XDP_ABORTED anywhere.
 *
 * Several CPUs: both buckets are one 64-bit word (GCRA, see hello_limit.h)
 * in a map shared by all CPUs, advanced with compare-and-swap. The caps are
 * exact against the clock the program reads (hl_now): in any interval t at
 * most burst + t * rate ClientHellos conform, whichever CPUs they arrive on
 * (up to the integer rounding of 1e9 / rate); against real time, add one
 * clock tick's worth of tokens (rate * 4 ms at HZ=250).
 * A word is written only when a ClientHello conforms, so its cache line is
 * contended at the admitted rate, not at the flood rate; rejected packets
 * only read it. A CAS that loses HL_CAS_TRIES races in a row counts as over
 * the limit: under contention the cap errs on the strict side.
 *
 * A ClientHello admitted by its source but refused by the global bucket gives
 * its source token back, so a source is only charged for what passed.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "hello_parse.h"
#include "hello_limit.h"

#define HL_CAS_TRIES 4

char LICENSE[] SEC("license") = "GPL";

/* Tests set these through the skeleton to drive time by hand. */
const volatile __u8 hl_test_clock = 0;
__u64 hl_test_now_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hl_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HL_MAX_SOURCES);
	__type(key, struct hl_src_key);
	__type(value, struct hl_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hl_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hl_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HL_MAX_ALLOW);
	__type(key, struct hl_lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hl_allow SEC(".maps");

_Static_assert(__builtin_offsetof(struct hl_stats, over_global) -
	       __builtin_offsetof(struct hl_stats, not_tcp) ==
	       (HL_R_MAX - 1) * sizeof(__u64), "hl_stats reasons follow enum hl_reason");

/* The one exit: count the packet, return the verdict. */
static __always_inline int hl_verdict(int action, enum hl_reason reason, int odd, int partial)
{
	__u32 zero = 0;
	struct hl_stats *s = bpf_map_lookup_elem(&hl_stats, &zero);

	if (s) {
		s->seen++;
		if (action == XDP_DROP)
			s->dropped++;
		else
			s->passed++;
		(&s->not_tcp)[reason]++;
		if (odd)
			s->hello_odd_version++;
		if (partial)
			s->partial++;
	}
	return action;
}

/*
 * CLOCK_MONOTONIC_COARSE: one tick of resolution (1-4 ms) for a fraction of
 * the cost of bpf_ktime_get_ns(), which measured ~30 ns on the development
 * VM, the largest single item on the ClientHello path. Refill happens in
 * tick-sized steps; the average rate is unchanged.
 */
static __always_inline __u64 hl_now(void)
{
	return hl_test_clock ? hl_test_now_ns : bpf_ktime_get_coarse_ns();
}

static __always_inline int hl_port_watched(const struct hl_config *cfg, __u16 port)
{
	__u32 n = cfg->nports;
	int i;

	for (i = 0; i < HL_MAX_PORTS; i++) {
		if ((__u32)i >= n)
			break;
		if (cfg->ports[i] == port)
			return 1;
	}
	return 0;
}

/*
 * A clock reading is at most this much older than another CPU's, which
 * may have moved the word meanwhile: two ticks at HZ=100, and more than
 * an XDP run ever takes between reading the clock and its CAS.
 */
#define HL_STALE_NS	(25ull * 1000000ull)

/*
 * GCRA on one word: 1 and the word advanced, or 0 (over the limit). Under
 * one configuration the word never runs more than tol + interval ahead of
 * any CPU's clock reading (give or take HL_STALE_NS); further ahead it is
 * debt run up under an earlier, slower one, which would keep a raised
 * limit from working until it was paid off: the bucket starts full under
 * this one, as a new source's does.
 */
static __always_inline int hl_take(__u64 *tat, __u64 now, __u64 interval, __u64 tol)
{
	__u64 old, base;
	int i;

#pragma unroll
	for (i = 0; i < HL_CAS_TRIES; i++) {
		old = *(volatile __u64 *)tat;
		base = old > now ? old : now;
		if (base - now > tol + interval + HL_STALE_NS)
			base = now;
		else if (base - now > tol)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, base + interval) == old)
			return 1;
	}
	return 0;
}

/* The per-source bucket, created on a source's first ClientHello. */
static __always_inline struct hl_bucket *
hl_source(const struct hl_src_key *key, __u64 now, __u64 interval, int *fresh)
{
	struct hl_bucket *b = bpf_map_lookup_elem(&hl_sources, key);
	struct hl_bucket init = { .tat_ns = now + interval, .admitted = 1 };

	*fresh = 0;
	if (b)
		return b;
	if (bpf_map_update_elem(&hl_sources, key, &init, BPF_NOEXIST) == 0) {
		*fresh = 1;
		return bpf_map_lookup_elem(&hl_sources, key);
	}
	/* Another CPU created it first. */
	return bpf_map_lookup_elem(&hl_sources, key);
}

static __always_inline void hl_src_key(const struct hl_config *cfg,
				       const struct hl_pkt *pkt, struct hl_src_key *key)
{
	const __u32 *a = pkt->saddr32;
	__u32 k[4];

	if (pkt->is_v6) {
		k[0] = a[0] & cfg->mask[0];
		k[1] = a[1] & cfg->mask[1];
		k[2] = a[2] & cfg->mask[2];
		k[3] = a[3] & cfg->mask[3];
	} else {
		k[0] = a[0];
		k[1] = a[1];
		k[2] = a[2];
		k[3] = a[3] & cfg->mask4;
	}
	__builtin_memcpy(key->addr, k, sizeof(k));
}

/* A ClientHello: allowlist, source bucket, global bucket. */
static __always_inline int hl_hello(const struct hl_config *cfg, struct hl_pkt *pkt,
				    enum hl_reason *reason)
{
	struct hl_bucket *src = NULL, *glob;
	int over = XDP_PASS, fresh = 0;
	struct hl_lpm_key lpm;
	struct hl_src_key key;
	__u64 now = hl_now();
	__u32 zero = 0;

	if (cfg->mode == HL_MODE_ENFORCE)
		over = XDP_DROP;

	lpm.prefixlen = 128;
	__builtin_memcpy(lpm.addr, pkt->saddr, sizeof(lpm.addr));
	if (bpf_map_lookup_elem(&hl_allow, &lpm)) {
		*reason = HL_R_HELLO_ALLOWED;
		return XDP_PASS;
	}

	if (cfg->interval_ns) {
		hl_src_key(cfg, pkt, &key);
		src = hl_source(&key, now, cfg->interval_ns, &fresh);
		/* No entry even after an insert: let the global bucket decide. */
		if (src && !fresh &&
		    !hl_take(&src->tat_ns, now, cfg->interval_ns, cfg->tolerance_ns)) {
			__sync_fetch_and_add(&src->limited, 1);
			*reason = HL_R_OVER_SOURCE;
			return over;
		}
	}

	if (cfg->global_interval_ns) {
		glob = bpf_map_lookup_elem(&hl_global, &zero);
		if (glob && !hl_take(&glob->tat_ns, now, cfg->global_interval_ns,
				     cfg->global_tolerance_ns)) {
			/*
			 * The token goes back; not "limited": that names the
			 * sources over their own budget (kmtlsctl's --top).
			 */
			if (src) {
				__sync_fetch_and_add(&src->tat_ns, -cfg->interval_ns);
				if (fresh)
					__sync_fetch_and_add(&src->admitted, -1);
			}
			*reason = HL_R_OVER_GLOBAL;
			return over;
		}
	}
	if (src && !fresh)
		__sync_fetch_and_add(&src->admitted, 1);
	*reason = HL_R_HELLO_OK;
	return XDP_PASS;
}

/* Payload classes that pass without a bucket, as reasons. */
static __always_inline enum hl_reason hl_payload_reason(int class)
{
	switch (class) {
	case HL_NO_PAYLOAD:
		return HL_R_NO_PAYLOAD;
	case HL_NOT_TLS:
		return HL_R_NOT_TLS;
	case HL_OTHER_HANDSHAKE:
		return HL_R_OTHER_HANDSHAKE;
	default:
		return HL_R_MALFORMED;
	}
}

SEC("xdp")
int hello_limit(struct xdp_md *ctx)
{
	const void *data = (void *)(long)ctx->data;
	const void *end = (void *)(long)ctx->data_end;
	enum hl_reason reason = HL_R_UNWATCHED_PORT;
	const struct hl_config *cfg;
	int action = XDP_PASS, odd = 0, partial = 0;
	struct hl_pkt pkt;
	__u32 zero = 0;
	int r;

	r = hl_parse_frame(data, end, &pkt);
	if (r != HL_TCP)
		return hl_verdict(XDP_PASS, r == HL_NOT_TCP ? HL_R_NOT_TCP : HL_R_MALFORMED, 0, 0);

	cfg = bpf_map_lookup_elem(&hl_config, &zero);
	if (!cfg || !hl_port_watched(cfg, pkt.dport))
		return hl_verdict(XDP_PASS, HL_R_UNWATCHED_PORT, 0, 0);

	r = hl_peek_payload(&pkt, end);
	/*
	 * Split before the handshake type, by TCP or by IP fragmentation:
	 * charged as the ClientHello it is the start of (see hello_parse.h).
	 */
	if (r == HL_PARTIAL || (r == HL_NO_PAYLOAD && pkt.frag_first)) {
		partial = 1;
		r = HL_HELLO;
	}
	if (r == HL_HELLO_ODD_VERSION) {
		odd = 1;
		r = HL_HELLO;
	}
	if (r == HL_HELLO)
		action = hl_hello(cfg, &pkt, &reason);
	else
		reason = hl_payload_reason(r);
	return hl_verdict(action, reason, odd, partial);
}
