// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
	return usage_fd_limit_with_room(pid, 0);
}

int usage_fd_limit_with_room(pid_t pid, int room)
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
	for (i = 0; i < (int)sizeof(used); i++)
		if (!used[i] && room-- == 0)
			break;
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
