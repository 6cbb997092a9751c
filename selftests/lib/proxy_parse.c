// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Strict PROXY protocol v2 parser for the tests (see proxy_parse.h).
 *
 * Every read goes through a cursor that knows how many bytes its region
 * holds, so an overrun is a failed take, never a read past the buffer: the
 * header length bounds the TLVs, each TLV's length bounds its value, and the
 * SSL TLV's length bounds its sub-TLVs.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_parse.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Spec values, kept apart from agent/proxy_v2.h on purpose. */
static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 'Q', 'U', 'I', 'T', 0x0a,
};

enum {
	T_SSL = 0x20, T_CRC32C = 0x03,
	ST_VERSION = 0x21, ST_CN = 0x22, ST_CIPHER = 0x23, ST_CERT = 0x28,
	ST_FIRST = 0x21, ST_LAST = 0x28, ST_RANGE_END = 0x2f,
	CL_SSL = 0x01, CL_ALL = 0x07,
};

struct cur {
	const unsigned char *p;
	size_t left;
};

static int take(struct cur *c, size_t n, const unsigned char **out)
{
	if (n > c->left)
		return -1;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static unsigned int be16(const unsigned char *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

static long fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* One TLV off @c: its type and a cursor over its value. */
static int take_tlv(struct cur *c, unsigned int *type, struct cur *val)
{
	const unsigned char *h, *v;

	if (take(c, 3, &h))
		return -1;
	*type = h[0];
	if (take(c, be16(h + 1), &v))
		return -1;
	val->p = v;
	val->left = be16(h + 1);
	return 0;
}

long proxy_hdr_len(const unsigned char *buf, size_t len)
{
	size_t n = len < sizeof(sig) ? len : sizeof(sig);

	if (memcmp(buf, sig, n))
		return -1;
	if (len > sizeof(sig) && (buf[12] & 0xf0) != 0x20)
		return -1;
	if (len < 16)
		return 0;
	return 16 + (long)be16(buf + 14);
}

/* Family byte: only the combinations the spec lists exist. */
static int set_family(struct proxy_info *pi, unsigned int fam, size_t *addr_len)
{
	static const struct { unsigned char b; int af, st; size_t len; } fams[] = {
		{ 0x00, AF_UNSPEC, 0, 0 },
		{ 0x11, AF_INET, SOCK_STREAM, 12 },
		{ 0x12, AF_INET, SOCK_DGRAM, 12 },
		{ 0x21, AF_INET6, SOCK_STREAM, 36 },
		{ 0x22, AF_INET6, SOCK_DGRAM, 36 },
		{ 0x31, AF_UNIX, SOCK_STREAM, 216 },
		{ 0x32, AF_UNIX, SOCK_DGRAM, 216 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fams); i++) {
		if (fams[i].b != fam)
			continue;
		pi->family = fams[i].af;
		pi->socktype = fams[i].st;
		*addr_len = fams[i].len;
		return 0;
	}
	return -1;
}

static void unix_path(char *out, const unsigned char *a)
{
	size_t n;

	/* Abstract names start with NUL; show them the way ss(8) does. */
	if (a[0] == 0) {
		n = strnlen((const char *)a + 1, 107);
		if (n)
			snprintf(out, PROXY_ADDR_MAX, "@%.*s", (int)n, a + 1);
		else
			out[0] = 0;
		return;
	}
	n = strnlen((const char *)a, 108);
	snprintf(out, PROXY_ADDR_MAX, "%.*s", (int)n, a);
}

static void parse_addrs(struct proxy_info *pi, const unsigned char *a)
{
	int af = pi->family;
	size_t alen = af == AF_INET ? 4 : 16;

	if (af == AF_UNSPEC)
		return;
	if (af == AF_UNIX) {
		unix_path(pi->src, a);
		unix_path(pi->dst, a + 108);
		return;
	}
	inet_ntop(af, a, pi->src, sizeof(pi->src));
	inet_ntop(af, a + alen, pi->dst, sizeof(pi->dst));
	pi->src_port = be16(a + 2 * alen);
	pi->dst_port = be16(a + 2 * alen + 2);
}

static int copy_str(char *dst, int *have, const struct cur *v)
{
	if (*have || v->left > PROXY_STR_MAX || memchr(v->p, 0, v->left))
		return -1;
	memcpy(dst, v->p, v->left);
	dst[v->left] = 0;
	*have = 1;
	return 0;
}

static int ssl_sub(struct proxy_info *pi, unsigned int type, const struct cur *v,
		   unsigned int *seen)
{
	if (type < ST_FIRST || type > ST_LAST || (*seen & (1u << (type - ST_FIRST))))
		return -1;
	*seen |= 1u << (type - ST_FIRST);
	switch (type) {
	case ST_VERSION:
		return copy_str(pi->version, &pi->has_version, v);
	case ST_CN:
		return copy_str(pi->cn, &pi->has_cn, v);
	case ST_CIPHER:
		return copy_str(pi->cipher, &pi->has_cipher, v);
	case ST_CERT:
		pi->cert = v->p;
		pi->cert_len = v->left;
		return 0;
	}
	return 0;	/* SIG_ALG, KEY_ALG, GROUP, SIG_SCHEME: valid, not kept */
}

static long parse_ssl(struct proxy_info *pi, struct cur v, char *err, size_t errlen)
{
	const unsigned char *h;
	unsigned int type, seen = 0;
	struct cur sub;

	if (pi->ssl)
		return fail(err, errlen, "second PP2_TYPE_SSL TLV");
	if (take(&v, 5, &h))
		return fail(err, errlen, "PP2_TYPE_SSL shorter than its 5-byte head");
	pi->ssl = 1;
	pi->client = h[0];
	pi->verify = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | h[3] << 8 | h[4];
	if (pi->client & ~CL_ALL)
		return fail(err, errlen, "unknown SSL client flags 0x%02x", pi->client);
	while (v.left) {
		if (take_tlv(&v, &type, &sub))
			return fail(err, errlen, "SSL sub-TLV overruns the SSL TLV");
		if (ssl_sub(pi, type, &sub, &seen))
			return fail(err, errlen, "bad or repeated SSL sub-TLV 0x%02x", type);
	}
	if ((pi->client & CL_SSL) && !pi->has_version)
		return fail(err, errlen, "PP2_CLIENT_SSL without a version sub-TLV");
	return 0;
}

static long parse_tlvs(struct proxy_info *pi, struct cur c, char *err, size_t errlen)
{
	unsigned int type;
	struct cur v;

	while (c.left) {
		if (take_tlv(&c, &type, &v))
			return fail(err, errlen, "TLV overruns the header (%zu bytes left)",
				    c.left);
		if (type == T_SSL && parse_ssl(pi, v, err, errlen))
			return -1;
		if (type > T_SSL && type <= ST_RANGE_END)
			return fail(err, errlen, "SSL sub-type 0x%02x at top level", type);
		if (type == T_CRC32C && v.left != 4)
			return fail(err, errlen, "CRC32C TLV of %zu bytes", v.left);
	}
	return 0;
}

long proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *out,
		 char *err, size_t errlen)
{
	struct cur body;
	size_t total, addr_len;

	memset(out, 0, sizeof(*out));
	if (len < 16)
		return fail(err, errlen, "%zu bytes, a header has at least 16", len);
	if (memcmp(buf, sig, sizeof(sig)))
		return fail(err, errlen, "bad signature");
	if ((buf[12] & 0xf0) != 0x20 || (buf[12] & 0x0f) > 1)
		return fail(err, errlen, "bad version/command byte 0x%02x", buf[12]);
	out->command = buf[12] & 0x0f;
	if (set_family(out, buf[13], &addr_len))
		return fail(err, errlen, "bad family/transport byte 0x%02x", buf[13]);
	total = 16 + be16(buf + 14);
	if (total > len)
		return fail(err, errlen, "header of %zu bytes, only %zu present", total, len);
	if (total - 16 < addr_len)
		return fail(err, errlen, "address block needs %zu bytes, length says %zu",
			    addr_len, total - 16);
	parse_addrs(out, buf + 16);
	body.p = buf + 16 + addr_len;
	body.left = total - 16 - addr_len;
	if (parse_tlvs(out, body, err, errlen))
		return -1;
	out->hdr_len = total;
	return (long)total;
}

const char *proxy_family_name(const struct proxy_info *pi)
{
	int dgram = pi->socktype == SOCK_DGRAM;

	switch (pi->family) {
	case AF_INET:
		return dgram ? "UDP4" : "TCP4";
	case AF_INET6:
		return dgram ? "UDP6" : "TCP6";
	case AF_UNIX:
		return dgram ? "UNIX_DGRAM" : "UNIX";
	}
	return "UNSPEC";
}
