// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A worker: one thread, one epoll set, one SO_REUSEPORT socket per listener,
 * and every connection it accepted for its whole life. Nothing is shared with
 * other workers but the listeners' TLS contexts and connection counts, and
 * around accept4 the lock that refusing connections out of descriptors
 * needs (below), so the relay takes no locks. Level-triggered epoll; interest
 * is recomputed from the relay state after each event, which is what gives
 * backpressure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "resume_cache.h"
#include "worker.h"

#define TICK_MS 100
#define MAX_EVENTS 256
/* epoll data below this is a listener index + 1; above, a conn_end. */
#define LISTENER_TAG_MAX 4096

/*
 * Out of descriptors, a connection is refused by closing a spare (/dev/null,
 * kept open for this), accepting the connection on the number it freed,
 * closing that and opening the spare again: the kernel's queue would
 * otherwise keep the listener readable and the worker spinning. Workers
 * share one descriptor table, so an accept4 in another worker between the
 * spare's close and the accept would take the number and the spare would be
 * gone for good. Hence every accept4 holds accept_lock for reading and a
 * refusal holds it for writing, and the spares are one pool that any worker
 * refuses with. One taken by something else (a backend socket, a pipe) is
 * opened again from the next tick once a number is free; while none can be
 * had, a worker takes its listeners out of epoll for SHED_PAUSE_MS instead
 * of spinning on them, and their clients wait in the queue.
 */
#define SPARES_MAX 4
#define SHED_PAUSE_MS 100

static pthread_rwlock_t accept_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct {
	int fd[SPARES_MAX];
	int n;		/* open */
	int want;	/* one per worker, SPARES_MAX at most */
	int workers;
} spares;		/* under accept_lock held for writing */

/* Open the missing spares while numbers are free; under accept_lock (write). */
static int spares_fill(void)
{
	int fd;

	while (spares.n < spares.want) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		spares.fd[spares.n++] = fd;
	}
	return 0;
}

/* One more worker (@add 1) or one less (-1): the pool follows. */
static int spares_adjust(int add)
{
	int ret;

	pthread_rwlock_wrlock(&accept_lock);
	spares.workers += add;
	spares.want = spares.workers < SPARES_MAX ? spares.workers : SPARES_MAX;
	while (spares.n > spares.want)
		close(spares.fd[--spares.n]);
	ret = spares_fill();
	pthread_rwlock_unlock(&accept_lock);
	return ret;
}

/* From the tick: a spare lost to another descriptor comes back once it can. */
static void spares_refill(void)
{
	int missing;

	pthread_rwlock_rdlock(&accept_lock);
	missing = spares.n < spares.want;
	pthread_rwlock_unlock(&accept_lock);
	if (missing) {
		pthread_rwlock_wrlock(&accept_lock);
		spares_fill();
		pthread_rwlock_unlock(&accept_lock);
	}
}

/* Listener @i's socket into the worker's epoll set. */
static int listener_watch(struct kmtls_worker *w, int i)
{
	/* Exclusive: a shared (unix) socket wakes one worker, not all. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = i + 1 };

	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfds[i], &ev);
}

uint64_t kmtls_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kmtls_worker_init(struct kmtls_worker *w, int id,
		      struct kmtls_listener *ls, int n, char *err,
		      size_t errlen)
{
	int i;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->listeners = ls;
	w->n_listeners = n;
	w->spare_counted = 1;
	if (spares_adjust(1)) {
		snprintf(err, errlen, "worker %d: cannot open /dev/null, the descriptor kept to refuse connections with when out of them: %s",
			 id, strerror(errno));
		return -1;
	}
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->lfds = calloc(n, sizeof(int));
	w->sigcache = calloc(1, sizeof(*w->sigcache));
	w->sessions = calloc(n, sizeof(*w->sessions));
	if (w->epfd < 0 || !w->lfds || !w->sigcache || !w->sessions) {
		snprintf(err, errlen, "worker %d: %s", id, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++)
		w->lfds[i] = -1;
	for (i = 0; i < n; i++) {
		w->lfds[i] = kmtls_listener_socket(&ls[i], err, errlen);
		if (w->lfds[i] < 0)
			return -1;
		if (listener_watch(w, i)) {
			snprintf(err, errlen, "worker %d: epoll: %s", id, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Register @end for @events, or change its registration to them. */
static int watch_set(struct kmtls_worker *w, struct conn_end *end, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = end };
	int op = end->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (epoll_ctl(w->epfd, op, end->fd, &ev))
		return -1;
	end->registered = 1;
	end->events = events;
	return 0;
}

