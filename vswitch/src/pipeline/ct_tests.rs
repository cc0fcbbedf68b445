//! Conntrack (`ct` action) scenario tests: a Kubernetes ClusterIP Service
//! (10.96.0.10) DNAT-ed to a backend pod (10.244.1.5) for a client pod
//! (10.244.1.2), as the control plane's flows do it.

use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice,
};

use super::tests::assert_checksums;
use super::DropReason;
use crate::packet::checksum;
use crate::scenario::Scenario;
use crate::tables::conntrack::CtConfig;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const CLIENT: [u8; 4] = [10, 244, 1, 2];
const BACKEND: [u8; 4] = [10, 244, 1, 5];
const VIP: [u8; 4] = [10, 96, 0, 10];

/// Port 1: the client pod; port 2: the backend pod; port 3: where UDP
/// with `ct_mark=7` goes (proves the mark is matchable).
const SERVICE_FLOWS: &str = "\
table=0,priority=100,ip actions=ct(zone=1,nat,table=1)
table=0,priority=0 actions=normal
table=1,priority=200,ct_state=+new+trk,tcp,nw_dst=10.96.0.10,tp_dst=80 actions=ct(commit,zone=1,nat(dst=10.244.1.5:8080),table=2)
table=1,priority=200,ct_state=+new+trk,udp,nw_dst=10.96.0.10,tp_dst=53 actions=ct(commit,zone=1,nat(dst=10.244.1.5:5353),exec(set_field:7->ct_mark),table=2)
table=1,priority=100,ct_state=+est+trk actions=resubmit(,2)
table=1,priority=100,ct_state=+rel+trk actions=resubmit(,2)
table=1,priority=100,ct_state=+new+trk actions=resubmit(,2)
table=2,priority=20,udp,ct_mark=7,nw_dst=10.244.1.5 actions=output:3
table=2,priority=10,ip,nw_dst=10.244.1.5 actions=output:2
table=2,priority=10,ip,nw_dst=10.244.1.2 actions=output:1
";

fn service_with(ct: CtConfig) -> Scenario {
    let s = Scenario::with_conntrack(&[1, 2, 3], ct);
    s.flows(SERVICE_FLOWS);
    s
}

fn service() -> Scenario {
    let s = Scenario::new(&[1, 2, 3]);
    s.flows(SERVICE_FLOWS);
    s
}

/// A TCP segment; `flags` is "S", "SA", "A", "PA" or "F".
#[allow(clippy::too_many_arguments)]
fn seg(
    from_client: bool,
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let (smac, dmac) = if from_client {
        (CLIENT_MAC, BACKEND_MAC)
    } else {
        (BACKEND_MAC, CLIENT_MAC)
    };
    let mut b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, 64)
        .tcp(sport, dport, seq, 64240);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

fn udp(smac: [u8; 6], dmac: [u8; 6], sip: [u8; 4], dip: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, 64)
        .udp(sp, dp);
    let mut v = Vec::new();
    b.write(&mut v, b"query").unwrap();
    v
}

/// (src, dst, sport, dport) of a TCP/UDP frame.
fn tuple(frame: &[u8]) -> ([u8; 4], [u8; 4], u16, u16) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    let h = ip.header();
    let (sp, dp) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => (0, 0),
    };
    (h.source(), h.destination(), sp, dp)
}

/// Opens a connection from `sport` through the VIP: SYN, SYN-ACK, ACK.
fn handshake(s: &mut Scenario, sport: u16) {
    let o = s.send(1, &seg(true, CLIENT, VIP, sport, 80, 1000, None, true, b""));
    let f = o.only(2);
    assert_eq!(tuple(f), (CLIENT, BACKEND, sport, 8080), "SYN is DNATed");
    assert_checksums(f);
    let o = s.send(
        2,
        &seg(
            false,
            BACKEND,
            CLIENT,
            8080,
            sport,
            5000,
            Some(1001),
            true,
            b"",
        ),
    );
    let f = o.only(1);
    assert_eq!(tuple(f), (VIP, CLIENT, 80, sport), "SYN-ACK is un-DNATed");
    assert_checksums(f);
    let o = s.send(
        1,
        &seg(true, CLIENT, VIP, sport, 80, 1001, Some(5001), false, b""),
    );
    assert_eq!(tuple(o.only(2)), (CLIENT, BACKEND, sport, 8080));
}

