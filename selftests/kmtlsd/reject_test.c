// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bad clients against kmtlsd: each must be refused with the right reason in
 * the log and zero bytes (indeed zero connections) at the backend, which
 * counts everything it receives.
 *
 * A fresh kmtlsd per case: wolfSSL caches intermediates a client presented,
 * so a leaf-only client would otherwise pass after a good one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

enum how { TLS_CLIENT, RAW_BYTES, STALL };

FIXTURE(reject) {
	struct backend be;
	struct kmtlsd d;
};

FIXTURE_VARIANT(reject) {
	const char *cert, *key;		/* relative to the PKI; NULL: none */
	enum how how;
	const char *raw;		/* RAW_BYTES */
	const char *flag, *flag_val;	/* one extra kmtlsd flag */
	const char *crl;		/* default crl.pem */
	int tls12;
	int warm;			/* good clients first: caches are warm */
	const char *reason;		/* must appear in kmtlsd's log */
	const char *reason2;
};

FIXTURE_VARIANT_ADD(reject, no_client_cert) {
	.reason = "client sent no certificate",
};
FIXTURE_VARIANT_ADD(reject, no_client_cert_tls12) {
	.tls12 = 1, .flag = "--tls-min", .flag_val = "1.2",
	.reason = "client sent no certificate",
};
FIXTURE_VARIANT_ADD(reject, unknown_ca) {
	.cert = "bad/otherca.pem", .key = "bad/otherca.key",
	.reason = "unknown CA", .reason2 = "kmtls unknown root",
};
FIXTURE_VARIANT_ADD(reject, expired) {
	.cert = "bad/expired.pem", .key = "bad/expired.key",
	.reason = "certificate expired", .reason2 = "check NTP",
};
FIXTURE_VARIANT_ADD(reject, not_yet_valid) {
	.cert = "bad/notyet.pem", .key = "bad/notyet.key",
	.reason = "not yet valid", .reason2 = "check NTP",
};
FIXTURE_VARIANT_ADD(reject, revoked) {
	.cert = "bad/revoked.pem", .key = "bad/revoked.key",
	.reason = "revoked: serial",
};
FIXTURE_VARIANT_ADD(reject, revoked_der_crl) {
	.cert = "bad/revoked.pem", .key = "bad/revoked.key", .crl = "crl.der",
	.reason = "revoked: serial",
};
FIXTURE_VARIANT_ADD(reject, server_auth_only) {
	.cert = "bad/serveronly.pem", .key = "bad/serveronly.key",
	.reason = "wrong key usage",
};
FIXTURE_VARIANT_ADD(reject, self_signed) {
	.cert = "bad/selfsigned.pem", .key = "bad/selfsigned.key",
	.reason = "self-signed",
};
FIXTURE_VARIANT_ADD(reject, missing_intermediate) {
	.cert = "bad/nointer.pem", .key = "bad/nointer.key",
	.reason = "unknown CA", .reason2 = "intermediate",
};
FIXTURE_VARIANT_ADD(reject, policy_mismatch) {
	.cert = "bad/policy.pem", .key = "bad/policy.key",
	.flag = "--allow-uri", .flag_val = "spiffe://example.org/*",
	.reason = "not allowed by policy", .reason2 = "spiffe://other.org/intruder",
};
/*
 * The good client's certificate with a corrupted signature, after the good
 * one has been verified often enough to sit in the signature cache.
 */
FIXTURE_VARIANT_ADD(reject, forged_signature_after_cache_warm) {
	.cert = "bad/badsig.pem", .key = "bad/badsig.key", .warm = 4,
	.reason = "bad signature", .reason2 = "corrupted or forged",
};
FIXTURE_VARIANT_ADD(reject, garbage_not_client_hello) {
	.how = RAW_BYTES, .raw = "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	.reason = "not a TLS ClientHello",
};
FIXTURE_VARIANT_ADD(reject, stalled_mid_handshake) {
	.how = STALL, .flag = "--handshake-timeout", .flag_val = "1s",
	.reason = "handshake timeout",
};

FIXTURE_SETUP(reject)
{
	const char *be_args[] = { "--mode", "sink", NULL };
	const char *d_args[8] = { "--crl", pki(variant->crl ? variant->crl : "crl.pem") };
	int n = 2;

	signal(SIGPIPE, SIG_IGN);
	if (variant->flag) {
		d_args[n++] = variant->flag;
		d_args[n++] = variant->flag_val;
	}
	d_args[n] = NULL;
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
}

