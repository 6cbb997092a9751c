// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl pki - a small PKI for tests and deployments, made with our
 * wolfSSL build (pki_x509.c):
 *
 *   init DIR [--key ALG] [--days N] [--force]
 *       DIR/ca.pem + ca.key (root CA, pathlen 1) and DIR/intermediate.pem +
 *       intermediate.key (issued by the root, pathlen 0)
 *   issue DIR NAME --server|--client [--san LIST] [--days N] [--key ALG] [--force]
 *       DIR/NAME.pem (leaf, then the intermediate) and DIR/NAME.key
 *
 * Keys are written 0600 and certificates 0644, each through a temporary
 * file that is linked into place, so an existing file is never replaced
 * unless --force (then renamed over) and a reader never sees half a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>

#include "kmtlsctl.h"
#include "pki.h"

#define DAYS_MAX	36500
#define FILE_MAX	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kmtlsctl pki init DIR [--key ALG] [--days N] [--force]\n"
		"       kmtlsctl pki issue DIR NAME --server|--client [--san LIST] [--days N]\n"
		"                              [--key ALG] [--force]\n"
		"init: root CA (DIR/ca.pem, ca.key) and intermediate CA (DIR/intermediate.pem,\n"
		"      intermediate.key); default 3650 days.\n"
		"issue: DIR/NAME.pem (leaf + intermediate) and DIR/NAME.key, signed by the\n"
		"      intermediate; default 365 days, SAN DNS:NAME.\n"
		"ALG: ec256 (default), ec384, rsa2048, ed25519.\n"
		"LIST: DNS:name,IP:address,URI:spiffe://domain/path (--san repeats).\n"
		"Keys are mode 0600. Existing files are kept unless --force.\n");
}

struct pki_args {
	const char *dir, *name;
	int alg, days, force;
	enum pki_role role;	/* issue: PKI_SERVER or PKI_CLIENT, else PKI_ROOT */
	struct pki_san sans[PKI_MAX_SANS];
	int nsans;
};

/* ---- files ---------------------------------------------------------------- */

static void path_of(char *buf, size_t len, const char *dir, const char *name, const char *ext)
{
	snprintf(buf, len, "%s/%s%s", dir, name, ext);
}

static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
	char *buf = malloc(FILE_MAX + 1);
	size_t n = 0;
	FILE *f;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, FILE_MAX, f);
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

/*
 * @data into @path with @mode: a temporary file in the same directory,
 * then link(2) (fails on an existing file) or, with @force, rename(2).
 */
static int write_file(const char *path, const char *data, mode_t mode, int force,
		      char *err, size_t errlen)
{
	char tmp[4200];
	size_t len = strlen(data), off = 0;
	ssize_t n;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file next to %s: %s", path, strerror(errno));
		return -1;
	}
	while (!ret && off < len) {
		n = write(fd, data + off, len - off);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EINTR)
			ret = -errno;
	}
	if (!ret && (fchmod(fd, mode) || fsync(fd)))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && (force ? rename(tmp, path) : link(tmp, path)))
		ret = -errno;
	unlink(tmp);
	if (ret == -EEXIST)
		snprintf(err, errlen, "%s appeared meanwhile; kept it (--force replaces it)", path);
	else if (ret)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-ret));
	return ret ? -1 : 0;
}

/* Refuse before any work when a file to write exists (unless --force). */
static int check_free(struct ctl *c, const char *const *paths, int n, int force,
		      const char *what)
{
	int i;

	for (i = 0; i < n && !force; i++)
		if (!access(paths[i], F_OK))
			return ctl_fail(c, CTL_ERR, "%s exists: kmtlsctl pki refuses to overwrite "
					"it (%s; --force replaces it)", paths[i], what);
	return 0;
}

/* ---- arguments ----------------------------------------------------------- */

static int parse_days(const char *s, int *days)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > DAYS_MAX)
		return -1;
	*days = (int)v;
	return 0;
}

