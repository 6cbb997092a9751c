// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_backend: the plaintext server behind kmtlsd in end-to-end tests.
 *
 *   test_backend --listen 127.0.0.1:PORT|[::1]:PORT|unix:/path
 *                [--mode echo|sink|duplex] [--bytes N] [--proxy]
 *                [--report FILE] [--ready-file FILE] [--max-conns N]
 *
 * One thread, one level-triggered epoll set, non-blocking sockets: a test
 * opening thousands of connections costs a few kilobytes each, and there is
 * no locking to get wrong. Signals arrive through a signalfd in the same set,
 * so SIGTERM is just another event and the report is flushed in order.
 *
 * Modes: echo sends back what arrives; sink reads and counts; duplex reads
 * and hashes while it sends --bytes N of the backend->client test stream,
 * then shuts down its write side and reads to EOF. With --proxy every
 * connection must open with a PROXY v2 header, read exactly (never a byte
 * of payload with it) and checked by the tests' strict parser; a bad header
 * closes the connection and is reported.
 *
 * The bound port (or the unix path) goes to stdout and to --ready-file,
 * written under a temporary name and renamed so a poller never sees half.
 * --max-conns N: accept N connections, then close the listener and exit once
 * they have all finished.
 *
 * --report appends one JSON object per line (json-c, plain) for every
 * finished connection, flushed at once:
 *
 *   conn             1, 2, ... in accept order
 *   end              "eof" (peer's EOF, all sent), "reset" (ECONNRESET or
 *                    EPIPE), "error", "proxy" (bad PROXY header), "open"
 *                    (still open when the backend exited)
 *   error            what went wrong, or null
 *   bytes_received, sha256_received   payload only, never the PROXY header
 *   bytes_sent, sha256_sent
 *   with --proxy, once the header parsed:
 *   proxy_hdr_len, command ("PROXY"|"LOCAL"), family ("TCP4", "TCP6",
 *   "UNSPEC", ...), src, src_port, dst, dst_port, ssl (bool), ssl_version,
 *   ssl_cn, ssl_cipher (null when absent), ssl_client (PP2_CLIENT_* bits),
 *   ssl_verify, cert_len (0 when absent), cert_sha256 (null when absent)
 *
 * and when the program exits (SIGTERM, SIGINT or --max-conns) a last line
 * {"total_bytes": N, "conns": M}: payload bytes received over all
 * connections, and connections accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../lib/proxy_parse.h"
#include "../lib/stream.h"

#define OUT_CAP		16384	/* per connection, echo and duplex only */
#define READ_CAP	65536
#define MAX_EVENTS	256

enum mode { MODE_ECHO, MODE_SINK, MODE_DUPLEX };

/* How a connection ended, as written in the report. */
enum end { END_EOF, END_RESET, END_ERROR, END_PROXY, END_OPEN };
static const char *const end_names[] = { "eof", "reset", "error", "proxy", "open" };

struct opts {
	const char *listen, *report, *ready;
	enum mode mode;
	uint64_t bytes;
	int proxy;
	unsigned long max_conns;
};

struct conn {
	struct conn *prev, *next;	/* live list, for the report at exit */
	int fd;
	unsigned long id;
	uint32_t events;		/* epoll interest now */

	int in_hdr;			/* PROXY header not complete yet */
	unsigned char hdr_head[16];
	unsigned char *hdr;		/* whole header once its length is known */
	size_t hdr_have, hdr_need;
	struct proxy_info pi;

	uint64_t rx, tx;
	wc_Sha256 rx_sha, tx_sha;
	unsigned char *out;		/* bytes to send: echoed or generated */
	size_t out_len, out_off;
	struct stream_gen gen;
	uint64_t gen_left;		/* duplex: stream bytes not generated yet */
	int rd_eof, wr_done;

	enum end end;
	char err[160];
};

struct backend {
	struct opts o;
	int ep, lfd, sfd;
	FILE *report;
	struct conn *live;
	unsigned long accepted, nlive;
	uint64_t total_rx;
	int stop;
};

static char tag_listen, tag_signal;	/* epoll data for the two non-conns */
static unsigned char scratch[READ_CAP];

