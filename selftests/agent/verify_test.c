// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Client-certificate verification on the server side, over real loopback
 * handshakes: every broken certificate of the test PKI, in TLS 1.3 and 1.2,
 * must fail the handshake, and kmtls_verify_reason() must tell the operator
 * why in words (the phrases below are what operators grep for). The wolfSSL
 * code the callback recorded is pinned as well, so a wolfSSL upgrade that
 * reports a case differently shows up here first.
 *
 * The server context gets CRLs the way tls_ctx.c should load them: through
 * an X509_LOOKUP, which keeps a CRL whose issuer (the intermediate) is not a
 * trust anchor and checks its signature once the chain supplies that CA.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "../lib/tls_pair.h"
#include "../../agent/verify.h"
#include "kselftest_harness.h"

/* A peer that gave up makes the alert we send raise SIGPIPE. */
static void __attribute__((constructor)) ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static char *allow_uri[] = { "spiffe://example.org/*" };
static const struct kmtls_policy test_policy = { .uri = allow_uri, .n_uri = 1 };

static int load_crls(WOLFSSL_CTX *ctx)
{
	WOLFSSL_X509_LOOKUP *lk;

	if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != WOLFSSL_SUCCESS)
		return -1;
	lk = wolfSSL_X509_STORE_add_lookup(wolfSSL_CTX_get_cert_store(ctx),
					   wolfSSL_X509_LOOKUP_file());
	if (!lk)
		return -1;
	/* CHECKALL: the intermediate needs the root's CRL as well. */
	if (wolfSSL_X509_LOOKUP_load_file(lk, pki("crl.pem"),
					  WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_X509_LOOKUP_load_file(lk, pki("crl-root.pem"),
					  WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		return -1;
	return 0;
}

static WOLFSSL_CTX *server_ctx(int tls12, const char *cert, const char *key)
{
	struct kmtls_tls_conf conf = {
		.server = 1,
		.cert = pki(cert),
		.key = pki(key),
		.ca = pki("ca.pem"),
		.tls_min = tls12 ? 0x0303 : 0x0304,
		.tls_max = tls12 ? 0x0303 : 0,
	};
	char err[256];
	WOLFSSL_CTX *ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));

	if (!ctx) {
		fprintf(stderr, "# server ctx: %s\n", err);
		return NULL;
	}
	kmtls_verify_setup(ctx, 1);
	if (load_crls(ctx)) {
		fprintf(stderr, "# cannot load %s / %s\n", pki("crl.pem"), pki("crl-root.pem"));
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A client with only the CA bundle: it answers a CertificateRequest empty. */
static WOLFSSL_CTX *anonymous_client_ctx(int tls12)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(tls12 ? wolfTLSv1_2_client_method() :
					   wolfTLSv1_3_client_method());

	if (!ctx)
		return NULL;
	if (wolfSSL_CTX_load_verify_locations(ctx, pki("ca.pem"), NULL) != WOLFSSL_SUCCESS) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
	return ctx;
}

static WOLFSSL_CTX *client_ctx(int tls12, const char *cert)
{
	char pem[512], key[512], err[256];
	struct kmtls_tls_conf conf = {
		.cert = pem,
		.key = key,
		.ca = pki("ca.pem"),
		.tls_min = tls12 ? 0x0303 : 0x0304,
		.tls_max = tls12 ? 0x0303 : 0,
	};
	WOLFSSL_CTX *ctx;

	if (!cert)
		return anonymous_client_ctx(tls12);
	snprintf(pem, sizeof(pem), "%s", pki(cert));
	snprintf(key, sizeof(key), "%.*s.key", (int)strlen(pem) - 4, pem);
	ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	if (!ctx)
		fprintf(stderr, "# client ctx %s: %s\n", cert, err);
	return ctx;
}

FIXTURE(verify) {
	WOLFSSL_CTX *sctx, *cctx;
	WOLFSSL *c, *s;
	int cfd, sfd;
	struct kmtls_verify v;
};

FIXTURE_VARIANT(verify) {
	const char *cert;	/* client certificate, NULL: none */
	int tls12;
	int code;		/* the failure: recorded by the callback, else
				 * wolfSSL's; 0: success */
	const char *expect[3];	/* phrases the server's reason must contain */
};

/* One client certificate, both protocol versions. */
#define CASE(name, file, err, ...)					\
	FIXTURE_VARIANT_ADD(verify, name##_tls13) {			\
		.cert = file, .code = err, .expect = { __VA_ARGS__ }	\
	};								\
	FIXTURE_VARIANT_ADD(verify, name##_tls12) {			\
		.cert = file, .tls12 = 1, .code = err,			\
		.expect = { __VA_ARGS__ }				\
	}

CASE(good, "client.pem", 0, NULL);
CASE(expired, "bad/expired.pem", ASN_AFTER_DATE_E,
     "certificate expired: valid 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z",
     "local clock", "(check NTP)");
CASE(notyet, "bad/notyet.pem", ASN_BEFORE_DATE_E,
     "certificate not yet valid: valid 2099-01-01T00:00:00Z", "(check NTP)");
CASE(revoked, "bad/revoked.pem", CRL_CERT_REVOKED,
     "revoked: serial ", "by issuer \"/CN=kmtls test intermediate");
CASE(serveronly, "bad/serveronly.pem", EXTKEYUSE_AUTH_E,
     "wrong key usage: certificate is not for client authentication",
     "lacks clientAuth");
CASE(selfsigned, "bad/selfsigned.pem", ASN_NO_SIGNER_E,
     "unknown CA", "selfsigned-client\" is self-signed");
CASE(otherca, "bad/otherca.pem", ASN_NO_SIGNER_E,
     "unknown CA: issuer \"/O=kmtls test/CN=kmtls unknown root\" is not in the CA bundle");
CASE(nointer, "bad/nointer.pem", ASN_NO_SIGNER_E,
     "unknown CA: issuer \"/CN=kmtls test intermediate",
     "did the client send its intermediate certificate?");
CASE(policy, "bad/policy.pem", KMTLS_VERIFY_POLICY,
     "not allowed by policy: subject \"/CN=intruder",
     "SANs URI:spiffe://other.org/intruder, DNS:intruder.other.org");
/* Its URI SAN is an allowed name, a NUL, then more: no name to match. */
CASE(nulsan, "bad/nulsan.pem", KMTLS_VERIFY_POLICY,
     "not allowed by policy: certificate \"/CN=nulsan-client/O=kmtls test\" has a name that cannot be matched",
     "(a NUL byte inside its CN or a SAN");
CASE(none, NULL, NO_PEER_CERT, "client sent no certificate");

FIXTURE_SETUP(verify)
{
	self->sctx = server_ctx(variant->tls12, "server.pem", "server.key");
	self->cctx = client_ctx(variant->tls12, variant->cert);
	ASSERT_NE(NULL, self->sctx);
	ASSERT_NE(NULL, self->cctx);
	ASSERT_EQ(0, tcp_pair(&self->cfd, &self->sfd));
	self->v.policy = &test_policy;
	/*
	 * tls_handshake_pair() makes the WOLFSSL itself, so bind through the
	 * context; the daemon binds per connection (see the bind test).
	 */
	wolfSSL_CTX_SetCertCbCtx(self->sctx, &self->v);
}

FIXTURE_TEARDOWN(verify)
{
	wolfSSL_free(self->c);
	wolfSSL_free(self->s);
	close(self->cfd);
	close(self->sfd);
	wolfSSL_CTX_free(self->cctx);
	wolfSSL_CTX_free(self->sctx);
	kmtls_verify_reset(&self->v);
}

/* The errno the kernel service reports for a certificate verdict. */
static int kernel_errno(int code)
{
	switch (code) {
	case ASN_AFTER_DATE_E:
	case ASN_BEFORE_DATE_E:
		return EKEYEXPIRED;
	case CRL_CERT_REVOKED:
		return EKEYREVOKED;
	case KMTLS_VERIFY_POLICY:
		return EACCES;
	default:	/* unknown CA, key usage, no certificate */
		return EKEYREJECTED;
	}
}

/* The notAfter of the test PKI's intermediate, which client.pem carries. */
static void intermediate_not_after(char *out, size_t len)
{
	unsigned char pem[8192], der[4096];
	FILE *f = fopen(pki("intermediate.pem"), "r");
	int n = f ? (int)fread(pem, 1, sizeof(pem), f) : 0;

	if (f)
		fclose(f);
	n = n > 0 ? wc_CertPemToDer(pem, n, der, sizeof(der), CERT_TYPE) : -1;
	kmtls_cert_not_after(der, n, out, len);
}

static void check_leaf(struct __test_metadata *_metadata,
		       const struct kmtls_verify *v)
{
	char want[32];

	ASSERT_TRUE(v->have_leaf);
	EXPECT_STREQ("client", v->leaf.cn);
	ASSERT_EQ(1, v->leaf.uris.n);
	EXPECT_STREQ("spiffe://example.org/client", v->leaf.uris.v[0]);
	/* The chain's CA dates, for tickets: the intermediate's notAfter. */
	intermediate_not_after(want, sizeof(want));
	EXPECT_EQ(20, (int)strlen(want)) TH_LOG("intermediate.pem: %s", want);
	EXPECT_STREQ(want, v->chain_not_after);
}

TEST_F(verify, handshake)
{
	char err[256], why[512];
	int ret, i, serr;

	ret = tls_handshake_pair(self->cctx, self->sctx, self->cfd, self->sfd,
				 &self->c, &self->s, err, sizeof(err));
	serr = wolfSSL_get_error(self->s, WOLFSSL_FATAL_ERROR);
	kmtls_verify_reason(self->s, serr, &self->v, why, sizeof(why));
	TH_LOG("%s: callback %d, wolfSSL %d: %s", variant->cert ? variant->cert : "none",
	       self->v.err, serr, ret ? why : "ok");
	if (!variant->code) {
		ASSERT_EQ(0, ret) TH_LOG("%s", err);
		EXPECT_EQ(0, self->v.err);
		check_leaf(_metadata, &self->v);
		return;
	}
	ASSERT_NE(0, ret) TH_LOG("handshake with %s succeeded", variant->cert);
	EXPECT_EQ(variant->code, self->v.err ? self->v.err : serr);
	EXPECT_EQ(kernel_errno(variant->code), kmtls_verify_errno(serr, &self->v));
	for (i = 0; i < 3 && variant->expect[i]; i++)
		EXPECT_NE(NULL, strstr(why, variant->expect[i]))
			TH_LOG("\"%s\" not in \"%s\"", variant->expect[i], why);
	/* A TLS 1.2 client hears it in an alert; a 1.3 client has finished. */
	if (variant->tls12) {
		kmtls_verify_reason(self->c, wolfSSL_get_error(self->c, WOLFSSL_FATAL_ERROR),
				    NULL, why, sizeof(why));
		TH_LOG("client: %s", why);
		EXPECT_NE(NULL, strstr(why, "peer sent alert: "));
	}
}

/* ---- per-connection binding and failures that are not certificates ---- */

struct accept_arg {
	WOLFSSL *ssl;
	int ret;
};

static void *accept_thread(void *p)
{
	struct accept_arg *a = p;

	a->ret = wolfSSL_accept(a->ssl);
	return NULL;
}

/* The two ends of a test connection and their contexts. */
static void pair_free(WOLFSSL *c, WOLFSSL *s, int cfd, int sfd, WOLFSSL_CTX *cctx,
		      WOLFSSL_CTX *sctx)
{
	wolfSSL_free(c);
	wolfSSL_free(s);
	close(cfd);
	close(sfd);
	wolfSSL_CTX_free(cctx);
	wolfSSL_CTX_free(sctx);
}

/* Handshake with a per-connection binding, as the daemon does it. */
static int bound_handshake(WOLFSSL_CTX *cctx, WOLFSSL_CTX *sctx, int cfd, int sfd,
			   struct kmtls_verify *v, WOLFSSL **c, WOLFSSL **s)
{
	struct accept_arg a;
	pthread_t t;
	int ret;

	*c = wolfSSL_new(cctx);
	*s = wolfSSL_new(sctx);
	if (!*c || !*s)
		return -1;
	wolfSSL_set_fd(*c, cfd);
	wolfSSL_set_fd(*s, sfd);
	kmtls_verify_bind(*s, v);
	a.ssl = *s;
	pthread_create(&t, NULL, accept_thread, &a);
	ret = wolfSSL_connect(*c);
	if (ret != WOLFSSL_SUCCESS)
		shutdown(cfd, SHUT_RDWR);
	pthread_join(t, NULL);
	return ret == WOLFSSL_SUCCESS && a.ret == WOLFSSL_SUCCESS ? 0 : -1;
}

TEST(bind_per_connection)
{
	struct kmtls_verify ctx_v = { 0 }, conn_v = { 0 };
	WOLFSSL_CTX *sctx = server_ctx(0, "server.pem", "server.key");
	WOLFSSL_CTX *cctx = client_ctx(0, "bad/policy.pem");
	WOLFSSL *c = NULL, *s = NULL;
	int cfd, sfd;

	ASSERT_NE(NULL, sctx);
	ASSERT_NE(NULL, cctx);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	wolfSSL_CTX_SetCertCbCtx(sctx, &ctx_v);	/* must be overridden */
	conn_v.policy = &test_policy;
	EXPECT_NE(0, bound_handshake(cctx, sctx, cfd, sfd, &conn_v, &c, &s));
	EXPECT_EQ(KMTLS_VERIFY_POLICY, conn_v.err);
	EXPECT_TRUE(conn_v.have_leaf);
	EXPECT_EQ(0, ctx_v.err);
	EXPECT_FALSE(ctx_v.have_leaf);
	kmtls_verify_reset(&conn_v);
	EXPECT_FALSE(conn_v.have_leaf);
	EXPECT_EQ(&test_policy, conn_v.policy);
	pair_free(c, s, cfd, sfd, cctx, sctx);
}

/* Client side: a server certificate made for clients only. */
TEST(client_side_key_usage)
{
	WOLFSSL_CTX *sctx = server_ctx(0, "client.pem", "client.key");
	WOLFSSL_CTX *cctx = client_ctx(0, "client.pem");
	struct kmtls_verify v = { 0 };
	WOLFSSL *c = NULL, *s = NULL;
	char why[512];
	int cfd, sfd;

	ASSERT_NE(NULL, sctx);
	ASSERT_NE(NULL, cctx);
	kmtls_verify_setup(cctx, 0);
	wolfSSL_CTX_SetCertCbCtx(cctx, &v);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	ASSERT_NE(0, bound_handshake(cctx, sctx, cfd, sfd, &(struct kmtls_verify){ 0 }, &c, &s));
	kmtls_verify_reason(c, wolfSSL_get_error(c, WOLFSSL_FATAL_ERROR), &v, why, sizeof(why));
	EXPECT_EQ(EXTKEYUSE_AUTH_E, v.err);
	EXPECT_NE(NULL, strstr(why, "not for server authentication")) TH_LOG("%s", why);
	kmtls_verify_reset(&v);
	pair_free(c, s, cfd, sfd, cctx, sctx);
}

/* The server alone against raw bytes from a "client". */
FIXTURE(raw) {
	WOLFSSL_CTX *sctx;
	WOLFSSL *s;
	int cfd, sfd;
	struct kmtls_verify v;
};

FIXTURE_VARIANT(raw) {
	const char *send;	/* NULL: close at once */
	int reset;		/* close with an RST instead of a FIN */
	const char *expect;
	int kerr;		/* what the kernel service reports */
};

FIXTURE_VARIANT_ADD(raw, http) {
	.send = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
	.expect = "not a TLS ClientHello (garbage from client)",
	.kerr = EPROTO,
};

FIXTURE_VARIANT_ADD(raw, closed) {
	.expect = "peer closed the connection during the handshake",
	.kerr = ECONNRESET,
};

FIXTURE_VARIANT_ADD(raw, reset) {
	.reset = 1,
	.expect = "peer reset the connection during the handshake",
	.kerr = ECONNRESET,
};

FIXTURE_SETUP(raw)
{
	self->sctx = server_ctx(0, "server.pem", "server.key");
	ASSERT_NE(NULL, self->sctx);
	ASSERT_EQ(0, tcp_pair(&self->cfd, &self->sfd));
	self->s = wolfSSL_new(self->sctx);
	ASSERT_NE(NULL, self->s);
	wolfSSL_set_fd(self->s, self->sfd);
	kmtls_verify_bind(self->s, &self->v);
}

FIXTURE_TEARDOWN(raw)
{
	wolfSSL_free(self->s);
	if (self->cfd >= 0)
		close(self->cfd);
	close(self->sfd);
	wolfSSL_CTX_free(self->sctx);
}

TEST_F(raw, reason)
{
	char why[512];
	int ret;

	if (variant->send)
		ASSERT_EQ((ssize_t)strlen(variant->send),
			  write(self->cfd, variant->send, strlen(variant->send)));
	if (variant->reset) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(self->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(self->cfd);
		self->cfd = -1;
	} else {
		shutdown(self->cfd, SHUT_WR);
	}
	ret = wolfSSL_accept(self->s);
	ASSERT_NE(WOLFSSL_SUCCESS, ret);
	kmtls_verify_reason(self->s, wolfSSL_get_error(self->s, ret), &self->v,
			    why, sizeof(why));
	TH_LOG("wolfSSL %d: %s", wolfSSL_get_error(self->s, ret), why);
	EXPECT_NE(NULL, strstr(why, variant->expect)) TH_LOG("%s", why);
	EXPECT_EQ(variant->kerr, kmtls_verify_errno(wolfSSL_get_error(self->s, ret), &self->v));
}

/*
 * CRL checking on, the root's CRL not loaded: the intermediate has no CRL
 * to be checked against. wolfSSL reports a stale or badly signed CRL the
 * same way, so the reason names all three.
 */
TEST(crl_missing)
{
	struct kmtls_tls_conf conf = {
		.server = 1, .cert = pki("server.pem"), .key = pki("server.key"),
		.ca = pki("ca.pem"), .tls_min = 0x0304,
	};
	struct kmtls_verify v = { .policy = &test_policy };
	WOLFSSL_CTX *sctx, *cctx;
	WOLFSSL *c = NULL, *s = NULL;
	WOLFSSL_X509_LOOKUP *lk;
	char err[256], why[512];
	int cfd, sfd;

	sctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	ASSERT_NE(NULL, sctx) TH_LOG("%s", err);
	kmtls_verify_setup(sctx, 1);
	ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_CTX_EnableCRL(sctx, WOLFSSL_CRL_CHECKALL));
	lk = wolfSSL_X509_STORE_add_lookup(wolfSSL_CTX_get_cert_store(sctx),
					   wolfSSL_X509_LOOKUP_file());
	ASSERT_NE(NULL, lk);
	ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_X509_LOOKUP_load_file(lk, pki("crl.pem"),
								 WOLFSSL_FILETYPE_PEM));
	cctx = client_ctx(0, "client.pem");
	ASSERT_NE(NULL, cctx);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	EXPECT_EQ(-1, bound_handshake(cctx, sctx, cfd, sfd, &v, &c, &s));
	kmtls_verify_reason(s, wolfSSL_get_error(s, WOLFSSL_FATAL_ERROR), &v, why, sizeof(why));
	TH_LOG("%s", why);
	EXPECT_NE(NULL, strstr(why, "no usable CRL for issuer \"/O=kmtls test/CN=kmtls test root"));
	EXPECT_NE(NULL, strstr(why, "none loaded, or past its nextUpdate, or its signature does not verify"));
	pair_free(c, s, cfd, sfd, cctx, sctx);
	kmtls_verify_reset(&v);
}

/* A TLS 1.2-only client against a TLS 1.3-only server. */
TEST(version_mismatch)
{
	WOLFSSL_CTX *sctx = server_ctx(0, "server.pem", "server.key");
	WOLFSSL_CTX *cctx = client_ctx(1, "client.pem");
	struct kmtls_verify v = { 0 };
	WOLFSSL *c = NULL, *s = NULL;
	char why[512];
	int cfd, sfd, serr;

	ASSERT_NE(NULL, sctx);
	ASSERT_NE(NULL, cctx);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	ASSERT_NE(0, bound_handshake(cctx, sctx, cfd, sfd, &v, &c, &s));
	serr = wolfSSL_get_error(s, WOLFSSL_FATAL_ERROR);
	kmtls_verify_reason(s, serr, &v, why, sizeof(why));
	TH_LOG("wolfSSL %d: %s", serr, why);
	EXPECT_NE(NULL, strstr(why, "no shared protocol version")) TH_LOG("%s", why);
	EXPECT_EQ(EPROTO, kmtls_verify_errno(serr, &v));
	pair_free(c, s, cfd, sfd, cctx, sctx);
}

TEST_HARNESS_MAIN
