//! VXLAN tests: encapsulation and decapsulation through the whole pipeline
//! on in-memory ports, outer headers checked with etherparse, malformed
//! frames dropped with their reasons, and two nodes talking over the overlay.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use etherparse::{LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::tests::{assert_checksums, icmp, tcp, udp};
use super::tunnel::{source_port, ENTROPY_PORT_BASE};
use super::{ControlError, DropReason, TunnelConfig, VXLAN_OFPORT};
use crate::key::FlowKey;
use crate::packet::checksum;
use crate::scenario::{Scenario, UPLINK};

const VTEP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VTEP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VTEP_C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// Uplink (outer) MACs of the nodes.
const NIC_A: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
const NIC_B: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
const NIC_C: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];
/// Inner VTEP MACs (what a node puts as inner source and accepts as inner destination).
const VMAC_A: [u8; 6] = [0xaa, 0xbb, 0xcc, 0, 0, 0x01];
const VMAC_B: [u8; 6] = [0xaa, 0xbb, 0xcc, 0, 0, 0x02];
/// Pod gateway MACs and pods.
const GW_A: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const GW_B: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const POD_A: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x05];
const POD_B: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x07];
const IP_A: [u8; 4] = [10, 244, 1, 5];
const IP_B: [u8; 4] = [10, 244, 2, 7];

/// A node with pod ports 1 and 2, an uplink, and a tunnel from `local`.
fn node(local: Ipv4Addr, nic: [u8; 6], neighbors: &[(Ipv4Addr, [u8; 6])]) -> Scenario {
    Scenario::with_tunnel(&[1, 2], TunnelConfig::new(local, nic, UPLINK), neighbors)
}

/// The same, accepting only `vtep_mac` as inner destination.
fn strict_node(
    local: Ipv4Addr,
    nic: [u8; 6],
    vtep_mac: [u8; 6],
    neighbors: &[(Ipv4Addr, [u8; 6])],
) -> Scenario {
    let mut cfg = TunnelConfig::new(local, nic, UPLINK);
    cfg.vtep_mac = Some(vtep_mac);
    Scenario::with_tunnel(&[1, 2], cfg, neighbors)
}

/// Node B accepting VXLAN from anywhere; its flows send tunnel traffic to port 1.
fn receiver() -> Scenario {
    let s = node(VTEP_B, NIC_B, &[(VTEP_A, NIC_A)]);
    s.flows("priority=10,in_port=65000 actions=output:1");
    s
}

/// A VXLAN frame built by hand (not by the code under test): outer
/// Ethernet/IPv4/UDP from etherparse, then the 8-byte VXLAN header.
fn vxlan_frame(src: Ipv4Addr, dst: Ipv4Addr, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let b = PacketBuilder::ethernet2(NIC_A, NIC_B)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(50_000, 4789);
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

/// Recomputes the outer IPv4 header checksum after a test edited the header.
fn fix_ip_csum(f: &mut [u8]) {
    f[24..26].fill(0);
    let c = checksum::compute(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// Checks the outer headers of an encapsulated frame and that it carries
/// `inner` unchanged; returns the UDP source port.
fn check_outer(f: &[u8], src: Ipv4Addr, dst: Ipv4Addr, nh: [u8; 6], vni: u32, inner: &[u8]) -> u16 {
    let p = SlicedPacket::from_ethernet(f).expect("outer frame parses");
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("not ethernet")
    };
    assert_eq!(eth.destination(), nh, "outer dst MAC");
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "outer ipv4 checksum"
    );
    assert_eq!(h.time_to_live, 64);
    assert!(h.dont_fragment, "DF set");
    assert!(!h.more_fragments);
    assert_eq!(h.identification, 0);
    assert_eq!(h.source, src.octets());
    assert_eq!(h.destination, dst.octets());
    assert_eq!(usize::from(h.total_len), f.len() - 14);
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("not udp")
    };
    assert_eq!(u.destination_port(), 4789);
    assert!(u.source_port() >= ENTROPY_PORT_BASE, "entropy source port");
    assert_eq!(u.checksum(), 0, "udp checksum 0 (RFC 7348 over IPv4)");
    assert_eq!(usize::from(u.length()), 16 + inner.len());
    let vx = u.payload();
    assert_eq!(vx[..4], [0x08, 0, 0, 0], "flags: I only");
    assert_eq!(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), vni);
    assert_eq!(vx[7], 0);
    assert_eq!(&vx[8..], inner, "inner frame carried unchanged");
    u.source_port()
}

