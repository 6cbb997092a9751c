// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Races in kmtls.ko, thousands of times over, with threads and processes:
 *
 *   submit_cancel_vs_done    submitters close /dev/kmtls (cancel) at
 *                            random moments while agents send DONE
 *   close_sockets_vs_done    the application closes both ends of its TCP
 *                            connection while the agent installs kTLS and
 *                            sends DONE, and a second agent thread closes
 *                            the accepted fd under that DONE
 *   agent_death_vs_submit    agent threads of one process open and close
 *                            their netlink sockets (the same port id comes
 *                            back) after a few requests, leaving some
 *                            unanswered, and the process is killed, while
 *                            submitters keep going
 *
 * Each request must complete exactly once, with the outcome that won: a
 * DONE succeeds exactly when its status is the one delivered, a request
 * left by a closed agent socket fails with ECONNABORTED, a live agent's
 * DONE is never refused, no request goes to two agents. Afterwards the
 * counters balance and the gauges are 0, no descriptor, TCP socket or
 * module reference is left, the module unloads, and the kernel log is
 * clean. kmtls_test.c's race_exactly_once covers DONE against the
 * deadline and close() in lock step.
 *
 * Runs as root in the guest (tools/vm/kmtls-vm), each test in a network
 * namespace of its own. The fake agent is kmtls_nl.h's.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kmod_util.h"
#include "kmtls_nl.h"
#include "kselftest_harness.h"

#define MAX_REQ		4096

/* DONE as the agent saw it */
enum { DONE_NONE, DONE_SENDING, DONE_RETURNED };

/* One request; in shared memory, written by the submitter and the agent */
struct rec {
	uint64_t id;
	int submit_ret;		/* 0, or why the kernel refused it */
	int submitted;
	int accepted;		/* ACCEPTs that returned it: at most 1 */
	int left;		/* its agent closed the socket without DONE */
	int done_state;
	int done_ret;		/* DONE's answer (DONE_RETURNED) */
	int done_status;	/* what DONE reported, as a completion says it */
	int completions;	/* completions the submitter read */
	int status;		/* the completion's status */
};

struct shared {
	int stop;		/* agents: leave */
	int agent_errors;	/* unexpected errors in agents */
	char agent_err[160];
	struct rec rec[MAX_REQ];
};

static struct shared *sh;

static const struct kdone done_ok = {
	.tls_version = 0x0304, .cipher = 0x1301, .subject = "CN=race",
};

/* Queue @fd with the record's index as peer name; 0 or -errno */
static int submit_idx(int dev, int fd, uint32_t timeout_ms, int idx)
{
	struct kmtls_submit sub;

	submit_init(&sub, fd, KMTLS_ROLE_CLIENT, timeout_ms, idx);
	snprintf(sub.peer_name, sizeof(sub.peer_name), "r%d", idx);
	if (ioctl(dev, KMTLS_IOC_SUBMIT, &sub) < 0)
		return -errno;
	sh->rec[idx].id = sub.id;
	return 0;
}

/* Take a completion into its record */
static void record_completion(const struct kmtls_completion *c)
{
	struct rec *r;

	if (c->user_data >= MAX_REQ)
		return;
	r = &sh->rec[c->user_data];
	__atomic_fetch_add(&r->completions, 1, __ATOMIC_SEQ_CST);
	r->status = c->status;
}

/* TCP sockets of this namespace other than listeners and TIME_WAIT */
static int live_tcp_sockets(void)
{
	char line[256];
	unsigned int st;
	int n = 0;
	FILE *f = fopen("/proc/net/tcp", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, " %*d: %*s %*s %x", &st) == 1 && st != 0x0a && st != 0x06)
			n++;
	if (f)
		fclose(f);
	return n;
}

static int live_tcp_settle(int ms)
{
	long long end = now_ms() + ms;
	int n;

	while ((n = live_tcp_sockets()) && now_ms() < end)
		usleep(20000);
	return n;
}

