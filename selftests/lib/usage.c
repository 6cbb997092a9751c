// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tls_pair.h"
#include "usage.h"

static int count_fds(pid_t pid)
{
	struct dirent *e;
	char path[64];
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long live_blocks(const struct failmalloc_ctl *ctl)
{
	return ctl ? atomic_load((atomic_long *)&ctl->live) : 0;
}

int usage_sample(pid_t pid, const struct failmalloc_ctl *ctl, struct usage *u)
{
	char path[64], line[256];
	int i, still = 0, fds;
	long live;
	FILE *f;

	/*
	 * Once descriptors and heap blocks hold still for 100 ms: a status
	 * request that just answered may still be closing its socket and
	 * freeing what it built.
	 */
	u->fds = count_fds(pid);
	u->live = live_blocks(ctl);
	for (i = 0; i < 200 && still < 5 && u->fds >= 0; i++) {
		usleep(20000);
		fds = count_fds(pid);
		live = live_blocks(ctl);
		still = fds == u->fds && live == u->live ? still + 1 : 0;
		u->fds = fds;
		u->live = live;
	}
	u->have_live = !!ctl;
	u->rss_kb = -1;
	if (u->fds < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			u->rss_kb = atol(line + 6);
	fclose(f);
	return u->rss_kb < 0 ? -1 : 0;
}

int usage_lowest_free_fd(pid_t pid)
{
	unsigned char used[4096] = { 0 };
	char path[64];
	struct dirent *e;
	DIR *d;
	long fd;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		fd = strtol(e->d_name, NULL, 10);
		if (e->d_name[0] != '.' && fd >= 0 && fd < (long)sizeof(used))
			used[fd] = 1;
	}
	closedir(d);
	for (i = 0; i < (int)sizeof(used) && used[i]; i++)
		;
	return i;
}

int usage_compare(const struct usage *before, const struct usage *after, int rss,
		  char *msg, size_t len)
{
	int n;

	n = snprintf(msg, len, "fds %d -> %d, VmRSS %ld -> %ld kB%s", before->fds, after->fds,
		     before->rss_kb, after->rss_kb, rss ? "" : " (not compared under ASan)");
	if (before->have_live && after->have_live && n > 0 && (size_t)n < len)
		snprintf(msg + n, len - n, ", heap blocks %+ld", after->live - before->live);
	if (after->fds > before->fds + USAGE_FD_SLACK)
		return -1;
	if (before->have_live && after->have_live &&
	    after->live > before->live + USAGE_LIVE_SLACK)
		return -1;
	return rss && after->rss_kb > before->rss_kb + USAGE_RSS_SLACK_KB ? -1 : 0;
}

int binary_is_asan(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	void *m;

	if (fd < 0)
		return 0;
	if (!fstat(fd, &st) && st.st_size > 0) {
		m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			ret = memmem(m, st.st_size, "__asan_init", 11) != NULL;
			munmap(m, st.st_size);
		}
	}
	close(fd);
	return ret;
}

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
