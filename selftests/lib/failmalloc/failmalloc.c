// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * An allocator that fails on demand and counts live blocks, for fault-
 * injection tests: see failmalloc.h. It forwards to glibc's own allocator
 * (__libc_*), so memory from either side may be freed by the other. The
 * count misses glibc's memalign family (rare, and not per connection here).
 * Not for sanitizer builds, whose runtime must own malloc.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "failmalloc.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static struct failmalloc_ctl *ctl;

__attribute__((constructor)) static void failmalloc_init(void)
{
	const char *path = getenv("KMTLS_FAILMALLOC");
	void *m;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	m = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	ctl = m;
	atomic_store(&ctl->loaded, (int)getpid());
}

static int fail_now(void)
{
	unsigned int every;

	if (!ctl)
		return 0;
	every = atomic_load_explicit(&ctl->every, memory_order_relaxed);
	if (!every || atomic_fetch_add(&ctl->calls, 1) % every)
		return 0;
	atomic_fetch_add(&ctl->failed, 1);
	errno = ENOMEM;
	return 1;
}

static void *counted(void *p, long delta)
{
	if (p && ctl)
		atomic_fetch_add_explicit(&ctl->live, delta, memory_order_relaxed);
	return p;
}

void *malloc(size_t n)
{
	return fail_now() ? NULL : counted(__libc_malloc(n), 1);
}

void *calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : counted(__libc_calloc(n, size), 1);
}

void *realloc(void *p, size_t n)
{
	void *q;

	if (!n) {		/* frees: never fail that */
		counted(p, -1);
		return __libc_realloc(p, 0);
	}
	if (fail_now())
		return NULL;
	q = __libc_realloc(p, n);
	return p ? q : counted(q, 1);
}

void free(void *p)
{
	counted(p, -1);
	__libc_free(p);
}
