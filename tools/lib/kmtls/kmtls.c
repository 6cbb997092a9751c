// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libkmtls: /dev/kmtls ioctls and completions, and reading a kTLS socket.
 * No TLS code: the handshake is kmtlsd's, the records are the kernel's.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/tls.h>

#include "kmtls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TLS_GET_RECORD_TYPE
#define TLS_GET_RECORD_TYPE 2
#endif
#ifndef TLS_SET_RECORD_TYPE
#define TLS_SET_RECORD_TYPE 1
#endif

/* TLS record content types and what a kTLS socket may pass up */
#define REC_ALERT	21
#define REC_HANDSHAKE	22
#define REC_APPDATA	23
#define HS_NEW_SESSION_TICKET	4
#define HS_KEY_UPDATE		24
#define ALERT_CLOSE_NOTIFY	0

static const char dev_path[] = "/dev/" KMTLS_DEV_NAME;

int kmtls_open(int nonblock)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

	return fd < 0 ? -errno : fd;
}

/* Copy @s into a fixed field; -EINVAL if it does not fit with its NUL. */
static int put_str(char *dst, size_t len, const char *s)
{
	if (!s)
		return 0;
	if (strlen(s) >= len)
		return -EINVAL;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int kmtls_submit(int dev, int fd, enum kmtls_role role, const struct kmtls_opts *opts,
		 uint64_t user_data, uint64_t *id)
{
	struct kmtls_submit sub;

	memset(&sub, 0, sizeof(sub));
	sub.size = sizeof(sub);
	sub.sockfd = fd;
	sub.role = role;
	sub.user_data = user_data;
	if (opts) {
		sub.timeout_ms = opts->timeout_ms;
		if (put_str(sub.peer_name, sizeof(sub.peer_name), opts->peer_name) ||
		    put_str(sub.profile, sizeof(sub.profile), opts->profile))
			return -EINVAL;
	}
	if (ioctl(dev, KMTLS_IOC_SUBMIT, &sub) < 0)
		return -errno;
	if (id)
		*id = sub.id;
	return 0;
}

/* NUL-separated strings, @count of them in @buf (@len bytes) -> pointers. */
static int split(const char *src, size_t len, unsigned int count, char *buf,
		 const char **v, unsigned int *n)
{
	size_t off = 0, l;

	*n = 0;
	memcpy(buf, src, len);
	while (*n < count) {
		if (off >= len || *n >= KMTLS_PEER_SAN_MAX)
			return -EINVAL;
		l = strnlen(buf + off, len - off);
		if (off + l >= len)
			return -EINVAL;	/* unterminated */
		v[(*n)++] = buf + off;
		off += l + 1;
	}
	return 0;
}

/* The identity of a success: 0, or -EINVAL for fields the kernel cannot have written. */
static int parse_identity(const struct kmtls_completion *c, struct kmtls_peer *peer)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	peer->tls_version = c->tls_version;
	peer->cipher = c->cipher;
	peer->resumed = !!(c->flags & KMTLS_COMPLETION_F_RESUMED);
	peer->has_cert = !!(c->flags & KMTLS_COMPLETION_F_PEER_CERT);
	/* Mutual TLS without resumption: a success always saw a certificate. */
	if (!peer->has_cert ||
	    strnlen(c->subject, sizeof(c->subject)) == sizeof(c->subject))
		return -EINVAL;
	memcpy(peer->subject, c->subject, sizeof(peer->subject));
	if (split(c->san_uri, sizeof(c->san_uri), c->san_uri_count, peer->uri_buf,
		  peer->san_uri, &peer->n_san_uri) ||
	    split(c->san_dns, sizeof(c->san_dns), c->san_dns_count, peer->dns_buf,
		  peer->san_dns, &peer->n_san_dns))
		return -EINVAL;
	memcpy(peer->fingerprint, c->fingerprint, sizeof(peer->fingerprint));
	for (i = 0; peer->has_cert && i < KMTLS_FINGERPRINT_LEN; i++) {
		peer->fingerprint_hex[2 * i] = hex[c->fingerprint[i] >> 4];
		peer->fingerprint_hex[2 * i + 1] = hex[c->fingerprint[i] & 15];
	}
	return 0;
}

