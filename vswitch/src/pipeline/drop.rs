//! Why a packet was dropped: named, counted, shown by `ofctl` and traces.

use std::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// Every reason the datapath drops a packet. The kebab-case names are
        /// stable: they index counters and appear in `ofctl` output.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The stable kebab-case name.
            pub const fn name(self) -> &'static str {
                match self { $( DropReason::$variant => $name, )* }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header.
    TooShort = "too-short",
    /// More 802.1Q/802.1ad tags than the parser walks, or a truncated tag.
    BadVlan = "bad-vlan",
    /// ARP header truncated or not Ethernet/IPv4.
    BadArp = "bad-arp",
    /// IPv4 header truncated, bad version or IHL, or total length beyond the frame.
    BadIpv4 = "bad-ipv4",
    /// IPv6 header truncated, or extension-header chain too long or truncated.
    BadIpv6 = "bad-ipv6",
    /// TCP/UDP/ICMP header truncated or with an impossible length.
    BadL4 = "bad-l4",
    /// A VXLAN packet on the uplink that cannot be decapsulated: outer UDP
    /// or VXLAN header truncated, flags other than exactly the I bit, nonzero
    /// reserved bits, an outer fragment, or an inner frame shorter than an
    /// Ethernet header.
    BadVxlan = "bad-vxlan",
    /// A VXLAN packet for our VTEP with a VNI other than the configured one.
    UnknownVni = "unknown-vni",
    /// A VXLAN packet from an outer source not in the tunnel's allow-list.
    UnknownSourceVtep = "unknown-source-vtep",
    /// A frame on the uplink that is not VXLAN (UDP 4789) to our VTEP address:
    /// the kernel handles it (with AF_PACKET it sees a copy anyway).
    NotOurVtep = "not-our-vtep",
    /// A decapsulated frame whose inner destination MAC is not our VTEP MAC
    /// (only checked when the tunnel has one configured).
    NotOurMac = "not-our-mac",
    /// No flow matched in a table (OpenFlow table miss).
    NoMatch = "no-match",
    /// A flow's actions ended without output (explicit `drop` or no action).
    Action = "drop-action",
    /// `dec_ttl` on a packet whose TTL was 0 or 1.
    TtlExpired = "ttl-expired",
    /// `resubmit`/`goto_table` chain deeper than the pipeline allows.
    ResubmitLimit = "resubmit-limit",
    /// Output to a port that does not exist (or was removed).
    NoSuchPort = "no-such-port",
    /// Output back to the ingress port without the `in_port` action.
    OutputToInPort = "output-to-in-port",
    /// A group action names a group that does not exist, or a select group with no bucket.
    NoSuchGroup = "no-such-group",
    /// `push_vlan` on a packet that already carries the maximum number of tags.
    VlanStackFull = "vlan-stack-full",
    /// A set-field or L4 action that needs a header the packet does not have.
    MissingHeader = "missing-header",
    /// A `ct(...,nat...)` action on a packet that conntrack finds invalid
    /// (`+inv`) while it belongs to a NATed connection (or is an IPv4
    /// fragment, which cannot be translated): never forwarded untranslated.
    CtInvalid = "ct-invalid",
    /// Output to the VXLAN port while no tunnel is configured.
    TunnelUnsupported = "tunnel-unsupported",
    /// Output to the VXLAN port with no `tun_dst` set.
    TunnelNoDestination = "tunnel-no-destination",
    /// Output to the VXLAN port for a `tun_dst` with no known neighbour MAC.
    NoNeighbor = "no-neighbor",
    /// Output to the VXLAN port of a frame whose encapsulated packet would
    /// exceed the underlay MTU (the outer packet is never fragmented).
    MtuExceeded = "mtu-exceeded",
    /// The port's transmit queue was full.
    TxFull = "tx-full",
    /// No free packet buffer for a copy (multi-output or flood).
    NoBuffer = "no-buffer",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        for n in &names {
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        assert_eq!(
            DropReason::ALL[DropReason::TxFull as usize],
            DropReason::TxFull
        );
    }
}
