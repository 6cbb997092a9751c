/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_TICKETS_H
#define KMTLS_TICKETS_H

#include <pthread.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/*
 * TLS session-ticket keys from a file shared by every worker and by every
 * kmtlsd behind one load balancer, so a client resumes on any node.
 *
 * The file is a sequence of 80-byte keys (the format nginx uses for
 * ssl_session_ticket_key): name[16], hmac[32], aes[32]. The first key seals
 * new tickets (AES-256-GCM with the aes part; the name travels in the
 * ticket); the others only open tickets sealed earlier, which are then
 * re-issued under the first. Rotate by writing a new key first and
 * dropping the last, then SIGHUP: a ticket survives one rotation.
 */
#define KMTLS_TICKET_KEY_LEN 80
/*
 * A listener's own random key (no key file) is replaced this often; a
 * TLS 1.3 ticket lives 500 s (wolfSSL's session timeout), so one period
 * with the previous key kept never cuts a ticket short. The environment
 * variable of the same name overrides it (seconds, for tests).
 */
#define KMTLS_TICKET_ROTATE_S 3600
#define KMTLS_TICKET_KEYS_MAX 8

struct kmtls_ticket_key {
	unsigned char name[16], hmac[32], aes[32];
};

struct kmtls_ticket_keys {
	pthread_rwlock_t lock;	/* replaced in place on reload */
	int n;
	struct kmtls_ticket_key k[KMTLS_TICKET_KEYS_MAX];
};

/*
 * Read @path (mode 0600 expected) into @out. 0, or -1 with err. A file
 * readable by group/others is refused before it is read (unless
 * @allow_insecure).
 */
int kmtls_ticket_keys_read(const char *path, int allow_insecure,
			   struct kmtls_ticket_keys *out, char *err,
			   size_t errlen);

/*
 * The file's bytes @buf (@len) into @out; @path names it in errors. @buf
 * is wiped on every path, so no copy of a key outlives the parse.
 */
int kmtls_ticket_keys_parse(unsigned char *buf, size_t len, const char *path,
			    struct kmtls_ticket_keys *out, char *err,
			    size_t errlen);

/*
 * Swap @fresh's keys into @tk (readers see old or new, never a mix); the
 * keys @tk held before are wiped, also those @fresh no longer has.
 */
void kmtls_ticket_keys_update(struct kmtls_ticket_keys *tk,
			      const struct kmtls_ticket_keys *fresh);

/*
 * Without a key file: one random key (@out's lock untouched). On reload,
 * rotate: a new random key first, the previous one kept to open tickets
 * sealed before, so a ticket survives one reload. 0, or -1 (with err).
 */
int kmtls_ticket_keys_random(struct kmtls_ticket_keys *out, char *err,
			     size_t errlen);
int kmtls_ticket_keys_rotate(struct kmtls_ticket_keys *tk);

/*
 * Seal and open this context's tickets with @tk (which outlives it). The
 * client's certificate is sealed in as well, and a returning ticket is
 * honoured only if that certificate passes the current CRLs and policy
 * (resume.h); the WOLFSSL must be bound with kmtls_verify_bind().
 */
void kmtls_ticket_keys_install(WOLFSSL_CTX *ctx, struct kmtls_ticket_keys *tk);

/* The callback, for tests. */
int kmtls_ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
		    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
		    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
		    unsigned char *ticket, int in_len, int *out_len, void *ctx);

#endif