int kmtls_worker_watch(struct kmtls_worker *w, struct conn_end *end,
		       uint32_t events)
{
	if (end->registered ? end->events == events : !events)
		return 0;	/* nothing to change; nothing to wait for yet */
	return watch_set(w, end, events);
}

int kmtls_worker_watch_hangup(struct kmtls_worker *w, struct conn_end *end)
{
	if (end->registered && !end->events)
		return 0;
	return watch_set(w, end, 0);
}

void kmtls_saved_session_drop(struct saved_session *s)
{
	if (s->sess)
		wolfSSL_SESSION_free(s->sess);
	kmtls_policy_put(s->policy);
	s->sess = NULL;
	s->policy = NULL;
}

void kmtls_worker_unwatch(struct kmtls_worker *w, struct conn_end *end)
{
	if (end->registered)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, end->fd, NULL);
	end->registered = 0;
	end->events = 0;
}

/*
 * Out of descriptors (see spares above). An episode is logged when it
 * begins and, from tick(), once no accept had failed for SHED_QUIET_MS:
 * every episode shows, without a line per client.
 */
#define SHED_QUIET_MS 1000

/* Not even a spare: stop polling the listeners for a while (tick() resumes). */
static void listeners_pause(struct kmtls_worker *w)
{
	int i;

	for (i = 0; i < w->n_listeners; i++)
		if (w->lfds[i] >= 0)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->lfds[i], NULL);
	w->paused = 1;
	w->paused_until_ms = kmtls_now_ms() + SHED_PAUSE_MS;
	w->shed_waits++;
}

static void listeners_resume(struct kmtls_worker *w, uint64_t now)
{
	int i;

	if (!w->paused || now < w->paused_until_ms)
		return;
	w->paused = 0;
	for (i = 0; i < w->n_listeners; i++)
		if (w->lfds[i] >= 0 && listener_watch(w, i))
			log_err("worker %d: listener %s: epoll: %s: not accepting on it any more; restart kmtlsd",
				w->id, w->listeners[i].conf->name, strerror(errno));
}

/*
 * accept4 on @lfd failed for want of a descriptor: refuse one connection.
 * 1: one was refused; 0: none, the spare's number went elsewhere or nobody
 * was waiting; -1: no spare to be had, the listeners are paused.
 */
static int shed_one(struct kmtls_worker *w, int lfd)
{
	int fd, err;

	if (!w->shedding)
		log_err("worker %d: out of file descriptors (RLIMIT_NOFILE): refusing new connections until some close; raise LimitNOFILE",
			w->id);
	w->shedding = 1;
	w->shed_last_ms = kmtls_now_ms();
	pthread_rwlock_wrlock(&accept_lock);
	spares_fill();
	if (!spares.n) {
		pthread_rwlock_unlock(&accept_lock);
		listeners_pause(w);
		return -1;
	}
	close(spares.fd[--spares.n]);
	/* accept4, not accept: the sandbox's seccomp filter allows only that. */
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	err = errno;
	if (fd >= 0)
		close(fd);
	spares_fill();
	pthread_rwlock_unlock(&accept_lock);
	if (fd < 0 && err != EAGAIN && err != EINTR && err != ECONNABORTED &&
	    err != EMFILE && err != ENFILE)
		log_err("worker %d: accept to refuse a connection: %s", w->id, strerror(err));
	if (fd < 0)
		return 0;
	w->shed++;
	return 1;
}

/* The max-connections episode of w->capped ends: say how many it closed. */
static void cap_end(struct kmtls_worker *w)
{
	if (!w->capped)
		return;
	log_info("listener %s: below max-connections again; %lu connections closed at the cap",
		 w->capped->conf->name, (unsigned long)w->capped_n);
	w->capped = NULL;
	w->capped_n = 0;
}

static void cap_over(struct kmtls_worker *w, uint64_t now)
{
	if (w->capped && now - w->capped_last_ms >= SHED_QUIET_MS)
		cap_end(w);
}

static void shed_over(struct kmtls_worker *w, uint64_t now)
{
	if (!w->shedding || now - w->shed_last_ms < SHED_QUIET_MS)
		return;
	if (w->shed_waits)
		log_info("worker %d: accepting connections again; %lu refused while out of file descriptors, and %lu times not even one was left to refuse with (clients waited)",
			 w->id, (unsigned long)w->shed, (unsigned long)w->shed_waits);
	else
		log_info("worker %d: accepting connections again; %lu refused while out of file descriptors",
			 w->id, (unsigned long)w->shed);
	w->shedding = 0;
	w->shed = 0;
	w->shed_waits = 0;
}

