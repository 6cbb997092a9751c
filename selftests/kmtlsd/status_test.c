// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The status endpoint against clients that misbehave: one that never reads
 * a large answer, one that drips its request, one whose request is too
 * long. None may hold the endpoint longer than its deadline (2 s for the
 * request, 3 s for the answer, agent/status.c), nor delay SIGTERM, and a
 * long request gets an HTTP answer and a clean close, not a reset.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

/* Listeners for a large /status: ~300 bytes of JSON each. */
#define BIG_LISTENERS	1000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

FIXTURE(st) {
	struct kmtlsd d;
	char dir[200];
	char sock[108];		/* status-listen unix path, or "" for TCP */
	int sport;
};

FIXTURE_SETUP(st)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(self->dir, sizeof(self->dir), "%s/%s", test_tmpdir(), _metadata->name);
	ASSERT_EQ(0, mkdir(self->dir, 0700));
}

FIXTURE_TEARDOWN(st)
{
	if (!__test_passed(_metadata) && self->d.proc.pid)
		kmtlsd_dump_log(&self->d);
	/* Non-zero also when it died of SIGSYS (the sandbox) or ASan found a leak. */
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
}

/*
 * kmtlsd with @n listeners (nothing connects to them: they make /status
 * large), each on its own loopback address (127.79.0.0/16) and one port, and
 * the status endpoint on a unix socket (@unix_st) or on 127.0.0.1.
 */
static int start(FIXTURE_DATA(st) *self, int n, int unix_st)
{
	char conf[300], status[300];
	const char *args[] = { "-c", conf, NULL };
	FILE *f;
	int i, port = free_port();

	snprintf(conf, sizeof(conf), "%s/k.conf", self->dir);
	self->sport = free_port();
	self->sock[0] = 0;
	if (unix_st && snprintf(self->sock, sizeof(self->sock), "%s/st.sock", self->dir) >=
	    (int)sizeof(self->sock))
		return -1;
	if (unix_st)
		snprintf(status, sizeof(status), "unix:%s", self->sock);
	else
		snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[kmtlsd]\nstatus-listen = %s\n", status);
	for (i = 0; i < n; i++)
		fprintf(f, "\n[listener status-test-listener-with-a-long-name-for-a-big-doc-%04d]\n"
			"listen = 127.79.%d.%d:%d\nbackend = 127.0.0.1:9\n"
			"cert = %s\nkey = %s\nca = %s\n",
			i, i / 250, i % 250 + 1, port, pki("server.pem"), pki("server.key"),
			pki("ca.pem"));
	if (fclose(f))
		return -1;
	if (kmtlsd_run(&self->d, 0, args))
		return -1;
	return kmtlsd_wait_log(&self->d, "status on", 5000);
}

