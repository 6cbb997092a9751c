// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A connection's life: non-blocking wolfSSL handshake (client certificate
 * verified, policy applied in the verify callback), record layer moved into
 * kTLS or kept in wolfSSL, backend connect, relay, one teardown path.
 * Nothing reaches the backend before the handshake and every check passed;
 * nothing is ever relayed in plaintext to the client.
 *
 * A kernel-service connection (c->kreq, kservice.c) is the handshake part
 * alone, in either role, on a socket an application handed to kmtls.ko:
 * after the handshake kservice.c installs kTLS and reports DONE; on any
 * failure the teardown reports it.
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conn.h"
#include "kservice.h"
#include "ktls.h"
#include "listener.h"
#include "log.h"
#include "probes.h"
#include "proxy_v2.h"
#include "relay.h"
#include "tls_ctx.h"
#include "worker.h"

static void conn_fail(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_fail(struct conn *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->kreq)
		kmtls_kservice_log(c, LOG_WARNING, msg);
	else
		log_warn("listener %s: client %s: %s", c->l->conf->name, c->peer_str, msg);
	kmtls_conn_close(c);
}

/* Kernel service: the errno the application gets if the connection ends now. */
static void kernel_status(struct conn *c, int err)
{
	if (c->kreq && !c->kreq->status)
		c->kreq->status = err;
}

/* We send the ClientHello: originate mode, or a client-role request. */
static int tls_client(const struct conn *c)
{
	return c->originate || (c->kreq && c->kreq->role == KMTLS_ROLE_CLIENT);
}

/* The end that speaks TLS: the client, or the backend in originate mode. */
static struct conn_end *tls_end(struct conn *c)
{
	return c->originate ? &c->backend : &c->client;
}

static void link_conn(struct kmtls_worker *w, struct conn *c)
{
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
}

