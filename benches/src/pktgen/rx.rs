//! The sink loop: receive bursts, read each probe into the [`Tracker`].
//!
//! Frames are received into a private [`PacketPool`], parsed in place and
//! freed at once; one timestamp is taken per burst and stands for every
//! frame in it. When the port has nothing the loop spins a little, then
//! kicks the port (AF_XDP: refill the fill ring) and blocks in `poll()`
//! on the port's fd for up to 10 ms: a sink that spins forever on the core
//! where the kernel does the veth receive work starves that work
//! (notes/afxdp-veth.md §4), and the timeout keeps stop requests, the
//! deadline and progress lines on time.

use std::time::Duration;

use vswitch::pipeline::Batch;
use vswitch::port::{PacketPool, Port};

use super::frame::parse_probe;
use super::report::rx_progress_line;
use super::tracker::Tracker;
use super::tx::{CHECK_NS, TICK_NS};
use super::{mono_ns, Hooks};

/// Empty polls before the loop blocks.
const IDLE_SPINS: u32 = 64;
/// Longest block in `poll()` (ms).
const IDLE_POLL_MS: i32 = 10;

/// When the sink stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxConfig {
    /// Stop after this many probes (frames after them in the same burst
    /// are ignored, so `received` is exactly this).
    pub count: Option<u64>,
    /// Stop after this long (ns).
    pub duration_ns: Option<u64>,
    /// Probes the sender sent, when known: loss then includes the tail.
    pub expect: Option<u64>,
}

/// Receives from `port` until `cfg` or `hooks` says stop. Returns the
/// tracker and the run time (ns).
pub fn sink<P: Port + ?Sized>(
    port: &mut P,
    cfg: &RxConfig,
    hooks: &mut dyn Hooks,
) -> (Tracker, u64) {
    let mut pool = PacketPool::new(1024);
    let mut batch = Batch::new(0);
    let mut t = Tracker::new();
    let fd = port.poll_fd();
    let start = mono_ns();
    let deadline = cfg.duration_ns.map(|d| start.saturating_add(d));
    let mut now = start;
    let mut next_check = start + CHECK_NS;
    let mut tick = (start, 0u64, 0u64);
    let mut idle = 0u32;
    loop {
        if cfg.count.is_some_and(|c| t.received >= c) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_check {
            if hooks.stop() {
                break;
            }
            next_check = now + CHECK_NS;
            if now - tick.0 >= TICK_NS {
                let line = rx_progress_line(
                    t.received - tick.1,
                    t.bytes - tick.2,
                    now - tick.0,
                    t.lost(None),
                );
                hooks.progress(&line);
                tick = (now, t.received, t.bytes);
            }
        }
        let n = port.rx_burst(&mut pool, &mut batch);
        now = mono_ns();
        if n == 0 {
            idle += 1;
            if idle >= IDLE_SPINS {
                port.kick();
                match fd {
                    // Readable or not, the loop looks again; an error
                    // (EBADF cannot happen: the port owns the fd) is a timeout.
                    Some(fd) => {
                        let _ = vswitch::sys::poll_readable(&[fd], IDLE_POLL_MS);
                    }
                    None => std::thread::sleep(Duration::from_micros(100)),
                }
                now = mono_ns();
            }
            continue;
        }
        idle = 0;
        let limit = cfg.count.unwrap_or(u64::MAX);
        for &d in batch.descs() {
            // Frames past `--count` in the last burst are not looked at.
            if t.received < limit {
                let data = pool.data(d);
                match parse_probe(data) {
                    Some(p) => t.record(p, data.len(), now),
                    None => t.foreign(),
                }
            }
            pool.free(d);
        }
        batch.clear();
    }
    (t, now - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::{FrameSpec, Stamp, Template};
    use crate::pktgen::{MacAddr, Quiet};
    use std::net::Ipv4Addr;
    use vswitch::port::mem::MemPort;

    #[test]
    fn counts_probes_loss_reorder_duplicates_and_foreign_frames() {
        let tpl = Template::new(&FrameSpec {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            dst_port: 9,
            size: 60,
            flows: 2,
            vxlan: None,
        })
        .unwrap();
        let (mut port, link) = MemPort::new("m", 0);
        let now = mono_ns() as u32;
        link.inject(&[0u8; 60]);
        // Flow 0: 0 1 3 2 2 (one late, one duplicate); flow 1: 0 4 (3 lost).
        for (flow, seq) in [(0, 0), (0, 1), (1, 0), (0, 3), (0, 2), (0, 2), (1, 4)] {
            link.inject(&tpl.build(Stamp { flow, seq, ts: now }));
        }
        // Past the count, in the same burst: not looked at.
        link.inject(&tpl.build(Stamp {
            flow: 0,
            seq: 4,
            ts: now,
        }));
        let cfg = RxConfig {
            count: Some(7),
            ..RxConfig::default()
        };
        let (t, _) = sink(&mut port, &cfg, &mut Quiet);
        assert_eq!(t.received, 7);
        assert_eq!((t.reordered, t.duplicates, t.lost(None)), (1, 1, 3));
        assert_eq!(t.flows(), 2);
        assert_eq!(t.latency.count(), 7);
        assert_eq!(t.foreign, 1);
        assert!(t.latency.max().unwrap() < 10_000_000_000);
    }

    #[test]
    fn a_duration_ends_an_idle_sink() {
        let (mut port, _link) = MemPort::new("m", 0);
        let cfg = RxConfig {
            duration_ns: Some(30_000_000),
            ..RxConfig::default()
        };
        let (t, ns) = sink(&mut port, &cfg, &mut Quiet);
        assert_eq!(t.received, 0);
        assert!((30_000_000..1_000_000_000).contains(&ns), "{ns}");
    }
}
