// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's status endpoint as kmtlsctl status and stats see it: where it is
 * (--endpoint, else status-listen of the kmtlsd config, else the packaged
 * default) and GET /status over HTTP/1.0 (agent/status.c serves one request
 * per connection and closes, so the body runs to EOF).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/addr.h"
#include "../../agent/config.h"
#include "kmtlsctl.h"
#include "st.h"

#define ST_TIMEOUT_MS	5000
#define ST_MAX_BODY	(16 << 20)

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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait for @events until @deadline: 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int dial(const char *addr, long long deadline, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len, elen = sizeof(int);
	char why[200];
	int fd, e = 0;

	if (kmtls_addr_parse(addr, 1, &ss, &len, why, sizeof(why))) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if ((connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) ||
	    wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen))
		e = errno;
	if (e) {
		snprintf(err, errlen, "connect: %s", strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

/* The whole response, NUL-terminated, or NULL with @err set. */
static char *exchange(int fd, long long deadline, size_t *len, char *err, size_t errlen)
{
	static const char req[] = "GET /status HTTP/1.0\r\nHost: kmtlsd\r\n\r\n";
	size_t cap = 8192, n = 0, off = 0;
	char *buf = malloc(cap), *p;
	ssize_t r;

	while (buf && off < sizeof(req) - 1) {
		r = send(fd, req + off, sizeof(req) - 1 - off, MSG_NOSIGNAL);
		if (r > 0) {
			off += (size_t)r;
		} else if (r < 0 && errno == EAGAIN && !wait_fd(fd, POLLOUT, deadline)) {
			continue;
		} else if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "send: %s", strerror(errno));
			goto fail;
		}
	}
	while (buf) {
		if (n + 1 == cap) {
			if (cap >= ST_MAX_BODY) {
				snprintf(err, errlen, "the response is larger than %d bytes",
					 ST_MAX_BODY);
				goto fail;
			}
			p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r > 0) {
			n += (size_t)r;
		} else if (r == 0) {
			buf[n] = 0;
			*len = n;
			return buf;
		} else if (errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline)) {
				snprintf(err, errlen, "no complete answer within %d ms",
					 ST_TIMEOUT_MS);
				goto fail;
			}
		} else if (errno != EINTR) {
			snprintf(err, errlen, "recv: %s", strerror(errno));
			goto fail;
		}
	}
	snprintf(err, errlen, "out of memory");
fail:
	free(buf);
	return NULL;
}

/* Status line and header end; the JSON body parsed by json-c. */
static json_object *parse_response(char *resp, size_t len, char *err, size_t errlen)
{
	enum json_tokener_error jerr;
	json_object *o;
	char *body, *eol;
	long code;

	body = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.", 7) || !body || strlen(resp) != len) {
		snprintf(err, errlen, "the answer is not HTTP (another service on that address?)");
		return NULL;
	}
	code = strtol(resp + 9, NULL, 10);
	if (code != 200) {
		eol = strstr(resp, "\r\n");
		*eol = 0;
		snprintf(err, errlen, "GET /status: %s (a kmtlsd without /status?)", resp);
		return NULL;
	}
	o = json_tokener_parse_verbose(body + 4, &jerr);
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "GET /status: not a JSON object (%s)",
			 o ? "another type" : json_tokener_error_desc(jerr));
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *st_fetch(const struct st_where *w, char *err, size_t errlen)
{
	long long deadline = now_ms() + ST_TIMEOUT_MS;
	char why[300] = "";
	json_object *o = NULL;
	size_t len;
	char *resp;
	int fd;

	fd = dial(w->addr, deadline, why, sizeof(why));
	if (fd >= 0) {
		resp = exchange(fd, deadline, &len, why, sizeof(why));
		close(fd);
		if (resp)
			o = parse_response(resp, len, why, sizeof(why));
		free(resp);
	}
	if (!o)
		snprintf(err, errlen, "kmtlsd is not reachable on %s (%s; address from %s): %s",
			 w->addr, why, w->from, w->hint);
	return o;
}

json_object *st_kmtlsd(const struct st_where *w, st_section_fn section, int *up, char *err,
		       size_t errlen)
{
	json_object *doc = st_fetch(w, err, errlen), *kd;

	*up = !!doc;
	if (doc) {
		kd = section(doc, w);
		json_object_put(doc);
		return kd;
	}
	kd = json_object_new_object();
	json_object_object_add(kd, "reachable", json_object_new_boolean(0));
	json_object_object_add(kd, "endpoint", json_object_new_string(w->addr));
	json_object_object_add(kd, "error", json_object_new_string(err));
	return kd;
}
