use std::collections::HashMap as StdMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

const SEC: u64 = 1_000_000_000;

fn mac(n: u64) -> [u8; 6] {
    // Locally administered unicast: 02:...
    let b = n.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// Internal consistency: per-port counts agree with the entries, and the
/// global count with the shards.
fn check_invariants(fdb: &Fdb) {
    let mut total = 0;
    for lock in fdb.shards.iter() {
        let shard = lock.read();
        let mut counts: StdMap<u32, u32> = StdMap::new();
        for s in shard.table.iter() {
            *counts.entry(s.port).or_default() += 1;
            assert_eq!(fdb.hasher.hash_one(s.key), s.hash);
        }
        let theirs: StdMap<u32, u32> = shard.ports.iter().map(|(p, c)| (*p, *c)).collect();
        assert_eq!(counts, theirs);
        total += shard.table.len();
    }
    assert_eq!(total, fdb.len());
    assert!(fdb.len() <= fdb.max_entries);
}

#[test]
fn is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Fdb>();
}

#[test]
fn learn_lookup_move_refresh() {
    let fdb = Fdb::default();
    let m = mac(1);
    assert_eq!(fdb.lookup(m, 0, 0), None);
    assert_eq!(fdb.learn(m, 0, 5, 0), Learn::New);
    assert_eq!(fdb.learn(m, 0, 5, SEC), Learn::Refreshed);
    assert_eq!(fdb.lookup(m, 0, SEC), Some(5));
    // Another VLAN is another entry.
    assert_eq!(fdb.lookup(m, 10, SEC), None);
    assert_eq!(fdb.learn(m, 10, 6, SEC), Learn::New);
    assert_eq!(fdb.learn(m, 0, 7, 2 * SEC), Learn::Moved { from: 5 });
    assert_eq!(fdb.lookup(m, 0, 2 * SEC), Some(7));
    assert_eq!(fdb.lookup(m, 10, 2 * SEC), Some(6));
    assert_eq!(fdb.len(), 2);
    let s = fdb.stats();
    assert_eq!((s.entries, s.learned, s.moved), (2, 2, 1));
    assert_eq!(
        fdb.entries(3 * SEC),
        vec![
            FdbEntry {
                mac: m,
                vlan: 10,
                port: 6,
                age: Duration::from_secs(2)
            },
            FdbEntry {
                mac: m,
                vlan: 0,
                port: 7,
                age: Duration::from_secs(1)
            },
        ]
    );
    check_invariants(&fdb);
}

