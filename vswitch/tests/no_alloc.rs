//! The hot path allocates nothing per packet: a counting global allocator
//! watches whole poll-loop turns (rx burst, parse, classify, actions, tx
//! burst) after a warm-up, VXLAN encapsulation and decapsulation included.

#![expect(
    unsafe_code,
    reason = "a counting global allocator must implement GlobalAlloc"
)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use vswitch::pipeline::{Pipeline, TunnelConfig};
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

/// `frame(sport)` VXLAN-encapsulated from 198.18.0.2 to 198.18.0.1, VNI 1.
/// An ACK segment (conntrack picks the connection up as established).
fn ack_frame(sport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 244, 0, 1], [10, 96, 0, 10], 64)
        .tcp(sport, 80, 1, 1000)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 6]).unwrap();
    v
}

fn vxlan(sport: u16) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    payload.extend(frame(sport));
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0xbb, 1], [2, 0, 0, 0, 0xaa, 1])
        .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
        .udp(50000, 4789);
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

const UPLINK: u32 = 64999;

/// What the switch under test replays.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Pod frames on port 1, no tunnel.
    Plain,
    /// Pod frames on port 1, a VXLAN tunnel over an uplink that sinks.
    Encap,
    /// VXLAN frames on the uplink; port 1 sinks.
    Decap,
    /// TCP ACK segments on port 1 through `ct(...)`: committed during the
    /// warm-up, established (and NATed) while measured.
    Ct,
}

fn allocations_per_turn(flows: &str, extra_ports: u32, mode: Mode) -> (u64, u64) {
    let pipe = Arc::new(Pipeline::new(1, Fdb::default()));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    if mode == Mode::Ct {
        let frames = (0..64).map(|i| ack_frame(1000 + i)).collect();
        sw.add_port(1, Box::new(MemPort::replay("gen", frames).0))
            .unwrap();
    } else if mode == Mode::Plain {
        let frames = (0..64).map(|i| frame(1000 + i)).collect();
        sw.add_port(1, Box::new(MemPort::replay("gen", frames).0))
            .unwrap();
    } else {
        let vtep_a = Ipv4Addr::new(198, 18, 0, 1);
        let vtep_b = Ipv4Addr::new(198, 18, 0, 2);
        let mut cfg = TunnelConfig::new(vtep_a, [2, 0, 0, 0, 0xaa, 1], UPLINK);
        cfg.allowed_sources = Some([vtep_b].into());
        pipe.set_tunnel(Some(cfg)).unwrap();
        pipe.set_neighbors(HashMap::from([(vtep_b, [2, 0, 0, 0, 0xbb, 1])]));
        let (pod, uplink) = if mode == Mode::Decap {
            let frames = (0..64).map(|i| vxlan(1000 + i)).collect();
            (MemPort::sink("pod").0, MemPort::replay("uplink", frames).0)
        } else {
            let frames = (0..64).map(|i| frame(1000 + i)).collect();
            (MemPort::replay("gen", frames).0, MemPort::sink("uplink").0)
        };
        sw.add_port(1, Box::new(pod)).unwrap();
        sw.add_port(UPLINK, Box::new(uplink)).unwrap();
    }
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
    if mode == Mode::Ct {
        assert_eq!(pipe.conntrack().len(), 64, "one connection per source port");
        let lost: u64 = pipe.drops().iter().map(|(_, n)| n).sum();
        assert_eq!(lost, 0, "{:?}", pipe.drops());
    }
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
        let (allocs, packets) = allocations_per_turn(flows, extra, Mode::Plain);
        assert_eq!(packets, 64_000, "{flows}");
        assert_eq!(allocs, 0, "{flows}: {allocs} allocations for {packets} packets");
    }
    for (flows, mode) in [
        // Encapsulation: a copy to port 2, then the original into the tunnel.
        ("priority=10,in_port=1,tcp actions=mod_dl_dst:aa:bb:cc:00:00:02,dec_ttl,output:2,set_field:198.18.0.2->tun_dst,set_field:1->tun_id,output:65000", Mode::Encap),
        // Decapsulation, then routing to a pod port.
        ("priority=10,in_port=65000 actions=goto_table:10\ntable=10,priority=10,tcp,tun_src=198.18.0.2 actions=mod_dl_src:02:00:00:00:00:07,dec_ttl,output:2", Mode::Decap),
        // Conntrack with DNAT: the Service path, established connections.
        ("priority=10,tcp actions=ct(zone=1,nat,table=1)\ntable=1,priority=20,ct_state=+new+trk,tcp actions=ct(commit,zone=1,nat(dst=10.244.0.9:8080),exec(set_field:3->ct_mark),table=2)\ntable=1,priority=10,ct_state=+est+trk+dnat actions=resubmit(,2)\ntable=2,priority=10,tcp,nw_dst=10.244.0.9,tp_dst=8080 actions=output:2", Mode::Ct),
    ] {
        let (allocs, packets) = allocations_per_turn(flows, 0, mode);
        assert_eq!(packets, 64_000, "{flows}");
        assert_eq!(allocs, 0, "{flows}: {allocs} allocations for {packets} packets");
    }
}
