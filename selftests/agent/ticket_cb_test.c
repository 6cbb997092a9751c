// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's session-ticket callback (agent/tickets.c) behind wolfSSL's ticket
 * decoder, with a real TLS 1.3 client offering the ticket as its PSK:
 *
 * - a ticket whose length field claims more bytes than the client sent is
 *   refused by the (patched, scripts/wolfssl-ticket-len.patch) decoder before
 *   the callback decrypts anything: unpatched, the callback got the claimed
 *   length and AES-GCM wrote past the identity's heap block;
 * - the intact ticket does reach the callback, with its true length;
 * - a ticket the callback opens but refuses leaves no plaintext behind.
 */
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../agent/tickets.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

/* name[16] iv[16] enc_len[2] enc[enc_len] mac[32]: wolfSSL's ExternalTicket. */
#define TK_FIXED	(16 + 16 + 2 + 32)

/* What the callback saw, and how long the ticket the client sent was. */
static struct {
	int opens, overruns;
	int sent_len;		/* bytes of the ticket the client sends */
	int max_in_len;
} seen;

/*
 * In front of kmtls_ticket_cb: an open asking for more than the client
 * sent is counted and refused here, so this process never corrupts its
 * own heap (the unpatched library would hand it over).
 */
static int watch_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
		    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
		    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
		    unsigned char *ticket, int in_len, int *out_len, void *ctx)
{
	if (!enc) {
		seen.opens++;
		if (in_len > seen.max_in_len)
			seen.max_in_len = in_len;
		if (seen.sent_len && in_len + TK_FIXED > seen.sent_len) {
			seen.overruns++;
			return WOLFSSL_TICKET_RET_REJECT;
		}
	}
	return kmtls_ticket_cb(ssl, name, iv, mac, enc, ticket, in_len, out_len, ctx);
}

FIXTURE(tcb) {
	struct kmtls_ticket_keys tk;
	WOLFSSL_CTX *sctx, *cctx;
	WOLFSSL_SESSION *sess;
	unsigned char ticket[4096];
	unsigned int ticket_len;
};

static WOLFSSL_CTX *ctx_new(int server)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() :
						    wolfTLSv1_3_client_method());

	if (!ctx ||
	    wolfSSL_CTX_use_certificate_chain_file(ctx, pki(server ? "server.pem" : "client.pem")) != 1 ||
	    wolfSSL_CTX_use_PrivateKey_file(ctx, pki(server ? "server.key" : "client.key"),
					    WOLFSSL_FILETYPE_PEM) != 1 ||
	    wolfSSL_CTX_load_verify_locations(ctx, pki("ca.pem"), NULL) != 1)
		return NULL;
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			       NULL);
	return ctx;
}

/*
 * One connection: the client offers @ticket (when given) with the session,
 * the server writes a byte so the client reads its NewSessionTicket. 0 or
 * -1; the client's session (with the server's new ticket) in *out.
 */
static int connect_once(FIXTURE_DATA(tcb) *self, const unsigned char *ticket,
			unsigned int len, WOLFSSL_SESSION **out, char *err, size_t errlen)
{
	WOLFSSL *c = NULL, *s = NULL;
	int cfd, sfd, ret = -1;
	char b;

	if (tcp_pair(&cfd, &sfd)) {
		snprintf(err, errlen, "tcp_pair failed");
		return -1;
	}
	c = wolfSSL_new(self->cctx);
	s = wolfSSL_new(self->sctx);
	if (!c || !s) {
		snprintf(err, errlen, "wolfSSL_new failed");
		goto out;
	}
	wolfSSL_set_fd(c, cfd);
	wolfSSL_set_fd(s, sfd);
	if (ticket) {
		wolfSSL_set_session(c, self->sess);
		wolfSSL_set_SessionTicket(c, ticket, len);
	}
	if (tls_handshake_objs(c, s, err, errlen))
		goto out;
	if (wolfSSL_write(s, "x", 1) != 1 || wolfSSL_read(c, &b, 1) != 1) {
		snprintf(err, errlen, "no byte after the handshake");
		goto out;
	}
	if (out)
		*out = wolfSSL_get1_session(c);
	ret = wolfSSL_session_reused(c) ? 1 : 0;
out:
	wolfSSL_free(c);
	wolfSSL_free(s);
	close(cfd);
	close(sfd);
	return ret;
}

