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
//! - [`cli`]: the command line and its checks.
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
    fn the_clock_moves_forward() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(a > 0 && b >= a);
    }
}
