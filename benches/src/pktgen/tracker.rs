//! The sink's bookkeeping: per-flow sequence tracking and latency.
//!
//! Pure and clock-free: [`Tracker::record`] takes the probe and the
//! receive time, so scripted sequences test it exactly.
//!
//! Per flow it keeps the next expected sequence number (highest seen + 1),
//! the number of distinct sequence numbers received, and a 64-bit window
//! of which of the 64 numbers below the highest have arrived. A number
//! above the highest moves the window (a gap is *possible* loss); one in
//! the window already marked is a **duplicate**; one in the window not yet
//! marked, or older than the window, is **reordered** (late, counted as
//! received; one older than the window cannot be told from a duplicate
//! and is taken as late). At the end, **lost** is per flow `highest + 1 -
//! distinct` summed over flows, since every flow starts at 0; frames lost
//! after a flow's last received one are invisible that way, so when the
//! number sent is known, `sent - distinct` is used instead.
//!
//! Several sinks (one per queue) each keep a tracker; [`Tracker::merge`]
//! combines them. RSS (and veth, by the sender's queue) keeps a flow on
//! one queue, so per-flow state is normally disjoint and the merge exact.
//! A flow seen on two queues is merged by aligning the two windows at
//! the higher `next`: a number marked in both is a **duplicate** (counted
//! received twice, distinct once), distinct counts add up otherwise, so
//! a flow split between queues without copies still shows exactly its
//! loss. Limits: a number received on both queues more than 64 below the
//! merged highest counts as distinct twice (loss then reads low, never
//! below 0 per flow), and reordering *between* queues is not counted
//! (each tracker saw only its own queue's order).
//!
//! Memory: flow ids index a table that grows to the largest id seen, up to
//! [`MAX_FLOWS`]; a probe with a larger id is counted as foreign. Nothing
//! is allocated per packet.

use super::frame::{Probe, MAX_FLOWS};
use super::histogram::Histogram;

const WINDOW: u64 = 64;

#[derive(Clone, Copy, Debug, Default)]
struct FlowState {
    /// Highest sequence number seen + 1; meaningful when `distinct > 0`.
    next: u64,
    /// Bit i: sequence number `next - 1 - i` was received.
    window: u64,
    /// Distinct sequence numbers received.
    distinct: u64,
}

