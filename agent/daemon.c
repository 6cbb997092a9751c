// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Process-level life: signals are blocked in every thread and taken by the
 * main thread with sigtimedwait() (it wakes to ping systemd's watchdog), so
 * workers never run signal handlers.
 * Reload builds new TLS contexts beside the old ones and swaps them only when
 * all of them loaded: a broken file never takes a listener down.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "daemon.h"
#include "kservice.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "ratelimit.h"
#include "reconfig.h"
#include "sandbox.h"
#include "status.h"
#include "tls_ctx.h"
#include "uidlookup.h"
#include "watch.h"
#include "worker.h"

/*
 * Every connection needs two descriptors and, while bytes move, a pipe
 * (two more). Take as many as the kernel allows a privileged process
 * (fs.nr_open), else as many as the hard limit allows.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (nr_open > rl.rlim_max) {
		struct rlimit want = { nr_open, nr_open };

		if (!setrlimit(RLIMIT_NOFILE, &want))
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int worker_count(const struct kmtls_config *cfg)
{
	long n = cfg->workers > 0 ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static int init_listeners(const struct kmtls_config *cfg,
			  struct kmtls_listener *ls, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < cfg->n_listeners; i++) {
		if (kmtls_listener_setup(&ls[i], &cfg->listeners[i], err, errlen)) {
			while (i--)
				kmtls_listener_teardown(&ls[i]);
			return -1;
		}
	}
	return 0;
}

int kmtls_daemon_check(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	struct kmtls_listener *ls = calloc(cfg->n_listeners, sizeof(*ls));
	struct kmtls_kservice ks;
	int i, ret;

	if (!ls || kmtls_tls_global_init() || init_listeners(cfg, ls, err, errlen)) {
		free(ls);
		return -1;
	}
	ret = kmtls_kservice_setup(&ks, cfg, err, errlen);
	if (!ret)
		kmtls_kservice_teardown(&ks);
	for (i = 0; i < cfg->n_listeners; i++)
		kmtls_listener_teardown(&ls[i]);
	free(ls);
	return ret;
}

/* What /metrics says of reloads (status.c reads them from its thread). */
static volatile time_t reloaded_at;
static volatile unsigned long reload_failures;
static struct kmtls_kservice *kservice;

/*
 * The files on disk and, with a config file, what of it may change while
 * running (reconfig.c): ls[i] was set up from cfg->listeners[i]. All of
 * it or nothing: every listener's and kernel profile's next context is
 * built before any is swapped in, so one bad file never leaves some
 * listeners on the new policy and others on the old.
 * 0 when all of it applied: the config file (if any) read and checked,
 * every context swapped, [ratelimit] applied; else -1 (logged).
 */
static int reload(struct kmtls_config *cfg, struct kmtls_listener *ls, int n)
{
	struct kmtls_config *file = kmtls_reconfig_read(cfg);
	struct kmtls_listener_next *next = calloc(n ? n : 1, sizeof(*next));
	struct kmtls_kservice_next kn = { 0 };
	struct kmtls_listener_conf eff;
	char err[512] = "out of memory";
	int i, ready = 0, applied = 0;

	for (; next && ready < n; ready++) {
		kmtls_reconfig_effective_listener(&eff, &cfg->listeners[ready],
						  kmtls_reconfig_listener(file, ls[ready].conf->name));
		if (kmtls_listener_prepare(&ls[ready], &eff, NULL, &next[ready], err, sizeof(err)))
			break;
	}
	if (!next || ready < n || (kservice && kmtls_kservice_prepare(kservice, cfg, file, &kn,
								   err, sizeof(err)))) {
		log_err("reload: %s; keeping the previous certificates, CAs, CRLs and policy of every listener and kernel profile (nothing of this reload applies)",
			err);
		for (i = 0; i < ready; i++)	/* ready is 0 without next */
			kmtls_listener_abort(&next[i]);
	} else {
		for (i = 0; i < n; i++) {
			struct kmtls_listener_conf *fl = kmtls_reconfig_listener(file, ls[i].conf->name);

			kmtls_listener_commit(&ls[i], &next[i]);
			if (fl)
				kmtls_reconfig_adopt_listener(&cfg->listeners[i], fl);
		}
		if (n)
			log_info("reloaded certificates, keys, CAs and CRLs of %d listener(s)", n);
		if (kservice)
			kmtls_kservice_commit(kservice, cfg, file, &kn);
		applied = 1;
	}
	free(next);
	if (kservice)
		kmtls_kservice_rescan(kservice);
	/*
	 * [ratelimit] only with the rest: a file refused above, or a reload
	 * that applied nothing, leaves the limiter as it was too.
	 */
	if (file && applied && kmtls_ratelimit_reload())
		applied = 0;
	if (cfg->path && !file)
		applied = 0;	/* the file was refused: only the files on disk reloaded */
	kmtls_reconfig_free(file);
	return applied ? 0 : -1;
}

static void announce(struct kmtls_listener *ls, int n, int workers)
{
	char a[KMTLS_ADDRSTRLEN], b[KMTLS_ADDRSTRLEN];
	int i;

	for (i = 0; i < n; i++)
		log_info("listener %s: listening on %s, backend %s, ktls %s, %d worker(s)",
			 ls[i].conf->name,
			 kmtls_addr_str((struct sockaddr *)&ls[i].listen_addr, ls[i].listen_len, a, sizeof(a)),
			 kmtls_addr_str((struct sockaddr *)&ls[i].backend_addr, ls[i].backend_len, b, sizeof(b)),
			 ls[i].conf->ktls == KMTLS_KTLS_OFF ? "off" :
			 ls[i].conf->ktls == KMTLS_KTLS_REQUIRE ? "require" : "auto",
			 workers);
}

static uint64_t active_conns(const struct kmtls_worker *ws, int nw)
{
	struct kmtls_stats s;

	kmtls_stats_sum(ws, nw, &s);
	return s.active;
}

/*
 * SIGTERM: stop accepting, let handshakes and relays in flight finish for
 * up to drain_timeout, then close what is left. A second SIGTERM or SIGINT
 * ends it at once; a SIGHUP (systemctl reload, watch-files) does not:
 * nothing is reloaded for connections that are on their way out.
 */
static void drain(struct kmtls_worker *ws, int nw, unsigned int timeout_ms,
		  sigset_t *set)
{
	struct timespec tick = { 0, 100 * 1000000 };
	uint64_t deadline = kmtls_now_ms() + timeout_ms, left;
	int i, sig;

	for (i = 0; i < nw; i++)
		ws[i].draining = 1;
	left = active_conns(ws, nw);
	log_info("draining: no new connections, %llu open, up to %u ms",
		 (unsigned long long)left, timeout_ms);
	while ((left = active_conns(ws, nw)) && kmtls_now_ms() < deadline) {
		sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGHUP) {
			log_info("SIGHUP while draining: not reloading; the drain goes on (SIGTERM again closes the %llu connection(s) now)",
				 (unsigned long long)left);
		} else if (sig > 0) {
			log_info("second signal: closing %llu connections now",
				 (unsigned long long)left);
			return;
		}
	}
	if (left)
		log_warn("drain timeout: closing %llu connections still open",
			 (unsigned long long)left);
	else
		log_info("drained: all connections finished");
}

