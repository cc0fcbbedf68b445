//! Tests of the connection-tracking table: shared helpers and an
//! invariant checker here; TCP scripts, NAT, and table behaviour (limits,
//! timeouts, zones, gc, concurrency) in the sibling files.

mod nat;
mod table;
mod tcp;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::*;

pub(super) const SEC: u64 = 1_000_000_000;

pub(super) const NEW: u16 = ct_state::NEW | ct_state::TRK;
pub(super) const EST: u16 = ct_state::EST | ct_state::TRK;
pub(super) const RPL: u16 = ct_state::EST | ct_state::RPL | ct_state::TRK;
pub(super) const INV: u16 = ct_state::INV | ct_state::TRK;

/// A client pod, a server pod, a Service VIP and its backend.
pub(super) const C: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
pub(super) const S: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 3);
pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub(super) const B: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 7);

/// A table for `max` connections.
pub(super) fn table(max: usize) -> Conntrack {
    Conntrack::new(CtConfig {
        max_entries: max,
        ..CtConfig::default()
    })
}

pub(super) fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> CtPacket {
    CtPacket::udp(src, dst, 100)
}

/// `process` in zone 0 with `commit`, no NAT, no mark; the state bits.
pub(super) fn state(ct: &Conntrack, pkt: &CtPacket, commit: bool, now: u64) -> u16 {
    ct.process(pkt, 0, commit, None, None, now).state
}

/// Checks, at rest, that the counts agree with the index: every
/// connection not retired is filed under each key in the shard its hash
/// picks, and the global, unassured and per-zone counts match them.
pub(super) fn check_invariants(ct: &Conntrack) {
    let mut conns: HashMap<*const Conn, (Arc<Conn>, u8)> = HashMap::new();
    for (i, shard) in ct.shards.iter().enumerate() {
        let table = shard.table.read();
        for s in table.iter() {
            assert_eq!(ct.shard_of(ct.hash(s.key())), i, "entry in the wrong shard");
            if s.conn.expires.load(Relaxed) == 0 {
                continue;
            }
            let e = conns
                .entry(Arc::as_ptr(&s.conn))
                .or_insert_with(|| (Arc::clone(&s.conn), 0));
            e.1 |= 1 << s.dir;
        }
    }
    let mut unassured = vec![0usize; ct.shards.len()];
    let mut zones: HashMap<u16, usize> = HashMap::new();
    for (c, dirs) in conns.values() {
        let want = if c.keys[0] == c.keys[1] { 1 } else { 3 };
        assert_eq!(*dirs, want, "connection not indexed under both keys");
        if !c.assured.load(Relaxed) {
            unassured[c.shard as usize] += 1;
        }
        *zones.entry(c.zone()).or_default() += 1;
    }
    assert_eq!(ct.len(), conns.len(), "global count");
    assert!(ct.len() <= ct.max_entries);
    let total: usize = unassured.iter().sum();
    assert_eq!(ct.unassured.load(Relaxed), total, "unassured count");
    for (i, shard) in ct.shards.iter().enumerate() {
        assert_eq!(
            shard.unassured.load(Relaxed),
            unassured[i],
            "shard {i} unassured"
        );
    }
    for (z, n) in zones {
        assert_eq!(ct.zone_len(z), n, "zone {z} count");
    }
}

#[test]
fn is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Conntrack>();
}

#[test]
fn sizes_match_the_module_doc() {
    use std::mem::size_of;
    println!(
        "Conn {} B, Slot {} B, L4State {} B, ConnMut {} B, Shard (padded) {} B",
        size_of::<Conn>(),
        size_of::<Slot>(),
        size_of::<L4State>(),
        size_of::<ConnMut>(),
        size_of::<CachePadded<Shard>>()
    );
    assert_eq!(size_of::<Slot>(), 16);
    assert!(size_of::<Conn>() <= 152, "update the Memory section");
    assert!(size_of::<CachePadded<Shard>>() <= 128);
}

