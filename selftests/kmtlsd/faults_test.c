// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Connection faults against kmtlsd: a backend that resets mid-stream, a
 * client that resets mid-handshake or mid-relay, slowloris handshakes.
 *
 * Each case runs many times (KMTLS_FAULT_ITERS, default 200) and checks that
 * kmtlsd logged what happened, counted it, went on serving a good client
 * (handshake + echo through the backend) during and after, and holds no
 * more descriptors or memory afterwards than before: a quarter as many
 * rounds warm the caches first, then /proc/PID/fd, VmRSS and the heap
 * blocks failmalloc.so counts in kmtlsd are compared (selftests/lib/usage.h).
 * The backend is selftests/lib/faults.c's, which resets or streams on demand.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/faults.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "../lib/usage.h"
#include "kselftest_harness.h"

#define HS_TIMEOUT_MS	2000

static int iters(void)
{
	const char *s = getenv("KMTLS_FAULT_ITERS");

	return s && atoi(s) > 0 ? atoi(s) : 200;
}

/* Warm-up rounds before the baseline: caches, pools and arenas fill. */
static int warm_iters(void)
{
	return iters() / 4 > 5 ? iters() / 4 : 5;
}

FIXTURE(faults) {
	struct fault_backend fb;
	struct kmtlsd d;
	int sport;
	int served;		/* good clients so far */
	int asan;		/* kmtlsd built with ASan */
	struct failmalloc_ctl *ctl;	/* its failmalloc.so, counting heap blocks */
	struct usage base;
};

FIXTURE_SETUP(faults)
{
	char status[64], hs[16];
	const char *args[] = { "--status-listen", status, "--handshake-timeout", hs, NULL };
	int i;

	signal(SIGPIPE, SIG_IGN);
	self->d.proc.pid = 0;
	self->asan = binary_is_asan(out_path("bin/kmtlsd"));
	ASSERT_EQ(0, fault_backend_start(&self->fb));
	self->sport = free_port();
	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	snprintf(hs, sizeof(hs), "%dms", HS_TIMEOUT_MS);
	self->ctl = failmalloc_prepare(out_path("bin/kmtlsd"));
	i = kmtlsd_start(&self->d, self->fb.port, args);
	failmalloc_started();
	ASSERT_EQ(0, i);
}

FIXTURE_TEARDOWN(faults)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	/* A clean exit: under ASan, also no leak and no error at shutdown. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	fault_backend_stop(&self->fb);
}

/* Every connection gone from kmtlsd, then what it holds. */
static int settle(FIXTURE_DATA(faults) *self, struct usage *u)
{
	if (status_wait(self->sport, "active", 0, HS_TIMEOUT_MS + 10000))
		return -1;
	return usage_sample(self->d.proc.pid, self->ctl, u);
}

/* Baseline after the warm-up; CHECK_USAGE compares with it at the end. */
#define BASELINE(self) ASSERT_EQ(0, settle(self, &(self)->base))

#define CHECK_USAGE(self, what) do {						\
	struct usage _u;							\
	char _m[160];								\
	ASSERT_EQ(0, settle(self, &_u)) TH_LOG("connections still open after %s", what); \
	EXPECT_EQ(0, usage_compare(&(self)->base, &_u, !(self)->asan, _m, sizeof(_m))) \
		TH_LOG("%s: grew", what);					\
	TH_LOG("%s x%d: %s", what, iters(), _m);				\
} while (0)

