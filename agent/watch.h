/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_WATCH_H
#define KMTLS_WATCH_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/*
 * watch-files = yes: reload when a certificate, key, CA, CRL or ticket-key
 * file of a listener or [kernel] profile, or the config file, changes, as
 * if SIGHUP had come.
 *
 * inotify watches the directories that hold those files (operators and
 * their tools replace a file by renaming a new one over it, which a watch
 * on the file itself would not see; for a symlink, the directories of the
 * link and of its target, and any change in them counts, which covers
 * Kubernetes' "..data" switch). Changes are gathered until none came for
 * KMTLS_WATCH_QUIET_MS (so a certificate and its key replaced one after the
 * other make one reload), then the watcher sends SIGHUP to the main thread:
 * the reload is exactly the SIGHUP one, never two at once.
 *
 * The watches are set up before the sandbox (kmtls_watch_open), the thread
 * started after it (kmtls_watch_start), so it is sandboxed like the rest;
 * it needs only poll, read, clock_gettime and tgkill.
 */
#define KMTLS_WATCH_QUIET_MS	1000
#define KMTLS_WATCH_MAX_WAIT_MS	5000	/* changes that never stop still reload */

struct kmtls_watch_file;

struct kmtls_watch {
	int fd;			/* inotify, -1 when off */
	int stop_fd;		/* eventfd */
	pid_t main_tid;		/* where SIGHUP goes */
	pthread_t thread;
	int running;
	struct kmtls_watch_file *files;	/* wd + name (NULL: any) */
	int n_files;
	int n_dirs;		/* directories watched, for the log */
};

/* Watch the files of every listener and kernel profile. 0, or -1 with err. */
int kmtls_watch_open(struct kmtls_watch *w, const struct kmtls_config *cfg,
		     char *err, size_t errlen);

/* Start the watcher thread; SIGHUP will go to thread @main_tid. */
int kmtls_watch_start(struct kmtls_watch *w, pid_t main_tid, char *err,
		      size_t errlen);

/* Stop the thread (if started) and close everything. */
void kmtls_watch_close(struct kmtls_watch *w);

#endif
