//! The send loop: build a batch of probes, hand it to the port, repeat.
//!
//! Frames are built in a small private [`PacketPool`]. Ports copy a
//! transmitted frame out of the pool (into the UMEM, or into a socket
//! buffer) and give the buffer back, and the pool hands out the most
//! recently freed buffer first, so after the first batch every buffer
//! already holds the template: a frame is then only *patched* (source
//! port/address, flow, seq, timestamp, two checksums), never rewritten.
//! A buffer gets the whole template the first time it is used.
//!
//! Frame `g` of the run (counting only frames the port accepted) belongs
//! to flow `g % flows` with sequence number `g / flows`, so flows take
//! turns and every flow's numbers run from 0 without gaps. A port that
//! refuses part of a burst (tx ring full) has sent a prefix of it: both
//! kernel backends send in order and stop at the first refusal, so the
//! refused frames' numbers are simply reused by the next burst and
//! refusals never look like loss at the sink. (`Port::tx_burst` returns
//! a count, not which frames went; AF_PACKET skips a frame on errors
//! other than a full buffer, e.g. ENETDOWN, which would show at the sink
//! as one loss and one duplicate.)
//!
//! Several senders, one per queue and thread, split a run by flow: with
//! `N` of them, sender `i` owns the flows `f` with `f % N == i` ([`Share`])
//! and numbers its own frames the same way over those flows only: its
//! frame `l` belongs to its `l % k`-th flow (of `k`) with sequence number
//! `l / k`. [`Share::split`] gives sender `i` exactly the frames of its
//! flows among the single sender's first `count`, so every flow carries
//! exactly the numbers a single sender would have given it, in one
//! thread, gap-free; the sink cannot tell the two apart except by timing.
//!
//! One timestamp is taken per batch: every frame of a batch carries the
//! time the batch was built (a batch of 64 is built in well under a
//! microsecond). At `--rate max` the loop never waits: refused frames
//! only trigger a kick so the kernel drains the ring. With a rate, the
//! [`Pacer`] decides the batch sizes; waits under 200 µs spin, longer
//! ones sleep (at most 10 ms at a time, so a stop request is seen).

use std::time::Duration;

use vswitch::port::{PacketPool, Port};

use super::frame::{Stamp, Template};
use super::pace::{Pace, Pacer};
use super::report::tx_progress_line;
use super::{mono_ns, Counters, Hooks};

/// How often the stop hook is asked (ns).
pub(crate) const CHECK_NS: u64 = 10_000_000;
/// How often a progress line is written (ns).
pub(crate) const TICK_NS: u64 = 1_000_000_000;
/// Waits shorter than this spin instead of sleeping (ns).
const SPIN_NS: u64 = 200_000;
/// Sleeps end this early, to spin the rest (timer slack, wake-up latency).
const SLEEP_MARGIN_NS: u64 = 100_000;
/// Longest single sleep (ns).
const MAX_SLEEP_NS: u64 = 10_000_000;

/// What to send and when to stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxConfig {
    /// Frames per burst at full rate (the cap of a paced batch).
    pub batch: u32,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Stop after this long (ns).
    pub duration_ns: Option<u64>,
    /// Frames per second; `None`: as fast as the port takes them.
    pub rate: Option<u64>,
    /// Test only: skip one sequence number after every this many per flow,
    /// so a sink sees loss that did not happen.
    pub seq_gap_every: Option<u64>,
    /// The flows this sender owns when several share a run.
    pub share: Share,
}

/// Sender `index` of `of`: it owns flows `f` with `f % of == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// This sender, `0..of`.
    pub index: u32,
    /// Senders in the run, at least 1.
    pub of: u32,
}

impl Default for Share {
    fn default() -> Share {
        Share { index: 0, of: 1 }
    }
}

impl Share {
    /// How many of `0..n` this sender owns (`f % of == index`).
    fn owned_below(&self, n: u64) -> u64 {
        let (i, of) = (u64::from(self.index), u64::from(self.of.max(1)));
        if n > i {
            (n - i - 1) / of + 1
        } else {
            0
        }
    }

    /// How many of `flows` flows this sender owns (0 when `flows <= index`).
    pub fn flows(&self, flows: u32) -> u32 {
        self.owned_below(u64::from(flows)) as u32
    }

    /// This sender's frames among a single sender's first `count` over
    /// `flows` flows: whole rounds over its flows, plus its flows among
    /// the last, partial round. The shares of `0..of` add up to `count`.
    pub fn count(&self, count: u64, flows: u32) -> u64 {
        let f = u64::from(flows.max(1));
        (count / f) * u64::from(self.flows(flows)) + self.owned_below(count % f)
    }

