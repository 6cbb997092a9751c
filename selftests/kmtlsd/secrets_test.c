// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Ticket keys leave no copy behind: the parser wipes the bytes it read, on
 * success and on error; a reload that drops keys wipes them; a key file
 * others may read is refused before it is read. Private keys go through
 * tls_ctx.c's own reader (a handshake with the loaded key shows it works).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/tickets.h"
#include "../../agent/tls_ctx.h"
#include "../lib/proc.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		if (*b++)
			return 0;
	return 1;
}

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + 1);
}

TEST(parse_wipes_input)
{
	unsigned char buf[3 * KMTLS_TICKET_KEY_LEN], copy[sizeof(buf)];
	struct kmtls_ticket_keys k;
	char err[256];

	fill(buf, sizeof(buf), 3);
	memcpy(copy, buf, sizeof(buf));
	ASSERT_EQ(0, kmtls_ticket_keys_parse(buf, sizeof(buf), "t", &k, err, sizeof(err)));
	EXPECT_EQ(3, k.n);
	EXPECT_EQ(0, memcmp(&k.k[0], copy, KMTLS_TICKET_KEY_LEN));
	EXPECT_EQ(0, memcmp(&k.k[2], copy + 2 * KMTLS_TICKET_KEY_LEN, KMTLS_TICKET_KEY_LEN));
	EXPECT_TRUE(all_zero(buf, sizeof(buf)));
	EXPECT_TRUE(all_zero(&k.k[3], sizeof(k.k) - 3 * sizeof(k.k[0])));
}

TEST(parse_error_wipes_input)
{
	unsigned char buf[KMTLS_TICKET_KEY_LEN + 5];
	struct kmtls_ticket_keys k;
	char err[256];

	fill(buf, sizeof(buf), 9);
	EXPECT_EQ(-1, kmtls_ticket_keys_parse(buf, sizeof(buf), "t", &k, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "found 85 bytes")) TH_LOG("%s", err);
	EXPECT_TRUE(all_zero(buf, sizeof(buf)));
	EXPECT_EQ(0, k.n);
}

TEST(update_wipes_dropped_keys)
{
	struct kmtls_ticket_keys tk = { .n = 3 }, fresh = { .n = 1 };

	pthread_rwlock_init(&tk.lock, NULL);
	fill((unsigned char *)tk.k, sizeof(tk.k[0]) * 3, 1);
	fill((unsigned char *)fresh.k, sizeof(fresh.k[0]), 77);
	/* Whatever lies beyond fresh.n must not be copied in. */
	fill((unsigned char *)&fresh.k[1], sizeof(fresh.k[1]), 55);
	kmtls_ticket_keys_update(&tk, &fresh);
	EXPECT_EQ(1, tk.n);
	EXPECT_EQ(0, memcmp(&tk.k[0], &fresh.k[0], sizeof(tk.k[0])));
	EXPECT_TRUE(all_zero(&tk.k[1], sizeof(tk.k) - sizeof(tk.k[0])));
	pthread_rwlock_destroy(&tk.lock);
}

TEST(readable_key_file_refused)
{
	unsigned char key[KMTLS_TICKET_KEY_LEN];
	struct kmtls_ticket_keys k;
	char path[300], err[512];
	int fd;

	snprintf(path, sizeof(path), "%s/ticket.keys", test_tmpdir());
	fill(key, sizeof(key), 5);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(key), write(fd, key, sizeof(key)));
	close(fd);
	ASSERT_EQ(0, kmtls_ticket_keys_read(path, 0, &k, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(1, k.n);
	EXPECT_EQ(0, memcmp(&k.k[0], key, sizeof(key)));
	ASSERT_EQ(0, chmod(path, 0640));
	EXPECT_EQ(-1, kmtls_ticket_keys_read(path, 0, &k, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "chmod 600")) TH_LOG("%s", err);
	EXPECT_EQ(0, kmtls_ticket_keys_read(path, 1, &k, err, sizeof(err)));
	unlink(path);
}

/* The key goes through tls_ctx.c's reader: the pair must still handshake. */
TEST(private_key_loads)
{
	struct kmtls_tls_conf sc = {
		.server = 1, .cert = pki("server.pem"), .key = pki("server.key"),
		.ca = pki("ca.pem"),
	};
	struct kmtls_tls_conf cc = {
		.cert = pki("client.pem"), .key = pki("client.key"), .ca = pki("ca.pem"),
	};
	WOLFSSL_CTX *sctx, *cctx;
	WOLFSSL *c = NULL, *s = NULL;
	char err[256];
	int cfd, sfd;

	ASSERT_EQ(0, kmtls_tls_global_init());
	sctx = kmtls_tls_ctx_new(&sc, err, sizeof(err));
	ASSERT_NE(NULL, sctx) TH_LOG("%s", err);
	cctx = kmtls_tls_ctx_new(&cc, err, sizeof(err));
	ASSERT_NE(NULL, cctx) TH_LOG("%s", err);
	ASSERT_EQ(0, tcp_pair(&cfd, &sfd));
	EXPECT_EQ(0, tls_handshake_pair(cctx, sctx, cfd, sfd, &c, &s, err, sizeof(err)))
		TH_LOG("%s", err);
	wolfSSL_free(c);
	wolfSSL_free(s);
	close(cfd);
	close(sfd);
	/* A key that is not PEM is refused with the file named. */
	sc.key = pki("server.pem");
	EXPECT_EQ(NULL, kmtls_tls_ctx_new(&sc, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "private key")) TH_LOG("%s", err);
	wolfSSL_CTX_free(sctx);
	wolfSSL_CTX_free(cctx);
}

TEST_HARNESS_MAIN
