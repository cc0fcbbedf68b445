//! NAT: translate-then-reverse identity (property), Service DNAT and SNAT
//! scenarios, ICMP errors about NATed connections, mapping collisions.

use proptest::prelude::*;

use super::*;
use crate::packet::icmp::msg_type;
use crate::packet::tcp::flags::{ACK, SYN};

fn syn(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> CtPacket {
    let seg = TcpSeg {
        flags: SYN,
        seq: 100,
        window: 1000,
        ..TcpSeg::default()
    };
    CtPacket::tcp(src, dst, seg, 60)
}

fn syn_ack(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> CtPacket {
    let seg = TcpSeg {
        flags: SYN | ACK,
        seq: 900,
        ack: 101,
        window: 1000,
        ..TcpSeg::default()
    };
    CtPacket::tcp(src, dst, seg, 60)
}

/// The first packet of a connection on `t`, and the reply to it on the
/// reply tuple `r`.
fn opening(t: &CtTuple) -> CtPacket {
    match t.proto {
        ip_proto::TCP => syn((t.src, t.src_port), (t.dst, t.dst_port)),
        ip_proto::UDP => udp((t.src, t.src_port), (t.dst, t.dst_port)),
        _ => CtPacket::icmp_echo(t.src, t.dst, t.src_port, false, 84),
    }
}

fn answer(r: &CtTuple) -> CtPacket {
    match r.proto {
        ip_proto::TCP => syn_ack((r.src, r.src_port), (r.dst, r.dst_port)),
        ip_proto::UDP => udp((r.src, r.src_port), (r.dst, r.dst_port)),
        _ => CtPacket::icmp_echo(r.src, r.dst, r.src_port, true, 84),
    }
}

fn tuple_strategy() -> impl Strategy<Value = CtTuple> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        0..3u8,
    )
        .prop_map(|(s, d, sp, dp, p)| {
            let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            match p {
                0 => CtTuple::tcp(s, sp, d, dp),
                1 => CtTuple::udp(s, sp, d, dp),
                _ => CtTuple::icmp_echo(s, d, sp),
            }
        })
}

fn spec_strategy() -> impl Strategy<Value = NatSpec> {
    (
        any::<bool>(),
        any::<u32>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(src, ip, port)| {
            let ip = Ipv4Addr::from(ip);
            if src {
                NatSpec::Src { ip, port }
            } else {
                NatSpec::Dst { ip, port }
            }
        })
}

proptest! {
    /// Forward translation of the original packet, then the reverse
    /// translation of the reply to it, gives the client the reply it
    /// expects; an ICMP error about the translated packet is translated
    /// back to quote the client's own packet.
    #[test]
    fn translate_then_reverse_is_identity(
        orig in tuple_strategy(),
        spec in spec_strategy(),
        zone in any::<u16>(),
    ) {
        prop_assume!(orig.src != orig.dst);
        let ct = table(64);
        let v = ct.process(&opening(&orig), zone, true, Some(&spec), None, 0);
        let bit = match spec {
            NatSpec::Src { .. } => ct_state::SNAT,
            _ => ct_state::DNAT,
        };
        prop_assert_eq!(v.state, NEW | bit);
        let fwd = v.rewrite.map_or(orig, |r| r.apply(&orig));
        // The translated packet carries what the spec asked for.
        match spec {
            NatSpec::Src { ip, port } => {
                prop_assert_eq!(fwd.src, ip);
                if let (true, Some(p)) = (orig.has_ports(), port) {
                    prop_assert_eq!(fwd.src_port, p);
                }
                prop_assert_eq!((fwd.dst, fwd.dst_port), (orig.dst, orig.dst_port));
            }
            NatSpec::Dst { ip, port } => {
                prop_assert_eq!(fwd.dst, ip);
                if let (true, Some(p)) = (orig.has_ports(), port) {
                    prop_assert_eq!(fwd.dst_port, p);
                }
                prop_assert_eq!((fwd.src, fwd.src_port), (orig.src, orig.src_port));
            }
            NatSpec::Reverse => unreachable!(),
        }
        if orig.proto == ip_proto::ICMP {
            prop_assert_eq!(fwd.src_port, orig.src_port, "ICMP identifiers are kept");
        }
        // The reply to the translated packet.
        let reply = fwd.reverse();
        let v = ct.process(&answer(&reply), zone, false, Some(&NatSpec::Reverse), None, 1);
        prop_assert_eq!(v.state, RPL | bit);
        prop_assert_eq!(v.zone, zone);
        let back = v.rewrite.map_or(reply, |r| r.apply(&reply));
        prop_assert_eq!(back, orig.reverse());
        // An ICMP error about the translated packet, from its receiver.
        let err = CtPacket::icmp_error(reply.src, reply.dst, msg_type::DST_UNREACHABLE, 1, fwd, 56);
        let v = ct.process(&err, zone, false, Some(&NatSpec::Reverse), None, 2);
        prop_assert_eq!(v.state, ct_state::REL | ct_state::RPL | ct_state::TRK | bit);
        let inner = v.inner_rewrite.map_or(fwd, |r| r.apply(&fwd));
        prop_assert_eq!(inner, orig);
        let outer = v.rewrite.map_or(err.tuple, |r| r.apply(&err.tuple));
        prop_assert_eq!((outer.src, outer.dst), (orig.dst, orig.src));
        check_invariants(&ct);
    }
}

