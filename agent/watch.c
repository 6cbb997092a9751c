// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * watch-files: inotify on the directories of the TLS files, a quiet period,
 * then SIGHUP to the main thread (see watch.h).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"

/* Whatever replaces, removes, renames or re-permissions a file. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | \
		    IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct kmtls_watch_file {
	int wd;
	char *name;		/* NULL: any change in the directory */
	char *dir;		/* for the log line */
};

static int add_entry(struct kmtls_watch *w, int wd, const char *dir,
		     const char *name)
{
	struct kmtls_watch_file *v, *f;
	int i;

	for (i = 0; i < w->n_files; i++) {
		f = &w->files[i];
		if (f->wd == wd && (!f->name || (name && !strcmp(f->name, name))))
			return 0;	/* already covered */
	}
	v = realloc(w->files, (w->n_files + 1) * sizeof(*v));
	if (!v)
		return -1;
	w->files = v;
	f = &v[w->n_files];
	f->wd = wd;
	f->name = name ? strdup(name) : NULL;
	f->dir = strdup(dir);
	if ((name && !f->name) || !f->dir) {
		free(f->name);
		free(f->dir);
		return -1;
	}
	w->n_files++;
	return 0;
}

/* Watch directory @dir for @name (NULL: anything in it). */
static int watch_dir(struct kmtls_watch *w, const char *dir, const char *name,
		     char *err, size_t errlen)
{
	int wd, i, seen = 0;

	wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
	if (wd < 0) {
		snprintf(err, errlen, "watch-files: cannot watch %s: %s%s", dir, strerror(errno),
			 errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
		return -1;
	}
	for (i = 0; i < w->n_files; i++)
		seen |= w->files[i].wd == wd;
	w->n_dirs += !seen;
	if (add_entry(w, wd, dir, name)) {
		snprintf(err, errlen, "watch-files: out of memory");
		return -1;
	}
	return 0;
}

/* The directory of @path and @path's last component (both copied). */
static int split(const char *path, char *dir, char *base, size_t len)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (snprintf(a, sizeof(a), "%s", path) >= (int)sizeof(a))
		return -1;
	memcpy(b, a, sizeof(b));
	snprintf(dir, len, "%s", dirname(a));
	snprintf(base, len, "%s", basename(b));
	return 0;
}

static int watch_path(struct kmtls_watch *w, const char *path, char *err,
		      size_t errlen)
{
	char dir[PATH_MAX], base[PATH_MAX], *real;
	struct stat st, lst;

	if (!path)
		return 0;
	if (!stat(path, &st) && S_ISDIR(st.st_mode))	/* a CA directory */
		return watch_dir(w, path, NULL, err, errlen);
	if (split(path, dir, base, sizeof(dir))) {
		snprintf(err, errlen, "watch-files: path too long: %s", path);
		return -1;
	}
	if (lstat(path, &lst) || !S_ISLNK(lst.st_mode))
		return watch_dir(w, dir, base, err, errlen);
	/* A symlink: the switch may happen anywhere along it. */
	if (watch_dir(w, dir, NULL, err, errlen))
		return -1;
	real = realpath(path, NULL);
	if (!real)
		return 0;
	if (!split(real, dir, base, sizeof(dir)) && watch_dir(w, dir, NULL, err, errlen)) {
		free(real);
		return -1;
	}
	free(real);
	return 0;
}

static int watch_conf(struct kmtls_watch *w, const struct kmtls_listener_conf *l,
		      char *err, size_t errlen)
{
	const char *paths[] = { l->cert, l->key, l->ca, l->ticket_keys };
	size_t i;
	int j;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (watch_path(w, paths[i], err, errlen))
			return -1;
	for (j = 0; j < l->crl.n; j++)
		if (watch_path(w, l->crl.v[j], err, errlen))
			return -1;
	return 0;
}

