// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * watch-files = yes: a CRL replaced by rename takes effect without SIGHUP
 * (a client revoked by it is refused); a broken replacement keeps the
 * configuration in use and the log says why; files replaced one after the
 * other make one reload; a file nobody configured changes nothing; an edit
 * of the config file reloads it (a narrower policy applies).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define RELOADED "reloaded certificates"

FIXTURE(watch) {
	struct backend be;
	struct kmtlsd d;
	char dir[256];
	int port;
};

/* @from's bytes (or @text) into DIR/@name, by rename as deploy tools do. */
static int put(FIXTURE_DATA(watch) *self, const char *name, const char *from,
	       const char *text)
{
	char tmp[400], to[400], buf[4096];
	int in = -1, out, ok = 1;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", self->dir, name);
	snprintf(to, sizeof(to), "%s/%s", self->dir, name);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0)
		return -1;
	if (text) {
		ok = write(out, text, strlen(text)) == (ssize_t)strlen(text);
	} else {
		in = open(from, O_RDONLY);
		ok = in >= 0;
		while (ok && (n = read(in, buf, sizeof(buf))) > 0)
			ok = write(out, buf, n) == n;
		if (in >= 0)
			close(in);
	}
	close(out);
	return ok ? rename(tmp, to) : -1;
}

/* kmtlsd.conf in DIR with @extra lines in [listener web], by rename. */
static int put_conf(FIXTURE_DATA(watch) *self, const char *extra)
{
	char text[2048];

	snprintf(text, sizeof(text), "[kmtlsd]\nwatch-files = yes\n\n[listener web]\n"
		 "listen = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		 "cert = %s/server.pem\nkey = %s/server.key\nca = %s/ca.pem\n"
		 "crl = %s/clients.crl\n%s", self->port, self->be.port, self->dir, self->dir,
		 self->dir, self->dir, extra);
	return put(self, "kmtlsd.conf", NULL, text);
}

FIXTURE_SETUP(watch)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char conf[400], *args[] = { "-c", conf, NULL };

	signal(SIGPIPE, SIG_IGN);
	snprintf(self->dir, sizeof(self->dir), "%s/etc", test_tmpdir());
	ASSERT_EQ(0, mkdir(self->dir, 0700));
	ASSERT_EQ(0, put(self, "server.pem", pki("server.pem"), NULL));
	ASSERT_EQ(0, put(self, "server.key", pki("server.key"), NULL));
	ASSERT_EQ(0, put(self, "ca.pem", pki("ca.pem"), NULL));
	ASSERT_EQ(0, put(self, "clients.crl", pki("crl-empty.pem"), NULL));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	snprintf(conf, sizeof(conf), "%s/kmtlsd.conf", self->dir);
	self->port = free_port();
	ASSERT_EQ(0, put_conf(self, ""));
	ASSERT_EQ(0, kmtlsd_run(&self->d, self->port, (const char *const *)args));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "watch-files: watching", 1000));
}

FIXTURE_TEARDOWN(watch)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

/* 1 when @cert (in the test PKI) gets through and its bytes come back. */
static int ping(FIXTURE_DATA(watch) *self, const char *cert, const char *key)
{
	return client_ping(self->d.port, pki(cert), pki(key));
}

/* Wait for the @n-th line with @needle (0) or give up after @ms (-1). */
static int wait_count(FIXTURE_DATA(watch) *self, const char *needle, int n, int ms)
{
	for (; ms > 0 && proc_log_count(&self->d.proc, needle) < n; ms -= 20)
		usleep(20000);
	return proc_log_count(&self->d.proc, needle) >= n ? 0 : -1;
}

TEST_F(watch, crl_renamed_in_refuses_revoked)
{
	ASSERT_EQ(1, ping(self, "bad/revoked.pem", "bad/revoked.key"));
	ASSERT_EQ(0, put(self, "clients.crl", pki("crl.pem"), NULL));
	/* No signal: the change itself reloads, after a quiet second. */
	ASSERT_EQ(0, wait_count(self, RELOADED, 1, 5000));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "clients.crl changed"));
	EXPECT_EQ(0, ping(self, "bad/revoked.pem", "bad/revoked.key"));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "revoked: serial", 2000));
	EXPECT_EQ(1, ping(self, "client.pem", "client.key"));
}

TEST_F(watch, broken_file_keeps_configuration)
{
	ASSERT_EQ(0, put(self, "clients.crl", pki("crl.pem"), NULL));
	ASSERT_EQ(0, wait_count(self, RELOADED, 1, 5000));
	ASSERT_EQ(0, put(self, "clients.crl", NULL, "-----BEGIN X509 CRL-----\nnot one\n"));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "keeping the previous", 5000));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "clients.crl: cannot load it", 100));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, RELOADED));
	/* The CRL loaded before still applies; good clients still get in. */
	EXPECT_EQ(0, ping(self, "bad/revoked.pem", "bad/revoked.key"));
	EXPECT_EQ(1, ping(self, "client.pem", "client.key"));
	/* Fixed: reloads again. */
	ASSERT_EQ(0, put(self, "clients.crl", pki("crl-empty.pem"), NULL));
	ASSERT_EQ(0, wait_count(self, RELOADED, 2, 5000));
	EXPECT_EQ(1, ping(self, "bad/revoked.pem", "bad/revoked.key"));
}

TEST_F(watch, changes_together_reload_once)
{
	ASSERT_EQ(0, put(self, "server.pem", pki("server.pem"), NULL));
	usleep(300000);
	ASSERT_EQ(0, put(self, "server.key", pki("server.key"), NULL));
	usleep(300000);
	ASSERT_EQ(0, put(self, "ca.pem", pki("ca.pem"), NULL));
	ASSERT_EQ(0, wait_count(self, RELOADED, 1, 5000));
	usleep(1500000);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, RELOADED));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "changed: reloading"));
	EXPECT_EQ(1, ping(self, "client.pem", "client.key"));
}

TEST_F(watch, other_files_ignored)
{
	ASSERT_EQ(0, put(self, "notes.txt", NULL, "not a TLS file\n"));
	ASSERT_EQ(0, put(self, "server.pem.bak", pki("server.pem"), NULL));
	usleep(2000000);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, RELOADED));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "changed: reloading"));
}

TEST_F(watch, config_edit_reloads_policy)
{
	ASSERT_EQ(1, ping(self, "bad/policy.pem", "bad/policy.key"));
	ASSERT_EQ(0, put_conf(self, "allow-uri = spiffe://example.org/*\n"));
	ASSERT_EQ(0, wait_count(self, RELOADED, 1, 5000));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "kmtlsd.conf changed"));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "reload: [listener web] allow-uri = \"spiffe://example.org/*\" (was none)"));
	EXPECT_EQ(0, ping(self, "bad/policy.pem", "bad/policy.key"));
	EXPECT_EQ(1, ping(self, "client.pem", "client.key"));
}

TEST_HARNESS_MAIN
