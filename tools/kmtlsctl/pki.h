/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl pki: shared by pki.c (verbs, files) and pki_x509.c (wolfSSL). */
#ifndef KMTLS_KMTLSCTL_PKI_H
#define KMTLS_KMTLSCTL_PKI_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

struct ctl;

/* The verb (pki.c). */
int cmd_pki(struct ctl *c, int argc, char **argv);

enum pki_alg { PKI_EC256, PKI_EC384, PKI_RSA2048, PKI_ED25519, PKI_NALGS };

/* "ec256", ...; -1 for an unknown name. */
int pki_alg_parse(const char *s);
const char *pki_alg_name(int alg);

struct pki_key {
	int alg;		/* enum pki_alg, -1 while empty */
	union {
		ecc_key ecc;
		RsaKey rsa;
		ed25519_key ed;
	} k;
};

/* A fresh key of @alg. 0, or -1 with @err set. */
int pki_key_gen(struct pki_key *key, int alg, WC_RNG *rng, char *err, size_t errlen);
/* A private key from PEM (any of the algorithms above). 0, or -1. */
int pki_key_load(struct pki_key *key, const char *pem, size_t len, WC_RNG *rng,
		 char *err, size_t errlen);
/* The private key as PKCS#8 PEM ("PRIVATE KEY"), malloc'd, NUL-terminated. */
char *pki_key_pem(struct pki_key *key, char *err, size_t errlen);
void pki_key_free(struct pki_key *key);

enum pki_role { PKI_ROOT, PKI_INTERMEDIATE, PKI_SERVER, PKI_CLIENT };

#define PKI_MAX_SANS	32

/* One subjectAltName: type ASN_DNS_TYPE, ASN_IP_TYPE or ASN_URI_TYPE. */
struct pki_san {
	int type;
	int len;
	char value[256];	/* text, or the 4 or 16 address bytes for IP */
};

/*
 * 0 when @name (@len bytes) can be a dNSName: labels of 1 to 63 characters,
 * 253 in all; else -1 with why not in @why.
 */
int pki_dns_check(const char *name, size_t len, char *why, size_t whylen);

/* "DNS:x,IP:1.2.3.4,URI:spiffe://..." appended to @sans. 0, or -1. */
int pki_san_parse(const char *s, struct pki_san *sans, int *n, char *err, size_t errlen);
/* A SAN as text, as openssl prints it ("DNS:x", "IP:::1", "URI:..."). */
void pki_san_str(const struct pki_san *san, char *buf, size_t len);

struct pki_req {
	enum pki_role role;
	const char *cn;
	int days;
	const struct pki_san *sans;
	int nsans;
};

/*
 * Make and sign a certificate for @subject's public key: self-signed when
 * @issuer_der is NULL (then @issuer is @subject), else issued by the holder
 * of @issuer under the certificate @issuer_der. Random 16-byte serial
 * (hex in @serial_hex, 33 bytes), SKID, AKID, basicConstraints (CA with
 * pathlen 1 for the root, 0 for the intermediate), keyUsage, extKeyUsage
 * and SANs by role. The certificate as PEM (malloc'd), or NULL with @err.
 */
char *pki_cert_make(const struct pki_req *r, struct pki_key *subject, struct pki_key *issuer,
		    const unsigned char *issuer_der, int issuer_len, WC_RNG *rng,
		    char *serial_hex, char *err, size_t errlen);

/*
 * 0 when the private key @key_pem is the one of the (first) certificate in
 * @cert_pem, 1 when it is not, -1 when that cannot be told (why in @err).
 */
int pki_key_matches(const char *cert_pem, size_t certlen, const char *key_pem, size_t keylen,
		    char *err, size_t errlen);

/*
 * Take the time once: every certificate of this run is dated from it (an
 * intermediate made a second after its root would outlive it by as much).
 */
void pki_clock_start(void);

/*
 * The first certificate of @pem as DER (malloc'd, length in @len), and the
 * seconds it remains valid in @left (negative: expired). NULL with @err.
 */
unsigned char *pki_cert_der(const char *pem, size_t pemlen, int *len, long long *left,
			    char *err, size_t errlen);

#endif