int kmtls_watch_open(struct kmtls_watch *w, const struct kmtls_config *cfg,
		     char *err, size_t errlen)
{
	int i;

	memset(w, 0, sizeof(*w));
	w->stop_fd = -1;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		snprintf(err, errlen, "watch-files: inotify: %s%s", strerror(errno),
			 errno == EMFILE ? " (raise fs.inotify.max_user_instances)" : "");
		return -1;
	}
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		snprintf(err, errlen, "watch-files: eventfd: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < cfg->n_listeners; i++)
		if (watch_conf(w, &cfg->listeners[i], err, errlen))
			goto fail;
	for (i = 0; i < cfg->n_kernels; i++)
		if (watch_conf(w, &cfg->kernels[i].tls, err, errlen))
			goto fail;
	/* A reload re-reads it too (reconfig.c): an edit is a change. */
	if (watch_path(w, cfg->path, err, errlen))
		goto fail;
	return 0;
fail:
	kmtls_watch_close(w);
	return -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Does @ev touch a file we watch? Names it in @what when it does. */
static int relevant(const struct kmtls_watch *w, const struct inotify_event *ev,
		    char *what, size_t len)
{
	const struct kmtls_watch_file *f;
	int i;

	for (i = 0; i < w->n_files; i++) {
		f = &w->files[i];
		if (f->wd != ev->wd)
			continue;
		if (f->name && (!ev->len || strcmp(f->name, ev->name)))
			continue;
		snprintf(what, len, "%s%s%s", f->dir, ev->len ? "/" : "", ev->len ? ev->name : "");
		return 1;
	}
	return 0;
}

/* Read every queued event; 1 when one of them matters. */
static int drain(const struct kmtls_watch *w, char *what, size_t len)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int hit = 0;
	ssize_t n;
	char *p;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				snprintf(what, len, "(too many changes to name)");
				hit = 1;
			} else if (!hit) {
				hit = relevant(w, ev, what, len);
			}
		}
	}
	return hit;
}

static void *watch_main(void *arg)
{
	struct kmtls_watch *w = arg;
	struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN },
			       { .fd = w->stop_fd, .events = POLLIN } };
	uint64_t first = 0, due = 0, now;
	char what[PATH_MAX + 64] = "";
	int timeout;

	for (;;) {
		now = now_ms();
		timeout = !due ? -1 : due > now ? (int)(due - now) : 0;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		now = now_ms();
		if ((p[0].revents & POLLIN) && drain(w, what, sizeof(what))) {
			if (!first)
				first = now;
			due = now + KMTLS_WATCH_QUIET_MS;
			if (due > first + KMTLS_WATCH_MAX_WAIT_MS)
				due = first + KMTLS_WATCH_MAX_WAIT_MS;
			continue;
		}
		if (due && now >= due) {
			log_info("watch-files: %s changed: reloading as on SIGHUP", what);
			syscall(SYS_tgkill, getpid(), w->main_tid, SIGHUP);
			first = due = 0;
		}
	}
	return NULL;
}

int kmtls_watch_start(struct kmtls_watch *w, pid_t main_tid, char *err,
		      size_t errlen)
{
	int ret;

	w->main_tid = main_tid;
	ret = pthread_create(&w->thread, NULL, watch_main, w);
	if (ret) {
		snprintf(err, errlen, "watch-files: cannot start its thread: %s", strerror(ret));
		return -1;
	}
	w->running = 1;
	log_info("watch-files: watching %d path(s) in %d director%s; a change reloads once none came for %d ms",
		 w->n_files, w->n_dirs, w->n_dirs == 1 ? "y" : "ies", KMTLS_WATCH_QUIET_MS);
	return 0;
}

void kmtls_watch_close(struct kmtls_watch *w)
{
	uint64_t one = 1;
	int i;

	if (w->running) {
		if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("watch-files: cannot stop the watcher: %s", strerror(errno));
		pthread_join(w->thread, NULL);
		w->running = 0;
	}
	if (w->fd >= 0)
		close(w->fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->fd = w->stop_fd = -1;
	for (i = 0; i < w->n_files; i++) {
		free(w->files[i].name);
		free(w->files[i].dir);
	}
	free(w->files);
	w->files = NULL;
	w->n_files = 0;
}