/* ---- the fake agent: threads in a child process --------------------------- */

struct agent_cfg {
	int threads;
	int life;		/* requests per netlink socket; 0: one socket */
	int done_pct;		/* requests answered (else left to the close) */
	int ok_pct;		/* answers that succeed (kTLS), else EIO */
	int delay_us;		/* before DONE, random up to this */
	bool close_race;	/* close the accepted fd while DONE goes out */
};

static void agent_error(const char *what, int err)
{
	if (!__atomic_fetch_add(&sh->agent_errors, 1, __ATOMIC_SEQ_CST))
		snprintf(sh->agent_err, sizeof(sh->agent_err), "%s: %s", what, strerror(-err));
}

struct closer {
	int fd;
	int delay_us;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;

	if (c->delay_us)
		usleep(c->delay_us);
	close(c->fd);
	return NULL;
}

/* Answer one accepted request (or not); closes @fd unless it is left */
static bool agent_answer(const struct agent_cfg *cfg, struct knl *k, int fd,
			 struct rec *r, unsigned int *seed)
{
	struct kdone fail = { .status = EIO };
	struct closer cl = { .fd = fd };
	pthread_t th;
	bool ok;

	if ((int)(rand_r(seed) % 100) >= cfg->done_pct)
		return false;
	if (cfg->delay_us)
		usleep(rand_r(seed) % cfg->delay_us);
	ok = (int)(rand_r(seed) % 100) < cfg->ok_pct && !fake_ktls(fd);
	r->done_status = ok ? 0 : -EIO;
	__atomic_store_n(&r->done_state, DONE_SENDING, __ATOMIC_SEQ_CST);
	if (cfg->close_race) {
		cl.delay_us = rand_r(seed) % 200;
		if (pthread_create(&th, NULL, close_later, &cl))
			agent_error("pthread_create", -errno);
	}
	r->done_ret = knl_done(k, fd, ok ? &done_ok : &fail);
	__atomic_store_n(&r->done_state, DONE_RETURNED, __ATOMIC_SEQ_CST);
	if (cfg->close_race)
		pthread_join(th, NULL);
	else
		close(fd);
	return true;
}

static void *agent_thread(void *arg)
{
	const struct agent_cfg *cfg = arg;
	unsigned int seed = getpid() ^ (unsigned int)pthread_self();
	int left[64], nleft, n, ret, idx, i;
	struct kaccept acc;
	struct knl k;

	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		ret = knl_open(&k);
		if (!ret)
			ret = knl_join(&k);
		if (ret) {
			agent_error("netlink socket", ret);
			knl_close(&k);
			usleep(10000);
			continue;
		}
		for (n = nleft = 0; (!cfg->life || n < cfg->life) &&
		     !__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST);) {
			ret = knl_accept(&k, &acc);
			if (ret == -EAGAIN) {
				knl_wait_ready(&k, 20);
				continue;
			}
			if (ret == -ENOBUFS)	/* reply lost: it stays queued */
				continue;
			if (ret) {
				agent_error("ACCEPT", ret);
				break;
			}
			n++;
			idx = atoi(acc.peer_name + 1);
			if (idx < 0 || idx >= MAX_REQ) {
				agent_error("ACCEPT returned an unknown request", -EINVAL);
				close(acc.sockfd);
				continue;
			}
			__atomic_fetch_add(&sh->rec[idx].accepted, 1, __ATOMIC_SEQ_CST);
			if (agent_answer(cfg, &k, acc.sockfd, &sh->rec[idx], &seed))
				continue;
			sh->rec[idx].left = 1;
			left[nleft++] = acc.sockfd;
			if (nleft == 64)
				break;
		}
		knl_close(&k);	/* fails what is left with ECONNABORTED */
		for (i = 0; i < nleft; i++)
			close(left[i]);
	}
	return NULL;
}

