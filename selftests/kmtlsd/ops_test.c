// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd behaviour beyond one good connection: many handshakes in flight on
 * one worker, PROXY v2 towards the backend, a dead backend, key file
 * permissions, ktls = require, KeyUpdate, CRL reload on SIGHUP, and a
 * config file re-read on SIGHUP: a broken one changes nothing, a new listen
 * address waits for a restart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/stream.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#include <wolfssl/wolfcrypt/sha256.h>

#define IN_FLIGHT 1000

static int kernel_has_ktls(void)
{
	return tls_stat("TlsCurrTxSw") >= 0;
}

FIXTURE(ops) {
	struct backend be;
	struct kmtlsd d;
};

FIXTURE_SETUP(ops)
{
	struct rlimit rl;

	signal(SIGPIPE, SIG_IGN);
	/* The client side of 1000 connections needs the descriptors too. */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	self->be.proc.pid = 0;
	self->d.proc.pid = 0;
}

FIXTURE_TEARDOWN(ops)
{
	if (!__test_passed(_metadata) && self->d.proc.pid)
		kmtlsd_dump_log(&self->d);
	/* A clean exit: under ASan, also no leak and no error at shutdown. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

struct hs {
	WOLFSSL *ssl;
	int fd, done;
};

/* Drive every handshake non-blocking from one thread until all finish. */
static int run_handshakes(struct hs *h, int n, int timeout_ms)
{
	struct pollfd *p = calloc(n, sizeof(*p));
	int i, left = n, ret, err, waited = 0;

	while (left && waited < timeout_ms) {
		for (i = 0; i < n; i++) {
			p[i].fd = h[i].done ? -1 : h[i].fd;
			if (h[i].done)
				continue;
			ret = wolfSSL_connect(h[i].ssl);
			if (ret == WOLFSSL_SUCCESS) {
				h[i].done = 1;
				left--;
				p[i].fd = -1;
				continue;
			}
			err = wolfSSL_get_error(h[i].ssl, ret);
			if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
				h[i].done = -1;
				left--;
				p[i].fd = -1;
				continue;
			}
			p[i].events = err == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		}
		if (left && poll(p, n, 1000) == 0)
			waited += 1000;
	}
	free(p);
	return left;
}

TEST_F_TIMEOUT(ops, thousand_handshakes_in_flight_one_worker, 600)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	/* Generous: an emulated guest runs all 1000 through one slow core. */
	const char *d_args[] = { "--handshake-timeout", "300s", "--connect-timeout", "300s", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	struct hs *h = calloc(IN_FLIGHT, sizeof(*h));
	struct tls_end e;
	WOLFSSL_CTX *ctx;
	char err[256], buf[8];
	int i, ok = 0, echoed = 0;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	/* Borrow a context from one ordinary client for all of them. */
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ctx = wolfSSL_get_SSL_CTX(e.ssl);
	for (i = 0; i < IN_FLIGHT; i++) {
		struct tls_end raw;

		/* Connect all sockets first: every handshake is in flight at once. */
		ASSERT_EQ(0, tcp_connect_port(self->d.port, &raw.fd)) TH_LOG("socket %d", i);
		h[i].fd = raw.fd;
		fcntl(h[i].fd, F_SETFL, O_NONBLOCK);
		h[i].ssl = wolfSSL_new(ctx);
		ASSERT_NE(NULL, h[i].ssl);
		wolfSSL_set_fd(h[i].ssl, h[i].fd);
		wolfSSL_set_using_nonblock(h[i].ssl, 1);
	}
	EXPECT_EQ(0, run_handshakes(h, IN_FLIGHT, 240000));
	for (i = 0; i < IN_FLIGHT; i++)
		ok += h[i].done == 1;
	EXPECT_EQ(IN_FLIGHT, ok);
	/* Every one is relayed to the backend, not just handshaken. */
	for (i = 0; i < IN_FLIGHT; i++) {
		int n, tries;

		if (h[i].done != 1 || wolfSSL_write(h[i].ssl, "ping", 4) != 4)
			continue;
		for (tries = 0, n = -1; tries < 30000 && n <= 0; tries++) {
			n = wolfSSL_read(h[i].ssl, buf, 4);
			if (n <= 0 && wolfSSL_get_error(h[i].ssl, n) == WOLFSSL_ERROR_WANT_READ)
				usleep(1000);
			else
				break;
		}
		echoed += n == 4 && !memcmp(buf, "ping", 4);
	}
	EXPECT_EQ(IN_FLIGHT, echoed);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "handshake timeout"));
	for (i = 0; i < IN_FLIGHT; i++) {
		wolfSSL_free(h[i].ssl);
		close(h[i].fd);
	}
	free(h);
	tls_end_close(&e);
}

