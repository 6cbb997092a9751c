// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * TLS 1.3 records other than plain data, from the client, through kmtlsd's
 * relay. The client does its handshake with wolfSSL, then writes its
 * records itself (AES-128-GCM with its own traffic key), so it can send
 * what wolfSSL never does:
 *   empty record        a zero-length application data record, which
 *                       RFC 8446 5.4 allows (traffic analysis): on kTLS
 *                       splice() returns 0 for it as for the end, and the
 *                       first relay took it for the end of the stream
 *   long handshake      a post-handshake message longer than one read of
 *                       kmtlsd's (6000 bytes of 24s): read in parts, its
 *                       middle must not pass for a KeyUpdate (type 24)
 * Then a data record, whose echo through the backend must come back.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define REC_APPDATA 23
#define REC_HANDSHAKE 22
#define HS_NEW_SESSION_TICKET 4
#define LONG_MSG 6000

/* The client's write side, taken over from wolfSSL after the handshake. */
struct writer {
	unsigned char key[16], iv[12];
	uint64_t seq;
	int fd;
};

static int writer_init(struct writer *w, struct tls_end *e)
{
	const unsigned char *key = wolfSSL_GetClientWriteKey(e->ssl);
	const unsigned char *iv = wolfSSL_GetClientWriteIV(e->ssl);
	word64 seq = 0;

	if (!key || !iv || wolfSSL_GetSequenceNumber(e->ssl, &seq) < 0)
		return -1;
	memcpy(w->key, key, sizeof(w->key));
	memcpy(w->iv, iv, sizeof(w->iv));
	w->seq = seq;
	w->fd = e->fd;
	return 0;
}

/* One TLS 1.3 record of inner type @type with @len bytes of @data. */
static int writer_send(struct writer *w, unsigned char type, const void *data, size_t len)
{
	static unsigned char inner[16384 + 1], out[5 + sizeof(inner) + 16];
	size_t rlen = len + 1 + 16, off;
	unsigned char nonce[12];
	uint64_t be = htobe64(w->seq++);
	ssize_t n;
	Aes aes;
	int i, ret;

	if (len >= sizeof(inner))
		return -1;
	memcpy(inner, data, len);
	inner[len] = type;
	out[0] = REC_APPDATA;	/* the outer type of every protected record */
	out[1] = 3;
	out[2] = 3;
	out[3] = (unsigned char)(rlen >> 8);
	out[4] = (unsigned char)rlen;
	memcpy(nonce, w->iv, sizeof(nonce));
	for (i = 0; i < 8; i++)
		nonce[4 + i] ^= ((unsigned char *)&be)[i];
	ret = wc_AesInit(&aes, NULL, INVALID_DEVID) ||
	      wc_AesGcmSetKey(&aes, w->key, sizeof(w->key)) ||
	      wc_AesGcmEncrypt(&aes, out + 5, inner, (word32)len + 1, nonce, sizeof(nonce),
			       out + 5 + len + 1, 16, out, 5);
	wc_AesFree(&aes);
	if (ret)
		return -1;
	for (off = 0; off < 5 + rlen; off += (size_t)n) {
		n = send(w->fd, out + off, 5 + rlen - off, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
	}
	return 0;
}

FIXTURE(records) {
	struct backend be;
	struct kmtlsd d;
	struct tls_end c;
	struct writer w;
};

FIXTURE_SETUP(records)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct tls_client_opts o = {
		.cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = "TLS13-AES128-GCM-SHA256",
	};
	struct timeval tv = { .tv_sec = 20 };
	char err[256] = "", buf[8];

	signal(SIGPIPE, SIG_IGN);
	self->c.fd = -1;
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, NULL));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &self->c, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, setsockopt(self->c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	/* One round trip through wolfSSL first: the relay is running. */
	ASSERT_EQ(3, wolfSSL_write(self->c.ssl, "one", 3));
	ASSERT_EQ(3, wolfSSL_read(self->c.ssl, buf, 3));
	ASSERT_EQ(0, memcmp(buf, "one", 3));
	ASSERT_EQ(0, writer_init(&self->w, &self->c));
}

FIXTURE_TEARDOWN(records)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	explicit_bzero(&self->w, sizeof(self->w));
	tls_end_close(&self->c);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

/* "two" in a data record; its echo must come back. */
static void expect_echo(struct __test_metadata *_metadata, FIXTURE_DATA(records) *self)
{
	char buf[8] = "";
	int n;

	ASSERT_EQ(0, writer_send(&self->w, REC_APPDATA, "two", 3));
	n = wolfSSL_read(self->c.ssl, buf, 3);
	EXPECT_EQ(3, n) TH_LOG("no echo after the record: wolfSSL error %d",
			       wolfSSL_get_error(self->c.ssl, n));
	EXPECT_EQ(0, memcmp(buf, "two", 3));
}

TEST_F_TIMEOUT(records, empty_record_is_not_the_end, 60)
{
	ASSERT_EQ(0, writer_send(&self->w, REC_APPDATA, "", 0));
	expect_echo(_metadata, self);
}

TEST_F_TIMEOUT(records, long_handshake_message_is_skipped, 60)
{
	static unsigned char msg[4 + LONG_MSG];

	if (tls_stat("TlsCurrRxSw") < 0)
		SKIP(return, "kernel without kTLS: kmtlsd's wolfSSL record layer refuses "
		     "a NewSessionTicket from a client, as it should; this is kTLS's relay");
	msg[0] = HS_NEW_SESSION_TICKET;
	msg[1] = (unsigned char)(LONG_MSG >> 16);
	msg[2] = (unsigned char)(LONG_MSG >> 8);
	msg[3] = (unsigned char)LONG_MSG;
	memset(msg + 4, 24, LONG_MSG);	/* every byte looks like KeyUpdate */
	ASSERT_EQ(0, writer_send(&self->w, REC_HANDSHAKE, msg, sizeof(msg)));
	expect_echo(_metadata, self);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "KeyUpdate"));
}

TEST_HARNESS_MAIN
