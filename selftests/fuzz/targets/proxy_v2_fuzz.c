// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the PROXY v2 encoder (agent/proxy_v2.c), checked
 * against the tests' own parser (selftests/lib/proxy_parse.c), which shares
 * no code or header with it.
 *
 * The input is read as a recipe (see struct recipe below): two endpoints of
 * any family (none, IPv4, IPv6, IPv4-mapped IPv6, Unix), an optional TLS
 * block with version / CN / cipher strings up to a little past
 * KMTLS_PROXY_STR_MAX, a certificate of up to a little past 64 KiB (bytes
 * from the input, repeated), and an output capacity that is either the
 * documented bound kmtls_proxy_v2_max_len() or an arbitrary smaller one.
 * The buffer is allocated with exactly that capacity, so a write past it is
 * an ASan report.
 *
 * The expected length is computed here from the spec, and:
 *  - the encoder returns it exactly when the header is valid and fits, -1
 *    otherwise;
 *  - with the documented bound as capacity, only an uncarriable
 *    certificate (a 16-bit length overflow) may make it fail;
 *  - the parser accepts every header produced, reports the same length,
 *    and gives back the family, addresses, ports, client flags, verify
 *    field, strings and certificate bytes that went in.
 * Any difference calls abort(), which libFuzzer reports as a crash.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../../agent/proxy_v2.h"
#include "../../lib/proxy_parse.h"

#define CERT_MAX	(0xffff + 64)	/* a little past what a TLV carries */
#define STR_LIMIT	(KMTLS_PROXY_STR_MAX + 8)

/* Bytes of the input, consumed front to back; zeros once it runs out. */
struct src {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct src *s)
{
	if (!s->left)
		return 0;
	s->left--;
	return *s->p++;
}

static unsigned int take_u16(struct src *s)
{
	unsigned int hi = take_u8(s);

	return hi << 8 | take_u8(s);
}

static void take_bytes(struct src *s, void *out, size_t n)
{
	size_t k = n < s->left ? n : s->left;

	memcpy(out, s->p, k);
	memset((char *)out + k, 0, n - k);
	s->p += k;
	s->left -= k;
}

enum ep_kind { EP_NONE, EP_V4, EP_V6, EP_MAPPED, EP_UNIX, EP_KINDS };

struct endpoint {
	enum ep_kind kind;
	struct sockaddr_storage ss;
	unsigned char ip[16];	/* what the header must carry (v4: 4 bytes) */
	int v4;
	unsigned int port;
};

static void take_endpoint(struct src *s, struct endpoint *e)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&e->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&e->ss;
	struct sockaddr_un *su = (struct sockaddr_un *)&e->ss;

	memset(e, 0, sizeof(*e));
	e->kind = take_u8(s) % EP_KINDS;
	e->port = take_u16(s);
	switch (e->kind) {
	case EP_V4:
		s4->sin_family = AF_INET;
		s4->sin_port = htons(e->port);
		take_bytes(s, &s4->sin_addr, 4);
		memcpy(e->ip, &s4->sin_addr, 4);
		e->v4 = 1;
		break;
	case EP_V6:
	case EP_MAPPED:
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(e->port);
		if (e->kind == EP_MAPPED) {
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			take_bytes(s, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			take_bytes(s, &s6->sin6_addr, 16);
		}
		e->v4 = IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
		memcpy(e->ip, s6->sin6_addr.s6_addr + (e->v4 ? 12 : 0), e->v4 ? 4 : 16);
		break;
	case EP_UNIX:
		su->sun_family = AF_UNIX;
		take_bytes(s, su->sun_path, take_u8(s) % sizeof(su->sun_path));
		break;
	default:
		break;
	}
}

static int is_ip(const struct endpoint *e)
{
	return e->kind == EP_V4 || e->kind == EP_V6 || e->kind == EP_MAPPED;
}

/* A string of 0 .. STR_LIMIT bytes; an input NUL ends it early. */
static char *take_str(struct src *s, int present)
{
	size_t n = take_u16(s) % (STR_LIMIT + 1);
	char *str = malloc(n + 1);

	if (!str)
		abort();
	take_bytes(s, str, n);
	str[n] = '\0';
	if (present)
		return str;
	free(str);
	return NULL;
}

struct recipe {
	struct endpoint src, dst;
	int has_tls, verified, null_version, has_cert;
	struct kmtls_proxy_tls tls;
	unsigned char *cert;
	size_t cap;
	int cap_is_bound;
};

static void take_recipe(struct src *s, struct recipe *r)
{
	uint8_t flags = take_u8(s), cert_flags;
	unsigned int clen;
	size_t i, have;

	memset(r, 0, sizeof(*r));
	take_endpoint(s, &r->src);
	take_endpoint(s, &r->dst);
	r->has_tls = flags & 0x01;
	r->tls.verified = !!(flags & 0x02);
	r->null_version = (flags & 0x3c) == 0x3c;	/* rare: 1 in 16 */
	r->tls.version = take_str(s, !r->null_version);
	r->tls.cn = take_str(s, flags & 0x40);
	r->tls.cipher = take_str(s, flags & 0x80);
	cert_flags = take_u8(s);
	r->has_cert = cert_flags & 1;
	r->tls.resumed = !!(cert_flags & 2);
	clen = (take_u8(s) << 16 | take_u16(s)) % (CERT_MAX + 1);
	r->cap_is_bound = take_u8(s) & 1;
	r->cap = take_u16(s) + 1;
	if (r->has_cert) {
		/* The rest of the input, repeated to the length asked for. */
		r->cert = malloc(clen ? clen : 1);
		if (!r->cert)
			abort();
		have = s->left ? s->left : 1;
		for (i = 0; i < clen; i++)
			r->cert[i] = s->left ? s->p[i % have] : (uint8_t)i;
		r->tls.cert_der = r->cert;
		r->tls.cert_len = (int)clen;
	}
	if (r->cap_is_bound)
		r->cap = kmtls_proxy_v2_max_len(r->tls.cert_len);
}

