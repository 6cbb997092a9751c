// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tcp-fastopen = N: the key parses (and is refused where it cannot apply),
 * the listening socket gets TCP_FASTOPEN with that queue length, and a
 * client that sends its ClientHello in the SYN (sendto MSG_FASTOPEN)
 * completes the mTLS handshake and a round trip, with the kernel counting
 * the SYN's data as taken (TCPFastOpenPassive). That last part runs in a
 * network namespace of its own, where net.ipv4.tcp_fastopen may be set
 * without touching the host's; without the key, the same client falls back
 * to a plain handshake and the counter stays put.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../agent/config.h"
#include "../../agent/listener.h"
#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

TEST(key_parses)
{
	struct kmtls_config cfg = { 0 };
	struct kmtls_listener_conf *l;
	char err[512];

	l = kmtls_config_add_listener(&cfg, "t");
	ASSERT_NE(NULL, l);
	EXPECT_EQ(0u, l->tcp_fastopen);	/* off unless asked for */
	EXPECT_EQ(0, kmtls_listener_set(l, "tcp-fastopen", "256", err, sizeof(err)));
	EXPECT_EQ(256u, l->tcp_fastopen);
	EXPECT_EQ(0, kmtls_listener_set(l, "tcp_fastopen", "0", err, sizeof(err)));
	EXPECT_EQ(0u, l->tcp_fastopen);
	EXPECT_EQ(-1, kmtls_listener_set(l, "tcp-fastopen", "65536", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "from 0 (off) to 65535")) TH_LOG("%s", err);
	EXPECT_EQ(-1, kmtls_listener_set(l, "tcp-fastopen", "yes", err, sizeof(err)));
	/* A unix listener (originate mode) has no TCP to open fast. */
	ASSERT_EQ(0, kmtls_listener_set(l, "mode", "originate", err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "listen", "unix:/tmp/kmtls-tfo.sock", err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "backend", "127.0.0.1:1", err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "server-name", "localhost", err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "cert", pki("client.pem"), err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "key", pki("client.key"), err, sizeof(err)));
	ASSERT_EQ(0, kmtls_listener_set(l, "ca", pki("ca.pem"), err, sizeof(err)));
	EXPECT_EQ(0, kmtls_config_validate(&cfg, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, kmtls_listener_set(l, "tcp-fastopen", "8", err, sizeof(err)));
	EXPECT_EQ(-1, kmtls_config_validate(&cfg, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "TCP Fast Open needs a TCP listen address")) TH_LOG("%s", err);
	kmtls_config_free(&cfg);
}

/* The listener code's own socket, read back with getsockopt. */
static int listener_qlen(unsigned int qlen)
{
	struct kmtls_listener_conf conf;
	struct kmtls_listener l;
	char err[512], addr[32];
	socklen_t len = sizeof(int);
	int fd, v = -1;

	if (kmtls_listener_init(&conf, "tfo"))
		return -2;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	conf.listen = strdup(addr);
	conf.backend = strdup("127.0.0.1:1");
	conf.cert = strdup(pki("server.pem"));
	conf.key = strdup(pki("server.key"));
	conf.ca = strdup(pki("ca.pem"));
	conf.tcp_fastopen = qlen;
	if (kmtls_listener_setup(&l, &conf, err, sizeof(err))) {
		fprintf(stderr, "# %s\n", err);
		return -3;
	}
	fd = kmtls_listener_socket(&l, err, sizeof(err));
	if (fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &v, &len))
		v = -4;
	if (fd >= 0)
		close(fd);
	kmtls_listener_teardown(&l);
	free(conf.listen);
	free(conf.backend);
	free(conf.cert);
	free(conf.key);
	free(conf.ca);
	free(conf.name);
	return v;
}

TEST(listen_socket_has_option)
{
	ASSERT_EQ(0, kmtls_tls_global_init());
	EXPECT_EQ(32, listener_qlen(32));
	EXPECT_EQ(0, listener_qlen(0));
}

/* ---- a Fast Open client in a network namespace of its own ---------- */

FIXTURE(tfo) {
	struct backend be;
	struct kmtlsd d;
	WOLFSSL_CTX *ctx;
};

FIXTURE_VARIANT(tfo) {
	const char *qlen;	/* NULL: no tcp-fastopen key */
};

FIXTURE_VARIANT_ADD(tfo, on) { .qlen = "16" };
FIXTURE_VARIANT_ADD(tfo, off) { .qlen = NULL };

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = -1;

	if (fd < 0)
		return -1;
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return ret;
}