#[test]
fn shard_count_scales_with_the_limit() {
    assert_eq!(table(16).shards.len(), MIN_SHARDS);
    assert_eq!(table(1 << 20).shards.len(), 2048);
    assert_eq!(table(usize::MAX).shards.len(), MAX_SHARDS);
}

#[test]
fn uncommitted_new_is_not_stored() {
    let ct = table(16);
    let p = udp((C, 1000), (S, 53));
    assert_eq!(state(&ct, &p, false, 0), NEW);
    assert_eq!(state(&ct, &p, false, 0), NEW);
    assert!(ct.is_empty());
    assert_eq!(state(&ct, &p, true, 0), NEW);
    assert_eq!(ct.len(), 1);
    assert_eq!(state(&ct, &p, false, 0), EST);
    check_invariants(&ct);
}

#[test]
fn udp_replied_and_timeouts() {
    let ct = table(16);
    let p = udp((C, 1000), (S, 53));
    let r = udp((S, 53), (C, 1000));
    assert_eq!(state(&ct, &p, true, 0), NEW);
    assert_eq!(state(&ct, &p, false, SEC), EST);
    let e = ct.get(&p.tuple, 0, SEC).unwrap();
    assert_eq!((e.state, e.assured), ("UNREPLIED", false));
    assert_eq!(e.timeout, Duration::from_secs(30));
    assert_eq!(state(&ct, &r, false, 2 * SEC), RPL);
    let e = ct.get(&r.tuple, 0, 2 * SEC).unwrap();
    assert_eq!((e.state, e.assured), ("REPLIED", true));
    assert_eq!(e.timeout, Duration::from_secs(120));
    assert_eq!(e.packets, [2, 1]);
    assert_eq!(e.bytes, [200, 100]);
    // Expires 120 s after its last packet: still there just before.
    assert_eq!(state(&ct, &p, false, 122 * SEC - 1), EST);
    assert!(ct.get(&p.tuple, 0, 242 * SEC - 2).is_some());
    assert!(ct.get(&p.tuple, 0, 242 * SEC - 1).is_none());
    assert_eq!(state(&ct, &p, false, 242 * SEC - 1), NEW);
    assert_eq!(ct.len(), 1, "expired, not yet collected");
    assert_eq!(ct.gc(242 * SEC, usize::MAX), 1);
    assert!(ct.is_empty());
    check_invariants(&ct);
}

#[test]
fn unreplied_udp_expires_after_30s() {
    let ct = table(16);
    let p = udp((C, 1000), (S, 53));
    ct.process(&p, 0, true, None, None, 0);
    assert_eq!(state(&ct, &p, false, 30 * SEC - 1), EST);
    assert_eq!(state(&ct, &p, false, 60 * SEC - 2), EST);
    assert_eq!(state(&ct, &p, false, 90 * SEC - 2), NEW);
}

#[test]
fn icmp_echo_request_reply() {
    let ct = table(16);
    let req = CtPacket::icmp_echo(C, S, 7, false, 84);
    let rep = CtPacket::icmp_echo(S, C, 7, true, 84);
    assert_eq!(state(&ct, &rep, true, 0), INV, "a reply opens nothing");
    assert_eq!(state(&ct, &req, true, 0), NEW);
    assert_eq!(state(&ct, &req, false, 0), EST);
    assert_eq!(state(&ct, &rep, false, 0), RPL);
    let e = ct.get(&req.tuple, 0, 0).unwrap();
    assert_eq!((e.state, e.assured), ("REPLIED", true));
    assert_eq!(e.timeout, Duration::from_secs(30));
    // A request the other way on the same identifier, a reply the
    // original way: invalid.
    let wrong = CtPacket::icmp_echo(S, C, 7, false, 84);
    assert_eq!(state(&ct, &wrong, false, 0), INV);
    let wrong = CtPacket::icmp_echo(C, S, 7, true, 84);
    assert_eq!(state(&ct, &wrong, false, 0), INV);
    // Another identifier is another connection.
    let other = CtPacket::icmp_echo(C, S, 8, false, 84);
    assert_eq!(state(&ct, &other, false, 0), NEW);
    // Informational messages are never tracked.
    let ts = CtPacket {
        tuple: CtTuple::other(C, S, ip_proto::ICMP),
        l4: L4Info::IcmpOther {
            icmp_type: 13,
            code: 0,
        },
        len: 40,
    };
    assert_eq!(state(&ct, &ts, true, 0), INV);
    assert_eq!(state(&ct, &req, false, 30 * SEC), NEW, "30 s timeout");
}

