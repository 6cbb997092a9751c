/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_BENCH_H
#define KMTLS_BENCH_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define NSEC_PER_SEC	1000000000ULL
#define NSEC_PER_MSEC	1000000ULL

#define BENCH_CONN_TIMEOUT	10.0			/* s, connect to echo, at most */
#define BENCH_CLOSE_LINGER	(1 * NSEC_PER_SEC)	/* wait for the peer's close */
#define BENCH_END_GRACE		(2 * NSEC_PER_SEC)	/* finish echoes after the run */
#define BENCH_SCAN_PERIOD	(100 * NSEC_PER_MSEC)	/* timeout scan */
#define BENCH_IO_CHUNK		16384			/* one TLS record */
/* A slot whose connection failed before TLS began rests before its next. */
#define BENCH_RETRY_DELAY	(10 * NSEC_PER_MSEC)

/* What makes a run invalid (valid.c). */
#define BENCH_MAX_FAILED	0.01	/* failed, of finished attempts */
#define BENCH_MAX_UNFINISHED	0.01	/* stuck at the end, of all attempts */
#define BENCH_MAX_LOCAL		0.01	/* the client's own errors, of all attempts */
#define BENCH_MIN_RESUMED	0.90	/* resumed, of handshakes that could */
#define BENCH_MAX_SHORTFALL	0.05	/* open loop: below --rate */

enum bench_mode { BENCH_FULL, BENCH_RESUMED, BENCH_BULK };

struct bench_opts {
	const char *target;		/* HOST:PORT as given */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum bench_mode mode;
	const char *cert, *key, *ca;
	const char *ciphers, *groups, *sni;
	int tls12;
	unsigned int concurrency, threads;
	double duration, warmup;
	double rate;			/* open loop starts/s; 0: closed loop */
	double timeout;			/* s, connect() to handshake (and echo) */
	int allow_failures;		/* failed or unfinished: still valid */
	int allow_shortfall;		/* open loop below --rate: still valid */
	size_t payload;			/* echoed after each handshake */
	size_t bytes;			/* bulk: bytes in flight per connection */
	int json;
};

/* ---- hist.c: log-linear latency histogram (ns, <= 0.4% error) ---- */

#define HIST_LINEAR	256		/* values below are kept exactly */
#define HIST_SUB	128		/* buckets per power of two above */
#define HIST_OCTAVES	40		/* 256 ns << 40: 78 h > the longest run */
#define HIST_BUCKETS	(HIST_LINEAR + HIST_OCTAVES * HIST_SUB)
#define HIST_MAX_NS	(((uint64_t)HIST_LINEAR << HIST_OCTAVES) - 1)

struct bench_hist {
	uint64_t count, min, max;
	uint64_t bucket[HIST_BUCKETS];
};

void hist_record(struct bench_hist *h, uint64_t ns);
void hist_merge(struct bench_hist *dst, const struct bench_hist *src);
uint64_t hist_percentile(const struct bench_hist *h, double q);

/* ---- fail.c: failures counted by reason ---- */

#define FAIL_REASONS	32
#define FAIL_REASON_LEN	112

struct bench_fails {
	unsigned int n;
	struct {
		char reason[FAIL_REASON_LEN];
		uint64_t count;
	} e[FAIL_REASONS];
	uint64_t other;			/* reasons beyond the table */
};

void fails_add(struct bench_fails *f, const char *reason, uint64_t count);
void fails_merge(struct bench_fails *dst, const struct bench_fails *src);

/* ---- hello.c: the key exchange the server chose, from its ServerHello ---- */

#define HELLO_CAP	512

struct bench_hello {
	unsigned char buf[HELLO_CAP];
	unsigned short len;
	unsigned char done;		/* ServerHello parsed, or given up */
	unsigned char key_share;	/* (EC)DHE in it: psk_dhe_ke when resumed */
	unsigned char psk;		/* pre_shared_key in it: a PSK was taken */
	unsigned short group;		/* key_share group id */
};

void hello_reset(struct bench_hello *h);
void hello_feed(struct bench_hello *h, const void *data, size_t len);
const char *hello_group_name(unsigned short group);

