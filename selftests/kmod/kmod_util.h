/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers of the kmtls.ko tests (kmtls_test, race_test, reload_stress,
 * kservice_test):
 * sysctls and counters of the current namespace, TCP pairs, the ioctls of
 * /dev/kmtls, loading and unloading the module, and the kernel log.
 *
 * Header-only: every .c file in selftests/kmod/ becomes a test program.
 */
#ifndef KMTLS_SELFTEST_KMOD_UTIL_H
#define KMTLS_SELFTEST_KMOD_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <uapi/linux/kmtls.h>

#include "../lib/proc.h"

#define DEV		"/dev/kmtls"
#define SYSCTL_DIR	"/proc/sys/net/kmtls/"

/* ---- helpers ----------------------------------------------------------- */

static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Write @s into the file @name of the directory @dir: 0, or -errno. */
static inline int write_at(int dir, const char *name, const char *s)
{
	int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static inline int write_file(const char *path, const char *s)
{
	return write_at(AT_FDCWD, path, s);
}

static inline int set_sysctl(const char *name, unsigned int v)
{
	char path[128], val[32];

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	snprintf(val, sizeof(val), "%u\n", v);
	return write_file(path, val);
}

/* A "Name value" counter of @file (this namespace's); -1 if missing */
static inline long counter(const char *file, const char *name)
{
	char line[128], key[64];
	long v, ret = -1;
	FILE *f = fopen(file, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", key, &v) == 2 && !strcmp(key, name))
			ret = v;
	fclose(f);
	return ret;
}

/* A counter of /proc/net/kmtls_stat; -1 if missing */
static inline long stat_get(const char *name)
{
	return counter("/proc/net/kmtls_stat", name);
}

/* Every submitted request is in exactly one terminal counter or gauge */
static inline long stat_unaccounted(void)
{
	static const char *const ends[] = {
		"Completed", "Failed", "TimedOut", "NoAgent", "QueueFull",
		"Cancelled", "AgentLost", "PendingNow", "InFlightNow",
	};
	long sum = 0;
	size_t i;

	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		sum += stat_get(ends[i]);
	return stat_get("Submitted") - sum;
}

/* Wait up to @ms for counter @name to reach @want; its last value */
static inline long stat_settle(const char *name, long want, int ms)
{
	long long end = now_ms() + ms;
	long v;

	while ((v = stat_get(name)) != want && now_ms() < end)
		usleep(10000);
	return v;
}

static inline int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!ret && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* A connected TCP pair over loopback: *c connected, *s accepted */
static inline int tcp_pair_af(int family, int *c, int *s)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int l;

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&ss, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&ss, &len))
		goto fail;
	*c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&ss, len))
		goto fail;
	*s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*s < 0)
		goto fail;
	close(l);
	return 0;
fail:
	close(l);
	return -errno;
}

static inline uint64_t sock_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
	return cookie;
}

static inline void submit_init(struct kmtls_submit *sub, int fd, uint32_t role,
			       uint32_t timeout_ms, uint64_t user_data)
{
	memset(sub, 0, sizeof(*sub));
	sub->size = sizeof(*sub);
	sub->sockfd = fd;
	sub->role = role;
	sub->timeout_ms = timeout_ms;
	sub->user_data = user_data;
}

/* KMTLS_IOC_SUBMIT; 0 or -errno, *id set on success */
static inline int submit(int dev, int fd, uint32_t role, uint32_t timeout_ms,
			 uint64_t user_data, uint64_t *id)
{
	struct kmtls_submit sub;

	if (id)
		*id = 0;
	submit_init(&sub, fd, role, timeout_ms, user_data);
	strcpy(sub.peer_name, "peer.example");
	strcpy(sub.profile, "test");
	if (ioctl(dev, KMTLS_IOC_SUBMIT, &sub) < 0)
		return -errno;
	if (id)
		*id = sub.id;
	return 0;
}

/* KMTLS_IOC_WAIT; 0 or -errno */
static inline int wait_req(int dev, uint64_t id, struct kmtls_completion *c)
{
	struct kmtls_wait w = {
		.size = sizeof(w),
		.id = id,
		.completion = (uintptr_t)c,
		.completion_size = sizeof(*c),
	};

	memset(c, 0xff, sizeof(*c));
	return ioctl(dev, KMTLS_IOC_WAIT, &w) < 0 ? -errno : 0;
}

