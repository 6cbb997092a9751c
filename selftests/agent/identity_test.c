// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The client identity as the policy and the log lines see it, decoded from
 * the test PKI's client certificate, and the allow-list rules on it.
 *
 * The decoder takes bytes straight from the network, so it is also fed
 * every truncation of a real certificate, every single-byte corruption of
 * it and random noise: -1 or a clean identity, never a crash or a leak
 * (run under ASan with `make SANITIZE=1`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "../lib/tls_pair.h"
#include "../../agent/identity.h"
#include "../../agent/policy.h"
#include "kselftest_harness.h"

/* First certificate of a PEM file as DER; length or -1. */
static int read_der(const char *path, unsigned char *der, int max)
{
	static unsigned char pem[16384];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	return wc_CertPemToDer(pem, (int)n, der, max, CERT_TYPE);
}

/* What openssl says the fingerprint is, independent of our code. */
static int openssl_fingerprint(const char *path, char *hex, size_t len)
{
	char cmd[600];
	FILE *p;
	int ok;

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in '%s' -outform DER | sha256sum", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	ok = fscanf(p, "%64s", hex) == 1;
	pclose(p);
	return ok && strlen(hex) == 64 && len > 64 ? 0 : -1;
}

FIXTURE(client) {
	unsigned char der[4096];
	int len;
	struct kmtls_identity id;
};

FIXTURE_SETUP(client)
{
	self->len = read_der(pki("client.pem"), self->der, sizeof(self->der));
	ASSERT_GT(self->len, 0) TH_LOG("cannot read %s (run selftests/lib/mkpki.sh build/pki)",
				       pki("client.pem"));
	ASSERT_EQ(0, kmtls_identity_from_der(self->der, self->len, &self->id));
}

FIXTURE_TEARDOWN(client)
{
	kmtls_identity_free(&self->id);
}

TEST_F(client, names)
{
	EXPECT_STREQ("client", self->id.cn);
	ASSERT_EQ(1, self->id.uris.n);
	EXPECT_STREQ("spiffe://example.org/client", self->id.uris.v[0]);
	ASSERT_EQ(1, self->id.dns.n);
	EXPECT_STREQ("client.example.org", self->id.dns.v[0]);
	EXPECT_NE(NULL, strstr(self->id.subject, "/CN=client"));
	EXPECT_NE(NULL, strstr(self->id.subject, "/O=kmtls test"));
	EXPECT_NE(NULL, strstr(self->id.issuer, "/CN=kmtls test intermediate"));
}

TEST_F(client, serial_and_dates)
{
	char cmd[600], want[80] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -serial",
		 pki("client.pem"));
	p = popen(cmd, "r");
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1, fscanf(p, "serial=%79s", want));
	pclose(p);
	EXPECT_STREQ(want, self->id.serial);
	/* "2026-01-01T00:00:00Z" */
	EXPECT_EQ(20, (int)strlen(self->id.not_before));
	EXPECT_EQ('T', self->id.not_before[10]);
	EXPECT_EQ('Z', self->id.not_after[19]);
	EXPECT_LT(0, strcmp(self->id.not_after, self->id.not_before));
}

TEST_F(client, fingerprint)
{
	char want[80], got[65];

	ASSERT_EQ(0, openssl_fingerprint(pki("client.pem"), want, sizeof(want)));
	kmtls_identity_fingerprint_hex(&self->id, got, sizeof(got));
	EXPECT_STREQ(want, got);
	/* A short buffer gets a prefix, never an overflow. */
	kmtls_identity_fingerprint_hex(&self->id, got, 9);
	EXPECT_EQ(8, (int)strlen(got));
	EXPECT_EQ(0, strncmp(want, got, 8));
}

TEST_F(client, sans_line)
{
	char buf[128];

	kmtls_identity_sans(&self->id, buf, sizeof(buf));
	EXPECT_STREQ("URI:spiffe://example.org/client, DNS:client.example.org", buf);
	/* Too small for the DNS entry: whole entries only. */
	kmtls_identity_sans(&self->id, buf, 40);
	EXPECT_STREQ("URI:spiffe://example.org/client", buf);
}

TEST_F(client, truncated)
{
	struct kmtls_identity id;
	int n;

	for (n = 0; n < self->len; n++) {
		EXPECT_EQ(-1, kmtls_identity_from_der(self->der, n, &id))
			TH_LOG("prefix of %d bytes parsed", n);
		kmtls_identity_free(&id);
	}
}

