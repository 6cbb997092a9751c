// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mTLS handshake with kmtls' wolfSSL build over loopback, then the record
 * layer moved into kTLS with the agent's install code, and 16 MiB each way
 * checked by SHA-256.
 *
 * Where the kernel has kTLS (/proc/net/tls_stat exists: the guest), the
 * install must succeed and tls_stat must count it. Where it has none (this
 * host), the install must report a fallback without touching the socket and
 * the same bytes must flow through wolfSSL's record layer.
 *
 * The mixed cases put kTLS on one end only, against wolfSSL in userspace on
 * the other: a key, nonce or sequence mistake made identically on both ends
 * would pass the symmetric case but not these.
 */
#include <string.h>
#include <unistd.h>

#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define BYTES (16u << 20)

FIXTURE(ktls) {
	WOLFSSL_CTX *cctx, *sctx;
	struct tls_end c, s;
};

FIXTURE_VARIANT(ktls) {
	const char *ciphers;
	int tls12;
	const char *expect_cipher;	/* kmtls_ktls_cipher_name() */
};

FIXTURE_VARIANT_ADD(ktls, tls13_aes128gcm) {
	.ciphers = "TLS13-AES128-GCM-SHA256",
	.expect_cipher = "AES-128-GCM",
};

FIXTURE_VARIANT_ADD(ktls, tls13_aes256gcm) {
	.ciphers = "TLS13-AES256-GCM-SHA384",
	.expect_cipher = "AES-256-GCM",
};

FIXTURE_VARIANT_ADD(ktls, tls13_chacha20) {
	.ciphers = "TLS13-CHACHA20-POLY1305-SHA256",
	.expect_cipher = "CHACHA20-POLY1305",
};

FIXTURE_VARIANT_ADD(ktls, tls12_ecdhe_ecdsa_aes128gcm) {
	.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
	.tls12 = 1,
	.expect_cipher = "AES-128-GCM",
};

static WOLFSSL_CTX *make_ctx(struct __test_metadata *_metadata,
			     const FIXTURE_VARIANT(ktls) *v, int server)
{
	struct kmtls_tls_conf conf = {
		.server = server,
		.cert = pki(server ? "server.pem" : "client.pem"),
		.key = pki(server ? "server.key" : "client.key"),
		.ca = pki("ca.pem"),
		.tls_min = v->tls12 ? 0x0303 : 0x0304,
		.tls_max = v->tls12 ? 0x0303 : 0,
		.ciphers = v->ciphers,
	};
	char err[256] = "";
	WOLFSSL_CTX *ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));

	if (!ctx)
		TH_LOG("%s", err);
	return ctx;
}

FIXTURE_SETUP(ktls)
{
	char err[256];
	int cfd, sfd, ret;

	ASSERT_EQ(0, kmtls_tls_global_init());
	self->cctx = make_ctx(_metadata, variant, 0);
	self->sctx = make_ctx(_metadata, variant, 1);
	ASSERT_NE(NULL, self->cctx);
	ASSERT_NE(NULL, self->sctx);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	memset(&self->c, 0, sizeof(self->c));
	memset(&self->s, 0, sizeof(self->s));
	self->c.fd = cfd;
	self->s.fd = sfd;
	ret = tls_handshake_pair(self->cctx, self->sctx, cfd, sfd, &self->c.ssl,
				 &self->s.ssl, err, sizeof(err));
	if (ret)
		TH_LOG("%s", err);
	ASSERT_EQ(0, ret);
	ASSERT_STREQ(variant->tls12 ? "TLSv1.2" : "TLSv1.3",
		     kmtls_tls_version_name(self->c.ssl));
	ASSERT_STREQ(variant->expect_cipher, kmtls_ktls_cipher_name(self->s.ssl));
	/* Mutual: the server saw and verified the client's certificate. */
	ASSERT_NE(NULL, wolfSSL_get_peer_certificate(self->s.ssl));
}

FIXTURE_TEARDOWN(ktls)
{
	free(self->c.pend.data);
	free(self->s.pend.data);
	if (self->c.ssl)
		wolfSSL_free(self->c.ssl);
	if (self->s.ssl)
		wolfSSL_free(self->s.ssl);
	wolfSSL_CTX_free(self->cctx);
	wolfSSL_CTX_free(self->sctx);
	close(self->c.fd);
	close(self->s.fd);
}

/*
 * Install on the requested ends and check the outcome against what this
 * kernel can do. Returns the number of ends now on kTLS.
 */
static int install(struct __test_metadata *_metadata, struct tls_end *e,
		   int want)
{
	int have_ktls = tls_stat("TlsCurrTxSw") >= 0;
	const char *why = "";
	enum kmtls_ktls_status st;

	if (!want)
		return 0;
	st = kmtls_ktls_install(e->ssl, e->fd, &e->pend, &why);
	if (have_ktls) {
		if (st != KMTLS_KTLS_ON)
			TH_LOG("kTLS present but install failed: %s", why);
		EXPECT_EQ((int)KMTLS_KTLS_ON, (int)st);
	} else {
		/* No kTLS here: a clean fallback, the socket still usable. */
		EXPECT_EQ((int)KMTLS_KTLS_FALLBACK, (int)st);
		EXPECT_NE(0, (int)strlen(why));
	}
	e->ktls = st == KMTLS_KTLS_ON;
	return e->ktls;
}

static void run(struct __test_metadata *_metadata, FIXTURE_DATA(ktls) *self,
		int ktls_client, int ktls_server)
{
	long tx0 = tls_stat("TlsTxSw"), rx0 = tls_stat("TlsRxSw");
	char err[256];
	int on, ret;

	on = install(_metadata, &self->c, ktls_client);
	on += install(_metadata, &self->s, ktls_server);
	if (tx0 >= 0) {
		/* The kernel counts each end it now carries. */
		EXPECT_EQ(tx0 + on, tls_stat("TlsTxSw"));
		EXPECT_EQ(rx0 + on, tls_stat("TlsRxSw"));
	}
	ret = exchange_and_verify(&self->c, &self->s, BYTES, err, sizeof(err));
	if (ret)
		TH_LOG("%s", err);
	ASSERT_EQ(0, ret);
	/*
	 * wolfSSL's server sends one NewSessionTicket after the handshake; a
	 * kTLS client must see it as a handshake record, not lose it or EIO.
	 */
	if (self->c.ktls && wolfSSL_version(self->c.ssl) == TLS1_3_VERSION)
		EXPECT_EQ(1, (int)self->c.ctrl_records);
	TH_LOG("%s: client %s, server %s, %u MiB each way", kmtls_ktls_cipher_name(self->s.ssl),
	       self->c.ktls ? "kTLS" : "wolfSSL", self->s.ktls ? "kTLS" : "wolfSSL", BYTES >> 20);
}

TEST_F_TIMEOUT(ktls, both_ends, 300)
{
	run(_metadata, self, 1, 1);
}

TEST_F_TIMEOUT(ktls, server_ktls_client_userspace, 300)
{
	run(_metadata, self, 0, 1);
}

TEST_F_TIMEOUT(ktls, client_ktls_server_userspace, 300)
{
	run(_metadata, self, 1, 0);
}

TEST_HARNESS_MAIN
