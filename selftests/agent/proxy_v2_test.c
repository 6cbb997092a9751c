// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * PROXY protocol v2: the agent's encoder checked against the tests' own
 * strict parser (selftests/lib/proxy_parse.c, written apart from it), a
 * header computed by hand, every truncation and every flipped length bit;
 * then the test backend driven over loopback, its JSON report compared with
 * what the client sent and received.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../../agent/proxy_v2.h"
#include "../lib/proxy_parse.h"
#include "../lib/stream.h"
#include "kselftest_harness.h"

#define CERT_LEN	1500
#define SHA_HEX		(2 * WC_SHA256_DIGEST_SIZE + 1)

/* ---- addresses and TLS facts ---------------------------------------- */

static void set_addr(struct sockaddr_storage *ss, int af, const char *ip,
		     unsigned int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *su = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = af;
	if (af == AF_INET) {
		inet_pton(AF_INET, ip, &s4->sin_addr);
		s4->sin_port = htons(port);
	} else if (af == AF_INET6) {
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		s6->sin6_port = htons(port);
	} else {
		snprintf(su->sun_path, sizeof(su->sun_path), "%s", ip);
	}
}

/* Stand-in DER: the proxy layer carries bytes, it does not read them. */
static unsigned char *make_cert(size_t len)
{
	unsigned char *p = malloc(len ? len : 1);
	struct stream_gen g;

	stream_init(&g, 0xce47ULL);
	stream_fill(&g, p, len);
	return p;
}

static void sha_hex(const void *p, size_t n, char *hex)
{
	unsigned char d[WC_SHA256_DIGEST_SIZE];

	wc_Sha256Hash(p, n, d);
	hex_encode(d, sizeof(d), hex);
}

/* ---- round trips ----------------------------------------------------- */

FIXTURE(pp2) {
	struct sockaddr_storage src, dst;
	struct kmtls_proxy_tls tls;
	unsigned char *cert, *buf;
	size_t cap;
	int len;	/* encoded length */
};

FIXTURE_VARIANT(pp2) {
	int src_af, dst_af;
	const char *src, *dst;
	unsigned int src_port, dst_port;
	const char *cn;
	int cert, verified, resumed;
	/* what the parser must see */
	const char *family, *want_src, *want_dst;
};

#define V4 .src_af = AF_INET, .dst_af = AF_INET, .src = "192.0.2.10", \
	   .dst = "198.51.100.20", .src_port = 40001, .dst_port = 443, \
	   .family = "TCP4", .want_src = "192.0.2.10", .want_dst = "198.51.100.20"
#define V6 .src_af = AF_INET6, .dst_af = AF_INET6, .src = "2001:db8::10", \
	   .dst = "2001:db8:1::20", .src_port = 65535, .dst_port = 8443, \
	   .family = "TCP6", .want_src = "2001:db8::10", .want_dst = "2001:db8:1::20"

FIXTURE_VARIANT_ADD(pp2, tcp4_cn) { V4, .cn = "client.example", .verified = 1 };
FIXTURE_VARIANT_ADD(pp2, tcp4_cn_cert) { V4, .cn = "client.example", .cert = 1, .verified = 1 };
FIXTURE_VARIANT_ADD(pp2, tcp4_nocn) { V4 };
FIXTURE_VARIANT_ADD(pp2, tcp4_nocn_cert) { V4, .cert = 1, .verified = 1 };
FIXTURE_VARIANT_ADD(pp2, tcp6_cn) { V6, .cn = "svc-a", .verified = 1 };
FIXTURE_VARIANT_ADD(pp2, tcp6_cn_cert) { V6, .cn = "svc-a", .cert = 1, .verified = 1 };
FIXTURE_VARIANT_ADD(pp2, tcp6_nocn) { V6 };
FIXTURE_VARIANT_ADD(pp2, tcp6_nocn_cert) { V6, .cert = 1 };
/* A resumption: the certificate came over the session, not this connection. */
FIXTURE_VARIANT_ADD(pp2, tcp4_resumed_cert) {
	V4, .cn = "r", .cert = 1, .verified = 1, .resumed = 1,
};
FIXTURE_VARIANT_ADD(pp2, tcp6_resumed) { V6, .cn = "r", .verified = 1, .resumed = 1 };

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: send TCP4. */
FIXTURE_VARIANT_ADD(pp2, v4mapped) {
	.src_af = AF_INET6, .dst_af = AF_INET6, .src = "::ffff:192.0.2.7",
	.dst = "::ffff:192.0.2.8", .src_port = 1, .dst_port = 2, .cn = "m",
	.verified = 1, .family = "TCP4", .want_src = "192.0.2.7", .want_dst = "192.0.2.8",
};

/* IPv4 against real IPv6: TCP6 with the IPv4 side mapped. */
FIXTURE_VARIANT_ADD(pp2, mixed) {
	.src_af = AF_INET, .dst_af = AF_INET6, .src = "192.0.2.7",
	.dst = "2001:db8::1", .src_port = 5, .dst_port = 6, .cn = "x", .cert = 1,
	.verified = 1, .family = "TCP6", .want_src = "::ffff:192.0.2.7",
	.want_dst = "2001:db8::1",
};

