/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl: finding (or mounting) the cgroup v2 hierarchy, cgroup ids. */
#ifndef KMTLS_KMTLSCTL_CGROUP2_H
#define KMTLS_KMTLSCTL_CGROUP2_H

#include <stddef.h>

#include <linux/types.h>

/* Where kmtlsctl mounts cgroup2 when no mount of it exists anywhere. */
#define CTL_CGROUP2_PRIVATE	"/run/kmtls/cgroup2"

/*
 * The cgroup v2 root as mounted here: the first cgroup2 mount in
 * /proc/self/mounts (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
 * hosts). With none and @mount_missing, cgroup2 is mounted on
 * CTL_CGROUP2_PRIVATE (and stays mounted). 0, -ENOENT (none, not mounted),
 * or another -errno with @err set.
 */
int ctl_cgroup2_root(char *root, size_t len, int mount_missing, char *err, size_t errlen);

/*
 * Open the cgroup @arg (NULL: the root): an absolute path on a cgroup2
 * mount, or a path relative to the root. Its path goes to @path. An
 * O_RDONLY directory fd, or -1 with @err set.
 */
int ctl_cgroup_open(const char *arg, char *path, size_t len, char *err, size_t errlen);

/* The cgroup id of an open cgroup directory (what BPF link info reports). */
int ctl_cgroup_id(int fd, __u64 *id);

#endif
