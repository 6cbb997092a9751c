/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_LISTENER_H
#define KMTLS_LISTENER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config.h"
#include "policy.h"
#include "stats.h"
#include "tickets.h"

/* A configured listener at run time, shared by every worker. */
struct kmtls_listener {
	const struct kmtls_listener_conf *conf;
	struct sockaddr_storage listen_addr, backend_addr;
	socklen_t listen_len, backend_len;
	struct kmtls_policy policy;

	/* Swapped whole on reload; connections keep the context they began with. */
	pthread_rwlock_t ctx_lock;
	WOLFSSL_CTX *ctx;

	atomic_uint active;	/* connections across workers, for the cap */
	/* This listener's share of the workers' counters (status endpoint). */
	struct kmtls_stats stats;
	int unix_fd;		/* a unix listen socket, shared by the workers */
	int tfo_said;		/* tcp-fastopen: logged for the first socket */
	/* Terminate mode: ticket keys, from ticket-keys or random (resume.h). */
	struct kmtls_ticket_keys *tickets;
};

/* Resolve addresses and build the TLS context. Returns 0 or -1 with err. */
int kmtls_listener_setup(struct kmtls_listener *l,
			const struct kmtls_listener_conf *conf, char *err,
			size_t errlen);
void kmtls_listener_teardown(struct kmtls_listener *l);

/*
 * The TLS half of kmtls_listener_setup(): policy, ticket keys, context; no
 * addresses. For kernel profiles, whose sockets come from applications.
 * @l must be zeroed.
 */
int kmtls_listener_setup_tls(struct kmtls_listener *l,
			    const struct kmtls_listener_conf *conf, char *err,
			    size_t errlen);

/* Build a fresh context from the files on disk and swap it in. */
int kmtls_listener_reload(struct kmtls_listener *l, char *err, size_t errlen);

/* A new WOLFSSL from the current context (holds its own reference). */
WOLFSSL *kmtls_listener_new_ssl(struct kmtls_listener *l);

/*
 * A non-blocking SO_REUSEPORT socket listening on the listener's address;
 * port 0 is replaced with the first worker's port so all share one.
 */
int kmtls_listener_socket(struct kmtls_listener *l, char *err, size_t errlen);

#endif
