/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One connection through kmtlsd in front of an echo backend, as a client. */
#ifndef KMTLS_SELFTEST_CLIENT_H
#define KMTLS_SELFTEST_CLIENT_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/*
 * A handshake to 127.0.0.1:@port with @cert and @key (paths) and "ping"
 * echoed back: 1 when it got through, else 0.
 */
int client_ping(int port, const char *cert, const char *key);

/*
 * One connection with @ctx, offering @use (NULL: none); a round trip so
 * that the ticket has been read. 1 resumed, 0 full handshake, -1 refused
 * or failed. With @out, the session to offer next time (to free).
 */
int client_visit(WOLFSSL_CTX *ctx, int port, WOLFSSL_SESSION *use, WOLFSSL_SESSION **out);

#endif
