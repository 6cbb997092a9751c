/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_TLS_PAIR_H
#define KMTLS_SELFTEST_TLS_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../../agent/ktls.h"
#include "../../agent/tls_ctx.h"

/* One end of a connection: wolfSSL's record layer or kTLS after install. */
struct tls_end {
	int fd;
	WOLFSSL *ssl;
	int ktls;
	struct kmtls_pending pend;
	size_t pend_off;
	unsigned long ctrl_records;	/* non-appdata records seen on kTLS */
	/* Why the last end_read/end_write failed (not EAGAIN): for messages. */
	int tls_err;			/* wolfSSL_get_error(), 0 on kTLS */
	int sys_err;			/* errno right after the call */
};

/* The test PKI directory ($KMTLS_PKI, else build/pki). */
const char *pki_dir(void);
/* "$KMTLS_PKI/<name>", a stable pointer per name (up to 64 names). */
const char *pki(const char *name);

/* A connected TCP pair on 127.0.0.1 (blocking). Returns 0 or -errno. */
int tcp_pair(int *client, int *server);

/* A blocking TCP connection to 127.0.0.1:port. Returns 0 or -errno. */
int tcp_connect_port(int port, int *fd);

/*
 * Run a full handshake on a connected pair, server side in a thread.
 * Returns 0, or -1 with a message in err.
 */
int tls_handshake_pair(WOLFSSL_CTX *cctx, WOLFSSL_CTX *sctx, int cfd, int sfd,
		       WOLFSSL **c, WOLFSSL **s, char *err, size_t errlen);
/* The same on objects set up by the caller (fds set, session offered...). */
int tls_handshake_objs(WOLFSSL *c, WOLFSSL *s, char *err, size_t errlen);

/* Move both ends to non-blocking I/O through their record layer. */
ssize_t end_write(struct tls_end *e, const void *buf, size_t len);
ssize_t end_read(struct tls_end *e, void *buf, size_t len);

/*
 * " (wolfSSL error N: reason; socket: strerror)" for the last failure of
 * end_read/end_write on @e, or "". Per thread, until the next call.
 */
const char *end_why(const struct tls_end *e);

/* Non-blocking I/O on this end from now on. */
int end_nonblock(struct tls_end *e);

/*
 * One end of a transfer, run in its own thread (the WOLFSSL object is never
 * shared): send @send_bytes of the deterministic stream @seed (stream.h)
 * while reading @recv_bytes, hashing both.
 */
struct xfer {
	struct tls_end *e;
	size_t send_bytes, recv_bytes;
	uint64_t seed;
	size_t sent, got;
	unsigned char sent_sha[32], got_sha[32];
	char err[160];		/* empty on success */
};
void *xfer_run(void *x);

/* SHA-256 of the first @bytes of stream @seed. */
void stream_sha256(uint64_t seed, size_t bytes, unsigned char out[32]);

/*
 * Send @bytes of deterministic pseudo-random data each way at once and check
 * the SHA-256 of what arrives. Returns 0 when both directions match.
 */
int exchange_and_verify(struct tls_end *a, struct tls_end *b, size_t bytes,
			char *err, size_t errlen);

/* A wolfSSL client with the test PKI, blocking handshake to 127.0.0.1:port. */
struct tls_client_opts {
	int port;
	const char *cert, *key;	/* NULL: no client certificate */
	const char *ca;		/* NULL: pki("ca.pem") */
	const char *ciphers;	/* NULL: defaults */
	int tls12;
};
int tls_client_open(const struct tls_client_opts *o, struct tls_end *e,
		    char *err, size_t errlen);
void tls_end_close(struct tls_end *e);

/* Sum of a counter in /proc/net/tls_stat, -1 when the file does not exist. */
long tls_stat(const char *name);

#endif