/* No IP addresses to give: PROXY with family UNSPEC, TLVs still sent. */
FIXTURE_VARIANT_ADD(pp2, unix_unspec) {
	.src_af = AF_UNIX, .dst_af = AF_UNIX, .src = "/run/a", .dst = "/run/b",
	.cn = "u", .cert = 1, .verified = 1, .family = "UNSPEC", .want_src = "",
	.want_dst = "",
};

FIXTURE_SETUP(pp2)
{
	set_addr(&self->src, variant->src_af, variant->src, variant->src_port);
	set_addr(&self->dst, variant->dst_af, variant->dst, variant->dst_port);
	self->cert = variant->cert ? make_cert(CERT_LEN) : NULL;
	self->tls = (struct kmtls_proxy_tls){
		.version = "TLSv1.3",
		.cn = variant->cn,
		.cipher = "TLS_AES_128_GCM_SHA256",
		.cert_der = self->cert,
		.cert_len = variant->cert ? CERT_LEN : 0,
		.verified = variant->verified,
		.resumed = variant->resumed,
	};
	self->cap = kmtls_proxy_v2_max_len(self->tls.cert_len);
	/* Room past cap to catch a write beyond it. */
	self->buf = malloc(self->cap + 64);
	ASSERT_NE(NULL, self->buf);
	memset(self->buf, 0x5a, self->cap + 64);
	self->len = kmtls_proxy_v2_encode(self->buf, self->cap,
					  (struct sockaddr *)&self->src,
					  (struct sockaddr *)&self->dst, &self->tls);
	ASSERT_GT(self->len, 0);
	ASSERT_LE((size_t)self->len, self->cap);
}

FIXTURE_TEARDOWN(pp2)
{
	free(self->buf);
	free(self->cert);
}

TEST_F(pp2, round_trip)
{
	/* SSL, and CERT_SESS | CERT_CONN with a certificate: CONN not when resumed. */
	unsigned int flags = !(variant->verified || variant->cert) ? 1 : variant->resumed ? 5 : 7;
	struct proxy_info pi;
	char err[128] = "";
	long n;

	n = proxy_parse(self->buf, self->len, &pi, err, sizeof(err));
	ASSERT_EQ(self->len, n) TH_LOG("parser: %s", err);
	EXPECT_EQ(0, memcmp(self->buf, "\r\n\r\n\0\r\nQUIT\n\x21", 13));
	EXPECT_EQ(1, pi.command);
	EXPECT_STREQ(variant->family, proxy_family_name(&pi));
	EXPECT_STREQ(variant->want_src, pi.src);
	EXPECT_STREQ(variant->want_dst, pi.dst);
	EXPECT_EQ(variant->src_port, pi.src_port);
	EXPECT_EQ(variant->dst_port, pi.dst_port);
	ASSERT_TRUE(pi.ssl);
	EXPECT_EQ(flags, pi.client);
	EXPECT_EQ(variant->verified ? 0u : 1u, pi.verify);
	ASSERT_TRUE(pi.has_version);
	EXPECT_STREQ("TLSv1.3", pi.version);
	ASSERT_TRUE(pi.has_cipher);
	EXPECT_STREQ("TLS_AES_128_GCM_SHA256", pi.cipher);
	EXPECT_EQ(!!variant->cn, pi.has_cn);
	if (variant->cn)
		EXPECT_STREQ(variant->cn, pi.cn);
	if (!variant->cert) {
		EXPECT_EQ(NULL, pi.cert);
		return;
	}
	ASSERT_EQ((size_t)CERT_LEN, pi.cert_len);
	EXPECT_EQ(0, memcmp(self->cert, pi.cert, CERT_LEN));
}

/* Payload after the header is not the header's business. */
TEST_F(pp2, trailing_payload)
{
	struct proxy_info pi;

	memset(self->buf + self->len, 'P', 32);
	EXPECT_EQ(self->len, proxy_parse(self->buf, self->len + 32, &pi, NULL, 0));
}

TEST_F(pp2, every_truncation_rejected)
{
	struct proxy_info pi;
	int n;

	for (n = 0; n < self->len; n++)
		ASSERT_EQ(-1, proxy_parse(self->buf, n, &pi, NULL, 0))
			TH_LOG("accepted %d of %d bytes", n, self->len);
}

/* Offsets of every 16-bit length field, found by walking the encoding. */
static int length_fields(const unsigned char *b, int len, int *at, int max)
{
	int addr = b[13] == 0x11 ? 12 : b[13] == 0x21 ? 36 : 0;
	int n = 0, off = 16 + addr, end, sub;

	at[n++] = 14;
	while (off + 3 <= len && n < max) {
		at[n++] = off + 1;
		end = off + 3 + (b[off + 1] << 8 | b[off + 2]);
		sub = off + 3 + 5;
		for (; b[off] == 0x20 && sub + 3 <= end && n < max;
		     sub += 3 + (b[sub + 1] << 8 | b[sub + 2]))
			at[n++] = sub + 1;
		off = end;
	}
	return n;
}