#[test]
fn encap_then_decap_is_the_identity() {
    let a = RefCell::new(node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B)]));
    let b = RefCell::new(receiver());
    let mac = any::<[u8; 6]>();
    let ip = any::<[u8; 4]>();
    let l4 = (
        mac,
        mac,
        ip,
        ip,
        any::<u16>(),
        any::<u16>(),
        0u8..3,
        0usize..1400,
    )
        .prop_map(|(s, d, sip, dip, sp, dp, kind, len)| {
            let payload = vec![0x5a; len];
            let b = PacketBuilder::ethernet2(s, d).ipv4(sip, dip, 64);
            let mut v = Vec::new();
            match kind {
                0 => b.tcp(sp, dp, 1, 1000).write(&mut v, &payload),
                1 => b.udp(sp, dp).write(&mut v, &payload),
                _ => b.icmpv4_echo_request(sp, dp).write(&mut v, &payload),
            }
            .unwrap();
            v
        });
    // Any L2 payload behind an ethertype the parser does not interpret.
    let raw = (mac, mac, proptest::collection::vec(any::<u8>(), 0..1400)).prop_map(|(s, d, p)| {
        let mut v = [&d[..], &s[..], &[0x88, 0xb5]].concat();
        v.extend(p);
        v
    });
    let strategy = (prop_oneof![l4, raw], 1u32..=0x00ff_ffff);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&strategy, |(inner, vni)| {
            let (mut a, mut b) = (a.borrow_mut(), b.borrow_mut());
            a.pipeline()
                .replace_flows(
                    control::flow::parse_flows(&format!(
                        "in_port=1 actions=set_field:198.18.0.2->tun_dst,set_field:{vni}->tun_id,output:65000"
                    ))
                    .unwrap(),
                )
                .unwrap();
            let mut cfg = b.pipeline().tunnel().unwrap();
            cfg.vni = vni;
            b.pipeline().set_tunnel(Some(cfg)).unwrap();
            // tun_* are matchable after decapsulation; anything else goes to 2.
            b.pipeline()
                .replace_flows(
                    control::flow::parse_flows(&format!(
                        "priority=10,in_port=65000,tun_id={vni},tun_src=198.18.0.1,tun_dst=198.18.0.2 actions=output:1\n\
                         priority=1 actions=output:2"
                    ))
                    .unwrap(),
                )
                .unwrap();
            let o1 = a.send(1, &inner);
            let outer = o1.only(UPLINK).to_vec();
            let sport = check_outer(&outer, VTEP_A, VTEP_B, NIC_B, vni, &inner);
            // The same inner flow always gets the same source port.
            let o2 = a.send(1, &inner);
            prop_assert_eq!(check_outer(o2.only(UPLINK), VTEP_A, VTEP_B, NIC_B, vni, &inner), sport);
            let got = b.wire_in(&o1);
            prop_assert_eq!(got.only(1), &inner[..]);
            prop_assert_eq!(a.sw.pool().available(), a.sw.pool().capacity() as usize);
            prop_assert_eq!(b.sw.pool().available(), b.sw.pool().capacity() as usize);
            Ok(())
        })
        .unwrap();
}

#[test]
fn source_port_spreads_flows_over_the_entropy_range() {
    let mut seen = HashSet::new();
    for sport in 0..2000u16 {
        let mut k = FlowKey::default();
        crate::pipeline::extract::extract(
            &tcp(POD_A, GW_A, IP_A, IP_B, 1024 + sport, 80),
            1,
            &mut k,
        )
        .unwrap();
        let p = source_port(&k);
        assert!(p >= ENTROPY_PORT_BASE);
        seen.insert(p);
    }
    // 2000 flows into 16384 ports: nearly all distinct.
    assert!(seen.len() > 1850, "{} distinct source ports", seen.len());
}

