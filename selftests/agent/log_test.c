// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The log limit for lines anyone can cause (agent/log.h): of each kind the
 * first KMTLS_LOG_LIMIT_BURST lines of a window are written, the others
 * counted and said in one summary line when the window is over (by the
 * main thread's kmtls_log_limited_flush(), or before the next line of that
 * kind); kinds are counted apart; a level that is not logged counts
 * nothing.
 *
 * The monotonic clock is this file's (CLOCK_MONOTONIC is replaced below,
 * for this test binary only), so windows pass without waiting for them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../lib/proc.h"
#include "../../agent/log.h"
#include "kselftest_harness.h"

static long long fake_ms = -1;	/* -1: the real clock */

/* log.c's clock: ours when fake_ms is set, else the kernel's. */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	if (id == CLOCK_MONOTONIC && fake_ms >= 0) {
		ts->tv_sec = fake_ms / 1000;
		ts->tv_nsec = (fake_ms % 1000) * 1000000;
		return 0;
	}
	return (int)syscall(SYS_clock_gettime, id, ts);
}

/* stderr (where kmtls_log writes in the foreground) into a file of ours. */
struct capture {
	char path[512];
	int saved;
};

static int capture_start(struct capture *c, const char *name)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/%s.log", test_tmpdir(), name);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fflush(stderr);
	c->saved = dup(2);
	if (fd < 0 || c->saved < 0 || dup2(fd, 2) < 0)
		return -1;
	close(fd);
	return 0;
}

/* Back to the real stderr; the lines written, malloc'd. */
static char *capture_end(struct capture *c)
{
	char *buf = calloc(1, 1 << 20);
	FILE *f;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	f = fopen(c->path, "r");
	if (f && buf)
		buf[fread(buf, 1, (1 << 20) - 1, f)] = 0;
	if (f)
		fclose(f);
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	while (hay && (hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

#define KIND "kernel request for no profile of ours"
#define HELD(n) #n " more \"" KIND "\" line(s) within 10 s were not logged"

FIXTURE(lim) {
	struct capture cap;
	char *out;
};

FIXTURE_SETUP(lim)
{
	fake_ms = 1000000;
	self->out = NULL;
	kmtls_log_init("kmtlsd", 1, LOG_INFO);
	ASSERT_EQ(0, capture_start(&self->cap, _metadata->name));
}

FIXTURE_TEARDOWN(lim)
{
	if (!self->out)
		self->out = capture_end(&self->cap);
	if (!__test_passed(_metadata))
		fprintf(stderr, "# log:\n%s", self->out ? self->out : "(none)\n");
	free(self->out);
}

TEST_F(lim, first_lines_written_the_rest_summarized_at_the_window_end)
{
	char line[32];
	int i;

	for (i = 0; i < KMTLS_LOG_LIMIT_BURST + 5; i++)
		kmtls_log_limited(KIND, LOG_WARNING, "refused %d.", i);
	/* Held back until the window is over, which flush says when. */
	EXPECT_EQ(KMTLS_LOG_LIMIT_WINDOW_MS, kmtls_log_limited_flush());
	fake_ms += KMTLS_LOG_LIMIT_WINDOW_MS - 1;
	EXPECT_EQ(1, kmtls_log_limited_flush());
	fake_ms += 1;
	EXPECT_EQ(-1, kmtls_log_limited_flush());
	EXPECT_EQ(-1, kmtls_log_limited_flush());	/* said once */
	kmtls_log_limited(KIND, LOG_WARNING, "refused again.");
	self->out = capture_end(&self->cap);
	ASSERT_NE(NULL, self->out);
	for (i = 0; i < KMTLS_LOG_LIMIT_BURST + 5; i++) {
		snprintf(line, sizeof(line), "refused %d.", i);
		EXPECT_EQ(i < KMTLS_LOG_LIMIT_BURST, count(self->out, line)) TH_LOG("%s", line);
	}
	EXPECT_EQ(1, count(self->out, "[warning]: " HELD(5) " (at most 20 of each kind are, per 10 s)\n"));
	EXPECT_EQ(1, count(self->out, "refused again."));
	/* In that order: the summary before the next window's line. */
	EXPECT_LT(strstr(self->out, HELD(5)), strstr(self->out, "refused again."));
	EXPECT_EQ(KMTLS_LOG_LIMIT_BURST + 2, count(self->out, "\n"));
}

/* No flush in between: the next line of the kind brings the summary first. */
TEST_F(lim, summary_comes_with_the_next_line_without_a_flush)
{
	int i;

	for (i = 0; i < KMTLS_LOG_LIMIT_BURST + 3; i++)
		kmtls_log_limited(KIND, LOG_WARNING, "refused.");
	fake_ms += 3600 * 1000;
	kmtls_log_limited(KIND, LOG_WARNING, "refused later.");
	self->out = capture_end(&self->cap);
	ASSERT_NE(NULL, self->out);
	EXPECT_EQ(1, count(self->out, HELD(3)));
	EXPECT_LT(strstr(self->out, HELD(3)), strstr(self->out, "refused later."));
	EXPECT_EQ(-1, kmtls_log_limited_flush());
}

TEST_F(lim, kinds_are_counted_apart)
{
	int i;

	for (i = 0; i < KMTLS_LOG_LIMIT_BURST + 1; i++)
		kmtls_log_limited(KIND, LOG_WARNING, "a.");
	kmtls_log_limited("kernel request failed", LOG_WARNING, "b.");
	/* A key with the same text is the same kind (another pointer). */
	kmtls_log_limited(strdupa(KIND), LOG_WARNING, "a again.");
	self->out = capture_end(&self->cap);
	EXPECT_EQ(KMTLS_LOG_LIMIT_BURST, count(self->out, "a.\n"));
	EXPECT_EQ(1, count(self->out, "b.\n"));
	EXPECT_EQ(0, count(self->out, "a again."));
	fake_ms += KMTLS_LOG_LIMIT_WINDOW_MS;
	ASSERT_EQ(0, capture_start(&self->cap, "kinds2"));
	EXPECT_EQ(-1, kmtls_log_limited_flush());
	free(self->out);
	self->out = capture_end(&self->cap);
	EXPECT_EQ(1, count(self->out, HELD(2)));
	EXPECT_EQ(0, count(self->out, "\"kernel request failed\""));
}

/* Lines below the log level are neither written nor counted. */
TEST_F(lim, a_level_not_logged_counts_nothing)
{
	int i;

	for (i = 0; i < 100; i++)
		kmtls_log_limited(KIND, LOG_DEBUG, "debug.");
	EXPECT_EQ(-1, kmtls_log_limited_flush());
	kmtls_log_limited(KIND, LOG_WARNING, "warned.");
	self->out = capture_end(&self->cap);
	EXPECT_EQ(0, count(self->out, "debug."));
	EXPECT_EQ(1, count(self->out, "warned."));
}

TEST_HARNESS_MAIN