FIXTURE_SETUP(tcb)
{
	char err[256];

	memset(&seen, 0, sizeof(seen));
	memset(&self->tk, 0, sizeof(self->tk));
	pthread_rwlock_init(&self->tk.lock, NULL);
	ASSERT_EQ(0, kmtls_ticket_keys_random(&self->tk, err, sizeof(err))) TH_LOG("%s", err);
	self->sctx = ctx_new(1);
	self->cctx = ctx_new(0);
	ASSERT_NE(NULL, self->sctx);
	ASSERT_NE(NULL, self->cctx);
	kmtls_ticket_keys_install(self->sctx, &self->tk);
	wolfSSL_CTX_set_TicketEncCb(self->sctx, watch_cb);

	/* A full handshake, for a real ticket from kmtls_ticket_cb. */
	ASSERT_EQ(0, connect_once(self, NULL, 0, &self->sess, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_NE(NULL, self->sess);
	self->ticket_len = sizeof(self->ticket);
	{
		WOLFSSL *c = wolfSSL_new(self->cctx);

		ASSERT_NE(NULL, c);
		wolfSSL_set_session(c, self->sess);
		ASSERT_EQ(WOLFSSL_SUCCESS,
			  wolfSSL_get_SessionTicket(c, self->ticket, &self->ticket_len));
		wolfSSL_free(c);
	}
	ASSERT_GT(self->ticket_len, (unsigned int)TK_FIXED + 32);
	ASSERT_EQ((unsigned int)((self->ticket[32] << 8) | self->ticket[33]),
		  self->ticket_len - (unsigned int)TK_FIXED);
	ASSERT_EQ(0, seen.opens);
}

FIXTURE_TEARDOWN(tcb)
{
	wolfSSL_SESSION_free(self->sess);
	wolfSSL_CTX_free(self->sctx);
	wolfSSL_CTX_free(self->cctx);
	pthread_rwlock_destroy(&self->tk.lock);
	explicit_bzero(self->tk.k, sizeof(self->tk.k));
}

/* The intact ticket reaches the callback with exactly its own length. */
TEST_F(tcb, intact_ticket_reaches_callback)
{
	char err[256];

	seen.sent_len = (int)self->ticket_len;
	ASSERT_LE(0, connect_once(self, self->ticket, self->ticket_len, NULL, err, sizeof(err)))
		TH_LOG("%s", err);
	/* wolfSSL tries the identity once per cipher suite it may resume. */
	EXPECT_LE(1, seen.opens);
	EXPECT_EQ((int)self->ticket_len - TK_FIXED, seen.max_in_len);
	EXPECT_EQ(0, seen.overruns);
}

/*
 * The ticket's length field raised past the bytes that follow it (by less
 * than wolfSSL's cap): refused before the callback, and the client falls
 * back to a full handshake.
 */
TEST_F(tcb, overlong_length_never_reaches_callback)
{
	unsigned int enc = self->ticket_len - TK_FIXED + 512;
	char err[256];
	int ret;

	self->ticket[32] = (unsigned char)(enc >> 8);
	self->ticket[33] = (unsigned char)enc;
	seen.sent_len = (int)self->ticket_len;
	ret = connect_once(self, self->ticket, self->ticket_len, NULL, err, sizeof(err));
	ASSERT_EQ(0, ret) TH_LOG("a full handshake expected: %s", ret < 0 ? err : "resumed");
	EXPECT_EQ(0, seen.overruns) TH_LOG("the callback was asked to open %d bytes of a %u-byte ticket",
					    seen.max_in_len, self->ticket_len);
	EXPECT_EQ(0, seen.opens);
}

/*
 * A ticket the callback opens but refuses (no verification record here,
 * so no client certificate to re-check) leaves ciphertext-length zeros,
 * not the session's plaintext, in wolfSSL's buffer.
 */
TEST_F(tcb, refused_ticket_plaintext_wiped)
{
	unsigned char name[WOLFSSL_TICKET_NAME_SZ], iv[WOLFSSL_TICKET_IV_SZ];
	unsigned char mac[WOLFSSL_TICKET_MAC_SZ], t[256 + WOLFSSL_TICKET_EXTRA_PADDING_SZ];
	static const char secret[] = "RESUMPTION-MASTER-SECRET-0123456789";
	int out = 0, i, left = 0;

	memset(t, 0, sizeof(t));
	memcpy(t, secret, sizeof(secret));
	ASSERT_EQ(WOLFSSL_TICKET_RET_OK,
		  kmtls_ticket_cb(NULL, name, iv, mac, 1, t, 200, &out, &self->tk));
	ASSERT_NE(0, memcmp(t, secret, sizeof(secret)));
	EXPECT_EQ(WOLFSSL_TICKET_RET_REJECT,
		  kmtls_ticket_cb(NULL, name, iv, mac, 0, t, out, &out, &self->tk));
	for (i = 0; i < 200; i++)
		left += t[i] != 0;
	EXPECT_EQ(0, left) TH_LOG("refused ticket still holds \"%.35s\"", (char *)t);
}

TEST_HARNESS_MAIN
