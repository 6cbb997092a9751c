/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A BPF program's maps opened from the pin directory (agent/bpffs.h) and
 * checked against this build: hello_limit's (agent/rl_maps.c) and
 * hs_latency's (tools/kmtlsctl/lat_maps.c).
 */
#ifndef KMTLS_PINNED_MAPS_H
#define KMTLS_PINNED_MAPS_H

#include <stddef.h>

#include <linux/types.h>

/* A pinned map as this build lays it out, and where its fd goes. */
struct kmtls_pinned_map {
	const char *name;
	__u32 type, key_size, value_size;
	size_t off;		/* of its int fd in the caller's struct of fds */
};

/* What the operator is told when the maps are missing or foreign. */
struct kmtls_pinned_help {
	const char *missing;	/* after "cannot open PATH: <ENOENT>", or "" */
	const char *redo;	/* "detach everywhere": before removing the pins */
	const char *glob;	/* "hl_*": the pins to remove */
};

/*
 * Open @n maps into the fds at their offsets in @fds (-1 when not open).
 * 0; the -errno of the first that cannot be opened (-ENOENT: nothing
 * pinned yet); -EPROTO when one has another type, key or value size. On
 * failure every fd is closed again and @err says what, and what to do.
 */
int kmtls_pinned_maps_open(const struct kmtls_pinned_map *maps, size_t n, void *fds,
			   const struct kmtls_pinned_help *help, char *err, size_t errlen);

/* Close the fds that are open; all are -1 after. */
void kmtls_pinned_maps_close(const struct kmtls_pinned_map *maps, size_t n, void *fds);

#endif