fn dnat_to_backend() -> NatSpec {
    NatSpec::Dst {
        ip: B,
        port: Some(8080),
    }
}

#[test]
fn service_dnat_both_directions() {
    let ct = table(64);
    let dnat = dnat_to_backend();
    let v = ct.process(&syn((C, 40000), (VIP, 80)), 1, true, Some(&dnat), None, 0);
    assert_eq!(v.state, NEW | ct_state::DNAT);
    assert_eq!(
        v.rewrite,
        Some(Rewrite {
            src: None,
            dst: Some((B, 8080))
        })
    );
    let v = ct.process(
        &syn_ack((B, 8080), (C, 40000)),
        1,
        false,
        Some(&NatSpec::Reverse),
        None,
        0,
    );
    assert_eq!(v.state, RPL | ct_state::DNAT);
    assert_eq!(
        v.rewrite,
        Some(Rewrite {
            src: Some((VIP, 80)),
            dst: None
        })
    );
    // Without `nat` in the action: tracked, not translated.
    let v = ct.process(&syn_ack((B, 8080), (C, 40000)), 1, false, None, None, 0);
    assert_eq!((v.state, v.rewrite), (RPL, None));
    // A later original-direction packet with a different `nat(dst=...)`
    // keeps the committed mapping.
    let other = NatSpec::Dst { ip: S, port: None };
    let ack = CtPacket::tcp(
        (C, 40000),
        (VIP, 80),
        TcpSeg {
            flags: ACK,
            seq: 101,
            ack: 901,
            window: 1000,
            ..TcpSeg::default()
        },
        40,
    );
    let v = ct.process(&ack, 1, true, Some(&other), None, 0);
    assert_eq!(v.state, EST | ct_state::DNAT);
    assert_eq!(v.rewrite.unwrap().dst, Some((B, 8080)));
    assert_eq!(ct.len(), 1);
}

#[test]
fn hairpin_dnat_and_snat_to_the_gateway() {
    // A pod reaching a Service that selects itself: DNAT to the pod,
    // and SNAT (in another zone) to the gateway so the reply comes back.
    let ct = table(64);
    let gw = Ipv4Addr::new(10, 244, 1, 1);
    let dnat = NatSpec::Dst {
        ip: C,
        port: Some(8080),
    };
    let snat = NatSpec::Src { ip: gw, port: None };
    let p = syn((C, 40000), (VIP, 80));
    let v = ct.process(&p, 1, true, Some(&dnat), None, 0);
    let p2 = v.rewrite.unwrap().apply(&p.tuple);
    assert_eq!(p2, CtTuple::tcp(C, 40000, C, 8080));
    let v = ct.process(
        &syn((p2.src, p2.src_port), (p2.dst, p2.dst_port)),
        2,
        true,
        Some(&snat),
        None,
        0,
    );
    let p3 = v.rewrite.unwrap().apply(&p2);
    assert_eq!(p3, CtTuple::tcp(gw, 40000, C, 8080));
    // The pod answers the gateway; zone 2 then zone 1 undo it.
    let r = p3.reverse();
    let v = ct.process(
        &syn_ack((r.src, r.src_port), (r.dst, r.dst_port)),
        2,
        false,
        Some(&NatSpec::Reverse),
        None,
        0,
    );
    assert_eq!(v.state, RPL | ct_state::SNAT);
    let r2 = v.rewrite.unwrap().apply(&r);
    assert_eq!(r2, p2.reverse());
    let v = ct.process(
        &syn_ack((r2.src, r2.src_port), (r2.dst, r2.dst_port)),
        1,
        false,
        Some(&NatSpec::Reverse),
        None,
        0,
    );
    assert_eq!(v.state, RPL | ct_state::DNAT);
    assert_eq!(v.rewrite.unwrap().apply(&r2), p.tuple.reverse());
    check_invariants(&ct);
}

