/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_FAILMALLOC_H
#define KMTLS_SELFTEST_FAILMALLOC_H

#include <stdatomic.h>

/*
 * failmalloc.so, LD_PRELOADed into a program, makes malloc, calloc and
 * realloc fail (NULL, errno ENOMEM) on demand, and counts the blocks the
 * program holds. $KMTLS_FAILMALLOC names a file holding this struct, shared
 * (mmap) between the program and the test that steers it: @every = N fails
 * one allocation in N, 0 none.
 */
struct failmalloc_ctl {
	atomic_uint every;
	atomic_int loaded;		/* the program's pid once the shim is in */
	atomic_ulong calls;		/* allocations while @every was set */
	atomic_ulong failed;
	/*
	 * Blocks allocated minus blocks freed since the shim came in: a leak of
	 * one block per connection shows as exactly that, where VmRSS blurs it.
	 */
	atomic_long live;
};

#endif
