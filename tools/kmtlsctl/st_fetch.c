// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's status endpoint as kmtlsctl status and stats see it: where it is
 * (--endpoint, else status-listen of the kmtlsd config, else the packaged
 * default), its document (st_http.c, checked by st_doc.c), and what to tell
 * the operator when there is none.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/addr.h"
#include "../../agent/config.h"
#include "kmtlsctl.h"
#include "st.h"

long long st_int(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

const char *st_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

json_object *st_get(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void enable_hint(struct st_where *w, const char *config)
{
	snprintf(w->hint, sizeof(w->hint),
		 "is kmtlsd running? Its status endpoint is opt-in: add `status-listen = %s` "
		 "(or 127.0.0.1:PORT) to the [kmtlsd] section of %s and restart kmtlsd, or "
		 "give the address with --endpoint", ST_ENDPOINT_DEFAULT, config);
}

/* The address from the config's status-listen, else the default. */
static int resolve(struct ctl *c, struct st_where *w, const char *config)
{
	const char *path = config ? config : ST_CONFIG_DEFAULT;
	struct kmtls_config cfg;
	char err[512];

	snprintf(w->addr, sizeof(w->addr), "%s", ST_ENDPOINT_DEFAULT);
	enable_hint(w, path);
	if (!config && access(path, R_OK)) {
		snprintf(w->from, sizeof(w->from), "the default (%s: %s)", path,
			 errno == ENOENT ? "no such file" : strerror(errno));
		return -1;
	}
	if (kmtls_config_load(&cfg, path, err, sizeof(err))) {
		if (config)
			return ctl_fail(c, CTL_ERR, "kmtlsctl %s: %s", c->verb, err);
		snprintf(w->from, sizeof(w->from), "the default (%s)", err);
		return -1;
	}
	if (cfg.status_listen) {
		snprintf(w->addr, sizeof(w->addr), "%s", cfg.status_listen);
		snprintf(w->from, sizeof(w->from), "status-listen in %s", path);
		snprintf(w->hint, sizeof(w->hint),
			 "is kmtlsd running with %s? (systemctl status kmtlsd; kmtlsd reads "
			 "status-listen only when it starts)", path);
	} else {
		snprintf(w->from, sizeof(w->from), "the default (%s sets no status-listen)", path);
		snprintf(w->hint, sizeof(w->hint),
			 "the status endpoint is opt-in: add `status-listen = %s` (or "
			 "127.0.0.1:PORT) to the [kmtlsd] section of %s and restart kmtlsd",
			 ST_ENDPOINT_DEFAULT, path);
	}
	kmtls_config_free(&cfg);
	return -1;
}

int st_args(struct ctl *c, int argc, char **argv, const char *usage, struct st_where *w)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *endpoint = NULL, *config = NULL, *reason;
	struct sockaddr_storage ss;
	char why[200];
	socklen_t len;
	int opt;

	memset(w, 0, sizeof(*w));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "e:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			endpoint = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			printf("%s", usage);
			return CTL_OK;
		default:
			fprintf(stderr, "%s", usage);
			return ctl_bad_option(c, c->verb, argv, "e:c:h");
		}
	}
	if (optind < argc)
		return ctl_fail(c, CTL_USAGE, "kmtlsctl %s: unexpected argument '%s'", c->verb,
				argv[optind]);
	if (!endpoint)
		return resolve(c, w, config);
	if (kmtls_addr_parse(endpoint, 1, &ss, &len, why, sizeof(why))) {
		/* The parser's reason may quote the address itself. */
		reason = why[0] == '"' && strstr(why, "\": ") ? strstr(why, "\": ") + 3 : why;
		return ctl_fail(c, CTL_USAGE, "kmtlsctl %s: --endpoint '%s': %s; the forms are "
				"unix:/absolute/path, IPv4:PORT and [IPv6]:PORT (port 1 to 65535, "
				"no host names)", c->verb, endpoint, reason);
	}
	snprintf(w->addr, sizeof(w->addr), "%s", endpoint);
	snprintf(w->from, sizeof(w->from), "--endpoint");
	enable_hint(w, config ? config : ST_CONFIG_DEFAULT);
	return -1;
}

