// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pinned maps opened by name and checked against this build's layout
 * (agent/pinned_maps.h): maps pinned by another kmtls version must not be
 * read or written as if they were ours.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpffs.h"
#include "pinned_maps.h"

static int *fd_of(const struct kmtls_pinned_map *map, void *fds)
{
	return (int *)((char *)fds + map->off);
}

void kmtls_pinned_maps_close(const struct kmtls_pinned_map *maps, size_t n, void *fds)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int *fd = fd_of(&maps[i], fds);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

int kmtls_pinned_maps_open(const struct kmtls_pinned_map *maps, size_t n, void *fds,
			   const struct kmtls_pinned_help *help, char *err, size_t errlen)
{
	char path[4096];
	size_t i;
	int ret = 0, e;

	for (i = 0; i < n; i++)
		*fd_of(&maps[i], fds) = -1;
	for (i = 0; i < n; i++) {
		const struct kmtls_pinned_map *w = &maps[i];
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		int fd;

		if (kmtls_pin_path(path, sizeof(path), w->name)) {
			snprintf(err, errlen, "%s/%s: path too long", kmtls_pin_dir(), w->name);
			ret = -ENAMETOOLONG;
			break;
		}
		fd = bpf_obj_get(path);
		if (fd < 0) {
			e = errno;
			ret = -e;
			snprintf(err, errlen, "cannot open %s: %s%s", path, strerror(e),
				 e == ENOENT ? help->missing : "");
			break;
		}
		*fd_of(w, fds) = fd;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != w->type ||
		    info.key_size != w->key_size || info.value_size != w->value_size) {
			snprintf(err, errlen, "%s does not have the layout of this kmtlsctl "
				 "(another kmtls version?); %s and remove %s/%s to start over",
				 path, help->redo, kmtls_pin_dir(), help->glob);
			ret = -EPROTO;
			break;
		}
	}
	if (ret)
		kmtls_pinned_maps_close(maps, n, fds);
	return ret;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN && !getenv("KMTLSCTL_DEBUG") && !getenv("KMTLS_BPF_DEBUG"))
		return 0;
	fprintf(stderr, "libbpf: ");
	return vfprintf(stderr, fmt, ap);
}

void kmtls_bpf_quiet_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}

void kmtls_pinned_load_failed(const char *prog, int ret, const struct kmtls_pinned_help *help,
			      char *err, size_t errlen)
{
	if (ret == -EPERM || ret == -EACCES)
		snprintf(err, errlen, "cannot load %s: %s (loading BPF programs needs CAP_BPF or "
			 "CAP_SYS_ADMIN, and the pin directory %s must be writable: run as root)",
			 prog, strerror(-ret), kmtls_pin_dir());
	else
		snprintf(err, errlen, "cannot load %s: %s (maps pinned under %s by another kmtls "
			 "version? %s, then remove %s/%s)", prog, strerror(-ret), kmtls_pin_dir(),
			 help->redo, kmtls_pin_dir(), help->glob);
}

int kmtls_pinned_config_init(struct bpf_map *map, const char *name, const void *defaults,
			     size_t size, __u32 version, char *err, size_t errlen)
{
	unsigned char cur[4096];
	__u32 zero = 0, have;
	int ret = size > sizeof(cur) || size < sizeof(have) ? -EINVAL : 0;

	if (!ret)
		ret = bpf_map__lookup_elem(map, &zero, sizeof(zero), cur, size, 0);
	if (!ret) {
		memcpy(&have, cur, sizeof(have));
		if (have == 0)
			ret = bpf_map__update_elem(map, &zero, sizeof(zero), defaults, size,
						   BPF_ANY);
		else if (have != version)
			ret = -EPROTO;
	}
	if (ret)
		snprintf(err, errlen, "%s/%s: %s", kmtls_pin_dir(), name,
			 ret == -EPROTO ? "configuration from another kmtls version" :
			 strerror(-ret));
	return ret;
}
