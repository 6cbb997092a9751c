// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls-bench: a mutual-TLS load generator (full or resumed handshakes per
 * second, latency percentiles, bulk throughput) against any TLS server, and
 * --crypto-floor, the handshake rate the public-key work alone allows.
 *
 * This file: options, the threads' start and end, the CPU clock around the
 * measured window, and merging the threads' counters for report.c. The
 * event loop is load.c, a connection's life conn.c.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "../../agent/addr.h"
#include "../../agent/tls_ctx.h"

const unsigned char *bench_pattern;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kmtls-bench --connect HOST:PORT --mode full|resumed|bulk\n"
		"                   --cert PEM --key PEM --ca PEM\n"
		"                   [--concurrency N] [--threads N] [--duration S] [--warmup S]\n"
		"                   [--rate R] [--payload N] [--bytes N] [--timeout S]\n"
		"                   [--ciphers LIST] [--groups LIST] [--tls12] [--sni NAME] [--json]\n"
		"                   [--allow-failures] [--allow-shortfall]\n"
		"       kmtls-bench --crypto-floor [--duration S] [--json]\n"
		"Defaults: --concurrency 32 --threads 1 --duration 10 (crypto floor: 2) --warmup 1\n"
		"          --sni localhost; closed loop unless --rate (handshakes/s); bulk --bytes\n"
		"          65536; --timeout (per connection, connect to handshake or echo): the\n"
		"          smaller of 10 s and --duration.\n"
		"Sizes take a k/m suffix (KiB/MiB); durations are seconds, fractions allowed.\n"
		"Latency runs from connect() (open loop: from the start's due time) to the\n"
		"return of the client's wolfSSL_connect(). In TLS 1.3 that is right after the\n"
		"client sent its certificate and Finished, before the server has checked\n"
		"them: a refusal shows later as a failure, not in the latency. With\n"
		"--payload N the echo latency also covers the server's acceptance. Without\n"
		"--payload, a server that closes right after the handshake still scores ok.\n"
		"Exit status: 0 a valid run; 1 setup failed or no handshake completed; 2 usage;\n"
		"3 handshakes completed but the run is not valid (reasons on stderr): over 1%%\n"
		"failed or unfinished (--allow-failures accepts them) or client errors, under\n"
		"90%% resumed in --mode resumed, or an open loop over 5%% below --rate\n"
		"(--allow-shortfall accepts that: a deliberate overload).\n");
}

static __attribute__((noreturn, format(printf, 1, 2)))
void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kmtls-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static double parse_seconds(const char *name, const char *s, double min)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > 86400)
		die_usage("--%s %s: a number of seconds from %g to 86400 expected", name, s, min);
	return v;
}

static unsigned long long parse_count(const char *name, const char *s,
				      unsigned long long min, unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end != s && (*end == 'k' || *end == 'K') && !end[1]) {
		errno = v > ULLONG_MAX >> 10 ? ERANGE : errno;
		v <<= 10, end++;
	} else if (end != s && (*end == 'm' || *end == 'M') && !end[1]) {
		errno = v > ULLONG_MAX >> 20 ? ERANGE : errno;
		v <<= 20, end++;
	}
	if (errno || !isdigit((unsigned char)*s) || *end || v < min || v > max)
		die_usage("--%s %s: a whole number from %llu to %llu expected", name, s, min, max);
	return v;
}

/* Handshakes per second: a rate, not a duration. */
static double parse_rate(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.001) || v > 10000000)
		die_usage("--rate %s: handshakes per second from 0.001 to 10000000 expected", s);
	return v;
}

