// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * --crypto-floor: what the public-key work of one mTLS handshake costs in
 * CPU time, measured with wolfCrypt directly (the same build kmtlsd uses)
 * on the thread's own CPU clock, so that busy neighbours do not count; and
 * the handshake rate per core-second that would leave for nothing else.
 *
 * A server-side TLS 1.3 full handshake with client certificates, ECDSA P-256
 * certificates (client sends leaf + intermediate) and X25519:
 *   1 ECDSA sign    its CertificateVerify
 *   3 ECDSA verify  the client's CertificateVerify, the leaf's signature by
 *                   the intermediate, and the intermediate's by the root
 *   1 X25519        an ephemeral key pair and the shared secret
 * wolfSSL 5.5.4 checks the intermediate's signature on every handshake even
 * when it already holds that intermediate as a CA (ProcessPeerCertParse
 * verifies before it asks AlreadySigner); counted with uprobes on kmtlsd,
 * 3 wc_ecc_verify_hash per handshake. The figure for a library that caches
 * it (2 verifies) is printed too. A resumed one (psk_dhe_ke) keeps only the
 * X25519.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "bench.h"

#define HS_VERIFIES		3	/* what wolfSSL does per full handshake */
#define HS_VERIFIES_CACHED	2	/* with the intermediate's check cached */

#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

struct floor_keys {
	WC_RNG rng;
	ecc_key ecc;
	curve25519_key peer;
	byte hash[WC_SHA256_DIGEST_SIZE];
	byte sig[ECC_MAX_SIG_SIZE];
	word32 siglen;
};

static int op_sign(struct floor_keys *k)
{
	byte sig[ECC_MAX_SIG_SIZE];
	word32 len = sizeof(sig);

	return wc_ecc_sign_hash(k->hash, sizeof(k->hash), sig, &len, &k->rng, &k->ecc);
}

static int op_verify(struct floor_keys *k)
{
	int good = 0, ret;

	ret = wc_ecc_verify_hash(k->sig, k->siglen, k->hash, sizeof(k->hash), &good, &k->ecc);
	return ret ? ret : !good;
}

static int op_x25519(struct floor_keys *k)
{
	curve25519_key eph;
	byte secret[CURVE25519_KEYSIZE];
	word32 len = sizeof(secret);
	int ret;

	if (wc_curve25519_init(&eph))
		return -1;
	ret = wc_curve25519_make_key(&k->rng, CURVE25519_KEYSIZE, &eph);
	if (!ret)
		ret = wc_curve25519_shared_secret(&eph, &k->peer, secret, &len);
	wc_curve25519_free(&eph);
	return ret;
}

static int keys_init(struct floor_keys *k)
{
	static const char msg[] = "kmtls-bench crypto floor";

	memset(k, 0, sizeof(*k));
	if (wc_InitRng(&k->rng) || wc_ecc_init(&k->ecc) || wc_curve25519_init(&k->peer))
		return -1;
	if (wc_ecc_make_key_ex(&k->rng, 32, &k->ecc, ECC_SECP256R1) ||
	    wc_ecc_set_rng(&k->ecc, &k->rng) ||
	    wc_curve25519_make_key(&k->rng, CURVE25519_KEYSIZE, &k->peer) ||
	    wc_Sha256Hash((const byte *)msg, sizeof(msg) - 1, k->hash))
		return -1;
	k->siglen = sizeof(k->sig);
	return wc_ecc_sign_hash(k->hash, sizeof(k->hash), k->sig, &k->siglen, &k->rng, &k->ecc);
}

static void keys_free(struct floor_keys *k)
{
	wc_ecc_free(&k->ecc);
	wc_curve25519_free(&k->peer);
	wc_FreeRng(&k->rng);
}

/* This thread's CPU clock: the rates are per core-second, neighbours or not. */
static uint64_t cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Operations per CPU-second of op, run back to back for duration CPU-seconds. */
static double measure(struct floor_keys *k, int (*op)(struct floor_keys *),
		      double duration)
{
	uint64_t start, end, now, n = 0;
	int i;

	for (i = 0; i < 8; i++)		/* warm caches and branch predictors */
		if (op(k))
			return -1;
	start = cpu_now();
	end = start + (uint64_t)(duration * 1e9);
	do {
		for (i = 0; i < 8; i++)
			if (op(k))
				return -1;
		n += 8;
		now = cpu_now();
	} while (now < end);
	return (double)n * 1e9 / (double)(now - start);
}

static json_object *jnum(double v, int decimals)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

static void report(double sign, double verify, double x, double duration, int json)
{
	double hs_s = 1 / sign + HS_VERIFIES / verify + 1 / x;
	double cached_s = 1 / sign + HS_VERIFIES_CACHED / verify + 1 / x;
	json_object *o;

	if (!json) {
		printf("crypto floor: wolfCrypt %s, per core-second (thread CPU time), %.1f s each\n",
		       LIBWOLFSSL_VERSION_STRING, duration);
		printf("  ECDSA P-256 sign         %10.0f/s  %8.1f us\n", sign, 1e6 / sign);
		printf("  ECDSA P-256 verify       %10.0f/s  %8.1f us\n", verify, 1e6 / verify);
		printf("  X25519 keygen + derive   %10.0f/s  %8.1f us\n", x, 1e6 / x);
		printf("  server TLS 1.3 mTLS handshake = 1 sign + %d verify + 1 X25519 = %.1f us\n",
		       HS_VERIFIES, hs_s * 1e6);
		printf("  ceiling: %.0f full handshakes per core-second"
		       " (%.0f if the intermediate's check were cached;"
		       " resumed, psk_dhe_ke: %.0f)\n", 1 / hs_s, 1 / cached_s, x);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "wolfssl", json_object_new_string(LIBWOLFSSL_VERSION_STRING));
	json_object_object_add(o, "duration_s", jnum(duration, 3));
	json_object_object_add(o, "ecdsa_p256_sign_per_s", jnum(sign, 1));
	json_object_object_add(o, "ecdsa_p256_verify_per_s", jnum(verify, 1));
	json_object_object_add(o, "x25519_per_s", jnum(x, 1));
	json_object_object_add(o, "verifies_per_hs", json_object_new_int(HS_VERIFIES));
	json_object_object_add(o, "hs_crypto_us", jnum(hs_s * 1e6, 2));
	json_object_object_add(o, "ceiling_hs_per_s", jnum(1 / hs_s, 1));
	json_object_object_add(o, "ceiling_cached_chain_hs_per_s", jnum(1 / cached_s, 1));
	json_object_object_add(o, "ceiling_resumed_hs_per_s", jnum(x, 1));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int bench_crypto_floor(double duration, int json)
{
	struct floor_keys k;
	double sign, verify, x;
	int ret = 1;

	if (keys_init(&k)) {
		fprintf(stderr, "kmtls-bench: cannot set up wolfCrypt keys\n");
		goto out;
	}
	sign = measure(&k, op_sign, duration);
	verify = measure(&k, op_verify, duration);
	x = measure(&k, op_x25519, duration);
	if (sign <= 0 || verify <= 0 || x <= 0) {
		fprintf(stderr, "kmtls-bench: a wolfCrypt operation failed\n");
		goto out;
	}
	report(sign, verify, x, duration, json);
	ret = 0;
out:
	keys_free(&k);
	return ret;
}
