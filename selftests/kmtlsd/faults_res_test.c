// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Resource faults against kmtlsd: kTLS that cannot be installed, running
 * out of file descriptors (EMFILE), running out of memory (ENOMEM).
 *
 * As in faults_test.c, each case runs many times (KMTLS_FAULT_ITERS, default
 * 200) and checks the log, the counters, that a good client is still served,
 * and that descriptors, VmRSS and heap blocks are back where they were after
 * a warm-up (selftests/lib/usage.h).
 *
 * kTLS install failure: in a guest with kTLS, module loading is switched off
 * (kernel.modprobe empty) and chacha20poly1305 unloaded, so a ChaCha20
 * client's keys cannot go into the kernel while AES-GCM ones still can. On a
 * kernel without kTLS every connection takes that path. Either way a tap on
 * the wire checks that nothing but TLS records ever reaches the client.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../lib/failmalloc/failmalloc.h"
#include "../lib/faults.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "../lib/usage.h"
#include "kselftest_harness.h"

#define SETTLE_MS	15000

#define CHACHA "TLS13-CHACHA20-POLY1305-SHA256"
/* What the echo carries back; must never be seen in clear on the wire. */
#define MARKER "kmtls-plaintext-marker:never-on-the-wire:"

static int iters(void)
{
	const char *s = getenv("KMTLS_FAULT_ITERS");

	return s && atoi(s) > 0 ? atoi(s) : 200;
}

static int warm_iters(void)
{
	return iters() / 4 > 5 ? iters() / 4 : 5;
}

static int kernel_has_ktls(void)
{
	return tls_stat("TlsCurrTxSw") >= 0;
}

FIXTURE(res) {
	struct fault_backend fb;
	struct kmtlsd d;
	int sport;
	int served;
	int asan;
	struct failmalloc_ctl *ctl;	/* kmtlsd's failmalloc.so (failmalloc.h) */
	struct usage base;
	char modprobe[256];	/* kernel.modprobe to put back, if changed */
};

FIXTURE_SETUP(res)
{
	signal(SIGPIPE, SIG_IGN);
	self->d.proc.pid = 0;
	self->asan = binary_is_asan(out_path("bin/kmtlsd"));
	self->modprobe[0] = 0;
	ASSERT_EQ(0, fault_backend_start(&self->fb));
	self->sport = free_port();
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			perror(path);
		close(fd);
	}
}

FIXTURE_TEARDOWN(res)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	fault_backend_stop(&self->fb);
	if (self->modprobe[0])
		write_file("/proc/sys/kernel/modprobe", self->modprobe);
}

/* kmtlsd with the status endpoint, --handshake-timeout @hs and @more flags. */
static int start(FIXTURE_DATA(res) *self, const char *hs, const char *more,
		 const char *more_val)
{
	char status[64];
	const char *args[] = { "--status-listen", status, "--handshake-timeout", hs,
			       more, more_val, NULL };
	int ret;

	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	self->ctl = failmalloc_prepare(out_path("bin/kmtlsd"));
	ret = kmtlsd_start(&self->d, self->fb.port, args);
	failmalloc_started();
	return ret;
}

static int settle(FIXTURE_DATA(res) *self, struct usage *u)
{
	if (status_wait(self->sport, "active", 0, SETTLE_MS))
		return -1;
	return usage_sample(self->d.proc.pid, self->ctl, u);
}

#define BASELINE(self) ASSERT_EQ(0, settle(self, &(self)->base))

#define CHECK_USAGE(self, what, times) do {					\
	struct usage _u;							\
	char _m[160];								\
	ASSERT_EQ(0, settle(self, &_u)) TH_LOG("connections still open after %s", what); \
	EXPECT_EQ(0, usage_compare(&(self)->base, &_u, !(self)->asan, _m, sizeof(_m))) \
		TH_LOG("%s: grew", what);					\
	TH_LOG("%s x%d: %s", what, (times), _m);				\
} while (0)

/* ---- kTLS install failure ------------------------------------------ */

/*
 * Make the kernel unable to give kTLS ChaCha20-Poly1305: no module loading
 * from now on (an empty kernel.modprobe fails request_module()), and the
 * AEAD template unloaded (it can go once no socket uses it). 0 or -1.
 */