/* Seconds between two own-key rotations (KMTLS_TICKET_ROTATE_S may say). */
static uint64_t rotate_every_ms(void)
{
	const char *e = getenv("KMTLS_TICKET_ROTATE_S");
	unsigned long v;
	char *end;

	if (e && *e >= '1' && *e <= '9') {
		errno = 0;
		v = strtoul(e, &end, 10);
		if (!errno && !*end && v <= 365UL * 86400)
			return (uint64_t)v * 1000;
	}
	return (uint64_t)KMTLS_TICKET_ROTATE_S * 1000;
}

/* Every listener and kernel profile sealing with a key of its own. */
static void rotate_own_keys(struct kmtls_listener *ls, int n)
{
	int i, r;

	for (i = 0; i < n; i++)
		kmtls_listener_rotate_own_key(&ls[i]);
	for (i = 0; kservice && i < kservice->n; i++)
		for (r = 0; r < KMTLS_KROLES; r++)
			if (kservice->profiles[i].ready[r])
				kmtls_listener_rotate_own_key(&kservice->profiles[i].role[r]);
	log_debug("session-ticket keys of our own rotated (the previous one still opens tickets)");
}

/*
 * Until the first of: the watchdog's next ping, the next rotation, the
 * summary of log lines held back (log.h), and the end of a log limit
 * window at the latest, so that a flood that began while this thread
 * slept gets its summary soon after its window, not hours later.
 */
static const struct timespec *next_wait(struct timespec *ts, uint64_t rotate_at)
{
	const struct timespec *wd = kmtls_notify_watchdog_wait(ts);
	long held = kmtls_log_limited_flush();
	uint64_t now = kmtls_now_ms(), left = rotate_at > now ? rotate_at - now : 0;
	uint64_t cap = held >= 0 ? (uint64_t)held : KMTLS_LOG_LIMIT_WINDOW_MS;

	if (cap < left)
		left = cap;
	if (wd && (uint64_t)wd->tv_sec * 1000 + (uint64_t)wd->tv_nsec / 1000000 <= left)
		return wd;
	ts->tv_sec = (time_t)(left / 1000);
	ts->tv_nsec = (long)(left % 1000) * 1000000;
	return ts;
}

