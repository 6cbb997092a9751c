// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for kmtlsd's configuration parser (agent/config.c):
 * each input is a kmtlsd.conf, loaded with kmtls_config_load(), validated
 * with kmtls_config_validate() when it loaded, then freed. LeakSanitizer
 * checks that neither path leaks, ASan and UBSan everything else.
 *
 * Beyond "no crash, no leak", what the parser promises is checked:
 *
 *  - a refusal always comes with a sentence, NUL-terminated inside the
 *    buffer, and a load error starts with the file's path (file:line: ...);
 *  - a config that loaded has listeners and kernel profiles with distinct,
 *    well-formed names and every string either NULL or non-empty.
 *
 * The input reaches the parser through a memfd named by /proc/self/fd/N,
 * rewritten per input, so fuzzing writes nothing to disk. Validation opens
 * the files the config names; it runs in a scratch directory holding the
 * names the seeds use (server.pem, server.key, ca.pem, crl.pem, cadir/,
 * open.key with mode 0644) made under $TMPDIR (/tmp), and only for
 * configs whose paths stay inside that directory, so the fuzzer cannot
 * open devices such as a watchdog.
 * The process sits in that directory only while validating: libFuzzer
 * reads its corpus and writes crash inputs relative to where it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../agent/config.h"

static int conf_fd = -1, home_fd = -1;
static char conf_path[64];
static char scratch[256];

static void die(const char *what)
{
	fprintf(stderr, "config_fuzz: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put(const char *name, mode_t mode)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, "stand-in\n", 9) != 9 || fchmod(fd, mode))
		die(name);
	close(fd);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void cleanup(void)
{
	nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	const char *tmp = getenv("TMPDIR");

	snprintf(scratch, sizeof(scratch), "%s/kmtls-config-fuzz.XXXXXX",
		 tmp && tmp[0] == '/' ? tmp : "/tmp");
	home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (home_fd < 0 || !mkdtemp(scratch) || chdir(scratch))
		die("scratch directory");
	atexit(cleanup);
	put("server.pem", 0644);
	put("server.key", 0600);
	put("ca.pem", 0644);
	put("crl.pem", 0644);
	put("open.key", 0644);
	if (mkdir("cadir", 0755))
		die("cadir");
	/* libFuzzer reads the corpus and writes crashes where it started. */
	if (fchdir(home_fd))
		die("back home");
	conf_fd = memfd_create("kmtlsd.conf", MFD_CLOEXEC);
	if (conf_fd < 0)
		die("memfd_create");
	snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	return 0;
}

/* Relative, no "..": the name resolves inside the scratch directory. */
static int path_inside(const char *p)
{
	const char *s;

	if (!p)
		return 1;
	if (p[0] == '/')
		return !strncmp(p, scratch, strlen(scratch)) &&
		       p[strlen(scratch)] == '/' && !strstr(p, "/..");
	for (s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '/' || !s[2]))
			return 0;
	return 1;
}

static int listener_inside(const struct kmtls_listener_conf *l)
{
	int i;

	for (i = 0; i < l->crl.n; i++)
		if (!path_inside(l->crl.v[i]))
			return 0;
	return path_inside(l->cert) && path_inside(l->key) && path_inside(l->ca);
}

static void check_err(const char *err, size_t len, const char *prefix)
{
	if (!memchr(err, '\0', len) || !err[0])
		abort();	/* a refusal without a sentence */
	if (prefix && strncmp(err, prefix, strlen(prefix)))
		abort();	/* the operator cannot tell which file */
}

static void check_str(const char *s)
{
	if (s && !s[0])
		abort();	/* an empty value must be refused, not kept */
}

static void check_strlist(const struct kmtls_strlist *sl)
{
	int i;

	if (sl->n < 0 || (sl->n && !sl->v))
		abort();
	for (i = 0; i < sl->n; i++)
		if (!sl->v[i] || !sl->v[i][0])
			abort();
}

/* What a listener and a kernel profile share: name, TLS files, policy. */
static void check_tls(const struct kmtls_listener_conf *l)
{
	if (!l->name || !l->name[0] || strlen(l->name) > 64 ||
	    strspn(l->name, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(l->name))
		abort();
	check_str(l->listen);
	check_str(l->backend);
	check_str(l->cert);
	check_str(l->key);
	check_str(l->ca);
	check_strlist(&l->crl);
	check_strlist(&l->allow_uri);
	check_strlist(&l->allow_dns);
	check_strlist(&l->allow_cn);
	if (l->tls_min != 0x0303 && l->tls_min != 0x0304)
		abort();
	if (!l->handshake_timeout_ms || !l->connect_timeout_ms ||
	    !l->max_connections || l->max_connections > 1000000)
		abort();
}

static void check_loaded(const struct kmtls_config *cfg)
{
	int i, j;

	if (cfg->n_listeners < 0 || (cfg->n_listeners && !cfg->listeners) ||
	    cfg->n_kernels < 0 || (cfg->n_kernels && !cfg->kernels))
		abort();
	check_str(cfg->user);
	check_str(cfg->status_listen);
	for (i = 0; i < cfg->n_listeners; i++) {
		check_tls(&cfg->listeners[i]);
		for (j = 0; j < i; j++)
			if (!strcmp(cfg->listeners[j].name, cfg->listeners[i].name))
				abort();
	}
	for (i = 0; i < cfg->n_kernels; i++) {
		check_tls(&cfg->kernels[i].tls);
		if (cfg->kernels[i].allow_uid.n < 0 ||
		    kmtls_config_kernel(cfg, cfg->kernels[i].tls.name) != &cfg->kernels[i])
			abort();	/* names are unique: lookup finds this one */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmtls_config cfg;
	char err[1024];
	int i, inside = 1;

	if (ftruncate(conf_fd, 0) || pwrite(conf_fd, data, size, 0) != (ssize_t)size)
		die("memfd write");
	memset(err, 0xa5, sizeof(err));
	if (kmtls_config_load(&cfg, conf_path, err, sizeof(err))) {
		check_err(err, sizeof(err), conf_path);
		/* Must be a no-op on what a failed load left behind. */
		kmtls_config_free(&cfg);
		return 0;
	}
	check_loaded(&cfg);
	for (i = 0; i < cfg.n_listeners; i++)
		inside &= listener_inside(&cfg.listeners[i]);
	for (i = 0; i < cfg.n_kernels; i++)
		inside &= listener_inside(&cfg.kernels[i].tls);
	memset(err, 0xa5, sizeof(err));
	if (inside) {
		if (chdir(scratch))
			die("scratch directory");
		if (kmtls_config_validate(&cfg, err, sizeof(err)))
			check_err(err, sizeof(err), NULL);
		if (fchdir(home_fd))
			die("back home");
	}
	kmtls_config_free(&cfg);
	return 0;
}
