// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl pki: keys and certificates with wolfCrypt (our build has
 * certgen, certreq, certext, keygen and WOLFSSL_ALT_NAMES). Keys are
 * written as PKCS#8 whatever the algorithm, like `openssl genpkey`.
 *
 * wolfSSL 5.5.4 writes basicConstraints without the critical flag (its
 * encoder has none); everything that verifies chains here accepts that.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "pki.h"

#define DER_MAX		(32 << 10)
#define SERIAL_LEN	16
#define DNS_LABEL_MAX	63
#define DNS_NAME_MAX	253

/* The one "now" of this run (pki_clock_start), for every certificate. */
static time_t pki_now;

static const struct {
	const char *name;
	int key_type;		/* of wc_MakeCert_ex and friends */
	int sig_type;		/* when this key signs */
} algs[PKI_NALGS] = {
	[PKI_EC256] = { "ec256", ECC_TYPE, CTC_SHA256wECDSA },
	[PKI_EC384] = { "ec384", ECC_TYPE, CTC_SHA384wECDSA },
	[PKI_RSA2048] = { "rsa2048", RSA_TYPE, CTC_SHA256wRSA },
	[PKI_ED25519] = { "ed25519", ED25519_TYPE, CTC_ED25519 },
};

int pki_alg_parse(const char *s)
{
	int i;

	for (i = 0; i < PKI_NALGS; i++)
		if (!strcmp(s, algs[i].name))
			return i;
	return -1;
}

const char *pki_alg_name(int alg)
{
	return alg >= 0 && alg < PKI_NALGS ? algs[alg].name : "?";
}

static int wfail(char *err, size_t errlen, const char *what, int ret)
{
	snprintf(err, errlen, "%s: %s (wolfCrypt error %d)", what, wc_GetErrorString(ret), ret);
	return -1;
}

static void *key_ptr(struct pki_key *key)
{
	switch (key->alg) {
	case PKI_RSA2048:
		return &key->k.rsa;
	case PKI_ED25519:
		return &key->k.ed;
	default:
		return &key->k.ecc;
	}
}

void pki_key_free(struct pki_key *key)
{
	switch (key->alg) {
	case PKI_EC256:
	case PKI_EC384:
		wc_ecc_free(&key->k.ecc);
		break;
	case PKI_RSA2048:
		wc_FreeRsaKey(&key->k.rsa);
		break;
	case PKI_ED25519:
		wc_ed25519_free(&key->k.ed);
		break;
	}
	key->alg = -1;
}

int pki_key_gen(struct pki_key *key, int alg, WC_RNG *rng, char *err, size_t errlen)
{
	int ret;

	key->alg = -1;
	switch (alg) {
	case PKI_EC256:
	case PKI_EC384:
		ret = wc_ecc_init(&key->k.ecc);
		if (ret)
			break;
		key->alg = alg;
		ret = alg == PKI_EC256 ? wc_ecc_make_key_ex(rng, 32, &key->k.ecc, ECC_SECP256R1) :
		      wc_ecc_make_key_ex(rng, 48, &key->k.ecc, ECC_SECP384R1);
		if (!ret)
			ret = wc_ecc_set_rng(&key->k.ecc, rng);
		break;
	case PKI_RSA2048:
		ret = wc_InitRsaKey(&key->k.rsa, NULL);
		if (ret)
			break;
		key->alg = alg;
		ret = wc_MakeRsaKey(&key->k.rsa, 2048, WC_RSA_EXPONENT, rng);
		if (!ret)
			ret = wc_RsaSetRNG(&key->k.rsa, rng);
		break;
	default:
		ret = wc_ed25519_init(&key->k.ed);
		if (ret)
			break;
		key->alg = alg;
		ret = wc_ed25519_make_key(rng, ED25519_KEY_SIZE, &key->k.ed);
		break;
	}
	if (ret) {
		pki_key_free(key);
		return wfail(err, errlen, "key generation", ret);
	}
	return 0;
}

/*
 * PKCS#8 may leave out an Ed25519 key's public half (ours do), and signing
 * needs it: derive it from the private one.
 */
static int ed25519_public(ed25519_key *ed)
{
	byte priv[ED25519_KEY_SIZE], pub[ED25519_PUB_KEY_SIZE];
	word32 len = sizeof(priv);
	int ret = 0;

	if (ed->pubKeySet)
		return 0;
	if (wc_ed25519_export_private_only(ed, priv, &len) ||
	    wc_ed25519_make_public(ed, pub, sizeof(pub)) ||
	    wc_ed25519_import_private_key(priv, len, pub, sizeof(pub), ed))
		ret = -1;
	explicit_bzero(priv, sizeof(priv));
	return ret;
}