static void unlink_conn(struct kmtls_worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

void kmtls_conn_close(struct conn *c)
{
	struct kmtls_worker *w = c->w;

	if (c->closed)
		return;
	c->closed = 1;
	if (c->kreq)	/* DONE while our fd for the socket is still open */
		kmtls_kservice_closing(c);
	kmtls_worker_unwatch(w, &c->client);
	kmtls_worker_unwatch(w, &c->backend);
	if (c->client.fd >= 0)
		close(c->client.fd);
	if (c->backend.fd >= 0)
		close(c->backend.fd);
	c->client.fd = c->backend.fd = -1;
	unlink_conn(w, c);
	c->next = w->dead;
	w->dead = c;
	atomic_fetch_sub(&c->l->active, 1);
	STAT_SUB(&w->stats, active, 1);
}

void kmtls_conn_free(struct conn *c)
{
	if (c->ssl)
		wolfSSL_free(c->ssl);	/* zeroes its key material */
	kmtls_verify_reset(&c->verify);
	kmtls_policy_put(c->policy);	/* after the WOLFSSL whose callbacks read it */
	kmtls_relay_free(c);
	kmtls_kservice_free_req(c->kreq);
	c->magic = 0;
	free(c);
}

void kmtls_worker_reap(struct kmtls_worker *w)
{
	struct conn *c;

	while ((c = w->dead)) {
		w->dead = c->next;
		kmtls_conn_free(c);
	}
}

/*
 * An end the relay waits for nothing on leaves the epoll set rather than
 * staying with no events: epoll reports EPOLLHUP regardless, and once both
 * sides have shut a socket whose data still waits for the other end (a
 * slow reader there), level-triggered HUP would spin the worker until it
 * drains. A reset there shows when the relay next uses the socket.
 */
static int relay_watch(struct conn *c, struct conn_end *end, uint32_t events)
{
	if (!events) {
		kmtls_worker_unwatch(c->w, end);
		return 0;
	}
	return kmtls_worker_watch(c->w, end, events);
}

int kmtls_conn_update_events(struct conn *c)
{
	if (c->state != CS_RELAY)
		return 0;
	if (relay_watch(c, &c->client, kmtls_relay_client_events(c)) ||
	    relay_watch(c, &c->backend, kmtls_relay_backend_events(c)))
		return -1;
	return 0;
}

/* Without an idle timeout, how long a linger may go without progress. */
#define LINGER_MAX_MS 30000

/*
 * Both directions ended cleanly. kTLS may still hold records that TCP had
 * no room for, and close() would drop them, close_notify included (the
 * peer sees a truncated stream). So while the peer has not acknowledged
 * everything the TLS end stays open (CS_LINGER, watched by the tick) for
 * as long as the peer keeps reading (the idle timeout between two bytes
 * it acknowledges). The plaintext end closes now.
 */
static void relay_done(struct conn *c)
{
	struct conn_end *plain = c->originate ? &c->client : &c->backend;
	int unacked = kmtls_relay_unacked(c);

	log_debug("listener %s: client %s: closed, %lu bytes up, %lu down%s",
		  c->l->conf->name, c->peer_str, (unsigned long)c->up.bytes,
		  (unsigned long)c->down.bytes, unacked > 0 ? ", lingering" : "");
	if (unacked <= 0) {
		kmtls_conn_close(c);
		return;
	}
	kmtls_worker_unwatch(c->w, plain);
	close(plain->fd);
	plain->fd = -1;
	/*
	 * Off the epoll set (see relay_watch()): only the tick looks at it
	 * now; a reset leaves nothing unacknowledged.
	 */
	kmtls_worker_unwatch(c->w, tls_end(c));
	c->state = CS_LINGER;
	c->linger_unacked = unacked;
	c->linger_acked = 0;
	c->active_ms = kmtls_now_ms();
}

/*
 * Close once nothing is unacknowledged at two ticks in a row: kTLS pushes
 * held records from a work item when ACKs make room, an instant after the
 * queue may have looked empty.
 */
static void linger_tick(struct conn *c, uint64_t now)
{
	unsigned int limit = c->l->conf->idle_timeout_ms;
	int unacked = kmtls_relay_unacked(c);

	if (unacked <= 0) {
		if (unacked < 0 || c->linger_acked) {
			kmtls_conn_close(c);
			return;
		}
		c->linger_acked = 1;
		return;
	}
	c->linger_acked = 0;
	if (unacked < c->linger_unacked)
		c->active_ms = now;
	c->linger_unacked = unacked;
	if (!limit)
		limit = LINGER_MAX_MS;
	if (now - c->active_ms >= limit) {
		log_info("listener %s: client %s: closing with %d bytes the %s has not "
			 "acknowledged: no progress for %u ms", c->l->conf->name, c->peer_str,
			 unacked, c->originate ? "server" : "client", limit);
		STAT_ADD(&c->w->stats, closes_unacked, 1);
		STAT_ADD(&c->l->stats, closes_unacked, 1);
		kmtls_conn_close(c);
	}
}

static void relay(struct conn *c)
{
	const char *why = "";

	switch (kmtls_relay_pump(c, &why)) {
	case RELAY_DONE:
		relay_done(c);
		return;
	case RELAY_ERROR:
		log_info("listener %s: client %s: connection ended: %s (%lu bytes up, %lu down)",
			 c->l->conf->name, c->peer_str, why, (unsigned long)c->up.bytes,
			 (unsigned long)c->down.bytes);
		kmtls_conn_close(c);
		return;
	case RELAY_AGAIN:
		break;
	}
	if (kmtls_conn_update_events(c))
		conn_fail(c, "epoll: %s", strerror(errno));
}

static void relay_start(struct conn *c)
{
	c->state = CS_RELAY;
	c->deadline_ms = 0;
	c->active_ms = kmtls_now_ms();
	if (kmtls_relay_setup(c)) {
		conn_fail(c, "cannot set up the relay: %s", strerror(errno));
		return;
	}
	relay(c);
}

static void backend_ready(struct conn *c);
static void originate_handshake(struct conn *c);
static void originate_after_handshake(struct conn *c, int resumed);
static void originate_ticket(struct conn *c);
static void handshake(struct conn *c);

static void backend_failed(struct conn *c, const char *why)
{
	char addr[KMTLS_ADDRSTRLEN];

	STAT_ADD(&c->w->stats, backend_failed, 1);
	STAT_ADD(&c->l->stats, backend_failed, 1);
	conn_fail(c, "backend unreachable: %s: %s (client closed)",
		  kmtls_addr_str((struct sockaddr *)&c->l->backend_addr,
				 c->l->backend_len, addr, sizeof(addr)), why);
}

static void backend_connect(struct conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->l->backend_addr;
	int fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		backend_failed(c, strerror(errno));
		return;
	}
	c->backend.fd = fd;
	/* Before connect: nothing may wait for Nagle, the first flight neither. */
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	c->state = CS_CONNECTING;
	c->deadline_ms = kmtls_now_ms() + c->l->conf->connect_timeout_ms;
	/*
	 * Stop listening to the client until the backend is there (and, in
	 * originate mode, until the server's handshake is done), but hear
	 * of a reset: nothing is worth finishing for a client that is gone.
	 */
	if (kmtls_worker_watch_hangup(c->w, &c->client)) {
		conn_fail(c, "epoll: %s", strerror(errno));
		return;
	}
	if (connect(fd, sa, c->l->backend_len) == 0) {
		backend_ready(c);
		return;
	}
	if (errno != EINPROGRESS) {
		backend_failed(c, strerror(errno));
		return;
	}
	if (kmtls_worker_watch(c->w, &c->backend, EPOLLOUT))
		backend_failed(c, strerror(errno));
}

