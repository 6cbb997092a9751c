/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libkmtls: mutual TLS for an application's TCP socket, done by the kernel
 * service (kmtls.ko + kmtlsd) instead of a TLS library in the process.
 *
 * The application connects or accepts a TCP socket as usual and hands it
 * over: kmtls.ko queues a request, kmtlsd runs the mTLS handshake on the
 * socket with the certificates and policy of a [kernel NAME] profile of
 * its configuration, installs kernel TLS (kTLS) for both directions and
 * reports the verified peer. The application then reads and writes plain
 * bytes on the same socket; the kernel encrypts and decrypts the records.
 * The process never sees a private key and links no TLS code.
 *
 *	struct kmtls_opts o = { .peer_name = "api.example.org" };
 *	struct kmtls_peer peer;
 *	int fd = socket(...); connect(fd, ...);
 *	int err = kmtls_handshake(fd, KMTLS_ROLE_CLIENT, &o, &peer);
 *	if (err)
 *		fprintf(stderr, "mTLS: %s\n", kmtls_strerror(err));
 *	else
 *		printf("%s %s\n", peer.subject, peer.fingerprint_hex);
 *	write(fd, ...); kmtls_recv(fd, buf, sizeof(buf), 0);
 *
 * Reading: after the handshake a TLS 1.3 server may still send session
 * tickets, and a peer ends with a close_notify alert. kTLS passes those
 * records up as they are and a plain read() of one fails with EIO: read
 * with kmtls_recv(), which skips tickets and turns close_notify into end
 * of file, or with recvmsg() and a TLS_GET_RECORD_TYPE control message.
 * Writing: write(), send(), sendfile() and splice() work as on any socket;
 * kmtls_close_notify() sends the alert before close().
 *
 * Errors are negative errno values throughout (kmtls_strerror() says what
 * each means here); the library keeps no global state and is thread-safe.
 * `make install` puts this header in $(PREFIX)/include, the kernel ABI it
 * uses in $(PREFIX)/include/linux/kmtls.h (include/uapi/linux/kmtls.h in
 * the tree) and libkmtls.a in $(PREFIX)/lib: build with
 * `pkg-config --cflags --libs kmtls` (-lkmtls).
 */
#ifndef KMTLS_LIB_KMTLS_H
#define KMTLS_LIB_KMTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/kmtls.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most SAN entries a completion can carry (KMTLS_SAN_LIST_MAX / 2). */
#define KMTLS_PEER_SAN_MAX	(KMTLS_SAN_LIST_MAX / 2)

/**
 * struct kmtls_opts - what to ask for; a zeroed struct (or NULL) is valid
 * @peer_name: client role: the server name sent as SNI and verified against
 *	the server's certificate; NULL or "": the profile's server-name.
 *	Server role: passed to kmtlsd, not used for verification.
 * @profile: the [kernel NAME] profile of kmtlsd's configuration to use
 *	(certificates, CAs, policy); NULL or "": "default"
 * @timeout_ms: deadline of the whole handshake, from submission; 0 or more
 *	than net.kmtls.handshake_timeout_ms: that sysctl (10 s by default)
 */
struct kmtls_opts {
	const char *peer_name;
	const char *profile;
	unsigned int timeout_ms;
};

/**
 * struct kmtls_peer - the outcome of one handshake, from its completion
 * @status: 0, or the negative errno the handshake failed with
 * @id: the request id (kmtls_submit()), @user_data as submitted
 * @sock_cookie: the socket's SO_COOKIE
 * @elapsed_ns: from submission to completion
 * @shut_down: the request failed after kmtlsd had the socket: the kernel
 *	shut it down (its TLS state is unknown); close it. A failure without
 *	it left the socket untouched.
 * @has_cert: the fields below describe the peer's certificate (always on
 *	success: kmtlsd resumes no session, so every handshake sees one; a
 *	completion saying success without one is -EBADMSG)
 * @subject: the peer certificate's subject, wolfSSL's one-line form:
 *	"/CN=client/O=kmtls test", for logs: kmtlsd cuts it at 255 bytes, so
 *	decide who the peer is by @san_uri, @san_dns or @fingerprint"
 * @san_uri, @n_san_uri: the certificate's subjectAltName URIs, in order
 * @san_dns, @n_san_dns: its DNS names
 * @fingerprint: SHA-256 of the certificate (DER), as
 *	`openssl x509 -outform DER | sha256sum` prints it in @fingerprint_hex
 * @tls_version: 0x0304 (TLS 1.3) or 0x0303 (TLS 1.2); @version_name "TLSv1.3"
 * @cipher: IANA number of the cipher suite; @cipher_name its IANA name,
 *	e.g. "TLS_AES_128_GCM_SHA256"
 * @resumed: the session was resumed
 *
 * @san_uri and @san_dns point into the struct itself: copy it with
 * kmtls_peer_copy(), not by assignment.
 */
struct kmtls_peer {
	int status;
	uint64_t id, user_data, sock_cookie, elapsed_ns;
	int shut_down;
	int has_cert;
	char subject[KMTLS_SUBJECT_MAX];
	const char *san_uri[KMTLS_PEER_SAN_MAX];
	unsigned int n_san_uri;
	const char *san_dns[KMTLS_PEER_SAN_MAX];
	unsigned int n_san_dns;
	unsigned char fingerprint[KMTLS_FINGERPRINT_LEN];
	char fingerprint_hex[2 * KMTLS_FINGERPRINT_LEN + 1];
	uint16_t tls_version, cipher;
	const char *version_name, *cipher_name;
	int resumed;
	/* storage behind san_uri and san_dns */
	char uri_buf[KMTLS_SAN_LIST_MAX], dns_buf[KMTLS_SAN_LIST_MAX];
};