static pid_t agent_start(const struct agent_cfg *cfg)
{
	pthread_t th[8];
	pid_t pid = fork();
	int i;

	if (pid)
		return pid;
	for (i = 0; i < cfg->threads; i++)
		if (pthread_create(&th[i], NULL, agent_thread, (void *)cfg))
			_exit(2);
	for (i = 0; i < cfg->threads; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

static void agent_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	__atomic_store_n(&sh->stop, 0, __ATOMIC_SEQ_CST);
}

/* ---- submitters ------------------------------------------------------------ */

struct submitter {
	int first, n;		/* records first .. first + n - 1 */
	int timeout_ms;
	int dev;		/* shared file (close_sockets, agent_death), or -1 */
	int close_us;		/* close the sockets this long after submit, up to */
	unsigned int seed;
};

/* Per request: open, submit, then cancel at once, a bit later, or wait */
static void *cancel_submitter(void *arg)
{
	struct submitter *s = arg;
	struct kmtls_completion c;
	int i, dev, cfd, sfd;

	for (i = s->first; i < s->first + s->n; i++) {
		struct rec *r = &sh->rec[i];

		dev = open(DEV, O_RDWR | O_CLOEXEC);
		if (dev < 0 || tcp_pair_af(AF_INET, &cfd, &sfd)) {
			r->submit_ret = -errno;
			if (dev >= 0)
				close(dev);
			continue;
		}
		r->submit_ret = submit_idx(dev, cfd, s->timeout_ms, i);
		r->submitted = !r->submit_ret;
		if (r->submitted && i % 3 == 2 && !wait_req(dev, r->id, &c))
			record_completion(&c);
		else if (i % 3 == 1)
			usleep(rand_r(&s->seed) % 500);
		close(dev);
		close(cfd);
		close(sfd);
	}
	return NULL;
}

static int submitters_done;

/* Per request: submit on the shared file, close both ends after a while */
static void *sock_submitter(void *arg)
{
	struct submitter *s = arg;
	int i, cfd, sfd;

	for (i = s->first; i < s->first + s->n; i++) {
		struct rec *r = &sh->rec[i];

		if (tcp_pair_af(AF_INET, &cfd, &sfd)) {
			r->submit_ret = -errno;
			continue;
		}
		r->submit_ret = submit_idx(s->dev, cfd, s->timeout_ms, i);
		r->submitted = !r->submit_ret;
		if (s->close_us)
			usleep(rand_r(&s->seed) % s->close_us);
		close(cfd);
		close(sfd);
	}
	__atomic_fetch_add(&submitters_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

struct reader {
	int dev;
	int want;		/* completions to read */
	int ms;			/* give up after this long without one */
	int got;
};

static void *reader_thread(void *arg)
{
	struct reader *rd = arg;
	struct pollfd p = { .fd = rd->dev, .events = POLLIN };
	struct kmtls_completion c[16];
	long long idle = now_ms() + rd->ms;
	ssize_t n;
	int i;

	while (rd->got < rd->want && now_ms() < idle) {
		if (poll(&p, 1, 200) != 1)
			continue;
		n = read(rd->dev, c, sizeof(c));
		for (i = 0; i < n / (ssize_t)sizeof(c[0]); i++)
			record_completion(&c[i]);
		if (n > 0) {
			rd->got += n / sizeof(c[0]);
			idle = now_ms() + rd->ms;
		}
	}
	return NULL;
}

/* Let DONEs under way return before the agents are killed */
static void agents_quiesce(void)
{
	long long end = now_ms() + 5000;
	int i, busy;

	do {
		for (i = busy = 0; i < MAX_REQ; i++)
			busy += __atomic_load_n(&sh->rec[i].done_state,
						__ATOMIC_SEQ_CST) == DONE_SENDING;
		if (busy)
			usleep(10000);
	} while (busy && now_ms() < end);
}

/* ---- fixture ---------------------------------------------------------------- */

FIXTURE(race) {
	int fds0;
};

FIXTURE_SETUP(race)
{
	if (geteuid())
		SKIP(return, "needs root (run in the guest: tools/vm/kmtls-vm)");
	if (access(DEV, F_OK))
		SKIP(return, DEV " missing: kmtls.ko not loaded");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, set_sysctl("max_pending", 65536));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	signal(SIGPIPE, SIG_IGN);
	self->fds0 = count_fds();
}

FIXTURE_TEARDOWN(race)
{
	if (sh && sh != MAP_FAILED)
		munmap(sh, sizeof(*sh));
	sh = NULL;
}

/* Nothing left: counters balanced, no fd, socket or module reference */
static void check_no_leaks(struct __test_metadata *_metadata, int fds0, int n)
{
	EXPECT_EQ(n, stat_get("Submitted"));
	EXPECT_EQ(0, stat_settle("PendingNow", 0, 5000));
	EXPECT_EQ(0, stat_settle("InFlightNow", 0, 5000));
	EXPECT_EQ(0, stat_unaccounted());
	EXPECT_EQ(fds0, count_fds());
	EXPECT_EQ(0, live_tcp_settle(10000));
	EXPECT_EQ(0, module_refcnt_settle(0, 5000));
	EXPECT_EQ(0, sh->agent_errors) TH_LOG("agent: %s", sh->agent_err);
}

/*
 * Cancel against DONE: 2 threads submit 1500 requests, each on a file of
 * its own, and close it at once, after up to 0.5 ms, or after reading the
 * completion; 2 agents answer within up to 0.3 ms.
 */
TEST_F_TIMEOUT(race, submit_cancel_vs_done, 300)
{
	enum { N = 1500, T = 2 };
	struct agent_cfg cfg = { .threads = 2, .done_pct = 100, .ok_pct = 25, .delay_us = 300 };
	struct submitter s[T];
	long done_ok = 0, ok = 0, failed = 0, waited = 0;
	long long t0 = now_ms();
	pthread_t th[T];
	pid_t agent;
	int i;

	agent = agent_start(&cfg);
	ASSERT_LT(0, agent);
	for (i = 0; i < T; i++) {
		s[i] = (struct submitter){ .first = i * N / T, .n = N / T,
					   .timeout_ms = 10000, .seed = i + 1 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, cancel_submitter, &s[i]));
	}
	for (i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	agents_quiesce();
	agent_stop(agent);

	for (i = 0; i < N; i++) {
		struct rec *r = &sh->rec[i];

		ASSERT_EQ(0, r->submit_ret) TH_LOG("request %d", i);
		ASSERT_GE(1, r->accepted) TH_LOG("request %d accepted twice", i);
		ASSERT_GE(1, r->completions) TH_LOG("request %d completed twice", i);
		if (r->done_state == DONE_RETURNED) {
			ASSERT_TRUE(!r->done_ret || r->done_ret == -ENOENT)
				TH_LOG("request %d: DONE %d", i, r->done_ret);
			done_ok += !r->done_ret;
			ok += !r->done_ret && !r->done_status;
			failed += !r->done_ret && r->done_status;
		}
		if (i % 3 == 2) {
			/* It waited for its completion: DONE's, which won */
			waited++;
			ASSERT_EQ(1, r->completions) TH_LOG("request %d", i);
			ASSERT_EQ(DONE_RETURNED, r->done_state) TH_LOG("request %d", i);
			ASSERT_EQ(0, r->done_ret) TH_LOG("request %d", i);
			ASSERT_EQ(r->done_status, r->status) TH_LOG("request %d", i);
		} else {
			ASSERT_EQ(0, r->completions);
		}
	}
	EXPECT_EQ(ok, stat_get("Completed"));
	EXPECT_EQ(failed, stat_get("Failed"));
	EXPECT_EQ(N - done_ok, stat_get("Cancelled"));
	EXPECT_EQ(0, stat_get("TimedOut"));
	EXPECT_EQ(0, stat_get("AgentLost"));
	check_no_leaks(_metadata, self->fds0, N);
	TH_LOG("%d requests in %lld ms: %ld answered (%ld waited for), %ld cancelled",
	       N, now_ms() - t0, done_ok, waited, N - done_ok);
}

/*
 * The sockets against DONE: the application closes both ends of each
 * connection up to 5 ms after submitting, the agent installs kTLS and
 * answers while a second thread closes the accepted fd. Unanswered
 * requests time out after 0.5 s.
 */
TEST_F_TIMEOUT(race, close_sockets_vs_done, 300)
{
	enum { N = 1000 };
	/* One thread: another would get the closed fd's number for its own */
	struct agent_cfg cfg = { .threads = 1, .done_pct = 100, .ok_pct = 50,
				 .delay_us = 100, .close_race = true };
	struct submitter s = { .first = 0, .n = N, .timeout_ms = 500, .close_us = 5000, .seed = 7 };
	struct reader rd = { .want = N, .ms = 20000 };
	long answered = 0, timedout = 0, ok = 0, failed = 0;
	long long t0 = now_ms();
	pthread_t th, rth;
	pid_t agent;
	int i;

	s.dev = rd.dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, s.dev);
	agent = agent_start(&cfg);
	ASSERT_LT(0, agent);
	ASSERT_EQ(0, pthread_create(&rth, NULL, reader_thread, &rd));
	ASSERT_EQ(0, pthread_create(&th, NULL, sock_submitter, &s));
	pthread_join(th, NULL);
	pthread_join(rth, NULL);
	agents_quiesce();
	agent_stop(agent);
	EXPECT_EQ(N, rd.got);

	for (i = 0; i < N; i++) {
		struct rec *r = &sh->rec[i];

		ASSERT_EQ(0, r->submit_ret) TH_LOG("request %d", i);
		ASSERT_GE(1, r->accepted) TH_LOG("request %d accepted twice", i);
		ASSERT_EQ(1, r->completions) TH_LOG("request %d", i);
		if (r->done_state == DONE_RETURNED && !r->done_ret) {
			ASSERT_EQ(r->done_status, r->status) TH_LOG("request %d", i);
			answered++;
			ok += !r->status;
			failed += !!r->status;
		} else {
			/* Not answered (fd closed first: EBADF), or too late */
			ASSERT_EQ(-ETIMEDOUT, r->status)
				TH_LOG("request %d: DONE %d, status %d", i, r->done_ret, r->status);
			ASSERT_TRUE(r->done_state != DONE_RETURNED ||
				    r->done_ret == -EBADF || r->done_ret == -ENOENT)
				TH_LOG("request %d: DONE %d", i, r->done_ret);
			timedout++;
		}
	}
	EXPECT_EQ(ok, stat_get("Completed"));
	EXPECT_EQ(failed, stat_get("Failed"));
	EXPECT_EQ(timedout, stat_get("TimedOut"));
	close(s.dev);
	check_no_leaks(_metadata, self->fds0, N);
	TH_LOG("%d requests in %lld ms: %ld answered (%ld with kTLS), %ld timed out",
	       N, now_ms() - t0, answered, ok, timedout);
}

/*
 * Agents come and go under a steady stream of requests: 3 threads of one
 * process each close their netlink socket after 1 to 4 requests, leaving
 * half unanswered, and the process is killed every 0.2 s and started
 * again. A last agent answers what is left.
 */
TEST_F_TIMEOUT(race, agent_death_vs_submit, 300)
{
	enum { N = 1500, T = 2 };
	struct agent_cfg churn = { .threads = 3, .life = 4, .done_pct = 50, .ok_pct = 25 };
	struct agent_cfg last = { .threads = 1, .done_pct = 100 };
	long lost = 0, ok = 0, failed = 0, kills = 0;
	struct submitter s[T];
	struct reader rd[T];
	pthread_t th[T], rth[T];
	long long t0 = now_ms();
	pid_t agent;
	int i;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 60000));
	submitters_done = 0;
	agent = agent_start(&churn);
	ASSERT_LT(0, agent);
	for (i = 0; i < T; i++) {
		s[i] = (struct submitter){ .first = i * N / T, .n = N / T,
					   .timeout_ms = 60000, .seed = i + 1 };
		rd[i] = (struct reader){ .want = N / T, .ms = 60000 };
		s[i].dev = rd[i].dev = open(DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, s[i].dev);
		ASSERT_EQ(0, pthread_create(&rth[i], NULL, reader_thread, &rd[i]));
		ASSERT_EQ(0, pthread_create(&th[i], NULL, sock_submitter, &s[i]));
	}
	/* Kill the agent process now and then while requests flow */
	while (__atomic_load_n(&submitters_done, __ATOMIC_SEQ_CST) < T) {
		usleep(200000);
		agent_stop(agent);
		kills++;
		agent = agent_start(&churn);
		ASSERT_LT(0, agent);
	}
	for (i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	agent_stop(agent);
	agent = agent_start(&last);
	ASSERT_LT(0, agent);
	for (i = 0; i < T; i++) {
		pthread_join(rth[i], NULL);
		EXPECT_EQ(N / T, rd[i].got);
	}
	agents_quiesce();
	agent_stop(agent);

	for (i = 0; i < N; i++) {
		struct rec *r = &sh->rec[i];

		ASSERT_EQ(0, r->submit_ret) TH_LOG("request %d", i);
		/* Unrecorded only when its agent died right after the ACCEPT */
		ASSERT_GE(1, r->accepted) TH_LOG("request %d accepted twice", i);
		ASSERT_TRUE(r->accepted || r->status == -ECONNABORTED)
			TH_LOG("request %d: status %d, never accepted", i, r->status);
		ASSERT_EQ(1, r->completions) TH_LOG("request %d", i);
		if (r->done_state == DONE_RETURNED) {
			/* A live agent's DONE for its own request: never refused */
			ASSERT_EQ(0, r->done_ret) TH_LOG("request %d: DONE %d", i, r->done_ret);
			ASSERT_EQ(r->done_status, r->status) TH_LOG("request %d", i);
		} else if (r->done_state == DONE_SENDING) {
			/* The agent was killed around its DONE */
			ASSERT_TRUE(r->status == r->done_status || r->status == -ECONNABORTED)
				TH_LOG("request %d: status %d", i, r->status);
		} else {
			ASSERT_EQ(-ECONNABORTED, r->status)
				TH_LOG("request %d: accepted %d, left %d", i, r->accepted, r->left);
		}
		lost += r->status == -ECONNABORTED;
		ok += !r->status;
		failed += r->status == -EIO;
	}
	EXPECT_EQ(lost, stat_get("AgentLost"));
	EXPECT_EQ(ok, stat_get("Completed"));
	EXPECT_EQ(failed, stat_get("Failed"));
	EXPECT_EQ(0, stat_get("TimedOut"));
	for (i = 0; i < T; i++)
		close(s[i].dev);
	check_no_leaks(_metadata, self->fds0, N);
	TH_LOG("%d requests in %lld ms: %ld served, %ld failed, %ld lost with their agent; agent killed %ld times",
	       N, now_ms() - t0, ok, failed, lost, kills);
}