/* A client that does not hang forever on a peer that does not answer. */
static void rcv_timeout(int fd, int sec)
{
	struct timeval tv = { .tv_sec = sec };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* ---- backend resets mid-stream ------------------------------------- */

/*
 * The backend sends part of a response and resets. The client must see the
 * stream end without a close_notify (truncation is visible, never passed
 * off as a complete response), and kmtlsd must say the backend reset it.
 * Returns the wolfSSL error that ended the client's reads.
 */
static int backend_reset_once(struct __test_metadata *_metadata, int port)
{
	struct tls_client_opts o = { .port = port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	const char req[] = "reset 262144\n";
	char err[256], buf[16384];
	struct tls_end e;
	int n, end = 0;

	if (tls_client_open(&o, &e, err, sizeof(err))) {
		TH_LOG("handshake: %s", err);
		tls_end_close(&e);
		return -1;
	}
	rcv_timeout(e.fd, 10);
	if (wolfSSL_write(e.ssl, req, sizeof(req) - 1) == sizeof(req) - 1) {
		while ((n = wolfSSL_read(e.ssl, buf, sizeof(buf))) > 0)
			;
		end = wolfSSL_get_error(e.ssl, n);
	}
	tls_end_close(&e);
	return end;
}

TEST_F_TIMEOUT(faults, backend_resets_mid_stream, 600)
{
	int i, n = iters(), w = warm_iters(), clean = 0;
	const char *msg = "connection ended: backend reset the connection";

	for (i = 0; i < w; i++)
		backend_reset_once(_metadata, self->d.port);
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	for (i = 0; i < n; i++) {
		int end = backend_reset_once(_metadata, self->d.port);

		ASSERT_NE(-1, end);
		if (end == WOLFSSL_ERROR_ZERO_RETURN)
			clean++;
		if (i % 50 == 0)
			EXPECT_SERVING(self);
	}
	EXPECT_EQ(0, clean) TH_LOG("a reset backend was passed off as a clean end %d times", clean);
	CHECK_USAGE(self, "backend reset");
	EXPECT_EQ(w + n, atomic_load(&self->fb.resets));
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, msg)) TH_LOG("want \"%s\" per reset", msg);
	EXPECT_SERVING(self);
}

/* ---- client resets mid-handshake ----------------------------------- */

/* The client's reads: never anything, so it stops after its ClientHello. */
static int recv_nothing(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	return WOLFSSL_CBIO_ERR_WANT_READ;
}

/*
 * ClientHello out, the server's first flight in (unread), then an RST
 * instead of the client's certificate: kmtlsd holds a half-done handshake
 * with its key share and must drop all of it.
 */
static int client_reset_handshake_once(WOLFSSL_CTX *ctx, int port)
{
	struct pollfd p = { .events = POLLIN };
	WOLFSSL *ssl;
	int fd, ret = -1, hs;

	if (tcp_connect_port(port, &fd))
		return -1;
	ssl = wolfSSL_new(ctx);
	if (ssl && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS) {
		wolfSSL_SSLSetIORecv(ssl, recv_nothing);
		hs = wolfSSL_connect(ssl);
		p.fd = fd;
		if (hs != WOLFSSL_SUCCESS &&
		    wolfSSL_get_error(ssl, hs) == WOLFSSL_ERROR_WANT_READ &&
		    poll(&p, 1, 10000) == 1)
			ret = 0;
	}
	rst_close(fd);
	if (ssl)
		wolfSSL_free(ssl);
	return ret;
}

TEST_F_TIMEOUT(faults, client_resets_mid_handshake, 600)
{
	struct kmtls_tls_conf conf = { .cert = pki("client.pem"), .key = pki("client.key"),
				       .ca = pki("ca.pem"), .tls_min = 0x0304 };
	const char *msg = "peer reset the connection during the handshake";
	int i, n = iters(), w = warm_iters();
	long failed0;
	char err[256];
	WOLFSSL_CTX *ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));

	ASSERT_NE(NULL, ctx) TH_LOG("%s", err);
	for (i = 0; i < w; i++)
		ASSERT_EQ(0, client_reset_handshake_once(ctx, self->d.port));
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	failed0 = status_int(self->sport, "handshakes.failed");
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, client_reset_handshake_once(ctx, self->d.port));
		if (i % 50 == 0)
			EXPECT_SERVING(self);
	}
	wolfSSL_CTX_free(ctx);
	CHECK_USAGE(self, "client reset mid-handshake");
	EXPECT_EQ(failed0 + n, status_int(self->sport, "handshakes.failed"));
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, msg)) TH_LOG("want \"%s\" per reset", msg);
	EXPECT_EQ(self->served, atomic_load(&self->fb.conns))
		TH_LOG("a half-done handshake reached the backend");
	EXPECT_SERVING(self);
}

/* ---- client resets mid-relay --------------------------------------- */

