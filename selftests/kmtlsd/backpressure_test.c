// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A backend that stops reading while the client goes on sending small
 * records. On kTLS kmtlsd relays through a pipe, and each record spliced in
 * takes a pipe slot of its own: the slots run out long before the pipe's
 * bytes do. kmtlsd must then wait for the backend to read, not spin on a
 * client socket that stays readable (the first version did: a worker at
 * 100% CPU until the backend read again).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define RECORD 1000		/* bytes per record: a pipe slot holds 4096 */
#define MAX_BYTES (64u << 20)	/* never stalled by this much: give up */
#define STALL_MS 500		/* the client's socket not writable this long */
#define WATCH_MS 1500		/* kmtlsd's CPU time measured over this */
/* Clock ticks of kmtlsd in WATCH_MS: a spinning worker burns all ~150. */
#define TICKS_MAX 30

/* Small records until the client's socket stays full: the bytes sent, or -1. */
static long fill(struct tls_end *c)
{
	static unsigned char rec[RECORD];
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };
	long sent = 0;
	ssize_t n;

	memset(rec, 'x', sizeof(rec));
	while (sent < (long)MAX_BYTES) {
		n = end_write(c, rec, sizeof(rec));
		if (n > 0) {
			sent += n;
			continue;
		}
		if (errno != EAGAIN)
			return -1;
		if (poll(&p, 1, STALL_MS) == 0)
			return sent;
	}
	return -1;
}

FIXTURE(bp) {
	struct kmtlsd d;
	struct tls_end c;
	int backend;
};

FIXTURE_SETUP(bp)
{
	int port;

	signal(SIGPIPE, SIG_IGN);
	self->c.fd = -1;
	/* A listener nobody accepts from: a backend that never reads. */
	self->backend = listen_lo(&port);
	ASSERT_LE(0, self->backend);
	ASSERT_EQ(0, kmtlsd_start(&self->d, port, NULL));
}

FIXTURE_TEARDOWN(bp)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	/* The unaccepted backend connection is reset: nothing left to drain. */
	close(self->backend);
	tls_end_close(&self->c);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
}

TEST_F_TIMEOUT(bp, backend_stops_reading_kmtlsd_waits, 120)
{
	struct tls_client_opts o = {
		.port = self->d.port, .cert = pki("client.pem"), .key = pki("client.key"),
		.ciphers = "TLS13-AES128-GCM-SHA256",
	};
	char err[256] = "";
	long sent, t0, t1;

	ASSERT_EQ(0, tls_client_open(&o, &self->c, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, end_nonblock(&self->c));
	sent = fill(&self->c);
	ASSERT_LT(0, sent) TH_LOG("never stalled: %s", end_why(&self->c));
	t0 = proc_cpu_ticks(self->d.proc.pid);
	usleep(WATCH_MS * 1000);
	t1 = proc_cpu_ticks(self->d.proc.pid);
	ASSERT_LE(0, t0);
	TH_LOG("%ld bytes in %d-byte records until the client's socket stayed full; "
	       "then kmtlsd used %ld clock ticks in %d ms", sent, RECORD, t1 - t0, WATCH_MS);
	EXPECT_GT(TICKS_MAX, t1 - t0) TH_LOG("kmtlsd spins while the backend does not read");
}

TEST_HARNESS_MAIN
