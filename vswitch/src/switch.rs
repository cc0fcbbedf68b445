//! A switch on one worker thread: ports, a packet pool and the pipeline.
//!
//! [`Switch::poll`] is one turn of the poll loop: receive a burst from each
//! port, run it through the pipeline, flush what the pipeline staged for
//! each port. The daemon runs one `Switch`-like loop per worker; tests,
//! benches and the in-memory demo drive one directly.

use std::sync::Arc;

use crate::pipeline::{Batch, ControlError, DropReason, Pipeline, WorkerCtx, MAX_PORT_SLOTS};
use crate::port::{PacketPool, Port};

/// Frames in a worker's pool: enough for every port's rx burst, staged
/// copies and in-flight tx with room to spare.
pub const POOL_FRAMES: u32 = 8192;

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
        }
    }

    /// The shared pipeline.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The packet pool (for frame accounting in tests).
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }

    /// Attaches `port` as OpenFlow port `ofport`.
    pub fn add_port(&mut self, ofport: u32, port: Box<dyn Port>) -> Result<(), ControlError> {
        let slot = self.pipeline.add_port(ofport)?;
        self.slots[slot as usize] = Some(Attached { ofport, port });
        Ok(())
    }

    /// Detaches OpenFlow port `ofport` and returns it.
    pub fn del_port(&mut self, ofport: u32) -> Result<Box<dyn Port>, ControlError> {
        let slot = self.pipeline.del_port(ofport)?;
        let a = self.slots[slot as usize]
            .take()
            .ok_or(ControlError::NoSuchPort(ofport))?;
        Ok(a.port)
    }

    /// `(ofport, name, backend)` of every attached port.
    pub fn ports(&self) -> Vec<(u32, String, &'static str)> {
        self.slots
            .iter()
            .flatten()
            .map(|a| (a.ofport, a.port.name().to_string(), a.port.backend()))
            .collect()
    }

    /// One turn of the poll loop; returns the packets received.
    pub fn poll(&mut self, now: u64) -> usize {
        let mut total = 0;
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

    /// Transmits everything the pipeline staged.
    fn flush(&mut self) {
        let (slots, pool) = (&mut self.slots, &mut self.pool);
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
                    // The port went away between staging and flushing.
                    for d in q.drain(..) {
                        pool.free(d);
                        stats.count_drop(DropReason::NoSuchPort);
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