/* A blocking connection to the status endpoint, or -1. */
static int st_connect(FIXTURE_DATA(st) *self)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (!self->sock[0])
		return tcp_connect_port(self->sport, &fd) ? -1 : fd;
	memcpy(a.sun_path, self->sock, sizeof(self->sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

struct answer {
	char head[64];	/* the start of the answer: "HTTP/1.0 200 OK..." */
	size_t len;	/* bytes received */
	int err;	/* 0: the answer ended with EOF; else errno, ETIMEDOUT */
};

/* Send @req on @fd, read to EOF within @timeout_ms. */
static void exchange(int fd, const char *req, size_t reqlen, int timeout_ms,
		     struct answer *a)
{
	long long end = now_ms() + timeout_ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[65536];
	ssize_t n;

	memset(a, 0, sizeof(*a));
	if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
		a->err = errno;
		return;
	}
	for (;;) {
		if (poll(&p, 1, end - now_ms() > 0 ? end - now_ms() : 0) <= 0) {
			a->err = ETIMEDOUT;
			return;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return;
		if (n < 0) {
			a->err = errno;
			return;
		}
		if (a->len < sizeof(a->head) - 1)
			memcpy(a->head + a->len, buf,
			       n < (ssize_t)(sizeof(a->head) - 1 - a->len) ? (size_t)n :
			       sizeof(a->head) - 1 - a->len);
		a->len += n;
	}
}

static void get(FIXTURE_DATA(st) *self, const char *path, int timeout_ms, struct answer *a)
{
	char req[128];
	int fd = st_connect(self);

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	memset(a, 0, sizeof(*a));
	a->err = ENOTCONN;
	if (fd < 0)
		return;
	exchange(fd, req, strlen(req), timeout_ms, a);
	close(fd);
}

/* SIGTERM and wait for the exit: the milliseconds it took, -1 if it hung. */
static long stop_ms(FIXTURE_DATA(st) *self)
{
	long long t0 = now_ms();

	if (kmtlsd_stop(&self->d))
		return -1;
	return (long)(now_ms() - t0);
}

/*
 * A client asks for a /status larger than the socket can buffer and never
 * reads it: kmtlsd still exits at once on SIGTERM, well before the 3 s
 * answer deadline (before the fix, it never exited).
 */
TEST_F(st, sigterm_with_a_client_that_never_reads)
{
	static const char req[] = "GET /status HTTP/1.0\r\n\r\n";
	struct answer a;
	socklen_t sl = sizeof(int);
	int fd, sndbuf = 0;
	long ms;

	ASSERT_EQ(0, start(self, BIG_LISTENERS, 1));
	get(self, "/status", 5000, &a);
	ASSERT_EQ(0, a.err) TH_LOG("GET /status: %s", strerror(a.err));
	ASSERT_EQ(0, strncmp(a.head, "HTTP/1.0 200", 12)) TH_LOG("answer: %s", a.head);
	fd = st_connect(self);
	ASSERT_LE(0, fd);
	/* kmtlsd's socket has the default buffer, as ours. */
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl));
	ASSERT_LT((size_t)sndbuf + 4096, a.len)
		TH_LOG("/status is %zu bytes, not more than the %d-byte socket buffer: more listeners needed",
		       a.len, sndbuf);
	ASSERT_EQ((ssize_t)sizeof(req) - 1, send(fd, req, sizeof(req) - 1, 0));
	usleep(300000);		/* the status thread is now stuck in its send */
	ms = stop_ms(self);
	close(fd);
	EXPECT_LE(0, ms) TH_LOG("kmtlsd did not exit cleanly after SIGTERM (its log is above)");
	EXPECT_GT(1500, ms) TH_LOG("SIGTERM took %ld ms", ms);
}

/*
 * The same client is dropped after the 3 s answer deadline, with one
 * warning; the next client is then served.
 */
TEST_F(st, a_client_that_never_reads_is_dropped)
{
	static const char req[] = "GET /status HTTP/1.0\r\n\r\n";
	long long t0;
	struct answer a;
	int fd;

	ASSERT_EQ(0, start(self, BIG_LISTENERS, 1));
	fd = st_connect(self);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(req) - 1, send(fd, req, sizeof(req) - 1, 0));
	usleep(100000);
	t0 = now_ms();
	get(self, "/metrics", 8000, &a);
	close(fd);
	EXPECT_EQ(0, a.err) TH_LOG("the next client: %s", strerror(a.err));
	EXPECT_EQ(0, strncmp(a.head, "HTTP/1.0 200", 12)) TH_LOG("answer: %s", a.head);
	EXPECT_GT(4500, now_ms() - t0) TH_LOG("the next client waited %lld ms", now_ms() - t0);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "did not read its answer within 3 s"));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "further drops are logged at debug level"));
}

struct drip {
	int fd;
	int stop;
};

/* One byte of a request line every 300 ms, never its end. */
static void *dripper(void *arg)
{
	struct drip *d = arg;

	while (!__atomic_load_n(&d->stop, __ATOMIC_RELAXED) &&
	       send(d->fd, "G", 1, MSG_NOSIGNAL) == 1)
		usleep(300000);
	return NULL;
}

