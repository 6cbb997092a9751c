// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xdp_pass - an XDP program that passes everything. The baseline for
 * scripts/bench-xdp.sh and, in the selftests, an XDP program kmtls does not
 * own (kmtlsctl must refuse to replace it without --force).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