#[test]
fn vni_comes_from_tun_id_or_the_configuration() {
    let mut a = node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B)]);
    let mut cfg = a.pipeline().tunnel().unwrap();
    cfg.vni = 42;
    a.pipeline().set_tunnel(Some(cfg)).unwrap();
    let f = udp(POD_A, GW_A, IP_A, IP_B, 1, 2);
    // No tun_id: the configured VNI.
    a.flows("in_port=1 actions=set_field:198.18.0.2->tun_dst,output:65000");
    check_outer(a.send(1, &f).only(UPLINK), VTEP_A, VTEP_B, NIC_B, 42, &f);
    // tun_id wider than 24 bits: its low 24 bits, as OVS does.
    a.flows(
        "in_port=1 actions=set_field:198.18.0.2->tun_dst,set_field:0x1000007->tun_id,output:65000",
    );
    check_outer(a.send(1, &f).only(UPLINK), VTEP_A, VTEP_B, NIC_B, 7, &f);
}

#[test]
fn encap_failures_are_dropped_with_their_reason() {
    // No tunnel configured: output to 65000 is not executable.
    let mut s = Scenario::new(&[1, 2]);
    s.flows("in_port=1 actions=set_field:198.18.0.2->tun_dst,output:65000");
    let f = tcp(POD_A, GW_A, IP_A, IP_B, 1, 80);
    assert!(s.send(1, &f).is_empty());
    assert_eq!(s.drops(DropReason::TunnelUnsupported), 1);

    let mut a = node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B)]);
    a.flows(
        "priority=10,in_port=1,tcp actions=output:65000\n\
         priority=10,in_port=1,udp actions=set_field:198.18.0.9->tun_dst,output:65000\n\
         priority=10,in_port=1,icmp actions=set_field:198.18.0.2->tun_dst,output:65000",
    );
    assert!(a.send(1, &f).is_empty());
    assert_eq!(a.drops(DropReason::TunnelNoDestination), 1);
    assert!(a.send(1, &udp(POD_A, GW_A, IP_A, IP_B, 1, 2)).is_empty());
    assert_eq!(a.drops(DropReason::NoNeighbor), 1);
    // A default next hop (0.0.0.0) serves every destination without its own entry.
    a.pipeline().set_neighbors(HashMap::from([
        (VTEP_B, NIC_B),
        (Ipv4Addr::UNSPECIFIED, NIC_C),
    ]));
    let u = udp(POD_A, GW_A, IP_A, IP_B, 1, 2);
    check_outer(
        a.send(1, &u).only(UPLINK),
        VTEP_A,
        Ipv4Addr::new(198, 18, 0, 9),
        NIC_C,
        1,
        &u,
    );
    // The uplink detached: no such port; every buffer is back in the pool.
    let _uplink = a.sw.del_port(UPLINK).unwrap();
    assert!(a.send(1, &icmp(POD_A, GW_A, IP_A, IP_B, 9)).is_empty());
    assert_eq!(a.drops(DropReason::NoSuchPort), 1);
    assert_eq!(a.sw.pool().available(), a.sw.pool().capacity() as usize);
}

#[test]
fn copies_are_encapsulated_and_the_original_is_untouched() {
    let mut a = node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B), (VTEP_C, NIC_C)]);
    a.flows(
        "in_port=1 actions=set_field:198.18.0.2->tun_dst,output:65000,output:2,\
         set_field:198.18.0.3->tun_dst,set_field:5->tun_id,output:65000,mod_dl_dst:02:00:00:00:00:99,output:2",
    );
    let f = tcp(POD_A, GW_A, IP_A, IP_B, 1000, 80);
    let o = a.send(1, &f);
    assert_eq!(o.ports(), vec![2, UPLINK]);
    let up = &o.out[&UPLINK];
    assert_eq!(up.len(), 2);
    let s1 = check_outer(&up[0], VTEP_A, VTEP_B, NIC_B, 1, &f);
    let s2 = check_outer(&up[1], VTEP_A, VTEP_C, NIC_C, 5, &f);
    assert_eq!(s1, s2, "same inner flow, same entropy");
    assert_eq!(o.out[&2][0], f);
    assert_eq!(&o.out[&2][1][..6], &[0x02, 0, 0, 0, 0, 0x99]);
    assert_eq!(a.sw.pool().available(), a.sw.pool().capacity() as usize);
    // Output to the tunnel from the tunnel is output to the ingress port.
    let mut b = receiver();
    b.flows("priority=20,in_port=65000 actions=set_field:198.18.0.1->tun_dst,output:65000");
    let frame = vxlan_frame(VTEP_A, VTEP_B, 1, &f);
    assert!(b.send(UPLINK, &frame).is_empty());
    assert_eq!(b.drops(DropReason::OutputToInPort), 1);
}