static const struct option long_opts[] = {
	{ "connect",	 required_argument, NULL, 'c' },
	{ "mode",	 required_argument, NULL, 'm' },
	{ "cert",	 required_argument, NULL, 'C' },
	{ "key",	 required_argument, NULL, 'K' },
	{ "ca",		 required_argument, NULL, 'A' },
	{ "concurrency", required_argument, NULL, 'n' },
	{ "threads",	 required_argument, NULL, 't' },
	{ "duration",	 required_argument, NULL, 'd' },
	{ "warmup",	 required_argument, NULL, 'w' },
	{ "rate",	 required_argument, NULL, 'r' },
	{ "timeout",	 required_argument, NULL, 'T' },
	{ "allow-failures", no_argument,   NULL, 'f' },
	{ "allow-shortfall", no_argument,  NULL, 'S' },
	{ "payload",	 required_argument, NULL, 'p' },
	{ "bytes",	 required_argument, NULL, 'b' },
	{ "ciphers",	 required_argument, NULL, 'x' },
	{ "groups",	 required_argument, NULL, 'g' },
	{ "tls12",	 no_argument,	    NULL, '2' },
	{ "sni",	 required_argument, NULL, 's' },
	{ "json",	 no_argument,	    NULL, 'j' },
	{ "crypto-floor", no_argument,	    NULL, 'F' },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/*
 * HOST:PORT: a numeric address, else the first address the name has. The
 * port is checked here, not by getaddrinfo, which would take 99003 modulo
 * 65536; a name that does not resolve is the resolver's error, exit 1.
 */
static void parse_target(struct bench_opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	const char *colon = strrchr(o->target, ':'), *p;
	struct addrinfo *res;
	char err[160], host[256];
	unsigned long port = 0;
	int r;

	if (!kmtls_addr_parse(o->target, 0, &o->addr, &o->addrlen, err, sizeof(err)))
		return;
	if (!colon || colon == o->target || (size_t)(colon - o->target) >= sizeof(host))
		die_usage("--connect %s: HOST:PORT expected", o->target);
	for (p = colon + 1; isdigit((unsigned char)*p) && port <= 65535; p++)
		port = port * 10 + (*p - '0');
	if (p == colon + 1 || *p || port < 1 || port > 65535)
		die_usage("--connect %s: a port from 1 to 65535 expected after the last ':'",
			  o->target);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - o->target), o->target);
	r = getaddrinfo(host, colon + 1, &hints, &res);
	if (r) {
		fprintf(stderr, "kmtls-bench: --connect %s: %s: %s\n", o->target, host,
			r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		exit(1);
	}
	memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
	o->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	int c, floor = 0, have_dur = 0, have_bytes = 0, have_timeout = 0;

	o->concurrency = 32;
	o->threads = 1;
	o->duration = 10;
	o->warmup = 1;
	o->sni = "localhost";
	o->mode = -1;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->target = optarg; break;
		case 'm':
			if (!strcmp(optarg, "full"))
				o->mode = BENCH_FULL;
			else if (!strcmp(optarg, "resumed"))
				o->mode = BENCH_RESUMED;
			else if (!strcmp(optarg, "bulk"))
				o->mode = BENCH_BULK;
			else
				die_usage("--mode %s: full, resumed or bulk expected", optarg);
			break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'A': o->ca = optarg; break;
		case 'n': o->concurrency = parse_count("concurrency", optarg, 1, 1000000); break;
		case 't': o->threads = parse_count("threads", optarg, 1, 256); break;
		case 'd': o->duration = parse_seconds("duration", optarg, 0.001); have_dur = 1; break;
		case 'w': o->warmup = parse_seconds("warmup", optarg, 0); break;
		case 'r': o->rate = parse_rate(optarg); break;
		case 'T':
			o->timeout = parse_seconds("timeout", optarg, 0.001);
			have_timeout = 1;
			break;
		case 'f': o->allow_failures = 1; break;
		case 'S': o->allow_shortfall = 1; break;
		case 'p': o->payload = parse_count("payload", optarg, 0, 1ULL << 30); break;
		case 'b': o->bytes = parse_count("bytes", optarg, 1, 1ULL << 30); have_bytes = 1; break;
		case 'x': o->ciphers = optarg; break;
		case 'g': o->groups = optarg; break;
		case '2': o->tls12 = 1; break;
		case 's': o->sni = optarg; break;
		case 'j': o->json = 1; break;
		case 'F': floor = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument \"%s\"", argv[optind]);
	if (floor) {
		if (!have_dur)
			o->duration = 2;
		return 1;
	}
	if (!o->target || (int)o->mode < 0 || !o->cert || !o->key || !o->ca)
		die_usage("--connect, --mode, --cert, --key and --ca are required");
	if (o->mode == BENCH_BULK && (o->payload || o->rate > 0))
		die_usage("--payload and --rate do not apply to --mode bulk");
	if (o->mode != BENCH_BULK && have_bytes)
		die_usage("--bytes applies to --mode bulk only (use --payload)");
	if (o->mode == BENCH_BULK && !have_bytes)
		o->bytes = 65536;
	if (o->allow_shortfall && !(o->rate > 0))
		die_usage("--allow-shortfall applies to an open loop (--rate) only");
	if (!o->sni[0] || strlen(o->sni) > 255)
		die_usage("--sni \"%s\": a server name of 1 to 255 bytes expected", o->sni);
	/* Stuck connections must come back to their slots within the run. */
	if (!have_timeout)
		o->timeout = o->duration < BENCH_CONN_TIMEOUT ? o->duration : BENCH_CONN_TIMEOUT;
	if (o->threads > o->concurrency)
		o->threads = o->concurrency;
	parse_target(o);
	return 0;
}