/* Try each algorithm's decoder; they all take PKCS#8 and their own form. */
static int key_decode(struct pki_key *key, const byte *der, word32 len, WC_RNG *rng)
{
	word32 idx = 0;

	if (!wc_ecc_init(&key->k.ecc)) {
		if (!wc_EccPrivateKeyDecode(der, &idx, &key->k.ecc, len) && key->k.ecc.dp &&
		    (key->k.ecc.dp->id == ECC_SECP256R1 || key->k.ecc.dp->id == ECC_SECP384R1)) {
			key->alg = key->k.ecc.dp->id == ECC_SECP256R1 ? PKI_EC256 : PKI_EC384;
			return wc_ecc_set_rng(&key->k.ecc, rng);
		}
		wc_ecc_free(&key->k.ecc);
	}
	idx = 0;
	if (!wc_ed25519_init(&key->k.ed)) {
		if (!wc_Ed25519PrivateKeyDecode(der, &idx, &key->k.ed, len)) {
			key->alg = PKI_ED25519;
			return ed25519_public(&key->k.ed);
		}
		wc_ed25519_free(&key->k.ed);
	}
	idx = 0;
	if (!wc_InitRsaKey(&key->k.rsa, NULL)) {
		if (!wc_RsaPrivateKeyDecode(der, &idx, &key->k.rsa, len)) {
			key->alg = PKI_RSA2048;
			return wc_RsaSetRNG(&key->k.rsa, rng);
		}
		wc_FreeRsaKey(&key->k.rsa);
	}
	return -1;
}

int pki_key_load(struct pki_key *key, const char *pem, size_t len, WC_RNG *rng,
		 char *err, size_t errlen)
{
	DerBuffer *der = NULL;
	int ret;

	key->alg = -1;
	ret = wc_PemToDer((const unsigned char *)pem, (long)len, PRIVATEKEY_TYPE, &der, NULL,
			  NULL, NULL);
	if (ret)
		return wfail(err, errlen, "not a PEM private key", ret);
	ret = key_decode(key, der->buffer, der->length, rng);
	wc_FreeDer(&der);
	if (ret) {
		if (key->alg >= 0)
			pki_key_free(key);
		snprintf(err, errlen, "not an ec256, ec384, RSA or ed25519 private key");
		return -1;
	}
	return 0;
}

static char *to_pem(const byte *der, int len, int type, char *err, size_t errlen)
{
	int cap = len * 4 / 3 + 256, ret;
	char *pem = malloc((size_t)cap + 1);

	if (!pem) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ret = wc_DerToPem(der, (word32)len, (byte *)pem, (word32)cap, type);
	if (ret <= 0) {
		free(pem);
		wfail(err, errlen, "PEM encoding", ret);
		return NULL;
	}
	pem[ret] = 0;
	return pem;
}

char *pki_key_pem(struct pki_key *key, char *err, size_t errlen)
{
	byte der[4096], raw[4096];
	word32 len = sizeof(der);
	char *pem = NULL;
	int ret;

	switch (key->alg) {
	case PKI_EC256:
	case PKI_EC384:
		ret = wc_EccKeyToPKCS8(&key->k.ecc, der, &len);
		break;
	case PKI_RSA2048:
		ret = wc_RsaKeyToDer(&key->k.rsa, raw, sizeof(raw));
		if (ret > 0)
			ret = wc_CreatePKCS8Key(der, &len, raw, (word32)ret, RSAk, NULL, 0);
		break;
	default:
		ret = wc_Ed25519PrivateKeyToDer(&key->k.ed, der, sizeof(der));
		len = (word32)ret;
		break;
	}
	if (ret <= 0)
		wfail(err, errlen, "key encoding", ret);
	else
		pem = to_pem(der, (int)len, PKCS8_PRIVATEKEY_TYPE, err, errlen);
	explicit_bzero(der, sizeof(der));
	explicit_bzero(raw, sizeof(raw));
	return pem;
}

/* wolfSSL's own check (the public key of the certificate is the key's). */
int pki_key_matches(const char *cert_pem, size_t certlen, const char *key_pem, size_t keylen,
		    char *err, size_t errlen)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	int ret = -1;

	if (!ctx)
		snprintf(err, errlen, "out of memory");
	else if (wolfSSL_CTX_use_certificate_buffer(ctx, (const unsigned char *)cert_pem,
						    (long)certlen, WOLFSSL_FILETYPE_PEM) !=
		 WOLFSSL_SUCCESS)
		snprintf(err, errlen, "wolfSSL cannot use the certificate");
	else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key_pem,
						   (long)keylen, WOLFSSL_FILETYPE_PEM) !=
		 WOLFSSL_SUCCESS)
		snprintf(err, errlen, "wolfSSL cannot use the key");
	else
		ret = wolfSSL_CTX_check_private_key(ctx) == WOLFSSL_SUCCESS ? 0 : 1;
	wolfSSL_CTX_free(ctx);
	return ret;
}

