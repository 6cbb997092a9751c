// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd: terminate mutual TLS in front of plaintext backends, with the
 * record layer in the kernel (kTLS) where it can be.
 *
 * A single listener can be given with flags; every flag is also a key of a
 * [listener NAME] section in the config file, handled by the same setter.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/kmtls/kmtlsd.conf"

enum { OPT_LISTENER = 0x100, OPT_CHECK, OPT_WORKERS, OPT_LOG_LEVEL, OPT_STATUS, OPT_USER,
       OPT_SANDBOX };

/* Listener flags: the long name is also the config key. */
static const char *const listener_flags[] = {
	"mode", "server-name", "ticket-keys", "listen", "backend", "cert", "key", "ca", "crl", "allow-uri",
	"allow-dns", "allow-cn", "ktls", "proxy-protocol", "tls-min",
	"ciphers", "groups", "handshake-timeout", "idle-timeout",
	"connect-timeout", "max-connections", "tcp-fastopen",
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kmtlsd [-c FILE] [--foreground] [--check-config] [--workers N]\n"
		"              [--log-level LEVEL] [--status-listen 127.0.0.1:PORT|unix:/path]\n"
		"              [--user USER] [--sandbox on|off]\n"
		"       kmtlsd [--mode terminate] --listen ADDR:PORT --backend ADDR:PORT|unix:/path --cert PEM --key PEM\n"
		"              --ca PEM|DIR [--crl PEM]... [--allow-uri GLOB]... [--allow-dns NAME]...\n"
		"              [--allow-cn NAME]... [--ktls auto|require|off] [--proxy-protocol none|v2|v2-cert]\n"
		"              [--tls-min 1.2|1.3] [--ciphers LIST] [--groups LIST]\n"
		"              [--handshake-timeout 10s] [--idle-timeout 300s] [--connect-timeout 5s]\n"
		"              [--max-connections N] [--tcp-fastopen QLEN] [--allow-insecure-key-perms]\n"
		"       kmtlsd --mode originate --listen ADDR:PORT|unix:/path --backend ADDR:PORT\n"
		"              --server-name NAME --cert CLIENT.pem --key CLIENT.key --ca SERVER-CA.pem [...]\n"
		"       kmtlsd --version\n"
		"Config file default: " DEFAULT_CONFIG " (used when no listener flag is given).\n"
		"The kernel service (kmtls.ko, /dev/kmtls) is configured by [kernel NAME] sections.\n");
}

struct args {
	int argc;
	char **argv;
	const char *config;
	struct kmtls_config global;	/* [kmtlsd] keys given as flags */
	int has_workers, has_log_level, has_status;
	const char *user;
	int sandbox;			/* -1: as configured */
	int foreground, check;
	struct kmtls_config flags;	/* the listener given by flags, if any */
	struct kmtls_config file;	/* or the config file's */
};

static int add_flag(struct args *a, const char *key, const char *value)
{
	struct kmtls_listener_conf *l = a->flags.n_listeners ? &a->flags.listeners[0] :
					kmtls_config_add_listener(&a->flags, "default");
	char err[512];

	if (!l || kmtls_listener_set(l, key, value, err, sizeof(err))) {
		fprintf(stderr, "kmtlsd: --%s: %s\n", key, l ? err : "out of memory");
		return -1;
	}
	return 0;
}

/* A [kmtlsd] key as a flag: checked like the file's; 0, or -1 said. */
static int global_flag(struct args *a, const char *key, const char *value, int *has)
{
	char err[512];

	if (kmtls_config_set_global(&a->global, key, value, err, sizeof(err))) {
		fprintf(stderr, "kmtlsd: --%s: %s\n", key, err);
		return -1;
	}
	*has = 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	struct option opts[40] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "status-listen", required_argument, NULL, OPT_STATUS },
		{ "user", required_argument, NULL, OPT_USER },
		{ "sandbox", required_argument, NULL, OPT_SANDBOX },
		{ "allow-insecure-key-perms", no_argument, NULL, OPT_LISTENER },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
	};
	size_t base = 11, i;
	uint64_t seen = 0;	/* listener flags given, by index in opts */
	int c, idx;

	_Static_assert(sizeof(opts) / sizeof(opts[0]) <= 64, "seen has a bit per option");
	for (i = 0; i < sizeof(listener_flags) / sizeof(listener_flags[0]); i++)
		opts[base + i] = (struct option){ listener_flags[i], required_argument, NULL, OPT_LISTENER };
	while ((c = getopt_long(argc, argv, "c:fhV", opts, &idx)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'f': a->foreground = 1; break;
		case OPT_CHECK: a->check = 1; break;
		case OPT_WORKERS:
			if (global_flag(a, "workers", optarg, &a->has_workers))
				return -1;
			break;
		case OPT_LOG_LEVEL:
			if (global_flag(a, "log-level", optarg, &a->has_log_level))
				return -1;
			break;
		case OPT_STATUS:
			if (global_flag(a, "status-listen", optarg, &a->has_status))
				return -1;
			break;
		case OPT_USER:
			a->user = optarg;
			break;
		case OPT_SANDBOX:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "kmtlsd: --sandbox: expected on or off\n");
				return -1;
			}
			a->sandbox = strcmp(optarg, "on") ? KMTLS_SANDBOX_OFF : KMTLS_SANDBOX_ON;
			break;
		case OPT_LISTENER:
			/* As in the file: a second --cert would silently win. */
			if ((seen & (1ull << idx)) && !kmtls_listener_key_repeats(opts[idx].name)) {
				fprintf(stderr, "kmtlsd: --%s is given twice: keep one\n",
					opts[idx].name);
				return -1;
			}
			seen |= 1ull << idx;
			if (add_flag(a, opts[idx].name, optarg ? optarg : "true"))
				return -1;
			break;
		case 'V': kmtls_print_version(stdout, "kmtlsd"); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kmtlsd: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	return 0;
}