static void usage(void)
{
	fprintf(stderr,
		"usage: test_backend --listen 127.0.0.1:PORT|[::1]:PORT|unix:/path\n"
		"       [--mode echo|sink|duplex] [--bytes N] [--proxy] [--report FILE]\n"
		"       [--ready-file FILE] [--max-conns N]\n");
	exit(2);
}

/* ---- report --------------------------------------------------------- */

static void json_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void json_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void json_sha(json_object *o, const char *k, wc_Sha256 *sha)
{
	unsigned char d[WC_SHA256_DIGEST_SIZE];
	char hex[2 * WC_SHA256_DIGEST_SIZE + 1];

	wc_Sha256Final(sha, d);
	hex_encode(d, sizeof(d), hex);
	json_str(o, k, hex);
}

static void report_line(struct backend *b, json_object *o)
{
	if (b->report) {
		fprintf(b->report, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		fflush(b->report);
	}
	json_object_put(o);
}

static void report_proxy(json_object *o, const struct proxy_info *pi)
{
	unsigned char d[WC_SHA256_DIGEST_SIZE];
	char hex[2 * WC_SHA256_DIGEST_SIZE + 1];

	json_int(o, "proxy_hdr_len", pi->hdr_len);
	json_str(o, "command", pi->command ? "PROXY" : "LOCAL");
	json_str(o, "family", proxy_family_name(pi));
	json_str(o, "src", pi->src);
	json_int(o, "src_port", pi->src_port);
	json_str(o, "dst", pi->dst);
	json_int(o, "dst_port", pi->dst_port);
	json_object_object_add(o, "ssl", json_object_new_boolean(pi->ssl));
	json_str(o, "ssl_version", pi->has_version ? pi->version : NULL);
	json_str(o, "ssl_cn", pi->has_cn ? pi->cn : NULL);
	json_str(o, "ssl_cipher", pi->has_cipher ? pi->cipher : NULL);
	json_int(o, "ssl_client", pi->client);
	json_int(o, "ssl_verify", pi->verify);
	json_int(o, "cert_len", pi->cert_len);
	if (!pi->cert) {
		json_str(o, "cert_sha256", NULL);
		return;
	}
	wc_Sha256Hash(pi->cert, pi->cert_len, d);
	hex_encode(d, sizeof(d), hex);
	json_str(o, "cert_sha256", hex);
}

static void report_conn(struct backend *b, struct conn *c)
{
	json_object *o = json_object_new_object();

	json_int(o, "conn", c->id);
	json_str(o, "end", end_names[c->end]);
	json_str(o, "error", c->err[0] ? c->err : NULL);
	json_int(o, "bytes_received", c->rx);
	json_sha(o, "sha256_received", &c->rx_sha);
	json_int(o, "bytes_sent", c->tx);
	json_sha(o, "sha256_sent", &c->tx_sha);
	if (b->o.proxy && !c->in_hdr)
		report_proxy(o, &c->pi);
	report_line(b, o);
}

static void report_totals(struct backend *b)
{
	json_object *o = json_object_new_object();

	json_int(o, "total_bytes", b->total_rx);
	json_int(o, "conns", b->accepted);
	report_line(b, o);
}

/* ---- connections ---------------------------------------------------- */

static int conn_fail(struct conn *c, enum end how, const char *what, int err)
{
	c->end = how;
	if (err)
		snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(err));
	else
		snprintf(c->err, sizeof(c->err), "%s", what);
	return -1;
}

/* An errno from recv/send: a peer reset is an ending of its own kind. */
static int conn_io_fail(struct conn *c, const char *what, int err)
{
	int reset = err == ECONNRESET || err == EPIPE;

	return conn_fail(c, reset ? END_RESET : END_ERROR, what, err);
}

static void conn_close(struct backend *b, struct conn *c)
{
	if (c->end != END_EOF && c->end != END_OPEN)
		fprintf(stderr, "test_backend: conn %lu: %s %s\n", c->id,
			end_names[c->end], c->err);
	report_conn(b, c);
	epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		b->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	b->nlive--;
	wc_Sha256Free(&c->rx_sha);
	wc_Sha256Free(&c->tx_sha);
	free(c->hdr);
	free(c->out);
	free(c);
}