static void backend_ready(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->backend.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		backend_failed(c, strerror(err ? err : errno));
		return;
	}
	if (c->originate)
		originate_handshake(c);
	else
		relay_start(c);
}

/*
 * Queue bytes for @d's destination ahead of the relay: a PROXY header
 * (@meta: not payload, so not in the byte counts; it goes in first), or
 * payload read before the relay started.
 */
static int prefix_append(struct relay_dir *d, const void *p, size_t n, int meta)
{
	unsigned char *b;

	if (!n)
		return 0;
	b = realloc(d->prefix, d->prefix_len + n);
	if (!b)
		return -1;
	memcpy(b + d->prefix_len, p, n);
	d->prefix = b;
	d->prefix_len += n;
	if (meta)
		d->prefix_meta = d->prefix_len;
	return 0;
}

static int proxy_header(struct conn *c, int resumed)
{
	enum kmtls_proxy_mode mode = c->l->conf->proxy_protocol;
	struct kmtls_proxy_tls tls = { .verified = 1, .resumed = resumed };
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	WOLFSSL_X509 *peer = NULL;
	unsigned char *hdr;
	int n, ret = -1;

	if (mode == KMTLS_PROXY_NONE)
		return 0;
	if (getsockname(c->client.fd, (struct sockaddr *)&local, &llen))
		return -1;
	tls.version = kmtls_tls_version_name(c->ssl);
	tls.cipher = wolfSSL_get_cipher_name(c->ssl);
	tls.cn = c->verify.have_leaf ? c->verify.leaf.cn : NULL;
	if (mode == KMTLS_PROXY_V2_CERT) {
		peer = wolfSSL_get_peer_certificate(c->ssl);
		if (peer) {
			tls.cert_der = wolfSSL_X509_get_der(peer, &tls.cert_len);
		} else if (c->verify.resumed_checked) {	/* from the ticket */
			tls.cert_der = c->verify.leaf_der;
			tls.cert_len = c->verify.leaf_der_len;
		}
	}
	hdr = malloc(kmtls_proxy_v2_max_len(tls.cert_len));
	if (hdr) {
		n = kmtls_proxy_v2_encode(hdr, kmtls_proxy_v2_max_len(tls.cert_len),
					  (struct sockaddr *)&c->peer,
					  (struct sockaddr *)&local, &tls);
		if (n > 0)
			ret = prefix_append(&c->up, hdr, n, 1);
	}
	free(hdr);
	wolfSSL_X509_free(peer);
	return ret;
}