static int file_sha256(const char *pem, unsigned char out[32], int *der_len)
{
	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(pem, WOLFSSL_FILETYPE_PEM);
	const unsigned char *der;

	if (!x)
		return -1;
	der = wolfSSL_X509_get_der(x, der_len);
	wc_Sha256Hash(der, (word32)*der_len, out);
	wolfSSL_X509_free(x);
	return 0;
}

TEST_F(ops, proxy_v2_with_client_cert)
{
	const char *be_args[] = { "--mode", "echo", "--proxy", NULL };
	const char *d_args[] = { "--proxy-protocol", "v2-cert", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	struct sockaddr_in local;
	socklen_t llen = sizeof(local);
	unsigned char sha[32];
	char err[256], hex[65], buf[8];
	struct tls_end e;
	json_object *r;
	int der_len;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	getsockname(e.fd, (struct sockaddr *)&local, &llen);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	tls_end_close(&e);
	ASSERT_EQ(0, backend_wait_conns(&self->be, 1, 10000));
	r = backend_report_line(&self->be, 0);
	ASSERT_NE(NULL, r);
	EXPECT_STREQ("TCP4", jstr(r, "family"));
	EXPECT_STREQ("127.0.0.1", jstr(r, "src"));
	EXPECT_EQ((long)ntohs(local.sin_port), jint(r, "src_port"));
	EXPECT_EQ((long)self->d.port, jint(r, "dst_port"));
	EXPECT_STREQ("TLSv1.3", jstr(r, "ssl_version"));
	EXPECT_STREQ("client", jstr(r, "ssl_cn"));
	EXPECT_EQ(0, jint(r, "ssl_verify"));
	EXPECT_EQ(4, jint(r, "bytes_received"));
	ASSERT_EQ(0, file_sha256(pki("client.pem"), sha, &der_len));
	hex_encode(sha, 32, hex);
	EXPECT_EQ((long)der_len, jint(r, "cert_len"));
	EXPECT_STREQ(hex, jstr(r, "cert_sha256"));
	json_object_put(r);
	/* The header is kmtlsd's, not the client's: payload only in the counts. */
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "closed, 4 bytes up, 4 down", 3000));
}

TEST_F(ops, backend_down_closes_client_and_names_backend)
{
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	int dead = free_port();
	char err[256], buf[8], name[64];
	struct tls_end e;

	ASSERT_EQ(0, kmtlsd_start(&self->d, dead, NULL));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	/* Closed promptly: the read ends well before any timeout. */
	EXPECT_GE(0, wolfSSL_read(e.ssl, buf, sizeof(buf)));
	tls_end_close(&e);
	snprintf(name, sizeof(name), "backend unreachable: 127.0.0.1:%d", dead);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, name, 5000));
}

static int run_kmtlsd(const char *key, int allow, char *out, size_t outlen)
{
	char cmd[1024];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd),
		 "%s --check-config --listen 127.0.0.1:1 --backend 127.0.0.1:2 --cert %s --key %s --ca %s %s 2>&1",
		 out_path("bin/kmtlsd"), pki("server.pem"), key, pki("ca.pem"),
		 allow ? "--allow-insecure-key-perms" : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, outlen - 1, p);
	out[n] = 0;
	return WEXITSTATUS(pclose(p));
}

