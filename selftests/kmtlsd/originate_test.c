// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Originate mode end to end: a plain client -> kmtlsd (originate) -> mTLS
 * -> kmtlsd (terminate) -> the test backend. Data checked by SHA-256 both
 * ways, the second connection resumed on both sides, the server's name
 * verified, and a unix-socket listener on the plain side. A reload that
 * narrows the policy for the server is not skipped by resuming the session
 * saved before it. What a server sends first, read before the relay
 * starts, reaches the client and is counted. A client that resets while
 * the server has not answered the ClientHello ends the attempt at once;
 * one on a unix socket that writes and closes at once is still served.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/proc.h"
#include "../lib/stream.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define BYTES (8u << 20)
#define BYTES_STR "8388608"

FIXTURE(orig) {
	struct backend be;
	struct kmtlsd term, orig;
	char listen[128], backend[64];
};

FIXTURE_VARIANT(orig) {
	const char *server_name;
	int unix_listen;
};

FIXTURE_VARIANT_ADD(orig, tcp) { .server_name = "localhost" };
FIXTURE_VARIANT_ADD(orig, unix_socket) { .server_name = "localhost", .unix_listen = 1 };

/* kmtlsd in originate mode: plain on @listen, mTLS to @backend as the test client. */
static int run_orig(struct kmtlsd *d, const char *listen, const char *backend,
		    const char *server_name)
{
	const char *args[] = {
		"--mode", "originate", "--listen", listen, "--backend", backend,
		"--server-name", server_name, "--cert", pki("client.pem"),
		"--key", pki("client.key"), "--ca", pki("ca.pem"), NULL,
	};

	return kmtlsd_run(d, 0, args);
}

FIXTURE_SETUP(orig)
{
	const char *be_args[] = { "--mode", "duplex", "--bytes", BYTES_STR, NULL };
	char tlisten[64];

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->term, self->be.port, NULL));
	snprintf(tlisten, sizeof(tlisten), "127.0.0.1:%d", self->term.port);
	if (variant->unix_listen)
		snprintf(self->listen, sizeof(self->listen), "unix:%s/orig.sock", test_tmpdir());
	else
		snprintf(self->listen, sizeof(self->listen), "127.0.0.1:%d", free_port());
	ASSERT_EQ(0, run_orig(&self->orig, self->listen, tlisten, variant->server_name));
}

/* The chain's end: logs when the test failed, both kmtlsd stopped cleanly. */
static void chain_stop(struct __test_metadata *_metadata, struct kmtlsd *orig,
		       struct kmtlsd *term, struct backend *be)
{
	if (!__test_passed(_metadata)) {
		kmtlsd_dump_log(orig);
		kmtlsd_dump_log(term);
	}
	EXPECT_EQ(0, kmtlsd_stop(orig));
	EXPECT_EQ(0, kmtlsd_stop(term));
	backend_stop(be);
}

FIXTURE_TEARDOWN(orig)
{
	chain_stop(_metadata, &self->orig, &self->term, &self->be);
}

static int plain_connect(const char *listen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in in = { .sin_family = AF_INET };
	int fd;

	if (!strncmp(listen, "unix:", 5)) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", listen + 5);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
			return -1;
		return fd;
	}
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in.sin_port = htons(atoi(strchr(listen, ':') + 1));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)))
		return -1;
	return fd;
}

/* Plain bytes both ways through the chain; 0 when both hashes match. */
static int exchange(struct __test_metadata *_metadata, FIXTURE_DATA(orig) *self,
		    int conn_no)
{
	struct tls_end plain = { .fd = plain_connect(self->listen), .ktls = 1 };
	struct xfer x = { .e = &plain, .send_bytes = BYTES, .recv_bytes = BYTES,
			  .seed = STREAM_SEED_C2S };
	unsigned char want[32];
	char hex[65];
	json_object *r;
	int ok;

	/* A plain socket through the kTLS code path of xfer: no records to skip. */
	if (plain.fd < 0)
		return -1;
	end_nonblock(&plain);
	xfer_run(&x);
	if (x.err[0])
		TH_LOG("conn %d: %s", conn_no, x.err);
	stream_sha256(STREAM_SEED_S2C, BYTES, want);
	shutdown(plain.fd, SHUT_WR);
	if (backend_wait_conns(&self->be, conn_no, 20000))
		return -1;
	r = backend_report_line(&self->be, conn_no - 1);
	hex_encode(x.sent_sha, 32, hex);
	ok = !x.err[0] && !memcmp(want, x.got_sha, 32) && r &&
	     jint(r, "bytes_received") == (long)BYTES && !strcmp(jstr(r, "sha256_received") ?: "", hex);
	json_object_put(r);
	close(plain.fd);
	return ok ? 0 : -1;
}

