// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls_path_walk(), what watch-files watches: every directory entry the
 * kernel looks up to open a path, through symlinks to files and to
 * directories (Kubernetes' ..data, a "current" directory, certbot), with
 * ".." taken in the directory a symlink led to; a missing name is still
 * reported (its creation matters) and ends the walk; loops end with ELOOP.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/pathwalk.h"
#include "../lib/proc.h"
#include "kselftest_harness.h"

FIXTURE(pw) {
	char base[PATH_MAX];
	char got[4096];	/* "dir|name|final;" for each lookup below base */
};

/* Lookups below base only: the ones above depend on where the tmpdir is. */
static int record(const char *dir, const char *name, int final, void *arg)
{
	FIXTURE_DATA(pw) *self = arg;
	size_t n = strlen(self->base), len = strlen(self->got);

	if (strncmp(dir, self->base, n) || (dir[n] && dir[n] != '/'))
		return 0;
	snprintf(self->got + len, sizeof(self->got) - len, "%s|%s|%d;",
		 dir[n] ? dir + n + 1 : ".", name ? name : "-", final);
	return 0;
}

static int walk(FIXTURE_DATA(pw) *self, const char *rel)
{
	char path[PATH_MAX + 256];

	self->got[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", self->base, rel);
	return kmtls_path_walk(path, record, self);
}

static int mk(FIXTURE_DATA(pw) *self, const char *rel)
{
	char path[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/%s", self->base, rel);
	return mkdir(path, 0700);
}

static int touch(FIXTURE_DATA(pw) *self, const char *rel)
{
	char path[PATH_MAX + 256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", self->base, rel);
	f = fopen(path, "w");
	return f && !fclose(f) ? 0 : -1;
}

static int ln(FIXTURE_DATA(pw) *self, const char *target, const char *rel)
{
	char path[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/%s", self->base, rel);
	return symlink(target, path);
}

FIXTURE_SETUP(pw)
{
	char dir[256];

	/* Its real path: the walk reports directories without symlinks. */
	snprintf(dir, sizeof(dir), "%s/%s", test_tmpdir(), _metadata->name);
	ASSERT_EQ(0, mkdir(dir, 0700));
	ASSERT_NE(NULL, realpath(dir, self->base));
}

FIXTURE_TEARDOWN(pw)
{
}

TEST_F(pw, plain_file)
{
	ASSERT_EQ(0, mk(self, "tls"));
	ASSERT_EQ(0, touch(self, "tls/server.pem"));
	EXPECT_EQ(0, walk(self, "tls/server.pem"));
	EXPECT_STREQ(".|tls|0;tls|server.pem|1;", self->got);
}

TEST_F(pw, kubernetes_data)
{
	ASSERT_EQ(0, mk(self, "tls"));
	ASSERT_EQ(0, mk(self, "tls/..v1"));
	ASSERT_EQ(0, touch(self, "tls/..v1/tls.crt"));
	ASSERT_EQ(0, ln(self, "..v1", "tls/..data"));
	ASSERT_EQ(0, ln(self, "..data/tls.crt", "tls/tls.crt"));
	EXPECT_EQ(0, walk(self, "tls/tls.crt"));
	EXPECT_STREQ(".|tls|0;tls|tls.crt|0;tls|..data|0;tls|..v1|0;tls/..v1|tls.crt|1;",
		     self->got);
}

TEST_F(pw, symlinked_directory)
{
	ASSERT_EQ(0, mk(self, "rel1"));
	ASSERT_EQ(0, touch(self, "rel1/server.pem"));
	ASSERT_EQ(0, ln(self, "rel1", "current"));
	EXPECT_EQ(0, walk(self, "current/server.pem"));
	EXPECT_STREQ(".|current|0;.|rel1|0;rel1|server.pem|1;", self->got);
}

TEST_F(pw, certbot_absolute_and_dotdot)
{
	char target[PATH_MAX + 32];

	ASSERT_EQ(0, mk(self, "archive"));
	ASSERT_EQ(0, mk(self, "live"));
	ASSERT_EQ(0, touch(self, "archive/fullchain1.pem"));
	ASSERT_EQ(0, ln(self, "../archive/fullchain1.pem", "live/fullchain.pem"));
	EXPECT_EQ(0, walk(self, "live/fullchain.pem"));
	EXPECT_STREQ(".|live|0;live|fullchain.pem|0;.|archive|0;archive|fullchain1.pem|1;",
		     self->got);
	/* An absolute target starts again at /; ".." after it is the target's parent. */
	ASSERT_EQ(0, mk(self, "archive/sub"));
	snprintf(target, sizeof(target), "%s/archive/sub", self->base);
	ASSERT_EQ(0, ln(self, target, "live/sub"));
	EXPECT_EQ(0, walk(self, "live/sub/../fullchain1.pem"));
	EXPECT_STREQ(".|live|0;live|sub|0;.|archive|0;archive|sub|0;archive|fullchain1.pem|1;",
		     self->got);
}

TEST_F(pw, directory_named)
{
	ASSERT_EQ(0, mk(self, "ca.d"));
	EXPECT_EQ(0, walk(self, "ca.d"));
	EXPECT_STREQ(".|ca.d|0;ca.d|-|1;", self->got);
}

TEST_F(pw, missing_names_end_the_walk)
{
	EXPECT_EQ(ENOENT, walk(self, "tls/server.pem"));
	EXPECT_STREQ(".|tls|0;", self->got);
	ASSERT_EQ(0, mk(self, "tls"));
	EXPECT_EQ(ENOENT, walk(self, "tls/server.pem"));
	EXPECT_STREQ(".|tls|0;tls|server.pem|1;", self->got);
	ASSERT_EQ(0, touch(self, "file"));
	EXPECT_EQ(ENOTDIR, walk(self, "file/server.pem"));
	EXPECT_STREQ(".|file|0;", self->got);
	ASSERT_EQ(0, ln(self, "nowhere", "dangling"));
	EXPECT_EQ(ENOENT, walk(self, "dangling"));
	EXPECT_STREQ(".|dangling|0;.|nowhere|1;", self->got);
}

TEST_F(pw, loops_and_relative_paths_refused)
{
	ASSERT_EQ(0, ln(self, "b", "a"));
	ASSERT_EQ(0, ln(self, "a", "b"));
	EXPECT_EQ(ELOOP, walk(self, "a/x"));
	EXPECT_EQ(EINVAL, kmtls_path_walk("relative/path", record, self));
}

TEST_HARNESS_MAIN