/* ---- one port id, two sockets -------------------------------------------- */

struct reuse {
	struct knl tmpl;	/* family and group, resolved once */
	uint32_t tgid;		/* the port id autobind tries first */
	pthread_barrier_t step;
	int closing;		/* A is about to close its socket */
	int iters;
	long hits;		/* B got the port id while A closed */
};

/* A socket of the family bound by autobind; its port id in k->portid */
static int reuse_open(struct reuse *ru, struct knl *k)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);

	*k = ru->tmpl;
	k->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (k->fd < 0)
		return -errno;
	if (bind(k->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(k->fd, (struct sockaddr *)&sa, &len)) {
		close(k->fd);
		return -errno;
	}
	k->portid = sa.nl_pid;
	return 0;
}

/* ACCEPT one request and note it; the index, or -1 */
static int reuse_accept(struct knl *k, struct kaccept *acc)
{
	int ret = knl_accept(k, acc), idx;

	if (ret) {
		agent_error("ACCEPT", ret);
		return -1;
	}
	idx = atoi(acc->peer_name + 1);
	if (idx < 0 || idx >= MAX_REQ) {
		agent_error("ACCEPT returned an unknown request", -EINVAL);
		return -1;
	}
	__atomic_fetch_add(&sh->rec[idx].accepted, 1, __ATOMIC_SEQ_CST);
	return idx;
}

