// SPDX-License-Identifier: GPL-2.0-or-later
#include <unistd.h>

#include "client.h"
#include "tls_pair.h"

int client_ping(int port, const char *cert, const char *key)
{
	struct tls_client_opts o = { .port = port, .cert = cert, .key = key };
	char err[256], buf[4];
	struct tls_end e;
	int ok = 0;

	if (!tls_client_open(&o, &e, err, sizeof(err)))
		ok = wolfSSL_write(e.ssl, "ping", 4) == 4 && wolfSSL_read(e.ssl, buf, 4) == 4;
	if (e.ssl)
		wolfSSL_shutdown(e.ssl);
	tls_end_close(&e);
	return ok;
}

int client_visit(WOLFSSL_CTX *ctx, int port, WOLFSSL_SESSION *use, WOLFSSL_SESSION **out)
{
	char buf[4];
	WOLFSSL *ssl;
	int fd, ret = -1;

	if (tcp_connect_port(port, &fd))
		return -1;
	ssl = wolfSSL_new(ctx);
	wolfSSL_set_fd(ssl, fd);
	wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	if (use)
		wolfSSL_set_session(ssl, use);
	/* TLS 1.3: the client's Finished goes before the server's verdict. */
	if (wolfSSL_connect(ssl) == WOLFSSL_SUCCESS && wolfSSL_write(ssl, "ping", 4) == 4 &&
	    wolfSSL_read(ssl, buf, 4) == 4) {
		ret = wolfSSL_session_reused(ssl) ? 1 : 0;
		if (out)
			*out = wolfSSL_get1_session(ssl);
	}
	wolfSSL_shutdown(ssl);
	wolfSSL_free(ssl);
	close(fd);
	return ret;
}
