// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Install wolfSSL's traffic keys into kernel TLS.
 *
 * One table describes every cipher the kernel can take; the crypto_info
 * struct is filled generically from it, for TLS 1.2 and 1.3 alike. Order
 * matters: TX first (failure there leaves a usable plain socket, so the caller
 * can fall back), then drain wolfSSL's decrypted-but-unread bytes, then RX.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

struct ktls_cipher {
	int bulk;		/* wolfSSL BulkCipherAlgorithm */
	int key_len;
	unsigned short type;	/* TLS_CIPHER_* */
	const char *name;
	size_t size;		/* sizeof the kernel's crypto_info struct */
	size_t off_iv, iv_len;
	size_t off_key;
	size_t off_salt, salt_len;
	size_t off_seq;
};

#define KTLS_CIPHER(b, kl, t, n, s)					\
	{ b, kl, t, n, sizeof(struct s),				\
	  offsetof(struct s, iv), sizeof(((struct s *)0)->iv),		\
	  offsetof(struct s, key),					\
	  offsetof(struct s, salt), sizeof(((struct s *)0)->salt),	\
	  offsetof(struct s, rec_seq) }

static const struct ktls_cipher ciphers[] = {
	KTLS_CIPHER(wolfssl_aes_gcm, 16, TLS_CIPHER_AES_GCM_128, "AES-128-GCM",
		    tls12_crypto_info_aes_gcm_128),
	KTLS_CIPHER(wolfssl_aes_gcm, 32, TLS_CIPHER_AES_GCM_256, "AES-256-GCM",
		    tls12_crypto_info_aes_gcm_256),
	KTLS_CIPHER(wolfssl_chacha, 32, TLS_CIPHER_CHACHA20_POLY1305,
		    "CHACHA20-POLY1305", tls12_crypto_info_chacha20_poly1305),
};

union ktls_info {
	struct tls_crypto_info base;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static const struct ktls_cipher *find_cipher(WOLFSSL *ssl)
{
	int bulk = wolfSSL_GetBulkCipher(ssl);
	int key_len = wolfSSL_GetKeySize(ssl);
	size_t i;