TEST_F(pp2, flipped_length_bits_rejected)
{
	unsigned char *copy = malloc(self->len);
	struct proxy_info pi;
	int at[16], n, i, bit;

	ASSERT_NE(NULL, copy);
	n = length_fields(self->buf, self->len, at, 16);
	/* header, SSL TLV, version, cipher, and optional CN and cert */
	ASSERT_EQ(4 + !!variant->cn + !!variant->cert, n);
	for (i = 0; i < n; i++) {
		for (bit = 0; bit < 16; bit++) {
			memcpy(copy, self->buf, self->len);
			copy[at[i] + bit / 8] ^= 0x80 >> (bit % 8);
			EXPECT_EQ(-1, proxy_parse(copy, self->len, &pi, NULL, 0))
				TH_LOG("length at %d, bit %d accepted", at[i], bit);
		}
	}
	free(copy);
}

TEST_F(pp2, cap_too_small)
{
	size_t cap;

	for (cap = 0; cap < (size_t)self->len; cap++) {
		memset(self->buf, 0x5a, self->cap + 64);
		ASSERT_EQ(-1, kmtls_proxy_v2_encode(self->buf, cap,
						    (struct sockaddr *)&self->src,
						    (struct sockaddr *)&self->dst, &self->tls));
		/* Nothing written past what the caller allowed. */
		ASSERT_EQ(0x5a, self->buf[cap]);
	}
	EXPECT_EQ(self->len, kmtls_proxy_v2_encode(self->buf, cap,
						   (struct sockaddr *)&self->src,
						   (struct sockaddr *)&self->dst, &self->tls));
}

/* ---- exact bytes ----------------------------------------------------- */

TEST(known_header)
{
	/*
	 * TCP4 192.0.2.1:56324 -> 198.51.100.2:443, verified, "TLSv1.3",
	 * CN "a", no cipher, no certificate. Length = 12 address bytes +
	 * SSL TLV (3 + 5 + version 3+7 + CN 3+1 = 22) = 34.
	 */
	static const unsigned char want[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21,			/* v2, PROXY */
		0x11,			/* AF_INET, STREAM */
		0x00, 0x22,		/* 34 */
		192, 0, 2, 1,		/* src */
		198, 51, 100, 2,	/* dst */
		0xdc, 0x04,		/* 56324 */
		0x01, 0xbb,		/* 443 */
		0x20, 0x00, 0x13,	/* PP2_TYPE_SSL, 19 */
		0x07,			/* SSL | CERT_CONN | CERT_SESS */
		0x00, 0x00, 0x00, 0x00,	/* verify: ok */
		0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
		0x22, 0x00, 0x01, 'a',
	};
	struct kmtls_proxy_tls tls = { .version = "TLSv1.3", .cn = "a", .verified = 1 };
	struct sockaddr_storage s, d;
	unsigned char buf[128];

	set_addr(&s, AF_INET, "192.0.2.1", 56324);
	set_addr(&d, AF_INET, "198.51.100.2", 443);
	ASSERT_EQ((int)sizeof(want), kmtls_proxy_v2_encode(buf, sizeof(buf),
		  (struct sockaddr *)&s, (struct sockaddr *)&d, &tls));
	EXPECT_EQ(0, memcmp(want, buf, sizeof(want)));
	/* The smallest buffer that fits is enough. */
	ASSERT_EQ((int)sizeof(want), kmtls_proxy_v2_encode(buf, sizeof(want),
		  (struct sockaddr *)&s, (struct sockaddr *)&d, &tls));
}

TEST(unspec_without_tls)
{
	static const unsigned char want[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x00, 0x00, 0x00,
	};
	struct sockaddr_storage s, d;
	unsigned char buf[64];
	struct proxy_info pi;

	set_addr(&s, AF_UNIX, "", 0);
	set_addr(&d, AF_INET, "127.0.0.1", 1);
	ASSERT_EQ(16, kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
					    (struct sockaddr *)&d, NULL));
	EXPECT_EQ(0, memcmp(want, buf, 16));
	EXPECT_EQ(16, kmtls_proxy_v2_encode(buf, sizeof(buf), NULL, NULL, NULL));
	ASSERT_EQ(16, proxy_parse(buf, 16, &pi, NULL, 0));
	EXPECT_EQ(AF_UNSPEC, pi.family);
	EXPECT_FALSE(pi.ssl);
}

/* ---- limits ---------------------------------------------------------- */

static int encode_cert(int af, int cert_len, unsigned char *cert, unsigned char *buf,
		       size_t cap)
{
	struct kmtls_proxy_tls tls = {
		.version = "TLSv1.3", .cert_der = cert, .cert_len = cert_len, .verified = 1,
	};
	struct sockaddr_storage s, d;

	set_addr(&s, af, af == AF_INET ? "10.0.0.1" : "fd00::1", 1000);
	set_addr(&d, af, af == AF_INET ? "10.0.0.2" : "fd00::2", 2000);
	return kmtls_proxy_v2_encode(buf, cap, (struct sockaddr *)&s,
				     (struct sockaddr *)&d, &tls);
}

