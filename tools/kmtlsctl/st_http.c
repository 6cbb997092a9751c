// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * GET /status over HTTP/1.0, everything within ST_TIMEOUT_MS: connect
 * (waiting while a unix socket's accept queue is full), send, read to EOF
 * (agent/status.c answers one request per connection and closes), then the
 * status line, the headers (a Content-Length must match the body exactly)
 * and the body: one JSON object and nothing after it but white space.
 * Each failure says which kind it is (enum st_problem), so the caller can
 * tell "not running" from "not allowed", "too slow" and "not kmtlsd".
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/addr.h"
#include "st.h"

#define ST_MAX_BODY	(16 << 20)
#define RETRY_MAX_MS	100	/* between two connects to a full accept queue */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait for @events until @deadline: 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int fail(enum st_problem *problem, enum st_problem p, char *why, size_t whylen,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(enum st_problem *problem, enum st_problem p, char *why, size_t whylen,
		const char *fmt, ...)
{
	va_list ap;

	*problem = p;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * connect(2), non-blocking. A unix socket whose accept queue is full
 * answers EAGAIN at once (a TCP one would queue our SYN): try again, a
 * little later each time, until @deadline.
 */
static int dial(const char *addr, long long deadline, enum st_problem *problem, char *why,
		size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t len, elen = sizeof(int);
	int fd, e = 0, pause = 5, full = 0;

	if (kmtls_addr_parse(addr, 1, &ss, &len, why, whylen)) {
		*problem = ST_FAILED;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(problem, ST_FAILED, why, whylen, "socket: %s", strerror(errno));
	while (connect(fd, (struct sockaddr *)&ss, len)) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && ss.ss_family == AF_UNIX) {
			full = 1;
			if (now_ms() + pause >= deadline) {
				e = ETIMEDOUT;
				break;
			}
			poll(NULL, 0, pause);
			pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
			continue;
		}
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen))
			e = errno;
		break;
	}
	if (!e)
		return fd;
	close(fd);
	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		return fail(problem, ST_DOWN, why, whylen, "connect: %s", strerror(e));
	case EACCES:
	case EPERM:
		return fail(problem, ST_DENIED, why, whylen, "connect: %s", strerror(e));
	case ETIMEDOUT:
		return fail(problem, ST_STALLED, why, whylen, full ?
			    "its accept queue stayed full for %d s" :
			    "the connection was not accepted within %d s", ST_TIMEOUT_MS / 1000);
	default:
		return fail(problem, ST_FAILED, why, whylen, "connect: %s", strerror(e));
	}
}

/* The whole response (NUL after it), or NULL with the problem set. */
static char *exchange(int fd, long long deadline, size_t *len, enum st_problem *problem,
		      char *why, size_t whylen)
{
	static const char req[] = "GET /status HTTP/1.0\r\nHost: kmtlsd\r\n\r\n";
	size_t cap = 8192, n = 0, off = 0;
	char *buf = malloc(cap), *p;
	ssize_t r;

	while (buf && off < sizeof(req) - 1) {
		r = send(fd, req + off, sizeof(req) - 1 - off, MSG_NOSIGNAL);
		if (r > 0) {
			off += (size_t)r;
		} else if (r < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLOUT, deadline)) {
				fail(problem, ST_STALLED, why, whylen, "it did not take the "
				     "request within %d s", ST_TIMEOUT_MS / 1000);
				goto out;
			}
		} else if (r < 0 && errno != EINTR) {
			fail(problem, ST_FAILED, why, whylen, "send: %s", strerror(errno));
			goto out;
		}
	}
	while (buf) {
		if (n + 1 == cap) {
			if (cap >= ST_MAX_BODY) {
				fail(problem, ST_FOREIGN, why, whylen, "an answer larger than %d "
				     "MiB", ST_MAX_BODY >> 20);
				goto out;
			}
			p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r > 0) {
			n += (size_t)r;
		} else if (r == 0) {
			buf[n] = 0;
			*len = n;
			return buf;
		} else if (errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline)) {
				fail(problem, ST_STALLED, why, whylen, "%s within %d s", n ?
				     "the answer did not end" : "no answer", ST_TIMEOUT_MS / 1000);
				goto out;
			}
		} else if (errno != EINTR) {
			fail(problem, ST_FAILED, why, whylen, "recv: %s", strerror(errno));
			goto out;
		}
	}
	fail(problem, ST_FAILED, why, whylen, "out of memory");
