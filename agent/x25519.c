// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * X25519 key shares from the fixed-base table.
 *
 * wolfSSL 5.5.4 computes an X25519 public key with the variable-base
 * Montgomery ladder, as if the base point were any point: a third of a
 * resumed TLS 1.3 handshake's server CPU. The same point [s]B comes out of
 * the Ed25519 fixed-base comb (precomputed multiples of B, constant time,
 * wolfSSL's own assembly) about three times faster; the Edwards y of the
 * result maps to the Montgomery u that X25519 uses by u = (1 + y) / (1 - y)
 * (RFC 7748, section 4.1).
 *
 * TLS 1.3 key shares call wc_curve25519_make_key() from tls.c with no hook
 * (the PK callback covers TLS 1.2 only), so kmtlsd is linked with
 * --wrap=wc_curve25519_make_key: this file is that wrapper. The private key
 * is drawn exactly as wolfSSL draws it (same RNG, same clamping); only the
 * public key's arithmetic differs, and selftests/agent/x25519_test checks
 * it against the ladder.
 */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/fe_operations.h>
#include <wolfssl/wolfcrypt/ge_operations.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/types.h>

#include "x25519.h"

int __real_wc_curve25519_make_key(WC_RNG *rng, int keysize, curve25519_key *key);
int __wrap_wc_curve25519_make_key(WC_RNG *rng, int keysize, curve25519_key *key);

int kmtls_x25519_public(unsigned char pub[32], const unsigned char priv[32])
{
	unsigned char any = 0;
	fe num, den, inv, u;
	ge_p3 a;

	/* The comb takes scalars below 2^255; a clamped key always is. */
	if ((priv[0] & 7) || (priv[31] & 0x80) || !(priv[31] & 0x40))
		return -1;
	fe_init();
	ge_scalarmult_base(&a, priv);
	fe_add(num, a.Z, a.Y);
	fe_sub(den, a.Z, a.Y);
	/* Z == Y is the identity: no clamped key yields it, the ladder decides. */
	fe_tobytes(pub, den);
	for (int i = 0; i < 32; i++)
		any |= pub[i];
	if (!any)
		return -1;
	fe_invert(inv, den);
	fe_mul(u, num, inv);
	fe_tobytes(pub, u);
	/* [s]B and its coordinates reveal s to whoever reads freed stack. */
	explicit_bzero(&a, sizeof(a));
	explicit_bzero(num, sizeof(num));
	explicit_bzero(den, sizeof(den));
	return 0;
}

int __wrap_wc_curve25519_make_key(WC_RNG *rng, int keysize, curve25519_key *key)
{
	int ret;

	/* Hardware keys and odd sizes take wolfSSL's own path. */
	if (!key || !rng || keysize != CURVE25519_KEYSIZE || key->devId != INVALID_DEVID)
		return __real_wc_curve25519_make_key(rng, keysize, key);
	ret = wc_curve25519_make_priv(rng, keysize, key->k);
	if (ret)
		return ret;
	key->privSet = 1;
	if (kmtls_x25519_public(key->p.point, key->k))
		return __real_wc_curve25519_make_key(rng, keysize, key);
	key->pubSet = 1;
	return 0;
}
