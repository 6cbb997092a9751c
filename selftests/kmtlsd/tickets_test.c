// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Session tickets sealed with keys from a file: a client resumes on another
 * kmtlsd that shares the file; a ticket survives one key rotation and not
 * two; without shared keys there is no resumption across instances, and
 * kmtlsd's own key is rotated on a timer.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

FIXTURE(tk) {
	struct backend be;
	struct kmtlsd a, b;
	WOLFSSL_CTX *ctx;
	char keys[256];
	unsigned char key[3][80];
};

static int write_keys(const char *path, const unsigned char (*k)[80], int n)
{
	char tmp[300];
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	ok = write(fd, k, 80 * n) == 80 * n;
	close(fd);
	return ok ? rename(tmp, path) : -1;
}

static int start(FIXTURE_DATA(tk) *self, struct kmtlsd *d, int shared)
{
	const char *args[] = { "--ticket-keys", self->keys, NULL };

	return kmtlsd_start(d, self->be.port, shared ? args : NULL);
}

FIXTURE_SETUP(tk)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct kmtls_tls_conf conf = {
		.cert = pki("client.pem"), .key = pki("client.key"), .ca = pki("ca.pem"),
		.tls_min = 0x0304,
	};
	char err[256];
	FILE *r = fopen("/dev/urandom", "r");

	signal(SIGPIPE, SIG_IGN);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(1, (int)fread(self->key, sizeof(self->key), 1, r));
	fclose(r);
	snprintf(self->keys, sizeof(self->keys), "%s/ticket.keys", test_tmpdir());
	ASSERT_EQ(0, write_keys(self->keys, self->key, 1));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtls_tls_global_init());
	self->ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	ASSERT_NE(NULL, self->ctx) TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(tk)
{
	if (!__test_passed(_metadata)) {
		kmtlsd_dump_log(&self->a);
		kmtlsd_dump_log(&self->b);
	}
	EXPECT_EQ(0, kmtlsd_stop(&self->a));
	EXPECT_EQ(0, kmtlsd_stop(&self->b));
	backend_stop(&self->be);
	wolfSSL_CTX_free(self->ctx);
}

TEST_F(tk, resume_on_another_instance)
{
	WOLFSSL_SESSION *s = NULL;

	ASSERT_EQ(0, start(self, &self->a, 1));
	ASSERT_EQ(0, start(self, &self->b, 1));
	ASSERT_EQ(0, client_visit(self->ctx, self->a.port, NULL, &s));
	ASSERT_NE(NULL, s);
	EXPECT_EQ(1, client_visit(self->ctx, self->b.port, s, NULL));
	EXPECT_EQ(1, client_visit(self->ctx, self->a.port, s, NULL));
	wolfSSL_SESSION_free(s);
}

TEST_F(tk, no_shared_keys_no_resumption_across)
{
	WOLFSSL_SESSION *s = NULL;

	ASSERT_EQ(0, start(self, &self->a, 0));
	ASSERT_EQ(0, start(self, &self->b, 0));
	ASSERT_EQ(0, client_visit(self->ctx, self->a.port, NULL, &s));
	EXPECT_EQ(0, client_visit(self->ctx, self->b.port, s, NULL));
	/* The instance that issued it still takes it. */
	EXPECT_EQ(1, client_visit(self->ctx, self->a.port, s, NULL));
	wolfSSL_SESSION_free(s);
}

TEST_F(tk, rotation_one_kept_two_dropped)
{
	unsigned char rotated[2][80];
	WOLFSSL_SESSION *s = NULL;
	int i;

	ASSERT_EQ(0, start(self, &self->a, 1));
	ASSERT_EQ(0, client_visit(self->ctx, self->a.port, NULL, &s));
	/* New key first, the old one kept: old tickets still open. */
	memcpy(rotated[0], self->key[1], 80);
	memcpy(rotated[1], self->key[0], 80);
	ASSERT_EQ(0, write_keys(self->keys, rotated, 2));
	proc_signal(&self->a.proc, SIGHUP);
	ASSERT_EQ(0, kmtlsd_wait_log(&self->a, "reloaded", 5000));
	EXPECT_EQ(1, client_visit(self->ctx, self->a.port, s, NULL));
	/* A second rotation drops the key the ticket was sealed with. */
	memcpy(rotated[0], self->key[2], 80);
	memcpy(rotated[1], self->key[1], 80);
	ASSERT_EQ(0, write_keys(self->keys, rotated, 2));
	proc_signal(&self->a.proc, SIGHUP);
	for (i = 0; i < 250 && proc_log_count(&self->a.proc, "reloaded") < 2; i++)
		usleep(20000);
	ASSERT_EQ(2, proc_log_count(&self->a.proc, "reloaded"));
	EXPECT_EQ(0, client_visit(self->ctx, self->a.port, s, NULL));
	wolfSSL_SESSION_free(s);
}

/*
 * Without a key file the key is kmtlsd's own and is replaced on a timer
 * too (every second here): a ticket resumes at once, not two rotations
 * later. Keys from a file are the operator's: the timer leaves them be.
 */
TEST_F(tk, own_key_rotates_on_a_timer)
{
	WOLFSSL_SESSION *s = NULL, *f = NULL;

	ASSERT_EQ(0, setenv("KMTLS_TICKET_ROTATE_S", "1", 1));
	ASSERT_EQ(0, start(self, &self->a, 0));
	ASSERT_EQ(0, start(self, &self->b, 1));
	ASSERT_EQ(0, client_visit(self->ctx, self->a.port, NULL, &s));
	ASSERT_EQ(0, client_visit(self->ctx, self->b.port, NULL, &f));
	EXPECT_EQ(1, client_visit(self->ctx, self->a.port, s, NULL));
	usleep(2300 * 1000);
	EXPECT_EQ(0, client_visit(self->ctx, self->a.port, s, NULL));
	EXPECT_EQ(1, client_visit(self->ctx, self->b.port, f, NULL));
	wolfSSL_SESSION_free(s);
	wolfSSL_SESSION_free(f);
}

TEST_F(tk, bad_key_files_refused)
{
	ASSERT_EQ(0, chmod(self->keys, 0644));
	EXPECT_NE(0, start(self, &self->a, 1));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "chmod 600", 2000));
	kmtlsd_stop(&self->a);
	ASSERT_EQ(0, chmod(self->keys, 0600));
	ASSERT_EQ(0, truncate(self->keys, 79));
	EXPECT_NE(0, start(self, &self->a, 1));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "keys of 80 bytes", 2000));
	kmtlsd_stop(&self->a);
	memset(&self->a, 0, sizeof(self->a));
}

TEST_HARNESS_MAIN
