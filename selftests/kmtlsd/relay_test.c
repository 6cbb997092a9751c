// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd terminate mode end to end: a wolfSSL client with the test PKI,
 * kmtlsd, and the selftest backend, which hashes what it receives.
 *
 * 64 MiB each way per cipher. Where the kernel has kTLS (the guest) the
 * connection must be carried by kTLS (tls_stat counts it, and nothing falls
 * back); on a kernel without it the fallback must carry the same bytes.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/stream.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define BYTES (64u << 20)
#define BYTES_STR "67108864"

static int kernel_has_ktls(void)
{
	return tls_stat("TlsCurrTxSw") >= 0;
}

FIXTURE(relay) {
	struct backend be;
	struct kmtlsd d;
	struct tls_end c;
};

FIXTURE_VARIANT(relay) {
	const char *ciphers;
	int tls12;
};

FIXTURE_VARIANT_ADD(relay, tls13_aes128gcm) { .ciphers = "TLS13-AES128-GCM-SHA256" };
FIXTURE_VARIANT_ADD(relay, tls13_aes256gcm) { .ciphers = "TLS13-AES256-GCM-SHA384" };
FIXTURE_VARIANT_ADD(relay, tls13_chacha20) { .ciphers = "TLS13-CHACHA20-POLY1305-SHA256" };
FIXTURE_VARIANT_ADD(relay, tls12_ecdhe_ecdsa_aes128gcm) {
	.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
	.tls12 = 1,
};

FIXTURE_SETUP(relay)
{
	const char *be_args[] = { "--mode", "duplex", "--bytes", BYTES_STR, NULL };
	const char *d_args[] = { "--tls-min", "1.2", "--crl", pki("crl.pem"), NULL };

	signal(SIGPIPE, SIG_IGN);
	self->c.fd = -1;
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, d_args));
}

FIXTURE_TEARDOWN(relay)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	tls_end_close(&self->c);
	/* A clean exit: under ASan, also no leak and no error at shutdown. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

/* kmtlsd installs kTLS right after the handshake; give it a moment. */
static long wait_ktls_conns(long want)
{
	long n = -1;
	int i;

	for (i = 0; i < 200; i++) {
		n = tls_stat("TlsCurrTxSw");
		if (n >= want)
			break;
		usleep(10000);
	}
	return n;
}

TEST_F_TIMEOUT(relay, data_64m_each_way, 600)
{
	struct tls_client_opts o = {
		.port = self->d.port, .cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = variant->ciphers, .tls12 = variant->tls12,
	};
	struct xfer x = { .e = &self->c, .send_bytes = BYTES, .recv_bytes = BYTES,
			  .seed = STREAM_SEED_C2S };
	unsigned char want[32];
	char err[256] = "", hex[65];
	long cur0 = tls_stat("TlsCurrTxSw");
	json_object *r;

	ASSERT_EQ(0, tls_client_open(&o, &self->c, err, sizeof(err))) TH_LOG("%s", err);
	if (kernel_has_ktls()) {
		/* Only kmtlsd's end is kTLS: exactly one more kernel TLS socket. */
		EXPECT_EQ(cur0 + 1, wait_ktls_conns(cur0 + 1));
		EXPECT_EQ(0, proc_log_count(&self->d.proc, "kTLS not used"));
	} else {
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "kTLS not used", 5000));
	}
	ASSERT_EQ(0, end_nonblock(&self->c));
	xfer_run(&x);
	/* Not ASSERT: an assertion aborts before the teardown prints kmtlsd's log. */
	EXPECT_STREQ("", x.err);
	if (x.err[0])
		return;
	stream_sha256(STREAM_SEED_S2C, BYTES, want);
	EXPECT_EQ(0, memcmp(want, x.got_sha, 32));

	/* close_notify from us: kmtlsd half-closes the backend, which reports. */
	wolfSSL_shutdown(self->c.ssl);
	ASSERT_EQ(0, backend_wait_conns(&self->be, 1, 30000));
	r = backend_report_line(&self->be, 0);
	ASSERT_NE(NULL, r);
	hex_encode(x.sent_sha, 32, hex);
	EXPECT_EQ((long)BYTES, jint(r, "bytes_received"));
	EXPECT_STREQ(hex, jstr(r, "sha256_received"));
	EXPECT_STREQ("eof", jstr(r, "end"));
	json_object_put(r);
}

/*
 * TCP_NODELAY of kmtlsd's sockets whose local (@local) or remote port is
 * @port, through copies of its descriptors (pidfd_getfd): the count of
 * those sockets, or -1; *@off counts those without it.
 */
static int nodelay_of(pid_t pid, int port, int local, int *off)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), n = 0;
	struct dirent *de;
	char path[64];
	DIR *d;

	*off = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (pidfd < 0 || !d) {
		if (d)
			closedir(d);
		return -1;
	}
	while ((de = readdir(d))) {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a), l = sizeof(int);
		int fd, v = 0, listening = 0, ok;

		if (de->d_name[0] == '.')
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (fd < 0)
			continue;
		ok = (local ? getsockname(fd, (struct sockaddr *)&a, &alen) :
			      getpeername(fd, (struct sockaddr *)&a, &alen)) == 0 &&
		     a.sin_family == AF_INET && ntohs(a.sin_port) == port &&
		     !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) && !listening;
		l = sizeof(int);
		if (ok && !getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l)) {
			n++;
			*off += !v;
		}
		close(fd);
	}
	closedir(d);
	close(pidfd);
	return n;
}

/* Handshake flights and small records must not wait for Nagle. */
TEST_F(relay, sockets_are_nodelay)
{
	struct tls_client_opts o = {
		.port = self->d.port, .cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = variant->ciphers, .tls12 = variant->tls12,
	};
	char err[256] = "";
	int off, i, n = 0;

	ASSERT_EQ(0, tls_client_open(&o, &self->c, err, sizeof(err))) TH_LOG("%s", err);
	/* The backend connection follows the handshake. */
	for (i = 0; i < 200 && n < 1; i++) {
		n = nodelay_of(self->d.proc.pid, self->be.port, 0, &off);
		if (n < 1)
			usleep(10000);
	}
	ASSERT_EQ(1, n) TH_LOG("kmtlsd's connection to the backend not found");
	EXPECT_EQ(0, off);
	ASSERT_EQ(1, nodelay_of(self->d.proc.pid, self->d.port, 1, &off));
	EXPECT_EQ(0, off) TH_LOG("the accepted client socket has Nagle on");
}

TEST_HARNESS_MAIN