/* Returns 0 to go on (kTLS or fallback), -1 when the connection was closed. */
static int install_ktls(struct conn *c)
{
	enum kmtls_ktls_mode mode = c->l->conf->ktls;
	struct kmtls_pending pend = { 0 };
	const char *why = "";
	enum kmtls_ktls_status st;

	if (mode == KMTLS_KTLS_OFF)
		return 0;
	st = kmtls_ktls_install(c->ssl, tls_end(c)->fd, &pend, &why);
	if (st == KMTLS_KTLS_ON) {
		/* Already decrypted: it goes to the plaintext side first. */
		int ret = prefix_append(c->originate ? &c->down : &c->up, pend.data,
					 pend.len, 0);

		kmtls_pending_free(&pend);
		if (ret) {
			conn_fail(c, "out of memory");
			return -1;
		}
		c->ktls = 1;
		STAT_ADD(&c->w->stats, ktls_on, 1);
		STAT_ADD(&c->l->stats, ktls_on, 1);
		KMTLS_PROBE_KTLS_INSTALLED(tls_end(c)->fd, kmtls_ktls_cipher_name(c->ssl));
		/* From here the kernel holds the keys; drop wolfSSL's copy. */
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
		return 0;
	}
	kmtls_pending_free(&pend);
	if (st == KMTLS_KTLS_FALLBACK && mode == KMTLS_KTLS_AUTO) {
		STAT_ADD(&c->w->stats, ktls_fallback, 1);
		STAT_ADD(&c->l->stats, ktls_fallback, 1);
		kmtls_log_once(why, LOG_WARNING,
			       "listener %s: kTLS not used, records go through wolfSSL in userspace: %s",
			       c->l->conf->name, why);
		return 0;
	}
	STAT_ADD(&c->w->stats, ktls_refused, 1);
	STAT_ADD(&c->l->stats, ktls_refused, 1);
	conn_fail(c, "%s%s", st == KMTLS_KTLS_FALLBACK ? "ktls = require but kTLS is unavailable: " :
		  "kTLS install failed: ", why);
	return -1;
}

static unsigned long long elapsed_ns(const struct conn *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - c->started.tv_sec) * 1000000000ULL + now.tv_nsec - c->started.tv_nsec;
}

static void handshake_done(struct conn *c)
{
	char sans[512] = "none";
	int resumed = wolfSSL_session_reused(c->ssl);
	unsigned long long ns = elapsed_ns(c);

	/* Our tickets re-check the client (resume.h); nothing else may resume. */
	if (resumed && !tls_client(c) && !c->verify.resumed_checked) {
		STAT_ADD(&c->w->stats, handshakes_failed, 1);
		STAT_ADD(&c->l->stats, handshakes_failed, 1);
		kernel_status(c, EKEYREJECTED);
		conn_fail(c, "resumed a session whose client certificate was not re-checked: refused");
		return;
	}
	STAT_ADD(&c->w->stats, handshakes_ok, 1);
	STAT_ADD(&c->l->stats, handshakes_ok, 1);
	kmtls_stats_observe_hs(&c->w->stats, ns / 1000);
	KMTLS_PROBE_HANDSHAKE_DONE(tls_end(c)->fd, 0, ns, wolfSSL_version(c->ssl),
				   wolfSSL_get_cipher_name(c->ssl), resumed);
	if (resumed) {
		STAT_ADD(&c->w->stats, handshakes_resumed, 1);
		STAT_ADD(&c->l->stats, handshakes_resumed, 1);
	}
	if (c->kreq) {
		kmtls_kservice_established(c);
		return;
	}
	if (kmtls_log_enabled(LOG_DEBUG)) {	/* the SANs string costs a few snprintf */
		/* The peer's bytes, escaped as the failures' (verify.c). */
		char subject[4 * sizeof(c->verify.leaf.subject)] = "?";

		if (c->verify.have_leaf) {
			kmtls_identity_sans(&c->verify.leaf, sans, sizeof(sans));
			kmtls_identity_escape(c->verify.leaf.subject, subject, sizeof(subject));
		}
		log_debug("listener %s: %s %s: %s %s, subject \"%s\", SANs %s%s",
			  c->l->conf->name, c->originate ? "server" : "client",
			  c->originate ? c->l->conf->backend : c->peer_str,
			  kmtls_tls_version_name(c->ssl), wolfSSL_get_cipher_name(c->ssl),
			  subject, sans, resumed ? ", resumed" : "");
	}
	if (c->originate) {
		originate_after_handshake(c, resumed);
		return;
	}
	if (proxy_header(c, resumed)) {
		conn_fail(c, "cannot build the PROXY v2 header");
		return;
	}
	if (install_ktls(c))
		return;
	log_debug("listener %s: client %s: record layer %s", c->l->conf->name,
		  c->peer_str, c->ktls ? "kTLS" : "wolfSSL");
	backend_connect(c);
}

