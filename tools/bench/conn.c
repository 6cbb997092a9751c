// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One connection's life, driven by epoll readiness (level-triggered):
 *
 *   CONNECT -> HANDSHAKE -> PAYLOAD (--payload) -> CLOSE -> IDLE
 *                        -> BULK (until the run ends)
 *
 * Each step either moves to the next state (STEP_NEXT), waits for the
 * readiness it put in c->want (STEP_WAIT), or has ended the connection,
 * counted as ok or failed (STEP_END). Reads always go on until wolfSSL says
 * WANT_READ, so nothing sits in wolfSSL's buffers unseen by epoll.
 *
 * Closing: the client sends close_notify and waits (BENCH_CLOSE_LINGER) for
 * the server's close_notify or EOF before close(). That is where a server
 * that rejects the client after the client's Finished says so (an alert),
 * where the TLS 1.3 NewSessionTicket is read, and it makes the server the
 * side that closes first, so the client's ports do not pile up in TIME_WAIT.
 *
 * A connection counts in the measured window when its handshake completed
 * inside it (bulk: any time before the end); its outcome is known when it
 * ends. A failure before the handshake counts when it happens in the window.
 * A connection still connecting, in the handshake or in the echo when the
 * run is over (grace period included) is counted as unfinished, whenever it
 * began: a server that stops answering shows there, not as nothing.
 *
 * Errors that are the client's own (out of descriptors, memory, local
 * ports) are counted apart from the server's failures. A connection that
 * ended before TLS began (those, or a refused connect) leaves its slot to
 * rest BENCH_RETRY_DELAY before the next, so a dead port is not a busy loop.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench.h"

#include <wolfssl/error-ssl.h>

enum { STEP_NEXT, STEP_WAIT, STEP_END };

#define STEP_ROUNDS 16		/* read/write rounds before yielding */

const char *const conn_state_names[CONN_STATES] = {
	[CONN_IDLE] = "idle",
	[CONN_CONNECT] = "connect",
	[CONN_HANDSHAKE] = "handshake",
	[CONN_PAYLOAD] = "payload echo",
	[CONN_BULK] = "bulk",
	[CONN_CLOSE] = "close",
};

