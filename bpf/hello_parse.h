/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hello_parse.h - find TLS ClientHellos in Ethernet frames.
 *
 * One header for the XDP program (bpf/hello_limit.bpf.c) and for userspace
 * (the table test and the fuzzer in selftests/bpf/), so the code that decides
 * "is this a ClientHello" is the same code that is unit-tested and fuzzed.
 * Plain C over byte pointers: no kernel or libc header structs, every access
 * checked against @end first, every loop bounded by a constant, so the
 * verifier accepts it and a fuzzer cannot read out of bounds.
 *
 * What is parsed: Ethernet, up to HL_MAX_VLAN 802.1Q/802.1ad tags, IPv4 with
 * options (non-first fragments are not TCP to us), IPv6 with up to
 * HL_MAX_EXTHDR extension headers (hop-by-hop, routing, fragment, destination
 * options, AH, mobility, HIP, shim6), TCP with options. Lengths come from the
 * IP headers, so Ethernet padding is never taken for payload.
 *
 * What counts as a ClientHello: the TCP payload starts a TLS handshake record
 * (type 0x16) with a sane length (1 .. 2^14 + 2048, the most any TLS stack,
 * wolfSSL included, accepts for a record) whose first handshake
 * message is ClientHello (type 0x01). The record version should be
 * 0x0301-0x0304; other versions are still ClientHellos (HL_HELLO_ODD_VERSION),
 * because a TLS server ignores the record version of the first flight
 * (RFC 8446 5.1; wolfSSL's GetRecordHeader only logs the mismatch), so a
 * stricter test would let a flood through by changing two bytes.
 *
 * Only the first segment of a record is seen: a record split before its
 * sixth byte is HL_PARTIAL, and the first fragment of an IP packet says so
 * (hl_pkt.frag_first), so that the caller can charge either like a
 * ClientHello: no TLS stack splits there, a client slipping by does. A
 * chain of more than HL_MAX_EXTHDR IPv6 extension headers is HL_MALFORMED.
 */
#ifndef KMTLS_HELLO_PARSE_H
#define KMTLS_HELLO_PARSE_H

#include <linux/types.h>

#define HL_INLINE static inline __attribute__((always_inline))
#ifdef __clang__
#define HL_UNROLL _Pragma("unroll")
#else
#define HL_UNROLL
#endif

/*
 * hl_rebase() turns a header pointer into frame start + offset, with the
 * offset hidden from the compiler. For the verifier, every path through the
 * IPv6 extension-header loop then reaches the next step in the same state,
 * so it verifies the loop in linear rather than exponential work (the
 * pointer subtraction needs CAP_PERFMON, which loading XDP implies). Plain C
 * sees a no-op.
 */
#ifdef __bpf__
#define HL_OPAQUE(x) asm volatile("" : "+r"(x))
#else
#define HL_OPAQUE(x) ((void)0)
#endif
#define HL_MAX_OFF	0x3fff	/* headers end within the first 16 KiB */

#define HL_MAX_VLAN	2	/* tags parsed; a third makes the frame malformed */
#define HL_MAX_EXTHDR	8	/* IPv6 extension headers followed */
#define HL_PEEK		6	/* payload bytes the recognizer needs */
#define HL_TLS_MAX_RECORD (16384 + 2048)

#define HL_ETH_P_IP	0x0800
#define HL_ETH_P_IPV6	0x86DD
#define HL_ETH_P_8021Q	0x8100
#define HL_ETH_P_8021AD	0x88A8
#define HL_IPPROTO_TCP	6

#define HL_TLS_HANDSHAKE	0x16
#define HL_TLS_CLIENT_HELLO	0x01

/* What a frame is, from the limiter's point of view. */
enum hl_class {
	HL_NOT_TCP,		/* not IPv4/IPv6 TCP, or a non-first fragment */
	HL_MALFORMED,		/* headers cut short or inconsistent */
	HL_TCP,			/* hl_parse_frame: a TCP segment, see struct hl_pkt */
	HL_NO_PAYLOAD,		/* TCP without payload (SYN, ACK, FIN, ...) */
	HL_NOT_TLS,		/* payload is not a TLS handshake record */
	HL_PARTIAL,		/* starts like one, ends before the handshake type */
	HL_OTHER_HANDSHAKE,	/* handshake record, not a ClientHello */
	HL_HELLO,		/* ClientHello, record version 0x0301-0x0304 */
	HL_HELLO_ODD_VERSION,	/* ClientHello with another record version */
};

/* A parsed TCP segment. Sources are IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct hl_pkt {
	const __u8 *payload;
	union {
		__u8 saddr[16];
		__u32 saddr32[4];	/* network order */
	};
	__u32 payload_len;	/* from the IP lengths, may exceed the frame */
	__u16 dport;		/* host order */
	__u8 is_v6;
	__u8 frag_first;	/* first fragment: its TCP payload goes on apart */
};

