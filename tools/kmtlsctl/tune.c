// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl tune [-c FILE]: check this host against what mutual TLS at speed
 * needs and say what to change, as exact commands and sysctl lines.
 *
 * Every check ends in one status:
 *   ok      nothing to do
 *   change  something should change; "fix" holds the lines to run or add
 *   info    nothing could be checked (no config file, no kmtlsd running)
 * Exit status: 0 when no check says "change", 1 when one does, 2 on usage.
 *
 * Reads only: /proc/cpuinfo, /proc/net/tls_stat, /sys/module/tls,
 * /proc/config.gz or /boot/config-$(uname -r), /proc/sys/..., adjtimex(2) without modes,
 * /proc/PID/limits of running kmtlsd processes, and the kmtlsd config
 * (through kmtlsd's own parser, so both read it the same way).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "../../agent/config.h"
#include "kmtlsctl.h"

#define DEFAULT_CONFIG	"/etc/kmtls/kmtlsd.conf"
#define MAX_FIX		4
#define WANT_BACKLOG	4096	/* kmtlsd's listen() backlog */
#define WANT_NOFILE	1048576

enum status { ST_OK, ST_CHANGE, ST_INFO };

static const char *const status_names[] = { "ok", "change", "info" };

struct check {
	const char *name;
	enum status status;
	char value[128];
	char message[512];
	char path[256];
	char fix[MAX_FIX][256];
	int n_fix;
};

struct tune {
	struct check *v;
	int n, cap;
};

static struct check *add(struct tune *t, const char *name, enum status st,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct check *add(struct tune *t, const char *name, enum status st,
			 const char *fmt, ...)
{
	static struct check dummy;
	struct check *c;
	va_list ap;

	if (t->n == t->cap) {
		int cap = t->cap ? 2 * t->cap : 16;
		struct check *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return memset(&dummy, 0, sizeof(dummy));
		t->v = v;
		t->cap = cap;
	}
	c = memset(&t->v[t->n++], 0, sizeof(*c));
	c->name = name;
	c->status = st;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	return c;
}

static void fix(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fix(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->n_fix == MAX_FIX)
		return;
	va_start(ap, fmt);
	vsnprintf(c->fix[c->n_fix++], sizeof(c->fix[0]), fmt, ap);
	va_end(ap);
}

/* A sysctl as a number; -1 when it cannot be read. */
static long long sysctl_num(const char *name)
{
	char path[256], *p;
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	for (p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* ---- CPU ------------------------------------------------------------- */

static int has_word(const char *line, const char *word)
{
	size_t n = strlen(word);
	const char *p = line;

	while ((p = strstr(p, word))) {
		if ((p == line || p[-1] == ' ' || p[-1] == '\t') &&
		    (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

static void check_cpu(struct tune *t)
{
	char line[8192], flags[8192] = "";
	FILE *f = fopen("/proc/cpuinfo", "re");
	struct check *c;
	int x86, aes, wide;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8)) {
			snprintf(flags, sizeof(flags), "%s", strchr(line, ':') ? strchr(line, ':') + 1 : "");
			break;
		}
	}
	if (f)
		fclose(f);
	if (!*flags) {
		add(t, "aes-ni", ST_INFO, "no CPU flags in /proc/cpuinfo");
		return;
	}
	x86 = !strncmp(line, "flags", 5);
	aes = has_word(flags, "aes") && has_word(flags, x86 ? "pclmulqdq" : "pmull");
	c = add(t, "aes-ni", aes ? ST_OK : ST_CHANGE, aes ?
		"AES and carry-less multiply instructions: AES-GCM runs in wolfSSL's assembly and in kTLS at full speed" :
		"no AES instructions (aes, %s): AES-GCM runs in slow portable code",
		x86 ? "pclmulqdq" : "pmull");
	snprintf(c->value, sizeof(c->value), "%s", aes ? "yes" : "no");
	if (!aes) {
		fix(c, "put ChaCha20 first in each listener: ciphers = TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256");
		fix(c, "in a virtual machine, pass the host CPU through (e.g. qemu -cpu host)");
	}
	if (!x86)
		return;
	wide = has_word(flags, "avx2");
	c = add(t, "avx2", wide ? ST_OK : ST_CHANGE, wide ?
		"AVX2: wolfSSL's fastest AES-GCM and ChaCha20-Poly1305 code paths are used" :
		"no AVX2: wolfSSL's AES-GCM and ChaCha20-Poly1305 take slower code paths");
	snprintf(c->value, sizeof(c->value), "%s", wide ? "yes" : "no");
	if (!wide)
		fix(c, "in a virtual machine, pass the host CPU through (e.g. qemu -cpu host)");
}

/* ---- kTLS ------------------------------------------------------------ */

/*
 * CONFIG_TLS in the kernel config at @path (gzip'd or not): 'y', 'm', 'n'
 * (a config without CONFIG_TLS=), or 0 when @path is no kernel config.
 */
static char config_tls(const char *path)
{
	char line[256], v = 0;
	gzFile f = gzopen(path, "rb");

	while (f && gzgets(f, line, sizeof(line))) {
		if (!strncmp(line, "CONFIG_TLS=", 11)) {
			v = line[11];
			break;
		}
		if (!strncmp(line, "CONFIG_", 7) || !strncmp(line, "# CONFIG_", 9))
			v = 'n';
	}
	if (f)
		gzclose(f);
	return v;
}

/*
 * CONFIG_TLS of the running kernel: from /proc/config.gz (the kernel's
 * own, CONFIG_IKCONFIG_PROC), else /boot/config-<release>; the file read
 * in @path. 'y', 'm', 'n', or 0 when neither is there.
 */
static char kernel_config_tls(char *path, size_t len)
{
	struct utsname u;
	char v;

	snprintf(path, len, "/proc/config.gz");
	v = config_tls(path);
	if (v || uname(&u))
		return v;
	snprintf(path, len, "/boot/config-%s", u.release);
	return config_tls(path);
}

static void check_ktls(struct tune *t)
{
	struct stat st;
	char config[256];
	char tls = kernel_config_tls(config, sizeof(config));
	struct check *c;

	if (!access("/proc/net/tls_stat", R_OK)) {
		c = add(t, "ktls", ST_OK, "kTLS is available: %s",
			stat("/sys/module/tls", &st) ? "tls is built into the kernel" :
			"the tls module is loaded");
		snprintf(c->value, sizeof(c->value), "available");
		return;
	}
	if (tls == 'n') {
		/* No module to load: modprobe would only fail. */
		c = add(t, "ktls", ST_CHANGE,
			"this kernel has no kTLS (built without CONFIG_TLS, says %s): kmtlsd does the TLS record layer in userspace with wolfSSL (ktls = auto, the default, falls back to it; a listener with ktls = require refuses every connection)",
			config);
		snprintf(c->value, sizeof(c->value), "not built");
		snprintf(c->path, sizeof(c->path), "%s", config);
		fix(c, "boot a kernel built with CONFIG_TLS=m or =y (Debian's kernels have it)");
		return;
	}
	if (tls == 'y') {
		c = add(t, "ktls", ST_INFO,
			"%s says CONFIG_TLS=y, yet there is no /proc/net/tls_stat: is /proc from another kernel or network namespace?",
			config);
		snprintf(c->value, sizeof(c->value), "unknown");
		return;
	}
	c = add(t, "ktls", ST_CHANGE,
		"the tls module is not loaded (no /proc/net/tls_stat)%s: records go through wolfSSL in userspace",
		tls == 'm' ? "" : "; no kernel config (/proc/config.gz, /boot/config-RELEASE) tells whether this kernel has it");
	snprintf(c->value, sizeof(c->value), "not loaded");
	fix(c, "modprobe tls%s", tls == 'm' ? "" : "   # fails if the kernel has no kTLS");
	fix(c, "echo tls > /etc/modules-load.d/tls.conf   # at every boot (make install ships kmtls.conf)");
}

/* ---- TCP ------------------------------------------------------------- */

static void check_min(struct tune *t, const char *name, const char *sysctl,
		      long long want, const char *why)
{
	long long v = sysctl_num(sysctl);
	struct check *c;

	if (v < 0) {
		add(t, name, ST_INFO, "%s cannot be read", sysctl);
		return;
	}
	c = add(t, name, v >= want ? ST_OK : ST_CHANGE, "%s = %lld%s%s", sysctl, v,
		v >= want ? "" : ": ", v >= want ? "" : why);
	snprintf(c->value, sizeof(c->value), "%lld", v);
	if (v < want) {
		fix(c, "sysctl -w %s=%lld", sysctl, want);
		fix(c, "echo '%s = %lld' >> /etc/sysctl.d/90-kmtls-tuning.conf", sysctl, want);
	}
}

/*
 * kmtlsd asks for TCP Fast Open per listener (tcp-fastopen, default off);
 * the kernel takes data in a SYN only with the sysctl's server flag (2).
 * So the sysctl matters only when a listener of @cfg asks; without a
 * config there is nothing to judge.
 */
static void check_fastopen(struct tune *t, const struct kmtls_config *cfg)
{
	long long tfo = sysctl_num("net.ipv4.tcp_fastopen");
	const char *first = NULL;
	struct check *c;
	char who[160];
	int i, n = 0;

	if (tfo < 0) {
		add(t, "tcp-fastopen", ST_INFO, "net.ipv4.tcp_fastopen cannot be read");
		return;
	}
	for (i = 0; cfg && i < cfg->n_listeners; i++) {
		if (!cfg->listeners[i].tcp_fastopen)
			continue;
		first = first ? first : cfg->listeners[i].name;
		n++;
	}
	snprintf(who, sizeof(who), "[listener %s]%s", first ? first : "",
		 n > 1 ? " and others" : "");
	if (!cfg) {
		c = add(t, "tcp-fastopen", ST_INFO,
			"net.ipv4.tcp_fastopen = %lld (server flag %s): kmtlsd uses TCP Fast Open only on listeners with tcp-fastopen set; give the config with -c FILE to check them",
			tfo, (tfo & 2) ? "on" : "off");
	} else if (!n) {
		c = add(t, "tcp-fastopen", ST_OK,
			"off (no listener sets tcp-fastopen); net.ipv4.tcp_fastopen = %lld", tfo);
	} else if (tfo & 2) {
		c = add(t, "tcp-fastopen", ST_OK,
			"on for %s: net.ipv4.tcp_fastopen = %lld has the server flag (2), so a returning client's ClientHello rides on its SYN",
			who, tfo);
	} else {
		c = add(t, "tcp-fastopen", ST_CHANGE,
			"%s set%s tcp-fastopen, but net.ipv4.tcp_fastopen = %lld lacks the server flag (2): the kernel ignores data in their SYNs and each handshake waits one more round trip",
			who, n > 1 ? "" : "s", tfo);
		fix(c, "sysctl -w net.ipv4.tcp_fastopen=%lld", tfo | 2);
		fix(c, "echo 'net.ipv4.tcp_fastopen = %lld' >> /etc/sysctl.d/90-kmtls-tuning.conf",
		    tfo | 2);
	}
	snprintf(c->value, sizeof(c->value), "%lld", tfo);
}

static void check_tcp(struct tune *t, const struct kmtls_config *cfg)
{
	check_fastopen(t, cfg);
	check_min(t, "somaxconn", "net.core.somaxconn", WANT_BACKLOG,
		  "kmtlsd asks for a listen backlog of 4096 and the kernel caps it here");
	check_min(t, "tcp-max-syn-backlog", "net.ipv4.tcp_max_syn_backlog", WANT_BACKLOG,
		  "half-open connections beyond it are dropped (or answered with SYN cookies) during bursts");
}

/* ---- clock ----------------------------------------------------------- */

static void check_clock(struct tune *t)
{
	struct timex tx = { .modes = 0 };
	struct check *c;
	int state = adjtimex(&tx);

	if (state < 0) {
		add(t, "clock", ST_INFO, "adjtimex: %s", strerror(errno));
		return;
	}
	if (!(tx.status & STA_UNSYNC) && tx.maxerror < 1000000) {
		c = add(t, "clock", ST_OK,
			"the clock is synchronised (estimated error %ld us, at most %ld us)",
			tx.esterror, tx.maxerror);
		snprintf(c->value, sizeof(c->value), "synchronised");
		return;
	}
	c = add(t, "clock", ST_CHANGE,
		"the clock is %s (maximum error %ld us): certificate validity (not before, not after) and CRL dates are checked against it",
		(tx.status & STA_UNSYNC) ? "not synchronised" : "synchronised but off by more than a second",
		tx.maxerror);
	snprintf(c->value, sizeof(c->value), "unsynchronised");
	fix(c, "timedatectl set-ntp true   # systemd-timesyncd");
	fix(c, "apt-get install chrony     # or any NTP client");
}

/* ---- open files ------------------------------------------------------ */

static long long proc_nofile(const char *pid)
{
	char path[300], line[256];
	long long soft = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/limits", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Max open files", 14) && sscanf(line + 14, "%lld", &soft) == 1)
			break;
	if (f)
		fclose(f);
	return soft;
}

static void check_kmtlsd_nofile(struct tune *t)
{
	char path[300], comm[32];
	struct dirent *de;
	DIR *d = opendir("/proc");
	struct check *c;
	long long soft;
	int seen = 0;
	FILE *f;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		if (strcmp(comm, "kmtlsd\n"))
			continue;
		seen++;
		soft = proc_nofile(de->d_name);
		c = add(t, "kmtlsd-nofile", soft >= 65536 ? ST_OK : ST_CHANGE,
			"kmtlsd (pid %s) may open %lld files%s", de->d_name, soft,
			soft >= 65536 ? "" : ": each connection needs 2 to 4 descriptors");
		snprintf(c->value, sizeof(c->value), "%lld", soft);
		if (soft < 65536)
			fix(c, "LimitNOFILE=%d in the [Service] section of kmtlsd.service (make install ships it)",
			    WANT_NOFILE);
	}
	if (d)
		closedir(d);
	if (!seen)
		add(t, "kmtlsd-nofile", ST_INFO, "no kmtlsd is running");
}

static void check_files(struct tune *t)
{
	check_min(t, "nr-open", "fs.nr_open", WANT_NOFILE,
		  "kmtlsd raises its descriptor limit up to this, and each connection needs 2 to 4");
	check_min(t, "file-max", "fs.file-max", WANT_NOFILE,
		  "the system-wide descriptor limit is below what one busy kmtlsd can use");
	check_kmtlsd_nofile(t);
}

/* ---- key files of a config ------------------------------------------- */

/* @kind is the section: "listener" or "kernel". */
static void check_key(struct tune *t, const char *kind, const struct kmtls_listener_conf *l,
		      const char *what, const char *key, const struct passwd *pw)
{
	struct check *c;
	struct stat st;
	mode_t m;
	int other;

	if (stat(key, &st)) {
		c = add(t, "key-permissions", ST_CHANGE, "[%s %s] %s %s: %s", kind, l->name,
			what, key, strerror(errno));
		snprintf(c->path, sizeof(c->path), "%s", key);
		return;
	}
	m = st.st_mode & 07777;
	other = pw && st.st_uid != pw->pw_uid;
	/* chmod alone would lock the dropped user out: owner first, then mode. */
	if ((m & 077) && other) {
		c = add(t, "key-permissions", ST_CHANGE,
			"[%s %s] %s %s is mode %04o and owned by uid %u: group and others must have no access to a private key, and kmtlsd runs as %s after start, so the key must be its own for a reload (SIGHUP) to read it",
			kind, l->name, what, key, m, (unsigned int)st.st_uid, pw->pw_name);
		fix(c, "chown %s %s", pw->pw_name, key);
		fix(c, "chmod 600 %s", key);
	} else if (m & 077) {
		c = add(t, "key-permissions", ST_CHANGE,
			"[%s %s] %s %s is mode %04o: group and others must have no access to a private key",
			kind, l->name, what, key, m);
		fix(c, "chmod 600 %s", key);
	} else if (other) {
		c = add(t, "key-permissions", ST_CHANGE,
			"[%s %s] %s %s is owned by uid %u, but kmtlsd runs as %s after start: a reload (SIGHUP) cannot read it",
			kind, l->name, what, key, (unsigned int)st.st_uid, pw->pw_name);
		fix(c, "chown %s %s", pw->pw_name, key);
	} else {
		c = add(t, "key-permissions", ST_OK, "[%s %s] %s %s is mode %04o",
			kind, l->name, what, key, m);
	}
	snprintf(c->path, sizeof(c->path), "%s", key);
	snprintf(c->value, sizeof(c->value), "%04o", m);
}

/* The key files of @cfg (read from @path), or NULL: there is no config. */
static void check_keys(struct tune *t, const struct kmtls_config *cfg, const char *path)
{
	struct passwd *pw = NULL;
	int i;

	if (!cfg) {
		add(t, "key-permissions", ST_INFO, "no %s: give the config with -c FILE", path);
		return;
	}
	if (cfg->user)
		pw = getpwnam(cfg->user);
	for (i = 0; i < cfg->n_listeners; i++) {
		if (cfg->listeners[i].key)
			check_key(t, "listener", &cfg->listeners[i], "key", cfg->listeners[i].key, pw);
		if (cfg->listeners[i].ticket_keys)
			check_key(t, "listener", &cfg->listeners[i], "ticket keys",
				  cfg->listeners[i].ticket_keys, pw);
	}
	for (i = 0; i < cfg->n_kernels; i++)
		if (cfg->kernels[i].tls.key)
			check_key(t, "kernel", &cfg->kernels[i].tls, "key", cfg->kernels[i].tls.key,
				  pw);
	if (!cfg->n_listeners && !cfg->n_kernels)
		add(t, "key-permissions", ST_INFO, "%s has no listener", path);
}

/* ---- output ---------------------------------------------------------- */

static int changes(const struct tune *t)
{
	int i, n = 0;

	for (i = 0; i < t->n; i++)
		n += t->v[i].status == ST_CHANGE;
	return n;
}

static void print_text(const struct tune *t)
{
	int i, j, n = changes(t);

	for (i = 0; i < t->n; i++) {
		const struct check *c = &t->v[i];

		printf("%-7s %-20s %s\n", status_names[c->status], c->name, c->message);
		for (j = 0; j < c->n_fix; j++)
			printf("%29s%s\n", "", c->fix[j]);
	}
	if (n)
		printf("\n%d thing%s to change.\n", n, n == 1 ? "" : "s");
	else
		printf("\nnothing to change.\n");
}

static void print_json(const struct tune *t)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	int i, j;

	for (i = 0; i < t->n; i++) {
		const struct check *c = &t->v[i];
		json_object *e = json_object_new_object(), *f = json_object_new_array();

		json_object_object_add(e, "name", json_object_new_string(c->name));
		json_object_object_add(e, "status", json_object_new_string(status_names[c->status]));
		if (*c->value)
			json_object_object_add(e, "value", json_object_new_string(c->value));
		if (*c->path)
			json_object_object_add(e, "path", json_object_new_string(c->path));
		json_object_object_add(e, "message", json_object_new_string(c->message));
		for (j = 0; j < c->n_fix; j++)
			json_object_array_add(f, json_object_new_string(c->fix[j]));
		json_object_object_add(e, "fix", f);
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(!changes(t)));
	json_object_object_add(o, "changes", json_object_new_int(changes(t)));
	json_object_object_add(o, "checks", a);
	ctl_print_json(o);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kmtlsctl [--json] tune [-c FILE]\n"
		"Check CPU (AES-NI, AVX2), kTLS, TCP Fast Open, listen backlogs, clock\n"
		"synchronisation, open file limits and the private keys of the kmtlsd\n"
		"config FILE (default %s if it exists), and print what to change.\n"
		"Exit status: 0 nothing to change, 1 something should change.\n",
		DEFAULT_CONFIG);
}

int cmd_tune(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *path;
	struct kmtls_config cfg;
	struct tune t = { 0 };
	int opt, ret, have = 0;
	char err[768];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return ctl_bad_option(c, "tune", argv, "c:h");
		}
	}
	if (optind < argc)
		return ctl_fail(c, CTL_USAGE, "kmtlsctl tune: unexpected argument '%s'", argv[optind]);
	/* Without -c, the default config counts only when it is there. */
	path = config ? config : DEFAULT_CONFIG;
	if (config || !access(path, F_OK)) {
		if (kmtls_config_load(&cfg, path, err, sizeof(err)))
			return ctl_fail(c, CTL_ERR, "kmtlsctl tune: %s", err);
		have = 1;
	}
	check_cpu(&t);
	check_ktls(&t);
	check_tcp(&t, have ? &cfg : NULL);
	check_clock(&t);
	check_files(&t);
	check_keys(&t, have ? &cfg : NULL, path);
	if (have)
		kmtls_config_free(&cfg);
	if (c->json)
		print_json(&t);
	else
		print_text(&t);
	ret = changes(&t) ? CTL_ERR : CTL_OK;
	free(t.v);
	return ret;
}
