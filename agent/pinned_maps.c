// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Pinned maps opened by name and checked against this build's layout
 * (agent/pinned_maps.h): maps pinned by another kmtls version must not be
 * read or written as if they were ours.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

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
