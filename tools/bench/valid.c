// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whether a run measured what it claims. A rate of "ok" handshakes means
 * little when many failed, when connections were stuck at the end, when
 * the client itself ran out of descriptors or ports, when --mode resumed
 * did not resume, or when an open loop did not offer the --rate asked for.
 * Each such finding is a sentence in r->why; main exits 3 when there is one
 * (1 when nothing completed at all). The thresholds are in bench.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "bench.h"

static __attribute__((format(printf, 2, 3)))
void why(struct bench_result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nwhy == BENCH_WHY)
		return;
	va_start(ap, fmt);
	vsnprintf(r->why[r->nwhy++], BENCH_WHY_LEN, fmt, ap);
	va_end(ap);
}

static double pct(uint64_t n, uint64_t of)
{
	return of ? 100.0 * n / of : 0;
}

/* Open loop: attempts that ended (ok or failed) per second of the window. */
double bench_achieved_rate(const struct bench_result *r)
{
	return r->window_s > 0 ? (r->st.ok + r->st.failed) / r->window_s : 0;
}

/* Handshakes that had an earlier one on their slot: each could resume. */
uint64_t bench_resumable(const struct bench_stats *st)
{
	return st->ok - st->first;
}

void bench_judge(struct bench_result *r)
{
	const struct bench_opts *o = r->o;
	const struct bench_stats *st = &r->st;
	uint64_t finished = st->ok + st->failed;
	uint64_t attempts = finished + st->unfinished + st->local;
	double achieved;

	if (!st->ok)
		why(r, "no handshake completed");
	if (st->failed > BENCH_MAX_FAILED * finished && !o->allow_failures)
		why(r, "%llu of %llu connections failed (%.1f%%, over %.0f%%; --allow-failures accepts them)",
		    (unsigned long long)st->failed, (unsigned long long)finished,
		    pct(st->failed, finished), 100 * BENCH_MAX_FAILED);
	if (st->unfinished > BENCH_MAX_UNFINISHED * attempts && !o->allow_failures)
		why(r, "%llu connections unfinished at the end, the oldest %.1f s old (%.1f%% of attempts, over %.0f%%; --timeout recycles stuck ones, --allow-failures accepts them)",
		    (unsigned long long)st->unfinished, st->unfinished_age / 1e9,
		    pct(st->unfinished, attempts), 100 * BENCH_MAX_UNFINISHED);
	if (st->local > BENCH_MAX_LOCAL * attempts)
		why(r, "%llu errors of the client's own (%.1f%% of attempts, over %.0f%%): it could not offer the load asked for",
		    (unsigned long long)st->local, pct(st->local, attempts),
		    100 * BENCH_MAX_LOCAL);
	if (o->mode == BENCH_RESUMED && st->ok &&
	    st->resumed < BENCH_MIN_RESUMED * bench_resumable(st))
		why(r, "%llu of %llu handshakes that could resume did (%.1f%%, under %.0f%%): does the server issue and accept tickets?",
		    (unsigned long long)st->resumed, (unsigned long long)bench_resumable(st),
		    pct(st->resumed, bench_resumable(st)), 100 * BENCH_MIN_RESUMED);
	achieved = bench_achieved_rate(r);
	if (o->rate > 0 && achieved < (1 - BENCH_MAX_SHORTFALL) * o->rate && !o->allow_shortfall)
		why(r, "%.1f handshakes/s achieved of the %g/s offered (--rate), over %.0f%% short, backlog %llu (--allow-shortfall accepts a deliberate overload)",
		    achieved, o->rate, 100 * BENCH_MAX_SHORTFALL,
		    (unsigned long long)st->backlog);
}
