/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Errors reported as an operator's sentence in a buffer the caller gives. */
#ifndef KMTLS_ERRMSG_H
#define KMTLS_ERRMSG_H

#include <stddef.h>

/* The sentence into @err (@len bytes), then -1 for the caller to return. */
int kmtls_fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
