//! Criterion benchmarks of the connection-tracking table, per core (one
//! thread), fixed seeds. Throughput is in packets (elements) per second;
//! each iteration is a burst of 64 calls to `Conntrack::process`, as the
//! pipeline makes per batch.
//!
//! - `ct/established/N`: the deployed table (`ct_max` 1M) holding N
//!   established, DNAT-ed TCP connections (a Service's: client → VIP:80 to
//!   backend:8080); pure ACKs alternately from client and backend, with
//!   `nat`, so each call is a lookup, the TCP window checks and state
//!   update, the expiry refresh and the forward or reverse rewrite. The
//!   packets cycle over 64 connections picked at random among the N (a
//!   worker's batch-sized working set, cache resident at any N), so the
//!   figure shows what the table's size itself costs: shards, probe
//!   lengths. The contract: flat, at most 10 % slower at 1M than 1k.
//! - `ct/established_1k_flows/N`: the same over 1000 connections: at 1M
//!   they are scattered over ~250 MB, more pages than the TLB maps, so
//!   this one grows with N through page walks and cache misses.
//! - `ct/established_uniform/N`: the same over all N in random order: at
//!   1M every call misses the caches (index entry, connection), a measure
//!   of DRAM latency more than of the table.
//! - `ct/new_dnat/64`: connection setup: a SYN of a new tuple, lookup miss,
//!   commit with `nat(dst=backend:8080)` (the `Arc` allocation, both index
//!   entries under two shard locks). The table is flushed, untimed, each
//!   time it passes 500k connections. Target: 1.5M connections/s per core.
//!
//! Before the groups, under `cargo bench`, `ct_memory` prints the
//! process's RSS growth for 1M committed connections (not a timed
//! assertion).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use vswitch::packet::tcp::flags::{ACK, SYN};
use vswitch::tables::{Conntrack, CtConfig, CtPacket, NatSpec, TcpSeg};
use vswitch_benches::Rng;

/// Calls per iteration (the pipeline's batch).
const BURST: usize = 64;
/// Connections the `established` packets cycle over.
const HOT: usize = 64;
/// Connections the `established_1k_flows` packets cycle over.
const WARM: usize = 1000;
const CISN: u32 = 1000;
const SISN: u32 = 5000;
const NOW: u64 = 1_000_000_000;
const VIP: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 96, 0, 10), 80);
const BACKEND: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 244, 2, 7), 8080);

/// Client `i`'s address and port: 2^14 ports per address in 10.0.0.0/8.
fn client(i: u64) -> (Ipv4Addr, u16) {
    let ip = 0x0a00_0000 | ((i >> 14) as u32 & 0x00ff_ffff);
    (Ipv4Addr::from(ip), 1024 + (i & 0x3fff) as u16)
}

fn seg(flags: u16, seq: u32, ack: u32) -> TcpSeg {
    TcpSeg {
        flags,
        seq,
        ack,
        window: 65535,
        wscale: None,
        payload_len: 0,
    }
}

/// Client `i`'s SYN to the VIP.
fn syn(i: u64) -> CtPacket {
    CtPacket::tcp(client(i), VIP, seg(SYN, CISN, 0), 60)
}

/// A pure ACK of established connection `i`, from the client or the
/// backend.
fn ack(i: u64, reply: bool) -> CtPacket {
    if reply {
        CtPacket::tcp(BACKEND, client(i), seg(ACK, SISN + 1, CISN + 1), 40)
    } else {
        CtPacket::tcp(client(i), VIP, seg(ACK, CISN + 1, SISN + 1), 40)
    }
}

fn dnat() -> NatSpec {
    NatSpec::Dst {
        ip: BACKEND.0,
        port: Some(BACKEND.1),
    }
}