static uint32_t conn_interest(const struct backend *b, const struct conn *c)
{
	uint32_t ev = 0;

	if (c->in_hdr)
		return EPOLLIN;
	switch (b->o.mode) {
	case MODE_ECHO:
		/* Read only what can be sent: the peer feels the backpressure. */
		if (c->out_off < c->out_len)
			ev = EPOLLOUT;
		else if (!c->rd_eof)
			ev = EPOLLIN;
		break;
	case MODE_SINK:
		ev = EPOLLIN;
		break;
	case MODE_DUPLEX:
		ev = (c->rd_eof ? 0 : EPOLLIN) | (c->wr_done ? 0 : EPOLLOUT);
		break;
	}
	return ev;
}

static int conn_finished(const struct backend *b, const struct conn *c)
{
	if (c->in_hdr || !c->rd_eof)
		return 0;
	if (b->o.mode == MODE_ECHO)
		return c->out_off == c->out_len;
	if (b->o.mode == MODE_DUPLEX)
		return c->wr_done;
	return 1;
}

static int hdr_done(struct backend *b, struct conn *c)
{
	char why[128];
	long n = proxy_parse(c->hdr, c->hdr_need, &c->pi, why, sizeof(why));

	if (n != (long)c->hdr_need)
		return conn_fail(c, END_PROXY, why, 0);
	c->in_hdr = 0;
	if (b->o.mode == MODE_DUPLEX)
		c->gen_left = b->o.bytes;
	return 0;
}

/*
 * Read exactly the header, in two steps: the 16 fixed bytes give its length,
 * then the rest. Bytes that cannot start a header end the connection at once.
 */
static int read_hdr(struct backend *b, struct conn *c)
{
	unsigned char *dst = c->hdr ? c->hdr : c->hdr_head;
	size_t want = c->hdr ? c->hdr_need : sizeof(c->hdr_head);
	ssize_t n = recv(c->fd, dst + c->hdr_have, want - c->hdr_have, 0);
	long need;

	if (n < 0)
		return errno == EAGAIN ? 0 : conn_io_fail(c, "recv in PROXY header", errno);
	if (n == 0)
		return conn_fail(c, END_PROXY, "EOF inside the PROXY header", 0);
	c->hdr_have += n;
	if (c->hdr)
		return c->hdr_have == c->hdr_need ? hdr_done(b, c) : 0;
	need = proxy_hdr_len(c->hdr_head, c->hdr_have);
	if (need < 0)
		return conn_fail(c, END_PROXY, "not a PROXY v2 header", 0);
	if (need == 0)
		return 0;
	c->hdr_need = need;
	c->hdr = malloc(need);
	if (!c->hdr)
		return conn_fail(c, END_ERROR, "malloc", ENOMEM);
	memcpy(c->hdr, c->hdr_head, sizeof(c->hdr_head));
	return c->hdr_have == c->hdr_need ? hdr_done(b, c) : 0;
}

static int read_data(struct backend *b, struct conn *c)
{
	int echo = b->o.mode == MODE_ECHO;
	unsigned char *dst = echo ? c->out : scratch;
	ssize_t n;

	if (echo && c->out_off < c->out_len)
		return 0;	/* woken by HUP/ERR with output pending */
	n = recv(c->fd, dst, echo ? OUT_CAP : READ_CAP, 0);
	if (n < 0)
		return errno == EAGAIN ? 0 : conn_io_fail(c, "recv", errno);
	if (n == 0) {
		c->rd_eof = 1;
		return 0;
	}
	wc_Sha256Update(&c->rx_sha, dst, n);
	c->rx += n;
	b->total_rx += n;
	if (echo) {
		c->out_len = n;
		c->out_off = 0;
	}
	return 0;
}

/* Duplex: refill the output with the next chunk of the stream, or finish. */
static int refill(struct conn *c)
{
	size_t n;

	if (c->gen_left == 0) {
		if (!c->wr_done && shutdown(c->fd, SHUT_WR))
			return conn_io_fail(c, "shutdown", errno);
		c->wr_done = 1;
		return 0;
	}
	n = c->gen_left < OUT_CAP ? c->gen_left : OUT_CAP;
	stream_fill(&c->gen, c->out, n);
	c->gen_left -= n;
	c->out_len = n;
	c->out_off = 0;
	return 0;
}

