// SPDX-License-Identifier: Apache-2.0
/*
 * vswitch uplink XDP program: hands the switch only the underlay traffic it
 * owns and gives everything else to the kernel untouched.
 *
 * Owned = IPv4 (not a fragment) / UDP to the configured VTEP address and
 * UDP port (VXLAN, 4789), after an Ethernet header with at most one VLAN
 * tag (802.1Q or 802.1ad). Such a frame is redirected to the AF_XDP socket
 * registered for its rx queue in `xsks_map`; with no socket there it is
 * passed (bpf_redirect_map's fallback action) and counted as `unbound`.
 * ARP, IPv6, the node's own TCP/UDP (SSH, kubelet), VXLAN to other
 * addresses and every frame the parser does not understand are XDP_PASS.
 *
 * Configuration is one entry of the `uplink_config` array map, written by
 * userspace (vswitch/src/port/afxdp/steer.rs) after load and before attach;
 * an all-zero entry (vtep_ip 0) redirects nothing. Counters are per-CPU and
 * summed by userspace. The program never modifies a frame.
 *
 * Not handled on purpose: IPv6 underlay, more than one VLAN tag, IPv4
 * fragments (the kernel reassembles them), multi-buffer (frags) frames.
 * A NIC that strips VLAN tags in hardware hands XDP an untagged frame,
 * which is what the parser wants anyway.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Keep in sync with UplinkConfig::to_bytes in steer.rs. */
struct uplink_config {
	__be32 vtep_ip;  /* network byte order; 0 = redirect nothing */
	__be16 udp_port; /* network byte order */
	__u16 reserved;
};

/* Counter indexes; keep in sync with steer.rs. */
enum {
	UPLINK_REDIRECTED = 0, /* owned, handed to the AF_XDP socket */
	UPLINK_PASSED = 1,     /* not owned, to the kernel */
	UPLINK_UNBOUND = 2,    /* owned, but no socket on the rx queue: kernel */
	UPLINK_NR_COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uplink_config);
} uplink_config SEC(".maps");

/* Resized by userspace to the interface's rx queue count before load. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UPLINK_NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} uplink_stats SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline int count(__u32 idx, int action)
{
	__u64 *v = bpf_map_lookup_elem(&uplink_stats, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
	return action;
}

/* Whether the frame is IPv4/UDP to the configured VTEP address and port. */
static __always_inline int owned(const struct uplink_config *cfg, void *data,
				 void *data_end)
{
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan;
	struct iphdr *ip;
	struct udphdr *udp;
	__u16 proto;
	__u32 ihl;

	if ((void *)(eth + 1) > data_end)
		return 0;
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		vlan = (void *)(eth + 1);
		if ((void *)(vlan + 1) > data_end)
			return 0;
		proto = vlan->encap_proto;
		ip = (void *)(vlan + 1);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return 0;
	if ((void *)(ip + 1) > data_end)
		return 0;
	if (ip->version != 4 || ip->ihl < 5)
		return 0;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return 0;
	if (ip->protocol != IPPROTO_UDP || ip->daddr != cfg->vtep_ip)
		return 0;
	ihl = ip->ihl * 4; /* 20..60 */
	udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dest == cfg->udp_port;
}

SEC("xdp")
int vswitch_uplink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	const struct uplink_config *cfg = bpf_map_lookup_elem(&uplink_config, &key);

	if (!cfg || cfg->vtep_ip == 0 || !owned(cfg, data, data_end))
		return count(UPLINK_PASSED, XDP_PASS);
	if (bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS) == XDP_REDIRECT)
		return count(UPLINK_REDIRECTED, XDP_REDIRECT);
	return count(UPLINK_UNBOUND, XDP_PASS);
}

char LICENSE[] SEC("license") = "Apache-2.0";
