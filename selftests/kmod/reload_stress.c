// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls.ko loaded and unloaded 100 times under request load. Runs as root
 * in the guest (tools/vm/kmtls-vm), in a network namespace of its own where
 * kmtlsd (kernel service, as shipped) stays up across every reload.
 *
 * Each round inserts the module, waits for kmtlsd to serve again, and
 * starts clients that leave requests in every state:
 *
 *   served     a real handshake, completed and read (status 0)
 *   stalled    accepted by kmtlsd, whose peer never speaks (in flight)
 *   pending    in a namespace without an agent (queued)
 *   unread     timed out in that namespace, never read (completed)
 *   waiting    threads blocked in KMTLS_IOC_WAIT and read(2)
 *
 * While they hold /dev/kmtls the module refuses to go (EWOULDBLOCK). Then
 * the clients end: closed gracefully (even rounds: a blocking wait returns
 * EINTR, the counters balance) or killed, with rmmod running at once and
 * an opener racing it (odd rounds). Every rmmod must succeed within
 * RMMOD_MS, no client may hang, files of the module held open across the
 * unload fail cleanly, kmtlsd survives, and the kernel log stays clean
 * (WARNING, BUG, Oops, refcount, leak...; slub_debug's reports too when
 * the guest boots with it, see tools/vm/README.md).
 *
 * KMTLS_RELOAD_ROUNDS overrides the number of rounds.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "../../agent/tls_ctx.h"
#include "../lib/proc.h"
#include "kmod_util.h"
#include "kselftest_harness.h"

#define ROUNDS		100
#define RMMOD_MS	10000	/* clients gone -> module gone */
#define SERVING		"kernel service: serving"
#define TIMEOUT_MS	30000	/* requests that must outlive a round */
#define TRACEFS		"/sys/kernel/tracing/"

enum client_kind { SERVED, PENDING, THREADS, NR_CLIENTS };

static const char *const kind_name[] = { "served", "pending", "threads" };

/* What a client tells the parent: once ready, once more when it ends */
struct report {
	int ready;		/* 1: its requests are in place; 2: final */
	int submitted;		/* requests the kernel took */
	int served;		/* the served request's status (SERVED) */
	int wait_ret;		/* the blocking wait's return at the end */
	char err[160];		/* empty when all went as expected */
};

struct client {
	pid_t pid;
	int fd;			/* read end of its report pipe */
	struct report rep;
};

static struct client cl[NR_CLIENTS];

static const char *pki_file(const char *name)
{
	static char slots[8][512];
	static int next;
	const char *dir = getenv("KMTLS_PKI");
	char *p = slots[next++ % 8];

	snprintf(p, sizeof(slots[0]), "%s/%s", dir && *dir ? dir : "build/pki", name);
	return p;
}

/* ---- clients (child processes) ------------------------------------------- */

static void on_usr1(int sig)
{
}

static void send_report(int fd, struct report *r, int phase)
{
	r->ready = phase;
	if (write(fd, r, sizeof(*r)) != sizeof(*r))
		_exit(3);
}

/* Queue @fd, server role, kmtlsd's default profile; 0 or -errno */
static int submit_default(int dev, int fd, uint32_t timeout_ms, uint64_t *id)
{
	struct kmtls_submit sub;

	submit_init(&sub, fd, KMTLS_ROLE_SERVER, timeout_ms, 0);
	if (ioctl(dev, KMTLS_IOC_SUBMIT, &sub) < 0)
		return -errno;
	*id = sub.id;
	return 0;
}

/* A connected pair: *app accepted (server role), *peer connected */
static int app_pair(int *app, int *peer)
{
	return tcp_pair_af(AF_INET, peer, app);
}