static int parse_args(struct ctl *c, int argc, char **argv, struct pki_args *a, int issue)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "days", required_argument, NULL, 'd' },
		{ "san", required_argument, NULL, 's' },
		{ "server", no_argument, NULL, 'S' },
		{ "client", no_argument, NULL, 'C' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int opt, want = issue ? 2 : 1;
	char err[300];

	a->alg = PKI_EC256;
	a->days = issue ? 365 : 3650;
	a->role = PKI_ROOT;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:d:s:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			a->alg = pki_alg_parse(optarg);
			if (a->alg < 0)
				return ctl_fail(c, CTL_USAGE, "bad --key '%s': ec256, ec384, rsa2048 "
						"or ed25519", optarg);
			break;
		case 'd':
			if (parse_days(optarg, &a->days))
				return ctl_fail(c, CTL_USAGE, "bad --days '%s': 1 to %d", optarg,
						DAYS_MAX);
			break;
		case 's':
			if (!issue)
				return ctl_fail(c, CTL_USAGE, "--san is for pki issue");
			if (pki_san_parse(optarg, a->sans, &a->nsans, err, sizeof(err)))
				return ctl_fail(c, CTL_USAGE, "%s", err);
			break;
		case 'S':
		case 'C':
			if (!issue)
				return ctl_fail(c, CTL_USAGE, "--server and --client are for pki issue");
			if (a->role != PKI_ROOT)
				return ctl_fail(c, CTL_USAGE, "one of --server or --client, not both");
			a->role = opt == 'S' ? PKI_SERVER : PKI_CLIENT;
			break;
		case 'f':
			a->force = 1;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return ctl_bad_option(c, issue ? "pki issue" : "pki init", argv, "k:d:s:fh");
		}
	}
	if (argc - optind != want) {
		usage(stderr);
		return ctl_fail(c, CTL_USAGE, "kmtlsctl pki %s: %s", argv[0],
				issue ? "want DIR and NAME" : "want DIR");
	}
	a->dir = argv[optind];
	a->name = issue ? argv[optind + 1] : NULL;
	if (issue && a->role == PKI_ROOT)
		return ctl_fail(c, CTL_USAGE, "kmtlsctl pki issue: --server or --client?");
	return -1;
}

/* A file name of its own: letters, digits, '.', '_', '-'; not the CA's. */
static int name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || s[0] == '.' || s[0] == '-' || !strcmp(s, "ca") ||
	    !strcmp(s, "intermediate"))
		return 0;
	for (i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return 0;
	return 1;
}

/* ---- init ---------------------------------------------------------------- */

struct made {
	char *pem, *key;
	char serial[2 * 16 + 1];
	char cn[80];
};

static void made_free(struct made *m)
{
	free(m->pem);
	if (m->key)
		explicit_bzero(m->key, strlen(m->key));
	free(m->key);
}

static json_object *made_json(const struct made *m, const char *cert, const char *key)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cert", json_object_new_string(cert));
	json_object_object_add(o, "key", json_object_new_string(key));
	json_object_object_add(o, "subject", json_object_new_string(m->cn));
	json_object_object_add(o, "serial", json_object_new_string(m->serial));
	return o;
}

