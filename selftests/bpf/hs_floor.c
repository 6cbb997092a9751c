// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hs_floor CGROUP - attach bpf/hs_floor.bpf.c's programs (they return at
 * once) to CGROUP, print "ready", and on SIGTERM or SIGINT print their
 * bpf_stats as one JSON line and detach:
 *   {"sockops": {"runs": N, "run_time_ns": N}, "setsockopt": {...}, "release": {...}}
 * For scripts/bench-latency.sh; needs root and kernel.bpf_stats_enabled=1
 * for non-zero times.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hs_floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void stats(const char *name, const struct bpf_program *p, const char *sep)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
		memset(&info, 0, sizeof(info));
	printf("\"%s\": {\"runs\": %llu, \"run_time_ns\": %llu}%s", name,
	       (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns, sep);
}

int main(int argc, char **argv)
{
	struct bpf_link *l[3] = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct hs_floor *skel;
	sigset_t block, old;
	int cg, i, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: hs_floor CGROUP\n");
		return 2;
	}
	cg = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		fprintf(stderr, "hs_floor: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* Blocked until sigsuspend(): a signal before it is not lost. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	skel = hs_floor__open_and_load();
	if (!skel) {
		fprintf(stderr, "hs_floor: cannot load: %s (run as root)\n", strerror(errno));
		goto out;
	}
	l[0] = bpf_program__attach_cgroup(skel->progs.floor_sockops, cg);
	l[1] = l[0] ? bpf_program__attach_cgroup(skel->progs.floor_setsockopt, cg) : NULL;
	l[2] = l[1] ? bpf_program__attach_cgroup(skel->progs.floor_release, cg) : NULL;
	if (!l[2]) {
		fprintf(stderr, "hs_floor: cannot attach to %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		sigsuspend(&old);
	printf("{");
	stats("sockops", skel->progs.floor_sockops, ", ");
	stats("setsockopt", skel->progs.floor_setsockopt, ", ");
	stats("release", skel->progs.floor_release, "");
	printf("}\n");
	ret = 0;
out:
	for (i = 0; i < 3; i++)
		bpf_link__destroy(l[i]);
	hs_floor__destroy(skel);
	close(cg);
	return ret;
}
