// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libkmtls where it needs no module (host): a socket without kTLS is
 * refused by kmtls_recv() (what it read is not passed on as if it had
 * been decrypted) and by kmtls_close_notify() (nothing goes out, where
 * plain TCP would send the alert's two bytes as data); a completion that
 * says success with an identity the library cannot read is a failure
 * (-EBADMSG) with no identity. kservice_test covers the library on kTLS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../tools/lib/kmtls/kmtls.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

FIXTURE(plain) {
	int a, b;
};

FIXTURE_SETUP(plain)
{
	ASSERT_EQ(0, tcp_pair(&self->a, &self->b));
}

FIXTURE_TEARDOWN(plain)
{
	close(self->a);
	close(self->b);
}

TEST_F(plain, recv_refuses_plain_tcp)
{
	static char big[20000];
	char buf[64];

	ASSERT_EQ(6, send(self->b, "abcdef", 6, 0));
	/* Below 16 KiB (a peek first) and above (a read straight in). */
	errno = 0;
	EXPECT_EQ(-1, kmtls_recv(self->a, buf, sizeof(buf), 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	errno = 0;
	EXPECT_EQ(-1, kmtls_recv(self->a, big, sizeof(big), 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST_F(plain, close_notify_sends_nothing_on_plain_tcp)
{
	char buf[8];

	errno = 0;
	EXPECT_EQ(-1, kmtls_close_notify(self->a));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, recv(self->b, buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
}

TEST(unreadable_success_is_ebadmsg)
{
	struct kmtls_completion *c = calloc(1, sizeof(*c));
	struct kmtls_peer *p = malloc(sizeof(*p));

	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, p);
	c->id = 7;
	c->tls_version = 0x0304;
	c->flags = KMTLS_COMPLETION_F_PEER_CERT;
	memset(c->subject, 'a', sizeof(c->subject));	/* no NUL inside */
	memcpy(c->san_uri, "spiffe://x/y", 13);
	c->san_uri_count = 1;
	EXPECT_EQ(0, kmtls_parse_completion(c, p));
	EXPECT_EQ(-EBADMSG, p->status);
	EXPECT_EQ(7ULL, (unsigned long long)p->id);
	EXPECT_EQ(0, p->has_cert);
	EXPECT_STREQ("", p->subject);
	EXPECT_EQ(0U, p->n_san_uri);
	EXPECT_EQ(0, p->tls_version);
	EXPECT_STREQ("", p->fingerprint_hex);
	/* The same with a readable subject is the success it says. */
	strcpy(c->subject, "/CN=x");
	EXPECT_EQ(0, kmtls_parse_completion(c, p));
	EXPECT_EQ(0, p->status);
	EXPECT_STREQ("spiffe://x/y", p->san_uri[0]);
	/* A success without the peer's certificate is not mutual TLS. */
	c->flags = 0;
	EXPECT_EQ(0, kmtls_parse_completion(c, p));
	EXPECT_EQ(-EBADMSG, p->status);
	free(c);
	free(p);
	/* Its meaning says what to do. */
	EXPECT_NE(NULL, strstr(kmtls_strerror(-EBADMSG), "close the socket"));
	EXPECT_NE(NULL, strstr(kmtls_strerror(-EOPNOTSUPP), "has no kTLS"));
}

TEST_HARNESS_MAIN