HL_INLINE __u16 hl_get16(const __u8 *p)
{
	return (__u16)((p[0] << 8) | p[1]);
}

/*
 * hl_tls_classify - the ClientHello recognizer proper.
 * @h: the first @n bytes of the TCP payload (n <= HL_PEEK).
 *
 * Returns HL_NO_PAYLOAD, HL_NOT_TLS, HL_PARTIAL, HL_MALFORMED (a handshake
 * record whose length no TLS stack accepts), HL_OTHER_HANDSHAKE, HL_HELLO or
 * HL_HELLO_ODD_VERSION.
 */
HL_INLINE int hl_tls_classify(const __u8 *h, __u32 n)
{
	__u32 len;

	if (n == 0)
		return HL_NO_PAYLOAD;
	if (h[0] != HL_TLS_HANDSHAKE)
		return HL_NOT_TLS;
	if (n < 5)
		return HL_PARTIAL;
	len = hl_get16(h + 3);
	if (len == 0 || len > HL_TLS_MAX_RECORD)
		return HL_MALFORMED;
	if (n < 6)
		return HL_PARTIAL;
	if (h[5] != HL_TLS_CLIENT_HELLO)
		return HL_OTHER_HANDSHAKE;
	if (h[1] != 0x03 || h[2] < 0x01 || h[2] > 0x04)
		return HL_HELLO_ODD_VERSION;
	return HL_HELLO;
}

/*
 * hl_peek_payload - classify the payload of a segment from hl_parse_frame.
 * Copies up to HL_PEEK bytes that are both inside the IP payload and inside
 * the frame, then asks hl_tls_classify.
 */
HL_INLINE int hl_peek_payload(const struct hl_pkt *pkt, const void *end)
{
	const __u8 *p = pkt->payload;
	__u8 h[HL_PEEK];
	__u32 n = 0;
	int i;

	if (p + HL_PEEK <= (const __u8 *)end && pkt->payload_len >= HL_PEEK) {
	HL_UNROLL
		for (i = 0; i < HL_PEEK; i++)
			h[i] = p[i];
		return hl_tls_classify(h, HL_PEEK);
	}
	HL_UNROLL
	for (i = 0; i < HL_PEEK; i++) {
		if ((__u32)i >= pkt->payload_len || p + i + 1 > (const __u8 *)end)
			break;
		h[i] = p[i];
		n++;
	}
	/* The IP header promised payload the frame does not carry. */
	if (n == 0 && pkt->payload_len > 0)
		return HL_MALFORMED;
	return hl_tls_classify(h, n);
}

/* Where the transport header starts and how long the IP payload is. */
struct hl_cursor {
	const __u8 *base;	/* the frame */
	const __u8 *pos;
	__u32 l4_len;
};

/* @pos again as base + offset; NULL when it is beyond HL_MAX_OFF. */
HL_INLINE const __u8 *hl_rebase(const __u8 *base, const __u8 *pos)
{
	__u64 off = (__u64)(pos - base);

	HL_OPAQUE(off);
	if (off > HL_MAX_OFF)
		return 0;
	return base + off;
}

/* hl_parse_tcp - TCP header at @c, filling @pkt's port and payload. */
HL_INLINE int hl_parse_tcp(const struct hl_cursor *c, const void *end,
			   struct hl_pkt *pkt)
{
	const __u8 *pos = c->pos;
	__u32 doff;

	/*
	 * A first fragment cut inside the TCP header (tiny fragments): its
	 * ports are there, its payload is not; the caller charges it.
	 */
	if (pkt->frag_first && pos + 4 <= (const __u8 *)end && c->l4_len >= 4 &&
	    (pos + 20 > (const __u8 *)end || c->l4_len < 20 ||
	     (__u32)(pos[12] >> 4) * 4 > c->l4_len)) {
		pkt->dport = hl_get16(pos + 2);
		pkt->payload = pos;
		pkt->payload_len = 0;
		return HL_TCP;
	}
	if (pos + 20 > (const __u8 *)end || c->l4_len < 20)
		return HL_MALFORMED;
	doff = (pos[12] >> 4) * 4;
	if (doff < 20 || doff > c->l4_len)
		return HL_MALFORMED;
	pkt->dport = hl_get16(pos + 2);
	pkt->payload = pos + doff;
	pkt->payload_len = c->l4_len - doff;
	return HL_TCP;
}