int kmtls_parse_completion(const struct kmtls_completion *c, struct kmtls_peer *peer)
{
	memset(peer, 0, offsetof(struct kmtls_peer, uri_buf));
	peer->status = c->status;
	peer->id = c->id;
	peer->user_data = c->user_data;
	peer->sock_cookie = c->sock_cookie;
	peer->elapsed_ns = c->elapsed_ns;
	peer->shut_down = !!(c->flags & KMTLS_COMPLETION_F_SHUTDOWN);
	peer->version_name = kmtls_version_name(c->tls_version);
	peer->cipher_name = kmtls_cipher_name(c->cipher);
	if (c->status || !parse_identity(c, peer))
		return 0;
	/*
	 * A success whose identity cannot be read: nothing of it may be
	 * trusted, though the socket may carry kTLS now. A failure the
	 * caller cannot miss (status), no half-filled names.
	 */
	memset(&peer->has_cert, 0, offsetof(struct kmtls_peer, uri_buf) -
	       offsetof(struct kmtls_peer, has_cert));
	peer->version_name = kmtls_version_name(0);
	peer->cipher_name = kmtls_cipher_name(0);
	peer->status = -EBADMSG;
	return 0;
}

void kmtls_peer_copy(struct kmtls_peer *dst, const struct kmtls_peer *src)
{
	unsigned int i;

	memcpy(dst, src, sizeof(*dst));
	for (i = 0; i < src->n_san_uri; i++)
		dst->san_uri[i] = dst->uri_buf + (src->san_uri[i] - src->uri_buf);
	for (i = 0; i < src->n_san_dns; i++)
		dst->san_dns[i] = dst->dns_buf + (src->san_dns[i] - src->dns_buf);
}

int kmtls_wait(int dev, uint64_t id, struct kmtls_peer *peer)
{
	struct kmtls_completion c;
	struct kmtls_wait w = {
		.size = sizeof(w),
		.id = id,
		.completion = (uintptr_t)&c,
		.completion_size = sizeof(c),
	};

	while (ioctl(dev, KMTLS_IOC_WAIT, &w) < 0)
		if (errno != EINTR)	/* the request stays outstanding */
			return -errno;
	return kmtls_parse_completion(&c, peer);
}

int kmtls_complete(int dev, struct kmtls_peer *peer)
{
	struct kmtls_completion c;
	ssize_t n;

	do
		n = read(dev, &c, sizeof(c));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != sizeof(c))
		return -EIO;
	return kmtls_parse_completion(&c, peer);
}

int kmtls_handshake(int fd, enum kmtls_role role, const struct kmtls_opts *opts,
		    struct kmtls_peer *peer)
{
	struct kmtls_peer local;
	uint64_t id;
	int dev, ret;

	if (!peer)
		peer = &local;
	memset(peer, 0, offsetof(struct kmtls_peer, uri_buf));
	dev = kmtls_open(0);
	if (dev < 0) {
		peer->status = dev;
		return dev;
	}
	ret = kmtls_submit(dev, fd, role, opts, 0, &id);
	if (!ret)
		ret = kmtls_wait(dev, id, peer);
	if (!ret)
		ret = peer->status;
	else
		peer->status = ret;
	close(dev);
	return ret;
}

/* ---- reading and closing a kTLS socket --------------------------------- */

/* A record's plaintext at most (RFC 8446 5.1): a control record fits. */
#define REC_MAX 16384

/*
 * A control record read whole: what it means for the reader. 1: skip it,
 * 0: end of file, -1 with errno.
 */
static int control_record(unsigned char type, const unsigned char *p, ssize_t n)
{
	if (type == REC_HANDSHAKE) {
		if (n > 0 && p[0] == HS_KEY_UPDATE) {
			errno = EPROTO;	/* the kernel cannot rekey before 6.14 */
			return -1;
		}
		return 1;	/* NewSessionTicket: nothing for us */
	}
	if (type == REC_ALERT && n >= 2 && p[1] == ALERT_CLOSE_NOTIFY)
		return 0;
	errno = type == REC_ALERT ? ECONNRESET : EPROTO;
	return -1;
}

/*
 * recvmsg() of up to @len bytes with the record type in *@type. kTLS
 * names the type of every read; none means the socket has no kTLS for
 * receiving, and what came is not to be passed on as if decrypted.
 */
static ssize_t rec_recv(int fd, void *buf, size_t len, int flags, unsigned char *type)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	ssize_t n = recvmsg(fd, &msg, flags);

	if (n <= 0)
		return n;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE) {
			*type = *CMSG_DATA(cmsg);
			return n;
		}
	errno = EOPNOTSUPP;
	return -1;
}

