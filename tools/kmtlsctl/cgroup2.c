// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cgroup v2 hierarchy, where cgroup BPF programs attach. It may be
 * mounted on /sys/fs/cgroup (unified hosts), on /sys/fs/cgroup/unified
 * (hybrid hosts, next to the v1 hierarchies), somewhere else, or nowhere
 * (v1-only hosts): the hierarchy exists anyway, so then it is mounted on
 * CTL_CGROUP2_PRIVATE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "../../agent/mkdirs.h"
#include "cgroup2.h"

static int is_cgroup2(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

/* The first cgroup2 mount point in /proc/self/mounts, 0 or -ENOENT. */
static int find_mount(char *root, size_t len)
{
	char line[4096], dev[256], dir[2048], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %2047s %63s", dev, dir, type) != 3)
			continue;
		/* Octal escapes (\040) would need decoding: such a mount is skipped. */
		if (strcmp(type, "cgroup2") || strchr(dir, '\\') || !is_cgroup2(dir))
			continue;
		if ((size_t)snprintf(root, len, "%s", dir) < len)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int ctl_cgroup2_root(char *root, size_t len, int mount_missing, char *err, size_t errlen)
{
	int ret = find_mount(root, len);

	if (ret != -ENOENT || !mount_missing) {
		if (ret && ret != -ENOENT)
			snprintf(err, errlen, "cannot read /proc/self/mounts: %s", strerror(-ret));
		else if (ret)
			snprintf(err, errlen, "cgroup2 is not mounted");
		return ret;
	}
	if (!is_cgroup2(CTL_CGROUP2_PRIVATE)) {
		ret = kmtls_mkdirs(CTL_CGROUP2_PRIVATE, 0755);
		if (!ret && mount("cgroup2", CTL_CGROUP2_PRIVATE, "cgroup2", 0, NULL))
			ret = -errno;
		if (ret) {
			snprintf(err, errlen, "no cgroup2 mount, and mounting one on %s failed: %s",
				 CTL_CGROUP2_PRIVATE, strerror(-ret));
			return ret;
		}
	}
	if ((size_t)snprintf(root, len, "%s", CTL_CGROUP2_PRIVATE) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int ctl_cgroup_open(const char *arg, char *path, size_t len, char *err, size_t errlen)
{
	char root[2048];
	int fd, n;

	if (arg && arg[0] == '/') {
		n = snprintf(path, len, "%s", arg);
	} else {
		if (ctl_cgroup2_root(root, sizeof(root), 1, err, errlen))
			return -1;
		n = arg && *arg ? snprintf(path, len, "%s/%s", root, arg) :
				  snprintf(path, len, "%s", root);
	}
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "cgroup path too long");
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open cgroup %s: %s", path, strerror(errno));
		return -1;
	}
	if (!is_cgroup2(path)) {
		snprintf(err, errlen, "%s is not a cgroup v2 directory", path);
		close(fd);
		return -1;
	}
	return fd;
}

int ctl_cgroup_id(int fd, __u64 *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(__u64)];
	} h;
	int mount_id;

	/* The kernfs file handle of a cgroup directory is its id. */
	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(__u64);
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH))
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}
