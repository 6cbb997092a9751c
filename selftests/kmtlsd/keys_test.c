// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd with each kind of key a deployment uses: a whole PKI (root,
 * intermediate, server and client leaves) per algorithm, made by mkpki.sh,
 * then an mTLS handshake and data through the relay.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

FIXTURE(keys) {
	struct backend be;
	struct kmtlsd d;
	char dir[256];
};

FIXTURE_VARIANT(keys) {
	const char *curve;	/* KMTLS_PKI_CURVE for mkpki.sh */
};

FIXTURE_VARIANT_ADD(keys, ecdsa_p384) { .curve = "secp384r1" };
FIXTURE_VARIANT_ADD(keys, rsa2048) { .curve = "rsa2048" };
FIXTURE_VARIANT_ADD(keys, rsa4096) { .curve = "rsa4096" };
FIXTURE_VARIANT_ADD(keys, ed25519) { .curve = "ed25519" };

FIXTURE_SETUP(keys)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char cmd[600];

	signal(SIGPIPE, SIG_IGN);
	snprintf(self->dir, sizeof(self->dir), "%s/pki-%s", test_tmpdir(), variant->curve);
	snprintf(cmd, sizeof(cmd), "KMTLS_PKI_CURVE=%s selftests/lib/mkpki.sh %s",
		 variant->curve, self->dir);
	ASSERT_EQ(0, system(cmd));
	/* Each test runs in its own process: pki() now resolves here. */
	setenv("KMTLS_PKI", self->dir, 1);
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, NULL));
}

FIXTURE_TEARDOWN(keys)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	/* A clean exit: under ASan, also no leak and no error at shutdown. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

TEST_F_TIMEOUT(keys, handshake_and_relay, 120)
{
	struct tls_client_opts o = {
		.port = self->d.port, .cert = pki("client.pem"), .key = pki("client.key"),
	};
	char err[256], buf[16];
	struct tls_end e;

	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(10, wolfSSL_write(e.ssl, "0123456789", 10));
	ASSERT_EQ(10, wolfSSL_read(e.ssl, buf, 10));
	EXPECT_EQ(0, memcmp(buf, "0123456789", 10));
	EXPECT_NE(NULL, wolfSSL_get_peer_certificate(e.ssl));
	tls_end_close(&e);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "subject \"/CN=client", 5000));
}

TEST_HARNESS_MAIN
