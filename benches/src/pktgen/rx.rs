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
//!
//! Several sinks (one per queue and thread, [`sink_shared`]) each keep
//! their own [`Tracker`], merged at the end ([`Tracker::merge`]), and
//! share one budget of probes for `--count`: a burst's probes are claimed
//! from it with one atomic operation, so together they record exactly
//! `--count` probes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vswitch::pipeline::Batch;
use vswitch::port::{PacketPool, Port};

use super::frame::parse_probe;
use super::report::rx_progress_line;
use super::tracker::Tracker;
use super::tx::{CHECK_NS, TICK_NS};
use super::{mono_ns, Counters, Hooks};

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
    let budget = AtomicU64::new(cfg.count.unwrap_or(u64::MAX));
    sink_shared(port, cfg, &budget, hooks)
}

/// [`sink`] for one of several sinks: `budget` holds the probes all of
/// them may still record (`u64::MAX`: no `--count`) and `cfg.count` is
/// ignored; every sink stops once it is spent.
pub fn sink_shared<P: Port + ?Sized>(
    port: &mut P,
    cfg: &RxConfig,
    budget: &AtomicU64,
    hooks: &mut dyn Hooks,
) -> (Tracker, u64) {
    const POOL: u32 = 1024;
    let mut pool = PacketPool::new(POOL);
    let mut batch = Batch::new(0);
    let mut probes = Vec::with_capacity(POOL as usize);
    let mut t = Tracker::new();
    let fd = port.poll_fd();
    let start = mono_ns();
    let deadline = cfg.duration_ns.map(|d| start.saturating_add(d));
    let mut now = start;
    let mut next_check = start + CHECK_NS;
    let mut tick = (start, 0u64, 0u64);
    let mut idle = 0u32;
    // Loss as of the last tick: summing it costs a pass over every flow.
    let mut lost = 0u64;
    loop {
        if budget.load(Ordering::Relaxed) == 0 || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_check {
            if hooks.stop() {
                break;
            }
            next_check = now + CHECK_NS;
            if now - tick.0 >= TICK_NS {
                lost = t.lost(None);
                let line =
                    rx_progress_line(t.received - tick.1, t.bytes - tick.2, now - tick.0, lost);
                hooks.progress(&line);
                tick = (now, t.received, t.bytes);
            }
            hooks.counters(Counters {
                frames: t.received,
                bytes: t.bytes,
                lost,
            });
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
        for &d in batch.descs() {
            let data = pool.data(d);
            match parse_probe(data) {
                Some(p) => probes.push((p, data.len())),
                None => t.foreign(),
            }
            pool.free(d);
        }
        batch.clear();
        // Probes past the budget (`--count`) in the last burst are dropped
        // unrecorded.
        let take = claim(budget, probes.len() as u64) as usize;
        for &(p, len) in &probes[..take] {
            t.record(p, len, now);
        }
        probes.clear();
    }
    (t, now - start)
}

/// Takes up to `n` from `budget`; returns how many it took.
fn claim(budget: &AtomicU64, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    match budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        (left > 0).then(|| left - left.min(n))
    }) {
        Ok(left) => left.min(n),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::{FrameSpec, Stamp, Template};
    use crate::pktgen::Quiet;
    use vswitch::port::mem::MemPort;

    #[test]
    fn counts_probes_loss_reorder_duplicates_and_foreign_frames() {
        let tpl = Template::new(&FrameSpec::example(60, 2, None)).unwrap();
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
    fn sinks_sharing_a_budget_record_exactly_the_count() {
        let tpl = Template::new(&FrameSpec::example(60, 2, None)).unwrap();
        let budget = AtomicU64::new(150);
        // The first sink ends on its duration, the second on the budget.
        let cfg = RxConfig {
            duration_ns: Some(50_000_000),
            ..RxConfig::default()
        };
        let mut total = Tracker::new();
        for flow in 0..2 {
            let (mut port, link) = MemPort::new("m", 0);
            for seq in 0..100 {
                link.inject(&tpl.build(Stamp { flow, seq, ts: 0 }));
            }
            let (t, _) = sink_shared(&mut port, &cfg, &budget, &mut Quiet);
            total.merge(&t);
        }
        assert_eq!(budget.load(Ordering::Relaxed), 0);
        assert_eq!((total.received, total.flows()), (150, 2));
        assert_eq!(total.lost(Some(200)), 50);
        assert_eq!(claim(&budget, 5), 0);
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
