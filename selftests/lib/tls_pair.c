// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "tls_pair.h"

#include <wolfssl/wolfcrypt/sha256.h>

const char *pki_dir(void)
{
	const char *d = getenv("KMTLS_PKI");

	return d && *d ? d : "build/pki";
}

/* Interned: the same name always yields the same, stable pointer. */
const char *pki(const char *name)
{
	static char paths[64][512];
	static const char *names[64];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const char *ret = NULL;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < 64 && names[i]; i++)
		if (!strcmp(names[i], name))
			break;
	if (i < 64) {
		if (!names[i]) {
			names[i] = strdup(name);
			snprintf(paths[i], sizeof(paths[0]), "%s/%s", pki_dir(), name);
		}
		ret = paths[i];
	}
	pthread_mutex_unlock(&lock);
	return ret ? ret : "pki-name-table-full";
}

int tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l, c, s, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		return -errno;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		goto fail;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	s = accept(l, NULL, NULL);
	if (s < 0)
		goto fail;
	close(l);
	*client = c;
	*server = s;
	return 0;
fail:
	one = -errno;
	close(l);
	return one;
}

int tcp_connect_port(int port, int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	if (*fd < 0)
		return -errno;
	if (connect(*fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;

		close(*fd);
		*fd = -1;
		return err;
	}
	return 0;
}

struct accept_arg {
	WOLFSSL *ssl;
	int ret, err;
};

static void *accept_thread(void *p)
{
	struct accept_arg *a = p;

	a->ret = wolfSSL_accept(a->ssl);
	a->err = wolfSSL_get_error(a->ssl, a->ret);
	return NULL;
}

int tls_handshake_pair(WOLFSSL_CTX *cctx, WOLFSSL_CTX *sctx, int cfd, int sfd,
		       WOLFSSL **c, WOLFSSL **s, char *err, size_t errlen)
{
	*c = wolfSSL_new(cctx);
	*s = wolfSSL_new(sctx);
	if (!*c || !*s) {
		snprintf(err, errlen, "wolfSSL_new failed");
		return -1;
	}
	wolfSSL_set_fd(*c, cfd);
	wolfSSL_set_fd(*s, sfd);
	return tls_handshake_objs(*c, *s, err, errlen);
}

int tls_handshake_objs(WOLFSSL *c, WOLFSSL *s, char *err, size_t errlen)
{
	struct accept_arg a = { 0 };
	pthread_t t;
	int ret, cerr;

	wolfSSL_UseSNI(c, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	a.ssl = s;
	pthread_create(&t, NULL, accept_thread, &a);
	ret = wolfSSL_connect(c);
	cerr = wolfSSL_get_error(c, ret);
	if (ret != WOLFSSL_SUCCESS)
		shutdown(wolfSSL_get_fd(c), SHUT_RDWR);	/* unblock the server thread */
	pthread_join(t, NULL);
	if (ret != WOLFSSL_SUCCESS || a.ret != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "handshake failed: client %d (%s), server %d (%s)",
			 cerr, wolfSSL_ERR_reason_error_string(cerr), a.err,
			 wolfSSL_ERR_reason_error_string(a.err));
		return -1;
	}
	return 0;
}

/* After a failed wolfSSL call: EAGAIN, or EIO with the reasons kept in @e. */
static void end_fail(struct tls_end *e, int ret)
{
	int sys = errno, err = wolfSSL_get_error(e->ssl, ret);

	if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
		errno = EAGAIN;
		return;
	}
	e->tls_err = err;
	e->sys_err = sys;
	errno = EIO;
}

ssize_t end_write(struct tls_end *e, const void *buf, size_t len)
{
	ssize_t n;

	if (e->ktls) {
		n = send(e->fd, buf, len, MSG_NOSIGNAL);
		e->sys_err = n < 0 ? errno : 0;
		return n;
	}
	errno = 0;	/* so that end_fail() keeps no stale errno */
	n = wolfSSL_write(e->ssl, buf, (int)len);
	if (n > 0)
		return n;
	end_fail(e, (int)n);
	return -1;
}

