// SPDX-License-Identifier: GPL-2.0-or-later
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include "version.h"

struct feature {
	const char *name;
	int on;
};

/*
 * Features read from wolfSSL's options.h at build time: the assembly entries
 * are how an operator tells this build from Debian's portable (slow) one.
 */
static const struct feature features[] = {
#ifdef WOLFSSL_SP_X86_64_ASM
	{ "sp-asm-x86_64", 1 },
#else
	{ "sp-asm-x86_64", 0 },
#endif
#ifdef WOLFSSL_AESNI
	{ "aesni", 1 },
#else
	{ "aesni", 0 },
#endif
#ifdef USE_INTEL_SPEEDUP
	{ "intelasm-avx", 1 },
#else
	{ "intelasm-avx", 0 },
#endif
#ifdef CUSTOM_RAND_GENERATE_BLOCK
	{ "rng-getrandom", 1 },
#else
	{ "rng-getrandom", 0 },
#endif
#ifdef WOLFSSL_TLS13
	{ "tls13", 1 },
#else
	{ "tls13", 0 },
#endif
#ifdef ATOMIC_USER
	{ "atomic-user", 1 },
#else
	{ "atomic-user", 0 },
#endif
#ifdef HAVE_SECRET_CALLBACK
	{ "secret-callback", 1 },
#else
	{ "secret-callback", 0 },
#endif
#ifdef HAVE_SESSION_TICKET
	{ "session-ticket", 1 },
#else
	{ "session-ticket", 0 },
#endif
#ifdef HAVE_CRL
	{ "crl", 1 },
#else
	{ "crl", 0 },
#endif
#ifdef HAVE_OCSP
	{ "ocsp", 1 },
#else
	{ "ocsp", 0 },
#endif
#ifdef HAVE_CERTIFICATE_STATUS_REQUEST
	{ "ocsp-stapling", 1 },
#else
	{ "ocsp-stapling", 0 },
#endif
#ifdef WOLFSSL_CERT_GEN
	{ "certgen", 1 },
#else
	{ "certgen", 0 },
#endif
#ifdef HAVE_ED25519
	{ "ed25519", 1 },
#else
	{ "ed25519", 0 },
#endif
#ifdef HAVE_CURVE25519
	{ "x25519", 1 },
#else
	{ "x25519", 0 },
#endif
#ifdef HAVE_ALPN
	{ "alpn", 1 },
#else
	{ "alpn", 0 },
#endif
#ifdef HAVE_SNI
	{ "sni", 1 },
#else
	{ "sni", 0 },
#endif
#ifdef HAVE_PKCS11
	{ "pkcs11", 1 },
#else
	{ "pkcs11", 0 },
#endif
};

void kmtls_print_version(FILE *out, const char *prog)
{
	size_t i;

	fprintf(out, "%s %s\n", prog, KMTLS_VERSION);
	fprintf(out, "wolfSSL %s (library %s), static\n", LIBWOLFSSL_VERSION_STRING,
		wolfSSL_lib_version());
	fprintf(out, "wolfSSL features:");
	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		fprintf(out, " %c%s", features[i].on ? '+' : '-', features[i].name);
	fprintf(out, "\ncpu: aes-ni %s, avx2 %s, bmi2 %s\n",
		__builtin_cpu_supports("aes") ? "yes" : "no",
		__builtin_cpu_supports("avx2") ? "yes" : "no",
		__builtin_cpu_supports("bmi2") ? "yes" : "no");
}