/*
 * A [kmtlsd] key the command line set: a reload keeps the flag's value
 * without a word (out of memory, it warns that a restart would change it).
 */
static void cmdline(struct kmtls_config *cfg, const char *key)
{
	char **v = realloc(cfg->cmdline.v, (cfg->cmdline.n + 1) * sizeof(*v));

	if (!v)
		return;
	cfg->cmdline.v = v;
	v[cfg->cmdline.n] = strdup(key);
	if (v[cfg->cmdline.n])
		cfg->cmdline.n++;
}

static int load_config(struct args *a, struct kmtls_config **cfg)
{
	char err[768];

	if (a->flags.n_listeners) {
		if (a->config) {
			fprintf(stderr, "kmtlsd: give either -c FILE or listener flags (--listen ...), not both\n");
			return -1;
		}
		/* Any listener flag means no file: say so rather than name [listener default]. */
		if (!a->flags.listeners[0].listen) {
			fprintf(stderr, "kmtlsd: listener flags without --listen: give --listen, --backend, --cert, --key and --ca for a listener from the command line, or -c FILE (default " DEFAULT_CONFIG ") without listener flags\n");
			return -1;
		}
		*cfg = &a->flags;
	} else {
		*cfg = &a->file;
		if (kmtls_config_load(&a->file, a->config ? a->config : DEFAULT_CONFIG, err, sizeof(err))) {
			fprintf(stderr, "kmtlsd: %s\n", err);
			return -1;
		}
	}
	if (a->has_workers) {
		(*cfg)->workers = a->global.workers;
		cmdline(*cfg, "workers");
	}
	if (a->flags.n_listeners && !(*cfg)->drain_timeout_ms)
		(*cfg)->drain_timeout_ms = 30000;
	if (a->has_status) {
		free((*cfg)->status_listen);
		(*cfg)->status_listen = a->global.status_listen;
		a->global.status_listen = NULL;
		cmdline(*cfg, "status-listen");
	}
	if (a->has_log_level) {
		(*cfg)->log_level = a->global.log_level;
		cmdline(*cfg, "log-level");
	}
	if (a->user) {
		free((*cfg)->user);
		(*cfg)->user = strdup(a->user);
		cmdline(*cfg, "user");
	}
	if (a->sandbox >= 0) {
		(*cfg)->sandbox = a->sandbox;
		cmdline(*cfg, "sandbox");
	}
	if (kmtls_config_validate(*cfg, err, sizeof(err)) ||
	    kmtls_ratelimit_check(*cfg, err, sizeof(err)) ||
	    kmtls_sandbox_check(*cfg, err, sizeof(err))) {
		fprintf(stderr, "kmtlsd: %s\n", err);
		return -1;
	}
	return 0;
}

static int run(struct args *a)
{
	struct kmtls_config *cfg;
	char err[768];

	if (parse_args(a->argc, a->argv, a) || load_config(a, &cfg))
		return 2;
	if (a->check) {
		if (kmtls_daemon_check(cfg, err, sizeof(err))) {
			fprintf(stderr, "kmtlsd: %s\n", err);
			return 1;
		}
		printf("kmtlsd: configuration OK (%d listener%s, %d kernel profile%s)\n",
		       cfg->n_listeners, cfg->n_listeners == 1 ? "" : "s",
		       cfg->n_kernels, cfg->n_kernels == 1 ? "" : "s");
		return 0;
	}
	kmtls_log_init("kmtlsd", a->foreground, cfg->log_level ? cfg->log_level : LOG_INFO);
	return kmtls_daemon_run(cfg);
}

int main(int argc, char **argv)
{
	struct args a = { .sandbox = -1, .argc = argc, .argv = argv };
	int ret = run(&a);

	kmtls_config_free(&a.flags);
	kmtls_config_free(&a.file);
	kmtls_config_free(&a.global);
	return ret;
}
