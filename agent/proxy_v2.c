// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * PROXY protocol v2 encoder: the header kmtlsd prepends to a backend
 * connection so the backend learns the client's address and TLS identity.
 *
 * The header is written through a cursor that keeps counting past the end
 * of the buffer instead of failing at the first write: the code stays one
 * straight line, and a single check at the end decides. Length fields are
 * written as placeholders and patched once their contents are known, each
 * checked against its 16-bit limit.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy_v2.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

const unsigned char kmtls_pp2_sig[PP2_SIG_LEN] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

struct pp2_out {
	unsigned char *p;
	size_t cap;
	size_t len;	/* bytes the header needs so far, may exceed cap */
	int bad;	/* overflowed cap or a 16-bit length */
};

static void put(struct pp2_out *o, const void *data, size_t n)
{
	if (n > o->cap || o->len > o->cap - n)
		o->bad = 1;
	else if (n)
		memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void put_u8(struct pp2_out *o, uint8_t v)
{
	put(o, &v, 1);
}

static void put_be16(struct pp2_out *o, uint16_t v)
{
	unsigned char b[2] = { v >> 8, v & 0xff };

	put(o, b, sizeof(b));
}

static void put_be32(struct pp2_out *o, uint32_t v)
{
	unsigned char b[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };

	put(o, b, sizeof(b));
}

/* Fill in a 16-bit length at @at covering everything after @start. */
static void patch_len(struct pp2_out *o, size_t at, size_t start)
{
	size_t n = o->len - start;

	if (n > 0xffff) {
		o->bad = 1;
		return;
	}
	if (o->bad)
		return;	/* @at may lie past the buffer */
	o->p[at] = n >> 8;
	o->p[at + 1] = n & 0xff;
}

/* Open a TLV; returns where its length goes, for tlv_end(). */
static size_t tlv_begin(struct pp2_out *o, uint8_t type)
{
	size_t at;

	put_u8(o, type);
	at = o->len;
	put_be16(o, 0);
	return at;
}

static void tlv_end(struct pp2_out *o, size_t at)
{
	patch_len(o, at, at + 2);
}

static void tlv_str(struct pp2_out *o, uint8_t type, const char *s)
{
	size_t at;

	if (!s)
		return;
	at = tlv_begin(o, type);
	put(o, s, strlen(s));
	tlv_end(o, at);
}

/* An IP endpoint reduced to what the header needs. */
struct pp2_ip {
	int v4;			/* a[0..3] hold an IPv4 address */
	unsigned char a[16];
	unsigned char port[2];	/* network order, as on the wire */
};

static int ip_of(const struct sockaddr *sa, struct pp2_ip *ip)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (!sa)
		return -1;
	if (sa->sa_family == AF_INET) {
		ip->v4 = 1;
		memcpy(ip->a, &s4->sin_addr, 4);
		memcpy(ip->port, &s4->sin_port, 2);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	/* A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d. */
	ip->v4 = IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
	if (ip->v4)
		memcpy(ip->a, s6->sin6_addr.s6_addr + 12, 4);
	else
		memcpy(ip->a, &s6->sin6_addr, 16);
	memcpy(ip->port, &s6->sin6_port, 2);
	return 0;
}

static void put_ip6(struct pp2_out *o, const struct pp2_ip *ip)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	if (!ip->v4) {
		put(o, ip->a, 16);
		return;
	}
	put(o, mapped, sizeof(mapped));
	put(o, ip->a, 4);
}

/* Family byte and address block; the caller has written ver/cmd. */
static void put_addrs(struct pp2_out *o, const struct sockaddr *src,
		      const struct sockaddr *dst)
{
	struct pp2_ip s, d;

	if (ip_of(src, &s) || ip_of(dst, &d)) {
		put_u8(o, PP2_FAM_UNSPEC);
		put_be16(o, 0);
		return;
	}
	put_u8(o, s.v4 && d.v4 ? PP2_FAM_TCP4 : PP2_FAM_TCP6);
	put_be16(o, 0);
	if (s.v4 && d.v4) {
		put(o, s.a, 4);
		put(o, d.a, 4);
	} else {
		put_ip6(o, &s);
		put_ip6(o, &d);
	}
	put(o, s.port, 2);
	put(o, d.port, 2);
}

static int tls_valid(const struct kmtls_proxy_tls *tls)
{
	const char *const s[] = { tls->version, tls->cn, tls->cipher };
	size_t i;

	if (!tls->version || tls->cert_len < 0 || (tls->cert_len && !tls->cert_der))
		return 0;
	for (i = 0; i < ARRAY_SIZE(s); i++)
		if (s[i] && strnlen(s[i], KMTLS_PROXY_STR_MAX + 1) > KMTLS_PROXY_STR_MAX)
			return 0;
	return 1;
}

static void put_ssl(struct pp2_out *o, const struct kmtls_proxy_tls *tls)
{
	uint8_t client = PP2_CLIENT_SSL;
	size_t at, cert_at;

	if (tls->verified || (tls->cert_der && tls->cert_len > 0))
		client |= tls->resumed ? PP2_CLIENT_CERT_SESS :
			  PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS;
	at = tlv_begin(o, PP2_TYPE_SSL);
	put_u8(o, client);
	put_be32(o, tls->verified ? 0 : 1);
	tlv_str(o, PP2_SUBTYPE_SSL_VERSION, tls->version);
	tlv_str(o, PP2_SUBTYPE_SSL_CN, tls->cn);
	tlv_str(o, PP2_SUBTYPE_SSL_CIPHER, tls->cipher);
	/* An empty certificate is no certificate: max_len does not count one. */
	if (tls->cert_der && tls->cert_len > 0) {
		cert_at = tlv_begin(o, PP2_SUBTYPE_SSL_CLIENT_CERT);
		put(o, tls->cert_der, tls->cert_len);
		tlv_end(o, cert_at);
	}
	tlv_end(o, at);
}

int kmtls_proxy_v2_encode(unsigned char *buf, size_t cap,
			  const struct sockaddr *src, const struct sockaddr *dst,
			  const struct kmtls_proxy_tls *tls)
{
	struct pp2_out o = { .p = buf, .cap = buf ? cap : 0 };

	if (!buf || (tls && !tls_valid(tls)))
		return -1;
	/* A certificate this large cannot be carried; do not count through it. */
	if (tls && tls->cert_len > 0xffff)
		return -1;
	put(&o, kmtls_pp2_sig, sizeof(kmtls_pp2_sig));
	put_u8(&o, PP2_VERSION | PP2_CMD_PROXY);
	put_addrs(&o, src, dst);
	if (tls)
		put_ssl(&o, tls);
	patch_len(&o, PP2_HDR_LEN - 2, PP2_HDR_LEN);
	return o.bad ? -1 : (int)o.len;
}

size_t kmtls_proxy_v2_max_len(int cert_len)
{
	size_t n = PP2_HDR_LEN + PP2_ADDR_LEN_INET6 + PP2_TLV_HDR_LEN + PP2_SSL_HDR_LEN +
		   3 * (PP2_TLV_HDR_LEN + KMTLS_PROXY_STR_MAX);

	if (cert_len > 0)
		n += PP2_TLV_HDR_LEN + (size_t)cert_len;
	return n < PP2_MAX_LEN ? n : PP2_MAX_LEN;
}
