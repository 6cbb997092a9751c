// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sd_notify(3) without libsystemd: one datagram per message to the unix
 * socket named by $NOTIFY_SOCKET, a path or, with a leading '@', a name in
 * the abstract namespace. The socket is opened on first use and kept; when
 * a send fails (systemd re-executed and re-created it) it is opened again,
 * once. Only the main thread notifies (daemon.c), so nothing is locked.
 *
 * Watchdog: systemd sets WATCHDOG_USEC (and WATCHDOG_PID) for
 * WatchdogSec=; we ping at half the interval from the main loop, which
 * waits for signals with sigtimedwait() until the next ping is due, and
 * from the waits of a reload (kmtls_notify_poll()), so that a helper
 * process that hangs never costs kmtlsd its life.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static int notify_fd = -1;
static uint64_t wd_period_us;	/* half of WATCHDOG_USEC; 0: no watchdog */
static uint64_t wd_next_us;

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) < 2 || n >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + n)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void notify_send(const char *msg, size_t len)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (notify_fd < 0)
			notify_fd = notify_open();
		if (notify_fd < 0)
			return;
		if (send(notify_fd, msg, len, MSG_NOSIGNAL) == (ssize_t)len)
			return;
		close(notify_fd);
		notify_fd = -1;
	}
}

void kmtls_notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(msg))
		notify_send(msg, n);
}

void kmtls_notify_reloading(void)
{
	kmtls_notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)mono_us());
}

static void watchdog_init(void)
{
	static int done;
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (done)
		return;
	done = 1;
	if (!usec || !getenv("NOTIFY_SOCKET"))
		return;
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return;		/* meant for another process */
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v < 2)
		return;
	wd_period_us = v / 2;
	wd_next_us = mono_us();
}

const struct timespec *kmtls_notify_watchdog_wait(struct timespec *ts)
{
	uint64_t now, left;

	watchdog_init();
	if (!wd_period_us)
		return NULL;
	now = mono_us();
	left = wd_next_us > now ? wd_next_us - now : 0;
	ts->tv_sec = left / 1000000;
	ts->tv_nsec = (left % 1000000) * 1000;
	return ts;
}

void kmtls_notify_watchdog(void)
{
	uint64_t now;

	watchdog_init();
	if (!wd_period_us)
		return;
	now = mono_us();
	if (now < wd_next_us)
		return;
	notify_send("WATCHDOG=1", 10);
	wd_next_us = now + wd_period_us;
}

int kmtls_notify_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	uint64_t deadline = mono_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
	uint64_t now, slice;
	struct timespec ts;
	int ret;

	for (;;) {
		now = mono_us();
		slice = deadline > now ? deadline - now : 0;
		if (kmtls_notify_watchdog_wait(&ts) &&
		    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 < slice)
			slice = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		ret = poll(fds, n, (int)((slice + 999) / 1000));
		kmtls_notify_watchdog();
		if (ret || mono_us() >= deadline)
			return ret;
	}
}
