// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The lookups behind a path, done by hand rather than by realpath(): the
 * watcher needs each directory and name on the way, symlinks included,
 * not only where the path ends up (see pathwalk.h).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pathwalk.h"

#define WALK_MAX_LINKS	40	/* the kernel's MAXSYMLINKS */

/* @dir "/" @name (@len bytes) into @out (PATH_MAX). */
static int join(char *out, const char *dir, const char *name, size_t len)
{
	size_t dlen = strcmp(dir, "/") ? strlen(dir) : 0;

	if (dlen + 1 + len + 1 > PATH_MAX)
		return ENAMETOOLONG;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, name, len);
	out[dlen + 1 + len] = '\0';
	return 0;
}

/* @dir has no symlinks in it, so its parent is what ".." finds. */
static void up(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
}

int kmtls_path_walk(const char *path, kmtls_walk_fn fn, void *arg)
{
	char cur[PATH_MAX] = "/", next[PATH_MAX], link[PATH_MAX];
	char rest[2 * PATH_MAX], tmp[2 * PATH_MAX], name[NAME_MAX + 1];
	int links = 0, last, e;
	const char *p;
	struct stat st;
	size_t len;
	ssize_t n;

	if (path[0] != '/')
		return EINVAL;
	if (strlen(path) >= sizeof(rest))
		return ENAMETOOLONG;
	strcpy(rest, path);
	p = rest;
	for (;;) {
		p += strspn(p, "/");
		if (!*p)	/* the path names a directory: cur */
			return fn(cur, NULL, 1, arg) ? -1 : 0;
		len = strcspn(p, "/");
		if (len > NAME_MAX)
			return ENAMETOOLONG;
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		last = !p[strspn(p, "/")];
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			up(cur);
			continue;
		}
		e = join(next, cur, name, len);
		if (e)
			return e;
		if (lstat(next, &st)) {
			e = errno;
			return fn(cur, name, last, arg) ? -1 : e;
		}
		if (S_ISDIR(st.st_mode)) {
			if (fn(cur, name, 0, arg))
				return -1;
			strcpy(cur, next);
			continue;
		}
		if (!S_ISLNK(st.st_mode)) {
			if (fn(cur, name, last, arg))
				return -1;
			return last ? 0 : ENOTDIR;
		}
		/* A symlink: its target, then what was left of the path. */
		if (fn(cur, name, 0, arg))
			return -1;
		if (++links > WALK_MAX_LINKS)
			return ELOOP;
		n = readlink(next, link, sizeof(link) - 1);
		if (n <= 0)
			return n ? errno : ENOENT;
		link[n] = '\0';
		if ((size_t)n + strlen(p) >= sizeof(tmp))
			return ENAMETOOLONG;
		strcpy(tmp, link);
		strcat(tmp, p);	/* p is "" or starts with '/' */
		strcpy(rest, tmp);
		p = rest;
		if (link[0] == '/')
			strcpy(cur, "/");
	}
}
