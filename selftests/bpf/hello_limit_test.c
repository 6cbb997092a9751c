// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_limit: the XDP ClientHello limiter run with BPF_PROG_TEST_RUN.
 *
 * table.*      one frame each (IPv4, IPv6, VLAN, IPv4 options, IPv6 extension
 *              headers, truncations, split and non-handshake records, TLS 1.2
 *              and 1.3 ClientHellos, other handshake types, unwatched ports,
 *              tiny frames): the verdict, every counter of hl_stats, and the
 *              same frame through the shared recognizer as plain C.
 * limiter.*    sequences against the buckets: per-source burst and refill,
 *              IPv6 /64 and IPv4 prefix aggregation, global cap, allowlist,
 *              monitor mode. Time is the program's test clock
 *              (hl_test_clock in .rodata, hl_test_now_ns in .bss), so refill
 *              is checked to the nanosecond; one test uses real sleeps and
 *              bpf_ktime_get_ns() to show the real clock is wired.
 * exact.*      two threads on two CPUs hammer one global bucket with
 *              repeat=N test runs; exactly global_burst ClientHellos pass.
 *
 * Maps are not pinned (pin paths cleared before load): nothing here touches
 * bpffs or a network interface. Needs root (CAP_BPF, CAP_PERFMON).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "hello_parse.h"
#include "hello_limit.h"
#include "hello_limit.skel.h"
#include "frames.h"
#include "kselftest_harness.h"

#define XDP_DROP_ 1
#define XDP_PASS_ 2
#define NSEC 1000000000ull

/* ---- loading and running ---------------------------------------------- */

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Load the limiter unpinned; @test_clock: time from hl_test_now_ns. */
static struct hello_limit *load(int test_clock, char *err, size_t errlen)
{
	struct hello_limit *skel;
	struct bpf_map *m;
	int ret;

	libbpf_set_print(libbpf_quiet);
	skel = hello_limit__open();
	if (!skel) {
		snprintf(err, errlen, "open: %s", strerror(errno));
		return NULL;
	}
	bpf_object__for_each_map(m, skel->obj)
		bpf_map__set_pin_path(m, NULL);
	skel->rodata->hl_test_clock = test_clock;
	ret = hello_limit__load(skel);
	if (ret) {
		snprintf(err, errlen, "load: %s", strerror(-ret));
		hello_limit__destroy(skel);
		return NULL;
	}
	return skel;
}

static int set_config(struct hello_limit *skel, struct hl_config *c)
{
	__u32 zero = 0;

	hl_config_derive(c);
	return bpf_map__update_elem(skel->maps.hl_config, &zero, sizeof(zero),
				    c, sizeof(*c), BPF_ANY);
}

/* Run one frame; returns the XDP action or -errno. */
static int run(struct hello_limit *skel, const uint8_t *frame, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .repeat = 1);
	int ret;

	ret = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hello_limit), &o);
	return ret ? -errno : (int)o.retval;
}

/* hl_stats summed over all CPUs. */
static int read_stats(struct hello_limit *skel, struct hl_stats *out)
{
	int ncpu = libbpf_num_possible_cpus(), i, j;
	struct hl_stats *v;
	__u32 zero = 0;
	int ret;

	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret = bpf_map__lookup_elem(skel->maps.hl_stats, &zero, sizeof(zero), v,
				   sizeof(*v) * (size_t)ncpu, 0);
	memset(out, 0, sizeof(*out));
	for (i = 0; !ret && i < ncpu; i++)
		for (j = 0; j < (int)(sizeof(*out) / 8); j++)
			((__u64 *)out)[j] += ((__u64 *)&v[i])[j];
	free(v);
	return ret;
}

static const char *const stat_names[] = {
	"seen", "passed", "dropped", "not_tcp", "unwatched_port", "no_payload",
	"malformed", "not_tls", "partial", "other_handshake", "hello_allowed",
	"hello_ok", "over_source", "over_global", "hello_odd_version",
};
_Static_assert(sizeof(stat_names) / sizeof(stat_names[0]) ==
	       sizeof(struct hl_stats) / 8, "a name for every counter");
#define STAT(s, i) (((__u64 *)(s))[i])
#define STAT_INDEX(f) ((int)(offsetof(struct hl_stats, f) / 8))
#define STAT_REASON0 STAT_INDEX(not_tcp)
#define STAT_ODD STAT_INDEX(hello_odd_version)
#define STAT_PARTIAL STAT_INDEX(partial)

/* ---- frames ------------------------------------------------------------- */

enum payload_kind {
	P_HELLO13, P_HELLO12, P_NONE, P_APPDATA, P_ALERT, P_CCS, P_SERVER_HELLO,
	P_CERTIFICATE, P_SPLIT1, P_SPLIT5, P_HTTP, P_ODD_0300, P_ODD_FFFF,
	P_LEN0, P_LEN_HUGE,
};