TEST(key_permissions)
{
	char key[300], out[2048], cmd[700];

	snprintf(key, sizeof(key), "%s/server.key", test_tmpdir());
	snprintf(cmd, sizeof(cmd), "cp %s %s", pki("server.key"), key);
	ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, chmod(key, 0644));
	EXPECT_NE(0, run_kmtlsd(key, 0, out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "chmod 600")) TH_LOG("%s", out);
	EXPECT_EQ(0, run_kmtlsd(key, 1, out, sizeof(out))) TH_LOG("%s", out);
	ASSERT_EQ(0, chmod(key, 0600));
	EXPECT_EQ(0, run_kmtlsd(key, 0, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "configuration OK"));
}

TEST_F(ops, ktls_require)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *d_args[] = { "--ktls", "require", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	char err[256], buf[8];
	struct tls_end e;
	int n;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	n = wolfSSL_write(e.ssl, "ping", 4) == 4 ? wolfSSL_read(e.ssl, buf, 4) : -1;
	tls_end_close(&e);
	if (kernel_has_ktls()) {
		EXPECT_EQ(4, n);
	} else {
		/* Refused, never served through the userspace record layer. */
		EXPECT_GE(0, n);
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "ktls = require but kTLS is unavailable", 5000));
		backend_stop(&self->be);
		EXPECT_EQ(0, backend_conns(&self->be));
	}
}

/*
 * Linux before 6.14 cannot rekey kTLS: a client KeyUpdate must end the
 * connection cleanly (never garbage). Without kTLS, wolfSSL follows it.
 */
TEST_F(ops, client_key_update)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	char err[256], buf[8];
	struct tls_end e;
	int n;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, NULL));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_update_keys(e.ssl));
	n = wolfSSL_write(e.ssl, "pong", 4) == 4 ? wolfSSL_read(e.ssl, buf, 4) : -1;
	tls_end_close(&e);
	if (kernel_has_ktls()) {
		EXPECT_GE(0, n);
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "KeyUpdate", 5000));
	} else {
		EXPECT_EQ(4, n);
		EXPECT_EQ(0, memcmp(buf, "pong", 4));
	}
}

/* A CRL replaced on disk takes effect on SIGHUP; a broken one is refused. */
TEST_F(ops, sighup_reloads_crl)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct tls_client_opts o = { .cert = pki("bad/revoked.pem"), .key = pki("bad/revoked.key") };
	char crl[300], cmd[700], err[256], buf[8];
	const char *d_args[] = { "--crl", crl, NULL };
	struct tls_end e;
	int n;

	snprintf(crl, sizeof(crl), "%s/crl.pem", test_tmpdir());
	snprintf(cmd, sizeof(cmd), "cp %s %s", pki("crl-empty.pem"), crl);
	ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	/* The issuer's earlier CRL does not list it: served. */
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(4, wolfSSL_write(e.ssl, "ping", 4) == 4 ? wolfSSL_read(e.ssl, buf, 4) : -1);
	tls_end_close(&e);
	/* A broken file: the reload fails, the old configuration keeps serving. */
	snprintf(cmd, sizeof(cmd), "echo garbage > %s", crl);
	ASSERT_EQ(0, system(cmd));
	proc_signal(&self->d.proc, SIGHUP);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "keeping the previous", 5000));
	/* The intermediate's CRL revokes it. */
	snprintf(cmd, sizeof(cmd), "cp %s %s", pki("crl.pem"), crl);
	ASSERT_EQ(0, system(cmd));
	proc_signal(&self->d.proc, SIGHUP);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded", 5000));
	n = -1;
	if (!tls_client_open(&o, &e, err, sizeof(err)))
		n = wolfSSL_write(e.ssl, "ping", 4) == 4 ? wolfSSL_read(e.ssl, buf, 4) : -1;
	tls_end_close(&e);
	EXPECT_GE(0, n);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "revoked: serial", 5000));
}

