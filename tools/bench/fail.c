// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Failures by reason: a small table of distinct sentences per thread, merged
 * at the end. Reasons are few (connect errors, wolfSSL error codes, alerts),
 * so a linear search is the whole index; anything beyond the table is
 * counted as "other".
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

void fails_add(struct bench_fails *f, const char *reason, uint64_t count)
{
	unsigned int i;

	for (i = 0; i < f->n; i++) {
		if (!strcmp(f->e[i].reason, reason)) {
			f->e[i].count += count;
			return;
		}
	}
	if (f->n == FAIL_REASONS) {
		f->other += count;
		return;
	}
	snprintf(f->e[f->n].reason, FAIL_REASON_LEN, "%s", reason);
	f->e[f->n].count = count;
	f->n++;
}

void fails_merge(struct bench_fails *dst, const struct bench_fails *src)
{
	unsigned int i;

	for (i = 0; i < src->n; i++)
		fails_add(dst, src->e[i].reason, src->e[i].count);
	dst->other += src->other;
}