TEST_F_TIMEOUT(orig, chain_data_and_resumption, 300)
{
	long cur0 = tls_stat("TlsCurrTxSw");

	ASSERT_EQ(0, exchange(_metadata, self, 1));
	ASSERT_EQ(0, exchange(_metadata, self, 2));
	/* The second connection resumed, as both ends see it. */
	EXPECT_EQ(0, kmtlsd_wait_log(&self->term, "subject \"/CN=client/O=kmtls test\"", 2000));
	EXPECT_EQ(1, proc_log_count(&self->term.proc, ", resumed"));
	EXPECT_EQ(1, proc_log_count(&self->orig.proc, ", resumed"));
	EXPECT_EQ(0, proc_log_count(&self->orig.proc, "[warning]: listener default: server"));
	if (cur0 >= 0) {
		/* Guest: kTLS carried both TLS legs (now closed again). */
		EXPECT_EQ(0, proc_log_count(&self->orig.proc, "kTLS not used"));
		EXPECT_EQ(0, proc_log_count(&self->term.proc, "kTLS not used"));
	}
}

TEST(wrong_server_name_refused)
{
	const char *be_args[] = { "--mode", "sink", NULL };
	struct backend be;
	struct kmtlsd term, orig;
	char tlisten[64], olisten[64], buf[8];
	int fd;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&term, be.port, NULL));
	snprintf(tlisten, sizeof(tlisten), "127.0.0.1:%d", term.port);
	snprintf(olisten, sizeof(olisten), "127.0.0.1:%d", free_port());
	ASSERT_EQ(0, run_orig(&orig, olisten, tlisten, "not-the-server.example"));
	fd = plain_connect(olisten);
	ASSERT_LE(0, fd);
	send(fd, "secret", 6, MSG_NOSIGNAL);
	/* The plain client is closed; nothing reaches the backend. */
	EXPECT_GE(0, (int)recv(fd, buf, sizeof(buf), 0));
	close(fd);
	EXPECT_EQ(0, kmtlsd_wait_log(&orig, "server name mismatch", 5000));
	chain_stop(_metadata, &orig, &term, &be);
	EXPECT_EQ(0, backend_total_bytes(&be));
}

/* An originate listener from a config file: what a reload re-reads. */
static int write_orig_conf(const char *path, int port, int term_port, const char *allow_dns)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "[listener o]\nmode = originate\nlisten = 127.0.0.1:%d\n"
		"backend = 127.0.0.1:%d\nserver-name = localhost\ncert = %s\nkey = %s\n"
		"ca = %s\nallow-dns = %s\n", port, term_port, pki("client.pem"),
		pki("client.key"), pki("ca.pem"), allow_dns);
	return fclose(f);
}

/* "ping" through the chain and back (echo backend): 0 when it came back. */
static int ping(int port)
{
	char listen[32], buf[4];
	struct pollfd p;
	int fd, got = 0;
	ssize_t n;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	fd = plain_connect(listen);
	if (fd < 0)
		return -1;
	p.fd = fd;
	p.events = POLLIN;
	if (send(fd, "ping", 4, MSG_NOSIGNAL) == 4)
		while (got < 4 && poll(&p, 1, 5000) == 1) {
			n = recv(fd, buf + got, sizeof(buf) - got, 0);
			if (n <= 0)
				break;
			got += n;
		}
	close(fd);
	return got == 4 && !memcmp(buf, "ping", 4) ? 0 : -1;
}