static void wait_for_signals(struct kmtls_config *cfg, struct kmtls_listener *ls,
			     int n, struct kmtls_worker *ws, int nw,
			     unsigned int drain_ms, sigset_t *set)
{
	uint64_t every = rotate_every_ms(), rotate_at = kmtls_now_ms() + every;
	struct timespec ts;
	siginfo_t si;
	int sig;

	for (;;) {
		sig = sigtimedwait(set, &si, next_wait(&ts, rotate_at));
		kmtls_notify_watchdog();
		if (kmtls_now_ms() >= rotate_at) {
			rotate_own_keys(ls, n);
			rotate_at = kmtls_now_ms() + every;
		}
		if (sig < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (sig == SIGHUP) {
			kmtls_notify_reloading();
			if (!reload(cfg, ls, n))
				reloaded_at = time(NULL);
			else
				reload_failures++;
			/* Serving either way: with what the reload left in place. */
			kmtls_notify("READY=1");
			continue;
		}
		kmtls_notify("STOPPING=1");
		log_info("signal %d: shutting down", sig);
		if (sig == SIGTERM && drain_ms)
			drain(ws, nw, drain_ms, set);
		return;
	}
}

int kmtls_daemon_run(struct kmtls_config *cfg)
{
	int nw = worker_count(cfg), n = cfg->n_listeners, i, started = 0, ret = 1;
	struct kmtls_listener *ls = calloc(n, sizeof(*ls));
	struct kmtls_worker *ws = calloc(nw, sizeof(*ws));
	struct kmtls_status_src src;
	struct kmtls_kservice ks;
	int status_bound = 0;
	struct kmtls_watch watch = { .fd = -1, .stop_fd = -1 };
	char err[512];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	/*
	 * Before any key is loaded or thread started: they fork processes
	 * that reloads use. The ratelimit one first, so it does not inherit
	 * the user name lookups' socket.
	 */
	if (kmtls_ratelimit_start(cfg, err, sizeof(err)) ||
	    kmtls_uidlookup_start(cfg, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	if (!ls || !ws || kmtls_tls_global_init()) {
		log_err("out of memory at start-up");
		goto out;
	}
	if (init_listeners(cfg, ls, err, sizeof(err))) {
		log_err("%s", err);
		goto out_free;
	}
	if (kmtls_kservice_setup(&ks, cfg, err, sizeof(err))) {
		log_err("%s", err);
		for (i = 0; i < n; i++)
			kmtls_listener_teardown(&ls[i]);
		goto out_free;
	}
	for (i = 0; i < nw; i++) {
		if (kmtls_worker_init(&ws[i], i, ls, n, err, sizeof(err))) {
			log_err("%s", err);
			goto out_workers;
		}
		started++;
	}
	/* The netlink socket and the inboxes, before the sandbox forbids them. */
	if (kmtls_kservice_open(&ks, ws, nw, err, sizeof(err))) {
		log_err("%s", err);
		goto out_workers;
	}
	kservice = ks.n ? &ks : NULL;
	/* Everything is bound: drop privileges and sandbox before serving. */
	if (cfg->status_listen && kmtls_status_bind(cfg->status_listen, err, sizeof(err)))
		log_err("%s; serving without it", err);
	else
		status_bound = !!cfg->status_listen;
	/* The watches need paths, which the sandbox then restricts. */
	if (cfg->watch_files && kmtls_watch_open(&watch, cfg, err, sizeof(err)))
		log_err("%s; serving without it (reload with SIGHUP)", err);
	if (kmtls_sandbox_apply(cfg, err, sizeof(err))) {
		log_err("%s", err);
		goto out_workers;
	}
	for (i = 0; i < nw; i++)
		kmtls_worker_start(&ws[i]);
	/* SIGHUP from the watcher goes to this thread, which waits for it. */
	if (watch.fd >= 0 && kmtls_watch_start(&watch, gettid(), err, sizeof(err)))
		log_err("%s; serving without it (reload with SIGHUP)", err);
	announce(ls, n, nw);
	src = (struct kmtls_status_src){ .ws = ws, .n_workers = nw, .ls = ls,
					 .n_listeners = n, .started = time(NULL),
					 .reloaded = &reloaded_at, .reload_failures = &reload_failures,
					 .ks = kservice };
	if (status_bound) {
		if (kmtls_status_start(cfg->status_listen, &src, err, sizeof(err)))
			log_err("%s; serving without it", err);
		else
			log_info("status on %s (/metrics, /status)", cfg->status_listen);
	}
	kmtls_notify("READY=1");
	wait_for_signals(cfg, ls, n, ws, nw, cfg->drain_timeout_ms, &set);
	ret = 0;
	kmtls_watch_close(&watch);
	kmtls_status_stop();
	for (i = 0; i < nw; i++)
		ws[i].stop = 1;
	for (i = 0; i < nw; i++)
		pthread_join(ws[i].thread, NULL);
out_workers:
	kmtls_watch_close(&watch);
	for (i = 0; i < started + (started < nw); i++)
		kmtls_worker_destroy(&ws[i]);
	kservice = NULL;
	kmtls_kservice_teardown(&ks);	/* after the workers: their DONEs use it */
	for (i = 0; i < n; i++)
		kmtls_listener_teardown(&ls[i]);
out_free:
	wolfSSL_Cleanup();
out:
	free(ls);
	free(ws);
	return ret;
}