static int do_init(struct ctl *c, const struct pki_args *a, WC_RNG *rng)
{
	char ca[4200], ca_key[4200], im[4200], im_key[4200], err[512];
	const char *const paths[] = { ca, ca_key, im, im_key };
	struct pki_key root = { .alg = -1 }, inter = { .alg = -1 };
	struct made r = { 0 }, i = { 0 };
	struct pki_req req = { .days = a->days };
	unsigned char *der = NULL, tag[4];
	int derlen = 0, ret = CTL_ERR;
	long long left;

	path_of(ca, sizeof(ca), a->dir, "ca", ".pem");
	path_of(ca_key, sizeof(ca_key), a->dir, "ca", ".key");
	path_of(im, sizeof(im), a->dir, "intermediate", ".pem");
	path_of(im_key, sizeof(im_key), a->dir, "intermediate", ".key");
	if (mkdir(a->dir, 0755) && errno != EEXIST)
		return ctl_fail(c, CTL_ERR, "cannot create %s: %s", a->dir, strerror(errno));
	if (check_free(c, paths, 4, a->force,
		       "a new CA would orphan every certificate the old one issued"))
		return CTL_ERR;

	/* One tag in both names: two PKIs made here never share a subject. */
	if (wc_RNG_GenerateBlock(rng, tag, sizeof(tag)))
		return ctl_fail(c, CTL_ERR, "the random number generator failed");
	snprintf(r.cn, sizeof(r.cn), "kmtls root CA %02x%02x%02x%02x", tag[0], tag[1], tag[2],
		 tag[3]);
	snprintf(i.cn, sizeof(i.cn), "kmtls intermediate CA %02x%02x%02x%02x", tag[0], tag[1],
		 tag[2], tag[3]);

	if (pki_key_gen(&root, a->alg, rng, err, sizeof(err)))
		goto fail;
	req.role = PKI_ROOT;
	req.cn = r.cn;
	r.pem = pki_cert_make(&req, &root, &root, NULL, 0, rng, r.serial, err, sizeof(err));
	r.key = r.pem ? pki_key_pem(&root, err, sizeof(err)) : NULL;
	der = r.key ? pki_cert_der(r.pem, strlen(r.pem), &derlen, &left, err, sizeof(err)) : NULL;
	if (!der || pki_key_gen(&inter, a->alg, rng, err, sizeof(err)))
		goto fail;
	req.role = PKI_INTERMEDIATE;
	req.cn = i.cn;
	i.pem = pki_cert_make(&req, &inter, &root, der, derlen, rng, i.serial, err, sizeof(err));
	i.key = i.pem ? pki_key_pem(&inter, err, sizeof(err)) : NULL;
	if (!i.key)
		goto fail;
	/* Keys first: a certificate on disk always has its key next to it. */
	if (write_file(ca_key, r.key, 0600, a->force, err, sizeof(err)) ||
	    write_file(ca, r.pem, 0644, a->force, err, sizeof(err)) ||
	    write_file(im_key, i.key, 0600, a->force, err, sizeof(err)) ||
	    write_file(im, i.pem, 0644, a->force, err, sizeof(err)))
		goto fail;
	ret = CTL_OK;
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "dir", json_object_new_string(a->dir));
		json_object_object_add(o, "key_type", json_object_new_string(pki_alg_name(a->alg)));
		json_object_object_add(o, "days", json_object_new_int(a->days));
		json_object_object_add(o, "root", made_json(&r, ca, ca_key));
		json_object_object_add(o, "intermediate", made_json(&i, im, im_key));
		ctl_print_json(o);
	} else {
		printf("root CA:         %s (key %s)\n                 CN=%s, serial %s\n",
		       ca, ca_key, r.cn, r.serial);
		printf("intermediate CA: %s (key %s)\n                 CN=%s, serial %s\n",
		       im, im_key, i.cn, i.serial);
		printf("%s keys, valid %d days. Trust %s (kmtlsd: ca = ...); issue with\n"
		       "kmtlsctl pki issue %s NAME --server|--client\n",
		       pki_alg_name(a->alg), a->days, ca, a->dir);
	}
	goto out;
fail:
	ctl_fail(c, CTL_ERR, "kmtlsctl pki init: %s", err);
out:
	free(der);
	made_free(&r);
	made_free(&i);
	if (root.alg >= 0)
		pki_key_free(&root);
	if (inter.alg >= 0)
		pki_key_free(&inter);
	return ret;
}

/* ---- issue --------------------------------------------------------------- */

