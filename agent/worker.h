/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_WORKER_H
#define KMTLS_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "conn.h"
#include "kservice.h"
#include "listener.h"
#include "sigcache.h"
#include "stats.h"

/*
 * Empty pipes kept for reuse. A connection holds a pipe only while bytes are
 * in it, so thousands of idle kTLS connections cost two descriptors each
 * instead of six.
 */
#define PIPE_POOL_MAX 64

struct pipe_slot {
	int fd[2];
	size_t cap;
};

/*
 * Originate: the session of a listener's last full handshake, and the
 * policy (which comes with the TLS context, its CA bundle and CRLs) that
 * verified the server then: a resumption skips that check, so after a
 * reload the session is only used under the policy it was checked by.
 */
struct saved_session {
	WOLFSSL_SESSION *sess;
	struct kmtls_policy *policy;	/* a reference */
};

/* Free what @s holds; it is empty after. */
void kmtls_saved_session_drop(struct saved_session *s);

/* One thread with its own epoll, listening sockets and connections. */
struct kmtls_worker {
	int id;
	int epfd;
	pthread_t thread;
	struct kmtls_listener *listeners;
	int n_listeners;
	int *lfds;		/* one SO_REUSEPORT socket per listener */
	int spare_counted;	/* added to the pool of spares (worker.c) */
	int shedding;		/* out of descriptors: refusing connections */
	uint64_t shed, shed_last_ms;	/* refused in this episode; its last EMFILE */
	uint64_t shed_waits;	/* in it: pauses with not even a spare to refuse with */
	int paused;		/* listeners out of epoll until paused_until_ms */
	uint64_t paused_until_ms;
	const struct kmtls_listener *capped;	/* at max_connections: this episode's listener */
	uint64_t capped_n, capped_last_ms;	/* closed at the cap in it; the last one */
	struct conn *conns;	/* list head */
	struct conn *dead;	/* closed this round, freed after the batch */
	volatile int stop;
	volatile int draining;	/* SIGTERM: accept nothing new, finish the rest */
	int closed_listeners;
	struct pipe_slot pipes[PIPE_POOL_MAX];
	int n_pipes;
	struct kmtls_sigcache *sigcache;
	struct saved_session *sessions;	/* originate: one per listener */
	struct kmtls_kservice *ks;	/* kernel service, NULL without [kernel] */
	struct kmtls_stats stats;
};

/* Milliseconds on the monotonic clock. */
uint64_t kmtls_now_ms(void);

int kmtls_worker_init(struct kmtls_worker *w, int id,
		      struct kmtls_listener *ls, int n, char *err,
		      size_t errlen);
int kmtls_worker_start(struct kmtls_worker *w);
void kmtls_worker_destroy(struct kmtls_worker *w);

/* Free connections closed during the last batch of events. */
void kmtls_worker_reap(struct kmtls_worker *w);

/* Register an fd of a connection end with the worker's epoll. */
int kmtls_worker_watch(struct kmtls_worker *w, struct conn_end *end,
		       uint32_t events);
void kmtls_worker_unwatch(struct kmtls_worker *w, struct conn_end *end);

/* Registered, or kept, with no interest: epoll still reports EPOLLHUP and EPOLLERR. */
int kmtls_worker_watch_hangup(struct kmtls_worker *w, struct conn_end *end);

#endif
