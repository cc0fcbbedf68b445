//! Cross-protocol tests of the views: arbitrary bytes never panic and the
//! getters agree with each other; etherparse is the oracle on frames it built;
//! every `Repr` round-trips through emit and parse.

use super::testgen::{self, Frag, L4};
use super::*;
use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use proptest::collection::vec;
use proptest::prelude::*;

/// Exercises every getter of every view that accepts `b`, checking the
/// invariants `new_checked` promises.
fn check_views(b: &[u8]) {
    if let Ok(f) = EthernetFrame::new_checked(b) {
        let n = f.vlan_count();
        assert!(n <= ethernet::MAX_VLAN_TAGS);
        assert_eq!(f.header_len(), 14 + 4 * n);
        assert_eq!(f.payload().len(), b.len() - f.header_len());
        assert!(!ethernet::is_tpid(f.inner_ethertype()));
        for i in 0..=ethernet::MAX_VLAN_TAGS {
            let tag = f.vlan_tag(i);
            assert_eq!(tag.is_some(), i < n);
            if let Some(t) = tag {
                assert!(ethernet::is_tpid(t.tpid) && t.vid() < 4096 && t.pcp() < 8);
            }
        }
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype());
        // The one-pass walk agrees with the getters.
        let walk = f.tags().unwrap();
        assert_eq!(usize::from(walk.count), n);
        assert_eq!(walk.outer, f.vlan_tag(0));
        assert_eq!(walk.ethertype, f.inner_ethertype());
        assert_eq!(walk.header_len(), f.header_len());
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.buffer_len(), f.header_len());
        check_views(f.payload());
    } else {
        let unchecked = EthernetFrame::new_unchecked(b);
        assert_eq!(unchecked.tags().err(), unchecked.check_len().err());
        assert!(unchecked.tags().is_err());
    }
    if let Ok(p) = Ipv4Packet::new_checked(b) {
        let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
        assert!(20 <= hl && hl <= tl && tl <= b.len());
        assert_eq!(p.options().len(), hl - 20);
        assert_eq!(p.payload().len(), tl - hl);
        assert_eq!(p.is_fragment(), p.more_frags() || p.frag_offset() != 0);
        assert_eq!((p.dscp() << 2) | p.ecn(), p.tos());
        let _ = (
            p.ident(),
            p.dont_frag(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
        );
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.verify_checksum(),
            Ipv4Repr::parse(&p),
        );
    }
    if let Ok(p) = Ipv6Packet::new_checked(b) {
        assert_eq!(p.payload().len(), usize::from(p.payload_len()));
        assert!(p.flow_label() < 1 << 20);
        let _ = (
            p.traffic_class(),
            p.next_header(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
        );
        if let Ok(up) = p.upper_layer() {
            assert!(up.offset >= 40 && up.offset <= 40 + p.payload().len());
            assert!(usize::from(up.ext_headers) <= ipv6::MAX_EXT_HEADERS);
            assert_eq!(up.ext_headers == 0, up.offset == 40);
        }
    } else if b.len() >= 40 {
        // The walk stays inside the buffer even on an unchecked packet.
        let _ = Ipv6Packet::new_unchecked(b).upper_layer();
    }
    if let Ok(p) = TcpPacket::new_checked(b) {
        assert!(p.header_len() >= 20 && p.header_len() <= b.len());
        assert_eq!(p.options().len() + 20 + p.payload().len(), b.len());
        assert_eq!(p.flags() & !0x1ff, 0);
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.ack_number(),
            p.window_len(),
        );
        let _ = (
            p.syn(),
            p.ack(),
            p.fin(),
            p.rst(),
            p.psh(),
            p.urg(),
            p.ece(),
            p.cwr(),
        );
        let _ = (
            p.checksum(),
            p.urgent_at(),
            p.verify_checksum_v4([0; 4], [0; 4]),
        );
        let _ = p.verify_checksum_v6([0; 16], [0; 16]);
    }
    if let Ok(p) = UdpPacket::new_checked(b) {
        assert!(usize::from(p.len()) >= 8 && usize::from(p.len()) <= b.len());
        assert_eq!(p.payload().len(), usize::from(p.len()) - 8);
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.checksum(),
            UdpRepr::parse(&p).unwrap(),
        );
        let _ = (
            p.verify_checksum_v4([0; 4], [0; 4]),
            p.verify_checksum_v6([0; 16], [0; 16]),
        );
    }
    if let Ok(p) = Icmpv4Packet::new_checked(b) {
        assert_eq!(p.payload().len(), b.len() - 8);
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header());
        let _ = (p.echo_ident(), p.echo_seq_no(), p.verify_checksum());
    }
    if let Ok(p) = Icmpv6Packet::new_checked(b) {
        assert_eq!(p.payload().len(), b.len() - 8);
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
        );
        let _ = p.verify_checksum([0; 16], [0; 16]);
    }
    if let Ok(p) = VxlanPacket::new_checked(b) {
        assert!(p.vni() <= vxlan::MAX_VNI);
        assert_eq!(VxlanRepr::parse(&p).is_ok(), p.has_vni());
        let _ = (p.flags(), p.payload());
    }
    if let Ok(p) = ArpPacket::new_checked(b) {
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(r.operation, p.operation());
        let _ = (
            p.hardware_type(),
            p.protocol_type(),
            p.hardware_len(),
            p.protocol_len(),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..160)) {
        check_views(&b);
    }

    #[test]
    fn mutated_bytes_never_panic(b in testgen::mutated_bytes(160)) {
        check_views(&b);
    }
}