TEST(reload_checks_the_server_again)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	struct backend be;
	struct kmtlsd term, orig;
	char conf[300];
	int port = free_port();
	const char *args[] = { "-c", conf, NULL };

	signal(SIGPIPE, SIG_IGN);
	snprintf(conf, sizeof(conf), "%s/orig.conf", test_tmpdir());
	ASSERT_EQ(0, backend_start(&be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&term, be.port, NULL));
	ASSERT_EQ(0, write_orig_conf(conf, port, term.port, "localhost"));
	ASSERT_EQ(0, kmtlsd_run(&orig, port, args));
	ASSERT_EQ(0, ping(port));
	ASSERT_EQ(0, ping(port));
	EXPECT_EQ(1, proc_log_count(&orig.proc, ", resumed"));

	/* The server's name is no longer allowed: its saved session must not do. */
	ASSERT_EQ(0, write_orig_conf(conf, port, term.port, "elsewhere.example"));
	ASSERT_EQ(0, kmtlsd_reload(&orig, 1));
	EXPECT_NE(0, ping(port));
	EXPECT_EQ(0, kmtlsd_wait_log(&orig, "not allowed by policy", 5000));
	EXPECT_EQ(1, proc_log_count(&orig.proc, ", resumed"));

	/* Allowed again: a full handshake, then resumption as before. */
	ASSERT_EQ(0, write_orig_conf(conf, port, term.port, "localhost"));
	ASSERT_EQ(0, kmtlsd_reload(&orig, 2));
	EXPECT_EQ(0, ping(port));
	EXPECT_EQ(1, proc_log_count(&orig.proc, ", resumed"));
	EXPECT_EQ(0, ping(port));
	EXPECT_EQ(2, proc_log_count(&orig.proc, ", resumed"));
	chain_stop(_metadata, &orig, &term, &be);
}

#define BANNER "220 server speaks first\r\n"

/* A TLS 1.3 server without tickets that greets, then reads to the end. */
struct greeter {
	int lfd, port;
	WOLFSSL_CTX *ctx;
	int ok;		/* the handshake completed and the banner went out */
};

static void *greeter_run(void *arg)
{
	struct greeter *g = arg;
	WOLFSSL *ssl = NULL;
	char buf[256];
	int fd = accept(g->lfd, NULL, NULL);

	if (fd >= 0)
		ssl = wolfSSL_new(g->ctx);
	if (ssl && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
	    wolfSSL_accept(ssl) == WOLFSSL_SUCCESS &&
	    wolfSSL_write(ssl, BANNER, sizeof(BANNER) - 1) == sizeof(BANNER) - 1) {
		g->ok = 1;
		while (wolfSSL_read(ssl, buf, sizeof(buf)) > 0)
			;
	}
	wolfSSL_free(ssl);
	if (fd >= 0)
		close(fd);
	return NULL;
}

TEST(server_first_bytes_are_counted)
{
	struct kmtls_tls_conf sconf = {
		.server = 1, .cert = pki("server.pem"), .key = pki("server.key"),
		.ca = pki("ca.pem"), .tls_min = 0x0304,
	};
	struct greeter g = { .lfd = -1 };
	struct kmtlsd orig;
	char olisten[64], backend[64], err[256], buf[64];
	pthread_t th;
	struct pollfd p;
	int fd, got = 0;
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, kmtls_tls_global_init());
	g.ctx = kmtls_tls_ctx_new(&sconf, err, sizeof(err));
	ASSERT_NE(NULL, g.ctx) TH_LOG("%s", err);
	/* No ticket to wait for: the banner is what kmtlsd reads first. */
	ASSERT_EQ(0, wolfSSL_CTX_no_ticket_TLSv13(g.ctx));
	g.lfd = listen_lo(&g.port);
	ASSERT_LE(0, g.lfd);
	ASSERT_EQ(0, pthread_create(&th, NULL, greeter_run, &g));
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", g.port);
	snprintf(olisten, sizeof(olisten), "127.0.0.1:%d", free_port());
	ASSERT_EQ(0, run_orig(&orig, olisten, backend, "localhost"));
	fd = plain_connect(olisten);
	ASSERT_LE(0, fd);
	p.fd = fd;
	p.events = POLLIN;
	while (got < (int)sizeof(BANNER) - 1 && poll(&p, 1, 5000) == 1) {
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	pthread_join(th, NULL);
	EXPECT_EQ(1, g.ok);
	ASSERT_EQ((int)sizeof(BANNER) - 1, got);
	EXPECT_EQ(0, memcmp(buf, BANNER, got));
	EXPECT_EQ(0, kmtlsd_wait_log(&orig, "closed, 0 bytes up, 25 down", 5000));
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&orig);
	EXPECT_EQ(0, kmtlsd_stop(&orig));
	close(g.lfd);
	wolfSSL_CTX_free(g.ctx);
}

