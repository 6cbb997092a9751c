// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The opt-in status endpoint: a tiny HTTP/1.0 responder on its own thread,
 * one request per connection, reading only what the workers publish with
 * relaxed atomics. It never touches a connection, a TLS context or a lock
 * the workers take, so a slow scraper cannot slow the data path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "addr.h"
#include "kservice.h"
#include "listener.h"
#include "log.h"
#include "stats.h"
#include "status.h"
#include "version.h"
#include "worker.h"

struct buf {
	char *p;
	size_t len, cap;
	int failed;	/* out of memory: the scrape gets a 503, kmtlsd goes on */
};

static void bprintf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *np;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && b->len + n < b->cap) {
			b->len += n;
			return;
		}
		b->cap = (b->cap ? b->cap * 2 : 4096) + n;
		np = realloc(b->p, b->cap);
		if (!np) {
			free(b->p);
			*b = (struct buf){ .failed = 1 };
			return;
		}
		b->p = np;
	}
}

static void counter(struct buf *b, const char *name, const char *help,
		    const char *labels, uint64_t v, int header)
{
	if (header)
		bprintf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	bprintf(b, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void histogram(struct buf *b, const struct kmtls_stats *s)
{
	static const uint64_t bounds_ms[] = KMTLS_HS_BUCKETS_MS;
	const char *n = "kmtls_handshake_duration_seconds";
	uint64_t cum = 0;
	int i;

	bprintf(b, "# HELP %s Successful handshakes by duration, accept to verified.\n"
		"# TYPE %s histogram\n", n, n);
	for (i = 0; i < KMTLS_HS_NBUCKETS - 1; i++) {
		cum += s->hs_hist[i];
		bprintf(b, "%s_bucket{le=\"%g\"} %llu\n", n, bounds_ms[i] / 1000.0,
			(unsigned long long)cum);
	}
	cum += s->hs_hist[i];
	bprintf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", n,
		(unsigned long long)cum, n, s->hs_sum_us / 1e6, n, (unsigned long long)cum);
}

/* Newest modification time of a listener's CRL files, 0 if none. */
static time_t crl_mtime(const struct kmtls_listener *l)
{
	time_t newest = 0;
	struct stat st;
	int i;

	for (i = 0; i < l->conf->crl.n; i++)
		if (!stat(l->conf->crl.v[i], &st) && st.st_mtime > newest)
			newest = st.st_mtime;
	return newest;
}

char *kmtls_status_metrics(const struct kmtls_status_src *src)
{
	struct buf b = { 0 };
	struct kmtls_stats s;
	time_t now = time(NULL), m;
	int i, first = 1;

	kmtls_stats_sum(src->ws, src->n_workers, &s);
	counter(&b, "kmtls_connections_accepted_total", "TCP connections accepted.", "", s.accepted, 1);
	counter(&b, "kmtls_handshakes_total", "mTLS handshakes by outcome.",
		"{outcome=\"ok\"}", s.handshakes_ok, 1);
	counter(&b, "kmtls_handshakes_total", "", "{outcome=\"failed\"}", s.handshakes_failed, 0);
	counter(&b, "kmtls_handshakes_resumed_total", "Handshakes that resumed a session.", "",
		s.handshakes_resumed, 1);
	counter(&b, "kmtls_record_layer_total", "Connections by record layer after the handshake.",
		"{layer=\"ktls\"}", s.ktls_on, 1);
	counter(&b, "kmtls_record_layer_total", "", "{layer=\"wolfssl\"}", s.ktls_fallback, 0);
	counter(&b, "kmtls_record_layer_total", "", "{layer=\"refused\"}", s.ktls_refused, 0);
	counter(&b, "kmtls_backend_failures_total", "Backend connections that failed.", "",
		s.backend_failed, 1);
	counter(&b, "kmtls_key_updates_total", "Connections ended by a peer KeyUpdate (kTLS cannot rekey).",
		"", s.key_updates, 1);
	counter(&b, "kmtls_connections_capped_total", "Connections closed at max_connections.", "",
		s.conns_capped, 1);
	counter(&b, "kmtls_closes_unacknowledged_total",
		"kTLS connections closed with bytes the peer never acknowledged (it stopped reading).",
		"", s.closes_unacked, 1);
	counter(&b, "kmtls_bytes_total", "Bytes relayed.", "{direction=\"client_to_backend\"}",
		s.bytes_up, 1);
	counter(&b, "kmtls_bytes_total", "", "{direction=\"backend_to_client\"}", s.bytes_down, 0);
	gauge(&b, "kmtls_connections_active", "Open client connections.", (double)s.active);
	histogram(&b, &s);
	for (i = 0; i < src->n_listeners; i++) {
		m = crl_mtime(&src->ls[i]);
		if (!m)
			continue;
		if (first)
			bprintf(&b, "# HELP kmtls_crl_age_seconds Age of the newest CRL file of a listener.\n"
				"# TYPE kmtls_crl_age_seconds gauge\n");
		first = 0;
		bprintf(&b, "kmtls_crl_age_seconds{listener=\"%s\"} %lld\n",
			src->ls[i].conf->name, (long long)(now - m));
	}
	gauge(&b, "kmtls_start_time_seconds", "Start time of kmtlsd (Unix time).", (double)src->started);
	gauge(&b, "kmtls_reload_time_seconds",
	      "Last successful reload (Unix time; 0: none yet).",
	      (double)(src->reloaded ? *src->reloaded : 0));
	counter(&b, "kmtls_reload_failures_total",
		"Reloads that did not all apply (config file, certificate, key, CA, CRL or [ratelimit] refused).",
		"", src->reload_failures ? *src->reload_failures : 0, 1);
	return b.failed ? NULL : b.p;
}

/*
 * json-c asserts on a NULL container; under memory pressure a scrape must
 * get an error, not abort kmtlsd. A NULL value is added as null, and the
 * caller finds a NULL document and answers 503.
 */
static void jadd(json_object *o, const char *k, json_object *v)
{
	/* A failed add leaves @v ours to free. */
	if (!o || json_object_object_add(o, k, v))
		json_object_put(v);
}

static void jappend(json_object *a, json_object *v)
{
	if (!a || !v || json_object_array_add(a, v))
		json_object_put(v);
}

#define JADD(o, k, v) jadd(o, k, json_object_new_int64((int64_t)(v)))
#define LGET(l, f) STAT_GET(&(l)->stats, f)

/* A listener's own counters; they add up to the totals of the document. */
static void listener_counters(json_object *lo, const struct kmtls_listener *l)
{
	json_object *hs = json_object_new_object();

	jadd(lo, "mode", json_object_new_string(
		l->conf->mode == KMTLS_MODE_ORIGINATE ? "originate" : "terminate"));
	JADD(lo, "accepted", LGET(l, accepted));
	JADD(hs, "ok", LGET(l, handshakes_ok));
	JADD(hs, "failed", LGET(l, handshakes_failed));
	JADD(hs, "resumed", LGET(l, handshakes_resumed));
	jadd(lo, "handshakes", hs);
	JADD(lo, "ktls", LGET(l, ktls_on));
	JADD(lo, "fallback", LGET(l, ktls_fallback));
	JADD(lo, "ktls_refused", LGET(l, ktls_refused));
	JADD(lo, "backend_failed", LGET(l, backend_failed));
	JADD(lo, "capped", LGET(l, conns_capped));
	JADD(lo, "closes_unacked", LGET(l, closes_unacked));
}

/*
 * The kernel service (kmtls.ko's handshakes): profiles, whether served, and
 * its handshakes (counted in each profile's per-role contexts).
 */
static json_object *kservice_json(const struct kmtls_kservice *ks)
{
	json_object *o = json_object_new_object(), *names = json_object_new_array();
	json_object *hs = json_object_new_object();
	int st = __atomic_load_n(&ks->state, __ATOMIC_RELAXED), i, r;
	uint64_t ok = 0, failed = 0;

	for (i = 0; i < ks->n; i++) {
		jappend(names, json_object_new_string(ks->profiles[i].conf->tls.name));
		for (r = 0; r < KMTLS_KROLES; r++) {
			if (!ks->profiles[i].ready[r])
				continue;
			ok += LGET(&ks->profiles[i].role[r], handshakes_ok);
			failed += LGET(&ks->profiles[i].role[r], handshakes_failed);
		}
	}
	jadd(o, "profiles", names);
	JADD(hs, "ok", ok);
	JADD(hs, "failed", failed);
	jadd(o, "handshakes", hs);
	jadd(o, "attached", json_object_new_boolean(st == 1));
	jadd(o, "state", json_object_new_string(
		st == 1 ? "serving" : st == 0 ? "starting" :
		st == -ENOENT ? "kmtls.ko not loaded" :
		st == -EPERM ? "refused: needs CAP_NET_ADMIN" : strerror(-st)));
	return o;
}

char *kmtls_status_json(const struct kmtls_status_src *src)
{
	json_object *o = json_object_new_object(), *hs = json_object_new_object();
	json_object *ls = json_object_new_array();
	struct kmtls_stats s;
	char a[KMTLS_ADDRSTRLEN], *out;
	const char *str;
	int i;

	kmtls_stats_sum(src->ws, src->n_workers, &s);
	jadd(o, "version", json_object_new_string(KMTLS_VERSION));
	JADD(o, "started", src->started);
	JADD(o, "uptime_s", time(NULL) - src->started);
	JADD(o, "workers", src->n_workers);
	JADD(o, "accepted", s.accepted);
	JADD(o, "active", s.active);
	JADD(hs, "ok", s.handshakes_ok);
	JADD(hs, "failed", s.handshakes_failed);
	JADD(hs, "resumed", s.handshakes_resumed);
	JADD(hs, "sum_us", s.hs_sum_us);
	jadd(o, "handshakes", hs);
	JADD(o, "ktls", s.ktls_on);
	JADD(o, "fallback", s.ktls_fallback);
	JADD(o, "ktls_refused", s.ktls_refused);
	JADD(o, "backend_failed", s.backend_failed);
	JADD(o, "key_updates", s.key_updates);
	JADD(o, "capped", s.conns_capped);
	JADD(o, "closes_unacked", s.closes_unacked);
	JADD(o, "bytes_client_to_backend", s.bytes_up);
	JADD(o, "bytes_backend_to_client", s.bytes_down);
	for (i = 0; i < src->n_listeners; i++) {
		const struct kmtls_listener *l = &src->ls[i];
		json_object *lo = json_object_new_object();

		jadd(lo, "name", json_object_new_string(l->conf->name));
		jadd(lo, "listen", json_object_new_string(
			kmtls_addr_str((const struct sockaddr *)&l->listen_addr, l->listen_len, a, sizeof(a))));
		jadd(lo, "backend", json_object_new_string(
			kmtls_addr_str((const struct sockaddr *)&l->backend_addr, l->backend_len, a, sizeof(a))));
		JADD(lo, "active", atomic_load(&((struct kmtls_listener *)l)->active));
		JADD(lo, "max_connections", l->conf->max_connections);
		listener_counters(lo, l);
		jappend(ls, lo);
	}
	jadd(o, "listeners", ls);
	jadd(o, "kernel_service", src->ks ? kservice_json(src->ks) : NULL);
	str = o && hs && ls ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	out = str ? strdup(str) : NULL;
	json_object_put(o);
	return out;
}

/*
 * Clients are served one at a time, and each is bounded: STATUS_REQ_MS from
 * accept to a complete request line, then STATUS_RESP_MS to take the answer
 * and close; past either it is dropped. The thread also watches the stop
 * pipe in every wait, so kmtls_status_stop() returns at once whatever a
 * client does. One at a time is enough: the endpoint is local by design,
 * for a scraper and an operator, and an answer takes a millisecond; a stuck
 * or hostile client delays each one queued behind it (backlog 16) by 5 s at
 * most, and the data path and shutdown not at all. Serving clients side by
 * side would keep a document (hundreds of KB with many listeners) per
 * stalled client, which a local client could then multiply.
 */
#define STATUS_REQ_MS	2000
#define STATUS_RESP_MS	3000

static int status_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t status_thread;
static const struct kmtls_status_src *status_src;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

enum { IO_READY, IO_TIMEOUT, IO_STOP, IO_FAIL };

/* Wait for @events on @fd (-1: none) until @deadline (-1: none) or a stop. */
static int wait_io(int fd, short events, long long deadline)
{
	struct pollfd p[2] = { { .fd = stop_pipe[0], .events = POLLIN },
			       { .fd = fd, .events = events } };
	long long left;
	int n;

	for (;;) {
		left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left <= 0)
			return IO_TIMEOUT;
		n = poll(p, fd >= 0 ? 2 : 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR)
			return IO_FAIL;
		if (n > 0 && p[0].revents)
			return IO_STOP;
		if (n > 0)
			return IO_READY;
	}
}