/// Compares every view's reading of a built frame with etherparse's.
fn agree_with_etherparse(spec: &testgen::Spec, frame: &[u8]) {
    let sp = SlicedPacket::from_ethernet(frame).expect("etherparse parses what it built");
    let f = EthernetFrame::new_checked(frame).unwrap();
    let Some(LinkSlice::Ethernet2(eth)) = &sp.link else {
        panic!("no ethernet")
    };
    assert_eq!(f.src_addr(), eth.source());
    assert_eq!(f.dst_addr(), eth.destination());
    assert_eq!(f.ethertype(), eth.ether_type().0);
    let ids: Vec<u16> = sp.vlan_ids().iter().map(|v| v.value()).collect();
    let ours: Vec<u16> = (0..f.vlan_count())
        .map(|i| f.vlan_tag(i).unwrap().vid())
        .collect();
    assert_eq!(ours, ids);
    check_views(frame);

    let l3 = f.payload();
    let (l4, l4_complete): (&[u8], bool) = match sp.net.as_ref().expect("net layer") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            let p = Ipv4Packet::new_checked(l3).unwrap();
            assert_eq!(f.inner_ethertype(), ethernet::ethertype::IPV4);
            assert_eq!(p.src_addr(), h.source());
            assert_eq!(p.dst_addr(), h.destination());
            assert_eq!(p.ttl(), h.ttl());
            assert_eq!(p.protocol(), h.protocol().0);
            assert_eq!(p.total_len(), h.total_len());
            assert_eq!(p.header_len(), usize::from(h.ihl()) * 4);
            assert_eq!(p.ident(), h.identification());
            assert_eq!(p.dont_frag(), h.dont_fragment());
            assert_eq!(p.more_frags(), h.more_fragments());
            assert_eq!(p.frag_offset(), h.fragments_offset().byte_offset());
            assert_eq!(p.dscp(), h.dcp().value());
            assert_eq!(p.ecn(), h.ecn().value());
            assert_eq!(p.checksum(), h.header_checksum());
            assert_eq!(p.options(), h.options());
            assert_eq!(p.payload(), ip.payload().payload);
            assert_eq!(p.is_fragment(), ip.is_payload_fragmented());
            assert!(p.verify_checksum());
            let r = Ipv4Repr::parse(&p).unwrap();
            assert_eq!(usize::from(r.payload_len), p.payload().len());
            (p.payload(), !p.is_fragment())
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            let p = Ipv6Packet::new_checked(l3).unwrap();
            assert_eq!(f.inner_ethertype(), ethernet::ethertype::IPV6);
            assert_eq!(p.traffic_class(), h.traffic_class());
            assert_eq!(p.flow_label(), h.flow_label().value());
            assert_eq!(p.payload_len(), h.payload_length());
            assert_eq!(p.next_header(), h.next_header().0);
            assert_eq!(p.hop_limit(), h.hop_limit());
            assert_eq!(p.src_addr(), h.source());
            assert_eq!(p.dst_addr(), h.destination());
            let up = p.upper_layer().unwrap();
            assert_eq!(up.protocol, ip.payload().ip_number.0);
            let upper = &l3[up.offset..40 + usize::from(p.payload_len())];
            assert_eq!(upper, ip.payload().payload);
            let fragmenting = up
                .fragment
                .is_some_and(|fr| fr.offset != 0 || fr.more_frags);
            assert_eq!(fragmenting, ip.is_payload_fragmented());
            assert_eq!(
                up.fragment.is_some(),
                matches!(spec.frag(), Frag::First | Frag::Later(_) | Frag::Atomic)
            );
            (upper, !fragmenting)
        }
        NetSlice::Arp(_) => panic!("generator builds no ARP"),
    };

    // etherparse slices no transport header out of a fragmented payload.
    assert_eq!(sp.transport.is_some(), l4_complete);
    let (src6, dst6, src4, dst4) = match &spec.net {
        testgen::Net::V6 { src, dst, .. } => (*src, *dst, [0; 4], [0; 4]),
        testgen::Net::V4 { src, dst, .. } => ([0; 16], [0; 16], *src, *dst),
    };
    let v6 = matches!(spec.net, testgen::Net::V6 { .. });
    match &sp.transport {
        Some(TransportSlice::Tcp(t)) => {
            let p = TcpPacket::new_checked(l4).unwrap();
            assert_eq!(
                (p.src_port(), p.dst_port()),
                (t.source_port(), t.destination_port())
            );
            assert_eq!(
                (p.seq_number(), p.ack_number()),
                (t.sequence_number(), t.acknowledgment_number())
            );
            assert_eq!(p.header_len(), usize::from(t.data_offset()) * 4);
            assert_eq!(
                (
                    p.syn(),
                    p.ack(),
                    p.fin(),
                    p.rst(),
                    p.psh(),
                    p.urg(),
                    p.ece(),
                    p.cwr()
                ),
                (
                    t.syn(),
                    t.ack(),
                    t.fin(),
                    t.rst(),
                    t.psh(),
                    t.urg(),
                    t.ece(),
                    t.cwr()
                )
            );
            assert_eq!(p.flags() & tcp::flags::NS != 0, t.ns());
            assert_eq!(p.window_len(), t.window_size());
            assert_eq!(p.checksum(), t.checksum());
            assert_eq!(p.urgent_at(), t.urgent_pointer());
            assert_eq!(p.options(), t.options());
            assert_eq!(p.payload(), t.payload());
            assert!(if v6 {
                p.verify_checksum_v6(src6, dst6)
            } else {
                p.verify_checksum_v4(src4, dst4)
            });
        }
        Some(TransportSlice::Udp(u)) => {
            let p = UdpPacket::new_checked(l4).unwrap();
            assert_eq!(
                (p.src_port(), p.dst_port()),
                (u.source_port(), u.destination_port())
            );
            assert_eq!((p.len(), p.checksum()), (u.length(), u.checksum()));
            assert_eq!(p.payload(), u.payload());
            assert!(if v6 {
                p.verify_checksum_v6(src6, dst6)
            } else {
                p.verify_checksum_v4(src4, dst4)
            });
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let p = Icmpv4Packet::new_checked(l4).unwrap();
            assert_eq!((p.msg_type(), p.msg_code()), (i.type_u8(), i.code_u8()));
            assert_eq!(p.checksum(), i.checksum());
            assert_eq!(p.rest_of_header(), i.bytes5to8());
            assert_eq!(p.payload(), i.payload());
            assert!(p.verify_checksum());
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let p = Icmpv6Packet::new_checked(l4).unwrap();
            assert_eq!((p.msg_type(), p.msg_code()), (i.type_u8(), i.code_u8()));
            assert_eq!(p.checksum(), i.checksum());
            assert_eq!(p.payload(), i.payload());
            assert!(p.verify_checksum(src6, dst6));
            assert!(i.is_checksum_valid(src6, dst6));
        }
        Some(other) => panic!("unexpected transport {other:?}"),
        None => {
            // A fragment: a first fragment still carries the L4 header.
            if spec.frag() == Frag::First {
                let (src, dst) = match spec.l4 {
                    L4::Tcp { src, dst, .. } | L4::Udp { src, dst } => (src, dst),
                    L4::Echo { .. } => return,
                };
                let p = UdpPacket::new_unchecked(l4);
                assert_eq!((p.src_port(), p.dst_port()), (src, dst));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn views_agree_with_etherparse(spec in testgen::spec()) {
        let frame = spec.build();
        agree_with_etherparse(&spec, &frame);
        // Ethernet padding after the datagram changes nothing above L2.
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0; 7]);
        agree_with_etherparse(&spec, &padded);
    }

    #[test]
    fn ethernet_repr_round_trip(
        dst_addr in any::<[u8; 6]>(),
        src_addr in any::<[u8; 6]>(),
        tags in vec((any::<bool>(), any::<u16>()), 0..=2),
        ethertype in any::<u16>().prop_filter("not a TPID", |e| !ethernet::is_tpid(*e)),
        payload in vec(any::<u8>(), 0..8),
    ) {
        let tag = |(qinq, tci): (bool, u16)| VlanTag {
            tpid: if qinq { ethernet::ethertype::QINQ } else { ethernet::ethertype::VLAN },
            tci,
        };
        let repr = EthernetRepr {
            dst_addr,
            src_addr,
            vlan: tags.first().copied().map(tag),
            inner_vlan: tags.get(1).copied().map(tag),
            ethertype,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut f);
        f.payload_mut().copy_from_slice(&payload);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f), Ok(repr));
        prop_assert_eq!(f.payload(), &payload[..]);
    }

    #[test]
    fn ipv4_repr_round_trip(
        src_addr in any::<[u8; 4]>(),
        dst_addr in any::<[u8; 4]>(),
        protocol in any::<u8>(),
        payload_len in 0..200u16,
        ttl in any::<u8>(),
        tos in any::<u8>(),
        ident in any::<u16>(),
        dont_frag in any::<bool>(),
        more_frags in any::<bool>(),
        frag_units in 0..0x2000u16,
    ) {
        let repr = Ipv4Repr {
            src_addr, dst_addr, protocol, payload_len, ttl, tos, ident, dont_frag, more_frags,
            frag_offset: frag_units << 3,
        };
        let mut buf = vec![0u8; repr.buffer_len() + usize::from(payload_len)];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
        // etherparse agrees with what we emitted.
        let (h, _) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
        prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
        prop_assert_eq!((h.source, h.destination, h.time_to_live), (src_addr, dst_addr, ttl));
    }

    #[test]
    fn udp_vxlan_arp_repr_round_trip(
        src_port in any::<u16>(),
        dst_port in any::<u16>(),
        vni in 0..=vxlan::MAX_VNI,
        operation in any::<u16>(),
        sha in any::<[u8; 6]>(),
        spa in any::<[u8; 4]>(),
        tha in any::<[u8; 6]>(),
        tpa in any::<[u8; 4]>(),
        inner in vec(any::<u8>(), 0..32),
    ) {
        // UDP carrying VXLAN carrying `inner`: the encapsulation layout.
        let udp = UdpRepr { src_port, dst_port };
        let vx = VxlanRepr { vni };
        let mut buf = vec![0u8; udp.buffer_len() + vx.buffer_len() + inner.len()];
        let payload_len = (vx.buffer_len() + inner.len()) as u16;
        let mut u = UdpPacket::new_unchecked(&mut buf[..]);
        udp.emit(&mut u, payload_len);
        let mut v = VxlanPacket::new_unchecked(u.payload_mut());
        vx.emit(&mut v);
        v.payload_mut().copy_from_slice(&inner);
        let u = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&u), Ok(udp));
        let v = VxlanPacket::new_checked(u.payload()).unwrap();
        prop_assert_eq!(VxlanRepr::parse(&v), Ok(vx));
        prop_assert_eq!(v.payload(), &inner[..]);

        let arp = ArpRepr {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut buf = vec![0u8; arp.buffer_len()];
        arp.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Ok(arp));
    }
}