/*
 * A unix socket's peer that writes and closes is reported as a hangup
 * with its bytes still to read: they reach the backend all the same.
 */
TEST(unix_client_writes_and_closes)
{
	const char *be_args[] = { "--mode", "sink", NULL };
	struct backend be;
	struct kmtlsd term, orig;
	char tlisten[64], olisten[160];
	json_object *r;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&term, be.port, NULL));
	snprintf(tlisten, sizeof(tlisten), "127.0.0.1:%d", term.port);
	snprintf(olisten, sizeof(olisten), "unix:%s/wc.sock", test_tmpdir());
	ASSERT_EQ(0, run_orig(&orig, olisten, tlisten, "localhost"));
	fd = plain_connect(olisten);
	ASSERT_LE(0, fd);
	ASSERT_EQ(5, send(fd, "hello", 5, MSG_NOSIGNAL));
	close(fd);
	EXPECT_EQ(0, backend_wait_conns(&be, 1, 10000));
	r = backend_report_line(&be, 0);
	EXPECT_NE(NULL, r);
	if (r)
		EXPECT_EQ(5, jint(r, "bytes_received"));
	json_object_put(r);
	EXPECT_EQ(0, proc_log_count(&orig.proc, "client went away"));
	chain_stop(_metadata, &orig, &term, &be);
}

/* Clock ticks of CPU a idle-waiting kmtlsd may use in a second. */
#define IDLE_TICKS_MAX	20

TEST(client_reset_during_server_handshake)
{
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct kmtlsd orig;
	char olisten[64], backend[64], buf[64];
	struct pollfd p;
	long t0, t1;
	int lfd, port, fd, bfd;

	signal(SIGPIPE, SIG_IGN);
	/* A server that takes the connection and never answers the ClientHello. */
	lfd = listen_lo(&port);
	ASSERT_LE(0, lfd);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", port);
	snprintf(olisten, sizeof(olisten), "127.0.0.1:%d", free_port());
	ASSERT_EQ(0, run_orig(&orig, olisten, backend, "localhost"));
	fd = plain_connect(olisten);
	ASSERT_LE(0, fd);
	p.fd = lfd;
	p.events = POLLIN;
	ASSERT_EQ(1, poll(&p, 1, 5000));
	bfd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, bfd);
	/* The ClientHello is there: kmtlsd waits for the server now. */
	p.fd = bfd;
	ASSERT_EQ(1, poll(&p, 1, 5000));
	ASSERT_LT(0, recv(bfd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)));
	close(fd);
	EXPECT_EQ(0, kmtlsd_wait_log(&orig, "client went away during the handshake with the server",
				     3000));
	/* The server's end is closed too, long before the handshake timeout. */
	while (poll(&p, 1, 3000) == 1 && recv(bfd, buf, sizeof(buf), 0) > 0)
		;
	EXPECT_EQ(0, recv(bfd, buf, sizeof(buf), MSG_DONTWAIT));
	t0 = proc_cpu_ticks(orig.proc.pid);
	usleep(1000 * 1000);
	t1 = proc_cpu_ticks(orig.proc.pid);
	ASSERT_LE(0, t0);
	EXPECT_GT(IDLE_TICKS_MAX, t1 - t0) TH_LOG("kmtlsd used %ld clock ticks in 1 s", t1 - t0);
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&orig);
	EXPECT_EQ(0, kmtlsd_stop(&orig));
	close(bfd);
	close(lfd);
}

TEST_HARNESS_MAIN