#[test]
fn decap_drops_malformed_vxlan_with_its_reason() {
    let inner = tcp(GW_A, POD_B, IP_A, IP_B, 1, 80);
    let good = vxlan_frame(VTEP_A, VTEP_B, 1, &inner);
    let mut b = receiver();
    assert_eq!(b.send(UPLINK, &good).only(1), &inner[..]);

    let mut cases: Vec<(&str, Vec<u8>, DropReason)> = Vec::new();
    cases.push(("short frame", good[..10].to_vec(), DropReason::TooShort));
    cases.push(("chopped frame", good[..60].to_vec(), DropReason::BadIpv4));
    let mut f = good.clone();
    f[42] = 0x0c; // I plus a reserved flag
    cases.push(("bad flags", f, DropReason::BadVxlan));
    let mut f = good.clone();
    f[42] = 0x00; // no I flag
    cases.push(("no I flag", f, DropReason::BadVxlan));
    let mut f = good.clone();
    f[44] = 1; // reserved byte
    cases.push(("reserved bits", f, DropReason::BadVxlan));
    let mut f = good.clone();
    f[49] = 1; // last reserved byte
    cases.push(("reserved byte 7", f, DropReason::BadVxlan));
    // A complete UDP datagram too short for a VXLAN header.
    let mut short = Vec::new();
    PacketBuilder::ethernet2(NIC_A, NIC_B)
        .ipv4(VTEP_A.octets(), VTEP_B.octets(), 64)
        .udp(1, 4789)
        .write(&mut short, &[0x08, 0, 0, 0])
        .unwrap();
    cases.push(("udp too short for vxlan", short, DropReason::BadVxlan));
    cases.push((
        "inner frame shorter than ethernet",
        vxlan_frame(VTEP_A, VTEP_B, 1, &inner[..10]),
        DropReason::BadVxlan,
    ));
    cases.push((
        "wrong vni",
        vxlan_frame(VTEP_A, VTEP_B, 2, &inner),
        DropReason::UnknownVni,
    ));
    cases.push((
        "wrong destination ip",
        vxlan_frame(VTEP_A, VTEP_C, 1, &inner),
        DropReason::NotOurVtep,
    ));
    cases.push((
        "udp, not vxlan",
        udp(NIC_A, NIC_B, VTEP_A.octets(), VTEP_B.octets(), 4789, 53),
        DropReason::NotOurVtep,
    ));
    cases.push((
        "not udp",
        tcp(NIC_A, NIC_B, VTEP_A.octets(), VTEP_B.octets(), 4789, 4789),
        DropReason::NotOurVtep,
    ));
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&NIC_A);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    cases.push(("arp", arp, DropReason::NotOurVtep));
    let mut f = good.clone();
    f[20] |= 0x20; // MF
    fix_ip_csum(&mut f);
    cases.push(("outer fragment", f, DropReason::BadVxlan));
    let mut f = good.clone();
    f[24] ^= 0xff;
    cases.push(("bad outer ip checksum", f, DropReason::BadIpv4));

    let uplink_slot = b
        .pipeline()
        .ports()
        .into_iter()
        .find(|(p, _)| *p == UPLINK)
        .unwrap()
        .1;
    for (i, (what, frame, reason)) in cases.iter().enumerate() {
        let before = b.drops(*reason);
        assert!(b.send(UPLINK, frame).is_empty(), "{what}: forwarded");
        assert_eq!(
            b.drops(*reason),
            before + 1,
            "{what}: not counted as {reason}"
        );
        assert_eq!(
            b.pipeline().port_stats(uplink_slot).rx_dropped,
            i as u64 + 1,
            "{what}"
        );
    }
    assert_eq!(b.sw.pool().available(), b.sw.pool().capacity() as usize);

    // The allow-list of source VTEPs, and the inner destination MAC.
    let mut cfg = b.pipeline().tunnel().unwrap();
    cfg.allowed_sources = Some(HashSet::from([VTEP_A]));
    cfg.vtep_mac = Some(VMAC_B);
    b.pipeline().set_tunnel(Some(cfg)).unwrap();
    assert!(b
        .send(UPLINK, &vxlan_frame(VTEP_C, VTEP_B, 1, &inner))
        .is_empty());
    assert_eq!(b.drops(DropReason::UnknownSourceVtep), 1);
    assert!(b.send(UPLINK, &good).is_empty());
    assert_eq!(b.drops(DropReason::NotOurMac), 1);
    let to_vtep = tcp(VMAC_A, VMAC_B, IP_A, IP_B, 1, 80);
    assert_eq!(
        b.send(UPLINK, &vxlan_frame(VTEP_A, VTEP_B, 1, &to_vtep))
            .only(1),
        &to_vtep[..]
    );
    // A batch mixing good and bad frames keeps the good ones, in order.
    let bad = vxlan_frame(VTEP_C, VTEP_B, 1, &to_vtep);
    let good2 = vxlan_frame(VTEP_A, VTEP_B, 1, &tcp(VMAC_A, VMAC_B, IP_A, IP_B, 2, 80));
    for f in [&bad, &good, &good2, &bad, &good2] {
        b.link(UPLINK).inject(f);
    }
    let o = b.step();
    assert_eq!(o.out[&1].len(), 2);
    assert_eq!(o.out[&1][0], good2[50..]);
    assert_eq!(b.sw.pool().available(), b.sw.pool().capacity() as usize);
}