static void reuse_done(struct knl *k, int fd, int idx)
{
	struct rec *r = &sh->rec[idx];

	r->done_status = -EIO;
	r->done_state = DONE_SENDING;
	r->done_ret = knl_done(k, fd, &(struct kdone){ .status = EIO });
	r->done_state = DONE_RETURNED;
}

/* A: takes a request with the port id, answers every other one, closes */
static void *reuse_a(void *arg)
{
	struct reuse *ru = arg;
	struct kaccept acc;
	struct knl k;
	int i, idx, tries;

	for (i = 0; i < ru->iters; i++) {
		pthread_barrier_wait(&ru->step);
		for (tries = 0; !reuse_open(ru, &k) && k.portid != ru->tgid &&
		     tries < 100; tries++) {
			close(k.fd);
			usleep(100);
		}
		idx = reuse_accept(&k, &acc);
		if (idx >= 0 && i % 2)
			reuse_done(&k, acc.sockfd, idx);
		else if (idx >= 0)
			sh->rec[idx].left = 1;
		__atomic_store_n(&ru->closing, 1, __ATOMIC_SEQ_CST);
		close(k.fd);
		if (idx >= 0)
			close(acc.sockfd);
		pthread_barrier_wait(&ru->step);
	}
	return NULL;
}

/*
 * B: binds a fresh socket to A's port id over and over until that works,
 * then at once ACCEPT and DONE
 */