ssize_t end_read(struct tls_end *e, void *buf, size_t len)
{
	unsigned char type;
	ssize_t n;

	if (e->pend_off < e->pend.len) {
		n = e->pend.len - e->pend_off;
		n = (size_t)n < len ? n : (ssize_t)len;
		memcpy(buf, e->pend.data + e->pend_off, n);
		e->pend_off += n;
		return n;
	}
	if (!e->ktls) {
		errno = 0;
		n = wolfSSL_read(e->ssl, buf, (int)len);
		if (n > 0)
			return n;
		if (wolfSSL_get_error(e->ssl, (int)n) == WOLFSSL_ERROR_ZERO_RETURN)
			return 0;
		end_fail(e, (int)n);
		return -1;
	}
	for (;;) {
		n = kmtls_ktls_recv(e->fd, buf, len, 0, &type);
		/* As end_write(): the socket's errno for end_why(). */
		e->sys_err = n < 0 ? errno : 0;
		if (n <= 0 || type == KMTLS_REC_APPDATA)
			return n;
		/* NewSessionTicket after the switch: not data, keep reading. */
		e->ctrl_records++;
		if (type != KMTLS_REC_HANDSHAKE) {
			e->sys_err = errno = EPROTO;
			return -1;
		}
	}
}

void stream_sha256(uint64_t seed, size_t bytes, unsigned char out[32])
{
	unsigned char buf[16384];
	struct stream_gen g;
	wc_Sha256 h;
	size_t n;

	stream_init(&g, seed);
	wc_InitSha256(&h);
	while (bytes) {
		n = bytes < sizeof(buf) ? bytes : sizeof(buf);
		stream_fill(&g, buf, n);
		wc_Sha256Update(&h, buf, (word32)n);
		bytes -= n;
	}
	wc_Sha256Final(&h, out);
}

const char *end_why(const struct tls_end *e)
{
	static __thread char why[160];

	if (!e->tls_err && !e->sys_err)
		return "";
	snprintf(why, sizeof(why), " (wolfSSL error %d: %s; socket: %s)", e->tls_err,
		 e->tls_err ? wolfSSL_ERR_reason_error_string(e->tls_err) : "none",
		 e->sys_err ? strerror(e->sys_err) : "no error");
	return why;
}

static int xfer_pending(struct xfer *x)
{
	return x->e->pend_off < x->e->pend.len ||
	       (!x->e->ktls && x->e->ssl && wolfSSL_pending(x->e->ssl));
}

static int xfer_send(struct xfer *x, unsigned char *out, size_t *out_len,
		     size_t *out_off, struct stream_gen *g, wc_Sha256 *h)
{
	ssize_t n;

	if (*out_off == *out_len) {
		*out_len = x->send_bytes - x->sent < 16384 ? x->send_bytes - x->sent : 16384;
		stream_fill(g, out, *out_len);
		wc_Sha256Update(h, out, (word32)*out_len);
		*out_off = 0;
	}
	n = end_write(x->e, out + *out_off, *out_len - *out_off);
	if (n < 0 && errno != EAGAIN) {
		snprintf(x->err, sizeof(x->err), "write after %zu bytes: %s%s", x->sent,
			 strerror(errno), end_why(x->e));
		return -1;
	}
	if (n > 0) {
		*out_off += n;
		x->sent += n;
	}
	return 0;
}

void *xfer_run(void *p)
{
	struct xfer *x = p;
	unsigned char out[16384], in[16384];
	size_t out_len = 0, out_off = 0;
	struct stream_gen g;
	wc_Sha256 hs, hr;
	ssize_t n;

	stream_init(&g, x->seed);
	wc_InitSha256(&hs);
	wc_InitSha256(&hr);
	x->sent = x->got = 0;
	while (x->sent < x->send_bytes || x->got < x->recv_bytes) {
		struct pollfd pfd = { .fd = x->e->fd, .events = POLLIN };
		int pending = xfer_pending(x);

		if (x->sent < x->send_bytes)
			pfd.events |= POLLOUT;
		if (!pending && poll(&pfd, 1, 30000) <= 0) {
			snprintf(x->err, sizeof(x->err), "stalled: sent %zu got %zu", x->sent, x->got);
			return NULL;
		}
		if (x->sent < x->send_bytes && (pfd.revents & POLLOUT) &&
		    xfer_send(x, out, &out_len, &out_off, &g, &hs))
			return NULL;
		if (x->got < x->recv_bytes && (pending || (pfd.revents & (POLLIN | POLLHUP | POLLERR)))) {
			n = end_read(x->e, in, sizeof(in) < x->recv_bytes - x->got ?
						sizeof(in) : x->recv_bytes - x->got);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				snprintf(x->err, sizeof(x->err), "read after %zu bytes: %s%s", x->got,
					 n == 0 ? "EOF" : strerror(errno), n ? end_why(x->e) : "");
				return NULL;
			}
			if (n > 0) {
				wc_Sha256Update(&hr, in, (word32)n);
				x->got += n;
			}
		}
	}
	wc_Sha256Final(&hs, x->sent_sha);
	wc_Sha256Final(&hr, x->got_sha);
	return NULL;
}