#[test]
fn icmp_error_about_a_dnat_connection() {
    let ct = table(64);
    let dnat = dnat_to_backend();
    ct.process(
        &syn((C, 40000), (VIP, 80)),
        0,
        true,
        Some(&dnat),
        Some(3),
        0,
    );
    // The backend's host says port unreachable about what it received.
    let inner = CtTuple::tcp(C, 40000, B, 8080);
    let err = CtPacket::icmp_error(B, C, msg_type::DST_UNREACHABLE, 3, inner, 68);
    let v = ct.process(&err, 0, false, Some(&NatSpec::Reverse), None, 0);
    assert_eq!(
        v.state,
        ct_state::REL | ct_state::RPL | ct_state::TRK | ct_state::DNAT
    );
    assert_eq!(v.mark, 3);
    assert_eq!(
        v.rewrite,
        Some(Rewrite {
            src: Some((VIP, 0)),
            dst: None
        })
    );
    assert_eq!(
        v.inner_rewrite,
        Some(Rewrite {
            src: None,
            dst: Some((VIP, 80))
        })
    );
    assert_eq!(
        v.inner_rewrite.unwrap().apply(&inner),
        CtTuple::tcp(C, 40000, VIP, 80)
    );
    // Without `nat`: related, untranslated.
    let v = ct.process(&err, 0, false, None, None, 0);
    assert_eq!(v.state, ct_state::REL | ct_state::RPL | ct_state::TRK);
    assert_eq!((v.rewrite, v.inner_rewrite), (None, None));
    // From a router on the way (time exceeded): the outer source becomes
    // the VIP as well, as Linux and OVS do.
    let router = Ipv4Addr::new(198, 18, 0, 9);
    let err = CtPacket::icmp_error(router, C, msg_type::TIME_EXCEEDED, 0, inner, 68);
    let v = ct.process(&err, 0, false, Some(&NatSpec::Reverse), None, 0);
    assert!(v.is(ct_state::REL));
    // In the original direction: the client complains about a reply.
    let inner = CtTuple::tcp(VIP, 80, C, 40000);
    let err = CtPacket::icmp_error(C, VIP, msg_type::DST_UNREACHABLE, 3, inner, 68);
    let v = ct.process(&err, 0, false, Some(&NatSpec::Reverse), None, 0);
    assert_eq!(v.state, ct_state::REL | ct_state::TRK | ct_state::DNAT);
    assert_eq!(v.rewrite.unwrap().dst, Some((B, 0)));
    assert_eq!(
        v.inner_rewrite.unwrap().apply(&inner),
        CtTuple::tcp(B, 8080, C, 40000)
    );
    // Errors count nothing and refresh nothing.
    let e = ct.get(&CtTuple::tcp(C, 40000, VIP, 80), 0, 0).unwrap();
    assert_eq!(e.packets, [1, 0]);
}

#[test]
fn icmp_error_about_an_snat_connection() {
    let ct = table(64);
    let node = Ipv4Addr::new(198, 18, 0, 1);
    let snat = NatSpec::Src {
        ip: node,
        port: Some(61000),
    };
    let p = udp((C, 5353), (S, 53));
    let v = ct.process(&p, 0, true, Some(&snat), None, 0);
    assert_eq!(v.rewrite.unwrap().src, Some((node, 61000)));
    let inner = CtTuple::udp(node, 61000, S, 53);
    let err = CtPacket::icmp_error(S, node, msg_type::DST_UNREACHABLE, 3, inner, 56);
    let v = ct.process(&err, 0, false, Some(&NatSpec::Reverse), None, 0);
    assert_eq!(
        v.state,
        ct_state::REL | ct_state::RPL | ct_state::TRK | ct_state::SNAT
    );
    assert_eq!(v.rewrite.unwrap().dst, Some((C, 0)));
    assert_eq!(v.inner_rewrite.unwrap().apply(&inner), p.tuple);
}

#[test]
fn icmp_error_about_an_echo() {
    let ct = table(64);
    let req = CtPacket::icmp_echo(C, S, 77, false, 84);
    ct.process(&req, 0, true, None, None, 0);
    let err = CtPacket::icmp_error(S, C, msg_type::DST_UNREACHABLE, 1, req.tuple, 56);
    let v = ct.process(&err, 0, false, None, None, 0);
    assert_eq!(v.state, ct_state::REL | ct_state::RPL | ct_state::TRK);
}

