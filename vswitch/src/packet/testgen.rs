//! Random valid frames for property tests, built by etherparse's
//! `PacketBuilder`, so that what counts as "valid" comes from an independent
//! implementation. A [`Spec`] keeps the intended field values, for tests that
//! compare against the intent rather than against etherparse's parse.
//!
//! Test-only: nothing here is compiled into the datapath.

use etherparse::{
    IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6Extensions,
    Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions,
    PacketBuilder, VlanId,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// VLAN tagging of a generated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vlan {
    None,
    /// One 802.1Q tag with this VID.
    Single(u16),
    /// 802.1ad outer + 802.1Q inner VIDs.
    Double(u16, u16),
}

/// Fragmentation of a generated IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frag {
    None,
    /// Offset 0, more fragments.
    First,
    /// A non-first fragment, offset in 8-byte units (1..0x2000), MF clear.
    Later(u16),
    /// IPv6 only: a fragment header with offset 0 and M clear (IPv4: none).
    Atomic,
}

impl Frag {
    fn more(self) -> bool {
        self == Frag::First
    }

    fn offset(self) -> IpFragOffset {
        match self {
            Frag::Later(units) => IpFragOffset::try_new(units).unwrap(),
            _ => IpFragOffset::ZERO,
        }
    }
}

/// The network layer of a generated frame.
#[derive(Clone, Debug)]
pub(crate) enum Net {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        dscp: u8,
        ecn: u8,
        ident: u16,
        df: bool,
        /// Option bytes (a multiple of 4, at most 40).
        options: Vec<u8>,
        frag: Frag,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop_limit: u8,
        traffic_class: u8,
        flow_label: u32,
        /// Extension headers present, each with this many extra 8-byte units.
        hop_by_hop: Option<u8>,
        dest_opts: Option<u8>,
        routing: Option<u8>,
        /// A fragment header and its identification.
        frag: Option<(Frag, u32)>,
    },
}

/// The transport layer of a generated frame.
#[derive(Clone, Debug)]
pub(crate) enum L4 {
    Tcp {
        src: u16,
        dst: u16,
        seq: u32,
        ack: Option<u32>,
        window: u16,
        syn: bool,
        fin: bool,
        rst: bool,
        psh: bool,
        /// Option bytes (a multiple of 4, at most 40).
        options: Vec<u8>,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    /// ICMP (over IPv4) or ICMPv6 (over IPv6) echo request.
    Echo {
        id: u16,
        seq: u16,
    },
}

/// A frame to generate.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Vlan,
    pub net: Net,
    pub l4: L4,
    pub payload: Vec<u8>,
}

impl Spec {
    /// Serializes the frame with etherparse.
    pub fn build(&self) -> Vec<u8> {
        let raw = |units: u8| {
            Ipv6RawExtHeader::new_raw(IpNumber(0), &vec![0xa5; 6 + 8 * usize::from(units)]).unwrap()
        };
        let ip = match &self.net {
            Net::V4 {
                src,
                dst,
                ttl,
                dscp,
                ecn,
                ident,
                df,
                options,
                frag,
            } => {
                let header = Ipv4Header {
                    dscp: IpDscp::try_new(*dscp).unwrap(),
                    ecn: IpEcn::try_new(*ecn).unwrap(),
                    total_len: 0,
                    identification: *ident,
                    dont_fragment: *df,
                    more_fragments: frag.more(),
                    fragment_offset: frag.offset(),
                    time_to_live: *ttl,
                    protocol: IpNumber(0),
                    header_checksum: 0,
                    source: *src,
                    destination: *dst,
                    options: Ipv4Options::try_from(&options[..]).unwrap(),
                };
                IpHeaders::Ipv4(header, Default::default())
            }
            Net::V6 {
                src,
                dst,
                hop_limit,
                traffic_class,
                flow_label,
                hop_by_hop,
                dest_opts,
                routing,
                frag,
            } => {
                let header = Ipv6Header {
                    traffic_class: *traffic_class,
                    flow_label: Ipv6FlowLabel::try_new(*flow_label).unwrap(),
                    payload_length: 0,
                    next_header: IpNumber(0),
                    hop_limit: *hop_limit,
                    source: *src,
                    destination: *dst,
                };
                let exts = Ipv6Extensions {
                    hop_by_hop_options: hop_by_hop.map(raw),
                    destination_options: dest_opts.map(raw),
                    routing: routing.map(|u| Ipv6RoutingExtensions {
                        routing: raw(u),
                        final_destination_options: None,
                    }),
                    fragment: frag.map(|(f, ident)| {
                        Ipv6FragmentHeader::new(IpNumber(0), f.offset(), f.more(), ident)
                    }),
                    auth: None,
                };
                IpHeaders::Ipv6(header, exts)
            }
        };
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let step = match self.vlan {
            Vlan::None => eth.ip(ip),
            Vlan::Single(v) => eth.single_vlan(VlanId::try_new(v).unwrap()).ip(ip),
            Vlan::Double(o, i) => eth
                .double_vlan(VlanId::try_new(o).unwrap(), VlanId::try_new(i).unwrap())
                .ip(ip),
        };
        let v6 = matches!(self.net, Net::V6 { .. });
        let mut out = Vec::new();
        match &self.l4 {
            L4::Tcp {
                src,
                dst,
                seq,
                ack,
                window,
                syn,
                fin,
                rst,
                psh,
                options,
            } => {
                let mut t = step.tcp(*src, *dst, *seq, *window);
                if *syn {
                    t = t.syn();
                }
                if *fin {
                    t = t.fin();
                }
                if *rst {
                    t = t.rst();
                }
                if *psh {
                    t = t.psh();
                }
                if let Some(a) = ack {
                    t = t.ack(*a);
                }
                if !options.is_empty() {
                    t = t.options_raw(options).unwrap();
                }
                t.write(&mut out, &self.payload).unwrap();
            }
            L4::Udp { src, dst } => step.udp(*src, *dst).write(&mut out, &self.payload).unwrap(),
            L4::Echo { id, seq } if v6 => step
                .icmpv6_echo_request(*id, *seq)
                .write(&mut out, &self.payload)
                .unwrap(),
            L4::Echo { id, seq } => step
                .icmpv4_echo_request(*id, *seq)
                .write(&mut out, &self.payload)
                .unwrap(),
        }
        out
    }

