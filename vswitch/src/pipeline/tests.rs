//! Scenario tests of the whole pipeline on in-memory ports.

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

use super::DropReason;
use crate::scenario::Scenario;
use crate::tables::{Fdb, FdbConfig};

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const BCAST: [u8; 6] = [0xff; 6];

pub(super) fn tcp(
    src: [u8; 6],
    dst: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .tcp(sport, dport, 1000, 65535);
    let payload = b"hello, switch";
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

pub(super) fn udp(
    src: [u8; 6],
    dst: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .udp(sport, dport);
    let payload = b"datagram";
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

pub(super) fn icmp(src: [u8; 6], dst: [u8; 6], sip: [u8; 4], dip: [u8; 4], ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, ttl)
        .icmpv4_echo_request(1, 1);
    let mut v = Vec::new();
    b.write(&mut v, b"ping").unwrap();
    v
}

/// Asserts the IPv4 header and TCP/UDP checksums of `frame` are correct, by
/// recomputing them with etherparse.
pub(super) fn assert_checksums(frame: &[u8]) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "ipv4 header checksum"
    );
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "tcp checksum");
        }
        Some(TransportSlice::Udp(u)) => {
            let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "udp checksum");
        }
        _ => {}
    }
}

#[test]
fn learning_switch_floods_learns_unicasts_and_ages() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows("priority=0 actions=normal");
    // Unknown destination: flooded to every port but the ingress.
    let o = s.send(1, &tcp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1, 2));
    assert_eq!(o.ports(), vec![2, 3]);
    // B answers: A was learned on port 1, so the reply goes only there.
    let o = s.send(2, &tcp(B, A, [10, 244, 0, 2], [10, 244, 0, 1], 2, 1));
    o.only(1);
    // Now B is known too.
    let o = s.send(1, &tcp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1, 2));
    o.only(2);
    // Broadcast is always flooded.
    let o = s.send(3, &tcp(C, BCAST, [10, 244, 0, 3], [10, 244, 0, 255], 1, 2));
    assert_eq!(o.ports(), vec![1, 2]);
    // After the aging time, B is forgotten: flood again.
    s.advance_secs(301);
    let o = s.send(1, &tcp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1, 2));
    assert_eq!(o.ports(), vec![2, 3]);
}

#[test]
fn learning_switch_moves_a_mac_and_never_reflects() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows("actions=normal");
    s.send(1, &tcp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1, 2));
    s.send(2, &tcp(B, A, [10, 244, 0, 2], [10, 244, 0, 1], 1, 2))
        .only(1);
    // A moves to port 3.
    s.send(3, &tcp(A, C, [10, 244, 0, 1], [10, 244, 0, 3], 1, 2));
    s.send(2, &tcp(B, A, [10, 244, 0, 2], [10, 244, 0, 1], 1, 2))
        .only(3);
    // A frame for a MAC learned on its own ingress port is not sent back.
    let o = s.send(3, &tcp(C, A, [10, 244, 0, 3], [10, 244, 0, 1], 1, 2));
    assert!(o.is_empty());
    assert_eq!(s.drops(DropReason::OutputToInPort), 1);
}

#[test]
fn fdb_limit_is_fair_across_ports() {
    let mut s = Scenario::with_fdb(
        &[1, 2, 3],
        Fdb::new(FdbConfig {
            max_entries: 64,
            ..FdbConfig::default()
        }),
    );
    s.flows("actions=normal");
    // Port 2 has a few stations.
    for i in 0..5u8 {
        s.send(
            2,
            &tcp(
                [2, 0, 0, 0, 2, i],
                BCAST,
                [10, 244, 0, 2],
                [10, 244, 0, 9],
                1,
                2,
            ),
        );
    }
    // Port 1 floods 1000 random source MACs.
    for i in 0..1000u16 {
        let m = [2, 1, 0, 0, (i >> 8) as u8, i as u8];
        s.send(1, &tcp(m, BCAST, [10, 244, 0, 1], [10, 244, 0, 9], 1, 2));
    }
    assert!(s.pipeline().fdb.len() <= 64);
    // Port 2's stations are still known: unicast to them is not flooded.
    for i in 0..5u8 {
        s.send(
            3,
            &tcp(
                C,
                [2, 0, 0, 0, 2, i],
                [10, 244, 0, 3],
                [10, 244, 0, 2],
                1,
                2,
            ),
        )
        .only(2);
    }
}