HL_INLINE int hl_parse_ipv4(struct hl_cursor *c, const void *end, struct hl_pkt *pkt)
{
	const __u8 *pos = c->pos;
	__u32 ihl, tot_len;
	int i;

	if (pos + 20 > (const __u8 *)end)
		return HL_MALFORMED;
	if ((pos[0] >> 4) != 4)
		return HL_MALFORMED;
	ihl = (pos[0] & 0x0f) * 4;
	tot_len = hl_get16(pos + 2);
	if (ihl < 20 || tot_len < ihl)
		return HL_MALFORMED;
	if (hl_get16(pos + 6) & 0x1fff)		/* fragment offset */
		return HL_NOT_TCP;
	pkt->frag_first = !!(hl_get16(pos + 6) & 0x2000);	/* more fragments */
	if (pos[9] != HL_IPPROTO_TCP)
		return HL_NOT_TCP;
	pkt->saddr32[0] = 0;
	pkt->saddr32[1] = 0;
	pkt->saddr[8] = 0;
	pkt->saddr[9] = 0;
	pkt->saddr[10] = 0xff;
	pkt->saddr[11] = 0xff;
	HL_UNROLL
	for (i = 0; i < 4; i++)
		pkt->saddr[12 + i] = pos[12 + i];
	pkt->is_v6 = 0;
	c->pos = pos + ihl;
	c->l4_len = tot_len - ihl;
	return HL_TCP;
}

/* Extension headers we step over; anything else ends the chain. */
HL_INLINE int hl_ipv6_is_ext(__u8 nh)
{
	return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 ||
	       nh == 135 || nh == 139 || nh == 140;
}

HL_INLINE int hl_parse_ipv6(struct hl_cursor *c, const void *end, struct hl_pkt *pkt)
{
	const __u8 *pos = c->pos;
	__u32 l4_len, len;
	__u8 nh;
	int i;

	if (pos + 40 > (const __u8 *)end)
		return HL_MALFORMED;
	if ((pos[0] >> 4) != 6)
		return HL_MALFORMED;
	/* 0: a jumbogram (RFC 2675); the frame's end is the only bound. */
	l4_len = hl_get16(pos + 4);
	if (l4_len == 0)
		l4_len = 0xffff;
	nh = pos[6];
	HL_UNROLL
	for (i = 0; i < 16; i++)
		pkt->saddr[i] = pos[8 + i];
	/*
	 * ::ffff:a.b.c.d is how IPv4 sources are keyed: as an IPv6 source it
	 * would spend a.b.c.d's budget (TCP refuses it anyway).
	 */
	if (!pkt->saddr32[0] && !pkt->saddr32[1] && pkt->saddr[8] == 0 && pkt->saddr[9] == 0 &&
	    pkt->saddr[10] == 0xff && pkt->saddr[11] == 0xff)
		return HL_MALFORMED;
	pkt->is_v6 = 1;
	pkt->frag_first = 0;
	pos += 40;

	HL_UNROLL
	for (i = 0; i < HL_MAX_EXTHDR; i++) {
		if (!hl_ipv6_is_ext(nh))
			break;
		if (pos + 8 > (const __u8 *)end)
			return HL_MALFORMED;
		if (nh == 44) {				/* fragment */
			if (hl_get16(pos + 2) & 0xfff8)
				return HL_NOT_TCP;
			pkt->frag_first = hl_get16(pos + 2) & 1;	/* M */
			len = 8;
		} else if (nh == 51) {			/* AH: 4-byte units */
			len = (pos[1] + 2) * 4;
		} else {
			len = (pos[1] + 1) * 8;
		}
		if (len > l4_len)
			return HL_MALFORMED;
		l4_len -= len;
		nh = pos[0];
		pos = hl_rebase(c->base, pos + len);
		if (!pos)
			return HL_MALFORMED;
	}
	if (nh != HL_IPPROTO_TCP)
		return hl_ipv6_is_ext(nh) ? HL_MALFORMED : HL_NOT_TCP;
	c->pos = pos;
	c->l4_len = l4_len;
	return HL_TCP;
}

/*
 * hl_parse_frame - Ethernet frame [data, end) to a TCP segment.
 * Returns HL_TCP with @pkt filled, HL_NOT_TCP or HL_MALFORMED.
 */
HL_INLINE int hl_parse_frame(const void *data, const void *end, struct hl_pkt *pkt)
{
	struct hl_cursor c = { .base = data, .pos = data };
	__u16 proto;
	int i, r;

	if (c.pos + 14 > (const __u8 *)end)
		return HL_MALFORMED;
	proto = hl_get16(c.pos + 12);
	c.pos += 14;
	HL_UNROLL
	for (i = 0; i < HL_MAX_VLAN; i++) {
		if (proto != HL_ETH_P_8021Q && proto != HL_ETH_P_8021AD)
			break;
		if (c.pos + 4 > (const __u8 *)end)
			return HL_MALFORMED;
		proto = hl_get16(c.pos + 2);
		c.pos += 4;
	}
	if (proto == HL_ETH_P_IP)
		r = hl_parse_ipv4(&c, end, pkt);
	else if (proto == HL_ETH_P_IPV6)
		r = hl_parse_ipv6(&c, end, pkt);
	else if (proto == HL_ETH_P_8021Q || proto == HL_ETH_P_8021AD)
		return HL_MALFORMED;
	else
		return HL_NOT_TCP;
	if (r != HL_TCP)
		return r;
	return hl_parse_tcp(&c, end, pkt);
}

#endif