enum frame_kind { F_NORMAL, F_ARP, F_TINY_IP };

struct tcase {
	enum frame_kind kind;
	enum payload_kind payload;
	int v6, vlans, ip_opts, tcp_opts, n_ext;
	uint8_t ext[FR_MAX_EXT];
	uint16_t frag_off, dport;
	uint8_t proto, tcp_flags;
	int ip_len_delta, ip_len, doff;
	size_t cut;		/* keep only the first @cut bytes */
	size_t pad;		/* Ethernet padding after the IP packet */
};

static size_t payload(enum payload_kind k, uint8_t *b, size_t cap)
{
	size_t n;

	switch (k) {
	case P_HELLO13:
		return tls_client_hello(b, cap, 0x0301, 1, 1);
	case P_HELLO12:
		return tls_client_hello(b, cap, 0x0303, 0, 2);
	case P_ODD_0300:
		return tls_client_hello(b, cap, 0x0300, 1, 3);
	case P_ODD_FFFF:
		return tls_client_hello(b, cap, 0xffff, 1, 4);
	case P_NONE:
		return 0;
	case P_SPLIT1:
		tls_client_hello(b, cap, 0x0301, 1, 5);
		return 1;
	case P_SPLIT5:
		tls_client_hello(b, cap, 0x0301, 1, 6);
		return 5;
	case P_LEN0:
		n = tls_client_hello(b, cap, 0x0301, 1, 7);
		b[3] = b[4] = 0;
		return n;
	case P_LEN_HUGE:
		n = tls_client_hello(b, cap, 0x0301, 1, 8);
		fr_put16(b + 3, 16384 + 2048 + 1);
		return n;
	case P_APPDATA:		/* a TLS 1.3 record after the handshake */
		memcpy(b, "\x17\x03\x03\x00\x20", 5);
		memset(b + 5, 0xab, 32);
		return 37;
	case P_ALERT:
		memcpy(b, "\x15\x03\x03\x00\x02\x02\x28", 7);
		return 7;
	case P_CCS:
		memcpy(b, "\x14\x03\x03\x00\x01\x01", 6);
		return 6;
	case P_SERVER_HELLO:
		n = tls_client_hello(b, cap, 0x0303, 1, 9);
		b[5] = 0x02;
		return n;
	case P_CERTIFICATE:	/* TLS 1.2 client Certificate, in clear */
		n = tls_client_hello(b, cap, 0x0303, 0, 10);
		b[5] = 0x0b;
		return n;
	case P_HTTP:
		n = strlen("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
		memcpy(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", n);
		return n;
	}
	return 0;
}

static const uint8_t SRC4[4] = { 192, 0, 2, 7 }, DST4[4] = { 192, 0, 2, 1 };
static const uint8_t SRC6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7 };
static const uint8_t DST6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

static size_t build_case(const struct tcase *t, uint8_t *buf, size_t cap)
{
	struct frame_spec s = {
		.v6 = t->v6, .vlans = t->vlans, .ip_opts = t->ip_opts,
		.tcp_opts = t->tcp_opts, .n_ext = t->n_ext, .frag_off = t->frag_off,
		.sport = 40000, .dport = t->dport ? t->dport : 443,
		.proto = t->proto, .tcp_flags = t->tcp_flags,
		.ip_len_delta = t->ip_len_delta, .ip_len = t->ip_len,
		.doff_override = t->doff,
		.smac = { 2, 0, 0, 0, 0, 2 }, .dmac = { 2, 0, 0, 0, 0, 1 },
	};
	uint8_t pl[1024];
	size_t n;

	if (t->kind == F_ARP) {
		memset(buf, 0, 42);
		memset(buf, 0xff, 6);
		buf[12] = 0x08;
		buf[13] = 0x06;
		return 42;
	}
	if (t->kind == F_TINY_IP) {		/* just an Ethernet header */
		memset(buf, 0, 14);
		buf[12] = 0x08;
		return 14;
	}
	memcpy(s.ext, t->ext, sizeof(s.ext));
	memcpy(s.src, t->v6 ? SRC6 : SRC4, t->v6 ? 16 : 4);
	memcpy(s.dst, t->v6 ? DST6 : DST4, t->v6 ? 16 : 4);
	s.plen = payload(t->payload, pl, sizeof(pl));
	s.payload = pl;
	n = frame_build(&s, buf, cap);
	if (t->pad && n + t->pad <= cap) {
		memset(buf + n, 0, t->pad);
		n += t->pad;
	}
	if (t->cut && t->cut < n)
		n = t->cut;
	return n;
}

/*
 * The BPF program's decision up to the buckets, in plain C from the same
 * header: the reason a frame gets when it is not a ClientHello, or
 * HL_R_HELLO_OK for a ClientHello (@odd: with an unusual record version;
 * @partial: the start of one, split before its handshake type).
 */
static enum hl_reason plain_reason(const uint8_t *frame, size_t len,
				   const struct hl_config *c, int *odd, int *partial)
{
	struct hl_pkt pkt;
	__u32 i;
	int r;

	*odd = 0;
	*partial = 0;
	r = hl_parse_frame(frame, frame + len, &pkt);
	if (r == HL_NOT_TCP)
		return HL_R_NOT_TCP;
	if (r != HL_TCP)
		return HL_R_MALFORMED;
	for (i = 0; i < c->nports; i++)
		if (c->ports[i] == pkt.dport)
			break;
	if (i == c->nports)
		return HL_R_UNWATCHED_PORT;
	switch (hl_peek_payload(&pkt, frame + len)) {
	case HL_NO_PAYLOAD:
		if (!pkt.frag_first)
			return HL_R_NO_PAYLOAD;
		*partial = 1;
		return HL_R_HELLO_OK;
	case HL_NOT_TLS:
		return HL_R_NOT_TLS;
	case HL_PARTIAL:
		*partial = 1;
		return HL_R_HELLO_OK;
	case HL_OTHER_HANDSHAKE:
		return HL_R_OTHER_HANDSHAKE;
	case HL_HELLO_ODD_VERSION:
		*odd = 1;
		return HL_R_HELLO_OK;
	case HL_HELLO:
		return HL_R_HELLO_OK;
	default:
		return HL_R_MALFORMED;
	}
}

/* ---- table ---------------------------------------------------------------- */

FIXTURE(table) {
	struct hello_limit *skel;
	struct hl_config cfg;
};

FIXTURE_VARIANT(table) {
	struct tcase t;
	enum hl_reason reason;
	int odd;
	int partial;	/* a ClientHello's start, split before its type */
};

#define CASE(name, why, ...) \
	FIXTURE_VARIANT_ADD(table, name) { .t = { __VA_ARGS__ }, .reason = why }
#define CASE_PARTIAL(name, ...) \
	FIXTURE_VARIANT_ADD(table, name) { .t = { __VA_ARGS__ }, .reason = HL_R_HELLO_OK, \
					   .partial = 1 }

CASE(ipv4_tls13_hello, HL_R_HELLO_OK, .payload = P_HELLO13);
CASE(ipv4_tls12_hello, HL_R_HELLO_OK, .payload = P_HELLO12);
CASE(ipv6_tls13_hello, HL_R_HELLO_OK, .v6 = 1, .payload = P_HELLO13);
CASE(ipv6_tls12_hello, HL_R_HELLO_OK, .v6 = 1, .payload = P_HELLO12);
CASE(vlan_hello, HL_R_HELLO_OK, .vlans = 1, .payload = P_HELLO13);
CASE(qinq_hello, HL_R_HELLO_OK, .vlans = 2, .v6 = 1, .payload = P_HELLO13);
CASE(three_vlan_tags, HL_R_MALFORMED, .vlans = 3, .payload = P_HELLO13);
CASE(ipv4_options_hello, HL_R_HELLO_OK, .ip_opts = 40, .payload = P_HELLO13);
CASE(ipv4_options_tcp_options_hello, HL_R_HELLO_OK, .ip_opts = 12, .tcp_opts = 40,
     .payload = P_HELLO12);
CASE(ipv6_ext_headers_hello, HL_R_HELLO_OK, .v6 = 1, .n_ext = 5,
     .ext = { 0, 60, 43, 44, 51 }, .payload = P_HELLO13);
CASE(ipv6_eight_ext_headers_hello, HL_R_HELLO_OK, .v6 = 1, .n_ext = 8,
     .ext = { 0, 60, 60, 60, 60, 60, 60, 60 }, .payload = P_HELLO13);
CASE(ipv6_nine_ext_headers, HL_R_MALFORMED, .v6 = 1, .n_ext = 9,
     .ext = { 0, 60, 60, 60, 60, 60, 60, 60, 60 }, .payload = P_HELLO13);
CASE(ipv6_later_fragment, HL_R_NOT_TCP, .v6 = 1, .n_ext = 1, .ext = { 44 },
     .frag_off = 10, .payload = P_HELLO13);
CASE(ipv4_later_fragment, HL_R_NOT_TCP, .frag_off = 10, .payload = P_HELLO13);
CASE(ipv4_first_fragment_hello, HL_R_HELLO_OK, .frag_off = 0x2000 /* MF */,
     .payload = P_HELLO13);
CASE(ipv6_esp, HL_R_NOT_TCP, .v6 = 1, .n_ext = 1, .ext = { 50 }, .payload = P_HELLO13);
CASE(truncated_ethernet_only, HL_R_MALFORMED, .kind = F_TINY_IP);
CASE(truncated_ipv4_header, HL_R_MALFORMED, .payload = P_HELLO13, .cut = 14 + 12);
CASE(truncated_ipv4_options, HL_R_MALFORMED, .ip_opts = 40, .payload = P_HELLO13,
     .cut = 14 + 40);
CASE(truncated_ipv6_header, HL_R_MALFORMED, .v6 = 1, .payload = P_HELLO13, .cut = 14 + 30);
CASE(truncated_ipv6_ext_header, HL_R_MALFORMED, .v6 = 1, .n_ext = 2, .ext = { 0, 60 },
     .payload = P_HELLO13, .cut = 14 + 40 + 12);
CASE(truncated_tcp_header, HL_R_MALFORMED, .payload = P_HELLO13, .cut = 14 + 20 + 12);
CASE(truncated_vlan_tag, HL_R_MALFORMED, .vlans = 1, .payload = P_HELLO13, .cut = 16);
CASE(ip_length_beyond_frame, HL_R_MALFORMED, .payload = P_NONE, .ip_len_delta = 100);
CASE(ip_length_too_short_for_tcp, HL_R_MALFORMED, .payload = P_HELLO13, .ip_len = 30);
CASE(ipv4_length_below_header, HL_R_MALFORMED, .payload = P_HELLO13, .ip_len = 12);
CASE(tcp_data_offset_too_small, HL_R_MALFORMED, .payload = P_HELLO13, .doff = 4);
/* Split before the handshake type: no TLS stack does, a client slipping by does. */
CASE_PARTIAL(record_split_after_first_byte, .payload = P_SPLIT1);
CASE_PARTIAL(record_split_after_fifth_byte, .payload = P_SPLIT5);
CASE_PARTIAL(ipv6_record_split_after_first_byte, .v6 = 1, .payload = P_SPLIT1);
CASE_PARTIAL(ipv4_first_fragment_without_payload, .frag_off = 0x2000 /* MF */,
	     .payload = P_NONE);
CASE(ipv4_unfragmented_without_payload, HL_R_NO_PAYLOAD, .payload = P_NONE);
/* Tiny fragments: the first one ends inside the TCP header. */
CASE_PARTIAL(ipv4_first_fragment_cut_in_tcp_header, .frag_off = 0x2000 /* MF */,
	     .ip_len = 28, .payload = P_HELLO13);
CASE(application_data_record, HL_R_NOT_TLS, .payload = P_APPDATA);
CASE(alert_record, HL_R_NOT_TLS, .payload = P_ALERT);
CASE(change_cipher_spec_record, HL_R_NOT_TLS, .payload = P_CCS);
CASE(http_on_watched_port, HL_R_NOT_TLS, .payload = P_HTTP);
CASE(server_hello, HL_R_OTHER_HANDSHAKE, .payload = P_SERVER_HELLO);
CASE(tls12_client_certificate, HL_R_OTHER_HANDSHAKE, .payload = P_CERTIFICATE);
CASE(record_length_zero, HL_R_MALFORMED, .payload = P_LEN0);
CASE(record_length_too_big, HL_R_MALFORMED, .payload = P_LEN_HUGE);
FIXTURE_VARIANT_ADD(table, record_version_0300) {
	.t = { .payload = P_ODD_0300 }, .reason = HL_R_HELLO_OK, .odd = 1,
};
FIXTURE_VARIANT_ADD(table, record_version_ffff) {
	.t = { .v6 = 1, .payload = P_ODD_FFFF }, .reason = HL_R_HELLO_OK, .odd = 1,
};
CASE(unwatched_port_80, HL_R_UNWATCHED_PORT, .dport = 80, .payload = P_HELLO13);
CASE(unwatched_port_ipv6, HL_R_UNWATCHED_PORT, .v6 = 1, .dport = 9443, .payload = P_HELLO13);
CASE(port_8443_hello, HL_R_HELLO_OK, .dport = 8443, .payload = P_HELLO13);
CASE(port_6443_hello, HL_R_HELLO_OK, .dport = 6443, .payload = P_HELLO12);
CASE(syn_no_payload, HL_R_NO_PAYLOAD, .tcp_flags = 0x02, .payload = P_NONE);
CASE(ack_with_ethernet_padding, HL_R_NO_PAYLOAD, .tcp_flags = 0x10, .payload = P_NONE,
     .pad = 6);
CASE(tcp_fast_open_syn_hello, HL_R_HELLO_OK, .tcp_flags = 0x02, .tcp_opts = 12,
     .payload = P_HELLO13);
CASE(udp_quic_port_443, HL_R_NOT_TCP, .proto = 17, .payload = P_HELLO13);
CASE(arp, HL_R_NOT_TCP, .kind = F_ARP);

FIXTURE_SETUP(table)
{
	char err[128];

	self->skel = load(1, err, sizeof(err));
	if (!self->skel)
		SKIP(return, "cannot load hello_limit (%s); root with BPF needed", err);
	hl_config_default(&self->cfg);
	self->cfg.rate = 1;
	self->cfg.burst = 5;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	self->skel->bss->hl_test_now_ns = 1000 * NSEC;
}

FIXTURE_TEARDOWN(table)
{
	hello_limit__destroy(self->skel);
}

TEST_F(table, verdict)
{
	enum hl_reason plain;
	struct hl_stats st;
	uint8_t frame[2048];
	size_t len;
	int i, ret, odd, partial;

	len = build_case(&variant->t, frame, sizeof(frame));
	ASSERT_GT(len, 0U);

	plain = plain_reason(frame, len, &self->cfg, &odd, &partial);
	EXPECT_EQ(variant->reason, plain);
	EXPECT_EQ(variant->odd, odd);
	EXPECT_EQ(variant->partial, partial);

	ret = run(self->skel, frame, len);
	ASSERT_EQ(XDP_PASS_, ret);
	ASSERT_EQ(0, read_stats(self->skel, &st));
	for (i = 0; i < (int)(sizeof(st) / 8); i++) {
		__u64 want = 0;

		if (i == 0 || i == 1)				/* seen, passed */
			want = 1;
		if (i == STAT_REASON0 + (int)variant->reason)
			want = 1;
		if (i == STAT_ODD)
			want = (__u64)variant->odd;
		if (i == STAT_PARTIAL)
			want = (__u64)variant->partial;
		if (STAT(&st, i) != want)
			TH_LOG("%s = %llu, expected %llu", stat_names[i],
			       (unsigned long long)STAT(&st, i), (unsigned long long)want);
		EXPECT_EQ(want, STAT(&st, i));
	}
}

/* ---- limiter sequences ----------------------------------------------------- */

FIXTURE(limiter) {
	struct hello_limit *skel;
	struct hl_config cfg;
};

FIXTURE_SETUP(limiter)
{
	char err[128];

	self->skel = load(1, err, sizeof(err));
	if (!self->skel)
		SKIP(return, "cannot load hello_limit (%s); root with BPF needed", err);
	hl_config_default(&self->cfg);
	self->cfg.rate = 10;		/* one token per 100 ms */
	self->cfg.burst = 4;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	self->skel->bss->hl_test_now_ns = 1000 * NSEC;
}

FIXTURE_TEARDOWN(limiter)
{
	hello_limit__destroy(self->skel);
}

/* A ClientHello from @src (IPv4 dotted or IPv6 text) to port 443. */
static int hello_from(struct hello_limit *skel, const char *src)
{
	struct frame_spec s = { .sport = 50000, .dport = 443 };
	uint8_t frame[1024], pl[600];

	s.v6 = strchr(src, ':') != NULL;
	if (inet_pton(s.v6 ? AF_INET6 : AF_INET, src, s.src) != 1)
		return -EINVAL;
	memcpy(s.dst, s.v6 ? DST6 : DST4, s.v6 ? 16 : 4);
	s.plen = tls_client_hello(pl, sizeof(pl), 0x0301, 1, 42);
	s.payload = pl;
	return run(skel, frame, frame_build(&s, frame, sizeof(frame)));
}

/* Count the verdicts of @n ClientHellos from @src: returns how many passed. */
static int hellos(struct hello_limit *skel, const char *src, int n)
{
	int i, passed = 0;

	for (i = 0; i < n; i++)
		if (hello_from(skel, src) == XDP_PASS_)
			passed++;
	return passed;
}

static void advance(struct hello_limit *skel, __u64 ns)
{
	skel->bss->hl_test_now_ns += ns;
}

static int source_entry(struct hello_limit *skel, const char *addr, struct hl_bucket *b)
{
	struct hl_src_key k = { 0 };

	if (strchr(addr, ':')) {
		inet_pton(AF_INET6, addr, k.addr);
	} else {
		k.addr[10] = k.addr[11] = 0xff;
		inet_pton(AF_INET, addr, k.addr + 12);
	}
	return bpf_map__lookup_elem(skel->maps.hl_sources, &k, sizeof(k), b, sizeof(*b), 0);
}

TEST_F(limiter, source_burst_then_drop)
{
	struct hl_bucket b;
	struct hl_stats st;

	EXPECT_EQ(4, hellos(self->skel, "198.51.100.1", 10));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(10ULL, st.seen);
	EXPECT_EQ(4ULL, st.hello_ok);
	EXPECT_EQ(6ULL, st.over_source);
	EXPECT_EQ(6ULL, st.dropped);
	EXPECT_EQ(4ULL, st.passed);
	ASSERT_EQ(0, source_entry(self->skel, "198.51.100.1", &b));
	EXPECT_EQ(4ULL, b.admitted);
	EXPECT_EQ(6ULL, b.limited);
	/* Another source has its own budget. */
	EXPECT_EQ(4, hellos(self->skel, "198.51.100.2", 5));
}

TEST_F(limiter, refill_over_time)
{
	struct hl_stats st;

	EXPECT_EQ(4, hellos(self->skel, "198.51.100.1", 4));
	EXPECT_EQ(0, hellos(self->skel, "198.51.100.1", 1));
	advance(self->skel, 100000000 - 1);		/* 1 ns short of a token */
	EXPECT_EQ(0, hellos(self->skel, "198.51.100.1", 1));
	advance(self->skel, 1);
	EXPECT_EQ(1, hellos(self->skel, "198.51.100.1", 3));
	advance(self->skel, 250000000);			/* 2.5 tokens */
	EXPECT_EQ(2, hellos(self->skel, "198.51.100.1", 3));
	advance(self->skel, 3600 * NSEC);		/* refill caps at burst */
	EXPECT_EQ(4, hellos(self->skel, "198.51.100.1", 10));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(11ULL, st.hello_ok);
	EXPECT_EQ(st.seen - 11ULL, st.over_source);
}

/*
 * A raised limit applies at once: the debt a source, or the global bucket,
 * ran up under the slower configuration does not carry over. A lowered
 * one applies at once too.
 */
TEST_F(limiter, raised_limit_applies_at_once)
{
	int i, passed = 0;
	char src[32];

	self->cfg.rate = 1;
	self->cfg.burst = 60;
	self->cfg.global_rate = 10;
	self->cfg.global_burst = 100;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(60, hellos(self->skel, "198.51.100.1", 70));
	for (i = 0; i < 60; i++) {
		snprintf(src, sizeof(src), "10.8.0.%d", i + 1);
		passed += hellos(self->skel, src, 1);
	}
	EXPECT_EQ(40, passed);		/* the global burst is spent */

	self->cfg.rate = 100;
	self->cfg.burst = 100;
	self->cfg.global_rate = 10000;
	self->cfg.global_burst = 10000;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(5, hellos(self->skel, "198.51.100.1", 5));
	EXPECT_EQ(5, hellos(self->skel, "10.8.1.1", 5));

	/* Lowered: the bucket is judged by the new limit right away. */
	self->cfg.rate = 1;
	self->cfg.burst = 1;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(0, hellos(self->skel, "10.8.1.1", 3));
	advance(self->skel, NSEC);
	EXPECT_EQ(1, hellos(self->skel, "10.8.1.1", 3));
}

/*
 * A ClientHello whose record header comes in a segment of its own is
 * charged at that segment (the rest, starting with the handshake type,
 * is not a record start and passes): splitting does not get a client by.
 */
/*
 * Another CPU may read the clock a tick before the CPU that emptied the
 * bucket: that reading is not an old configuration's debt and must not
 * refill the bucket (raised_limit_applies_at_once's reset).
 */
TEST_F(limiter, stale_clock_reading_does_not_refill)
{
	EXPECT_EQ(4, hellos(self->skel, "198.51.100.8", 4));
	self->skel->bss->hl_test_now_ns -= 10 * 1000000;	/* 10 ms earlier */
	EXPECT_EQ(0, hellos(self->skel, "198.51.100.8", 3));
}

TEST_F(limiter, split_hellos_are_charged)
{
	static const uint8_t head[] = { 0x16, 0x03, 0x01 };
	struct frame_spec s = { .sport = 50000, .dport = 443, .payload = head,
				.plen = sizeof(head) };
	uint8_t frame[256];
	struct hl_stats st;
	int i, passed = 0;

	inet_pton(AF_INET, "198.51.100.7", s.src);
	memcpy(s.dst, DST4, 4);
	for (i = 0; i < 10; i++)
		passed += run(self->skel, frame, frame_build(&s, frame, sizeof(frame))) == XDP_PASS_;
	EXPECT_EQ(4, passed);			/* the burst */
	EXPECT_EQ(0, hellos(self->skel, "198.51.100.7", 1));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(10ULL, st.partial);
	EXPECT_EQ(7ULL, st.over_source);
}

/*
 * An IPv6 packet from ::ffff:a.b.c.d is not charged to a.b.c.d's bucket
 * (nor allowlisted by an IPv4 entry): malformed, it passes to a kernel
 * that refuses it.
 */
TEST_F(limiter, v4_mapped_ipv6_source_is_not_ipv4)
{
	struct hl_stats st;

	EXPECT_EQ(10, hellos(self->skel, "::ffff:198.51.100.9", 10));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(10ULL, st.malformed);
	EXPECT_EQ(0ULL, st.hello_ok);
	EXPECT_EQ(4, hellos(self->skel, "198.51.100.9", 10));
}

TEST_F(limiter, ipv6_sources_share_their_64)
{
	EXPECT_EQ(4, hellos(self->skel, "2001:db8:1:2::1", 3) +
		     hellos(self->skel, "2001:db8:1:2:ffff::9", 3));
	/* The next /64 is another source. */
	EXPECT_EQ(4, hellos(self->skel, "2001:db8:1:3::1", 6));
}

TEST_F(limiter, prefix_lengths_are_configurable)
{
	self->cfg.prefix6 = 48;
	self->cfg.prefix4 = 24;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(4, hellos(self->skel, "2001:db8:1:2::1", 2) +
		     hellos(self->skel, "2001:db8:1:3::1", 4));
	EXPECT_EQ(4, hellos(self->skel, "2001:db8:2::1", 5));
	EXPECT_EQ(4, hellos(self->skel, "203.0.113.1", 2) +
		     hellos(self->skel, "203.0.113.200", 4));
	EXPECT_EQ(4, hellos(self->skel, "203.0.114.1", 5));

	self->cfg.prefix6 = 128;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(8, hellos(self->skel, "2001:db8:9::1", 5) +
		     hellos(self->skel, "2001:db8:9::2", 5));
}

TEST_F(limiter, global_cap)
{
	char src[32];
	struct hl_bucket b;
	struct hl_stats st;
	int i, passed = 0;

	self->cfg.global_rate = 10;
	self->cfg.global_burst = 20;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	for (i = 0; i < 50; i++) {
		snprintf(src, sizeof(src), "10.9.%d.%d", i / 200, i % 200 + 1);
		passed += hellos(self->skel, src, 1);
	}
	EXPECT_EQ(20, passed);
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(30ULL, st.over_global);
	EXPECT_EQ(0ULL, st.over_source);
	/*
	 * A refused source got its token back: it still has its burst; it
	 * is not "limited", which names sources over their own budget.
	 */
	ASSERT_EQ(0, source_entry(self->skel, "10.9.0.50", &b));
	EXPECT_EQ(0ULL, b.admitted);
	EXPECT_EQ(0ULL, b.limited);
	advance(self->skel, 100000000);			/* one global token */
	EXPECT_EQ(1, hellos(self->skel, "10.9.0.50", 4));
	ASSERT_EQ(0, source_entry(self->skel, "10.9.0.50", &b));
	EXPECT_EQ(1ULL, b.admitted);
	/* A source over its own budget does not spend global tokens. */
	advance(self->skel, 400000000);			/* 4 global, 4 source tokens */
	EXPECT_EQ(4, hellos(self->skel, "10.9.0.50", 8));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(4ULL, st.over_source);
}

TEST_F(limiter, allowlist_bypasses_limits)
{
	struct hl_lpm_key k = { .prefixlen = 96 + 24 };
	struct hl_stats st;
	__u8 one = 1;

	k.addr[10] = k.addr[11] = 0xff;
	inet_pton(AF_INET, "198.51.100.0", k.addr + 12);
	ASSERT_EQ(0, bpf_map__update_elem(self->skel->maps.hl_allow, &k, sizeof(k),
					  &one, sizeof(one), BPF_ANY));
	memset(&k, 0, sizeof(k));
	k.prefixlen = 32;
	inet_pton(AF_INET6, "2001:db8::", k.addr);
	ASSERT_EQ(0, bpf_map__update_elem(self->skel->maps.hl_allow, &k, sizeof(k),
					  &one, sizeof(one), BPF_ANY));

	EXPECT_EQ(20, hellos(self->skel, "198.51.100.77", 20));
	EXPECT_EQ(20, hellos(self->skel, "2001:db8:5::5", 20));
	EXPECT_EQ(4, hellos(self->skel, "198.51.101.77", 20));
	EXPECT_EQ(4, hellos(self->skel, "2001:db9::5", 20));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(40ULL, st.hello_allowed);
	EXPECT_EQ(8ULL, st.hello_ok);
	EXPECT_EQ(32ULL, st.over_source);
}

TEST_F(limiter, monitor_counts_what_enforce_drops)
{
	struct hl_stats enforce, monitor;
	struct hello_limit *skel = self->skel;
	int round, passed;

	for (round = 0; round < 2; round++) {
		if (round == 1) {
			char err[128];

			hello_limit__destroy(skel);
			skel = self->skel = load(1, err, sizeof(err));
			ASSERT_NE(NULL, skel);
			self->cfg.mode = HL_MODE_MONITOR;
			skel->bss->hl_test_now_ns = 1000 * NSEC;
		}
		self->cfg.global_rate = 5;
		self->cfg.global_burst = 6;
		ASSERT_EQ(0, set_config(skel, &self->cfg));
		passed = hellos(skel, "192.0.2.10", 10) + hellos(skel, "192.0.2.11", 10);
		advance(skel, 1000000000);
		passed += hellos(skel, "2001:db8::1", 10);
		EXPECT_EQ(round == 0 ? 10 : 30, passed);
		ASSERT_EQ(0, read_stats(skel, round == 0 ? &enforce : &monitor));
	}
	EXPECT_EQ(enforce.hello_ok, monitor.hello_ok);
	EXPECT_EQ(enforce.over_source, monitor.over_source);
	EXPECT_EQ(enforce.over_global, monitor.over_global);
	EXPECT_EQ(10ULL, enforce.hello_ok);
	EXPECT_EQ(12ULL, enforce.over_source);
	EXPECT_EQ(8ULL, enforce.over_global);
	EXPECT_EQ(20ULL, enforce.dropped);
	EXPECT_EQ(0ULL, monitor.dropped);
	EXPECT_EQ(30ULL, monitor.passed);
}

TEST_F(limiter, rate_zero_means_no_source_limit)
{
	struct hl_stats st;

	self->cfg.rate = 0;
	ASSERT_EQ(0, set_config(self->skel, &self->cfg));
	EXPECT_EQ(100, hellos(self->skel, "192.0.2.99", 100));
	ASSERT_EQ(0, read_stats(self->skel, &st));
	EXPECT_EQ(100ULL, st.hello_ok);
}

/* The real clock: rate 20/s, burst 1; 60 ms later one token is back. */
TEST(real_clock_refill)
{
	struct hello_limit *skel;
	struct hl_config c;
	char err[128];
	int first, again;

	skel = load(0, err, sizeof(err));
	if (!skel)
		SKIP(return, "cannot load hello_limit (%s); root with BPF needed", err);
	hl_config_default(&c);
	c.rate = 20;
	c.burst = 1;
	ASSERT_EQ(0, set_config(skel, &c));
	first = hellos(skel, "192.0.2.50", 2);
	usleep(60000);
	again = hellos(skel, "192.0.2.50", 1);
	hello_limit__destroy(skel);
	EXPECT_EQ(1, first);
	EXPECT_EQ(1, again);
}

/*
 * A rate above one per clock tick (1000/s with burst 1; the program's
 * coarse clock ticks every 1-4 ms) holds on average: without the
 * tolerance of a tick it was capped at one per tick, 250/s at HZ=250.
 */
TEST(real_clock_rate_beyond_ticks)
{
	struct hello_limit *skel;
	struct hl_config c;
	struct timespec t0, t1;
	char err[128];
	double secs;
	int passed = 0;

	skel = load(0, err, sizeof(err));
	if (!skel)
		SKIP(return, "cannot load hello_limit (%s); root with BPF needed", err);
	hl_config_default(&c);
	c.rate = 1000;
	c.burst = 1;
	ASSERT_EQ(0, set_config(skel, &c));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		passed += hellos(skel, "192.0.2.51", 1);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	} while (secs < 0.3);
	hello_limit__destroy(skel);
	TH_LOG("%d passed in %.3f s at rate 1000, burst 1", passed, secs);
	EXPECT_LE(0.8 * 1000 * secs, passed);
	EXPECT_GE(1000 * secs + 10, passed);
}

