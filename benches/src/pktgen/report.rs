//! What pktgen prints: the final summaries and the progress lines.
//!
//! A summary is one line of `key=value` pairs on stdout (stable keys, for
//! scripts and people alike) or, with `--json`, the same fields as one
//! JSON object. Rates use the frame bytes without FCS (60-byte frames at
//! 1 Mpps are 0.48 Gb/s). The sink's rate is over the time between its
//! first and last probe, so a sink started long before the sender still
//! reports the rate it received at. Progress lines go to stderr.
//!
//! A run over several queues reports the totals, `queues`, and the part of
//! each queue (`per_queue`: frames sent or probes received, in queue
//! order; in the line only when there is more than one queue).

use serde::Serialize;

use super::tracker::Tracker;
use super::tx::TxStats;

/// Why latencies need a shared clock; part of every sink summary.
pub const LATENCY_NOTE: &str =
    "latency is valid only when sender and sink share CLOCK_MONOTONIC (same machine)";

fn per_sec(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / ns as f64
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// `tx 1.23 Mpps 0.63 Gb/s` for `frames` and `bytes` over `ns`.
pub fn tx_progress_line(frames: u64, bytes: u64, ns: u64) -> String {
    format!(
        "tx {:.2} Mpps {:.2} Gb/s",
        per_sec(frames, ns) / 1e6,
        per_sec(bytes * 8, ns) / 1e9
    )
}

/// `rx 1.20 Mpps 0.58 Gb/s loss 12` for `frames` and `bytes` over `ns`
/// and the loss so far.
pub fn rx_progress_line(frames: u64, bytes: u64, ns: u64, lost: u64) -> String {
    format!(
        "rx {:.2} Mpps {:.2} Gb/s loss {lost}",
        per_sec(frames, ns) / 1e6,
        per_sec(bytes * 8, ns) / 1e9
    )
}

/// The sender's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendSummary {
    /// Frames the port accepted.
    pub sent: u64,
    /// Frames per second.
    pub pps: u64,
    /// Gbit/s of frame bytes (without FCS).
    pub gbps: f64,
    /// Seconds from the first to the last burst.
    pub duration_s: f64,
    /// Bytes sent.
    pub bytes: u64,
    /// Frames the port refused and that were sent again later.
    pub refused: u64,
    /// Frame size.
    pub size: usize,
    /// Flows.
    pub flows: u32,
    /// Interface.
    pub iface: String,
    /// Port backend in use (`afxdp`, `afpacket`).
    pub backend: String,
    /// Queues (and threads) the run used.
    pub queues: usize,
    /// Frames sent through each queue.
    pub per_queue: Vec<u64>,
}

impl SendSummary {
    /// The summary of a run of `st` with frames of `size` bytes.
    pub fn new(st: &TxStats, size: usize, flows: u32, iface: &str, backend: &str) -> SendSummary {
        SendSummary {
            sent: st.sent,
            pps: per_sec(st.sent, st.elapsed_ns).round() as u64,
            gbps: round(per_sec(st.bytes * 8, st.elapsed_ns) / 1e9, 3),
            duration_s: round(st.elapsed_ns as f64 / 1e9, 3),
            bytes: st.bytes,
            refused: st.refused,
            size,
            flows,
            iface: iface.to_string(),
            backend: backend.to_string(),
            queues: 1,
            per_queue: vec![st.sent],
        }
    }

    /// The same summary for a run over several queues, `per_queue` the
    /// frames each sent.
    pub fn with_queues(mut self, per_queue: Vec<u64>) -> SendSummary {
        self.queues = per_queue.len();
        self.per_queue = per_queue;
        self
    }

    /// `sent=5000000 pps=1002345 gbps=0.48 duration=4.99s ...`
    pub fn line(&self) -> String {
        format!(
            "sent={} pps={} gbps={:.2} duration={:.2}s size={} flows={} refused={} queues={}{} iface={} backend={}",
            self.sent,
            self.pps,
            self.gbps,
            self.duration_s,
            self.size,
            self.flows,
            self.refused,
            self.queues,
            per_queue(&self.per_queue),
            self.iface,
            self.backend
        )
    }
}

/// The sink's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SinkSummary {
    /// Probe frames received (duplicates included).
    pub received: u64,
    /// Probes per second between the first and the last probe.
    pub pps: u64,
    /// Gbit/s of probe bytes over the same time.
    pub gbps: f64,
    /// Seconds between the first and the last probe.
    pub duration_s: f64,
    /// Probes lost (see [`Tracker::lost`]).
    pub lost: u64,
    /// Probes that arrived after a higher sequence number of their flow.
    pub reordered: u64,
    /// Probes received more than once.
    pub duplicates: u64,
    /// Frames that were not probes (ignored).
    pub foreign: u64,
    /// Flows seen.
    pub flows: u64,
    /// Median one-way latency (µs).
    pub p50_us: Option<f64>,
    /// 99th percentile latency (µs).
    pub p99_us: Option<f64>,
    /// 99.9th percentile latency (µs).
    pub p999_us: Option<f64>,
    /// Largest latency (µs).
    pub max_us: Option<f64>,
    /// Interface.
    pub iface: String,
    /// Port backend in use.
    pub backend: String,
    /// Queues (and threads) the run used.
    pub queues: usize,
    /// Probes received on each queue.
    pub per_queue: Vec<u64>,
    /// [`LATENCY_NOTE`].
    pub latency_note: &'static str,
}