/// Counters and latency of everything a sink received.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    flows: Vec<FlowState>,
    active_flows: u64,
    /// Probe frames received (duplicates included).
    pub received: u64,
    /// Bytes of probe frames received.
    pub bytes: u64,
    /// Probes whose sequence number was below their flow's highest.
    pub reordered: u64,
    /// Probes whose sequence number had already been received.
    pub duplicates: u64,
    /// Frames that were not probes (no magic, not IPv4/UDP, flow id out of range).
    pub foreign: u64,
    /// Receive time (ns) of the first and last probe.
    pub first_ns: Option<u64>,
    /// Receive time (ns) of the last probe.
    pub last_ns: u64,
    /// One-way latency from the probe timestamps (ns).
    pub latency: Histogram,
}

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Records probe `p` of `len` bytes, received at `now_ns`
    /// (CLOCK_MONOTONIC).
    #[inline]
    pub fn record(&mut self, p: Probe, len: usize, now_ns: u64) {
        if p.flow >= MAX_FLOWS {
            self.foreign += 1;
            return;
        }
        let i = p.flow as usize;
        if i >= self.flows.len() {
            // Grows with the flow ids seen, never per packet of a known flow.
            self.flows.resize(i + 1, FlowState::default());
        }
        self.received += 1;
        self.bytes += len as u64;
        self.first_ns.get_or_insert(now_ns);
        self.last_ns = now_ns;
        self.latency
            .record(u64::from((now_ns as u32).wrapping_sub(p.ts)));
        let f = &mut self.flows[i];
        if f.distinct == 0 {
            self.active_flows += 1;
            *f = FlowState {
                next: p.seq.saturating_add(1),
                window: 1,
                distinct: 1,
            };
        } else if p.seq >= f.next {
            let shift = p.seq - f.next + 1;
            f.window = if shift >= WINDOW {
                0
            } else {
                f.window << shift
            } | 1;
            f.next = p.seq.saturating_add(1);
            f.distinct += 1;
        } else {
            let back = f.next - 1 - p.seq;
            if back < WINDOW {
                let bit = 1u64 << back;
                if f.window & bit != 0 {
                    self.duplicates += 1;
                    return;
                }
                f.window |= bit;
            }
            self.reordered += 1;
            f.distinct += 1;
        }
    }

    /// Adds tracker `o` (another queue's) to this one; see the module
    /// documentation for a flow both saw.
    pub fn merge(&mut self, o: &Tracker) {
        if o.flows.len() > self.flows.len() {
            self.flows.resize(o.flows.len(), FlowState::default());
        }
        for (a, &b) in self.flows.iter_mut().zip(&o.flows) {
            let (merged, both) = merge_flow(*a, b);
            *a = merged;
            self.duplicates += both;
        }
        self.active_flows = self.flows.iter().filter(|f| f.distinct > 0).count() as u64;
        self.received += o.received;
        self.bytes += o.bytes;
        self.reordered += o.reordered;
        self.duplicates += o.duplicates;
        self.foreign += o.foreign;
        self.first_ns = match (self.first_ns, o.first_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ns = self.last_ns.max(o.last_ns);
        self.latency.merge(&o.latency);
    }

    /// Counts a frame that is not a probe.
    #[inline]
    pub fn foreign(&mut self) {
        self.foreign += 1;
    }

    /// Flows with at least one probe received.
    pub fn flows(&self) -> u64 {
        self.active_flows
    }

    /// Distinct probes received (duplicates not counted).
    pub fn distinct(&self) -> u64 {
        self.flows.iter().map(|f| f.distinct).sum()
    }

    /// Probes lost: `sent - distinct` when the number sent is known, else
    /// the gaps below each flow's highest sequence number.
    pub fn lost(&self, sent: Option<u64>) -> u64 {
        match sent {
            Some(n) => n.saturating_sub(self.distinct()),
            None => self
                .flows
                .iter()
                .map(|f| f.next.saturating_sub(f.distinct))
                .sum(),
        }
    }

    /// Time between the first and the last probe (ns).
    pub fn active_ns(&self) -> u64 {
        self.first_ns.map_or(0, |f| self.last_ns - f)
    }
}