FIXTURE_TEARDOWN(reject)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	/* A clean exit: under ASan, also no leak and no error at shutdown. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

static int raw_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A TLS 1.3 client finishes before the server has judged its certificate,
 * so it may believe it is connected: it then tries to send, and must find
 * the connection closed.
 */
static void try_tls(struct __test_metadata *_metadata,
		    const FIXTURE_VARIANT(reject) *v, int port)
{
	struct tls_client_opts o = {
		.port = port, .tls12 = v->tls12,
		.cert = v->cert ? pki(v->cert) : NULL,
		.key = v->key ? pki(v->key) : NULL,
	};
	struct tls_end e;
	char err[256], buf[64];
	int ok;

	ok = tls_client_open(&o, &e, err, sizeof(err)) == 0;
	if (ok) {
		wolfSSL_write(e.ssl, "secret request", 14);
		EXPECT_GE(0, wolfSSL_read(e.ssl, buf, sizeof(buf)));
	}
	tls_end_close(&e);
}

static void warm_up(struct __test_metadata *_metadata, int n, int port)
{
	struct tls_client_opts o = {
		.port = port, .cert = pki("client.pem"), .key = pki("client.key"),
	};
	struct tls_end e;
	char err[256];
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
		ASSERT_EQ(4, wolfSSL_write(e.ssl, "warm", 4));
		/* close_notify, then wait for kmtlsd's: a clean close, no RST. */
		wolfSSL_shutdown(e.ssl);
		while (wolfSSL_read(e.ssl, err, sizeof(err)) > 0)
			;
		tls_end_close(&e);
	}
}

TEST_F_TIMEOUT(reject, refused_nothing_reaches_backend, 60)
{
	char partial[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	char buf[16];
	int fd;

	warm_up(_metadata, variant->warm, self->d.port);
	switch (variant->how) {
	case TLS_CLIENT:
		try_tls(_metadata, variant, self->d.port);
		break;
	case RAW_BYTES:
		fd = raw_connect(self->d.port);
		ASSERT_LE(0, fd);
		ASSERT_LT(0, (int)send(fd, variant->raw, strlen(variant->raw), 0));
		/* kmtlsd answers garbage by closing, never with plaintext. */
		EXPECT_GE(0, (int)recv(fd, buf, sizeof(buf), 0));
		close(fd);
		break;
	case STALL:
		/* The start of a ClientHello, then nothing. */
		fd = raw_connect(self->d.port);
		ASSERT_LE(0, fd);
		ASSERT_LT(0, (int)send(fd, partial, sizeof(partial) - 1, 0));
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, variant->reason, 5000));
		close(fd);
		break;
	}
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, variant->reason, 5000));
	if (variant->reason2)
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, variant->reason2, 1000));
	/* One warning per failed handshake, naming the client address. */
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "[warning]: listener default: client 127.0.0.1:"));
	backend_stop(&self->be);
	/* Only the warm-up clients, with their one message each, got through. */
	EXPECT_EQ(variant->warm, backend_conns(&self->be));
	EXPECT_EQ(variant->warm * 4L, backend_total_bytes(&self->be));
}

/* The daemon keeps serving good clients after bad ones. */
TEST(good_after_bad)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct tls_client_opts good = { .cert = pki("client.pem"), .key = pki("client.key") };
	struct tls_client_opts bad = { .cert = pki("bad/expired.pem"), .key = pki("bad/expired.key") };
	struct backend be;
	struct kmtlsd d;
	struct tls_end e;
	char err[256], buf[8];
	int i;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&d, be.port, NULL));
	good.port = bad.port = d.port;
	for (i = 0; i < 5; i++) {
		if (!tls_client_open(&bad, &e, err, sizeof(err))) {
			wolfSSL_write(e.ssl, "x", 1);
			wolfSSL_read(e.ssl, buf, 1);
		}
		tls_end_close(&e);
		ASSERT_EQ(0, tls_client_open(&good, &e, err, sizeof(err))) TH_LOG("%s", err);
		ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
		ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
		EXPECT_EQ(0, memcmp(buf, "ping", 4));
		tls_end_close(&e);
	}
	EXPECT_EQ(5, proc_log_count(&d.proc, "certificate expired"));
	EXPECT_EQ(0, kmtlsd_stop(&d));
	backend_stop(&be);
	EXPECT_EQ(5, backend_conns(&be));
}

TEST_HARNESS_MAIN