static void handshake(struct conn *c)
{
	char reason[600];
	int ret, err, ended;

	ret = tls_client(c) ? wolfSSL_connect(c->ssl) : wolfSSL_accept(c->ssl);
	if (ret == WOLFSSL_SUCCESS) {
		handshake_done(c);
		return;
	}
	err = wolfSSL_get_error(c->ssl, ret);
	if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
		if (kmtls_worker_watch(c->w, tls_end(c),
				       err == WOLFSSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT))
			conn_fail(c, "epoll: %s", strerror(errno));
		return;
	}
	STAT_ADD(&c->w->stats, handshakes_failed, 1);
	STAT_ADD(&c->l->stats, handshakes_failed, 1);
	kmtls_verify_reason(c->ssl, err, &c->verify, reason, sizeof(reason));
	ended = c->kreq ? kmtls_kservice_ended(c) : 0;
	/* A kernel request ended at its deadline is a timeout, as conn_tick()'s. */
	KMTLS_PROBE_HANDSHAKE_DONE(tls_end(c)->fd, ended == ETIMEDOUT ? ETIMEDOUT : err,
				   elapsed_ns(c), 0, "", 0);
	switch (ended) {
	case ETIMEDOUT:	/* kmtls.ko ended it at the deadline, shut the socket down */
		kernel_status(c, ETIMEDOUT);
		conn_fail(c, "handshake timeout: not done within %u ms (kmtls.ko ended the request; here: %s)",
			  c->kreq->timeout_ms, reason);
		return;
	case ECANCELED:
		kernel_status(c, ECANCELED);
		conn_fail(c, "the application cancelled the request (kmtls.ko shut the socket down)");
		return;
	}
	kernel_status(c, kmtls_verify_errno(err, &c->verify));
	if (c->originate)
		conn_fail(c, "server %s: %s", c->l->conf->backend, reason);
	else
		conn_fail(c, "%s", reason);
}

/*
 * Originate mode: the backend is an mTLS server and we are its client.
 * The session of the last full handshake is kept per worker and listener,
 * so the next connection resumes (psk_dhe_ke: a fresh key exchange still).
 */
static struct saved_session *session_slot(struct conn *c)
{
	return &c->w->sessions[c->l - c->w->listeners];
}

/*
 * The WOLFSSL of the TLS end: non-blocking, the listener's policy in the
 * verify callback, the worker's signature cache. 0, or -1 with @c closed.
 */
static int tls_new(struct conn *c)
{
	c->ssl = kmtls_listener_new_ssl(c->l, &c->policy);
	if (!c->ssl || wolfSSL_set_fd(c->ssl, tls_end(c)->fd) != WOLFSSL_SUCCESS) {
		kernel_status(c, ENOMEM);
		conn_fail(c, "cannot create a TLS session (out of memory?)");
		return -1;
	}
	wolfSSL_set_using_nonblock(c->ssl, 1);
	c->verify.policy = c->policy;
	kmtls_verify_bind(c->ssl, &c->verify);
	kmtls_sigcache_bind(c->ssl, c->w->sigcache);
	return 0;
}

/* Client side: SNI, and the name the server's certificate must carry. */
static int tls_server_name(struct conn *c, const char *name)
{
	char esc[4 * KMTLS_PEER_NAME_MAX];

	if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, name, (word16)strlen(name)) == WOLFSSL_SUCCESS &&
	    wolfSSL_check_domain_name(c->ssl, name) == WOLFSSL_SUCCESS)
		return 0;
	kmtls_identity_escape(name, esc, sizeof(esc));	/* a kernel request's: anyone's */
	kernel_status(c, EINVAL);
	conn_fail(c, "cannot set server name \"%s\"", esc);
	return -1;
}

