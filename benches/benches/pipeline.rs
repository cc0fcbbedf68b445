//! Criterion benchmarks of the in-memory pipeline, per core.
//!
//! Each iteration is one turn of the poll loop: a 64-packet burst from an
//! in-memory port that replays a fixed frame set (one 60-byte copy per
//! packet, like AF_XDP copy mode), parse, classify, act, and a burst to a
//! sink port. Throughput is reported in packets (elements) per second.
//! Groups are named `stage/case/param` (STYLE.md).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vswitch::pipeline::BATCH;
use vswitch_benches::{distinct_frames, flow_set, replay_switch, DST_MAC};

fn l2(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut sw = replay_switch(distinct_frames(64, 1), "priority=0 actions=normal");
    // The destination is known on port 2 (the sink).
    sw.pipeline().fdb.learn(DST_MAC, 0, 2, 0);
    g.bench_function("known_unicast/64", |b| b.iter(|| sw.poll(1)));
    g.finish();
}

fn classifier(c: &mut Criterion) {
    let mut g = c.benchmark_group("classifier");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(4));
    for n in [10usize, 1_000, 100_000] {
        let flows = flow_set(n, 42);
        // Hit: 64 distinct packets, all in the exact-match cache after the first turn.
        let mut sw = replay_switch(distinct_frames(64, 7), &flows);
        g.bench_with_input(BenchmarkId::new("cached", n), &n, |b, _| {
            b.iter(|| sw.poll(1))
        });
        // Miss: 200k distinct packets cycle through an 8k-entry cache, so
        // nearly every packet goes to the tuple-space classifier.
        let mut sw = replay_switch(distinct_frames(200_000, 9), &flows);
        g.bench_with_input(BenchmarkId::new("miss", n), &n, |b, _| {
            b.iter(|| sw.poll(1))
        });
    }
    g.finish();
}

fn actions(c: &mut Criterion) {
    let mut g = c.benchmark_group("actions");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut sw = replay_switch(
        distinct_frames(64, 3),
        "priority=10,ip actions=mod_dl_dst:02:00:00:00:00:99,dec_ttl,output:2",
    );
    g.bench_function("mod_dl_dst_dec_ttl_output/64", |b| b.iter(|| sw.poll(1)));
    g.finish();
}

criterion_group!(benches, l2, classifier, actions);
criterion_main!(benches);