/* ---- wolfSSL I/O: plain sockets, with errno kept for the report ---- */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct bench_conn *c = ctx;
	ssize_t n;

	(void)ssl;
	n = recv(c->fd, buf, sz, 0);
	if (n > 0) {
		hello_feed(&c->hello, buf, n);
		return n;
	}
	if (n == 0) {
		c->io_err = -1;
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (errno == EINTR)
		return WOLFSSL_CBIO_ERR_ISR;
	c->io_err = errno;
	return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST :
				     WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct bench_conn *c = ctx;
	ssize_t n;

	(void)ssl;
	if (c->sent_err)
		return sz;
	n = send(c->fd, buf, sz, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	if (errno == EINTR)
		return WOLFSSL_CBIO_ERR_ISR;
	/*
	 * The server reset the connection, most often right after sending an
	 * alert while our flight was still going out. Pretend the bytes left:
	 * wolfSSL then reads, and the alert (or the EOF) becomes the reason.
	 */
	if (errno == EPIPE || errno == ECONNRESET) {
		c->sent_err = errno;
		return sz;
	}
	c->io_err = errno;
	return WOLFSSL_CBIO_ERR_GENERAL;
}

void conn_ctx_io(WOLFSSL_CTX *ctx)
{
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
}

/* ---- the end of a connection ---- */

static int window_has(const struct bench_thread *t, uint64_t ts)
{
	if (t->o->mode == BENCH_BULK)
		return ts < t->t_end;
	return ts >= t->t_meas && ts < t->t_end;
}

static void teardown(struct bench_conn *c)
{
	if (c->ssl) {
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->state = CONN_IDLE;
	c->events = 0;
}

static void conn_end(struct bench_conn *c, int local, const char *fmt, va_list ap)
{
	struct bench_thread *t = c->t;
	char reason[FAIL_REASON_LEN];

	if (window_has(t, c->t_hs ? c->t_hs : bench_now())) {
		vsnprintf(reason, sizeof(reason), fmt, ap);
		if (local) {
			t->st.local++;
			fails_add(&t->st.local_fails, reason, 1);
		} else {
			t->st.failed++;
			fails_add(&t->st.fails, reason, 1);
		}
	}
	c->backoff = local || c->state == CONN_CONNECT;
	teardown(c);
}

static __attribute__((format(printf, 2, 3)))
void conn_fail(struct bench_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_end(c, 0, fmt, ap);
	va_end(ap);
}

/* The client's own error: not the server's failure. */
static __attribute__((format(printf, 2, 3)))
void conn_local(struct bench_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_end(c, 1, fmt, ap);
	va_end(ap);
}

/* Errors of socket(), connect() and epoll_ctl() that say the client ran out. */
static int local_errno(int err)
{
	switch (err) {
	case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
	case EADDRNOTAVAIL: case EAGAIN: case ENOSPC:
		return 1;
	}
	return 0;
}

static void conn_sys_fail(struct bench_conn *c, const char *what, int err)
{
	if (local_errno(err))
		conn_local(c, "%s: %s", what, strerror(err));
	else
		conn_fail(c, "%s: %s", what, strerror(err));
}

/* Still under way when the run is over: neither ok nor failed. */
static void conn_unfinished(struct bench_conn *c)
{
	struct bench_stats *st = &c->t->st;
	uint64_t age = bench_now() - c->t_start;

	st->unfinished++;
	st->unfinished_in[c->state]++;
	if (age > st->unfinished_age)
		st->unfinished_age = age;
	teardown(c);
}

/*
 * Why wolfSSL gave up: a peer's alert first, then a reset met while sending,
 * then the socket's own error, then wolfSSL's reason.
 */
static void conn_fail_tls(struct bench_conn *c, const char *what, int ret)
{
	WOLFSSL_ALERT_HISTORY ah;
	int err = wolfSSL_get_error(c->ssl, ret);

	if (err == FATAL_ERROR && wolfSSL_get_alert_history(c->ssl, &ah) ==
	    WOLFSSL_SUCCESS && ah.last_rx.code >= 0) {
		conn_fail(c, "%s: peer sent alert %d (%s)", what, ah.last_rx.code,
			  wolfSSL_alert_desc_string_long(ah.last_rx.code));
	} else if (c->sent_err) {
		conn_fail(c, "%s: %s", what, strerror(c->sent_err));
	} else if (c->io_err == -1) {
		conn_fail(c, "%s: unexpected EOF", what);
	} else if (c->io_err > 0) {
		conn_fail(c, "%s: %s", what, strerror(c->io_err));
	} else {
		conn_fail(c, "%s: %s (%d)", what,
			  wolfSSL_ERR_reason_error_string((unsigned long)err), err);
	}
}

/*
 * Resumed mode: a slot keeps offering the session its ticket came with. A
 * full handshake (the first, or a refused resumption) brings a new one.
 */
static void keep_session(struct bench_conn *c)
{
	WOLFSSL_SESSION *s;

	if (c->resumed && c->sess)
		return;
	s = wolfSSL_get1_session(c->ssl);
	if (!s)
		return;
	if (wolfSSL_version(c->ssl) == TLS1_3_VERSION &&
	    !wolfSSL_SESSION_has_ticket(s)) {
		wolfSSL_SESSION_free(s);
		return;
	}
	if (c->sess)
		wolfSSL_SESSION_free(c->sess);
	c->sess = s;
}

static void conn_ok(struct bench_conn *c)
{
	struct bench_stats *st = &c->t->st;

	if (window_has(c->t, c->t_hs)) {
		st->ok++;
		st->first += !c->done_before;
		hist_record(&st->hs, c->t_hs - c->t0);
		if (c->t_echo)
			hist_record(&st->echo, c->t_echo - c->t0);
		if (c->resumed) {
			st->resumed++;
			/* TLS 1.3 only: a ServerHello that took a PSK. */
			if (c->hello.psk && c->hello.key_share)
				st->psk_dhe_ke++;
			else if (c->hello.psk)
				st->psk_ke++;
		}
	}
	if (c->t->o->mode == BENCH_RESUMED)
		keep_session(c);
	c->done_before = 1;
	teardown(c);
}

/* ---- application data: the shared pattern, checked on the way back ---- */

static void count_bytes(struct bench_conn *c, uint64_t *counter, int n)
{
	const struct bench_thread *t = c->t;

	if (c->state == CONN_BULK && t->now >= t->t_meas && t->now < t->t_end)
		*counter += n;
}

/* >0 written, 0 blocked (c->want updated), -1 the connection ended. */
static int do_write(struct bench_conn *c, int len)
{
	const unsigned char *src = bench_pattern + c->tx % BENCH_IO_CHUNK;
	int r, err;

	if (c->wr_len)
		len = c->wr_len;	/* wolfSSL wants the same write again */
	r = wolfSSL_write(c->ssl, src, len);
	if (r > 0) {
		c->wr_len = 0;
		c->tx += r;
		count_bytes(c, &c->t->st.bytes_sent, r);
		return r;
	}
	err = wolfSSL_get_error(c->ssl, r);
	if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
		c->wr_len = len;
		c->want |= err == WOLFSSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
		return 0;
	}
	conn_fail_tls(c, conn_state_names[c->state], r);
	return -1;
}

/* >0 read and matched, 0 nothing there (c->want updated), -1 ended. */
static int do_read(struct bench_conn *c)
{
	struct bench_thread *t = c->t;
	int r, err;

	r = wolfSSL_read(c->ssl, t->rbuf, BENCH_IO_CHUNK);
	if (r > 0) {
		if ((uint64_t)r > c->tx - c->rx) {
			conn_fail(c, "%s: more data back than was sent",
				  conn_state_names[c->state]);
			return -1;
		}
		if (memcmp(t->rbuf, bench_pattern + c->rx % BENCH_IO_CHUNK, r)) {
			conn_fail(c, "%s: data came back altered", conn_state_names[c->state]);
			return -1;
		}
		c->rx += r;
		count_bytes(c, &t->st.bytes_recv, r);
		return r;
	}
	err = wolfSSL_get_error(c->ssl, r);
	if (err == WOLFSSL_ERROR_WANT_READ) {
		c->want |= EPOLLIN;
		return 0;
	}
	if (err == WOLFSSL_ERROR_WANT_WRITE) {
		c->want |= EPOLLOUT;
		return 0;
	}
	if (err == WOLFSSL_ERROR_ZERO_RETURN)
		conn_fail(c, "%s: peer closed (close_notify) before echoing all",
			  conn_state_names[c->state]);
	else
		conn_fail_tls(c, conn_state_names[c->state], r);
	return -1;
}

/* ---- the steps ---- */

static int tls_new(struct bench_conn *c)
{
	const struct bench_opts *o = c->t->o;

	c->ssl = wolfSSL_new(c->t->ctx);
	if (!c->ssl) {
		conn_local(c, "wolfSSL_new failed (out of memory?)");
		return -1;
	}
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	if (wolfSSL_check_domain_name(c->ssl, o->sni) != WOLFSSL_SUCCESS) {
		conn_local(c, "wolfSSL_check_domain_name failed (out of memory?)");
		return -1;
	}
	/* An expired or unusable session: forget it, go full. */
	if (c->sess && wolfSSL_set_session(c->ssl, c->sess) != WOLFSSL_SUCCESS) {
		wolfSSL_SESSION_free(c->sess);
		c->sess = NULL;
	}
	return 0;
}

static int step_connect(struct bench_conn *c)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		conn_sys_fail(c, "connect", err);
		return STEP_END;
	}
	if (tls_new(c))
		return STEP_END;
	c->state = CONN_HANDSHAKE;
	return STEP_NEXT;
}