    /// This sender's part of `rate`, in proportion to its flows (so every
    /// flow keeps the rate a single sender would give it); the parts add
    /// up to `rate`, except that a sender with flows gets at least 1 pps.
    pub fn rate(&self, rate: u64, flows: u32) -> u64 {
        let f = u128::from(flows.max(1));
        // Flows owned by senders before this one, and up to this one.
        let before: u128 = (0..self.index)
            .map(|j| {
                u128::from(
                    Share {
                        index: j,
                        of: self.of,
                    }
                    .flows(flows),
                )
            })
            .sum();
        let upto = before + u128::from(self.flows(flows));
        let part = (u128::from(rate) * upto / f - u128::from(rate) * before / f) as u64;
        if self.flows(flows) > 0 {
            part.max(1)
        } else {
            0
        }
    }

    /// `cfg` for each of `n` senders over `flows` flows: count and rate
    /// split as above, the duration shared.
    pub fn split(cfg: &TxConfig, flows: u32, n: u32) -> Vec<TxConfig> {
        (0..n.max(1))
            .map(|index| {
                let share = Share {
                    index,
                    of: n.max(1),
                };
                TxConfig {
                    count: cfg.count.map(|c| share.count(c, flows)),
                    rate: cfg.rate.map(|r| share.rate(r, flows)),
                    share,
                    ..cfg.clone()
                }
            })
            .collect()
    }
}

/// What a send run did; [`TxStats::add`] combines several senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames the port accepted.
    pub sent: u64,
    /// Bytes of those frames (without FCS).
    pub bytes: u64,
    /// Frames the port refused (tx ring or socket buffer full) and that
    /// were built again for a later burst.
    pub refused: u64,
    /// From the first burst to the end of the last (ns).
    pub elapsed_ns: u64,
}

impl TxStats {
    /// Adds another sender's run of the same time: counts add up, the
    /// elapsed time is the longer one (they started together).
    pub fn add(&mut self, o: &TxStats) {
        self.sent += o.sent;
        self.bytes += o.bytes;
        self.refused += o.refused;
        self.elapsed_ns = self.elapsed_ns.max(o.elapsed_ns);
    }
}

/// Sends probes from `tpl` through `port` until `cfg` or `hooks` says
/// stop: all flows, or the ones `cfg.share` owns (none: returns at once).
pub fn send<P: Port + ?Sized>(
    port: &mut P,
    tpl: &Template,
    cfg: &TxConfig,
    hooks: &mut dyn Hooks,
) -> TxStats {
    let batch = cfg.batch.max(1);
    let mut pool = PacketPool::new(2 * batch + 64);
    let mut has_template = vec![false; pool.capacity() as usize];
    let mut descs = Vec::with_capacity(batch as usize);
    let share = cfg.share;
    // This sender's flows: `first`, `first + stride`, ... (`owned` of them).
    let owned = u64::from(share.flows(tpl.flows()));
    let (first, stride) = (share.index, share.of.max(1));
    let len = tpl.len() as u16;
    let start = mono_ns();
    if owned == 0 {
        return TxStats::default();
    }
    let deadline = cfg.duration_ns.map(|d| start.saturating_add(d));
    let mut pacer = cfg.rate.map(|r| Pacer::new(r, batch, start));
    let mut st = TxStats::default();
    let mut now = start;
    let mut next_check = start + CHECK_NS;
    let mut tick = (start, 0u64, 0u64); // time, sent, bytes at the last progress line
    loop {
        let mut want = batch;
        if let Some(c) = cfg.count {
            let left = c.saturating_sub(st.sent);
            if left == 0 {
                break;
            }
            want = want.min(left.min(u64::from(u32::MAX)) as u32);
        }
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_check {
            if hooks.stop() {
                break;
            }
            next_check = now + CHECK_NS;
            hooks.counters(Counters {
                frames: st.sent,
                bytes: st.bytes,
                lost: 0,
            });
            if now - tick.0 >= TICK_NS {
                let dt = now - tick.0;
                hooks.progress(&tx_progress_line(st.sent - tick.1, st.bytes - tick.2, dt));
                tick = (now, st.sent, st.bytes);
            }
        }
        if let Some(p) = pacer.as_mut() {
            match p.poll(now, want) {
                Pace::Send(n) => want = n,
                Pace::WaitUntil(t) => {
                    wait_until(port, t.min(deadline.unwrap_or(u64::MAX)));
                    now = mono_ns();
                    continue;
                }
            }
        }
        let ts = now as u32;
        let (mut nth, mut seq) = (st.sent % owned, st.sent / owned);
        for _ in 0..want {
            let Some(mut d) = pool.alloc() else { break };
            d.len = len;
            let buf = pool.data_mut(d);
            let seen = &mut has_template[d.frame as usize];
            if !*seen {
                tpl.write(buf);
                *seen = true;
            }
            let seq_out = match cfg.seq_gap_every {
                Some(e) if e > 0 => seq + seq / e,
                _ => seq,
            };
            tpl.patch(
                buf,
                Stamp {
                    flow: first + nth as u32 * stride,
                    seq: seq_out,
                    ts,
                },
            );
            descs.push(d);
            nth += 1;
            if nth == owned {
                nth = 0;
                seq += 1;
            }
        }
        let built = descs.len() as u64;
        let (n, bytes) = port.tx_burst(&mut pool, &mut descs);
        // The port drains `descs`; should one not, its frames go back to
        // the pool rather than leak.
        for d in descs.drain(..) {
            pool.free(d);
        }
        st.sent += n as u64;
        st.bytes += bytes;
        if let Some(p) = pacer.as_mut() {
            p.consume(n as u32);
        }
        if (n as u64) < built {
            st.refused += built - n as u64;
            port.kick();
        }
        now = mono_ns();
    }
    st.elapsed_ns = now - start;
    // Copy-mode AF_XDP transmits only when kicked: push out what is still
    // in the ring before the port is closed.
    for _ in 0..10 {
        port.kick();
        std::thread::sleep(Duration::from_micros(200));
    }
    st
}