/* A drop is logged as a warning once, then at debug level: no flood. */
static void log_drop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_drop(const char *fmt, ...)
{
	static int warned;
	char why[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	kmtls_log(warned ? LOG_DEBUG : LOG_WARNING,
		  "status endpoint: dropped a client that %s: a client gets %d s to send its request line, then %d s to read the answer%s",
		  why, STATUS_REQ_MS / 1000, STATUS_RESP_MS / 1000,
		  warned ? "" : " (further drops are logged at debug level)");
	warned = 1;
}

/* 0 when all of @buf went out, -1 when the client is dropped. */
static int send_all(int fd, const char *buf, size_t len, long long deadline, size_t *sent)
{
	ssize_t n;
	int w;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf += n;
			len -= n;
			*sent += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;	/* gone: nothing to say about it */
		w = wait_io(fd, POLLOUT, deadline);
		if (w == IO_TIMEOUT)
			log_drop("did not read its answer within %d s (%zu bytes taken)",
				 STATUS_RESP_MS / 1000, *sent);
		if (w != IO_READY)
			return -1;
	}
	return 0;
}

/*
 * Answer, then end our side and read the client's until it closes: a close
 * with request bytes still unread (headers past the request line, or the
 * rest of a request too long for us) would be a reset, and clients reading
 * to EOF would lose the answer.
 */
