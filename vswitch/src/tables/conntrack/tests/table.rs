//! Table behaviour: limits and early drop, zones, timeouts and gc, flush,
//! and concurrent commits.

use std::sync::atomic::AtomicUsize;
use std::thread;

use super::*;
use crate::packet::tcp::flags::SYN;

/// A UDP flow from client port `n`.
fn flow(n: u16) -> CtPacket {
    udp((C, n), (S, 53))
}

fn reply(n: u16) -> CtPacket {
    udp((S, 53), (C, n))
}

/// Commits flow `n` in `zone`, and answers it (assured) if `assure`.
fn open(ct: &Conntrack, n: u16, zone: u16, assure: bool, now: u64) -> CtVerdict {
    let v = ct.process(&flow(n), zone, true, None, None, now);
    if assure {
        assert!(ct.process(&reply(n), zone, false, None, None, now).is(RPL));
    }
    v
}

fn known(ct: &Conntrack, n: u16, zone: u16, now: u64) -> bool {
    ct.get(&flow(n).tuple, zone, now).is_some()
}

#[test]
fn full_table_refuses_new_connections() {
    let ct = table(4);
    for n in 0..4 {
        assert_eq!(open(&ct, n, 0, true, 0).state, NEW);
    }
    let v = open(&ct, 9, 0, false, 0);
    assert_eq!((v.state, v.rewrite), (NEW, None));
    assert!(!known(&ct, 9, 0, 0), "refused, not stored");
    let s = ct.stats();
    assert_eq!(
        (s.entries, s.limit, s.committed, s.refused, s.early_dropped),
        (4, 4, 4, 1, 0)
    );
    // Established connections are untouched and keep working.
    for n in 0..4 {
        assert_eq!(state(&ct, &flow(n), false, SEC), EST);
    }
    check_invariants(&ct);
}

#[test]
fn full_table_early_drops_an_unassured_connection_first() {
    let ct = table(4);
    for n in 0..3 {
        open(&ct, n, 0, true, 0);
    }
    open(&ct, 3, 0, false, 0);
    assert_eq!(open(&ct, 4, 0, false, 0).state, NEW);
    assert!(known(&ct, 4, 0, 0), "committed");
    assert!(!known(&ct, 3, 0, 0), "the unassured one made room");
    for n in 0..3 {
        assert!(known(&ct, n, 0, 0), "assured {n} untouched");
    }
    let s = ct.stats();
    assert_eq!(
        (s.entries, s.committed, s.early_dropped, s.refused),
        (4, 5, 1, 0)
    );
    check_invariants(&ct);
    // Flow 4 is unassured too: the next newcomer takes its place.
    open(&ct, 5, 0, false, 0);
    assert!(!known(&ct, 4, 0, 0) && known(&ct, 5, 0, 0));
    // Once it is answered, nothing is left to drop.
    assert!(ct.process(&reply(5), 0, false, None, None, 0).is(RPL));
    open(&ct, 6, 0, false, 0);
    assert!(!known(&ct, 6, 0, 0));
    assert_eq!(ct.stats().refused, 1);
    check_invariants(&ct);
}

#[test]
fn half_open_tcp_is_dropped_before_established_udp() {
    let ct = table(2);
    open(&ct, 1, 0, true, 0);
    let syn = CtPacket::tcp(
        (C, 40000),
        (S, 80),
        TcpSeg {
            flags: SYN,
            seq: 1,
            window: 100,
            ..TcpSeg::default()
        },
        60,
    );
    assert_eq!(state(&ct, &syn, true, 0), NEW);
    open(&ct, 2, 0, false, 0);
    assert!(known(&ct, 1, 0, 0) && known(&ct, 2, 0, 0));
    assert!(ct.get(&syn.tuple, 0, 0).is_none());
    assert_eq!(ct.stats().early_dropped, 1);
}