#[test]
fn frames_too_big_for_the_underlay_are_dropped_and_answered() {
    let mut a = node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B)]);
    a.flows("in_port=1,ip actions=mod_dl_src:aa:bb:cc:00:00:01,mod_dl_dst:aa:bb:cc:00:00:02,dec_ttl,set_field:198.18.0.2->tun_dst,output:65000");
    let sized = |len: usize, df: bool| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(POD_A, GW_A)
            .ipv4(IP_A, IP_B, 64)
            .udp(5000, 53)
            .write(&mut v, &vec![7u8; len - 42])
            .unwrap();
        if !df {
            v[20] &= !0x40;
            fix_ip_csum(&mut v);
        }
        v
    };
    // 1500 underlay: the outer packet is inner + 36, so 1464 fits.
    let f = sized(1464, true);
    let o = a.send(1, &f);
    assert_eq!(o.only(UPLINK).len(), 1464 + 50);
    let o = a.send(1, &sized(1465, true));
    assert_eq!(a.drops(DropReason::MtuExceeded), 1);
    // The pod gets ICMP "fragmentation needed" with the tunnel's MTU.
    let reply = o.only(1);
    assert_eq!(&reply[..6], &POD_A);
    assert_eq!(&reply[6..12], &GW_A);
    assert_checksums(reply);
    let p = SlicedPacket::from_ethernet(reply).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.header().destination(), IP_A);
    assert_eq!(ip.header().source(), VTEP_A.octets());
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("not icmp")
    };
    assert_eq!(checksum::data(&reply[34..]), 0xffff, "icmp checksum");
    match icmp.icmp_type() {
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
        ) => assert_eq!(next_hop_mtu, 1450),
        t => panic!("unexpected {t:?}"),
    }
    // The quoted header is the packet's own (as it was when dropped: TTL 63).
    let quoted = icmp.payload();
    assert_eq!(quoted.len(), 28);
    assert_eq!(&quoted[12..20], &[IP_A, IP_B].concat()[..]);
    // Without DF nothing is sent back, but the drop is counted.
    assert!(a.send(1, &sized(1465, false)).is_empty());
    assert_eq!(a.drops(DropReason::MtuExceeded), 2);
    // A smaller underlay MTU applies at the next batch.
    let mut cfg = a.pipeline().tunnel().unwrap();
    cfg.underlay_mtu = 1400;
    a.pipeline().set_tunnel(Some(cfg)).unwrap();
    assert_eq!(a.send(1, &f).ports(), vec![1]);
    assert_eq!(a.drops(DropReason::MtuExceeded), 3);
    assert_eq!(a.sw.pool().available(), a.sw.pool().capacity() as usize);
}