static void respond(int fd, const char *status, const char *type, const char *body,
		    long long deadline)
{
	size_t len = body ? strlen(body) : 0, sent = 0;
	char head[256], sink[512];
	ssize_t r;
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, type, len);

	if (send_all(fd, head, n, deadline, &sent) || send_all(fd, body, len, deadline, &sent))
		return;
	shutdown(fd, SHUT_WR);
	for (;;) {
		r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return;
		if (wait_io(fd, POLLIN, deadline) != IO_READY)
			return;	/* it has the answer; it just does not close */
	}
}

static void serve_one(int fd)
{
	long long deadline = now_ms() + STATUS_REQ_MS;
	char req[512];
	ssize_t n = 0, got;
	char *body;
	int w;

	while (!memchr(req, '\n', n)) {
		if (n == (ssize_t)sizeof(req) - 1) {
			respond(fd, "414 URI Too Long", "text/plain",
				"the request line is longer than 511 bytes; try GET /metrics or GET /status\n",
				now_ms() + STATUS_RESP_MS);
			return;
		}
		got = recv(fd, req + n, sizeof(req) - 1 - n, MSG_DONTWAIT);
		if (got > 0) {
			n += got;
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return;
		w = wait_io(fd, POLLIN, deadline);
		if (w == IO_TIMEOUT)
			log_drop("sent no complete request line within %d s (%zd bytes)",
				 STATUS_REQ_MS / 1000, n);
		if (w != IO_READY)
			return;
	}
	req[n] = 0;
	deadline = now_ms() + STATUS_RESP_MS;
	if (!strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET /metrics?", 13)) {
		body = kmtls_status_metrics(status_src);
		if (body)
			respond(fd, "200 OK", "text/plain; version=0.0.4", body, deadline);
	} else if (!strncmp(req, "GET /status ", 12) || !strncmp(req, "GET / ", 6)) {
		body = kmtls_status_json(status_src);
		if (body)
			respond(fd, "200 OK", "application/json", body, deadline);
	} else {
		respond(fd, "404 Not Found", "text/plain", "try /metrics or /status\n", deadline);
		return;
	}
	if (!body)
		respond(fd, "503 Service Unavailable", "text/plain", "kmtlsd is out of memory\n",
			deadline);
	free(body);
}

static void *status_main(void *arg)
{
	int fd, w;

	(void)arg;
	for (;;) {
		w = wait_io(status_fd, POLLIN, -1);
		if (w == IO_STOP)
			return NULL;	/* kmtls_status_stop() */
		/* Non-blocking: a client gone since the poll is EAGAIN, not a hang. */
		fd = -1;
		if (w == IO_READY)
			fd = accept4(status_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* Out of memory or descriptors: the scraper waits, we do not spin. */
			if (w == IO_FAIL || errno == EMFILE || errno == ENFILE ||
			    errno == ENOMEM || errno == ENOBUFS)
				if (wait_io(-1, 0, now_ms() + 100) == IO_STOP)
					return NULL;
			continue;
		}
		serve_one(fd);
		close(fd);
	}
}

/* A unix socket, or an address only this host can reach. */
static int addr_is_local(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
	return ss->ss_family == AF_UNIX;
}

int kmtls_status_bind(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char why[160];
	int one = 1;

	if (kmtls_addr_parse(addr, 1, &ss, &len, why, sizeof(why))) {
		snprintf(err, errlen, "status-listen: %s", why);
		return -1;
	}
	if (!addr_is_local(&ss))
		log_warn("status-listen %s is not a loopback address: anyone who reaches it reads the metrics and status (no TLS, no authentication); firewall it, or use 127.0.0.1 or unix:",
			 addr);
	status_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (status_fd < 0)
		goto fail;
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	else
		setsockopt(status_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(status_fd, (struct sockaddr *)&ss, len) || listen(status_fd, 16))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "status-listen %s: %s", addr, strerror(errno));
	if (status_fd >= 0)
		close(status_fd);
	status_fd = -1;
	return -1;
}