static void *reuse_b(void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct reuse *ru = arg;
	struct kaccept acc;
	long long end;
	struct knl k;
	int i, idx;
	bool got;

	sa.nl_pid = ru->tgid;
	for (i = 0; i < ru->iters; i++) {
		k = ru->tmpl;
		k.portid = ru->tgid;
		k.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
		pthread_barrier_wait(&ru->step);
		while (!__atomic_load_n(&ru->closing, __ATOMIC_SEQ_CST))
			;
		for (got = false, end = now_ms() + 1000; !got && now_ms() < end;)
			got = !bind(k.fd, (struct sockaddr *)&sa, sizeof(sa));
		if (got) {
			ru->hits++;
			idx = reuse_accept(&k, &acc);
			if (idx >= 0) {
				reuse_done(&k, acc.sockfd, idx);
				close(acc.sockfd);
			}
		}
		close(k.fd);
		__atomic_store_n(&ru->closing, 0, __ATOMIC_SEQ_CST);
		pthread_barrier_wait(&ru->step);
	}
	return NULL;
}

/*
 * An agent's port id is free again as soon as its socket is unhashed, but
 * the kernel hears of the release a little later. Thread A of one process
 * accepts a request and closes its socket; thread B binds until it gets
 * the same port id and at once accepts and answers another. B's request
 * must stay B's: its DONE succeeds; A's unanswered one fails with
 * ECONNABORTED.
 */