/// The flows the control plane compiles for node A (pod CIDR 10.244.1.0/24)
/// and its peer with `peer_cidr`, `peer_vtep`: local pods on port 1.
fn overlay_flows(
    s: &Scenario,
    vmac: [u8; 6],
    gw: [u8; 6],
    pod: ([u8; 6], [u8; 4]),
    peer: (&str, Ipv4Addr, [u8; 6]),
) {
    let mac = |m: [u8; 6]| control::MacAddr(m).to_string();
    let (cidr, vtep, peer_vmac) = peer;
    let pod_ip = Ipv4Addr::from(pod.1);
    s.flows(&format!(
        "table=0,priority=300,in_port=65000 actions=goto_table:10\n\
         table=0,priority=100,in_port=1 actions=goto_table:10\n\
         table=10,priority=100,ip,nw_dst={cidr} actions=mod_dl_src:{},mod_dl_dst:{},dec_ttl,set_field:{vtep}->tun_dst,set_field:1->tun_id,output:65000\n\
         table=10,priority=200,ip,nw_dst={pod_ip} actions=mod_dl_src:{},mod_dl_dst:{},dec_ttl,output:1\n",
        mac(vmac),
        mac(peer_vmac),
        mac(gw),
        mac(pod.0),
    ));
}

#[test]
fn two_nodes_talk_over_the_overlay() {
    let mut a = strict_node(VTEP_A, NIC_A, VMAC_A, &[(VTEP_B, NIC_B)]);
    let mut b = strict_node(VTEP_B, NIC_B, VMAC_B, &[(VTEP_A, NIC_A)]);
    overlay_flows(
        &a,
        VMAC_A,
        GW_A,
        (POD_A, IP_A),
        ("10.244.2.0/24", VTEP_B, VMAC_B),
    );
    overlay_flows(
        &b,
        VMAC_B,
        GW_B,
        (POD_B, IP_B),
        ("10.244.1.0/24", VTEP_A, VMAC_A),
    );

    // Pod A -> pod B: routed on A (TTL 64 -> 63), encapsulated, decapsulated
    // on B and routed to the pod (63 -> 62).
    let req = tcp(POD_A, GW_A, IP_A, IP_B, 40000, 80);
    let o = a.send(1, &req);
    let outer = o.only(UPLINK);
    check_outer(outer, VTEP_A, VTEP_B, NIC_B, 1, &outer[50..]);
    assert_eq!(&outer[50..62], &[VMAC_B, VMAC_A].concat()[..], "inner MACs");
    assert_eq!(outer[50 + 22], 63, "inner TTL");
    let got = b.wire_in(&o);
    let f = got.only(1);
    assert_eq!(&f[..6], &POD_B);
    assert_eq!(&f[6..12], &GW_B);
    assert_checksums(f);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.header().ttl(), 62);
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        (IP_A, IP_B)
    );
    assert_eq!(&f[34..], &req[34..], "TCP segment unchanged");
    assert_eq!(outer.len(), req.len() + 50);

    // The reply goes back the same way.
    let rep = tcp(POD_B, GW_B, IP_B, IP_A, 80, 40000);
    let o = b.send(1, &rep);
    let outer = o.only(UPLINK);
    check_outer(outer, VTEP_B, VTEP_A, NIC_A, 1, &outer[50..]);
    assert_eq!(&outer[50..62], &[VMAC_A, VMAC_B].concat()[..], "inner MACs");
    let got = a.wire_in(&o);
    let f = got.only(1);
    assert_eq!(&f[..12], &[POD_A, GW_A].concat()[..]);
    assert_checksums(f);
    assert_eq!(f[22], 62);
    // Nothing leaked on either node.
    for s in [&a, &b] {
        assert_eq!(s.sw.pool().available(), s.sw.pool().capacity() as usize);
        let dropped: u64 = s.pipeline().drops().iter().map(|(_, n)| n).sum();
        assert_eq!(dropped, 0);
    }
}