/* ---- exactness across CPUs ----------------------------------------------- */

struct hammer {
	struct hello_limit *skel;
	const uint8_t *frame;
	size_t len;
	int cpu, ret;
	pthread_barrier_t *go;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	CPU_SET(h->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(h->go);
	for (i = 0; i < 20 && !h->ret; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = h->frame,
			    .data_size_in = (__u32)h->len, .repeat = 5000);

		h->ret = bpf_prog_test_run_opts(bpf_program__fd(h->skel->progs.hello_limit), &o);
	}
	return NULL;
}

TEST(global_cap_exact_across_cpus)
{
	struct frame_spec s = { .sport = 1, .dport = 443 };
	struct hammer h[2];
	pthread_barrier_t go;
	pthread_t th[2];
	struct hello_limit *skel;
	uint8_t frame[1024], pl[600];
	struct hl_stats st;
	struct hl_config c;
	char err[128];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	if (ncpu < 2)
		SKIP(return, "one CPU online");
	skel = load(1, err, sizeof(err));
	if (!skel)
		SKIP(return, "cannot load hello_limit (%s); root with BPF needed", err);
	hl_config_default(&c);
	c.rate = 0;				/* only the global bucket */
	c.global_rate = 1;
	c.global_burst = 1000;
	ASSERT_EQ(0, set_config(skel, &c));
	skel->bss->hl_test_now_ns = 1000 * NSEC;	/* frozen: no refill */

	memcpy(s.src, SRC4, 4);
	memcpy(s.dst, DST4, 4);
	s.plen = tls_client_hello(pl, sizeof(pl), 0x0301, 1, 1);
	s.payload = pl;
	pthread_barrier_init(&go, NULL, 2);
	for (i = 0; i < 2; i++) {
		h[i] = (struct hammer){ .skel = skel, .frame = frame, .cpu = i, .go = &go,
					.len = frame_build(&s, frame, sizeof(frame)) };
		pthread_create(&th[i], NULL, hammer_run, &h[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	ASSERT_EQ(0, h[0].ret);
	ASSERT_EQ(0, h[1].ret);
	ASSERT_EQ(0, read_stats(skel, &st));
	hello_limit__destroy(skel);
	EXPECT_EQ(200000ULL, st.seen);
	EXPECT_EQ(1000ULL, st.hello_ok);
	EXPECT_EQ(199000ULL, st.over_global);
}

TEST_HARNESS_MAIN