#[test]
fn priorities_and_masks_pick_the_most_important_match() {
    let mut s = Scenario::new(&[1, 2, 3, 4]);
    s.flows(
        "priority=10,ip,nw_dst=10.0.0.0/8 actions=output:2\n\
         priority=20,ip,nw_dst=10.1.0.0/16 actions=output:3\n\
         priority=30,tcp,nw_dst=10.1.0.0/16,tp_dst=80 actions=output:4\n\
         priority=5 actions=drop",
    );
    s.send(1, &tcp(A, B, [1, 1, 1, 1], [10, 2, 0, 1], 5, 80))
        .only(2);
    s.send(1, &tcp(A, B, [1, 1, 1, 1], [10, 1, 0, 1], 5, 81))
        .only(3);
    s.send(1, &tcp(A, B, [1, 1, 1, 1], [10, 1, 0, 1], 5, 80))
        .only(4);
    s.send(1, &udp(A, B, [1, 1, 1, 1], [10, 1, 0, 1], 5, 80))
        .only(3);
    assert!(s
        .send(1, &tcp(A, B, [1, 1, 1, 1], [11, 0, 0, 1], 5, 80))
        .is_empty());
    assert_eq!(s.drops(DropReason::Action), 1);
}

#[test]
fn table_miss_is_counted() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows("priority=10,udp actions=output:2");
    assert!(s
        .send(1, &tcp(A, B, [1, 1, 1, 1], [10, 2, 0, 1], 5, 80))
        .is_empty());
    assert_eq!(s.drops(DropReason::NoMatch), 1);
}

#[test]
fn goto_table_and_resubmit_chain_tables() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows(
        "table=0,priority=1,in_port=1 actions=goto_table:1\n\
         table=0,priority=1,in_port=2 actions=resubmit(,2),output:3\n\
         table=1,priority=1,ip actions=output:2\n\
         table=2,priority=1 actions=mod_dl_dst:02:00:00:00:00:0c,output:1",
    );
    s.send(1, &tcp(A, B, [1, 1, 1, 1], [10, 2, 0, 1], 5, 80))
        .only(2);
    // resubmit sends a copy with the rewritten MAC to 1, then the same
    // (rewritten) packet to 3.
    let o = s.send(2, &tcp(A, B, [1, 1, 1, 1], [10, 2, 0, 1], 5, 80));
    assert_eq!(o.ports(), vec![1, 3]);
    assert_eq!(&o.out[&1][0][0..6], &C);
    assert_eq!(&o.out[&3][0][0..6], &C);
}

#[test]
fn resubmit_loop_is_cut_and_counted() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows("table=0 actions=resubmit(,0)");
    assert!(s
        .send(1, &tcp(A, B, [1, 1, 1, 1], [10, 2, 0, 1], 5, 80))
        .is_empty());
    assert_eq!(s.drops(DropReason::ResubmitLimit), 1);
}

#[test]
fn set_field_keeps_checksums_valid() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows(
        "priority=10,tcp actions=mod_nw_src:10.244.9.9,mod_nw_dst:10.96.0.10,mod_tp_dst:8080,mod_tp_src:4000,mod_dl_src:02:00:00:00:00:0c,dec_ttl,output:2\n\
         priority=10,udp actions=set_field:10.244.7.7->ip_dst,mod_tp_src:53,dec_ttl,output:2",
    );
    let o = s.send(1, &tcp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1234, 80));
    let f = o.only(2);
    assert_checksums(f);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    assert_eq!(ip.header().source(), [10, 244, 9, 9]);
    assert_eq!(ip.header().destination(), [10, 96, 0, 10]);
    assert_eq!(ip.header().ttl(), 63);
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!()
    };
    assert_eq!((t.source_port(), t.destination_port()), (4000, 8080));
    assert_eq!(&f[6..12], &C);

    let o = s.send(1, &udp(A, B, [10, 244, 0, 1], [10, 244, 0, 2], 1234, 80));
    let f = o.only(2);
    assert_checksums(f);
}

