// SPDX-License-Identifier: GPL-2.0
/*
 * pktgen's XDP programs (built by benches/build.rs, loaded with libbpf-rs).
 *
 * pktgen_live: the transmit side of `pktgen send --tx-mode live`. Userspace
 * calls BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on one template frame
 * (benches/src/pktgen/frame.rs, per-frame fields zero) and ctx
 * ingress_ifindex = the interface; each run returns XDP_TX and the kernel
 * transmits the frame out of that interface (ndo_xdp_xmit). Per run the
 * program stamps the frame as the AF_XDP sender's Template::patch does, so
 * the sink's loss, reorder and latency accounting is the same:
 *
 *   g    = the global frame number (`live_state.sent`, fetch-and-add)
 *   flow = g % flows, seq = g / flows, ts = low 32 bits of bpf_ktime_get_ns()
 *          (CLOCK_MONOTONIC, the clock of pktgen's mono_ns()), read once per
 *          64 frames (a kernel batch), as the AF_XDP sender reads it once
 *          per batch
 *   UDP source port 1024 + flow % 64512, source address src_ip + flow / 64512,
 *   outer UDP source port 49152 + flow % 16384 with VXLAN.
 *
 * Both checksums are finished from the partial sums userspace computes from
 * the template (RFC 1624 from a zero field), so every flow count works and
 * the frames are byte for byte those of the AF_XDP sender. The kernel's page
 * pool recycles frames without resetting their bytes: every varying field is
 * written from scratch on every run, never updated from its old value.
 *
 * `live_state` is the only variable in .bss: userspace reads `sent` (offset
 * 0 of key 0 of the .bss array map) as the exact number of frames handed to
 * the driver.
 *
 * xdp_fwd_redirect: the `xdp-fwd` tool's two-port forwarder. `fwd_ports`
 * maps an ingress ifindex to the egress one (A->B, B->A); a frame from any
 * other interface is passed to the stack (bpf_redirect_map's fallback).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Keep in sync with LiveConfig::to_bytes in benches/src/pktgen/xdp.rs. */
struct live_config {
	__u32 flows;    /* 1..=MAX_FLOWS */
	__u32 src_ip;   /* source address of flow 0, host order */
	__u32 ip_sum;   /* IPv4 header sum, source and checksum zero (folded) */
	__u32 udp_sum;  /* pseudo-header + UDP sum, per-frame fields zero (folded) */
	__u32 vxlan;    /* 1: the probe is inside VXLAN (inner Ethernet at 50) */
};

const volatile struct live_config cfg = { .flows = 1 };

/* The only .bss variable: userspace reads `sent` at offset 0. */
struct {
	__u64 sent; /* frames stamped and returned XDP_TX for */
	__u64 ts;   /* the timestamp of the current group of TS_EVERY frames */
} live_state = {};

/* One clock read per this many frames, as the AF_XDP sender takes one per
 * batch: bpf_ktime_get_ns() would be a third of the per-frame cost. */
#define TS_EVERY 64

#define SPORT_BASE 1024
#define PORTS_PER_IP 64512
#define OUTER_SPORT_BASE 49152
#define OUTER_SPORTS 16384
#define VXLAN_OVERHEAD 50
/* Ethernet + IPv4 + UDP + probe header. */
#define PROBE_END (14 + 20 + 8 + 18)

static __always_inline __u32 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

static __always_inline __u32 words32(__u32 v)
{
	return (v >> 16) + (v & 0xffff);
}

/* Unaligned big-endian stores: fine in XDP on architectures with efficient
 * unaligned access (the verifier refuses them elsewhere). */
static __always_inline void put16(__u8 *p, __u16 v)
{
	*(__u16 *)p = __builtin_bswap16(v);
}

static __always_inline void put32(__u8 *p, __u32 v)
{
	*(__u32 *)p = __builtin_bswap32(v);
}

/* Stamps the probe whose Ethernet header is at `eth` (bounds checked). */
static __always_inline void stamp(__u8 *frame, __u8 *eth, __u32 f, __u64 seq, __u32 ts,
				  int vxlan)
{
	__u8 *ip = eth + 14;
	__u8 *udp = ip + 20;
	__u8 *probe = udp + 8;
	__u32 sport = SPORT_BASE + f;
	__u32 sip = cfg.src_ip;

	if (cfg.flows > PORTS_PER_IP) {
		sport = SPORT_BASE + f % PORTS_PER_IP;
		sip += f / PORTS_PER_IP;
	}

	put32(ip + 12, sip);
	put16(ip + 10, ~fold(cfg.ip_sum + words32(sip)));
	put16(udp, sport);
	put32(probe + 2, f);
	put32(probe + 6, (__u32)(seq >> 32));
	put32(probe + 10, (__u32)seq);
	put32(probe + 14, ts);
	__u32 sum = cfg.udp_sum + words32(sip) + sport + words32(f) + words32(seq >> 32) +
		    words32((__u32)seq) + words32(ts);
	__u16 csum = ~fold(sum);
	put16(udp + 6, csum ? csum : 0xffff);
	if (vxlan)
		put16(frame + 34, OUTER_SPORT_BASE + (f & (OUTER_SPORTS - 1)));
}

/* Bounds-checks a template with the probe at `off`, numbers it and stamps it. */
static __always_inline int live_run(struct xdp_md *ctx, const int off)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u64 flows = cfg.flows;
	__u32 flow = 0;
	__u64 seq, ts;

	if (data + off + PROBE_END > end)
		return XDP_ABORTED; /* not counted: nothing is sent */
	__u64 g = __sync_fetch_and_add(&live_state.sent, 1);
	if (g % TS_EVERY == 0) {
		ts = bpf_ktime_get_ns();
		live_state.ts = ts;
	} else {
		ts = live_state.ts;
	}
	seq = g;
	if (flows > 1) {
		flow = g % flows;
		seq = g / flows;
	}
	stamp(data, data + off, flow, seq, (__u32)ts, off != 0);
	return XDP_TX;
}

SEC("xdp")
int pktgen_live(struct xdp_md *ctx)
{
	return cfg.vxlan ? live_run(ctx, VXLAN_OVERHEAD) : live_run(ctx, 0);
}

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);   /* ingress ifindex */
	__type(value, __u32); /* egress ifindex */
} fwd_ports SEC(".maps");

SEC("xdp")
int xdp_fwd_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&fwd_ports, ctx->ingress_ifindex, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