static int write_data(struct backend *b, struct conn *c)
{
	ssize_t n;

	if (c->out_off == c->out_len && b->o.mode == MODE_DUPLEX) {
		if (refill(c))
			return -1;
		if (c->wr_done)
			return 0;
	}
	if (c->out_off == c->out_len)
		return 0;
	n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN ? 0 : conn_io_fail(c, "send", errno);
	wc_Sha256Update(&c->tx_sha, c->out + c->out_off, n);
	c->out_off += n;
	c->tx += n;
	return 0;
}

static int conn_step(struct backend *b, struct conn *c, uint32_t ev)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (ev & EPOLLERR) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		return conn_io_fail(c, "socket", err ? err : EIO);
	}
	if (c->in_hdr)
		return ev & (EPOLLIN | EPOLLHUP) ? read_hdr(b, c) : 0;
	if ((ev & (EPOLLIN | EPOLLHUP)) && !c->rd_eof && read_data(b, c))
		return -1;
	/*
	 * Echo sends what it just read without waiting for EPOLLOUT. After a
	 * HUP, a write is what reports the dead peer instead of a busy loop.
	 */
	if ((ev & (EPOLLOUT | EPOLLHUP)) || b->o.mode == MODE_ECHO)
		return write_data(b, c);
	return 0;
}

static void conn_event(struct backend *b, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .data.ptr = c };

	if (conn_step(b, c, ev)) {
		conn_close(b, c);
		return;
	}
	if (conn_finished(b, c)) {
		c->end = END_EOF;
		conn_close(b, c);
		return;
	}
	e.events = conn_interest(b, c);
	if (e.events != c->events && !epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &e))
		c->events = e.events;
}

static struct conn *conn_new(struct backend *b, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->id = ++b->accepted;
	c->in_hdr = b->o.proxy;
	if (b->o.mode != MODE_SINK) {
		c->out = malloc(OUT_CAP);
		if (!c->out) {
			free(c);
			return NULL;
		}
	}
	wc_InitSha256(&c->rx_sha);
	wc_InitSha256(&c->tx_sha);
	stream_init(&c->gen, STREAM_SEED_S2C);
	if (!c->in_hdr && b->o.mode == MODE_DUPLEX)
		c->gen_left = b->o.bytes;
	c->next = b->live;
	if (b->live)
		b->live->prev = c;
	b->live = c;
	b->nlive++;
	return c;
}

static void accept_one(struct backend *b, int fd)
{
	struct epoll_event e;
	struct conn *c = conn_new(b, fd);

	if (!c) {
		fprintf(stderr, "test_backend: out of memory, dropping a connection\n");
		close(fd);
		return;
	}
	c->events = conn_interest(b, c);
	e.events = c->events;
	e.data.ptr = c;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &e)) {
		conn_fail(c, END_ERROR, "epoll_ctl", errno);
		conn_close(b, c);
	}
}

static void accept_all(struct backend *b)
{
	int fd;

	while (!b->o.max_conns || b->accepted < b->o.max_conns) {
		fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
				fprintf(stderr, "test_backend: accept: %s\n", strerror(errno));
			return;
		}
		accept_one(b, fd);
	}
	/* Enough connections: let further ones be refused, not queued. */
	epoll_ctl(b->ep, EPOLL_CTL_DEL, b->lfd, NULL);
	close(b->lfd);
	b->lfd = -1;
}

/* ---- setup ---------------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *su = (struct sockaddr_un *)ss;
	char host[64];
	const char *colon;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (!strncmp(s, "unix:", 5)) {
		if (!s[5] || strlen(s + 5) >= sizeof(su->sun_path))
			return -1;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, s + 5, strlen(s + 5) + 1);
		*len = sizeof(*su);
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535)
		return -1;
	if (s[0] == '[' && colon > s + 1 && colon[-1] == ']') {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s - 2), s + 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	*len = sizeof(*s4);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
}

static int open_listener(const char *spec, char *bound, size_t boundlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (parse_listen(spec, &ss, &len)) {
		fprintf(stderr, "test_backend: bad --listen '%s'\n", spec);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	else
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The kernel caps the backlog at somaxconn; ask for plenty. */
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 65535) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len))
		goto fail;
	if (ss.ss_family == AF_UNIX)
		snprintf(bound, boundlen, "%s", spec + 5);
	else
		snprintf(bound, boundlen, "%u", ntohs(ss.ss_family == AF_INET ?
			 ((struct sockaddr_in *)&ss)->sin_port :
			 ((struct sockaddr_in6 *)&ss)->sin6_port));
	return fd;