#[test]
fn never_learns_multicast_broadcast_or_zero() {
    let fdb = Fdb::default();
    for m in [
        [0xff; 6],
        [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
        [0x33, 0x33, 0, 0, 0, 1],
        [0x03, 0, 0, 0, 0, 0],
        [0; 6],
    ] {
        assert_eq!(fdb.learn(m, 0, 1, 0), Learn::Refused, "{m:x?}");
        assert_eq!(fdb.lookup(m, 0, 0), None);
    }
    assert!(fdb.is_empty());
}

#[test]
fn aging() {
    let fdb = Fdb::default(); // 300 s, refresh granularity 1 s
    let m = mac(7);
    fdb.learn(m, 0, 1, 0);
    assert_eq!(fdb.lookup(m, 0, 300 * SEC - 1), Some(1));
    assert_eq!(
        fdb.lookup(m, 0, 300 * SEC),
        None,
        "aged entries do not match"
    );
    assert_eq!(fdb.entries(300 * SEC), vec![]);
    assert_eq!(fdb.len(), 1, "still stored until expired");
    assert_eq!(fdb.expire(299 * SEC), 0);
    assert_eq!(fdb.expire(300 * SEC), 1);
    assert!(fdb.is_empty());
    assert_eq!(fdb.stats().expired, 1);

    // A refresh extends the life; one within the granularity is not stored.
    fdb.learn(m, 0, 1, 1000 * SEC);
    fdb.learn(m, 0, 1, 1000 * SEC + SEC / 2);
    assert_eq!(fdb.lookup(m, 0, 1300 * SEC - 1), Some(1));
    assert_eq!(fdb.lookup(m, 0, 1300 * SEC), None);
    fdb.learn(m, 0, 1, 1100 * SEC);
    assert_eq!(fdb.lookup(m, 0, 1300 * SEC), Some(1));
    // Learning an aged entry again counts as new, even on another port.
    assert_eq!(fdb.learn(m, 0, 1, 1400 * SEC), Learn::New);
    assert_eq!(fdb.learn(m, 0, 2, 1800 * SEC), Learn::New);
    assert_eq!(fdb.lookup(m, 0, 1800 * SEC), Some(2));
    check_invariants(&fdb);
}

#[test]
fn a_stale_clock_never_moves_last_seen_back() {
    let fdb = Fdb::default();
    let m = mac(3);
    fdb.learn(m, 0, 1, 100 * SEC);
    // Another worker's older timestamp.
    assert_eq!(fdb.learn(m, 0, 1, 10 * SEC), Learn::Refreshed);
    assert_eq!(fdb.lookup(m, 0, 399 * SEC), Some(1));
}

#[test]
fn flush_port_and_flush() {
    let fdb = Fdb::default();
    for n in 0..100 {
        fdb.learn(mac(n), 0, (n % 4) as u32, 0);
    }
    assert_eq!(fdb.flush_port(2), 25);
    assert_eq!(fdb.flush_port(2), 0);
    assert_eq!(fdb.len(), 75);
    assert!(fdb.entries(0).iter().all(|e| e.port != 2));
    assert_eq!(fdb.lookup(mac(2), 0, 0), None);
    assert_eq!(fdb.lookup(mac(3), 0, 0), Some(3));
    check_invariants(&fdb);
    fdb.flush();
    assert!(fdb.is_empty());
    assert_eq!(fdb.lookup(mac(3), 0, 0), None);
    check_invariants(&fdb);
}

#[test]
fn a_flooding_port_cannot_evict_other_ports() {
    let fdb = Fdb::new(FdbConfig {
        max_entries: 1000,
        ..FdbConfig::default()
    });
    // Port B's entries are the oldest: plain LRU would evict them first.
    for n in 0..10 {
        assert_eq!(fdb.learn(mac(n), 0, 2, 0), Learn::New);
    }
    let mut s = 0x1234_5678u64;
    for i in 0..10_000u64 {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let m = mac(1_000_000 + (s >> 20));
        fdb.learn(m, 0, 1, SEC + i);
    }
    for n in 0..10 {
        assert_eq!(fdb.lookup(mac(n), 0, 2 * SEC), Some(2), "B's entry {n}");
    }
    assert_eq!(fdb.len(), 1000);
    let stats = fdb.stats();
    assert!(stats.evicted >= 9000 - 10, "{stats:?}");
    let a = fdb.entries(2 * SEC).iter().filter(|e| e.port == 1).count();
    assert_eq!(a, 990);
    check_invariants(&fdb);
}

#[test]
fn at_the_limit_aged_entries_go_before_evictions() {
    let fdb = Fdb::new(FdbConfig {
        max_entries: 64,
        aging: Duration::from_secs(10),
        ..FdbConfig::default()
    });
    for n in 0..64 {
        fdb.learn(mac(n), 0, 1, 0);
    }
    assert_eq!(fdb.len(), 64);
    // One shard (64 entries): all aged, all dropped to make room.
    assert_eq!(fdb.learn(mac(100), 0, 2, 20 * SEC), Learn::New);
    assert_eq!(fdb.len(), 1);
    let s = fdb.stats();
    assert_eq!((s.expired, s.evicted), (64, 0));
    check_invariants(&fdb);
}

#[test]
fn zero_capacity_refuses() {
    let fdb = Fdb::new(FdbConfig {
        max_entries: 0,
        ..FdbConfig::default()
    });
    assert_eq!(fdb.learn(mac(1), 0, 1, 0), Learn::Refused);
    assert!(fdb.is_empty());
}

#[test]
fn shard_count_follows_size() {
    let shards = |max| {
        Fdb::new(FdbConfig {
            max_entries: max,
            ..FdbConfig::default()
        })
        .shards
        .len()
    };
    assert_eq!(shards(8192), 64);
    assert_eq!(shards(1_000_000), 64);
    assert_eq!(shards(1000), 8);
    assert_eq!(shards(10), 1);
}

#[test]
fn concurrent_learn_and_lookup() {
    let fdb = Arc::new(Fdb::new(FdbConfig {
        max_entries: 2048,
        ..FdbConfig::default()
    }));
    let learner = {
        let fdb = Arc::clone(&fdb);
        std::thread::spawn(move || {
            for round in 0..20u64 {
                for n in 0..3000u64 {
                    let port = 1 + ((n + round) % 3) as u32;
                    fdb.learn(mac(n), (n % 2) as u16, port, round * SEC);
                }
            }
        })
    };
    let reader = {
        let fdb = Arc::clone(&fdb);
        std::thread::spawn(move || {
            let mut hits = 0u64;
            for round in 0..20u64 {
                for n in 0..3000u64 {
                    if let Some(p) = fdb.lookup(mac(n), (n % 2) as u16, round * SEC) {
                        assert!(matches!(p, 1..=3 | 9), "port {p}");
                        hits += 1;
                    }
                    // The reader's port is its own: same MACs on port 9.
                    if n % 7 == 0 {
                        fdb.learn(mac(n), (n % 2) as u16, 9, round * SEC);
                    }
                    fdb.learn(mac(100_000 + n), 0, 9, round * SEC);
                }
                fdb.expire(round * SEC);
            }
            hits
        })
    };
    learner.join().unwrap();
    let hits = reader.join().unwrap();
    assert!(hits > 0);
    assert!(fdb.len() <= 2048);
    check_invariants(&fdb);
}

/// The specification: a plain map, exact (granularity 0), never full.
#[derive(Default)]
struct Oracle {
    map: StdMap<([u8; 6], u16), (u32, u64)>,
    aging: u64,
}

impl Oracle {
    fn live(&self, t: u64, now: u64) -> bool {
        now.saturating_sub(t) < self.aging
    }

    fn learn(&mut self, m: [u8; 6], vlan: u16, port: u32, now: u64) -> Learn {
        if unlearnable(m) {
            return Learn::Refused;
        }
        let prev = self.map.insert((m, vlan), (port, now));
        match prev {
            Some((p, t)) if self.live(t, now) => {
                if p == port {
                    // A stale clock never moves the time back.
                    self.map.insert((m, vlan), (port, now.max(t)));
                    Learn::Refreshed
                } else {
                    Learn::Moved { from: p }
                }
            }
            _ => Learn::New,
        }
    }

    fn lookup(&self, m: [u8; 6], vlan: u16, now: u64) -> Option<u32> {
        let (p, t) = self.map.get(&(m, vlan))?;
        self.live(*t, now).then_some(*p)
    }

    fn expire(&mut self, now: u64) -> usize {
        let before = self.map.len();
        let aging = self.aging;
        self.map.retain(|_, (_, t)| now.saturating_sub(*t) < aging);
        before - self.map.len()
    }

    fn flush_port(&mut self, port: u32) -> usize {
        let before = self.map.len();
        self.map.retain(|_, (p, _)| *p != port);
        before - self.map.len()
    }

    fn entries(&self, now: u64) -> Vec<FdbEntry> {
        let mut v: Vec<FdbEntry> = self
            .map
            .iter()
            .filter(|(_, (_, t))| self.live(*t, now))
            .map(|((mac, vlan), (port, t))| FdbEntry {
                mac: *mac,
                vlan: *vlan,
                port: *port,
                age: Duration::from_nanos(now - t),
            })
            .collect();
        v.sort_by_key(|e| (e.port, e.vlan, e.mac));
        v
    }
}

#[derive(Clone, Debug)]
enum Op {
    Learn { mac: u8, vlan: u16, port: u32 },
    Lookup { mac: u8, vlan: u16 },
    Expire,
    FlushPort(u32),
    Advance(u64),
    Flush,
}

/// Twelve MACs, the last two multicast.
fn test_mac(i: u8) -> [u8; 6] {
    if i >= 10 {
        [0x01, 0, 0x5e, 0, 0, i]
    } else {
        mac(u64::from(i))
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..12u8, 0..2u16, 1..4u32).prop_map(|(mac, vlan, port)| Op::Learn { mac, vlan, port }),
        6 => (0..12u8, 0..2u16).prop_map(|(mac, vlan)| Op::Lookup { mac, vlan }),
        2 => Just(Op::Expire),
        1 => (1..4u32).prop_map(Op::FlushPort),
        6 => (0..40u64).prop_map(Op::Advance),
        // A stale clock: another worker's slightly older `now`.
        1 => Just(Op::Advance(u64::MAX)),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_a_hashmap(ops in proptest::collection::vec(op(), 1..300)) {
        let aging = 100;
        let fdb = Fdb::new(FdbConfig {
            max_entries: 1000,
            aging: Duration::from_nanos(aging),
            refresh_granularity: Duration::ZERO,
        });
        let mut oracle = Oracle { aging, ..Oracle::default() };
        let mut now = 1000u64;
        for op in ops {
            match op {
                Op::Learn { mac, vlan, port } => {
                    let m = test_mac(mac);
                    prop_assert_eq!(fdb.learn(m, vlan, port, now), oracle.learn(m, vlan, port, now));
                }
                Op::Lookup { mac, vlan } => {
                    let m = test_mac(mac);
                    prop_assert_eq!(fdb.lookup(m, vlan, now), oracle.lookup(m, vlan, now));
                }
                Op::Expire => prop_assert_eq!(fdb.expire(now), oracle.expire(now)),
                Op::FlushPort(p) => prop_assert_eq!(fdb.flush_port(p), oracle.flush_port(p)),
                Op::Advance(u64::MAX) => {
                    // Learn and look up with a clock 5 ns behind, then resume.
                    let then = now - 5;
                    for i in 0..12u8 {
                        prop_assert_eq!(
                            fdb.lookup(test_mac(i), 0, then),
                            oracle.lookup(test_mac(i), 0, then)
                        );
                    }
                    prop_assert_eq!(fdb.learn(test_mac(0), 0, 1, then), oracle.learn(test_mac(0), 0, 1, then));
                }
                Op::Advance(dt) => now += dt,
                Op::Flush => {
                    fdb.flush();
                    oracle.map.clear();
                }
            }
            prop_assert_eq!(fdb.len(), oracle.map.len());
        }
        prop_assert_eq!(fdb.entries(now), oracle.entries(now));
        check_invariants(&fdb);
    }

    /// With a small limit the table may forget, but never lies: whatever it
    /// answers is the oracle's answer, and the limit holds.
    #[test]
    fn under_pressure_answers_are_a_subset(
        ops in proptest::collection::vec((0..200u64, 1..5u32, 0..3u64), 1..600),
    ) {
        let aging = 500;
        let fdb = Fdb::new(FdbConfig {
            max_entries: 64,
            aging: Duration::from_nanos(aging),
            refresh_granularity: Duration::ZERO,
        });
        let mut oracle = Oracle { aging, ..Oracle::default() };
        let mut now = 1000u64;
        for (m, port, dt) in ops {
            now += dt;
            let m = mac(m);
            fdb.learn(m, 0, port, now);
            oracle.learn(m, 0, port, now);
            prop_assert!(fdb.len() <= 64);
            prop_assert_eq!(fdb.lookup(m, 0, now), Some(port));
        }
        for m in 0..200 {
            if let Some(p) = fdb.lookup(mac(m), 0, now) {
                prop_assert_eq!(Some(p), oracle.lookup(mac(m), 0, now));
            }
        }
        check_invariants(&fdb);
    }
}
