/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * frames.h - Ethernet frames carrying TLS records, for the hello_limit table
 * test and the flood generator: VLAN tags, IPv4 options, IPv6 extension
 * headers, TCP options, correct IPv4 and TCP checksums. Header-only.
 */
#ifndef KMTLS_SELFTEST_FRAMES_H
#define KMTLS_SELFTEST_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FR_MAX_EXT 12

struct frame_spec {
	int v6;
	int vlans;		/* tags before the IP header (0x88a8 first if 2+) */
	uint8_t src[16], dst[16];	/* IPv4 in the first 4 bytes */
	uint8_t smac[6], dmac[6];
	uint16_t sport, dport;
	uint8_t proto;		/* 0: TCP */
	uint8_t tcp_flags;	/* 0: ACK|PSH */
	int ip_opts;		/* IPv4 option bytes (multiple of 4, <= 40) */
	int tcp_opts;		/* TCP option bytes (multiple of 4, <= 40) */
	int n_ext;		/* IPv6 extension headers, in this order: */
	uint8_t ext[FR_MAX_EXT];	/* 0, 43, 44, 51, 60 ... */
	uint16_t frag_off;	/* IPv4/IPv6 fragment offset in 8-byte units */
	const uint8_t *payload;
	size_t plen;
	int ip_len_delta;	/* added to the IP length field (lies) */
	int ip_len;		/* if non-zero: the IP length field, verbatim */
	int doff_override;	/* TCP data offset in words if non-zero */
};

static inline void fr_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline uint32_t fr_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static inline uint16_t fr_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Build the frame into @buf; returns its length or 0 when @cap is short. */
static inline size_t frame_build(const struct frame_spec *s, uint8_t *buf, size_t cap)
{
	size_t ext_len = 0, l4_len, ip_hlen, need, off = 0;
	uint8_t proto = s->proto ? s->proto : 6;
	uint8_t *ip, *l4, nh;
	uint32_t sum;
	int i;

	for (i = 0; i < s->n_ext; i++)
		ext_len += 8;
	ip_hlen = s->v6 ? 40 + ext_len : 20 + (size_t)s->ip_opts;
	l4_len = (proto == 6 ? 20 + (size_t)s->tcp_opts : 8) + s->plen;
	need = 14 + 4 * (size_t)s->vlans + ip_hlen + l4_len;
	if (need > cap)
		return 0;
	memset(buf, 0, need);

	memcpy(buf, s->dmac, 6);
	memcpy(buf + 6, s->smac, 6);
	off = 12;
	for (i = 0; i < s->vlans; i++) {
		fr_put16(buf + off, i == 0 && s->vlans > 1 ? 0x88a8 : 0x8100);
		fr_put16(buf + off + 2, 100 + i);	/* the next tag's TCI */
		off += 4;
	}
	fr_put16(buf + off, s->v6 ? 0x86dd : 0x0800);
	off += 2;

	ip = buf + off;
	if (!s->v6) {
		ip[0] = 0x40 | (uint8_t)(ip_hlen / 4);
		fr_put16(ip + 2, s->ip_len ? (uint16_t)s->ip_len :
				 (uint16_t)(ip_hlen + l4_len + s->ip_len_delta));
		fr_put16(ip + 4, 0x1234);
		fr_put16(ip + 6, s->frag_off);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, s->src, 4);
		memcpy(ip + 16, s->dst, 4);
		for (i = 0; i < s->ip_opts; i++)
			ip[20 + i] = 1;				/* NOP */
		fr_put16(ip + 10, fr_fold(fr_sum(ip, ip_hlen, 0)));
	} else {
		ip[0] = 0x60;
		fr_put16(ip + 4, s->ip_len ? (uint16_t)s->ip_len :
				 (uint16_t)(ext_len + l4_len + s->ip_len_delta));
		ip[6] = s->n_ext ? s->ext[0] : proto;
		ip[7] = 64;
		memcpy(ip + 8, s->src, 16);
		memcpy(ip + 24, s->dst, 16);
		for (i = 0; i < s->n_ext; i++) {
			uint8_t *e = ip + 40 + 8 * i;

			nh = i + 1 < s->n_ext ? s->ext[i + 1] : proto;
			e[0] = nh;
			if (s->ext[i] == 44) {			/* fragment */
				fr_put16(e + 2, (uint16_t)(s->frag_off << 3));
			} else if (s->ext[i] == 51) {		/* AH: 8 bytes = 0 */
				e[1] = 0;
			} else {				/* PadN over 6 bytes */
				e[1] = 0;
				e[2] = 1;
				e[3] = 4;
			}
		}
	}

	l4 = ip + ip_hlen;
	if (proto == 6) {
		size_t thl = 20 + (size_t)s->tcp_opts;

		fr_put16(l4, s->sport);
		fr_put16(l4 + 2, s->dport);
		fr_put16(l4 + 4, 0x1000);
		fr_put16(l4 + 10, 0x2000);
		l4[12] = (uint8_t)((s->doff_override ? s->doff_override : (int)(thl / 4)) << 4);
		l4[13] = s->tcp_flags ? s->tcp_flags : 0x18;
		fr_put16(l4 + 14, 65535);
		for (i = 0; i < s->tcp_opts; i++)
			l4[20 + i] = 1;				/* NOP */
		memcpy(l4 + thl, s->payload, s->plen);
	} else {
		fr_put16(l4, s->sport);
		fr_put16(l4 + 2, s->dport);
		fr_put16(l4 + 4, (uint16_t)l4_len);
		memcpy(l4 + 8, s->payload, s->plen);
	}
	/* Transport checksum over the pseudo header. */
	if (!s->v6)
		sum = fr_sum(ip + 12, 8, 0);
	else
		sum = fr_sum(ip + 8, 32, 0);
	sum += proto + (uint32_t)l4_len;
	sum = fr_sum(l4, l4_len, sum);
	fr_put16(l4 + (proto == 6 ? 16 : 6), fr_fold(sum));
	return need;
}