/*
 * A descriptor for every connection, and some for the rest (epoll sets,
 * stdio, the PEM files): the soft limit is raised as far as the hard one
 * allows; a run that cannot have them is refused rather than counting
 * EMFILE as the server's failures.
 */
#define NOFILE_SPARE 64

static int check_nofile(const struct bench_opts *o)
{
	rlim_t need = (rlim_t)o->concurrency + o->threads + NOFILE_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "kmtls-bench: getrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max >= need) {
		rl.rlim_cur = need;
		if (!setrlimit(RLIMIT_NOFILE, &rl))
			return 0;
	}
	fprintf(stderr, "kmtls-bench: --concurrency %u needs %llu file descriptors, the limit is %llu (hard %llu): raise it (ulimit -n) or lower --concurrency\n",
		o->concurrency, (unsigned long long)need,
		(unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
	return -1;
}

static unsigned char *make_pattern(void)
{
	unsigned char *p = malloc(2 * BENCH_IO_CHUNK);
	uint32_t x = 0x9e3779b9;
	size_t i;

	if (!p)
		return NULL;
	for (i = 0; i < BENCH_IO_CHUNK; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = p[i + BENCH_IO_CHUNK] = x >> 24;
	}
	return p;
}

static WOLFSSL_CTX *make_ctx(const struct bench_opts *o)
{
	struct kmtls_tls_conf conf = {
		.cert = o->cert, .key = o->key, .ca = o->ca,
		.ciphers = o->ciphers, .groups = o->groups,
		.tls_min = o->tls12 ? 0x0303 : 0x0304,
		.tls_max = o->tls12 ? 0x0303 : 0,
	};
	WOLFSSL_CTX *ctx;
	char err[512];

	ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	if (!ctx) {
		fprintf(stderr, "kmtls-bench: %s\n", err);
		return NULL;
	}
	if (wolfSSL_CTX_UseSNI(ctx, WOLFSSL_SNI_HOST_NAME, o->sni, strlen(o->sni)) !=
	    WOLFSSL_SUCCESS) {
		fprintf(stderr, "kmtls-bench: --sni %s: rejected by wolfSSL\n", o->sni);
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	/* TLS 1.3 resumes from NewSessionTicket anyway; TLS 1.2 needs asking. */
	if (o->mode == BENCH_RESUMED && o->tls12)
		wolfSSL_CTX_UseSessionTicket(ctx);
	return ctx;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = t / NSEC_PER_SEC, .tv_nsec = t % NSEC_PER_SEC };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void merge(struct bench_stats *dst, const struct bench_stats *src)
{
	unsigned int i;

	dst->ok += src->ok;
	dst->failed += src->failed;
	dst->local += src->local;
	dst->unfinished += src->unfinished;
	for (i = 0; i < CONN_STATES; i++)
		dst->unfinished_in[i] += src->unfinished_in[i];
	if (src->unfinished_age > dst->unfinished_age)
		dst->unfinished_age = src->unfinished_age;
	dst->first += src->first;
	dst->resumed += src->resumed;
	dst->psk_dhe_ke += src->psk_dhe_ke;
	dst->psk_ke += src->psk_ke;
	dst->unclosed += src->unclosed;
	dst->bytes_sent += src->bytes_sent;
	dst->bytes_recv += src->bytes_recv;
	dst->backlog += src->backlog;
	hist_merge(&dst->hs, &src->hs);
	hist_merge(&dst->echo, &src->echo);
	fails_merge(&dst->fails, &src->fails);
	fails_merge(&dst->local_fails, &src->local_fails);
	if (!dst->version[0] && src->version[0]) {
		memcpy(dst->version, src->version, sizeof(dst->version));
		memcpy(dst->cipher, src->cipher, sizeof(dst->cipher));
		memcpy(dst->group, src->group, sizeof(dst->group));
	}
}

/* Thread i's share of the connections (and of the rate, in proportion). */
static int setup_threads(const struct bench_opts *o, struct bench_thread *t)
{
	unsigned int i;

	for (i = 0; i < o->threads; i++) {
		t[i].id = i;
		t[i].o = o;
		t[i].ep = -1;
		t[i].nconns = o->concurrency / o->threads + (i < o->concurrency % o->threads);
		t[i].rate = o->rate * t[i].nconns / o->concurrency;
		t[i].ctx = make_ctx(o);
		if (!t[i].ctx)
			return -1;
		if (bench_thread_setup(&t[i])) {
			fprintf(stderr, "kmtls-bench: %s\n", t[i].err);
			return -1;
		}
	}
	return 0;
}

static int run_load(const struct bench_opts *o)
{
	static struct bench_result r;	/* two histograms: not for the stack */
	struct bench_thread *t = calloc(o->threads, sizeof(*t));
	uint64_t begin, meas, end;
	double cpu0;
	unsigned int i, started = 0;
	int ret = 1;

	if (!t || setup_threads(o, t))
		goto out;
	begin = bench_now() + 20 * NSEC_PER_MSEC;
	meas = begin + (uint64_t)(o->warmup * 1e9);
	end = meas + (uint64_t)(o->duration * 1e9);
	for (i = 0; i < o->threads; i++) {
		t[i].t_begin = begin;
		t[i].t_meas = meas;
		t[i].t_end = end;
		if (pthread_create(&t[i].tid, NULL, bench_thread_main, &t[i])) {
			fprintf(stderr, "kmtls-bench: cannot start thread %u\n", i);
			break;
		}
		started++;
	}
	sleep_until(meas);
	cpu0 = cpu_seconds();
	sleep_until(end);
	r.cpu_s = cpu_seconds() - cpu0;
	r.wall_s = o->duration;
	for (i = 0; i < started; i++) {
		pthread_join(t[i].tid, NULL);
		if (t[i].err[0])
			fprintf(stderr, "kmtls-bench: %s\n", t[i].err);
		merge(&r.st, &t[i].st);
	}
	if (started < o->threads)
		goto out;
	r.o = o;
	r.window_s = o->mode == BENCH_BULK ? o->warmup + o->duration : o->duration;
	bench_judge(&r);
	bench_report(&r);
	for (i = 0; i < r.nwhy; i++)
		fprintf(stderr, "kmtls-bench: the run is not valid: %s\n", r.why[i]);
	ret = !r.st.ok ? 1 : r.nwhy ? 3 : 0;
out:
	for (i = 0; t && i < o->threads; i++)
		if (t[i].ctx && i >= started)
			wolfSSL_CTX_free(t[i].ctx);
	free(t);
	return ret;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	int floor, ret;

	floor = parse_opts(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	if (kmtls_tls_global_init()) {
		fprintf(stderr, "kmtls-bench: wolfSSL_Init failed\n");
		return 1;
	}
	if (floor) {
		ret = bench_crypto_floor(o.duration, o.json);
	} else {
		bench_pattern = check_nofile(&o) ? NULL : make_pattern();
		ret = bench_pattern ? run_load(&o) : 1;
	}
	wolfSSL_Cleanup();
	return ret;
}
