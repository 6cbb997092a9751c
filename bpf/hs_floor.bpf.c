// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hs_floor - programs that return at once, on the three cgroup hooks of
 * hs_latency. scripts/bench-latency.sh runs its keys phase with them once:
 * their run time is what a run costs before a program does anything (the
 * call, bpf_stats' two clock reads), what any program on these hooks pays,
 * so the bench can tell hs_latency's own work from it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("sockops")
int floor_sockops(struct bpf_sock_ops *skops)
{
	return 1;
}

/* What every setsockopt program must do (see hs_setsockopt). */
SEC("cgroup/setsockopt")
int floor_setsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->optlen > 4096)
		ctx->optlen = 0;
	return 1;
}

SEC("cgroup/sock_release")
int floor_release(struct bpf_sock *sk)
{
	return 1;
}