/* [listener ops] in front of @be_port with @extra lines; 0 or -1. */
static int write_conf(const char *path, int port, int be_port, const char *key,
		      const char *extra)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "[listener ops]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		"cert = %s\nkey = %s\nca = %s\n%s", port, be_port, pki("server.pem"),
		key, pki("ca.pem"), extra);
	return fclose(f);
}

/* 1 when a client with bad/policy's or client's certificate is served. */
static int served(int port, int intruder)
{
	struct tls_client_opts o = {
		.port = port,
		.cert = pki(intruder ? "bad/policy.pem" : "client.pem"),
		.key = pki(intruder ? "bad/policy.key" : "client.key"),
	};
	char err[256], buf[4];
	struct tls_end e;
	int ok = 0;

	if (!tls_client_open(&o, &e, err, sizeof(err)))
		ok = wolfSSL_write(e.ssl, "ping", 4) == 4 && wolfSSL_read(e.ssl, buf, 4) == 4;
	tls_end_close(&e);
	return ok;
}

/* Wait until @needle was logged @n times (0) or @ms passed (-1). */
static int wait_count(struct kmtlsd *d, const char *needle, int n, int ms)
{
	for (; ms > 0 && proc_log_count(&d->proc, needle) < n; ms -= 20)
		usleep(20000);
	return proc_log_count(&d->proc, needle) >= n ? 0 : -1;
}

#define ONLY_CLIENT "allow-insecure-key-perms = yes\nallow-uri = spiffe://example.org/*\n"
#define KEPT "; keeping the previous configuration (certificates, keys, CAs and CRLs are still re-read)"

/*
 * A config file that does not parse or validate changes nothing on SIGHUP:
 * the log names the file, line and key, and the policy in use stays. Each
 * broken file also lets bad/policy in, which must not take effect; the
 * certificates are still re-read. A good file then does let it in.
 */
TEST_F(ops, reload_broken_config_keeps_policy)
{
	static const struct { const char *extra, *says; } broken[] = {
		{ ONLY_CLIENT "allow-uri = spiffe://other.org/*\nnot a key line\n",
		  "ops.conf:10: syntax error" },
		{ ONLY_CLIENT "allow-uri = spiffe://other.org/*\nallow-url = spiffe://other.org/*\n",
		  "ops.conf:10: [listener ops] allow-url = \"spiffe://other.org/*\": unknown key" },
		{ ONLY_CLIENT "allow-uri = spiffe://other.org/*\ntls-min = 1.1\n",
		  "ops.conf:10: [listener ops] tls-min = \"1.1\": expected 1.2 or 1.3" },
		/* Validation: the key is 0644, allowed only by the line dropped. */
		{ "allow-uri = spiffe://example.org/*\nallow-uri = spiffe://other.org/*\n",
		  "ops.conf: [listener ops] private key" },
	};
	const char *be_args[] = { "--mode", "echo", NULL };
	char conf[300], key[300], cmd[700];
	const char *args[] = { "-c", conf, NULL };
	int port = free_port();
	size_t i;

	snprintf(conf, sizeof(conf), "%s/ops.conf", test_tmpdir());
	snprintf(key, sizeof(key), "%s/ops.key", test_tmpdir());
	snprintf(cmd, sizeof(cmd), "cp %s %s && chmod 644 %s", pki("server.key"), key, key);
	ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, write_conf(conf, port, self->be.port, key, ONLY_CLIENT));
	ASSERT_EQ(0, kmtlsd_run(&self->d, port, args));
	ASSERT_EQ(1, served(port, 0));
	ASSERT_EQ(0, served(port, 1));
	for (i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		ASSERT_EQ(0, write_conf(conf, port, self->be.port, key, broken[i].extra));
		ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
		ASSERT_EQ(0, wait_count(&self->d, "reloaded certificates", i + 1, 5000));
		EXPECT_EQ((int)i + 1, proc_log_count(&self->d.proc, KEPT));
		EXPECT_EQ(1, proc_log_count(&self->d.proc, broken[i].says))
			TH_LOG("no \"%s\"", broken[i].says);
		EXPECT_EQ(0, served(port, 1));
		EXPECT_EQ(1, served(port, 0));
	}
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "allow-uri = \""));
	/* The same widening in a good file takes effect. */
	ASSERT_EQ(0, write_conf(conf, port, self->be.port, key,
			       ONLY_CLIENT "allow-uri = spiffe://other.org/*\n"));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, wait_count(&self->d, "reloaded certificates", i + 1, 5000));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "reload: [listener ops] allow-uri = \"spiffe://example.org/*, spiffe://other.org/*\" (was \"spiffe://example.org/*\")"));
	EXPECT_EQ(1, served(port, 1));
}

