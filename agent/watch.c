// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * watch-files: inotify along the paths of the TLS files, a quiet period,
 * a comparison with what the paths named at the last reload, then SIGHUP
 * to the main thread (see watch.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "pathwalk.h"
#include "watch.h"

/* A directory or symlink on the way: created, removed, renamed over. */
#define ENTRY_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
		    IN_DELETE_SELF | IN_MOVE_SELF)
/* The file itself, or a CA directory's files: also written in place. */
#define FILE_MASK (ENTRY_MASK | IN_CLOSE_WRITE)

/* What a path named: a change in any of it is a change to reload for. */
struct file_state {
	int err;		/* why it cannot be opened, or 0 */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	uint64_t entries;	/* a directory: a sum over its entries */
};

struct kmtls_watch_file {
	char *path;		/* as configured, for the log */
	char *abs;
	struct file_state seen;	/* at the last reload, or the start */
	int said;		/* the errno we said we wait for, or 0 */
};

/* A name looked up in a directory on the way to a file. */
struct kmtls_watch_entry {
	int wd;			/* -1: not yet, -2: cannot be watched */
	char *dir;
	char *name;		/* NULL: anything in dir (a CA directory) */
	uint32_t mask;
};

#define FNV_INIT	0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	return fnv(h, &v, sizeof(v));
}

/* One entry of a CA directory, by name and what it names. */
static uint64_t entry_hash(int dfd, const char *name)
{
	uint64_t h = fnv(FNV_INIT, name, strlen(name) + 1);
	struct stat st;

	if (fstatat(dfd, name, &st, 0))
		return fnv_u64(h, (uint64_t)errno);
	h = fnv_u64(h, st.st_dev);
	h = fnv_u64(h, st.st_ino);
	h = fnv_u64(h, st.st_size);
	h = fnv_u64(h, st.st_mtim.tv_sec);
	h = fnv_u64(h, st.st_mtim.tv_nsec);
	h = fnv_u64(h, st.st_ctim.tv_sec);
	return fnv_u64(h, st.st_ctim.tv_nsec);
}

/*
 * Open @path as the reload will (so the sandbox's verdict is the same)
 * and note what it is. Opening reports no event in our masks.
 */
static void file_state(const char *path, struct file_state *s)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st)) {
		s->err = errno;
		if (fd >= 0)
			close(fd);
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
	s->ctime = st.st_ctim;
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		s->err = errno;
		close(fd);
		return;
	}
	/* A sum, so that the order readdir() gives does not matter. */
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			s->entries += entry_hash(dirfd(d), de->d_name);
	closedir(d);
}

static int same_state(const struct file_state *a, const struct file_state *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec && a->entries == b->entries;
}

static int add_file(struct kmtls_watch *w, const char *path)
{
	struct kmtls_watch_file *v;
	char cwd[PATH_MAX], *abs;
	int i;

	if (!path)
		return 0;
	if (path[0] == '/')
		abs = strdup(path);
	else if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	if (!abs)
		return -1;
	for (i = 0; i < w->n_files; i++) {
		if (!strcmp(w->files[i].abs, abs)) {
			free(abs);
			return 0;
		}
	}
	v = realloc(w->files, (w->n_files + 1) * sizeof(*v));
	if (!v) {
		free(abs);
		return -1;
	}
	w->files = v;
	memset(&v[w->n_files], 0, sizeof(*v));
	v[w->n_files].abs = abs;
	v[w->n_files].path = strdup(path);
	if (!v[w->n_files].path) {
		free(abs);
		return -1;
	}
	w->n_files++;
	return 0;
}

static int add_conf(struct kmtls_watch *w, const struct kmtls_listener_conf *l)
{
	const char *paths[] = { l->cert, l->key, l->ca, l->ticket_keys };
	size_t i;
	int j;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (add_file(w, paths[i]))
			return -1;
	for (j = 0; j < l->crl.n; j++)
		if (add_file(w, l->crl.v[j]))
			return -1;
	return 0;
}

struct entries {
	struct kmtls_watch_entry *v;
	int n;
};

static void free_entries(struct kmtls_watch_entry *v, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(v[i].dir);
		free(v[i].name);
	}
	free(v);
}