TEST_F_TIMEOUT(race, portid_reuse_vs_accept, 300)
{
	enum { N = 1500 };
	struct reader rd = { .want = 0, .ms = 20000 };
	long long t0 = now_ms();
	pthread_t ta, tb;
	struct reuse ru = { .iters = N };
	int i, j, cfd, sfd, dev, n = 0;

	ASSERT_EQ(0, knl_open(&ru.tmpl));
	knl_close(&ru.tmpl);
	ru.tgid = getpid();
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, pthread_barrier_init(&ru.step, NULL, 3));
	ASSERT_EQ(0, pthread_create(&ta, NULL, reuse_a, &ru));
	ASSERT_EQ(0, pthread_create(&tb, NULL, reuse_b, &ru));
	for (i = 0; i < N; i++) {
		for (j = 0; j < 2; j++, n++) {
			ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
			sh->rec[n].submit_ret = submit_idx(dev, cfd, 60000, n);
			close(cfd);
			close(sfd);
		}
		pthread_barrier_wait(&ru.step);
		pthread_barrier_wait(&ru.step);
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	/* Requests B never got (it lost the port id race) are still queued */
	for (i = 0; i < n; i++)
		rd.want += sh->rec[i].accepted || sh->rec[i].left;
	rd.dev = dev;
	reader_thread(&rd);
	EXPECT_EQ(rd.want, rd.got);

	for (i = 0; i < n; i++) {
		struct rec *r = &sh->rec[i];

		ASSERT_EQ(0, r->submit_ret) TH_LOG("request %d", i);
		ASSERT_GE(1, r->accepted) TH_LOG("request %d accepted twice", i);
		if (!r->accepted)
			continue;
		ASSERT_EQ(1, r->completions)
			TH_LOG("request %d (%s): DONE %s %d, left %d", i, i % 2 ? "B" : "A",
			       r->done_state == DONE_RETURNED ? "returned" : "not sent",
			       r->done_ret, r->left);
		if (r->done_state == DONE_RETURNED) {
			ASSERT_EQ(0, r->done_ret)
				TH_LOG("request %d (%s): DONE %d, status %d", i,
				       i % 2 ? "B" : "A", r->done_ret, r->status);
			ASSERT_EQ(-EIO, r->status) TH_LOG("request %d", i);
		} else {
			ASSERT_EQ(-ECONNABORTED, r->status) TH_LOG("request %d", i);
		}
	}
	close(dev);		/* cancels what B never took */
	EXPECT_EQ(0, sh->agent_errors) TH_LOG("agent: %s", sh->agent_err);
	EXPECT_EQ(0, stat_settle("PendingNow", 0, 5000));
	EXPECT_EQ(0, stat_settle("InFlightNow", 0, 5000));
	EXPECT_EQ(0, stat_unaccounted());
	EXPECT_EQ(self->fds0, count_fds());
	EXPECT_EQ(0, module_refcnt_settle(0, 5000));
	TH_LOG("%d rounds in %lld ms; B took the port id %ld times",
	       N, now_ms() - t0, ru.hits);
	pthread_barrier_destroy(&ru.step);
}

/* Last (fixtures run in order): unload, reload, and a clean kernel log */
FIXTURE(zz_race) {
};

FIXTURE_SETUP(zz_race)
{
	if (geteuid() || !module_loaded())
		SKIP(return, "needs root and kmtls.ko loaded");
}

FIXTURE_TEARDOWN(zz_race)
{
}

TEST_F(zz_race, unload_reload_clean)
{
	char *line;

	if (access(module_path(), R_OK))
		SKIP(return, "%s: %s", module_path(), strerror(errno));
	ASSERT_EQ(0, module_refcnt_settle(0, 5000));
	ASSERT_EQ(0, module_unload_within(5000));
	ASSERT_EQ(0, module_load());
	line = kmsg_trouble();
	if (line)
		TH_LOG("kernel: %s", line);
	EXPECT_EQ(NULL, line);
	free(line);
}

TEST_HARNESS_MAIN