/*
 * A ClientHello in a TLS record: record version @rec_version, the TLS 1.3
 * extensions (supported_versions, key_share, ...) when @tls13, SNI always.
 * Returns the record's length, 0 when @cap is short.
 */
static inline size_t tls_client_hello(uint8_t *buf, size_t cap, uint16_t rec_version,
				      int tls13, uint32_t seed)
{
	static const uint8_t suites13[] = { 0x13, 0x01, 0x13, 0x02, 0x13, 0x03 };
	static const uint8_t suites12[] = { 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30 };
	static const char sni[] = "kmtls.test";
	uint8_t b[512], *p = b, *ext;
	size_t body, n, i;

	*p++ = 0x03;				/* legacy_version 1.2 */
	*p++ = 0x03;
	for (i = 0; i < 32; i++) {		/* random */
		seed = seed * 1103515245u + 12345u;
		*p++ = (uint8_t)(seed >> 16);
	}
	*p++ = 32;				/* session id */
	for (i = 0; i < 32; i++)
		*p++ = (uint8_t)i;
	n = tls13 ? sizeof(suites13) : sizeof(suites12);
	fr_put16(p, (uint16_t)n);
	memcpy(p + 2, tls13 ? suites13 : suites12, n);
	p += 2 + n;
	*p++ = 1;				/* compression: null */
	*p++ = 0;
	ext = p;
	p += 2;
	fr_put16(p, 0x0000);			/* server_name */
	fr_put16(p + 2, (uint16_t)(sizeof(sni) - 1 + 5));
	fr_put16(p + 4, (uint16_t)(sizeof(sni) - 1 + 3));
	p[6] = 0;
	fr_put16(p + 7, (uint16_t)(sizeof(sni) - 1));
	memcpy(p + 9, sni, sizeof(sni) - 1);
	p += 9 + sizeof(sni) - 1;
	fr_put16(p, 0x000a);			/* supported_groups: x25519, P-256 */
	fr_put16(p + 2, 6);
	fr_put16(p + 4, 4);
	fr_put16(p + 6, 0x001d);
	fr_put16(p + 8, 0x0017);
	p += 10;
	fr_put16(p, 0x000d);			/* signature_algorithms */
	fr_put16(p + 2, 6);
	fr_put16(p + 4, 4);
	fr_put16(p + 6, 0x0403);
	fr_put16(p + 8, 0x0804);
	p += 10;
	if (tls13) {
		fr_put16(p, 0x002b);		/* supported_versions: 1.3 */
		fr_put16(p + 2, 3);
		p[4] = 2;
		fr_put16(p + 5, 0x0304);
		p += 7;
		fr_put16(p, 0x0033);		/* key_share: x25519 */
		fr_put16(p + 2, 38);
		fr_put16(p + 4, 36);
		fr_put16(p + 6, 0x001d);
		fr_put16(p + 8, 32);
		for (i = 0; i < 32; i++)
			p[10 + i] = (uint8_t)(0x40 + i);
		p += 42;
	}
	fr_put16(ext, (uint16_t)(p - ext - 2));
	body = (size_t)(p - b);
	if (cap < 9 + body)
		return 0;
	buf[0] = 0x16;
	fr_put16(buf + 1, rec_version);
	fr_put16(buf + 3, (uint16_t)(4 + body));
	buf[5] = 0x01;
	buf[6] = 0;
	fr_put16(buf + 7, (uint16_t)body);
	memcpy(buf + 9, b, body);
	return 9 + body;
}

/* "aa:bb:cc:dd:ee:ff" into @mac: 0, or -1 when it is not one. */
static inline int fr_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

#endif
