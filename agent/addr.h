/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_ADDR_H
#define KMTLS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Parse "1.2.3.4:443", "[::1]:443" or, when allow_unix, "unix:/path".
 * Returns 0 or -1 with a reason in err.
 */
int kmtls_addr_parse(const char *s, int allow_unix, struct sockaddr_storage *ss,
		     socklen_t *len, char *err, size_t errlen);

/* "1.2.3.4:443", "[::1]:443" or "unix:/path" into buf. */
const char *kmtls_addr_str(const struct sockaddr *sa, socklen_t len, char *buf,
			   size_t buflen);

/*
 * 1 when two addresses kmtls_addr_parse() accepted name the same socket
 * address, however spelled ("127.0.0.1:443" and "127.0.0.1:0443", "[::]"
 * and "[0::0]", "unix:/run//x.sock" and "unix:/run/x.sock"); else 0.
 */
int kmtls_addr_same(const char *a, const char *b);

#define KMTLS_ADDRSTRLEN 128

#endif
