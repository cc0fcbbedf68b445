//! A switch on one worker thread: its ports, its packet pool and its share
//! of the pipeline.
//!
//! [`Switch::poll`] is one turn of the poll loop: receive a burst from each
//! port this worker owns, run it through the pipeline, flush what the
//! pipeline staged. A frame staged for a port another worker owns goes
//! through that worker's [`Inbox`] (a lock-free bounded queue of recycled
//! buffers: one copy, no allocation, no lock per packet). Tests, benches and
//! the in-memory demo drive a `Switch` directly; the daemon runs one per
//! worker thread.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::pipeline::{Batch, ControlError, DropReason, Pipeline, WorkerCtx, MAX_PORT_SLOTS};
use crate::port::{Desc, PacketPool, Port, FRAME_SIZE};
use crate::sys::EventFd;

/// Frames in a worker's pool: enough for every port's rx burst, staged
/// copies and in-flight tx with room to spare.
pub const POOL_FRAMES: u32 = 8192;

/// Frames a worker can hold in its inbox from other workers.
pub const INBOX_FRAMES: usize = 2048;

/// Worker id stored in [`Handoff::owner`] for "nobody".
pub const NO_OWNER: u8 = u8::MAX;

/// A frame handed from one worker to another.
#[derive(Debug)]
pub struct Parcel {
    slot: u16,
    len: u16,
    data: Box<[u8; FRAME_SIZE]>,
}

/// Frames other workers send to this one, plus the empty buffers they take
/// them in. Both queues are lock-free; buffers are allocated once.
#[derive(Debug)]
pub struct Inbox {
    full: ArrayQueue<Parcel>,
    empty: ArrayQueue<Box<[u8; FRAME_SIZE]>>,
    /// The owner is (about to be) blocked in poll(): ring `bell` after a push.
    pub sleeping: AtomicBool,
    /// Wakes the owner.
    pub bell: EventFd,
}

impl Inbox {
    /// An inbox with [`INBOX_FRAMES`] buffers.
    pub fn new() -> std::io::Result<Inbox> {
        let empty = ArrayQueue::new(INBOX_FRAMES);
        for _ in 0..INBOX_FRAMES {
            let _ = empty.push(Box::new([0u8; FRAME_SIZE]));
        }
        Ok(Inbox {
            full: ArrayQueue::new(INBOX_FRAMES),
            empty,
            sleeping: AtomicBool::new(false),
            bell: EventFd::new()?,
        })
    }
}

/// How workers find each other: who owns each port slot, and every inbox.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// Owner worker of each port slot ([`NO_OWNER`] when unattached).
    pub owner: Arc<[AtomicU8]>,
    /// Inbox of each worker.
    pub inboxes: Arc<[Arc<Inbox>]>,
}

impl Handoff {
    /// Inboxes for `workers` workers and an empty ownership table.
    pub fn new(workers: usize) -> std::io::Result<Handoff> {
        Ok(Handoff {
            owner: (0..MAX_PORT_SLOTS)
                .map(|_| AtomicU8::new(NO_OWNER))
                .collect(),
            inboxes: (0..workers)
                .map(|_| Inbox::new().map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        })
    }
}

/// An attached port.
#[derive(Debug)]
struct Attached {
    ofport: u32,
    port: Box<dyn Port>,
}

/// Ports plus one worker's pipeline context.
#[derive(Debug)]
pub struct Switch {
    pipeline: Arc<Pipeline>,
    ctx: WorkerCtx,
    pool: PacketPool,
    slots: Vec<Option<Attached>>,
    batch: Batch,
    handoff: Option<Handoff>,
    inbox: Option<Arc<Inbox>>,
    scratch: Vec<Desc>,
}

impl Switch {
    /// A switch running as worker `worker` of `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>, worker: usize) -> Switch {
        Switch {
            ctx: pipeline.worker(worker),
            pipeline,
            pool: PacketPool::new(POOL_FRAMES),
            slots: (0..MAX_PORT_SLOTS).map(|_| None).collect(),
            batch: Batch::new(0),
            handoff: None,
            inbox: None,
            scratch: Vec::with_capacity(1),
        }
    }

