// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <limits.h>
#include <sys/un.h>

#include "addr.h"

static int parse_port(const char *p, unsigned short *port)
{
	char *end;
	unsigned long v;

	if (!*p)
		return -1;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || *end || v == 0 || v > 65535 || *p == '-' || *p == '+')
		return -1;
	*port = (unsigned short)v;
	return 0;
}

static int parse_unix(const char *path, struct sockaddr_storage *ss,
		      socklen_t *len, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;

	if (path[0] != '/' || strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "unix socket path must be absolute and shorter than %zu bytes",
			 sizeof(sun->sun_path));
		return -1;
	}
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path, path);
	*len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
	return 0;
}

int kmtls_addr_parse(const char *s, int allow_unix, struct sockaddr_storage *ss,
		     socklen_t *len, char *err, size_t errlen)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned short port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!strncmp(s, "unix:", 5)) {
		if (allow_unix)
			return parse_unix(s + 5, ss, len, err, errlen);
		snprintf(err, errlen, "\"%s\": a unix socket is not allowed here", s);
		return -1;
	}
	colon = strrchr(s, ':');
	if (!colon || parse_port(colon + 1, &port)) {
		snprintf(err, errlen, "\"%s\": expected ADDRESS:PORT with a port from 1 to 65535%s",
			 s, allow_unix ? " or unix:/path" : "");
		return -1;
	}
	hl = colon - s;
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']' && hl - 2 < sizeof(host)) {
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = 0;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			*len = sizeof(*in6);
			return 0;
		}
	} else if (hl < sizeof(host)) {
		memcpy(host, s, hl);
		host[hl] = 0;
		if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons(port);
			*len = sizeof(*in4);
			return 0;
		}
	}
	snprintf(err, errlen, "\"%s\": not an IPv4 address or a bracketed IPv6 address ([::1]:443)", s);
	return -1;
}

const char *kmtls_addr_str(const struct sockaddr *sa, socklen_t len, char *buf,
			   size_t buflen)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const void *)sa;

		snprintf(buf, buflen, "unix:%.*s",
			 (int)(len > offsetof(struct sockaddr_un, sun_path) ?
			       len - offsetof(struct sockaddr_un, sun_path) : 0),
			 sun->sun_path);
		break;
	}
	default:
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
	return buf;
}

/* @path with its directory resolved (the socket itself may not exist yet). */
static void unix_canonical(const char *path, char *out, size_t len)
{
	char d[PATH_MAX], b[PATH_MAX], real[PATH_MAX];

	snprintf(d, sizeof(d), "%s", path);
	snprintf(b, sizeof(b), "%s", path);
	if (realpath(dirname(d), real))
		snprintf(out, len, "%s/%s", real, basename(b));
	else
		snprintf(out, len, "%s", path);
}

int kmtls_addr_same(const char *a, const char *b)
{
	struct sockaddr_storage sa, sb;
	socklen_t la, lb;
	char err[128], ca[PATH_MAX + 2], cb[PATH_MAX + 2];
	const struct sockaddr_in *a4 = (const void *)&sa, *b4 = (const void *)&sb;
	const struct sockaddr_in6 *a6 = (const void *)&sa, *b6 = (const void *)&sb;

	if (kmtls_addr_parse(a, 1, &sa, &la, err, sizeof(err)) ||
	    kmtls_addr_parse(b, 1, &sb, &lb, err, sizeof(err)))
		return !strcmp(a, b);
	if (sa.ss_family != sb.ss_family)
		return 0;
	switch (sa.ss_family) {
	case AF_INET:
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port && a6->sin6_scope_id == b6->sin6_scope_id &&
		       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
	case AF_UNIX:
		unix_canonical(((const struct sockaddr_un *)&sa)->sun_path, ca, sizeof(ca));
		unix_canonical(((const struct sockaddr_un *)&sb)->sun_path, cb, sizeof(cb));
		return !strcmp(ca, cb);
	}
	return 0;
}