/* The peer of the served request: a TLS client with the test PKI */
static void *peer_main(void *arg)
{
	struct kmtls_tls_conf tc = {
		.cert = pki_file("client.pem"), .key = pki_file("client.key"),
		.ca = pki_file("ca.pem"),
	};
	int fd = *(int *)arg;
	char err[256], b;
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;

	ctx = kmtls_tls_ctx_new(&tc, err, sizeof(err));
	ssl = ctx ? wolfSSL_new(ctx) : NULL;
	if (ssl && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
	    wolfSSL_connect(ssl) == WOLFSSL_SUCCESS)
		wolfSSL_read(ssl, &b, 1);	/* until the application closes */
	wolfSSL_free(ssl);
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/*
 * One request served by kmtlsd and read, one stalled in kmtlsd; then a
 * blocking wait for the stalled one, which SIGUSR1 interrupts (EINTR).
 */
static void client_served(int rfd, struct report *r)
{
	struct kmtls_completion c;
	int app[2], peer[2], dev, ret;
	uint64_t id[2];
	pthread_t th;

	dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0 || app_pair(&app[0], &peer[0]) || app_pair(&app[1], &peer[1]))
		_exit(4);
	if (pthread_create(&th, NULL, peer_main, &peer[0]))
		_exit(4);
	ret = submit_default(dev, app[0], TIMEOUT_MS, &id[0]);
	if (ret)
		snprintf(r->err, sizeof(r->err), "submit: %s", strerror(-ret));
	r->submitted += !ret;
	ret = submit_default(dev, app[1], TIMEOUT_MS, &id[1]);
	if (ret)
		snprintf(r->err, sizeof(r->err), "submit stalled: %s", strerror(-ret));
	r->submitted += !ret;
	ret = wait_req(dev, id[0], &c);
	r->served = ret ? ret : c.status;
	close(app[0]);
	pthread_join(th, NULL);
	send_report(rfd, r, 1);

	r->wait_ret = wait_req(dev, id[1], &c);
	close(dev);
	send_report(rfd, r, 2);
	_exit(0);
}

/*
 * In a namespace of its own with no agent: two requests queued for a
 * minute, one that times out and is never read. Checks its counters.
 */
static void client_pending(int rfd, struct report *r)
{
	struct pollfd p = { .events = POLLIN };
	struct kmtls_completion c;
	int app[3], peer[3], i, ret;
	uint64_t id[3];

	if (unshare(CLONE_NEWNET) || lo_up() || set_sysctl("agent_wait_ms", 60000))
		_exit(4);
	p.fd = open(DEV, O_RDWR | O_CLOEXEC);
	if (p.fd < 0)
		_exit(4);
	for (i = 0; i < 3; i++) {
		if (app_pair(&app[i], &peer[i]))
			_exit(4);
		ret = submit_default(p.fd, app[i], i == 2 ? 100 : TIMEOUT_MS, &id[i]);
		if (ret)
			snprintf(r->err, sizeof(r->err), "submit %d: %s", i, strerror(-ret));
		r->submitted += !ret;
	}
	if (poll(&p, 1, 10000) != 1)
		snprintf(r->err, sizeof(r->err), "the 100 ms deadline never fired");
	if (stat_get("Submitted") != 3 || stat_get("PendingNow") != 2 ||
	    stat_get("TimedOut") != 1 || stat_unaccounted())
		snprintf(r->err, sizeof(r->err),
			 "counters: Submitted %ld PendingNow %ld TimedOut %ld unaccounted %ld",
			 stat_get("Submitted"), stat_get("PendingNow"),
			 stat_get("TimedOut"), stat_unaccounted());
	send_report(rfd, r, 1);

	r->wait_ret = wait_req(p.fd, id[0], &c);
	close(p.fd);
	send_report(rfd, r, 2);
	_exit(0);
}

struct waiter {
	int dev;
	uint64_t id;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct kmtls_completion c;

	if (w->id)
		wait_req(w->dev, w->id, &c);
	else
		while (read(w->dev, &c, sizeof(c)) < 0 && errno == EINTR)
			;
	return NULL;
}

/* A stalled request and two threads blocked on it; always killed */
static void client_threads(int rfd, struct report *r)
{
	struct waiter w[2];
	pthread_t th[2];
	int app, peer, dev, ret, i;

	dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0 || app_pair(&app, &peer))
		_exit(4);
	w[0].dev = w[1].dev = dev;
	ret = submit_default(dev, app, TIMEOUT_MS, &w[0].id);
	if (ret)
		snprintf(r->err, sizeof(r->err), "submit: %s", strerror(-ret));
	r->submitted += !ret;
	w[1].id = 0;
	for (i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, wait_thread, &w[i]))
			_exit(4);
	send_report(rfd, r, 1);
	for (;;)
		pause();
}

static pid_t client_start(enum client_kind kind, struct client *c)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct report r = { 0 };
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	c->pid = fork();
	if (c->pid) {
		close(pfd[1]);
		c->fd = pfd[0];
		memset(&c->rep, 0, sizeof(c->rep));
		return c->pid;
	}
	close(pfd[0]);
	sigaction(SIGUSR1, &sa, NULL);
	switch (kind) {
	case SERVED:
		client_served(pfd[1], &r);
		break;
	case PENDING:
		client_pending(pfd[1], &r);
		break;
	default:
		client_threads(pfd[1], &r);
		break;
	}
	_exit(5);
}