static int break_chacha(FIXTURE_DATA(res) *self, char *err, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/modprobe", "r");
	struct stat st;
	int i;

	if (!f || !fgets(self->modprobe, sizeof(self->modprobe), f)) {
		if (f)
			fclose(f);
		self->modprobe[0] = 0;
		return snprintf(err, len, "cannot read kernel.modprobe"), -1;
	}
	fclose(f);
	write_file("/proc/sys/kernel/modprobe", "\n");
	for (i = 0; i < 100 && !stat("/sys/module/chacha20poly1305", &st); i++) {
		if (!syscall(SYS_delete_module, "chacha20poly1305", O_NONBLOCK))
			break;
		usleep(100000);
	}
	if (!stat("/sys/module/chacha20poly1305", &st))
		return snprintf(err, len, "chacha20poly1305 stays loaded: %s", strerror(errno)), -1;
	return 0;
}

/*
 * Through a tap: handshake (@ciphers), "echo" and the marker a few times,
 * read it back, close. The tap must have seen TLS records only. Returns 1
 * when the echo came back, 0 when the connection was refused, -1 when the
 * wire showed something else than TLS records.
 */
static int tapped_echo(int port, const char *ciphers, char *err, size_t len)
{
	struct tls_client_opts o = { .cert = pki("client.pem"), .key = pki("client.key"),
				     .ciphers = ciphers };
	char out[16384], in[sizeof(out)];
	size_t n = 0, got = 0;
	struct wiretap t;
	struct tls_end e;
	int r, echoed = 0;

	if (wiretap_start(&t, port))
		return snprintf(err, len, "tap: %s", strerror(errno)), -1;
	o.port = t.port;
	n = snprintf(out, sizeof(out), "echo\n");
	while (n + sizeof(MARKER) < sizeof(out))
		n += snprintf(out + n, sizeof(out) - n, "%s", MARKER);
	if (!tls_client_open(&o, &e, err, len)) {
		struct timeval tv = { .tv_sec = 10 };

		setsockopt(e.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (wolfSSL_write(e.ssl, out, (int)n) == (int)n) {
			while (got < n - 5 && (r = wolfSSL_read(e.ssl, in + got, (int)(n - 5 - got))) > 0)
				got += r;
			echoed = got == n - 5 && !memcmp(in, out + 5, got);
		}
		if (echoed)
			wolfSSL_shutdown(e.ssl);
	}
	tls_end_close(&e);
	wiretap_join(&t);
	r = tls_records_only(t.got, t.len, MARKER, err, len);
	wiretap_free(&t);
	return r ? -1 : echoed;
}

TEST_F_TIMEOUT(res, ktls_install_failure_falls_back_encrypted, 900)
{
	int ktls = kernel_has_ktls(), n = iters(), w = warm_iters(), i;
	const char *ciphers = ktls ? CHACHA : NULL;
	const char *why = ktls ? "kernel kTLS lacks this cipher" : "kernel has no kTLS";
	char err[256] = "", want[200];
	long ktls0, served0;

	if (ktls)
		ASSERT_EQ(0, break_chacha(self, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, start(self, "10s", NULL, NULL));
	for (i = 0; i < w; i++)
		ASSERT_EQ(1, tapped_echo(self->d.port, ciphers, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	ktls0 = status_int(self->sport, "ktls");
	served0 = self->served;
	for (i = 0; i < n; i++) {
		ASSERT_EQ(1, tapped_echo(self->d.port, ciphers, err, sizeof(err))) TH_LOG("%s", err);
		if (i % 50 == 0)
			EXPECT_SERVING(self);	/* AES-GCM: kTLS where the kernel has it */
	}
	CHECK_USAGE(self, "kTLS install failure", n);
	EXPECT_EQ(w + n + (ktls ? 0 : self->served), status_int(self->sport, "fallback"));
	/* The good clients (AES-GCM) still got kTLS where the kernel has it. */
	EXPECT_EQ(ktls0 + (ktls ? self->served - served0 : 0), status_int(self->sport, "ktls"));
	/* Said once, with the reason; not once per connection. */
	snprintf(want, sizeof(want), "kTLS not used, records go through wolfSSL in userspace: %s", why);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, want)) TH_LOG("want one \"%s\"", want);
	EXPECT_EQ(w + n + self->served, atomic_load(&self->fb.conns));
}

/* ktls = require: such a client is refused; nothing in clear, nothing through. */
TEST_F_TIMEOUT(res, ktls_required_but_failing_refuses, 900)
{
	int ktls = kernel_has_ktls(), n = iters(), w = warm_iters(), i;
	const char *ciphers = ktls ? CHACHA : NULL;
	const char *why = ktls ? "kernel kTLS lacks this cipher" : "kernel has no kTLS";
	char err[256] = "", want[200];

	if (ktls)
		ASSERT_EQ(0, break_chacha(self, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, start(self, "10s", "--ktls", "require"));
	for (i = 0; i < w; i++)
		ASSERT_EQ(0, tapped_echo(self->d.port, ciphers, err, sizeof(err))) TH_LOG("%s", err);
	if (ktls)	/* AES-GCM still goes into the kernel; its pipes pooled first */
		EXPECT_SERVING(self);
	BASELINE(self);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, tapped_echo(self->d.port, ciphers, err, sizeof(err))) TH_LOG("%s", err);
		if (ktls && i % 50 == 0)
			EXPECT_SERVING(self);
	}
	CHECK_USAGE(self, "kTLS required, install failing", n);
	snprintf(want, sizeof(want), "ktls = require but kTLS is unavailable: %s", why);
	EXPECT_EQ(w + n, proc_log_count(&self->d.proc, want)) TH_LOG("want \"%s\" per client", want);
	EXPECT_EQ(w + n, status_int(self->sport, "ktls_refused"));
	EXPECT_EQ(0, status_int(self->sport, "fallback"));
	EXPECT_EQ(self->served, atomic_load(&self->fb.conns)) TH_LOG("a refused client reached the backend");
}

/* ---- EMFILE -------------------------------------------------------- */

#define PRESSURE 40
#define RECOVERED "accepting connections again"
#define ROOM 4		/* descriptors kmtlsd may open under pressure */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/*
 * One episode: kmtlsd may open ROOM more descriptors; PRESSURE clients
 * connect. It must take some and shed the rest (accept and close at once,
 * so the kernel's queue does not keep it busy). With no descriptor left at
 * all, a status scrape waits in the queue and kmtlsd must not spin on it.
 * Once the clients leave, a good client is served under the same limit, and
 * the scrape is answered. Returns the number shed.
 */
static int emfile_episode(struct __test_metadata *_metadata, FIXTURE_DATA(res) *self,
			  const struct rlimit *old, int nr)
{
	struct rlimit low = *old, none = *old;
	struct pollfd p[PRESSURE];
	struct usage u;
	long cpu0, cpu1, t0;
	int i, shed = 0, waited, scrape = -1;
	char c, answer[16] = "";

	if (settle(self, &u))
		return -1;
	low.rlim_cur = usage_fd_limit_with_room(self->d.proc.pid, ROOM);
	if (prlimit(self->d.proc.pid, RLIMIT_NOFILE, &low, NULL))
		return -1;
	for (i = 0; i < PRESSURE; i++) {
		if (tcp_connect_port(self->d.port, &p[i].fd))
			p[i].fd = -1;
		p[i].events = POLLIN;
	}
	/* The shed ones end at once; the taken ones wait in the handshake (10 s). */
	for (t0 = now_ms(); now_ms() - t0 < 3000;) {
		poll(p, PRESSURE, 50);
		for (i = 0; i < PRESSURE; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (recv(p[i].fd, &c, 1, MSG_DONTWAIT) <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				shed++;
			}
		}
	}
	/* Some taken (no more than there was room for), the rest shed. */
	EXPECT_LE(1, PRESSURE - shed);
	EXPECT_GE(ROOM, PRESSURE - shed);

	/* Not one descriptor left: a scraper comes. */
	none.rlim_cur = usage_lowest_free_fd(self->d.proc.pid);
	prlimit(self->d.proc.pid, RLIMIT_NOFILE, &none, NULL);
	tcp_connect_port(self->sport, &scrape);
	send(scrape, "GET /status HTTP/1.0\r\n\r\n", 24, MSG_NOSIGNAL);
	cpu0 = proc_cpu_ticks(self->d.proc.pid);
	usleep(1000000);
	cpu1 = proc_cpu_ticks(self->d.proc.pid);
	/* 1 s of wall clock: well under half a CPU second. */
	EXPECT_GT(sysconf(_SC_CLK_TCK) / 2, cpu1 - cpu0)
		TH_LOG("kmtlsd spent %ld of %ld ticks in 1 s while out of descriptors",
		       cpu1 - cpu0, sysconf(_SC_CLK_TCK));

	for (i = 0; i < PRESSURE; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	prlimit(self->d.proc.pid, RLIMIT_NOFILE, &low, NULL);
	EXPECT_SERVING(self);
	prlimit(self->d.proc.pid, RLIMIT_NOFILE, old, NULL);
	/* The scrape waited, and is answered now. */
	if (scrape >= 0) {
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(scrape, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recv(scrape, answer, sizeof(answer) - 1, MSG_WAITALL) < 0)
			answer[0] = 0;
		close(scrape);
	}
	EXPECT_EQ(0, strncmp(answer, "HTTP/1.0 200", 12)) TH_LOG("status answered \"%s\"", answer);
	/* Over once nobody had to be refused for a second: kmtlsd says so. */
	for (waited = 0; waited < 5000 && proc_log_count(&self->d.proc, RECOVERED) < nr;
	     waited += 50)
		usleep(50000);
	return shed;
}

TEST_F_TIMEOUT(res, emfile_sheds_and_recovers, 900)
{
	int n = iters() / 20 > 3 ? iters() / 20 : 3, i, shed = 0;
	const char *msg = "out of file descriptors (RLIMIT_NOFILE)";
	struct rlimit old;

	ASSERT_EQ(0, start(self, "10s", NULL, NULL));
	EXPECT_SERVING(self);
	ASSERT_EQ(0, prlimit(self->d.proc.pid, RLIMIT_NOFILE, NULL, &old));
	ASSERT_LT(0, emfile_episode(_metadata, self, &old, 1));
	EXPECT_SERVING(self);	/* its pipes are pooled before the baseline */
	BASELINE(self);
	for (i = 0; i < n; i++) {
		int s = emfile_episode(_metadata, self, &old, i + 2);

		ASSERT_LT(0, s);
		shed += s;
	}
	CHECK_USAGE(self, "EMFILE episodes", n);
	TH_LOG("%d episodes, %d connections shed", n, shed);
	/* Each episode says when it began and when it ended. */
	EXPECT_EQ(n + 1, proc_log_count(&self->d.proc, msg));
	EXPECT_EQ(n + 1, proc_log_count(&self->d.proc, RECOVERED));
	EXPECT_SERVING(self);
}

/* ---- ENOMEM -------------------------------------------------------- */

/* A status scrape's HTTP status code; 0 when there was no answer. */
static int scrape(int port, const char *path)
{
	struct timeval tv = { .tv_sec = 5 };
	char req[64], answer[32] = "";
	int fd, code = 0;

	if (tcp_connect_port(port, &fd))
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) > 0 &&
	    recv(fd, answer, sizeof(answer) - 1, MSG_WAITALL) > 0)
		sscanf(answer, "HTTP/1.0 %d", &code);
	close(fd);
	return code;
}

/* Fail one allocation in N, N changing per connection: a different spot each time. */
static const unsigned int every[] = { 2, 3, 5, 11, 29, 61, 127, 257, 509, 1021 };

TEST_F_TIMEOUT(res, enomem_fails_connections_not_the_daemon, 900)
{
	int n = iters(), w = warm_iters(), i, failed = 0, logged, code, scraped_503 = 0;
	struct failmalloc_ctl *ctl;
	char err[256];

	if (self->asan)
		SKIP(return, "kmtlsd is built with ASan, whose runtime owns malloc: the failing malloc cannot be put in (the plain build runs this)");
	ASSERT_EQ(0, start(self, "2s", NULL, NULL));
	ctl = self->ctl;
	ASSERT_NE(NULL, ctl) TH_LOG("no %s (make userspace)", out_path("selftests/lib/failmalloc.so"));
	ASSERT_EQ(self->d.proc.pid, atomic_load(&ctl->loaded)) TH_LOG("the failing malloc is not in kmtlsd");

	for (i = 0; i < w; i++)
		EXPECT_SERVING(self);
	BASELINE(self);
	for (i = 0; i < n; i++) {
		atomic_store(&ctl->every, every[i % (sizeof(every) / sizeof(every[0]))]);
		failed += good_echo(self->d.port, 4096, err, sizeof(err)) != 0;
		/* A scrape under the same pressure: an answer or a 503, never a crash. */
		code = scrape(self->sport, i % 2 ? "/status" : "/metrics");
		EXPECT_TRUE(code == 200 || code == 503) TH_LOG("scrape %d answered %d", i, code);
		scraped_503 += code == 503;
		atomic_store(&ctl->every, 0);
	}
	TH_LOG("%d of %d scrapes answered 503", scraped_503, n);
	TH_LOG("%d of %d connections failed, %lu of %lu allocations refused", failed, n,
	       atomic_load(&ctl->failed), atomic_load(&ctl->calls));
	CHECK_USAGE(self, "ENOMEM", n);
	EXPECT_LT(0, failed);
	/* Every connection that failed says so; at least some say why. */
	logged = proc_log_count(&self->d.proc, "[warning]: listener default: client 127.0.0.1:") +
		 proc_log_count(&self->d.proc, "[info]: listener default: client 127.0.0.1:");
	EXPECT_LE(failed, logged);
	EXPECT_LT(0, proc_log_count(&self->d.proc, "out of memory"));
	EXPECT_SERVING(self);
}

/*
 * Several workers share one descriptor table: a spare one worker closes to
 * refuse a client with must not go to another worker's accept, or that
 * worker has nothing left to refuse with and spins on its listener while its
 * clients hang. Each round: BURST clients against room for ROOM; all but at
 * most ROOM must be refused (EOF) within seconds, and kmtlsd idle while it
 * holds the rest. Then not a single descriptor (the limit below the spares'
 * numbers): kmtlsd must not spin, the clients wait, and are taken once the
 * limit is raised, with the spares back. The refusals the log counts are
 * the ones the clients saw.
 */
#define WORKERS "4"
#define BURST 200
#define ROUNDS 4
#define WAITERS 8

/* Sum of "N refused" over the episodes' ends in the log; -1 if unreadable. */
static long refused_in_log(const char *log)
{
	const char *key = "accepting connections again; ";
	char line[1024], *p;
	FILE *f = fopen(log, "r");
	long sum = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, key)))
			sum += atol(p + strlen(key));
	fclose(f);
	return sum;
}