/* Every byte of the certificate replaced by a few values: no crash. */
TEST_F(client, corrupted)
{
	static const unsigned char vals[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	unsigned char buf[4096];
	struct kmtls_identity id;
	int i, v, ok = 0;

	for (i = 0; i < self->len; i++) {
		for (v = 0; v < (int)sizeof(vals); v++) {
			memcpy(buf, self->der, self->len);
			buf[i] = vals[v];
			ok += !kmtls_identity_from_der(buf, self->len, &id);
			kmtls_identity_free(&id);
		}
	}
	TH_LOG("%d of %d corruptions still parse", ok, self->len * 5);
}

/*
 * A NUL inside a SAN would print and match as its prefix. The signature no
 * longer verifies, but the decoder runs before verification. What is not a
 * name is still there for the log.
 */
TEST_F(client, nul_in_san)
{
	unsigned char buf[4096];
	struct kmtls_identity id;
	unsigned char *p;

	memcpy(buf, self->der, self->len);
	p = memmem(buf, self->len, "client.example.org", 18);
	ASSERT_NE(NULL, p);
	p[6] = '\0';
	EXPECT_EQ(KMTLS_IDENTITY_BAD_NAMES, kmtls_identity_from_der(buf, self->len, &id));
	EXPECT_STREQ(self->id.subject, id.subject);
	EXPECT_STREQ(self->id.serial, id.serial);
	EXPECT_STREQ(self->id.not_after, id.not_after);
	EXPECT_STREQ("", id.cn);
	EXPECT_EQ(0, id.uris.n);
	EXPECT_EQ(0, id.dns.n);
	kmtls_identity_free(&id);
}

TEST(garbage)
{
	unsigned char buf[2048];
	struct kmtls_identity id;
	unsigned int seed = 1;
	int i, j;

	EXPECT_EQ(-1, kmtls_identity_from_der(NULL, 10, &id));
	EXPECT_EQ(-1, kmtls_identity_from_der(buf, 0, &id));
	EXPECT_EQ(-1, kmtls_identity_from_der(buf, -5, &id));
	for (i = 0; i < 2000; i++) {
		int n = 1 + rand_r(&seed) % sizeof(buf);

		for (j = 0; j < n; j++)
			buf[j] = rand_r(&seed);
		if (i & 1) {	/* an outer SEQUENCE, to get further in */
			buf[0] = 0x30;
			buf[1] = 0x82;
			buf[2] = (n - 4) >> 8;
			buf[3] = (n - 4) & 0xff;
		}
		EXPECT_EQ(-1, kmtls_identity_from_der(buf, n, &id));
		kmtls_identity_free(&id);
	}
}

TEST(escape)
{
	char buf[64];

	kmtls_identity_escape("CN=a\"b\\c\nd\x01", buf, sizeof(buf));
	EXPECT_STREQ("CN=a\\x22b\\x5cc\\x0ad\\x01", buf);
	kmtls_identity_escape("abc\n", buf, 6);	/* never half an escape */
	EXPECT_STREQ("abc", buf);
}

/* ---- policy ---------------------------------------------------------- */

FIXTURE(policy) {
	struct kmtls_identity id;
	struct kmtls_policy p;
};

FIXTURE_VARIANT(policy) {
	const char *uri[3], *dns[3], *cn[3];
	int allowed;
};

#define N(a) ((a)[0] ? ((a)[1] ? ((a)[2] ? 3 : 2) : 1) : 0)

FIXTURE_VARIANT_ADD(policy, empty) { .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, uri_glob) { .uri = { "spiffe://example.org/*" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, uri_star_crosses_slash) { .uri = { "spiffe://*" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, uri_exact) { .uri = { "spiffe://example.org/client" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, uri_other_domain) { .uri = { "spiffe://other.org/*" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, uri_prefix_only) { .uri = { "spiffe://example.org/cl" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, uri_case_matters) { .uri = { "SPIFFE://example.org/*" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, dns_exact) { .dns = { "client.example.org" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, dns_case_insensitive) { .dns = { "CLIENT.Example.ORG" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, dns_no_glob) { .dns = { "*.example.org" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, dns_parent) { .dns = { "example.org" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, cn_exact) { .cn = { "other", "client" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, cn_case_matters) { .cn = { "Client" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, cn_empty_entry) { .cn = { "" }, .allowed = 0 };
FIXTURE_VARIANT_ADD(policy, any_list_allows) {
	.uri = { "spiffe://other.org/*" }, .dns = { "nope.example.org" },
	.cn = { "client" }, .allowed = 1 };
FIXTURE_VARIANT_ADD(policy, no_list_matches) {
	.uri = { "spiffe://other.org/*", "https://example.org/*" },
	.dns = { "nope.example.org" }, .cn = { "server" }, .allowed = 0 };

FIXTURE_SETUP(policy)
{
	unsigned char der[4096];
	int len = read_der(pki("client.pem"), der, sizeof(der));

	ASSERT_GT(len, 0);
	ASSERT_EQ(0, kmtls_identity_from_der(der, len, &self->id));
	self->p.uri = (char **)variant->uri;
	self->p.n_uri = N(variant->uri);
	self->p.dns = (char **)variant->dns;
	self->p.n_dns = N(variant->dns);
	self->p.cn = (char **)variant->cn;
	self->p.n_cn = N(variant->cn);
}

FIXTURE_TEARDOWN(policy)
{
	kmtls_identity_free(&self->id);
}

TEST_F(policy, decision)
{
	EXPECT_EQ(variant->allowed, kmtls_policy_allows(&self->p, &self->id));
}

TEST_F(policy, no_identity)
{
	/* No decodable leaf: only an empty policy lets it through. */
	EXPECT_EQ(kmtls_policy_empty(&self->p),
		  kmtls_policy_allows(&self->p, NULL));
}

TEST(policy_null)
{
	EXPECT_EQ(1, kmtls_policy_allows(NULL, NULL));
	EXPECT_EQ(1, kmtls_policy_empty(NULL));
}

TEST_HARNESS_MAIN