/* The first handshake of a thread tells what was negotiated. */
static void note_negotiated(struct bench_conn *c)
{
	struct bench_stats *st = &c->t->st;
	const char *group;

	if (st->version[0])
		return;
	snprintf(st->version, sizeof(st->version), "%s", wolfSSL_get_version(c->ssl));
	snprintf(st->cipher, sizeof(st->cipher), "%s", wolfSSL_get_cipher_name(c->ssl));
	/* The ServerHello's name ("P-256") where there is one, as --groups spells it. */
	group = c->hello.key_share ? hello_group_name(c->hello.group) : NULL;
	if (!group)
		group = wolfSSL_get_curve_name(c->ssl);
	snprintf(st->group, sizeof(st->group), "%s", group ? group : "none");
}

static int step_handshake(struct bench_conn *c)
{
	const struct bench_opts *o = c->t->o;
	int r, err;

	r = wolfSSL_connect(c->ssl);
	if (r == WOLFSSL_SUCCESS) {
		c->t_hs = bench_now();
		c->resumed = wolfSSL_session_reused(c->ssl);
		note_negotiated(c);
		if (o->mode == BENCH_BULK)
			c->state = CONN_BULK;
		else if (o->payload)
			c->state = CONN_PAYLOAD;
		else
			c->state = CONN_CLOSE;
		return STEP_NEXT;
	}
	err = wolfSSL_get_error(c->ssl, r);
	if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
		c->want = err == WOLFSSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return STEP_WAIT;
	}
	conn_fail_tls(c, "handshake", r);
	return STEP_END;
}