/* /dev/null descriptors of @pid: the spares. */
static int devnull_fds(pid_t pid)
{
	char dir[64], path[320], target[64];
	struct dirent *e;
	ssize_t n;
	int count = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			count += !strcmp(target, "/dev/null");
		}
	}
	closedir(d);
	return count;
}

/* CPU ticks @pid uses over @ms of wall clock. */
static long cpu_over(pid_t pid, int ms)
{
	long t0 = proc_cpu_ticks(pid);

	usleep(ms * 1000);
	return proc_cpu_ticks(pid) - t0;
}

/* One burst under room for ROOM: the clients refused (EOF), or -1. */
static int burst_round(struct __test_metadata *_metadata, FIXTURE_DATA(res) *self,
		       const struct rlimit *old)
{
	struct rlimit low = *old;
	struct pollfd p[BURST];
	int i, open = 0, refused = 0;
	long ticks, t0, waited;
	struct usage u;
	char c;

	if (settle(self, &u))
		return -1;
	low.rlim_cur = usage_fd_limit_with_room(self->d.proc.pid, ROOM);
	if (prlimit(self->d.proc.pid, RLIMIT_NOFILE, &low, NULL))
		return -1;
	for (i = 0; i < BURST; i++) {
		if (tcp_connect_port(self->d.port, &p[i].fd))
			p[i].fd = -1;
		p[i].events = POLLIN;
		open += p[i].fd >= 0;
	}
	/* By the clock: poll returns at each refusal. */
	for (t0 = now_ms(); (waited = now_ms() - t0) < 5000 && open > ROOM;) {
		poll(p, BURST, 50);
		for (i = 0; i < BURST; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (recv(p[i].fd, &c, 1, MSG_DONTWAIT) <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open--;
				refused++;
			}
		}
	}
	/* The rest are taken (waiting in the handshake), none hangs in a queue. */
	EXPECT_GE(ROOM, open) TH_LOG("%d of %d clients neither taken nor refused after %ld ms",
				     open - ROOM, BURST, waited);
	ticks = cpu_over(self->d.proc.pid, 1500);
	EXPECT_GT(sysconf(_SC_CLK_TCK) / 5, ticks)
		TH_LOG("kmtlsd spent %ld ticks in 1.5 s holding %d clients at its limit", ticks, open);
	for (i = 0; i < BURST; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	prlimit(self->d.proc.pid, RLIMIT_NOFILE, old, NULL);
	return refused;
}

TEST_F_TIMEOUT(res, emfile_workers_neither_spin_nor_hang, 300)
{
	const char *began = "out of file descriptors (RLIMIT_NOFILE)";
	struct rlimit old, none;
	int i, r, fd[WAITERS], spares, refused = 0, waited;
	long ticks, accepted;
	struct usage u;

	ASSERT_EQ(0, start(self, "30s", "--workers", WORKERS));
	EXPECT_SERVING(self);
	ASSERT_EQ(0, prlimit(self->d.proc.pid, RLIMIT_NOFILE, NULL, &old));
	spares = devnull_fds(self->d.proc.pid);
	for (i = 0; i < ROUNDS; i++) {
		r = burst_round(_metadata, self, &old);
		ASSERT_LE(0, r);
		refused += r;
		EXPECT_SERVING(self);
	}

	/* Not one descriptor: the clients wait, kmtlsd does not spin on them. */
	ASSERT_EQ(0, settle(self, &u));
	accepted = status_int(self->sport, "accepted");
	none = old;
	none.rlim_cur = 1;
	ASSERT_EQ(0, prlimit(self->d.proc.pid, RLIMIT_NOFILE, &none, NULL));
	for (i = 0; i < WAITERS; i++)
		EXPECT_EQ(0, tcp_connect_port(self->d.port, &fd[i]));
	usleep(300000);
	ticks = cpu_over(self->d.proc.pid, 1500);
	EXPECT_GT(sysconf(_SC_CLK_TCK) / 5, ticks)
		TH_LOG("kmtlsd spent %ld ticks in 1.5 s with no descriptor at all", ticks);
	prlimit(self->d.proc.pid, RLIMIT_NOFILE, &old, NULL);
	/* Taken once there are descriptors again; the spares are back. */
	EXPECT_EQ(0, status_wait(self->sport, "active", WAITERS, 5000));
	EXPECT_EQ(accepted + WAITERS, status_int(self->sport, "accepted"));
	EXPECT_SERVING(self);
	for (i = 0; i < WAITERS; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	EXPECT_EQ(0, settle(self, &u));
	EXPECT_EQ(spares, devnull_fds(self->d.proc.pid));

	/* Every episode ended, and counted exactly the clients refused. */
	for (waited = 0; waited < 5000 && proc_log_count(&self->d.proc, RECOVERED) <
	     proc_log_count(&self->d.proc, began); waited += 50)
		usleep(50000);
	EXPECT_EQ(proc_log_count(&self->d.proc, began), proc_log_count(&self->d.proc, RECOVERED));
	EXPECT_LE(1, proc_log_count(&self->d.proc, "(clients waited)"));
	EXPECT_EQ(refused, refused_in_log(self->d.proc.log));
	TH_LOG("%d rounds of %d clients: %d refused; %d spares", ROUNDS, BURST, refused, spares);
}

TEST_HARNESS_MAIN