/// Waits until `t_ns`: spins for short waits, sleeps (kicking the port
/// first) for long ones, at most [`MAX_SLEEP_NS`] per call.
fn wait_until<P: Port + ?Sized>(port: &mut P, t_ns: u64) {
    let now = mono_ns();
    if t_ns <= now {
        return;
    }
    if t_ns - now > SPIN_NS {
        port.kick();
        let nap = (t_ns - now - SLEEP_MARGIN_NS).min(MAX_SLEEP_NS);
        std::thread::sleep(Duration::from_nanos(nap));
        return;
    }
    while mono_ns() < t_ns {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::{parse_probe, FrameSpec};
    use crate::pktgen::Quiet;
    use vswitch::port::mem::MemPort;

    fn template(flows: u32) -> Template {
        Template::new(&FrameSpec::example(64, flows, None)).unwrap()
    }

    #[test]
    fn sends_count_frames_with_consecutive_sequences_per_flow() {
        let (mut port, link) = MemPort::new("m", 10_000);
        let cfg = TxConfig {
            batch: 64,
            count: Some(1000),
            ..TxConfig::default()
        };
        let st = send(&mut port, &template(3), &cfg, &mut Quiet);
        assert_eq!((st.sent, st.bytes, st.refused), (1000, 64_000, 0));
        let frames = link.take_tx();
        assert_eq!(frames.len(), 1000);
        for (g, f) in frames.iter().enumerate() {
            let p = parse_probe(f).expect("a probe");
            assert_eq!(
                (p.flow, p.seq),
                ((g % 3) as u32, (g / 3) as u64),
                "frame {g}"
            );
        }
    }

    #[test]
    fn shares_split_count_and_rate_exactly_by_flow() {
        for (flows, n) in [(8u32, 2u32), (8, 3), (3, 4), (1, 2), (70_000, 4)] {
            for count in [0u64, 1, 7, 20_000, 20_003] {
                let cfg = TxConfig {
                    count: Some(count),
                    rate: Some(20_000),
                    ..TxConfig::default()
                };
                let parts = Share::split(&cfg, flows, n);
                assert_eq!(parts.len(), n as usize);
                let total: u64 = parts.iter().map(|c| c.count.unwrap()).sum();
                assert_eq!(total, count, "{flows} flows, {n} senders");
                let rate: u64 = parts.iter().map(|c| c.rate.unwrap()).sum();
                assert_eq!(rate, 20_000, "{flows} flows, {n} senders");
                let owners: u32 = parts.iter().map(|c| c.share.flows(flows)).sum();
                assert_eq!(owners, flows);
                // A sender without flows sends nothing and has no rate.
                for c in &parts {
                    if c.share.flows(flows) == 0 {
                        assert_eq!((c.count, c.rate), (Some(0), Some(0)));
                    }
                }
            }
        }
    }

    #[test]
    fn several_senders_give_each_flow_the_single_senders_numbers() {
        let tpl = template(8);
        let one = TxConfig {
            batch: 16,
            count: Some(1003),
            ..TxConfig::default()
        };
        let (mut port, link) = MemPort::new("m", 10_000);
        send(&mut port, &tpl, &one, &mut Quiet);
        let mut want: Vec<(u32, u64)> = link
            .take_tx()
            .iter()
            .map(|f| parse_probe(f).map(|p| (p.flow, p.seq)).unwrap())
            .collect();
        want.sort_unstable();
        let mut got = Vec::new();
        for (i, cfg) in Share::split(&one, 8, 3).iter().enumerate() {
            let (mut port, link) = MemPort::new("m", 10_000);
            let st = send(&mut port, &tpl, cfg, &mut Quiet);
            assert_eq!(Some(st.sent), cfg.count);
            for f in link.take_tx() {
                let p = parse_probe(&f).unwrap();
                assert_eq!(p.flow % 3, i as u32, "sender {i} owns its flows only");
                got.push((p.flow, p.seq));
            }
        }
        got.sort_unstable();
        assert_eq!(got, want);
        // A sender with no flow returns at once.
        let idle = TxConfig {
            share: Share { index: 1, of: 2 },
            ..one
        };
        let (mut port, link) = MemPort::new("m", 10_000);
        assert_eq!(
            send(&mut port, &template(1), &idle, &mut Quiet),
            TxStats::default()
        );
        assert!(link.take_tx().is_empty());
    }

    /// Takes at most 10 frames per burst, in order, and keeps them.
    #[derive(Debug, Default)]
    struct Stingy(Vec<Vec<u8>>);

    impl Port for Stingy {
        fn name(&self) -> &str {
            "stingy"
        }
        fn backend(&self) -> &'static str {
            "test"
        }
        fn rx_burst(
            &mut self,
            _pool: &mut PacketPool,
            _batch: &mut vswitch::pipeline::Batch,
        ) -> usize {
            0
        }
        fn tx_burst(
            &mut self,
            pool: &mut PacketPool,
            descs: &mut Vec<vswitch::port::Desc>,
        ) -> (usize, u64) {
            let (mut n, mut bytes) = (0, 0);
            for d in descs.drain(..) {
                if n < 10 {
                    self.0.push(pool.data(d).to_vec());
                    n += 1;
                    bytes += u64::from(d.len);
                }
                pool.free(d);
            }
            (n, bytes)
        }
    }

    #[test]
    fn refused_frames_reuse_their_sequence_numbers() {
        let mut port = Stingy::default();
        let cfg = TxConfig {
            batch: 64,
            count: Some(100),
            ..TxConfig::default()
        };
        let st = send(&mut port, &template(2), &cfg, &mut Quiet);
        assert_eq!(st.sent, 100);
        // Four bursts of 64 (54 refused each), then 60, 50, ..., 10.
        assert_eq!(st.refused, 4 * 54 + 50 + 40 + 30 + 20 + 10);
        for (g, f) in port.0.iter().enumerate() {
            let p = parse_probe(f).unwrap();
            assert_eq!(
                (p.flow, p.seq),
                ((g % 2) as u32, (g / 2) as u64),
                "frame {g}"
            );
        }
        assert_eq!(port.0.len(), 100);
    }

    #[test]
    fn test_gaps_skip_sequence_numbers() {
        let (mut port, link) = MemPort::new("m", 10_000);
        let cfg = TxConfig {
            batch: 16,
            count: Some(25),
            seq_gap_every: Some(10),
            ..TxConfig::default()
        };
        send(&mut port, &template(1), &cfg, &mut Quiet);
        let seqs: Vec<u64> = link
            .take_tx()
            .iter()
            .map(|f| parse_probe(f).unwrap().seq)
            .collect();
        let want: Vec<u64> = (0..10).chain(11..21).chain(22..27).collect();
        assert_eq!(seqs, want);
    }

    #[test]
    fn a_paced_run_takes_the_time_the_rate_implies() {
        let (mut port, link) = MemPort::sink("m");
        let cfg = TxConfig {
            batch: 64,
            count: Some(2_000),
            rate: Some(20_000),
            ..TxConfig::default()
        };
        let st = send(&mut port, &template(1), &cfg, &mut Quiet);
        assert_eq!(link.sunk(), 2_000);
        let secs = st.elapsed_ns as f64 / 1e9;
        assert!(
            (0.09..0.3).contains(&secs),
            "2000 frames at 20 kpps took {secs} s"
        );
    }

    #[test]
    fn duration_and_stop_end_a_run() {
        let (mut port, _link) = MemPort::sink("m");
        let cfg = TxConfig {
            batch: 64,
            duration_ns: Some(50_000_000),
            ..TxConfig::default()
        };
        let st = send(&mut port, &template(1), &cfg, &mut Quiet);
        assert!(st.sent > 0);
        assert!((50_000_000..1_000_000_000).contains(&st.elapsed_ns));

        struct StopAtOnce;
        impl Hooks for StopAtOnce {
            fn stop(&mut self) -> bool {
                true
            }
        }
        let cfg = TxConfig {
            batch: 64,
            ..TxConfig::default()
        };
        // No count, no duration: only the hook ends it.
        let st = send(&mut port, &template(1), &cfg, &mut StopAtOnce);
        assert!(st.elapsed_ns < 1_000_000_000);
    }
}