int end_nonblock(struct tls_end *e)
{
	if (!e->ktls && e->ssl)
		wolfSSL_set_using_nonblock(e->ssl, 1);
	return fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) | O_NONBLOCK);
}

int exchange_and_verify(struct tls_end *a, struct tls_end *b, size_t bytes,
			char *err, size_t errlen)
{
	struct xfer xa = { .e = a, .send_bytes = bytes, .recv_bytes = bytes,
			   .seed = STREAM_SEED_C2S };
	struct xfer xb = { .e = b, .send_bytes = bytes, .recv_bytes = bytes,
			   .seed = STREAM_SEED_S2C };
	pthread_t ta, tb;

	if (end_nonblock(a) || end_nonblock(b)) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		return -1;
	}
	pthread_create(&ta, NULL, xfer_run, &xa);
	pthread_create(&tb, NULL, xfer_run, &xb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (xa.err[0] || xb.err[0]) {
		snprintf(err, errlen, "a: %s; b: %s", xa.err[0] ? xa.err : "ok",
			 xb.err[0] ? xb.err : "ok");
		return -1;
	}
	if (memcmp(xa.sent_sha, xb.got_sha, 32) || memcmp(xb.sent_sha, xa.got_sha, 32)) {
		snprintf(err, errlen, "SHA-256 mismatch: data corrupted in transit");
		return -1;
	}
	return 0;
}

int tls_client_open(const struct tls_client_opts *o, struct tls_end *e,
		    char *err, size_t errlen)
{
	struct kmtls_tls_conf conf = {
		.cert = o->cert, .key = o->key, .ca = o->ca ? o->ca : pki("ca.pem"),
		.tls_min = o->tls12 ? 0x0303 : 0x0304, .tls_max = o->tls12 ? 0x0303 : 0,
		.ciphers = o->ciphers,
	};
	WOLFSSL_CTX *ctx;
	int ret;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	ctx = kmtls_tls_ctx_new(&conf, err, errlen);
	if (!ctx)
		return -1;
	ret = tcp_connect_port(o->port, &e->fd);
	if (ret) {
		snprintf(err, errlen, "connect to port %d: %s", o->port, strerror(-ret));
		wolfSSL_CTX_free(ctx);
		return -1;
	}
	e->ssl = wolfSSL_new(ctx);
	wolfSSL_CTX_free(ctx);	/* the session keeps its own reference */
	if (!e->ssl)
		return snprintf(err, errlen, "wolfSSL_new failed"), -1;
	wolfSSL_set_fd(e->ssl, e->fd);
	wolfSSL_UseSNI(e->ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	ret = wolfSSL_connect(e->ssl);
	if (ret != WOLFSSL_SUCCESS) {
		ret = wolfSSL_get_error(e->ssl, ret);
		snprintf(err, errlen, "handshake: %s (%d)", wolfSSL_ERR_reason_error_string(ret), ret);
		return -1;
	}
	return 0;
}

void tls_end_close(struct tls_end *e)
{
	if (e->ssl)
		wolfSSL_free(e->ssl);
	if (e->fd >= 0)
		close(e->fd);
	free(e->pend.data);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
}

long tls_stat(const char *name)
{
	char line[128], key[64];
	long v, total = -1;
	FILE *f = fopen("/proc/net/tls_stat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", key, &v) == 2 && !strcmp(key, name))
			total = v;
	fclose(f);
	return total;
}
