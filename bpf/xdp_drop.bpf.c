// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xdp_drop - an XDP program that drops everything: in scripts/bench-xdp.sh,
 * the cost of delivering a frame to a veth's XDP hook at all, which every
 * limiter pays on top of.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