/* The intermediate CA of DIR: its PEM, DER and key. */
static int load_issuer(struct ctl *c, const char *dir, WC_RNG *rng, char **pem,
		       unsigned char **der, int *derlen, long long *left, struct pki_key *key)
{
	char path[4200], err[512];
	size_t len, pemlen;
	int ret, match;
	char *kpem;

	path_of(path, sizeof(path), dir, "intermediate", ".pem");
	*pem = read_all(path, &pemlen, err, sizeof(err));
	if (!*pem)
		return ctl_fail(c, CTL_ERR, "no intermediate CA in %s (%s): kmtlsctl pki init %s "
				"makes one", dir, err, dir);
	*der = pki_cert_der(*pem, pemlen, derlen, left, err, sizeof(err));
	if (!*der)
		return ctl_fail(c, CTL_ERR, "%s: %s", path, err);
	path_of(path, sizeof(path), dir, "intermediate", ".key");
	kpem = read_all(path, &len, err, sizeof(err));
	if (!kpem)
		return ctl_fail(c, CTL_ERR, "cannot read the intermediate CA's key: %s", err);
	ret = pki_key_load(key, kpem, len, rng, err, sizeof(err));
	/* Signed with another key, a certificate would never verify. */
	match = ret ? -1 : pki_key_matches(*pem, pemlen, kpem, len, err, sizeof(err));
	explicit_bzero(kpem, len);
	free(kpem);
	if (match > 0)
		return ctl_fail(c, CTL_ERR, "%s is not the key of %s/intermediate.pem: a "
				"certificate signed with it would not verify; put the matching "
				"key back, or make a new PKI (kmtlsctl pki init %s --force)", path,
				dir, dir);
	if (match)
		return ctl_fail(c, CTL_ERR, "%s: %s", path, err);
	return 0;
}