static void originate_handshake(struct conn *c)
{
	struct saved_session *saved = session_slot(c);

	if (tls_new(c) || tls_server_name(c, c->l->conf->server_name))
		return;
	/*
	 * Resuming skips the server's certificate: after a reload (CA
	 * bundle, CRL, allow-lists) a full handshake checks it again.
	 */
	if (saved->sess && saved->policy != c->policy) {
		log_debug("listener %s: server %s: reloaded since the last full handshake, "
			  "not resuming", c->l->conf->name, c->l->conf->backend);
		kmtls_saved_session_drop(saved);
	}
	if (saved->sess)
		wolfSSL_set_session(c->ssl, saved->sess);
	c->state = CS_HANDSHAKE;
	c->deadline_ms = kmtls_now_ms() + c->l->conf->handshake_timeout_ms;
	handshake(c);
}

static void keep_session(struct conn *c)
{
	struct saved_session *saved = session_slot(c);
	WOLFSSL_SESSION *sess = wolfSSL_get1_session(c->ssl);

	if (!sess)
		return;
	kmtls_saved_session_drop(saved);
	saved->sess = sess;
	saved->policy = kmtls_policy_get(c->policy);
}

static void originate_relay(struct conn *c)
{
	if (install_ktls(c))
		return;
	log_debug("listener %s: server %s: record layer %s", c->l->conf->name,
		  c->l->conf->backend, c->ktls ? "kTLS" : "wolfSSL");
	kmtls_worker_watch(c->w, &c->backend, 0);
	relay_start(c);
}

/*
 * A TLS 1.3 server sends its tickets after the handshake. Wait for one
 * (briefly: ORIGINATE_TICKET_WAIT_MS) before the keys move into the kernel,
 * since a ticket arriving on a kTLS socket cannot be given to wolfSSL.
 * Data the server sends first goes to the client before the relay starts.
 */
#define ORIGINATE_TICKET_WAIT_MS 200

static void originate_after_handshake(struct conn *c, int resumed)
{
	if (resumed || wolfSSL_version(c->ssl) != TLS1_3_VERSION) {
		if (!resumed)
			keep_session(c);
		originate_relay(c);
		return;
	}
	c->state = CS_TICKET;
	c->deadline_ms = kmtls_now_ms() + ORIGINATE_TICKET_WAIT_MS;
	if (kmtls_worker_watch(c->w, &c->backend, EPOLLIN))
		conn_fail(c, "epoll: %s", strerror(errno));
	else
		originate_ticket(c);
}

static void originate_ticket(struct conn *c)
{
	unsigned char buf[RELAY_BUF_SIZE];
	int n, err;

	n = wolfSSL_read(c->ssl, buf, sizeof(buf));
	if (n > 0) {
		if (prefix_append(&c->down, buf, n, 0)) {
			conn_fail(c, "out of memory");
			return;
		}
	} else {
		err = wolfSSL_get_error(c->ssl, n);
		if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
			conn_fail(c, "server %s: connection ended after the handshake: %s",
				  c->l->conf->backend, wolfSSL_ERR_reason_error_string(err));
			return;
		}
		if (!wolfSSL_SESSION_has_ticket(wolfSSL_get_session(c->ssl)))
			return;		/* keep waiting, up to the deadline */
	}
	keep_session(c);
	originate_relay(c);
}

/* A connection for @fd on the worker's list, counted; NULL if out of memory. */
static struct conn *conn_new(struct kmtls_worker *w, struct kmtls_listener *l, int fd,
			     const struct sockaddr *peer, socklen_t peer_len)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->magic = CONN_MAGIC;
	c->w = w;
	c->l = l;
	c->client.conn = c->backend.conn = c;
	c->client.fd = fd;
	c->backend.fd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	memcpy(&c->peer, peer, peer_len);
	c->peer_len = peer_len;
	kmtls_addr_str(peer, peer_len, c->peer_str, sizeof(c->peer_str));
	c->started_ms = kmtls_now_ms();
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	KMTLS_PROBE_HANDSHAKE_START(fd);
	c->deadline_ms = c->started_ms + l->conf->handshake_timeout_ms;
	link_conn(w, c);
	STAT_ADD(&w->stats, active, 1);
	return c;
}