/* Read @n completions within @ms; returns how many arrived */
static inline int collect(int dev, struct kmtls_completion *c, int n, int ms)
{
	long long end = now_ms() + ms;
	struct pollfd p = { .fd = dev, .events = POLLIN };
	int got = 0;

	while (got < n && now_ms() < end) {
		ssize_t r;

		if (poll(&p, 1, (int)(end - now_ms())) <= 0)
			continue;
		r = read(dev, c + got, (size_t)(n - got) * sizeof(*c));
		if (r > 0)
			got += r / (ssize_t)sizeof(*c);
	}
	return got;
}

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static inline bool has_ulp_tls(int fd)
{
	char name[16] = "";
	socklen_t len = sizeof(name);

	return !getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) &&
	       !strcmp(name, "tls");
}

/* The socket was shut down by the kernel: reads see EOF at once */
static inline bool is_shut_down(int fd)
{
	char b;

	return recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

/* Data still flows both ways in plaintext: the kernel left it alone */
static inline bool still_plain(int c, int s)
{
	char b[4] = "";

	return send(c, "ping", 4, 0) == 4 && recv(s, b, 4, MSG_WAITALL) == 4 &&
	       !memcmp(b, "ping", 4);
}

static inline int module_refcnt(void)
{
	char buf[32] = "";
	int fd = open("/sys/module/kmtls/refcnt", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return atoi(buf);
}

/* Wait up to @ms for the module's reference count to reach @want */
static inline int module_refcnt_settle(int want, int ms)
{
	long long end = now_ms() + ms;
	int n;

	while ((n = module_refcnt()) != want && now_ms() < end)
		usleep(20000);
	return n;
}

/* ---- the module ----------------------------------------------------------- */

/* kmtls.ko for the running kernel: $KMTLS_KMOD, else $KMTLS_OUT/../kmod/<release>/ */
static inline const char *module_path(void)
{
	static char path[512];
	const char *ko = getenv("KMTLS_KMOD");
	struct utsname u;

	if (ko && *ko)
		return ko;
	uname(&u);
	snprintf(path, sizeof(path), "%s/%s/kmtls.ko", out_path("../kmod"), u.release);
	return path;
}

static inline bool module_loaded(void)
{
	return !access("/sys/module/kmtls", F_OK);
}

/* finit_module(); 0 or -errno */
static inline int module_load(void)
{
	int fd = open(module_path(), O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * delete_module() until it succeeds or @ms pass: it fails with EWOULDBLOCK
 * while anything holds a reference. 0 or the last -errno.
 */
static inline int module_unload_within(int ms)
{
	long long end = now_ms() + ms;
	int ret;

	for (;;) {
		ret = syscall(SYS_delete_module, "kmtls", O_NONBLOCK) ? -errno : 0;
		if (ret != -EWOULDBLOCK || now_ms() >= end)
			return ret;
		usleep(5000);
	}
}

/* ---- the kernel log ------------------------------------------------------ */

static char kmsg_mark[96];

/* Mark the kernel log at start, so that a test reads only what came after */
static void __attribute__((constructor)) kmsg_mark_start(void)
{
	snprintf(kmsg_mark, sizeof(kmsg_mark), "kmtls-selftest-%s-%d-%lld",
		 program_invocation_short_name, getpid(), now_ms());
	if (!geteuid())
		write_file("/dev/kmsg", kmsg_mark);
}

/*
 * A line after the mark that says something went wrong, or NULL (free()
 * it). Besides warnings and oopses: what SLUB debugging (slub_debug=FZPU)
 * and KFENCE report, the hung task detector, list debugging.
 */
static inline char *kmsg_trouble(void)
{
	static const char *const bad[] = {
		"BUG:", "] BUG ", "kernel BUG", "WARNING:", "Oops",
		"general protection", "Call Trace", "refcount_t:", "UBSAN",
		"KASAN", "KFENCE", "list_add corruption", "list_del corruption",
		"Poison overwritten", "Redzone", "Object already free",
		"Freepointer", "blocked for more than", "leak",
		"kmtls: initialization failed",
	};
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p, *line;
	size_t i;

	if (len <= 0)
		return NULL;
	buf = calloc(1, len + 1);
	if (!buf)
		return NULL;
	if (klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len) < 0) {
		free(buf);
		return NULL;
	}
	p = strstr(buf, kmsg_mark);
	for (line = p ? strtok(p, "\n") : NULL; line; line = strtok(NULL, "\n"))
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strstr(line, bad[i]))
				return memmove(buf, line, strlen(line) + 1);
	free(buf);
	return NULL;
}

#endif /* KMTLS_SELFTEST_KMOD_UTIL_H */