/* The next report of a client within @ms; 0, or -1 */
static int client_report(struct client *c, int ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return read(c->fd, &c->rep, sizeof(c->rep)) == sizeof(c->rep) ? 0 : -1;
}

/*
 * Interrupt a client's blocking wait and take its final report within @ms.
 * A signal may come before the client blocks: send until it answers.
 */
static int client_interrupt(struct client *c, int ms)
{
	long long end = now_ms() + ms;

	do {
		kill(c->pid, SIGUSR1);
		if (!client_report(c, 50))
			return 0;
	} while (now_ms() < end);
	return -1;
}

/* Reap @pid within @ms: its wait status, or -1 if it still runs (killed) */
static int reap_within(pid_t pid, int ms)
{
	long long end = now_ms() + ms;
	int st;

	for (;;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		if (now_ms() >= end)
			break;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* After a failed round: no client may keep the module */
static void clients_kill(void)
{
	int i;

	for (i = 0; i < NR_CLIENTS; i++) {
		if (cl[i].pid > 0)
			reap_within(cl[i].pid, 0);
		cl[i].pid = 0;
	}
}

/*
 * Open and close /dev/kmtls while rmmod runs: each open either works or
 * fails with ENOENT (node gone), ENODEV or ENXIO (module going). Exits 0
 * once it has seen the module gone, 1 on any other error.
 */
static pid_t opener_start(void)
{
	pid_t pid = fork();
	long long end;
	int fd, gone = 0;

	if (pid)
		return pid;
	for (end = now_ms() + RMMOD_MS; gone < 3 && now_ms() < end;) {
		fd = open(DEV, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			gone = 0;
			usleep(1000);
			continue;
		}
		if (errno != ENOENT && errno != ENODEV && errno != ENXIO)
			_exit(1);
		gone++;
	}
	_exit(gone ? 0 : 2);
}

/* ---- checks ------------------------------------------------------------ */

/* Reading a file of the unloaded module fails (EIO or ENOENT) */
static int held_read(int fd)
{
	char buf[256];

	if (pread(fd, buf, sizeof(buf), 0) >= 0)
		return 0;
	return -errno;
}

/* ---- kmtlsd --------------------------------------------------------------- */

static int kmtlsd_start(struct proc *p)
{
	char conf[256];
	char *argv[] = {
		(char *)out_path("bin/kmtlsd"), "-c", conf, "--foreground",
		NULL,
	};
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/kmtlsd.conf", test_tmpdir());
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[kmtlsd]\nworkers = 2\n\n[kernel default]\ncert = %s\nkey = %s\nca = %s\n",
		pki_file("server.pem"), pki_file("server.key"), pki_file("ca.pem"));
	if (fclose(f))
		return -1;
	return proc_start(p, "kmtlsd.log", argv);
}

/* The last 60 lines of kmtlsd's log */
static void kmtlsd_dump(struct proc *p)
{
	static char lines[60][512];
	FILE *f = fopen(p->log, "r");
	int n = 0, i;

	while (f && fgets(lines[n % 60], sizeof(lines[0]), f))
		n++;
	for (i = n > 60 ? n - 60 : 0; i < n; i++)
		fprintf(stderr, "# kmtlsd: %s", lines[i % 60]);
	if (f)
		fclose(f);
}

/* Every counter of this namespace that is not 0, in one line */
static const char *counters(void)
{
	static const char *const names[] = {
		"Submitted", "Accepted", "Completed", "Failed", "TimedOut",
		"NoAgent", "QueueFull", "Cancelled", "AgentLost", "PendingNow",
		"InFlightNow",
	};
	static char buf[512];
	size_t i, len = 0;
	long v;

	buf[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		v = stat_get(names[i]);
		if (v)
			len += snprintf(buf + len, sizeof(buf) - len, " %s %ld", names[i], v);
	}
	return buf;
}

/* ---- the test -------------------------------------------------------------- */

FIXTURE(reload) {
	struct proc kmtlsd;
	bool was_loaded;
	bool record_cmd;
};

FIXTURE_SETUP(reload)
{
	memset(&self->kmtlsd, 0, sizeof(self->kmtlsd));
	self->was_loaded = module_loaded();
	if (geteuid())
		SKIP(return, "needs root (run in the guest: tools/vm/kmtls-vm)");
	if (access(module_path(), R_OK))
		SKIP(return, "%s: %s (make modules)", module_path(), strerror(errno));
	if (access("/proc/net/tls_stat", F_OK) && system("modprobe -q tls"))
		SKIP(return, "no kTLS in this kernel");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, kmtls_tls_global_init());
	if (self->was_loaded)
		ASSERT_EQ(0, module_unload_within(RMMOD_MS));
	/*
	 * Enabling an event also records command names through a probe on
	 * sched_switch, which patches the scheduler's code each time; under
	 * QEMU's TCG that patching once ended in an "int3" oops. Events
	 * without it test the same in kmtls.ko.
	 */
	self->record_cmd = !write_file(TRACEFS "options/record-cmd", "0");
	ASSERT_EQ(0, kmtlsd_start(&self->kmtlsd));
}