#[test]
fn flood_skips_the_uplink_while_a_tunnel_is_configured() {
    let mut a = node(VTEP_A, NIC_A, &[]);
    a.flows("actions=normal");
    let bcast = tcp(POD_A, [0xff; 6], IP_A, [10, 244, 1, 255], 1, 2);
    assert_eq!(a.send(1, &bcast).ports(), vec![2]);
    a.pipeline().set_tunnel(None).unwrap();
    assert_eq!(a.send(1, &bcast).ports(), vec![2, UPLINK]);
    // Explicit output to the uplink still works.
    a.pipeline()
        .set_tunnel(Some(TunnelConfig::new(VTEP_A, NIC_A, UPLINK)))
        .unwrap();
    a.flows(&format!("priority=40000,in_port=2 actions=output:{UPLINK}"));
    assert_eq!(a.send(2, &bcast).ports(), vec![UPLINK]);
}

#[test]
fn tunnel_configuration_is_checked_and_readable() {
    let s = Scenario::new(&[1, 2, UPLINK, 7]);
    let p = s.pipeline();
    assert_eq!(p.tunnel(), None);
    let cfg = TunnelConfig::new(VTEP_A, NIC_A, UPLINK);
    assert_eq!(cfg.ofport, VXLAN_OFPORT);
    assert_eq!(cfg.inner_mtu(), 1450);
    let bad = |f: fn(&mut TunnelConfig)| {
        let mut c = cfg.clone();
        f(&mut c);
        p.set_tunnel(Some(c)).unwrap_err()
    };
    assert!(matches!(bad(|c| c.vni = 1 << 24), ControlError::Tunnel(_)));
    assert!(matches!(
        bad(|c| c.underlay_mtu = 100),
        ControlError::Tunnel(_)
    ));
    assert!(matches!(
        bad(|c| c.ofport = UPLINK),
        ControlError::Tunnel(_)
    ));
    assert!(matches!(
        bad(|c| c.local_ip = Ipv4Addr::UNSPECIFIED),
        ControlError::Tunnel(_)
    ));
    assert_eq!(bad(|c| c.ofport = 7), ControlError::PortExists(7));
    p.set_tunnel(Some(cfg.clone())).unwrap();
    assert_eq!(p.tunnel(), Some(cfg));
    assert_eq!(
        p.add_port(VXLAN_OFPORT),
        Err(ControlError::PortExists(VXLAN_OFPORT))
    );
    let n = HashMap::from([(VTEP_B, NIC_B)]);
    p.set_neighbors(n.clone());
    assert_eq!(p.neighbors(), n);
}