#[test]
fn dec_ttl_expiry_is_dropped_and_counted() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows("ip actions=dec_ttl,output:2");
    assert!(s
        .send(1, &icmp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1))
        .is_empty());
    assert_eq!(s.drops(DropReason::TtlExpired), 1);
    let o = s.send(1, &icmp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 2));
    assert_checksums(o.only(2));
}

#[test]
fn malformed_frames_are_dropped_with_their_reason() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows("actions=normal");
    assert!(s.send(1, &[0u8; 10]).is_empty());
    assert_eq!(s.drops(DropReason::TooShort), 1);
    let mut bad = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    bad[14] = 0x41; // IHL 1: shorter than an IPv4 header
    assert!(s.send(1, &bad).is_empty());
    assert_eq!(s.drops(DropReason::BadIpv4), 1);
    let good = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert!(s.send(1, &good[..14 + 20 + 10]).is_empty());
    assert!(s.drops(DropReason::BadIpv4) + s.drops(DropReason::BadL4) >= 2);
    // The switch still forwards afterwards.
    assert_eq!(s.send(1, &good).ports(), vec![2]);
}

#[test]
fn flow_change_invalidates_the_exact_match_cache() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows("priority=10,ip actions=output:2");
    let f = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    s.send(1, &f).only(2);
    s.send(1, &f).only(2);
    s.flows("priority=10,ip actions=output:3");
    s.send(1, &f).only(3);
    s.pipeline()
        .del_flows(&control::flow::parse_filter("").unwrap(), false)
        .unwrap();
    assert!(s.send(1, &f).is_empty());
}

#[test]
fn multiple_outputs_flood_and_in_port() {
    let mut s = Scenario::new(&[1, 2, 3, 4]);
    s.flows(
        "priority=10,in_port=1 actions=output:2,output:3\n\
         priority=10,in_port=2 actions=flood\n\
         priority=10,in_port=3 actions=in_port\n\
         priority=10,in_port=4 actions=output:4",
    );
    let f = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    let o = s.send(1, &f);
    assert_eq!(o.ports(), vec![2, 3]);
    assert_eq!(o.out[&2][0], f);
    assert_eq!(s.send(2, &f).ports(), vec![1, 3, 4]);
    s.send(3, &f).only(3);
    assert!(s.send(4, &f).is_empty());
    assert_eq!(s.drops(DropReason::OutputToInPort), 1);
    // Every frame went back to the pool.
    assert_eq!(s.sw.pool().available(), s.sw.pool().capacity() as usize);
}

#[test]
fn vlan_push_pop_and_vid() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows(
        "priority=10,in_port=1 actions=mod_vlan_vid:100,output:2\n\
         priority=10,in_port=2,dl_vlan=100 actions=pop_vlan,output:3",
    );
    let f = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    let o = s.send(1, &f);
    let tagged = o.only(2).to_vec();
    assert_eq!(tagged.len(), f.len() + 4);
    assert_eq!(&tagged[12..14], &[0x81, 0x00]);
    assert_eq!(u16::from_be_bytes([tagged[14], tagged[15]]) & 0x0fff, 100);
    assert_eq!(&tagged[16..], &f[12..]);
    let o = s.send(2, &tagged);
    assert_eq!(o.only(3), &f[..]);
}