FIXTURE_TEARDOWN(reload)
{
	if (self->kmtlsd.pid > 0 && proc_stop(&self->kmtlsd, 10000))
		kmtlsd_dump(&self->kmtlsd);
	if (self->was_loaded && !module_loaded())
		EXPECT_EQ(0, module_load());
	if (self->record_cmd)
		write_file(TRACEFS "options/record-cmd", "1");
}

struct round_stats {
	long long max_rmmod_ms, max_round_ms, total_rmmod_ms;
	int held_errno[2];
};

/* One round; false (after logging why) if it went wrong */
static bool one_round(struct __test_metadata *_metadata, FIXTURE_DATA(reload) *self,
		      int round, struct round_stats *rs)
{
	bool kill_round = round % 2, ok = true, trace = round % 4 == 1;
	int held[3], i, ret, st;
	long long t0 = now_ms(), t;
	char path[64], *line;
	pid_t opener = 0;

	ret = module_load();
	if (ret) {
		TH_LOG("round %d: insmod: %s", round, strerror(-ret));
		return false;
	}
	if (trace)	/* tracepoints enabled across the unload */
		write_file(TRACEFS "events/kmtls/enable", "1");
	for (t = now_ms() + 20000; proc_log_count(&self->kmtlsd, SERVING) < round &&
	     now_ms() < t;)
		usleep(10000);
	if (proc_log_count(&self->kmtlsd, SERVING) < round) {
		TH_LOG("round %d: kmtlsd does not serve the new module", round);
		return false;
	}

	for (i = 0; i < NR_CLIENTS; i++)
		if (client_start(i, &cl[i]) < 0)
			return false;
	for (i = 0; i < NR_CLIENTS; i++) {
		if (client_report(&cl[i], 30000) || cl[i].rep.ready != 1) {
			TH_LOG("round %d: %s client never got ready", round, kind_name[i]);
			ok = false;
		} else if (cl[i].rep.err[0]) {
			TH_LOG("round %d: %s client: %s", round, kind_name[i], cl[i].rep.err);
			ok = false;
		}
	}
	if (ok && cl[SERVED].rep.served) {
		TH_LOG("round %d: the served request ended with %d", round, cl[SERVED].rep.served);
		ok = false;
	}
	/* Both stalled requests are with kmtlsd */
	if (ok && stat_settle("InFlightNow", 2, 10000) != 2) {
		TH_LOG("round %d: InFlightNow %ld, expected 2; counters:%s", round,
		       stat_get("InFlightNow"), counters());
		ok = false;
	}

	/* In use: the module stays */
	ret = syscall(SYS_delete_module, "kmtls", O_NONBLOCK) ? -errno : 0;
	if (ret != -EWOULDBLOCK) {
		TH_LOG("round %d: rmmod with clients: %s, expected EWOULDBLOCK",
		       round, ret ? strerror(-ret) : "succeeded");
		return false;
	}
	held[0] = open("/proc/net/kmtls_stat", O_RDONLY | O_CLOEXEC);
	held[1] = open(SYSCTL_DIR "max_pending", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/net/kmtls_stat", cl[PENDING].pid);
	held[2] = open(path, O_RDONLY | O_CLOEXEC);

	if (kill_round) {
		for (i = 0; i < NR_CLIENTS; i++)
			kill(cl[i].pid, SIGKILL);
		opener = opener_start();
	} else {
		kill(cl[THREADS].pid, SIGKILL);
		for (i = SERVED; i <= PENDING; i++) {
			if (client_interrupt(&cl[i], 10000) || cl[i].rep.ready != 2) {
				TH_LOG("round %d: %s client did not end", round, kind_name[i]);
				ok = false;
			} else if (cl[i].rep.wait_ret != -EINTR) {
				TH_LOG("round %d: %s client's wait returned %d, expected EINTR",
				       round, kind_name[i], cl[i].rep.wait_ret);
				ok = false;
			}
		}
		for (i = 0; i < NR_CLIENTS; i++) {
			st = reap_within(cl[i].pid, 10000);
			cl[i].pid = 0;
			if (st < 0 || (i != THREADS && st)) {
				TH_LOG("round %d: %s client: exit status %#x", round, kind_name[i], st);
				ok = false;
			}
		}
		/*
		 * Every request of this namespace ended exactly once: one
		 * served, the two stalled ones cancelled, or failed by kmtlsd
		 * when the peer's end closed first at exit.
		 */
		if (stat_settle("InFlightNow", 0, 5000) || stat_get("PendingNow") ||
		    stat_unaccounted() ||
		    stat_get("Submitted") != cl[SERVED].rep.submitted + cl[THREADS].rep.submitted ||
		    stat_get("Completed") != 1 ||
		    stat_get("Cancelled") + stat_get("Failed") != 2) {
			TH_LOG("round %d: counters:%s; unaccounted %ld", round,
			       counters(), stat_unaccounted());
			ok = false;
		}
	}

	t = now_ms();
	ret = module_unload_within(RMMOD_MS);
	t = now_ms() - t;
	if (ret) {
		TH_LOG("round %d: rmmod: %s after %lld ms (refcnt %d)", round,
		       strerror(-ret), t, module_refcnt());
		return false;
	}
	rs->total_rmmod_ms += t;
	if (t > rs->max_rmmod_ms)
		rs->max_rmmod_ms = t;

	for (i = 0; i < NR_CLIENTS; i++) {
		if (cl[i].pid && reap_within(cl[i].pid, 10000) < 0) {
			TH_LOG("round %d: %s client hung after rmmod", round, kind_name[i]);
			ok = false;
		}
		cl[i].pid = 0;
		close(cl[i].fd);
	}
	if (opener && (st = reap_within(opener, RMMOD_MS)) != 0) {
		TH_LOG("round %d: opener: exit status %#x (1: unexpected errno)", round, st);
		ok = false;
	}
	if (module_loaded() || !access(DEV, F_OK)) {
		TH_LOG("round %d: module or %s still there after rmmod", round, DEV);
		ok = false;
	}
	for (i = 0; i < 3; i++) {
		ret = held[i] >= 0 ? held_read(held[i]) : -EBADF;
		if (ret != -EIO && ret != -ENOENT && !(i == 2 && held[i] < 0)) {
			TH_LOG("round %d: reading held file %d after rmmod: %d", round, i, ret);
			ok = false;
		}
		if (i < 2)
			rs->held_errno[i] = -ret;
		if (held[i] >= 0)
			close(held[i]);
	}
	if (waitpid(self->kmtlsd.pid, &st, WNOHANG)) {
		TH_LOG("round %d: kmtlsd exited (%#x)", round, st);
		self->kmtlsd.pid = 0;
		ok = false;
	}
	line = kmsg_trouble();
	if (line) {
		TH_LOG("round %d: kernel: %s", round, line);
		free(line);
		ok = false;
	}
	t = now_ms() - t0;
	if (t > rs->max_round_ms)
		rs->max_round_ms = t;
	return ok;
}

TEST_F_TIMEOUT(reload, under_load, 900)
{
	const char *env = getenv("KMTLS_RELOAD_ROUNDS");
	int rounds = env && atoi(env) > 0 ? atoi(env) : ROUNDS, r;
	struct round_stats rs = { 0 };
	long long t0 = now_ms();

	for (r = 1; r <= rounds; r++) {
		if (!one_round(_metadata, self, r, &rs)) {
			clients_kill();
			kmtlsd_dump(&self->kmtlsd);
			if (module_loaded() && module_unload_within(RMMOD_MS))
				TH_LOG("the module stays loaded (refcnt %d)", module_refcnt());
			ASSERT_TRUE(false) TH_LOG("round %d of %d failed", r, rounds);
		}
	}
	TH_LOG("%d rounds in %lld ms; rmmod after the clients: max %lld ms, mean %lld ms; slowest round %lld ms; held files read %s / %s",
	       rounds, now_ms() - t0, rs.max_rmmod_ms, rs.total_rmmod_ms / rounds,
	       rs.max_round_ms, strerror(rs.held_errno[0]), strerror(rs.held_errno[1]));
	/* kmtlsd saw every unload and came back every time */
	EXPECT_EQ(rounds, proc_log_count(&self->kmtlsd, "kmtls.ko was unloaded"));
	EXPECT_EQ(rounds, proc_log_count(&self->kmtlsd, SERVING));
}

TEST_HARNESS_MAIN
