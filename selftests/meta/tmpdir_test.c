// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_tmpdir() (selftests/lib/proc.c): each test case gets a directory of
 * its own, and a test binary leaves none behind when it exits, key files
 * included, unless KMTLS_KEEP_TMP is set. The harness ends each case's
 * process with _exit(), so the cases below run this binary again for its
 * case make_files and look at what is left of the directory it printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/proc.h"
#include "kselftest_harness.h"

/* A file in a subdirectory, as the tests' PKI copies and key files are. */
static void write_files(struct __test_metadata *_metadata)
{
	const char *dir = test_tmpdir();
	char path[256];
	int fd;

	printf("# tmpdir %s\n", dir);
	fflush(stdout);
	snprintf(path, sizeof(path), "%s/pki", dir);
	ASSERT_EQ(0, mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/pki/server.key", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(4, write(fd, "key\n", 4));
	close(fd);
}

TEST(make_files)
{
	write_files(_metadata);
}

TEST(make_more_files)
{
	write_files(_metadata);
}

/*
 * Run make_files and make_more_files in a new process of this binary, with
 * KMTLS_KEEP_TMP set when @keep; their directories in @a and @b (256
 * bytes). Returns its exit status, or -1.
 */
static int run_make_files(int keep, char *a, char *b)
{
	char out[8192], *p;
	size_t got = 0;
	ssize_t n;
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		if (keep)
			setenv("KMTLS_KEEP_TMP", "1", 1);
		else
			unsetenv("KMTLS_KEEP_TMP");
		execl("/proc/self/exe", "tmpdir_test", "-t", "make_files", "-t", "make_more_files",
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (got < sizeof(out) - 1 && (n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	p = strstr(out, "# tmpdir ");
	if (!p || sscanf(p, "# tmpdir %255s", a) != 1)
		return -1;
	p = strstr(p + 1, "# tmpdir ");
	if (!p || sscanf(p, "# tmpdir %255s", b) != 1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Each case a directory of its own, in one directory for the whole run. */
static int apart_in_one(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	if (!sa || !sb || sa - a != sb - b || strncmp(a, b, sa - a) || !strcmp(a, b))
		return 0;
	return sa - a > 16 && !strncmp(a, "/tmp/kmtls-test.", 16);
}

TEST(removed_at_exit)
{
	char a[256] = "", b[256] = "";
	struct stat st;

	ASSERT_EQ(0, run_make_files(0, a, b));
	EXPECT_NE(0, stat(a, &st)) TH_LOG("%s is still there", a);
	EXPECT_NE(0, stat(b, &st)) TH_LOG("%s is still there", b);
	ASSERT_TRUE(apart_in_one(a, b)) TH_LOG("tmpdirs %s and %s", a, b);
	*strrchr(a, '/') = '\0';
	EXPECT_NE(0, stat(a, &st)) TH_LOG("%s is still there", a);
}

/* Remove what make_files made in @dir; 0 when it was all there. */
static int unmake_files(const char *dir)
{
	char path[300];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/pki/server.key", dir);
	rc |= unlink(path);
	snprintf(path, sizeof(path), "%s/pki", dir);
	rc |= rmdir(path);
	return rc | rmdir(dir);
}

TEST(kept_with_KMTLS_KEEP_TMP)
{
	char a[256] = "", b[256] = "";

	ASSERT_EQ(0, run_make_files(1, a, b));
	ASSERT_TRUE(apart_in_one(a, b)) TH_LOG("tmpdirs %s and %s", a, b);
	EXPECT_EQ(0, unmake_files(a)) TH_LOG("%s: not all there", a);
	EXPECT_EQ(0, unmake_files(b)) TH_LOG("%s: not all there", b);
	*strrchr(a, '/') = '\0';
	EXPECT_EQ(0, rmdir(a)) TH_LOG("%s: %s", a, strerror(errno));
}

TEST_HARNESS_MAIN