#[test]
fn tcp_to_a_service_vip_is_dnated_and_replies_come_from_the_vip() {
    let mut s = service();
    handshake(&mut s, 40000);
    // Data both ways follows the mapping.
    let o = s.send(
        1,
        &seg(
            true,
            CLIENT,
            VIP,
            40000,
            80,
            1001,
            Some(5001),
            false,
            b"GET /",
        ),
    );
    let f = o.only(2);
    assert_eq!(tuple(f), (CLIENT, BACKEND, 40000, 8080));
    assert_checksums(f);
    let o = s.send(
        2,
        &seg(
            false,
            BACKEND,
            CLIENT,
            8080,
            40000,
            5001,
            Some(1006),
            false,
            b"200 OK",
        ),
    );
    let f = o.only(1);
    assert_eq!(tuple(f), (VIP, CLIENT, 80, 40000));
    assert_checksums(f);

    // A second connection gets its own entry.
    handshake(&mut s, 40001);
    let ct = s.pipeline().conntrack();
    let entries = ct.dump(Some(1), s.now);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e.dnat && e.zone == 1));
    assert_eq!(entries[0].reply.src, std::net::Ipv4Addr::from(BACKEND));
    assert_eq!(entries[0].reply.src_port, 8080);
    assert_eq!(s.drops(DropReason::CtInvalid), 0);
}

#[test]
fn out_of_window_segment_of_a_nated_connection_is_dropped_ct_invalid() {
    let mut s = service();
    handshake(&mut s, 40000);
    let o = s.send(
        1,
        &seg(
            true,
            CLIENT,
            VIP,
            40000,
            80,
            1001u32.wrapping_add(2_000_000_000),
            Some(5001),
            false,
            b"junk",
        ),
    );
    assert!(o.is_empty(), "{o:?}");
    assert_eq!(s.drops(DropReason::CtInvalid), 1);
    // The connection still works.
    let o = s.send(
        1,
        &seg(true, CLIENT, VIP, 40000, 80, 1001, Some(5001), false, b"ok"),
    );
    assert_eq!(tuple(o.only(2)), (CLIENT, BACKEND, 40000, 8080));
}

#[test]
fn icmp_error_about_a_nated_connection_is_translated() {
    let mut s = service();
    handshake(&mut s, 40000);
    // The backend reports an error about the (DNATed) packet it got.
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(CLIENT, BACKEND, 63)
        .tcp(40000, 8080, 1001, 64240)
        .ack(5001)
        .write(&mut quoted, b"data")
        .unwrap();
    let mut err = Vec::new();
    PacketBuilder::ethernet2(BACKEND_MAC, CLIENT_MAC)
        .ipv4(BACKEND, CLIENT, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut err, &quoted)
        .unwrap();
    let o = s.send(2, &err);
    let f = o.only(1);
    assert_checksums(f);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.header().source(), VIP, "outer source is the VIP");
    assert_eq!(ip.header().destination(), CLIENT);
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("not icmp")
    };
    let whole = icmp.slice();
    assert_eq!(checksum::data(whole), 0xffff, "icmp checksum");
    let inner = icmp.payload();
    let ih = etherparse::Ipv4Header::from_slice(inner).unwrap().0;
    assert_eq!(
        ih.header_checksum,
        ih.calc_header_checksum(),
        "inner ip csum"
    );
    assert_eq!((ih.source, ih.destination), (CLIENT, VIP));
    let ip_in = SlicedPacket::from_ip(inner).unwrap();
    let Some(TransportSlice::Tcp(t)) = &ip_in.transport else {
        panic!("inner not tcp")
    };
    assert_eq!((t.source_port(), t.destination_port()), (40000, 80));
    let want = t.to_header().calc_checksum_ipv4(&ih, t.payload()).unwrap();
    assert_eq!(t.checksum(), want, "inner tcp checksum");
}

#[test]
fn udp_is_dnated_and_ct_mark_from_exec_is_matchable() {
    let mut s = service();
    let o = s.send(1, &udp(CLIENT_MAC, BACKEND_MAC, CLIENT, VIP, 5000, 53));
    // Port 3: the flow matching ct_mark=7, set by exec on commit.
    let f = o.only(3);
    assert_eq!(tuple(f), (CLIENT, BACKEND, 5000, 5353));
    assert_checksums(f);
    let o = s.send(
        2,
        &udp(BACKEND_MAC, CLIENT_MAC, BACKEND, CLIENT, 5353, 5000),
    );
    let f = o.only(1);
    assert_eq!(tuple(f), (VIP, CLIENT, 53, 5000));
    assert_checksums(f);
    let e = s.pipeline().conntrack().dump(Some(1), s.now);
    assert_eq!((e.len(), e[0].mark), (1, 7), "{e:?}");
}