static void free_recipe(struct recipe *r)
{
	free((char *)r->tls.version);
	free((char *)r->tls.cn);
	free((char *)r->tls.cipher);
	free(r->cert);
}

static size_t str_tlv(const char *s)
{
	return s ? PP2_TLV_HDR_LEN + strlen(s) : 0;
}

/*
 * The header's length from the spec, or 0 when the encoder must refuse
 * the input itself; *carriable is 0 when a 16-bit length would overflow.
 */
static size_t expected_len(const struct recipe *r, int *carriable)
{
	const struct kmtls_proxy_tls *t = &r->tls;
	size_t addr = 0, ssl = 0;

	*carriable = 1;
	if (is_ip(&r->src) && is_ip(&r->dst))
		addr = r->src.v4 && r->dst.v4 ? PP2_ADDR_LEN_INET : PP2_ADDR_LEN_INET6;
	if (r->has_tls) {
		if (!t->version || strlen(t->version) > KMTLS_PROXY_STR_MAX ||
		    (t->cn && strlen(t->cn) > KMTLS_PROXY_STR_MAX) ||
		    (t->cipher && strlen(t->cipher) > KMTLS_PROXY_STR_MAX))
			return 0;
		ssl = PP2_SSL_HDR_LEN + str_tlv(t->version) + str_tlv(t->cn) +
		      str_tlv(t->cipher);
		if (t->cert_der && t->cert_len > 0) {	/* empty: sent as none */
			if (t->cert_len > 0xffff)
				*carriable = 0;
			ssl += PP2_TLV_HDR_LEN + (size_t)t->cert_len;
		}
		if (ssl > 0xffff)
			*carriable = 0;
		ssl += PP2_TLV_HDR_LEN;
	}
	if (addr + ssl > 0xffff)
		*carriable = 0;
	return PP2_HDR_LEN + addr + ssl;
}

static void check_addr(const struct endpoint *e, int af, const char *text,
		       unsigned int port)
{
	char want[INET6_ADDRSTRLEN];
	unsigned char a[16];

	if (af == AF_INET) {
		memcpy(a, e->ip, 4);
	} else if (e->v4) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, e->ip, 4);
	} else {
		memcpy(a, e->ip, 16);
	}
	if (!inet_ntop(af, a, want, sizeof(want)) || strcmp(want, text) ||
	    port != e->port)
		abort();
}

static void check_str(int has, const char *got, const char *want)
{
	if (has != !!want || (want && strcmp(got, want)))
		abort();
}

static void check_parsed(const struct recipe *r, const unsigned char *buf,
			 int n)
{
	const struct kmtls_proxy_tls *t = &r->tls;
	unsigned int client = PP2_CLIENT_SSL;
	struct proxy_info pi;
	char err[256];
	int ip = is_ip(&r->src) && is_ip(&r->dst);
	int af = !ip ? AF_UNSPEC : r->src.v4 && r->dst.v4 ? AF_INET : AF_INET6;

	if (proxy_hdr_len(buf, n) != n)
		abort();
	if (proxy_parse(buf, n, &pi, err, sizeof(err)) != n) {
		fprintf(stderr, "proxy_v2_fuzz: parser refused: %s\n", err);
		abort();
	}
	if (pi.command != 1 || pi.family != af ||
	    pi.socktype != (ip ? SOCK_STREAM : 0))
		abort();
	if (ip) {
		check_addr(&r->src, af, pi.src, pi.src_port);
		check_addr(&r->dst, af, pi.dst, pi.dst_port);
	}
	if (pi.ssl != r->has_tls)
		abort();
	if (!r->has_tls)
		return;
	int cert = t->cert_der && t->cert_len > 0;

	if (t->verified || cert)
		client |= PP2_CLIENT_CERT_SESS | (t->resumed ? 0 : PP2_CLIENT_CERT_CONN);
	if (pi.client != client || pi.verify != (t->verified ? 0u : 1u))
		abort();
	check_str(pi.has_version, pi.version, t->version);
	check_str(pi.has_cn, pi.cn, t->cn);
	check_str(pi.has_cipher, pi.cipher, t->cipher);
	if (!!pi.cert != cert || pi.cert_len != (size_t)(cert ? t->cert_len : 0) ||
	    (cert && memcmp(pi.cert, t->cert_der, t->cert_len)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct src s = { data, size };
	struct recipe r;
	unsigned char *buf;
	size_t want;
	int n, carriable;

	take_recipe(&s, &r);
	want = expected_len(&r, &carriable);
	buf = malloc(r.cap);
	if (!buf)
		abort();
	n = kmtls_proxy_v2_encode(buf, r.cap,
				  r.src.kind ? (struct sockaddr *)&r.src.ss : NULL,
				  r.dst.kind ? (struct sockaddr *)&r.dst.ss : NULL,
				  r.has_tls ? &r.tls : NULL);
	if (!want || !carriable || want > r.cap) {
		if (n != -1)
			abort();
		/* The documented bound is enough for anything carriable. */
		if (want && carriable && r.cap_is_bound) {
			fprintf(stderr, "proxy_v2_fuzz: %zu-byte header does not fit kmtls_proxy_v2_max_len(%d) = %zu\n",
				want, r.tls.cert_len, r.cap);
			abort();
		}
	} else {
		if (n < 0 || (size_t)n != want)
			abort();
		check_parsed(&r, buf, n);
	}
	free(buf);
	free_recipe(&r);
	return 0;
}