TEST(cert_limits)
{
	/*
	 * The 16-bit header length binds first: TCP4 puts 12 address bytes,
	 * 3 + 5 SSL head, 3 + 7 version, 3 certificate TLV head = 33 bytes
	 * around the certificate, so 65502 is the largest that fits; TCP6
	 * has 24 more address bytes.
	 */
	size_t cap = 200000;
	unsigned char *cert = make_cert(70000), *buf = malloc(cap);
	struct proxy_info pi;

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(-1, encode_cert(AF_INET, 70000, cert, buf, cap));
	EXPECT_EQ(-1, encode_cert(AF_INET, 65535, cert, buf, cap));
	EXPECT_EQ(-1, encode_cert(AF_INET, 65503, cert, buf, cap));
	ASSERT_EQ(PP2_MAX_LEN, encode_cert(AF_INET, 65502, cert, buf, cap));
	ASSERT_EQ(PP2_MAX_LEN, proxy_parse(buf, PP2_MAX_LEN, &pi, NULL, 0));
	EXPECT_EQ((size_t)65502, pi.cert_len);
	EXPECT_EQ(-1, encode_cert(AF_INET6, 65479, cert, buf, cap));
	EXPECT_EQ(PP2_MAX_LEN, encode_cert(AF_INET6, 65478, cert, buf, cap));
	/* The bound is what a caller allocates: it must always suffice. */
	EXPECT_EQ((size_t)PP2_MAX_LEN, kmtls_proxy_v2_max_len(65502));
	EXPECT_EQ(PP2_MAX_LEN, encode_cert(AF_INET6, 65478, cert, buf,
					   kmtls_proxy_v2_max_len(65478)));
	EXPECT_EQ(-1, encode_cert(AF_INET, 70000, cert, buf, kmtls_proxy_v2_max_len(70000)));
	free(cert);
	free(buf);
}

TEST(invalid_input)
{
	char long_cn[KMTLS_PROXY_STR_MAX + 2];
	struct kmtls_proxy_tls tls = { .version = "TLSv1.3" };
	struct sockaddr_storage s;
	unsigned char buf[2048];
	struct proxy_info pi;
	int n;

	set_addr(&s, AF_INET, "10.0.0.1", 1);
	EXPECT_EQ(-1, kmtls_proxy_v2_encode(NULL, 100, (struct sockaddr *)&s,
					    (struct sockaddr *)&s, &tls));
	tls.cert_len = -1;
	EXPECT_EQ(-1, kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
					    (struct sockaddr *)&s, &tls));
	tls.cert_len = 10;	/* and no DER */
	EXPECT_EQ(-1, kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
					    (struct sockaddr *)&s, &tls));
	tls.cert_len = 0;
	tls.version = NULL;
	EXPECT_EQ(-1, kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
					    (struct sockaddr *)&s, &tls));
	tls.version = "TLSv1.3";
	memset(long_cn, 'c', sizeof(long_cn) - 1);
	long_cn[sizeof(long_cn) - 1] = 0;
	tls.cn = long_cn;
	EXPECT_EQ(-1, kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
					    (struct sockaddr *)&s, &tls));
	/* The longest accepted string survives the round trip. */
	long_cn[KMTLS_PROXY_STR_MAX] = 0;
	n = kmtls_proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
				  (struct sockaddr *)&s, &tls);
	ASSERT_GT(n, 0);
	ASSERT_EQ(n, proxy_parse(buf, n, &pi, NULL, 0));
	EXPECT_STREQ(long_cn, pi.cn);
}

/* ---- parser on its own ----------------------------------------------- */

/* A valid TCP4 header with an SSL TLV holding version and CN "a". */
static int sample(unsigned char *buf, size_t cap)
{
	struct kmtls_proxy_tls tls = { .version = "TLSv1.3", .cn = "a", .verified = 1 };
	struct sockaddr_storage s, d;

	set_addr(&s, AF_INET, "192.0.2.1", 56324);
	set_addr(&d, AF_INET, "198.51.100.2", 443);
	return kmtls_proxy_v2_encode(buf, cap, (struct sockaddr *)&s,
				     (struct sockaddr *)&d, &tls);
}

static long parse_patched(const unsigned char *orig, int len, int at,
			  unsigned char v)
{
	unsigned char copy[256];
	struct proxy_info pi;

	memcpy(copy, orig, len);
	copy[at] = v;
	return proxy_parse(copy, len, &pi, NULL, 0);
}

