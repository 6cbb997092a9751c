/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_NOTIFY_H
#define KMTLS_NOTIFY_H

#include <poll.h>
#include <time.h>

/*
 * The systemd notification protocol (sd_notify(3)) without libsystemd:
 * datagrams to $NOTIFY_SOCKET. All of these do nothing outside systemd.
 */

/* Send one state, e.g. "READY=1" or "STOPPING=1" (printf format). */
void kmtls_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with the MONOTONIC_USEC systemd wants since v253. */
void kmtls_notify_reloading(void);

/*
 * Watchdog (WatchdogSec=): the time until the next ping is due, to wait
 * for signals with sigtimedwait(); NULL when no watchdog is asked for
 * (wait forever).
 */
const struct timespec *kmtls_notify_watchdog_wait(struct timespec *ts);

/* Send "WATCHDOG=1" when half the interval has passed since the last one. */
void kmtls_notify_watchdog(void);

/*
 * poll(2) for the main thread's waits on its helper processes during a
 * reload: in slices that end when a watchdog ping is due, which it sends.
 * The main thread is alive and making progress then; only the helper may
 * be stuck, and that wait is bounded by @timeout_ms. Returns as poll().
 */
int kmtls_notify_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

#endif
