//! `pktgen`: the project's packet generator and sink (binary in
//! `src/bin/pktgen.rs`, DESIGN.md §3).
//!
//! The sender transmits Ethernet/IPv4/UDP probes (optionally VXLAN
//! encapsulated) through any [`vswitch::port::Port`], as fast as the port
//! takes them or paced to a rate; the sink receives through a port too and
//! reads each probe's flow, sequence number and timestamp back to count
//! loss, reordering, duplicates and one-way latency.
//!
//! The pieces, each testable on its own:
//! - [`frame`]: the probe layout, a template built once per run, the
//!   per-frame patch (incremental checksums), and the sink's parser;
//! - [`pace`]: the token-bucket pacer (pure, time is a parameter);
//! - [`tracker`] and [`histogram`]: per-flow sequence state and latency
//!   percentiles (pure, no allocation per packet);
//! - [`tx`] and [`rx`]: the send and receive loops over a `Port`;
//! - [`report`]: summaries (one `key=value` line or one JSON object) and
//!   the once-a-second progress lines;
//! - [`xdp`]: the live-frame transmit mode (BPF_PROG_RUN) and `xdp-fwd`'s
//!   redirect program;
//! - [`cli`]: the command line and its checks;
//! - [`parallel`] (here): several runs, one per queue and thread, with
//!   one stop switch and one combined progress line.
//!
//! What it deliberately does not do: open sockets itself (the vswitch port
//! backends do, AF_XDP or AF_PACKET), TCP or IPv6 probes, or compare clocks
//! across machines (latency is only meaningful when sender and sink share
//! CLOCK_MONOTONIC, i.e. run on the same host).

pub mod cli;
pub mod frame;
pub mod histogram;
pub mod pace;
pub mod report;
pub mod rx;
pub mod tracker;
pub mod tx;
pub mod xdp;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// An Ethernet address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Text that is not `xx:xx:xx:xx:xx:xx` (or with `-`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?} (expected six hex bytes like 02:00:00:00:00:01)")]
pub struct BadMac(pub String);

impl FromStr for MacAddr {
    type Err = BadMac;

    fn from_str(s: &str) -> Result<MacAddr, BadMac> {
        let bad = || BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock probe timestamps use.
#[inline]
pub fn mono_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; 0 would only skew latencies.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// What a run reports to, and asks of, the program around it.
pub trait Hooks {
    /// Polled about every 10 ms; `true` ends the run (e.g. SIGINT).
    fn stop(&mut self) -> bool {
        false
    }

    /// A progress line, about once a second.
    fn progress(&mut self, _line: &str) {}

    /// The run's running totals, at every stop check (about every 10 ms),
    /// for a coordinator that prints one line for several runs.
    fn counters(&mut self, _c: Counters) {}
}

/// Running totals a run publishes through [`Hooks::counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames sent or probes received so far.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Sink only: loss so far ([`tracker::Tracker::lost`] without a sent
    /// count), as of the run's last progress tick (about once a second).
    pub lost: u64,
}

/// One worker's published [`Counters`] (relaxed atomics: the coordinator
/// only needs recent values, not a consistent snapshot).
#[derive(Debug, Default)]
struct Slot {
    frames: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
}

/// The hooks a [`parallel`] worker runs with: a shared stop switch, and
/// its own slot for counters; progress lines are the coordinator's.
struct Worker<'a> {
    stop: &'a AtomicBool,
    slot: &'a Slot,
}

impl Hooks for Worker<'_> {
    fn stop(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn counters(&mut self, c: Counters) {
        self.slot.frames.store(c.frames, Ordering::Relaxed);
        self.slot.bytes.store(c.bytes, Ordering::Relaxed);
        self.slot.lost.store(c.lost, Ordering::Relaxed);
    }
}

