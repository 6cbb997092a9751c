// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * How kmtlsd ends a relayed stream for a client that reads slowly: every
 * byte the backend sent, then close_notify, must reach the client however
 * full the client's socket is when the backend closes.
 *
 * The backend sends BYTES and shuts its write side; the client reads in
 * small steps with pauses, so kmtlsd's TLS socket is full when that EOF
 * arrives (on kTLS, records kTLS has taken but TCP has not, too).
 *   half_close   the client sent close_notify before reading: the
 *                connection is over for kmtlsd the moment the backend's
 *                last byte is handed to the TLS socket
 *   open         the client keeps its side open and closes it after the
 *                backend's close_notify arrived
 * In the guest kmtlsd's end is kTLS; on the host it is wolfSSL's record
 * layer; both must pass. Before kmtlsd lingered, the half_close rounds
 * lost the stream's last records or its close_notify about one run in
 * three in the 6.12 guest.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/status_http.h"
#include "../lib/stream.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define BYTES (8u << 20)
#define BYTES_STR "8388608"
#define STEP 16384		/* bytes per read */
#define RCVBUF 32768		/* the client's SO_RCVBUF */
#define PAUSE_US 1500		/* between reads: ~10 MB/s */
#define READ_TIMEOUT_MS 20000	/* nothing for this long: the stream is stuck */
#define ROUNDS 3
#define STALL_BYTES_STR "262144"	/* more than a client's first window */

/* kmtlsd, its backend sending @bytes, and our client end. */
struct env {
	struct backend be;
	struct kmtlsd d;
	struct tls_end c;
};

static int env_start(struct env *e, const char *bytes, const char *const *d_args)
{
	const char *be_args[] = { "--mode", "duplex", "--bytes", bytes, NULL };

	signal(SIGPIPE, SIG_IGN);
	e->c.fd = -1;
	if (backend_start(&e->be, be_args))
		return -1;
	return kmtlsd_start(&e->d, e->be.port, d_args);
}

static void env_stop(struct __test_metadata *_metadata, struct env *e)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&e->d);
	tls_end_close(&e->c);
	EXPECT_EQ(0, kmtlsd_stop(&e->d));
	backend_stop(&e->be);
}

FIXTURE(close) {
	struct env e;
};

FIXTURE_VARIANT(close) {
	int half_close;
};

FIXTURE_VARIANT_ADD(close, half_close) { .half_close = 1 };
FIXTURE_VARIANT_ADD(close, open) { .half_close = 0 };

FIXTURE_SETUP(close)
{
	ASSERT_EQ(0, env_start(&self->e, BYTES_STR, NULL));
}

FIXTURE_TEARDOWN(close)
{
	env_stop(_metadata, &self->e);
}

/*
 * Read until close_notify (0), an error (-1) or READ_TIMEOUT_MS without a
 * byte (-2), hashing what arrives into @h and counting it in *@got.
 */
static int read_slowly(struct tls_end *e, wc_Sha256 *h, size_t *got)
{
	unsigned char buf[STEP];
	struct pollfd p = { .fd = e->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		n = end_read(e, buf, sizeof(buf));
		if (n > 0) {
			wc_Sha256Update(h, buf, (word32)n);
			*got += n;
			usleep(PAUSE_US);
			continue;
		}
		if (n == 0)
			return 0;
		if (errno != EAGAIN)
			return -1;
		if (poll(&p, 1, READ_TIMEOUT_MS) == 0)
			return -2;
	}
}