#[test]
fn trace_shows_the_encapsulation_and_traces_from_the_tunnel() {
    let a = node(VTEP_A, NIC_A, &[(VTEP_B, NIC_B)]);
    overlay_flows(
        &a,
        VMAC_A,
        GW_A,
        (POD_A, IP_A),
        ("10.244.2.0/24", VTEP_B, VMAC_B),
    );
    let trace = |s: &str| {
        a.pipeline()
            .trace(&control::flow::parse_filter(s).unwrap(), 0)
            .unwrap()
    };
    let t =
        trace("in_port=1,tcp,nw_src=10.244.1.5,nw_dst=10.244.2.7,tp_src=40000,tp_dst=80,nw_ttl=64");
    assert_eq!(t.verdict, "output:65000", "{t:#?}");
    let line = t
        .lines
        .iter()
        .find(|l| l.contains("VXLAN"))
        .expect("encap line");
    assert!(line.contains("vni 1, 198.18.0.1 -> 198.18.0.2"), "{line}");
    assert!(line.contains("next hop 02:00:00:00:bb:01"), "{line}");
    // The same port as the datapath would pick.
    let mut k = FlowKey::default();
    crate::pipeline::extract::extract(&tcp(POD_A, GW_A, IP_A, IP_B, 40000, 80), 1, &mut k).unwrap();
    assert!(
        line.contains(&format!("udp {} -> 4789", source_port(&k))),
        "{line}"
    );

    a.pipeline().set_neighbors(HashMap::new());
    let t = trace("in_port=1,ip,nw_dst=10.244.2.7,nw_ttl=64");
    assert_eq!(t.verdict, "drop (no-neighbor)");
    assert!(t.lines.iter().any(|l| l.contains("no neighbour")), "{t:#?}");

    // From the tunnel port, and from the uplink (taken as the inner packet).
    let t = trace("in_port=65000,tun_src=198.18.0.2,tun_id=1,ip,nw_dst=10.244.1.5,nw_ttl=63");
    assert_eq!(t.verdict, "output:1", "{t:#?}");
    assert!(t.lines[0].contains("VXLAN tunnel port"), "{t:#?}");
    let t = trace(&format!("in_port={UPLINK},ip,nw_dst=10.244.1.5,nw_ttl=63"));
    assert_eq!(t.verdict, "output:1", "{t:#?}");
    assert!(t.lines[0].contains("decapsulated"), "{t:#?}");

    let s = Scenario::new(&[1]);
    s.flows("actions=set_field:198.18.0.2->tun_dst,output:65000");
    let t = s
        .pipeline()
        .trace(&control::flow::parse_filter("in_port=1").unwrap(), 0)
        .unwrap();
    assert_eq!(t.verdict, "drop (tunnel-unsupported)");
    let t = a
        .pipeline()
        .trace(&control::flow::parse_filter("in_port=1,arp").unwrap(), 0)
        .unwrap();
    assert_eq!(t.verdict, "drop (no-match)");
}

#[test]
fn tunnel_port_number_matches_the_control_plane() {
    assert_eq!(VXLAN_OFPORT, control::model::VXLAN_OFPORT);
}

#[test]
fn decap_through_conntrack_and_goto_chains_leaks_no_buffer() {
    let mut a = strict_node(VTEP_A, NIC_A, VMAC_A, &[(VTEP_B, NIC_B)]);
    let mut b = strict_node(VTEP_B, NIC_B, VMAC_B, &[(VTEP_A, NIC_A)]);
    overlay_flows(
        &a,
        VMAC_A,
        GW_A,
        (POD_A, IP_A),
        ("10.244.2.0/24", VTEP_B, VMAC_B),
    );
    // Node B as the control plane compiles it with Services: every IPv4
    // packet goes through conntrack first, then the classification table.
    let mac = |m: [u8; 6]| control::MacAddr(m).to_string();
    b.flows(&format!(
        "table=0,priority=400,ip actions=ct(table=1,zone=1,nat)\n\
         table=1,priority=0 actions=goto_table:2\n\
         table=2,priority=300,in_port=65000 actions=goto_table:10\n\
         table=10,priority=200,ip,nw_dst={} actions=mod_dl_src:{},mod_dl_dst:{},dec_ttl,output:1\n",
        Ipv4Addr::from(IP_B),
        mac(GW_B),
        mac(POD_B),
    ));
    for i in 0..300u16 {
        let f = if i % 2 == 0 {
            tcp(POD_A, GW_A, IP_A, IP_B, 40000 + i, 80)
        } else {
            udp(POD_A, GW_A, IP_A, IP_B, 1024 + i % 64, 9)
        };
        let o = a.send(1, &f);
        let got = b.wire_in(&o);
        assert_eq!(got.ports(), vec![1], "frame {i}");
    }
    for s in [&a, &b] {
        assert_eq!(
            s.sw.pool().available(),
            s.sw.pool().capacity() as usize,
            "no buffer leaked"
        );
    }
}
