//! The hot path allocates nothing per packet: a counting global allocator
//! watches whole poll-loop turns (rx burst, parse, classify, actions, tx
//! burst) after a warm-up.

#![expect(
    unsafe_code,
    reason = "a counting global allocator must implement GlobalAlloc"
)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use vswitch::pipeline::Pipeline;
use vswitch::port::mem::MemPort;
use vswitch::switch::Switch;
use vswitch::tables::Fdb;

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frame(sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 244, 0, 1], [10, 244, 0, 2], 64)
        .tcp(sport, 80, 1, 1000);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 6]).unwrap();
    v
}

fn allocations_per_turn(flows: &str, extra_ports: u32) -> (u64, u64) {
    let pipe = Arc::new(Pipeline::new(1, Fdb::default()));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    let frames = (0..64).map(|i| frame(1000 + i)).collect();
    sw.add_port(1, Box::new(MemPort::replay("gen", frames).0))
        .unwrap();
    sw.add_port(2, Box::new(MemPort::sink("sink").0)).unwrap();
    for p in 0..extra_ports {
        sw.add_port(3 + p, Box::new(MemPort::sink("sink").0))
            .unwrap();
    }
    pipe.add_flows(control::flow::parse_flows(flows).unwrap())
        .unwrap();
    pipe.fdb.learn([2, 0, 0, 0, 0, 2], 0, 2, 0);
    for _ in 0..100 {
        sw.poll(1);
    }
    ALLOCS.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let mut packets = 0;
    for _ in 0..1000 {
        packets += sw.poll(1) as u64;
    }
    ARMED.store(false, Ordering::Relaxed);
    (ALLOCS.load(Ordering::Relaxed), packets)
}

#[test]
fn hot_path_does_not_allocate() {
    // One test function: the allocator counter is process-global.
    for (flows, extra) in [
        ("priority=0 actions=normal", 0),
        ("priority=10,tcp actions=mod_dl_dst:02:00:00:00:00:09,mod_nw_dst:10.244.0.9,mod_tp_dst:8080,dec_ttl,output:2", 0),
        ("priority=10,tcp actions=output:2,mod_vlan_vid:7,output:3,pop_vlan,flood", 2),
    ] {
        let (allocs, packets) = allocations_per_turn(flows, extra);
        assert_eq!(packets, 64_000, "{flows}");
        assert_eq!(allocs, 0, "{flows}: {allocs} allocations for {packets} packets");
    }
}