static int do_issue(struct ctl *c, struct pki_args *a, WC_RNG *rng)
{
	char cert[4200], keyf[4200], err[512], san[300];
	const char *const paths[] = { cert, keyf };
	struct pki_key ca = { .alg = -1 }, leaf = { .alg = -1 };
	struct pki_req req = { .role = a->role, .cn = a->name };
	const char *role = a->role == PKI_SERVER ? "server" : "client";
	unsigned char *der = NULL;
	char *ca_pem = NULL, *chain = NULL;
	struct made m = { 0 };
	int derlen, ret = CTL_ERR, days = a->days, k;
	long long left = 0;

	if (!name_ok(a->name))
		return ctl_fail(c, CTL_USAGE, "bad NAME '%s': letters, digits, '.', '_' and '-' "
				"(not ca or intermediate)", a->name);
	/* wolfSSL's subject fields are CTC_NAME_SIZE with the NUL: no silent cut. */
	if (strlen(a->name) >= CTC_NAME_SIZE)
		return ctl_fail(c, CTL_USAGE, "NAME has %zu characters: the certificate's "
				"common name holds at most %d (a longer DNS name can go in --san)",
				strlen(a->name), CTC_NAME_SIZE - 1);
	if (!a->nsans && pki_dns_check(a->name, strlen(a->name), err, sizeof(err)))
		return ctl_fail(c, CTL_USAGE, "NAME '%s' cannot be the default SAN DNS:%s (%s): "
				"give the names with --san", a->name, a->name, err);
	path_of(cert, sizeof(cert), a->dir, a->name, ".pem");
	path_of(keyf, sizeof(keyf), a->dir, a->name, ".key");
	if (check_free(c, paths, 2, a->force, "a certificate in use may be there"))
		return CTL_ERR;
	if (load_issuer(c, a->dir, rng, &ca_pem, &der, &derlen, &left, &ca))
		goto out;
	if (left < 86400) {
		ctl_fail(c, CTL_ERR, "the intermediate CA in %s %s: make a new PKI (kmtlsctl pki "
			 "init %s --force)", a->dir, left <= 0 ? "has expired" :
			 "expires within a day", a->dir);
		goto out;
	}
	if ((long long)days * 86400 > left) {
		days = (int)(left / 86400);
		fprintf(stderr, "kmtlsctl pki issue: the intermediate CA expires in %d days: "
			"the certificate gets %d days, not %d\n", days, days, a->days);
	}
	if (!a->nsans) {
		a->sans[0].type = ASN_DNS_TYPE;
		a->sans[0].len = (int)strlen(a->name);
		memcpy(a->sans[0].value, a->name, (size_t)a->sans[0].len);
		a->nsans = 1;
	}
	req.days = days;
	req.sans = a->sans;
	req.nsans = a->nsans;
	snprintf(m.cn, sizeof(m.cn), "%s", a->name);
	if (pki_key_gen(&leaf, a->alg, rng, err, sizeof(err)))
		goto fail;
	m.pem = pki_cert_make(&req, &leaf, &ca, der, derlen, rng, m.serial, err, sizeof(err));
	m.key = m.pem ? pki_key_pem(&leaf, err, sizeof(err)) : NULL;
	if (!m.key)
		goto fail;
	if (asprintf(&chain, "%s%s", m.pem, ca_pem) < 0) {
		chain = NULL;
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (write_file(keyf, m.key, 0600, a->force, err, sizeof(err)) ||
	    write_file(cert, chain, 0644, a->force, err, sizeof(err)))
		goto fail;
	ret = CTL_OK;
	if (c->json) {
		json_object *o = made_json(&m, cert, keyf), *s = json_object_new_array();

		json_object_object_add(o, "dir", json_object_new_string(a->dir));
		json_object_object_add(o, "name", json_object_new_string(a->name));
		json_object_object_add(o, "role", json_object_new_string(role));
		json_object_object_add(o, "key_type", json_object_new_string(pki_alg_name(a->alg)));
		json_object_object_add(o, "days", json_object_new_int(days));
		for (k = 0; k < a->nsans; k++) {
			pki_san_str(&a->sans[k], san, sizeof(san));
			json_object_array_add(s, json_object_new_string(san));
		}
		json_object_object_add(o, "san", s);
		ctl_print_json(o);
	} else {
		printf("%s certificate: %s (leaf + intermediate), key %s\n", role, cert, keyf);
		printf("  CN=%s, serial %s, %s, %d days\n  SAN", a->name, m.serial,
		       pki_alg_name(a->alg), days);
		for (k = 0; k < a->nsans; k++) {
			pki_san_str(&a->sans[k], san, sizeof(san));
			printf("%s %s", k ? "," : "", san);
		}
		printf("\n");
	}
	goto out;
fail:
	ctl_fail(c, CTL_ERR, "kmtlsctl pki issue: %s", err);
out:
	free(chain);
	free(der);
	free(ca_pem);
	made_free(&m);
	if (ca.alg >= 0)
		pki_key_free(&ca);
	if (leaf.alg >= 0)
		pki_key_free(&leaf);
	return ret;
}

int cmd_pki(struct ctl *c, int argc, char **argv)
{
	struct pki_args a = { 0 };
	WC_RNG rng;
	int issue, ret;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? ctl_fail(c, CTL_USAGE, "kmtlsctl pki: init or issue?") : CTL_OK;
	}
	if (strcmp(argv[1], "init") && strcmp(argv[1], "issue")) {
		usage(stderr);
		return ctl_fail(c, CTL_USAGE, "kmtlsctl pki: unknown command '%s'", argv[1]);
	}
	issue = !strcmp(argv[1], "issue");
	ret = parse_args(c, argc - 1, argv + 1, &a, issue);
	if (ret >= 0)
		return ret;
	if (wc_InitRng(&rng))
		return ctl_fail(c, CTL_ERR, "cannot seed wolfCrypt's random number generator");
	pki_clock_start();
	ret = issue ? do_issue(c, &a, &rng) : do_init(c, &a, &rng);
	wc_FreeRng(&rng);
	return ret;
}
