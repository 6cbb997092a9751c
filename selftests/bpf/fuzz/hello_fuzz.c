// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for bpf/hello_parse.h, the ClientHello recognizer that
 * the XDP program runs. Each input is used twice:
 *
 *  - as an Ethernet frame: hl_parse_frame() + hl_peek_payload() must stay
 *    inside the buffer (ASan), and what they report must hold for the bytes
 *    (a ClientHello verdict means the payload really starts 16 .. .. .. .. 01
 *    inside the frame, at the offset the headers say);
 *  - as a TCP payload: hl_tls_classify() on its first bytes must agree with
 *    a reference written from the definition, separately.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined (see the Makefile);
 * run: selftests/bpf/hello_fuzz.sh (seeds in selftests/bpf/fuzz/corpus).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hello_parse.h"

/* The definition, written as plainly as possible. */
static int reference(const uint8_t *p, size_t n)
{
	unsigned int len;

	if (n == 0)
		return HL_NO_PAYLOAD;
	if (p[0] != 0x16)
		return HL_NOT_TLS;
	if (n < 5)
		return HL_PARTIAL;
	len = (unsigned int)p[3] * 256 + p[4];
	if (len < 1 || len > 16384 + 2048)
		return HL_MALFORMED;
	if (n < 6)
		return HL_PARTIAL;
	if (p[5] != 0x01)
		return HL_OTHER_HANDSHAKE;
	if (p[1] == 3 && p[2] >= 1 && p[2] <= 4)
		return HL_HELLO;
	return HL_HELLO_ODD_VERSION;
}

static void check_payload(const uint8_t *data, size_t size)
{
	size_t n = size < HL_PEEK ? size : HL_PEEK;
	uint8_t h[HL_PEEK];

	memcpy(h, data, n);		/* the recognizer may read these n only */
	if (hl_tls_classify(h, (__u32)n) != reference(data, n))
		abort();
}

static void check_frame(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	struct hl_pkt pkt;
	size_t off;
	int r;

	r = hl_parse_frame(data, end, &pkt);
	if (r != HL_TCP && r != HL_NOT_TCP && r != HL_MALFORMED)
		abort();
	if (r != HL_TCP)
		return;
	if (pkt.payload < data)
		abort();
	off = (size_t)(pkt.payload - data);
	r = hl_peek_payload(&pkt, end);
	switch (r) {
	case HL_HELLO:
	case HL_HELLO_ODD_VERSION:
	case HL_OTHER_HANDSHAKE:
		/* Six bytes were seen: they are in the frame and in the IP payload. */
		if (off + HL_PEEK > size || pkt.payload_len < HL_PEEK || data[off] != 0x16)
			abort();
		if ((r == HL_OTHER_HANDSHAKE) != (data[off + 5] != 0x01))
			abort();
		break;
	case HL_NO_PAYLOAD:
		if (pkt.payload_len != 0)
			abort();
		break;
	case HL_NOT_TLS:
		if (off >= size || data[off] == 0x16)
			abort();
		break;
	case HL_PARTIAL:
	case HL_MALFORMED:
		break;
	default:
		abort();
	}
}

/* On a heap copy of exactly @size bytes, so ASan catches any overread. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	check_frame(copy, size);
	check_payload(copy, size);
	free(copy);
	return 0;
}