out:
	free(buf);
	return NULL;
}

/*
 * The headers between @h and @end: Content-Length into *@clen (-1 when
 * there is none). 0, or -1 with the problem set.
 */
static int headers(const char *h, const char *end, long long *clen, enum st_problem *problem,
		   char *why, size_t whylen)
{
	const char *eol, *v;
	char *num_end;
	long long n;

	*clen = -1;
	for (; h < end; h = eol + 2) {
		eol = memmem(h, (size_t)(end - h), "\r\n", 2);
		if (!strncasecmp(h, "Transfer-Encoding:", 18))
			return fail(problem, ST_FOREIGN, why, whylen, "a Transfer-Encoding, "
				    "which kmtlsd never sends");
		if (strncasecmp(h, "Content-Length:", 15))
			continue;
		v = h + 15 + strspn(h + 15, " \t");
		errno = 0;
		n = *v >= '0' && *v <= '9' ? strtoll(v, &num_end, 10) : -1;
		if (n < 0 || errno || num_end + strspn(num_end, " \t") != eol ||
		    (*clen >= 0 && *clen != n))
			return fail(problem, ST_FOREIGN, why, whylen, "a bad Content-Length");
		*clen = n;
	}
	return 0;
}

/* The status line, the headers, and the body as one JSON object. */
static json_object *parse_response(const char *resp, size_t len, enum st_problem *problem,
				   char *why, size_t whylen)
{
	const char *end = memmem(resp, len, "\r\n\r\n", 4), *eol, *body;
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *o;
	size_t blen, used;
	long long clen;
	char line[120];

	if (len < 13 || strncmp(resp, "HTTP/1.", 7) || resp[7] < '0' || resp[7] > '9' ||
	    resp[8] != ' ' || strspn(resp + 9, "0123456789") != 3 ||
	    (resp[12] != ' ' && resp[12] != '\r') || !end) {
		fail(problem, ST_FOREIGN, why, whylen, "the answer is not HTTP");
		return NULL;
	}
	eol = memmem(resp, len, "\r\n", 2);
	if (strncmp(resp + 9, "200", 3)) {
		snprintf(line, sizeof(line), "%.*s", (int)(eol - resp), resp);
		fail(problem, ST_FOREIGN, why, whylen, "it answered \"%s\"", st_text(line));
		return NULL;
	}
	if (headers(eol + 2, end + 2, &clen, problem, why, whylen))
		return NULL;
	body = end + 4;
	blen = len - (size_t)(body - resp);
	if (clen >= 0 && (unsigned long long)clen != blen) {
		fail(problem, ST_FOREIGN, why, whylen, "%zu bytes after the headers where "
		     "Content-Length says %lld", blen, clen);
		return NULL;
	}
	if (memchr(body, 0, blen)) {
		fail(problem, ST_BAD_DOC, why, whylen, "the body holds a NUL byte: not JSON");
		return NULL;
	}
	tok = json_tokener_new();
	if (!tok) {
		fail(problem, ST_FAILED, why, whylen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, (int)blen);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		fail(problem, ST_BAD_DOC, why, whylen, "the body is not JSON (%s)",
		     jerr == json_tokener_continue ? "it ends too early" :
		     json_tokener_error_desc(jerr));
	} else if (used + strspn(body + used, " \t\r\n") != blen) {
		fail(problem, ST_BAD_DOC, why, whylen, "more after the JSON document (at byte "
		     "%zu of %zu)", used, blen);
	} else if (!json_object_is_type(o, json_type_object)) {
		fail(problem, ST_BAD_DOC, why, whylen, "the document is not a JSON object");
	} else {
		return o;
	}
	json_object_put(o);
	return NULL;
}

json_object *st_http_get(const char *addr, enum st_problem *problem, char *why, size_t whylen)
{
	long long deadline = now_ms() + ST_TIMEOUT_MS;
	json_object *o = NULL;
	size_t len;
	char *resp;
	int fd;

	*problem = ST_FINE;
	fd = dial(addr, deadline, problem, why, whylen);
	if (fd < 0)
		return NULL;
	resp = exchange(fd, deadline, &len, problem, why, whylen);
	close(fd);
	if (resp)
		o = parse_response(resp, len, problem, why, whylen);
	free(resp);
	return o;
}
