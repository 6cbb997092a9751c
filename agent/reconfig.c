// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * SIGHUP re-reads the config file kmtlsd started with and applies, to the
 * listeners and [kernel NAME] profiles it runs (matched by name), what can
 * change under a running kmtlsd:
 *
 *  - the policy: allow-uri, allow-dns, allow-cn, allow-uid;
 *  - what only goes into a new TLS context: tls-min, ciphers, groups, and
 *    allow-insecure-key-perms (checked as the files are read).
 *
 * They come with the TLS context built from them, swapped in together
 * (listener.h): new connections get both, connections already open and
 * handshakes in flight keep what they began with, and a resumed session is
 * re-checked against the policy of the context that resumes it.
 *
 * Everything else keeps its value until a restart, and the log names the
 * key and says so:
 *  - listen, mode, backend, tcp-fastopen: sockets bound at start;
 *  - ktls, proxy-protocol, server-name, the timeouts, max-connections:
 *    the workers read them for every connection, without a lock;
 *  - cert, key, ca, crl, ticket-keys: the paths the sandbox (Landlock) and
 *    watch-files were set up for (their files' contents reload as always);
 *  - [kmtlsd] keys (those given as flags are the command line's), and
 *    listeners or profiles added or removed.
 * [ratelimit] is applied by its own process (ratelimit.c).
 *
 * A file that does not parse or validate changes nothing of the
 * configuration; the log says why (file, line, key), and the certificates,
 * keys, CAs and CRLs are re-read with the configuration in use, as on any
 * SIGHUP: a typo must not hold back a new CRL.
 *
 * Only the main thread reads the reloadable keys in the running
 * configuration (policies are copies): they are swapped in place once the
 * context built from them is in use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconfig.h"

static const char *const live_keys[] = {
	"allow-uri", "allow-dns", "allow-cn", "allow-uid",
	"tls-min", "ciphers", "groups", "allow-insecure-key-perms",
};

#define N_LIVE (sizeof(live_keys) / sizeof(live_keys[0]))

static int is_live(const char *key)
{
	size_t i;

	for (i = 0; i < N_LIVE; i++)
		if (!strcmp(live_keys[i], key))
			return 1;
	return 0;
}

static int listener_index(const struct kmtls_config *cfg, const char *name)
{
	int i;

	for (i = 0; cfg && i < cfg->n_listeners; i++)
		if (!strcmp(cfg->listeners[i].name, name))
			return i;
	return -1;
}

struct kmtls_listener_conf *kmtls_reconfig_listener(struct kmtls_config *file,
						    const char *name)
{
	int i = listener_index(file, name);

	return i < 0 ? NULL : &file->listeners[i];
}

struct kmtls_kernel_conf *kmtls_reconfig_kernel(struct kmtls_config *file,
						const char *name)
{
	int i;

	for (i = 0; file && i < file->n_kernels; i++)
		if (!strcmp(file->kernels[i].tls.name, name))
			return &file->kernels[i];
	return NULL;
}

/* Shallow copies of the reloadable keys (those table @t has). */
static void take_live(enum kmtls_conf_table t, void *dst, const void *src)
{
	size_t i;

	for (i = 0; i < N_LIVE; i++)
		kmtls_config_copy_key(t, dst, src, live_keys[i]);
}

void kmtls_reconfig_effective_listener(struct kmtls_listener_conf *out,
				       const struct kmtls_listener_conf *cur,
				       const struct kmtls_listener_conf *file)
{
	*out = *cur;
	if (file)
		take_live(KMTLS_CONF_LISTENER, out, file);
}

void kmtls_reconfig_effective_kernel(struct kmtls_kernel_conf *out,
				     const struct kmtls_kernel_conf *cur,
				     const struct kmtls_kernel_conf *file)
{
	*out = *cur;
	if (file)
		take_live(KMTLS_CONF_KERNEL, out, file);
}

void kmtls_reconfig_share_live(struct kmtls_listener_conf *dst,
			       const struct kmtls_listener_conf *src)
{
	take_live(KMTLS_CONF_LISTENER, dst, src);
}

/* ---- what changed ------------------------------------------------------- */

struct diff_ctx {
	const char *section;	/* "listener web" */
	const char *path;
	const struct kmtls_strlist *skip;	/* keys not to compare */
	int live;		/* report the reloadable keys, else the others */
};

/* "value" in quotes, or none when the key is not set. */
static const char *quoted(const char *v, char *buf, size_t len)
{
	if (!*v)
		return "none";
	snprintf(buf, len, "\"%s\"", v);
	return buf;
}

static void on_diff(void *arg, const char *key, const char *was, const char *now)
{
	struct diff_ctx *d = arg;
	char a[520], b[520];

	if ((d->skip && kmtls_strlist_has(d->skip, key)) || is_live(key) != d->live)
		return;
	if (d->live)
		log_info("reload: [%s] %s = %s (was %s)", d->section, key,
			 quoted(now, a, sizeof(a)), quoted(was, b, sizeof(b)));
	else
		log_warn("reload: [%s] %s = %s in %s, running with %s: restart kmtlsd to apply it",
			 d->section, key, quoted(now, a, sizeof(a)), d->path,
			 quoted(was, b, sizeof(b)));
}

static void adopt(enum kmtls_conf_table t, const char *section, void *cur, void *file)
{
	struct diff_ctx d = { .section = section, .live = 1 };
	size_t i;

	kmtls_config_diff(t, cur, file, on_diff, &d);
	for (i = 0; i < N_LIVE; i++)
		kmtls_config_swap_key(t, cur, file, live_keys[i]);
}

void kmtls_reconfig_adopt_listener(struct kmtls_listener_conf *cur,
				   struct kmtls_listener_conf *file)
{
	char sec[128];

	snprintf(sec, sizeof(sec), "listener %s", cur->name);
	adopt(KMTLS_CONF_LISTENER, sec, cur, file);
}

void kmtls_reconfig_adopt_kernel(struct kmtls_kernel_conf *cur,
				 struct kmtls_kernel_conf *file)
{
	char sec[128];

	snprintf(sec, sizeof(sec), "kernel %s", cur->tls.name);
	adopt(KMTLS_CONF_KERNEL, sec, cur, file);
}

/* The changes that wait for a restart, and sections added or removed. */
static void report_restart(const struct kmtls_config *cur, struct kmtls_config *file)
{
	struct diff_ctx d = { .path = cur->path, .section = "kmtlsd", .skip = &cur->cmdline };
	const char *name;
	char sec[128];
	int i;

	kmtls_config_diff(KMTLS_CONF_GLOBAL, cur, file, on_diff, &d);
	d.skip = NULL;
	d.section = sec;
	for (i = 0; i < cur->n_listeners; i++) {
		name = cur->listeners[i].name;
		snprintf(sec, sizeof(sec), "listener %s", name);
		if (kmtls_reconfig_listener(file, name))
			kmtls_config_diff(KMTLS_CONF_LISTENER, &cur->listeners[i],
					  kmtls_reconfig_listener(file, name), on_diff, &d);
		else
			log_warn("reload: [%s] is no longer in %s: restart kmtlsd to apply it (it serves as before until then)",
				 sec, cur->path);
	}
	for (i = 0; i < file->n_listeners; i++)
		if (listener_index(cur, file->listeners[i].name) < 0)
			log_warn("reload: [listener %s] is new in %s: restart kmtlsd to apply it (not served until then)",
				 file->listeners[i].name, cur->path);
	for (i = 0; i < cur->n_kernels; i++) {
		name = cur->kernels[i].tls.name;
		snprintf(sec, sizeof(sec), "kernel %s", name);
		if (kmtls_reconfig_kernel(file, name))
			kmtls_config_diff(KMTLS_CONF_KERNEL, &cur->kernels[i],
					  kmtls_reconfig_kernel(file, name), on_diff, &d);
		else
			log_warn("reload: [%s] is no longer in %s: restart kmtlsd to apply it (it serves as before until then)",
				 sec, cur->path);
	}
	for (i = 0; i < file->n_kernels; i++)
		if (!kmtls_config_kernel(cur, file->kernels[i].tls.name))
			log_warn("reload: [kernel %s] is new in %s: restart kmtlsd to apply it (not served until then)",
				 file->kernels[i].tls.name, cur->path);
}

/*
 * The running configuration with @file's reloadable keys, checked as at
 * start (files readable, private keys not exposed...). Shallow copies.
 */
static int validate(const struct kmtls_config *cur, struct kmtls_config *file,
		    char *err, size_t errlen)
{
	struct kmtls_config eff = *cur;
	int i, ret = -1;

	eff.listeners = calloc(cur->n_listeners + 1, sizeof(*eff.listeners));
	eff.kernels = calloc(cur->n_kernels + 1, sizeof(*eff.kernels));
	if (!eff.listeners || !eff.kernels) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < cur->n_listeners; i++)
		kmtls_reconfig_effective_listener(&eff.listeners[i], &cur->listeners[i],
						  kmtls_reconfig_listener(file, cur->listeners[i].name));
	for (i = 0; i < cur->n_kernels; i++)
		kmtls_reconfig_effective_kernel(&eff.kernels[i], &cur->kernels[i],
						kmtls_reconfig_kernel(file, cur->kernels[i].tls.name));
	ret = kmtls_config_validate(&eff, err, errlen);
out:
	free(eff.listeners);
	free(eff.kernels);
	return ret;
}

struct kmtls_config *kmtls_reconfig_read(const struct kmtls_config *cur)
{
	struct kmtls_config *file;
	char err[1024];

	if (!cur->path)
		return NULL;
	file = calloc(1, sizeof(*file));
	if (!file) {
		log_err("reload: %s: out of memory; keeping the previous configuration", cur->path);
		return NULL;
	}
	if (kmtls_config_load(file, cur->path, err, sizeof(err))) {
		log_err("reload: %s; keeping the previous configuration (certificates, keys, CAs and CRLs are still re-read)",
			err);
		free(file);
		return NULL;
	}
	if (validate(cur, file, err, sizeof(err))) {
		log_err("reload: %s: %s; keeping the previous configuration (certificates, keys, CAs and CRLs are still re-read)",
			cur->path, err);
		kmtls_reconfig_free(file);
		return NULL;
	}
	report_restart(cur, file);
	return file;
}

void kmtls_reconfig_free(struct kmtls_config *file)
{
	if (!file)
		return;
	kmtls_config_free(file);
	free(file);
}