#[test]
fn other_protocol_pseudo_state() {
    let ct = table(16);
    const GRE: u8 = 47;
    let p = CtPacket::other(C, S, GRE, 500);
    let r = CtPacket::other(S, C, GRE, 500);
    assert_eq!(state(&ct, &p, true, 0), NEW);
    assert_eq!(state(&ct, &r, false, 0), RPL);
    let e = ct.get(&p.tuple, 0, 0).unwrap();
    assert_eq!((e.state, e.assured), ("REPLIED", true));
    assert_eq!(e.timeout, Duration::from_secs(600));
    assert_eq!(
        e.to_string(),
        "proto=47,orig=(src=10.244.1.2,dst=10.244.1.3),reply=(src=10.244.1.3,dst=10.244.1.2)"
    );
}

#[test]
fn inconsistent_packets_are_invalid() {
    let ct = table(16);
    let mut p = udp((C, 1), (S, 2));
    p.tuple.proto = ip_proto::TCP;
    assert_eq!(state(&ct, &p, true, 0), INV);
    let p = CtPacket::other(C, S, ip_proto::UDP, 10);
    assert_eq!(state(&ct, &p, true, 0), INV);
    assert!(ct.is_empty());
    assert_eq!(ct.stats().invalid, 2);
}

#[test]
fn mark_is_set_on_commit() {
    let ct = table(16);
    let p = udp((C, 1000), (S, 53));
    let v = ct.process(&p, 3, true, None, Some(42), 0);
    assert_eq!((v.state, v.mark, v.zone), (NEW, 42, 3));
    // Without commit the mark is reported, not changed.
    let v = ct.process(&p, 3, false, None, Some(7), 0);
    assert_eq!((v.state, v.mark), (EST, 42));
    let v = ct.process(&p, 3, true, None, Some(7), 0);
    assert_eq!(v.mark, 7);
    let r = udp((S, 53), (C, 1000));
    assert_eq!(ct.process(&r, 3, false, None, None, 0).mark, 7);
}

#[test]
fn dump_and_display() {
    let ct = table(16);
    let dnat = NatSpec::Dst {
        ip: B,
        port: Some(8080),
    };
    let p = CtPacket::tcp(
        (C, 40000),
        (VIP, 80),
        TcpSeg {
            flags: crate::packet::tcp::flags::SYN,
            seq: 1,
            window: 1000,
            ..TcpSeg::default()
        },
        60,
    );
    ct.process(&p, 5, true, Some(&dnat), Some(9), 0);
    ct.process(&udp((C, 1), (S, 2)), 0, true, None, None, 0);
    let all = ct.dump(None, SEC);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].zone, 0);
    let e = &all[1];
    assert_eq!(e.orig, p.tuple);
    assert_eq!(e.reply, CtTuple::tcp(B, 8080, C, 40000));
    assert!(e.dnat && !e.snat);
    assert_eq!((e.state, e.mark, e.zone), ("SYN_SENT", 9, 5));
    assert_eq!(e.timeout, Duration::from_secs(119));
    assert_eq!(
        e.to_string(),
        "tcp,orig=(src=10.244.1.2,dst=10.96.0.10,sport=40000,dport=80),\
         reply=(src=10.244.2.7,dst=10.244.1.2,sport=8080,dport=40000),\
         zone=5,mark=9,protoinfo=(state=SYN_SENT)"
    );
    assert_eq!(ct.dump(Some(5), SEC).len(), 1);
    assert_eq!(ct.dump(Some(6), SEC).len(), 0);
    assert_eq!(
        ct.dump(None, 200 * SEC).len(),
        0,
        "expired ones are not shown"
    );
}