/// The deployed table (`ct_max` 1M, DESIGN.md) holding `n` established,
/// DNAT-ed connections (full handshakes).
fn established_table(n: u64) -> Conntrack {
    let ct = Conntrack::new(CtConfig::default());
    let nat = dnat();
    let est = vswitch::key::ct_state::EST;
    for i in 0..n {
        ct.process(&syn(i), 0, true, Some(&nat), None, 0);
        let sa = CtPacket::tcp(BACKEND, client(i), seg(SYN | ACK, SISN, CISN + 1), 60);
        ct.process(&sa, 0, false, Some(&NatSpec::Reverse), None, 0);
        let v = ct.process(&ack(i, false), 0, false, Some(&NatSpec::Reverse), None, 0);
        assert!(v.is(est), "connection {i} established");
    }
    assert_eq!(ct.len() as u64, n);
    ct
}

/// The numbers `0..n` in a random order (Fisher-Yates, seeded).
fn permutation(n: u64, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut rng = Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// Full sizes under `cargo bench`; the smallest under `cargo test --benches`.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs bursts cycling over `order` (two packets per connection, one each
/// way) until criterion has its samples.
fn cycle(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: u64,
    ct: &Conntrack,
    order: &[u32],
) {
    let nat = NatSpec::Reverse;
    let est = vswitch::key::ct_state::EST;
    // Sanity: the packets are the connections' and valid.
    assert!(ct
        .process(
            &ack(u64::from(order[0]), true),
            0,
            false,
            Some(&nat),
            None,
            NOW
        )
        .is(est));
    let mut k = 0;
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            for _ in 0..BURST / 2 {
                let i = u64::from(order[k]);
                k += 1;
                if k == order.len() {
                    k = 0;
                }
                for reply in [false, true] {
                    black_box(ct.process(&ack(i, reply), 0, false, Some(&nat), None, NOW));
                }
            }
        })
    });
}

fn established(c: &mut Criterion) {
    let sizes: &[u64] = if bench_mode() {
        &[1_000, 100_000, 1_000_000]
    } else {
        &[1_000]
    };
    let mut g = c.benchmark_group("ct");
    g.throughput(Throughput::Elements(BURST as u64));
    for &n in sizes {
        let ct = established_table(n);
        let order = permutation(n, 42);
        cycle(&mut g, "established", n, &ct, &order[..HOT]);
        cycle(&mut g, "established_1k_flows", n, &ct, &order[..WARM]);
        cycle(&mut g, "established_uniform", n, &ct, &order);
    }
    g.finish();
}

fn new_connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("ct");
    g.throughput(Throughput::Elements(BURST as u64));
    let ct = Conntrack::new(CtConfig::default());
    let nat = dnat();
    let new = vswitch::key::ct_state::NEW;
    let mut next = 0u64;
    g.bench_function(BenchmarkId::new("new_dnat", BURST), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if ct.len() > 500_000 {
                    ct.flush(None);
                }
                let start = Instant::now();
                for _ in 0..BURST {
                    black_box(ct.process(&syn(next), 0, true, Some(&nat), None, NOW));
                    next += 1;
                }
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
    let s = ct.stats();
    assert!(ct
        .process(&syn(next), 0, true, Some(&nat), None, NOW)
        .is(new));
    assert_eq!(s.refused, 0, "no commit refused");
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Prints the memory 1M committed (DNAT-ed, SYN_SENT) connections take.
fn ct_memory() {
    const N: u64 = 1_000_000;
    let (Some(start), true) = (rss_kib(), bench_mode()) else {
        return;
    };
    let ct = Conntrack::new(CtConfig::default());
    let empty = rss_kib().unwrap_or(start);
    let nat = dnat();
    for i in 0..N {
        ct.process(&syn(i), 0, true, Some(&nat), None, 0);
    }
    assert_eq!(ct.len() as u64, N);
    let full = rss_kib().unwrap_or(empty);
    let grown = full.saturating_sub(empty) * 1024;
    println!(
        "ct_memory: empty table (ct_max {}): {} KiB; {N} connections: +{} MiB RSS, {} bytes/connection",
        ct.config().max_entries,
        empty.saturating_sub(start),
        grown >> 20,
        grown / N
    );
}

criterion_group!(benches, established, new_connections);

fn main() {
    ct_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