/* A TcpExt counter of this network namespace, -1 if not found. */
static long tcpext(const char *name)
{
	char names[4096], vals[4096], *ns, *vs, *n, *v;
	long ret = -1;
	FILE *f = fopen("/proc/net/netstat", "r");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		if (strncmp(names, "TcpExt:", 7))
			continue;
		n = strtok_r(names + 7, " \n", &ns);
		v = strtok_r(vals + 7, " \n", &vs);
		for (; n && v; n = strtok_r(NULL, " \n", &ns), v = strtok_r(NULL, " \n", &vs))
			if (!strcmp(n, name))
				ret = atol(v);
	}
	fclose(f);
	return ret;
}

FIXTURE_SETUP(tfo)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *on[] = { "--tcp-fastopen", variant->qlen, NULL };
	struct kmtls_tls_conf conf = {
		.cert = pki("client.pem"), .key = pki("client.key"), .ca = pki("ca.pem"),
		.tls_min = 0x0304,
	};
	char err[256];

	signal(SIGPIPE, SIG_IGN);
	if (unshare(CLONE_NEWNET))
		SKIP(return, "cannot make a network namespace (%s): needs CAP_SYS_ADMIN",
		     strerror(errno));
	ASSERT_EQ(0, lo_up());
	/* Client and server side; the server still needs a TFO cookie. */
	if (write_file("/proc/sys/net/ipv4/tcp_fastopen", "3"))
		SKIP(return, "net.ipv4.tcp_fastopen is not per network namespace here");
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, variant->qlen ? on : NULL));
	ASSERT_EQ(0, kmtls_tls_global_init());
	self->ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	ASSERT_NE(NULL, self->ctx) TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(tfo)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	kmtlsd_stop(&self->d);
	backend_stop(&self->be);
	if (self->ctx)
		wolfSSL_CTX_free(self->ctx);
}

/* The first flight goes with the SYN: sendto(MSG_FASTOPEN) on a fresh socket. */
struct tfo_io {
	int fd;
	int connected;
	struct sockaddr_in to;
};

static int tfo_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tfo_io *io = ctx;
	ssize_t n;

	(void)ssl;
	if (io->connected) {
		n = send(io->fd, buf, sz, MSG_NOSIGNAL);
	} else {
		n = sendto(io->fd, buf, sz, MSG_FASTOPEN | MSG_NOSIGNAL,
			   (struct sockaddr *)&io->to, sizeof(io->to));
		io->connected = n >= 0;
	}
	return n >= 0 ? (int)n : WOLFSSL_CBIO_ERR_GENERAL;
}

/* One handshake and a round trip; TCPI_OPT_SYN_DATA from TCP_INFO in @syn_data. */
static int tfo_visit(FIXTURE_DATA(tfo) *self, int *syn_data)
{
	struct tfo_io io = { .to = { .sin_family = AF_INET } };
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	char buf[4];
	WOLFSSL *ssl;
	int ok;

	io.to.sin_port = htons(self->d.port);
	io.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	io.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (io.fd < 0)
		return -1;
	ssl = wolfSSL_new(self->ctx);
	wolfSSL_set_fd(ssl, io.fd);
	wolfSSL_SSLSetIOSend(ssl, tfo_send);
	wolfSSL_SetIOWriteCtx(ssl, &io);
	wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	ok = wolfSSL_connect(ssl) == WOLFSSL_SUCCESS && wolfSSL_write(ssl, "ping", 4) == 4 &&
	     wolfSSL_read(ssl, buf, 4) == 4 && !memcmp(buf, "ping", 4);
	*syn_data = !getsockopt(io.fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) &&
		    (ti.tcpi_options & TCPI_OPT_SYN_DATA);
	wolfSSL_shutdown(ssl);
	wolfSSL_free(ssl);
	close(io.fd);
	return ok ? 0 : -1;
}

TEST_F(tfo, clienthello_in_syn)
{
	long before = tcpext("TCPFastOpenPassive");
	int syn_data, i;

	ASSERT_LE(0, before);
	/* The first connection fetches the cookie; the next ones use it. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, tfo_visit(self, &syn_data));
	if (variant->qlen) {
		EXPECT_TRUE(syn_data);
		EXPECT_LE(before + 2, tcpext("TCPFastOpenPassive"));
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "TCP Fast Open on, queue 16", 1000));
	} else {
		EXPECT_FALSE(syn_data);
		EXPECT_EQ(before, tcpext("TCPFastOpenPassive"));
	}
}

TEST_HARNESS_MAIN