    /// Joins a group of workers that hand frames to each other.
    pub fn set_handoff(&mut self, h: Handoff) {
        self.inbox = Some(Arc::clone(&h.inboxes[self.ctx.id]));
        self.handoff = Some(h);
    }

    /// The worker id.
    pub fn worker(&self) -> usize {
        self.ctx.id
    }

    /// The shared pipeline.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The packet pool (for frame accounting in tests).
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }

    /// Attaches `port` as OpenFlow port `ofport` (allocates its slot in the pipeline).
    pub fn add_port(&mut self, ofport: u32, port: Box<dyn Port>) -> Result<(), ControlError> {
        let slot = self.pipeline.add_port(ofport)?;
        self.attach(slot, ofport, port);
        Ok(())
    }

    /// Detaches OpenFlow port `ofport` (frees its slot in the pipeline) and returns it.
    pub fn del_port(&mut self, ofport: u32) -> Result<Box<dyn Port>, ControlError> {
        let slot = self.pipeline.del_port(ofport)?;
        self.detach(slot).ok_or(ControlError::NoSuchPort(ofport))
    }

    /// Polls `port` as slot `slot` on this worker (the slot is already in the pipeline).
    pub fn attach(&mut self, slot: u16, ofport: u32, port: Box<dyn Port>) {
        if let Some(h) = &self.handoff {
            h.owner[slot as usize].store(self.ctx.id as u8, Ordering::Release);
        }
        self.slots[slot as usize] = Some(Attached { ofport, port });
    }

    /// Stops polling slot `slot` and returns its port.
    pub fn detach(&mut self, slot: u16) -> Option<Box<dyn Port>> {
        if let Some(h) = &self.handoff {
            h.owner[slot as usize].store(NO_OWNER, Ordering::Release);
        }
        self.slots[slot as usize].take().map(|a| a.port)
    }

    /// `(ofport, name, backend, detail)` of every port this worker polls.
    pub fn ports(&self) -> Vec<(u32, String, &'static str, String)> {
        self.slots
            .iter()
            .flatten()
            .map(|a| {
                (
                    a.ofport,
                    a.port.name().to_string(),
                    a.port.backend(),
                    a.port.detail(),
                )
            })
            .collect()
    }

    /// Fds that signal rx work (ports that have one, and the inbox bell).
    pub fn poll_fds(&self, out: &mut Vec<RawFd>) {
        out.clear();
        out.extend(self.slots.iter().flatten().filter_map(|a| a.port.poll_fd()));
        if let Some(h) = &self.handoff {
            out.push(h.inboxes[self.ctx.id].bell.raw());
        }
    }

    /// True when every port can wake a sleeping worker (so blocking is safe).
    pub fn can_block(&self) -> bool {
        self.slots
            .iter()
            .flatten()
            .all(|a| a.port.poll_fd().is_some())
    }

    /// Lets every port push out pending transmits.
    pub fn kick(&mut self) {
        for a in self.slots.iter_mut().flatten() {
            a.port.kick();
        }
    }

    /// One turn of the poll loop; returns the packets received (from ports
    /// and from other workers).
    pub fn poll(&mut self, now: u64) -> usize {
        let mut total = self.drain_inbox();
        for slot in 0..self.slots.len() {
            let Some(a) = self.slots[slot].as_mut() else {
                continue;
            };
            self.batch.in_port = a.ofport;
            let n = a.port.rx_burst(&mut self.pool, &mut self.batch);
            if n == 0 {
                continue;
            }
            total += n;
            self.pipeline
                .process(&mut self.ctx, &mut self.pool, &mut self.batch, now);
            self.flush();
        }
        total
    }

    /// Transmits frames other workers handed to this one.
    fn drain_inbox(&mut self) -> usize {
        let Some(inbox) = &self.inbox else { return 0 };
        let mut n = 0;
        while let Some(p) = inbox.full.pop() {
            n += 1;
            let d = self.pool.alloc_copy(&p.data[..p.len as usize]);
            let slot = p.slot;
            let _ = inbox.empty.push(p.data);
            let Some(d) = d else {
                self.ctx.stats.count_drop(DropReason::NoBuffer);
                continue;
            };
            match self.slots[slot as usize].as_mut() {
                Some(a) => {
                    self.scratch.push(d);
                    let (sent, bytes) = a.port.tx_burst(&mut self.pool, &mut self.scratch);
                    self.ctx.stats.tx(slot, sent as u64, bytes, 1 - sent as u64);
                }
                None => {
                    self.pool.free(d);
                    self.ctx.stats.count_drop(DropReason::NoSuchPort);
                }
            }
        }
        n
    }

    /// Transmits everything the pipeline staged.
    fn flush(&mut self) {
        let (slots, pool, handoff) = (&mut self.slots, &mut self.pool, &self.handoff);
        self.ctx
            .flush(|slot, q, stats| match slots[slot as usize].as_mut() {
                Some(a) => {
                    let n = q.len() as u64;
                    let (sent, bytes) = a.port.tx_burst(pool, q);
                    let dropped = n - sent as u64;
                    stats.tx(slot, sent as u64, bytes, dropped);
                    for _ in 0..dropped {
                        stats.count_drop(DropReason::TxFull);
                    }
                }
                None => {
                    let owner = handoff
                        .as_ref()
                        .map(|h| (h, h.owner[slot as usize].load(Ordering::Acquire)))
                        .filter(|(h, o)| (*o as usize) < h.inboxes.len());
                    for d in q.drain(..) {
                        match owner {
                            Some((h, o)) => {
                                let inbox = &h.inboxes[o as usize];
                                match inbox.empty.pop() {
                                    Some(mut buf) => {
                                        buf[..d.len as usize].copy_from_slice(pool.data(d));
                                        let _ = inbox.full.push(Parcel {
                                            slot,
                                            len: d.len,
                                            data: buf,
                                        });
                                        if inbox.sleeping.load(Ordering::Acquire) {
                                            inbox.bell.ring();
                                        }
                                    }
                                    None => stats.count_drop(DropReason::TxFull),
                                }
                            }
                            // The port went away between staging and flushing.
                            None => stats.count_drop(DropReason::NoSuchPort),
                        }
                        pool.free(d);
                    }
                }
            });
    }

    /// Polls until no port has anything to receive (bounded), returning the
    /// packets processed.
    pub fn run_until_idle(&mut self, now: u64) -> usize {
        let mut total = 0;
        for _ in 0..10_000 {
            let n = self.poll(now);
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::mem::MemPort;
    use crate::tables::Fdb;

    #[test]
    fn frames_cross_workers_through_the_inbox() {
        let pipe = Arc::new(Pipeline::new(2, Fdb::default()));
        let h = Handoff::new(2).unwrap();
        let mut w0 = Switch::new(Arc::clone(&pipe), 0);
        let mut w1 = Switch::new(Arc::clone(&pipe), 1);
        w0.set_handoff(h.clone());
        w1.set_handoff(h.clone());
        let (p1, l1) = MemPort::new("p1", 64);
        let (p2, l2) = MemPort::new("p2", 64);
        let s1 = pipe.add_port(1).unwrap();
        let s2 = pipe.add_port(2).unwrap();
        w0.attach(s1, 1, Box::new(p1));
        w1.attach(s2, 2, Box::new(p2));
        pipe.add_flows(control::flow::parse_flows("in_port=1 actions=output:2").unwrap())
            .unwrap();
        let frame = [
            0x02u8, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, 1, 2, 3, 4,
        ];
        for _ in 0..10 {
            l1.inject(&frame);
        }
        // Worker 0 receives and hands the frames to worker 1, which owns port 2.
        assert_eq!(w0.poll(0), 10);
        assert!(l2.take_tx().is_empty());
        assert_eq!(w1.poll(0), 10);
        let out = l2.take_tx();
        assert_eq!(out.len(), 10);
        assert_eq!(out[0], frame);
        // Every buffer came back: pools full, inbox buffers returned.
        assert_eq!(w0.pool().available(), POOL_FRAMES as usize);
        assert_eq!(w1.pool().available(), POOL_FRAMES as usize);
        assert_eq!(h.inboxes[1].empty.len(), INBOX_FRAMES);
        assert_eq!(pipe.port_stats(s2).tx_packets, 10);
    }
}
