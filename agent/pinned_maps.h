/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A BPF program's maps opened from the pin directory (agent/bpffs.h) and
 * checked against this build, and the load steps the two skeletons share:
 * hello_limit's (agent/rl_maps.c) and hs_latency's (tools/kmtlsctl/lat_maps.c).
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

struct bpf_map;

/*
 * Libbpf's messages go to stderr: warnings always, the rest with
 * KMTLSCTL_DEBUG or KMTLS_BPF_DEBUG set.
 */
void kmtls_bpf_quiet_libbpf(void);

/*
 * After @prog's skeleton failed to load with @ret: what happened and what
 * to do in @err (no capability; maps pinned by another kmtls version).
 */
void kmtls_pinned_load_failed(const char *prog, int ret, const struct kmtls_pinned_help *help,
			      char *err, size_t errlen);

/*
 * Slot 0 of the loaded configuration map @map (its value starts with a
 * __u32 version, @size bytes): written from @defaults when still zero
 * (a fresh pin), refused when its version is not @version. 0, or -errno
 * with @err set (-EPROTO: from another kmtls version).
 */
int kmtls_pinned_config_init(struct bpf_map *map, const char *name, const void *defaults,
			     size_t size, __u32 version, char *err, size_t errlen);

#endif