impl SinkSummary {
    /// The summary of tracker `t`; `expect` is the number sent, if known.
    pub fn new(t: &Tracker, expect: Option<u64>, iface: &str, backend: &str) -> SinkSummary {
        let ns = t.active_ns();
        let us = |q: f64| t.latency.quantile(q).map(|v| round(v as f64 / 1e3, 2));
        SinkSummary {
            received: t.received,
            pps: per_sec(t.received, ns).round() as u64,
            gbps: round(per_sec(t.bytes * 8, ns) / 1e9, 3),
            duration_s: round(ns as f64 / 1e9, 3),
            lost: t.lost(expect),
            reordered: t.reordered,
            duplicates: t.duplicates,
            foreign: t.foreign,
            flows: t.flows(),
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: t.latency.max().map(|v| round(v as f64 / 1e3, 2)),
            iface: iface.to_string(),
            backend: backend.to_string(),
            queues: 1,
            per_queue: vec![t.received],
            latency_note: LATENCY_NOTE,
        }
    }

    /// The same summary for a run over several queues (`t` merged from
    /// all of them), `per_queue` the probes each received.
    pub fn with_queues(mut self, per_queue: Vec<u64>) -> SinkSummary {
        self.queues = per_queue.len();
        self.per_queue = per_queue;
        self
    }

    /// `received=... pps=... lost=... reordered=... p50_us=... ...`
    pub fn line(&self) -> String {
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        format!(
            "received={} pps={} gbps={:.2} duration={:.2}s lost={} reordered={} duplicates={} foreign={} flows={} p50_us={} p99_us={} p999_us={} max_us={} queues={}{} iface={} backend={}",
            self.received,
            self.pps,
            self.gbps,
            self.duration_s,
            self.lost,
            self.reordered,
            self.duplicates,
            self.foreign,
            self.flows,
            us(self.p50_us),
            us(self.p99_us),
            us(self.p999_us),
            us(self.max_us),
            self.queues,
            per_queue(&self.per_queue),
            self.iface,
            self.backend
        )
    }
}

/// ` per_queue=a,b,...` when there is more than one queue, else nothing.
fn per_queue(v: &[u64]) -> String {
    if v.len() < 2 {
        return String::new();
    }
    let parts: Vec<String> = v.iter().map(u64::to_string).collect();
    format!(" per_queue={}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::Probe;

    #[test]
    fn send_summary_line_and_json() {
        let st = TxStats {
            sent: 5_000_000,
            bytes: 300_000_000,
            refused: 7,
            elapsed_ns: 4_990_000_000,
        };
        let s = SendSummary::new(&st, 60, 1, "veth0", "afxdp");
        assert_eq!(
            s.line(),
            "sent=5000000 pps=1002004 gbps=0.48 duration=4.99s size=60 flows=1 refused=7 queues=1 iface=veth0 backend=afxdp"
        );
        let two = s.clone().with_queues(vec![2_500_000, 2_500_000]);
        assert!(
            two.line()
                .contains(" queues=2 per_queue=2500000,2500000 iface=veth0 "),
            "{}",
            two.line()
        );
        let j2: serde_json::Value = serde_json::to_value(&two).unwrap();
        assert_eq!(
            (j2["queues"].as_u64(), j2["per_queue"][1].as_u64()),
            (Some(2), Some(2_500_000))
        );
        let j: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(j["sent"], 5_000_000);
        assert_eq!(j["pps"], 1_002_004);
        assert_eq!(j["backend"], "afxdp");
    }

    #[test]
    fn sink_summary_line_and_json() {
        let mut t = Tracker::new();
        for seq in [0u64, 1, 3] {
            t.record(
                Probe {
                    flow: 0,
                    seq,
                    ts: 0,
                },
                60,
                1_000_000 * (seq + 1),
            );
        }
        let s = SinkSummary::new(&t, None, "veth1", "afxdp");
        assert_eq!(s.received, 3);
        assert_eq!(s.pps, 1000); // 3 probes over 3 ms
        assert_eq!(s.lost, 1);
        assert!(s.line().starts_with("received=3 pps=1000 gbps=0.00 duration=0.00s lost=1 reordered=0 duplicates=0 foreign=0 flows=1 p50_us="), "{}", s.line());
        let j: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(j["lost"], 1);
        assert!(j["p99_us"].is_number());
        let empty = SinkSummary::new(&Tracker::new(), Some(10), "v", "afxdp");
        assert_eq!(empty.lost, 10);
        assert!(empty.line().contains("p50_us=- p99_us=- p999_us=-"));
        assert!(
            empty.line().contains(" queues=1 iface=v "),
            "{}",
            empty.line()
        );
        let two = s.with_queues(vec![1, 2]);
        assert!(
            two.line().contains(" queues=2 per_queue=1,2 iface=veth1 "),
            "{}",
            two.line()
        );
        assert_eq!(serde_json::to_value(&two).unwrap()["queues"], 2);
        assert!(serde_json::to_value(&empty).unwrap()["p50_us"].is_null());
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            tx_progress_line(1_230_000, 1_230_000 * 64, 1_000_000_000),
            "tx 1.23 Mpps 0.63 Gb/s"
        );
        assert_eq!(
            rx_progress_line(500_000, 30_000_000, 500_000_000, 3),
            "rx 1.00 Mpps 0.48 Gb/s loss 3"
        );
    }
}
