// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "resume.h"
#include "tickets.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/random.h>

#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16

int kmtls_ticket_keys_parse(unsigned char *buf, size_t len, const char *path,
			    struct kmtls_ticket_keys *out, char *err,
			    size_t errlen)
{
	size_t i;

	memset(out->k, 0, sizeof(out->k));
	out->n = 0;
	if (!len || len % KMTLS_TICKET_KEY_LEN || len > KMTLS_TICKET_KEY_LEN * KMTLS_TICKET_KEYS_MAX) {
		snprintf(err, errlen, "ticket keys %s: expected 1 to %d keys of %d bytes (e.g. head -c 80 /dev/urandom), found %zu bytes",
			 path, KMTLS_TICKET_KEYS_MAX, KMTLS_TICKET_KEY_LEN, len);
		explicit_bzero(buf, len);
		return -1;
	}
	out->n = (int)(len / KMTLS_TICKET_KEY_LEN);
	for (i = 0; i < (size_t)out->n; i++)
		memcpy(&out->k[i], buf + i * KMTLS_TICKET_KEY_LEN, KMTLS_TICKET_KEY_LEN);
	explicit_bzero(buf, len);
	return 0;
}

int kmtls_ticket_keys_read(const char *path, int allow_insecure,
			   struct kmtls_ticket_keys *out, char *err,
			   size_t errlen)
{
	/* One byte more than the most keys: a longer file is an error. */
	unsigned char buf[KMTLS_TICKET_KEY_LEN * KMTLS_TICKET_KEYS_MAX + 1];
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "ticket keys %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Refused before a byte of it is in our memory. */
	if ((st.st_mode & 077) && !allow_insecure) {
		close(fd);
		snprintf(err, errlen, "ticket keys %s are readable by group/others (mode %04o): run chmod 600 %s",
			 path, (unsigned int)(st.st_mode & 07777), path);
		return -1;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += n;
	close(fd);
	ret = kmtls_ticket_keys_parse(buf, len, path, out, err, errlen);
	explicit_bzero(buf, sizeof(buf));	/* the parser wiped @len; be sure */
	return ret;
}

void kmtls_ticket_keys_update(struct kmtls_ticket_keys *tk,
			      const struct kmtls_ticket_keys *fresh)
{
	pthread_rwlock_wrlock(&tk->lock);
	/* Keys dropped by the new file leave no copy behind. */
	explicit_bzero(tk->k, sizeof(tk->k));
	memcpy(tk->k, fresh->k, sizeof(tk->k[0]) * fresh->n);
	tk->n = fresh->n;
	pthread_rwlock_unlock(&tk->lock);
}

static int random_key(struct kmtls_ticket_key *k)
{
	WC_RNG rng;
	int ret;

	if (wc_InitRng(&rng))
		return -1;
	ret = wc_RNG_GenerateBlock(&rng, (unsigned char *)k, sizeof(*k));
	wc_FreeRng(&rng);
	return ret ? -1 : 0;
}

int kmtls_ticket_keys_random(struct kmtls_ticket_keys *out, char *err,
			     size_t errlen)
{
	memset(out->k, 0, sizeof(out->k));
	out->n = 0;
	if (random_key(&out->k[0])) {
		snprintf(err, errlen, "cannot make a session-ticket key: no randomness from wolfSSL's RNG");
		return -1;
	}
	out->n = 1;
	return 0;
}

int kmtls_ticket_keys_rotate(struct kmtls_ticket_keys *tk)
{
	struct kmtls_ticket_keys fresh = { .n = 0 };
	int ret = -1;

	pthread_rwlock_rdlock(&tk->lock);
	if (tk->n && !random_key(&fresh.k[0])) {
		fresh.k[1] = tk->k[0];
		fresh.n = 2;
	}
	pthread_rwlock_unlock(&tk->lock);
	if (fresh.n) {
		kmtls_ticket_keys_update(tk, &fresh);
		ret = 0;
	}
	explicit_bzero(&fresh, sizeof(fresh));
	return ret;
}

static int seal(const struct kmtls_ticket_key *k, unsigned char *iv,
		unsigned char *mac, const unsigned char *name,
		unsigned char *ticket, int len)
{
	WC_RNG rng;
	Aes aes;
	int ret;

	if (wc_InitRng(&rng))
		return -1;
	ret = wc_RNG_GenerateBlock(&rng, iv, WOLFSSL_TICKET_IV_SZ);
	wc_FreeRng(&rng);
	if (ret || wc_AesInit(&aes, NULL, INVALID_DEVID))
		return -1;
	ret = wc_AesGcmSetKey(&aes, k->aes, sizeof(k->aes)) ||
	      wc_AesGcmEncrypt(&aes, ticket, ticket, len, iv, GCM_IV_LEN, mac, GCM_TAG_LEN,
			       name, WOLFSSL_TICKET_NAME_SZ);
	wc_AesFree(&aes);
	explicit_bzero(&aes, sizeof(aes));	/* the key schedule and GHASH key */
	memset(mac + GCM_TAG_LEN, 0, WOLFSSL_TICKET_MAC_SZ - GCM_TAG_LEN);
	return ret ? -1 : 0;
}

static int open_ticket(const struct kmtls_ticket_key *k, const unsigned char *iv,
		       const unsigned char *mac, const unsigned char *name,
		       unsigned char *ticket, int len)
{
	Aes aes;
	int ret;

	if (wc_AesInit(&aes, NULL, INVALID_DEVID))
		return -1;
	ret = wc_AesGcmSetKey(&aes, k->aes, sizeof(k->aes)) ||
	      wc_AesGcmDecrypt(&aes, ticket, ticket, len, iv, GCM_IV_LEN, mac, GCM_TAG_LEN,
			       name, WOLFSSL_TICKET_NAME_SZ);
	wc_AesFree(&aes);
	explicit_bzero(&aes, sizeof(aes));
	return ret ? -1 : 0;
}

/* Open a returning ticket: the index of the key that did, or -1. */
static int open_any(struct kmtls_ticket_keys *tk, const unsigned char *name,
		    const unsigned char *iv, const unsigned char *mac,
		    unsigned char *ticket, int len)
{
	int i, found = -1;

	pthread_rwlock_rdlock(&tk->lock);
	for (i = 0; i < tk->n; i++) {
		if (memcmp(name, tk->k[i].name, WOLFSSL_TICKET_NAME_SZ))
			continue;
		/* Forged or corrupt: a full handshake. */
		if (!open_ticket(&tk->k[i], iv, mac, name, ticket, len))
			found = i;
		break;
	}
	pthread_rwlock_unlock(&tk->lock);
	return found;
}

/*
 * A returning ticket resumes only when the client certificate sealed in it
 * passes the listener's current CRLs and policy (resume.h); otherwise the
 * client does a full handshake, which refuses it or not on its own terms.
 */
static int accept_ticket(WOLFSSL *ssl, unsigned char *ticket, int len,
			 int *out_len)
{
	struct kmtls_verify *v = kmtls_verify_of(ssl);
	struct kmtls_resume_sealed s;
	int it_len;
	char why[400];

	it_len = kmtls_resume_find_leaf(ticket, len, &s);
	if (it_len < 0) {
		log_debug("session ticket declined (full handshake): it carries no client certificate");
		return -1;
	}
	if (!v || kmtls_resume_check(ssl, v, &s, why, sizeof(why))) {
		log_debug("session ticket declined (full handshake): %s",
			  v ? why : "no verification record");
		return -1;
	}
	*out_len = it_len;
	return 0;
}

/* A new ticket: wolfSSL's bytes, then the client's certificate, sealed. */
static int issue_ticket(WOLFSSL *ssl, struct kmtls_ticket_keys *tk,
			unsigned char *name, unsigned char *iv,
			unsigned char *mac, unsigned char *ticket, int len,
			int *out_len)
{
	const struct kmtls_verify *v = kmtls_verify_of(ssl);
	int n = kmtls_resume_seal_leaf(v, ticket, len, len + WOLFSSL_TICKET_EXTRA_PADDING_SZ);
	int ret;

	if (n == len && v && v->leaf_der_len && v->chain_not_after[0] != '?')
		kmtls_log_once("ticketfit", LOG_WARNING,
			       "a client certificate of %d bytes does not fit in a session ticket (%d at most): such clients always do full handshakes",
			       v->leaf_der_len, WOLFSSL_TICKET_EXTRA_PADDING_SZ - KMTLS_RESUME_TRAILER);
	pthread_rwlock_rdlock(&tk->lock);
	memcpy(name, tk->k[0].name, WOLFSSL_TICKET_NAME_SZ);
	ret = tk->n && !seal(&tk->k[0], iv, mac, name, ticket, n) ?
	      WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_FATAL;
	pthread_rwlock_unlock(&tk->lock);
	*out_len = n;
	return ret;
}

int kmtls_ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
		    unsigned char iv[WOLFSSL_TICKET_IV_SZ],
		    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc,
		    unsigned char *ticket, int in_len, int *out_len, void *ctx)
{
	struct kmtls_ticket_keys *tk = ctx;
	int i;

	if (enc)
		return issue_ticket(ssl, tk, name, iv, mac, ticket, in_len, out_len);
	*out_len = in_len;
	i = open_any(tk, name, iv, mac, ticket, in_len);
	if (i < 0 || accept_ticket(ssl, ticket, in_len, out_len)) {
		/*
		 * Opened in place: the session's secrets would stay in a
		 * buffer wolfSSL frees without wiping when it refuses.
		 */
		explicit_bzero(ticket, (size_t)in_len);
		return WOLFSSL_TICKET_RET_REJECT;
	}
	/*
	 * Sealed under an older key: asks for a new ticket (wolfSSL 5.5.4
	 * takes CREATE as OK; TLS 1.3 sends a fresh ticket after every
	 * handshake anyway, sealed under the first key).
	 */
	return i ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;
}

void kmtls_ticket_keys_install(WOLFSSL_CTX *ctx, struct kmtls_ticket_keys *tk)
{
	wolfSSL_CTX_set_TicketEncCb(ctx, kmtls_ticket_cb);
	wolfSSL_CTX_set_TicketEncCtx(ctx, tk);
}
