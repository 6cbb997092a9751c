/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_CONN_H
#define KMTLS_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "verify.h"

struct kmtls_worker;
struct kmtls_listener;
struct kmtls_kreq;

enum conn_state {
	CS_HANDSHAKE,
	CS_CONNECTING,	/* waiting for the backend's TCP connect */
	CS_TICKET,	/* originate: handshake done, waiting for a ticket */
	CS_RELAY,
	CS_LINGER,	/* relay done, kTLS end open until the peer has it all */
};

/* Which end an epoll event belongs to. */
struct conn_end {
	struct conn *conn;
	int fd;
	uint32_t events;	/* registered interest */
	int registered;
};

/* One direction of the relay: src -> dst. */
struct relay_dir {
	int pipe[2];		/* splice mode, -1 while empty (pooled) */
	size_t pipe_cap, in_pipe;
	int pipe_full;		/* every pipe slot taken, in_pipe < pipe_cap or not */
	size_t hs_left;		/* kTLS: bytes of a handshake message still to come */
	unsigned char *buf;	/* userspace mode: one record's worth */
	size_t len, off;
	unsigned char *prefix;	/* sent to dst before anything else */
	size_t prefix_len, prefix_off;
	size_t prefix_meta;	/* its first bytes that are no payload: PROXY header */
	int eof;		/* nothing more will come from src */
	int shut;		/* dst shut down for writing */
	uint64_t bytes;
};

#define CONN_MAGIC 0x6b6d746cU	/* "kmtl": catches use after free */

struct conn {
	unsigned int magic;
	struct kmtls_worker *w;
	struct kmtls_listener *l;
	struct conn *prev, *next;	/* worker's list, for timeouts */

	enum conn_state state;
	int closed;		/* on the worker's dead list */
	struct conn_end client, backend;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char peer_str[64];

	WOLFSSL *ssl;		/* NULL once kTLS carries the records */
	int ktls;
	int originate;		/* TLS towards the backend, plain client */
	struct kmtls_kreq *kreq;	/* kernel service: the request (owned), no
					 * backend, ends after kTLS and DONE */
	struct kmtls_verify verify;
	struct kmtls_policy *policy;	/* verify's: the listener's when the
					 * handshake began (a reference) */

	uint64_t started_ms;
	struct timespec started;	/* for the handshake_done probe */
	uint64_t deadline_ms;	/* handshake or connect timeout; 0 = none */
	uint64_t active_ms;	/* last byte moved, for the idle timeout */
	int linger_unacked;	/* CS_LINGER: unacknowledged bytes at the last tick */
	int linger_acked;	/* CS_LINGER: none at the last tick */

	char why[160];		/* the reason a relay ended, for the log */
	struct relay_dir up;	/* client -> backend */
	struct relay_dir down;	/* backend -> client */
};

/* Take ownership of an accepted socket and start the handshake. */
void kmtls_conn_start(struct kmtls_worker *w, struct kmtls_listener *l, int fd,
		      const struct sockaddr *peer, socklen_t peer_len);

/*
 * Kernel service: run the handshake of request @r (its socket, role and
 * deadline) with the TLS context of @l, the profile's context for that
 * role; @name is the server name a client-role handshake verifies. The
 * connection owns @r from here, also on failure (DONE is then sent as it
 * closes). Returns -1 without taking @r only when out of memory.
 */
int kmtls_conn_start_kernel(struct kmtls_worker *w, struct kmtls_listener *l,
			    struct kmtls_kreq *r, const char *name);

/* An epoll event on one end of a connection. */
void kmtls_conn_event(struct conn_end *end, uint32_t events);

/* Timer tick: enforce deadlines and idle timeouts. */
void kmtls_conn_tick(struct conn *c, uint64_t now_ms);

/*
 * Tear down: close both ends and uncount. The memory is freed by
 * kmtls_conn_free() once the worker's current batch of events is done,
 * since a later event in the same batch may still point at it.
 */
void kmtls_conn_close(struct conn *c);
void kmtls_conn_free(struct conn *c);

/* Update epoll interest of both ends from the relay state. */
int kmtls_conn_update_events(struct conn *c);

#endif
