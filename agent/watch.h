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
 * inotify watches every directory entry looked up on the way to each file
 * (pathwalk.h): the file's directory, the directories above it, and where
 * each symlink on the way lives, so that a file renamed over, a directory
 * renamed or removed and made again, and a symlink switched (Kubernetes'
 * "..data", certbot's live/, a "current" directory) are all seen. After
 * such an event the watches are set up again along the paths as they are
 * now, and old ones dropped.
 *
 * An event only says "look": changes are gathered until none came for
 * KMTLS_WATCH_QUIET_MS (so a certificate and its key replaced one after
 * the other make one reload), then each path is opened and compared with
 * what it named at the last reload (device, inode, size, times; for a CA
 * directory, those of its entries). Only a difference reloads, so a write
 * into a directory that was renamed away, or events that end where they
 * began, reload nothing. While a path is missing or cannot be read the
 * watcher waits (the reload would fail) and says why, once. The reload is
 * the watcher sending SIGHUP to the main thread: exactly the SIGHUP one,
 * never two at once.
 *
 * The first watches are set up before the sandbox (kmtls_watch_open), the
 * thread started after it (kmtls_watch_start), so it is sandboxed like the
 * rest: it needs poll, read, inotify_add_watch and inotify_rm_watch,
 * newfstatat, readlink, openat and getdents64, clock_gettime and tgkill.
 */
#define KMTLS_WATCH_QUIET_MS	1000
#define KMTLS_WATCH_MAX_WAIT_MS	5000	/* changes that never stop still reload */

struct kmtls_watch_file;
struct kmtls_watch_entry;

struct kmtls_watch {
	int fd;			/* inotify, -1 when off */
	int stop_fd;		/* eventfd */
	pid_t main_tid;		/* where SIGHUP goes */
	pthread_t thread;
	int running;
	struct kmtls_watch_file *files;		/* configured paths */
	int n_files;
	struct kmtls_watch_entry *entries;	/* wd, directory, name */
	int n_entries;
	int n_dirs;		/* directories watched, for the log */
	int warned_errno;	/* last failed watch, said once */
	unsigned long warned_dir;
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
