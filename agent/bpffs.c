// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pin directory of kmtlsd and kmtlsctl: /sys/fs/bpf/kmtls unless
 * $KMTLS_BPF_PIN_DIR says otherwise (tests use their own bpffs mount). bpffs may not be mounted at
 * all on a fresh host: it is mounted on /sys/fs/bpf here when the pin
 * directory lives below it, as systemd would have done.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "bpffs.h"
#include "mkdirs.h"

const char *kmtls_pin_dir(void)
{
	const char *d = getenv("KMTLS_BPF_PIN_DIR");

	return d && *d ? d : KMTLS_PIN_DIR_DEFAULT;
}

int kmtls_pin_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", kmtls_pin_dir(), name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int kmtls_pin_dir_exists(void)
{
	return is_bpffs(kmtls_pin_dir());
}

int kmtls_pin_dir_prepare(char *err, size_t errlen)
{
	const char *dir = kmtls_pin_dir();
	size_t rl = strlen(KMTLS_BPFFS_ROOT);
	int ret;

	if (is_bpffs(dir))
		return 0;
	if (!strncmp(dir, KMTLS_BPFFS_ROOT "/", rl + 1) && !is_bpffs(KMTLS_BPFFS_ROOT)) {
		ret = kmtls_mkdirs(KMTLS_BPFFS_ROOT, 0700);
		if (!ret && mount("bpf", KMTLS_BPFFS_ROOT, "bpf", 0, "mode=0700"))
			ret = -errno;
		if (ret) {
			snprintf(err, errlen, "no bpf filesystem on %s and mounting one failed: %s%s",
				 KMTLS_BPFFS_ROOT, strerror(-ret), ret == -EPERM ?
				 " (needs CAP_SYS_ADMIN: run as root, or mount it first: "
				 "mount -t bpf bpf " KMTLS_BPFFS_ROOT ")" : "");
			return -1;
		}
	}
	ret = kmtls_mkdirs(dir, 0700);
	if (ret) {
		snprintf(err, errlen, "cannot create the pin directory %s: %s%s", dir,
			 strerror(-ret), ret == -EROFS ? " (read-only: under systemd, "
			 "ReadWritePaths=" KMTLS_BPFFS_ROOT ")" : ret == -EACCES || ret == -EPERM ?
			 " (run as root)" : "");
		return -1;
	}
	if (!is_bpffs(dir)) {
		snprintf(err, errlen, "%s is not on a bpf filesystem (mount -t bpf bpf DIR, "
			 "or unset KMTLS_BPF_PIN_DIR)", dir);
		return -1;
	}
	return 0;
}

int kmtls_pin_dir_lock(void)
{
	int fd = open(kmtls_pin_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return -1;
	}
	return fd;
}
