// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The relay between a client (kTLS or wolfSSL record layer) and a plaintext
 * backend. With kTLS both directions are splice(2) through a pipe and no byte
 * is copied to userspace; without it, one record-sized buffer per direction
 * goes through wolfSSL. Either way, a full pipe or buffer stops reading from
 * the source (backpressure), and EOF on one side becomes a half-close on the
 * other once what was in flight has been written.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <linux/tls.h>

#include "ktls.h"
#include "log.h"
#include "relay.h"
#include "worker.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define TLS_HS_KEY_UPDATE 24
#define TLS_HS_NEW_SESSION_TICKET 4

int kmtls_relay_setup(struct conn *c)
{
	struct relay_dir *d[2] = { &c->up, &c->down };
	int i;

	for (i = 0; i < 2 && !c->ktls; i++) {
		d[i]->buf = malloc(RELAY_BUF_SIZE);
		if (!d[i]->buf)
			return -1;
	}
	return 0;
}

/* A pipe from the worker's pool, or a new one sized for fewer syscalls. */
static int pipe_get(struct kmtls_worker *w, struct relay_dir *d)
{
	struct pipe_slot *p;
	int cap;

	if (d->pipe[0] >= 0)
		return 0;
	if (w->n_pipes) {
		p = &w->pipes[--w->n_pipes];
		d->pipe[0] = p->fd[0];
		d->pipe[1] = p->fd[1];
		d->pipe_cap = p->cap;
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC))
		return -1;
	/* Best effort; the kernel may give less (pipe-user-pages-soft). */
	fcntl(d->pipe[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	cap = fcntl(d->pipe[1], F_GETPIPE_SZ);
	d->pipe_cap = cap > 0 ? (size_t)cap : 4096;
	return 0;
}

/* Only an empty pipe goes back: its bytes belong to this connection. */
static void pipe_put(struct kmtls_worker *w, struct relay_dir *d)
{
	struct pipe_slot *p;

	if (d->pipe[0] < 0 || d->in_pipe)
		return;
	if (w->n_pipes < PIPE_POOL_MAX) {
		p = &w->pipes[w->n_pipes++];
		p->fd[0] = d->pipe[0];
		p->fd[1] = d->pipe[1];
		p->cap = d->pipe_cap;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

void kmtls_relay_free(struct conn *c)
{
	struct relay_dir *d[2] = { &c->up, &c->down };
	int i, j;

	for (i = 0; i < 2; i++) {
		pipe_put(c->w, d[i]);
		for (j = 0; j < 2; j++)
			if (d[i]->pipe[j] >= 0)
				close(d[i]->pipe[j]);
		d[i]->pipe[0] = d[i]->pipe[1] = -1;
		free(d[i]->buf);
		d[i]->buf = NULL;
		free(d[i]->prefix);
		d[i]->prefix = NULL;
	}
}

static int would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/*
 * Prefix bytes (PROXY header, plaintext drained before kTLS) go first;
 * those after the header count as payload.
 */
static int send_prefix(struct relay_dir *d, int dst, int *progress)
{
	size_t from;
	ssize_t n;

	while (d->prefix_off < d->prefix_len) {
		n = send(dst, d->prefix + d->prefix_off, d->prefix_len - d->prefix_off,
			 MSG_NOSIGNAL);
		if (n < 0)
			return would_block() ? 0 : -1;
		from = d->prefix_off > d->prefix_meta ? d->prefix_off : d->prefix_meta;
		d->prefix_off += n;
		if (d->prefix_off > from)
			d->bytes += d->prefix_off - from;
		*progress = 1;
	}
	return 0;
}

static int prefix_pending(const struct relay_dir *d)
{
	return d->prefix_off < d->prefix_len;
}

/*
 * kTLS sends close_notify only when asked: an alert record. 0 once kTLS
 * has taken it; -1 with errno (EAGAIN: TCP's send buffer is full, and kTLS
 * refuses a record until there is room).
 */
static int ktls_close_notify(int fd)
{
	unsigned char alert[2] = { 1, 0 };	/* warning, close_notify */
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cmsg) = KMTLS_REC_ALERT;
	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? -1 : 0;
}

/* Room in @fd's send buffer now (what EPOLLOUT would report). */
static int writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* The end that speaks TLS: the client, or the server in originate mode. */
static int tls_fd(const struct conn *c)
{
	return c->originate ? c->backend.fd : c->client.fd;
}

static const char *tls_peer(const struct conn *c)
{
	return c->originate ? "server" : "client";
}

/* The end behind @fd, as operators name it. */
static const char *end_name(const struct conn *c, int fd)
{
	if (fd == tls_fd(c))
		return tls_peer(c);
	return c->originate ? "client" : "backend";
}

/*
 * Why the relay ended, naming the end that failed, in the same words
 * whichever record layer carried the connection.
 */
static int end_failed(struct conn *c, int fd, int err, const char **why)
{
	if (err == ECONNRESET)
		snprintf(c->why, sizeof(c->why), "%s reset the connection", end_name(c, fd));
	else if (err == EPIPE)
		snprintf(c->why, sizeof(c->why), "%s closed the connection", end_name(c, fd));
	else
		snprintf(c->why, sizeof(c->why), "%s: %s", end_name(c, fd), strerror(err));
	*why = c->why;
	return -1;
}

/*
 * A wolfSSL failure on the TLS end. wolfSSL keeps no errno for socket
 * errors; the kernel's socket state still tells a reset (CLOSE) apart.
 */
static int tls_failed(struct conn *c, int err, const char **why)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (err == SOCKET_ERROR_E || err == SOCKET_PEER_CLOSED_E) {
		if (!getsockopt(tls_fd(c), IPPROTO_TCP, TCP_INFO, &ti, &len) &&
		    ti.tcpi_state == TCP_CLOSE)
			return end_failed(c, tls_fd(c), ECONNRESET, why);
		if (err == SOCKET_PEER_CLOSED_E)
			return end_failed(c, tls_fd(c), EPIPE, why);
	}
	*why = wolfSSL_ERR_reason_error_string(err);
	return -1;
}

/*
 * End direction @d at @dst. On the TLS end that is close_notify, which
 * must not be lost to a full send buffer: then the direction stays at eof
 * and not shut, has_data() asks for EPOLLOUT, and this runs again. 0, or
 * -1 with @why when kTLS could not send it (a reset: the stream's end may
 * not have arrived, which is no clean close).
 */
static int shut_dst(struct conn *c, struct relay_dir *d, int dst, const char **why)
{
	if (d->shut)
		return 0;
	if (dst == tls_fd(c)) {
		if (c->ktls) {
			if (ktls_close_notify(dst)) {
				if (would_block())
					return 0;
				return end_failed(c, dst, errno, why);
			}
			d->shut = 1;
			/*
			 * No FIN here: kTLS may still hold records it accepted while
			 * TCP's buffer was full (it sends them when the peer reads).
			 * After shutdown(SHUT_WR) sending them fails with EPIPE: the
			 * tail and the close_notify would be lost and the socket
			 * errored. close_notify is the end of the stream in TLS; the
			 * FIN follows at close(), which waits for them
			 * (kmtls_relay_unacked()).
			 */
			return 0;
		}
		/*
		 * wolfSSL buffers an alert it could not send and only sends it
		 * again with the next record: wait until the alert fits.
		 */
		if (!writable(dst))
			return 0;
		wolfSSL_shutdown(c->ssl);
	}
	d->shut = 1;
	/*
	 * The last direction to end: both sockets are closed right after, and
	 * close() sends the FIN (all there was to read has been read).
	 */
	if (c->up.shut && c->down.shut)
		return 0;
	shutdown(dst, SHUT_WR);
	return 0;
}

/*
 * The handshake messages of one record after the switch, @d->hs_left the
 * bytes of a message begun in an earlier record. A KeyUpdate cannot be
 * honoured before Linux 6.14: 1 to end the connection cleanly rather than
 * let records decrypt with stale keys; 0 for anything else (a
 * NewSessionTicket we can no longer use).
 */
static int ktls_handshake_msgs(struct conn *c, struct relay_dir *d,
			       const unsigned char *p, size_t n)
{
	size_t len, skip;

	while (n) {
		skip = d->hs_left < n ? d->hs_left : n;
		p += skip;
		n -= skip;
		d->hs_left -= skip;
		if (n < 4)	/* a header split across records: ignored */
			return 0;
		if (p[0] == TLS_HS_KEY_UPDATE)
			return 1;
		len = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		log_debug("%s: ignoring post-handshake message type %u", c->peer_str, p[0]);
		p += 4;
		n -= 4;
		d->hs_left = len;
	}
	return 0;
}

/*
 * splice() refuses a non-data record at the head of a kTLS socket (EINVAL)
 * and returns 0 for an empty data record as for the end: read the next
 * record whole, with its type. Alerts end the direction or the connection;
 * data goes into the pipe (the caller made sure it has a free slot).
 */
static int ktls_control(struct conn *c, struct relay_dir *d, int src,
			const char **why)
{
	/*
	 * PIPE_BUF: a data record read here goes into the pipe in one write
	 * that cannot be cut short. A longer record comes in parts, its
	 * handshake messages followed by hs_left.
	 */
	unsigned char rec[PIPE_BUF], type;
	ssize_t n;

	n = kmtls_ktls_recv(src, rec, sizeof(rec), MSG_DONTWAIT, &type);
	if (n < 0)
		return would_block() ? 0 : end_failed(c, src, errno, why);
	if (n == 0) {
		d->eof = 1;
		return 0;
	}
	switch (type) {
	case KMTLS_REC_APPDATA:
		/* Raced with a data record: pass it on through the pipe. */
		if (pipe_get(c->w, d) || write(d->pipe[1], rec, n) != n)
			return *why = "pipe write failed", -1;
		d->in_pipe += n;
		return 0;
	case KMTLS_REC_ALERT:
		if (n >= 2 && rec[1] == 0) {
			d->eof = 1;	/* close_notify */
			return 0;
		}
		snprintf(c->why, sizeof(c->why), "%s sent a TLS alert (%u)", tls_peer(c),
			 n >= 2 ? rec[1] : 0);
		*why = c->why;
		return -1;
	case KMTLS_REC_HANDSHAKE:
		if (ktls_handshake_msgs(c, d, rec, (size_t)n)) {
			STAT_ADD(&c->w->stats, key_updates, 1);
			snprintf(c->why, sizeof(c->why),
				 "%s sent KeyUpdate, which kTLS before Linux 6.14 cannot follow: closed cleanly",
				 tls_peer(c));
			*why = c->why;
			return -1;
		}
		return 0;
	default:
		*why = "unexpected TLS record type";
		return -1;
	}
}

/*
 * A pipe holds pipe_cap bytes only in whole pages: each small record or
 * segment spliced in takes a slot of its own, so the slots can run out with
 * far fewer bytes inside. splice() then says EAGAIN, as for a source with
 * nothing to read, while the source is still readable: the relay must stop
 * watching it until bytes leave the pipe, or epoll wakes it at once, again
 * and again.
 */
static int pipe_slots_full(const struct relay_dir *d)
{
	struct pollfd p = { .fd = d->pipe[1], .events = POLLOUT };

	return d->in_pipe && poll(&p, 1, 0) == 0;
}

/* Room for more from the source: a pipe to get, or bytes and slots free in it. */
static int pipe_has_room(const struct relay_dir *d)
{
	return !d->pipe_full && (d->pipe[0] < 0 || d->in_pipe < d->pipe_cap);
}

static int pump_splice(struct conn *c, struct relay_dir *d, int src, int dst,
		       int src_ktls, const char **why)
{
	int progress;
	ssize_t n;

	do {
		progress = 0;
		if (send_prefix(d, dst, &progress))
			return end_failed(c, dst, errno, why);
		if (!d->eof && pipe_has_room(d)) {
			if (pipe_get(c->w, d))
				return *why = "no descriptor for a relay pipe (RLIMIT_NOFILE)", -1;
			n = splice(src, NULL, d->pipe[1], NULL, d->pipe_cap - d->in_pipe,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->in_pipe += n;
				progress = 1;
			} else if (n == 0 && src_ktls) {
				/* The end, or an empty record (RFC 8446 5.4 allows them). */
				d->pipe_full = pipe_slots_full(d);
				if (!d->pipe_full && ktls_control(c, d, src, why))
					return -1;
				progress = 1;
			} else if (n == 0) {
				d->eof = 1;
				progress = 1;
			} else if (src_ktls && errno == EINVAL) {
				if (ktls_control(c, d, src, why))
					return -1;
				progress = 1;
			} else if (!would_block()) {
				return end_failed(c, src, errno, why);
			} else {
				d->pipe_full = pipe_slots_full(d);
			}
		}
		if (d->in_pipe && !prefix_pending(d)) {
			n = splice(d->pipe[0], NULL, dst, NULL, d->in_pipe,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->in_pipe -= n;
				d->bytes += n;
				d->pipe_full = 0;
				progress = 1;
			} else if (n < 0 && !would_block()) {
				return end_failed(c, dst, errno, why);
			}
		}
	} while (progress);
	pipe_put(c->w, d);
	if (d->eof && !d->in_pipe && !prefix_pending(d))
		return shut_dst(c, d, dst, why);
	return 0;
}

/* From the TLS end without kTLS: wolfSSL_read, then send to @dst. */
static int pump_tls_read(struct conn *c, struct relay_dir *d, int dst,
			 const char **why)
{
	int progress, n, err;
	ssize_t w;

	do {
		progress = 0;
		if (send_prefix(d, dst, &progress))
			return end_failed(c, dst, errno, why);
		if (!d->eof && d->len == 0) {
			n = wolfSSL_read(c->ssl, d->buf, RELAY_BUF_SIZE);
			if (n > 0) {
				d->len = n;
				d->off = 0;
				progress = 1;
			} else {
				err = wolfSSL_get_error(c->ssl, n);
				if (err == WOLFSSL_ERROR_ZERO_RETURN || err == SOCKET_PEER_CLOSED_E) {
					d->eof = 1;
				} else if (err != WOLFSSL_ERROR_WANT_READ &&
					   err != WOLFSSL_ERROR_WANT_WRITE) {
					return tls_failed(c, err, why);
				}
			}
		}
		if (d->off < d->len && !prefix_pending(d)) {
			w = send(dst, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
			if (w > 0) {
				d->off += w;
				d->bytes += w;
				progress = 1;
				if (d->off == d->len)
					d->len = d->off = 0;
			} else if (w < 0 && !would_block()) {
				return end_failed(c, dst, errno, why);
			}
		}
	} while (progress);
	if (d->eof && !d->len && !prefix_pending(d))
		return shut_dst(c, d, dst, why);
	return 0;
}

/* To the TLS end without kTLS: recv from @src, then wolfSSL_write. */
static int pump_tls_write(struct conn *c, struct relay_dir *d, int src,
			  const char **why)
{
	int progress, n, err;
	ssize_t r;

	do {
		progress = 0;
		if (!d->eof && d->len == 0) {
			r = recv(src, d->buf, RELAY_BUF_SIZE, 0);
			if (r > 0) {
				d->len = r;
				progress = 1;
			} else if (r == 0) {
				d->eof = 1;
			} else if (!would_block()) {
				return end_failed(c, src, errno, why);
			}
		}
		if (d->len) {
			/* On WANT_WRITE wolfSSL wants the very same buffer again. */
			n = wolfSSL_write(c->ssl, d->buf, (int)d->len);
			if (n > 0) {
				d->bytes += n;
				d->len = 0;
				progress = 1;
			} else {
				err = wolfSSL_get_error(c->ssl, n);
				if (err != WOLFSSL_ERROR_WANT_WRITE && err != WOLFSSL_ERROR_WANT_READ)
					return tls_failed(c, err, why);
			}
		}
	} while (progress);
	if (d->eof && !d->len)
		return shut_dst(c, d, tls_fd(c), why);
	return 0;
}

enum relay_result kmtls_relay_pump(struct conn *c, const char **why)
{
	uint64_t up0 = c->up.bytes, down0 = c->down.bytes;
	int ret;

	if (c->ktls)
		ret = pump_splice(c, &c->up, c->client.fd, c->backend.fd, !c->originate, why) ||
		      pump_splice(c, &c->down, c->backend.fd, c->client.fd, c->originate, why);
	else if (!c->originate)
		ret = pump_tls_read(c, &c->up, c->backend.fd, why) ||
		      pump_tls_write(c, &c->down, c->backend.fd, why);
	else
		ret = pump_tls_write(c, &c->up, c->client.fd, why) ||
		      pump_tls_read(c, &c->down, c->client.fd, why);
	STAT_ADD(&c->w->stats, bytes_up, c->up.bytes - up0);
	STAT_ADD(&c->w->stats, bytes_down, c->down.bytes - down0);
	if (c->up.bytes != up0 || c->down.bytes != down0)
		c->active_ms = kmtls_now_ms();
	if (ret)
		return RELAY_ERROR;
	return c->up.shut && c->down.shut ? RELAY_DONE : RELAY_AGAIN;
}

static int has_room(const struct conn *c, const struct relay_dir *d)
{
	if (d->eof)
		return 0;
	if (c->ktls)
		return pipe_has_room(d);
	return d->len == 0;
}

/* Something for dst: bytes, or, at eof, the end itself (close_notify). */
static int has_data(const struct conn *c, const struct relay_dir *d)
{
	return !d->shut && (d->eof || prefix_pending(d) ||
			    (c->ktls ? d->in_pipe > 0 : d->len > d->off));
}

int kmtls_relay_unacked(const struct conn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int n = 0;

	if (!c->ktls)
		return 0;
	/*
	 * Once reset (or gone to any state that cannot deliver), SIOCOUTQ
	 * still counts what will never be acknowledged.
	 */
	if (getsockopt(tls_fd(c), IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT))
		return -1;
	return ioctl(tls_fd(c), SIOCOUTQ, &n) ? -1 : n;
}

uint32_t kmtls_relay_client_events(const struct conn *c)
{
	uint32_t ev = 0;

	if (has_room(c, &c->up))
		ev |= EPOLLIN;
	if (has_data(c, &c->down))
		ev |= EPOLLOUT;
	return ev;
}

uint32_t kmtls_relay_backend_events(const struct conn *c)
{
	uint32_t ev = 0;

	if (has_room(c, &c->down))
		ev |= EPOLLIN;
	if (has_data(c, &c->up))
		ev |= EPOLLOUT;
	return ev;
}