/*
 * A client that drips its request is dropped at the 2 s request deadline
 * (before the fix the 1 s timeout was per byte: it held the endpoint for
 * minutes), and the client behind it is then served.
 */
TEST_F(st, a_client_that_drips_is_dropped_at_the_deadline)
{
	struct drip d = { 0 };
	struct answer a;
	pthread_t t;
	long long t0;
	ssize_t n;
	char c;

	ASSERT_EQ(0, start(self, 1, 0));
	d.fd = st_connect(self);
	ASSERT_LE(0, d.fd);
	ASSERT_EQ(0, pthread_create(&t, NULL, dripper, &d));
	usleep(100000);
	t0 = now_ms();
	get(self, "/metrics", 6000, &a);
	EXPECT_EQ(0, a.err) TH_LOG("the next client: %s", strerror(a.err));
	EXPECT_EQ(0, strncmp(a.head, "HTTP/1.0 200", 12)) TH_LOG("answer: %s", a.head);
	EXPECT_GT(3000, now_ms() - t0) TH_LOG("the next client waited %lld ms", now_ms() - t0);
	/* The dripping client's connection is closed (EOF or reset). */
	n = recv(d.fd, &c, 1, MSG_DONTWAIT);
	EXPECT_TRUE(n == 0 || (n < 0 && errno != EAGAIN))
		TH_LOG("the dripping client is still connected");
	__atomic_store_n(&d.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	close(d.fd);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "sent no complete request line within 2 s"));
}

/* A dripping client does not delay SIGTERM (before the fix: until it stopped). */
TEST_F(st, sigterm_with_a_client_that_drips)
{
	struct drip d = { 0 };
	pthread_t t;
	long ms;

	ASSERT_EQ(0, start(self, 1, 0));
	d.fd = st_connect(self);
	ASSERT_LE(0, d.fd);
	ASSERT_EQ(0, pthread_create(&t, NULL, dripper, &d));
	usleep(500000);
	ms = stop_ms(self);
	__atomic_store_n(&d.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	close(d.fd);
	EXPECT_LE(0, ms) TH_LOG("kmtlsd did not exit cleanly after SIGTERM (its log is above)");
	EXPECT_GT(1500, ms) TH_LOG("SIGTERM took %ld ms", ms);
}

/* A request line longer than the endpoint reads: 414 and a clean close. */
TEST_F(st, a_long_request_line_gets_414_and_a_clean_close)
{
	char req[2048];
	struct answer a;
	int fd, n;

	ASSERT_EQ(0, start(self, 1, 0));
	n = snprintf(req, sizeof(req), "GET /metrics?%01500d HTTP/1.0\r\n\r\n", 0);
	fd = st_connect(self);
	ASSERT_LE(0, fd);
	exchange(fd, req, n, 4000, &a);
	close(fd);
	EXPECT_EQ(0, a.err) TH_LOG("reading the answer to EOF: %s", strerror(a.err));
	EXPECT_EQ(0, strncmp(a.head, "HTTP/1.0 414", 12)) TH_LOG("answer: %s", a.head);
}

/*
 * Headers past the request line (a Prometheus scrape sends several) are
 * read and dropped: the answer ends with EOF, not a reset.
 */
TEST_F(st, long_headers_get_the_answer_and_a_clean_close)
{
	char req[2048];
	struct answer a;
	int fd, n, i;

	ASSERT_EQ(0, start(self, 1, 0));
	for (i = 0; i < 20; i++) {
		n = snprintf(req, sizeof(req),
			     "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: %01200d\r\n\r\n", i);
		fd = st_connect(self);
		ASSERT_LE(0, fd);
		exchange(fd, req, n, 4000, &a);
		close(fd);
		ASSERT_EQ(0, a.err) TH_LOG("request %d, reading to EOF: %s", i, strerror(a.err));
		ASSERT_EQ(0, strncmp(a.head, "HTTP/1.0 200", 12)) TH_LOG("answer: %s", a.head);
	}
}

TEST_HARNESS_MAIN