fail:
	fprintf(stderr, "test_backend: listen on %s: %s\n", spec, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int write_ready(const char *path, const char *bound)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%s\n", bound);
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Thousands of connections need thousands of descriptors. */
static void raise_nofile(void)
{
	struct rlimit r;

	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static int open_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int epoll_add(int ep, int fd, void *tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || !*s || *end || *s == '-' ? -1 : 0;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "proxy", no_argument, NULL, 'p' },
		{ "report", required_argument, NULL, 'r' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "max-conns", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'l':
			o->listen = optarg;
			break;
		case 'p':
			o->proxy = 1;
			break;
		case 'r':
			o->report = optarg;
			break;
		case 'R':
			o->ready = optarg;
			break;
		case 'b':
			if (parse_u64(optarg, &o->bytes))
				usage();
			break;
		case 'n':
			if (parse_u64(optarg, &v))
				usage();
			o->max_conns = v;
			break;
		case 'm':
			if (!strcmp(optarg, "echo"))
				o->mode = MODE_ECHO;
			else if (!strcmp(optarg, "sink"))
				o->mode = MODE_SINK;
			else if (!strcmp(optarg, "duplex"))
				o->mode = MODE_DUPLEX;
			else
				usage();
			break;
		default:
			usage();
		}
	}
	if (!o->listen || optind != argc)
		usage();
}

static int setup(struct backend *b)
{
	char bound[128];

	raise_nofile();
	if (b->o.report) {
		b->report = fopen(b->o.report, "a");
		if (!b->report) {
			fprintf(stderr, "test_backend: %s: %s\n", b->o.report, strerror(errno));
			return -1;
		}
	}
	b->lfd = open_listener(b->o.listen, bound, sizeof(bound));
	if (b->lfd < 0)
		return -1;	/* open_listener said why */
	b->sfd = open_signals();
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	if (b->sfd < 0 || b->ep < 0 ||
	    epoll_add(b->ep, b->lfd, &tag_listen) || epoll_add(b->ep, b->sfd, &tag_signal)) {
		fprintf(stderr, "test_backend: setup: %s\n", strerror(errno));
		return -1;
	}
	if (b->o.ready && write_ready(b->o.ready, bound)) {
		fprintf(stderr, "test_backend: %s: %s\n", b->o.ready, strerror(errno));
		return -1;
	}
	printf("%s\n", bound);
	fflush(stdout);
	return 0;
}

static void run(struct backend *b)
{
	struct epoll_event ev[MAX_EVENTS];
	int i, n;

	while (!b->stop && (b->lfd >= 0 || b->nlive)) {
		n = epoll_wait(b->ep, ev, MAX_EVENTS, -1);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "test_backend: epoll_wait: %s\n", strerror(errno));
			return;
		}
		for (i = 0; i < n && !b->stop; i++) {
			if (ev[i].data.ptr == &tag_signal)
				b->stop = 1;
			else if (ev[i].data.ptr == &tag_listen)
				accept_all(b);
			else
				conn_event(b, ev[i].data.ptr, ev[i].events);
		}
	}
}

int main(int argc, char **argv)
{
	struct backend b = { .lfd = -1, .sfd = -1, .ep = -1 };

	b.o.mode = MODE_ECHO;
	parse_opts(argc, argv, &b.o);
	if (setup(&b))
		return 1;
	run(&b);
	/* Connections cut short by the exit are reported as still open. */
	while (b.live) {
		b.live->end = END_OPEN;
		conn_close(&b, b.live);
	}
	report_totals(&b);
	if (b.report)
		fclose(b.report);
	if (b.o.listen && !strncmp(b.o.listen, "unix:", 5))
		unlink(b.o.listen + 5);
	return 0;
}