/* kmtls_path_walk()'s callback: one more entry to watch. */
static int collect(const char *dir, const char *name, int final, void *arg)
{
	uint32_t mask = final ? FILE_MASK : ENTRY_MASK;
	struct entries *c = arg;
	struct kmtls_watch_entry *e;
	int i;

	for (i = 0; i < c->n; i++) {
		e = &c->v[i];
		if (!strcmp(e->dir, dir) &&
		    (e->name == name || (e->name && name && !strcmp(e->name, name)))) {
			e->mask |= mask;
			return 0;
		}
	}
	e = realloc(c->v, (c->n + 1) * sizeof(*e));
	if (!e)
		return -1;
	c->v = e;
	e = &e[c->n];
	e->wd = -1;
	e->mask = mask;
	e->dir = strdup(dir);
	e->name = name ? strdup(name) : NULL;
	if (!e->dir || (name && !e->name)) {
		free(e->dir);
		free(e->name);
		return -1;
	}
	c->n++;
	return 0;
}

/* The watch we had on @dir, for a directory we may no longer add one to. */
static int old_wd(const struct kmtls_watch *w, const char *dir)
{
	int i;

	for (i = 0; i < w->n_entries; i++)
		if (w->entries[i].wd >= 0 && !strcmp(w->entries[i].dir, dir))
			return w->entries[i].wd;
	return -2;
}

/*
 * inotify_add_watch() failed on @dir. At the start (@err set) that fails
 * watch-files when a watched file lives there; otherwise said once.
 */
static int watch_failed(struct kmtls_watch *w, const char *dir, uint32_t mask, int e,
			char *err, size_t errlen)
{
	const char *hint = e == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "";
	unsigned long h = (unsigned long)fnv(FNV_INIT, dir, strlen(dir));

	if (err && (mask & IN_CLOSE_WRITE)) {	/* a file's own directory */
		snprintf(err, errlen, "watch-files: cannot watch %s: %s%s", dir, strerror(e), hint);
		return -1;
	}
	if (w->warned_errno != e || w->warned_dir != h)
		log_warn("watch-files: cannot watch %s: %s%s; a change there goes unseen until another one nearby",
			 dir, strerror(e), hint);
	w->warned_errno = e;
	w->warned_dir = h;
	return 0;
}

/*
 * Watch every entry on the way to every file as the paths are now, and
 * drop the watches of directories no path goes through any more (renamed
 * away, replaced). 0, or -1 with @err (only set at the start).
 */
static int rewatch(struct kmtls_watch *w, char *err, size_t errlen)
{
	struct entries c = { NULL, 0 };
	uint32_t mask;
	int i, j, wd, e;

	for (i = 0; i < w->n_files; i++) {
		if (kmtls_path_walk(w->files[i].abs, collect, &c) < 0) {
			free_entries(c.v, c.n);
			if (err)
				snprintf(err, errlen, "watch-files: out of memory");
			else
				log_warn("watch-files: out of memory: watching as before");
			return -1;
		}
	}
	for (i = 0; i < c.n; i++) {
		if (c.v[i].wd != -1)
			continue;	/* its directory is done */
		mask = 0;
		for (j = i; j < c.n; j++)
			if (!strcmp(c.v[j].dir, c.v[i].dir))
				mask |= c.v[j].mask;
		/* Added to: two paths to one directory may want different events. */
		wd = inotify_add_watch(w->fd, c.v[i].dir, mask | IN_ONLYDIR | IN_MASK_ADD);
		if (wd < 0) {
			e = errno;
			wd = old_wd(w, c.v[i].dir);
			/* Gone again since the walk: its parent's event follows. */
			if (e != ENOENT && watch_failed(w, c.v[i].dir, mask, e, err, errlen)) {
				free_entries(c.v, c.n);
				return -1;
			}
		}
		for (j = i; j < c.n; j++)
			if (!strcmp(c.v[j].dir, c.v[i].dir))
				c.v[j].wd = wd;
	}
	for (i = 0; i < w->n_entries; i++) {
		wd = w->entries[i].wd;
		for (j = 0; wd >= 0 && j < c.n && c.v[j].wd != wd; j++)
			;
		if (wd >= 0 && j == c.n)
			inotify_rm_watch(w->fd, wd);	/* twice is EINVAL, harmless */
	}
	free_entries(w->entries, w->n_entries);
	w->entries = c.v;
	w->n_entries = c.n;
	w->n_dirs = 0;
	for (i = 0; i < c.n; i++) {
		for (j = 0; j < i && c.v[j].wd != c.v[i].wd; j++)
			;
		w->n_dirs += c.v[i].wd >= 0 && j == i;
	}
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
		if (add_conf(w, &cfg->listeners[i]))
			goto oom;
	for (i = 0; i < cfg->n_kernels; i++)
		if (add_conf(w, &cfg->kernels[i].tls))
			goto oom;
	/* A reload re-reads it too (reconfig.c): an edit is a change. */
	if (add_file(w, cfg->path))
		goto oom;
	if (rewatch(w, err, errlen))
		goto fail;
	/* After the watches: a change from now on is an event and a difference. */
	for (i = 0; i < w->n_files; i++)
		file_state(w->files[i].abs, &w->files[i].seen);
	return 0;
oom:
	snprintf(err, errlen, "watch-files: out of memory");
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

/* Can @ev change what a path names? (Its directory itself: always.) */
static int touches(const struct kmtls_watch *w, const struct inotify_event *ev)
{
	const struct kmtls_watch_entry *e;
	int i;

	if (ev->mask & IN_Q_OVERFLOW)
		return 1;
	for (i = 0; i < w->n_entries; i++) {
		e = &w->entries[i];
		if (e->wd == ev->wd && (!ev->len || !e->name || !strcmp(e->name, ev->name)))
			return 1;
	}
	return 0;
}

/* Read every queued event; 1 when one of them may matter. */
static int drain(const struct kmtls_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int hit = 0;
	ssize_t n;
	char *p;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			hit = hit || touches(w, ev);
		}
	}
	return hit;
}