#[test]
fn expired_connections_make_room_when_full() {
    let ct = table(2);
    open(&ct, 1, 0, true, 0);
    open(&ct, 2, 0, true, 0);
    // Both assured, both expired at 200 s, none collected yet: they still
    // count, but a new connection on an expired one's tuple takes its place.
    assert_eq!(ct.len(), 2);
    assert_eq!(open(&ct, 1, 0, true, 200 * SEC).state, NEW);
    assert!(known(&ct, 1, 0, 200 * SEC));
    assert_eq!(ct.len(), 2);
    assert_eq!(ct.stats().expired, 1);
    // Another tuple waits for gc (nothing unassured to drop).
    open(&ct, 3, 0, false, 200 * SEC);
    assert!(!known(&ct, 3, 0, 200 * SEC));
    assert_eq!(ct.stats().refused, 1);
    assert_eq!(ct.gc(200 * SEC, usize::MAX), 1);
    open(&ct, 3, 0, false, 200 * SEC);
    assert!(known(&ct, 3, 0, 200 * SEC));
    check_invariants(&ct);
}

#[test]
fn zone_limits() {
    let ct = table(100);
    ct.set_zone_limit(1, Some(2));
    assert_eq!(ct.zone_limit(1), Some(2));
    assert_eq!(ct.zone_limit(2), None);
    open(&ct, 1, 1, true, 0);
    open(&ct, 2, 1, true, 0);
    open(&ct, 3, 1, false, 0);
    assert!(!known(&ct, 3, 1, 0), "zone 1 is full");
    for n in 0..10 {
        open(&ct, n, 2, false, 0);
    }
    assert_eq!((ct.zone_len(1), ct.zone_len(2)), (2, 10));
    assert_eq!(ct.stats().refused, 1);
    // Zone 1 with an unassured entry: early drop picks it, not zone 2's.
    ct.set_zone_limit(1, Some(3));
    open(&ct, 3, 1, false, 0);
    open(&ct, 4, 1, false, 0);
    assert!(known(&ct, 4, 1, 0) && !known(&ct, 3, 1, 0));
    assert_eq!(ct.zone_len(2), 10);
    assert_eq!(ct.stats().early_dropped, 1);
    // Lifting the limit.
    ct.set_zone_limit(1, None);
    open(&ct, 5, 1, false, 0);
    assert_eq!(ct.zone_len(1), 4);
    check_invariants(&ct);
}

#[test]
fn zones_isolate_identical_tuples() {
    let ct = table(16);
    let v1 = ct.process(&flow(1), 1, true, None, Some(11), 0);
    let v2 = ct.process(&flow(1), 2, true, None, Some(22), 0);
    assert_eq!((v1.state, v1.zone, v2.state, v2.zone), (NEW, 1, NEW, 2));
    assert_eq!(ct.len(), 2);
    let v = ct.process(&reply(1), 2, false, None, None, 0);
    assert_eq!((v.state, v.mark, v.zone), (RPL, 22, 2));
    assert_eq!(ct.get(&flow(1).tuple, 1, 0).unwrap().state, "UNREPLIED");
    assert_eq!(ct.get(&flow(1).tuple, 2, 0).unwrap().state, "REPLIED");
    assert_eq!(state(&ct, &reply(1), false, 0), NEW, "zone 0 knows nothing");
    assert_eq!(ct.flush(Some(1)), 1);
    assert!(ct.get(&flow(1).tuple, 1, 0).is_none());
    assert_eq!(ct.dump(None, 0).len(), 1);
    check_invariants(&ct);
    assert_eq!(ct.flush(None), 1);
    assert!(ct.is_empty());
    check_invariants(&ct);
}

#[test]
fn custom_timeouts() {
    let ct = Conntrack::new(CtConfig {
        max_entries: 16,
        timeouts: CtTimeouts {
            udp_first: Duration::from_secs(5),
            ..CtTimeouts::default()
        },
    });
    assert_eq!(ct.config().timeouts.udp_first, Duration::from_secs(5));
    open(&ct, 1, 0, false, 0);
    assert_eq!(state(&ct, &flow(1), false, 5 * SEC - 1), EST);
    assert_eq!(state(&ct, &flow(1), false, 10 * SEC - 1), NEW);
}

