/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_LISTENER_H
#define KMTLS_LISTENER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

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

	/*
	 * Swapped together on reload, under ctx_lock: a connection takes both
	 * at once and keeps them until it ends (the WOLFSSL holds the context,
	 * the connection a reference to the policy).
	 */
	pthread_rwlock_t ctx_lock;
	WOLFSSL_CTX *ctx;
	struct kmtls_policy *policy;

	atomic_uint active;	/* connections across workers, for the cap */
	/* This listener's share of the workers' counters (status endpoint). */
	struct kmtls_stats stats;
	/* A unix listen socket, shared by the workers (each has a dup of it). */
	atomic_int unix_fd;
	dev_t unix_dev;		/* its file, so that only ours is removed */
	ino_t unix_ino;
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
 * Draining: close a unix listener's shared socket and remove its file, so
 * that a connect fails at once instead of waiting in a queue that nobody
 * accepts from (the workers close their dups). Any worker may call it; the
 * first does it. The file is left alone if it is no longer ours (a new
 * kmtlsd bound the path since). Nothing for a TCP listener.
 */
void kmtls_listener_close_shared(struct kmtls_listener *l);

/*
 * The TLS half of kmtls_listener_setup(): policy, ticket keys, context; no
 * addresses. For kernel profiles, whose sockets come from applications,
 * with their allow-uid in @uids (NULL for listeners). @l must be zeroed.
 */
int kmtls_listener_setup_tls(struct kmtls_listener *l,
			    const struct kmtls_listener_conf *conf,
			    const struct kmtls_uidlist *uids, char *err,
			    size_t errlen);

/*
 * Reload: the next context and policy, built beside the ones in use from
 * the files on disk and @conf (the listener's configuration with what a
 * reload may change; its strings need only live until prepare returns).
 * prepare: 0, or -1 with err and nothing kept. Then commit swaps them in
 * (and the ticket keys read), or abort drops them.
 */
struct kmtls_listener_next {
	WOLFSSL_CTX *ctx;
	struct kmtls_policy *policy;
	struct kmtls_ticket_keys keys;	/* from ticket-keys, when it is set */
};

int kmtls_listener_prepare(struct kmtls_listener *l,
			   const struct kmtls_listener_conf *conf,
			   const struct kmtls_uidlist *uids,
			   struct kmtls_listener_next *next, char *err,
			   size_t errlen);
/*
 * A listener that seals tickets with a random key of its own (no
 * ticket-keys file): a new key, the last one kept to open what it sealed.
 * Done on every reload and every KMTLS_TICKET_ROTATE_S seconds, so a
 * stolen key opens at most two periods' tickets. Nothing otherwise.
 */
void kmtls_listener_rotate_own_key(struct kmtls_listener *l);

void kmtls_listener_commit(struct kmtls_listener *l,
			   struct kmtls_listener_next *next);
void kmtls_listener_abort(struct kmtls_listener_next *next);

/*
 * A new WOLFSSL from the current context (holds its own reference to it)
 * and, in @policy, a reference to the policy that goes with that context
 * (kmtls_policy_put() it when the connection ends). NULL: none taken.
 */
WOLFSSL *kmtls_listener_new_ssl(struct kmtls_listener *l,
				struct kmtls_policy **policy);

/* Kernel profiles: may a process of @uid use it (the current allow-uid)? */
int kmtls_listener_uid_allowed(struct kmtls_listener *l, unsigned int uid);

/*
 * A non-blocking SO_REUSEPORT socket listening on the listener's address;
 * port 0 is replaced with the first worker's port so all share one.
 */
int kmtls_listener_socket(struct kmtls_listener *l, char *err, size_t errlen);

#endif