	for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
		if (ciphers[i].bulk == bulk && ciphers[i].key_len == key_len)
			return &ciphers[i];
	return NULL;
}

const char *kmtls_ktls_cipher_name(WOLFSSL *ssl)
{
	const struct ktls_cipher *c = find_cipher(ssl);

	return c ? c->name : "unsupported";
}

/*
 * TLS 1.3 and ChaCha20 use the whole static IV as salt||iv. TLS 1.2 GCM has
 * a 4-byte implicit salt and an explicit per-record nonce; any unique value
 * works for the nonce, and the record sequence number is unique per key.
 */
static int fill_info(union ktls_info *info, const struct ktls_cipher *c,
		     int version, const unsigned char *key,
		     const unsigned char *iv, uint64_t seq)
{
	unsigned char *p = (unsigned char *)info;
	uint64_t be_seq = htobe64(seq);

	memset(info, 0, sizeof(*info));
	info->base.version = version;
	info->base.cipher_type = c->type;
	memcpy(p + c->off_key, key, c->key_len);
	memcpy(p + c->off_salt, iv, c->salt_len);
	if (version == TLS_1_2_VERSION && c->salt_len)
		memcpy(p + c->off_iv, &be_seq, c->iv_len);
	else
		memcpy(p + c->off_iv, iv + c->salt_len, c->iv_len);
	memcpy(p + c->off_seq, &be_seq, sizeof(be_seq));
	return (int)c->size;
}

static int set_dir(int fd, int dir, WOLFSSL *ssl, const struct ktls_cipher *c,
		   int version)
{
	int tx = dir == TLS_TX;
	int client = wolfSSL_GetSide(ssl) == WOLFSSL_CLIENT_END;
	const unsigned char *key, *iv;
	union ktls_info info;
	word64 seq = 0;
	int size, ret, err;

	/* Client writes with the client keys; the server reads with them. */
	if (tx == client) {
		key = wolfSSL_GetClientWriteKey(ssl);
		iv = wolfSSL_GetClientWriteIV(ssl);
	} else {
		key = wolfSSL_GetServerWriteKey(ssl);
		iv = wolfSSL_GetServerWriteIV(ssl);
	}
	/* These return !seq, not a status: only a negative value is an error. */
	ret = tx ? wolfSSL_GetSequenceNumber(ssl, &seq) :
		   wolfSSL_GetPeerSequenceNumber(ssl, &seq);
	if (!key || !iv || ret < 0) {
		errno = EINVAL;
		return -1;
	}
	size = fill_info(&info, c, version, key, iv, seq);
	ret = setsockopt(fd, SOL_TLS, dir, &info, size);
	err = errno;
	explicit_bzero(&info, sizeof(info));
	errno = err;
	return ret;
}

void kmtls_pending_free(struct kmtls_pending *pend)
{
	if (pend->data)
		explicit_bzero(pend->data, pend->len);
	free(pend->data);
	pend->data = NULL;
	pend->len = 0;
}

static int drain_pending(WOLFSSL *ssl, struct kmtls_pending *pend)
{
	int n = wolfSSL_pending(ssl), got;

	pend->data = NULL;
	pend->len = 0;
	if (n <= 0)
		return 0;
	pend->data = malloc(n);
	if (!pend->data)
		return -1;
	while (pend->len < (size_t)n) {
		got = wolfSSL_read(ssl, pend->data + pend->len, n - pend->len);
		if (got <= 0)
			return -1;
		pend->len += got;
	}
	return 0;
}

static const char *ulp_reason(int err)
{
	switch (err) {
	case ENOENT:
		return "kernel has no kTLS (tls module not available)";
	case EEXIST:
		return "socket already has a ULP attached";
	case ENOTCONN:
		/* tls_init() wants TCP_ESTABLISHED; a FIN already in is CLOSE_WAIT. */
		return "client already half-closed its side; the kernel attaches kTLS only to established sockets";
	default:
		return "attaching the tls ULP failed";
	}
}

enum kmtls_ktls_status kmtls_ktls_install(WOLFSSL *ssl, int fd,
					  struct kmtls_pending *pend,
					  const char **why)
{
	const struct ktls_cipher *c = find_cipher(ssl);
	int v = wolfSSL_version(ssl);
	int version;

	pend->data = NULL;
	pend->len = 0;
	if (v == TLS1_3_VERSION) {
		version = TLS_1_3_VERSION;
	} else if (v == TLS1_2_VERSION) {
		version = TLS_1_2_VERSION;
	} else {
		*why = "protocol version not supported by kTLS";
		return KMTLS_KTLS_FALLBACK;
	}
	if (!c) {
		*why = "negotiated cipher not supported by kTLS";
		return KMTLS_KTLS_FALLBACK;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		*why = ulp_reason(errno);
		return KMTLS_KTLS_FALLBACK;
	}
	/* The tls ULP without keys still passes plaintext through: safe. */
	if (set_dir(fd, TLS_TX, ssl, c, version)) {
		*why = errno == ENOENT || errno == ENOPROTOOPT || errno == EINVAL ?
		       "kernel kTLS lacks this cipher (crypto module missing?)" :
		       "kTLS TX setup failed";
		return KMTLS_KTLS_FALLBACK;
	}
	if (drain_pending(ssl, pend)) {
		*why = "could not drain wolfSSL's buffered plaintext";
		return KMTLS_KTLS_FAILED;
	}
	if (set_dir(fd, TLS_RX, ssl, c, version)) {
		*why = "kTLS RX setup failed after TX was installed";
		return KMTLS_KTLS_FAILED;
	}
	return KMTLS_KTLS_ON;
}

ssize_t kmtls_ktls_recv(int fd, void *buf, size_t len, int flags,
			unsigned char *rtype)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	n = recvmsg(fd, &msg, flags);
	if (n < 0)
		return n;
	*rtype = KMTLS_REC_APPDATA;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS &&
		    cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
			*rtype = *CMSG_DATA(cmsg);
	return n;
}