/*
 * [listener ops] allowing the test client (and bad/policy with @widen),
 * [listener two] on @port2 with @two_extra.
 */
static int write_two(const char *conf, int port, int port2, int be_port, int widen,
		     const char *two_extra)
{
	char extra[900];

	snprintf(extra, sizeof(extra), "allow-uri = spiffe://example.org/*\n%s\n"
		 "[listener two]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		 "cert = %s\nkey = %s\nca = %s\n%s\n",
		 widen ? "allow-uri = spiffe://other.org/*" : "", port2, be_port,
		 pki("server.pem"), pki("server.key"), pki("ca.pem"), two_extra);
	return write_conf(conf, port, be_port, pki("server.key"), extra);
}

/*
 * A reload applies to every listener or to none: a file that widens one
 * listener's policy while another's new ciphers do not load leaves both
 * as they were, and says so; the same widening alone then applies.
 */
TEST_F(ops, reload_is_all_or_nothing)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char conf[300];
	const char *args[] = { "-c", conf, NULL };
	int port = free_port(), port2 = free_port();

	snprintf(conf, sizeof(conf), "%s/ops.conf", test_tmpdir());
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, write_two(conf, port, port2, self->be.port, 0, ""));
	ASSERT_EQ(0, kmtlsd_run(&self->d, port, args));
	ASSERT_EQ(1, served(port, 0));
	ASSERT_EQ(0, served(port, 1));
	ASSERT_EQ(1, served(port2, 0));

	ASSERT_EQ(0, write_two(conf, port, port2, self->be.port, 1, "ciphers = NO-SUCH-CIPHER"));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "(nothing of this reload applies)", 5000));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "reloaded certificates"));
	EXPECT_EQ(0, served(port, 1));
	EXPECT_EQ(1, served(port, 0));
	EXPECT_EQ(1, served(port2, 0));

	ASSERT_EQ(0, write_two(conf, port, port2, self->be.port, 1, ""));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	EXPECT_EQ(0, wait_count(&self->d, "reloaded certificates", 1, 5000));
	EXPECT_EQ(1, served(port, 1));
	EXPECT_EQ(1, served(port2, 0));
}

/*
 * A new listen address, and a new listener, need a restart: the log names
 * them and says so, the old address keeps serving, the new one is not
 * bound; the policy change in the same file applies.
 */