#[test]
fn gc_removes_exactly_the_expired() {
    let ct = table(1000);
    for n in 0..100 {
        // Even flows are answered (120 s), odd ones not (30 s).
        open(&ct, n, 0, n % 2 == 0, 0);
    }
    assert_eq!(ct.gc(29 * SEC, usize::MAX), 0);
    assert_eq!(ct.gc(60 * SEC, usize::MAX), 50);
    assert_eq!(ct.len(), 50);
    assert_eq!(ct.stats().expired, 50);
    for n in 0..100 {
        assert_eq!(known(&ct, n, 0, 60 * SEC), n % 2 == 0, "flow {n}");
    }
    assert_eq!(ct.gc(60 * SEC, usize::MAX), 0);
    check_invariants(&ct);
    // Every index entry of the expired ones is gone too.
    let entries: usize = ct.shards.iter().map(|s| s.table.read().len()).sum();
    assert_eq!(entries, 100);
}

#[test]
fn gc_respects_its_budget() {
    let ct = table(1000);
    for n in 0..200 {
        open(&ct, n, 0, false, 0);
    }
    // 400 index entries over 64 shards: a budget of 1 sweeps one shard
    // per call, so a full round takes 64 calls.
    let now = 31 * SEC;
    let mut calls = Vec::new();
    for _ in 0..MIN_SHARDS {
        calls.push(ct.gc(now, 1));
    }
    assert_eq!(calls.iter().sum::<usize>(), 200);
    assert!(calls.iter().all(|&n| n < 30), "bounded per call: {calls:?}");
    assert!(ct.is_empty());
    check_invariants(&ct);
    let entries: usize = ct.shards.iter().map(|s| s.table.read().len()).sum();
    assert_eq!(entries, 0);
    // A budget of 0 does nothing.
    open(&ct, 1, 0, false, 0);
    assert_eq!(ct.gc(now, 0), 0);
    assert_eq!(ct.len(), 1);
}

#[test]
fn gc_leaves_refreshed_connections() {
    let ct = table(16);
    open(&ct, 1, 0, false, 0);
    open(&ct, 2, 0, false, 0);
    assert_eq!(state(&ct, &flow(1), false, 20 * SEC), EST);
    assert_eq!(ct.gc(40 * SEC, usize::MAX), 1);
    assert!(known(&ct, 1, 0, 40 * SEC));
}