/* Data flowing from the backend, then the client resets. */
static int client_reset_relay_once(struct __test_metadata *_metadata, int port)
{
	struct tls_client_opts o = { .port = port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	char err[256], buf[16384];
	size_t got = 0;
	struct tls_end e;
	int n;

	if (tls_client_open(&o, &e, err, sizeof(err))) {
		TH_LOG("handshake: %s", err);
		tls_end_close(&e);
		return -1;
	}
	rcv_timeout(e.fd, 10);
	if (wolfSSL_write(e.ssl, "stream\n", 7) != 7) {
		tls_end_close(&e);
		return -1;
	}
	while (got < 65536 && (n = wolfSSL_read(e.ssl, buf, sizeof(buf))) > 0)
		got += n;
	rst_close(e.fd);
	e.fd = -1;
	tls_end_close(&e);
	return got >= 65536 ? 0 : -1;
}

TEST_F_TIMEOUT(faults, client_resets_mid_relay, 600)
{
	int i, n = iters(), w = warm_iters();
	const char *msg = "connection ended:";

	for (i = 0; i < w; i++)
		ASSERT_EQ(0, client_reset_relay_once(_metadata, self->d.port));
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, client_reset_relay_once(_metadata, self->d.port));
		if (i % 50 == 0)
			EXPECT_SERVING(self);
	}
	CHECK_USAGE(self, "client reset mid-relay");
	/* One line per reset, saying the client reset it. */
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, msg));
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, "connection ended: client reset the connection"));
	/* kmtlsd closed every backend connection: the stream threads end. */
	for (i = 0; i < 500 && atomic_load(&self->fb.live); i++)
		usleep(10000);
	EXPECT_EQ(0, atomic_load(&self->fb.live));
	EXPECT_SERVING(self);
}

/* ---- slowloris ----------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * @n connections that send a ClientHello one byte per second. Each must be
 * closed by kmtlsd at the handshake timeout, counted from the accept (the
 * trickle must not keep it alive), while a good client is served every
 * second. Returns how many were closed in the window [timeout, timeout + 3 s].
 */
static int slowloris(struct __test_metadata *_metadata, FIXTURE_DATA(faults) *self,
		     int n)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00,
					       0x01, 0xfc, 0x03, 0x03 };
	int *fds = calloc(n, sizeof(int)), open = 0, in_window = 0, i, sent = 0;
	double t0 = now_s(), t, last = 0;
	char c;

	if (!fds)
		return -1;
	for (i = 0; i < n; i++) {
		if (tcp_connect_port(self->d.port, &fds[i]))
			fds[i] = -1;
		else
			open++;
	}
	while (open && (t = now_s()) - t0 < HS_TIMEOUT_MS / 1000.0 + 8) {
		if (t - last >= 1 && sent < (int)sizeof(hello)) {
			for (i = 0; i < n; i++)
				if (fds[i] >= 0)
					send(fds[i], &hello[sent], 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			sent++;
			last = t;
			EXPECT_SERVING(self);
		}
		for (i = 0; i < n; i++) {
			if (fds[i] < 0 || (recv(fds[i], &c, 1, MSG_DONTWAIT) < 0 &&
					   (errno == EAGAIN || errno == EWOULDBLOCK)))
				continue;
			t = now_s() - t0;
			if (t >= HS_TIMEOUT_MS / 1000.0 - 0.05 && t <= HS_TIMEOUT_MS / 1000.0 + 3)
				in_window++;
			else
				TH_LOG("a slow connection ended after %.2f s", t);
			close(fds[i]);
			fds[i] = -1;
			open--;
		}
		usleep(20000);
	}
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return in_window;
}

/*
 * All at once: the first round raises the allocator's high-water mark to
 * what @n handshakes in flight need, the second must not go above it.
 */
TEST_F_TIMEOUT(faults, slowloris_handshakes_time_out, 600)
{
	const char *msg = "handshake timeout: no complete handshake within";
	int n = iters(), w = n;
	long failed0;

	ASSERT_EQ(w, slowloris(_metadata, self, w));
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	failed0 = status_int(self->sport, "handshakes.failed");
	EXPECT_EQ(n, slowloris(_metadata, self, n));
	CHECK_USAGE(self, "slowloris");
	EXPECT_EQ(failed0 + n, status_int(self->sport, "handshakes.failed"));
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, msg));
	EXPECT_EQ(0, atomic_load(&self->fb.resets));
	EXPECT_SERVING(self);
}

TEST_HARNESS_MAIN
