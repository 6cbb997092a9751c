// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One load thread: its own WOLFSSL_CTX, epoll set, connection slots and
 * counters; nothing it touches in the loop is shared with other threads
 * (the payload pattern is read-only). Counters are merged by main.c after
 * the threads are joined.
 *
 * Closed loop: a slot starts its next connection as soon as one ends.
 * Open loop (--rate): start k of this thread is due at t_begin + k / rate
 * whatever happened before; when no slot is free it waits, and its latency
 * still counts from the due time, so a slow server shows as latency rather
 * than as fewer samples (no coordinated omission). Deadlines are kept with
 * epoll_pwait2's nanosecond timeout.
 *
 * A slot whose connection ended before TLS began (refused, or the client
 * out of descriptors or ports) rests BENCH_RETRY_DELAY in a ring before it
 * is free again: the delay is the same for all, so the ring is in due order.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_EVENTS 256

uint64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Allocate what the thread needs; errors go to t->err for main to print. */
int bench_thread_setup(struct bench_thread *t)
{
	unsigned int i;

	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->conns = calloc(t->nconns, sizeof(*t->conns));
	t->idle = calloc(t->nconns, sizeof(*t->idle));
	t->rest = calloc(t->nconns, sizeof(*t->rest));
	t->rbuf = malloc(BENCH_IO_CHUNK);
	if (t->ep < 0 || !t->conns || !t->idle || !t->rest || !t->rbuf) {
		snprintf(t->err, sizeof(t->err), "thread %d: %s", t->id, strerror(errno));
		return -1;
	}
	conn_ctx_io(t->ctx);
	for (i = 0; i < t->nconns; i++) {
		t->conns[i].t = t;
		t->conns[i].fd = -1;
		t->idle[i] = &t->conns[t->nconns - 1 - i];
	}
	t->nidle = t->nconns;
	return 0;
}

static uint64_t sched_time(const struct bench_thread *t, uint64_t k)
{
	return t->t_begin + (uint64_t)((double)k * 1e9 / t->rate);
}

static void rest(struct bench_thread *t, struct bench_conn *c)
{
	c->deadline = t->now + BENCH_RETRY_DELAY;
	t->rest[(t->rest_head + t->nrest++) % t->nconns] = c;
}

/* Rested slots back to the free stack: those due, or all (the run is over). */
static void unrest(struct bench_thread *t, int all)
{
	struct bench_conn *c;

	while (t->nrest) {
		c = t->rest[t->rest_head];
		if (!all && c->deadline > t->now)
			break;
		t->rest_head = (t->rest_head + 1) % t->nconns;
		t->nrest--;
		t->idle[t->nidle++] = c;
	}
}

/* Slots whose connection just ended go back to the free stack, or rest. */
static void collect(struct bench_thread *t, struct bench_conn *c)
{
	if (c->state != CONN_IDLE)
		return;
	if (c->backoff && !t->stopping)
		rest(t, c);
	else
		t->idle[t->nidle++] = c;
}

/* Hand free slots to new connections: all of them, or those now due. */
static void start_due(struct bench_thread *t)
{
	struct bench_conn *c;
	unsigned int n;
	uint64_t due;

	unrest(t, 0);
	for (n = t->nidle; n && t->nidle; n--) {
		if (t->rate > 0) {
			due = sched_time(t, t->sched_k);
			if (due > t->now)
				break;
			t->sched_k++;
		} else {
			due = bench_now();
		}
		c = t->idle[--t->nidle];
		conn_start(c, due);
		collect(t, c);		/* failed at once */
	}
}

typedef void (*conn_fn)(struct bench_conn *c, int arg);

static void visit_busy(struct bench_thread *t, conn_fn fn, int arg)
{
	unsigned int i;

	for (i = 0; i < t->nconns; i++) {
		if (t->conns[i].state == CONN_IDLE)
			continue;
		fn(&t->conns[i], arg);
		collect(t, &t->conns[i]);
	}
}

static void check_time(struct bench_conn *c, int unused)
{
	(void)unused;
	conn_check_time(c);
}

/* How long epoll may sleep: until the next due start, scan or end. */
static void next_wake(const struct bench_thread *t, uint64_t scan, struct timespec *ts)
{
	uint64_t wake = scan, end = t->stopping ? t->t_end + BENCH_END_GRACE : t->t_end;

	if (end < wake)
		wake = end;
	if (!t->stopping && t->nidle) {
		if (t->rate <= 0)
			wake = t->now;
		else if (sched_time(t, t->sched_k) < wake)
			wake = sched_time(t, t->sched_k);
	}
	if (!t->stopping && t->nrest && t->rest[t->rest_head]->deadline < wake)
		wake = t->rest[t->rest_head]->deadline;
	wake = wake > t->now ? wake - t->now : 0;
	ts->tv_sec = wake / NSEC_PER_SEC;
	ts->tv_nsec = wake % NSEC_PER_SEC;
}

static int wait_events(struct bench_thread *t, struct epoll_event *ev,
		       const struct timespec *ts)
{
	static __thread int no_pwait2;
	int n, ms;

	if (!no_pwait2) {
		n = epoll_pwait2(t->ep, ev, MAX_EVENTS, ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		no_pwait2 = 1;		/* kernel before 5.11 */
	}
	ms = ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return epoll_wait(t->ep, ev, MAX_EVENTS, ms);
}

static void run(struct bench_thread *t)
{
	struct epoll_event ev[MAX_EVENTS];
	struct bench_conn *c;
	struct timespec ts;
	uint64_t scan, due;
	int i, n;

	t->now = bench_now();
	scan = t->now + BENCH_SCAN_PERIOD;
	for (;;) {
		t->now = bench_now();
		if (!t->stopping && t->now >= t->t_end) {
			t->stopping = 1;
			unrest(t, 1);
			visit_busy(t, conn_stop, 0);
		}
		if (t->stopping && (t->nidle == t->nconns ||
				    t->now >= t->t_end + BENCH_END_GRACE))
			break;
		if (!t->stopping)
			start_due(t);
		if (t->now >= scan) {
			visit_busy(t, check_time, 0);
			scan = t->now + BENCH_SCAN_PERIOD;
		}
		next_wake(t, scan, &ts);
		n = wait_events(t, ev, &ts);
		if (n < 0 && errno != EINTR) {
			snprintf(t->err, sizeof(t->err), "thread %d: epoll: %s",
				 t->id, strerror(errno));
			break;
		}
		t->now = bench_now();
		for (i = 0; i < n; i++) {
			c = ev[i].data.ptr;
			if (c->state == CONN_IDLE)
				continue;
			conn_event(c);
			collect(t, c);
		}
	}
	visit_busy(t, conn_stop, 1);
	if (t->rate > 0) {
		due = (uint64_t)ceil((double)(t->t_end - t->t_begin) * t->rate / 1e9);
		t->st.backlog = due > t->sched_k ? due - t->sched_k : 0;
	}
}

void *bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;
	unsigned int i;

	while (bench_now() < t->t_begin)
		usleep(1000);
	run(t);
	for (i = 0; i < t->nconns; i++)
		conn_release(&t->conns[i]);
	close(t->ep);
	free(t->conns);
	free(t->idle);
	free(t->rest);
	free(t->rbuf);
	wolfSSL_CTX_free(t->ctx);
	t->ctx = NULL;
	return NULL;
}