    /// The fragmentation the frame ends up with (IPv4 has no atomic fragments).
    pub fn frag(&self) -> Frag {
        match &self.net {
            Net::V4 {
                frag: Frag::Atomic, ..
            } => Frag::None,
            Net::V4 { frag, .. } => *frag,
            // A fragment header with offset 0 and M clear is atomic.
            Net::V6 {
                frag: Some((Frag::None, _)),
                ..
            } => Frag::Atomic,
            Net::V6 { frag, .. } => frag.map_or(Frag::None, |(f, _)| f),
        }
    }
}

fn words(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..=max).prop_flat_map(|k| vec(any::<u8>(), 4 * k))
}

fn frag() -> impl Strategy<Value = Frag> {
    prop_oneof![
        6 => Just(Frag::None),
        1 => Just(Frag::First),
        1 => (1..0x2000u16).prop_map(Frag::Later),
        1 => Just(Frag::Atomic),
    ]
}

fn vlan() -> impl Strategy<Value = Vlan> {
    prop_oneof![
        Just(Vlan::None),
        (0..4096u16).prop_map(Vlan::Single),
        (0..4096u16, 0..4096u16).prop_map(|(o, i)| Vlan::Double(o, i)),
    ]
}

fn net() -> impl Strategy<Value = Net> {
    let v4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        0..64u8,
        0..4u8,
        any::<u16>(),
        any::<bool>(),
        words(10),
        frag(),
    )
        .prop_map(
            |(src, dst, ttl, dscp, ecn, ident, df, options, frag)| Net::V4 {
                src,
                dst,
                ttl,
                dscp,
                ecn,
                ident,
                df,
                options,
                frag,
            },
        );
    let ext = || proptest::option::weighted(0.3, 0..3u8);
    let v6 = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        any::<u8>(),
        0..0x10_0000u32,
        ext(),
        ext(),
        ext(),
        proptest::option::weighted(0.3, (frag(), any::<u32>())),
    )
        .prop_map(
            |(
                src,
                dst,
                hop_limit,
                traffic_class,
                flow_label,
                hop_by_hop,
                dest_opts,
                routing,
                frag,
            )| {
                Net::V6 {
                    src,
                    dst,
                    hop_limit,
                    traffic_class,
                    flow_label,
                    hop_by_hop,
                    dest_opts,
                    routing,
                    frag,
                }
            },
        );
    prop_oneof![v4, v6]
}

fn l4() -> impl Strategy<Value = L4> {
    let tcp = (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        any::<u16>(),
        any::<[bool; 4]>(),
        words(10),
    )
        .prop_map(
            |(src, dst, seq, ack, window, [syn, fin, rst, psh], options)| L4::Tcp {
                src,
                dst,
                seq,
                ack,
                window,
                syn,
                fin,
                rst,
                psh,
                options,
            },
        );
    prop_oneof![
        tcp,
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4::Udp { src, dst }),
        (any::<u16>(), any::<u16>()).prop_map(|(id, seq)| L4::Echo { id, seq }),
    ]
}

/// Any valid frame: Ethernet, 0-2 VLAN tags, IPv4 (options, fragments) or
/// IPv6 (extension headers, fragments), TCP/UDP/ICMP echo, 0-64 payload bytes.
pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        vlan(),
        net(),
        l4(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(src_mac, dst_mac, vlan, net, l4, payload)| Spec {
            src_mac,
            dst_mac,
            vlan,
            net,
            l4,
            payload,
        })
}

/// Big-endian words that steer random bytes into the parsers' deeper
/// branches: ethertypes, TPIDs, IPv4/IPv6 first words, ARP constants, flags.
const MAGIC: [u16; 14] = [
    0x8100, 0x88a8, 0x0800, 0x86dd, 0x0806, 0x4500, 0x4f00, 0x4600, 0x6000, 0x0001, 0x0604, 0x0008,
    0x2000, 0x00ff,
];

/// Random bytes (up to `max_len`) with a few magic words written at random places.
pub(crate) fn mutated_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        vec(any::<u8>(), 0..max_len),
        vec((any::<prop::sample::Index>(), 0..MAGIC.len()), 0..8),
    )
        .prop_map(|(mut b, patches)| {
            if b.len() >= 2 {
                for (at, m) in patches {
                    let at = at.index(b.len() - 1);
                    b[at..at + 2].copy_from_slice(&MAGIC[m].to_be_bytes());
                }
            }
            b
        })
}
