/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wolfSSL's random source in kmtls's build (scripts/wolfssl.sh passes
 * -DCUSTOM_RAND_GENERATE_BLOCK=kmtls_wolfssl_getrandom and -include's this
 * file into every wolfSSL object).
 *
 * Stock wolfSSL gives every connection its own SHA-256 Hash_DRBG: open,
 * read and close /dev/urandom, a known-answer health test and an
 * instantiate per connection, then SHA-256 for every block drawn: a tenth
 * of a resumed handshake's CPU in kmtlsd. The kernel's CRNG behind
 * getrandom(2) is the source that DRBG was seeded from anyway; asking it
 * directly costs one system call per draw and keeps no generator state in
 * the process (nothing to leak in a core dump, nothing to fork).
 * A failure fails the draw, and with it the handshake: there is no weaker
 * fallback.
 */
#ifndef KMTLS_WOLFSSL_GETRANDOM_H
#define KMTLS_WOLFSSL_GETRANDOM_H
#ifndef __ASSEMBLER__	/* -include reaches wolfSSL's .S files too */

#include <errno.h>
#include <sys/random.h>

static inline int kmtls_wolfssl_getrandom(unsigned char *out, unsigned int sz)
{
	while (sz) {
		ssize_t n = getrandom(out, sz, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		out += n;
		sz -= (unsigned int)n;
	}
	return 0;
}

#endif
#endif