/* ---- load.c / conn.c: one thread's connections ---- */

enum conn_state {
	CONN_IDLE, CONN_CONNECT, CONN_HANDSHAKE, CONN_PAYLOAD, CONN_BULK,
	CONN_CLOSE, CONN_STATES
};

extern const char *const conn_state_names[CONN_STATES];

struct bench_stats {
	uint64_t ok, failed;
	uint64_t local;			/* the client's own errors (EMFILE...) */
	uint64_t unfinished;		/* still under way when the run ended */
	uint64_t unfinished_in[CONN_STATES];
	uint64_t unfinished_age;	/* ns, the oldest of them */
	uint64_t resumed, psk_dhe_ke, psk_ke;
	uint64_t first;			/* a slot's first handshake: nothing to resume */
	uint64_t unclosed;		/* peer never answered close_notify */
	uint64_t bytes_sent, bytes_recv;
	uint64_t backlog;		/* open loop: starts still queued at the end */
	struct bench_hist hs, echo;
	struct bench_fails fails, local_fails;
	char version[16], cipher[64], group[32];
};

struct bench_thread;

struct bench_conn {
	struct bench_thread *t;
	enum conn_state state;
	int fd;
	uint32_t events;		/* epoll interest now */
	uint32_t want;			/* interest the last step asked for */
	WOLFSSL *ssl;
	WOLFSSL_SESSION *sess;		/* resumed: the ticket this slot offers */
	uint64_t t0;			/* connect() start, or scheduled start */
	uint64_t t_start;		/* connect() start */
	uint64_t t_hs, t_echo;		/* handshake done, payload echoed */
	uint64_t deadline;		/* timeout, or end of the close linger */
	uint64_t tx, rx;		/* application bytes, stream offsets */
	int wr_len;			/* a write wolfSSL must be handed again */
	int io_err;			/* errno of the last failed I/O, -1: EOF */
	int sent_err;			/* EPIPE/ECONNRESET on send, kept quiet */
	int resumed;
	int shut_sent;
	int backoff;			/* ended before TLS began: rest first */
	int done_before;		/* the slot has completed a handshake */
	struct bench_hello hello;
};

struct bench_thread {
	int id;
	const struct bench_opts *o;
	WOLFSSL_CTX *ctx;
	pthread_t tid;
	int ep;
	struct bench_conn *conns;
	struct bench_conn **idle;	/* free slots, a stack */
	struct bench_conn **rest;	/* resting slots, a ring in due order */
	unsigned int nconns, nidle, rest_head, nrest;
	double rate;			/* this thread's share of --rate */
	uint64_t sched_k;		/* open loop: starts handed out */
	uint64_t t_begin, t_meas, t_end;
	uint64_t now;			/* this loop turn's clock */
	int stopping;
	unsigned char *rbuf;
	struct bench_stats st;
	char err[256];
};

extern const unsigned char *bench_pattern;	/* 2 * BENCH_IO_CHUNK bytes */

uint64_t bench_now(void);
int bench_thread_setup(struct bench_thread *t);
void *bench_thread_main(void *arg);

void conn_ctx_io(WOLFSSL_CTX *ctx);
void conn_start(struct bench_conn *c, uint64_t t0);
void conn_event(struct bench_conn *c);
void conn_check_time(struct bench_conn *c);
void conn_stop(struct bench_conn *c, int final);
void conn_release(struct bench_conn *c);

/* ---- report.c ---- */

#define BENCH_WHY	6
#define BENCH_WHY_LEN	224

struct bench_result {
	const struct bench_opts *o;
	struct bench_stats st;
	double window_s;		/* what handshake rates are taken over */
	double cpu_s, wall_s;
	unsigned int nwhy;		/* reasons the run is not valid */
	char why[BENCH_WHY][BENCH_WHY_LEN];
};

void bench_report(const struct bench_result *r);

/* ---- valid.c: whether the numbers mean what they claim ---- */

double bench_achieved_rate(const struct bench_result *r);
uint64_t bench_resumable(const struct bench_stats *st);
void bench_judge(struct bench_result *r);

/* ---- floor.c ---- */

int bench_crypto_floor(double duration, int json);

#endif