/// One flow's state from two trackers, and how many numbers both had
/// (within the window).
fn merge_flow(a: FlowState, b: FlowState) -> (FlowState, u64) {
    if b.distinct == 0 {
        return (a, 0);
    }
    if a.distinct == 0 {
        return (b, 0);
    }
    let (hi, lo) = if a.next >= b.next { (a, b) } else { (b, a) };
    let shift = hi.next - lo.next;
    let lo_window = if shift >= WINDOW {
        0
    } else {
        lo.window << shift
    };
    let both = u64::from((hi.window & lo_window).count_ones());
    let merged = FlowState {
        next: hi.next,
        window: hi.window | lo_window,
        distinct: a.distinct + b.distinct - both,
    };
    (merged, both)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Tracker, flow: u32, seqs: &[u64]) {
        for &seq in seqs {
            t.record(Probe { flow, seq, ts: 0 }, 60, 1_000);
        }
    }

    #[test]
    fn in_order_sequences_have_no_loss() {
        let mut t = Tracker::new();
        for s in 0..1000 {
            feed(&mut t, (s % 4) as u32, &[s / 4]);
        }
        assert_eq!((t.received, t.distinct(), t.flows()), (1000, 1000, 4));
        assert_eq!((t.lost(None), t.reordered, t.duplicates), (0, 0, 0));
        assert_eq!(t.lost(Some(1000)), 0);
        assert_eq!(t.lost(Some(1010)), 10, "tail loss when the count is known");
    }

    #[test]
    fn gaps_are_loss() {
        let mut t = Tracker::new();
        feed(&mut t, 0, &[0, 1, 2, 5, 6, 10]);
        feed(&mut t, 1, &[3]); // first three of flow 1 lost
        assert_eq!(t.lost(None), 5 + 3); // 3 4 7 8 9, and 0 1 2 of flow 1
        assert_eq!((t.reordered, t.duplicates), (0, 0));
    }

    #[test]
    fn late_frames_are_reordered_and_fill_their_gap() {
        let mut t = Tracker::new();
        feed(&mut t, 0, &[0, 2, 1, 3, 6, 5, 4]);
        assert_eq!((t.reordered, t.duplicates, t.lost(None)), (3, 0, 0));
        // Older than the window: late, still received.
        feed(&mut t, 1, &[0, 100, 1]);
        assert_eq!(t.reordered, 4);
        assert_eq!(t.lost(None), 98);
    }

    #[test]
    fn duplicates_are_found_in_order_and_out_of_order() {
        let mut t = Tracker::new();
        feed(&mut t, 0, &[0, 1, 1, 2, 0, 5, 3, 3, 5]);
        assert_eq!(t.duplicates, 4);
        assert_eq!(t.reordered, 1); // 3 arrives late once; the second 0 is a duplicate
        assert_eq!(t.received, 9);
        assert_eq!(t.distinct(), 5);
        assert_eq!(t.lost(None), 1); // 4
    }

    #[test]
    fn window_slides_exactly_64() {
        let mut t = Tracker::new();
        feed(&mut t, 0, &[0, 64]);
        feed(&mut t, 0, &[1]); // back = 63: inside the window, late
        feed(&mut t, 0, &[1]); // now a duplicate
        feed(&mut t, 0, &[0]); // back = 64: outside, taken as late
        assert_eq!((t.reordered, t.duplicates), (2, 1));
    }

    #[test]
    fn merging_disjoint_flows_adds_up() {
        let (mut a, mut b) = (Tracker::new(), Tracker::new());
        feed(&mut a, 0, &[0, 1, 2, 4]);
        feed(&mut b, 1, &[0, 1]);
        feed(&mut b, 3, &[5]);
        b.foreign();
        a.merge(&b);
        assert_eq!((a.received, a.flows(), a.distinct()), (7, 3, 7));
        assert_eq!(a.lost(None), 1 + 5);
        assert_eq!((a.duplicates, a.reordered, a.foreign), (0, 0, 1));
        assert_eq!(a.latency.count(), 7);
        let mut empty = Tracker::new();
        empty.merge(&a);
        assert_eq!((empty.received, empty.flows(), empty.lost(None)), (7, 3, 6));
        assert_eq!(empty.first_ns, a.first_ns);
    }

    #[test]
    fn a_flow_split_between_queues_merges_its_numbers() {
        // Even numbers on one queue, odd on the other: each alone looks
        // like 50 % loss, merged nothing is lost.
        let (mut a, mut b) = (Tracker::new(), Tracker::new());
        let evens: Vec<u64> = (0..100).step_by(2).collect();
        let odds: Vec<u64> = (1..100).step_by(2).collect();
        feed(&mut a, 0, &evens);
        feed(&mut b, 0, &odds);
        assert_eq!(a.lost(None), 49);
        a.merge(&b);
        assert_eq!((a.received, a.distinct(), a.lost(None)), (100, 100, 0));
        assert_eq!((a.flows(), a.duplicates), (1, 0));
        // The same numbers on both queues: the copies are duplicates.
        let (mut c, mut d) = (Tracker::new(), Tracker::new());
        feed(&mut c, 2, &[0, 1, 2, 3]);
        feed(&mut d, 2, &[2, 3, 4]);
        c.merge(&d);
        assert_eq!((c.received, c.distinct(), c.duplicates), (7, 5, 2));
        assert_eq!(c.lost(None), 0);
    }

    #[test]
    fn latency_and_foreign() {
        let mut t = Tracker::new();
        // Timestamps wrap at 2^32 ns.
        t.record(
            Probe {
                flow: 0,
                seq: 0,
                ts: u32::MAX - 99,
            },
            60,
            (1u64 << 32) + 900,
        );
        assert_eq!(t.latency.quantile(0.5), Some(1000));
        t.record(
            Probe {
                flow: MAX_FLOWS,
                seq: 0,
                ts: 0,
            },
            60,
            0,
        );
        t.foreign();
        assert_eq!((t.foreign, t.received), (2, 1));
    }
}
