// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_gen - the sending side of scripts/bench-xdp.sh's live-frames flood,
 * run by selftests/bpf/hello_gen.c through BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES on one template frame (a ClientHello from
 * hg_base, 20-byte IPv4 and TCP headers). Each run gives the frame the next
 * of hg_sources IPv4 sources (hg_base + 1 .. hg_base + hg_sources, round
 * robin, as hello_flood does) and returns XDP_TX, which test_run turns into
 * a redirect out of the veth it was given: the peer veth receives the frame
 * through ndo_xdp_xmit as an xdp_frame, before any skb exists, the way a NIC
 * driver hands its buffers to XDP.
 *
 * test_run copies the template into a page once and then recycles the page,
 * so a frame may still hold an earlier run's source: the checksums are
 * derived from the template's (hg_ip_check, hg_tcp_check), never from the
 * frame. One CPU runs the program at a time, so the plain counters are exact.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 hg_sources = 1;
const volatile __u32 hg_base = 0;	/* host order; the template's source */
const volatile __u16 hg_ip_check = 0;	/* the template's, as in the frame */
const volatile __u16 hg_tcp_check = 0;

__u32 hg_next;		/* the next source - hg_base - 1 */
__u64 hg_sent;		/* frames returned as XDP_TX */

/* RFC 1624: @check with the 32-bit word @from replaced by @to. */
static __always_inline __u16 hg_csum_replace(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~(from & 0xffff) + (__u16)~(from >> 16) + (to & 0xffff) + (to >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int hello_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 from = bpf_htonl(hg_base), to = bpf_htonl(hg_base + 1 + hg_next);

	if ((void *)(tcp + 1) > end)
		return XDP_DROP;
	if (++hg_next >= hg_sources)
		hg_next = 0;
	ip->saddr = to;
	ip->check = hg_csum_replace(hg_ip_check, from, to);
	tcp->check = hg_csum_replace(hg_tcp_check, from, to);
	hg_sent++;
	return XDP_TX;
}
