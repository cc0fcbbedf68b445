//! Shared pieces of the benchmarks: frame generators and ready-made switches.
//!
//! The criterion benches and their tests use the same generators, with
//! fixed seeds, so a figure in `docs/benchmarks.md` can be reproduced
//! exactly.
#![forbid(unsafe_code)]

pub mod pktgen;

use std::sync::Arc;

use etherparse::PacketBuilder;
use vswitch::pipeline::Pipeline;
use vswitch::port::mem::MemPort;
use vswitch::switch::Switch;
use vswitch::tables::Fdb;

/// Source MAC of generated frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of generated frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// A small, fast, seeded PRNG (xorshift64*), so runs are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed (0 is replaced by a constant).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A 64-byte (60 without FCS) Ethernet/IPv4/TCP frame.
pub fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 65535);
    let mut v = Vec::with_capacity(64);
    b.write(&mut v, &[0u8; 6]).expect("frame builds");
    v
}

/// `n` distinct TCP frames (distinct 5-tuples, random addresses in 10/8).
pub fn distinct_frames(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let s = (0x0a00_0000 | (r.next_u64() as u32 & 0x00ff_ffff)).to_be_bytes();
            let d = (0x0a00_0000 | (r.next_u64() as u32 & 0x00ff_ffff)).to_be_bytes();
            tcp_frame(s, d, 1024 + (i % 60_000) as u16, 80 + (i / 60_000) as u16)
        })
        .collect()
}

/// `n` flows (`ovs-ofctl` text, one per line) over 12 distinct masks, all
/// outputting to port 2, plus a priority-0 catch-all to port 2 so every
/// packet is forwarded.
pub fn flow_set(n: usize, seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut out = String::with_capacity(n * 64);
    let ip = |r: &mut Rng| {
        let v = 0x0a00_0000 | (r.next_u64() as u32 & 0x00ff_ffff);
        std::net::Ipv4Addr::from(v)
    };
    for i in 0..n {
        let prio = 100 + r.below(1000);
        let m = match i % 12 {
            0 => format!("ip,nw_dst={}", ip(&mut r)),
            1 => format!("ip,nw_dst={}/24", ip(&mut r)),
            2 => format!("ip,nw_src={}", ip(&mut r)),
            3 => format!("tcp,tp_dst={}", r.below(65535) + 1),
            4 => format!("tcp,nw_dst={},tp_dst={}", ip(&mut r), r.below(65535) + 1),
            5 => format!("udp,tp_src={}", r.below(65535) + 1),
            6 => format!("ip,nw_src={}/16,nw_dst={}/16", ip(&mut r), ip(&mut r)),
            7 => format!("in_port={},ip,nw_dst={}", r.below(100) + 3, ip(&mut r)),
            8 => format!(
                "dl_dst=02:00:{:02x}:{:02x}:00:01",
                r.below(256),
                r.below(256)
            ),
            9 => format!("tcp,nw_src={},tp_src={}", ip(&mut r), r.below(65535) + 1),
            10 => format!(
                "dl_src=02:01:{:02x}:{:02x}:00:01,ip",
                r.below(256),
                r.below(256)
            ),
            _ => format!("udp,nw_dst={}/24,tp_dst={}", ip(&mut r), r.below(65535) + 1),
        };
        out.push_str(&format!("priority={prio},{m} actions=output:2\n"));
    }
    out.push_str("priority=0 actions=output:2\n");
    out
}

/// A two-port switch: port 1 replays `frames` forever, port 2 sinks.
pub fn replay_switch(frames: Vec<Vec<u8>>, flows: &str) -> Switch {
    let pipe = Arc::new(Pipeline::new(1, Fdb::default()));
    let mut sw = Switch::new(Arc::clone(&pipe), 0);
    let (rx, _) = MemPort::replay("gen", frames);
    let (tx, _) = MemPort::sink("sink");
    sw.add_port(1, Box::new(rx)).expect("port 1");
    sw.add_port(2, Box::new(tx)).expect("port 2");
    let flows = control::flow::parse_flows(flows).expect("bench flows parse");
    pipe.add_flows(flows).expect("bench flows install");
    sw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_forwarded() {
        assert_eq!(distinct_frames(10, 7), distinct_frames(10, 7));
        assert_eq!(tcp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2).len(), 60);
        let text = flow_set(1200, 3);
        assert_eq!(text.lines().count(), 1201);
        let mut sw = replay_switch(distinct_frames(64, 1), &text);
        assert_eq!(sw.pipeline().flow_count(), 1201);
        assert_eq!(sw.poll(0), 64);
        let drops: u64 = sw.pipeline().drops().iter().map(|(_, n)| n).sum();
        assert_eq!(drops, 0, "every generated frame is forwarded");
    }
}
