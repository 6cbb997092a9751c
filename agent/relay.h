/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_RELAY_H
#define KMTLS_RELAY_H

#include "conn.h"

#define RELAY_PIPE_SIZE (256 * 1024)
#define RELAY_BUF_SIZE (16 * 1024)

enum relay_result {
	RELAY_AGAIN,	/* waiting for readiness */
	RELAY_DONE,	/* both directions finished cleanly */
	RELAY_ERROR,	/* reset or protocol error: tear down */
};

/* Allocate pipes (kTLS) or buffers (wolfSSL record layer). */
int kmtls_relay_setup(struct conn *c);
void kmtls_relay_free(struct conn *c);

/* Move whatever can move in both directions without blocking. */
enum relay_result kmtls_relay_pump(struct conn *c, const char **why);

/*
 * Bytes on the TLS end that the peer has not acknowledged yet (SIOCOUTQ)
 * when kTLS carries it, else 0 (nothing then outlives close()); -1 on
 * error or when the connection can deliver nothing more (reset).
 */
int kmtls_relay_unacked(const struct conn *c);

/* What each end is waiting for, given the relay state. */
uint32_t kmtls_relay_client_events(const struct conn *c);
uint32_t kmtls_relay_backend_events(const struct conn *c);

#endif