static int step_payload(struct bench_conn *c)
{
	uint64_t n = c->t->o->payload;
	int round, wr, rd;

	for (round = 0; round < STEP_ROUNDS; round++) {
		wr = rd = 0;
		c->want = 0;
		if (c->tx < n) {
			wr = do_write(c, n - c->tx < BENCH_IO_CHUNK ? n - c->tx : BENCH_IO_CHUNK);
			if (wr < 0)
				return STEP_END;
		}
		if (c->rx < c->tx) {
			rd = do_read(c);
			if (rd < 0)
				return STEP_END;
		}
		if (c->rx == n) {
			c->t_echo = bench_now();
			c->state = CONN_CLOSE;
			return STEP_NEXT;
		}
		if (!wr && !rd)
			return STEP_WAIT;
	}
	c->want = EPOLLIN | (c->tx < n ? EPOLLOUT : 0);
	return STEP_WAIT;
}

/* Stream both ways, at most --bytes unechoed, until the run ends. */
static int step_bulk(struct bench_conn *c)
{
	uint64_t window = c->t->o->bytes, inflight;
	int round, wr, rd, len;

	for (round = 0; round < STEP_ROUNDS; round++) {
		wr = 0;
		c->want = 0;
		inflight = c->tx - c->rx;
		if (c->wr_len || inflight < window) {
			len = window - inflight < BENCH_IO_CHUNK ?
			      (int)(window - inflight) : BENCH_IO_CHUNK;
			wr = do_write(c, len);
			if (wr < 0)
				return STEP_END;
		}
		rd = do_read(c);
		if (rd < 0)
			return STEP_END;
		if (!wr && !rd)
			return STEP_WAIT;
	}
	c->want = EPOLLIN | (c->tx - c->rx < window ? EPOLLOUT : 0);
	return STEP_WAIT;
}

/*
 * Read what the server sent after the handshake (ticket, alerts, data).
 * 0: nothing more for now, 1: the server closed, -1: failed and ended.
 */
static int drain(struct bench_conn *c)
{
	int i, r, err;

	for (i = 0; i < 4 * STEP_ROUNDS; i++) {
		r = wolfSSL_read(c->ssl, c->t->rbuf, BENCH_IO_CHUNK);
		if (r > 0)
			continue;
		err = wolfSSL_get_error(c->ssl, r);
		if (err == WOLFSSL_ERROR_WANT_READ)
			return 0;
		/* A reset before our close_notify arrived: the server threw us out. */
		if (r == 0 && !c->sent_err && (c->shut_sent || c->io_err != ECONNRESET))
			return 1;
		conn_fail_tls(c, "after handshake", r);
		return -1;
	}
	return 0;
}