void kmtls_conn_start(struct kmtls_worker *w, struct kmtls_listener *l, int fd,
		      const struct sockaddr *peer, socklen_t peer_len)
{
	struct conn *c = conn_new(w, l, fd, peer, peer_len);
	char addr[KMTLS_ADDRSTRLEN];

	if (!c) {
		log_warn("listener %s: client %s: out of memory: connection closed",
			 l->conf->name, kmtls_addr_str(peer, peer_len, addr, sizeof(addr)));
		atomic_fetch_sub(&l->active, 1);
		close(fd);
		return;
	}
	c->originate = l->conf->mode == KMTLS_MODE_ORIGINATE;
	if (c->originate) {
		backend_connect(c);
		return;
	}
	if (tls_new(c))
		return;
	handshake(c);
}

int kmtls_conn_start_kernel(struct kmtls_worker *w, struct kmtls_listener *l,
			    struct kmtls_kreq *r, const char *name)
{
	struct conn *c;

	atomic_fetch_add(&l->active, 1);
	c = conn_new(w, l, r->fd, (struct sockaddr *)&r->peer, r->peer_len);
	if (!c) {
		atomic_fetch_sub(&l->active, 1);
		return -1;
	}
	c->kreq = r;
	c->deadline_ms = r->deadline_ms;
	/* An application's socket: accepted ones inherit it from our listener. */
	if (r->peer.ss_family != AF_UNIX)
		setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	if (tls_new(c))
		return 0;
	kmtls_kservice_io(c->ssl);
	if (r->role == KMTLS_ROLE_CLIENT && tls_server_name(c, name))
		return 0;
	handshake(c);
	return 0;
}

/*
 * The client end before the relay, registered with no interest: an error
 * (a reset) ends the connection. EPOLLHUP alone is a unix socket's peer
 * that wrote and closed: what it wrote still goes to the backend, so stop
 * hearing of it (it stays reported) and let the relay take it.
 */
static void client_hangup(struct conn *c, uint32_t events, const char *when)
{
	char b;

	if (!(events & (EPOLLHUP | EPOLLERR)))
		return;
	/* A peek, not FIONREAD: the sandbox allows recv, not that ioctl. */
	if (!(events & EPOLLERR) && recv(c->client.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		kmtls_worker_unwatch(c->w, &c->client);
		return;
	}
	conn_fail(c, "client went away %s", when);
}

void kmtls_conn_event(struct conn_end *end, uint32_t events)
{
	struct conn *c = end->conn;

	if (c->magic != CONN_MAGIC || c->closed)
		return;
	switch (c->state) {
	case CS_HANDSHAKE:
		if (end == tls_end(c))
			handshake(c);
		else
			client_hangup(c, events, "during the handshake with the server");
		break;
	case CS_TICKET:
		if (end == &c->backend)
			originate_ticket(c);
		else
			client_hangup(c, events, "during the handshake with the server");
		break;
	case CS_CONNECTING:
		if (end == &c->backend)
			backend_ready(c);
		else
			client_hangup(c, events, "while the backend connection was pending");
		break;
	case CS_RELAY:
		relay(c);
		break;
	case CS_LINGER:
		break;		/* not watched */
	}
}

void kmtls_conn_tick(struct conn *c, uint64_t now)
{
	unsigned int idle = c->l->conf->idle_timeout_ms;

	if (c->closed)
		return;
	if (c->deadline_ms && now >= c->deadline_ms) {
		if (c->state == CS_TICKET) {
			/* No ticket in time: go on without one (no resumption next). */
			keep_session(c);
			originate_relay(c);
			return;
		}
		if (c->state == CS_HANDSHAKE) {
			STAT_ADD(&c->w->stats, handshakes_failed, 1);
			STAT_ADD(&c->l->stats, handshakes_failed, 1);
			KMTLS_PROBE_HANDSHAKE_DONE(tls_end(c)->fd, ETIMEDOUT, elapsed_ns(c), 0, "", 0);
			kernel_status(c, ETIMEDOUT);
			conn_fail(c, "handshake timeout: no complete handshake within %u ms",
				  c->kreq ? c->kreq->timeout_ms : c->l->conf->handshake_timeout_ms);
		} else {
			backend_failed(c, "connect timed out");
		}
		return;
	}
	if (c->state == CS_LINGER) {
		linger_tick(c, now);
		return;
	}
	if (c->state == CS_RELAY && idle && now - c->active_ms >= idle) {
		log_info("listener %s: client %s: idle for %u ms, closing",
			 c->l->conf->name, c->peer_str, idle);
		kmtls_conn_close(c);
	}
}