#[test]
fn ct_state_without_table_continues_and_ct_clear_resets() {
    let mut s = Scenario::new(&[1, 2, 3]);
    s.flows(
        "table=0,priority=10,ip actions=ct(zone=5),resubmit(,1)\n\
         table=1,priority=20,ct_state=+new+trk,ct_zone=5,tcp actions=ct_clear,resubmit(,2)\n\
         table=2,priority=20,ct_state=+trk actions=output:2\n\
         table=2,priority=10,ct_state=-trk,ct_zone=0 actions=output:3\n",
    );
    let f = seg(true, CLIENT, BACKEND, 1, 2, 7, None, true, b"");
    assert_eq!(s.send(1, &f).ports(), vec![3]);
    // Nothing was committed.
    assert!(s.pipeline().conntrack().is_empty());
}

#[test]
fn trace_shows_the_conntrack_decision_without_committing() {
    let mut s = service();
    handshake(&mut s, 40000);
    let ct = s.pipeline().conntrack();
    let n = ct.len();
    let t = s
        .pipeline()
        .trace(
            &control::flow::parse_filter(
                "in_port=1,tcp,nw_src=10.244.1.2,nw_dst=10.96.0.10,tp_src=40000,tp_dst=80",
            )
            .unwrap(),
            s.now,
        )
        .unwrap();
    assert_eq!(t.verdict, "output:2", "{t:#?}");
    assert!(
        t.lines
            .iter()
            .any(|l| l.contains("existing connection") && l.contains("+est+trk+dnat")),
        "{t:#?}"
    );
    let t = s
        .pipeline()
        .trace(
            &control::flow::parse_filter(
                "in_port=1,tcp,nw_src=10.244.1.2,nw_dst=10.96.0.10,tp_src=40009,tp_dst=80",
            )
            .unwrap(),
            s.now,
        )
        .unwrap();
    assert_eq!(t.verdict, "output:2", "{t:#?}");
    assert!(
        t.lines.iter().any(|l| l.contains("would be +new")),
        "{t:#?}"
    );
    assert!(t.lines.iter().any(|l| l.contains("dport=8080")), "{t:#?}");
    assert_eq!(s.pipeline().conntrack().len(), n, "a trace commits nothing");
}

#[test]
fn a_refused_commit_leaves_the_packet_new_and_untranslated() {
    let mut s = service_with(CtConfig {
        max_entries: 1,
        ..CtConfig::default()
    });
    // The first connection completes its handshake: assured, never evicted.
    handshake(&mut s, 40000);
    // The table is full: the second SYN stays +new+trk, untranslated, and
    // the flows decide (here table 2 has nothing for the VIP: no-match).
    let o = s.send(1, &seg(true, CLIENT, VIP, 40001, 80, 1, None, true, b""));
    assert!(o.is_empty(), "{o:?}");
    assert_eq!(s.drops(DropReason::NoMatch), 1);
    let st = s.pipeline().conntrack().stats();
    assert_eq!((st.entries, st.refused), (1, 1), "{st:?}");
}

#[test]
fn icmp_echo_through_a_dnat_mapping() {
    let mut s = Scenario::new(&[1, 2]);
    s.flows(
        "table=0,priority=100,icmp actions=ct(zone=2,nat,table=1)\n\
         table=1,priority=20,ct_state=+new+trk,icmp,nw_dst=10.96.0.10 actions=ct(commit,zone=2,nat(dst=10.244.1.5),table=2)\n\
         table=1,priority=10,ct_state=+est+trk actions=resubmit(,2)\n\
         table=2,priority=10,ip,nw_dst=10.244.1.5 actions=output:2\n\
         table=2,priority=10,ip,nw_dst=10.244.1.2 actions=output:1\n",
    );
    let mut req = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, BACKEND_MAC)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut req, b"ping")
        .unwrap();
    let o = s.send(1, &req);
    let f = o.only(2);
    assert_checksums(f);
    assert_eq!(tuple(f).1, BACKEND);
    let mut rep = Vec::new();
    PacketBuilder::ethernet2(BACKEND_MAC, CLIENT_MAC)
        .ipv4(BACKEND, CLIENT, 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut rep, b"ping")
        .unwrap();
    let o = s.send(2, &rep);
    let f = o.only(1);
    assert_checksums(f);
    assert_eq!(tuple(f).0, VIP);
}
