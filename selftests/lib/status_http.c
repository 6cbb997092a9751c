// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "status_http.h"
#include "tls_pair.h"

char *status_get(int port, const char *path)
{
	char req[128], *buf = malloc(65536), *body;
	size_t len = 0;
	ssize_t n;
	int fd;

	if (!buf || tcp_connect_port(port, &fd)) {
		free(buf);
		return NULL;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		len = 0;
	while (len < 65535 && (n = recv(fd, buf + len, 65535 - len, 0)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	body = strstr(buf, "\r\n\r\n");
	if (!body || strncmp(buf, "HTTP/1.0 200", 12)) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

long status_metric(const char *text, const char *name)
{
	const char *p = text;
	size_t l = strlen(name);

	while ((p = strstr(p, name))) {
		if ((p == text || p[-1] == '\n') && p[l] == ' ')
			return atol(p + l + 1);
		p += l;
	}
	return -1;
}

long status_int(int port, const char *key)
{
	char *js = status_get(port, "/status"), *k = strdup(key), *dot;
	json_object *o = js ? json_tokener_parse(js) : NULL, *cur = o, *v;
	long ret = -1;

	dot = k ? strchr(k, '.') : NULL;
	if (dot)
		*dot = 0;
	if (cur && k && json_object_object_get_ex(cur, k, &v)) {
		if (dot && !json_object_object_get_ex(v, dot + 1, &v))
			v = NULL;
		if (v && json_object_is_type(v, json_type_int))
			ret = (long)json_object_get_int64(v);
	}
	json_object_put(o);
	free(js);
	free(k);
	return ret;
}

int status_wait(int port, const char *key, long want, int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		if (status_int(port, key) == want)
			return 0;
		usleep(20000);
	}
	return -1;
}