static int step_close(struct bench_conn *c)
{
	int r;

	if (!c->shut_sent) {
		r = drain(c);
		if (r > 0)
			conn_ok(c);
		if (r)
			return STEP_END;
		c->shut_sent = 1;
		c->deadline = bench_now() + BENCH_CLOSE_LINGER;
		if (wolfSSL_shutdown(c->ssl) == WOLFSSL_FATAL_ERROR) {
			if (c->io_err)
				conn_fail_tls(c, "close", WOLFSSL_FATAL_ERROR);
			else
				conn_ok(c);	/* send buffer full: skip the courtesy */
			return STEP_END;
		}
	}
	r = drain(c);
	if (r > 0)
		conn_ok(c);
	if (r)
		return STEP_END;
	c->want = EPOLLIN;
	return STEP_WAIT;
}

static void set_interest(struct bench_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (!c->want)
		c->want = EPOLLIN;
	if (c->want == c->events)
		return;
	ev.events = c->want;
	if (epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev)) {
		conn_local(c, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->events = c->want;
}

void conn_event(struct bench_conn *c)
{
	int r = STEP_NEXT;

	while (r == STEP_NEXT) {
		switch (c->state) {
		case CONN_CONNECT:
			r = step_connect(c);
			break;
		case CONN_HANDSHAKE:
			r = step_handshake(c);
			break;
		case CONN_PAYLOAD:
			r = step_payload(c);
			break;
		case CONN_BULK:
			r = step_bulk(c);
			break;
		case CONN_CLOSE:
			r = step_close(c);
			break;
		default:
			return;
		}
	}
	if (r == STEP_WAIT)
		set_interest(c);
}

/* Begin a connection whose latency counts from t0. */
void conn_start(struct bench_conn *c, uint64_t t0)
{
	const struct bench_opts *o = c->t->o;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->t0 = t0;
	c->t_hs = c->t_echo = 0;
	c->tx = c->rx = 0;
	c->wr_len = c->io_err = c->sent_err = c->resumed = c->shut_sent = 0;
	c->backoff = 0;
	hello_reset(&c->hello);
	c->t_start = bench_now();
	c->deadline = c->t_start + (uint64_t)(o->timeout * 1e9);
	c->state = CONN_CONNECT;
	c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		/* Whatever socket() says, it is about this machine. */
		conn_local(c, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen) &&
	    errno != EINPROGRESS) {
		conn_sys_fail(c, "connect", errno);
		return;
	}
	/* Connected or not yet: either way EPOLLOUT says when to go on. */
	if (epoll_ctl(c->t->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		conn_local(c, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->events = EPOLLOUT;
}

/*
 * The timeout scan: a stuck connection fails (after the run: is unfinished),
 * a lingering close ends.
 */
void conn_check_time(struct bench_conn *c)
{
	struct bench_thread *t = c->t;

	if (c->state == CONN_IDLE || c->state == CONN_BULK || t->now < c->deadline)
		return;
	if (c->state == CONN_CLOSE && c->shut_sent) {
		if (window_has(t, c->t_hs))
			t->st.unclosed++;
		conn_ok(c);
		return;
	}
	if (t->stopping)
		conn_unfinished(c);
	else
		conn_fail(c, "timeout: %s", conn_state_names[c->state]);
}

/*
 * The run is over. First call (final = 0): bulk streams end, counted ok;
 * everything else may finish within the grace period, so the server sees
 * orderly closes rather than resets, but a handshake that completes now no
 * longer counts. Second call, after the grace period: whatever is left ends,
 * and what had not got past the handshake or echo is counted unfinished.
 */
void conn_stop(struct bench_conn *c, int final)
{
	switch (c->state) {
	case CONN_BULK:
		wolfSSL_shutdown(c->ssl);
		conn_ok(c);
		break;
	case CONN_CONNECT:
	case CONN_HANDSHAKE:
	case CONN_PAYLOAD:
		if (final)
			conn_unfinished(c);
		break;
	case CONN_CLOSE:
		if (final)
			conn_ok(c);
		break;
	default:
		break;
	}
}

/* At the thread's exit: the slot's session too. */
void conn_release(struct bench_conn *c)
{
	teardown(c);
	if (c->sess) {
		wolfSSL_SESSION_free(c->sess);
		c->sess = NULL;
	}
}