TEST_F(ops, reload_listen_change_needs_restart)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char conf[300], extra[600], want[700];
	const char *args[] = { "-c", conf, NULL };
	int port = free_port(), other = free_port(), third = free_port(), fd;

	snprintf(conf, sizeof(conf), "%s/ops.conf", test_tmpdir());
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, write_conf(conf, port, self->be.port, pki("server.key"),
			       "allow-uri = spiffe://example.org/*\nallow-uri = spiffe://other.org/*\n"));
	ASSERT_EQ(0, kmtlsd_run(&self->d, port, args));
	ASSERT_EQ(1, served(port, 1));
	snprintf(extra, sizeof(extra), "allow-uri = spiffe://example.org/*\n\n"
		 "[listener more]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		 "cert = %s\nkey = %s\nca = %s\n", third, self->be.port, pki("server.pem"),
		 pki("server.key"), pki("ca.pem"));
	ASSERT_EQ(0, write_conf(conf, other, self->be.port, pki("server.key"), extra));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 5000));
	snprintf(want, sizeof(want), "reload: [listener ops] listen = \"127.0.0.1:%d\" in %s, running with \"127.0.0.1:%d\": restart kmtlsd to apply it",
		 other, conf, port);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, want)) TH_LOG("no \"%s\"", want);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "reload: [listener more] is new in"));
	/* Only those two: --workers and --log-level are the command line's. */
	EXPECT_EQ(2, proc_log_count(&self->d.proc, "restart kmtlsd to apply it"));
	EXPECT_EQ(1, served(port, 0));
	EXPECT_EQ(0, served(port, 1));
	EXPECT_EQ(-ECONNREFUSED, tcp_connect_port(other, &fd));
	EXPECT_EQ(-ECONNREFUSED, tcp_connect_port(third, &fd));
}

TEST_F(ops, idle_timeout)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *d_args[] = { "--idle-timeout", "500ms", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	char err[256], buf[8];
	struct tls_end e;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	/* Silent past the timeout: kmtlsd closes, the read sees the end. */
	EXPECT_GE(0, wolfSSL_read(e.ssl, buf, 4));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "idle for 500 ms", 5000));
	tls_end_close(&e);
}

TEST_F(ops, connection_cap)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *d_args[] = { "--max-connections", "2", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	struct tls_end e[3];
	char err[256], buf[8];
	int i;

	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
	o.port = self->d.port;
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, tls_client_open(&o, &e[i], err, sizeof(err))) TH_LOG("%s", err);
		ASSERT_EQ(4, wolfSSL_write(e[i].ssl, "ping", 4));
		ASSERT_EQ(4, wolfSSL_read(e[i].ssl, buf, 4));
	}
	EXPECT_NE(0, tls_client_open(&o, &e[2], err, sizeof(err)));
	tls_end_close(&e[2]);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "max-connections (2) reached", 5000));
	/* The episode's end is said once nothing was refused for a second. */
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "below max-connections again; 1 connections closed", 5000));
	/* A second episode is said again. */
	EXPECT_NE(0, tls_client_open(&o, &e[2], err, sizeof(err)));
	tls_end_close(&e[2]);
	for (i = 0; i < 250 && proc_log_count(&self->d.proc, "max-connections (2) reached") < 2; i++)
		usleep(20000);
	EXPECT_EQ(2, proc_log_count(&self->d.proc, "max-connections (2) reached"));
	/* A slot freed is a slot usable again. */
	tls_end_close(&e[0]);
	usleep(200000);
	ASSERT_EQ(0, tls_client_open(&o, &e[0], err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(4, wolfSSL_write(e[0].ssl, "ping", 4) == 4 ? wolfSSL_read(e[0].ssl, buf, 4) : -1);
	tls_end_close(&e[0]);
	tls_end_close(&e[1]);
}

/*
 * A backend whose accept queue is full drops SYNs: connect() hangs, which
 * is what a black-holed backend looks like, on loopback.
 */
TEST_F(ops, backend_connect_timeout)
{
	const char *d_args[] = { "--connect-timeout", "700ms", NULL };
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key") };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l, fill[4], i, port;
	char err[256], buf[8], name[80];
	struct tls_end e;

	l = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 0));
	ASSERT_EQ(0, getsockname(l, (struct sockaddr *)&a, &alen));
	port = ntohs(a.sin_port);
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	ASSERT_EQ(0, kmtlsd_start(&self->d, port, d_args));
	o.port = self->d.port;
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_GE(0, wolfSSL_read(e.ssl, buf, sizeof(buf)));
	tls_end_close(&e);
	snprintf(name, sizeof(name), "backend unreachable: 127.0.0.1:%d: connect timed out", port);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, name, 5000));
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(l);
}

TEST_HARNESS_MAIN
