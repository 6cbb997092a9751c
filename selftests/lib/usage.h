/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_USAGE_H
#define KMTLS_SELFTEST_USAGE_H

#include <sys/types.h>

#include "failmalloc/failmalloc.h"
/* The fault tests read kmtlsd's counters (status_int) along with its usage. */
#include "status_http.h"

/* What a process holds: open descriptors, resident memory, heap blocks. */
struct usage {
	int fds;		/* entries in /proc/PID/fd */
	long rss_kb;		/* VmRSS in /proc/PID/status */
	int have_live;
	long live;		/* heap blocks, when failmalloc.so counts them */
};

/* 0, or -1 when the process is gone. @ctl: its failmalloc.so, or NULL. */
int usage_sample(pid_t pid, const struct failmalloc_ctl *ctl, struct usage *u);

/*
 * The lowest descriptor number @pid has not open (-1 when gone): as its
 * RLIMIT_NOFILE, nothing more can be opened, and a descriptor closed from
 * then on cannot be had again. A thread blocked in accept() holds a number
 * that /proc does not show yet: this is that one, when no lower one is free.
 */
int usage_lowest_free_fd(pid_t pid);

/*
 * The RLIMIT_NOFILE that leaves @pid exactly @room descriptors to open: by
 * numbers, not by count (a descriptor above the limit, such as an
 * inherited high one, takes no room below it).
 */
int usage_fd_limit_with_room(pid_t pid, int room);

/*
 * Compare what a process holds after a fault case with the baseline taken
 * after its warm-up: descriptors may differ by USAGE_FD_SLACK (pools), VmRSS
 * by USAGE_RSS_SLACK_KB (allocator noise, arenas and trimming under a busy
 * machine reached 1 MiB; a leak of a whole connection's state, ~20 kB, over
 * 200 rounds is above it, and a small struct shows in the heap blocks),
 * heap blocks by USAGE_LIVE_SLACK (bounded caches still filling), which
 * catches a leak of one block per round in 200 rounds. @rss 0 skips VmRSS
 * (ASan's quarantine keeps freed memory; its own leak check covers that
 * build). 0 when within bounds, else -1; @msg always gets the numbers.
 */
#define USAGE_FD_SLACK		4
#define USAGE_RSS_SLACK_KB	2048
#define USAGE_LIVE_SLACK	64
int usage_compare(const struct usage *before, const struct usage *after, int rss,
		  char *msg, size_t len);

/* Is the program at @path built with AddressSanitizer? */
int binary_is_asan(const char *path);

#endif