/* One connection: 0 when it passed (EXPECTs report the rest). */
static int one_round(struct __test_metadata *_metadata, struct env *e,
		     const FIXTURE_VARIANT(close) *variant, int round)
{
	struct tls_client_opts o = {
		.port = e->d.port, .cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = "TLS13-AES128-GCM-SHA256",
	};
	unsigned char want[32], got_sha[32];
	int rc, rcvbuf = RCVBUF, ok = 1;
	char err[256] = "";
	size_t got = 0;
	json_object *r;
	wc_Sha256 h;

	if (tls_client_open(&o, &e->c, err, sizeof(err))) {
		EXPECT_STREQ("", err);
		return -1;
	}
	/*
	 * A small, fixed receive window: kmtlsd's send buffer stays small and
	 * full, rather than the whole stream fitting into socket buffers.
	 */
	EXPECT_EQ(0, setsockopt(e->c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)));
	/* wolfSSL keeps reading after it sent close_notify: a TLS half-close. */
	if (variant->half_close)
		EXPECT_NE(WOLFSSL_SUCCESS, wolfSSL_shutdown(e->c.ssl));
	EXPECT_EQ(0, end_nonblock(&e->c));
	wc_InitSha256(&h);
	rc = read_slowly(&e->c, &h, &got);
	wc_Sha256Final(&h, got_sha);
	wc_Sha256Free(&h);
	EXPECT_EQ(0, rc) TH_LOG("round %d: after %zu of %u bytes: %s", round, got, BYTES,
				rc == -2 ? "nothing more came (no close_notify)" :
				end_why(&e->c));
	EXPECT_EQ((size_t)BYTES, got);
	stream_sha256(STREAM_SEED_S2C, BYTES, want);
	EXPECT_EQ(0, memcmp(want, got_sha, 32));
	if (rc || got != BYTES)
		return -1;

	/* Our close_notify now, if not sent before: the backend sees EOF. */
	if (!variant->half_close)
		wolfSSL_shutdown(e->c.ssl);
	if (backend_wait_conns(&e->be, round + 1, 30000)) {
		EXPECT_EQ(0, round + 1) TH_LOG("the backend did not finish connection %d", round + 1);
		return -1;
	}
	r = backend_report_line(&e->be, round);
	if (!r)
		return -1;
	ok &= jint(r, "bytes_sent") == (long)BYTES && !strcmp(jstr(r, "end"), "eof");
	EXPECT_EQ((long)BYTES, jint(r, "bytes_sent"));
	EXPECT_STREQ("eof", jstr(r, "end"));
	json_object_put(r);
	tls_end_close(&e->c);
	return ok ? 0 : -1;
}

/* A few rounds: how full the socket is at the end varies from run to run. */
TEST_F_TIMEOUT(close, slow_reader_gets_every_byte_and_close_notify, 300)
{
	int i;

	for (i = 0; i < ROUNDS; i++)
		if (one_round(_metadata, &self->e, variant, i))
			return;
	/* Ended as closes, never as errors. */
	EXPECT_EQ(0, proc_log_count(&self->e.d.proc, "connection ended"));
}

/*
 * A client that stops reading: the linger after the relay ends lasts the
 * idle timeout from the last byte the client acknowledged, then kmtlsd
 * closes and says so.
 */
FIXTURE(stall) {
	struct env e;
	int sport;		/* kmtlsd's status endpoint */
};

FIXTURE_SETUP(stall)
{
	char status[32];
	const char *d_args[] = { "--idle-timeout", "1s", "--status-listen", status, NULL };

	self->sport = free_port();
	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	ASSERT_EQ(0, env_start(&self->e, STALL_BYTES_STR, d_args));
}

FIXTURE_TEARDOWN(stall)
{
	env_stop(_metadata, &self->e);
}

TEST_F_TIMEOUT(stall, linger_ends_after_idle_timeout, 120)
{
	struct tls_client_opts o = {
		.port = self->e.d.port, .cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = "TLS13-AES128-GCM-SHA256",
	};
	char err[256] = "";

	if (tls_stat("TlsCurrTxSw") < 0)
		SKIP(return, "kernel without kTLS: kmtlsd lingers on kTLS sockets only "
		     "(wolfSSL's records are in TCP's queue, which close() keeps)");
	ASSERT_EQ(0, tls_client_open(&o, &self->e.c, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_NE(WOLFSSL_SUCCESS, wolfSSL_shutdown(self->e.c.ssl));
	/* Not a byte read: the backend's stream fills the window and stops. */
	ASSERT_EQ(0, kmtlsd_wait_log(&self->e.d, "down, lingering", 30000));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->e.d, "has not acknowledged: no progress for 1000 ms",
				     30000));
	EXPECT_EQ(0, proc_log_count(&self->e.d.proc, "idle for"));
	/* Counted for dashboards: the client lost bytes it had been sent. */
	EXPECT_EQ(0, status_wait(self->sport, "closes_unacked", 1, 5000))
		TH_LOG("closes_unacked is %ld", status_int(self->sport, "closes_unacked"));
	EXPECT_EQ(0, status_wait(self->sport, "active", 0, 5000));
}

TEST_HARNESS_MAIN