/// Runs `a` and `b` on two threads released together, `rounds` times. The
/// start line spins (a parking barrier wakes threads microseconds apart,
/// longer than a commit takes).
fn race<A, B>(rounds: u16, a: A, b: B) -> Vec<(CtVerdict, CtVerdict)>
where
    A: Fn(u16) -> CtVerdict + Sync,
    B: Fn(u16) -> CtVerdict + Sync,
{
    let arrived = AtomicUsize::new(0);
    let run = |f: &(dyn Fn(u16) -> CtVerdict + Sync)| {
        (0..rounds)
            .map(|i| {
                arrived.fetch_add(1, Relaxed);
                let mut spins = 0u32;
                while arrived.load(Relaxed) < 2 * (usize::from(i) + 1) {
                    spins += 1;
                    if spins & 1023 == 0 {
                        // The other thread may be descheduled (2 cores).
                        thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
                f(i)
            })
            .collect::<Vec<_>>()
    };
    thread::scope(|s| {
        let ta = s.spawn(|| run(&a));
        let tb = s.spawn(|| run(&b));
        let va = ta.join().unwrap();
        let vb = tb.join().unwrap();
        va.into_iter().zip(vb).collect()
    })
}

const ROUNDS_RACED: u16 = 3000;

/// How many commits lost the race under the shard locks.
fn lost_races(ct: &Conntrack) -> u64 {
    ct.shards
        .iter()
        .map(|s| s.counters.lost_races.load(Relaxed))
        .sum()
}

#[test]
fn losing_the_commit_race_gives_the_reservation_back() {
    // What the second of two racing workers sees under the locks.
    let ct = table(16);
    let p = udp((C, 1), (VIP, 53));
    let dnat = NatSpec::Dst { ip: B, port: None };
    let key = CtKey::new(&p.tuple, 0);
    let hash = ct.hash(&key);
    let l4 = L4State::new(&p).unwrap();
    let won = ct.commit(key, hash, &p, l4, Some(&dnat), None, 0).unwrap();
    assert_eq!(won.state, NEW | ct_state::DNAT);
    assert_eq!(ct.commit(key, hash, &p, l4, Some(&dnat), None, 0), None);
    assert_eq!(lost_races(&ct), 1);
    assert_eq!((ct.len(), ct.zone_len(0), ct.stats().committed), (1, 1, 1));
    check_invariants(&ct);
    // And for the reply direction committed as new.
    let r = udp((B, 53), (C, 1));
    let rkey = CtKey::new(&r.tuple, 0);
    assert_eq!(ct.commit(rkey, ct.hash(&rkey), &r, l4, None, None, 0), None);
    assert_eq!(lost_races(&ct), 2);
    check_invariants(&ct);
    // Its retry finds the connection as a reply.
    let v = ct.process(&r, 0, true, Some(&NatSpec::Reverse), None, 0);
    assert_eq!(v.state, RPL | ct_state::DNAT);
}

#[test]
fn concurrent_commits_of_one_connection_make_one_entry() {
    let ct = table(1 << 16);
    let dnat = NatSpec::Dst {
        ip: B,
        port: Some(5353),
    };
    let go = |i: u16| {
        let p = udp((C, 1024 + i), (VIP, 53));
        ct.process(&p, 0, true, Some(&dnat), None, 0)
    };
    let out = race(ROUNDS_RACED, go, go);
    assert_eq!(ct.len(), usize::from(ROUNDS_RACED));
    for (i, (a, b)) in out.iter().enumerate() {
        let new = [a, b].iter().filter(|v| v.is(ct_state::NEW)).count();
        assert_eq!(new, 1, "round {i}: exactly one commit wins ({a:?}, {b:?})");
        assert!(a.is(ct_state::DNAT) && b.is(ct_state::DNAT));
        assert_eq!(a.rewrite, b.rewrite, "one NAT mapping");
    }
    for e in ct.dump(None, 0) {
        assert_eq!(e.packets, [2, 0], "both packets counted on the one entry");
    }
    assert_eq!(ct.stats().committed, u64::from(ROUNDS_RACED));
    println!(
        "{} of {ROUNDS_RACED} rounds raced under the locks",
        lost_races(&ct)
    );
    check_invariants(&ct);
}

#[test]
fn concurrent_commits_of_both_directions_make_one_entry() {
    let ct = table(1 << 16);
    let out = race(
        ROUNDS_RACED,
        |i| ct.process(&udp((C, 1024 + i), (S, 53)), 0, true, None, None, 0),
        |i| ct.process(&udp((S, 53), (C, 1024 + i)), 0, true, None, None, 0),
    );
    assert_eq!(ct.len(), usize::from(ROUNDS_RACED));
    for (i, (a, b)) in out.iter().enumerate() {
        let new = [a, b].iter().filter(|v| v.is(ct_state::NEW)).count();
        assert_eq!(new, 1, "round {i}: ({a:?}, {b:?})");
        // The loser is the winner's reply.
        let loser = if a.is(ct_state::NEW) { b } else { a };
        assert!(loser.is(ct_state::EST | ct_state::RPL), "round {i}");
    }
    for e in ct.dump(None, 0) {
        assert_eq!(e.packets, [1, 1]);
        assert!(e.assured);
    }
    println!(
        "{} of {ROUNDS_RACED} rounds raced under the locks",
        lost_races(&ct)
    );
    check_invariants(&ct);
}

#[test]
fn concurrent_traffic_gc_and_flush_keep_counts_consistent() {
    let ct = table(512);
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        for w in 0..2u16 {
            let ct = &ct;
            let stop = &stop;
            s.spawn(move || {
                let mut now = 0;
                let mut i = 0u16;
                while !stop.load(Relaxed) {
                    now += SEC / 10;
                    i = i.wrapping_add(1);
                    let n = i % 1500;
                    ct.process(&flow(n), w % 2, true, None, None, now);
                    // Every fourth flow is answered.
                    if n & 3 == 0 {
                        ct.process(&reply(n), w % 2, false, None, None, now);
                    }
                }
            });
        }
        for round in 0..200u64 {
            ct.gc(round * SEC, 64);
            if round % 50 == 49 {
                ct.flush(Some(1));
            }
            thread::yield_now();
        }
        stop.store(true, Relaxed);
    });
    check_invariants(&ct);
    assert!(ct.len() <= 512);
}
