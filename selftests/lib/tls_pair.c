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

#include "tls_pair.h"

#include <wolfssl/wolfcrypt/sha256.h>

const char *pki_dir(void)
{
	const char *d = getenv("KMTLS_PKI");

	return d && *d ? d : "build/pki";
}

const char *pki(const char *name)
{
	static char slots[8][512];
	static int next;
	char *p = slots[next++ % 8];

	snprintf(p, sizeof(slots[0]), "%s/%s", pki_dir(), name);
	return p;
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
	struct accept_arg a = { 0 };
	pthread_t t;
	int ret, cerr;

	*c = wolfSSL_new(cctx);
	*s = wolfSSL_new(sctx);
	if (!*c || !*s) {
		snprintf(err, errlen, "wolfSSL_new failed");
		return -1;
	}
	wolfSSL_set_fd(*c, cfd);
	wolfSSL_set_fd(*s, sfd);
	wolfSSL_UseSNI(*c, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	a.ssl = *s;
	pthread_create(&t, NULL, accept_thread, &a);
	ret = wolfSSL_connect(*c);
	cerr = wolfSSL_get_error(*c, ret);
	if (ret != WOLFSSL_SUCCESS)
		shutdown(cfd, SHUT_RDWR);	/* unblock the server thread */
	pthread_join(t, NULL);
	if (ret != WOLFSSL_SUCCESS || a.ret != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "handshake failed: client %d (%s), server %d (%s)",
			 cerr, wolfSSL_ERR_reason_error_string(cerr), a.err,
			 wolfSSL_ERR_reason_error_string(a.err));
		return -1;
	}
	return 0;
}

ssize_t end_write(struct tls_end *e, const void *buf, size_t len)
{
	int n, err;

	if (e->ktls)
		return send(e->fd, buf, len, MSG_NOSIGNAL);
	n = wolfSSL_write(e->ssl, buf, (int)len);
	if (n > 0)
		return n;
	err = wolfSSL_get_error(e->ssl, n);
	errno = err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ ?
		EAGAIN : EIO;
	return -1;
}

ssize_t end_read(struct tls_end *e, void *buf, size_t len)
{
	unsigned char type;
	ssize_t n;
	int err;

	if (e->pend_off < e->pend.len) {
		n = e->pend.len - e->pend_off;
		n = (size_t)n < len ? n : (ssize_t)len;
		memcpy(buf, e->pend.data + e->pend_off, n);
		e->pend_off += n;
		return n;
	}
	if (!e->ktls) {
		n = wolfSSL_read(e->ssl, buf, (int)len);
		if (n > 0)
			return n;
		err = wolfSSL_get_error(e->ssl, (int)n);
		if (err == WOLFSSL_ERROR_ZERO_RETURN)
			return 0;
		errno = err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE ?
			EAGAIN : EIO;
		return -1;
	}
	for (;;) {
		n = kmtls_ktls_recv(e->fd, buf, len, 0, &type);
		if (n <= 0 || type == KMTLS_REC_APPDATA)
			return n;
		/* NewSessionTicket after the switch: not data, keep reading. */
		e->ctrl_records++;
		if (type != KMTLS_REC_HANDSHAKE) {
			errno = EPROTO;
			return -1;
		}
	}
}

/* xorshift64*: reproducible data without keeping 16 MiB around. */
static void fill(unsigned char *buf, size_t len, uint64_t *state)
{
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t x = *state;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		*state = x;
		x *= 0x2545F4914F6CDD1DULL;
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
}

struct side {
	struct tls_end *e;
	size_t bytes;
	uint64_t seed;
	unsigned char sent[WC_SHA256_DIGEST_SIZE], got[WC_SHA256_DIGEST_SIZE];
	char err[160];
};

/* One thread per end, poll-driven, so the wolfSSL object is never shared. */
static void *side_run(void *p)
{
	struct side *s = p;
	unsigned char out[16384], in[16384];
	size_t out_len = 0, out_off = 0, sent = 0, got = 0;
	uint64_t state = s->seed;
	wc_Sha256 hs, hr;
	ssize_t n;

	wc_InitSha256(&hs);
	wc_InitSha256(&hr);
	while (sent < s->bytes || got < s->bytes) {
		struct pollfd pfd = { .fd = s->e->fd, .events = POLLIN };
		int have_pending = s->e->pend_off < s->e->pend.len ||
				   (!s->e->ktls && wolfSSL_pending(s->e->ssl));

		if (sent < s->bytes)
			pfd.events |= POLLOUT;
		if (!have_pending && poll(&pfd, 1, 20000) <= 0) {
			snprintf(s->err, sizeof(s->err), "stalled: sent %zu got %zu", sent, got);
			return NULL;
		}
		if (sent < s->bytes && (pfd.revents & POLLOUT)) {
			if (out_off == out_len) {
				out_len = s->bytes - sent < sizeof(out) ? s->bytes - sent : sizeof(out);
				fill(out, out_len, &state);
				wc_Sha256Update(&hs, out, (word32)out_len);
				out_off = 0;
			}
			n = end_write(s->e, out + out_off, out_len - out_off);
			if (n < 0 && errno != EAGAIN) {
				snprintf(s->err, sizeof(s->err), "write: %s", strerror(errno));
				return NULL;
			}
			if (n > 0) {
				out_off += n;
				sent += n;
			}
		}
		if (got < s->bytes && (have_pending || (pfd.revents & (POLLIN | POLLHUP | POLLERR)))) {
			n = end_read(s->e, in, sizeof(in) < s->bytes - got ? sizeof(in) : s->bytes - got);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				snprintf(s->err, sizeof(s->err), "read after %zu bytes: %s", got,
					 n == 0 ? "EOF" : strerror(errno));
				return NULL;
			}
			if (n > 0) {
				wc_Sha256Update(&hr, in, (word32)n);
				got += n;
			}
		}
	}
	wc_Sha256Final(&hs, s->sent);
	wc_Sha256Final(&hr, s->got);
	return NULL;
}

int exchange_and_verify(struct tls_end *a, struct tls_end *b, size_t bytes,
			char *err, size_t errlen)
{
	struct side sa = { .e = a, .bytes = bytes, .seed = 0x1234567 };
	struct side sb = { .e = b, .bytes = bytes, .seed = 0x89abcdef };
	pthread_t ta, tb;
	int fl;

	for (fl = 0; fl < 2; fl++) {
		struct tls_end *e = fl ? b : a;

		if (!e->ktls)
			wolfSSL_set_using_nonblock(e->ssl, 1);
		if (fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) | O_NONBLOCK)) {
			snprintf(err, errlen, "fcntl: %s", strerror(errno));
			return -1;
		}
	}
	pthread_create(&ta, NULL, side_run, &sa);
	pthread_create(&tb, NULL, side_run, &sb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (sa.err[0] || sb.err[0]) {
		snprintf(err, errlen, "a: %s; b: %s", sa.err[0] ? sa.err : "ok",
			 sb.err[0] ? sb.err : "ok");
		return -1;
	}
	if (memcmp(sa.sent, sb.got, sizeof(sa.sent)) ||
	    memcmp(sb.sent, sa.got, sizeof(sb.sent))) {
		snprintf(err, errlen, "SHA-256 mismatch: data corrupted in transit");
		return -1;
	}
	return 0;
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
