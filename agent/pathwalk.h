/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_PATHWALK_H
#define KMTLS_PATHWALK_H

/*
 * Every directory entry that the kernel looks up to open a path: what
 * path names can change only when one of these entries does (a file, a
 * directory or a symlink on the way is created, removed, renamed over or
 * switched), so watch-files watches exactly these.
 *
 * For each lookup, @fn gets the directory (a path without symlinks) and
 * the name looked up in it; @final is 1 when that entry is the file the
 * path names, or would be if it existed (not a directory or symlink on
 * the way there). When the path
 * names a directory (a CA directory), a last call has @name NULL and
 * @dir that directory. A name that does not exist is still passed (its
 * creation matters); the walk stops there.
 */
typedef int (*kmtls_walk_fn)(const char *dir, const char *name, int final, void *arg);

/*
 * Walk absolute @path with lstat and readlink, following symlinks as
 * open() does. 0 when the path names something, an errno where the walk
 * stopped (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EACCES...), or -1 when
 * @fn returned non-zero (then the walk stops there).
 */
int kmtls_path_walk(const char *path, kmtls_walk_fn fn, void *arg);

#endif
