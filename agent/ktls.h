/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_KTLS_H
#define KMTLS_KTLS_H

#include <stddef.h>
#include <sys/types.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

enum kmtls_ktls_status {
	KMTLS_KTLS_ON = 0,	/* TX and RX are in the kernel */
	KMTLS_KTLS_FALLBACK,	/* socket untouched: use wolfSSL's record layer */
	KMTLS_KTLS_FAILED,	/* half installed or I/O error: close the socket */
};

/* Plaintext wolfSSL had decrypted but nobody read before the switch. */
struct kmtls_pending {
	unsigned char *data;
	size_t len;
};

/*
 * Move the record layer of a finished handshake into the kernel. Bytes that
 * wolfSSL already decrypted are returned in @pend (caller frees data) and
 * must be delivered before anything read from the socket afterwards. On
 * FALLBACK or FAILED, @why says why in operators' words. The key copies made
 * here are zeroed before return.
 */
enum kmtls_ktls_status kmtls_ktls_install(WOLFSSL *ssl, int fd,
					  struct kmtls_pending *pend,
					  const char **why);

/* Wipe and free what kmtls_ktls_install() returned in @pend (client data). */
void kmtls_pending_free(struct kmtls_pending *pend);

/* Name of the record cipher kTLS would use, for logs ("AES-128-GCM"). */
const char *kmtls_ktls_cipher_name(WOLFSSL *ssl);

/* TLS record content types (RFC 8446 5.1). */
#define KMTLS_REC_ALERT		21
#define KMTLS_REC_HANDSHAKE	22
#define KMTLS_REC_APPDATA	23

/*
 * recvmsg() on a kTLS socket that also reports the record type, so control
 * records (alerts, NewSessionTicket, KeyUpdate) are seen instead of making
 * read() fail with EIO. Returns bytes read, 0 at EOF, -1 with errno.
 */
ssize_t kmtls_ktls_recv(int fd, void *buf, size_t len, int flags,
			unsigned char *rtype);

#endif