#[test]
fn icmp_error_about_nothing_known_is_invalid() {
    let ct = table(64);
    let inner = CtTuple::tcp(C, 1, S, 2);
    let err = CtPacket::icmp_error(S, C, msg_type::DST_UNREACHABLE, 3, inner, 56);
    assert_eq!(state(&ct, &err, true, 0), INV);
    // Nor does an error open a connection when committed.
    assert!(ct.is_empty());
    // An error type that is not an error, about a known connection.
    ct.process(&syn((C, 1), (S, 2)), 0, true, None, None, 0);
    let bogus = CtPacket::icmp_error(S, C, msg_type::ECHO_REQUEST, 0, inner, 56);
    assert_eq!(state(&ct, &bogus, false, 0), INV);
    let err = CtPacket::icmp_error(S, C, msg_type::DST_UNREACHABLE, 3, inner, 56);
    assert!(ct.process(&err, 0, false, None, None, 0).is(ct_state::REL));
    // In another zone it is unknown.
    assert_eq!(ct.process(&err, 1, false, None, None, 0).state, INV);
}

#[test]
fn dnat_collision_is_refused() {
    let ct = table(64);
    // The client already talks to the backend directly from port 40000.
    ct.process(&udp((C, 40000), (B, 8080)), 0, true, None, None, 0);
    // Same client port through the VIP to the same backend: the reply
    // tuple is taken.
    let p = udp((C, 40000), (VIP, 80));
    let v = ct.process(&p, 0, true, Some(&dnat_to_backend()), None, 0);
    assert_eq!((v.state, v.rewrite), (NEW, None));
    assert_eq!(ct.len(), 1);
    assert_eq!(ct.stats().refused, 1);
    check_invariants(&ct);
}

#[test]
fn snat_without_port_moves_to_a_free_one() {
    let ct = table(64);
    let node = Ipv4Addr::new(198, 18, 0, 1);
    let snat = NatSpec::Src {
        ip: node,
        port: None,
    };
    // Two pods with the same source port to the same server.
    let a = udp((C, 5000), (S, 53));
    let b = udp((B, 5000), (S, 53));
    let va = ct.process(&a, 0, true, Some(&snat), None, 0);
    let vb = ct.process(&b, 0, true, Some(&snat), None, 0);
    assert_eq!(
        va.rewrite.unwrap().src,
        Some((node, 5000)),
        "port kept when free"
    );
    let (ip, port) = vb.rewrite.unwrap().src.unwrap();
    assert_eq!(ip, node);
    assert!(port >= 1024 && port != 5000);
    assert_eq!(ct.len(), 2);
    // Each reply finds its own client.
    let v = ct.process(
        &udp((S, 53), (node, port)),
        0,
        false,
        Some(&NatSpec::Reverse),
        None,
        0,
    );
    assert_eq!(v.rewrite.unwrap().dst, Some((B, 5000)));
    let v = ct.process(
        &udp((S, 53), (node, 5000)),
        0,
        false,
        Some(&NatSpec::Reverse),
        None,
        0,
    );
    assert_eq!(v.rewrite.unwrap().dst, Some((C, 5000)));
    // With a fixed port, the second is refused.
    let fixed = NatSpec::Src {
        ip: node,
        port: Some(7000),
    };
    ct.process(&udp((C, 6000), (S, 53)), 0, true, Some(&fixed), None, 0);
    let v = ct.process(&udp((B, 6000), (S, 53)), 0, true, Some(&fixed), None, 0);
    assert_eq!(v.state, NEW);
    assert_eq!(ct.stats().refused, 1);
    check_invariants(&ct);
}

#[test]
fn commit_with_plain_nat_creates_no_mapping() {
    let ct = table(64);
    let p = udp((C, 1), (S, 2));
    let v = ct.process(&p, 0, true, Some(&NatSpec::Reverse), None, 0);
    assert_eq!((v.state, v.rewrite), (NEW, None));
    let e = ct.get(&p.tuple, 0, 0).unwrap();
    assert!(!e.snat && !e.dnat);
    assert_eq!(e.reply, p.tuple.reverse());
}

#[test]
fn uncommitted_nat_is_not_applied() {
    let ct = table(64);
    let v = ct.process(
        &udp((C, 1), (VIP, 80)),
        0,
        false,
        Some(&dnat_to_backend()),
        None,
        0,
    );
    assert_eq!((v.state, v.rewrite), (NEW, None));
}