/* The same for max-connections: an episode per listener, logged at each end. */
static void cap_one(struct kmtls_worker *w, const struct kmtls_listener *l)
{
	if (w->capped != l) {
		cap_end(w);	/* another listener's episode */
		log_warn("listener %s: max-connections (%u) reached: closing new connections until some end",
			 l->conf->name, l->conf->max_connections);
		w->capped = l;
	}
	w->capped_n++;
	w->capped_last_ms = kmtls_now_ms();
}

static void accept_all(struct kmtls_worker *w, int idx)
{
	struct kmtls_listener *l = &w->listeners[idx];
	struct sockaddr_storage peer;
	socklen_t len;
	int fd, n, err;

	for (n = 0; n < 64 && !w->paused; n++) {
		len = sizeof(peer);
		pthread_rwlock_rdlock(&accept_lock);
		fd = accept4(w->lfds[idx], (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		err = errno;
		pthread_rwlock_unlock(&accept_lock);
		if (fd < 0) {
			if ((err == EMFILE || err == ENFILE) && shed_one(w, w->lfds[idx]) > 0)
				continue;
			if (err != EAGAIN && err != EINTR && err != ECONNABORTED &&
			    err != EMFILE && err != ENFILE)
				log_err("listener %s: accept: %s", l->conf->name, strerror(err));
			return;
		}
		STAT_ADD(&w->stats, accepted, 1);
		STAT_ADD(&l->stats, accepted, 1);
		if (atomic_fetch_add(&l->active, 1) >= l->conf->max_connections) {
			atomic_fetch_sub(&l->active, 1);
			STAT_ADD(&w->stats, conns_capped, 1);
			STAT_ADD(&l->stats, conns_capped, 1);
			cap_one(w, l);
			close(fd);
			continue;
		}
		kmtls_conn_start(w, l, fd, (struct sockaddr *)&peer, len);
	}
}

static void tick(struct kmtls_worker *w)
{
	uint64_t now = kmtls_now_ms();
	struct conn *c = w->conns, *next;

	while (c) {
		next = c->next;
		kmtls_conn_tick(c, now);
		c = next;
	}
	kmtls_worker_reap(w);
	spares_refill();
	listeners_resume(w, now);
	shed_over(w, now);
	cap_over(w, now);
}

/*
 * Draining: give the sockets back so a new kmtlsd can take the ports, and
 * no client is queued where nobody accepts (a unix listener's file goes too).
 */
static void close_listeners(struct kmtls_worker *w)
{
	int i;

	for (i = 0; i < w->n_listeners; i++) {
		if (w->lfds[i] < 0)
			continue;
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->lfds[i], NULL);
		close(w->lfds[i]);
		w->lfds[i] = -1;
		kmtls_listener_close_shared(&w->listeners[i]);
	}
	w->paused = 0;
	w->closed_listeners = 1;
	kmtls_kservice_drain(w);
}

static void *worker_main(void *arg)
{
	struct kmtls_worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next_tick = kmtls_now_ms() + TICK_MS;
	int i, n;

	while (!w->stop) {
		if (w->draining && !w->closed_listeners)
			close_listeners(w);
		kmtls_kservice_poll(w);
		n = epoll_wait(w->epfd, evs, MAX_EVENTS, TICK_MS);
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == KMTLS_KSERVICE_TAG_NL ||
			    evs[i].data.u64 == KMTLS_KSERVICE_TAG_INBOX)
				kmtls_kservice_event(w, evs[i].data.u64);
			else if (evs[i].data.u64 < LISTENER_TAG_MAX)
				accept_all(w, (int)evs[i].data.u64 - 1);
			else
				kmtls_conn_event(evs[i].data.ptr, evs[i].events);
		}
		kmtls_worker_reap(w);
		if (kmtls_now_ms() >= next_tick) {
			tick(w);
			next_tick = kmtls_now_ms() + TICK_MS;
		}
	}
	kmtls_resume_cache_clear();
	return NULL;
}

int kmtls_worker_start(struct kmtls_worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) ? -1 : 0;
}

void kmtls_worker_destroy(struct kmtls_worker *w)
{
	int i;

	while (w->conns)
		kmtls_conn_close(w->conns);
	kmtls_worker_reap(w);
	while (w->n_pipes--) {
		close(w->pipes[w->n_pipes].fd[0]);
		close(w->pipes[w->n_pipes].fd[1]);
	}
	for (i = 0; w->lfds && i < w->n_listeners; i++)
		if (w->lfds[i] >= 0)
			close(w->lfds[i]);
	free(w->lfds);
	free(w->sigcache);
	for (i = 0; w->sessions && i < w->n_listeners; i++)
		kmtls_saved_session_drop(&w->sessions[i]);
	free(w->sessions);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->spare_counted)
		spares_adjust(-1);
}
