/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_KSERVICE_H
#define KMTLS_KSERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "listener.h"
#include "upcall.h"

struct conn;
struct kmtls_worker;

/*
 * The kernel service: handshakes kmtls.ko hands over (data path 3 in
 * DESIGN.md). See kservice.c for the threading model.
 */

/* Epoll tags of a worker's kernel-service descriptors (never pointers). */
#define KMTLS_KSERVICE_TAG_NL		UINT64_MAX
#define KMTLS_KSERVICE_TAG_INBOX	(UINT64_MAX - 1)

enum { KMTLS_KROLE_SERVER, KMTLS_KROLE_CLIENT, KMTLS_KROLES };

/* A [kernel NAME] section at run time: one TLS context per role. */
struct kmtls_kprofile {
	const struct kmtls_kernel_conf *conf;
	struct kmtls_listener_conf role_conf[KMTLS_KROLES];	/* conf->tls, per role */
	struct kmtls_listener role[KMTLS_KROLES];	/* contexts, reloadable */
	int ready[KMTLS_KROLES];	/* role[] set up */
};

/* Requests handed to a worker by the one that ACCEPTs. */
struct kmtls_kinbox {
	pthread_mutex_t lock;
	struct kmtls_kreq *head, *tail;
	int efd;		/* eventfd: something was queued */
	atomic_int inflight;	/* requests this worker runs now */
};

/* One request, from ACCEPT to DONE. */
struct kmtls_kreq {
	struct kmtls_kreq *next;	/* inbox */
	struct kmtls_kservice *ks;
	int worker;		/* whose inflight counts it */
	int fd;			/* our descriptor of the application's socket */
	uint32_t role, uid, pid, timeout_ms;
	uint64_t id, deadline_ms;
	char peer_name[KMTLS_PEER_NAME_MAX];
	char profile[KMTLS_PROFILE_MAX];
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int nodelay;		/* the application's TCP_NODELAY, put back */
	int status;		/* the errno the application gets if it ends now */
	int done;		/* DONE sent */
};

struct kmtls_kservice {
	struct kmtls_kprofile *profiles;
	int n;
	struct kmtls_upcall up;		/* read by worker 0 only */
	struct kmtls_worker *ws;
	struct kmtls_kinbox *inbox;	/* one per worker */
	int nw;
	atomic_int retry;		/* SIGHUP: look for kmtls.ko now */
	uint64_t next_attach_ms;	/* periodic look for kmtls.ko */
	uint64_t next_accept_ms;	/* ACCEPT failed: not before this */
	int refusals;			/* ACCEPTs refused in a row */
	unsigned int refused_ms;	/* then: the wait before the next look */
	int state;			/* 1 serving, else the last -errno seen */
	int draining;
};

/* Build every profile's TLS contexts. 0, or -1 with err (nothing kept). */
int kmtls_kservice_setup(struct kmtls_kservice *ks, const struct kmtls_config *cfg,
			 char *err, size_t errlen);

/*
 * Before the sandbox and the worker threads: open the netlink socket, give
 * every worker an inbox, register the descriptors in their epoll sets, and
 * look for kmtls.ko once (a missing module is logged, not an error).
 */
int kmtls_kservice_open(struct kmtls_kservice *ks, struct kmtls_worker *ws,
			int nw, char *err, size_t errlen);

/* After the workers are gone: fail what is still queued, close, free. */
void kmtls_kservice_teardown(struct kmtls_kservice *ks);

/*
 * SIGHUP (main thread), with the listeners' reload (daemon.c): prepare
 * every profile's next contexts, with the reloadable keys of @file's
 * profiles of the same names when there is one (reconfig.h; @cfg is the
 * running configuration the profiles were set up from): 0, or -1 with err
 * and nothing kept. Then commit swaps them all in, or abort drops them.
 */
struct kmtls_kservice_next {
	int n;
	struct kmtls_listener_next (*role)[KMTLS_KROLES];
};

int kmtls_kservice_prepare(struct kmtls_kservice *ks, struct kmtls_config *cfg,
			   struct kmtls_config *file, struct kmtls_kservice_next *kn,
			   char *err, size_t errlen);
void kmtls_kservice_commit(struct kmtls_kservice *ks, struct kmtls_config *cfg,
			   struct kmtls_config *file, struct kmtls_kservice_next *kn);
void kmtls_kservice_abort(struct kmtls_kservice_next *kn);

/* SIGHUP: look for kmtls.ko again. */
void kmtls_kservice_rescan(struct kmtls_kservice *ks);

/* Worker hooks: an epoll event with a KMTLS_KSERVICE_TAG_*; every loop. */
void kmtls_kservice_event(struct kmtls_worker *w, uint64_t tag);
void kmtls_kservice_poll(struct kmtls_worker *w);
/* SIGTERM: take no more requests (they stay queued for the next agent). */
void kmtls_kservice_drain(struct kmtls_worker *w);

/* conn.c hooks for a connection with c->kreq. */
void kmtls_kservice_io(WOLFSSL *ssl);			/* never blocks, flags untouched */
void kmtls_kservice_established(struct conn *c);	/* handshake done */
void kmtls_kservice_closing(struct conn *c);		/* DONE if not yet */
void kmtls_kservice_free_req(struct kmtls_kreq *r);	/* NULL is fine */
void kmtls_kservice_log(const struct conn *c, int level, const char *msg);
/* After a failed handshake: ETIMEDOUT or ECANCELED if kmtls.ko ended it, else 0. */
int kmtls_kservice_ended(const struct conn *c);

#endif