TEST(parser_rejects)
{
	unsigned char buf[256], big[300];
	struct proxy_info pi;
	int len = sample(buf, sizeof(buf)), i;
	char err[128];

	ASSERT_EQ(50, len);
	for (i = 0; i < 12; i++)
		EXPECT_EQ(-1, parse_patched(buf, len, i, buf[i] ^ 0x01));
	EXPECT_EQ(-1, parse_patched(buf, len, 12, 0x11));	/* version 1 */
	EXPECT_EQ(-1, parse_patched(buf, len, 12, 0x31));	/* version 3 */
	EXPECT_EQ(-1, parse_patched(buf, len, 12, 0x22));	/* command 2 */
	EXPECT_EQ(-1, parse_patched(buf, len, 13, 0x13));	/* transport 3 */
	EXPECT_EQ(-1, parse_patched(buf, len, 13, 0x41));	/* family 4 */
	EXPECT_EQ(-1, parse_patched(buf, len, 13, 0x31));	/* AF_UNIX: 216 > 34 */
	EXPECT_EQ(-1, parse_patched(buf, len, 28, 0x22));	/* sub-type at top */
	EXPECT_EQ(-1, parse_patched(buf, len, 31, 0x08));	/* unknown client flag */
	EXPECT_EQ(-1, parse_patched(buf, len, 36, 0x29));	/* unknown sub-type */
	EXPECT_EQ(-1, parse_patched(buf, len, 46, 0x21));	/* second version */
	EXPECT_EQ(-1, parse_patched(buf, len, 49, 0x00));	/* NUL in CN */
	EXPECT_EQ(-1, parse_patched(buf, len, 36, 0x23));	/* SSL flag, no version */
	/* LOCAL is valid; so is a UDP4 family with the same layout. */
	EXPECT_EQ(len, parse_patched(buf, len, 12, 0x20));
	EXPECT_EQ(len, parse_patched(buf, len, 13, 0x12));

	/* A second SSL TLV appended, the header length grown to cover it. */
	memcpy(big, buf, len);
	memcpy(big + len, buf + 28, 22);
	big[15] += 22;
	EXPECT_EQ(-1, proxy_parse(big, len + 22, &pi, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "second"));
	/* An unknown top-level TLV is skipped, as the spec allows. */
	memcpy(big + len, "\xe0\x00\x02hi", 5);
	big[15] = buf[15] + 5;
	EXPECT_EQ(len + 5, proxy_parse(big, len + 5, &pi, NULL, 0));
}

TEST(hdr_len_incremental)
{
	unsigned char buf[256];
	int len = sample(buf, sizeof(buf)), n;

	for (n = 0; n < 16; n++)
		EXPECT_EQ(0, proxy_hdr_len(buf, n));
	EXPECT_EQ(len, proxy_hdr_len(buf, 16));
	EXPECT_EQ(-1, proxy_hdr_len((const unsigned char *)"GET / HTTP/1.1\r\n", 4));
	EXPECT_EQ(-1, proxy_hdr_len((const unsigned char *)"PROXY TCP4 1.2.3.4", 16));
	buf[12] = 0x11;
	EXPECT_EQ(-1, proxy_hdr_len(buf, 13));
}

TEST(stream_chunking)
{
	unsigned char one[1000], parts[1000];
	struct stream_gen g;
	size_t off, n;

	stream_init(&g, STREAM_SEED_S2C);
	stream_fill(&g, one, sizeof(one));
	stream_init(&g, STREAM_SEED_S2C);
	for (off = 0, n = 1; off < sizeof(parts); off += n, n = n % 13 + 1) {
		n = n < sizeof(parts) - off ? n : sizeof(parts) - off;
		stream_fill(&g, parts + off, n);
	}
	EXPECT_EQ(0, memcmp(one, parts, sizeof(one)));
}

/* ---- the test backend ------------------------------------------------ */

FIXTURE(backend) {
	char dir[64], report[128], ready[128], bin[PATH_MAX + 64];
	pid_t pid;
	unsigned int port;
};

FIXTURE_SETUP(backend)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *out = getenv("KMTLS_OUT");

	/* Same build as this test: <O>/selftests/agent/ -> <O>/selftests/progs/ */
	ASSERT_GT(n, 0);
	exe[n] = 0;
	slash = strrchr(exe, '/');
	*slash = 0;
	snprintf(self->bin, sizeof(self->bin), "%s/../progs/test_backend", exe);
	if (access(self->bin, X_OK) && out)
		snprintf(self->bin, sizeof(self->bin), "%s/selftests/progs/test_backend", out);
	if (access(self->bin, X_OK))
		SKIP(return, "test_backend not built (%.200s)", self->bin);
	snprintf(self->dir, sizeof(self->dir), "/tmp/kmtls-pp2-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->report, sizeof(self->report), "%s/report.jsonl", self->dir);
	snprintf(self->ready, sizeof(self->ready), "%s/ready", self->dir);
	self->pid = 0;
}