static void say_waiting(struct kmtls_watch_file *f, int e)
{
	if (f->said == e)
		return;
	f->said = e;
	if (e == ENOENT || e == ENOTDIR)
		log_warn("watch-files: %s is gone (%s): serving with the files loaded before; kmtlsd reloads once it is back",
			 f->path, strerror(e));
	else
		log_warn("watch-files: %s cannot be read (%s): serving with the files loaded before until it can; with the sandbox on, kmtlsd reads only below the directories it started with, so a directory switched to outside them needs a restart",
			 f->path, strerror(e));
}

/* Compare each path with what it named at the last reload; reload on a difference. */
static void check(struct kmtls_watch *w)
{
	struct file_state *now = calloc(w->n_files, sizeof(*now));
	int i, first = -1, changed = 0, wait = -1;
	char more[48] = "";

	if (!now) {
		log_warn("watch-files: out of memory to compare the files: reloading");
		syscall(SYS_tgkill, getpid(), w->main_tid, SIGHUP);
		return;
	}
	for (i = 0; i < w->n_files; i++) {
		file_state(w->files[i].abs, &now[i]);
		if (!same_state(&now[i], &w->files[i].seen) && !changed++)
			first = i;
		if (!now[i].err)
			w->files[i].said = 0;
		else if (wait < 0)
			wait = i;
	}
	if (!changed) {
		log_debug("watch-files: every file is what it was: no reload");
	} else if (wait >= 0) {
		/* The reload would fail: wait for the next change instead. */
		say_waiting(&w->files[wait], now[wait].err);
	} else {
		for (i = 0; i < w->n_files; i++)
			w->files[i].seen = now[i];
		if (changed > 1)
			snprintf(more, sizeof(more), " and %d other file(s)", changed - 1);
		log_info("watch-files: %s%s changed: reloading as on SIGHUP", w->files[first].path,
			 more);
		syscall(SYS_tgkill, getpid(), w->main_tid, SIGHUP);
	}
	free(now);
}

static void *watch_main(void *arg)
{
	struct kmtls_watch *w = arg;
	struct pollfd p[2] = { { .fd = w->fd, .events = POLLIN },
			       { .fd = w->stop_fd, .events = POLLIN } };
	uint64_t first = 0, due = 0, now;
	int timeout;

	for (;;) {
		now = now_ms();
		timeout = !due ? -1 : due > now ? (int)(due - now) : 0;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		now = now_ms();
		if ((p[0].revents & POLLIN) && drain(w)) {
			/* At once, so that what happens next in a new directory is seen. */
			rewatch(w, NULL, 0);
			if (!first)
				first = now;
			due = now + KMTLS_WATCH_QUIET_MS;
			if (due > first + KMTLS_WATCH_MAX_WAIT_MS)
				due = first + KMTLS_WATCH_MAX_WAIT_MS;
			continue;
		}
		if (due && now >= due) {
			rewatch(w, NULL, 0);
			check(w);
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
	log_info("watch-files: watching %d path(s) through %d director%s; a change reloads once none came for %d ms",
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
		free(w->files[i].path);
		free(w->files[i].abs);
	}
	free(w->files);
	w->files = NULL;
	w->n_files = 0;
	free_entries(w->entries, w->n_entries);
	w->entries = NULL;
	w->n_entries = 0;
}
