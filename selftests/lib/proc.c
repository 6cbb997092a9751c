// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/*
 * The test files of one run of a test binary live in one directory,
 * /tmp/kmtls-test.XXXXXX, made when a test first asks, with one directory
 * per process that asks inside (each harness case runs in a process of its
 * own and must not meet the files of the case before). The harness ends
 * those processes with _exit(), which runs no atexit handler, so the
 * process that started the binary removes the whole directory when it
 * exits; it learns the path through a page shared with all its children.
 * Failing tests print their logs before that. KMTLS_KEEP_TMP keeps it.
 */
enum { TMP_NONE, TMP_MAKING, TMP_MADE, TMP_FAILED };

struct tmp_run {
	int state;
	char path[64];
};

static struct tmp_run *tmp_run;
static pid_t tmp_owner;

static int tmp_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	/* What cannot go (a mount a test left) stays; the rest goes. */
	remove(path);
	return 0;
}

static void tmp_cleanup(void)
{
	if (getpid() != tmp_owner || __atomic_load_n(&tmp_run->state, __ATOMIC_ACQUIRE) != TMP_MADE)
		return;
	if (getenv("KMTLS_KEEP_TMP")) {
		fprintf(stderr, "# KMTLS_KEEP_TMP: test files kept in %s\n", tmp_run->path);
		return;
	}
	/*
	 * Neither into another file system (a bpffs or cgroup2 mount) nor
	 * along a symbolic link.
	 */
	nftw(tmp_run->path, tmp_remove, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

__attribute__((constructor)) static void tmp_init(void)
{
	void *p = mmap(NULL, sizeof(*tmp_run), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	tmp_run = p;
	tmp_owner = getpid();
	atexit(tmp_cleanup);
}

/* The run's directory, made by the first process that asks; NULL if none. */
static const char *tmp_run_dir(void)
{
	struct timespec ts = { 0, 1000000 };
	int none = TMP_NONE, state;

	if (!tmp_run)
		return NULL;
	if (__atomic_compare_exchange_n(&tmp_run->state, &none, TMP_MAKING, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		snprintf(tmp_run->path, sizeof(tmp_run->path), "/tmp/kmtls-test.XXXXXX");
		/*
		 * 0711: kmtlsd dropped to another user reaches the files a
		 * test makes it read (sandbox_test) without listing them.
		 */
		state = TMP_FAILED;
		if (mkdtemp(tmp_run->path)) {
			chmod(tmp_run->path, 0711);
			state = TMP_MADE;
		}
		__atomic_store_n(&tmp_run->state, state, __ATOMIC_RELEASE);
	}
	while ((state = __atomic_load_n(&tmp_run->state, __ATOMIC_ACQUIRE)) == TMP_MAKING)
		nanosleep(&ts, NULL);
	return state == TMP_MADE ? tmp_run->path : NULL;
}

const char *test_tmpdir(void)
{
	static char dir[128];
	const char *run;

	if (!dir[0]) {
		run = tmp_run_dir();
		if (run)
			snprintf(dir, sizeof(dir), "%s/XXXXXX", run);
		else
			snprintf(dir, sizeof(dir), "/tmp/kmtls-test.XXXXXX");
		if (!mkdtemp(dir)) {
			dir[0] = '\0';
			return "/tmp";
		}
	}
	return dir;
}

const char *out_path(const char *rel)
{
	static char slots[8][512];
	static int next;
	const char *o = getenv("KMTLS_OUT");
	char *p = slots[next++ % 8];

	snprintf(p, sizeof(slots[0]), "%s/%s", o && *o ? o : "build/out", rel);
	return p;
}

int proc_start(struct proc *p, const char *logname, char *const argv[])
{
	int fd;

	snprintf(p->log, sizeof(p->log), "%s/%s", test_tmpdir(), logname);
	fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	p->pid = fork();
	if (p->pid < 0) {
		close(fd);
		return -1;
	}
	if (p->pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int proc_log_count(struct proc *p, const char *needle)
{
	char *log = slurp(p->log), *s;
	int n = 0;

	for (s = log; s && (s = strstr(s, needle)); s += strlen(needle))
		n++;
	free(log);
	return n;
}

int proc_wait_log(struct proc *p, const char *needle, int timeout_ms)
{
	struct timespec ts = { 0, 20 * 1000000 };
	int waited, status;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		if (proc_log_count(p, needle))
			return 0;
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return proc_log_count(p, needle) ? 0 : -1;
		}
		nanosleep(&ts, NULL);
	}
	return -1;
}

int proc_signal(struct proc *p, int sig)
{
	return p->pid > 0 ? kill(p->pid, sig) : -1;
}

long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	/* After the command's ")": state, then fields 4-13, then utime, stime. */
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

int proc_stop(struct proc *p, int grace_ms)
{
	struct timespec ts = { 0, 10 * 1000000 };
	int status, waited;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	for (waited = 0; waited < grace_ms; waited += 10) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		nanosleep(&ts, NULL);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	p->pid = 0;
	return -1;
}

int listen_lo(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}