FIXTURE_TEARDOWN(backend)
{
	char path[256];

	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	if (!self->dir[0] || self->dir[0] != '/')
		return;
	snprintf(path, sizeof(path), "%s/report.jsonl", self->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ready", self->dir);
	unlink(path);
	rmdir(self->dir);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Start the backend with @args after --listen/--report/--ready-file. */
static int backend_start(FIXTURE_DATA(backend) *self, const char *const *args)
{
	const char *argv[32] = { self->bin, "--listen", "127.0.0.1:0", "--report",
				 self->report, "--ready-file", self->ready };
	posix_spawn_file_actions_t fa;
	int i = 7, tries, ret;
	FILE *f;

	while (*args && i < 31)
		argv[i++] = *args++;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	ret = posix_spawn(&self->pid, self->bin, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		return -ret;
	for (tries = 0; tries < 1000; tries++) {
		f = fopen(self->ready, "r");
		if (f) {
			ret = fscanf(f, "%u", &self->port);
			fclose(f);
			return ret == 1 ? 0 : -EINVAL;
		}
		if (waitpid(self->pid, NULL, WNOHANG) == self->pid) {
			self->pid = 0;
			return -ECHILD;
		}
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* Exit status of the backend, or -1 if it is still running after @ms. */
static int backend_wait(FIXTURE_DATA(backend) *self, int ms)
{
	int status, t;

	for (t = 0; t < ms; t += 10) {
		if (waitpid(self->pid, &status, WNOHANG) == self->pid) {
			self->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		sleep_ms(10);
	}
	return -1;
}

/* The report, one parsed object per line; caller frees with put_lines(). */
static int read_report(const char *path, json_object **lines, int max)
{
	char *line = NULL;
	size_t cap = 0;
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (n < max && getline(&line, &cap, f) > 0) {
		lines[n] = json_tokener_parse(line);
		if (!lines[n])
			break;
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

static void put_lines(json_object **lines, int n)
{
	while (n--)
		json_object_put(lines[n]);
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "(null)";
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -12345;
}

static int connect_port(unsigned int port)
{
	struct sockaddr_storage a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	set_addr(&a, AF_INET, "127.0.0.1", port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(struct sockaddr_in))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	ssize_t w;

	for (; n; n -= w, p = (const char *)p + w) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
	}
	return 0;
}

/* Read exactly @n bytes, or fail after the 10 s receive timeout. */
static int recv_all(int fd, void *buf, size_t n)
{
	struct timeval tv = { .tv_sec = 10 };
	ssize_t r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (; n; n -= r, buf = (char *)buf + r) {
		r = recv(fd, buf, n, 0);
		if (r <= 0)
			return -1;
	}
	return 0;
}

struct duplex {
	size_t bytes, sent, got;
	char sent_hex[SHA_HEX], got_hex[SHA_HEX];
	char err[128];
};

/*
 * Send @d->bytes of the client stream while reading what the backend sends
 * until its EOF, both at once: either side stalls if the other waits.
 */
static int duplex_run(int fd, struct duplex *d)
{
	unsigned char out[16384], in[65536], dg[WC_SHA256_DIGEST_SIZE];
	size_t out_len = 0, out_off = 0;
	struct pollfd p = { .fd = fd };
	struct stream_gen g;
	wc_Sha256 hs, hr;
	int eof = 0, shut = 0;
	ssize_t n;

	stream_init(&g, STREAM_SEED_C2S);
	wc_InitSha256(&hs);
	wc_InitSha256(&hr);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (!eof || !shut) {
		if (!shut && d->sent == d->bytes) {
			shutdown(fd, SHUT_WR);
			shut = 1;
			continue;
		}
		p.events = (eof ? 0 : POLLIN) | (shut ? 0 : POLLOUT);
		if (poll(&p, 1, 10000) <= 0) {
			snprintf(d->err, sizeof(d->err), "stalled: sent %zu got %zu", d->sent, d->got);
			return -1;
		}
		if (!shut && (p.revents & POLLOUT)) {
			if (out_off == out_len) {
				out_len = d->bytes - d->sent < sizeof(out) ? d->bytes - d->sent : sizeof(out);
				stream_fill(&g, out, out_len);
				out_off = 0;
			}
			n = send(fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN) {
				snprintf(d->err, sizeof(d->err), "send: %s", strerror(errno));
				return -1;
			}
			if (n > 0) {
				wc_Sha256Update(&hs, out + out_off, n);
				out_off += n;
				d->sent += n;
			}
		}
		if (!eof && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			n = recv(fd, in, sizeof(in), 0);
			if (n < 0 && errno != EAGAIN) {
				snprintf(d->err, sizeof(d->err), "recv: %s", strerror(errno));
				return -1;
			}
			if (n == 0)
				eof = 1;
			if (n > 0) {
				wc_Sha256Update(&hr, in, n);
				d->got += n;
			}
		}
	}
	wc_Sha256Final(&hs, dg);
	hex_encode(dg, sizeof(dg), d->sent_hex);
	wc_Sha256Final(&hr, dg);
	hex_encode(dg, sizeof(dg), d->got_hex);
	return 0;
}

/* SHA-256 of the first @n bytes of a stream, computed apart from any socket. */
static void stream_hex(uint64_t seed, size_t n, char *hex)
{
	unsigned char buf[16384], dg[WC_SHA256_DIGEST_SIZE];
	struct stream_gen g;
	wc_Sha256 h;
	size_t k;

	stream_init(&g, seed);
	wc_InitSha256(&h);
	for (; n; n -= k) {
		k = n < sizeof(buf) ? n : sizeof(buf);
		stream_fill(&g, buf, k);
		wc_Sha256Update(&h, buf, k);
	}
	wc_Sha256Final(&h, dg);
	hex_encode(dg, sizeof(dg), hex);
}

TEST_F(backend, duplex_proxy)
{
	static const char *const args[] = { "--mode", "duplex", "--bytes", "1048576", "--proxy",
			       "--max-conns", "1", NULL };
	struct sockaddr_in me, peer;
	socklen_t alen = sizeof(me);
	unsigned char *cert = make_cert(CERT_LEN), hdr[4096];
	struct kmtls_proxy_tls tls = {
		.version = "TLSv1.3", .cn = "client.kmtls.test",
		.cipher = "TLS_CHACHA20_POLY1305_SHA256", .cert_der = cert,
		.cert_len = CERT_LEN, .verified = 1,
	};
	struct duplex d = { .bytes = 1 << 20 };
	char want_c2s[SHA_HEX], want_s2c[SHA_HEX], cert_hex[SHA_HEX], ip[INET_ADDRSTRLEN];
	json_object *lines[4], *c;
	int fd, hlen, n;

	ASSERT_EQ(0, backend_start(self, args));
	fd = connect_port(self->port);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&me, &alen));
	alen = sizeof(peer);
	ASSERT_EQ(0, getpeername(fd, (struct sockaddr *)&peer, &alen));
	hlen = kmtls_proxy_v2_encode(hdr, sizeof(hdr), (struct sockaddr *)&me,
				     (struct sockaddr *)&peer, &tls);
	ASSERT_GT(hlen, CERT_LEN);
	ASSERT_EQ(0, send_all(fd, hdr, hlen));
	ASSERT_EQ(0, duplex_run(fd, &d)) TH_LOG("%s", d.err);
	close(fd);
	ASSERT_EQ(0, backend_wait(self, 10000));

	stream_hex(STREAM_SEED_C2S, d.bytes, want_c2s);
	stream_hex(STREAM_SEED_S2C, d.bytes, want_s2c);
	sha_hex(cert, CERT_LEN, cert_hex);
	EXPECT_EQ(d.bytes, d.got);
	EXPECT_STREQ(want_s2c, d.got_hex);
	EXPECT_STREQ(want_c2s, d.sent_hex);

	n = read_report(self->report, lines, 4);
	ASSERT_EQ(2, n);
	c = lines[0];
	EXPECT_EQ(1, jint(c, "conn"));
	EXPECT_STREQ("eof", jstr(c, "end"));
	EXPECT_EQ((int64_t)d.bytes, jint(c, "bytes_received"));
	EXPECT_STREQ(d.sent_hex, jstr(c, "sha256_received"));
	EXPECT_EQ((int64_t)d.bytes, jint(c, "bytes_sent"));
	EXPECT_STREQ(d.got_hex, jstr(c, "sha256_sent"));
	EXPECT_EQ(hlen, jint(c, "proxy_hdr_len"));
	EXPECT_STREQ("PROXY", jstr(c, "command"));
	EXPECT_STREQ("TCP4", jstr(c, "family"));
	inet_ntop(AF_INET, &me.sin_addr, ip, sizeof(ip));
	EXPECT_STREQ(ip, jstr(c, "src"));
	EXPECT_EQ(ntohs(me.sin_port), jint(c, "src_port"));
	EXPECT_STREQ("127.0.0.1", jstr(c, "dst"));
	EXPECT_EQ(self->port, jint(c, "dst_port"));
	EXPECT_STREQ("TLSv1.3", jstr(c, "ssl_version"));
	EXPECT_STREQ("client.kmtls.test", jstr(c, "ssl_cn"));
	EXPECT_STREQ("TLS_CHACHA20_POLY1305_SHA256", jstr(c, "ssl_cipher"));
	EXPECT_EQ(7, jint(c, "ssl_client"));
	EXPECT_EQ(0, jint(c, "ssl_verify"));
	EXPECT_EQ(CERT_LEN, jint(c, "cert_len"));
	EXPECT_STREQ(cert_hex, jstr(c, "cert_sha256"));
	EXPECT_EQ((int64_t)d.bytes, jint(lines[1], "total_bytes"));
	EXPECT_EQ(1, jint(lines[1], "conns"));
	put_lines(lines, n);
	free(cert);
}

TEST_F(backend, bad_header_closed_and_reported)
{
	static const char *const args[] = { "--mode", "echo", "--proxy", "--max-conns", "1", NULL };
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct timeval tv = { .tv_sec = 10 };
	json_object *lines[4];
	char buf[64];
	ssize_t r;
	int fd, n;

	ASSERT_EQ(0, backend_start(self, args));
	fd = connect_port(self->port);
	ASSERT_GE(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ASSERT_EQ(0, send_all(fd, req, sizeof(req) - 1));
	r = recv(fd, buf, sizeof(buf), 0);
	/* Closed with our bytes unread: EOF or a reset, never an echo. */
	EXPECT_TRUE(r == 0 || (r < 0 && errno == ECONNRESET)) TH_LOG("recv %zd", r);
	close(fd);
	ASSERT_EQ(0, backend_wait(self, 10000));
	n = read_report(self->report, lines, 4);
	ASSERT_EQ(2, n);
	EXPECT_STREQ("proxy", jstr(lines[0], "end"));
	EXPECT_STREQ("not a PROXY v2 header", jstr(lines[0], "error"));
	EXPECT_EQ(0, jint(lines[0], "bytes_sent"));
	EXPECT_EQ(0, jint(lines[1], "total_bytes"));
	put_lines(lines, n);
}

/* Many connections open at once, each echoing its own bytes. */
#define MANY		1000
#define MANY_BYTES	1024

static int failf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int many_exchange(unsigned int port, int *fds, char *err, size_t errlen)
{
	unsigned char hdr[512], data[MANY_BYTES], back[MANY_BYTES];
	struct kmtls_proxy_tls tls = { .version = "TLSv1.2" };
	struct sockaddr_in me, peer;
	socklen_t alen;
	struct stream_gen g;
	int i, hlen;

	stream_init(&g, STREAM_SEED_C2S);
	stream_fill(&g, data, sizeof(data));
	for (i = 0; i < MANY; i++) {
		fds[i] = connect_port(port);
		if (fds[i] < 0)
			return failf(err, errlen, "connect %d: %s", i, strerror(errno));
	}
	for (i = 0; i < MANY; i++) {
		alen = sizeof(me);
		getsockname(fds[i], (struct sockaddr *)&me, &alen);
		alen = sizeof(peer);
		getpeername(fds[i], (struct sockaddr *)&peer, &alen);
		hlen = kmtls_proxy_v2_encode(hdr, sizeof(hdr), (struct sockaddr *)&me,
					     (struct sockaddr *)&peer, &tls);
		data[0] = i & 0xff;	/* each connection its own bytes */
		if (hlen < 0 || send_all(fds[i], hdr, hlen) || send_all(fds[i], data, sizeof(data)))
			return failf(err, errlen, "send %d: %s", i, strerror(errno));
	}
	for (i = 0; i < MANY; i++) {
		if (recv_all(fds[i], back, sizeof(back)))
			return failf(err, errlen, "recv %d: %s", i, strerror(errno));
		data[0] = i & 0xff;
		if (memcmp(back, data, sizeof(data)))
			return failf(err, errlen, "conn %d: echo differs", i);
	}
	return 0;
}

TEST_F(backend, thousand_concurrent_echo)
{
	static const char *const args[] = { "--mode", "echo", "--proxy", "--max-conns", "1000", NULL };
	struct rlimit rl;
	json_object **lines;
	int fds[MANY], i, n, eof = 0;
	char err[160] = "";

	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max < MANY + 64)
		SKIP(return, "RLIMIT_NOFILE hard limit %lu too low", (unsigned long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_EQ(0, backend_start(self, args));
	for (i = 0; i < MANY; i++)
		fds[i] = -1;
	EXPECT_EQ(0, many_exchange(self->port, fds, err, sizeof(err))) TH_LOG("%s", err);
	for (i = 0; i < MANY; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ASSERT_EQ(0, backend_wait(self, 20000));
	lines = calloc(MANY + 2, sizeof(*lines));
	ASSERT_NE(NULL, lines);
	n = read_report(self->report, lines, MANY + 2);
	ASSERT_EQ(MANY + 1, n);
	for (i = 0; i < MANY; i++)
		eof += !strcmp(jstr(lines[i], "end"), "eof") &&
		       jint(lines[i], "bytes_received") == MANY_BYTES &&
		       jint(lines[i], "bytes_sent") == MANY_BYTES &&
		       !strcmp(jstr(lines[i], "ssl_version"), "TLSv1.2");
	EXPECT_EQ(MANY, eof);
	EXPECT_EQ(MANY * MANY_BYTES, jint(lines[MANY], "total_bytes"));
	EXPECT_EQ(MANY, jint(lines[MANY], "conns"));
	put_lines(lines, n);
	free(lines);
}

TEST_F(backend, sigterm_flushes_report)
{
	static const char *const args[] = { "--mode", "echo", NULL };
	char data[3000], back[3000];
	json_object *lines[4];
	int fd, n;

	ASSERT_EQ(0, backend_start(self, args));
	memset(data, 'z', sizeof(data));
	/* One connection finished: its EOF comes after its report line. */
	fd = connect_port(self->port);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, send_all(fd, data, sizeof(data)));
	shutdown(fd, SHUT_WR);
	ASSERT_EQ(0, recv_all(fd, back, sizeof(back)));
	EXPECT_EQ(0, recv(fd, back, 1, 0));
	close(fd);
	/* One still open, its 10 bytes known to be in: they came back. */
	fd = connect_port(self->port);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, send_all(fd, data, 10));
	ASSERT_EQ(0, recv_all(fd, back, 10));
	ASSERT_EQ(0, kill(self->pid, SIGTERM));
	ASSERT_EQ(0, backend_wait(self, 10000));
	close(fd);
	n = read_report(self->report, lines, 4);
	ASSERT_EQ(3, n);
	EXPECT_STREQ("eof", jstr(lines[0], "end"));
	EXPECT_EQ(3000, jint(lines[0], "bytes_received"));
	EXPECT_EQ(3000, jint(lines[0], "bytes_sent"));
	EXPECT_STREQ("open", jstr(lines[1], "end"));
	EXPECT_EQ(10, jint(lines[1], "bytes_received"));
	EXPECT_EQ(3010, jint(lines[2], "total_bytes"));
	EXPECT_EQ(2, jint(lines[2], "conns"));
	put_lines(lines, n);
}

TEST_HARNESS_MAIN