static const char *const problem_names[] = {
	[ST_FINE] = "none",
	[ST_DOWN] = "not running",
	[ST_DENIED] = "permission denied",
	[ST_STALLED] = "no answer in time",
	[ST_FOREIGN] = "not kmtlsd's status endpoint",
	[ST_BAD_DOC] = "unexpected document",
	[ST_FAILED] = "error",
};

/* What went wrong, in one line for the text output and in full for stderr. */
static void explain(const struct st_where *w, struct st_fail *f, const char *why)
{
	const char *a = st_text(w->addr);

	f->name = problem_names[f->problem];
	switch (f->problem) {
	case ST_DOWN:
		snprintf(f->line, sizeof(f->line), "not running, or its status endpoint is off "
			 "(nothing answers on %s)", a);
		snprintf(f->err, sizeof(f->err), "kmtlsd is not reachable on %s (%s; address "
			 "from %s): %s", a, why, w->from, w->hint);
		break;
	case ST_DENIED:
		snprintf(f->line, sizeof(f->line), "unknown: not allowed to connect to %s", a);
		snprintf(f->err, sizeof(f->err), "kmtlsctl may not connect to kmtlsd's status "
			 "endpoint %s (%s; address from %s): run it as root, or as a user that "
			 "may connect to the socket (its directory and the socket itself must "
			 "let that user in)", a, why, w->from);
		break;
	case ST_STALLED:
		snprintf(f->line, sizeof(f->line), "busy or stalled: %s answered nothing "
			 "complete within %d s", a, ST_TIMEOUT_MS / 1000);
		snprintf(f->err, sizeof(f->err), "kmtlsd did not answer on %s in time (%s; "
			 "address from %s): kmtlsd is busy or its status endpoint is stalled; "
			 "try again, and if it lasts, look at kmtlsd's log", a, why, w->from);
		break;
	case ST_FOREIGN:
		snprintf(f->line, sizeof(f->line), "unknown: %s does not answer as kmtlsd's "
			 "status endpoint does (%s)", a, why);
		snprintf(f->err, sizeof(f->err), "%s does not answer GET /status as kmtlsd's "
			 "status endpoint does (%s; address from %s): is it kmtlsd's "
			 "status-listen, or another service's address?", a, why, w->from);
		break;
	case ST_BAD_DOC:
		snprintf(f->line, sizeof(f->line), "unknown: its /status answer is not what "
			 "this kmtlsctl expects (%s)", why);
		snprintf(f->err, sizeof(f->err), "kmtlsd's /status answer from %s is not what "
			 "this kmtlsctl expects: %s", a, why);
		break;
	default:
		snprintf(f->line, sizeof(f->line), "unknown: %s", why);
		snprintf(f->err, sizeof(f->err), "cannot get kmtlsd's status from %s (%s; "
			 "address from %s)", a, why, w->from);
		break;
	}
}

json_object *st_fetch(const struct st_where *w, struct st_fail *f)
{
	json_object *raw, *doc = NULL;
	char why[600];

	memset(f, 0, sizeof(*f));
	raw = st_http_get(w->addr, &f->problem, why, sizeof(why));
	if (raw) {
		doc = st_doc_check(raw, why, sizeof(why));
		if (!doc) {
			f->problem = ST_BAD_DOC;
			snprintf(why + strlen(why), sizeof(why) - strlen(why),
				 " (kmtlsd and kmtlsctl of different kmtls versions?)");
		}
		json_object_put(raw);
	}
	if (!doc)
		explain(w, f, why);
	return doc;
}

json_object *st_kmtlsd(const struct st_where *w, st_section_fn section, struct st_fail *f)
{
	json_object *doc = st_fetch(w, f), *kd;

	if (doc) {
		kd = section(doc, w);
		json_object_put(doc);
		return kd;
	}
	kd = json_object_new_object();
	json_object_object_add(kd, "reachable", json_object_new_boolean(0));
	json_object_object_add(kd, "endpoint", json_object_new_string(w->addr));
	json_object_object_add(kd, "problem", json_object_new_string(f->name));
	json_object_object_add(kd, "error", json_object_new_string(f->err));
	return kd;
}