/**
 * kmtls_handshake() - mutual TLS on @fd, blocking until it is done
 * @fd: a connected TCP socket (IPv4 or IPv6) without TLS on it yet
 * @role: KMTLS_ROLE_CLIENT if the application connected, KMTLS_ROLE_SERVER
 *	if it accepted (the peer must then present a client certificate)
 * @opts: may be NULL
 * @peer: filled on success and on failure (status, shut_down); may be NULL
 *
 * Opens /dev/kmtls, submits, waits, closes it. On success @fd carries kTLS
 * in both directions and the peer was verified against the profile's CAs,
 * CRLs and allow-lists. Do not touch @fd meanwhile (another thread must
 * not read, write or close it). A signal does not end the wait (EINTR is
 * retried) before the deadline: to give up earlier, use kmtls_submit()
 * and close the /dev/kmtls fd, which cancels the request.
 *
 * Return: 0, or a negative errno: from opening /dev/kmtls (-ENOENT: the
 * module is not loaded), from submitting (-EOPNOTSUPP not TCP, -ENOTCONN,
 * -EEXIST already has TLS, -EBUSY, -ESRCH no kmtlsd, -EAGAIN queue full),
 * or the handshake's verdict (-EKEYREJECTED, -EKEYEXPIRED, -EKEYREVOKED,
 * -EACCES, -ETIMEDOUT, -ECONNRESET, -EPROTO, -EOPNOTSUPP, -ENOENT unknown
 * profile, -ECONNABORTED kmtlsd died...), or -EBADMSG (a completion this
 * library cannot read: close @fd). kmtls_strerror() names each.
 */
int kmtls_handshake(int fd, enum kmtls_role role, const struct kmtls_opts *opts,
		    struct kmtls_peer *peer);

/*
 * The asynchronous pair: many handshakes from one thread.
 *
 *	int dev = kmtls_open(1);		   (non-blocking)
 *	kmtls_submit(dev, fd, KMTLS_ROLE_SERVER, NULL, fd, &id);
 *	poll(dev, POLLIN) ...; while (!kmtls_complete(dev, &peer))
 *		handle(peer.user_data, peer.status, &peer);
 *
 * Closing @dev cancels every request still outstanding on it (their
 * sockets stay as they were if kmtlsd had not started on them yet, else
 * they are shut down).
 */

/* Open /dev/kmtls (@nonblock: O_NONBLOCK). The fd, or a negative errno. */
int kmtls_open(int nonblock);

/*
 * Queue a handshake for @fd on @dev. @user_data comes back in the
 * completion (e.g. @fd itself, or a pointer). 0 with *@id set (may be
 * NULL), or a negative errno as for kmtls_handshake()'s submission.
 */
int kmtls_submit(int dev, int fd, enum kmtls_role role, const struct kmtls_opts *opts,
		 uint64_t user_data, uint64_t *id);

/*
 * Consume the oldest completion of @dev into @peer. 0 when one was read
 * (its outcome is peer->status), -EAGAIN when none is ready on a
 * non-blocking @dev, another negative errno if reading failed. Poll @dev
 * for POLLIN to know when to call it.
 */
int kmtls_complete(int dev, struct kmtls_peer *peer);

/*
 * Wait for request @id of @dev and consume its completion. 0 when it was
 * read (outcome in peer->status), -EAGAIN on a non-blocking @dev if it is
 * not done, -ENOENT if @dev has no such request.
 */
int kmtls_wait(int dev, uint64_t id, struct kmtls_peer *peer);

/*
 * Fill @peer from a completion as the kernel wrote it. Returns 0; a
 * success whose identity cannot be read (a kernel this library does not
 * understand) becomes status -EBADMSG with no identity: the socket may
 * carry kTLS, but nothing says who the peer is: close it.
 */
int kmtls_parse_completion(const struct kmtls_completion *c, struct kmtls_peer *peer);

/* Copy @src to @dst, pointers included. */
void kmtls_peer_copy(struct kmtls_peer *dst, const struct kmtls_peer *src);

/*
 * Read application data from a kTLS socket: like recv(2) (blocking or
 * not, MSG_DONTWAIT, MSG_PEEK...), but a NewSessionTicket is skipped
 * (also when peeking), close_notify reads as end of file (0), another
 * alert fails with ECONNRESET and a KeyUpdate (which kernels before 6.14
 * cannot follow) with EPROTO; a socket without kTLS for receiving fails
 * with EOPNOTSUPP (what it read is not passed on). Any @len works; below
 * 16 KiB each call peeks first (one more system call). Returns bytes
 * read, 0 at the end, or -1 with errno.
 *
 * Blocking, it waits for application data past a skipped ticket: a
 * caller that polls the socket and must not block passes MSG_DONTWAIT
 * (EAGAIN when only a ticket was there).
 */
ssize_t kmtls_recv(int fd, void *buf, size_t len, int flags);

/*
 * Send a close_notify alert on a kTLS socket. 0, or -1 with errno:
 * EOPNOTSUPP when @fd has no kTLS for sending (nothing is sent: on plain
 * TCP the alert would go out as two bytes of data).
 */
int kmtls_close_notify(int fd);

/* "TLS_AES_128_GCM_SHA256" for 0x1301; "unknown" for what it does not know. */
const char *kmtls_cipher_name(uint16_t cipher);

/* "TLSv1.3" for 0x0304, "TLSv1.2" for 0x0303, else "unknown". */
const char *kmtls_version_name(uint16_t version);

/*
 * What a negative errno from this library means for the handshake, e.g.
 * -EKEYREJECTED: "peer certificate not trusted (unknown CA, bad
 * signature, wrong name or usage)". Any other value: strerror().
 */
const char *kmtls_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* KMTLS_LIB_KMTLS_H */