ssize_t kmtls_recv(int fd, void *buf, size_t len, int flags)
{
	unsigned char rec[REC_MAX], type;
	ssize_t n;
	int r;

	for (;;) {
		/*
		 * A control record is judged by its first bytes and skipped
		 * whole: into a buffer shorter than a record it would come
		 * in pieces, so there a peek tells the type first.
		 */
		if (len < REC_MAX) {
			/* Not MSG_WAITALL: that would wait for a record's worth. */
			n = rec_recv(fd, rec, sizeof(rec), (flags & ~MSG_WAITALL) | MSG_PEEK, &type);
			if (n <= 0)
				return n;
			if (type == REC_APPDATA) {
				if (flags & MSG_PEEK) {
					n = n < (ssize_t)len ? n : (ssize_t)len;
					memcpy(buf, rec, n);
					return n;
				}
				return rec_recv(fd, buf, len, flags, &type);
			}
		} else {
			n = rec_recv(fd, buf, len, flags, &type);
			if (n <= 0 || type == REC_APPDATA)
				return n;
			memcpy(rec, buf, n);
		}
		r = control_record(type, rec, n);
		if (r <= 0)
			return r;
		/* Skipped: out of the queue, peeking or not (else it blocks the data). */
		if ((flags & MSG_PEEK) || len < REC_MAX) {
			n = rec_recv(fd, rec, sizeof(rec), flags & ~(MSG_PEEK | MSG_WAITALL), &type);
			if (n <= 0)
				return n;
		}
	}
}

int kmtls_close_notify(int fd)
{
	static const unsigned char alert[2] = { 1, ALERT_CLOSE_NOTIFY };	/* warning */
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = (void *)alert, .iov_len = sizeof(alert) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	struct tls_crypto_info info;
	socklen_t ilen = sizeof(info);
	ssize_t n;

	/*
	 * Without kTLS TX the record type is ignored and the two bytes would
	 * go out as plain data. (A header-sized getsockopt returns no key.)
	 */
	if (getsockopt(fd, SOL_TLS, TLS_TX, &info, &ilen)) {
		if (errno == ENOPROTOOPT || errno == EBUSY)
			errno = EOPNOTSUPP;
		return -1;
	}
	memset(cbuf, 0, sizeof(cbuf));
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cmsg) = REC_ALERT;
	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (n == sizeof(alert))
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

/* ---- names ---------------------------------------------------------------- */

static const struct {
	uint16_t id;
	const char *name;
} suites[] = {
	{ 0x1301, "TLS_AES_128_GCM_SHA256" },
	{ 0x1302, "TLS_AES_256_GCM_SHA384" },
	{ 0x1303, "TLS_CHACHA20_POLY1305_SHA256" },
	{ 0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
	{ 0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
	{ 0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
};

const char *kmtls_cipher_name(uint16_t cipher)
{
	size_t i;

	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == cipher)
			return suites[i].name;
	return "unknown";
}

const char *kmtls_version_name(uint16_t version)
{
	return version == 0x0304 ? "TLSv1.3" : version == 0x0303 ? "TLSv1.2" : "unknown";
}

static const struct {
	int err;
	const char *text;
} meanings[] = {
	{ EKEYREJECTED, "peer certificate not trusted (unknown CA, bad signature, wrong name or usage, or none sent)" },
	{ EKEYEXPIRED, "peer certificate expired or not yet valid" },
	{ EKEYREVOKED, "peer certificate revoked" },
	{ EACCES, "refused by the profile's policy (allow-uri/dns/cn, or allow-uid for this process), or no permission to open /dev/kmtls" },
	{ ETIMEDOUT, "handshake deadline passed" },
	{ ECONNRESET, "peer closed or reset the connection during the handshake" },
	{ EPROTO, "TLS protocol error, or the peer sent an alert" },
	{ EOPNOTSUPP, "not a TCP socket, or kernel TLS cannot take it (no tls module, or the cipher); from kmtls_recv()/kmtls_close_notify(): the socket has no kTLS" },
	{ ENOENT, "no such profile in kmtlsd's configuration, or /dev/kmtls missing (modprobe kmtls)" },
	{ ESRCH, "no kmtlsd serves the kernel service" },
	{ ECONNABORTED, "kmtlsd went away during the handshake" },
	{ EAGAIN, "too many handshakes queued (net.kmtls.max_pending)" },
	{ EEXIST, "the socket already has TLS (a ULP) on it" },
	{ ENOTCONN, "the socket is not connected" },
	{ EBUSY, "a handshake for this socket is already outstanding" },
	{ EMSGSIZE, "the peer certificate names too many SANs to report" },
	{ EBADMSG, "a completion this library cannot read (kernel module and library from different versions?): close the socket" },
};

const char *kmtls_strerror(int err)
{
	size_t i;

	/* A status from the kernel is an untrusted int: INT_MIN has no negation. */
	if (err == INT_MIN)
		return "unknown error";
	for (i = 0; i < sizeof(meanings) / sizeof(meanings[0]); i++)
		if (meanings[i].err == -err)
			return meanings[i].text;
	return strerror(err < 0 ? -err : err);
}