static time_t fixed_time(time_t *t)
{
	if (t)
		*t = pki_now;
	return pki_now;
}

void pki_clock_start(void)
{
	pki_now = time(NULL);
	wc_SetTimeCb(fixed_time);
}

/* ---- subjectAltName --------------------------------------------------- */

int pki_dns_check(const char *name, size_t len, char *why, size_t whylen)
{
	size_t start = 0, i;

	if (len > DNS_NAME_MAX) {
		snprintf(why, whylen, "a DNS name has at most %d characters, this one %zu",
			 DNS_NAME_MAX, len);
		return -1;
	}
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		if (i == start) {
			snprintf(why, whylen, "an empty label (two dots in a row, or a dot at "
				 "an end)");
			return -1;
		}
		if (i - start > DNS_LABEL_MAX) {
			snprintf(why, whylen, "a DNS label has at most %d characters, '%.*s' "
				 "has %zu", DNS_LABEL_MAX, (int)(i - start), name + start,
				 i - start);
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

int pki_san_parse(const char *s, struct pki_san *sans, int *n, char *err, size_t errlen)
{
	char buf[4096], *tok, *save = NULL, why[160];
	struct pki_san *x;
	const char *v;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "--san list too long");
		return -1;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == PKI_MAX_SANS) {
			snprintf(err, errlen, "at most %d SANs", PKI_MAX_SANS);
			return -1;
		}
		x = &sans[*n];
		memset(x, 0, sizeof(*x));
		if (!strncasecmp(tok, "DNS:", 4)) {
			x->type = ASN_DNS_TYPE;
		} else if (!strncasecmp(tok, "URI:", 4)) {
			x->type = ASN_URI_TYPE;
		} else if (!strncasecmp(tok, "IP:", 3)) {
			x->type = ASN_IP_TYPE;
		} else {
			snprintf(err, errlen, "bad SAN '%s': want DNS:name, IP:address or URI:uri",
				 tok);
			return -1;
		}
		v = strchr(tok, ':') + 1;
		if (x->type == ASN_IP_TYPE) {
			x->len = inet_pton(AF_INET, v, x->value) == 1 ? 4 :
				 inet_pton(AF_INET6, v, x->value) == 1 ? 16 : 0;
		} else if (strlen(v) < sizeof(x->value)) {
			x->len = (int)strlen(v);
			memcpy(x->value, v, (size_t)x->len);
		}
		if (x->type == ASN_DNS_TYPE && x->len &&
		    pki_dns_check(v, (size_t)x->len, why, sizeof(why))) {
			snprintf(err, errlen, "bad SAN '%s': %s", tok, why);
			return -1;
		}
		if (x->len == 0) {
			snprintf(err, errlen, "bad SAN '%s'%s", tok,
				 x->type == ASN_IP_TYPE ? ": not an IPv4 or IPv6 address" : "");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

void pki_san_str(const struct pki_san *san, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (san->type == ASN_IP_TYPE) {
		inet_ntop(san->len == 4 ? AF_INET : AF_INET6, san->value, a, sizeof(a));
		snprintf(buf, len, "IP:%s", a);
	} else {
		snprintf(buf, len, "%s:%.*s", san->type == ASN_DNS_TYPE ? "DNS" : "URI",
			 san->len, san->value);
	}
}

/* The SAN extension's value, encoded by wolfSSL from a DNS_entry list. */
static int set_sans(Cert *cert, const struct pki_req *r)
{
	DNS_entry e[PKI_MAX_SANS];
	int i, ret;

	if (!r->nsans)
		return 0;
	memset(e, 0, sizeof(e));
	for (i = 0; i < r->nsans; i++) {
		e[i].next = i + 1 < r->nsans ? &e[i + 1] : NULL;
		e[i].type = r->sans[i].type;
		e[i].len = r->sans[i].len;
		e[i].name = (char *)r->sans[i].value;
	}
	ret = FlattenAltNames(cert->altNames, sizeof(cert->altNames), e);
	if (ret <= 0)
		return ret ? ret : BUFFER_E;
	cert->altNamesSz = ret;
	return 0;
}

/* ---- certificates ------------------------------------------------------ */

static int set_usage(Cert *cert, const struct pki_req *r)
{
	int ret;

	switch (r->role) {
	case PKI_ROOT:
	case PKI_INTERMEDIATE:
		cert->isCA = 1;
		cert->pathLen = r->role == PKI_ROOT ? 1 : 0;
		cert->pathLenSet = 1;
		return wc_SetKeyUsage(cert, "keyCertSign,cRLSign");
	default:
		cert->isCA = 0;
		cert->basicConstSet = 1;	/* CA:FALSE */
		/* RSA key transport is TLS 1.2's static RSA: not offered, not needed. */
		ret = wc_SetKeyUsage(cert, "digitalSignature");
		if (!ret)
			ret = wc_SetExtKeyUsage(cert, r->role == PKI_SERVER ? "serverAuth" :
						"clientAuth");
		if (!ret)
			ret = set_sans(cert, r);
		return ret;
	}
}

static int set_serial(Cert *cert, WC_RNG *rng, char *hex)
{
	int ret = wc_RNG_GenerateBlock(rng, cert->serial, SERIAL_LEN), i;

	if (ret)
		return ret;
	/* Positive and of full length: no sign padding, no leading zero. */
	cert->serial[0] &= 0x7f;
	cert->serial[0] |= 0x10;
	cert->serialSz = SERIAL_LEN;
	for (i = 0; i < SERIAL_LEN; i++)
		sprintf(hex + 2 * i, "%02X", cert->serial[i]);
	return 0;
}

char *pki_cert_make(const struct pki_req *r, struct pki_key *subject, struct pki_key *issuer,
		    const unsigned char *issuer_der, int issuer_len, WC_RNG *rng,
		    char *serial_hex, char *err, size_t errlen)
{
	Cert *cert = calloc(1, sizeof(*cert));
	byte *der = malloc(DER_MAX);
	char *pem = NULL;
	const char *what = "certificate setup";
	int ret;

	if (!cert || !der) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = wc_InitCert(cert);
	if (ret)
		goto fail;
	cert->daysValid = r->days;
	snprintf(cert->subject.org, CTC_NAME_SIZE, "kmtls");
	snprintf(cert->subject.commonName, CTC_NAME_SIZE, "%s", r->cn);
	ret = set_serial(cert, rng, serial_hex);
	if (!ret) {
		what = "extensions";
		ret = set_usage(cert, r);
	}
	if (!ret)
		ret = wc_SetSubjectKeyIdFromPublicKey_ex(cert, algs[subject->alg].key_type,
							 key_ptr(subject));
	if (!ret && issuer_der) {
		what = "the issuer certificate";
		ret = wc_SetIssuerBuffer(cert, issuer_der, issuer_len);
		if (!ret)
			ret = wc_SetAuthKeyIdFromCert(cert, issuer_der, issuer_len);
	} else if (!ret) {
		ret = wc_SetAuthKeyIdFromPublicKey_ex(cert, algs[subject->alg].key_type,
						      key_ptr(subject));
	}
	if (ret)
		goto fail;
	what = "certificate encoding";
	cert->sigType = algs[issuer->alg].sig_type;
	ret = wc_MakeCert_ex(cert, der, DER_MAX, algs[subject->alg].key_type, key_ptr(subject),
			     rng);
	if (ret < 0)
		goto fail;
	what = "signing";
	ret = wc_SignCert_ex(cert->bodySz, cert->sigType, der, DER_MAX,
			     algs[issuer->alg].key_type, key_ptr(issuer), rng);
	if (ret < 0)
		goto fail;
	pem = to_pem(der, ret, CERT_TYPE, err, errlen);
	goto out;
fail:
	wfail(err, errlen, what, ret);
out:
	free(cert);
	free(der);
	return pem;
}

unsigned char *pki_cert_der(const char *pem, size_t pemlen, int *len, long long *left,
			    char *err, size_t errlen)
{
	unsigned char *der = malloc(DER_MAX);
	Cert *cert = calloc(1, sizeof(*cert));
	struct tm after;
	int ret;

	if (!der || !cert) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = wc_CertPemToDer((const unsigned char *)pem, (int)pemlen, der, DER_MAX, CERT_TYPE);
	if (ret <= 0) {
		wfail(err, errlen, "not a PEM certificate", ret);
		goto fail;
	}
	*len = ret;
	ret = wc_InitCert(cert);
	if (!ret)
		ret = wc_SetDatesBuffer(cert, der, *len);
	if (!ret)
		ret = wc_GetCertDates(cert, NULL, &after);
	if (ret) {
		wfail(err, errlen, "cannot read the certificate's validity", ret);
		goto fail;
	}
	*left = (long long)(timegm(&after) - (pki_now ? pki_now : time(NULL)));
	free(cert);
	return der;
fail:
	free(cert);
	free(der);
	return NULL;
}