static void close_stop_pipe(void)
{
	if (stop_pipe[0] >= 0)
		close(stop_pipe[0]);
	if (stop_pipe[1] >= 0)
		close(stop_pipe[1]);
	stop_pipe[0] = -1;
	stop_pipe[1] = -1;
}

int kmtls_status_start(const char *addr, const struct kmtls_status_src *src,
		       char *err, size_t errlen)
{
	int ret;

	if (status_fd < 0 && kmtls_status_bind(addr, err, errlen))
		return -1;
	status_src = src;
	ret = pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) ? errno :
	      pthread_create(&status_thread, NULL, status_main, NULL);
	if (ret) {
		snprintf(err, errlen, "status-listen %s: %s", addr, strerror(ret));
		close_stop_pipe();
		close(status_fd);
		status_fd = -1;
		return -1;
	}
	return 0;
}

void kmtls_status_stop(void)
{
	if (status_fd < 0)
		return;
	if (stop_pipe[0] < 0)
		goto out;	/* bound, never started */
	/* Every wait of the thread watches the pipe: it ends at once. */
	if (write(stop_pipe[1], "", 1) != 1) {
		close(stop_pipe[1]);	/* a hang-up wakes it too */
		stop_pipe[1] = -1;
	}
	pthread_join(status_thread, NULL);
	close_stop_pipe();
out:
	close(status_fd);
	status_fd = -1;
}
