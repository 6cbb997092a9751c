/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_FAULTS_H
#define KMTLS_SELFTEST_FAULTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/*
 * Building blocks for fault-injection tests: a backend that misbehaves on
 * request, abortive closes, a known-good client, and a tap that records
 * what a server sends on the wire.
 */

struct failmalloc_ctl;

/*
 * failmalloc.so (selftests/lib/failmalloc) for the next program started:
 * its control block, shared with it, and $LD_PRELOAD / $KMTLS_FAILMALLOC set
 * until failmalloc_started(). NULL, with nothing set, for a program built
 * with ASan (whose runtime owns malloc) or when the shim is missing.
 */
struct failmalloc_ctl *failmalloc_prepare(const char *program);
void failmalloc_started(void);

/* Close with an RST instead of a FIN (SO_LINGER, zero timeout). */
void rst_close(int fd);

/*
 * A plaintext backend on 127.0.0.1, a thread per connection. The first line
 * a connection sends says what it gets:
 *   "echo\n"        everything after it echoed back until EOF, then FIN;
 *   "reset N\n"     N bytes of data, then an RST (a backend that dies);
 *   "stream\n"      data until the peer goes away.
 */
struct fault_backend {
	int port, lfd;
	pthread_t thread;
	atomic_int conns, resets, live;
};

int fault_backend_start(struct fault_backend *b);
void fault_backend_stop(struct fault_backend *b);

/*
 * A full mTLS handshake with the good client certificate, then "echo" and
 * @bytes through the echo backend and back, then close_notify. 0, or -1
 * with a message in @err.
 */
int good_echo(int port, size_t bytes, char *err, size_t errlen);

/*
 * In a kselftest: good_echo() of 64 KiB through the kmtlsd of fixture
 * @self (its d.port), counted in its `served`.
 */
#define EXPECT_SERVING(self) do {						\
	char _err[256] = "";							\
	(self)->served++;							\
	EXPECT_EQ(0, good_echo((self)->d.port, 65536, _err, sizeof(_err)))	\
		TH_LOG("a good client failed: %s", _err);			\
} while (0)

/*
 * One TCP connection forwarded from @port (127.0.0.1, chosen here) to
 * 127.0.0.1:@target; everything the target sends is kept in @got.
 */
struct wiretap {
	int port, lfd, target;
	pthread_t thread;
	unsigned char *got;
	size_t len, cap;
};

int wiretap_start(struct wiretap *t, int target);
/* Wait until both directions ended; then @got is complete. */
void wiretap_join(struct wiretap *t);
void wiretap_free(struct wiretap *t);

/*
 * Does @buf parse as TLS records (type 20..23, version 3.x, at most 2^14 +
 * 256 bytes each) and not contain @plain anywhere? 0, or -1 with a reason.
 */
int tls_records_only(const unsigned char *buf, size_t len, const char *plain,
		     char *err, size_t errlen);

#endif