/// Runs `work(i, input_i, hooks)` for every input on its own thread (the
/// several-queue form of `send` and `sink`: one port, one queue, one
/// thread each) and returns the results in input order.
///
/// The calling thread is the coordinator: every [`tx::CHECK_NS`] it asks
/// `hooks` whether to stop and passes that on to every worker; about once
/// a second it sums the workers' [`Counters`] and writes one progress line,
/// `line(frames, bytes, ns, lost)` over the frames and bytes since the
/// last one. A worker that returns an error stops the others (e.g. one
/// thread could not be pinned), and the first error is returned. A worker
/// that panics panics the coordinator once all have ended.
pub fn parallel<I, R, W, L>(
    inputs: Vec<I>,
    hooks: &mut dyn Hooks,
    line: L,
    work: W,
) -> Result<Vec<R>, String>
where
    I: Send,
    R: Send,
    W: Fn(usize, I, &mut dyn Hooks) -> Result<R, String> + Sync,
    L: Fn(u64, u64, u64, u64) -> String,
{
    let stop = AtomicBool::new(false);
    let slots: Vec<Slot> = inputs.iter().map(|_| Slot::default()).collect();
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .into_iter()
            .zip(&slots)
            .enumerate()
            .map(|(i, (input, slot))| {
                let (stop, work) = (&stop, &work);
                s.spawn(move || {
                    let mut w = Worker { stop, slot };
                    let r = work(i, input, &mut w);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let sum = |f: fn(&Slot) -> &AtomicU64| -> u64 {
            slots.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
        };
        let mut tick = (mono_ns(), 0u64, 0u64);
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_nanos(tx::CHECK_NS));
            if hooks.stop() {
                stop.store(true, Ordering::Relaxed);
            }
            let now = mono_ns();
            if now - tick.0 >= tx::TICK_NS {
                let (frames, bytes) = (sum(|s| &s.frames), sum(|s| &s.bytes));
                let lost = sum(|s| &s.lost);
                hooks.progress(&line(
                    frames.saturating_sub(tick.1),
                    bytes.saturating_sub(tick.2),
                    now - tick.0,
                    lost,
                ));
                tick = (now, frames, bytes);
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    results.into_iter().collect()
}

/// Hooks that never stop a run and drop progress (tests).
#[derive(Debug, Default)]
pub struct Quiet;

impl Hooks for Quiet {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_and_print() {
        let m: MacAddr = "02:00:0a:FF:00:01".parse().unwrap();
        assert_eq!(m, MacAddr([2, 0, 0x0a, 0xff, 0, 1]));
        assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
        assert_eq!("2-0-a-ff-0-1".parse::<MacAddr>().unwrap(), m);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "002:00:00:00:00:01",
            "02::00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parallel_runs_every_input_and_sums_progress() {
        struct Lines(Vec<String>);
        impl Hooks for Lines {
            fn progress(&mut self, line: &str) {
                self.0.push(line.to_string());
            }
        }
        let mut hooks = Lines(Vec::new());
        let out = parallel(
            vec![10u64, 20, 30],
            &mut hooks,
            |f, _, _, _| format!("frames {f}"),
            |i, n, h| {
                h.counters(Counters {
                    frames: n,
                    ..Counters::default()
                });
                std::thread::sleep(Duration::from_millis(1100));
                Ok(i as u64 * 100 + n)
            },
        )
        .unwrap();
        assert_eq!(out, vec![10, 120, 230]);
        assert_eq!(hooks.0, vec!["frames 60".to_string()]);
    }

    #[test]
    fn a_failing_worker_stops_the_others() {
        let r: Result<Vec<()>, String> = parallel(
            vec![0, 1],
            &mut Quiet,
            |_, _, _, _| String::new(),
            |i, _: i32, h| {
                if i == 0 {
                    return Err("cannot pin".to_string());
                }
                while !h.stop() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            },
        );
        assert_eq!(r, Err("cannot pin".to_string()));
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(a > 0 && b >= a);
    }
}