#[test]
fn groups_select_by_hash_and_all_copies() {
    let mut s = Scenario::new(&[1, 2, 3, 4]);
    let p = s.pipeline().clone();
    p.add_group(
        control::flow::parse_group("group_id=1,type=select,bucket=output:2,bucket=output:3")
            .unwrap(),
    )
    .unwrap();
    p.add_group(
        control::flow::parse_group(
            "group_id=2,type=all,bucket=output:2,bucket=output:3,bucket=output:4",
        )
        .unwrap(),
    )
    .unwrap();
    s.flows("priority=10,tcp actions=group:1\npriority=10,udp actions=group:2\npriority=9,icmp actions=group:9");
    let mut seen = std::collections::BTreeSet::new();
    for sport in 0..64u16 {
        let f = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1000 + sport, 80);
        let o = s.send(1, &f);
        assert_eq!(o.total(), 1);
        let port = o.ports()[0];
        // The same flow always takes the same bucket.
        assert_eq!(s.send(1, &f).ports(), vec![port]);
        seen.insert(port);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![2, 3]);
    let o = s.send(1, &udp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
    assert_eq!(o.ports(), vec![2, 3, 4]);
    assert!(s
        .send(1, &icmp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 9))
        .is_empty());
    assert_eq!(s.drops(DropReason::NoSuchGroup), 1);
}

#[test]
fn flow_counters_count_packets_and_bytes() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows("priority=10,in_port=1 actions=output:2");
    let f = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    for _ in 0..3 {
        s.send(1, &f);
    }
    let d = s
        .pipeline()
        .dump_flows(&control::flow::parse_filter("").unwrap())
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].stats.n_packets, 3);
    assert_eq!(d[0].stats.n_bytes, 3 * f.len() as u64);
    let ports = s.pipeline().ports();
    let slot1 = ports.iter().find(|(p, _)| *p == 1).unwrap().1;
    let slot2 = ports.iter().find(|(p, _)| *p == 2).unwrap().1;
    assert_eq!(s.pipeline().port_stats(slot1).rx_packets, 3);
    assert_eq!(s.pipeline().port_stats(slot2).tx_packets, 3);
}

#[test]
fn add_flows_is_atomic() {
    let s = Scenario::new(&[1, 2]);
    s.flows("priority=1 actions=output:2");
    let mut flows =
        control::flow::parse_flows("priority=2 actions=output:1\npriority=3 actions=output:2")
            .unwrap();
    // Port 0 passes the text parser's syntax but is not a valid output port.
    flows[1].actions = vec![control::flow::Action::Output(control::PortNo(0))];
    let err = s.pipeline().add_flows(flows.clone()).unwrap_err();
    assert!(err.to_string().contains("flow 1"), "{err}");
    assert_eq!(s.pipeline().flow_count(), 1);
    assert!(s.pipeline().replace_flows(flows).is_err());
    assert_eq!(s.pipeline().flow_count(), 1);
}

#[test]
fn dispatch_flows_are_followed_batch_wise_with_openflow_semantics() {
    let mut s = Scenario::new(&[1, 2, 3]);
    // A chain of pure goto_table flows longer than the dispatch stage
    // follows, then a table that routes tcp and sends udp to a missing table.
    let mut text = String::from("table=0,priority=5,in_port=1 actions=goto_table:1\n");
    for t in 1..7 {
        text.push_str(&format!("table={t} actions=goto_table:{}\n", t + 1));
    }
    text.push_str(
        "table=7,priority=10,tcp actions=output:2\n\
         table=7,priority=10,udp actions=goto_table:9\n\
         table=0,priority=1 actions=output:3\n",
    );
    s.flows(&text);
    // One batch mixing dispatched and directly matched packets.
    let t = tcp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    let u = udp(A, B, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    for f in [&t, &u, &t] {
        s.link(1).inject(f);
    }
    s.link(2).inject(&t);
    let o = s.step();
    assert_eq!(o.out[&2].len(), 2);
    assert_eq!(o.out[&3].len(), 1, "port 2's packet matched the catch-all");
    assert_eq!(s.drops(DropReason::NoMatch), 1, "goto to a missing table");
    // Every flow on the way counted its packets.
    let d = s
        .pipeline()
        .dump_flows(&control::flow::parse_filter("").unwrap())
        .unwrap();
    for f in &d {
        let want = match (f.flow.table, f.flow.priority) {
            (0, 1) => 1,
            (7, _) if f.flow.matches.to_string().contains("udp") => 1,
            (7, _) => 2,
            _ => 3,
        };
        assert_eq!(f.stats.n_packets, want, "{}", f.flow);
    }
    assert_eq!(s.sw.pool().available(), s.sw.pool().capacity() as usize);
}
